//! Nothing secret leaves thumbctl except where the user asked for it: no credential in the state
//! file, and no credential or presigned URL in any log line, even at the highest verbosity.
//! (`presign` prints its URL on stdout: that is its output, not a log.)

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

// Distinctive values, so a match can only come from these variables. moto accepts any keys.
const KEY_ID: &str = "AKIATHUMBCTLCANARY01";
const SECRET: &str = "thumbctlCanarySecret0123456789abcdefABCDEF";
const TOKEN: &str = "thumbctlCanarySessionToken0123456789";

/// What must never appear in a log line. The signature and credential parameters are what make
/// a presigned URL usable by anyone who holds it; the bare key ID identifies the credential.
const CANARIES: &[&str] = &[KEY_ID, SECRET, TOKEN];

/// Query parameters that make a presigned URL usable by whoever holds it. In a log line they
/// may appear only with their value redacted.
const URL_SECRETS: &[&str] = &[
    "x-amz-signature=",
    "x-amz-credential=",
    "x-amz-security-token=",
];

/// The first log line that leaks something, if any.
fn leak<'a>(log: &'a str, extra: &[&str]) -> Option<(&'a str, String)> {
    log.lines().find_map(|line| {
        if let Some(c) = CANARIES.iter().chain(extra).find(|c| line.contains(**c)) {
            return Some((line, (*c).to_owned()));
        }
        let lower = line.to_ascii_lowercase();
        URL_SECRETS.iter().find_map(|p| {
            lower
                .match_indices(p)
                .any(|(i, _)| !lower[i + p.len()..].starts_with("** redacted **"))
                .then(|| (line, (*p).to_owned()))
        })
    })
}

fn cmd(dir: &Path, stack: &str, args: &[&str], log: &str) -> Command {
    let mut c = thumbctl_cmd(dir, stack, args);
    c.env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_SESSION_TOKEN", TOKEN)
        .env("THUMBCTL_LOG", log);
    c
}

/// Runs at the given log filter, insists on success, and checks stderr.
fn run_clean(dir: &Path, stack: &str, args: &[&str], log: &str) -> Output {
    let out = cmd(dir, stack, args, log).output().expect("run thumbctl");
    let err = stderr(&out);
    assert!(out.status.success(), "thumbctl {args:?} failed:\n{err}");
    assert!(
        !err.trim().is_empty() || log == "off",
        "thumbctl {args:?} logged nothing at {log}: the check would prove nothing"
    );
    if let Some((line, what)) = leak(&err, &[]) {
        panic!("thumbctl {args:?} at THUMBCTL_LOG={log} logged {what:?}:\n{line}");
    }
    out
}

#[test]
fn no_credentials_in_state_or_logs_and_no_presigned_urls_in_logs() {
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("secrets");
    let files = tempfile::tempdir().unwrap();
    let photo = files.path().join("p.png");
    image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8, y as u8, 7]))
        .save(&photo)
        .unwrap();
    let photo = photo.to_str().unwrap();

    // Every level a user can ask for, including the SDK's own tracing.
    for log in ["debug", "trace"] {
        run_clean(dir.path(), &stack, &["up", "--image-uri", IMAGE], log);
        run_clean(dir.path(), &stack, &["status"], log);
        run_clean(
            dir.path(),
            &stack,
            &["upload", photo, "--prefix", "s/"],
            log,
        );
        run_clean(dir.path(), &stack, &["invoke-local", "s/p.png"], log);
        run_clean(dir.path(), &stack, &["list"], log);
        let get = run_clean(dir.path(), &stack, &["presign", "s/p.png"], log);
        // The output is where the URL belongs; proves the needles match a real presigned URL.
        let url = String::from_utf8_lossy(&get.stdout).trim().to_owned();
        assert!(
            leak(&url, &[]).is_some(),
            "the check must catch a real URL: {url}"
        );
        assert!(leak(&stderr(&get), &[&url]).is_none());
        run_clean(dir.path(), &stack, &["presign", "s/q.png", "--put"], log);
    }

    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for needle in [KEY_ID, SECRET, TOKEN] {
            assert!(
                !text.contains(needle),
                "{} holds a credential",
                path.display()
            );
        }
    }
    // The state file has content to search: the check above is not vacuous.
    assert!(state_json(dir.path(), &stack)["resources"]["table"].is_object());

    run_clean(dir.path(), &stack, &["destroy", "--yes"], "trace");
}
