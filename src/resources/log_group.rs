//! CloudWatch log groups with retention. Created by thumbctl rather than left to Lambda and
//! CodeBuild, which would create them on first use with no retention and outside the state.

use std::collections::HashMap;

use super::Found;
use crate::context::Ctx;
use crate::error::{AwsError, OrNotFound, aws};
use crate::stack::{LOG_RETENTION_DAYS, Plan};

pub const KIND: &str = "log-group";

pub async fn ensure(ctx: &Ctx, plan: &Plan, name: &str) -> Result<Found, AwsError> {
    let tags: HashMap<String, String> = plan.tags().into_iter().collect();
    match ctx
        .logs
        .create_log_group()
        .log_group_name(name)
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(aws("create", KIND, name))
    {
        Ok(_) => {}
        Err(e) if e.is_already_exists() => {}
        Err(e) => return Err(e),
    }
    ctx.logs
        .put_retention_policy()
        .log_group_name(name)
        .retention_in_days(LOG_RETENTION_DAYS)
        .send()
        .await
        .map_err(aws("set retention on", KIND, name))?;
    Ok(Found::arn(plan.log_group_arn(name)))
}

pub async fn find(ctx: &Ctx, name: &str) -> Result<Option<Found>, AwsError> {
    let out = ctx
        .logs
        .describe_log_groups()
        .log_group_name_prefix(name)
        .send()
        .await
        .map_err(aws("look up", KIND, name))
        .or_not_found()?;
    Ok(out.and_then(|o| {
        o.log_groups()
            .iter()
            .find(|g| g.log_group_name() == Some(name))
            .map(|g| Found {
                arn: g.arn().map(|a| a.trim_end_matches(":*").to_owned()),
                ..Found::default()
            })
    }))
}

pub async fn delete(ctx: &Ctx, name: &str) -> Result<(), AwsError> {
    ctx.logs
        .delete_log_group()
        .log_group_name(name)
        .send()
        .await
        .map_err(aws("delete", KIND, name))
        .or_not_found()?;
    Ok(())
}
