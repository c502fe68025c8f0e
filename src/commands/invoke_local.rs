//! `thumbctl invoke-local <key>`: run the deployed function's own handler on this machine for
//! one object of the source bucket, with the function's environment read back from AWS and
//! the event S3 itself would send. Like `sam local invoke`, without a container.

use std::collections::HashMap;

use anyhow::Context;
use aws_lambda_events::event::s3::S3Event;
use lambda_image::config::Config;
use lambda_image::handler::Handler;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::json;

use super::{Deployed, print_json};
use crate::cli::{GlobalArgs, InvokeLocalArgs, OutputMode};
use crate::error::aws;

/// S3 event keys are form-encoded: unreserved characters and `/` stay, a space becomes `+`,
/// everything else (including `+` itself and non-ASCII) is percent-encoded.
const KEY_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/')
    .remove(b' ');

pub fn encode_event_key(key: &str) -> String {
    utf8_percent_encode(key, KEY_SET)
        .to_string()
        .replace(' ', "+")
}

/// The ObjectCreated:Put event S3 sends for one object (event version 2.1).
pub fn s3_event(
    region: &str,
    bucket: &str,
    key: &str,
    size: i64,
    etag: &str,
    sequencer: &str,
) -> serde_json::Value {
    json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": crate::now_rfc3339(),
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "thumbctl-invoke-local"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "thumbctl", "x-amz-id-2": "thumbctl"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": crate::stack::NOTIFICATION_ID,
            "bucket": {"name": bucket, "ownerIdentity": {"principalId": "thumbctl"}, "arn": format!("arn:{}:s3:::{bucket}", crate::stack::partition_of(region))},
            "object": {"key": encode_event_key(key), "size": size, "eTag": etag.trim_matches('"'), "sequencer": sequencer}
        }
    }]})
}

/// The deployed function's configuration, read back from its environment in AWS: what the
/// handler runs with there is what it runs with here.
pub async fn function_config(ctx: &crate::context::Ctx, function: &str) -> anyhow::Result<Config> {
    let conf = ctx
        .lambda
        .get_function_configuration()
        .function_name(function)
        .send()
        .await
        .map_err(aws("read configuration of", "function", function))?;
    let vars: HashMap<String, String> = conf
        .environment
        .and_then(|e| e.variables)
        .unwrap_or_default();
    Config::from_vars(&vars)
        .with_context(|| format!("the environment of function `{function}` is not usable"))
}

/// Runs the handler here on one object already in the source bucket, with the event S3 would
/// send for its upload (its real size and ETag), so the item records what Lambda's would.
pub async fn handle_key(
    ctx: &crate::context::Ctx,
    d: &Deployed,
    handler: &Handler,
    key: &str,
) -> anyhow::Result<Vec<lambda_image::handler::RecordOutcome>> {
    let head = ctx
        .s3
        .head_object()
        .bucket(&d.source_bucket)
        .key(key)
        .send()
        .await
        .map_err(aws("look up", "object", key))?;
    let etag = head.e_tag().unwrap_or_default().to_owned();
    let sequencer = format!(
        "{:016X}",
        time::OffsetDateTime::now_utc().unix_timestamp_nanos() as u64
    );
    let event = s3_event(
        &ctx.region,
        &d.source_bucket,
        key,
        head.content_length().unwrap_or(0),
        &etag,
        &sequencer,
    );
    let event: S3Event = serde_json::from_value(event).context("building the S3 event")?;
    handler.handle_event(event).await.with_context(|| {
        format!("the handler failed transiently on `{key}` (on AWS, Lambda would retry); rerun invoke-local")
    })
}

pub async fn run(global: &GlobalArgs, args: InvokeLocalArgs) -> anyhow::Result<()> {
    let (ctx, d) = Deployed::load(global).await?;
    let config = function_config(&ctx, &d.function).await?;
    let sdk = crate::context::load_sdk_config(&super::in_region(global, &ctx.region)).await?;
    let handler = Handler::new(config, &sdk);

    let mut outcomes = Vec::new();
    for key in &args.keys {
        outcomes.extend(handle_key(&ctx, &d, &handler, key).await?);
    }
    if global.output == OutputMode::Json {
        return print_json(&json!({"function": d.function, "outcomes": outcomes}));
    }
    for o in &outcomes {
        println!(
            "{:<8} {} ({} ms){}",
            o.outcome.as_str(),
            o.key,
            o.ms,
            o.reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        );
        for t in &o.thumbnails {
            println!("         s3://{}/{t}", d.dest_bucket);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_encoded_as_s3_does() {
        assert_eq!(encode_event_key("photos/my cat.jpg"), "photos/my+cat.jpg");
        assert_eq!(encode_event_key("a+b.jpg"), "a%2Bb.jpg");
        assert_eq!(encode_event_key("ü/é 1.png"), "%C3%BC/%C3%A9+1.png");
        // And the handler's decoder gives the key back.
        for key in ["photos/my cat.jpg", "a+b.jpg", "ü/é 1.png", "100% (1).jpg"] {
            assert_eq!(
                lambda_image::keys::decode_event_key(&encode_event_key(key)),
                key
            );
        }
    }
}
