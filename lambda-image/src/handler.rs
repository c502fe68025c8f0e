//! The event handler: every S3 record, every Batch Operations task, each on its own.
//!
//! Per S3 record: ignore what is not ours (the destination bucket, a foreign bucket when
//! `SOURCE_BUCKET` is set, events other than object creation and removal). For a creation
//! (and a Batch Operations task): skip what is recorded with the same ETag and is
//! [current](is_current); fetch (refusing objects over `MAX_BYTES` unread); make the
//! thumbnails; put them (their keys carry the content id of the original, so new content gets
//! new keys); write the item with a conditional put (a concurrent duplicate delivery loses the
//! race and is skipped), listing the thumbnails of the replaced item that it does not keep as
//! `superseded`; publish the SNS message; then delete the superseded thumbnails and drop the
//! list. For a removal (`ObjectRemoved:*`,
//! `LifecycleExpiration:*`): unless the object exists again, delete its thumbnails and item.
//!
//! Permanent failures (what the engine refuses) become `failed` items and messages, and the
//! record counts as handled. Transient failures (any AWS error) are collected; after all
//! records were tried, `handle_event` returns `Err` so that Lambda retries the event — the
//! records that were completed are then skipped. `handle_batch` never fails as a whole: it
//! answers each task (`TemporaryFailure` makes Batch Operations redrive it).

use std::collections::{BTreeSet, HashSet};
use std::time::Instant;

use aws_lambda_events::event::s3::{S3Event, S3EventRecord};
use futures::future::try_join_all;
use serde::Serialize;

use crate::batch::{BatchEvent, BatchResponse, BatchResult, BatchTask, ResultCode};
use crate::config::Config;
use crate::engine::{self, EngineError, ThumbOptions, Thumbnail, Thumbnails};
use crate::invocation::{HandlerError, Invocation, InvokeError, classify};
use crate::keys::{ContentId, decode_event_key, thumbnail_key};
use crate::store::{
    Existing, Fetched, ObjectRecord, Status, Store, StoreError, ThumbRecord, normalize_etag,
    now_rfc3339,
};

/// The event names of a removal this function follows (`s3:ObjectRemoved:*` and
/// `s3:LifecycleExpiration:*` in the notification configuration).
pub const REMOVAL_EVENTS: [&str; 4] = [
    "ObjectRemoved:Delete",
    "ObjectRemoved:DeleteMarkerCreated",
    "LifecycleExpiration:Delete",
    "LifecycleExpiration:DeleteMarkerCreated",
];

/// What happened to one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Thumbnails made and recorded.
    Ok,
    /// Permanently failed (not an image, corrupt, over a limit, ...): recorded as `failed`.
    Failed,
    /// Already processed (same key and ETag, with the current settings): nothing done.
    Skipped,
    /// Not for us (destination or foreign bucket, another event, object gone or back).
    Ignored,
    /// The source was removed: its thumbnails and item were deleted.
    Deleted,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Ignored => "ignored",
            Self::Deleted => "deleted",
        }
    }
}

/// The result of one record, as logged and returned in the Lambda response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordOutcome {
    pub bucket: String,
    /// The decoded source key.
    pub key: String,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Keys of the thumbnails written to the destination bucket.
    pub thumbnails: Vec<String>,
    /// Keys deleted from the destination bucket (a removal, or thumbnails a re-run no longer
    /// makes).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deleted: Vec<String>,
    pub ms: u64,
}

/// Reasons (`EngineError::reason`) of a failed item that say nothing about the settings:
/// the same bytes are refused again whatever they are.
const SETTINGS_INDEPENDENT_FAILURES: [&str; 5] = [
    "empty object",
    "not an image",
    "unsupported",
    "corrupt image",
    "encode failed",
];

/// Whether `item` is what processing its object (the version it records) with `opts` would
/// produce, so that processing it again can be skipped. The ETag is not part of it: the handler
/// (and `reprocess --only-missing`) also require the item's ETag to be the object's.
///
/// - `ok`: one thumbnail per configured size, no other, each at the key
///   [`thumbnail_key`] gives for the item's ETag and the configured format, quality and
///   copyright setting, and with that format's content type. Items written before keys
///   carried a content id are therefore not current: their thumbnails are redone under new
///   keys (and the old ones deleted).
/// - `failed`: current when the refusal would happen again with `opts`. Refusals of the bytes
///   themselves (not an image, corrupt, empty, unsupported, encode failed) always would.
///   "too many bytes" and "too many pixels" are redone only when the recorded size (or
///   dimensions) now fit `MAX_BYTES` (`MAX_PIXELS`); without them (an item written before they
///   were recorded, or a decoder's own limit) the item counts as current, because redoing it
///   on every delivery would send a new message each time. "bad options" is always redone.
/// - anything else (an unknown status), or an item whose SNS message was not sent: not
///   current.
///
/// Quality is not recorded in the item, but it is in the keys (unless the format is PNG,
/// which ignores it), so a change of `THUMB_QUALITY` makes an `ok` item stale.
pub fn is_current(item: &Existing, opts: &ThumbOptions) -> bool {
    if item.unpublished {
        return false;
    }
    match item.status.as_str() {
        "ok" => {
            let Some(id) = ContentId::from_etag(&item.etag) else {
                return false;
            };
            item.keep_copyright == opts.keep_copyright
                && item.thumbnails.len() == opts.sizes.len()
                && opts.sizes.iter().all(|spec| {
                    let (size, key) = (spec.to_string(), thumbnail_key(spec, &item.id, &id, opts));
                    item.thumbnails.iter().any(|t| {
                        t.size == size
                            && t.key == key
                            && t.content_type == opts.format.content_type()
                    })
                })
        }
        "failed" => match item.error.as_deref() {
            Some("too many bytes") => item.bytes.is_none_or(|b| b > opts.max_bytes),
            Some("too many pixels") => match (item.width, item.height) {
                (Some(w), Some(h)) => u64::from(w) * u64::from(h) > opts.max_pixels,
                _ => true,
            },
            Some(r) => SETTINGS_INDEPENDENT_FAILURES.contains(&r),
            None => false,
        },
        _ => false,
    }
}

pub struct Handler {
    config: Config,
    store: Store,
}

/// Facts of an object-created record that spare work: its ETag (skip without a GET) and size
/// (refuse without a GET). A Batch Operations task has neither.
#[derive(Debug, Default, Clone)]
struct Hint {
    etag: Option<String>,
    size: Option<u64>,
}

impl Handler {
    pub fn new(config: Config, aws_sdk_config: &aws_config::SdkConfig) -> Self {
        Self {
            config,
            store: Store::new(aws_sdk_config),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Any payload the function is sent: an S3 event (the response is `{"records": [...]}`),
    /// a Batch Operations request (the response is a [`BatchResponse`]), S3's test event
    /// (`{"records": []}`). Anything else is an [`InvokeError::Unsupported`].
    pub async fn handle_invocation(
        &self,
        payload: serde_json::Value,
    ) -> Result<serde_json::Value, InvokeError> {
        match classify(payload)? {
            Invocation::S3(event) => {
                let records = self.handle_event(event).await?;
                Ok(serde_json::json!({ "records": records }))
            }
            Invocation::Batch(event) => Ok(serde_json::json!(self.handle_batch(event).await)),
            Invocation::S3Test => Ok(serde_json::json!({ "records": [] })),
        }
    }

    pub async fn handle_event(&self, event: S3Event) -> Result<Vec<RecordOutcome>, HandlerError> {
        let total = event.records.len();
        let mut outcomes = Vec::with_capacity(total);
        let mut transient: Vec<String> = Vec::new();
        for record in &event.records {
            let started = Instant::now();
            let bucket = record.s3.bucket.name.clone().unwrap_or_default();
            let key = decode_event_key(record.s3.object.key.as_deref().unwrap_or_default());
            let result = self.handle_record(record, &bucket, &key, started).await;
            match self.logged(result, &bucket, &key, started) {
                Ok(o) => outcomes.push(o),
                Err(e) => transient.push(format!("{key}: {e}")),
            }
        }
        match transient.first() {
            Some(first) => Err(HandlerError {
                failed: transient.len(),
                total,
                first: first.clone(),
            }),
            None => Ok(outcomes),
        }
    }

    /// A Batch Operations request: each task is processed as an `ObjectCreated` record of its
    /// object (skipped when current) and answered on its own: `Succeeded` for ok and skipped,
    /// `PermanentFailure` for what the engine refuses (recorded as a failed item) and for
    /// what the function does not handle (a missing object, another bucket),
    /// `TemporaryFailure` for AWS errors (Batch Operations redrives the task).
    pub async fn handle_batch(&self, event: BatchEvent) -> BatchResponse {
        let mut results = Vec::with_capacity(event.tasks.len());
        for task in &event.tasks {
            results.push(self.handle_task(task).await);
        }
        BatchResponse {
            invocation_schema_version: event.invocation_schema_version,
            treat_missing_keys_as: ResultCode::PermanentFailure,
            invocation_id: event.invocation_id,
            results,
        }
    }

    async fn handle_task(&self, task: &BatchTask) -> BatchResult {
        let started = Instant::now();
        let answer = |code, text: String| BatchResult {
            task_id: task.task_id.clone(),
            result_code: code,
            result_string: text,
        };
        let key = task.key();
        let Some(bucket) = task.bucket() else {
            return answer(ResultCode::PermanentFailure, "task without a bucket".into());
        };
        let result = match self.not_ours(bucket, &key) {
            Some(why) => Ok(self.done(bucket, &key, started, Outcome::Ignored, Some(why))),
            None => {
                self.handle_created(bucket, &key, Hint::default(), started)
                    .await
            }
        };
        match self.logged(result, bucket, &key, started) {
            Ok(o) => {
                let text = match &o.reason {
                    Some(r) => format!("{}: {r}", o.outcome.as_str()),
                    None => format!("{} ({} thumbnails)", o.outcome.as_str(), o.thumbnails.len()),
                };
                let code = match o.outcome {
                    Outcome::Ok | Outcome::Skipped => ResultCode::Succeeded,
                    Outcome::Failed | Outcome::Ignored | Outcome::Deleted => {
                        ResultCode::PermanentFailure
                    }
                };
                answer(code, text)
            }
            Err(e) => answer(ResultCode::TemporaryFailure, e.to_string()),
        }
    }

    /// One log line per object, whatever happened.
    fn logged(
        &self,
        result: Result<RecordOutcome, StoreError>,
        bucket: &str,
        key: &str,
        started: Instant,
    ) -> Result<RecordOutcome, StoreError> {
        match &result {
            Ok(o) => tracing::info!(
                bucket = %o.bucket,
                key = %o.key,
                outcome = o.outcome.as_str(),
                reason = o.reason.as_deref().unwrap_or(""),
                sizes = %self.sizes_text(),
                thumbnails = o.thumbnails.len(),
                deleted = o.deleted.len(),
                ms = o.ms,
                "object"
            ),
            Err(e) => tracing::error!(
                bucket = %bucket,
                key = %key,
                outcome = "retry",
                reason = %e,
                sizes = %self.sizes_text(),
                ms = started.elapsed().as_millis() as u64,
                "object"
            ),
        }
        result
    }

    fn sizes_text(&self) -> String {
        let sizes: Vec<String> = self
            .config
            .thumb
            .sizes
            .iter()
            .map(|s| s.to_string())
            .collect();
        sizes.join(",")
    }

    fn done(
        &self,
        bucket: &str,
        key: &str,
        started: Instant,
        outcome: Outcome,
        reason: Option<String>,
    ) -> RecordOutcome {
        RecordOutcome {
            bucket: bucket.to_string(),
            key: key.to_string(),
            outcome,
            reason,
            etag: None,
            thumbnails: Vec::new(),
            deleted: Vec::new(),
            ms: started.elapsed().as_millis() as u64,
        }
    }

    /// Why an object is not this function's business, if it is not.
    fn not_ours(&self, bucket: &str, key: &str) -> Option<String> {
        let cfg = &self.config;
        if bucket.is_empty() || key.is_empty() {
            return Some("record without bucket or key".into());
        }
        if bucket == cfg.dest_bucket {
            return Some("event from the destination bucket".into());
        }
        match &cfg.source_bucket {
            Some(src) if bucket != src => Some(format!("bucket is not the source bucket {src}")),
            _ => None,
        }
    }

    async fn handle_record(
        &self,
        record: &S3EventRecord,
        bucket: &str,
        key: &str,
        started: Instant,
    ) -> Result<RecordOutcome, StoreError> {
        let event_name = record.event_name.as_deref().unwrap_or_default();
        let is_creation = event_name.is_empty() || event_name.starts_with("ObjectCreated:");
        let is_removal = REMOVAL_EVENTS.contains(&event_name);
        if !is_creation && !is_removal {
            let why = format!("{event_name} is neither an object creation nor a removal");
            return Ok(self.done(bucket, key, started, Outcome::Ignored, Some(why)));
        }
        if let Some(why) = self.not_ours(bucket, key) {
            return Ok(self.done(bucket, key, started, Outcome::Ignored, Some(why)));
        }
        if is_removal {
            return self.handle_removed(bucket, key, started).await;
        }
        let hint = Hint {
            etag: record.s3.object.e_tag.as_deref().map(normalize_etag),
            size: record.s3.object.size.map(|s| s.max(0) as u64),
        };
        self.handle_created(bucket, key, hint, started).await
    }

    /// The source object was removed. Its `sequencer` is not used: items written by
    /// `invoke-local` and Batch Operations carry no S3 sequencer (or a made-up one) to compare
    /// with, while a HEAD tells what is true now (S3 is strongly consistent), which is what the
    /// thumbnails must follow.
    async fn handle_removed(
        &self,
        bucket: &str,
        key: &str,
        started: Instant,
    ) -> Result<RecordOutcome, StoreError> {
        let cfg = &self.config;
        let existing = self.store.existing(&cfg.table_name, key).await?;
        if self.store.exists(bucket, key).await? {
            let why = "the source object exists again (uploaded after this removal): its thumbnails and item stay";
            return Ok(self.done(bucket, key, started, Outcome::Ignored, Some(why.into())));
        }
        // The item's keys (what older settings made), the superseded ones whose delete may
        // have failed, and the current settings' keys for the item's content (what a concurrent
        // run may have left). Without an item no content id is known: the event carries none.
        let current_keys = existing.iter().flat_map(|e| {
            let id = ContentId::from_etag(&e.etag);
            cfg.thumb.sizes.iter().filter_map(move |spec| {
                id.as_ref()
                    .map(|id| thumbnail_key(spec, key, id, &cfg.thumb))
            })
        });
        let keys: BTreeSet<String> = existing
            .iter()
            .flat_map(|e| {
                e.thumbnails
                    .iter()
                    .map(|t| t.key.clone())
                    .chain(e.superseded.iter().cloned())
            })
            .filter(|k| !k.is_empty())
            .chain(current_keys)
            .collect();
        let mut keys: Vec<String> = keys.into_iter().collect();
        // Before the item goes: a retry after a failed invalidation still finds the keys.
        self.forget(&keys).await?;
        let item_removed = match &existing {
            Some(ex) => {
                self.store
                    .delete_record_if(&cfg.table_name, key, &ex.etag)
                    .await?
            }
            None => false,
        };

        // A re-upload between the HEAD above and the deletes: its thumbnails may be among the
        // keys just deleted while its item says ok. Take its item away and process the object
        // now, so that what is stored matches the object.
        if self.store.exists(bucket, key).await? {
            if let Some(now) = self.store.existing(&cfg.table_name, key).await? {
                // Once its item is gone nothing lists these; what the object still needs is
                // made again just below.
                let listed: Vec<String> = now
                    .thumbnails
                    .iter()
                    .map(|t| t.key.clone())
                    .chain(now.superseded.iter().cloned())
                    .filter(|k| !k.is_empty() && !keys.contains(k))
                    .collect();
                self.forget(&listed).await?;
                keys.extend(listed);
                self.store
                    .delete_record_if(&cfg.table_name, key, &now.etag)
                    .await?;
            }
            let mut o = self
                .handle_created(bucket, key, Hint::default(), started)
                .await?;
            o.reason = Some(match o.reason {
                Some(r) => {
                    format!("re-uploaded while its removal was handled, processed again: {r}")
                }
                None => "re-uploaded while its removal was handled, processed again".into(),
            });
            o.deleted = keys;
            return Ok(o);
        }
        if existing.is_some() && !item_removed {
            // The item changed after it was read, yet the object is gone: read again on retry.
            return Err(StoreError {
                op: "dynamodb delete_item",
                detail: "the item changed while the removal was handled".into(),
            });
        }
        let (outcome, reason) = match &existing {
            Some(_) => (Outcome::Deleted, None),
            None => (
                Outcome::Ignored,
                Some("nothing recorded (already deleted, or never processed)".to_string()),
            ),
        };
        let mut o = self.done(bucket, key, started, outcome, reason);
        o.etag = existing.map(|e| e.etag);
        o.deleted = keys;
        Ok(o)
    }

    async fn handle_created(
        &self,
        bucket: &str,
        key: &str,
        hint: Hint,
        started: Instant,
    ) -> Result<RecordOutcome, StoreError> {
        let cfg = &self.config;
        let skipped = async |ex: &Existing, etag: String| {
            // A delivery whose deletes failed after its item was written left them listed.
            if !ex.superseded.is_empty() {
                self.forget(&ex.superseded).await?;
            }
            let mut o = self.done(
                bucket,
                key,
                started,
                Outcome::Skipped,
                Some(format!("already processed ({})", ex.status)),
            );
            o.etag = Some(etag);
            o.deleted = ex.superseded.clone();
            Ok(o)
        };
        let existing = self.store.existing(&cfg.table_name, key).await?;
        let current = |etag: &str| {
            existing
                .as_ref()
                .filter(|ex| ex.etag == etag && is_current(ex, &cfg.thumb))
        };
        if let Some(et) = &hint.etag
            && let Some(ex) = current(et)
        {
            return skipped(ex, et.clone()).await;
        }
        let created_at = existing.as_ref().and_then(|e| e.created_at.clone());

        // The event's size lets us refuse a huge object without touching it.
        let fetched = match hint.size {
            Some(size) if size > cfg.thumb.max_bytes => Fetched::TooLarge {
                etag: hint.etag.clone().unwrap_or_default(),
                size,
                content_type: None,
            },
            _ => self.store.fetch(bucket, key, cfg.thumb.max_bytes).await?,
        };

        let (etag, size, s3_content_type, result) = match fetched {
            Fetched::Gone => {
                let why = "object no longer exists".to_string();
                return Ok(self.done(bucket, key, started, Outcome::Ignored, Some(why)));
            }
            Fetched::TooLarge {
                etag,
                size,
                content_type,
            } => (
                etag,
                size,
                content_type,
                Err(EngineError::TooManyBytes {
                    size,
                    max: cfg.thumb.max_bytes,
                }),
            ),
            Fetched::Body {
                etag,
                content_type,
                bytes,
            } => {
                if let Some(ex) = current(&etag) {
                    return skipped(ex, etag).await;
                }
                let size = bytes.len() as u64;
                let opts = cfg.thumb.clone();
                let result =
                    tokio::task::spawn_blocking(move || engine::make_thumbnails(&bytes, &opts))
                        .await
                        .unwrap_or_else(|e| {
                            Err(EngineError::Corrupt(format!("engine task failed: {e}")))
                        });
                (etag, size, content_type, result)
            }
        };

        let now = now_rfc3339();
        let mut rec = ObjectRecord {
            id: key.to_string(),
            source_bucket: bucket.to_string(),
            source_key: key.to_string(),
            etag: etag.clone(),
            status: Status::Ok,
            error: None,
            content_type: s3_content_type.unwrap_or_else(|| "application/octet-stream".into()),
            width: None,
            height: None,
            bytes: size,
            thumbnails: Vec::new(),
            created_at: created_at.unwrap_or_else(|| now.clone()),
            updated_at: now,
            duration_ms: 0,
            frames: None,
            placeholder: None,
            keep_copyright: false,
            superseded: Vec::new(),
            unpublished: false,
        };
        let (outcome, reason) = match result {
            Ok(thumbs) => {
                let Thumbnails {
                    source,
                    thumbnails,
                    placeholder,
                } = thumbs;
                rec.placeholder = Some(placeholder);
                rec.keep_copyright = cfg.thumb.keep_copyright;
                rec.frames = (source.frames > 1).then_some(source.frames);
                let Some(id) = ContentId::from_etag(&etag) else {
                    // S3 always sends one; without it the keys could not follow the content.
                    return Err(StoreError {
                        op: "s3 get_object",
                        detail: "the object came without an ETag".into(),
                    });
                };
                rec.thumbnails = self.put_thumbnails(key, &id, thumbnails).await?;
                rec.content_type = source.content_type.to_string();
                rec.width = Some(source.width);
                rec.height = Some(source.height);
                (Outcome::Ok, None)
            }
            Err(e) => {
                tracing::debug!(key, error = %e, "engine refused the object");
                if let EngineError::TooManyPixels { width, height, .. } = &e {
                    // Recorded so that `is_current` can tell whether a raised MAX_PIXELS
                    // would now let it through.
                    rec.width = u32::try_from(*width).ok();
                    rec.height = u32::try_from(*height).ok();
                }
                rec.status = Status::Failed;
                rec.error = Some(e.reason().to_string());
                (Outcome::Failed, Some(e.reason().to_string()))
            }
        };

        // The replaced item's thumbnails that this run does not make again (older content,
        // older settings, and what it still listed as superseded). They are deleted only after
        // the new item is written, so that a reader of the item (or of the message) never gets
        // keys that are gone; the new item lists them so that a failed delete is retried.
        let kept: HashSet<&str> = rec.thumbnails.iter().map(|t| t.key.as_str()).collect();
        rec.superseded = existing
            .iter()
            .flat_map(|e| {
                e.thumbnails
                    .iter()
                    .map(|t| t.key.clone())
                    .chain(e.superseded.iter().cloned())
            })
            .filter(|k| !k.is_empty() && !kept.contains(k.as_str()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        rec.duration_ms = started.elapsed().as_millis() as u64;

        let replaces = existing.as_ref().and_then(|e| e.updated_at.as_deref());
        if !self
            .store
            .put_record(&cfg.table_name, &rec, replaces)
            .await?
        {
            let mut o = self.done(
                bucket,
                key,
                started,
                Outcome::Skipped,
                Some("processed concurrently".into()),
            );
            o.etag = Some(etag);
            return Ok(o);
        }
        if let Err(e) = self.store.publish(&cfg.topic_arn, &rec).await {
            // Keep the item (it lists every thumbnail there is, including the superseded ones)
            // but mark it, so that the retry does the work again and the message is sent.
            let marked = ObjectRecord {
                unpublished: true,
                ..rec.clone()
            };
            if let Err(d) = self.store.rewrite_record(&cfg.table_name, &marked).await {
                tracing::error!(key, error = %d, "could not mark the item unpublished after a failed publish");
            }
            return Err(e);
        }
        let superseded = std::mem::take(&mut rec.superseded);
        if !superseded.is_empty() {
            // Still listed in the item until just below: a failed invalidation fails the
            // event, and the retry deletes and invalidates them again.
            self.forget(&superseded).await?;
            // Only tidies the item: keys still listed are deleted again (a no-op) by the next
            // run or the removal, so a failure here need not make Lambda retry the event.
            if let Err(e) = self.store.rewrite_record(&cfg.table_name, &rec).await {
                tracing::warn!(key, error = %e, "could not drop the superseded keys from the item");
            }
        }
        let mut o = self.done(bucket, key, started, outcome, reason);
        o.etag = Some(etag);
        o.thumbnails = rec.thumbnails.iter().map(|t| t.key.clone()).collect();
        o.deleted = superseded;
        Ok(o)
    }

    /// Deletes thumbnails from the destination bucket and, with a CDN, invalidates them
    /// there: a deleted thumbnail must not stay public in CloudFront's cache for a year.
    async fn forget(&self, keys: &[String]) -> Result<(), StoreError> {
        let cfg = &self.config;
        self.store.delete_objects(&cfg.dest_bucket, keys).await?;
        if let Some(distribution) = &cfg.cdn_distribution_id {
            self.store.invalidate(distribution, keys).await?;
        }
        Ok(())
    }

    async fn put_thumbnails(
        &self,
        key: &str,
        id: &ContentId,
        thumbs: Vec<Thumbnail>,
    ) -> Result<Vec<ThumbRecord>, StoreError> {
        let cfg = &self.config;
        let records: Vec<ThumbRecord> = thumbs
            .iter()
            .map(|t| ThumbRecord {
                size: t.spec.to_string(),
                key: thumbnail_key(&t.spec, key, id, &cfg.thumb),
                width: t.width,
                height: t.height,
                bytes: t.bytes.len() as u64,
                content_type: t.content_type.to_string(),
            })
            .collect();
        try_join_all(thumbs.into_iter().zip(&records).map(|(t, r)| {
            self.store
                .put_thumbnail(&cfg.dest_bucket, &r.key, t.bytes, t.content_type)
        }))
        .await?;
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{OutputFormat, ThumbSpec};
    use crate::store::RecordedThumb;

    fn ok_item(id: &str, thumbs: &[(&str, &str, &str)]) -> Existing {
        Existing {
            id: id.into(),
            etag: "e".into(),
            status: "ok".into(),
            thumbnails: thumbs
                .iter()
                .map(|(size, key, ct)| RecordedThumb {
                    size: (*size).into(),
                    key: (*key).into(),
                    content_type: (*ct).into(),
                })
                .collect(),
            ..Existing::default()
        }
    }

    fn opts(sizes: &[ThumbSpec], format: OutputFormat) -> ThumbOptions {
        ThumbOptions {
            sizes: sizes.to_vec(),
            format,
            ..ThumbOptions::default()
        }
    }

    #[test]
    fn ok_items_are_current_for_exactly_their_sizes_and_format() {
        let (s64, s128) = (ThumbSpec::square(64), ThumbSpec::square(128));
        let rect = ThumbSpec {
            width: 320,
            height: 200,
            crop: crate::engine::Crop::Fit,
        };
        let item = ok_item(
            "a b.png",
            &[
                ("64", "64/a b.png.e.jpg", "image/jpeg"),
                ("320x200", "320x200/a b.png.e.jpg", "image/jpeg"),
            ],
        );
        let jpeg = OutputFormat::Jpeg;
        assert!(is_current(&item, &opts(&[s64, rect], jpeg)));
        assert!(is_current(&item, &opts(&[rect, s64], jpeg)));
        assert!(!is_current(&item, &opts(&[s64], jpeg)), "one too many");
        assert!(!is_current(&item, &opts(&[s64, rect, s128], jpeg)));
        assert!(!is_current(&item, &opts(&[s64, s128], jpeg)));
        assert!(!is_current(&item, &opts(&[s64, rect], OutputFormat::Png)));
        let wrong_type = ok_item("a.jpg", &[("64", "64/a.e.jpg", "image/png")]);
        assert!(!is_current(&wrong_type, &opts(&[s64], jpeg)));
        let odd = Existing {
            status: "pending".into(),
            ..ok_item("a.jpg", &[("64", "64/a.e.jpg", "image/jpeg")])
        };
        assert!(!is_current(&odd, &opts(&[s64], jpeg)));
    }

    #[test]
    fn ok_items_are_current_only_with_the_same_keep_copyright() {
        let s64 = ThumbSpec::square(64);
        let plain = opts(&[s64], OutputFormat::Jpeg);
        let keep = ThumbOptions {
            keep_copyright: true,
            ..plain.clone()
        };
        let item = ok_item("a.jpg", &[("64", "64/a.e.jpg", "image/jpeg")]);
        let suffix = crate::keys::settings_suffix(OutputFormat::Jpeg, 80, true);
        let kept = Existing {
            keep_copyright: true,
            ..ok_item(
                "a.jpg",
                &[("64", &format!("64/a.e{suffix}.jpg"), "image/jpeg")],
            )
        };
        assert!(is_current(&item, &plain) && is_current(&kept, &keep));
        let same_keys = Existing {
            keep_copyright: true,
            ..item.clone()
        };
        assert!(
            !is_current(&same_keys, &keep),
            "the copyright is in the key: the CDN must never serve old bytes under it"
        );
        assert!(
            !is_current(&item, &keep),
            "turned on: the thumbnails lack the fields"
        );
        assert!(
            !is_current(&kept, &plain),
            "turned off: the thumbnails still carry them"
        );
        // The item attribute round-trips.
        let mut attrs = std::collections::HashMap::new();
        attrs.insert(
            "keep_copyright".to_string(),
            aws_sdk_dynamodb::types::AttributeValue::Bool(true),
        );
        assert!(Existing::from_item(&attrs).keep_copyright);
        assert!(!Existing::from_item(&std::collections::HashMap::new()).keep_copyright);
    }

    #[test]
    fn ok_items_are_current_only_with_keys_of_their_content() {
        let s64 = ThumbSpec::square(64);
        let jpeg = opts(&[s64], OutputFormat::Jpeg);
        let item = ok_item("a.jpg", &[("64", "64/a.e.jpg", "image/jpeg")]);
        assert!(is_current(&item, &jpeg));
        let other_content = Existing {
            etag: "f".into(),
            ..item.clone()
        };
        assert!(!is_current(&other_content, &jpeg), "keys of another ETag");
        let before_ids = ok_item("a.jpg", &[("64", "64/a.jpg", "image/jpeg")]);
        assert!(!is_current(&before_ids, &jpeg), "key without a content id");
        let q50 = ThumbOptions {
            quality: 50,
            ..jpeg.clone()
        };
        assert!(
            !is_current(&item, &q50),
            "another quality, other keys: redone, so that the CDN serves the new bytes"
        );
        let png = ok_item("a.png", &[("64", "64/a.e.png", "image/png")]);
        let png_opts = opts(&[s64], OutputFormat::Png);
        assert!(
            is_current(
                &png,
                &ThumbOptions {
                    quality: 50,
                    ..png_opts
                }
            ),
            "PNG ignores the quality: nothing to redo"
        );
        let no_etag = Existing {
            etag: String::new(),
            ..item.clone()
        };
        assert!(!is_current(&no_etag, &jpeg));
        let unpublished = Existing {
            unpublished: true,
            ..item
        };
        assert!(
            !is_current(&unpublished, &jpeg),
            "the message is still owed"
        );
    }

    #[test]
    fn failed_items_are_current_unless_new_limits_could_change_the_answer() {
        let failed = |error: &str, bytes, dims: Option<(u32, u32)>| Existing {
            id: "x".into(),
            status: "failed".into(),
            error: Some(error.into()),
            bytes,
            width: dims.map(|d| d.0),
            height: dims.map(|d| d.1),
            ..Existing::default()
        };
        let limits = |max_bytes, max_pixels| ThumbOptions {
            max_bytes,
            max_pixels,
            ..ThumbOptions::default()
        };
        for r in SETTINGS_INDEPENDENT_FAILURES {
            assert!(is_current(
                &failed(r, Some(1), None),
                &limits(u64::MAX, u64::MAX)
            ));
        }
        let big = failed("too many bytes", Some(1000), None);
        assert!(is_current(&big, &limits(999, 10)));
        assert!(!is_current(&big, &limits(1000, 10)));
        assert!(is_current(
            &failed("too many bytes", None, None),
            &limits(u64::MAX, 1)
        ));
        let wide = failed("too many pixels", Some(1), Some((300, 150)));
        assert!(is_current(&wide, &limits(10, 44_999)));
        assert!(!is_current(&wide, &limits(10, 45_000)));
        let decoder = failed("too many pixels", Some(1), None);
        assert!(is_current(&decoder, &limits(10, u64::MAX)));
        assert!(!is_current(
            &failed("bad options", None, None),
            &limits(1, 1)
        ));
    }
}
