//! The source bucket's notification to the function: created, removed and expired objects.

use std::collections::BTreeMap;

use aws_sdk_s3::operation::get_bucket_notification_configuration::GetBucketNotificationConfigurationOutput;
use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, LambdaFunctionConfiguration, NotificationConfiguration,
    NotificationConfigurationFilter, S3KeyFilter,
};

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

/// The events the function handles: new objects, and removed or expired ones (their
/// thumbnails and item follow the original).
pub const EVENTS: [&str; 3] = [
    "s3:ObjectCreated:*",
    "s3:ObjectRemoved:*",
    "s3:LifecycleExpiration:*",
];

fn ours(plan: &Plan, function_arn: &str) -> Result<LambdaFunctionConfiguration, AwsError> {
    let bucket = plan.source_bucket();
    let filter = plan.settings.source_prefix.as_ref().map(|p| {
        NotificationConfigurationFilter::builder()
            .key(
                S3KeyFilter::builder()
                    .filter_rules(
                        FilterRule::builder()
                            .name(FilterRuleName::Prefix)
                            .value(p)
                            .build(),
                    )
                    .build(),
            )
            .build()
    });
    built(
        LambdaFunctionConfiguration::builder()
            .id(NOTIFICATION_ID)
            .lambda_function_arn(function_arn)
            .set_events(Some(EVENTS.iter().map(|e| Event::from(*e)).collect()))
            .set_filter(filter)
            .build(),
        KIND,
        &bucket,
    )
}

/// A bucket the stack made holds only our notification, so its configuration is written
/// whole: one call on the critical path. An adopted bucket's own notifications are kept:
/// ours is merged in (read, replace ours, write), after checking S3 would accept the mix.
pub async fn ensure(ctx: &Ctx, plan: &Plan, function_arn: &str) -> Result<Found, AwsError> {
    let bucket = plan.source_bucket();
    let conf = ours(plan, function_arn)?;
    // S3 validates the destination by asking Lambda whether it may invoke it; until the
    // permission added a moment ago has propagated, it answers "Unable to validate".
    retry::until_settled(
        Patience::SETTLE,
        retry::busy("S3 to see the function's new invoke permission"),
        || async {
            let whole = if plan.source_adopted() {
                let current = read(ctx, &bucket)
                    .await?
                    .unwrap_or_else(|| GetBucketNotificationConfigurationOutput::builder().build());
                merged(&current, &conf).map_err(|why| AwsError::local("add", KIND, &bucket, why))?
            } else {
                NotificationConfiguration::builder()
                    .lambda_function_configurations(conf.clone())
                    .build()
            };
            ctx.s3
                .put_bucket_notification_configuration()
                .bucket(&bucket)
                .notification_configuration(whole)
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

/// The bucket's configuration with ours in place of any earlier ours; refused (with the
/// reason) when another configuration of the bucket overlaps ours, as S3 would refuse it.
fn merged(
    current: &GetBucketNotificationConfigurationOutput,
    conf: &LambdaFunctionConfiguration,
) -> Result<NotificationConfiguration, String> {
    let our_prefix = prefix_of(conf.filter());
    let others = current
        .lambda_function_configurations()
        .iter()
        .filter(|c| c.id() != conf.id())
        .map(|c| (c.id(), c.events(), c.filter(), "Lambda function"))
        .chain(
            current
                .queue_configurations()
                .iter()
                .map(|c| (c.id(), c.events(), c.filter(), "SQS queue")),
        )
        .chain(
            current
                .topic_configurations()
                .iter()
                .map(|c| (c.id(), c.events(), c.filter(), "SNS topic")),
        );
    for (id, events, filter, target) in others {
        let shared: Vec<&str> = events
            .iter()
            .map(|e| e.as_str())
            .filter(|e| EVENTS.iter().any(|o| events_overlap(o, e)))
            .collect();
        // Ours has no suffix rule, so whatever suffix theirs has, only the prefixes decide.
        let their_prefix = prefix_of(filter);
        if !shared.is_empty()
            && (their_prefix.starts_with(&our_prefix) || our_prefix.starts_with(&their_prefix))
        {
            return Err(format!(
                "the bucket already sends {} for {} to an {target} (configuration `{}`), which \
                 overlaps ours; S3 refuses overlapping notifications. Give the stack its own \
                 prefix that theirs does not cover (--source-prefix uploads/) when creating it",
                shared.join(", "),
                if their_prefix.is_empty() {
                    "every key".to_owned()
                } else {
                    format!("keys under `{their_prefix}`")
                },
                id.unwrap_or("unnamed")
            ));
        }
    }
    let mut lambdas: Vec<LambdaFunctionConfiguration> = current
        .lambda_function_configurations()
        .iter()
        .filter(|c| c.id() != conf.id())
        .cloned()
        .collect();
    lambdas.push(conf.clone());
    Ok(NotificationConfiguration::builder()
        .set_lambda_function_configurations(Some(lambdas))
        .set_queue_configurations(Some(current.queue_configurations().to_vec()))
        .set_topic_configurations(Some(current.topic_configurations().to_vec()))
        .set_event_bridge_configuration(current.event_bridge_configuration().cloned())
        .build())
}

/// `s3:ObjectCreated:*` overlaps `s3:ObjectCreated:Put`, and itself.
fn events_overlap(a: &str, b: &str) -> bool {
    let family = |e: &str| {
        e.rsplit_once(':')
            .map(|(f, _)| f.to_owned())
            .unwrap_or_default()
    };
    a == b || (family(a) == family(b) && (a.ends_with(":*") || b.ends_with(":*")))
}

fn rule_of(filter: Option<&NotificationConfigurationFilter>, name: FilterRuleName) -> String {
    filter
        .and_then(|f| f.key())
        .map(|k| k.filter_rules())
        .unwrap_or_default()
        .iter()
        .find(|r| r.name() == Some(&name))
        .and_then(|r| r.value())
        .unwrap_or_default()
        .to_owned()
}

fn prefix_of(filter: Option<&NotificationConfigurationFilter>) -> String {
    rule_of(filter, FilterRuleName::Prefix)
}

fn suffix_of(filter: Option<&NotificationConfigurationFilter>) -> String {
    rule_of(filter, FilterRuleName::Suffix)
}

/// How our configuration on the bucket differs from the plan's.
pub async fn drift(ctx: &Ctx, plan: &Plan, e: &Entry) -> Result<Vec<String>, AwsError> {
    let Some(out) = read(ctx, &e.name).await? else {
        return Ok(Vec::new());
    };
    let id = id_of(e);
    let Some(have) = out
        .lambda_function_configurations()
        .iter()
        .find(|c| c.id() == Some(id))
    else {
        return Ok(vec!["our notification is missing".to_owned()]);
    };
    let mut diffs = Vec::new();
    if have.lambda_function_arn() != plan.function_arn() {
        diffs.push(format!(
            "it invokes {}, not the stack's function",
            have.lambda_function_arn()
        ));
    }
    let mut events: Vec<&str> = have.events().iter().map(|e| e.as_str()).collect();
    events.sort();
    let mut want = EVENTS.to_vec();
    want.sort();
    if events != want {
        diffs.push(format!(
            "it sends {}, not {}",
            events.join(", "),
            want.join(", ")
        ));
    }
    let want_prefix = plan.settings.source_prefix.clone().unwrap_or_default();
    if prefix_of(have.filter()) != want_prefix || !suffix_of(have.filter()).is_empty() {
        diffs.push("its key filter changed".to_owned());
    }
    Ok(diffs)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_event_types() {
        assert!(events_overlap("s3:ObjectCreated:*", "s3:ObjectCreated:Put"));
        assert!(events_overlap("s3:ObjectRemoved:*", "s3:ObjectRemoved:*"));
        assert!(!events_overlap(
            "s3:ObjectCreated:*",
            "s3:ObjectRemoved:Delete"
        ));
        assert!(!events_overlap(
            "s3:ObjectCreated:Put",
            "s3:ObjectCreated:Copy"
        ));
    }
}
