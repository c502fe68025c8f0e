//! AWS I/O: S3 get/put, the DynamoDB metadata item (conditional writes), the SNS message.
//! Every error here is treated as transient by the handler (Lambda retries the event), except
//! the outcomes that are modelled explicitly (`Fetched::Gone`, `Fetched::TooLarge`, a failed
//! write condition).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::primitives::ByteStream;
use futures::future::try_join_all;
use serde::Serialize;

/// A transient AWS failure (throttling, 5xx, network, permissions).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{op}: {detail}")]
pub struct StoreError {
    pub op: &'static str,
    pub detail: String,
}

fn store_err<E>(op: &'static str) -> impl FnOnce(E) -> StoreError
where
    E: std::error::Error + 'static,
{
    move |e| StoreError {
        op,
        detail: aws_smithy_types::error::display::DisplayErrorContext(&e).to_string(),
    }
}

/// `ok` or `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failed => "failed",
        }
    }
}

/// One thumbnail as recorded in the item and the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThumbRecord {
    pub size: String,
    pub key: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
    pub content_type: String,
}

/// The facts about one processed source object: the DynamoDB item (plus `listing`) and the
/// SNS message body (JSON) carry exactly these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectRecord {
    pub id: String,
    pub source_bucket: String,
    pub source_key: String,
    pub etag: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub content_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    pub bytes: u64,
    pub thumbnails: Vec<ThumbRecord>,
    /// Frames of an animated source (absent for a still image): its thumbnails show the first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames: Option<u32>,
    /// A ThumbHash (base64) a page paints as a blurred preview before a thumbnail loads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<String>,
    /// The thumbnails were made with `keep_copyright` (they carry the original's EXIF Artist
    /// and Copyright, where it had them). In the item only, so that turning the option on or
    /// off makes earlier thumbnails out of date for `reprocess`.
    #[serde(skip)]
    pub keep_copyright: bool,
    pub created_at: String,
    pub updated_at: String,
    pub duration_ms: u64,
    /// Thumbnails of an earlier version that this one replaced and that may not be deleted
    /// yet: they go only after this item is written (so that a reader of the item never gets
    /// keys that are gone), and they are listed here so that a delete that fails is not
    /// forgotten (a retry, a duplicate delivery, and the removal delete them). Not in the
    /// message.
    #[serde(skip)]
    pub superseded: Vec<String>,
    /// The SNS publish failed: the item stays (it lists every thumbnail that exists) but is
    /// not [current](crate::handler::is_current), so that the retry does the work again and
    /// sends the message.
    #[serde(skip)]
    pub unpublished: bool,
}

/// Constant partition value of the `by-time` index.
pub const LISTING: &str = "all";

impl ObjectRecord {
    /// The DynamoDB item.
    pub fn to_item(&self) -> HashMap<String, AttributeValue> {
        let s = |v: &str| AttributeValue::S(v.to_string());
        let n = |v: u64| AttributeValue::N(v.to_string());
        let mut item = HashMap::new();
        item.insert("id".into(), s(&self.id));
        item.insert("source_bucket".into(), s(&self.source_bucket));
        item.insert("source_key".into(), s(&self.source_key));
        item.insert("etag".into(), s(&self.etag));
        item.insert("status".into(), s(self.status.as_str()));
        if let Some(e) = &self.error {
            item.insert("error".into(), s(e));
        }
        item.insert("content_type".into(), s(&self.content_type));
        if let Some(w) = self.width {
            item.insert("width".into(), n(u64::from(w)));
        }
        if let Some(h) = self.height {
            item.insert("height".into(), n(u64::from(h)));
        }
        item.insert("bytes".into(), n(self.bytes));
        let thumbs = self
            .thumbnails
            .iter()
            .map(|t| {
                AttributeValue::M(HashMap::from([
                    ("size".to_string(), s(&t.size)),
                    ("key".to_string(), s(&t.key)),
                    ("width".to_string(), n(u64::from(t.width))),
                    ("height".to_string(), n(u64::from(t.height))),
                    ("bytes".to_string(), n(t.bytes)),
                    ("content_type".to_string(), s(&t.content_type)),
                ]))
            })
            .collect();
        item.insert("thumbnails".into(), AttributeValue::L(thumbs));
        item.insert("created_at".into(), s(&self.created_at));
        item.insert("updated_at".into(), s(&self.updated_at));
        item.insert("duration_ms".into(), n(self.duration_ms));
        item.insert("listing".into(), s(LISTING));
        if let Some(f) = self.frames {
            item.insert("frames".into(), n(u64::from(f)));
        }
        if let Some(p) = &self.placeholder {
            item.insert("placeholder".into(), s(p));
        }
        if !self.superseded.is_empty() {
            let keys = self.superseded.iter().map(|k| s(k)).collect();
            item.insert("superseded".into(), AttributeValue::L(keys));
        }
        if self.unpublished {
            item.insert("published".into(), AttributeValue::Bool(false));
        }
        if self.keep_copyright {
            item.insert("keep_copyright".into(), AttributeValue::Bool(true));
        }
        item
    }
}

/// One thumbnail as an item lists it (what [`crate::handler::is_current`] and the delete
/// path need).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedThumb {
    pub size: String,
    pub key: String,
    pub content_type: String,
}

/// What is already recorded for a source key: the DynamoDB item, read back.
///
/// Built with [`Existing::from_item`] from a `GetItem`/`Query`/`Scan` item, so that thumbctl
/// (`reprocess --only-missing`) reads items exactly as the function does. Attributes that are
/// missing or of the wrong type read as empty/`None` rather than failing: an item written by an
/// older version must still be usable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Existing {
    pub id: String,
    pub etag: String,
    pub status: String,
    pub error: Option<String>,
    pub bytes: Option<u64>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub thumbnails: Vec<RecordedThumb>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    /// See [`ObjectRecord::superseded`].
    pub superseded: Vec<String>,
    /// See [`ObjectRecord::unpublished`].
    pub unpublished: bool,
    /// See [`ObjectRecord::keep_copyright`].
    pub keep_copyright: bool,
}

impl Existing {
    pub fn from_item(item: &HashMap<String, AttributeValue>) -> Self {
        let text = |m: &HashMap<String, AttributeValue>, k: &str| {
            m.get(k).and_then(|v| v.as_s().ok()).cloned()
        };
        let num = |k: &str| {
            item.get(k)
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse::<u64>().ok())
        };
        let thumbnails = item
            .get("thumbnails")
            .and_then(|v| v.as_l().ok())
            .map(|l| {
                l.iter()
                    .filter_map(|t| t.as_m().ok())
                    .map(|m| RecordedThumb {
                        size: text(m, "size").unwrap_or_default(),
                        key: text(m, "key").unwrap_or_default(),
                        content_type: text(m, "content_type").unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            id: text(item, "id").unwrap_or_default(),
            etag: text(item, "etag").unwrap_or_default(),
            status: text(item, "status").unwrap_or_default(),
            error: text(item, "error"),
            bytes: num("bytes"),
            width: num("width").and_then(|n| u32::try_from(n).ok()),
            height: num("height").and_then(|n| u32::try_from(n).ok()),
            thumbnails,
            created_at: text(item, "created_at"),
            updated_at: text(item, "updated_at"),
            superseded: item
                .get("superseded")
                .and_then(|v| v.as_l().ok())
                .map(|l| {
                    l.iter()
                        .filter_map(|k| k.as_s().ok())
                        .filter(|k| !k.is_empty())
                        .cloned()
                        .collect()
                })
                .unwrap_or_default(),
            unpublished: item
                .get("published")
                .and_then(|v| v.as_bool().ok())
                .is_some_and(|published| !published),
            keep_copyright: item
                .get("keep_copyright")
                .and_then(|v| v.as_bool().ok())
                .is_some_and(|kept| *kept),
        }
    }
}

/// Result of fetching a source object.
#[derive(Debug)]
pub enum Fetched {
    /// Deleted since the event was sent.
    Gone,
    /// Over the byte limit: not downloaded.
    TooLarge {
        etag: String,
        size: u64,
        content_type: Option<String>,
    },
    Body {
        etag: String,
        content_type: Option<String>,
        bytes: bytes::Bytes,
    },
}

/// The `Cache-Control` of every thumbnail. A thumbnail's key carries its original's content id
/// and the output settings ([`crate::keys::thumbnail_key`]), so the bytes under a key never
/// change and a CDN and browsers may keep them for a year without asking again. What is
/// deleted is invalidated at the CDN ([`Store::invalidate`]); browsers that already hold a
/// copy keep it.
pub const THUMBNAIL_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

/// S3 ETags come quoted from the API and unquoted in events.
pub fn normalize_etag(etag: &str) -> String {
    etag.trim().trim_matches('"').to_string()
}

/// Current time as fixed-width RFC 3339 UTC with milliseconds (sorts as text).
pub fn now_rfc3339() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// How long [`Store::invalidate`] keeps asking while CloudFront answers
/// `TooManyInvalidationsInProgress` (3,000 paths in progress per distribution): an
/// invalidation usually completes within a minute or two, and the function's own timeout
/// bounds the wait anyway; what is left then fails the event, and Lambda retries it.
const INVALIDATION_PATIENCE: std::time::Duration = std::time::Duration::from_secs(40);

/// The AWS clients.
#[derive(Debug, Clone)]
pub struct Store {
    s3: aws_sdk_s3::Client,
    ddb: aws_sdk_dynamodb::Client,
    sns: aws_sdk_sns::Client,
    cloudfront: aws_sdk_cloudfront::Client,
}

impl Store {
    /// S3 uses path-style addressing when the config carries an endpoint URL (an emulator
    /// such as moto, via `AWS_ENDPOINT_URL`), or `AWS_ENDPOINT_URL_S3` is set.
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        let s3_conf = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(
                sdk.endpoint_url().is_some()
                    || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some_and(|v| !v.is_empty()),
            )
            .build();
        Self {
            s3: aws_sdk_s3::Client::from_conf(s3_conf),
            ddb: aws_sdk_dynamodb::Client::new(sdk),
            sns: aws_sdk_sns::Client::new(sdk),
            cloudfront: aws_sdk_cloudfront::Client::new(sdk),
        }
    }

    /// Makes CloudFront forget `keys` of the destination bucket (deleted thumbnails, which it
    /// would otherwise serve for up to a year): batches of individual paths
    /// ([`crate::keys::invalidation_batches`]), each with its own caller reference kept across
    /// retries, so that an answer lost on the way does not make a second invalidation. While
    /// CloudFront has too many paths in progress (`TooManyInvalidationsInProgress`, HTTP 400,
    /// which the SDK does not retry) it waits and asks again, up to
    /// [`INVALIDATION_PATIENCE`]; then, and on any other error, the event fails and Lambda
    /// retries it (the handler invalidates before it drops the item that lists the keys).
    pub async fn invalidate(
        &self,
        distribution_id: &str,
        keys: &[String],
    ) -> Result<(), StoreError> {
        use aws_sdk_cloudfront::types::{InvalidationBatch, Paths};
        let started = std::time::Instant::now();
        for paths in crate::keys::invalidation_batches(keys.iter().map(String::as_str)) {
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or_default();
            let reference = crate::keys::invalidation_reference(&paths, now_ms);
            let batch = InvalidationBatch::builder()
                .caller_reference(&reference)
                .paths(
                    Paths::builder()
                        .quantity(paths.len() as i32)
                        .set_items(Some(paths))
                        .build()
                        .map_err(store_err("cloudfront create_invalidation"))?,
                )
                .build()
                .map_err(store_err("cloudfront create_invalidation"))?;
            let mut delay = std::time::Duration::from_millis(500);
            loop {
                let sent = self
                    .cloudfront
                    .create_invalidation()
                    .distribution_id(distribution_id)
                    .invalidation_batch(batch.clone())
                    .send()
                    .await;
                match sent {
                    Ok(_) => break,
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|se| se.is_too_many_invalidations_in_progress())
                            && started.elapsed() + delay < INVALIDATION_PATIENCE =>
                    {
                        tracing::info!(
                            distribution_id,
                            "CloudFront has too many invalidations in progress; waiting"
                        );
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(std::time::Duration::from_secs(10));
                    }
                    Err(e) => return Err(store_err("cloudfront create_invalidation")(e)),
                }
            }
        }
        Ok(())
    }

    /// The item of `id`, read consistently.
    pub async fn existing(&self, table: &str, id: &str) -> Result<Option<Existing>, StoreError> {
        let out = self
            .ddb
            .get_item()
            .table_name(table)
            .key("id", AttributeValue::S(id.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_err("dynamodb get_item"))?;
        Ok(out.item.as_ref().map(Existing::from_item))
    }

    /// Whether the object exists now (a HEAD). Needs `s3:ListBucket` on the bucket as well as
    /// `s3:GetObject`, or S3 answers 403 for a missing key, which is then an error here.
    pub async fn exists(&self, bucket: &str, key: &str) -> Result<bool, StoreError> {
        match self.s3.head_object().bucket(bucket).key(key).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|se| se.is_not_found()) => Ok(false),
            Err(e) => Err(store_err("s3 head_object")(e)),
        }
    }

    /// Deletes objects; a key that is already gone is no error (S3 answers 204 either way).
    pub async fn delete_objects(&self, bucket: &str, keys: &[String]) -> Result<(), StoreError> {
        try_join_all(keys.iter().map(|k| async move {
            self.s3
                .delete_object()
                .bucket(bucket)
                .key(k)
                .send()
                .await
                .map_err(store_err("s3 delete_object"))
        }))
        .await?;
        Ok(())
    }

    /// Downloads a source object unless it is larger than `max_bytes`.
    pub async fn fetch(
        &self,
        bucket: &str,
        key: &str,
        max_bytes: u64,
    ) -> Result<Fetched, StoreError> {
        let resp = match self.s3.get_object().bucket(bucket).key(key).send().await {
            Ok(r) => r,
            Err(e) => {
                if e.as_service_error().is_some_and(|se| se.is_no_such_key()) {
                    return Ok(Fetched::Gone);
                }
                return Err(store_err("s3 get_object")(e));
            }
        };
        let etag = normalize_etag(resp.e_tag().unwrap_or_default());
        let content_type = resp.content_type().map(str::to_string);
        let declared = resp.content_length().unwrap_or(0).max(0) as u64;
        if declared > max_bytes {
            return Ok(Fetched::TooLarge {
                etag,
                size: declared,
                content_type,
            });
        }
        let bytes = resp
            .body
            .collect()
            .await
            .map_err(store_err("s3 get_object body"))?
            .into_bytes();
        if bytes.len() as u64 > max_bytes {
            return Ok(Fetched::TooLarge {
                etag,
                size: bytes.len() as u64,
                content_type,
            });
        }
        Ok(Fetched::Body {
            etag,
            content_type,
            bytes,
        })
    }

    pub async fn put_thumbnail(
        &self,
        bucket: &str,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<(), StoreError> {
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .cache_control(THUMBNAIL_CACHE_CONTROL)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(store_err("s3 put_object"))?;
        Ok(())
    }

    /// Writes the item unless one with the same etag exists that is not the one this
    /// delivery read (`replaces`: its `updated_at`). The condition makes a concurrent duplicate
    /// delivery lose: both read the same item, the first write changes `updated_at`, the second
    /// write's condition then fails. Returns whether it was written.
    pub async fn put_record(
        &self,
        table: &str,
        record: &ObjectRecord,
        replaces: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut req = self
            .ddb
            .put_item()
            .table_name(table)
            .set_item(Some(record.to_item()))
            .expression_attribute_values(":etag", AttributeValue::S(record.etag.clone()));
        req = match replaces {
            Some(prev) => req
                .condition_expression(
                    "attribute_not_exists(id) OR etag <> :etag OR updated_at = :prev",
                )
                .expression_attribute_values(":prev", AttributeValue::S(prev.to_string())),
            None => req.condition_expression("attribute_not_exists(id) OR etag <> :etag"),
        };
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(store_err("dynamodb put_item")(e)),
        }
    }

    /// Writes `record` again (to drop its `superseded` list, or to mark it unpublished) if the
    /// item is still the one this delivery wrote (same `updated_at`); returns whether it did.
    /// A newer write wins: it read this item and took over its thumbnails.
    pub async fn rewrite_record(
        &self,
        table: &str,
        record: &ObjectRecord,
    ) -> Result<bool, StoreError> {
        let res = self
            .ddb
            .put_item()
            .table_name(table)
            .set_item(Some(record.to_item()))
            .condition_expression("updated_at = :ours")
            .expression_attribute_values(":ours", AttributeValue::S(record.updated_at.clone()))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(store_err("dynamodb put_item")(e)),
        }
    }

    /// Removes the item if it still has `etag`; returns whether it did. Used by the delete
    /// path (so that an item a re-upload wrote meanwhile stays).
    pub async fn delete_record_if(
        &self,
        table: &str,
        id: &str,
        etag: &str,
    ) -> Result<bool, StoreError> {
        let res = self
            .ddb
            .delete_item()
            .table_name(table)
            .key("id", AttributeValue::S(id.to_string()))
            .condition_expression("etag = :etag")
            .expression_attribute_values(":etag", AttributeValue::S(etag.to_string()))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(store_err("dynamodb delete_item")(e)),
        }
    }

    pub async fn publish(&self, topic_arn: &str, record: &ObjectRecord) -> Result<(), StoreError> {
        let body = serde_json::to_string(record).map_err(|e| StoreError {
            op: "sns message",
            detail: e.to_string(),
        })?;
        self.sns
            .publish()
            .topic_arn(topic_arn)
            .subject(format!("thumbnail {}", record.status.as_str()))
            .message(body)
            .send()
            .await
            .map_err(store_err("sns publish"))?;
        Ok(())
    }
}
