//! `scripts/aws_proxy.py` in front of the tests' moto: AWS's behaviour where moto is kinder
//! (see the script's header for the behaviours), switched on by name.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use super::{endpoint, stderr, thumbctl_cmd};

pub struct AwsProxy {
    child: Child,
    pub url: String,
}

impl AwsProxy {
    /// The proxy with `behave` (comma-separated names) switched on. `settle` is how many
    /// seconds a behaviour holds for each resource: a function Pending, a table CREATING, a
    /// distribution InProgress, and (the proxy's `--propagation` default) a role or a function
    /// policy not yet seen by other services.
    pub fn start(behave: &str, settle: f64) -> AwsProxy {
        let port = super::free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/aws_proxy.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--target", endpoint().trim_start_matches("http://")])
            .args(["--behave", behave, "--settle", &settle.to_string()])
            // The keys thumbctl signs with in the tests (aws_env), whatever this shell holds.
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .stdout(Stdio::piped())
            .spawn()
            .expect("start aws_proxy.py");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().expect("proxy stdout"))
            .read_line(&mut line)
            .expect("proxy says ready");
        assert_eq!(line.trim(), "ready");
        AwsProxy {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    pub fn cmd(&self, dir: &Path, stack: &str, args: &[&str]) -> Command {
        let mut cmd = thumbctl_cmd(dir, stack, args);
        cmd.env("AWS_ENDPOINT_URL", &self.url);
        cmd
    }

    pub fn ok(&self, dir: &Path, stack: &str, args: &[&str]) -> Output {
        let out = self.cmd(dir, stack, args).output().expect("run thumbctl");
        assert!(
            out.status.success(),
            "thumbctl {args:?} through the AWS-behaviour proxy failed ({:?}):\nstderr: {}",
            out.status.code(),
            stderr(&out)
        );
        out
    }

    async fn get_json(&self, path: &str) -> serde_json::Value {
        let text = reqwest::get(format!("{}{path}", self.url))
            .await
            .expect("proxy answers")
            .text()
            .await
            .expect("proxy body");
        serde_json::from_str(&text).expect("proxy answers JSON")
    }

    /// How often each behaviour fired so far.
    pub async fn counts(&self) -> serde_json::Value {
        self.get_json("/__counts").await
    }

    /// How often `name` (or any `name:detail`) fired.
    pub async fn fired(&self, name: &str) -> u64 {
        let counts = self.counts().await;
        counts
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| k.as_str() == name || k.starts_with(&format!("{name}:")))
            .filter_map(|(_, v)| v.as_u64())
            .sum()
    }

    /// The asynchronous invocations the async-invoke behaviour accepted.
    pub async fn invocations(&self) -> Vec<serde_json::Value> {
        match self.get_json("/__invocations").await {
            serde_json::Value::Array(v) => v,
            other => panic!("invocations are a list: {other}"),
        }
    }

    /// The S3 Batch Operations jobs the batch-operations behaviour created, oldest first: each
    /// with `id`, `account`, `request` (the CreateJob request as JSON), `tasks` (the Lambda
    /// event of each manifest line), `polls` (the status each DescribeJob was answered) and
    /// `status` (now).
    pub async fn batch_jobs(&self) -> Vec<serde_json::Value> {
        match self.get_json("/__batch-jobs").await {
            serde_json::Value::Array(v) => v,
            other => panic!("batch jobs are a list: {other}"),
        }
    }

    /// Hands the function's responses to a job's task events back, as Batch Operations reads
    /// them from its invocations: the job then completes with their counts.
    pub async fn answer_batch_job(&self, job: &str, responses: &[serde_json::Value]) {
        let status = reqwest::Client::new()
            .post(format!("{}/__batch-jobs/{job}/results", self.url))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(responses).expect("responses as JSON"))
            .send()
            .await
            .expect("proxy answers")
            .status();
        assert!(status.is_success(), "results for batch job {job}: {status}");
    }
}

impl Drop for AwsProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
