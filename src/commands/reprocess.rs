//! `thumbctl reprocess`: send originals already in the source bucket through the function
//! again — after `up` changed the sizes or format, or to retry what failed.
//!
//! The originals are listed page by page (1 000 keys) and each page is sent before the next
//! is read, so memory stays flat however big the bucket is. Each original becomes the S3
//! event of its upload, sent asynchronously (`InvocationType=Event`, `--concurrency` at
//! once) or, with `--local`, handled here by the function's own handler. The function skips
//! what already has the current thumbnails, so a rerun only does what is left.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use aws_lambda_events::event::s3::S3Event;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use futures::stream::{self, StreamExt};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lambda_image::config::Config;
use lambda_image::handler::{Handler, Outcome};
use serde_json::{Value, json};

use super::invoke_local::{function_config, s3_event};
use super::{Deployed, print_json};
use crate::cli::{GlobalArgs, OutputMode, ReprocessArgs};
use crate::context::Ctx;
use crate::error::aws;
use crate::resources::queue;
use crate::state::StateStore;

mod batch;

/// One original in the source bucket, as listed.
#[derive(Debug, Clone)]
pub struct Original {
    pub key: String,
    pub etag: String,
    pub size: i64,
}

impl Original {
    /// The originals of one listing page.
    pub fn of_page(
        page: &aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output,
    ) -> Vec<Original> {
        page.contents()
            .iter()
            .filter_map(|o| {
                Some(Original {
                    key: o.key()?.to_owned(),
                    etag: o.e_tag().unwrap_or_default().trim_matches('"').to_owned(),
                    size: o.size().unwrap_or(0),
                })
            })
            .collect()
    }
}

/// Where the events go: the deployed function, or its handler here.
enum Target {
    Function(String),
    Local(Box<Handler>),
}

/// What happened, counted across all originals.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    current: AtomicU64,
    ok: AtomicU64,
    failed: AtomicU64,
    skipped: AtomicU64,
    errors: std::sync::Mutex<Vec<String>>,
}

impl Tally {
    fn error(&self, what: String) {
        if let Ok(mut e) = self.errors.lock() {
            e.push(what);
        }
    }
    fn errors(&self) -> Vec<String> {
        self.errors.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

pub async fn run(global: &GlobalArgs, args: ReprocessArgs) -> anyhow::Result<()> {
    let (ctx, d) = Deployed::load(global).await?;
    let state = StateStore::read(&global.state_dir, &global.stack)?
        .context("the stack's state vanished")?;
    let config = function_config(&ctx, &d.function).await?;
    let prefix = args
        .prefix
        .clone()
        .or_else(|| state.settings.source_prefix.clone())
        .unwrap_or_default();
    if args.batch {
        return batch::run(global, &ctx, &d, &config, &prefix, &args).await;
    }
    let target = if args.local {
        let sdk = crate::context::load_sdk_config(&super::in_region(global, &ctx.region)).await?;
        Target::Local(Box::new(Handler::new(config.clone(), &sdk)))
    } else {
        Target::Function(d.function.clone())
    };
    let tally = Tally::default();
    let bar = bar(global.quiet);
    if args.failed {
        let queue = state.resources.get("failure-queue").cloned();
        replay_failed(&ctx, &d, &target, queue, &args, &tally, &bar).await?;
    } else {
        bar.set_message("counting originals");
        bar.set_length(count(&ctx, &d.source_bucket, &prefix).await?);
        bar.set_message(if args.only_missing {
            "checking and sending"
        } else {
            "sending"
        });
        let mut pages = ctx
            .s3
            .list_objects_v2()
            .bucket(&d.source_bucket)
            .prefix(&prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(aws("list objects in", "bucket", &d.source_bucket))?;
            let originals = Original::of_page(&page);
            let todo = if args.only_missing {
                let missing = missing(&ctx, &d.table, &config, originals.clone()).await?;
                let current = originals.len() - missing.len();
                tally.current.fetch_add(current as u64, Ordering::Relaxed);
                bar.inc(current as u64);
                missing
            } else {
                originals
            };
            if args.dry_run {
                tally.sent.fetch_add(todo.len() as u64, Ordering::Relaxed);
                bar.inc(todo.len() as u64);
                continue;
            }
            stream::iter(todo)
                .for_each_concurrent(usize::from(args.concurrency), |o| {
                    let (ctx, d, target, tally, bar) = (&ctx, &d, &target, &tally, &bar);
                    async move {
                        let event = s3_event(
                            &ctx.region,
                            &d.source_bucket,
                            &o.key,
                            o.size,
                            &o.etag,
                            &sequencer(),
                        );
                        send(ctx, target, &o.key, event, tally).await;
                        bar.inc(1);
                    }
                })
                .await;
        }
    }
    bar.finish_and_clear();
    report(global, &args, &tally, &d.function)
}

/// A sequencer for a synthesized event: S3's are hex and grow with time.
fn sequencer() -> String {
    format!(
        "{:016X}",
        time::OffsetDateTime::now_utc().unix_timestamp_nanos() as u64
    )
}

fn bar(quiet: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        Some(0),
        if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        },
    );
    bar.set_style(
        ProgressStyle::with_template("  {msg} [{bar:30}] {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

/// How many originals there are under the prefix (a listing only, for the progress bar).
pub async fn count(ctx: &Ctx, bucket: &str, prefix: &str) -> anyhow::Result<u64> {
    let mut pages = ctx
        .s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    let mut n = 0u64;
    while let Some(page) = pages.next().await {
        n += page
            .map_err(aws("list objects in", "bucket", bucket))?
            .contents()
            .len() as u64;
    }
    Ok(n)
}

/// The originals of one page that lack the current thumbnails (their items read 100 at a
/// time, as BatchGetItem allows).
pub async fn missing(
    ctx: &Ctx,
    table: &str,
    config: &Config,
    originals: Vec<Original>,
) -> anyhow::Result<Vec<Original>> {
    let mut items: HashMap<String, Value> = HashMap::new();
    for chunk in originals.chunks(100) {
        let mut keys: Vec<HashMap<String, AttributeValue>> = chunk
            .iter()
            .map(|o| HashMap::from([("id".to_owned(), AttributeValue::S(o.key.clone()))]))
            .collect();
        // Unprocessed keys (throttling) are asked again until none are left.
        while !keys.is_empty() {
            let req = KeysAndAttributes::builder()
                .set_keys(Some(keys.clone()))
                .consistent_read(true)
                .build()
                .context("building the item request")?;
            let out = ctx
                .dynamodb
                .batch_get_item()
                .request_items(table, req)
                .send()
                .await
                .map_err(aws("read items from", "table", table))?;
            for item in out
                .responses()
                .and_then(|r| r.get(table))
                .cloned()
                .unwrap_or_default()
            {
                let v: Value = serde_dynamo::from_item(item).context("reading an item")?;
                if let Some(id) = v.get("id").and_then(Value::as_str) {
                    items.insert(id.to_owned(), v);
                }
            }
            keys = out
                .unprocessed_keys()
                .and_then(|u| u.get(table))
                .map(|k| k.keys().to_vec())
                .unwrap_or_default();
        }
    }
    Ok(originals
        .into_iter()
        .filter(|o| {
            !items
                .get(&o.key)
                .is_some_and(|item| is_current(item, &o.etag, config))
        })
        .collect())
}

/// Whether an item says its original (of this ETag) is done under the function's current
/// settings, by the function's own rule (`lambda_image::is_current`): `--only-missing` then
/// sends exactly what the function would not skip.
pub fn is_current(item: &Value, etag: &str, config: &Config) -> bool {
    let Ok(attrs) = serde_dynamo::to_item::<_, HashMap<String, AttributeValue>>(item) else {
        return false;
    };
    let existing = lambda_image::store::Existing::from_item(&attrs);
    existing.etag == lambda_image::store::normalize_etag(etag)
        && lambda_image::is_current(&existing, &config.thumb)
}

/// Sends one event: an asynchronous invocation, or the handler here.
async fn send(ctx: &Ctx, target: &Target, key: &str, event: Value, tally: &Tally) -> bool {
    match target {
        Target::Function(name) => {
            let result = ctx
                .lambda
                .invoke()
                .function_name(name)
                .invocation_type(InvocationType::Event)
                .payload(Blob::new(event.to_string()))
                .send()
                .await
                .map_err(aws("invoke", "function", name));
            match result {
                Ok(_) => {
                    tally.sent.fetch_add(1, Ordering::Relaxed);
                    true
                }
                Err(e) => {
                    tally.error(format!("{key}: {e}"));
                    false
                }
            }
        }
        Target::Local(handler) => {
            let parsed: Result<S3Event, _> = serde_json::from_value(event);
            let event = match parsed {
                Ok(e) => e,
                Err(e) => {
                    tally.error(format!("{key}: not an S3 event: {e}"));
                    return false;
                }
            };
            tally.sent.fetch_add(1, Ordering::Relaxed);
            match handler.handle_event(event).await {
                Ok(outcomes) => {
                    for o in outcomes {
                        let counter = match o.outcome {
                            Outcome::Ok => &tally.ok,
                            Outcome::Failed => &tally.failed,
                            _ => &tally.skipped,
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                    true
                }
                Err(e) => {
                    tally.error(format!("{key}: {e}"));
                    false
                }
            }
        }
    }
}

/// `--failed`: the events Lambda gave up on (from the failure queue, each deleted once its
/// replay was accepted), then the images recorded as failed (each item removed first, so the
/// function does not skip the original as already done).
async fn replay_failed(
    ctx: &Ctx,
    d: &Deployed,
    target: &Target,
    queue: Option<crate::state::Entry>,
    args: &ReprocessArgs,
    tally: &Tally,
    bar: &ProgressBar,
) -> anyhow::Result<()> {
    bar.set_message("replaying failures");
    if let Some(entry) = queue
        && let Some(url) = queue::url(ctx, &entry).await?
    {
        loop {
            if args.dry_run {
                // Receiving would hide the messages for minutes: count them instead.
                let waiting = queue::depth(ctx, &entry).await?.unwrap_or(0);
                tally.sent.fetch_add(waiting, Ordering::Relaxed);
                break;
            }
            let out = ctx
                .sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                // Long enough for a local handler run; a message whose replay was not
                // accepted becomes visible again for the next reprocess.
                .visibility_timeout(300)
                .send()
                .await
                .map_err(aws("receive from", queue::KIND, &entry.name))?;
            let messages = out.messages();
            if messages.is_empty() {
                break;
            }
            bar.inc_length(messages.len() as u64);
            for m in messages {
                let payload = m
                    .body()
                    .and_then(|b| serde_json::from_str::<Value>(b).ok())
                    .and_then(|v| v.get("requestPayload").cloned());
                let Some(payload) = payload else {
                    tally.error(format!(
                        "a message in {} is not a Lambda failure record; left in the queue",
                        entry.name
                    ));
                    continue;
                };
                let key = payload
                    .pointer("/Records/0/s3/object/key")
                    .and_then(Value::as_str)
                    .map(lambda_image::keys::decode_event_key)
                    .unwrap_or_else(|| "?".into());
                if send(ctx, target, &key, payload, tally).await
                    && let Some(handle) = m.receipt_handle()
                {
                    ctx.sqs
                        .delete_message()
                        .queue_url(&url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .map_err(aws(
                            "delete a replayed message from",
                            queue::KIND,
                            &entry.name,
                        ))?;
                }
                bar.inc(1);
            }
        }
    }
    let failed = super::images::list_items(ctx, &d.table, Some("failed"), usize::MAX).await?;
    bar.inc_length(failed.len() as u64);
    let failed = Arc::new(failed);
    stream::iter(failed.iter())
        .for_each_concurrent(usize::from(args.concurrency), |item| async move {
            let Some(key) = item.get("id").and_then(Value::as_str) else {
                return;
            };
            if args.dry_run {
                tally.sent.fetch_add(1, Ordering::Relaxed);
            } else if let Err(e) = retry_failed_item(ctx, d, target, key, tally).await {
                tally.error(format!("{key}: {e:#}"));
            }
            bar.inc(1);
        })
        .await;
    Ok(())
}

async fn retry_failed_item(
    ctx: &Ctx,
    d: &Deployed,
    target: &Target,
    key: &str,
    tally: &Tally,
) -> anyhow::Result<()> {
    let head = ctx
        .s3
        .head_object()
        .bucket(&d.source_bucket)
        .key(key)
        .send()
        .await
        .map_err(aws("look up", "object", key));
    let head = match head {
        Ok(h) => Some(h),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e.into()),
    };
    // Only an item still marked failed is removed: one the function rewrote meanwhile stays.
    let removed = ctx
        .dynamodb
        .delete_item()
        .table_name(&d.table)
        .key("id", AttributeValue::S(key.to_owned()))
        .condition_expression("#s = :failed")
        .expression_attribute_names("#s", "status")
        .expression_attribute_values(":failed", AttributeValue::S("failed".into()))
        .send()
        .await;
    if let Err(e) = removed {
        let e = crate::error::AwsError::from_sdk("remove failed item from", "table", &d.table, e);
        if e.code.as_deref() == Some("ConditionalCheckFailedException") {
            return Ok(());
        }
        return Err(e.into());
    }
    // The original is gone: its failed item was all that was left of it.
    let Some(head) = head else { return Ok(()) };
    let event = s3_event(
        &ctx.region,
        &d.source_bucket,
        key,
        head.content_length().unwrap_or(0),
        head.e_tag().unwrap_or_default(),
        &sequencer(),
    );
    send(ctx, target, key, event, tally).await;
    Ok(())
}

fn report(
    global: &GlobalArgs,
    args: &ReprocessArgs,
    tally: &Tally,
    function: &str,
) -> anyhow::Result<()> {
    let errors = tally.errors();
    let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
    if global.output == OutputMode::Json {
        print_json(&json!({
            "function": function, "local": args.local, "dry_run": args.dry_run,
            "sent": n(&tally.sent), "already_current": n(&tally.current),
            "ok": n(&tally.ok), "failed": n(&tally.failed), "skipped": n(&tally.skipped),
            "errors": errors,
        }))?;
    } else {
        let verb = if args.dry_run {
            "would send"
        } else if args.local {
            "ran the handler on"
        } else {
            "sent to the function"
        };
        println!("{verb} {} original(s)", n(&tally.sent));
        if args.only_missing {
            println!("{} already had the current thumbnails", n(&tally.current));
        }
        if args.local {
            println!(
                "  {} made thumbnails, {} failed (see `thumbctl list --status failed`), {} skipped (already done)",
                n(&tally.ok),
                n(&tally.failed),
                n(&tally.skipped)
            );
        } else if !args.dry_run && n(&tally.sent) > 0 {
            println!(
                "The function works through them in the background: `thumbctl list` shows the results, `thumbctl status` any events it gave up on."
            );
        }
        for e in errors.iter().take(10) {
            eprintln!("  error: {e}");
        }
    }
    if !errors.is_empty() {
        anyhow::bail!(
            "{} original(s) could not be sent; rerun `thumbctl reprocess` with the same options: what was done is skipped",
            errors.len()
        );
    }
    Ok(())
}
