//! `up`, `status` and `destroy` against moto: what moto holds afterwards is what counts.

mod common;

use common::aws_proxy::AwsProxy;
use common::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn up_creates_the_whole_pipeline_and_destroy_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("full");
    let c = clients().await;
    ok(
        dir.path(),
        &stack,
        &[
            "up",
            "--image-uri",
            IMAGE,
            "--sizes",
            "100,320x200",
            "--format",
            "webp",
            "--quality",
            "70",
        ],
    );
    let st = state_json(dir.path(), &stack);
    let name = |id: &str| {
        st["resources"][id]["name"]
            .as_str()
            .unwrap_or_else(|| panic!("no {id} in state"))
            .to_owned()
    };
    for (id, e) in st["resources"].as_object().unwrap() {
        assert_eq!(e["status"], "created", "{id} not recorded as created");
    }

    // Buckets: private, encrypted, TLS-only, tagged.
    for id in ["source-bucket", "dest-bucket"] {
        let b = name(id);
        let bpa =
            c.s3.get_public_access_block()
                .bucket(&b)
                .send()
                .await
                .unwrap();
        let conf = bpa.public_access_block_configuration().unwrap();
        assert_eq!(
            (
                conf.block_public_acls(),
                conf.ignore_public_acls(),
                conf.block_public_policy(),
                conf.restrict_public_buckets()
            ),
            (Some(true), Some(true), Some(true), Some(true)),
            "{b}: Block Public Access"
        );
        let enc =
            c.s3.get_bucket_encryption()
                .bucket(&b)
                .send()
                .await
                .unwrap();
        let rule = &enc.server_side_encryption_configuration().unwrap().rules()[0];
        assert!(
            rule.apply_server_side_encryption_by_default().is_some(),
            "{b}: default encryption"
        );
        let tags = c.s3.get_bucket_tagging().bucket(&b).send().await.unwrap();
        assert!(
            tags.tag_set()
                .iter()
                .any(|t| t.key() == "thumbctl:stack" && t.value() == stack),
            "{b}: stack tag"
        );
        assert!(
            tags.tag_set()
                .iter()
                .any(|t| t.key() == "thumbctl:managed-by" && t.value() == "thumbctl")
        );
    }

    // Roles and their inline policies, scoped to this stack's ARNs.
    // Every ARN the state records: the only resources a policy may name.
    let recorded: Vec<String> = st["resources"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|e| e["arn"].as_str().map(str::to_owned))
        .collect();
    for (role_id, service) in [
        ("lambda-role", "lambda.amazonaws.com"),
        ("codebuild-role", "codebuild.amazonaws.com"),
    ] {
        let r = c
            .iam
            .get_role()
            .role_name(name(role_id))
            .send()
            .await
            .unwrap();
        let role = r.role().unwrap();
        let trust = urlencoding_decode(role.assume_role_policy_document().unwrap());
        assert!(trust.contains(service), "{role_id} trust policy: {trust}");
        assert!(
            role.tags()
                .iter()
                .any(|t| t.key() == "thumbctl:stack" && t.value() == stack)
        );
        // Exactly one inline policy and nothing attached: a managed policy would grant what
        // the inline one is careful not to.
        let inline = c
            .iam
            .list_role_policies()
            .role_name(name(role_id))
            .send()
            .await
            .unwrap();
        assert_eq!(inline.policy_names(), ["thumbctl"], "{role_id}");
        let attached = c
            .iam
            .list_attached_role_policies()
            .role_name(name(role_id))
            .send()
            .await
            .unwrap();
        assert!(
            attached.attached_policies().is_empty(),
            "{role_id} has attached policies: {:?}",
            attached.attached_policies()
        );
        let p = c
            .iam
            .get_role_policy()
            .role_name(name(role_id))
            .policy_name("thumbctl")
            .send()
            .await
            .unwrap();
        let doc: Value = serde_json::from_str(&urlencoding_decode(p.policy_document())).unwrap();
        for s in doc["Statement"].as_array().unwrap() {
            let actions: Vec<String> = match &s["Action"] {
                Value::String(a) => vec![a.clone()],
                v => v
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap().to_owned())
                    .collect(),
            };
            assert!(
                actions.iter().all(|a| !a.contains('*')),
                "wildcard action: {s}"
            );
            let resources: Vec<String> = match &s["Resource"] {
                Value::String(a) => vec![a.clone()],
                v => v
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap().to_owned())
                    .collect(),
            };
            for res in &resources {
                if res == "*" {
                    assert_eq!(
                        actions,
                        ["ecr:GetAuthorizationToken"],
                        "only the ECR login may use *"
                    );
                } else {
                    assert_stacks_arn(res, &recorded, role_id);
                }
            }
        }
    }
    let lambda_policy = c
        .iam
        .get_role_policy()
        .role_name(name("lambda-role"))
        .policy_name("thumbctl")
        .send()
        .await
        .unwrap();
    let lambda_policy = urlencoding_decode(lambda_policy.policy_document());
    for needed in [
        "s3:GetObject",
        "s3:ListBucket",
        "s3:PutObject",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        // The item goes with its original (the delete path, lambda-image handler.rs).
        "dynamodb:DeleteItem",
        "sns:Publish",
        "logs:PutLogEvents",
        // Deletes follow the original: the thumbnails go with it.
        "s3:DeleteObject",
        // Lambda sends the events it gives up on to the failure queue as this role.
        "sqs:SendMessage",
    ] {
        assert!(
            lambda_policy.contains(needed),
            "lambda policy lacks {needed}"
        );
    }

    // Lambda may pull the image, for this stack's function only.
    let repo_policy = c
        .ecr
        .get_repository_policy()
        .repository_name(name("repository"))
        .send()
        .await
        .expect("the repository has a policy");
    let repo_policy: Value = serde_json::from_str(repo_policy.policy_text().unwrap()).unwrap();
    let stmt = &repo_policy["Statement"][0];
    assert_eq!(stmt["Principal"]["Service"], "lambda.amazonaws.com");
    let function_arn = st["resources"]["function"]["arn"].as_str().unwrap();
    assert_eq!(
        stmt["Condition"]["StringLike"]["aws:sourceArn"][0], function_arn,
        "{repo_policy}"
    );

    // ECR, CodeBuild, DynamoDB, SNS, Logs.
    let repo = c
        .ecr
        .describe_repositories()
        .repository_names(name("repository"))
        .send()
        .await
        .unwrap();
    let repo = &repo.repositories()[0];
    assert_eq!(
        repo.image_scanning_configuration()
            .map(|s| s.scan_on_push()),
        Some(true)
    );
    let projects = c
        .codebuild
        .batch_get_projects()
        .names(name("build-project"))
        .send()
        .await
        .unwrap();
    let project = &projects.projects()[0];
    assert_eq!(
        project.environment().and_then(|e| e.privileged_mode()),
        Some(true)
    );
    assert!(
        project
            .service_role()
            .unwrap()
            .ends_with(&name("codebuild-role"))
    );
    assert!(
        project
            .source()
            .and_then(|s| s.location())
            .unwrap()
            .starts_with(&name("dest-bucket"))
    );
    let table = c
        .dynamodb
        .describe_table()
        .table_name(name("table"))
        .send()
        .await
        .unwrap();
    let table = table.table().unwrap();
    assert_eq!(table.key_schema()[0].attribute_name(), "id");
    assert_eq!(
        table
            .billing_mode_summary()
            .and_then(|b| b.billing_mode())
            .map(|m| m.as_str()),
        Some("PAY_PER_REQUEST")
    );
    let indexes: Vec<_> = table
        .global_secondary_indexes()
        .iter()
        .filter_map(|i| i.index_name())
        .collect();
    assert!(
        indexes.contains(&"by-time") && indexes.contains(&"by-status"),
        "{indexes:?}"
    );
    let topic_arn = st["resources"]["topic"]["arn"].as_str().unwrap().to_owned();
    let tags = c
        .sns
        .list_tags_for_resource()
        .resource_arn(&topic_arn)
        .send()
        .await
        .unwrap();
    assert!(
        tags.tags()
            .iter()
            .any(|t| t.key() == "thumbctl:stack" && t.value() == stack)
    );
    let groups = c
        .logs
        .describe_log_groups()
        .log_group_name_prefix(name("function-log-group"))
        .send()
        .await
        .unwrap();
    assert_eq!(groups.log_groups()[0].retention_in_days(), Some(14));

    // The function: image, environment, and its trigger.
    let f = c
        .lambda
        .get_function()
        .function_name(name("function"))
        .send()
        .await
        .unwrap();
    assert_eq!(f.code().and_then(|c| c.image_uri()), Some(IMAGE));
    let conf = f.configuration().unwrap();
    assert!(conf.role().unwrap().ends_with(&name("lambda-role")));
    let env = conf.environment().and_then(|e| e.variables()).unwrap();
    assert_eq!(env["DEST_BUCKET"], name("dest-bucket"));
    assert_eq!(env["TABLE_NAME"], name("table"));
    assert_eq!(env["TOPIC_ARN"], topic_arn);
    assert_eq!(env["THUMB_SIZES"], "100,320x200");
    assert_eq!(env["THUMB_FORMAT"], "webp");
    assert_eq!(env["THUMB_QUALITY"], "70");
    let eic = c
        .lambda
        .get_function_event_invoke_config()
        .function_name(name("function"))
        .send()
        .await
        .unwrap();
    assert_eq!(eic.maximum_retry_attempts(), Some(2));
    let policy = c
        .lambda
        .get_policy()
        .function_name(name("function"))
        .send()
        .await
        .unwrap();
    let policy: Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    let stmt = &policy["Statement"][0];
    assert_eq!(stmt["Principal"]["Service"], "s3.amazonaws.com");
    assert!(
        stmt["Condition"]
            .to_string()
            .contains(&name("source-bucket")),
        "SourceArn: {stmt}"
    );
    assert!(
        stmt["Condition"].to_string().contains(ACCOUNT),
        "SourceAccount: {stmt}"
    );
    let n =
        c.s3.get_bucket_notification_configuration()
            .bucket(name("source-bucket"))
            .send()
            .await
            .unwrap();
    let lf = &n.lambda_function_configurations()[0];
    assert_eq!(lf.lambda_function_arn(), conf.function_arn().unwrap());
    assert!(
        lf.events()
            .iter()
            .any(|e| e.as_str() == "s3:ObjectCreated:*")
    );

    // status --output json reports every resource as existing.
    let out = ok(dir.path(), &stack, &["status", "--output", "json"]);
    let status: Value =
        serde_json::from_slice(&out.stdout).expect("status prints one JSON document");
    assert_eq!(status["stack"], stack);
    assert_eq!(status["region"], "us-east-1");
    let list = status["resources"].as_array().unwrap();
    assert_eq!(list.len(), st["resources"].as_object().unwrap().len());
    for r in list {
        assert_eq!(r["exists"], true, "{r}");
        assert!(r["kind"].is_string() && r["name"].is_string());
    }
    assert!(
        list.iter().any(|r| r["kind"] == "function"
            && r["arn"].as_str().is_some_and(|a| a.contains(":function:")))
    );

    // Some objects, with versions, delete markers and an unfinished multipart upload.
    let src = name("source-bucket");
    c.s3.put_bucket_versioning()
        .bucket(&src)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    for i in 0..3 {
        c.s3.put_object()
            .bucket(&src)
            .key("a b/ü.jpg")
            .body(vec![i; 10].into())
            .send()
            .await
            .unwrap();
    }
    c.s3.delete_object()
        .bucket(&src)
        .key("a b/ü.jpg")
        .send()
        .await
        .unwrap();
    c.s3.create_multipart_upload()
        .bucket(&src)
        .key("big.bin")
        .send()
        .await
        .unwrap();
    c.s3.put_object()
        .bucket(name("dest-bucket"))
        .key("256/x.jpg")
        .body(vec![1u8; 5].into())
        .send()
        .await
        .unwrap();

    ok(dir.path(), &stack, &["destroy", "--yes"]);
    assert!(
        !dir.path().join(format!("{stack}.json")).exists(),
        "state file should be gone"
    );
    let left = leftovers(&c, &stack).await;
    assert!(left.is_empty(), "left behind: {left:?}");
    let roles_policies = c
        .iam
        .get_role_policy()
        .role_name(name("lambda-role"))
        .policy_name("thumbctl")
        .send()
        .await;
    assert!(roles_policies.is_err());
}

/// A policy's resource must be one of this stack's recorded ARNs, or a part of one (objects
/// under a bucket's `/`, log streams under a log group's `:`), in this partition, region and
/// account: parsed, not matched as a substring, so `arn:aws:s3:::other-<stack>` fails.
fn assert_stacks_arn(res: &str, recorded: &[String], role_id: &str) {
    let parts: Vec<&str> = res.splitn(6, ':').collect();
    assert_eq!(parts.len(), 6, "{role_id}: `{res}` is not an ARN");
    assert_eq!(parts[0], "arn");
    assert_eq!(parts[1], "aws", "{role_id}: {res} partition");
    let (region, account) = (parts[3], parts[4]);
    if parts[2] == "s3" {
        assert_eq!((region, account), ("", ""), "{role_id}: {res}");
    } else {
        assert_eq!(
            (region, account),
            ("us-east-1", ACCOUNT),
            "{role_id}: {res}"
        );
    }
    let owner = recorded.iter().find(|arn| {
        res == arn.as_str()
            || res
                .strip_prefix(arn.as_str())
                .is_some_and(|rest| rest.starts_with('/') || rest.starts_with(':'))
    });
    assert!(
        owner.is_some(),
        "{role_id}: resource {res} is none of this stack's recorded resources {recorded:?}"
    );
}

/// IAM returns policy documents URL-encoded.
fn urlencoding_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(v) if bytes[i] == b'%' => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_only_policy_is_written_and_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("tls");
    let c = clients().await;
    let mut cmd = thumbctl_cmd(dir.path(), &stack, &["up", "--image-uri", IMAGE]);
    let out = cmd.env("THUMBCTL_TLS_POLICY", "always").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let st = state_json(dir.path(), &stack);
    for id in ["source-bucket", "dest-bucket"] {
        let b = st["resources"][id]["name"].as_str().unwrap();
        let policy = c.s3.get_bucket_policy().bucket(b).send().await.unwrap();
        let policy: Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
        let s0 = &policy["Statement"][0];
        assert_eq!(s0["Effect"], "Deny");
        assert_eq!(s0["Condition"]["Bool"]["aws:SecureTransport"], "false");
        // moto enforces it: a plain-HTTP object write is refused.
        let put =
            c.s3.put_object()
                .bucket(b)
                .key("plain.jpg")
                .body(vec![1u8].into())
                .send()
                .await;
        let status = put
            .as_ref()
            .err()
            .and_then(|e| e.raw_response())
            .map(|r| r.status().as_u16());
        assert_eq!(status, Some(403), "{id}: a non-TLS write must be denied");
    }
    ok(dir.path(), &stack, &["destroy", "--yes"]);
    assert!(leftovers(&c, &stack).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn rerun_after_success_changes_nothing_and_config_changes_update_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("rerun");
    let c = clients().await;
    ok(dir.path(), &stack, &["up", "--image-uri", IMAGE]);
    let state_path = dir.path().join(format!("{stack}.json"));
    let before = std::fs::read(&state_path).unwrap();
    let st = state_json(dir.path(), &stack);
    let role = st["resources"]["lambda-role"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let function = st["resources"]["function"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let role_id = c
        .iam
        .get_role()
        .role_name(&role)
        .send()
        .await
        .unwrap()
        .role()
        .unwrap()
        .role_id()
        .to_owned();
    let rev = c
        .lambda
        .get_function_configuration()
        .function_name(&function)
        .send()
        .await
        .unwrap()
        .revision_id;

    let out = ok(dir.path(), &stack, &["up", "--output", "json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["created"], 0, "{report}");
    assert_eq!(report["updated"], 0, "{report}");
    assert_eq!(
        std::fs::read(&state_path).unwrap(),
        before,
        "a no-op rerun must not rewrite the state"
    );
    let role_id2 = c
        .iam
        .get_role()
        .role_name(&role)
        .send()
        .await
        .unwrap()
        .role()
        .unwrap()
        .role_id()
        .to_owned();
    assert_eq!(role_id, role_id2, "the role was recreated");
    let rev2 = c
        .lambda
        .get_function_configuration()
        .function_name(&function)
        .send()
        .await
        .unwrap()
        .revision_id;
    assert_eq!(rev, rev2, "the function was changed by a no-op rerun");

    // A configuration change updates the function in place, keeping everything else.
    ok(
        dir.path(),
        &stack,
        &["up", "--memory-mb", "2048", "--sizes", "64"],
    );
    let conf = c
        .lambda
        .get_function_configuration()
        .function_name(&function)
        .send()
        .await
        .unwrap();
    assert_eq!(conf.memory_size(), Some(2048));
    assert_eq!(
        conf.environment().and_then(|e| e.variables()).unwrap()["THUMB_SIZES"],
        "64"
    );
    let st2 = state_json(dir.path(), &stack);
    assert_eq!(st2["settings"]["memory_mb"], 2048);
    assert_eq!(st2["suffix"], st["suffix"]);

    // --keep-copyright reaches the function's environment, stays on a plain rerun, and
    // =false takes it out again.
    let keep = || async {
        c.lambda
            .get_function_configuration()
            .function_name(&function)
            .send()
            .await
            .unwrap()
            .environment()
            .and_then(|e| e.variables())
            .and_then(|v| v.get("THUMB_KEEP_COPYRIGHT").cloned())
    };
    assert_eq!(keep().await, None);
    ok(dir.path(), &stack, &["up", "--keep-copyright"]);
    assert_eq!(keep().await.as_deref(), Some("true"));
    ok(dir.path(), &stack, &["up"]);
    assert_eq!(keep().await.as_deref(), Some("true"), "kept on a rerun");
    ok(dir.path(), &stack, &["up", "--keep-copyright=false"]);
    assert_eq!(keep().await, None);

    // A resource deleted behind thumbctl's back is recreated by the next up.
    c.sns
        .delete_topic()
        .topic_arn(st["resources"]["topic"]["arn"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    ok(dir.path(), &stack, &["up"]);
    c.sns
        .get_topic_attributes()
        .topic_arn(st["resources"]["topic"]["arn"].as_str().unwrap())
        .send()
        .await
        .expect("topic is back");

    ok(dir.path(), &stack, &["destroy", "--yes"]);
    assert!(leftovers(&c, &stack).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn keep_buckets_keeps_them_and_a_later_destroy_removes_them() {
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("keep");
    let c = clients().await;
    ok(dir.path(), &stack, &["up", "--image-uri", IMAGE]);
    let st = state_json(dir.path(), &stack);
    let src = st["resources"]["source-bucket"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    c.s3.put_object()
        .bucket(&src)
        .key("keep.jpg")
        .body(vec![7u8; 3].into())
        .send()
        .await
        .unwrap();

    ok(dir.path(), &stack, &["destroy", "--yes", "--keep-buckets"]);
    let st = state_json(dir.path(), &stack);
    let left: Vec<_> = st["resources"].as_object().unwrap().values().collect();
    assert_eq!(left.len(), 2, "only the buckets stay recorded: {left:?}");
    assert!(left.iter().all(|e| e["status"] == "kept"));
    let obj =
        c.s3.get_object()
            .bucket(&src)
            .key("keep.jpg")
            .send()
            .await
            .expect("object kept");
    assert_eq!(
        obj.body.collect().await.unwrap().into_bytes().as_ref(),
        &[7u8; 3]
    );
    let mut others = leftovers(&c, &stack).await;
    others.retain(|l| !l.starts_with("bucket "));
    assert!(others.is_empty(), "{others:?}");

    ok(dir.path(), &stack, &["destroy", "--yes"]);
    assert!(leftovers(&c, &stack).await.is_empty());
    assert!(!dir.path().join(format!("{stack}.json")).exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn destroy_never_touches_what_is_not_in_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("lookalike");
    let c = clients().await;
    ok(dir.path(), &stack, &["up", "--image-uri", IMAGE]);
    // Look-alikes: same naming pattern and even our tags (stack, managed-by, region: all
    // that `status --orphans` would take as proof), but not in the state.
    let fake_bucket = format!("{stack}-src-zzzzzzzz");
    c.s3.create_bucket()
        .bucket(&fake_bucket)
        .send()
        .await
        .unwrap();
    let our_tags = [
        ("thumbctl:stack", stack.as_str()),
        ("thumbctl:managed-by", "thumbctl"),
        ("thumbctl:region", "us-east-1"),
    ];
    let mut tagging = aws_sdk_s3::types::Tagging::builder();
    for (k, v) in our_tags {
        tagging = tagging.tag_set(
            aws_sdk_s3::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .unwrap(),
        );
    }
    c.s3.put_bucket_tagging()
        .bucket(&fake_bucket)
        .tagging(tagging.build().unwrap())
        .send()
        .await
        .unwrap();
    c.s3.put_object()
        .bucket(&fake_bucket)
        .key("mine.jpg")
        .body(vec![1u8].into())
        .send()
        .await
        .unwrap();
    let fake_table = format!("{stack}-zzzzzzzz");
    c.dynamodb
        .create_table()
        .table_name(&fake_table)
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .key_schema(
            aws_sdk_dynamodb::types::KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(aws_sdk_dynamodb::types::KeyType::Hash)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            aws_sdk_dynamodb::types::AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .set_tags(Some(
            our_tags
                .iter()
                .map(|(k, v)| {
                    aws_sdk_dynamodb::types::Tag::builder()
                        .key(*k)
                        .value(*v)
                        .build()
                        .unwrap()
                })
                .collect(),
        ))
        .send()
        .await
        .unwrap();
    // The look-alikes really carry the tags (read back), so the test below is about the state.
    let bucket_tags =
        c.s3.get_bucket_tagging()
            .bucket(&fake_bucket)
            .send()
            .await
            .unwrap();
    assert!(
        bucket_tags
            .tag_set()
            .iter()
            .any(|t| t.key() == "thumbctl:stack" && t.value() == stack),
        "{bucket_tags:?}"
    );
    let table_arn = c
        .dynamodb
        .describe_table()
        .table_name(&fake_table)
        .send()
        .await
        .unwrap()
        .table()
        .and_then(|t| t.table_arn())
        .map(str::to_owned)
        .unwrap();
    let table_tags = c
        .dynamodb
        .list_tags_of_resource()
        .resource_arn(&table_arn)
        .send()
        .await
        .unwrap();
    assert!(
        table_tags
            .tags()
            .iter()
            .any(|t| t.key() == "thumbctl:stack" && t.value() == stack),
        "{table_tags:?}"
    );

    ok(dir.path(), &stack, &["destroy", "--yes"]);
    c.s3.head_object()
        .bucket(&fake_bucket)
        .key("mine.jpg")
        .send()
        .await
        .expect("look-alike bucket and object survive");
    c.dynamodb
        .describe_table()
        .table_name(&fake_table)
        .send()
        .await
        .expect("look-alike table survives");
    let mut left = leftovers(&c, &stack).await;
    left.sort();
    assert_eq!(
        left,
        vec![
            format!("bucket {fake_bucket}"),
            format!("table {fake_table}")
        ]
    );
    // Clean up the look-alikes ourselves.
    c.s3.delete_object()
        .bucket(&fake_bucket)
        .key("mine.jpg")
        .send()
        .await
        .unwrap();
    c.s3.delete_bucket()
        .bucket(&fake_bucket)
        .send()
        .await
        .unwrap();
    c.dynamodb
        .delete_table()
        .table_name(&fake_table)
        .send()
        .await
        .unwrap();
}

#[test]
fn bad_input_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    // Invalid stack name: a usage error, exit 2.
    let out = thumbctl(dir.path(), "Bad_Name", &["status"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("lower-case letters"),
        "{}",
        stderr(&out)
    );

    // Unknown stack: nothing to destroy, exit 1, and nothing created.
    let out = thumbctl(dir.path(), "nosuchstack", &["destroy", "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("nothing to destroy"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("nosuchstack.json").exists());

    // Corrupt (truncated) state: refused, left untouched.
    let path = dir.path().join("broken.json");
    let truncated = b"{\"version\": 1, \"stack\": \"broken\", \"region\": \"us-";
    std::fs::write(&path, truncated).unwrap();
    for args in [
        vec!["up", "--image-uri", IMAGE],
        vec!["destroy", "--yes"],
        vec!["status"],
    ] {
        let out = thumbctl(dir.path(), "broken", &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&out).contains("not valid thumbctl state"),
            "{}",
            stderr(&out)
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            truncated,
            "state file was modified by {args:?}"
        );
    }

    // A state file of a future format.
    std::fs::write(dir.path().join("future.json"), b"{\"version\": 99}").unwrap();
    let out = thumbctl(dir.path(), "future", &["status"]);
    assert!(
        stderr(&out).contains("format version 99"),
        "{}",
        stderr(&out)
    );

    // No image: `up` ships this binary to the stack's repository, whose registry moto does
    // not serve, so it stops with a clear error naming the way out (--image-uri), and what it
    // made is destroyable.
    let out = thumbctl(dir.path(), "noimage", &["up"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--image-uri"), "{}", stderr(&out));
    ok(dir.path(), "noimage", &["destroy", "--yes"]);
    assert!(!dir.path().join("noimage.json").exists());

    // destroy without --yes and without a terminal refuses.
    std::fs::write(
        dir.path().join("unconfirmed.json"),
        serde_json::json!({"version": 1, "stack": "unconfirmed", "region": "us-east-1", "account": ACCOUNT,
            "suffix": "abc", "created_at": "x", "settings": {"sizes": ["1"], "format": "jpeg", "quality": 1,
            "memory_mb": 128, "timeout_s": 1, "image_uri": null}, "resources": {}})
        .to_string(),
    )
    .unwrap();
    let out = thumbctl(dir.path(), "unconfirmed", &["destroy"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--yes"), "{}", stderr(&out));

    // Out-of-range options are usage errors.
    let out = thumbctl(
        dir.path(),
        "opts",
        &["up", "--quality", "0", "--image-uri", IMAGE],
    );
    assert_eq!(out.status.code(), Some(2));
    let out = thumbctl(
        dir.path(),
        "opts",
        &["up", "--sizes", "big", "--image-uri", IMAGE],
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn an_unreachable_endpoint_says_what_to_check() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = thumbctl_cmd(dir.path(), "unreach", &["up", "--image-uri", IMAGE]);
    cmd.env("AWS_ENDPOINT_URL", "http://127.0.0.1:9");
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    // Both halves of the one hint: what happened, and the region as the likely cause.
    assert!(
        err.contains("the AWS endpoint could not be reached"),
        "{err}"
    );
    assert!(err.contains("check --region"), "{err}");
    assert!(!err.contains("no valid AWS credentials"), "{err}");
    assert!(
        !dir.path().join("unreach.json").exists(),
        "nothing recorded when nothing was made"
    );
}

/// Credentials that AWS does not know (a deleted or mistyped key): moto takes any key, so the
/// proxy's `credentials` behaviour answers as STS, S3 and the JSON services do for an unknown
/// key. The first call fails with the credentials hint, and nothing is made.
#[tokio::test(flavor = "multi_thread")]
async fn bad_credentials_fail_first_and_make_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("badkey");
    let proxy = AwsProxy::start("credentials", 1.0);
    let mut cmd = proxy.cmd(dir.path(), &stack, &["up", "--image-uri", IMAGE]);
    cmd.env("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEUNKNOWN01")
        .env("AWS_SECRET_ACCESS_KEY", "not-the-secret");
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("hint: no valid AWS credentials"), "{err}");
    assert!(err.contains("InvalidClientTokenId"), "{err}");
    assert!(!err.contains("could not be reached"), "{err}");
    assert!(
        proxy.fired("credentials").await >= 1,
        "the behaviour never fired"
    );
    assert!(
        !dir.path().join(format!("{stack}.json")).exists(),
        "nothing recorded when nothing was made"
    );
    let c = clients().await;
    assert_eq!(leftovers(&c, &stack).await, Vec::<String>::new());
}

#[test]
fn missing_credentials_fail_first_with_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = thumbctl_cmd(dir.path(), "nocreds", &["up", "--image-uri", IMAGE]);
    // No variables, no profile files, no instance metadata: nothing in the chain.
    cmd.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_CONFIG_FILE")
        .env_remove("AWS_SHARED_CREDENTIALS_FILE")
        .env("HOME", dir.path())
        .env("AWS_EC2_METADATA_DISABLED", "true");
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("AWS credentials"), "{err}");
    assert!(err.contains("hint: no valid AWS credentials"), "{err}");
    // The error (with each provider tried) and its hint; not the chain's warnings, not a
    // debug dump of the error.
    assert!(
        err.starts_with("thumbctl: error: load AWS credentials"),
        "{err}"
    );
    assert!(
        !err.contains("WARN") && !err.contains("ProviderError"),
        "{err}"
    );
    assert!(
        !dir.path().join("nocreds.json").exists(),
        "nothing recorded"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn lost_state_orphans_are_found_by_tag_and_deleted_only_with_yes() {
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("orphan");
    let c = clients().await;
    ok(dir.path(), &stack, &["up", "--image-uri", IMAGE]);
    let st = state_json(dir.path(), &stack);
    let recorded = st["resources"].as_object().unwrap().len();
    // A look-alike with the stack's name pattern but without our tags.
    let lookalike = format!("{stack}-src-notours1");
    c.s3.create_bucket()
        .bucket(&lookalike)
        .send()
        .await
        .unwrap();
    // The state file is lost.
    std::fs::remove_file(dir.path().join(format!("{stack}.json"))).unwrap();

    let found: Value = serde_json::from_slice(
        &ok(
            dir.path(),
            &stack,
            &["status", "--orphans", "--output", "json"],
        )
        .stdout,
    )
    .unwrap();
    let orphans = found["orphans"].as_array().unwrap();
    let kinds: std::collections::BTreeSet<&str> = orphans
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "bucket",
        "role",
        "repository",
        "build-project",
        "table",
        "topic",
        "log-group",
        "function",
        "queue",
    ] {
        assert!(kinds.contains(kind), "no orphan {kind} found: {found}");
    }
    // Every named resource (policies, permission, notification and invoke config live inside these).
    assert_eq!(orphans.len(), 12, "{found}");
    assert!(recorded > orphans.len());
    assert!(
        !orphans.iter().any(|o| o["name"] == lookalike.as_str()),
        "untagged look-alike listed"
    );

    // Without --yes: listed, nothing deleted.
    let out = thumbctl(dir.path(), &stack, &["destroy", "--orphans"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("Nothing was deleted"),
        "{}",
        stderr(&out)
    );
    assert_eq!(leftovers(&c, &stack).await.len(), 13);

    ok(dir.path(), &stack, &["destroy", "--orphans", "--yes"]);
    let left = leftovers(&c, &stack).await;
    assert_eq!(
        left,
        vec![format!("bucket {lookalike}")],
        "only the untagged look-alike may survive"
    );
    c.s3.delete_bucket()
        .bucket(&lookalike)
        .send()
        .await
        .unwrap();
}

/// IAM and the S3 bucket listing are global: a stack of the same name in another region
/// carries the same stack tag. `--orphans` in one region must neither list nor delete the
/// other region's roles and buckets; only its region tag tells them apart.
#[tokio::test(flavor = "multi_thread")]
async fn orphans_leave_a_same_named_stack_in_another_region_alone() {
    let here = tempfile::tempdir().unwrap();
    let there = tempfile::tempdir().unwrap();
    let stack = stack_name("tworeg");
    let c = clients().await;
    ok(here.path(), &stack, &["up", "--image-uri", IMAGE]);
    let mut other = thumbctl_cmd(
        there.path(),
        &stack,
        &["up", "--image-uri", IMAGE, "--region", "eu-west-1"],
    );
    let out = other.env("AWS_REGION", "eu-west-1").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let theirs = state_json(there.path(), &stack);
    let their_names: Vec<String> = theirs["resources"]
        .as_object()
        .unwrap()
        .values()
        .filter(|e| e["kind"] == "role" || e["kind"] == "bucket")
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(their_names.len(), 4, "{theirs}");

    std::fs::remove_file(here.path().join(format!("{stack}.json"))).unwrap();
    let found: Value = serde_json::from_slice(
        &ok(
            here.path(),
            &stack,
            &["status", "--orphans", "--output", "json"],
        )
        .stdout,
    )
    .unwrap();
    let listed: Vec<&str> = found["orphans"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["name"].as_str())
        .collect();
    for name in &their_names {
        assert!(
            !listed.contains(&name.as_str()),
            "{name} of the eu-west-1 stack listed as a us-east-1 orphan: {found}"
        );
    }
    assert_eq!(listed.len(), 12, "{found}");
    ok(here.path(), &stack, &["destroy", "--orphans", "--yes"]);

    // The other region's roles and buckets are still there, read back from moto.
    for name in &their_names {
        let role = c.iam.get_role().role_name(name).send().await;
        let bucket = c.s3.head_bucket().bucket(name).send().await;
        assert!(
            role.is_ok() || bucket.is_ok(),
            "{name} of the eu-west-1 stack was deleted by --orphans in us-east-1"
        );
    }
    let mut gone = thumbctl_cmd(there.path(), &stack, &["destroy", "--yes"]);
    let out = gone.env("AWS_REGION", "eu-west-1").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(leftovers(&c, &stack).await, Vec::<String>::new());
}
