//! The ECR repository holding the function's container images.

use aws_sdk_ecr::types::{
    EncryptionConfiguration, EncryptionType, ImageScanningConfiguration, Tag,
};

use super::{Found, adopt, built};
use crate::context::Ctx;
use crate::error::{AwsError, OrNotFound, aws};
use crate::stack::Plan;

pub const KIND: &str = "repository";

pub async fn ensure(ctx: &Ctx, plan: &Plan, name: &str) -> Result<Found, AwsError> {
    let mut tags = Vec::new();
    for (k, v) in plan.tags() {
        tags.push(built(Tag::builder().key(k).value(v).build(), KIND, name)?);
    }
    let created = ctx
        .ecr
        .create_repository()
        .repository_name(name)
        .image_scanning_configuration(
            ImageScanningConfiguration::builder()
                .scan_on_push(true)
                .build(),
        )
        .encryption_configuration(built(
            EncryptionConfiguration::builder()
                .encryption_type(EncryptionType::Aes256)
                .build(),
            KIND,
            name,
        )?)
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(aws("create", KIND, name));
    let found = match created {
        Ok(out) => Found::arn(
            out.repository()
                .and_then(|r| r.repository_arn())
                .map(str::to_owned)
                .unwrap_or_else(|| plan.repository_arn()),
        ),
        Err(e) if e.is_already_exists() => adopt(find(ctx, name).await?, KIND, name)?,
        Err(e) => return Err(e),
    };
    // Lambda pulls the function's image only if the repository lets it; set here, by the
    // stack that owns the repository, rather than left to CreateFunction's implicit attempt.
    ctx.ecr
        .set_repository_policy()
        .repository_name(name)
        .policy_text(plan.repository_policy().to_string())
        .send()
        .await
        .map_err(aws("let Lambda pull from", KIND, name))?;
    ctx.ecr
        .put_lifecycle_policy()
        .repository_name(name)
        .lifecycle_policy_text(plan.repository_lifecycle_policy().to_string())
        .send()
        .await
        .map_err(aws("put lifecycle policy on", KIND, name))?;
    Ok(found)
}

/// Whether the repository's lifecycle policy is the one thumbctl sets.
pub async fn drift(ctx: &Ctx, plan: &Plan, name: &str) -> Result<Vec<String>, AwsError> {
    let out = ctx
        .ecr
        .get_lifecycle_policy()
        .repository_name(name)
        .send()
        .await
        .map_err(aws("read lifecycle policy of", KIND, name))
        .or_not_found()?;
    let have: Option<serde_json::Value> = out
        .as_ref()
        .and_then(|o| o.lifecycle_policy_text())
        .and_then(|t| serde_json::from_str(t).ok());
    Ok(
        if have.as_ref() == Some(&plan.repository_lifecycle_policy()) {
            Vec::new()
        } else if have.is_none() {
            vec!["no lifecycle policy: old images are kept (and billed) forever".to_owned()]
        } else {
            vec!["its lifecycle policy is not the one thumbctl set".to_owned()]
        },
    )
}

pub async fn find(ctx: &Ctx, name: &str) -> Result<Option<Found>, AwsError> {
    let out = ctx
        .ecr
        .describe_repositories()
        .repository_names(name)
        .send()
        .await
        .map_err(aws("look up", KIND, name))
        .or_not_found()?;
    Ok(out.and_then(|o| {
        o.repositories()
            .first()
            .and_then(|r| r.repository_arn().map(Found::arn))
    }))
}

/// `force` deletes the images with the repository, which ECR otherwise refuses.
pub async fn delete(ctx: &Ctx, name: &str) -> Result<(), AwsError> {
    ctx.ecr
        .delete_repository()
        .repository_name(name)
        .force(true)
        .send()
        .await
        .map_err(aws("delete", KIND, name))
        .or_not_found()?;
    Ok(())
}
