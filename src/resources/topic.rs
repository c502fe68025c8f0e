//! The SNS topic announcing finished thumbnails.

use aws_sdk_sns::types::Tag;

use super::{Found, built};
use crate::context::Ctx;
use crate::error::{AwsError, OrNotFound, aws};
use crate::stack::Plan;
use crate::state::Entry;

pub const KIND: &str = "topic";

/// CreateTopic is idempotent for the same name and attributes: it returns the existing ARN.
pub async fn ensure(ctx: &Ctx, plan: &Plan, name: &str) -> Result<Found, AwsError> {
    let mut tags = Vec::new();
    for (k, v) in plan.tags() {
        tags.push(built(Tag::builder().key(k).value(v).build(), KIND, name)?);
    }
    let out = ctx
        .sns
        .create_topic()
        .name(name)
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(aws("create", KIND, name))?;
    Ok(Found::arn(
        out.topic_arn.unwrap_or_else(|| plan.topic_arn()),
    ))
}

pub async fn find(ctx: &Ctx, e: &Entry) -> Result<Option<Found>, AwsError> {
    let Some(arn) = e.arn.as_deref() else {
        return Ok(None);
    };
    let out = ctx
        .sns
        .get_topic_attributes()
        .topic_arn(arn)
        .send()
        .await
        .map_err(aws("look up", KIND, &e.name))
        .or_not_found()?;
    Ok(out.map(|_| Found::arn(arn)))
}

/// Deleting a topic also deletes its subscriptions.
pub async fn delete(ctx: &Ctx, e: &Entry) -> Result<(), AwsError> {
    let Some(arn) = e.arn.as_deref() else {
        return Ok(());
    };
    ctx.sns
        .delete_topic()
        .topic_arn(arn)
        .send()
        .await
        .map_err(aws("delete", KIND, &e.name))
        .or_not_found()?;
    Ok(())
}
