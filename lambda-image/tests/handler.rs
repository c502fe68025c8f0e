//! The handler against moto: real S3 events (URL-encoded keys), what lands in S3, DynamoDB and
//! SNS (read through an SQS subscription), idempotency, permanent vs transient failures.

mod common;

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use common::{Env, IMMUTABLE, cid, encode_event_key, event, quadrant_jpeg, record_json, small_png};
use lambda_image::config::Config;
use lambda_image::handler::{Handler, Outcome};

fn s<'a>(item: &'a std::collections::HashMap<String, AttributeValue>, k: &str) -> &'a str {
    item.get(k)
        .and_then(|v| v.as_s().ok())
        .unwrap_or_else(|| panic!("{k} missing or not S in {item:?}"))
}

fn n(item: &std::collections::HashMap<String, AttributeValue>, k: &str) -> u64 {
    item.get(k)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{k} missing or not N in {item:?}"))
}

fn is_rfc3339_utc(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() == 24
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b[23] == b'Z'
}

#[tokio::test]
async fn awkward_key_gets_thumbnails_item_and_message_and_a_repeat_does_nothing() {
    let env = Env::new("hk").await;
    let cfg =
        Config::from_vars(&env.vars(&[("THUMB_SIZES", "128,320x200"), ("THUMB_QUALITY", "80")]))
            .unwrap();
    let handler = Handler::new(cfg, &env.sdk);

    // Stored 800x600 with EXIF orientation 6: displayed 600x800 (portrait).
    let key = "photos/my cat+dog été ☕ 2024.jpg";
    let src = quadrant_jpeg(800, 600, Some(6));
    let etag = env.put(key, src.clone()).await;
    let encoded = encode_event_key(key);
    assert_eq!(
        encoded,
        "photos/my+cat%2Bdog+%C3%A9t%C3%A9+%E2%98%95+2024.jpg"
    );
    let ev = event(vec![record_json(
        "ObjectCreated:Put",
        &env.src,
        &encoded,
        src.len() as u64,
        &etag,
    )]);

    let called = std::time::Instant::now();
    let out = handler.handle_event(ev.clone()).await.expect("handled");
    let call_ms = called.elapsed().as_millis() as u64;
    assert_eq!(out.len(), 1);
    let o = &out[0];
    assert_eq!(o.outcome, Outcome::Ok, "{o:?}");
    assert_eq!(o.key, key);
    let (stem, id) = ("photos/my cat+dog été ☕ 2024", cid(&etag));
    let want_keys = [
        format!("128/{stem}.{id}.jpg"),
        format!("320x200/{stem}.{id}.jpg"),
    ];
    assert_eq!(o.thumbnails, want_keys);
    let json = serde_json::to_value(o).unwrap();
    assert_eq!(json["outcome"], "ok");

    // Thumbnails in the destination bucket: portrait, right sizes, right content type.
    let mut listed = env.dest_keys().await;
    listed.sort();
    let mut want_sorted = want_keys.to_vec();
    want_sorted.sort();
    assert_eq!(listed, want_sorted);
    for (k, dims) in want_keys.iter().zip([(96, 128), (150, 200)]) {
        let (bytes, ct) = env.get_dest(k).await;
        assert_eq!(ct.as_deref(), Some("image/jpeg"));
        assert_eq!(env.dest_cache_control(k).await.as_deref(), Some(IMMUTABLE));
        let img = image::load_from_memory(&bytes).expect("thumbnail decodes");
        assert_eq!((img.width(), img.height()), dims, "{k}");
    }

    // The DynamoDB item.
    let item = env.item(key).await.expect("item exists");
    assert_eq!(s(&item, "id"), key);
    assert_eq!(s(&item, "source_bucket"), env.src);
    assert_eq!(s(&item, "source_key"), key);
    assert_eq!(s(&item, "etag"), etag);
    assert_eq!(s(&item, "status"), "ok");
    assert!(!item.contains_key("error"));
    assert_eq!(s(&item, "content_type"), "image/jpeg");
    assert_eq!((n(&item, "width"), n(&item, "height")), (600, 800));
    assert_eq!(n(&item, "bytes"), src.len() as u64);
    assert_eq!(s(&item, "listing"), "all");
    let created = s(&item, "created_at").to_string();
    let updated = s(&item, "updated_at").to_string();
    assert!(
        is_rfc3339_utc(&created) && is_rfc3339_utc(&updated),
        "{created} {updated}"
    );
    // The record's own work: at least the source read from moto and the encodes (never 0),
    // and within the call that did it.
    let took = n(&item, "duration_ms");
    assert!(
        (1..=call_ms).contains(&took),
        "duration_ms {took}, the call took {call_ms} ms"
    );
    assert!(
        s(&item, "placeholder").len() >= 20,
        "a ThumbHash placeholder: {:?}",
        item.get("placeholder")
    );
    let thumbs = item["thumbnails"].as_l().expect("thumbnails list");
    assert_eq!(thumbs.len(), 2);
    let t0 = thumbs[0].as_m().expect("map");
    assert_eq!(s(t0, "size"), "128");
    assert_eq!(s(t0, "key"), want_keys[0]);
    assert_eq!((n(t0, "width"), n(t0, "height")), (96, 128));
    assert_eq!(s(t0, "content_type"), "image/jpeg");
    let (b0, _) = env.get_dest(&want_keys[0]).await;
    assert_eq!(n(t0, "bytes"), b0.len() as u64);
    let t1 = thumbs[1].as_m().expect("map");
    assert_eq!(s(t1, "size"), "320x200");
    assert_eq!((n(t1, "width"), n(t1, "height")), (150, 200));

    // The SNS message, read through the subscribed queue.
    let msgs = env.messages(1, Duration::from_secs(10)).await;
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    let m = &msgs[0];
    assert_eq!(m["id"], key);
    assert_eq!(m["source_bucket"], env.src.as_str());
    assert_eq!(m["etag"], etag.as_str());
    assert_eq!(m["status"], "ok");
    assert_eq!(m["width"], 600);
    assert_eq!(m["height"], 800);
    assert_eq!(m["thumbnails"][1]["key"], want_keys[1].as_str());
    assert_eq!(m["thumbnails"][1]["width"], 150);
    assert_eq!(m["created_at"], created.as_str());
    assert_eq!(m["placeholder"], s(&item, "placeholder"));

    // The same event again (S3 delivers at least once): skipped, nothing written or sent.
    let again = handler.handle_event(ev).await.expect("handled");
    assert_eq!(again[0].outcome, Outcome::Skipped, "{:?}", again[0]);
    assert!(again[0].thumbnails.is_empty());
    let item2 = env.item(key).await.expect("item");
    assert_eq!(s(&item2, "updated_at"), updated, "item not rewritten");
    assert!(
        env.messages(1, Duration::from_secs(2)).await.is_empty(),
        "no second message"
    );
}

#[tokio::test]
async fn bad_records_fail_permanently_and_do_not_stop_the_others() {
    let env = Env::new("hb").await;
    let cfg =
        Config::from_vars(&env.vars(&[("THUMB_SIZES", "256"), ("MAX_BYTES", "100000")])).unwrap();
    let handler = Handler::new(cfg, &env.sdk);

    let text = b"just some notes, not a picture\n".to_vec();
    let text_etag = env.put("notes/readme.txt", text.clone()).await;
    let empty_etag = env.put("empty.jpg", Vec::new()).await;
    let big = vec![0xFFu8; 150_000];
    let big_etag = env.put("big.jpg", big.clone()).await;
    let png = small_png(300, 150);
    let png_etag = env.put("ok image.png", png.clone()).await;

    let ev = event(vec![
        record_json(
            "ObjectCreated:Put",
            &env.src,
            "notes/readme.txt",
            text.len() as u64,
            &text_etag,
        ),
        record_json("ObjectCreated:Put", &env.src, "empty.jpg", 0, &empty_etag),
        // The event claims a small size; the object itself is over MAX_BYTES.
        record_json("ObjectCreated:Put", &env.src, "big.jpg", 10, &big_etag),
        record_json(
            "ObjectCreated:Put",
            &env.src,
            "ok+image.png",
            png.len() as u64,
            &png_etag,
        ),
        record_json(
            "ObjectCreated:Put",
            &env.dest,
            "256/ok+image.png.jpg",
            100,
            "abc",
        ),
        record_json(
            "ObjectCreated:Put",
            "someone-elses-bucket",
            "x.jpg",
            100,
            "abc",
        ),
        record_json("ObjectRemoved:Delete", &env.src, "ok+image.png", 0, ""),
        record_json(
            "ObjectCreated:Put",
            &env.src,
            "deleted-meanwhile.jpg",
            100,
            "abc",
        ),
    ]);
    let out = handler
        .handle_event(ev)
        .await
        .expect("permanent failures are not errors");
    let summary: Vec<(String, Outcome, Option<String>)> = out
        .iter()
        .map(|o| (o.key.clone(), o.outcome, o.reason.clone()))
        .collect();
    let outcomes: Vec<Outcome> = out.iter().map(|o| o.outcome).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Failed,
            Outcome::Failed,
            Outcome::Failed,
            Outcome::Ok,
            Outcome::Ignored,
            Outcome::Ignored,
            Outcome::Ignored,
            Outcome::Ignored
        ],
        "{summary:?}"
    );
    assert_eq!(out[0].reason.as_deref(), Some("not an image"));
    assert_eq!(out[1].reason.as_deref(), Some("empty object"));
    assert_eq!(out[2].reason.as_deref(), Some("too many bytes"));
    let ok_thumb = format!("256/ok image.png.{}.jpg", cid(&png_etag));
    assert_eq!(out[3].thumbnails, std::slice::from_ref(&ok_thumb));

    for (key, reason, etag) in [
        ("notes/readme.txt", "not an image", &text_etag),
        ("empty.jpg", "empty object", &empty_etag),
        ("big.jpg", "too many bytes", &big_etag),
    ] {
        let item = env
            .item(key)
            .await
            .unwrap_or_else(|| panic!("item for {key}"));
        assert_eq!(s(&item, "status"), "failed");
        assert_eq!(s(&item, "error"), reason);
        assert_eq!(s(&item, "etag"), etag.as_str());
        assert_eq!(item["thumbnails"].as_l().map(|l| l.len()), Ok(0));
        assert_eq!(s(&item, "listing"), "all");
    }
    let ok = env.item("ok image.png").await.expect("ok item");
    assert_eq!(s(&ok, "status"), "ok");
    assert_eq!(s(&ok, "content_type"), "image/png");
    assert_eq!((n(&ok, "width"), n(&ok, "height")), (300, 150));
    let (bytes, ct) = env.get_dest(&ok_thumb).await;
    assert_eq!(ct.as_deref(), Some("image/jpeg"));
    let img = image::load_from_memory(&bytes).unwrap();
    assert_eq!((img.width(), img.height()), (256, 128));
    assert!(env.item("x.jpg").await.is_none());
    assert!(env.item("deleted-meanwhile.jpg").await.is_none());
    assert_eq!(env.dest_keys().await, [ok_thumb]);

    let msgs = env.messages(4, Duration::from_secs(10)).await;
    let mut statuses: Vec<(String, String)> = msgs
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap_or("").to_string(),
                m["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    statuses.sort();
    assert_eq!(
        statuses,
        [
            ("big.jpg".to_string(), "failed".to_string()),
            ("empty.jpg".to_string(), "failed".to_string()),
            ("notes/readme.txt".to_string(), "failed".to_string()),
            ("ok image.png".to_string(), "ok".to_string()),
        ]
    );
    let failed = msgs.iter().find(|m| m["id"] == "notes/readme.txt").unwrap();
    assert_eq!(failed["error"], "not an image");
}

#[tokio::test]
async fn event_size_over_the_limit_is_refused_unread_and_a_new_version_is_redone() {
    let env = Env::new("hv").await;
    let cfg = Config::from_vars(&env.vars(&[
        ("THUMB_SIZES", "64"),
        ("THUMB_FORMAT", "webp"),
        ("MAX_BYTES", "50000"),
    ]))
    .unwrap();
    let handler = Handler::new(cfg, &env.sdk);

    // The event says 60 MB: refused without a GET (the object does not even exist).
    let ev = event(vec![record_json(
        "ObjectCreated:Put",
        &env.src,
        "huge.jpg",
        60_000_000,
        "e1",
    )]);
    let out = handler.handle_event(ev).await.unwrap();
    assert_eq!(
        (out[0].outcome, out[0].reason.as_deref()),
        (Outcome::Failed, Some("too many bytes"))
    );

    // Version 1, then version 2 of the same key: both processed, created_at kept.
    let v1 = quadrant_jpeg(400, 300, None);
    let e1 = env.put("pic.jpeg", v1.clone()).await;
    let out = handler
        .handle_event(event(vec![record_json(
            "ObjectCreated:Put",
            &env.src,
            "pic.jpeg",
            v1.len() as u64,
            &e1,
        )]))
        .await
        .unwrap();
    assert_eq!(out[0].outcome, Outcome::Ok);
    assert_eq!(
        out[0].thumbnails,
        [format!("64/pic.jpeg.{}.webp", cid(&e1))]
    );
    let first = env.item("pic.jpeg").await.unwrap();

    let v2 = quadrant_jpeg(300, 400, None);
    let e2 = env.put("pic.jpeg", v2.clone()).await;
    assert_ne!(e1, e2);
    // The old event arriving late finds the object already at v2 and processes v2 once.
    let out = handler
        .handle_event(event(vec![record_json(
            "ObjectCreated:Put",
            &env.src,
            "pic.jpeg",
            v1.len() as u64,
            &e1,
        )]))
        .await
        .unwrap();
    assert_eq!(
        out[0].outcome,
        Outcome::Skipped,
        "event etag matches the recorded one: {:?}",
        out[0]
    );
    let out = handler
        .handle_event(event(vec![record_json(
            "ObjectCreated:Put",
            &env.src,
            "pic.jpeg",
            v2.len() as u64,
            &e2,
        )]))
        .await
        .unwrap();
    assert_eq!(out[0].outcome, Outcome::Ok);
    let second = env.item("pic.jpeg").await.unwrap();
    assert_eq!(s(&second, "etag"), e2);
    assert_eq!(s(&second, "created_at"), s(&first, "created_at"));
    assert_eq!((n(&second, "width"), n(&second, "height")), (300, 400));
    let v2_thumb = format!("64/pic.jpeg.{}.webp", cid(&e2));
    assert_eq!(out[0].thumbnails, std::slice::from_ref(&v2_thumb));
    assert_eq!(
        env.dest_keys().await,
        std::slice::from_ref(&v2_thumb),
        "v1's thumbnail went"
    );
    let (bytes, ct) = env.get_dest(&v2_thumb).await;
    assert_eq!(ct.as_deref(), Some("image/webp"));
    let img = image::load_from_memory(&bytes).unwrap();
    assert_eq!((img.width(), img.height()), (48, 64));
}

#[tokio::test]
async fn aws_failures_are_transient_errors() {
    let env = Env::new("ht").await;
    let mut vars = env.vars(&[]);
    vars.insert("TABLE_NAME".into(), "no-such-table".into());
    let handler = Handler::new(Config::from_vars(&vars).unwrap(), &env.sdk);
    let png = small_png(50, 50);
    let etag = env.put("a.png", png.clone()).await;
    let ev = event(vec![
        record_json(
            "ObjectCreated:Put",
            &env.src,
            "a.png",
            png.len() as u64,
            &etag,
        ),
        record_json("ObjectCreated:Put", &env.dest, "ignored.png", 1, "x"),
    ]);
    let err = handler
        .handle_event(ev)
        .await
        .expect_err("must ask Lambda to retry");
    assert_eq!((err.failed, err.total), (1, 2));
    assert!(err.first.contains("a.png"), "{err}");
}

/// An animated GIF: thumbnails of its first frame, and the item in DynamoDB records how many
/// frames it has; a still image's item has no `frames`.
#[tokio::test]
async fn an_animation_records_its_frames_and_a_still_image_none() {
    let env = Env::new("hanim").await;
    let cfg = Config::from_vars(&env.vars(&[("THUMB_SIZES", "32")])).unwrap();
    let handler = Handler::new(cfg, &env.sdk);
    let mut gif = Vec::new();
    {
        let mut enc = image::codecs::gif::GifEncoder::new(&mut gif);
        for c in [
            [220u8, 30, 30],
            [30, 200, 40],
            [30, 40, 220],
            [240, 230, 30],
        ] {
            let frame = image::RgbaImage::from_pixel(48, 48, image::Rgba([c[0], c[1], c[2], 255]));
            enc.encode_frame(image::Frame::new(frame)).unwrap();
        }
    }
    let still = small_png(40, 30);
    let mut records = Vec::new();
    for (key, bytes) in [("anim ☕.gif", gif), ("still.png", still)] {
        let etag = env.put(key, bytes.clone()).await;
        records.push(record_json(
            "ObjectCreated:Put",
            &env.src,
            &encode_event_key(key),
            bytes.len() as u64,
            &etag,
        ));
    }
    let out = handler.handle_event(event(records)).await.expect("handled");
    assert!(out.iter().all(|o| o.outcome == Outcome::Ok), "{out:?}");
    let anim = env.item("anim ☕.gif").await.expect("item");
    assert_eq!(n(&anim, "frames"), 4);
    let still = env.item("still.png").await.expect("item");
    assert!(!still.contains_key("frames"), "{still:?}");
}
