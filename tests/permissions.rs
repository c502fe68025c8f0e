//! `thumbctl permissions` (the README's "Permissions" policy) against the code: every AWS
//! call in `src/` must be allowed by it, and every action in it must be needed by a call (or
//! by AWS on thumbctl's behalf, listed below with the reason). Adding a call without its
//! permission, or a permission without a call, fails here rather than for a user.
//!
//! This reads the source, not AWS: moto's IAM enforcement could not be used to run the
//! commands under the policy, because it rejects the Rust SDK's signatures on some calls
//! (IAM CreateRole, Lambda ListFunctions) with SignatureDoesNotMatch; see the README.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Actions in the policy that no `client.op()` call in `src/` shows, and why they are needed.
const NEEDED_WITHOUT_A_CALL: &[(&str, &str)] = &[
    (
        "iam:PassRole",
        "CreateFunction and CreateProject hand the roles to the services",
    ),
    ("iam:TagRole", "CreateRole with tags"),
    ("sqs:TagQueue", "CreateQueue with tags"),
    ("ecr:TagResource", "CreateRepository with tags"),
    ("dynamodb:TagResource", "CreateTable with tags"),
    ("sns:TagResource", "CreateTopic with tags"),
    ("logs:TagResource", "CreateLogGroup with tags"),
    ("lambda:TagResource", "CreateFunction with tags"),
    (
        "ecr:BatchGetImage",
        "CreateFunction checks the caller may read the image",
    ),
    (
        "ecr:GetDownloadUrlForLayer",
        "CreateFunction checks the caller may read the image",
    ),
    (
        "ecr:GetRepositoryPolicy",
        "CreateFunction reads the repository policy",
    ),
    (
        "ecr:BatchCheckLayerAvailability",
        "the OCI push (HEAD blob) in src/image/registry.rs",
    ),
    (
        "ecr:InitiateLayerUpload",
        "the OCI push (POST upload) in src/image/registry.rs",
    ),
    (
        "ecr:UploadLayerPart",
        "the OCI push (PATCH chunk) in src/image/registry.rs",
    ),
    (
        "ecr:CompleteLayerUpload",
        "the OCI push (PUT digest) in src/image/registry.rs",
    ),
    (
        "ecr:PutImage",
        "the OCI push (PUT manifest) in src/image/registry.rs",
    ),
    (
        "s3:DeleteObjectVersion",
        "DeleteObjects with version ids when emptying a bucket",
    ),
    (
        "cloudfront:TagResource",
        "CreateDistributionWithTags (up --cdn) tags the distribution it creates",
    ),
];

/// The IAM action an S3 operation needs (S3's names differ from its API's).
fn s3_action(op: &str) -> Option<&'static str> {
    Some(match op {
        "create_bucket" => "s3:CreateBucket",
        "delete_bucket" => "s3:DeleteBucket",
        "head_bucket" => "s3:ListBucket",
        "list_object_versions" => "s3:ListBucketVersions",
        "list_objects_v2" => "s3:ListBucket",
        "list_multipart_uploads" => "s3:ListBucketMultipartUploads",
        "put_public_access_block" => "s3:PutBucketPublicAccessBlock",
        "put_bucket_encryption" => "s3:PutEncryptionConfiguration",
        "get_bucket_encryption" => "s3:GetEncryptionConfiguration",
        "put_bucket_policy" => "s3:PutBucketPolicy",
        "put_bucket_tagging" => "s3:PutBucketTagging",
        "get_bucket_tagging" => "s3:GetBucketTagging",
        "put_bucket_notification_configuration" => "s3:PutBucketNotification",
        "get_bucket_notification_configuration" => "s3:GetBucketNotification",
        "put_object" | "create_multipart_upload" | "upload_part" | "complete_multipart_upload" => {
            "s3:PutObject"
        }
        "get_object" | "head_object" => "s3:GetObject",
        "delete_object" | "delete_objects" => "s3:DeleteObject",
        "abort_multipart_upload" => "s3:AbortMultipartUpload",
        "list_buckets" => "s3:ListAllMyBuckets",
        "put_bucket_lifecycle_configuration" => "s3:PutLifecycleConfiguration",
        "get_bucket_lifecycle_configuration" => "s3:GetLifecycleConfiguration",
        "get_public_access_block" => "s3:GetBucketPublicAccessBlock",
        "get_bucket_policy" => "s3:GetBucketPolicy",
        "delete_bucket_policy" => "s3:DeleteBucketPolicy",
        _ => return None,
    })
}

fn pascal(op: &str) -> String {
    op.split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// Every `.<service>.<operation>()` in thumbctl's source and in the function's (which
/// `invoke-local` runs with the user's credentials), whitespace ignored (calls are chained
/// over lines), plus the one call made through a wrapper (`CodeBuild(&client)`).
fn calls_in_source() -> BTreeMap<String, BTreeSet<String>> {
    const SERVICES: &[&str] = &[
        "s3",
        "iam",
        "ecr",
        "codebuild",
        "lambda",
        "dynamodb",
        "sns",
        "logs",
        "sts",
        "sqs",
        "s3control",
        "cloudfront",
        // lambda-image's store calls its DynamoDB client `ddb`.
        "ddb",
    ];
    let mut calls: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut stack = vec![root.join("src"), root.join("lambda-image/src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text: String = std::fs::read_to_string(&path)
                .unwrap()
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            for svc in SERVICES {
                let marker = format!(".{svc}.");
                let mut rest = text.as_str();
                while let Some(i) = rest.find(&marker) {
                    rest = &rest[i + marker.len()..];
                    let op: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                        .collect();
                    if !op.is_empty() && rest[op.len()..].starts_with("()") {
                        let file = path.file_name().unwrap().to_string_lossy().into_owned();
                        let svc = if *svc == "ddb" { "dynamodb" } else { svc };
                        calls.entry(format!("{svc}:{op}")).or_default().insert(file);
                    }
                }
            }
        }
    }
    calls
        .entry("codebuild:batch_get_builds".into())
        .or_default()
        .insert("codebuild.rs".into());
    calls
}

#[test]
fn the_policy_allows_every_call_and_holds_nothing_else() {
    let out = Command::new(env!("CARGO_BIN_EXE_thumbctl"))
        .args(["--stack", "thumbs", "permissions"])
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let policy: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let granted: BTreeSet<String> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|st| st["Action"].as_array().unwrap().clone())
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();

    let calls = calls_in_source();
    // The scan itself must work: thumbctl makes well over fifty distinct calls.
    assert!(calls.len() > 50, "the source scan found only {calls:?}");
    let mut needed = BTreeSet::new();
    let mut missing = Vec::new();
    for (call, files) in &calls {
        let (svc, op) = call.split_once(':').unwrap();
        let action = match svc {
            // GetCallerIdentity needs no permission: AWS always answers it.
            "sts" => continue,
            // A waiter polls the matching read call.
            "lambda" if op.starts_with("wait_until_function") => {
                "lambda:GetFunctionConfiguration".to_owned()
            }
            "dynamodb" if op.starts_with("wait_until_table") => "dynamodb:DescribeTable".to_owned(),
            "s3" => match s3_action(op) {
                Some(a) => a.to_owned(),
                None => {
                    panic!("no IAM action known for s3 {op} (in {files:?}): add it to s3_action")
                }
            },
            "lambda" if op == "invoke" => "lambda:InvokeFunction".to_owned(),
            // IAM has no action of this name: it checks CreateDistribution and TagResource.
            "cloudfront" if op == "create_distribution_with_tags" => {
                "cloudfront:CreateDistribution".to_owned()
            }
            // S3 Control's actions are in the s3 namespace.
            "s3control" => format!("s3:{}", pascal(op)),
            _ => format!("{svc}:{}", pascal(op)),
        };
        if !granted.contains(&action) {
            missing.push(format!("{action} (for {call} in {files:?})"));
        }
        needed.insert(action);
    }
    assert!(
        missing.is_empty(),
        "thumbctl calls these without the policy allowing them: {missing:#?}"
    );
    let explained: BTreeSet<&str> = NEEDED_WITHOUT_A_CALL.iter().map(|(a, _)| *a).collect();
    let superfluous: Vec<&String> = granted
        .iter()
        .filter(|a| !needed.contains(*a) && !explained.contains(a.as_str()))
        .collect();
    assert!(
        superfluous.is_empty(),
        "the policy grants actions no call needs (remove them, or explain them): {superfluous:?}"
    );
    for a in &explained {
        assert!(
            granted.contains(*a),
            "{a} is explained but not in the policy"
        );
    }
}

#[test]
fn the_readme_shows_the_policy_the_command_prints() {
    let out = Command::new(env!("CARGO_BIN_EXE_thumbctl"))
        .args(["--stack", "thumbs", "permissions"])
        .output()
        .unwrap();
    let printed = String::from_utf8(out.stdout).unwrap();
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    assert!(
        readme.contains(printed.trim()),
        "README's \"Permissions\" policy differs from `thumbctl --stack thumbs permissions`; paste the command's output"
    );
}

/// IAM's wildcard match of a policy's Resource: `*` is any run of characters (slashes and
/// colons included), `?` exactly one.
fn iam_glob(pattern: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), s.chars().collect());
    // matched[j]: the pattern so far matches the first j characters of s.
    let mut matched = vec![false; s.len() + 1];
    matched[0] = true;
    for c in &p {
        let mut next = vec![false; s.len() + 1];
        for j in 0..=s.len() {
            next[j] = match c {
                '*' => matched[j] || (j > 0 && next[j - 1]),
                '?' => j > 0 && matched[j - 1],
                c => j > 0 && matched[j - 1] && s[j - 1] == *c,
            };
        }
        matched = next;
    }
    matched[s.len()]
}

#[test]
fn iam_glob_matches_as_iam_does() {
    assert!(iam_glob("arn:aws:s3:::demo-*", "arn:aws:s3:::demo-src-abc"));
    assert!(iam_glob(
        "arn:aws:s3:::demo-*/*",
        "arn:aws:s3:::demo-src-abc/a/b.jpg"
    ));
    assert!(iam_glob(
        "arn:aws:iam::*:role/demo-*",
        "arn:aws:iam::123456789012:role/demo-x"
    ));
    assert!(!iam_glob("arn:aws:s3:::demo-*", "arn:aws:s3:::other-src"));
    assert!(!iam_glob("arn:aws:s3:::demo-?", "arn:aws:s3:::demo-ab"));
    assert!(iam_glob("*", ""));
}

/// The only statement that may name `*`, and exactly its actions: calls AWS authorises on no
/// narrower resource (the ECR login, the listings, CreateJob whose job id AWS assigns).
const ACCOUNT_WIDE_SID: &str = "AccountWide";
const ACCOUNT_WIDE: &[&str] = &[
    "cloudfront:ListDistributions",
    "cloudfront:ListOriginAccessControls",
    "codebuild:ListProjects",
    "dynamodb:ListTables",
    "ecr:GetAuthorizationToken",
    "iam:ListRoles",
    "lambda:ListFunctions",
    "logs:DescribeLogGroups",
    "s3:CreateJob",
    "s3:ListAllMyBuckets",
    "sns:ListTopics",
    "sqs:ListQueues",
];

/// Statements whose resources cannot carry the stack's name, because AWS assigns their ids
/// (a distribution's, an access control's, a batch job's): scoped to the kind, not the stack.
const AWS_ASSIGNED_IDS: &[(&str, &[&str])] = &[
    (
        "Cdn",
        &[
            "arn:aws:cloudfront::*:distribution/*",
            "arn:aws:cloudfront::*:origin-access-control/*",
        ],
    ),
    ("CdnInvalidation", &["arn:aws:cloudfront::*:distribution/*"]),
    ("BatchJobs", &["arn:aws:s3:*:*:job/*"]),
];

/// "Scoped to the stack's name prefix", proved on what `up --cdn` really made: every resource
/// of every statement is either a pattern naming `<stack>-`, a documented AWS-assigned id, or
/// `*` for the account-wide calls alone; every ARN that moto holds for the stack is matched by
/// a statement; and the same ARNs of another stack are matched by none of the scoped ones.
#[tokio::test(flavor = "multi_thread")]
async fn every_statement_is_scoped_to_the_stack_and_covers_what_up_made() {
    use common::*;
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("scope");
    let c = clients().await;
    ok(dir.path(), &stack, &["up", "--image-uri", IMAGE, "--cdn"]);
    let policy: Value =
        serde_json::from_slice(&ok(dir.path(), &stack, &["permissions"]).stdout).unwrap();
    let statements = policy["Statement"].as_array().expect("statements");

    let mut scoped: Vec<String> = Vec::new();
    for st in statements {
        let sid = st["Sid"].as_str().unwrap_or_default();
        let resources: Vec<&str> = st["Resource"]
            .as_array()
            .expect("Resource is a list")
            .iter()
            .map(|r| r.as_str().unwrap_or_default())
            .collect();
        let actions: BTreeSet<&str> = st["Action"]
            .as_array()
            .expect("Action is a list")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        if resources.contains(&"*") {
            assert_eq!(
                sid, ACCOUNT_WIDE_SID,
                "only {ACCOUNT_WIDE_SID} may name *: {st}"
            );
            assert_eq!(resources, ["*"], "{st}");
            assert_eq!(actions, ACCOUNT_WIDE.iter().copied().collect(), "{st}");
            continue;
        }
        if let Some((_, assigned)) = AWS_ASSIGNED_IDS.iter().find(|(s, _)| *s == sid) {
            assert_eq!(resources, *assigned, "{st}");
            continue;
        }
        for r in resources {
            // arn:partition:service:region:account:resource, where the resource names the
            // stack: `<stack>-` right after the resource type, and a wildcard only after it.
            let parts: Vec<&str> = r.splitn(6, ':').collect();
            assert_eq!(parts.len(), 6, "not an ARN: {r} in {st}");
            assert_eq!(parts[..2], ["arn", "aws"], "{r}");
            let name_at = parts[5]
                .find(&format!("{stack}-"))
                .unwrap_or_else(|| panic!("{r} does not name the stack `{stack}` ({sid})"));
            let before = &parts[5][..name_at];
            assert!(
                !before.contains(['*', '?']) && (before.is_empty() || before.ends_with(['/', ':'])),
                "{r}: a wildcard or a partial name before the stack's name ({sid})"
            );
            assert!(!parts[..5].iter().any(|p| p.contains('?')), "{r}");
            scoped.push(r.to_owned());
        }
    }

    let state = state_json(dir.path(), &stack);
    let held = leftovers(&c, &stack).await;
    let mut checked = 0;
    for (id, e) in state["resources"].as_object().expect("resources") {
        let Some(arn) = e["arn"].as_str() else {
            continue;
        };
        let name = e["name"].as_str().unwrap_or_default();
        // What the state says is what moto holds (by name, or by the distribution's id).
        let id_or_name = arn.rsplit(['/', ':']).next().unwrap_or_default();
        assert!(
            held.iter()
                .any(|h| h.contains(name) || h.contains(id_or_name)),
            "{id} ({arn}) is not in moto: {held:?}"
        );
        let covered = statements.iter().any(|st| {
            st["Resource"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .any(|r| r != "*" && iam_glob(r, arn))
        });
        assert!(covered, "no statement names {id} ({arn})");
        let elsewhere = arn.replace(&format!("{stack}-"), "another-stack-");
        if let Some(r) = scoped.iter().find(|r| iam_glob(r, &elsewhere)) {
            panic!("{r} also matches another stack's {id}: {elsewhere}");
        }
        checked += 1;
    }
    // Buckets, roles, repository, project, log groups, table, topic, function, queue, CDN.
    assert!(checked >= 14, "only {checked} ARNs in the state: {state}");

    ok(dir.path(), &stack, &["destroy", "--yes"]);
    assert_eq!(leftovers(&c, &stack).await, Vec::<String>::new());
}
