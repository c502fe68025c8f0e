//! A bucket the user already has, adopted as the source (`up --source-bucket`): what S3 does
//! with the user's own stale notification destinations and with a bucket encrypted by a KMS
//! key of theirs, and what `--expire-days` can and cannot do there. moto validates no
//! destination and decrypts nothing, so these run through `scripts/aws_proxy.py`
//! (`notification-destinations`, `kms-bucket`), which answers as S3 does.

mod common;

use std::path::Path;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, NotificationConfiguration, NotificationConfigurationFilter,
    QueueConfiguration, S3KeyFilter, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
};
use common::aws_proxy::AwsProxy;
use common::*;
use serde_json::Value;

fn entry_name(dir: &Path, stack: &str, id: &str) -> String {
    state_json(dir, stack)["resources"][id]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("{id} is recorded"))
        .to_owned()
}

fn json_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

fn queue_under(arn: &str, prefix: &str) -> QueueConfiguration {
    QueueConfiguration::builder()
        .queue_arn(arn)
        .events(Event::from("s3:ObjectCreated:*"))
        .filter(
            NotificationConfigurationFilter::builder()
                .key(
                    S3KeyFilter::builder()
                        .filter_rules(
                            FilterRule::builder()
                                .name(FilterRuleName::Prefix)
                                .value(prefix)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .build()
        .expect("queue configuration")
}

async fn queue_arns(c: &Clients, bucket: &str) -> (Vec<String>, usize) {
    let n =
        c.s3.get_bucket_notification_configuration()
            .bucket(bucket)
            .send()
            .await
            .expect("read the notification configuration back");
    let mut queues: Vec<String> = n
        .queue_configurations()
        .iter()
        .map(|q| q.queue_arn().to_owned())
        .collect();
    queues.sort();
    (queues, n.lambda_function_configurations().len())
}

/// The user's bucket already notifies a live queue of theirs and a queue they deleted long
/// ago. S3 refuses any validated write of that document ("Unable to validate the following
/// destination configurations", naming the deleted queue): `up` must still add ours (without
/// validating theirs or sending their consumers test events), and `destroy` must still take
/// ours out, keeping both of theirs.
#[tokio::test(flavor = "multi_thread")]
async fn a_stale_destination_of_theirs_blocks_neither_up_nor_destroy() {
    let c = clients().await;
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("adopt-stale");
    let mine = format!("mine-{stack}");
    c.s3.create_bucket().bucket(&mine).send().await.unwrap();
    let live = c
        .sqs
        .create_queue()
        .queue_name(format!("theirs-{stack}"))
        .send()
        .await
        .unwrap();
    assert!(live.queue_url().is_some());
    let live_arn = format!("arn:aws:sqs:us-east-1:{ACCOUNT}:theirs-{stack}");
    let stale_arn = format!("arn:aws:sqs:us-east-1:{ACCOUNT}:deleted-long-ago-{stack}");
    // Written straight to moto, as the user's bucket was configured back when the queue lived.
    c.s3.put_bucket_notification_configuration()
        .bucket(&mine)
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(queue_under(&live_arn, "logs/"))
                .queue_configurations(queue_under(&stale_arn, "old/"))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut theirs = vec![live_arn.clone(), stale_arn.clone()];
    theirs.sort();

    let proxy = AwsProxy::start("notification-destinations", 1.0);
    proxy.ok(
        dir.path(),
        &stack,
        &[
            "up",
            "--image-uri",
            IMAGE,
            "--source-bucket",
            &mine,
            "--source-prefix",
            "uploads/",
        ],
    );
    assert_eq!(
        queue_arns(&c, &mine).await,
        (theirs.clone(), 1),
        "both of their destinations kept, ours added"
    );
    let counts = proxy.counts().await;
    assert_eq!(
        proxy.fired("notification-destinations:refused").await,
        0,
        "no write of a document S3 would refuse: {counts}"
    );
    assert!(
        proxy.fired("notification-destinations:skipped").await >= 1,
        "{counts}"
    );
    for arn in [&live_arn, &stale_arn] {
        assert_eq!(
            proxy
                .fired(&format!("notification-destinations:test-event:{arn}"))
                .await,
            0,
            "S3 would have sent their consumer {arn} a test event: {counts}"
        );
    }

    proxy.ok(dir.path(), &stack, &["destroy", "--yes"]);
    assert_eq!(
        queue_arns(&c, &mine).await,
        (theirs, 0),
        "destroy takes only ours out"
    );
    assert_eq!(leftovers(&c, &stack).await, Vec::<String>::new());
}

/// The user's bucket encrypts new objects with a customer managed KMS key: the function's role
/// gets exactly `kms:Decrypt` on that key, so the function can read the originals (the proxy
/// refuses GetObject as S3 does unless a role may decrypt). The same stack expires thumbnails
/// after a day: a thumbnail S3 has expired is reported as such by `get` and `list`, without a
/// link, while the item still names it.
#[tokio::test(flavor = "multi_thread")]
async fn a_kms_encrypted_bucket_is_readable_and_expired_thumbnails_are_told() {
    let c = clients().await;
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("adopt-kms");
    let mine = format!("mine-{stack}");
    let key_arn = format!("arn:aws:kms:us-east-1:{ACCOUNT}:key/{stack}");
    c.s3.create_bucket().bucket(&mine).send().await.unwrap();
    c.s3.put_bucket_encryption()
        .bucket(&mine)
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder()
                .rules(
                    ServerSideEncryptionRule::builder()
                        .apply_server_side_encryption_by_default(
                            ServerSideEncryptionByDefault::builder()
                                .sse_algorithm(ServerSideEncryption::AwsKms)
                                .kms_master_key_id(&key_arn)
                                .build()
                                .unwrap(),
                        )
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let sample = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/checker.bmp"))
        .expect("sample image");
    let key = "uploads/checker.bmp";
    c.s3.put_object()
        .bucket(&mine)
        .key(key)
        .content_type("image/bmp")
        .body(ByteStream::from(sample))
        .send()
        .await
        .unwrap();

    let proxy = AwsProxy::start("kms-bucket", 1.0);
    proxy.ok(
        dir.path(),
        &stack,
        &[
            "up",
            "--image-uri",
            IMAGE,
            "--source-bucket",
            &mine,
            "--source-prefix",
            "uploads/",
            "--expire-days",
            "thumbnails=1",
        ],
    );
    // Read back from IAM: the statement, exactly.
    let policy = c
        .iam
        .get_role_policy()
        .role_name(entry_name(dir.path(), &stack, "lambda-role"))
        .policy_name("thumbctl")
        .send()
        .await
        .unwrap();
    let doc: Value = serde_json::from_str(
        &percent_encoding::percent_decode_str(policy.policy_document()).decode_utf8_lossy(),
    )
    .expect("the role policy is JSON");
    let decrypt: Vec<&Value> = doc["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .filter(|s| s.to_string().contains("kms:"))
        .collect();
    assert_eq!(
        decrypt,
        vec![
            &serde_json::json!({"Sid": "DecryptSources", "Effect": "Allow",
            "Action": ["kms:Decrypt"], "Resource": [key_arn]})
        ],
        "{doc}"
    );
    assert_eq!(
        state_json(dir.path(), &stack)["settings"]["source_kms_key"],
        key_arn.as_str()
    );

    // The function's handler reads the original through S3's KMS check.
    proxy.ok(dir.path(), &stack, &["invoke-local", key]);
    assert_eq!(proxy.fired("kms-bucket:refused").await, 0);
    assert!(proxy.fired("kms-bucket:decrypted").await >= 1);
    let got = json_of(&proxy.ok(dir.path(), &stack, &["get", key, "--output", "json"]));
    assert_eq!(got["status"], "ok", "{got}");
    let thumbs: Vec<String> = got["thumbnails"]
        .as_array()
        .expect("thumbnails")
        .iter()
        .map(|t| t["key"].as_str().expect("key").to_owned())
        .collect();
    assert!(thumbs.len() >= 2, "{got}");
    assert!(
        got["thumbnails"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|t| t["url"].is_string() && t.get("expired").is_none()),
        "{got}"
    );

    // The destination bucket's rule expires thumbnails after a day; moto runs no lifecycle,
    // so the first thumbnail is deleted as S3 would delete it.
    let dest = entry_name(dir.path(), &stack, "dest-bucket");
    let lifecycle =
        c.s3.get_bucket_lifecycle_configuration()
            .bucket(&dest)
            .send()
            .await
            .unwrap();
    assert!(
        lifecycle
            .rules()
            .iter()
            .any(|r| r.expiration().and_then(|e| e.days()) == Some(1)),
        "{lifecycle:?}"
    );
    c.s3.delete_object()
        .bucket(&dest)
        .key(&thumbs[0])
        .send()
        .await
        .unwrap();
    let got = json_of(&ok(dir.path(), &stack, &["get", key, "--output", "json"]));
    let by_key = |k: &str| -> Value {
        got["thumbnails"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["key"] == k)
            .cloned()
            .unwrap_or_else(|| panic!("{k} still named: {got}"))
    };
    let gone = by_key(&thumbs[0]);
    assert_eq!(gone["expired"], true, "{got}");
    assert!(gone.get("url").is_none(), "no link to what is gone: {got}");
    let kept = by_key(&thumbs[1]);
    assert!(
        kept.get("expired").is_none() && kept["url"].is_string(),
        "{got}"
    );
    let text = String::from_utf8_lossy(&ok(dir.path(), &stack, &["get", key]).stdout).into_owned();
    assert!(
        text.contains("expired: S3 no longer has it") && text.contains("thumbnails=1"),
        "{text}"
    );
    let text = String::from_utf8_lossy(&ok(dir.path(), &stack, &["list"]).stdout).into_owned();
    assert!(text.contains("(1 expired)"), "{text}");

    proxy.ok(dir.path(), &stack, &["destroy", "--yes"]);
    let enc =
        c.s3.get_bucket_encryption()
            .bucket(&mine)
            .send()
            .await
            .expect("their encryption is untouched");
    assert_eq!(
        enc.server_side_encryption_configuration()
            .and_then(|c| c.rules().first())
            .and_then(|r| r.apply_server_side_encryption_by_default())
            .and_then(|d| d.kms_master_key_id()),
        Some(key_arn.as_str())
    );
    c.s3.head_object()
        .bucket(&mine)
        .key(key)
        .send()
        .await
        .expect("their original survives destroy");
    assert_eq!(leftovers(&c, &stack).await, Vec::<String>::new());
}

/// Expiring originals would be a lifecycle rule on the user's bucket, which thumbctl never
/// writes: refused as a usage error (exit 2) before anything is made, with what works instead.
#[tokio::test(flavor = "multi_thread")]
async fn expiring_originals_of_an_adopted_bucket_is_refused() {
    let c = clients().await;
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("adopt-expire");
    let mine = format!("mine-{stack}");
    c.s3.create_bucket().bucket(&mine).send().await.unwrap();
    for days in ["originals=30", "30"] {
        let out = thumbctl(
            dir.path(),
            &stack,
            &[
                "up",
                "--image-uri",
                IMAGE,
                "--source-bucket",
                &mine,
                "--expire-days",
                days,
            ],
        );
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("`{mine}` is yours")) && err.contains("thumbnails=N"),
            "{err}"
        );
        assert!(
            !dir.path().join(format!("{stack}.json")).exists(),
            "no state recorded"
        );
        assert_eq!(leftovers(&c, &stack).await, Vec::<String>::new());
    }
    assert!(
        c.s3.get_bucket_lifecycle_configuration()
            .bucket(&mine)
            .send()
            .await
            .is_err(),
        "no rule on their bucket"
    );
}
