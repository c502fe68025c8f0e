//! Shared fixtures for the integration tests: one moto server per test binary (or the one
//! `scripts/test.sh` started), the `thumbctl` binary, and SDK clients to check what moto holds.
#![allow(dead_code)]

pub mod aws_proxy;
pub mod moto;
pub mod registry;

pub use moto::{Moto, free_port};

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub const ACCOUNT: &str = "123456789012";
pub const IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/thumbs:test";

/// The emulator's URL: `THUMBCTL_TEST_ENDPOINT`, or a moto server started for this process.
pub fn endpoint() -> &'static str {
    static SHARED: OnceLock<(String, Option<Moto>)> = OnceLock::new();
    &SHARED
        .get_or_init(|| match std::env::var("THUMBCTL_TEST_ENDPOINT") {
            Ok(url) if !url.is_empty() => (url, None),
            _ => {
                let moto = Moto::start(&[("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")]);
                (moto.url.clone(), Some(moto))
            }
        })
        .0
}

/// A unique stack name per test, so tests can share one moto server.
pub fn stack_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let pid = std::process::id() % 100_000;
    format!("{prefix}-{pid}-{n}")
}

/// The environment every thumbctl run and SDK client in the tests uses.
pub fn aws_env() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint().to_owned()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ]
}

pub fn thumbctl_cmd(state_dir: &Path, stack: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_thumbctl"));
    cmd.arg("--stack")
        .arg(stack)
        .arg("--state-dir")
        .arg(state_dir)
        .args(args);
    cmd.env_remove("AWS_PROFILE")
        .env_remove("FAILPOINTS")
        .envs(aws_env())
        .stdin(Stdio::null());
    cmd
}

/// [`thumbctl_cmd`] against another moto (a test's own [`Moto`]).
pub fn thumbctl_at(url: &str, state_dir: &Path, stack: &str, args: &[&str]) -> Command {
    let mut cmd = thumbctl_cmd(state_dir, stack, args);
    cmd.env("AWS_ENDPOINT_URL", url);
    cmd
}

pub fn thumbctl(state_dir: &Path, stack: &str, args: &[&str]) -> Output {
    thumbctl_cmd(state_dir, stack, args)
        .output()
        .expect("run thumbctl")
}

/// Runs thumbctl and insists it succeeded, showing its output if not.
pub fn ok(state_dir: &Path, stack: &str, args: &[&str]) -> Output {
    assert_ok(thumbctl(state_dir, stack, args))
}

/// Insists that a thumbctl run succeeded, showing its output if not.
pub fn assert_ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "thumbctl failed ({:?}):\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn state_json(state_dir: &Path, stack: &str) -> serde_json::Value {
    let text =
        std::fs::read_to_string(state_dir.join(format!("{stack}.json"))).expect("state file");
    serde_json::from_str(&text).expect("state file is JSON")
}

/// Waits until `key` is in `bucket` (an upload running in another process put it there),
/// polling moto for up to 30 s; fails the test if it never comes. A wait on the object
/// itself, not on a time window.
pub async fn wait_for_object(c: &Clients, bucket: &str, key: &str) {
    for _ in 0..300 {
        if c.s3
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{key} never arrived in {bucket}");
}

/// The name the state records for resource `id` (`source-bucket`, `function`, ...).
pub fn resource_name(state_dir: &Path, stack: &str, id: &str) -> String {
    state_json(state_dir, stack)["resources"][id]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("the state of {stack} records no {id}"))
        .to_owned()
}

/// A command's stdout as the one JSON document `--output json` promises.
pub fn json_of(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            stderr(out)
        )
    })
}

pub async fn sdk() -> aws_config::SdkConfig {
    // The same variables thumbctl gets, set explicitly on the loader rather than in the
    // process environment, which other tests' threads share.
    let creds = aws_sdk_s3::config::Credentials::new("test", "test", None, None, "tests");
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint())
        .credentials_provider(creds)
        .load()
        .await
}

pub struct Clients {
    pub s3: aws_sdk_s3::Client,
    pub iam: aws_sdk_iam::Client,
    pub ecr: aws_sdk_ecr::Client,
    pub codebuild: aws_sdk_codebuild::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sns: aws_sdk_sns::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub cloudfront: aws_sdk_cloudfront::Client,
}

pub async fn clients() -> Clients {
    clients_at(endpoint()).await
}

/// The tests' clients, pointed at another moto (a test's own [`Moto`]).
pub async fn clients_at(url: &str) -> Clients {
    let c = sdk().await.into_builder().endpoint_url(url).build();
    Clients {
        s3: aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&c)
                .force_path_style(true)
                .build(),
        ),
        iam: aws_sdk_iam::Client::new(&c),
        ecr: aws_sdk_ecr::Client::new(&c),
        codebuild: aws_sdk_codebuild::Client::new(&c),
        lambda: aws_sdk_lambda::Client::new(&c),
        dynamodb: aws_sdk_dynamodb::Client::new(&c),
        sns: aws_sdk_sns::Client::new(&c),
        logs: aws_sdk_cloudwatchlogs::Client::new(&c),
        sqs: aws_sdk_sqs::Client::new(&c),
        cloudfront: aws_sdk_cloudfront::Client::new(&c),
    }
}

/// Every resource in moto, in any service `up` uses, whose name carries the stack's prefix.
/// Empty means nothing leaked.
///
/// Deliberately by name, not by the `thumbctl:stack` tag that `status --orphans` requires:
/// a leak check must also catch what a bug left untagged. Every listing is read to its last
/// page (a leak on page two is still a leak), and the CloudFront kinds, which have no name,
/// are matched by what names them: the distribution's comment and the OAC's name, both of
/// which carry the stack's `<stack>-<suffix>-cdn`.
pub async fn leftovers(c: &Clients, stack: &str) -> Vec<String> {
    let prefix = format!("{stack}-");
    let mut left = Vec::new();
    // ListBuckets pages only when asked to (max-buckets); without it S3 answers every bucket.
    let buckets = c.s3.list_buckets().send().await.expect("list buckets");
    for b in buckets.buckets() {
        if b.name().is_some_and(|n| n.starts_with(&prefix)) {
            left.push(format!("bucket {}", b.name().unwrap_or_default()));
        }
    }
    // Function, batch and CodeBuild roles all carry the prefix.
    let roles: Vec<_> = c
        .iam
        .list_roles()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .expect("list roles");
    for r in &roles {
        if r.role_name().starts_with(&prefix) {
            left.push(format!("role {}", r.role_name()));
        }
    }
    let repos: Vec<_> = c
        .ecr
        .describe_repositories()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .expect("list repositories");
    for r in &repos {
        if r.repository_name().is_some_and(|n| n.starts_with(&prefix)) {
            left.push(format!("repository {:?}", r.repository_name()));
        }
    }
    let projects: Vec<_> = c
        .codebuild
        .list_projects()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .expect("list projects");
    for p in &projects {
        if p.starts_with(&prefix) {
            left.push(format!("project {p}"));
        }
    }
    let tables: Vec<_> = c
        .dynamodb
        .list_tables()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .expect("list tables");
    for t in &tables {
        if t.starts_with(&prefix) {
            left.push(format!("table {t}"));
        }
    }
    let topic_named = |arn: Option<&str>| {
        arn.is_some_and(|a| a.rsplit(':').next().is_some_and(|n| n.starts_with(&prefix)))
    };
    let topics: Vec<_> = c
        .sns
        .list_topics()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .expect("list topics");
    for t in &topics {
        if topic_named(t.topic_arn()) {
            left.push(format!("topic {:?}", t.topic_arn()));
        }
    }
    for group_prefix in [
        format!("/aws/lambda/{prefix}"),
        format!("/aws/codebuild/{prefix}"),
    ] {
        let groups: Vec<_> = c
            .logs
            .describe_log_groups()
            .log_group_name_prefix(&group_prefix)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .expect("list log groups");
        for g in &groups {
            left.push(format!("log group {:?}", g.log_group_name()));
        }
    }
    // A subscription outlives its topic if nothing removes it: count it by its topic's name.
    let subs: Vec<_> = c
        .sns
        .list_subscriptions()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .expect("list subscriptions");
    for s in &subs {
        if topic_named(s.topic_arn()) {
            left.push(format!("subscription {:?}", s.subscription_arn()));
        }
    }
    let queues: Vec<_> = c
        .sqs
        .list_queues()
        .queue_name_prefix(&prefix)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .expect("list queues");
    for q in &queues {
        left.push(format!("queue {q}"));
    }
    let functions: Vec<_> = c
        .lambda
        .list_functions()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .expect("list functions");
    for f in &functions {
        if f.function_name().is_some_and(|n| n.starts_with(&prefix)) {
            left.push(format!("function {:?}", f.function_name()));
        }
    }
    left.extend(cdn_leftovers(&c.cloudfront, stack).await);
    left
}

/// The stack's CloudFront distributions (by comment) and origin access controls (by name),
/// every page. Both carry the name thumbctl gives them, `<stack>-<suffix>-cdn` (the suffix
/// being the stack's eight random letters and digits); the comment is the one
/// `Plan::cdn_comment` writes.
pub async fn cdn_leftovers(cf: &aws_sdk_cloudfront::Client, stack: &str) -> Vec<String> {
    let ours = |name: &str| {
        name.strip_prefix(&format!("{stack}-"))
            .and_then(|rest| rest.strip_suffix("-cdn"))
            .is_some_and(|suffix| {
                suffix.len() == 8 && suffix.chars().all(|c| c.is_ascii_alphanumeric())
            })
    };
    let mut left = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = cf
            .list_distributions()
            .set_marker(marker.clone())
            .send()
            .await
            .expect("list distributions");
        let Some(list) = page.distribution_list() else {
            break;
        };
        for d in list.items() {
            let comment = d.comment();
            if comment.starts_with(&format!("thumbctl stack {stack}:"))
                || comment.rsplit(['(', ')']).any(ours)
            {
                left.push(format!("distribution {} ({comment})", d.id()));
            }
        }
        match list.next_marker() {
            Some(m) if list.is_truncated() && !m.is_empty() => marker = Some(m.to_owned()),
            _ => break,
        }
    }
    let mut marker: Option<String> = None;
    loop {
        let page = cf
            .list_origin_access_controls()
            .set_marker(marker.clone())
            .send()
            .await
            .expect("list origin access controls");
        let Some(list) = page.origin_access_control_list() else {
            break;
        };
        for o in list.items() {
            if ours(o.name()) {
                left.push(format!("origin access control {} ({})", o.id(), o.name()));
            }
        }
        match list.next_marker() {
            Some(m) if list.is_truncated() && !m.is_empty() => marker = Some(m.to_owned()),
            _ => break,
        }
    }
    left
}
