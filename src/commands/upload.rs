//! `thumbctl upload`: images into the source bucket, typed from their bytes; optionally wait
//! for the function's verdict on each.

use std::collections::HashMap;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use futures::stream::{self, StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use lambda_image::engine::{EngineError, ThumbOptions, probe};
use serde_json::{Value, json};

use super::{Deployed, print_json};
use crate::cli::{GlobalArgs, OutputMode, UploadArgs};
use crate::context::Ctx;
use crate::error::{AwsError, aws};

/// Files above this go up in parts; S3's part minimum is 5 MiB.
pub const MULTIPART_THRESHOLD: u64 = 16 * 1024 * 1024;
pub const PART_SIZE: u64 = 8 * 1024 * 1024;
/// Files uploaded at once: enough to hide per-request latency, few enough for a laptop uplink.
const CONCURRENCY: usize = 8;
/// The header is what tells an image; the first MiB holds it for every format we take.
const SNIFF_BYTES: u64 = 1024 * 1024;

/// One file to upload and where it goes.
#[derive(Debug, Clone)]
pub struct Planned {
    pub path: PathBuf,
    pub key: String,
    pub size: u64,
    pub content_type: String,
}

/// Why a file is refused, or `Ok(content type)`.
pub fn classify(path: &Path) -> Result<(u64, String), String> {
    let mut f = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let size = f.metadata().map_err(|e| format!("cannot read: {e}"))?.len();
    if size == 0 {
        return Err("empty file (0 bytes)".into());
    }
    let mut head = Vec::new();
    (&mut f)
        .take(SNIFF_BYTES)
        .read_to_end(&mut head)
        .map_err(|e| format!("cannot read: {e}"))?;
    let opts = ThumbOptions {
        max_pixels: u64::MAX,
        max_bytes: u64::MAX,
        ..ThumbOptions::default()
    };
    match probe(&head, &opts) {
        Ok(info) => Ok((size, info.content_type.to_owned())),
        Err(EngineError::NotAnImage) => {
            Err("not an image (its bytes match no supported format)".into())
        }
        Err(EngineError::Unsupported(what)) => Err(format!("unsupported image: {what}")),
        // A header beyond the first MiB (huge EXIF) or a damaged one: let the function judge,
        // typed from the name.
        Err(e) => match super::images::content_type_for_key(&path.to_string_lossy()) {
            Some(ct) if size > SNIFF_BYTES => Ok((size, ct.to_owned())),
            _ => Err(e.reason().to_string()),
        },
    }
}

/// Expands directories (recursively, sorted) and names each object `prefix + relative path`.
pub fn collect(paths: &[PathBuf], prefix: &str) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).with_context(|| format!("cannot read {}", p.display()))?;
        if meta.is_dir() {
            for entry in walkdir::WalkDir::new(p).sort_by_file_name() {
                let entry = entry.with_context(|| format!("walking {}", p.display()))?;
                if entry.file_type().is_file() {
                    let rel = entry.path().strip_prefix(p).unwrap_or(entry.path());
                    out.push((
                        entry.path().to_owned(),
                        format!("{prefix}{}", slash_path(rel)),
                    ));
                }
            }
        } else {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.push((p.clone(), format!("{prefix}{name}")));
        }
    }
    Ok(out)
}

fn slash_path(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Uploads one file; returns its ETag (as the function will see it).
pub async fn put_file(
    ctx: &Ctx,
    bucket: &str,
    f: &Planned,
    bar: &ProgressBar,
) -> Result<String, AwsError> {
    if f.size <= MULTIPART_THRESHOLD {
        let body = ByteStream::from_path(&f.path).await.map_err(|e| {
            AwsError::local("read", "file", f.path.display().to_string(), e.to_string())
        })?;
        let out = ctx
            .s3
            .put_object()
            .bucket(bucket)
            .key(&f.key)
            .content_type(&f.content_type)
            .body(body)
            .send()
            .await
            .map_err(aws("upload", "object", &f.key))?;
        bar.inc(f.size);
        return Ok(out.e_tag.unwrap_or_default());
    }
    let created = ctx
        .s3
        .create_multipart_upload()
        .bucket(bucket)
        .key(&f.key)
        .content_type(&f.content_type)
        .send()
        .await
        .map_err(aws("start upload of", "object", &f.key))?;
    let upload_id = created.upload_id.unwrap_or_default();
    let result = upload_parts(ctx, bucket, f, &upload_id, bar).await;
    match result {
        Ok(etag) => Ok(etag),
        Err(e) => {
            // An unfinished upload is billed storage nobody sees: abort it on any failure.
            let _ = ctx
                .s3
                .abort_multipart_upload()
                .bucket(bucket)
                .key(&f.key)
                .upload_id(&upload_id)
                .send()
                .await;
            Err(e)
        }
    }
}

async fn upload_parts(
    ctx: &Ctx,
    bucket: &str,
    f: &Planned,
    upload_id: &str,
    bar: &ProgressBar,
) -> Result<String, AwsError> {
    let count = f.size.div_ceil(PART_SIZE);
    let parts: Vec<CompletedPart> = stream::iter(0..count)
        .map(|i| async move {
            let offset = i * PART_SIZE;
            let length = PART_SIZE.min(f.size - offset);
            let body = ByteStream::read_from()
                .path(&f.path)
                .offset(offset)
                .length(aws_sdk_s3::primitives::Length::Exact(length))
                .build()
                .await
                .map_err(|e| {
                    AwsError::local("read", "file", f.path.display().to_string(), e.to_string())
                })?;
            let n = i32::try_from(i + 1).unwrap_or(i32::MAX);
            let out = ctx
                .s3
                .upload_part()
                .bucket(bucket)
                .key(&f.key)
                .upload_id(upload_id)
                .part_number(n)
                .body(body)
                .send()
                .await
                .map_err(aws("upload part of", "object", &f.key))?;
            bar.inc(length);
            Ok::<_, AwsError>(
                CompletedPart::builder()
                    .part_number(n)
                    .set_e_tag(out.e_tag)
                    .build(),
            )
        })
        .buffered(4)
        .try_collect()
        .await?;
    let out = ctx
        .s3
        .complete_multipart_upload()
        .bucket(bucket)
        .key(&f.key)
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .map_err(aws("finish upload of", "object", &f.key))?;
    Ok(out.e_tag.unwrap_or_default())
}

fn bare_etag(e: &str) -> String {
    e.trim_matches('"').to_owned()
}

/// Polls the metadata table until every uploaded object has an item for its ETag.
async fn wait_for_items(
    ctx: &Ctx,
    table: &str,
    uploaded: &[(String, String)],
    timeout: Duration,
) -> anyhow::Result<(HashMap<String, Value>, Vec<String>)> {
    let deadline = Instant::now() + timeout;
    let mut done: HashMap<String, Value> = HashMap::new();
    loop {
        let pending: Vec<&(String, String)> = uploaded
            .iter()
            .filter(|(k, _)| !done.contains_key(k))
            .collect();
        if pending.is_empty() || Instant::now() >= deadline {
            return Ok((done, pending.into_iter().map(|(k, _)| k.clone()).collect()));
        }
        for chunk in pending.chunks(100) {
            let keys = chunk
                .iter()
                .map(|(k, _)| HashMap::from([("id".to_owned(), AttributeValue::S(k.clone()))]))
                .collect();
            let req = KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .build()
                .context("building a read request")?;
            let out = ctx
                .dynamodb
                .batch_get_item()
                .request_items(table, req)
                .send()
                .await
                .map_err(aws("read items from", "table", table))?;
            for item in out
                .responses
                .and_then(|mut r| r.remove(table))
                .unwrap_or_default()
            {
                let v: Value = serde_dynamo::from_item(item).context("reading a metadata item")?;
                let id = v["id"].as_str().unwrap_or_default().to_owned();
                let etag_matches = uploaded.iter().any(|(k, e)| {
                    *k == id && bare_etag(v["etag"].as_str().unwrap_or_default()) == bare_etag(e)
                });
                let finished = matches!(v["status"].as_str(), Some("ok" | "failed"));
                if etag_matches && finished {
                    done.insert(id, v);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub async fn run(global: &GlobalArgs, args: UploadArgs) -> anyhow::Result<()> {
    let (ctx, d) = Deployed::load(global).await?;
    // Keys outside the stack's source prefix would never reach the function.
    let prefix = match &d.source_prefix {
        Some(p) if !args.prefix.starts_with(p.as_str()) => format!("{p}{}", args.prefix),
        _ => args.prefix.clone(),
    };
    let files = collect(&args.paths, &prefix)?;
    if files.is_empty() {
        anyhow::bail!("no files to upload in {:?}", args.paths);
    }
    let mut planned = Vec::new();
    let mut refused = Vec::new();
    for (path, key) in files {
        match classify(&path) {
            Ok((size, content_type)) => planned.push(Planned {
                path,
                key,
                size,
                content_type,
            }),
            Err(reason) if args.force => {
                let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                tracing::warn!(file = %path.display(), %reason, "uploading anyway (--force)");
                planned.push(Planned {
                    path,
                    key,
                    size,
                    content_type: "application/octet-stream".into(),
                });
            }
            Err(reason) => refused.push((path, reason)),
        }
    }
    if !refused.is_empty() {
        let list: Vec<String> = refused
            .iter()
            .map(|(p, r)| format!("  {}: {r}", p.display()))
            .collect();
        anyhow::bail!(
            "{} file(s) are not images thumbctl can thumbnail; nothing was uploaded:\n{}\n  hint: remove them, or pass --force to upload them anyway",
            refused.len(),
            list.join("\n")
        );
    }

    let total: u64 = planned.iter().map(|f| f.size).sum();
    let bar = if !global.quiet && std::io::stderr().is_terminal() {
        let b = ProgressBar::new(total);
        b.set_style(
            ProgressStyle::with_template(
                "{bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let started = Instant::now();
    let results: Vec<(Planned, Result<String, AwsError>)> = stream::iter(planned)
        .map(|f| {
            let (ctx, bar, bucket) = (&ctx, &bar, &d.source_bucket);
            async move {
                let r = put_file(ctx, bucket, &f, bar).await;
                (f, r)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    bar.finish_and_clear();
    let mut uploaded = Vec::new();
    let mut failures = Vec::new();
    for (f, r) in &results {
        match r {
            Ok(etag) => uploaded.push((f.key.clone(), etag.clone())),
            Err(e) => failures.push(format!("  {}: {e}", f.path.display())),
        }
    }
    if global.output == OutputMode::Text {
        eprintln!(
            "Uploaded {} file(s), {:.1} MiB, to s3://{}/ in {:.1}s",
            uploaded.len(),
            total as f64 / 1048576.0,
            d.source_bucket,
            started.elapsed().as_secs_f64()
        );
    }
    if !failures.is_empty() {
        anyhow::bail!(
            "{} upload(s) failed:\n{}\n  hint: rerun the same command; uploads overwrite",
            failures.len(),
            failures.join("\n")
        );
    }

    let mut report: Vec<Value> = results
        .iter()
        .map(|(f, r)| {
            json!({"file": f.path, "key": f.key, "bytes": f.size,
        "content_type": f.content_type, "etag": r.as_ref().ok()})
        })
        .collect();
    let mut pending = Vec::new();
    if args.wait {
        let (done, still) = wait_for_items(&ctx, &d.table, &uploaded, args.timeout).await?;
        for entry in &mut report {
            let key = entry["key"].as_str().unwrap_or_default().to_owned();
            if let Some(item) = done.get(&key) {
                let item = super::images::with_links(&ctx, &d, item.clone()).await?;
                entry["status"] = item["status"].clone();
                entry["error"] = item.get("error").cloned().unwrap_or(Value::Null);
                entry["thumbnails"] = item.get("thumbnails").cloned().unwrap_or(json!([]));
            } else {
                entry["status"] = json!("pending");
            }
        }
        pending = still;
    }
    if global.output == OutputMode::Json {
        print_json(&json!({"bucket": d.source_bucket, "uploaded": report, "pending": pending}))?;
    } else {
        for e in &report {
            let status = e
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("uploaded");
            println!("{status:<8} {}", e["key"].as_str().unwrap_or_default());
            if let Some(err) = e.get("error").and_then(Value::as_str) {
                println!("         {err}");
            }
            for t in e
                .get("thumbnails")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                println!(
                    "         {}  {}",
                    t["key"].as_str().unwrap_or_default(),
                    t["url"].as_str().unwrap_or_default()
                );
            }
        }
    }
    if !pending.is_empty() {
        anyhow::bail!(
            "{} image(s) still pending after {}s: {}\n  hint: `thumbctl list` later, or `thumbctl invoke-local <key>` where no function runs (local emulator)",
            pending.len(),
            args.timeout.as_secs(),
            pending.join(", ")
        );
    }
    Ok(())
}
