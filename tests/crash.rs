//! Crash-resume: `up` and `destroy` killed at every step (cargo feature `failpoints`), then
//! rerun. The stack must converge, and after `destroy` nothing of it may be left in moto.
#![cfg(feature = "failpoints")]

mod common;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::*;

const CRASH_EXIT: i32 = 86;

fn with_failpoint(dir: &Path, stack: &str, args: &[&str], failpoint: &str) -> Output {
    let mut cmd = thumbctl_cmd(dir, stack, args);
    cmd.env("FAILPOINTS", failpoint)
        .output()
        .expect("run thumbctl")
}

/// Every step id `up` runs for a stack with one e-mail subscription, read from a dry run.
fn step_ids(dir: &Path) -> Vec<String> {
    let out = ok(
        dir,
        "dryrun",
        &[
            "up",
            "--image-uri",
            IMAGE,
            "--notify-email",
            "ops@example.com",
            "--dry-run",
            "--output",
            "json",
        ],
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("dry run JSON");
    assert!(
        !dir.join("dryrun.json").exists(),
        "a dry run must not write state"
    );
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn up_crash_matrix(phase: &str) {
    let c = clients().await;
    let dir = tempfile::tempdir().unwrap();
    let ids = step_ids(dir.path());
    assert!(ids.len() >= 16, "{ids:?}");
    let mut converged = 0;
    let mut leaked = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let stack = stack_name(&format!("cu{}{i}", &phase[..1]));
        let up = [
            "up",
            "--image-uri",
            IMAGE,
            "--notify-email",
            "ops@example.com",
        ];
        let out = with_failpoint(dir.path(), &stack, &up, &format!("up:{phase}:{id}=return"));
        assert_eq!(
            out.status.code(),
            Some(CRASH_EXIT),
            "crash at {phase}:{id} did not happen: {}",
            stderr(&out)
        );
        let st = state_json(dir.path(), &stack);
        assert!(
            st["resources"][id].is_object(),
            "{id} must be recorded before the crash"
        );
        ok(dir.path(), &stack, &up);
        let st = state_json(dir.path(), &stack);
        let all_created = st["resources"]
            .as_object()
            .unwrap()
            .values()
            .all(|e| e["status"] == "created");
        assert!(all_created, "after rerun at {phase}:{id}: {st}");
        assert_eq!(st["resources"].as_object().unwrap().len(), ids.len());
        ok(dir.path(), &stack, &["destroy", "--yes"]);
        let left = leftovers(&c, &stack).await;
        if left.is_empty() {
            converged += 1;
        } else {
            leaked.push((id.clone(), left));
        }
    }
    eprintln!(
        "crash matrix up:{phase}: {} steps covered, {converged} converged, {} leaked",
        ids.len(),
        leaked.len()
    );
    assert!(
        leaked.is_empty(),
        "leaked after crash at up:{phase}: {leaked:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn up_crash_before_create_call() {
    up_crash_matrix("planned").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn up_crash_between_create_call_and_state_write() {
    up_crash_matrix("created").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn up_crash_after_state_write() {
    up_crash_matrix("recorded").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn destroy_crash_matrix() {
    let c = clients().await;
    let dir = tempfile::tempdir().unwrap();
    let ids = step_ids(dir.path());
    let up = [
        "up",
        "--image-uri",
        IMAGE,
        "--notify-email",
        "ops@example.com",
    ];
    let mut covered = 0;
    for phase in ["deleted", "recorded"] {
        for (i, id) in ids.iter().enumerate() {
            let stack = stack_name(&format!("cd{}{i}", &phase[..1]));
            ok(dir.path(), &stack, &up);
            let out = with_failpoint(
                dir.path(),
                &stack,
                &["destroy", "--yes"],
                &format!("destroy:{phase}:{id}=return"),
            );
            assert_eq!(
                out.status.code(),
                Some(CRASH_EXIT),
                "crash at destroy:{phase}:{id}: {}",
                stderr(&out)
            );
            // The state is still valid and the rerun finishes the job.
            ok(dir.path(), &stack, &["status", "--output", "json"]);
            ok(dir.path(), &stack, &["destroy", "--yes"]);
            let left = leftovers(&c, &stack).await;
            assert!(
                left.is_empty(),
                "leaked after crash at destroy:{phase}:{id}: {left:?}"
            );
            assert!(!dir.path().join(format!("{stack}.json")).exists());
            covered += 1;
        }
    }
    eprintln!("crash matrix destroy: {covered} crash points covered, all converged, 0 leaked");
}

#[tokio::test(flavor = "multi_thread")]
async fn second_process_on_the_same_stack_is_refused_and_other_stacks_run_in_parallel() {
    let c = clients().await;
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("lock");
    let other = stack_name("lock-other");
    // The first `up` pauses inside a step, holding the stack's lock.
    let mut first = thumbctl_cmd(dir.path(), &stack, &["up", "--image-uri", IMAGE]);
    first.env("FAILPOINTS", "up:planned:function=sleep(3000)");
    let first = first.spawn().unwrap();
    // Wait until it has the lock and is inside the step.
    let state = dir.path().join(format!("{stack}.json"));
    for _ in 0..100 {
        if std::fs::read_to_string(&state).is_ok_and(|s| s.contains("\"function\"")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = thumbctl(dir.path(), &stack, &["destroy", "--yes"]);
    assert_eq!(second.status.code(), Some(1));
    let err = stderr(&second);
    assert!(
        err.contains("in use by another thumbctl") && err.contains("thumbctl up"),
        "{err}"
    );
    // A different stack in the same state directory is not held up.
    ok(dir.path(), &other, &["up", "--image-uri", IMAGE]);
    let first = first.wait_with_output().unwrap();
    assert!(first.status.success(), "{}", stderr(&first));
    for s in [&stack, &other] {
        ok(dir.path(), s, &["destroy", "--yes"]);
        assert!(leftovers(&c, s).await.is_empty());
    }
}

/// Starts `up` with the function step stalled for `ms` before its create call, and returns
/// once the state file records that step (so the stall is under way).
fn up_stalled_at_function(dir: &Path, stack: &str, ms: u32) -> std::process::Child {
    let mut cmd = thumbctl_cmd(dir, stack, &["up", "--image-uri", IMAGE]);
    cmd.env("FAILPOINTS", format!("up:planned:function=sleep({ms})"));
    let child = cmd
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let state = dir.join(format!("{stack}.json"));
    for _ in 0..200 {
        if std::fs::read_to_string(&state).is_ok_and(|s| s.contains("\"function\"")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

fn sigint(child: &std::process::Child) {
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_finishes_the_call_in_flight_saves_state_and_a_rerun_finishes() {
    let c = clients().await;
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("sigint");
    let child = up_stalled_at_function(dir.path(), &stack, 1500);
    sigint(&child);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("Rerun `thumbctl up`"), "{err}");
    // The step in flight finished and was recorded; nothing after it started.
    let st = state_json(dir.path(), &stack);
    assert_eq!(st["resources"]["function"]["status"], "created", "{st}");
    assert!(
        st["resources"].get("notification").is_none(),
        "no new step may start after Ctrl-C"
    );
    let function = st["resources"]["function"]["name"].as_str().unwrap();
    c.lambda
        .get_function()
        .function_name(function)
        .send()
        .await
        .expect("the function in flight was created");
    ok(dir.path(), &stack, &["up"]);
    assert_eq!(
        state_json(dir.path(), &stack)["resources"]["notification"]["status"],
        "created"
    );
    ok(dir.path(), &stack, &["destroy", "--yes"]);
    assert!(leftovers(&c, &stack).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn second_ctrl_c_quits_at_once_and_leaves_a_valid_state() {
    let c = clients().await;
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("sigint2");
    // The function step stalls long before its create call: only quitting at once ends the
    // process without that call, which is what the assertions below tell apart.
    let mut child = up_stalled_at_function(dir.path(), &stack, 60_000);
    let mut err_pipe = child.stderr.take().unwrap();
    sigint(&child);
    // The second signal only means "quit now" once the first has been seen: wait for its line.
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains("press Ctrl-C again") {
        use std::io::Read;
        let n = err_pipe.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "exited before the second Ctrl-C: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    sigint(&child);
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err_pipe, &mut rest).unwrap();
    let err = format!("{}{rest}", String::from_utf8_lossy(&seen));
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("quitting now"), "{err}");

    // The stalled step never made its call; the state file is whole and says so.
    let st = state_json(dir.path(), &stack);
    assert_eq!(st["resources"]["function"]["status"], "planned", "{st}");
    let function = st["resources"]["function"]["name"].as_str().unwrap();
    assert!(
        c.lambda
            .get_function()
            .function_name(function)
            .send()
            .await
            .is_err(),
        "quitting at once must not wait for the stalled step's create call"
    );
    // Its dependency was created and recorded before it started.
    assert_eq!(st["resources"]["lambda-role"]["status"], "created", "{st}");

    // And it is usable: a rerun finishes, destroy leaves nothing.
    ok(dir.path(), &stack, &["up"]);
    ok(dir.path(), &stack, &["destroy", "--yes"]);
    assert!(leftovers(&c, &stack).await.is_empty());
}
