//! `thumbctl status`: every recorded resource and whether AWS still has it.

use futures::future::join_all;
use serde_json::json;

use super::{context_for, print_json};
use crate::cli::{GlobalArgs, OutputMode, StatusArgs};
use crate::resources;
use crate::state::{StateStore, Status};

pub async fn run(global: &GlobalArgs, _args: StatusArgs) -> anyhow::Result<()> {
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
        return print_json(&json!({
            "stack": state.stack, "region": state.region, "account": state.account,
            "state_file": StateStore::path_for(&global.state_dir, &global.stack),
            "settings": state.settings, "resources": list,
        }));
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
    Ok(())
}
