//! `thumbctl status`: every recorded resource and whether AWS still has it.

use futures::future::join_all;
use serde_json::json;

use super::{context_for, print_json};
use crate::cli::{GlobalArgs, OutputMode, StatusArgs};
use crate::resources;
use crate::state::{StateStore, Status};

pub async fn run(global: &GlobalArgs, args: StatusArgs) -> anyhow::Result<()> {
    if args.orphans {
        return orphans(global).await;
    }
    let Some(state) = StateStore::read(&global.state_dir, &global.stack)? else {
        anyhow::bail!(
            "no state for stack `{}` in {}: thumbctl has not created it from here.\n  hint: check --stack and --state-dir",
            global.stack,
            global.state_dir.display()
        );
    };
    let ctx = context_for(global, Some(&state)).await?;
    // One look-up per resource, all at once.
    let checks = join_all(state.resources.values().map(|e| resources::find(&ctx, e))).await;
    let rows: Vec<_> = state.resources.iter().zip(checks).collect();

    if global.output == OutputMode::Json {
        let list: Vec<_> = rows
            .iter()
            .map(|((id, e), found)| {
                let (exists, error) = match found {
                    Ok(f) => (json!(f.is_some()), json!(null)),
                    Err(err) => (json!(null), json!(err.to_string())),
                };
                let arn = e.arn.clone().or_else(|| {
                    found
                        .as_ref()
                        .ok()
                        .and_then(|f| f.as_ref())
                        .and_then(|f| f.arn.clone())
                });
                json!({"id": id, "kind": e.kind, "name": e.name, "arn": arn, "status": e.status,
                       "exists": exists, "error": error})
            })
            .collect();
        print_json(&json!({
            "stack": state.stack, "region": state.region, "account": state.account,
            "state_file": StateStore::path_for(&global.state_dir, &global.stack),
            "settings": state.settings, "resources": list,
        }))?;
        return unchecked(&rows);
    }
    println!(
        "Stack `{}` in {} (account {}), {} resources recorded:",
        state.stack,
        state.region,
        state.account,
        rows.len()
    );
    for ((id, e), found) in &rows {
        let exists = match found {
            Ok(Some(_)) => "exists".to_owned(),
            Ok(None) => "MISSING".to_owned(),
            Err(err) => format!(
                "unknown: {}",
                err.to_string().lines().next().unwrap_or_default()
            ),
        };
        let note = match e.status {
            Status::Planned => " (planned: an interrupted run may have created it)",
            Status::Kept => " (kept by destroy --keep-buckets)",
            Status::Created => "",
        };
        println!("  {:<8} {:<20} {:<14} {}{note}", exists, id, e.kind, e.name);
    }
    unchecked(&rows)
}

/// A status that could not look at everything is a failure (exit 1), not a report: a script
/// that asks "is it all there?" must not read "unknown" as yes.
fn unchecked<K>(
    rows: &[(
        K,
        Result<Option<crate::resources::Found>, crate::error::AwsError>,
    )],
) -> anyhow::Result<()> {
    let failed: Vec<_> = rows.iter().filter_map(|(_, r)| r.as_ref().err()).collect();
    match failed.first() {
        None => Ok(()),
        Some(first) => anyhow::bail!(
            "{} of {} resources could not be checked; the first: {first}",
            failed.len(),
            rows.len()
        ),
    }
}

/// `status --orphans`: what carries the stack's tags but is not in its state.
async fn orphans(global: &GlobalArgs) -> anyhow::Result<()> {
    let state = StateStore::read(&global.state_dir, &global.stack)?;
    let ctx = context_for(global, state.as_ref()).await?;
    let recorded: Vec<_> = state
        .iter()
        .flat_map(|s| s.resources.values().cloned())
        .collect();
    let found = crate::orphans::find(&ctx, &global.stack, &recorded).await?;
    if global.output == OutputMode::Json {
        let list: Vec<_> = found
            .iter()
            .map(|e| json!({"kind": e.kind, "name": e.name, "arn": e.arn}))
            .collect();
        return print_json(
            &json!({"stack": global.stack, "region": ctx.region, "state_file_found": state.is_some(), "orphans": list}),
        );
    }
    if found.is_empty() {
        println!(
            "No orphans: nothing in {} carries the tag thumbctl:stack={} outside the state.",
            ctx.region, global.stack
        );
        return Ok(());
    }
    println!(
        "{} resource(s) tagged thumbctl:stack={} that the state does not record:",
        found.len(),
        global.stack
    );
    for e in &found {
        println!("  {:<14} {}", e.kind, e.name);
    }
    println!(
        "Delete them with: thumbctl --stack {} destroy --orphans --yes",
        global.stack
    );
    Ok(())
}
