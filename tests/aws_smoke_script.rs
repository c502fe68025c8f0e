//! `scripts/aws-smoke.sh`, the smoke test for a real AWS account, checked where no AWS is needed:
//! it refuses to run without credentials and against an emulator, asks before creating
//! anything, and, driven through a fake `thumbctl` (and a fake `aws`), runs the whole sequence,
//! prints its table, and still destroys the stack when a check fails. Nothing here talks to AWS
//! and the script builds no thumbctl: THUMBCTL_BIN is always set. The fake's JSON is held
//! against the real thumbctl's, run against moto, so that it cannot drift from it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn script() -> PathBuf {
    repo().join("scripts/aws-smoke.sh")
}

/// A `thumbctl` stand-in: logs each call to `$FAKE_DIR/calls.log` and answers like thumbctl's
/// `--output json` (and its stderr lines for the CodeBuild build). FAKE_STATUS sets the items'
/// status; FAKE_ACCOUNT the account; FAKE_UP_SECONDS how long `up` takes.
const FAKE_THUMBCTL: &str = r#"#!/usr/bin/env python3
import datetime, json, os, pathlib, sys, time, urllib.parse

fake = pathlib.Path(os.environ["FAKE_DIR"])
with open(fake / "calls.log", "a") as f:
    f.write(" ".join(sys.argv[1:]) + "\n")
opts, rest, args, i = {}, [], sys.argv[1:], 0
while i < len(args):
    if args[i] in ("--stack", "--state-dir", "--region", "--output"):
        opts[args[i]] = args[i + 1]
        i += 2
    else:
        rest.append(args[i])
        i += 1
cmd, rest = rest[0], rest[1:]
state = pathlib.Path(opts["--state-dir"])
state_file = state / (opts["--stack"] + ".json")
db = fake / "db.json"
load = lambda: json.loads(db.read_text()) if db.exists() else {}
save = lambda d: db.write_text(json.dumps(d))
out = lambda v: print(json.dumps(v, indent=2))
iso = lambda t: datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
account, region = os.environ.get("FAKE_ACCOUNT", "111111111111"), "eu-west-3"
if cmd == "up":
    state.mkdir(parents=True, exist_ok=True)
    if "--dry-run" in rest:
        out({"stack": opts["--stack"], "region": region, "account": account, "dry_run": True, "steps": []})
        sys.exit(0)
    # As thumbctl records it: an adopted bucket's prefix, which `upload` then keys under.
    adopted = {"source_prefix": rest[rest.index("--source-prefix") + 1]} if "--source-prefix" in rest else {}
    state_file.write_text(json.dumps(adopted))
    time.sleep(float(os.environ.get("FAKE_UP_SECONDS", "0")))
    for line in ["Started CodeBuild build p:1.", "  build p:1: BUILD (0m05s)", "Image 1.dkr.ecr/x@sha256:ab (codebuild)"]:
        print(line, file=sys.stderr, flush=True)
    out({"stack": opts["--stack"], "region": region, "account": account, "created": 17})
elif cmd == "status" and "--orphans" in rest:
    out({"stack": opts["--stack"], "region": region, "orphans": []})
elif cmd == "status":
    out({"settings": {"memory_mb": 2048, "sizes": ["128", "256"]}, "resources": [{"id": "function", "exists": True}]})
elif cmd == "upload":
    t, src, prefix = time.time(), pathlib.Path(rest[0]), rest[rest.index("--prefix") + 1]
    source_prefix = json.loads(state_file.read_text()).get("source_prefix", "")
    if not prefix.startswith(source_prefix):
        prefix = source_prefix + prefix
    status, d, uploaded = os.environ.get("FAKE_STATUS", "ok"), {}, []
    for n, p in enumerate(sorted(x for x in src.iterdir() if x.is_file())):
        key, thumbs = prefix + p.name, []
        for s in ("128", "256"):
            tf = fake / f"{n}-{s}.bin"
            tf.write_bytes(b"x" * (100 + n))
            thumbs.append({"size": s, "key": f"{s}/{key}", "bytes": 100 + n, "url": tf.as_uri()})
        # The item says the thumbnails were made n+1 seconds after the upload started.
        d[key] = {"id": key, "status": status, "updated_at": iso(t + n + 1), "duration_ms": 500, "thumbnails": thumbs}
        uploaded.append({"key": key, "status": status, "thumbnails": thumbs})
    save(d)
    out({"bucket": "b", "uploaded": uploaded, "pending": []})
elif cmd == "list":
    out({"items": list(load().values())})
elif cmd == "get":
    item = load().get(rest[0])
    if item is None:
        sys.exit(f"Error: no image `{rest[0]}` in stack")
    out(item)
elif cmd == "delete":
    d = load()
    for t in d.pop(rest[0])["thumbnails"]:
        os.remove(urllib.parse.unquote(urllib.parse.urlparse(t["url"]).path))
    save(d)
    print("deleted " + rest[0])
elif cmd == "destroy":
    state_file.unlink(missing_ok=True)
    print("destroyed")
else:
    sys.exit("fake thumbctl: unexpected " + " ".join(sys.argv[1:]))
"#;

/// An `aws` CLI stand-in whose `sts get-caller-identity` succeeds (and is logged).
const FAKE_AWS_OK: &str = r#"#!/bin/sh
echo "aws $*" >>"$FAKE_DIR/calls.log"
if [ "$1 $2" = "s3api get-bucket-notification-configuration" ]; then
  echo '{"QueueConfigurations": [{"Id": "theirs", "QueueArn": "arn:aws:sqs:eu-west-3:111111111111:theirs", "Events": ["s3:ObjectCreated:*"]}]}'
  exit 0
fi
printf '%s\tarn:aws:iam::%s:user/smoke\n' "${FAKE_ACCOUNT:-111111111111}" "${FAKE_ACCOUNT:-111111111111}"
"#;

struct Sandbox {
    _root: tempfile::TempDir,
    home: PathBuf,
    tmp: PathBuf,
    fake: PathBuf,
    bin: PathBuf,
}

fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let out = Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3 (the script needs it)");
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

fn write_exe(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

impl Sandbox {
    /// An empty HOME (no ~/.aws), a TMPDIR of its own, and a directory for fakes.
    fn new() -> Sandbox {
        let root = tempfile::tempdir().unwrap();
        let dir = |n: &str| {
            let p = root.path().join(n);
            std::fs::create_dir(&p).unwrap();
            p
        };
        let (home, tmp, fake, bin) = (dir("home"), dir("tmp"), dir("fake"), dir("bin"));
        Sandbox {
            _root: root,
            home,
            tmp,
            fake,
            bin,
        }
    }

    fn with_fakes(self, aws: bool) -> Sandbox {
        write_exe(&self.bin.join("thumbctl"), FAKE_THUMBCTL);
        // The interpreter itself rather than a version manager's shim: one start-up per JSON
        // step, and the shim's costs several times the interpreter's.
        std::os::unix::fs::symlink(python(), self.bin.join("python3")).unwrap();
        if aws {
            write_exe(&self.bin.join("aws"), FAKE_AWS_OK);
        }
        self
    }

    fn fake_thumbctl(&self) -> String {
        self.bin.join("thumbctl").display().to_string()
    }

    /// Runs the script with nothing of this process's environment but PATH (so no AWS_*
    /// variable, no profile, no credentials), instance metadata off, stdin not a terminal.
    fn run(&self, path: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(script());
        cmd.args(args)
            .env_clear()
            .env("PATH", path)
            .env("HOME", &self.home)
            .env("TMPDIR", &self.tmp)
            .env("FAKE_DIR", &self.fake)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run scripts/aws-smoke.sh")
    }

    /// PATH with the fakes first.
    fn path_with_fakes(&self) -> String {
        format!("{}:{}", self.bin.display(), std::env::var("PATH").unwrap())
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.fake.join("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// What the script left in its TMPDIR.
    fn leftovers(&self) -> Vec<String> {
        std::fs::read_dir(&self.tmp)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The command of each logged thumbctl call (`up`, `get`, ...), `aws` for the aws CLI.
fn commands(calls: &[String]) -> Vec<String> {
    calls
        .iter()
        .map(|c| {
            let words: Vec<&str> = c.split(' ').collect();
            if words[0] == "aws" {
                return "aws".to_owned();
            }
            let mut i = 0;
            while i < words.len() && words[i].starts_with("--") {
                i += 2;
            }
            let cmd = words[i];
            let extra = if c.contains("--dry-run") {
                " --dry-run"
            } else if c.contains("--orphans") {
                " --orphans"
            } else {
                ""
            };
            format!("{cmd}{extra}")
        })
        .collect()
}

#[test]
fn refuses_without_credentials() {
    // As a user would meet it: this machine's own PATH (with or without the aws CLI), the real
    // thumbctl, no credentials anywhere.
    let sb = Sandbox::new();
    let out = sb.run(
        &std::env::var("PATH").unwrap(),
        &["--yes"],
        &[("THUMBCTL_BIN", env!("CARGO_BIN_EXE_thumbctl"))],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stderr.contains("credentials") && stderr.contains("Nothing was created"),
        "{stderr}"
    );
    assert!(!stderr.contains("This creates REAL resources"), "{stderr}");
    assert!(!stderr.contains("building thumbctl"), "{stderr}");
    assert!(
        sb.leftovers().is_empty(),
        "left behind: {:?}",
        sb.leftovers()
    );
}

#[test]
fn refuses_without_credentials_and_without_the_aws_cli() {
    // PATH without any directory that holds an `aws`: the script's own look at the usual
    // places must refuse, before thumbctl is even run.
    let path: Vec<String> = std::env::var("PATH")
        .unwrap()
        .split(':')
        .filter(|d| !d.is_empty() && !Path::new(d).join("aws").exists())
        .map(str::to_owned)
        .collect();
    let path = path.join(":");
    assert!(
        path.split(':').any(|d| Path::new(d).join("bash").exists()),
        "no bash left on PATH once the aws CLI is left out: {path}"
    );
    let sb = Sandbox::new().with_fakes(false);
    let out = sb.run(&path, &["--yes"], &[("THUMBCTL_BIN", &sb.fake_thumbctl())]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no AWS credentials") && stderr.contains("AWS_EC2_METADATA_DISABLED"),
        "{stderr}"
    );
    assert!(sb.calls().is_empty(), "thumbctl was run: {:?}", sb.calls());
    assert!(
        sb.leftovers().is_empty(),
        "left behind: {:?}",
        sb.leftovers()
    );
}

#[test]
fn thumbctl_must_resolve_the_identity_too() {
    // The aws CLI is happy but thumbctl finds no credentials: still refused, nothing created.
    let sb = Sandbox::new().with_fakes(true);
    let out = sb.run(
        &sb.path_with_fakes(),
        &["--yes"],
        &[
            ("THUMBCTL_BIN", env!("CARGO_BIN_EXE_thumbctl")),
            ("AWS_REGION", "eu-west-3"),
        ],
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("thumbctl could not use your AWS credentials")
            && stderr.contains("Nothing was created"),
        "{stderr}"
    );
    assert!(!stderr.contains("This creates REAL resources"), "{stderr}");
    assert!(
        sb.leftovers().is_empty(),
        "left behind: {:?}",
        sb.leftovers()
    );
}

#[test]
fn refuses_an_emulator_endpoint() {
    for var in ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"] {
        let sb = Sandbox::new().with_fakes(true);
        let out = sb.run(
            &sb.path_with_fakes(),
            &["--yes"],
            &[
                ("THUMBCTL_BIN", &sb.fake_thumbctl()),
                (var, "http://127.0.0.1:5000"),
                ("AWS_ACCESS_KEY_ID", "test"),
                ("AWS_SECRET_ACCESS_KEY", "test"),
                ("AWS_REGION", "us-east-1"),
            ],
        );
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{var}: {stderr}");
        assert!(
            stderr.contains(&format!("{var}=http://127.0.0.1:5000")) && stderr.contains("emulator"),
            "{var}: {stderr}"
        );
        assert!(
            sb.calls().is_empty(),
            "{var}: something was run: {:?}",
            sb.calls()
        );
        assert!(
            sb.leftovers().is_empty(),
            "left behind: {:?}",
            sb.leftovers()
        );
    }
}

#[test]
fn refuses_an_emulator_account() {
    let sb = Sandbox::new().with_fakes(true);
    let out = sb.run(
        &sb.path_with_fakes(),
        &["--yes"],
        &[
            ("THUMBCTL_BIN", &sb.fake_thumbctl()),
            ("FAKE_ACCOUNT", "123456789012"),
        ],
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("emulator's default account"), "{stderr}");
    assert_eq!(commands(&sb.calls()), ["aws", "up --dry-run"]);
}

#[test]
fn names_account_and_region_and_asks_before_creating_anything() {
    let sb = Sandbox::new().with_fakes(true);
    let out = sb.run(
        &sb.path_with_fakes(),
        &[],
        &[("THUMBCTL_BIN", &sb.fake_thumbctl())],
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("AWS account : 111111111111")
            && stderr.contains("region      : eu-west-3")
            && stderr.contains("pass --yes"),
        "{stderr}"
    );
    // Only the identity look-ups ran: no `up` that creates.
    assert_eq!(commands(&sb.calls()), ["aws", "up --dry-run"]);
    assert!(
        sb.leftovers().is_empty(),
        "left behind: {:?}",
        sb.leftovers()
    );
}

#[test]
fn unknown_option_is_a_usage_error() {
    let sb = Sandbox::new();
    let out = sb.run(&std::env::var("PATH").unwrap(), &["--bogus"], &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("unknown option `--bogus`"), "{stderr}");
}

/// The value column of the table's row `name`.
fn row<'a>(table: &'a str, name: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.starts_with(&format!("| {name} ")))
        .unwrap_or_else(|| panic!("no row `{name}` in:\n{table}"))
        .split('|')
        .nth(2)
        .unwrap()
        .trim()
}

fn seconds(v: &str) -> f64 {
    v.trim_end_matches(" s").parse().unwrap()
}

#[test]
fn runs_the_whole_sequence_and_prints_the_table() {
    let sb = Sandbox::new().with_fakes(true);
    let out = sb.run(
        &sb.path_with_fakes(),
        &["--yes"],
        &[("THUMBCTL_BIN", &sb.fake_thumbctl())],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let samples = std::fs::read_dir(repo().join("samples")).unwrap().count();
    let mut expected = vec!["aws", "up --dry-run", "up", "status", "upload", "list"];
    expected.extend(std::iter::repeat_n("get", samples));
    expected.extend(["delete", "get", "list", "destroy", "status --orphans"]);
    assert_eq!(commands(&sb.calls()), expected);
    let calls = sb.calls();
    let upload = calls.iter().find(|c| c.contains(" upload ")).unwrap();
    assert!(
        upload.contains("upload samples --prefix smoke/ --wait"),
        "{upload}"
    );
    // One stack, smoke-<random>, in the region thumbctl named, for every call after the look-up.
    let stack = calls[1].split(' ').nth(1).unwrap();
    assert!(stack.starts_with("smoke-") && stack.len() == 14, "{stack}");
    assert!(
        calls[2..].iter().all(
            |c| c.starts_with(&format!("--stack {stack} ")) && c.contains("--region eu-west-3")
        ),
        "{calls:?}"
    );

    // The fake's items were made 1..=n s after the upload started, in 500 ms each, 2 GB.
    let max = seconds(row(&stdout, "upload -> thumbnails, max"));
    let median = seconds(row(&stdout, "upload -> thumbnails, median"));
    assert!(
        (samples as f64..samples as f64 + 30.0).contains(&max),
        "{stdout}"
    );
    assert!((1.0..=max).contains(&median), "{stdout}");
    assert_eq!(row(&stdout, "  function time per image"), "500 / 500 ms");
    assert_eq!(row(&stdout, "cost: CodeBuild"), "$0.0100");
    assert!(
        stdout.contains(&format!("handler alone {:.3})", samples as f64)),
        "{stdout}"
    );
    for name in [
        "up, wall time",
        "destroy, wall time",
        "cost: total, before free tier",
    ] {
        row(&stdout, name);
    }
    assert!(stderr.contains("smoke test passed"), "{stderr}");
    assert!(
        sb.leftovers().is_empty(),
        "left behind: {:?}",
        sb.leftovers()
    );
}

/// `--cdn` and `--source-bucket=`: both reach `up` (the adopted bucket under the stack's own
/// prefix, where the uploads then go), the deleted thumbnail's link is polled until it fails,
/// and the bucket's own notifications are read before `up` and compared after `destroy`.
#[test]
fn the_cdn_and_an_adopted_bucket_are_smoke_tested_too() {
    let sb = Sandbox::new().with_fakes(true);
    let out = sb.run(
        &sb.path_with_fakes(),
        &["--yes", "--cdn", "--source-bucket=their-photos"],
        &[
            ("THUMBCTL_BIN", &sb.fake_thumbctl()),
            ("SMOKE_CDN_WAIT", "20"),
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let calls = sb.calls();
    let up = calls
        .iter()
        .find(|c| c.contains(" up ") && !c.contains("--dry-run"))
        .expect("up was called");
    let stack = up.split(' ').nth(1).unwrap();
    assert!(
        up.contains(&format!(
            " up --cdn --source-bucket their-photos --source-prefix {stack}/ --output json"
        )),
        "{up}"
    );
    let reads: Vec<usize> = calls
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            c.starts_with("aws s3api get-bucket-notification-configuration --bucket their-photos")
        })
        .map(|(i, _)| i)
        .collect();
    let at = |cmd: &str| calls.iter().position(|c| c.contains(cmd)).unwrap();
    assert_eq!(reads.len(), 2, "{calls:?}");
    assert!(
        reads[0] < at(" up --cdn") && reads[1] > at(" destroy"),
        "{calls:?}"
    );
    assert!(
        stderr.contains("the CDN stopped serving the deleted thumbnail"),
        "{stderr}"
    );
    assert!(
        stderr.contains("their-photos: its own notification configuration is as it was"),
        "{stderr}"
    );
    assert!(stderr.contains("smoke test passed"), "{stderr}");
}

#[test]
fn a_failed_check_still_destroys_and_names_the_state_dir() {
    let sb = Sandbox::new().with_fakes(true);
    let out = sb.run(
        &sb.path_with_fakes(),
        &["--yes"],
        &[
            ("THUMBCTL_BIN", &sb.fake_thumbctl()),
            ("FAKE_STATUS", "failed"),
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("FAILED: upload result"), "{stderr}");
    assert_eq!(
        commands(&sb.calls()),
        [
            "aws",
            "up --dry-run",
            "up",
            "status",
            "upload",
            "destroy",
            "status --orphans"
        ]
    );
    let kept = stderr
        .lines()
        .find_map(|l| l.strip_prefix("aws-smoke: state dir kept: "))
        .unwrap_or_else(|| panic!("no state dir named:\n{stderr}"));
    let state_dir = kept.split_whitespace().next().unwrap();
    assert!(
        state_dir.starts_with(&sb.tmp.display().to_string()),
        "{state_dir}"
    );
    assert!(Path::new(state_dir).is_dir(), "{state_dir} is gone");
    assert!(
        !stdout.contains("| measure"),
        "a table after a failure:\n{stdout}"
    );
}

#[test]
fn a_signal_during_up_still_destroys() {
    let sb = Sandbox::new().with_fakes(true);
    let mut cmd = Command::new(script());
    cmd.arg("--yes")
        .env_clear()
        .env("PATH", sb.path_with_fakes())
        .env("HOME", &sb.home)
        .env("TMPDIR", &sb.tmp)
        .env("FAKE_DIR", &sb.fake)
        .env("FAKE_UP_SECONDS", "2")
        .env("THUMBCTL_BIN", sb.fake_thumbctl())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !sb.calls().iter().any(|c| c.ends_with(" up --output json")) {
        assert!(std::time::Instant::now() < deadline, "up never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SIGTERM to the script alone (SIGINT may be ignored when tests run in the background):
    // it lets `up` finish, then must destroy what `up` made.
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(143), "{stdout}\n{stderr}");
    assert_eq!(
        commands(&sb.calls()),
        ["aws", "up --dry-run", "up", "destroy", "status --orphans"]
    );
    assert!(
        stderr.contains("destroying stack smoke-") && stderr.contains("state dir kept: "),
        "{stderr}"
    );
}

#[test]
fn script_is_bash_n_and_shellcheck_clean() {
    let out = Command::new("bash")
        .arg("-n")
        .arg(script())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out).1);
    // shellcheck is a test prerequisite (scripts/prereqs.sh installs it): without it this
    // test fails rather than check less.
    let out = Command::new("shellcheck")
        .arg(script())
        .output()
        .expect("shellcheck (scripts/test.sh installs it)");
    assert!(out.status.success(), "shellcheck:\n{}", text(&out).0);
}

/// Every key path of a JSON document, with the type found there (`[]` stands for an array's
/// elements), so two documents can be compared by shape rather than by value.
fn shape(
    v: &serde_json::Value,
    at: &str,
    out: &mut std::collections::BTreeSet<(String, &'static str)>,
) {
    use serde_json::Value;
    let kind = match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    out.insert((at.to_owned(), kind));
    match v {
        Value::Array(items) => items.iter().for_each(|i| shape(i, &format!("{at}[]"), out)),
        Value::Object(m) => m
            .iter()
            .for_each(|(k, i)| shape(i, &format!("{at}.{k}"), out)),
        _ => {}
    }
}

/// What the fake prints must be what thumbctl prints: every key path (and its type) of the
/// fake's JSON must exist in the real thumbctl's JSON for the same command, run here against
/// moto. A field thumbctl renames or drops, and that the script reads through the fake, fails
/// here instead of on a real account. (The fake's values, times and statuses are its own.)
#[tokio::test(flavor = "multi_thread")]
async fn the_fake_prints_the_json_that_thumbctl_prints() {
    use common::*;
    use std::collections::BTreeSet;

    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("smokeshape");
    let samples = dir.path().join("samples");
    std::fs::create_dir(&samples).unwrap();
    for f in std::fs::read_dir(repo().join("samples")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), samples.join(f.file_name())).unwrap();
    }
    let sample_dir = samples.to_str().unwrap();

    let json = |out: Output| -> serde_json::Value {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("JSON on stdout")
    };
    let real = |args: &[&str]| json(ok(dir.path(), &stack, args));

    // The fake, called as the script calls it (tc_ adds --stack, --state-dir and --region).
    let sb = Sandbox::new().with_fakes(false);
    let fake_state = sb.tmp.join("state");
    let fake = |args: &[&str]| {
        let out = Command::new(sb.bin.join("python3"))
            .arg(sb.bin.join("thumbctl"))
            .args(["--stack", "smoke-shape", "--state-dir"])
            .arg(&fake_state)
            .args(["--region", "eu-west-3"])
            .args(args)
            .env("FAKE_DIR", &sb.fake)
            .output()
            .expect("run the fake thumbctl");
        json(out)
    };

    let mut compared = Vec::new();
    let mut compare = |what: &str, fake: serde_json::Value, real: serde_json::Value| {
        let (mut f, mut r) = (BTreeSet::new(), BTreeSet::new());
        shape(&fake, "", &mut f);
        shape(&real, "", &mut r);
        let missing: Vec<_> = f.difference(&r).collect();
        assert!(
            missing.is_empty(),
            "`{what}`: the fake prints {missing:?}, which thumbctl does not.\nfake: {fake}\nthumbctl: {real}"
        );
        compared.push(what.to_owned());
    };

    compare(
        "up --dry-run",
        fake(&["up", "--dry-run", "--output", "json"]),
        real(&["up", "--dry-run", "--image-uri", IMAGE, "--output", "json"]),
    );
    compare(
        "up",
        fake(&["up", "--output", "json"]),
        real(&["up", "--image-uri", IMAGE, "--output", "json"]),
    );
    compare(
        "status",
        fake(&["status", "--output", "json"]),
        real(&["status", "--output", "json"]),
    );
    // upload --wait: moto runs no function, so the function's own handler is run here on each
    // key while the waiting upload polls, as in tests/workflow.rs.
    let waiter = thumbctl_cmd(
        dir.path(),
        &stack,
        &[
            "upload",
            sample_dir,
            "--prefix",
            "smoke/",
            "--wait",
            "--timeout",
            "60s",
            "--output",
            "json",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let keys: Vec<String> = std::fs::read_dir(&samples)
        .unwrap()
        .map(|f| format!("smoke/{}", f.unwrap().file_name().to_string_lossy()))
        .collect();
    let c = clients().await;
    let src = resource_name(dir.path(), &stack, "source-bucket");
    for key in &keys {
        wait_for_object(&c, &src, key).await;
        ok(dir.path(), &stack, &["invoke-local", key]);
    }
    let uploaded = json(waiter.wait_with_output().unwrap());
    compare(
        "upload --wait",
        fake(&[
            "upload", sample_dir, "--prefix", "smoke/", "--wait", "--output", "json",
        ]),
        uploaded,
    );
    compare(
        "list",
        fake(&["list", "--limit", "1000", "--output", "json"]),
        real(&["list", "--limit", "1000", "--output", "json"]),
    );
    compare(
        "get",
        fake(&["get", &keys[0], "--output", "json"]),
        real(&["get", &keys[0], "--output", "json"]),
    );
    ok(dir.path(), &stack, &["destroy", "--yes"]);
    compare(
        "status --orphans",
        fake(&["status", "--orphans", "--output", "json"]),
        real(&["status", "--orphans", "--output", "json"]),
    );
    assert_eq!(compared.len(), 7);
    assert_eq!(leftovers(&c, &stack).await, Vec::<String>::new());
}
