//! One module per AWS resource kind, each with the same small shape:
//!
//! - `ensure`: create it, or adopt it when a create says it already exists (a crashed run may
//!   have created it after recording its name), then apply its settings; idempotent.
//! - `find`: whether it exists now, with its ARN.
//! - `delete`: remove it; already gone counts as success.
//!
//! Only `ensure` needs the stack's [`Plan`](crate::stack::Plan); `find` and `delete` work
//! from a state [`Entry`] alone, so `destroy` and `status` need nothing but the state file.

pub mod bucket;
pub mod bucket_policy;
pub mod build_project;
pub mod distribution;
pub mod function;
pub mod log_group;
pub mod notification;
pub mod origin_access_control;
pub mod permission;
pub mod queue;
pub mod repository;
pub mod role;
pub mod role_policy;
pub mod subscription;
pub mod table;
pub mod topic;

use std::collections::BTreeMap;

use crate::context::Ctx;
use crate::error::AwsError;
use crate::state::Entry;

/// What `ensure` or `find` learnt about a resource, to record in the state.
#[derive(Debug, Clone, Default)]
pub struct Found {
    pub arn: Option<String>,
    pub extra: BTreeMap<String, String>,
}

impl Found {
    pub fn arn(arn: impl Into<String>) -> Found {
        Found {
            arn: Some(arn.into()),
            extra: BTreeMap::new(),
        }
    }
}

/// Turns a builder's missing-field error into the resource error the caller reports.
pub(crate) fn built<T>(
    r: Result<T, aws_smithy_types::error::operation::BuildError>,
    kind: &'static str,
    name: &str,
) -> Result<T, AwsError> {
    r.map_err(|e| AwsError::local("build request for", kind, name, e.to_string()))
}

/// A create said "already exists" (a crashed run made it after recording its name): what
/// `find` sees is adopted. Not finding it then is a race worth reporting, not retrying blindly.
pub(crate) fn adopt(
    found: Option<Found>,
    kind: &'static str,
    name: &str,
) -> Result<Found, AwsError> {
    found.ok_or_else(|| {
        AwsError::local(
            "adopt",
            kind,
            name,
            "it was reported to exist, then not found",
        )
    })
}

/// Whether the resource an entry records still exists.
pub async fn find(ctx: &Ctx, e: &Entry) -> Result<Option<Found>, AwsError> {
    match e.kind.as_str() {
        bucket::KIND => bucket::find(ctx, &e.name).await,
        role::KIND => role::find(ctx, &e.name).await,
        role_policy::KIND => role_policy::find(ctx, e).await,
        repository::KIND => repository::find(ctx, &e.name).await,
        build_project::KIND => build_project::find(ctx, &e.name).await,
        table::KIND => table::find(ctx, &e.name).await,
        topic::KIND => topic::find(ctx, e).await,
        queue::KIND => queue::find(ctx, e).await,
        subscription::KIND => subscription::find(ctx, e).await,
        log_group::KIND => log_group::find(ctx, &e.name).await,
        function::KIND => function::find(ctx, &e.name).await,
        function::invoke_config::KIND => function::invoke_config::find(ctx, e).await,
        permission::KIND => permission::find(ctx, e).await,
        notification::KIND => notification::find(ctx, e).await,
        origin_access_control::KIND => origin_access_control::find(ctx, e).await,
        distribution::KIND => distribution::find(ctx, e).await,
        bucket_policy::KIND => bucket_policy::find(ctx, e).await,
        other => Err(unknown_kind(other, &e.name)),
    }
}

/// Deletes the resource an entry records; gone already is success. `report` narrates a
/// deletion that waits for minutes (a CloudFront distribution); the others are quick.
pub async fn delete(ctx: &Ctx, e: &Entry, report: &dyn Fn(&str)) -> Result<(), AwsError> {
    match e.kind.as_str() {
        bucket::KIND => bucket::delete(ctx, &e.name).await,
        role::KIND => role::delete(ctx, &e.name).await,
        role_policy::KIND => role_policy::delete(ctx, e).await,
        repository::KIND => repository::delete(ctx, &e.name).await,
        build_project::KIND => build_project::delete(ctx, &e.name).await,
        table::KIND => table::delete(ctx, &e.name).await,
        topic::KIND => topic::delete(ctx, e).await,
        queue::KIND => queue::delete(ctx, e).await,
        subscription::KIND => subscription::delete(ctx, e).await,
        log_group::KIND => log_group::delete(ctx, &e.name).await,
        function::KIND => function::delete(ctx, &e.name).await,
        function::invoke_config::KIND => function::invoke_config::delete(ctx, e).await,
        permission::KIND => permission::delete(ctx, e).await,
        notification::KIND => notification::delete(ctx, e).await,
        origin_access_control::KIND => origin_access_control::delete(ctx, e).await,
        distribution::KIND => distribution::delete(ctx, e, report).await,
        bucket_policy::KIND => bucket_policy::delete(ctx, e).await,
        other => Err(unknown_kind(other, &e.name)),
    }
}

fn unknown_kind(kind: &str, name: &str) -> AwsError {
    AwsError::local(
        "handle",
        "resource",
        name,
        format!(
            "unknown resource kind `{kind}` in the state file; it was written by a newer thumbctl"
        ),
    )
}
