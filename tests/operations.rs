//! Running the pipeline for months: failure queue, concurrency cap, lifecycle rules, drift,
//! an adopted source bucket, and backfill (`reprocess`). Every test reads back what moto
//! holds afterwards.

mod common;

use std::path::Path;

use aws_sdk_s3::primitives::ByteStream;
use common::aws_proxy::AwsProxy;
use common::*;
use serde_json::Value;

/// A small PNG whose pixels depend on `seed` (so every original is a distinct image).
fn png(seed: u32) -> Vec<u8> {
    let mut img = image::RgbImage::new(24, 16);
    for (x, y, p) in img.enumerate_pixels_mut() {
        *p = image::Rgb([(x * 10 + seed) as u8, (y * 15) as u8, (seed * 7) as u8]);
    }
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("encode png");
    out.into_inner()
}

async fn lifecycle(c: &Clients, bucket: &str) -> Vec<(Option<i32>, Option<i32>)> {
    let out =
        c.s3.get_bucket_lifecycle_configuration()
            .bucket(bucket)
            .send()
            .await
            .expect("lifecycle rules");
    let mut rules: Vec<_> = out
        .rules()
        .iter()
        .map(|r| {
            (
                r.abort_incomplete_multipart_upload()
                    .and_then(|a| a.days_after_initiation()),
                r.expiration().and_then(|e| e.days()),
            )
        })
        .collect();
    rules.sort();
    rules
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_concurrency_and_costs_at_rest_are_set_and_changed() {
    let c = clients().await;
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("ops");
    ok(
        dir.path(),
        &stack,
        &[
            "up",
            "--image-uri",
            IMAGE,
            "--max-concurrency",
            "7",
            "--expire-days",
            "thumbnails=30",
        ],
    );
    let function = resource_name(dir.path(), &stack, "function");
    let (src, dst) = (
        resource_name(dir.path(), &stack, "source-bucket"),
        resource_name(dir.path(), &stack, "dest-bucket"),
    );

    // Failed events go to the stack's queue, which keeps them two weeks.
    let queue_arn = state_json(dir.path(), &stack)["resources"]["failure-queue"]["arn"]
        .as_str()
        .expect("queue arn")
        .to_owned();
    let conf = c
        .lambda
        .get_function_event_invoke_config()
        .function_name(&function)
        .send()
        .await
        .unwrap();
    assert_eq!(
        conf.destination_config()
            .and_then(|d| d.on_failure())
            .and_then(|f| f.destination()),
        Some(queue_arn.as_str())
    );
    let url = c
        .sqs
        .get_queue_url()
        .queue_name(queue_arn.rsplit(':').next().unwrap())
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let attrs = c
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap();
    let retention = attrs
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::MessageRetentionPeriod))
        .cloned();
    assert_eq!(retention.as_deref(), Some("1209600"));
    // The function's role may send there, and only there.
    let policy = c
        .iam
        .get_role_policy()
        .role_name(resource_name(dir.path(), &stack, "lambda-role"))
        .policy_name("thumbctl")
        .send()
        .await
        .unwrap();
    let doc: Value = serde_json::from_str(
        &percent_encoding::percent_decode_str(policy.policy_document()).decode_utf8_lossy(),
    )
    .unwrap();
    let send: Vec<&Value> = doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["Action"].to_string().contains("sqs:SendMessage"))
        .collect();
    assert_eq!(send.len(), 1);
    assert_eq!(send[0]["Resource"], serde_json::json!([queue_arn]));

    // The cap, the rules, the repository's lifecycle.
    let cap = c
        .lambda
        .get_function_concurrency()
        .function_name(&function)
        .send()
        .await
        .unwrap();
    assert_eq!(cap.reserved_concurrent_executions(), Some(7));
    assert_eq!(lifecycle(&c, &src).await, vec![(Some(1), None)]);
    assert_eq!(
        lifecycle(&c, &dst).await,
        vec![(None, Some(30)), (Some(1), None)]
    );
    let repo_policy = c
        .ecr
        .get_lifecycle_policy()
        .repository_name(resource_name(dir.path(), &stack, "repository"))
        .send()
        .await
        .unwrap();
    let rules: Value = serde_json::from_str(repo_policy.lifecycle_policy_text().unwrap()).unwrap();
    assert_eq!(
        rules["rules"][1]["selection"]["countType"],
        "imageCountMoreThan"
    );
    assert_eq!(rules["rules"][0]["selection"]["tagStatus"], "untagged");
    // The notification now also carries deletes and expirations to the function.
    let n =
        c.s3.get_bucket_notification_configuration()
            .bucket(&src)
            .send()
            .await
            .unwrap();
    let mut events: Vec<String> = n.lambda_function_configurations()[0]
        .events()
        .iter()
        .map(|e| e.as_str().to_owned())
        .collect();
    events.sort();
    assert_eq!(
        events,
        [
            "s3:LifecycleExpiration:*",
            "s3:ObjectCreated:*",
            "s3:ObjectRemoved:*"
        ]
    );

    // status shows what it holds; an upload counts.
    c.s3.put_object()
        .bucket(&src)
        .key("a b/ü.png")
        .body(ByteStream::from(png(1)))
        .send()
        .await
        .unwrap();
    let status = json_of(&ok(dir.path(), &stack, &["status", "--output", "json"]));
    assert_eq!(status["reserved_concurrency"], 7);
    assert_eq!(status["failed_events_waiting"], 0);
    let source = status["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == "source-bucket")
        .cloned()
        .expect("source bucket in status");
    assert_eq!(source["objects"], 1);
    assert_eq!(source["bytes"], png(1).len());
    assert!(
        source["rules"]
            .as_str()
            .unwrap()
            .contains("unfinished uploads aborted after 1 d")
    );
    assert_eq!(status["drift"], serde_json::json!({}));

    // Options change on a rerun: the cap goes, originals now expire, thumbnails no longer.
    ok(
        dir.path(),
        &stack,
        &[
            "up",
            "--max-concurrency",
            "none",
            "--expire-days",
            "originals=90",
            "--expire-days",
            "thumbnails=off",
        ],
    );
    let cap = c
        .lambda
        .get_function_concurrency()
        .function_name(&function)
        .send()
        .await
        .unwrap();
    assert_eq!(cap.reserved_concurrent_executions(), None);
    assert_eq!(
        lifecycle(&c, &src).await,
        vec![(None, Some(90)), (Some(1), None)]
    );
    assert_eq!(lifecycle(&c, &dst).await, vec![(Some(1), None)]);

    ok(dir.path(), &stack, &["destroy", "--yes"]);
    assert_eq!(leftovers(&c, &stack).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cap_the_account_cannot_afford_is_refused_with_what_to_do() {
    // moto enforces the account's concurrency floor only with this variable, in its own
    // process: a server of its own for this test.
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("capq");
    let moto = Moto::start(&[("MOTO_LAMBDA_CONCURRENCY_QUOTA", "110")]);
    let out = thumbctl_at(
        &moto.url,
        dir.path(),
        &stack,
        &["up", "--image-uri", IMAGE, "--max-concurrency", "20"],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("UnreservedConcurrentExecution"), "{err}");
    assert!(err.contains("--max-concurrency none"), "{err}");
    // Everything else is up; a smaller cap then succeeds, and nothing is left after destroy.
    assert_ok(
        thumbctl_at(
            &moto.url,
            dir.path(),
            &stack,
            &["up", "--max-concurrency", "5"],
        )
        .output()
        .unwrap(),
    );
    let c = clients_at(&moto.url).await;
    let cap = c
        .lambda
        .get_function_concurrency()
        .function_name(resource_name(dir.path(), &stack, "function"))
        .send()
        .await
        .expect("the function's concurrency");
    assert_eq!(cap.reserved_concurrent_executions(), Some(5));
    assert_ok(
        thumbctl_at(&moto.url, dir.path(), &stack, &["destroy", "--yes"])
            .output()
            .unwrap(),
    );
    assert_eq!(leftovers(&c, &stack).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bucket_of_another_account_is_refused_before_anything_is_made() {
    // moto lets every account read every bucket unless told otherwise; S3 answers 403 to
    // HeadBucket on a bucket of another account that grants nothing.
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("theirs");
    let moto = Moto::start(&[("MOTO_S3_ALLOW_CROSSACCOUNT_ACCESS", "false")]);
    let theirs = format!("{stack}-theirs");
    let foreign = |req: reqwest::RequestBuilder| req.header("x-moto-account-id", "111111111111");
    let http = reqwest::Client::new();
    let made = foreign(http.put(format!("{}/{theirs}", moto.url)))
        .send()
        .await
        .expect("moto answers");
    assert!(made.status().is_success(), "{:?}", made.text().await);

    let out = thumbctl_at(
        &moto.url,
        dir.path(),
        &stack,
        &["up", "--image-uri", IMAGE, "--source-bucket", &theirs],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!("it is not a bucket of account {ACCOUNT}")),
        "{err}"
    );
    // Refused before anything was made: nothing of the stack in this account, and their
    // bucket has no notification of ours.
    let c = clients_at(&moto.url).await;
    let mut left = leftovers(&c, &stack).await;
    left.retain(|l| !l.contains(&theirs));
    assert_eq!(left, Vec::<String>::new());
    let notification = foreign(http.get(format!("{}/{theirs}?notification", moto.url)))
        .send()
        .await
        .expect("moto answers")
        .text()
        .await
        .expect("moto's body");
    assert!(
        !notification.contains("CloudFunction"),
        "their bucket was changed: {notification}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_is_listed_by_status_and_repaired_by_up() {
    let c = clients().await;
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("drift");
    ok(dir.path(), &stack, &["up", "--image-uri", IMAGE]);
    let function = resource_name(dir.path(), &stack, "function");
    let (src, dst) = (
        resource_name(dir.path(), &stack, "source-bucket"),
        resource_name(dir.path(), &stack, "dest-bucket"),
    );
    let role = resource_name(dir.path(), &stack, "lambda-role");

    // Someone changes things in the console.
    c.lambda
        .update_function_configuration()
        .function_name(&function)
        .memory_size(256)
        .send()
        .await
        .unwrap();
    c.s3.delete_public_access_block()
        .bucket(&dst)
        .send()
        .await
        .unwrap();
    c.s3.put_bucket_notification_configuration()
        .bucket(&src)
        .notification_configuration(aws_sdk_s3::types::NotificationConfiguration::builder().build())
        .send()
        .await
        .unwrap();
    c.iam
        .put_role_policy()
        .role_name(&role)
        .policy_name("thumbctl")
        .policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
        )
        .send()
        .await
        .unwrap();

    let status = json_of(&ok(dir.path(), &stack, &["status", "--output", "json"]));
    let drift = status["drift"].as_object().expect("drift map").clone();
    let mut ids: Vec<&str> = drift.keys().map(String::as_str).collect();
    ids.sort();
    assert_eq!(
        ids,
        ["dest-bucket", "function", "lambda-role-policy"],
        "{drift:?}"
    );
    // A notification that is gone is not drift but missing.
    let notification = status["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "notification")
        .cloned()
        .unwrap();
    assert_eq!(notification["exists"], false);
    assert!(drift["function"].to_string().contains("memory is 256 MB"));
    let text = String::from_utf8_lossy(&ok(dir.path(), &stack, &["status"]).stdout).into_owned();
    assert!(
        text.contains("Block Public Access is not fully on"),
        "{text}"
    );

    ok(dir.path(), &stack, &["up"]);
    let status = json_of(&ok(dir.path(), &stack, &["status", "--output", "json"]));
    assert_eq!(status["drift"], serde_json::json!({}));
    // And moto holds the repaired settings.
    let conf = c
        .lambda
        .get_function_configuration()
        .function_name(&function)
        .send()
        .await
        .unwrap();
    assert_eq!(conf.memory_size(), Some(1024));
    let bpa =
        c.s3.get_public_access_block()
            .bucket(&dst)
            .send()
            .await
            .unwrap();
    assert_eq!(
        bpa.public_access_block_configuration()
            .and_then(|b| b.restrict_public_buckets()),
        Some(true)
    );
    let n =
        c.s3.get_bucket_notification_configuration()
            .bucket(&src)
            .send()
            .await
            .unwrap();
    assert_eq!(n.lambda_function_configurations().len(), 1);
    let policy = c
        .iam
        .get_role_policy()
        .role_name(&role)
        .policy_name("thumbctl")
        .send()
        .await
        .unwrap();
    assert!(!policy.policy_document().contains("s3%3A%2A"));
    assert!(!policy.policy_document().contains("s3:*"));
    ok(dir.path(), &stack, &["destroy", "--yes"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_adopted_bucket_keeps_its_objects_settings_and_other_notifications() {
    let c = clients().await;
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("adopt");
    let mine = format!("mine-{}", stack);
    c.s3.create_bucket().bucket(&mine).send().await.unwrap();
    c.s3.put_object()
        .bucket(&mine)
        .key("logs/keep.txt")
        .body(ByteStream::from_static(b"mine"))
        .send()
        .await
        .unwrap();
    // The user's own trigger: new objects under logs/ go to their queue.
    let q = c
        .sqs
        .create_queue()
        .queue_name(format!("mine-{stack}"))
        .send()
        .await
        .unwrap();
    let q_arn = format!(
        "arn:aws:sqs:us-east-1:{ACCOUNT}:{}",
        q.queue_url().unwrap().rsplit('/').next().unwrap()
    );
    let theirs = |prefix: &str| {
        aws_sdk_s3::types::QueueConfiguration::builder()
            .id("their-logs")
            .queue_arn(&q_arn)
            .events(aws_sdk_s3::types::Event::from("s3:ObjectCreated:*"))
            .filter(
                aws_sdk_s3::types::NotificationConfigurationFilter::builder()
                    .key(
                        aws_sdk_s3::types::S3KeyFilter::builder()
                            .filter_rules(
                                aws_sdk_s3::types::FilterRule::builder()
                                    .name(aws_sdk_s3::types::FilterRuleName::Prefix)
                                    .value(prefix)
                                    .build(),
                            )
                            .build(),
                    )
                    .build(),
            )
            .build()
            .unwrap()
    };
    c.s3.put_bucket_notification_configuration()
        .bucket(&mine)
        .notification_configuration(
            aws_sdk_s3::types::NotificationConfiguration::builder()
                .queue_configurations(theirs("logs/"))
                .build(),
        )
        .send()
        .await
        .unwrap();

    // Without a prefix of its own, ours would overlap theirs: refused, nothing changed.
    let refused = thumbctl(
        dir.path(),
        &stack,
        &["up", "--image-uri", IMAGE, "--source-bucket", &mine],
    );
    assert!(!refused.status.success());
    let err = stderr(&refused);
    assert!(
        err.contains("overlaps ours") && err.contains("--source-prefix"),
        "{err}"
    );
    ok(dir.path(), &stack, &["destroy", "--yes"]);
    assert!(
        c.s3.head_object()
            .bucket(&mine)
            .key("logs/keep.txt")
            .send()
            .await
            .is_ok(),
        "destroy after a refused adoption must leave the user's bucket alone"
    );

    // With its own prefix: merged next to theirs.
    let stack = stack_name("adopt");
    ok(
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
    let n =
        c.s3.get_bucket_notification_configuration()
            .bucket(&mine)
            .send()
            .await
            .unwrap();
    assert_eq!(n.queue_configurations().len(), 1, "their trigger is kept");
    assert_eq!(n.lambda_function_configurations().len(), 1);
    let st = state_json(dir.path(), &stack);
    assert_eq!(st["resources"]["source-bucket"]["extra"]["adopted"], "true");
    // Their bucket's settings were not touched: no tags, no lifecycle rules of ours.
    assert!(
        c.s3.get_bucket_tagging()
            .bucket(&mine)
            .send()
            .await
            .map(|t| t.tag_set().is_empty())
            .unwrap_or(true)
    );
    assert!(
        c.s3.get_bucket_lifecycle_configuration()
            .bucket(&mine)
            .send()
            .await
            .is_err()
    );
    // The function reads from their bucket.
    let policy = c
        .iam
        .get_role_policy()
        .role_name(resource_name(dir.path(), &stack, "lambda-role"))
        .policy_name("thumbctl")
        .send()
        .await
        .unwrap();
    assert!(
        percent_encoding::percent_decode_str(policy.policy_document())
            .decode_utf8_lossy()
            .contains(&format!("arn:aws:s3:::{mine}/*"))
    );
    // Uploads land under the stack's prefix, where they trigger the function.
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/checker.bmp");
    ok(dir.path(), &stack, &["upload", sample.to_str().unwrap()]);
    c.s3.head_object()
        .bucket(&mine)
        .key("uploads/checker.bmp")
        .send()
        .await
        .expect("the upload is under uploads/");
    // The source of an existing stack cannot change.
    let moved = thumbctl(
        dir.path(),
        &stack,
        &["up", "--source-bucket", "other-bucket"],
    );
    assert_eq!(moved.status.code(), Some(2), "{}", stderr(&moved));

    ok(dir.path(), &stack, &["destroy", "--yes"]);
    let n =
        c.s3.get_bucket_notification_configuration()
            .bucket(&mine)
            .send()
            .await
            .unwrap();
    assert_eq!(
        n.queue_configurations().len(),
        1,
        "their trigger survives destroy"
    );
    assert!(n.lambda_function_configurations().is_empty());
    let body =
        c.s3.get_object()
            .bucket(&mine)
            .key("logs/keep.txt")
            .send()
            .await
            .expect("their object survives destroy");
    assert_eq!(
        &body.body.collect().await.unwrap().into_bytes()[..],
        b"mine"
    );
    assert_eq!(leftovers(&c, &stack).await, Vec::<String>::new());

    // A bucket that does not exist, or is not theirs, is refused before anything else.
    let stack = stack_name("adopt");
    let missing = thumbctl(
        dir.path(),
        &stack,
        &[
            "up",
            "--image-uri",
            IMAGE,
            "--source-bucket",
            "no-such-bucket-here",
        ],
    );
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("no such bucket"),
        "{}",
        stderr(&missing)
    );
    assert_eq!(
        leftovers(&c, &stack).await,
        Vec::<String>::new(),
        "refused before anything was made"
    );
    // Nor recorded: there is nothing for destroy to remove.
    let nothing = thumbctl(dir.path(), &stack, &["destroy", "--yes"]);
    assert!(
        stderr(&nothing).contains("nothing recorded"),
        "{}",
        stderr(&nothing)
    );
}

/// Uploads `n` distinct originals straight to the bucket, 16 at a time.
async fn originals(c: &Clients, bucket: &str, keys: &[String]) {
    use futures::StreamExt;
    futures::stream::iter(keys.iter().enumerate())
        .for_each_concurrent(16, |(i, key)| async move {
            c.s3.put_object()
                .bucket(bucket)
                .key(key)
                .content_type("image/png")
                .body(ByteStream::from(png(i as u32)))
                .send()
                .await
                .expect("put original");
        })
        .await;
}

/// The function's own handler, configured as the deployed function is (its environment).
async fn handler_of(c: &Clients, function: &str) -> lambda_image::handler::Handler {
    let vars = c
        .lambda
        .get_function_configuration()
        .function_name(function)
        .send()
        .await
        .expect("the function's configuration")
        .environment()
        .and_then(|e| e.variables())
        .cloned()
        .expect("the function's environment");
    lambda_image::handler::Handler::new(
        lambda_image::config::Config::from_vars(&vars).expect("the function's configuration"),
        &sdk().await,
    )
}

async fn item(c: &Clients, table: &str, id: &str) -> Option<Value> {
    let out = c
        .dynamodb
        .get_item()
        .table_name(table)
        .key("id", aws_sdk_dynamodb::types::AttributeValue::S(id.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    out.item.map(|i| serde_dynamo::from_item(i).unwrap())
}

async fn item_count(c: &Clients, table: &str) -> usize {
    let items: Vec<_> = c
        .dynamodb
        .scan()
        .table_name(table)
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await;
    items.len()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_originals_are_backfilled_and_a_rerun_finds_them_done() {
    let c = clients().await;
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("backfill");
    ok(
        dir.path(),
        &stack,
        &["up", "--image-uri", IMAGE, "--sizes", "8"],
    );
    let (src, dst, table) = (
        resource_name(dir.path(), &stack, "source-bucket"),
        resource_name(dir.path(), &stack, "dest-bucket"),
        resource_name(dir.path(), &stack, "table"),
    );
    let keys: Vec<String> = (0..1000)
        .map(|i| match i % 3 {
            0 => format!("batch/{i:04}.png"),
            1 => format!("batch/with space {i:04}.png"),
            _ => format!("batch/ünï-{i:04}+x.png"),
        })
        .collect();
    originals(&c, &src, &keys).await;

    let out = json_of(&ok(
        dir.path(),
        &stack,
        &[
            "reprocess",
            "--local",
            "--concurrency",
            "16",
            "--output",
            "json",
        ],
    ));
    assert_eq!(out["sent"], 1000, "{out}");
    assert_eq!(out["ok"], 1000, "{out}");
    assert_eq!(item_count(&c, &table).await, 1000);

    // New sizes: up says how many lack them; --only-missing makes exactly those.
    let up = ok(dir.path(), &stack, &["up", "--sizes", "8,12"]);
    let said = String::from_utf8_lossy(&up.stdout).into_owned();
    assert!(
        said.contains("1000 of 1000 processed images lack the new thumbnails"),
        "{said}"
    );
    let out = json_of(&ok(
        dir.path(),
        &stack,
        &[
            "reprocess",
            "--local",
            "--only-missing",
            "--concurrency",
            "16",
            "--output",
            "json",
        ],
    ));
    assert_eq!(out["sent"], 1000, "{out}");
    assert_eq!(out["ok"], 1000, "{out}");
    for key in [&keys[0], &keys[1], &keys[2]] {
        let it = item(&c, &table, key).await.expect("item");
        let sizes: Vec<&str> = it["thumbnails"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["size"].as_str().unwrap())
            .collect();
        assert_eq!(sizes, ["8", "12"], "{it}");
        for t in it["thumbnails"].as_array().unwrap() {
            c.s3.head_object()
                .bucket(&dst)
                .key(t["key"].as_str().unwrap())
                .send()
                .await
                .unwrap_or_else(|e| panic!("thumbnail {t} missing: {e:?}"));
        }
    }

    // Resumable: a rerun sends nothing, and moto's items are untouched (not only "sent 0").
    let mut before = Vec::new();
    for key in &keys[..30] {
        before.push(item(&c, &table, key).await.expect("item")["updated_at"].clone());
    }
    let out = json_of(&ok(
        dir.path(),
        &stack,
        &["reprocess", "--local", "--only-missing", "--output", "json"],
    ));
    assert_eq!(out["sent"], 0, "{out}");
    assert_eq!(out["already_current"], 1000, "{out}");
    for (key, was) in keys[..30].iter().zip(&before) {
        let now = item(&c, &table, key).await.expect("item")["updated_at"].clone();
        assert_eq!(&now, was, "{key} was processed again");
    }
    assert_eq!(item_count(&c, &table).await, 1000);
    ok(dir.path(), &stack, &["destroy", "--yes"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn reprocess_invokes_the_function_asynchronously_with_events_it_handles() {
    let c = clients().await;
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("asyncrp");
    let proxy = AwsProxy::start("async-invoke", 1.0);
    proxy.ok(
        dir.path(),
        &stack,
        &["up", "--image-uri", IMAGE, "--sizes", "8"],
    );
    let (src, table, function) = (
        resource_name(dir.path(), &stack, "source-bucket"),
        resource_name(dir.path(), &stack, "table"),
        resource_name(dir.path(), &stack, "function"),
    );
    let keys: Vec<String> = ["plain.png", "with space.png", "ünï+plus.png", "d/é è.png"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    originals(&c, &src, &keys).await;
    // One is already done: --only-missing leaves it out.
    ok(dir.path(), &stack, &["invoke-local", "plain.png"]);

    let out = proxy
        .cmd(
            dir.path(),
            &stack,
            &["reprocess", "--only-missing", "--output", "json"],
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = json_of(&out);
    assert_eq!(out["sent"], 3, "{out}");
    assert_eq!(out["already_current"], 1, "{out}");
    assert_eq!(
        proxy.fired("async-invoke:throttled").await,
        2,
        "throttling was retried"
    );
    let invocations = proxy.invocations().await;
    assert_eq!(invocations.len(), 3, "each sent once: {invocations:?}");

    // Each payload is an S3 event the function's own handler completes.
    let handler = handler_of(&c, &function).await;
    for inv in &invocations {
        assert_eq!(inv["function"], function.as_str());
        let event: aws_lambda_events::event::s3::S3Event =
            serde_json::from_value(inv["payload"].clone()).expect("an S3 event");
        let done = handler.handle_event(event).await.expect("handled");
        assert_eq!(
            done[0].outcome,
            lambda_image::handler::Outcome::Ok,
            "{done:?}"
        );
    }
    for key in &keys {
        let it = item(&c, &table, key)
            .await
            .unwrap_or_else(|| panic!("no item for {key}"));
        assert_eq!(it["status"], "ok");
    }
    ok(dir.path(), &stack, &["destroy", "--yes"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn events_lambda_gave_up_on_and_failed_images_are_replayed() {
    let c = clients().await;
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("failedrp");
    ok(
        dir.path(),
        &stack,
        &["up", "--image-uri", IMAGE, "--sizes", "8"],
    );
    let (src, table) = (
        resource_name(dir.path(), &stack, "source-bucket"),
        resource_name(dir.path(), &stack, "table"),
    );
    let keys: Vec<String> = vec!["timed out.png".into(), "was-bad.png".into()];
    originals(&c, &src, &keys).await;
    // What Lambda sends to the on-failure destination after the function timed out: the
    // record of the invocation, with the original event as `requestPayload`.
    let head =
        c.s3.head_object()
            .bucket(&src)
            .key("timed out.png")
            .send()
            .await
            .unwrap();
    let record = serde_json::json!({
        "version": "1.0",
        "timestamp": "2026-12-02T06:00:00.000Z",
        "requestContext": {"requestId": "r1", "functionArn": "arn", "condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": {"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2026-12-02T05:59:00.000Z", "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
            "requestParameters": {"sourceIPAddress": "192.0.2.1"},
            "responseElements": {"x-amz-request-id": "r", "x-amz-id-2": "i"},
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "thumbctl-thumbnails",
                   "bucket": {"name": src, "ownerIdentity": {"principalId": "A"}, "arn": format!("arn:aws:s3:::{src}")},
                   "object": {"key": "timed+out.png", "size": head.content_length().unwrap(),
                              "eTag": head.e_tag().unwrap().trim_matches('"'), "sequencer": "00A"}}
        }]},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": "Task timed out after 60.00 seconds"}
    });
    let queue_url = state_json(dir.path(), &stack)["resources"]["failure-queue"]["extra"]["url"]
        .as_str()
        .expect("queue url recorded")
        .to_owned();
    c.sqs
        .send_message()
        .queue_url(&queue_url)
        .message_body(record.to_string())
        .send()
        .await
        .unwrap();
    // And an image the function recorded as failed (e.g. before a fix that now handles it).
    ok(dir.path(), &stack, &["invoke-local", "was-bad.png"]);
    c.dynamodb
        .update_item()
        .table_name(&table)
        .key(
            "id",
            aws_sdk_dynamodb::types::AttributeValue::S("was-bad.png".into()),
        )
        .update_expression("SET #s = :f, thumbnails = :none")
        .expression_attribute_names("#s", "status")
        .expression_attribute_values(
            ":f",
            aws_sdk_dynamodb::types::AttributeValue::S("failed".into()),
        )
        .expression_attribute_values(":none", aws_sdk_dynamodb::types::AttributeValue::L(vec![]))
        .send()
        .await
        .unwrap();
    let status = json_of(&ok(dir.path(), &stack, &["status", "--output", "json"]));
    assert_eq!(status["failed_events_waiting"], 1);

    // A dry run counts both and hides nothing: the replay right after still finds the message.
    let dry = json_of(&ok(
        dir.path(),
        &stack,
        &["reprocess", "--failed", "--dry-run", "--output", "json"],
    ));
    assert_eq!(dry["sent"], 2, "{dry}");
    let out = json_of(&ok(
        dir.path(),
        &stack,
        &["reprocess", "--failed", "--local", "--output", "json"],
    ));
    assert_eq!(out["sent"], 2, "{out}");
    assert_eq!(out["ok"], 2, "{out}");
    for key in &keys {
        let it = item(&c, &table, key)
            .await
            .unwrap_or_else(|| panic!("no item for {key}"));
        assert_eq!(it["status"], "ok", "{it}");
    }
    let left = c
        .sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap();
    assert_eq!(
        left.attributes()
            .and_then(
                |a| a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            )
            .map(String::as_str),
        Some("0"),
        "the replayed message is deleted"
    );
    ok(dir.path(), &stack, &["destroy", "--yes"]);
    assert_eq!(leftovers(&c, &stack).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_job_is_created_followed_and_its_tasks_run_through_the_function() {
    let c = clients().await;
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("batchrp");
    let proxy = AwsProxy::start("batch-operations", 0.5);
    proxy.ok(
        dir.path(),
        &stack,
        &["up", "--image-uri", IMAGE, "--sizes", "8"],
    );
    let (src, dst, table, function) = (
        resource_name(dir.path(), &stack, "source-bucket"),
        resource_name(dir.path(), &stack, "dest-bucket"),
        resource_name(dir.path(), &stack, "table"),
        resource_name(dir.path(), &stack, "function"),
    );
    // A comma, and a key with `+`, `%`, a space and unicode: each must reach the function as
    // the key it is.
    let keys: Vec<String> = vec!["a.png".into(), "b c,d.png".into(), "ü/ö+ 100%.png".into()];
    originals(&c, &src, &keys).await;

    let mut child = proxy
        .cmd(
            dir.path(),
            &stack,
            &["reprocess", "--batch", "--output", "json"],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start thumbctl");
    // Batch Operations invokes the function once the job is Active.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let job = loop {
        let jobs = proxy.batch_jobs().await;
        if let Some(j) = jobs.first() {
            assert_ne!(j["status"], "Failed", "{j}");
            if j["status"] == "Active" {
                break j.clone();
            }
        }
        if let Some(status) = child.try_wait().expect("thumbctl's status") {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            panic!("thumbctl ended ({status}) before its job ran: {err}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no Active job: {jobs:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };

    // The request thumbctl sent, against what moto holds.
    assert_eq!(job["account"], ACCOUNT);
    let r = &job["request"];
    let listed =
        c.s3.list_objects_v2()
            .bucket(&dst)
            .prefix(".thumbctl/batch/")
            .send()
            .await
            .unwrap();
    let manifest_key = listed
        .contents()
        .iter()
        .filter_map(|o| o.key())
        .find(|k| k.ends_with("/manifest.csv"))
        .expect("a manifest in the destination bucket")
        .to_owned();
    let manifest =
        c.s3.get_object()
            .bucket(&dst)
            .key(&manifest_key)
            .send()
            .await
            .unwrap();
    let etag = manifest
        .e_tag()
        .unwrap_or_default()
        .trim_matches('"')
        .to_owned();
    let body = manifest.body.collect().await.unwrap().into_bytes();
    let location = &r["Manifest"]["Location"];
    assert_eq!(
        location["ObjectArn"],
        format!("arn:aws:s3:::{dst}/{manifest_key}")
    );
    assert_eq!(location["ETag"], etag.as_str());
    assert_eq!(
        r["Manifest"]["Spec"]["Format"],
        "S3BatchOperations_CSV_20180820"
    );
    assert_eq!(
        r["Manifest"]["Spec"]["Fields"],
        serde_json::json!(["Bucket", "Key"])
    );
    let report = &r["Report"];
    assert_eq!(report["Bucket"], format!("arn:aws:s3:::{dst}"));
    assert_eq!(
        report["Prefix"],
        manifest_key.trim_end_matches("/manifest.csv")
    );
    assert_eq!(report["ReportScope"], "FailedTasksOnly");
    assert_eq!(report["Format"], "Report_CSV_20180820");
    assert_eq!(report["Enabled"], "true");
    let role = resource_name(dir.path(), &stack, "batch-role");
    assert_eq!(r["RoleArn"], format!("arn:aws:iam::{ACCOUNT}:role/{role}"));
    assert_eq!(r["ConfirmationRequired"], "false");
    let invoke = &r["Operation"]["LambdaInvoke"];
    assert_eq!(
        invoke["FunctionArn"],
        format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:{function}")
    );
    // The schema whose event (and key encoding) the S3 User Guide documents.
    assert_eq!(invoke["InvocationSchemaVersion"], "1.0");
    // Keys URL-encoded, as a CSV manifest must have them; `%20`, `%2B`: never a bare `+`.
    let mut lines: Vec<String> = String::from_utf8(body.to_vec())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    let mut want = vec![
        format!("{src},a.png"),
        format!("{src},b%20c%2Cd.png"),
        format!("{src},%C3%BC/%C3%B6%2B%20100%25.png"),
    ];
    want.sort();
    assert_eq!(lines, want);

    // Batch Operations' part: each task's event, to the function's own entry point.
    let handler = handler_of(&c, &function).await;
    let tasks = job["tasks"].as_array().expect("task events");
    assert_eq!(tasks.len(), keys.len());
    let mut responses = Vec::new();
    for event in tasks {
        assert_eq!(
            event["tasks"][0]["s3BucketArn"],
            format!("arn:aws:s3:::{src}")
        );
        let answer = handler
            .handle_invocation(event.clone())
            .await
            .expect("a Batch Operations response");
        assert_eq!(answer["invocationId"], event["invocationId"]);
        assert_eq!(answer["invocationSchemaVersion"], "1.0");
        assert_eq!(answer["results"][0]["taskId"], event["tasks"][0]["taskId"]);
        assert_eq!(
            answer["results"][0]["resultCode"], "Succeeded",
            "{event}: {answer}"
        );
        responses.push(answer);
    }
    proxy
        .answer_batch_job(job["id"].as_str().expect("job id"), &responses)
        .await;

    // thumbctl follows the job to its end and reports what DescribeJob said.
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .expect("thumbctl's output");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = json_of(&out);
    assert_eq!(out["job_id"], job["id"], "{out}");
    assert_eq!(out["manifest_lines"], 3, "{out}");
    assert_eq!(out["result"]["status"], "Complete", "{out}");
    assert_eq!(out["result"]["total"], 3, "{out}");
    assert_eq!(out["result"]["succeeded"], 3, "{out}");
    assert_eq!(out["result"]["failed"], 0, "{out}");
    let jobs = proxy.batch_jobs().await;
    assert_eq!(jobs.len(), 1, "one job: {jobs:?}");
    let polls = jobs[0]["polls"].as_array().expect("polls");
    assert!(polls.len() >= 2, "polled until it ended: {polls:?}");
    assert_eq!(polls.last(), Some(&Value::from("Complete")), "{polls:?}");

    // What the function made is in moto, under the keys as they are.
    for key in &keys {
        let it = item(&c, &table, key)
            .await
            .unwrap_or_else(|| panic!("no item for {key}"));
        assert_eq!(it["status"], "ok", "{it}");
        let thumbs = it["thumbnails"].as_array().expect("thumbnails");
        assert!(!thumbs.is_empty(), "{it}");
        for t in thumbs {
            let k = t["key"].as_str().expect("thumbnail key");
            c.s3.head_object()
                .bucket(&dst)
                .key(k)
                .send()
                .await
                .unwrap_or_else(|e| panic!("thumbnail {k} of {key}: {e:?}"));
        }
    }

    // The role the job ran as: trusted by Batch Operations, allowed what the job does.
    let trust = c.iam.get_role().role_name(&role).send().await.unwrap();
    let trust = percent_encoding::percent_decode_str(
        trust.role().unwrap().assume_role_policy_document().unwrap(),
    )
    .decode_utf8_lossy()
    .into_owned();
    assert!(
        trust.contains("batchoperations.s3.amazonaws.com"),
        "{trust}"
    );
    let policy = c
        .iam
        .get_role_policy()
        .role_name(&role)
        .policy_name("thumbctl")
        .send()
        .await
        .unwrap();
    let doc = percent_encoding::percent_decode_str(policy.policy_document())
        .decode_utf8_lossy()
        .into_owned();
    assert!(doc.contains("lambda:InvokeFunction"), "{doc}");
    assert!(
        doc.contains(&format!("arn:aws:s3:::{dst}/.thumbctl/batch/*")),
        "{doc}"
    );

    ok(dir.path(), &stack, &["destroy", "--yes"]);
    assert_eq!(leftovers(&c, &stack).await, Vec::<String>::new());
}
