//! Before `up` can create the function it needs an image, and building one needs some of the
//! stack first: the ECR repository (local build), plus for CodeBuild the destination bucket
//! (source zip and cache), the CodeBuild role and policy, its log group and the project.
//!
//! These are created here exactly as the engine does it, under the same step ids and with the
//! same crash-safety rule (recorded as `planned` before the create call, `created` after), so
//! the engine run that follows finds them recorded and only checks them.

use std::time::Duration;

use crate::context::Ctx;
use crate::engine::{self, Step};
use crate::error::{AwsError, Class};
use crate::resources::{Found, bucket, build_project, log_group, repository, role, role_policy};
use crate::stack::Plan;
use crate::state::{Entry, StateError, StateStore, Status};

#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("{0}")]
    Aws(#[from] AwsError),
    #[error("{0}")]
    State(#[from] StateError),
}

/// What a local build needs.
pub const FOR_LOCAL: &[&str] = &["repository"];
/// What a CodeBuild build needs, in dependency order.
pub const FOR_CODEBUILD: &[&str] = &[
    "dest-bucket",
    "codebuild-role",
    "codebuild-role-policy",
    "build-log-group",
    "repository",
    "build-project",
];

async fn ensure(ctx: &Ctx, plan: &Plan, step: &Step) -> Result<Found, AwsError> {
    match step.id.as_str() {
        "dest-bucket" => bucket::ensure(ctx, plan, &step.name).await,
        "codebuild-role" => role::ensure(ctx, plan, &step.name, "codebuild.amazonaws.com").await,
        "codebuild-role-policy" => {
            role_policy::ensure(ctx, &plan.codebuild_role(), &plan.codebuild_policy()).await
        }
        "build-log-group" => log_group::ensure(ctx, plan, &step.name).await,
        "repository" => repository::ensure(ctx, plan, &step.name).await,
        "build-project" => {
            build_project::ensure(
                ctx,
                plan,
                &step.name,
                &plan.role_arn(&plan.codebuild_role()),
            )
            .await
        }
        other => Err(AwsError::local(
            "create",
            "resource",
            other,
            "not a build prerequisite",
        )),
    }
}

/// Ensures each of `ids` exists and is recorded; a step recorded as created is left alone
/// (the engine checks it right after).
pub async fn ensure_steps(
    ctx: &Ctx,
    plan: &Plan,
    store: &StateStore,
    ids: &[&str],
    mut note: impl FnMut(&str),
) -> Result<(), PrepareError> {
    let steps = engine::steps(plan);
    for id in ids {
        let Some(step) = steps.iter().find(|s| s.id == *id) else {
            continue;
        };
        if store.entry(id).is_some_and(|e| e.status == Status::Created) {
            continue;
        }
        note(&format!(
            "creating {} {} (needed to build the image)",
            step.kind, step.name
        ));
        store.update(|s| {
            s.resources.insert(
                step.id.clone(),
                Entry {
                    kind: step.kind.to_owned(),
                    name: step.name.clone(),
                    arn: step.arn.clone(),
                    region: plan.region.clone(),
                    status: Status::Planned,
                    extra: step.extra.clone(),
                },
            );
        })?;
        // CodeBuild can refuse a role IAM has not propagated yet: retry that, briefly.
        let mut delay = Duration::from_millis(500);
        let mut attempt = 1;
        let found = loop {
            match ensure(ctx, plan, step).await {
                Err(e) if e.class == Class::Propagation && attempt < 12 => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                    attempt += 1;
                }
                other => break other?,
            }
        };
        store.update(|s| {
            if let Some(e) = s.resources.get_mut(&step.id) {
                e.status = Status::Created;
                if found.arn.is_some() {
                    e.arn = found.arn.clone();
                }
                e.extra.extend(found.extra.clone());
            }
        })?;
    }
    Ok(())
}
