//! Running the pipeline for months, against moto: removals follow the source, a change of
//! settings redoes what it changes (and takes the thumbnails it no longer makes along), and S3
//! Batch Operations requests are answered per task. Every check reads what moto holds.

mod common;

use aws_sdk_dynamodb::types::AttributeValue;
use common::{Env, IMMUTABLE, cid, encode_event_key, event, quadrant_jpeg, record_json, small_png};
use lambda_image::config::Config;
use lambda_image::handler::{Handler, Outcome};
use serde_json::json;

fn handler(env: &Env, extra: &[(&str, &str)]) -> Handler {
    Handler::new(
        Config::from_vars(&env.vars(extra)).expect("config"),
        &env.sdk,
    )
}

fn s(item: &std::collections::HashMap<String, AttributeValue>, k: &str) -> String {
    item.get(k)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_else(|| panic!("{k} missing or not S in {item:?}"))
}

fn item_thumb_keys(item: &std::collections::HashMap<String, AttributeValue>) -> Vec<String> {
    let mut keys: Vec<String> = item["thumbnails"]
        .as_l()
        .expect("thumbnails list")
        .iter()
        .map(|t| s(t.as_m().expect("map"), "key"))
        .collect();
    keys.sort();
    keys
}

async fn put_dest(env: &Env, key: &str) {
    env.s3
        .put_object()
        .bucket(&env.dest)
        .key(key)
        .body(b"x".to_vec().into())
        .send()
        .await
        .expect("put dest object");
}

async fn delete_src(env: &Env, key: &str) {
    env.s3
        .delete_object()
        .bucket(&env.src)
        .key(key)
        .send()
        .await
        .expect("delete source object");
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn every_removal_event_deletes_thumbnails_and_item_once() {
    let env = Env::new("er").await;
    let before = handler(&env, &[("THUMB_SIZES", "64,128")]);
    // The settings changed since the objects were processed: the removal must still find the
    // thumbnails the item lists (128) as well as what the current settings would make (200).
    let after = handler(&env, &[("THUMB_SIZES", "64,200")]);
    put_dest(&env, "64/unrelated.png.jpg").await;

    let names = [
        "ObjectRemoved:Delete",
        "ObjectRemoved:DeleteMarkerCreated",
        "LifecycleExpiration:Delete",
        "LifecycleExpiration:DeleteMarkerCreated",
    ];
    for (i, name) in names.iter().enumerate() {
        let key = format!("albums/été {i}/cat+dog ☕.png");
        let png = small_png(300, 150);
        let etag = env.put(&key, png.clone()).await;
        let created = record_json(
            "ObjectCreated:Put",
            &env.src,
            &encode_event_key(&key),
            png.len() as u64,
            &etag,
        );
        let out = before.handle_event(event(vec![created])).await.unwrap();
        assert_eq!(out[0].outcome, Outcome::Ok, "{:?}", out[0]);
        // Left by a concurrent run with the current settings on the same content.
        let id = cid(&etag);
        put_dest(&env, &format!("200/{key}.{id}.jpg")).await;
        let mut want_gone = vec![
            format!("64/{key}.{id}.jpg"),
            format!("128/{key}.{id}.jpg"),
            format!("200/{key}.{id}.jpg"),
        ];
        want_gone.sort();
        let dest = env.dest_keys().await;
        assert!(want_gone.iter().all(|k| dest.contains(k)), "{dest:?}");

        delete_src(&env, &key).await;
        let removed = event(vec![record_json(
            name,
            &env.src,
            &encode_event_key(&key),
            0,
            "",
        )]);
        let out = after.handle_event(removed.clone()).await.expect("handled");
        assert_eq!(out[0].outcome, Outcome::Deleted, "{name}: {:?}", out[0]);
        assert_eq!(out[0].key, key);
        assert_eq!(sorted(out[0].deleted.clone()), want_gone);
        assert_eq!(serde_json::to_value(&out[0]).unwrap()["outcome"], "deleted");
        let dest = env.dest_keys().await;
        assert!(
            want_gone.iter().all(|k| !dest.contains(k)),
            "{name}: still there: {dest:?}"
        );
        assert!(env.item(&key).await.is_none(), "{name}: item still there");

        // S3 delivers at least once: the second delivery finds nothing and says so.
        let again = after.handle_event(removed).await.expect("handled");
        assert_eq!(again[0].outcome, Outcome::Ignored, "{:?}", again[0]);
        assert!(
            again[0]
                .reason
                .as_deref()
                .is_some_and(|r| r.contains("nothing recorded")),
            "{:?}",
            again[0]
        );
    }
    assert_eq!(env.dest_keys().await, ["64/unrelated.png.jpg"]);
}

#[tokio::test]
async fn a_removal_of_an_object_that_is_back_changes_nothing() {
    let env = Env::new("eb").await;
    let h = handler(&env, &[("THUMB_SIZES", "64")]);
    let key = "back again/ü+1.jpg";
    let jpg = quadrant_jpeg(200, 100, None);
    let etag = env.put(key, jpg.clone()).await;
    let enc = encode_event_key(key);
    h.handle_event(event(vec![record_json(
        "ObjectCreated:Put",
        &env.src,
        &enc,
        jpg.len() as u64,
        &etag,
    )]))
    .await
    .unwrap();
    let item = env.item(key).await.expect("item");
    let thumb = format!("64/back again/ü+1.{}.jpg", cid(&etag));

    // The delete event of an earlier version arrives after the re-upload.
    for name in ["ObjectRemoved:Delete", "LifecycleExpiration:Delete"] {
        let out = h
            .handle_event(event(vec![record_json(name, &env.src, &enc, 0, "")]))
            .await
            .unwrap();
        assert_eq!(out[0].outcome, Outcome::Ignored, "{:?}", out[0]);
        assert!(
            out[0]
                .reason
                .as_deref()
                .is_some_and(|r| r.contains("exists again")),
            "{:?}",
            out[0]
        );
    }
    assert_eq!(env.dest_keys().await, std::slice::from_ref(&thumb));
    assert_eq!(env.item(key).await.as_ref(), Some(&item), "item untouched");

    // Events the function does not follow are ignored, whatever the object's state.
    delete_src(&env, key).await;
    let out = h
        .handle_event(event(vec![record_json(
            "ObjectRestore:Completed",
            &env.src,
            &enc,
            0,
            "",
        )]))
        .await
        .unwrap();
    assert_eq!(out[0].outcome, Outcome::Ignored);
    assert_eq!(env.dest_keys().await, [thumb]);
}

#[tokio::test]
async fn changed_settings_redo_the_object_and_delete_what_they_no_longer_make() {
    let env = Env::new("es").await;
    let key = "photos/pic été.jpg";
    let jpg = quadrant_jpeg(400, 300, None);
    let etag = env.put(key, jpg.clone()).await;
    let ev = event(vec![record_json(
        "ObjectCreated:Put",
        &env.src,
        &encode_event_key(key),
        jpg.len() as u64,
        &etag,
    )]);

    let a = handler(&env, &[("THUMB_SIZES", "64,128")]);
    assert_eq!(
        a.handle_event(ev.clone()).await.unwrap()[0].outcome,
        Outcome::Ok
    );
    let first = env.item(key).await.expect("item");
    let (stem, id) = ("photos/pic été", cid(&etag));
    let jpegs = [
        format!("128/{stem}.{id}.jpg"),
        format!("64/{stem}.{id}.jpg"),
    ];
    assert_eq!(env.dest_keys().await, jpegs);
    assert_eq!(
        a.handle_event(ev.clone()).await.unwrap()[0].outcome,
        Outcome::Skipped
    );

    // `up --sizes 64,256 --format webp`, then `reprocess`: the same event is redone.
    let b = handler(&env, &[("THUMB_SIZES", "64,256"), ("THUMB_FORMAT", "webp")]);
    let out = b.handle_event(ev.clone()).await.unwrap();
    assert_eq!(out[0].outcome, Outcome::Ok, "{:?}", out[0]);
    let want = vec![
        format!("256/{key}.{id}.webp"),
        format!("64/{key}.{id}.webp"),
    ];
    assert_eq!(sorted(out[0].deleted.clone()), jpegs);
    assert_eq!(env.dest_keys().await, want, "old thumbnails deleted");
    let second = env.item(key).await.expect("item");
    assert_eq!(item_thumb_keys(&second), want);
    assert_eq!(s(&second, "etag"), etag);
    assert_eq!(s(&second, "created_at"), s(&first, "created_at"));
    assert_ne!(s(&second, "updated_at"), s(&first, "updated_at"));
    let (bytes, ct) = env.get_dest(&want[0]).await;
    assert_eq!(ct.as_deref(), Some("image/webp"));
    let img = image::load_from_memory(&bytes).unwrap();
    assert_eq!((img.width(), img.height()), (256, 192));

    // Done with these settings: skipped, also when the sizes are listed in another order.
    let c = handler(&env, &[("THUMB_SIZES", "256,64"), ("THUMB_FORMAT", "webp")]);
    for h in [&b, &c] {
        let out = h.handle_event(ev.clone()).await.unwrap();
        assert_eq!(out[0].outcome, Outcome::Skipped, "{:?}", out[0]);
    }
    assert_eq!(env.item(key).await.as_ref(), Some(&second), "not rewritten");

    // A quality change is in the keys: redone under new keys (a CDN caches a key's bytes for
    // a year), the old ones deleted.
    let d = handler(
        &env,
        &[
            ("THUMB_SIZES", "64,256"),
            ("THUMB_FORMAT", "webp"),
            ("THUMB_QUALITY", "30"),
        ],
    );
    let out = d.handle_event(ev).await.unwrap();
    assert_eq!(out[0].outcome, Outcome::Ok, "{:?}", out[0]);
    let q30 =
        lambda_image::keys::settings_suffix(lambda_image::engine::OutputFormat::Webp, 30, false);
    assert!(!q30.is_empty());
    let redone = vec![
        format!("256/{key}.{id}{q30}.webp"),
        format!("64/{key}.{id}{q30}.webp"),
    ];
    assert_eq!(env.dest_keys().await, redone, "new keys, old ones deleted");
    assert_eq!(sorted(out[0].deleted.clone()), want);

    // A new version that is no image: its failed item lists nothing, so every thumbnail of the
    // old one goes.
    let etag2 = env.put(key, b"not a picture".to_vec()).await;
    let out = b
        .handle_event(event(vec![record_json(
            "ObjectCreated:Put",
            &env.src,
            &encode_event_key(key),
            13,
            &etag2,
        )]))
        .await
        .unwrap();
    assert_eq!(out[0].outcome, Outcome::Failed);
    assert!(env.dest_keys().await.is_empty());
    let third = env.item(key).await.expect("item");
    assert_eq!(s(&third, "status"), "failed");
    assert!(item_thumb_keys(&third).is_empty());
}

#[tokio::test]
async fn failed_items_are_redone_only_when_the_new_limits_could_let_them_through() {
    let env = Env::new("ef").await;
    let png = small_png(300, 150);
    let len = png.len().to_string();
    let under = (png.len() - 1).to_string();
    let big_etag = env.put("big.png", png.clone()).await;
    let wide_etag = env.put("wide.png", png.clone()).await;
    let text_etag = env.put("notes.txt", b"plain text, no image".to_vec()).await;
    let ev = |key: &str, etag: &str| {
        let size = if key.ends_with(".txt") {
            20
        } else {
            png.len() as u64
        };
        event(vec![record_json(
            "ObjectCreated:Put",
            &env.src,
            key,
            size,
            etag,
        )])
    };

    let strict = handler(&env, &[("MAX_BYTES", &under), ("MAX_PIXELS", "1000")]);
    let out = strict.handle_event(ev("big.png", &big_etag)).await.unwrap();
    assert_eq!(
        (out[0].outcome, out[0].reason.as_deref()),
        (Outcome::Failed, Some("too many bytes"))
    );
    let out = handler(&env, &[("MAX_PIXELS", "1000")])
        .handle_event(ev("wide.png", &wide_etag))
        .await
        .unwrap();
    assert_eq!(
        (out[0].outcome, out[0].reason.as_deref()),
        (Outcome::Failed, Some("too many pixels"))
    );
    let wide = env.item("wide.png").await.expect("item");
    assert_eq!(
        wide["width"].as_n().map(String::as_str),
        Ok("300"),
        "{wide:?}"
    );
    let out = strict
        .handle_event(ev("notes.txt", &text_etag))
        .await
        .unwrap();
    assert_eq!(out[0].outcome, Outcome::Failed);

    // Still too small limits, other sizes: the refusals would repeat, so all are skipped.
    let still = handler(
        &env,
        &[
            ("MAX_BYTES", &under),
            ("MAX_PIXELS", "40000"),
            ("THUMB_SIZES", "32"),
        ],
    );
    for (k, e) in [
        ("big.png", &big_etag),
        ("wide.png", &wide_etag),
        ("notes.txt", &text_etag),
    ] {
        let out = still.handle_event(ev(k, e)).await.unwrap();
        assert_eq!(out[0].outcome, Outcome::Skipped, "{k}: {:?}", out[0]);
    }
    assert!(env.dest_keys().await.is_empty());

    // Limits that now fit: redone, thumbnails made, items ok; the text stays failed.
    let roomy = handler(&env, &[("MAX_BYTES", &len), ("MAX_PIXELS", "45000")]);
    for (k, e) in [("big.png", &big_etag), ("wide.png", &wide_etag)] {
        let out = roomy.handle_event(ev(k, e)).await.unwrap();
        assert_eq!(out[0].outcome, Outcome::Ok, "{k}: {:?}", out[0]);
        let item = env.item(k).await.expect("item");
        assert_eq!(s(&item, "status"), "ok");
        assert!(!item.contains_key("error"), "{item:?}");
    }
    let out = roomy
        .handle_event(ev("notes.txt", &text_etag))
        .await
        .unwrap();
    assert_eq!(out[0].outcome, Outcome::Skipped);
    assert_eq!(
        env.dest_keys().await,
        [
            format!("256/big.png.{}.jpg", cid(&big_etag)),
            format!("256/wide.png.{}.jpg", cid(&wide_etag))
        ]
    );
}

#[tokio::test]
async fn batch_operations_tasks_are_answered_one_by_one() {
    let env = Env::new("eo").await;
    let h = handler(&env, &[("THUMB_SIZES", "64")]);
    let key = "batch dir/été ☕+1.jpg";
    let jpg = quadrant_jpeg(120, 80, None);
    let etag = env.put(key, jpg).await;
    env.put("batch/notes.txt", b"no image here".to_vec()).await;

    let v1 = json!({
        "invocationSchemaVersion": "1.0",
        "invocationId": "YXNkbGZqYWRmaiBhc2RmdW9hZHNmZGpmaGFzbGtkaGZza2RmaAo",
        "job": {"id": "f3cc4f60-61f6-4a2b-8a21-d07600c373ce"},
        "tasks": [
            {"taskId": "t-ok", "s3Key": encode_event_key(key), "s3VersionId": null,
             "s3BucketArn": format!("arn:aws:s3:::{}", env.src)},
            {"taskId": "t-text", "s3Key": "batch/notes.txt", "s3VersionId": null,
             "s3BucketArn": format!("arn:aws:s3:::{}", env.src)},
            {"taskId": "t-missing", "s3Key": "batch/gone.jpg", "s3VersionId": null,
             "s3BucketArn": format!("arn:aws:s3:::{}", env.src)},
            {"taskId": "t-foreign", "s3Key": "x.jpg", "s3VersionId": null,
             "s3BucketArn": "arn:aws:s3:::someone-elses-bucket"}
        ]
    });
    let resp = h
        .handle_invocation(v1)
        .await
        .expect("never an invocation error");
    assert_eq!(resp["invocationSchemaVersion"], "1.0");
    assert_eq!(
        resp["invocationId"],
        "YXNkbGZqYWRmaiBhc2RmdW9hZHNmZGpmaGFzbGtkaGZza2RmaAo"
    );
    assert_eq!(resp["treatMissingKeysAs"], "PermanentFailure");
    let results = resp["results"].as_array().expect("results");
    let codes: Vec<(&str, &str)> = results
        .iter()
        .map(|r| {
            (
                r["taskId"].as_str().unwrap_or(""),
                r["resultCode"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        codes,
        [
            ("t-ok", "Succeeded"),
            ("t-text", "PermanentFailure"),
            ("t-missing", "PermanentFailure"),
            ("t-foreign", "PermanentFailure"),
        ],
        "{resp}"
    );
    assert_eq!(results[1]["resultString"], "failed: not an image");
    assert!(
        results[2]["resultString"]
            .as_str()
            .unwrap_or("")
            .contains("no longer exists"),
        "{resp}"
    );
    assert_eq!(
        env.dest_keys().await,
        [format!("64/batch dir/été ☕+1.{}.jpg", cid(&etag))]
    );
    assert_eq!(s(&env.item(key).await.expect("item"), "status"), "ok");
    assert_eq!(
        s(&env.item("batch/notes.txt").await.expect("item"), "status"),
        "failed"
    );
    assert!(env.item("batch/gone.jpg").await.is_none());
    assert!(env.item("x.jpg").await.is_none());

    // Schema 2.0 names the bucket; the object is current, so it is skipped and succeeds.
    let item = env.item(key).await;
    let v2 = json!({
        "invocationSchemaVersion": "2.0",
        "invocationId": "inv-2",
        "job": {"id": "job-2", "userArguments": {"reason": "reprocess"}},
        "tasks": [{"taskId": "t2", "s3Key": encode_event_key(key), "s3VersionId": "v",
                   "s3Bucket": env.src}]
    });
    let resp = h.handle_invocation(v2).await.expect("answered");
    assert_eq!(resp["invocationSchemaVersion"], "2.0");
    assert_eq!(resp["results"][0]["resultCode"], "Succeeded", "{resp}");
    assert!(
        resp["results"][0]["resultString"]
            .as_str()
            .unwrap_or("")
            .starts_with("skipped"),
        "{resp}"
    );
    assert_eq!(env.item(key).await, item, "not rewritten");

    // An AWS failure is a TemporaryFailure of the task, not a failed invocation.
    let broken = handler(&env, &[("TABLE_NAME", "no-such-table")]);
    let resp = broken
        .handle_invocation(json!({
            "invocationSchemaVersion": "2.0", "invocationId": "inv-3", "job": {"id": "j"},
            "tasks": [{"taskId": "t3", "s3Key": "batch/notes.txt", "s3Bucket": env.src}]
        }))
        .await
        .expect("answered");
    assert_eq!(
        resp["results"][0]["resultCode"], "TemporaryFailure",
        "{resp}"
    );
    assert!(
        resp["results"][0]["resultString"]
            .as_str()
            .unwrap_or("")
            .contains("dynamodb")
    );
}

#[tokio::test]
async fn one_entry_point_takes_s3_events_and_refuses_the_rest() {
    let env = Env::new("ei").await;
    let h = handler(&env, &[("THUMB_SIZES", "32")]);
    let png = small_png(40, 40);
    let etag = env.put("a b.png", png.clone()).await;
    let s3 = json!({"Records": [record_json("ObjectCreated:Put", &env.src, "a+b.png", png.len() as u64, &etag)]});
    let resp = h.handle_invocation(s3.clone()).await.expect("handled");
    assert_eq!(resp["records"][0]["outcome"], "ok", "{resp}");
    assert_eq!(
        env.dest_keys().await,
        [format!("32/a b.png.{}.jpg", cid(&etag))]
    );

    let wrapped = json!({
        "version": "1.0",
        "timestamp": "2026-11-25T12:00:00.000Z",
        "requestContext": {"requestId": "r", "functionArn": "arn", "condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": s3,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorType": "TransientFailure"}
    });
    for (payload, needle) in [
        (wrapped, "requestPayload"),
        (
            json!({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]}),
            "aws:sqs",
        ),
        (
            json!({"detail-type": "Object Created", "source": "aws.s3"}),
            "expected an S3 event",
        ),
    ] {
        let e = h.handle_invocation(payload).await.expect_err("refused");
        assert_eq!(e.error_type(), "UnsupportedEvent");
        assert!(e.to_string().contains(needle), "{e}");
    }
    assert!(env.item("a b.png").await.is_some());
}

fn created(
    env: &Env,
    key: &str,
    bytes: &[u8],
    etag: &str,
) -> aws_lambda_events::event::s3::S3Event {
    event(vec![record_json(
        "ObjectCreated:Put",
        &env.src,
        &encode_event_key(key),
        bytes.len() as u64,
        etag,
    )])
}

#[tokio::test]
async fn new_content_gets_new_keys_the_old_thumbnails_go_and_the_same_content_is_left_alone() {
    let env = Env::new("ec").await;
    let h = handler(&env, &[("THUMB_SIZES", "64,128")]);
    let key = "photos/cat été.jpg";
    let keys_of = |etag: &str| {
        let id = cid(etag);
        vec![
            format!("128/photos/cat été.{id}.jpg"),
            format!("64/photos/cat été.{id}.jpg"),
        ]
    };

    let v1 = quadrant_jpeg(400, 300, None);
    let e1 = env.put(key, v1.clone()).await;
    let out = h.handle_event(created(&env, key, &v1, &e1)).await.unwrap();
    assert_eq!(out[0].outcome, Outcome::Ok, "{:?}", out[0]);
    assert_eq!(env.dest_keys().await, keys_of(&e1));
    for k in keys_of(&e1) {
        assert_eq!(
            env.dest_cache_control(&k).await.as_deref(),
            Some(IMMUTABLE),
            "{k}"
        );
    }

    // A re-upload with other content: new keys; the old thumbnails are gone, not overwritten.
    let v2 = quadrant_jpeg(300, 400, None);
    let e2 = env.put(key, v2.clone()).await;
    assert_ne!(e1, e2);
    let out = h.handle_event(created(&env, key, &v2, &e2)).await.unwrap();
    assert_eq!(out[0].outcome, Outcome::Ok, "{:?}", out[0]);
    assert_eq!(sorted(out[0].thumbnails.clone()), keys_of(&e2));
    assert_eq!(sorted(out[0].deleted.clone()), keys_of(&e1));
    assert!(keys_of(&e1).iter().all(|k| !keys_of(&e2).contains(k)));
    assert_eq!(env.dest_keys().await, keys_of(&e2), "only v2's thumbnails");
    for k in keys_of(&e2) {
        assert_eq!(
            env.dest_cache_control(&k).await.as_deref(),
            Some(IMMUTABLE),
            "{k}"
        );
        let (bytes, ct) = env.get_dest(&k).await;
        assert_eq!(ct.as_deref(), Some("image/jpeg"));
        let img = image::load_from_memory(&bytes).unwrap();
        assert!(img.height() > img.width(), "{k} is v2 (portrait)");
    }
    let item = env.item(key).await.expect("item");
    assert_eq!(s(&item, "etag"), e2);
    assert_eq!(item_thumb_keys(&item), keys_of(&e2));
    assert!(
        !item.contains_key("superseded"),
        "dropped once deleted: {item:?}"
    );

    // The same bytes again: same ETag, same keys; skipped, with or without the event's ETag.
    let e3 = env.put(key, v2.clone()).await;
    assert_eq!(e3, e2);
    for etag in [e3.as_str(), ""] {
        let out = h.handle_event(created(&env, key, &v2, etag)).await.unwrap();
        assert_eq!(out[0].outcome, Outcome::Skipped, "{:?}", out[0]);
        assert!(out[0].thumbnails.is_empty() && out[0].deleted.is_empty());
    }
    assert_eq!(env.item(key).await.as_ref(), Some(&item), "not rewritten");
    assert_eq!(env.dest_keys().await, keys_of(&e2));
}

#[tokio::test]
async fn superseded_thumbnails_are_listed_until_deleted_and_a_failed_publish_keeps_them() {
    let env = Env::new("ep").await;
    let h = handler(&env, &[("THUMB_SIZES", "64")]);
    let key = "a/b+c.png";
    let thumb = |etag: &str| format!("64/a/b+c.png.{}.jpg", cid(etag));
    let v1 = small_png(200, 100);
    let e1 = env.put(key, v1.clone()).await;
    h.handle_event(created(&env, key, &v1, &e1)).await.unwrap();

    // The SNS publish fails for v2 (no such topic): the item is not undone, since it is the only
    // list of v1's thumbnail (still served) and v2's (already written); it is marked instead.
    let v2 = small_png(100, 200);
    let e2 = env.put(key, v2.clone()).await;
    let no_topic = handler(
        &env,
        &[
            ("THUMB_SIZES", "64"),
            (
                "TOPIC_ARN",
                "arn:aws:sns:us-east-1:123456789012:no-such-topic",
            ),
        ],
    );
    no_topic
        .handle_event(created(&env, key, &v2, &e2))
        .await
        .expect_err("the publish fails: Lambda retries");
    let item = env.item(key).await.expect("item kept");
    assert_eq!(s(&item, "etag"), e2);
    assert_eq!(item_thumb_keys(&item), [thumb(&e2)]);
    assert_eq!(item["superseded"].as_l().map(Vec::len), Ok(1), "{item:?}");
    assert_eq!(item["published"].as_bool(), Ok(&false), "{item:?}");
    assert_eq!(env.dest_keys().await, sorted(vec![thumb(&e1), thumb(&e2)]));

    // The retry is not skipped: it sends the message and deletes v1's thumbnail.
    let out = h.handle_event(created(&env, key, &v2, &e2)).await.unwrap();
    assert_eq!(out[0].outcome, Outcome::Ok, "{:?}", out[0]);
    assert_eq!(out[0].deleted, [thumb(&e1)]);
    assert_eq!(env.dest_keys().await, [thumb(&e2)]);
    let item = env.item(key).await.expect("item");
    assert!(!item.contains_key("published") && !item.contains_key("superseded"));
    let msgs = env.messages(2, std::time::Duration::from_secs(10)).await;
    assert_eq!(msgs.len(), 2, "v1's and v2's: {msgs:?}");

    // A delete that failed after the item was written leaves its keys listed: a duplicate
    // delivery deletes them, and so does the removal.
    let listed = |stale: &[&str]| {
        let mut item = item.clone();
        item.insert(
            "superseded".into(),
            AttributeValue::L(
                stale
                    .iter()
                    .map(|k| AttributeValue::S((*k).into()))
                    .collect(),
            ),
        );
        item
    };
    let stale = "64/a/b+c.png.0123456789abcdef.jpg";
    put_dest(&env, stale).await;
    env.ddb
        .put_item()
        .table_name(&env.table)
        .set_item(Some(listed(&[stale])))
        .send()
        .await
        .expect("put item");
    let out = h.handle_event(created(&env, key, &v2, &e2)).await.unwrap();
    assert_eq!(out[0].outcome, Outcome::Skipped, "{:?}", out[0]);
    assert_eq!(out[0].deleted, [stale]);
    assert_eq!(env.dest_keys().await, [thumb(&e2)]);

    let stale2 = "64/a/b+c.png.fedcba9876543210.jpg";
    put_dest(&env, stale2).await;
    env.ddb
        .put_item()
        .table_name(&env.table)
        .set_item(Some(listed(&[stale2])))
        .send()
        .await
        .expect("put item");
    delete_src(&env, key).await;
    let out = h
        .handle_event(event(vec![record_json(
            "ObjectRemoved:Delete",
            &env.src,
            &encode_event_key(key),
            0,
            "",
        )]))
        .await
        .unwrap();
    assert_eq!(out[0].outcome, Outcome::Deleted, "{:?}", out[0]);
    assert!(env.dest_keys().await.is_empty());
    assert!(env.item(key).await.is_none());
}

/// A distribution in moto for the function to invalidate on (moto keeps invalidations and
/// their paths).
async fn distribution(env: &Env, name: &str) -> (aws_sdk_cloudfront::Client, String) {
    use aws_sdk_cloudfront::types::{
        DefaultCacheBehavior, DistributionConfig, Origin, Origins, S3OriginConfig,
        ViewerProtocolPolicy,
    };
    let cf = aws_sdk_cloudfront::Client::new(&env.sdk);
    let origin = Origin::builder()
        .id("o")
        .domain_name(format!("{}.s3.us-east-1.amazonaws.com", env.dest))
        .s3_origin_config(S3OriginConfig::builder().origin_access_identity("").build())
        .build()
        .unwrap();
    let config = DistributionConfig::builder()
        .caller_reference(name)
        .comment(name)
        .enabled(true)
        .origins(
            Origins::builder()
                .quantity(1)
                .items(origin)
                .build()
                .unwrap(),
        )
        .default_cache_behavior(
            DefaultCacheBehavior::builder()
                .target_origin_id("o")
                .viewer_protocol_policy(ViewerProtocolPolicy::RedirectToHttps)
                .cache_policy_id("658327ea-f89d-4fab-a63d-7e88639e58f6")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let out = cf
        .create_distribution()
        .distribution_config(config)
        .send()
        .await
        .expect("a distribution in moto");
    let id = out.distribution().expect("distribution").id().to_owned();
    (cf, id)
}

/// The paths of each invalidation moto holds for `id`, each sorted, oldest first.
async fn invalidated(cf: &aws_sdk_cloudfront::Client, id: &str) -> Vec<Vec<String>> {
    let list = cf
        .list_invalidations()
        .distribution_id(id)
        .send()
        .await
        .expect("invalidations");
    let mut all = Vec::new();
    for s in list
        .invalidation_list()
        .map(|l| l.items())
        .unwrap_or_default()
    {
        let got = cf
            .get_invalidation()
            .distribution_id(id)
            .id(s.id())
            .send()
            .await
            .expect("invalidation");
        let mut paths = got
            .invalidation()
            .and_then(|i| i.invalidation_batch())
            .and_then(|b| b.paths())
            .map(|p| p.items().to_vec())
            .unwrap_or_default();
        paths.sort();
        all.push(paths);
    }
    all
}

#[tokio::test]
async fn what_the_function_deletes_is_invalidated_at_the_cdn() {
    let env = Env::new("ecdn").await;
    let (cf, dist) = distribution(&env, "ecdn").await;
    let h = handler(
        &env,
        &[("THUMB_SIZES", "64,128"), ("CDN_DISTRIBUTION_ID", &dist)],
    );
    let key = "a/été+1*.png";
    let created = |etag: &str, size: usize| {
        event(vec![record_json(
            "ObjectCreated:Put",
            &env.src,
            &encode_event_key(key),
            size as u64,
            etag,
        )])
    };
    let png = small_png(300, 150);
    let etag = env.put(key, png.clone()).await;
    let out = h.handle_event(created(&etag, png.len())).await.unwrap();
    assert_eq!(out[0].outcome, Outcome::Ok, "{:?}", out[0]);
    assert!(
        invalidated(&cf, &dist).await.is_empty(),
        "nothing deleted yet"
    );
    // Each segment percent-encoded as the links are; `*` too, which would be a wildcard.
    let paths = |id: &str| {
        vec![
            format!("/128/a/%C3%A9t%C3%A9%2B1%2A.png.{id}.jpg"),
            format!("/64/a/%C3%A9t%C3%A9%2B1%2A.png.{id}.jpg"),
        ]
    };

    // A re-upload: the first version's thumbnails are deleted, and invalidated.
    let png2 = small_png(200, 150);
    let etag2 = env.put(key, png2.clone()).await;
    let out = h.handle_event(created(&etag2, png2.len())).await.unwrap();
    assert_eq!(out[0].outcome, Outcome::Ok, "{:?}", out[0]);
    assert_eq!(invalidated(&cf, &dist).await, [paths(&cid(&etag))]);

    // The original removed: its thumbnails go, at the CDN too.
    delete_src(&env, key).await;
    let out = h
        .handle_event(event(vec![record_json(
            "ObjectRemoved:Delete",
            &env.src,
            &encode_event_key(key),
            0,
            "",
        )]))
        .await
        .unwrap();
    assert_eq!(out[0].outcome, Outcome::Deleted, "{:?}", out[0]);
    assert!(env.dest_keys().await.is_empty());
    assert_eq!(
        invalidated(&cf, &dist).await,
        [paths(&cid(&etag)), paths(&cid(&etag2))]
    );

    // Nothing recorded, nothing deleted: no invalidation.
    let again = h
        .handle_event(event(vec![record_json(
            "ObjectRemoved:Delete",
            &env.src,
            &encode_event_key(key),
            0,
            "",
        )]))
        .await
        .unwrap();
    assert_eq!(again[0].outcome, Outcome::Ignored);
    assert_eq!(invalidated(&cf, &dist).await.len(), 2);
}
