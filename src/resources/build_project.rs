//! The CodeBuild project that builds the function's image from the packaged sources.

use aws_sdk_codebuild::types::{
    ArtifactsType, CacheType, CloudWatchLogsConfig, ComputeType, EnvironmentType,
    EnvironmentVariable, LogsConfig, LogsConfigStatusType, ProjectArtifacts, ProjectCache,
    ProjectEnvironment, ProjectSource, SourceType, Tag,
};

use super::{Found, adopt, built};
use crate::context::Ctx;
use crate::error::{AwsError, OrNotFound, aws};
use crate::stack::{BUILD_PREFIX, BUILD_SOURCE_KEY, Plan};

pub const KIND: &str = "build-project";
/// Amazon Linux 2023 standard image: has Docker and runs in privileged mode for `docker build`.
pub const BUILD_IMAGE: &str = "aws/codebuild/amazonlinux-x86_64-standard:5.0";

pub async fn ensure(ctx: &Ctx, plan: &Plan, name: &str, role_arn: &str) -> Result<Found, AwsError> {
    let dst = plan.dest_bucket();
    let env_var = |k: &str, v: String| {
        built(
            EnvironmentVariable::builder().name(k).value(v).build(),
            KIND,
            name,
        )
    };
    let environment = built(
        ProjectEnvironment::builder()
            .r#type(EnvironmentType::LinuxContainer)
            .image(BUILD_IMAGE)
            .compute_type(ComputeType::BuildGeneral1Medium)
            .privileged_mode(true)
            .environment_variables(env_var("REPOSITORY_NAME", plan.repository())?)
            .environment_variables(env_var("AWS_ACCOUNT_ID", plan.account.clone())?)
            .build(),
        KIND,
        name,
    )?;
    let mut tags = Vec::new();
    for (k, v) in plan.tags() {
        tags.push(Tag::builder().key(k).value(v).build());
    }
    let created = ctx
        .codebuild
        .create_project()
        .name(name)
        .description(format!(
            "thumbctl stack {}: builds the thumbnail function's image",
            plan.stack
        ))
        .source(built(
            ProjectSource::builder()
                .r#type(SourceType::S3)
                .location(format!("{dst}/{BUILD_SOURCE_KEY}"))
                .build(),
            KIND,
            name,
        )?)
        .artifacts(built(
            ProjectArtifacts::builder()
                .r#type(ArtifactsType::NoArtifacts)
                .build(),
            KIND,
            name,
        )?)
        .cache(built(
            ProjectCache::builder()
                .r#type(CacheType::S3)
                .location(format!("{dst}/{BUILD_PREFIX}cache"))
                .build(),
            KIND,
            name,
        )?)
        .environment(environment)
        .service_role(role_arn)
        .timeout_in_minutes(30)
        .logs_config(
            LogsConfig::builder()
                .cloud_watch_logs(built(
                    CloudWatchLogsConfig::builder()
                        .status(LogsConfigStatusType::Enabled)
                        .group_name(plan.build_log_group())
                        .build(),
                    KIND,
                    name,
                )?)
                .build(),
        )
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(aws("create", KIND, name));
    match created {
        Ok(out) => Ok(Found::arn(
            out.project()
                .and_then(|p| p.arn())
                .map(str::to_owned)
                .unwrap_or_else(|| plan.project_arn()),
        )),
        Err(e) if e.is_already_exists() => adopt(find(ctx, name).await?, KIND, name),
        Err(e) => Err(e),
    }
}

pub async fn find(ctx: &Ctx, name: &str) -> Result<Option<Found>, AwsError> {
    // batch_get_projects reports unknown names in `projects_not_found`, not as an error.
    let out = ctx
        .codebuild
        .batch_get_projects()
        .names(name)
        .send()
        .await
        .map_err(aws("look up", KIND, name))?;
    Ok(out
        .projects()
        .iter()
        .find(|p| p.name() == Some(name))
        .map(|p| Found {
            arn: p.arn().map(str::to_owned),
            ..Found::default()
        }))
}

pub async fn delete(ctx: &Ctx, name: &str) -> Result<(), AwsError> {
    // DeleteProject succeeds for a name that does not exist.
    ctx.codebuild
        .delete_project()
        .name(name)
        .send()
        .await
        .map_err(aws("delete", KIND, name))
        .or_not_found()?;
    Ok(())
}
