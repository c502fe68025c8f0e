//! The S3 event handler: every record of the event, each on its own.
//!
//! Per record: ignore what is not ours (the destination bucket, a foreign bucket when
//! `SOURCE_BUCKET` is set, events other than `ObjectCreated:*`); skip what is already
//! recorded with the same ETag; fetch (refusing objects over `MAX_BYTES` unread); make the
//! thumbnails; put them; write the item with a conditional put (a concurrent duplicate
//! delivery loses the race and is skipped); publish the SNS message.
//!
//! Permanent failures (what the engine refuses) become `failed` items and messages, and the
//! record counts as handled. Transient failures (any AWS error) are collected; after all
//! records were tried, `handle_event` returns `Err` so that Lambda retries the event — the
//! records that were completed are then skipped.

use std::time::Instant;

use aws_lambda_events::event::s3::{S3Event, S3EventRecord};
use futures::future::try_join_all;
use serde::Serialize;

use crate::config::Config;
use crate::engine::{self, EngineError, Thumbnail, Thumbnails};
use crate::keys::{decode_event_key, thumbnail_key};
use crate::store::{
    Fetched, ObjectRecord, Status, Store, StoreError, ThumbRecord, normalize_etag, now_rfc3339,
};

/// What happened to one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Thumbnails made and recorded.
    Ok,
    /// Permanently failed (not an image, corrupt, over a limit, ...): recorded as `failed`.
    Failed,
    /// Already processed (same key and ETag): nothing done.
    Skipped,
    /// Not for us (destination or foreign bucket, not an object creation, object gone).
    Ignored,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Ignored => "ignored",
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
    pub ms: u64,
}

/// Some records failed for a transient reason; Lambda should retry the event.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{failed} of {total} records failed transiently (Lambda will retry); first: {first}")]
pub struct HandlerError {
    pub failed: usize,
    pub total: usize,
    pub first: String,
}

pub struct Handler {
    config: Config,
    store: Store,
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

    pub async fn handle_event(&self, event: S3Event) -> Result<Vec<RecordOutcome>, HandlerError> {
        let total = event.records.len();
        let mut outcomes = Vec::with_capacity(total);
        let mut transient: Vec<String> = Vec::new();
        for record in &event.records {
            let started = Instant::now();
            let bucket = record.s3.bucket.name.clone().unwrap_or_default();
            let key = decode_event_key(record.s3.object.key.as_deref().unwrap_or_default());
            match self.handle_record(record, &bucket, &key, started).await {
                Ok(o) => {
                    tracing::info!(
                        bucket = %o.bucket,
                        key = %o.key,
                        outcome = o.outcome.as_str(),
                        reason = o.reason.as_deref().unwrap_or(""),
                        sizes = %self.sizes_text(),
                        thumbnails = o.thumbnails.len(),
                        ms = o.ms,
                        "object"
                    );
                    outcomes.push(o);
                }
                Err(e) => {
                    tracing::error!(
                        bucket = %bucket,
                        key = %key,
                        outcome = "retry",
                        reason = %e,
                        sizes = %self.sizes_text(),
                        ms = started.elapsed().as_millis() as u64,
                        "object"
                    );
                    transient.push(format!("{key}: {e}"));
                }
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

    async fn handle_record(
        &self,
        record: &S3EventRecord,
        bucket: &str,
        key: &str,
        started: Instant,
    ) -> Result<RecordOutcome, StoreError> {
        let cfg = &self.config;
        let done =
            |outcome, reason: Option<String>, etag: Option<String>, thumbnails| RecordOutcome {
                bucket: bucket.to_string(),
                key: key.to_string(),
                outcome,
                reason,
                etag,
                thumbnails,
                ms: started.elapsed().as_millis() as u64,
            };
        let ignore = |why: String| done(Outcome::Ignored, Some(why), None, Vec::new());

        if bucket.is_empty() || key.is_empty() {
            return Ok(ignore("record without bucket or key".into()));
        }
        let event_name = record.event_name.as_deref().unwrap_or_default();
        if !event_name.is_empty() && !event_name.starts_with("ObjectCreated:") {
            return Ok(ignore(format!("{event_name} is not an object creation")));
        }
        if bucket == cfg.dest_bucket {
            return Ok(ignore("event from the destination bucket".into()));
        }
        if let Some(src) = &cfg.source_bucket
            && bucket != src
        {
            return Ok(ignore(format!("bucket is not the source bucket {src}")));
        }

        let event_etag = record.s3.object.e_tag.as_deref().map(normalize_etag);
        let existing = self.store.existing(&cfg.table_name, key).await?;
        if let (Some(ex), Some(et)) = (&existing, &event_etag)
            && &ex.etag == et
        {
            return Ok(done(
                Outcome::Skipped,
                Some(format!("already processed ({})", ex.status)),
                Some(et.clone()),
                Vec::new(),
            ));
        }
        let created_at = existing.as_ref().and_then(|e| e.created_at.clone());

        // The event's size lets us refuse a huge object without touching it.
        let event_size = record.s3.object.size.unwrap_or(0).max(0) as u64;
        let fetched = if event_size > cfg.thumb.max_bytes {
            Fetched::TooLarge {
                etag: event_etag.clone().unwrap_or_default(),
                size: event_size,
                content_type: None,
            }
        } else {
            self.store.fetch(bucket, key, cfg.thumb.max_bytes).await?
        };

        let (etag, size, s3_content_type, result) = match fetched {
            Fetched::Gone => return Ok(ignore("object no longer exists".into())),
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
                if let Some(ex) = &existing
                    && ex.etag == etag
                {
                    return Ok(done(
                        Outcome::Skipped,
                        Some(format!("already processed ({})", ex.status)),
                        Some(etag),
                        Vec::new(),
                    ));
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
        };
        let (outcome, reason) = match result {
            Ok(thumbs) => {
                let Thumbnails { source, thumbnails } = thumbs;
                rec.thumbnails = self.put_thumbnails(key, thumbnails).await?;
                rec.content_type = source.content_type.to_string();
                rec.width = Some(source.width);
                rec.height = Some(source.height);
                (Outcome::Ok, None)
            }
            Err(e) => {
                tracing::debug!(key, error = %e, "engine refused the object");
                rec.status = Status::Failed;
                rec.error = Some(e.reason().to_string());
                (Outcome::Failed, Some(e.reason().to_string()))
            }
        };
        rec.duration_ms = started.elapsed().as_millis() as u64;

        if !self.store.put_record(&cfg.table_name, &rec).await? {
            return Ok(done(
                Outcome::Skipped,
                Some("processed concurrently".into()),
                Some(etag),
                Vec::new(),
            ));
        }
        if let Err(e) = self.store.publish(&cfg.topic_arn, &rec).await {
            // Undo the item so that the retry does the work again and the message is sent.
            if let Err(d) = self
                .store
                .delete_record_if(&cfg.table_name, key, &etag)
                .await
            {
                tracing::error!(key, error = %d, "could not undo the item after a failed publish");
            }
            return Err(e);
        }
        let keys = rec.thumbnails.iter().map(|t| t.key.clone()).collect();
        Ok(done(outcome, reason, Some(etag), keys))
    }

    async fn put_thumbnails(
        &self,
        key: &str,
        thumbs: Vec<Thumbnail>,
    ) -> Result<Vec<ThumbRecord>, StoreError> {
        let cfg = &self.config;
        let records: Vec<ThumbRecord> = thumbs
            .iter()
            .map(|t| ThumbRecord {
                size: t.spec.to_string(),
                key: thumbnail_key(&t.spec, key, cfg.thumb.format),
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
