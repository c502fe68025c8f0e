//! `thumbctl destroy`: delete what the state records, dependents first, and nothing else.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Context;
use serde_json::json;

use super::{check_account, context_for, print_json};
use crate::UsageError;
use crate::cli::{DestroyArgs, GlobalArgs, OutputMode};
use crate::engine::{self, Cancel, Outcome};
use crate::progress::Progress;
use crate::state::{StateStore, Status};

pub async fn run(global: &GlobalArgs, args: DestroyArgs) -> anyhow::Result<()> {
    let store = StateStore::open(&global.state_dir, &global.stack, "destroy")?;
    if args.orphans {
        return orphans(global, &store, args.yes).await;
    }
    let Some(state) = store.snapshot() else {
        store.remove_lock_file(&global.state_dir, &global.stack);
        anyhow::bail!(
            "no state for stack `{}` in {}: nothing recorded, so nothing to destroy.\n  hint: check --stack and --state-dir",
            global.stack,
            global.state_dir.display()
        );
    };
    let ctx = context_for(global, Some(&state)).await?;
    check_account(&ctx, Some(&state)).await?;

    if !args.yes {
        confirm(
            &state.stack,
            state.resources.len(),
            &state.region,
            &state.account,
            args.keep_buckets,
        )?;
    }

    let progress = Progress::new(global.quiet);
    progress.note(&format!(
        "Destroying stack `{}` in {} (account {})",
        state.stack, state.region, state.account
    ));
    let cancel = Cancel::default();
    engine::install_interrupt_handler(
        cancel.clone(),
        "finishing the deletions in flight and saving the state",
    );
    let result = engine::destroy(&ctx, &store, args.keep_buckets, &cancel, &progress).await;
    let outcomes = result.with_context(|| {
        format!(
            "`destroy` of stack `{}` did not finish; what is left is recorded in {}. Rerun `thumbctl destroy` to finish",
            state.stack,
            store.path().display()
        )
    })?;

    let left = store.snapshot().map(|s| s.resources).unwrap_or_default();
    let kept: Vec<_> = left
        .values()
        .filter(|e| e.status == Status::Kept)
        .map(|e| e.name.clone())
        .collect();
    if left.is_empty() {
        store.remove_file()?;
        store.remove_lock_file(&global.state_dir, &global.stack);
    }
    let deleted = outcomes
        .values()
        .filter(|o| **o == Outcome::Deleted)
        .count();
    if global.output == OutputMode::Json {
        return print_json(
            &json!({"stack": state.stack, "region": state.region, "deleted": deleted,
                                   "kept": kept, "state_file_removed": left.is_empty()}),
        );
    }
    if kept.is_empty() {
        println!(
            "Stack `{}` is gone: {deleted} resources deleted, state file removed.",
            state.stack
        );
    } else {
        println!(
            "Stack `{}`: {deleted} resources deleted; kept {} (recorded in {}; `thumbctl destroy` without --keep-buckets removes them).",
            state.stack,
            kept.join(", "),
            store.path().display()
        );
    }
    Ok(())
}

fn confirm(
    stack: &str,
    count: usize,
    region: &str,
    account: &str,
    keep: bool,
) -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        return Err(UsageError(format!(
            "refusing to destroy stack `{stack}` without confirmation: stdin is not a terminal.\n  hint: pass --yes"
        ))
        .into());
    }
    let buckets = if keep {
        "keeping the buckets"
    } else {
        "including both buckets and every object in them"
    };
    eprint!(
        "Delete all {count} resources of stack `{stack}` in {region} (account {account}), {buckets}?\nType the stack name to confirm: "
    );
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the confirmation")?;
    if line.trim() != stack {
        return Err(UsageError("not confirmed; nothing was deleted".into()).into());
    }
    Ok(())
}

/// `destroy --orphans`: deletes what carries the stack's tags but is not in its state.
async fn orphans(global: &GlobalArgs, store: &StateStore, yes: bool) -> anyhow::Result<()> {
    let state = store.snapshot();
    let ctx = context_for(global, state.as_ref()).await?;
    check_account(&ctx, state.as_ref()).await?;
    let recorded: Vec<_> = state
        .iter()
        .flat_map(|s| s.resources.values().cloned())
        .collect();
    let found = crate::orphans::find(&ctx, &global.stack, &recorded).await?;
    if found.is_empty() {
        if global.output == OutputMode::Json {
            return print_json(&json!({"stack": global.stack, "deleted": [], "failed": []}));
        }
        println!("No orphans of stack `{}` in {}.", global.stack, ctx.region);
        return Ok(());
    }
    if !yes {
        let list: Vec<String> = found
            .iter()
            .map(|e| format!("  {:<14} {}", e.kind, e.name))
            .collect();
        return Err(UsageError(format!(
            "{} resource(s) tagged thumbctl:stack={} are not in the state:\n{}\nNothing was deleted.\n  hint: pass --yes to delete them",
            found.len(),
            global.stack,
            list.join("\n")
        ))
        .into());
    }
    let results = crate::orphans::delete(&ctx, &found).await;
    let mut deleted = Vec::new();
    let mut failed = Vec::new();
    for (e, r) in results {
        match r {
            Ok(()) => deleted.push(json!({"kind": e.kind, "name": e.name})),
            Err(err) => failed.push(format!("  {} {}: {err}", e.kind, e.name)),
        }
    }
    if global.output == OutputMode::Json {
        print_json(&json!({"stack": global.stack, "deleted": deleted, "failed": failed}))?;
    } else {
        println!(
            "Deleted {} orphan(s) of stack `{}`.",
            deleted.len(),
            global.stack
        );
    }
    if !failed.is_empty() {
        anyhow::bail!(
            "{} orphan(s) could not be deleted:\n{}\n  hint: rerun `thumbctl destroy --orphans --yes`",
            failed.len(),
            failed.join("\n")
        );
    }
    Ok(())
}
