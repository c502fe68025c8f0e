//! `thumbctl status`: every recorded resource and whether AWS still has it.

use futures::future::join_all;
use serde_json::json;

use super::{context_for, print_json};
use crate::cli::{GlobalArgs, OutputMode, StatusArgs};
use crate::context::Ctx;
use crate::engine;
use crate::error::AwsError;
use crate::resources::{self, bucket, distribution, function, queue};
use crate::stack::Plan;
use crate::state::{Entry, StateStore, Status};

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
    let plan = Plan {
        stack: state.stack.clone(),
        suffix: state.suffix.clone(),
        account: state.account.clone(),
        region: state.region.clone(),
        settings: state
            .settings
            .clone()
            .with_cdn_id(state.resources.get("cdn").and_then(|e| e.extra.get("id"))),
    };
    let existing: Vec<(&String, &Entry)> = rows
        .iter()
        .filter(|(_, found)| matches!(found, Ok(Some(_))))
        .map(|((id, e), _)| (*id, *e))
        .filter(|(_, e)| e.status == Status::Created)
        .collect();
    let (drifts, holdings) = tokio::join!(
        join_all(
            existing
                .iter()
                .map(|(id, e)| engine::drift(&ctx, &plan, id, e))
        ),
        holdings(&ctx, &existing),
    );
    let drifts: Vec<(String, Result<Vec<String>, AwsError>)> = existing
        .iter()
        .map(|(id, _)| (*id).clone())
        .zip(drifts)
        .filter(|(_, d)| !matches!(d, Ok(v) if v.is_empty()))
        .collect();

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
        let drift: serde_json::Map<String, serde_json::Value> = drifts
            .iter()
            .map(|(id, d)| match d {
                Ok(v) => (id.clone(), json!(v)),
                Err(e) => (id.clone(), json!([format!("could not check: {e}")])),
            })
            .collect();
        print_json(&json!({
            "stack": state.stack, "region": state.region, "account": state.account,
            "state_file": StateStore::path_for(&global.state_dir, &global.stack),
            "settings": state.settings, "resources": list,
            "buckets": holdings.buckets.iter().map(|b| json!({
                "id": b.id, "name": b.name, "objects": b.objects, "bytes": b.bytes,
                "at_least": b.capped, "rules": b.rules, "error": b.error,
            })).collect::<Vec<_>>(),
            "reserved_concurrency": holdings.concurrency,
            "failed_events_waiting": holdings.failed_events,
            "cdn": holdings.cdn.as_ref().map(|c| json!({
                "id": c.id, "domain": c.domain, "status": c.status, "enabled": c.enabled,
            })),
            "drift": drift,
        }))?;
        return unchecked(&rows, &incomplete(&drifts, &holdings));
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
            Status::Created if bucket::is_adopted(e) => " (yours: never emptied or deleted)",
            Status::Created => "",
        };
        println!("  {:<8} {:<20} {:<14} {}{note}", exists, id, e.kind, e.name);
    }
    for b in &holdings.buckets {
        match &b.error {
            Some(err) => println!("{} {}: could not look inside: {err}", b.id, b.name),
            None => println!(
                "{} {}: {}{} objects, {}; lifecycle: {}",
                b.id,
                b.name,
                if b.capped { "at least " } else { "" },
                b.objects,
                human_bytes(b.bytes),
                b.rules
            ),
        }
    }
    if let Some(c) = &holdings.concurrency {
        println!(
            "Function concurrency: {}",
            c.map_or(
                "unreserved (the account's shared pool)".to_owned(),
                |n| format!("{n} reserved (at most {n} at once)")
            )
        );
    }
    if let Some(n) = holdings.failed_events {
        println!(
            "Events Lambda gave up on, waiting in the failure queue: {n}{}",
            if n > 0 {
                " (replay them: thumbctl reprocess --failed)"
            } else {
                ""
            }
        );
    }
    if let Some(c) = &holdings.cdn {
        println!(
            "CDN: https://{}/ (distribution {}, {}, {}){}",
            c.domain,
            c.id,
            if c.enabled { "enabled" } else { "disabled" },
            c.status,
            if c.status == "Deployed" {
                ""
            } else {
                ": CloudFront is still deploying the last change, usually a few minutes"
            }
        );
    }
    if drifts.is_empty() {
        println!("No drift: what AWS holds is what the state says.");
    } else {
        println!("Drift (AWS differs from what thumbctl set; `thumbctl up` puts it back):");
        for (id, d) in &drifts {
            match d {
                Ok(list) => {
                    for line in list {
                        println!("  {id}: {line}");
                    }
                }
                Err(e) => println!(
                    "  {id}: could not check: {}",
                    e.to_string().lines().next().unwrap_or_default()
                ),
            }
        }
    }
    for e in &holdings.errors {
        println!("Could not read: {}", e.lines().next().unwrap_or_default());
    }
    unchecked(&rows, &incomplete(&drifts, &holdings))
}

/// The checks beyond existence that could not be made (drift, contents, concurrency, queue).
fn incomplete(
    drifts: &[(String, Result<Vec<String>, AwsError>)],
    holdings: &Holdings,
) -> Vec<String> {
    drifts
        .iter()
        .filter_map(|(id, d)| d.as_ref().err().map(|e| format!("drift of {id}: {e}")))
        .chain(holdings.errors.iter().cloned())
        .collect()
}

/// What the stack holds beyond its resources' existence: objects in its buckets, the
/// function's concurrency, failures waiting for a replay.
#[derive(Default)]
struct Holdings {
    buckets: Vec<BucketHolding>,
    /// `Some(None)`: unreserved; `None`: not looked at (no function, or an error).
    concurrency: Option<Option<i32>>,
    failed_events: Option<u64>,
    /// The CloudFront distribution (`up --cdn`): where it serves and whether it is deployed.
    cdn: Option<distribution::Described>,
    /// What could not be read: the status is then incomplete, and says so by failing.
    errors: Vec<String>,
}

struct BucketHolding {
    id: String,
    name: String,
    objects: u64,
    bytes: u64,
    capped: bool,
    rules: String,
    error: Option<String>,
}

/// `status` counts at most this many objects per bucket, so it answers in seconds; the
/// bucket's CloudWatch metrics give exact figures for bigger ones (daily).
const COUNT_CAP: u64 = 100_000;

/// One entry's part of the [`Holdings`].
enum Holding {
    Bucket(BucketHolding, Option<String>),
    Concurrency(Result<Option<i32>, String>),
    FailedEvents(Result<Option<u64>, String>),
    Cdn(Result<Option<distribution::Described>, String>),
    Nothing,
}

/// Every entry's holdings read at once (each bucket's count is its own listing; waiting for
/// one before starting the next made `status` as slow as their sum).
async fn holdings(ctx: &Ctx, existing: &[(&String, &Entry)]) -> Holdings {
    let read = existing.iter().map(|(id, e)| async move {
        match e.kind.as_str() {
            bucket::KIND => {
                let (contents, rules) = tokio::join!(
                    bucket::contents(ctx, &e.name, COUNT_CAP),
                    bucket::rules(ctx, &e.name)
                );
                let mut b = BucketHolding {
                    id: (*id).clone(),
                    name: e.name.clone(),
                    objects: 0,
                    bytes: 0,
                    capped: false,
                    rules: String::new(),
                    error: None,
                };
                match (contents, rules) {
                    (Ok((objects, bytes, capped)), Ok(rules)) => {
                        b.objects = objects;
                        b.bytes = bytes;
                        b.capped = capped;
                        b.rules = bucket::describe_rules(&rules);
                        Holding::Bucket(b, None)
                    }
                    (Err(err), _) | (_, Err(err)) => {
                        b.error = Some(err.to_string());
                        Holding::Bucket(b, Some(err.to_string()))
                    }
                }
            }
            function::KIND => Holding::Concurrency(
                function::concurrency(ctx, &e.name)
                    .await
                    .map_err(|e| e.to_string()),
            ),
            queue::KIND => {
                Holding::FailedEvents(queue::depth(ctx, e).await.map_err(|e| e.to_string()))
            }
            distribution::KIND => Holding::Cdn(
                distribution::describe(ctx, e)
                    .await
                    .map_err(|e| e.to_string()),
            ),
            _ => Holding::Nothing,
        }
    });
    let mut h = Holdings::default();
    for holding in join_all(read).await {
        match holding {
            Holding::Bucket(b, err) => {
                h.errors.extend(err);
                h.buckets.push(b);
            }
            Holding::Concurrency(Ok(c)) => h.concurrency = Some(c),
            Holding::FailedEvents(Ok(n)) => h.failed_events = n,
            Holding::Cdn(Ok(d)) => h.cdn = d,
            Holding::Concurrency(Err(err))
            | Holding::FailedEvents(Err(err))
            | Holding::Cdn(Err(err)) => h.errors.push(err),
            Holding::Nothing => {}
        }
    }
    h
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A status that could not look at everything is a failure (exit 1), not a report: a script
/// that asks "is it all there?" must not read "unknown" as yes.
fn unchecked<K>(
    rows: &[(
        K,
        Result<Option<crate::resources::Found>, crate::error::AwsError>,
    )],
    other: &[String],
) -> anyhow::Result<()> {
    let failed: Vec<_> = rows.iter().filter_map(|(_, r)| r.as_ref().err()).collect();
    if let Some(first) = failed.first() {
        anyhow::bail!(
            "{} of {} resources could not be checked; the first: {first}",
            failed.len(),
            rows.len()
        );
    }
    if let Some(first) = other.first() {
        anyhow::bail!(
            "{} check(s) could not be made; the first: {first}",
            other.len()
        );
    }
    Ok(())
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
