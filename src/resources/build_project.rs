//! The CodeBuild project that builds the function's image from the packaged sources.
//!
//! What a build needs from the project (where the buildspec is inside the zip, the registry
//! host, no S3 cache) is declared once, in [`Desired`]: `ensure` creates the project with it,
//! and [`reconcile`] brings a project made by an older thumbctl in line before each build, since
//! a rerun of `up` only checks that a recorded project still exists.

use aws_sdk_codebuild::types::{
    ArtifactsType, CacheType, CloudWatchLogsConfig, ComputeType, EnvironmentType,
    EnvironmentVariable, LogsConfig, LogsConfigStatusType, Project, ProjectArtifacts, ProjectCache,
    ProjectEnvironment, ProjectSource, SourceType, Tag,
};

use super::{Found, adopt, built};
use crate::context::Ctx;
use crate::error::{AwsError, OrNotFound, aws};
use crate::image::package::BUILDSPEC;
use crate::stack::{BUILD_SOURCE_KEY, Plan};

pub const KIND: &str = "build-project";
/// Amazon Linux 2023 standard image: has Docker and runs in privileged mode for `docker build`.
pub const BUILD_IMAGE: &str = "aws/codebuild/amazonlinux-x86_64-standard:5.0";

/// The settings a build depends on, derived from the plan alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    /// `<bucket>/<key>` of the source zip.
    pub source_location: String,
    /// Where the buildspec sits inside the zip: CodeBuild only looks for `buildspec.yml` at the
    /// zip's root unless the project names another path.
    pub buildspec: String,
    /// The project's environment variables, sorted by name (`lambda-image/buildspec.yml` reads
    /// them).
    pub variables: Vec<(String, String)>,
}

impl Desired {
    pub fn of(plan: &Plan) -> Desired {
        Desired {
            source_location: format!("{}/{BUILD_SOURCE_KEY}", plan.dest_bucket()),
            buildspec: BUILDSPEC.to_owned(),
            variables: vec![
                // Computed here from the partition: the China regions' registries are under
                // `amazonaws.com.cn`, which a host assembled in shell would get wrong.
                ("ECR_REGISTRY".to_owned(), plan.ecr_registry()),
                ("REPOSITORY_NAME".to_owned(), plan.repository()),
            ],
        }
    }

    fn source(&self, name: &str) -> Result<ProjectSource, AwsError> {
        built(
            ProjectSource::builder()
                .r#type(SourceType::S3)
                .location(&self.source_location)
                .buildspec(&self.buildspec)
                .build(),
            KIND,
            name,
        )
    }

    fn environment(&self, name: &str) -> Result<ProjectEnvironment, AwsError> {
        let mut env = ProjectEnvironment::builder()
            .r#type(EnvironmentType::LinuxContainer)
            .image(BUILD_IMAGE)
            .compute_type(ComputeType::BuildGeneral1Medium)
            .privileged_mode(true);
        for (k, v) in &self.variables {
            env = env.environment_variables(built(
                EnvironmentVariable::builder().name(k).value(v).build(),
                KIND,
                name,
            )?);
        }
        built(env.build(), KIND, name)
    }

    /// No CodeBuild cache: the Docker layers are cached in the stack's ECR repository (see
    /// `lambda-image/buildspec.yml`), and an S3 cache of an empty path list only costs time.
    fn cache(name: &str) -> Result<ProjectCache, AwsError> {
        built(
            ProjectCache::builder().r#type(CacheType::NoCache).build(),
            KIND,
            name,
        )
    }

    /// What differs between `project` and these settings, for the user; empty when nothing.
    pub fn drift(&self, project: &Project) -> Vec<&'static str> {
        let mut out = Vec::new();
        let source = project.source();
        if source.and_then(|s| s.location()) != Some(self.source_location.as_str()) {
            out.push("source location");
        }
        if source.and_then(|s| s.buildspec()) != Some(self.buildspec.as_str()) {
            out.push("buildspec path");
        }
        let env = project.environment();
        let mut have: Vec<(&str, &str)> = env
            .map(|e| e.environment_variables())
            .unwrap_or_default()
            .iter()
            .map(|v| (v.name(), v.value()))
            .collect();
        have.sort_unstable();
        let want: Vec<(&str, &str)> = self
            .variables
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if have != want {
            out.push("environment variables");
        }
        if env.map(|e| e.image()) != Some(BUILD_IMAGE)
            || env.and_then(|e| e.privileged_mode()) != Some(true)
        {
            out.push("build image");
        }
        if project.cache().map(|c| c.r#type()) != Some(&CacheType::NoCache) {
            out.push("cache");
        }
        out
    }
}

pub async fn ensure(ctx: &Ctx, plan: &Plan, name: &str, role_arn: &str) -> Result<Found, AwsError> {
    let desired = Desired::of(plan);
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
        .source(desired.source(name)?)
        .artifacts(built(
            ProjectArtifacts::builder()
                .r#type(ArtifactsType::NoArtifacts)
                .build(),
            KIND,
            name,
        )?)
        .cache(Desired::cache(name)?)
        .environment(desired.environment(name)?)
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
        Err(e) if e.is_already_exists() => {
            // A crashed run, or an older thumbctl, made it: adopt it with today's settings.
            let found = adopt(find(ctx, name).await?, KIND, name)?;
            reconcile(ctx, plan, name).await?;
            Ok(found)
        }
        Err(e) => Err(e),
    }
}

/// Brings an existing project's source, environment and cache in line with [`Desired`], and
/// returns what was changed (empty when it already matched: then nothing is called but
/// `BatchGetProjects`).
pub async fn reconcile(ctx: &Ctx, plan: &Plan, name: &str) -> Result<Vec<&'static str>, AwsError> {
    let desired = Desired::of(plan);
    let project = describe(ctx, name).await?.ok_or_else(|| {
        AwsError::local(
            "look up",
            KIND,
            name,
            "the state records this project but CodeBuild does not know it.\n  hint: run `thumbctl up` to create it again",
        )
    })?;
    let drift = desired.drift(&project);
    if drift.is_empty() {
        return Ok(drift);
    }
    tracing::info!(project = name, ?drift, "updating the build project");
    ctx.codebuild
        .update_project()
        .name(name)
        .source(desired.source(name)?)
        .environment(desired.environment(name)?)
        .cache(Desired::cache(name)?)
        .send()
        .await
        .map_err(aws("update", KIND, name))?;
    Ok(drift)
}

async fn describe(ctx: &Ctx, name: &str) -> Result<Option<Project>, AwsError> {
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
        .cloned())
}

pub async fn find(ctx: &Ctx, name: &str) -> Result<Option<Found>, AwsError> {
    Ok(describe(ctx, name).await?.map(|p| Found {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::Settings;

    fn plan(region: &str) -> Plan {
        Plan {
            stack: "demo".into(),
            suffix: "abcd1234".into(),
            account: "123456789012".into(),
            region: region.into(),
            settings: Settings::default(),
        }
    }

    /// The project as `ensure` creates it, read back the way CodeBuild answers (variables come
    /// back with their type, in any order).
    fn project_of(d: &Desired) -> Project {
        let mut env = ProjectEnvironment::builder()
            .r#type(EnvironmentType::LinuxContainer)
            .image(BUILD_IMAGE)
            .compute_type(ComputeType::BuildGeneral1Medium)
            .privileged_mode(true);
        for (k, v) in d.variables.iter().rev() {
            env = env.environment_variables(
                EnvironmentVariable::builder()
                    .name(k)
                    .value(v)
                    .r#type(aws_sdk_codebuild::types::EnvironmentVariableType::Plaintext)
                    .build()
                    .expect("variable"),
            );
        }
        Project::builder()
            .name("demo-abcd1234")
            .source(d.source("p").expect("source"))
            .environment(env.build().expect("environment"))
            .cache(Desired::cache("p").expect("cache"))
            .build()
    }

    #[test]
    fn desired_settings_name_the_packaged_buildspec_and_the_partition_registry() {
        let d = Desired::of(&plan("cn-north-1"));
        assert_eq!(d.buildspec, "lambda-image/buildspec.yml");
        assert_eq!(
            d.source_location,
            "demo-dst-abcd1234/.thumbctl/build/source.zip"
        );
        assert_eq!(
            d.variables,
            [
                (
                    "ECR_REGISTRY".to_owned(),
                    "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn".to_owned()
                ),
                ("REPOSITORY_NAME".to_owned(), "demo-abcd1234".to_owned())
            ]
        );
        let mut sorted = d.variables.clone();
        sorted.sort();
        assert_eq!(sorted, d.variables, "drift compares sorted variables");
    }

    #[test]
    fn a_project_as_created_has_no_drift() {
        let d = Desired::of(&plan("eu-west-1"));
        assert_eq!(d.drift(&project_of(&d)), Vec::<&str>::new());
    }

    /// A project made before the buildspec path, the registry variable and the ECR layer
    /// cache existed: every difference is found, so the next build updates it.
    #[test]
    fn a_project_from_an_older_thumbctl_drifts() {
        let d = Desired::of(&plan("eu-west-1"));
        let old = Project::builder()
            .name("demo-abcd1234")
            .source(
                ProjectSource::builder()
                    .r#type(SourceType::S3)
                    .location(&d.source_location)
                    .build()
                    .expect("source"),
            )
            .environment(
                ProjectEnvironment::builder()
                    .r#type(EnvironmentType::LinuxContainer)
                    .image(BUILD_IMAGE)
                    .compute_type(ComputeType::BuildGeneral1Medium)
                    .privileged_mode(true)
                    .environment_variables(
                        EnvironmentVariable::builder()
                            .name("REPOSITORY_NAME")
                            .value("demo-abcd1234")
                            .build()
                            .expect("variable"),
                    )
                    .environment_variables(
                        EnvironmentVariable::builder()
                            .name("AWS_ACCOUNT_ID")
                            .value("123456789012")
                            .build()
                            .expect("variable"),
                    )
                    .build()
                    .expect("environment"),
            )
            .cache(
                ProjectCache::builder()
                    .r#type(CacheType::S3)
                    .location("demo-dst-abcd1234/.thumbctl/build/cache")
                    .build()
                    .expect("cache"),
            )
            .build();
        assert_eq!(
            d.drift(&old),
            ["buildspec path", "environment variables", "cache"]
        );
        // A registry host of the wrong partition is drift too.
        let cn = Desired::of(&plan("cn-north-1"));
        assert_eq!(cn.drift(&project_of(&d)), ["environment variables"]);
        assert_eq!(
            d.drift(&Project::builder().name("x").build()),
            [
                "source location",
                "buildspec path",
                "environment variables",
                "build image",
                "cache"
            ]
        );
    }
}
