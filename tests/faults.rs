//! Faults on the wire: `up` and `destroy` through `scripts/fault_proxy.py`, which answers a
//! fraction of calls (or, with `--match`, exactly the calls named) with each protocol's real
//! throttling error, HTTP 500/503 or a reset. Every test reads the proxy's counts and insists
//! that the faults it is about really fired.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::*;

struct Proxy {
    child: Child,
    url: String,
}

impl Proxy {
    /// Random faults: `rate` of all calls, of the given kinds, from a seeded generator.
    fn start(rate: f64, seed: u32, kinds: &str) -> Proxy {
        Proxy::spawn(&[
            "--rate",
            &rate.to_string(),
            "--seed",
            &seed.to_string(),
            "--kinds",
            kinds,
        ])
    }

    /// Certain faults: every call whose description (`METHOD PATH [X-Amz-Target]
    /// [Action=Name]`) matches `pattern` is answered with `kind`, every time; nothing else is.
    fn start_matching(pattern: &str, kind: &str) -> Proxy {
        Proxy::spawn(&["--rate", "0", "--kinds", kind, "--match", pattern])
    }

    fn spawn(args: &[&str]) -> Proxy {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fault_proxy.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--target",
                endpoint().trim_start_matches("http://"),
            ])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start fault proxy");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        Proxy {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    fn run(&self, dir: &Path, stack: &str, args: &[&str]) -> std::process::Output {
        thumbctl_cmd(dir, stack, args)
            .env("AWS_ENDPOINT_URL", &self.url)
            .output()
            .unwrap()
    }

    /// With the SDK's retries cut to `attempts`, so exhausting them takes seconds, not minutes.
    fn run_with_attempts(
        &self,
        dir: &Path,
        stack: &str,
        args: &[&str],
        attempts: u32,
    ) -> std::process::Output {
        let mut cmd = thumbctl_cmd(dir, stack, args);
        cmd.env("AWS_ENDPOINT_URL", &self.url)
            .env("AWS_MAX_ATTEMPTS", attempts.to_string())
            .output()
            .unwrap()
    }

    /// Stops the proxy and returns its counts (`requests=N matched=N throttle=N ...`). A
    /// proxy that printed no such line (it died, or never counted) fails the test here, so
    /// "no fault fired" can never pass for "no count was read".
    fn stop(mut self) -> BTreeMap<String, u64> {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let mut out = String::new();
        if let Some(mut o) = self.child.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        let _ = self.child.wait();
        let line = out.lines().last().unwrap_or_default();
        let counts: BTreeMap<String, u64> = line
            .split_whitespace()
            .map(|kv| {
                let (k, v) = kv
                    .split_once('=')
                    .unwrap_or_else(|| panic!("not a counts line: {line:?}"));
                let v = v
                    .parse()
                    .unwrap_or_else(|_| panic!("not a counts line: {line:?}"));
                (k.to_owned(), v)
            })
            .collect();
        assert!(
            counts.contains_key("requests"),
            "the proxy printed no counts: {out:?}"
        );
        counts
    }
}

fn count(counts: &BTreeMap<String, u64>, key: &str) -> u64 {
    counts.get(key).copied().unwrap_or(0)
}

/// A failed assertion must not leave the proxy running (it holds the test's output pipe).
impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const KINDS: [&str; 4] = ["throttle", "500", "503", "reset"];

#[tokio::test(flavor = "multi_thread")]
async fn up_and_destroy_survive_ten_percent_faults() {
    let c = clients().await;
    for seed in 1..=3 {
        let proxy = Proxy::start(0.10, seed, &KINDS.join(","));
        let dir = tempfile::tempdir().unwrap();
        let stack = stack_name(&format!("fault{seed}"));
        let up = proxy.run(dir.path(), &stack, &["up", "--image-uri", IMAGE]);
        assert!(
            up.status.success(),
            "up through 10% faults (seed {seed}): {}",
            stderr(&up)
        );
        let again = proxy.run(dir.path(), &stack, &["up", "--output", "json"]);
        assert!(again.status.success(), "{}", stderr(&again));
        let status = proxy.run(dir.path(), &stack, &["status", "--output", "json"]);
        assert!(status.status.success(), "{}", stderr(&status));
        let down = proxy.run(dir.path(), &stack, &["destroy", "--yes"]);
        assert!(
            down.status.success(),
            "destroy through 10% faults (seed {seed}): {}",
            stderr(&down)
        );
        let counts = proxy.stop();
        let faults: u64 = KINDS.iter().map(|k| count(&counts, k)).sum();
        eprintln!("seed {seed}: {faults} faults in {counts:?}");
        assert!(count(&counts, "requests") > 0, "{counts:?}");
        assert_eq!(faults, count(&counts, "random"), "{counts:?}");
        // The proxy gives the kinds in turn: with at least one fault per kind, each kind was
        // met (and survived) on every seed.
        assert!(
            faults >= KINDS.len() as u64,
            "seed {seed}: too few faults injected to test every kind: {counts:?}"
        );
        for k in KINDS {
            assert!(
                count(&counts, k) > 0,
                "seed {seed}: no {k} fault fired: {counts:?}"
            );
        }
        assert!(leftovers(&c, &stack).await.is_empty());
    }
}

/// One call per AWS wire protocol that `up` makes, to be throttled until the retries run out.
struct RunOut {
    /// Regular expression on the proxy's call description.
    call: &'static str,
    /// The step whose create call it is, and the kind its error names.
    step: &'static str,
    kind: &'static str,
    /// The AWS error code of that protocol's throttling answer.
    code: &'static str,
}

const RUN_OUTS: [RunOut; 4] = [
    RunOut {
        call: r"^POST / DynamoDB_\d+\.CreateTable$",
        step: "table",
        kind: "table",
        code: "ThrottlingException",
    },
    RunOut {
        call: r"^POST / Action=CreateTopic$",
        step: "topic",
        kind: "topic",
        code: "Throttling",
    },
    RunOut {
        call: r"^POST /2015-03-31/functions$",
        step: "function",
        kind: "function",
        code: "TooManyRequestsException",
    },
    RunOut {
        call: r"^PUT /[a-z0-9-]+-src-[a-z0-9]+/?$",
        step: "source-bucket",
        kind: "bucket",
        code: "SlowDown",
    },
];

/// Whether moto holds the resource of `step`, found by the name the state recorded.
async fn exists_in_moto(c: &Clients, step: &str, name: &str) -> bool {
    match step {
        "table" => c
            .dynamodb
            .describe_table()
            .table_name(name)
            .send()
            .await
            .is_ok(),
        "topic" => c
            .sns
            .get_topic_attributes()
            .topic_arn(format!("arn:aws:sns:us-east-1:{ACCOUNT}:{name}"))
            .send()
            .await
            .is_ok(),
        "function" => c
            .lambda
            .get_function()
            .function_name(name)
            .send()
            .await
            .is_ok(),
        "source-bucket" => c.s3.head_bucket().bucket(name).send().await.is_ok(),
        other => panic!("no check for {other}"),
    }
}

/// Retries that run out, made certain: the proxy throttles one create call every time, and
/// with `AWS_MAX_ATTEMPTS=2` the SDK gives up after exactly two attempts.
#[tokio::test(flavor = "multi_thread")]
async fn when_retries_run_out_the_error_names_the_call_and_a_rerun_finishes() {
    let c = clients().await;
    const ATTEMPTS: u32 = 2;
    for case in &RUN_OUTS {
        let proxy = Proxy::start_matching(case.call, "throttle");
        let dir = tempfile::tempdir().unwrap();
        let stack = stack_name(&format!("runout-{}", case.kind));
        let out =
            proxy.run_with_attempts(dir.path(), &stack, &["up", "--image-uri", IMAGE], ATTEMPTS);
        let counts = proxy.stop();
        let err = stderr(&out);
        eprintln!("{}: {counts:?}", case.step);
        // The fault fired on every attempt of that one call, and on nothing else.
        assert_eq!(
            count(&counts, "matched"),
            u64::from(ATTEMPTS),
            "{counts:?}\n{err}"
        );
        assert_eq!(
            count(&counts, "throttle"),
            u64::from(ATTEMPTS),
            "{counts:?}"
        );
        assert_eq!(out.status.code(), Some(1), "{err}");

        // The state is valid and says the step was planned, never created.
        let st = state_json(dir.path(), &stack);
        assert_eq!(st["stack"], stack);
        let entry = &st["resources"][case.step];
        assert_eq!(entry["status"], "planned", "{st}");
        let name = entry["name"].as_str().unwrap().to_owned();
        // Names the call, the resource and the AWS code, and says what to do.
        let call = format!("create {} `{name}` failed ({})", case.kind, case.code);
        assert!(err.contains(&call), "wanted {call:?} in:\n{err}");
        assert!(err.contains("hint: AWS kept throttling"), "{err}");
        assert!(err.contains("rerun `thumbctl up`"), "{err}");
        // Each failed call said once, with its hint, without the SDK's debug dump.
        let report = &err[err.find("thumbctl: error:").expect("an error report")..];
        assert_eq!(report.matches(" failed (").count(), 1, "{err}");
        assert_eq!(report.matches("hint:").count(), 1, "{err}");
        assert!(!err.contains("ServiceError {"), "{err}");
        // moto agrees: the throttled create never reached it.
        assert!(
            !exists_in_moto(&c, case.step, &name).await,
            "{} {name} exists although its create call was always throttled",
            case.step
        );

        // Without the faults, a rerun finishes the job.
        ok(dir.path(), &stack, &["up"]);
        let st = state_json(dir.path(), &stack);
        let resources = st["resources"].as_object().unwrap();
        assert!(resources.values().all(|e| e["status"] == "created"), "{st}");
        assert!(resources.contains_key("notification"), "{st}");
        assert!(
            exists_in_moto(&c, case.step, &name).await,
            "{} {name} missing after the rerun",
            case.step
        );
        ok(dir.path(), &stack, &["destroy", "--yes"]);
        assert!(leftovers(&c, &stack).await.is_empty());
    }
}
