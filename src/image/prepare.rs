//! Before `up` can create the function it needs an image, and building one needs some of the
//! stack first: the ECR repository (local build), plus for CodeBuild the project and what it
//! depends on (destination bucket for the source zip and cache, role, policy, log group).
//!
//! They are made by the engine itself (`engine::up_only`), under the same step ids and with
//! the same crash-safety rule, so the full `up` that follows finds them recorded.

use crate::context::Ctx;
use crate::engine::{self, Cancel, EngineError};
use crate::progress::Progress;
use crate::stack::Plan;
use crate::state::StateStore;

/// What a local build needs.
pub const FOR_LOCAL: &[&str] = &["repository"];
/// What a CodeBuild build needs (the engine adds the project's own dependencies).
pub const FOR_CODEBUILD: &[&str] = &["dest-bucket", "repository", "build-project"];

/// Ensures each of `ids`, and what it depends on, exists and is recorded.
pub async fn ensure_steps(
    ctx: &Ctx,
    plan: &Plan,
    store: &StateStore,
    ids: &[&str],
    quiet: bool,
) -> Result<(), EngineError> {
    let progress = Progress::new(quiet);
    engine::up_only(ctx, plan, store, ids, &Cancel::default(), &progress).await?;
    Ok(())
}
