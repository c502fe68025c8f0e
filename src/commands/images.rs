//! `list`, `get`, `delete` and `presign`: the metadata items and objects of a deployed stack.

use std::io::{BufRead, IsTerminal, Write};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::config::ProvideCredentials;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_smithy_types::error::display::DisplayErrorContext;
use serde_json::{Value, json};

use super::{Deployed, print_json};
use crate::UsageError;
use crate::cli::{
    DEFAULT_POST_MAX_BYTES, DeleteArgs, GetArgs, GlobalArgs, ListArgs, OutputMode, PresignArgs,
};
use crate::context::Ctx;
use crate::error::{AwsError, aws};
use crate::post_policy::{self, KeyRule, PostRequest, SigningCredentials, TypeRule};
use crate::resources::table::{INDEX_BY_STATUS, INDEX_BY_TIME};

/// How long the GET links printed by `get`, `list` and `upload --wait` stay valid.
pub const LINK_TTL: Duration = Duration::from_secs(3600);

fn item_to_json(item: std::collections::HashMap<String, AttributeValue>) -> anyhow::Result<Value> {
    serde_dynamo::from_item(item).context("reading a metadata item")
}

/// Newest first from the `by-time` index (or `by-status` for one status): a query on an
/// index, never a scan, and DynamoDB's pagination followed until `limit` items.
pub async fn list_items(
    ctx: &Ctx,
    table: &str,
    status: Option<&str>,
    limit: usize,
) -> anyhow::Result<Vec<Value>> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let (index, key, value) = match status {
            Some(s) => (INDEX_BY_STATUS, "status", s),
            None => (INDEX_BY_TIME, "listing", "all"),
        };
        let page = ctx
            .dynamodb
            .query()
            .table_name(table)
            .index_name(index)
            .key_condition_expression("#k = :v")
            .expression_attribute_names("#k", key)
            .expression_attribute_values(":v", AttributeValue::S(value.to_owned()))
            .scan_index_forward(false)
            .limit(i32::try_from(limit.saturating_sub(items.len()).clamp(1, 1000)).unwrap_or(1000))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(aws("query", "table", table))?;
        for item in page.items.unwrap_or_default() {
            items.push(item_to_json(item)?);
        }
        start = page.last_evaluated_key;
        if start.is_none() || items.len() >= limit {
            break;
        }
    }
    items.truncate(limit);
    Ok(items)
}

pub async fn get_item(ctx: &Ctx, table: &str, id: &str) -> anyhow::Result<Option<Value>> {
    let out = ctx
        .dynamodb
        .get_item()
        .table_name(table)
        .key("id", AttributeValue::S(id.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .map_err(aws("read item from", "table", table))?;
    out.item.map(item_to_json).transpose()
}

pub async fn presign_get(
    ctx: &Ctx,
    bucket: &str,
    key: &str,
    ttl: Duration,
) -> Result<String, AwsError> {
    let conf = PresigningConfig::expires_in(ttl)
        .map_err(|e| AwsError::local("presign", "object", key, e.to_string()))?;
    let req = ctx
        .s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .presigned(conf)
        .await
        .map_err(aws("presign", "object", key))?;
    Ok(req.uri().to_owned())
}

/// Adds a download `url` to every thumbnail of an item: through the stack's CloudFront
/// distribution when it has one (a stable, cacheable URL), else a presigned GET valid for
/// [`LINK_TTL`].
/// A thumbnail S3 no longer has is marked `"expired": true` (see [`mark_expired`]) and gets
/// no link.
pub async fn with_links(ctx: &Ctx, d: &Deployed, mut item: Value) -> anyhow::Result<Value> {
    mark_expired(ctx, d, &mut item).await?;
    if let Some(thumbs) = item.get_mut("thumbnails").and_then(Value::as_array_mut) {
        for t in thumbs {
            if t.get("expired").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            if let Some(key) = t.get("key").and_then(Value::as_str).map(str::to_owned) {
                let url = match &d.cdn_domain {
                    Some(domain) => cdn_url(domain, &key),
                    None => presign_get(ctx, &d.dest_bucket, &key, LINK_TTL).await?,
                };
                t["url"] = json!(url);
            }
        }
    }
    Ok(item)
}

/// With `up --expire-days thumbnails=N`, S3 deletes each thumbnail N days after it was
/// written (the destination bucket's lifecycle rule), and nothing tells the item: the function
/// hears only the source bucket's events. So the thumbnails an item names are looked up (one
/// HEAD each, together), and each one S3 no longer has is marked `"expired": true`. Stacks
/// without that rule make no extra call. Marking twice is harmless.
pub async fn mark_expired(ctx: &Ctx, d: &Deployed, item: &mut Value) -> anyhow::Result<()> {
    if d.expire_thumbnails_days.is_none() {
        return Ok(());
    }
    let Some(thumbs) = item.get_mut("thumbnails").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    let keys: Vec<Option<String>> = thumbs
        .iter()
        .map(|t| t.get("key").and_then(Value::as_str).map(str::to_owned))
        .collect();
    let found = futures::future::try_join_all(keys.iter().map(|k| async move {
        match k {
            Some(k) => thumbnail_exists(ctx, &d.dest_bucket, k).await.map(Some),
            None => Ok(None),
        }
    }))
    .await?;
    for (t, exists) in thumbs.iter_mut().zip(found) {
        if exists == Some(false) {
            t["expired"] = json!(true);
        }
    }
    Ok(())
}

async fn thumbnail_exists(ctx: &Ctx, bucket: &str, key: &str) -> Result<bool, AwsError> {
    match ctx
        .s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(aws("look up", "thumbnail", key))
    {
        Ok(_) => Ok(true),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e),
    }
}

fn expired_count(item: &Value) -> usize {
    item.get("thumbnails")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|t| t.get("expired").and_then(Value::as_bool) == Some(true))
        .count()
}

/// `https://<domain>/<key>`, each `/`-separated segment of the key percent-encoded, so that
/// CloudFront asks S3 for exactly that key (`lambda_image::keys::cdn_path`, the spelling
/// invalidations use too).
pub fn cdn_url(domain: &str, key: &str) -> String {
    format!("https://{domain}{}", lambda_image::keys::cdn_path(key))
}

fn summary_line(item: &Value) -> String {
    let s = |k: &str| {
        item.get(k)
            .and_then(Value::as_str)
            .unwrap_or("-")
            .to_owned()
    };
    let n = |k: &str| {
        item.get(k)
            .and_then(Value::as_u64)
            .map(|v| v.to_string())
            .unwrap_or_else(|| "-".into())
    };
    let thumbs = item
        .get("thumbnails")
        .and_then(Value::as_array)
        .map(Vec::len)
        .unwrap_or(0);
    let expired = expired_count(item);
    let detail = if s("status") == "ok" && expired > 0 {
        format!(
            "{}x{}, {thumbs} thumbnails ({expired} expired)",
            n("width"),
            n("height")
        )
    } else if s("status") == "ok" {
        format!("{}x{}, {thumbs} thumbnails", n("width"), n("height"))
    } else {
        s("error")
    };
    format!(
        "{:<20}  {:<6}  {:<28}  {}",
        s("created_at"),
        s("status"),
        detail,
        s("id")
    )
}

pub async fn list(global: &GlobalArgs, args: ListArgs) -> anyhow::Result<()> {
    let (ctx, d) = Deployed::load(global).await?;
    let items = list_items(&ctx, &d.table, args.status.as_deref(), args.limit as usize).await?;
    if global.output == OutputMode::Json {
        let mut linked = Vec::with_capacity(items.len());
        for item in items {
            linked.push(with_links(&ctx, &d, item).await?);
        }
        return print_json(&json!({"stack": global.stack, "count": linked.len(), "items": linked}));
    }
    if items.is_empty() {
        println!("No images yet. Upload some with: thumbctl upload <file|dir>");
    }
    let mut expired = 0;
    for mut item in items {
        mark_expired(&ctx, &d, &mut item).await?;
        expired += expired_count(&item);
        println!("{}", summary_line(&item));
    }
    if let (true, Some(days)) = (expired > 0, d.expire_thumbnails_days) {
        println!(
            "{expired} thumbnail(s) listed above expired: S3 no longer has them (the stack expires thumbnails {days} days after they are made: --expire-days thumbnails={days})."
        );
    }
    Ok(())
}

pub async fn get(global: &GlobalArgs, args: GetArgs) -> anyhow::Result<()> {
    let (ctx, d) = Deployed::load(global).await?;
    let Some(item) = get_item(&ctx, &d.table, &args.id).await? else {
        anyhow::bail!(
            "no image `{}` in stack `{}`.\n  hint: `thumbctl list` shows the ids",
            args.id,
            global.stack
        );
    };
    let item = with_links(&ctx, &d, item).await?;
    if global.output == OutputMode::Json {
        return print_json(&item);
    }
    println!("{}", summary_line(&item));
    if let Some(p) = item.get("placeholder").and_then(Value::as_str) {
        println!("  placeholder (ThumbHash, base64): {p}");
    }
    for t in item
        .get("thumbnails")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let w = t.get("width").and_then(Value::as_u64).unwrap_or(0);
        let h = t.get("height").and_then(Value::as_u64).unwrap_or(0);
        if t.get("expired").and_then(Value::as_bool) == Some(true) {
            println!(
                "  {w}x{h}  {}\n    expired: S3 no longer has it (the stack expires thumbnails {} days after they are made: --expire-days thumbnails={})",
                t["key"].as_str().unwrap_or("?"),
                d.expire_thumbnails_days.unwrap_or_default(),
                d.expire_thumbnails_days.unwrap_or_default()
            );
            continue;
        }
        println!(
            "  {w}x{h}  {}\n    {}",
            t["key"].as_str().unwrap_or("?"),
            t["url"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

pub async fn delete(global: &GlobalArgs, args: DeleteArgs) -> anyhow::Result<()> {
    let (ctx, d) = Deployed::load(global).await?;
    let mut plans = Vec::new();
    for id in &args.ids {
        let Some(item) = get_item(&ctx, &d.table, id).await? else {
            anyhow::bail!(
                "no image `{id}` in stack `{}`; nothing was deleted.\n  hint: `thumbctl list` shows the ids",
                global.stack
            );
        };
        let source_key = item
            .get("source_key")
            .and_then(Value::as_str)
            .unwrap_or(id)
            .to_owned();
        let thumbs = thumbnail_keys(&item);
        plans.push((id.clone(), source_key, thumbs));
    }
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err(UsageError("refusing to delete without confirmation: stdin is not a terminal.\n  hint: pass --yes".into()).into());
        }
        let n: usize = plans.iter().map(|(_, _, t)| 1 + t.len()).sum();
        eprint!(
            "Delete {} image(s), {n} object(s) and their metadata? [y/N] ",
            plans.len()
        );
        std::io::stderr().flush().ok();
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        if !matches!(line.trim(), "y" | "Y" | "yes") {
            return Err(UsageError("not confirmed; nothing was deleted".into()).into());
        }
    }
    let mut report = Vec::new();
    for (id, source_key, thumbs) in plans {
        delete_image(&ctx, &d, &id, &source_key, &thumbs, global.quiet).await?;
        if global.output == OutputMode::Text {
            println!("deleted {id} (original and {} thumbnails)", thumbs.len());
        }
        report.push(json!({"id": id, "source_key": source_key, "thumbnails": thumbs}));
    }
    if global.output == OutputMode::Json {
        print_json(&json!({"deleted": report}))?;
    }
    Ok(())
}

/// Every thumbnail key an item names: its thumbnails, and `superseded`, an earlier version's
/// thumbnails whose delete the function has not completed yet (lambda-image store.rs), which
/// nothing else would find.
pub fn thumbnail_keys(item: &Value) -> Vec<String> {
    let superseded = item
        .get("superseded")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned);
    item.get("thumbnails")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("key").and_then(Value::as_str).map(str::to_owned))
        .chain(superseded)
        .filter(|k| !k.is_empty())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Deletes one image: its original, the thumbnails its item lists, their copies in the CDN's
/// cache (`up --cdn`: cached for up to a year, they would stay public), then the item.
/// Objects first, item last: if this stops half-way, the item still lists what is left, and
/// a rerun finishes (deleting what is already gone succeeds, and invalidating again is
/// harmless).
pub async fn delete_image(
    ctx: &Ctx,
    d: &Deployed,
    id: &str,
    source_key: &str,
    thumbs: &[String],
    quiet: bool,
) -> anyhow::Result<()> {
    ctx.s3
        .delete_object()
        .bucket(&d.source_bucket)
        .key(source_key)
        .send()
        .await
        .map_err(aws("delete", "object", source_key))?;
    for key in thumbs {
        ctx.s3
            .delete_object()
            .bucket(&d.dest_bucket)
            .key(key)
            .send()
            .await
            .map_err(aws("delete", "object", key))?;
    }
    if let Some(cdn) = &d.cdn_id {
        let say = |line: &str| {
            if !quiet {
                eprintln!("{line}");
            }
        };
        crate::resources::distribution::invalidate(ctx, cdn, cdn, thumbs, &say)
            .await
            .with_context(|| {
                format!(
                    "the thumbnails of `{id}` are deleted from the bucket, but CloudFront may \
                     still serve them from its cache; its item is kept, so rerun \
                     `thumbctl delete {id}` to invalidate them"
                )
            })?;
    }
    ctx.dynamodb
        .delete_item()
        .table_name(&d.table)
        .key("id", AttributeValue::S(id.to_owned()))
        .send()
        .await
        .map_err(aws("delete item from", "table", &d.table))?;
    Ok(())
}

/// The Content-Type a browser PUT must send, from the key's extension.
pub fn content_type_for_key(key: &str) -> Option<&'static str> {
    let ext = key.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase())?;
    Some(match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "bmp" => "image/bmp",
        "tif" | "tiff" => "image/tiff",
        _ => return None,
    })
}

pub async fn presign(global: &GlobalArgs, args: PresignArgs) -> anyhow::Result<()> {
    if args.post {
        return presign_post(global, args).await;
    }
    let (ctx, d) = Deployed::load(global).await?;
    let conf = PresigningConfig::expires_in(args.expires).context("presign expiry")?;
    let (method, url, content_type, bucket) = if args.put {
        let ct = match (&args.content_type, content_type_for_key(&args.key)) {
            (Some(ct), _) => ct.clone(),
            (None, Some(ct)) => ct.to_owned(),
            (None, None) => {
                return Err(UsageError(format!(
                    "cannot tell the image type of `{}` from its name.\n  hint: pass --content-type image/jpeg (or png, webp, ...)",
                    args.key
                ))
                .into());
            }
        };
        let req = ctx
            .s3
            .put_object()
            .bucket(&d.source_bucket)
            .key(&args.key)
            .content_type(&ct)
            .presigned(conf)
            .await
            .map_err(aws("presign", "object", &args.key))?;
        (
            "PUT",
            req.uri().to_owned(),
            Some(ct),
            d.source_bucket.clone(),
        )
    } else {
        let bucket = if args.thumbnail {
            d.dest_bucket.clone()
        } else {
            d.source_bucket.clone()
        };
        let req = ctx
            .s3
            .get_object()
            .bucket(&bucket)
            .key(&args.key)
            .presigned(conf)
            .await
            .map_err(aws("presign", "object", &args.key))?;
        ("GET", req.uri().to_owned(), None, bucket)
    };
    if global.output == OutputMode::Json {
        return print_json(
            &json!({"method": method, "url": url, "bucket": bucket, "key": args.key,
                                   "content_type": content_type, "expires_in_s": args.expires.as_secs()}),
        );
    }
    println!("{url}");
    if let Some(ct) = content_type {
        eprintln!(
            "Upload with: curl -X PUT -H 'Content-Type: {ct}' --data-binary @FILE '<url>'  (the Content-Type must match)"
        );
    }
    Ok(())
}

/// `presign --post`: a form upload to the source bucket, with a POST policy that caps the
/// size, the type and the key. No AWS call: the policy is signed with the caller's
/// credentials, and S3 checks it when the form is posted.
async fn presign_post(global: &GlobalArgs, args: PresignArgs) -> anyhow::Result<()> {
    let key = KeyRule::from_key(&args.key).map_err(|e| UsageError(e.to_string()))?;
    let content_type = TypeRule::from_option(args.content_type.as_deref())
        .map_err(|e| UsageError(e.to_string()))?;
    let max_bytes = args.max_size.unwrap_or(DEFAULT_POST_MAX_BYTES);
    let (ctx, d) = Deployed::load(global).await?;
    let provider = ctx.credentials.as_ref().ok_or_else(|| {
        AwsError::no_credentials("the AWS configuration has no credentials provider".into())
    })?;
    let creds = provider
        .provide_credentials()
        .await
        .map_err(|e| AwsError::no_credentials(DisplayErrorContext(&e).to_string()))
        .context("signing the upload form")?;
    let now = SystemTime::now();
    // The form is signed with these credentials: when they expire (a role session), so does
    // the form, whatever its policy says.
    if let Some(expiry) = creds.expiry()
        && expiry < now + args.expires
    {
        let left = expiry.duration_since(now).unwrap_or_default();
        eprintln!(
            "thumbctl: warning: your credentials expire in {}, before the form's --expires; the form stops working then.\n  hint: sign with long-lived credentials, or give a shorter --expires",
            humantime::format_duration(Duration::from_secs(left.as_secs()))
        );
    }
    let post = post_policy::presign_post(
        &PostRequest {
            bucket: &d.source_bucket,
            region: &ctx.region,
            key: &key,
            content_type: &content_type,
            max_bytes,
            now,
            expires_in: args.expires,
        },
        &SigningCredentials {
            access_key_id: creds.access_key_id(),
            secret_access_key: creds.secret_access_key(),
            session_token: creds.session_token(),
        },
    );
    let url = post_policy::post_url(&d.source_bucket, &ctx.region, ctx.endpoint.as_deref());
    let (exact_type, type_prefix) = match &content_type {
        TypeRule::Exact(t) => (Some(t.as_str()), None),
        TypeRule::Prefix(p) => (None, Some(p.as_str())),
    };
    if global.output == OutputMode::Json {
        let fields: serde_json::Map<String, Value> = post
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        return print_json(&json!({
            "method": "POST",
            "url": url,
            "bucket": d.source_bucket,
            "key": key.field(),
            "fields": fields,
            "expires_at": post.expires_at,
            "max_bytes": max_bytes,
            "content_type": exact_type,
            "content_type_prefix": type_prefix,
            "conditions": post.policy["conditions"],
        }));
    }
    println!("POST {url}");
    println!("Form fields (in this order; the file goes last):");
    for (k, v) in &post.fields {
        println!("  {k}: {v}");
    }
    // With a prefix rule the uploader names the type; the example picks one that passes.
    let example_type = type_prefix.map(|p| {
        content_type_for_key(&args.key)
            .filter(|t| t.starts_with(p))
            .unwrap_or("image/jpeg")
    });
    if let (Some(p), Some(t)) = (type_prefix, example_type) {
        println!("  Content-Type: any type starting with {p} (the uploader sets it, e.g. {t})");
    }
    println!(
        "Accepts 1 to {max_bytes} bytes until {} (UTC).",
        post.expires_at
    );
    println!();
    println!("Upload with:");
    let mut curl = String::from("curl --fail-with-body");
    for (k, v) in &post.fields {
        curl.push_str(&format!(
            " --form-string {}",
            shell_quote(&format!("{k}={v}"))
        ));
        if k == "key"
            && let Some(t) = example_type
        {
            curl.push_str(&format!(
                " --form-string {}",
                shell_quote(&format!("Content-Type={t}"))
            ));
        }
    }
    curl.push_str(&format!(" -F file=@photo.jpg {}", shell_quote(&url)));
    println!("{curl}");
    Ok(())
}

/// Single-quotes a word for a POSIX shell, so a pasted example runs as printed.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::cdn_url;

    #[test]
    fn cdn_urls_encode_each_segment_and_keep_the_slashes() {
        assert_eq!(
            cdn_url("d1.cloudfront.net", "256/2026/my cat+dog é.jpg"),
            "https://d1.cloudfront.net/256/2026/my%20cat%2Bdog%20%C3%A9.jpg"
        );
        assert_eq!(
            cdn_url("d1.cloudfront.net", "128/a?b#c%d.jpg"),
            "https://d1.cloudfront.net/128/a%3Fb%23c%25d.jpg"
        );
    }
}
