//! The CloudFront origin access control (`up --cdn`): how the distribution signs its requests
//! to the destination bucket (SigV4, always), so the bucket can stay private and grant reads
//! to CloudFront on behalf of this one distribution only (see `bucket_policy`).
//!
//! CloudFront gives it a generated id, recorded in the entry's `id` as soon as it exists;
//! its name is the plan's `cdn()` name, unique per account, which is how a create lost to a
//! crash is found again.

use aws_sdk_cloudfront::types::{
    OriginAccessControlConfig, OriginAccessControlOriginTypes, OriginAccessControlSigningBehaviors,
    OriginAccessControlSigningProtocols, OriginAccessControlSummary,
};

use super::{Found, adopt, built};
use crate::context::Ctx;
use crate::error::{AwsError, OrNotFound, aws};
use crate::retry::{self, Patience};
use crate::stack::Plan;
use crate::state::Entry;

pub const KIND: &str = "origin-access-control";

fn found(plan: &Plan, id: &str) -> Found {
    Found {
        arn: Some(format!(
            "arn:{}:cloudfront::{}:origin-access-control/{id}",
            plan.partition(),
            plan.account
        )),
        extra: [("id".to_owned(), id.to_owned())].into(),
    }
}

/// Adopts the control of this name if there is one (a crash between its create and its
/// record): creates are not idempotent, and only AWS refuses a second control of one name.
pub async fn ensure(ctx: &Ctx, plan: &Plan, name: &str) -> Result<Found, AwsError> {
    if let Some(id) = by_name(ctx, name)
        .await?
        .and_then(|f| f.extra.get("id").cloned())
    {
        return Ok(found(plan, &id));
    }
    let config = built(
        OriginAccessControlConfig::builder()
            .name(name)
            .description(format!("thumbctl stack {}", plan.stack))
            .signing_protocol(OriginAccessControlSigningProtocols::Sigv4)
            .signing_behavior(OriginAccessControlSigningBehaviors::Always)
            .origin_access_control_origin_type(OriginAccessControlOriginTypes::S3)
            .build(),
        KIND,
        name,
    )?;
    let created = ctx
        .cloudfront
        .create_origin_access_control()
        .origin_access_control_config(config)
        .send()
        .await
        .map_err(aws("create", KIND, name));
    let id = match created {
        Ok(out) => out
            .origin_access_control()
            .map(|o| o.id().to_owned())
            .ok_or_else(|| AwsError::local("create", KIND, name, "CloudFront returned no id"))?,
        // A crashed run made it after recording its name: adopt it.
        Err(e) if e.is_already_exists() => adopt(by_name(ctx, name).await?, KIND, name)?
            .extra
            .get("id")
            .cloned()
            .ok_or_else(|| AwsError::local("adopt", KIND, name, "found without an id"))?,
        Err(e) => return Err(e),
    };
    Ok(found(plan, &id))
}

/// Every origin access control of the account, every page of the listing: the one way both
/// this module (by name) and `status --orphans` (by name and description) search them.
pub async fn list_all(ctx: &Ctx, name: &str) -> Result<Vec<OriginAccessControlSummary>, AwsError> {
    let mut all = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let out = ctx
            .cloudfront
            .list_origin_access_controls()
            .set_marker(marker.take())
            .send()
            .await
            .map_err(aws("look up", KIND, name))?;
        let Some(list) = out.origin_access_control_list else {
            return Ok(all);
        };
        let next = list
            .next_marker
            .filter(|m| list.is_truncated && !m.is_empty());
        all.extend(list.items.unwrap_or_default());
        match next {
            Some(m) => marker = Some(m),
            None => return Ok(all),
        }
    }
}

/// Looks the control up by name (an account has few of them).
async fn by_name(ctx: &Ctx, name: &str) -> Result<Option<Found>, AwsError> {
    Ok(list_all(ctx, name)
        .await?
        .iter()
        .find(|s| s.name() == name)
        .map(|hit| Found {
            arn: None,
            extra: [("id".to_owned(), hit.id().to_owned())].into(),
        }))
}

/// The id the entry recorded, or the one found by name (a crash between create and record).
async fn id_of(ctx: &Ctx, e: &Entry) -> Result<Option<String>, AwsError> {
    if let Some(id) = e.extra.get("id") {
        return Ok(Some(id.clone()));
    }
    Ok(by_name(ctx, &e.name)
        .await?
        .and_then(|f| f.extra.get("id").cloned()))
}

pub async fn find(ctx: &Ctx, e: &Entry) -> Result<Option<Found>, AwsError> {
    let Some(id) = id_of(ctx, e).await? else {
        return Ok(None);
    };
    let out = ctx
        .cloudfront
        .get_origin_access_control()
        .id(&id)
        .send()
        .await
        .map_err(aws("look up", KIND, &e.name))
        .or_not_found()?;
    Ok(out.map(|_| Found {
        arn: e.arn.clone(),
        extra: [("id".to_owned(), id.clone())].into(),
    }))
}

/// Deletes it with the ETag just read. It cannot go while a distribution still uses it:
/// `destroy` orders it after the distribution, and CloudFront may still say
/// OriginAccessControlInUse for a little while after the distribution is deleted.
pub async fn delete(ctx: &Ctx, e: &Entry) -> Result<(), AwsError> {
    let Some(id) = id_of(ctx, e).await? else {
        return Ok(());
    };
    let r = retry::until_settled(
        Patience::SETTLE,
        retry::busy("the distribution that used it to be deleted"),
        || async {
            let Some(current) = ctx
                .cloudfront
                .get_origin_access_control()
                .id(&id)
                .send()
                .await
                .map_err(aws("look up", KIND, &e.name))
                .or_not_found()?
            else {
                return Ok(());
            };
            ctx.cloudfront
                .delete_origin_access_control()
                .id(&id)
                .set_if_match(current.e_tag().map(str::to_owned))
                .send()
                .await
                .map_err(aws("delete", KIND, &e.name))
                .or_not_found()?;
            Ok(())
        },
    )
    .await;
    match r {
        Err(mut err) if err.code.as_deref() == Some("OriginAccessControlInUse") => {
            err.message = format!(
                "{}; a distribution still uses it. If it is this stack's, it is still being \
                 deleted: rerun `thumbctl destroy` in a few minutes; otherwise remove it from \
                 that distribution first",
                err.message
            );
            Err(err)
        }
        other => other,
    }
}
