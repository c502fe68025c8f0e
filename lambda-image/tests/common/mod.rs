//! Shared test fixture: one moto server per test binary, AWS clients pointed at it, resources
//! with unique names, S3 events as AWS sends them.
//!
//! moto: `THUMBCTL_TEST_ENDPOINT` if set (e.g. `http://127.0.0.1:5000`), else a moto server
//! started once per test binary by the workspace's one launcher (`tests/common/moto.rs`), which
//! stops it when the test process exits, however it exits.

#![allow(dead_code)]

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_lambda_events::event::s3::S3Event;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use aws_sdk_s3::config::Credentials;

pub const REGION: &str = "us-east-1";

// The one moto launcher, shared with thumbctl's tests.
#[path = "../../../tests/common/moto.rs"]
mod moto;

use moto::Moto;

/// The moto endpoint for this test binary.
pub fn endpoint() -> &'static str {
    static SHARED: OnceLock<(String, Option<Moto>)> = OnceLock::new();
    &SHARED
        .get_or_init(|| match std::env::var("THUMBCTL_TEST_ENDPOINT") {
            Ok(e) if !e.is_empty() => (e.trim_end_matches('/').to_string(), None),
            _ => {
                let moto = Moto::start(&[]);
                (moto.url.clone(), Some(moto))
            }
        })
        .0
}

pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint())
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .load()
        .await
}

/// Environment for a child process (the Lambda binary) to reach moto.
pub fn aws_env() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint().to_string()),
        ("AWS_REGION", REGION.to_string()),
        ("AWS_ACCESS_KEY_ID", "test".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
    ]
}

/// A unique lowercase name (bucket-safe).
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{n}-{t:x}", std::process::id())
}

/// Buckets, table, topic and a queue subscribed to the topic.
pub struct Env {
    pub sdk: SdkConfig,
    pub s3: aws_sdk_s3::Client,
    pub ddb: aws_sdk_dynamodb::Client,
    pub sns: aws_sdk_sns::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub src: String,
    pub dest: String,
    pub table: String,
    pub topic: String,
    pub queue_url: String,
}

impl Env {
    pub async fn new(prefix: &str) -> Self {
        let sdk = sdk_config().await;
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk)
                .force_path_style(true)
                .build(),
        );
        let ddb = aws_sdk_dynamodb::Client::new(&sdk);
        let sns = aws_sdk_sns::Client::new(&sdk);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let src = unique(&format!("{prefix}-src"));
        let dest = unique(&format!("{prefix}-dst"));
        for b in [&src, &dest] {
            s3.create_bucket()
                .bucket(b)
                .send()
                .await
                .expect("create bucket");
        }
        let table = unique(&format!("{prefix}-items"));
        let attr = |n: &str| {
            AttributeDefinition::builder()
                .attribute_name(n)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attr")
        };
        let key = |n: &str, t| {
            KeySchemaElement::builder()
                .attribute_name(n)
                .key_type(t)
                .build()
                .expect("key")
        };
        let gsi = |name: &str, hash: &str| {
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key(hash, KeyType::Hash))
                .key_schema(key("created_at", KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .expect("gsi")
        };
        ddb.create_table()
            .table_name(&table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("id"))
            .attribute_definitions(attr("listing"))
            .attribute_definitions(attr("status"))
            .attribute_definitions(attr("created_at"))
            .key_schema(key("id", KeyType::Hash))
            .global_secondary_indexes(gsi("by-time", "listing"))
            .global_secondary_indexes(gsi("by-status", "status"))
            .send()
            .await
            .expect("create table");
        let topic = sns
            .create_topic()
            .name(unique(&format!("{prefix}-events")))
            .send()
            .await
            .expect("create topic")
            .topic_arn
            .expect("topic arn");
        let queue_url = sqs
            .create_queue()
            .queue_name(unique(&format!("{prefix}-q")))
            .send()
            .await
            .expect("create queue")
            .queue_url
            .expect("queue url");
        let queue_arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue attributes")
            .attributes
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                    .cloned()
            })
            .expect("queue arn");
        sns.subscribe()
            .topic_arn(&topic)
            .protocol("sqs")
            .endpoint(queue_arn)
            .send()
            .await
            .expect("subscribe");
        Self {
            sdk,
            s3,
            ddb,
            sns,
            sqs,
            src,
            dest,
            table,
            topic,
            queue_url,
        }
    }

    /// The function's environment variables for this environment.
    pub fn vars(&self, extra: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
        let mut m: std::collections::HashMap<String, String> = [
            ("DEST_BUCKET", self.dest.as_str()),
            ("TABLE_NAME", self.table.as_str()),
            ("TOPIC_ARN", self.topic.as_str()),
            ("SOURCE_BUCKET", self.src.as_str()),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            m.insert(k.to_string(), v.to_string());
        }
        m
    }

    /// Puts a source object and returns its ETag (unquoted, as in events).
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> String {
        let out = self
            .s3
            .put_object()
            .bucket(&self.src)
            .key(key)
            .body(bytes.into())
            .send()
            .await
            .expect("put source object");
        out.e_tag.unwrap_or_default().trim_matches('"').to_string()
    }

    pub async fn get_dest(&self, key: &str) -> (Vec<u8>, Option<String>) {
        let out = self
            .s3
            .get_object()
            .bucket(&self.dest)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("get {key}: {e:?}"));
        let ct = out.content_type.clone();
        (
            out.body
                .collect()
                .await
                .expect("body")
                .into_bytes()
                .to_vec(),
            ct,
        )
    }

    /// The destination object's `Cache-Control` (a HEAD).
    pub async fn dest_cache_control(&self, key: &str) -> Option<String> {
        self.s3
            .head_object()
            .bucket(&self.dest)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("head {key}: {e:?}"))
            .cache_control
    }

    pub async fn dest_keys(&self) -> Vec<String> {
        let out = self
            .s3
            .list_objects_v2()
            .bucket(&self.dest)
            .send()
            .await
            .expect("list");
        let mut keys: Vec<String> = out
            .contents
            .unwrap_or_default()
            .into_iter()
            .filter_map(|o| o.key)
            .collect();
        keys.sort();
        keys
    }

    pub async fn item(
        &self,
        id: &str,
    ) -> Option<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        self.ddb
            .get_item()
            .table_name(&self.table)
            .key("id", aws_sdk_dynamodb::types::AttributeValue::S(id.into()))
            .consistent_read(true)
            .send()
            .await
            .expect("get item")
            .item
    }

    /// SNS messages (the inner `Message`, parsed as JSON) that arrived on the queue within
    /// `wait` (stops early once `want` messages were read).
    pub async fn messages(&self, want: usize, wait: Duration) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + wait;
        let mut out = Vec::new();
        while out.len() < want && Instant::now() < deadline {
            let resp = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("receive");
            for m in resp.messages.unwrap_or_default() {
                let body = m.body.clone().unwrap_or_default();
                let envelope: serde_json::Value =
                    serde_json::from_str(&body).expect("SNS envelope is JSON");
                let inner = envelope["Message"]
                    .as_str()
                    .expect("Message field")
                    .to_string();
                out.push(serde_json::from_str(&inner).expect("message body is JSON"));
                if let Some(h) = m.receipt_handle {
                    let _ = self
                        .sqs
                        .delete_message()
                        .queue_url(&self.queue_url)
                        .receipt_handle(h)
                        .send()
                        .await;
                }
            }
        }
        out
    }
}

/// Percent-encodes a key as S3 does in event notifications (like Python's `quote_plus`:
/// space becomes `+`, everything but unreserved characters and `/` is `%XX` of UTF-8).
pub fn encode_event_key(key: &str) -> String {
    let mut out = String::new();
    for b in key.bytes() {
        match b {
            b' ' => out.push('+'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// What thumbnails are written with: their keys change with the content, so they never do.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The content id thumbnail keys carry for an original of `etag`: its first 16 hex digits
/// (written out here rather than taken from lambda-image, so that the tests pin the key form).
pub fn cid(etag: &str) -> String {
    let hex: String = etag
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    assert!(hex.len() >= 16, "an ETag of moto is 32 hex digits: {etag}");
    hex[..16].to_string()
}

/// One record of an S3 event, as AWS sends it (`key` must already be URL-encoded).
pub fn record_json(
    event_name: &str,
    bucket: &str,
    encoded_key: &str,
    size: u64,
    etag: &str,
) -> serde_json::Value {
    serde_json::json!({
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": "2026-11-25T12:00:00.000Z",
        "eventName": event_name,
        "userIdentity": { "principalId": "AWS:AIDAEXAMPLE" },
        "requestParameters": { "sourceIPAddress": "127.0.0.1" },
        "responseElements": {
            "x-amz-request-id": "C3D13FE58DE4C810",
            "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "thumbnails",
            "bucket": {
                "name": bucket,
                "ownerIdentity": { "principalId": "A3NL1KOZZKExample" },
                "arn": format!("arn:aws:s3:::{bucket}")
            },
            "object": {
                "key": encoded_key,
                "size": size,
                "eTag": etag,
                "sequencer": "0055AED6DCD90281E5"
            }
        }
    })
}

pub fn event(records: Vec<serde_json::Value>) -> S3Event {
    serde_json::from_value(serde_json::json!({ "Records": records })).expect("valid S3 event")
}

// ------------------------------------------------------------------ test images

pub fn quadrant_jpeg(w: u32, h: u32, exif_orientation: Option<u16>) -> Vec<u8> {
    let colours: [[u8; 3]; 4] = [[230, 20, 20], [20, 200, 40], [20, 40, 220], [240, 230, 30]];
    let mut data = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let q = usize::from(x >= w / 2) + 2 * usize::from(y >= h / 2);
            data.extend_from_slice(&colours[q]);
        }
    }
    let mut out = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut out, 90);
    if let Some(o) = exif_orientation {
        let mut t = b"II*\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0".to_vec();
        t.extend_from_slice(&o.to_le_bytes());
        t.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        enc.add_exif_metadata(&t).expect("exif");
    }
    enc.encode(&data, w as u16, h as u16, jpeg_encoder::ColorType::Rgb)
        .expect("encode");
    out
}

pub fn small_png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(w, h, image::Rgb([10, 120, 200]));
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("png");
    out.into_inner()
}
