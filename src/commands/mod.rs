//! Thin command modules: each reads like the user's story of that command.

pub mod build_image;
pub mod destroy;
pub mod gallery;
pub mod images;
pub mod invoke_local;
pub mod permissions;
pub mod reprocess;
pub mod shell;
pub mod status;
pub mod thumbnail;
pub mod up;
pub mod upload;

use anyhow::Context;

use crate::UsageError;
use crate::cli::GlobalArgs;
use crate::context::Ctx;
use crate::state::State;

/// The AWS context for a stack: an existing stack always lives in the region its state
/// records; a different --region is refused rather than silently creating a second copy.
pub async fn context_for(global: &GlobalArgs, state: Option<&State>) -> anyhow::Result<Ctx> {
    let mut global = global.clone();
    if let Some(s) = state {
        match &global.region {
            Some(r) if *r != s.region => {
                return Err(UsageError(format!(
                    "stack `{}` lives in {} (says its state file), but --region is {r}.\n  hint: drop --region, or use another --stack for a second pipeline in {r}",
                    s.stack, s.region
                ))
                .into());
            }
            _ => global.region = Some(s.region.clone()),
        }
    }
    Ctx::new(&global).await
}

/// Checks the credentials and that they belong to the account the stack lives in.
pub async fn check_account(ctx: &Ctx, state: Option<&State>) -> anyhow::Result<String> {
    let account = ctx
        .account_id()
        .await
        .context("checking your AWS credentials")?;
    if let Some(s) = state
        && s.account != account
    {
        return Err(UsageError(format!(
                "stack `{}` lives in AWS account {}, but your credentials are for account {account}.\n  hint: use the profile of account {} (--profile or AWS_PROFILE)",
                s.stack, s.account, s.account
            ))
            .into());
    }
    Ok(account)
}

/// The global options with the region set: the handler's own clients must talk to the
/// stack's region, whatever the profile says.
pub fn in_region(global: &GlobalArgs, region: &str) -> GlobalArgs {
    let mut g = global.clone();
    g.region = Some(region.to_owned());
    g
}

pub fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// The names a deployed stack's workflow commands need, read from its state.
pub struct Deployed {
    pub source_bucket: String,
    pub dest_bucket: String,
    pub table: String,
    pub function: String,
    /// Only keys under it trigger the function (`up --source-prefix`).
    pub source_prefix: Option<String>,
    /// The CloudFront distribution's domain (`up --cdn`): thumbnails are linked through it.
    pub cdn_domain: Option<String>,
    /// `up --expire-days thumbnails=N`: S3 deletes thumbnails after N days behind the items'
    /// backs, so readers check that the ones an item names still exist.
    pub expire_thumbnails_days: Option<i32>,
    /// The distribution's id: what `delete` removes is invalidated there.
    pub cdn_id: Option<String>,
}

impl Deployed {
    /// Reads the stack's state (no lock: these commands change no infrastructure) and builds
    /// the AWS context in the stack's region.
    pub async fn load(global: &GlobalArgs) -> anyhow::Result<(Ctx, Deployed)> {
        let Some(state) = crate::state::StateStore::read(&global.state_dir, &global.stack)? else {
            anyhow::bail!(
                "no state for stack `{}` in {}.\n  hint: run `thumbctl up` first, or check --stack and --state-dir",
                global.stack,
                global.state_dir.display()
            );
        };
        let name = |id: &str| -> anyhow::Result<String> {
            state.resources.get(id).map(|e| e.name.clone()).ok_or_else(|| {
                anyhow::anyhow!(
                    "stack `{}` has no {id} recorded: it is not fully up.\n  hint: run `thumbctl up` to finish it",
                    global.stack
                )
            })
        };
        let deployed = Deployed {
            source_bucket: name("source-bucket")?,
            dest_bucket: name("dest-bucket")?,
            table: name("table")?,
            function: name("function")?,
            source_prefix: state.settings.source_prefix.clone(),
            // Only a distribution that was created: a planned one may not exist.
            cdn_domain: state
                .resources
                .get("cdn")
                .filter(|e| e.status == crate::state::Status::Created)
                .and_then(|e| e.extra.get("domain").cloned()),
            expire_thumbnails_days: state.settings.expire_thumbnails_days,
            cdn_id: state
                .resources
                .get("cdn")
                .filter(|e| e.status == crate::state::Status::Created)
                .and_then(|e| e.extra.get("id").cloned()),
        };
        let ctx = context_for(global, Some(&state)).await?;
        Ok((ctx, deployed))
    }
}
