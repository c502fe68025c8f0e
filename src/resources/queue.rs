//! The SQS queue that receives the events Lambda gave up on (the function's on-failure
//! destination), so that nothing is dropped silently and `reprocess --failed` can replay them.
//!
//! SQS rather than the stack's SNS topic: a topic delivers to whoever is subscribed at that
//! moment and keeps nothing, while a queue holds each failure (up to 14 days) until it is
//! replayed, and can be counted (`status`).

use std::collections::HashMap;

use aws_sdk_sqs::types::QueueAttributeName;

use super::Found;
use crate::context::Ctx;
use crate::error::{AwsError, OrNotFound, aws};
use crate::stack::Plan;
use crate::state::Entry;

pub const KIND: &str = "queue";

/// The longest SQS keeps a message: failures wait two weeks for a replay.
const RETENTION_SECS: &str = "1209600";

/// CreateQueue returns the existing queue's URL when the name and attributes match, so a
/// rerun after a crash adopts it without a special case.
pub async fn ensure(ctx: &Ctx, plan: &Plan, name: &str) -> Result<Found, AwsError> {
    let tags: HashMap<String, String> = plan.tags().into_iter().collect();
    let out = ctx
        .sqs
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::MessageRetentionPeriod, RETENTION_SECS)
        .attributes(QueueAttributeName::SqsManagedSseEnabled, "true")
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(aws("create", KIND, name))?;
    let url = out
        .queue_url
        .ok_or_else(|| AwsError::local("create", KIND, name, "SQS returned no queue URL"))?;
    Ok(Found {
        arn: Some(plan.queue_arn()),
        extra: [("url".to_owned(), url)].into(),
    })
}

/// The queue's URL: recorded at creation; looked up by name for an entry that has none yet
/// (a crash between the create and its record).
pub async fn url(ctx: &Ctx, e: &Entry) -> Result<Option<String>, AwsError> {
    if let Some(u) = e.extra.get("url") {
        return Ok(Some(u.clone()));
    }
    let out = ctx
        .sqs
        .get_queue_url()
        .queue_name(&e.name)
        .send()
        .await
        .map_err(aws("look up", KIND, &e.name))
        .or_not_found()?;
    Ok(out.and_then(|o| o.queue_url))
}

/// One attribute of the queue; `None` when the queue is gone.
async fn attribute(
    ctx: &Ctx,
    e: &Entry,
    url: &str,
    name: QueueAttributeName,
    action: &'static str,
) -> Result<Option<Option<String>>, AwsError> {
    let out = ctx
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(name.clone())
        .send()
        .await
        .map_err(aws(action, KIND, &e.name))
        .or_not_found()?;
    Ok(out.map(|o| o.attributes().and_then(|a| a.get(&name)).cloned()))
}

pub async fn find(ctx: &Ctx, e: &Entry) -> Result<Option<Found>, AwsError> {
    let Some(url) = url(ctx, e).await? else {
        return Ok(None);
    };
    let arn = attribute(ctx, e, &url, QueueAttributeName::QueueArn, "look up").await?;
    Ok(arn.map(|arn| Found {
        arn: arn.or_else(|| e.arn.clone()),
        extra: [("url".to_owned(), url.clone())].into(),
    }))
}

/// How many failures wait in the queue (SQS's approximate count).
pub async fn depth(ctx: &Ctx, e: &Entry) -> Result<Option<u64>, AwsError> {
    let Some(url) = url(ctx, e).await? else {
        return Ok(None);
    };
    let n = attribute(
        ctx,
        e,
        &url,
        QueueAttributeName::ApproximateNumberOfMessages,
        "count messages in",
    )
    .await?;
    Ok(n.flatten().and_then(|n| n.parse().ok()))
}

pub async fn delete(ctx: &Ctx, e: &Entry) -> Result<(), AwsError> {
    let Some(url) = url(ctx, e).await? else {
        return Ok(());
    };
    ctx.sqs
        .delete_queue()
        .queue_url(&url)
        .send()
        .await
        .map_err(aws("delete", KIND, &e.name))
        .or_not_found()?;
    Ok(())
}
