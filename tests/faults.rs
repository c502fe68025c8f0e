//! Faults on the wire: `up` and `destroy` through `scripts/fault_proxy.py`, which answers a
//! fraction of calls with each protocol's real throttling error, HTTP 500/503 or a reset.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::*;

struct Proxy {
    child: Child,
    url: String,
}

impl Proxy {
    fn start(rate: f64, seed: u32, kinds: &str) -> Proxy {
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
            .args([
                "--rate",
                &rate.to_string(),
                "--seed",
                &seed.to_string(),
                "--kinds",
                kinds,
            ])
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

    /// Stops the proxy and returns its counts line (`requests=N throttle=N ...`).
    fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let mut out = String::new();
        if let Some(mut o) = self.child.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        let _ = self.child.wait();
        out.lines().last().unwrap_or_default().to_owned()
    }
}

/// A failed assertion must not leave the proxy running (it holds the test's output pipe).
impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn up_and_destroy_survive_ten_percent_faults() {
    let c = clients().await;
    for seed in 1..=3 {
        let proxy = Proxy::start(0.10, seed, "throttle,500,503,reset");
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
        eprintln!("seed {seed}: {counts}");
        assert!(!counts.contains("requests=0"), "{counts}");
        assert!(leftovers(&c, &stack).await.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn when_retries_run_out_the_error_names_the_call_and_a_rerun_finishes() {
    let c = clients().await;
    // 35% throttling with two attempts per call: about one call in eight runs out of retries.
    let proxy = Proxy::start(0.35, 7, "throttle");
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("throttled");
    let mut failures = 0;
    let mut finished = false;
    for _ in 0..40 {
        let out = proxy.run_with_attempts(dir.path(), &stack, &["up", "--image-uri", IMAGE], 2);
        if out.status.success() {
            finished = true;
            break;
        }
        failures += 1;
        let err = stderr(&out);
        // Names the call and resource, the AWS code, and what to do.
        assert!(err.contains("failed (") && err.contains("rerun"), "{err}");
        // A HEAD answer has no body, so S3's throttling arrives as a bare 503: then the
        // status is the code.
        assert!(
            [
                "Throttling",
                "SlowDown",
                "TooManyRequests",
                "Rate exceeded",
                "(HTTP 503)"
            ]
            .iter()
            .any(|c| err.contains(c)),
            "{err}"
        );
        assert!(err.contains("hint: AWS kept throttling"), "{err}");
        // Each failed call said once, with its hint, without the SDK's debug dump.
        let report = &err[err.find("thumbctl: error:").unwrap_or(0)..];
        assert_eq!(
            report.matches("hint:").count(),
            report.matches(" failed (").count(),
            "{err}"
        );
        assert!(!err.contains("ServiceError {"), "{err}");
        // The state stays valid whatever was interrupted.
        if dir.path().join(format!("{stack}.json")).exists() {
            let st = state_json(dir.path(), &stack);
            assert_eq!(st["stack"], stack);
        }
    }
    let counts = proxy.stop();
    eprintln!("throttled up: {failures} failed runs before success; {counts}");
    assert!(
        failures > 0,
        "the fault rate was meant to exhaust retries at least once"
    );
    assert!(finished, "reruns must converge");
    ok(dir.path(), &stack, &["destroy", "--yes"]);
    assert!(leftovers(&c, &stack).await.is_empty());
}
