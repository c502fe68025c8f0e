//! The source bucket's ObjectCreated notification to the function.

use std::collections::BTreeMap;

use aws_sdk_s3::operation::get_bucket_notification_configuration::GetBucketNotificationConfigurationOutput;
use aws_sdk_s3::types::{Event, LambdaFunctionConfiguration, NotificationConfiguration};

use super::{Found, built};
use crate::context::Ctx;
use crate::error::{AwsError, OrNotFound, aws};
use crate::retry::{self, Patience};
use crate::stack::{NOTIFICATION_ID, Plan};
use crate::state::Entry;

pub const KIND: &str = "notification";

fn id_of(e: &Entry) -> &str {
    e.extra
        .get("id")
        .map(String::as_str)
        .unwrap_or(NOTIFICATION_ID)
}

pub fn extra() -> BTreeMap<String, String> {
    BTreeMap::from([("id".to_owned(), NOTIFICATION_ID.to_owned())])
}

/// The source bucket is ours and new, so its notification configuration is written whole:
/// one call on the critical path instead of a read-modify-write.
pub async fn ensure(ctx: &Ctx, plan: &Plan, function_arn: &str) -> Result<Found, AwsError> {
    let bucket = plan.source_bucket();
    let conf = built(
        LambdaFunctionConfiguration::builder()
            .id(NOTIFICATION_ID)
            .lambda_function_arn(function_arn)
            .events(Event::from("s3:ObjectCreated:*"))
            .build(),
        KIND,
        &bucket,
    )?;
    // S3 validates the destination by asking Lambda whether it may invoke it; until the
    // permission added a moment ago has propagated, it answers "Unable to validate".
    retry::until_settled(
        Patience::SETTLE,
        retry::busy("S3 to see the function's new invoke permission"),
        || async {
            ctx.s3
                .put_bucket_notification_configuration()
                .bucket(&bucket)
                .notification_configuration(
                    NotificationConfiguration::builder()
                        .lambda_function_configurations(conf.clone())
                        .build(),
                )
                .send()
                .await
                .map_err(aws("put", KIND, &bucket))
        },
    )
    .await?;
    Ok(Found {
        arn: None,
        extra: extra(),
    })
}

/// The bucket's notification configuration; `None` when the bucket is gone.
async fn read(
    ctx: &Ctx,
    bucket: &str,
) -> Result<Option<GetBucketNotificationConfigurationOutput>, AwsError> {
    match ctx
        .s3
        .get_bucket_notification_configuration()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(out) => Ok(Some(out)),
        // moto answers an empty configuration with a differently named XML root that the SDK
        // cannot parse, but with HTTP 200: that answer means "no notifications".
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 200) => Ok(Some(
            GetBucketNotificationConfigurationOutput::builder().build(),
        )),
        Err(e) => Err(AwsError::from_sdk("look up", KIND, bucket, e)).or_not_found(),
    }
}

pub async fn find(ctx: &Ctx, e: &Entry) -> Result<Option<Found>, AwsError> {
    let out = read(ctx, &e.name).await?;
    let id = id_of(e);
    Ok(out
        .filter(|o| {
            o.lambda_function_configurations()
                .iter()
                .any(|c| c.id() == Some(id))
        })
        .map(|_| Found {
            arn: None,
            extra: e.extra.clone(),
        }))
}

/// Removes only our configuration and keeps anything else on the bucket.
pub async fn delete(ctx: &Ctx, e: &Entry) -> Result<(), AwsError> {
    let Some(current) = read(ctx, &e.name).await? else {
        return Ok(());
    };
    let id = id_of(e);
    let rest: Vec<LambdaFunctionConfiguration> = current
        .lambda_function_configurations()
        .iter()
        .filter(|c| c.id() != Some(id))
        .cloned()
        .collect();
    if rest.len() == current.lambda_function_configurations().len() {
        return Ok(());
    }
    let conf = NotificationConfiguration::builder()
        .set_lambda_function_configurations(Some(rest))
        .set_queue_configurations(Some(current.queue_configurations().to_vec()))
        .set_topic_configurations(Some(current.topic_configurations().to_vec()))
        .set_event_bridge_configuration(current.event_bridge_configuration().cloned())
        .build();
    ctx.s3
        .put_bucket_notification_configuration()
        .bucket(&e.name)
        .notification_configuration(conf)
        .send()
        .await
        .map_err(aws("delete", KIND, &e.name))
        .or_not_found()?;
    Ok(())
}
