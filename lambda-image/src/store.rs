//! AWS I/O: S3 get/put, the DynamoDB metadata item (conditional writes), the SNS message.
//! Every error here is treated as transient by the handler (Lambda retries the event), except
//! the outcomes that are modelled explicitly (`Fetched::Gone`, `Fetched::TooLarge`, a failed
//! write condition).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::primitives::ByteStream;
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
    pub created_at: String,
    pub updated_at: String,
    pub duration_ms: u64,
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
        item
    }
}

/// What is already recorded for a source key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing {
    pub etag: String,
    pub status: String,
    pub created_at: Option<String>,
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

/// The three AWS clients.
#[derive(Debug, Clone)]
pub struct Store {
    s3: aws_sdk_s3::Client,
    ddb: aws_sdk_dynamodb::Client,
    sns: aws_sdk_sns::Client,
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
        }
    }

    /// The recorded etag/status of `id`, read consistently.
    pub async fn existing(&self, table: &str, id: &str) -> Result<Option<Existing>, StoreError> {
        let out = self
            .ddb
            .get_item()
            .table_name(table)
            .key("id", AttributeValue::S(id.to_string()))
            .consistent_read(true)
            .projection_expression("etag, #s, created_at")
            .expression_attribute_names("#s", "status")
            .send()
            .await
            .map_err(store_err("dynamodb get_item"))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
        Ok(Some(Existing {
            etag: text("etag").unwrap_or_default(),
            status: text("status").unwrap_or_default(),
            created_at: text("created_at"),
        }))
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
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(store_err("s3 put_object"))?;
        Ok(())
    }

    /// Writes the item unless one with the same etag exists (written by a concurrent
    /// delivery of the same event). Returns whether it was written.
    pub async fn put_record(&self, table: &str, record: &ObjectRecord) -> Result<bool, StoreError> {
        let res = self
            .ddb
            .put_item()
            .table_name(table)
            .set_item(Some(record.to_item()))
            .condition_expression("attribute_not_exists(id) OR etag <> :etag")
            .expression_attribute_values(":etag", AttributeValue::S(record.etag.clone()))
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

    /// Removes the item written for `etag` (used when the SNS publish fails, so that the
    /// retried event is not skipped and the message is not lost).
    pub async fn delete_record_if(
        &self,
        table: &str,
        id: &str,
        etag: &str,
    ) -> Result<(), StoreError> {
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
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(())
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
