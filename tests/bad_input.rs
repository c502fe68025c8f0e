//! What a user mistypes, command by command: each gets a clear message and the right exit code
//! (2 for usage, 1 for a failure), and nothing in moto is created, changed or deleted by it.
//! "Nothing changed" is read back from moto each time, not taken from thumbctl's word.

mod common;

use std::path::Path;
use std::process::Output;

use common::*;

/// What moto holds for one stack: every resource by name, and every object of its buckets.
async fn holdings(c: &Clients, stack: &str) -> Vec<String> {
    let mut all = leftovers(c, stack).await;
    for b in all.clone() {
        let Some(bucket) = b.strip_prefix("bucket ") else {
            continue;
        };
        let listed =
            c.s3.list_objects_v2()
                .bucket(bucket)
                .send()
                .await
                .expect("list objects");
        for o in listed.contents() {
            all.push(format!(
                "object {bucket}/{} {:?}",
                o.key().unwrap_or_default(),
                o.e_tag()
            ));
        }
    }
    all.sort();
    all
}

/// The exit code, and each fragment somewhere in what the user sees (a command's per-file
/// report is on stdout, its summary and errors on stderr).
fn expect(out: &Output, code: i32, says: &[&str], what: &str) {
    let err = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(out));
    assert_eq!(out.status.code(), Some(code), "{what}: {err}");
    for s in says {
        assert!(err.contains(s), "{what}: expected `{s}` in:\n{err}");
    }
    // A usage error or failure is one clear message, not a panic or a debug dump.
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{what}: {err}"
    );
}

/// Option values out of range or malformed: clap's value parsers refuse them (exit 2) before
/// any AWS call, so no state file is written and moto holds nothing of the stack.
#[tokio::test(flavor = "multi_thread")]
async fn bad_option_values_are_usage_errors_and_make_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("badopt");
    let c = clients().await;
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--notify-email", "not-an-address"],
            &["--notify-email", "not an e-mail address"],
        ),
        (
            &["--notify-email", "me@localhost"],
            &["not an e-mail address"],
        ),
        (
            &["--notify-url", "ftp://example.com/hook"],
            &["--notify-url", "not an http(s) URL"],
        ),
        (&["--notify-url", "example.com"], &["not an http(s) URL"]),
        (&["--memory-mb", "64"], &["--memory-mb", "128..=10240"]),
        (&["--memory-mb", "20000"], &["--memory-mb"]),
        (&["--timeout-s", "0"], &["--timeout-s", "1..=900"]),
        (&["--timeout-s", "901"], &["--timeout-s"]),
        (&["--quality", "0"], &["--quality", "1..=100"]),
        (&["--quality", "101"], &["--quality"]),
        (&["--sizes", "0"], &["--sizes", "is not a size"]),
        (&["--sizes", "big"], &["is not a size"]),
        (&["--sizes", "128,20000"], &["`20000` is not a size"]),
        (&["--max-concurrency", "0"], &["not a concurrency"]),
        (&["--expire-days", "thumbnails=-3"], &["--expire-days"]),
    ];
    for (args, says) in cases {
        let mut full = vec!["up", "--image-uri", IMAGE];
        full.extend_from_slice(args);
        let out = thumbctl(dir.path(), &stack, &full);
        expect(&out, 2, says, &format!("up {args:?}"));
    }
    for bad_stack in ["Has Space", "under_score", "UPPER", "a".repeat(40).as_str()] {
        let out = thumbctl(dir.path(), bad_stack, &["up", "--image-uri", IMAGE]);
        expect(&out, 2, &["--stack"], &format!("--stack {bad_stack:?}"));
    }
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "no state file for refused commands"
    );
    assert_eq!(leftovers(&c, &stack).await, Vec::<String>::new());
}

/// `thumbctl thumbnail` (local, no AWS) on paths that are missing, unreadable or not images.
#[test]
fn thumbnail_refuses_missing_unreadable_and_non_image_paths() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let out_arg = out_dir.to_str().unwrap();
    let missing = dir.path().join("no-such.jpg");
    let out = thumbctl(
        dir.path(),
        "local",
        &["thumbnail", missing.to_str().unwrap(), "--out", out_arg],
    );
    expect(&out, 1, &["no-such.jpg"], "thumbnail of a missing file");

    let text = dir.path().join("notes.jpg");
    std::fs::write(&text, b"these are words, not pixels").unwrap();
    let out = thumbctl(
        dir.path(),
        "local",
        &["thumbnail", text.to_str().unwrap(), "--out", out_arg],
    );
    expect(&out, 1, &["notes.jpg", "not an image"], "thumbnail of text");

    let locked = dir.path().join("locked.png");
    std::fs::write(&locked, b"\x89PNG\r\n\x1a\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let out = unreadable_run(
        dir.path(),
        &["thumbnail", locked.to_str().unwrap(), "--out", out_arg],
    );
    expect(
        &out,
        1,
        &["locked.png", "ermission denied"],
        "thumbnail of an unreadable file",
    );
    // Nothing was written for any of them.
    let written: Vec<_> = std::fs::read_dir(&out_dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(written.is_empty(), "{written:?}");
}

/// Runs thumbctl so that a mode-000 file really is unreadable to it: as root (CI), the file
/// mode does not bind, so the run drops to the `nobody` user with `setpriv`; as anyone else,
/// it runs as is. Either way the same assertion follows.
fn unreadable_run(dir: &Path, args: &[&str]) -> Output {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .expect("id -u");
    if !root {
        return thumbctl(dir, "local", args);
    }
    use std::os::unix::fs::PermissionsExt;
    // nobody must reach the files' directory (tempdir is 0700) and write the output there.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_thumbctl"))
        .args(["--stack", "local", "--state-dir"])
        .arg(dir)
        .args(args)
        .envs(aws_env())
        .stdin(std::process::Stdio::null());
    cmd.output().expect("setpriv runs thumbctl as nobody")
}

/// On a deployed stack: an unknown id for `get` and `delete`, `delete` without `--yes`, and
/// `upload` of paths that are missing or empty. Afterwards moto holds exactly what it held.
#[tokio::test(flavor = "multi_thread")]
async fn workflow_commands_refuse_bad_input_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("badwf");
    let c = clients().await;
    ok(dir.path(), &stack, &["up", "--image-uri", IMAGE]);
    let photo = dir.path().join("keep me.png");
    std::fs::write(&photo, tiny_png()).unwrap();
    ok(
        dir.path(),
        &stack,
        &["upload", photo.to_str().unwrap(), "--prefix", "p/"],
    );
    // moto runs no Lambda: the function's own handler, run here, makes the item and thumbnails.
    ok(dir.path(), &stack, &["invoke-local", "p/keep me.png"]);
    let before = holdings(&c, &stack).await;
    assert!(
        before.iter().any(|h| h.contains("/p/keep me.png")),
        "the upload is in moto: {before:?}"
    );

    let out = thumbctl(dir.path(), &stack, &["get", "p/no such image.png"]);
    expect(&out, 1, &["p/no such image.png"], "get of an unknown id");
    let out = thumbctl(dir.path(), &stack, &["delete", "p/keep me.png"]);
    expect(&out, 2, &["--yes"], "delete without --yes");
    let out = thumbctl(
        dir.path(),
        &stack,
        &["delete", "p/no such image.png", "--yes"],
    );
    expect(&out, 1, &["p/no such image.png"], "delete of an unknown id");
    let missing = dir.path().join("nowhere");
    let out = thumbctl(dir.path(), &stack, &["upload", missing.to_str().unwrap()]);
    expect(&out, 1, &["nowhere"], "upload of a missing path");
    let empty = dir.path().join("empty.jpg");
    std::fs::write(&empty, b"").unwrap();
    let out = thumbctl(dir.path(), &stack, &["upload", empty.to_str().unwrap()]);
    expect(&out, 1, &["empty.jpg", "empty"], "upload of an empty file");

    assert_eq!(holdings(&c, &stack).await, before, "moto changed");
    ok(dir.path(), &stack, &["destroy", "--yes"]);
    assert_eq!(leftovers(&c, &stack).await, Vec::<String>::new());
}

/// A state file that is not thumbctl's, or is another region's or account's: refused with
/// what to do, the file left byte for byte, and the stack's resources left in moto.
#[tokio::test(flavor = "multi_thread")]
async fn foreign_and_malformed_state_files_are_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("badstate");
    let c = clients().await;
    ok(dir.path(), &stack, &["up", "--image-uri", IMAGE]);
    let before = holdings(&c, &stack).await;
    let file = dir.path().join(format!("{stack}.json"));
    let original = std::fs::read(&file).unwrap();

    // Another region: --region that disagrees with the state.
    let out = thumbctl(
        dir.path(),
        &stack,
        &["--region", "eu-west-1", "destroy", "--yes"],
    );
    expect(
        &out,
        2,
        &["lives in us-east-1", "--region is eu-west-1"],
        "another region",
    );

    // Another account: the state says 999999999999, the credentials are moto's.
    let mut foreign: serde_json::Value = serde_json::from_slice(&original).unwrap();
    foreign["account"] = "999999999999".into();
    let foreign_bytes = serde_json::to_vec_pretty(&foreign).unwrap();
    std::fs::write(&file, &foreign_bytes).unwrap();
    let out = thumbctl(dir.path(), &stack, &["destroy", "--yes"]);
    expect(
        &out,
        2,
        &["999999999999", "123456789012"],
        "another account",
    );
    assert_eq!(std::fs::read(&file).unwrap(), foreign_bytes);

    // Not a state file at all.
    for garbage in [&b"{ this is not json"[..], b"[]", b"", b"{\"version\": 1}"] {
        std::fs::write(&file, garbage).unwrap();
        for args in [
            &["status"][..],
            &["destroy", "--yes"],
            &["up", "--image-uri", IMAGE],
        ] {
            let out = thumbctl(dir.path(), &stack, args);
            expect(
                &out,
                1,
                &[&format!("{stack}.json")],
                &format!("{args:?} on {garbage:?}"),
            );
            assert_eq!(
                std::fs::read(&file).unwrap(),
                garbage,
                "the file was touched"
            );
        }
    }
    assert_eq!(holdings(&c, &stack).await, before, "moto changed");

    std::fs::write(&file, &original).unwrap();
    ok(dir.path(), &stack, &["destroy", "--yes"]);
    assert_eq!(leftovers(&c, &stack).await, Vec::<String>::new());
}

/// A 2x2 PNG, written by the image crate.
fn tiny_png() -> Vec<u8> {
    let img = image::RgbImage::from_pixel(2, 2, image::Rgb([200, 30, 30]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}
