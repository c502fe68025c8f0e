//! The README's "Permissions" policy (`thumbctl permissions`) is enough, and each action in it
//! is needed: proved on a moto server of its own that enforces IAM (its authentication mode),
//! with a user that holds exactly that policy.
//!
//! moto checks actions for every service, but resources only for S3 (bucket and object ARNs)
//! and for IAM calls on roles that already exist; elsewhere it authorises against `*`, which
//! no name-scoped statement matches. So the S3 statements are used exactly as printed, and the
//! others with their resources widened to `*` (their scoping is not proved here; the README
//! says so). Every action moto cannot show to be needed is listed below, with why, and the
//! test fails if that list is wrong in either direction.
//!
//! moto's signature check rebuilds each request the way botocore would and so rejects some of
//! the Rust SDK's correctly signed requests (form bodies it re-encodes differently, empty
//! bodies it replaces by its parsed parameters). `scripts/resign_proxy.py`, which knows the
//! test users' secrets, re-encodes those requests as botocore would and signs them again with
//! the same key; who calls, and so which policy moto applies, does not change.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;

use common::*;
use serde_json::Value;

/// Actions whose removal no command run here can reveal, and why.
const NOT_PROVABLE_HERE: &[(&str, &str)] = &[
    (
        "lambda:InvokeFunction",
        "reprocess invokes the function; moto runs none (the story uses --local)",
    ),
    ("s3:CreateJob", "moto has no S3 Batch Operations job API"),
    ("s3:DescribeJob", "moto has no S3 Batch Operations job API"),
    (
        "sqs:DeleteMessage",
        "only when a failure record is replayed; Lambda never sends one here",
    ),
    (
        "sqs:GetQueueUrl",
        "only when the state lacks the queue's URL (a crash between its create and record)",
    ),
    (
        "sqs:TagQueue",
        "moto does not check tag-on-create permissions",
    ),
    (
        "s3:GetEncryptionConfiguration",
        "only when adopting a bucket (up --source-bucket); the story makes its own",
    ),
    (
        "s3:GetBucketPublicAccessBlock",
        "moto does not authorise GetPublicAccessBlock (status reads it for drift)",
    ),
    // moto does not check PassRole when a role is handed to Lambda or CodeBuild.
    ("iam:PassRole", "moto does not check PassRole"),
    (
        "iam:ListRolePolicies",
        "only when a role still has policies at delete (DeleteConflict)",
    ),
    (
        "iam:DetachRolePolicy",
        "only when someone attached a managed policy",
    ),
    (
        "iam:ListAttachedRolePolicies",
        "only when someone attached a managed policy",
    ),
    (
        "iam:TagRole",
        "moto does not check tag-on-create permissions",
    ),
    (
        "ecr:TagResource",
        "moto does not check tag-on-create permissions",
    ),
    (
        "dynamodb:TagResource",
        "moto does not check tag-on-create permissions",
    ),
    (
        "sns:TagResource",
        "moto does not check tag-on-create permissions",
    ),
    (
        "logs:TagResource",
        "moto does not check tag-on-create permissions",
    ),
    (
        "lambda:TagResource",
        "moto does not check tag-on-create permissions",
    ),
    // The image build and push: moto runs no build and serves no registry.
    ("codebuild:StartBuild", "build-image only"),
    ("codebuild:StopBuild", "build-image only"),
    ("codebuild:BatchGetBuilds", "build-image only"),
    (
        "codebuild:UpdateProject",
        "only when an existing project drifted",
    ),
    ("logs:GetLogEvents", "build-image only"),
    ("ecr:GetAuthorizationToken", "build-image only"),
    ("ecr:DescribeImages", "build-image only"),
    (
        "ecr:BatchCheckLayerAvailability",
        "registry push: moto serves no registry",
    ),
    (
        "ecr:InitiateLayerUpload",
        "registry push: moto serves no registry",
    ),
    (
        "ecr:UploadLayerPart",
        "registry push: moto serves no registry",
    ),
    (
        "ecr:CompleteLayerUpload",
        "registry push: moto serves no registry",
    ),
    ("ecr:PutImage", "registry push: moto serves no registry"),
    (
        "ecr:BatchGetImage",
        "Lambda checks it on CreateFunction; moto does not",
    ),
    (
        "ecr:GetDownloadUrlForLayer",
        "Lambda checks it on CreateFunction; moto does not",
    ),
    (
        "ecr:GetRepositoryPolicy",
        "Lambda checks it on CreateFunction; moto does not",
    ),
    ("lambda:UpdateFunctionCode", "only when the image changes"),
    (
        "lambda:UpdateFunctionConfiguration",
        "only when settings change",
    ),
    ("sns:Subscribe", "only with --notify-email/--notify-url"),
    ("sns:Unsubscribe", "only with --notify-email/--notify-url"),
    (
        "sns:GetSubscriptionAttributes",
        "only with --notify-email/--notify-url",
    ),
    (
        "s3:AbortMultipartUpload",
        "only for uploads over 16 MiB or unfinished ones",
    ),
    ("s3:DeleteObjectVersion", "the buckets are not versioned"),
    // moto's own names for S3 calls differ from AWS's here, so it never asks for these.
    (
        "s3:PutBucketPublicAccessBlock",
        "moto authorises PUT ?publicAccessBlock as s3:CreateBucket",
    ),
    (
        "s3:PutEncryptionConfiguration",
        "moto authorises PUT ?encryption as s3:CreateBucket",
    ),
    (
        "s3:PutBucketPolicy",
        "the TLS-only policy is written only on HTTPS endpoints",
    ),
    ("s3:GetBucketPolicy", ONLY_WITH_CDN),
    ("s3:DeleteBucketPolicy", ONLY_WITH_CDN),
    ("cloudfront:CreateDistribution", ONLY_WITH_CDN),
    ("cloudfront:TagResource", ONLY_WITH_CDN),
    (
        "cloudfront:ListTagsForResource",
        "status --orphans reads tags only of a distribution with the stack's comment, which the story never makes",
    ),
    ("cloudfront:GetDistribution", ONLY_WITH_CDN),
    ("cloudfront:GetDistributionConfig", ONLY_WITH_CDN),
    ("cloudfront:UpdateDistribution", ONLY_WITH_CDN),
    ("cloudfront:DeleteDistribution", ONLY_WITH_CDN),
    ("cloudfront:CreateOriginAccessControl", ONLY_WITH_CDN),
    ("cloudfront:GetOriginAccessControl", ONLY_WITH_CDN),
    ("cloudfront:DeleteOriginAccessControl", ONLY_WITH_CDN),
    ("cloudfront:CreateInvalidation", ONLY_WITH_CDN),
    ("cloudfront:ListDistributions", CLOUDFRONT_UNENFORCED),
    ("cloudfront:ListOriginAccessControls", CLOUDFRONT_UNENFORCED),
];

/// `status --orphans` searches CloudFront, but CloudFront goes to a moto without enforcement
/// (see `Enforced::_cloudfront`).
const CLOUDFRONT_UNENFORCED: &str = "moto cannot authenticate CloudFront requests under IAM enforcement; they go to an unenforced moto";

/// The story runs without `up --cdn`; tests/cdn.rs covers the CDN against moto.
const ONLY_WITH_CDN: &str = "only with up --cdn, which the story does not use";

struct Enforced {
    /// The moto that enforces IAM (its authentication mode applies to every caller).
    _moto: Moto,
    /// CloudFront's own moto, without IAM enforcement: under enforcement moto rejects every
    /// CloudFront request as SignatureDoesNotMatch, botocore's own included (its signature
    /// check rebuilds the REST request differently), so the proxy sends CloudFront there.
    /// The CloudFront actions' need is therefore not proved here (NOT_PROVABLE_HERE).
    _cloudfront: Moto,
    /// The re-signing proxy in front of it; every caller goes through it.
    proxy: Child,
    url: String,
    keys: PathBuf,
    _keys_dir: tempfile::TempDir,
}

impl Drop for Enforced {
    fn drop(&mut self) {
        let _ = self.proxy.kill();
        let _ = self.proxy.wait();
    }
}

fn moto_server() -> PathBuf {
    common::moto::venv().join("bin/moto_server")
}

fn start_moto() -> Enforced {
    let moto = Moto::start(&[]);
    let cloudfront = Moto::start(&[]);
    let (port, cloudfront_port) = (moto.port, cloudfront.port);
    let keys_dir = tempfile::tempdir().unwrap();
    let keys = keys_dir.path().join("keys.json");
    std::fs::write(&keys, "{}").unwrap();
    let listen = free_port();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/resign_proxy.py");
    let python = moto_server().with_file_name("python3");
    // moto's own Python: the proxy signs with botocore, which moto brings.
    let mut proxy = Command::new(python)
        .arg(script)
        .args(["--listen", &format!("127.0.0.1:{listen}")])
        .args(["--target", &format!("127.0.0.1:{port}")])
        .args([
            "--cloudfront-target",
            &format!("127.0.0.1:{cloudfront_port}"),
        ])
        .arg("--keys")
        .arg(&keys)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start resign_proxy.py");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(proxy.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "ready");
    Enforced {
        _moto: moto,
        _cloudfront: cloudfront,
        proxy,
        url: format!("http://127.0.0.1:{listen}"),
        keys,
        _keys_dir: keys_dir,
    }
}

static KEYS_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Tells the re-signing proxy a new user's secret.
fn remember(moto: &Enforced, creds: &(String, String)) {
    let _g = KEYS_LOCK.lock().unwrap();
    let mut keys: serde_json::Map<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(&moto.keys).unwrap()).unwrap();
    keys.insert(creds.0.clone(), Value::String(creds.1.clone()));
    let tmp = moto.keys.with_extension("tmp");
    std::fs::write(&tmp, Value::Object(keys).to_string()).unwrap();
    std::fs::rename(&tmp, &moto.keys).unwrap();
}

async fn iam_client(url: &str, key: &str, secret: &str) -> aws_sdk_iam::Client {
    let creds = aws_sdk_iam::config::Credentials::new(key, secret, None, None, "tests");
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(creds)
        .load()
        .await;
    aws_sdk_iam::Client::new(&conf)
}

async fn new_user(moto: &Enforced, iam: &aws_sdk_iam::Client, name: &str) -> (String, String) {
    iam.create_user().user_name(name).send().await.unwrap();
    let key = iam
        .create_access_key()
        .user_name(name)
        .send()
        .await
        .unwrap();
    let key = key.access_key().unwrap();
    let creds = (
        key.access_key_id().to_owned(),
        key.secret_access_key().to_owned(),
    );
    remember(moto, &creds);
    creds
}

/// The printed policy, with the non-S3 resources widened to what moto can evaluate.
fn policy_for_moto(stack: &str, without: Option<&str>) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_thumbctl"))
        .args(["--stack", stack, "permissions"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let mut policy: Value = serde_json::from_slice(&out.stdout).unwrap();
    let statements = policy["Statement"].as_array_mut().unwrap();
    for st in statements.iter_mut() {
        let s3 = st["Action"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a.as_str().unwrap().starts_with("s3:"));
        if !s3 || st["Sid"] == "BatchJobs" {
            // (moto's policy validator refuses a region in any S3 ARN; a job's ARN has one.)
            st["Resource"] = Value::String("*".into());
        } else if st["Sid"] == "Buckets" {
            // moto's name for HeadBucket (AWS checks s3:ListBucket, which the policy has).
            st["Action"]
                .as_array_mut()
                .unwrap()
                .push(Value::String("s3:HeadBucket".into()));
        } else if st["Sid"] == "Objects" {
            // moto authorises DeleteObjects as s3:DeleteObject on the bucket's ARN; AWS
            // checks each object's, which the printed policy grants.
            let bucket = format!("arn:aws:s3:::{stack}-*");
            st["Resource"]
                .as_array_mut()
                .unwrap()
                .push(Value::String(bucket));
        }
        if let Some(w) = without {
            st["Action"]
                .as_array_mut()
                .unwrap()
                .retain(|a| a.as_str() != Some(w));
        }
    }
    statements.retain(|st| !st["Action"].as_array().unwrap().is_empty());
    policy
}

struct Run<'a> {
    moto: &'a Enforced,
    dir: &'a Path,
    stack: &'a str,
}

impl Run<'_> {
    fn thumbctl(&self, creds: &(String, String), args: &[&str]) -> Output {
        thumbctl_cmd(self.dir, self.stack, args)
            .env("AWS_ENDPOINT_URL", &self.moto.url)
            .env("AWS_ACCESS_KEY_ID", &creds.0)
            .env("AWS_SECRET_ACCESS_KEY", &creds.1)
            .output()
            .unwrap()
    }

    /// The story a user lives: up, status, upload, invoke-local, list, get, delete,
    /// status --orphans, destroy.
    /// Returns the stderr of every command that failed.
    fn story(&self, creds: &(String, String)) -> Vec<String> {
        let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/checker.bmp");
        let sample = sample.to_str().unwrap();
        let mut failures = Vec::new();
        for args in [
            &["up", "--image-uri", IMAGE][..],
            &["up", "--max-concurrency", "2"],
            &["up", "--max-concurrency", "none"],
            &["status"],
            &["upload", sample],
            // moto runs no Lambda: the function's own handler, run here, makes the item.
            &["invoke-local", "checker.bmp"],
            &["reprocess", "--local", "--only-missing"],
            &["reprocess", "--local", "--failed"],
            &["list"],
            &["get", "checker.bmp"],
            &["delete", "checker.bmp", "--yes"],
            &["status", "--orphans"],
            &["destroy", "--yes"],
        ] {
            let out = self.thumbctl(creds, args);
            if !out.status.success() {
                failures.push(format!("{args:?}: {}", stderr(&out)));
            }
        }
        failures
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_policy_is_enough_and_every_action_in_it_is_needed() {
    let moto = Arc::new(start_moto());
    let setup = iam_client(&moto.url, "test", "test").await;
    let admin = new_user(&moto, &setup, "admin").await;
    setup
        .put_user_policy()
        .user_name("admin")
        .policy_name("all")
        .policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
        )
        .send()
        .await
        .unwrap();
    // From here on moto checks every request against the caller's policies.
    let reset = reqwest::Client::new()
        .post(format!("{}/moto-api/reset-auth", moto.url))
        .body("0")
        .send()
        .await
        .unwrap();
    assert!(reset.status().is_success());
    let iam = iam_client(&moto.url, &admin.0, &admin.1).await;

    // Without any policy, the first call is refused and the error names the action.
    let nobody = new_user(&moto, &iam, "nobody").await;
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("perm");
    let run = Run {
        moto: &moto,
        dir: dir.path(),
        stack: &stack,
    };
    let out = run.thumbctl(&nobody, &["up", "--image-uri", IMAGE]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not authorized to perform"),
        "{}",
        stderr(&out)
    );

    // With exactly the policy: the whole story succeeds.
    let full = policy_for_moto(&stack, None);
    let user = new_user(&moto, &iam, "full").await;
    iam.put_user_policy()
        .user_name("full")
        .policy_name("thumbctl")
        .policy_document(full.to_string())
        .send()
        .await
        .unwrap();
    let failures = run.story(&user);
    assert!(failures.is_empty(), "with the full policy: {failures:#?}");

    // Without each action in turn: some command must fail, and say which action.
    let actions: Vec<String> = full["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|st| st["Action"].as_array().unwrap().clone())
        .map(|a| a.as_str().unwrap().to_owned())
        // moto's own name, added above: not an action of the printed policy.
        .filter(|a| a != "s3:HeadBucket")
        .collect();
    let unprovable: BTreeSet<&str> = NOT_PROVABLE_HERE.iter().map(|(a, _)| *a).collect();
    let mut tasks = Vec::new();
    let parallel = Arc::new(tokio::sync::Semaphore::new(4));
    for (i, action) in actions.iter().enumerate() {
        let (moto, iam, admin, action, parallel) = (
            moto.clone(),
            iam.clone(),
            admin.clone(),
            action.clone(),
            parallel.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let _slot = parallel.acquire().await.unwrap();
            let name = format!("without{i}");
            let creds = new_user(&moto, &iam, &name).await;
            let dir = tempfile::tempdir().unwrap();
            let stack = stack_name(&format!("perm{i}"));
            iam.put_user_policy()
                .user_name(&name)
                .policy_name("thumbctl")
                .policy_document(policy_for_moto(&stack, Some(&action)).to_string())
                .send()
                .await
                .unwrap();
            let run = Run {
                moto: &moto,
                dir: dir.path(),
                stack: &stack,
            };
            let failures = tokio::task::block_in_place(|| run.story(&creds));
            // Whatever the missing action left behind, the administrator removes.
            if dir.path().join(format!("{stack}.json")).exists() {
                let cleanup =
                    tokio::task::block_in_place(|| run.thumbctl(&admin, &["destroy", "--yes"]));
                assert!(
                    cleanup.status.success(),
                    "cleanup without {action}: {}",
                    stderr(&cleanup)
                );
            }
            (action, failures)
        }));
    }
    let mut unnoticed = BTreeSet::new();
    let mut unnamed = Vec::new();
    for t in tasks {
        let (action, failures) = t.await.unwrap();
        if failures.is_empty() {
            unnoticed.insert(action);
            continue;
        }
        // S3 answers a bare "Access Denied"; every other service names the action.
        let named = failures.iter().any(|f| f.contains(action.as_str()));
        let s3_denied =
            action.starts_with("s3:") && failures.iter().any(|f| f.contains("AccessDenied"));
        if !named && !s3_denied {
            unnamed.push(format!("{action}: {failures:#?}"));
        }
    }
    assert!(
        unnamed.is_empty(),
        "failed without naming the missing action: {unnamed:#?}"
    );
    let unnoticed: BTreeSet<&str> = unnoticed.iter().map(String::as_str).collect();
    let surprising: Vec<_> = unnoticed.difference(&unprovable).collect();
    let now_provable: Vec<_> = unprovable
        .iter()
        .filter(|a| actions.iter().any(|x| x == *a))
        .filter(|a| !unnoticed.contains(*a))
        .collect();
    assert!(
        surprising.is_empty(),
        "these actions were not needed by any command: remove them from the policy, or explain them in NOT_PROVABLE_HERE: {surprising:?}"
    );
    assert!(
        now_provable.is_empty(),
        "these are proved needed after all; take them out of NOT_PROVABLE_HERE: {now_provable:?}"
    );
    for (a, _) in NOT_PROVABLE_HERE {
        assert!(
            actions.iter().any(|x| x == a),
            "{a} is listed as unprovable but is not in the policy"
        );
    }
}
