//! IAM roles that Lambda and CodeBuild assume. Their permissions live in `role_policy`.

use aws_sdk_iam::types::Tag;

use super::{Found, adopt, built};
use crate::context::Ctx;
use crate::error::{AwsError, OrNotFound, aws};
use crate::stack::Plan;

pub const KIND: &str = "role";

pub async fn ensure(ctx: &Ctx, plan: &Plan, name: &str, service: &str) -> Result<Found, AwsError> {
    let mut tags = Vec::new();
    for (k, v) in plan.tags() {
        tags.push(built(Tag::builder().key(k).value(v).build(), KIND, name)?);
    }
    let created = ctx
        .iam
        .create_role()
        .role_name(name)
        .description(format!(
            "thumbctl stack {}: assumed by {service}",
            plan.stack
        ))
        .assume_role_policy_document(Plan::trust_policy(service).to_string())
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(aws("create", KIND, name));
    match created {
        Ok(out) => Ok(Found::arn(
            out.role()
                .map(|r| r.arn().to_owned())
                .unwrap_or_else(|| plan.role_arn(name)),
        )),
        Err(e) if e.is_already_exists() => adopt(find(ctx, name).await?, KIND, name),
        Err(e) => Err(e),
    }
}

pub async fn find(ctx: &Ctx, name: &str) -> Result<Option<Found>, AwsError> {
    let out = ctx
        .iam
        .get_role()
        .role_name(name)
        .send()
        .await
        .map_err(aws("look up", KIND, name))
        .or_not_found()?;
    Ok(out.and_then(|o| o.role).map(|r| Found::arn(r.arn)))
}

/// Deletes the role. IAM refuses while policies remain (DeleteConflict): only then are they
/// listed and removed, which keeps the usual path to one call.
pub async fn delete(ctx: &Ctx, name: &str) -> Result<(), AwsError> {
    match ctx
        .iam
        .delete_role()
        .role_name(name)
        .send()
        .await
        .map_err(aws("delete", KIND, name))
    {
        Ok(_) => return Ok(()),
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) if e.code.as_deref() == Some("DeleteConflict") => {}
        Err(e) => return Err(e),
    }
    let Some(inline) = ctx
        .iam
        .list_role_policies()
        .role_name(name)
        .send()
        .await
        .map_err(aws("list policies of", KIND, name))
        .or_not_found()?
    else {
        return Ok(());
    };
    for policy in inline.policy_names() {
        ctx.iam
            .delete_role_policy()
            .role_name(name)
            .policy_name(policy)
            .send()
            .await
            .map_err(aws("delete inline policy of", KIND, name))
            .or_not_found()?;
    }
    if let Some(attached) = ctx
        .iam
        .list_attached_role_policies()
        .role_name(name)
        .send()
        .await
        .map_err(aws("list attached policies of", KIND, name))
        .or_not_found()?
    {
        for p in attached.attached_policies() {
            if let Some(arn) = p.policy_arn() {
                ctx.iam
                    .detach_role_policy()
                    .role_name(name)
                    .policy_arn(arn)
                    .send()
                    .await
                    .map_err(aws("detach policy from", KIND, name))
                    .or_not_found()?;
            }
        }
    }
    ctx.iam
        .delete_role()
        .role_name(name)
        .send()
        .await
        .map_err(aws("delete", KIND, name))
        .or_not_found()?;
    Ok(())
}
