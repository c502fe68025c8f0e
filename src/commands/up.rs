//! `thumbctl up`: decide every name, record the intent, create what is missing.

use std::time::Instant;

use anyhow::Context;
use serde_json::json;

use super::{check_account, context_for, print_json};
use crate::cli::{GlobalArgs, OutputMode, UpArgs};
use crate::engine::{self, Cancel, EngineError, Outcome};
use crate::progress::Progress;
use crate::stack::{Plan, Settings, new_suffix};
use crate::state::{STATE_VERSION, State, StateStore, Status};

/// Options given now win; options not given keep what the stack was last brought up with.
fn merge(previous: Settings, args: &UpArgs) -> Settings {
    let mut s = previous;
    if let Some(v) = &args.sizes {
        s.sizes = v.clone();
    }
    if let Some(v) = &args.format {
        s.format = v.clone();
    }
    if let Some(v) = args.quality {
        s.quality = v;
    }
    if let Some(v) = args.memory_mb {
        s.memory_mb = v;
    }
    if let Some(v) = args.timeout_s {
        s.timeout_s = v;
    }
    if let Some(v) = &args.image_uri {
        s.image_uri = Some(v.clone());
    }
    for e in &args.notify_email {
        if !s.notify_emails.contains(e) {
            s.notify_emails.push(e.clone());
        }
    }
    for u in &args.notify_url {
        if !s.notify_urls.contains(u) {
            s.notify_urls.push(u.clone());
        }
    }
    s
}

pub async fn run(global: &GlobalArgs, args: UpArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let store = StateStore::open(&global.state_dir, &global.stack, "up")?;
    let existing = store.snapshot();
    let ctx = context_for(global, existing.as_ref()).await?;
    let account = check_account(&ctx, existing.as_ref()).await?;
    let settings = merge(
        existing
            .as_ref()
            .map(|s| s.settings.clone())
            .unwrap_or_default(),
        &args,
    );
    let plan = Plan {
        stack: global.stack.clone(),
        suffix: existing
            .as_ref()
            .map(|s| s.suffix.clone())
            .unwrap_or_else(new_suffix),
        account: account.clone(),
        region: ctx.region.clone(),
        settings,
    };

    if args.dry_run {
        return dry_run(global, &plan, existing.as_ref());
    }

    match &existing {
        None => store.init(State {
            version: STATE_VERSION,
            stack: plan.stack.clone(),
            region: plan.region.clone(),
            account,
            suffix: plan.suffix.clone(),
            created_at: crate::now_rfc3339(),
            settings: plan.settings.clone(),
            resources: Default::default(),
        })?,
        // Record the intended settings first: a crash mid-way then resumes towards them.
        Some(_) => store.update(|s| s.settings = plan.settings.clone())?,
    }

    let mut plan = plan;
    if plan.settings.image_uri.is_none() {
        // No image yet: build it (CodeBuild, or --local), creating first only what the build
        // needs, recorded like every other resource; then the function gets it by digest.
        let opts = super::build_image::Options::for_up(
            args.local,
            args.registry_url.clone(),
            global.quiet,
        );
        let built = super::build_image::produce(&ctx, &plan, &store, &opts)
            .await
            .with_context(|| {
                format!(
                    "building the function's image for stack `{}` (what was made so far is recorded in {}; rerun `thumbctl up`, or pass --image-uri)",
                    plan.stack,
                    store.path().display()
                )
            })?;
        plan.settings.image_uri = Some(built.image_uri.clone());
        store.update(|s| s.settings = plan.settings.clone())?;
        if !global.quiet {
            eprintln!("Image {} ({})", built.image_uri, built.how);
        }
    }
    let progress = Progress::new(global.quiet);
    progress.note(&format!(
        "Bringing up stack `{}` in {} (account {}); state: {}",
        plan.stack,
        plan.region,
        plan.account,
        store.path().display()
    ));
    if !ctx.tls_only_policy() {
        progress.note("Note: the endpoint is plain HTTP (an emulator), so the buckets get no TLS-only policy; on AWS they always do.");
    }
    let cancel = Cancel::default();
    engine::install_interrupt_handler(
        cancel.clone(),
        "finishing the AWS calls in flight and saving the state",
    );
    let outcomes = match engine::up(&ctx, &plan, &store, &cancel, &progress).await {
        Ok(o) => o,
        Err(EngineError::Interrupted) => {
            return Err(anyhow::Error::new(EngineError::Interrupted)).with_context(|| {
                format!(
                    "`up` of stack `{}` stopped part-way; state saved in {}. Rerun `thumbctl up` to finish, or `thumbctl destroy` to remove what was made",
                    plan.stack,
                    store.path().display()
                )
            });
        }
        Err(e) => {
            return Err(anyhow::Error::new(e)).with_context(|| {
                format!(
                    "`up` of stack `{}` did not finish; everything made so far is recorded in {}. Fix the cause and rerun `thumbctl up` (it resumes), or run `thumbctl destroy`",
                    plan.stack,
                    store.path().display()
                )
            });
        }
    };

    let count = |o: Outcome| outcomes.values().filter(|v| **v == o).count();
    let state = store
        .snapshot()
        .context("the state vanished while running")?;
    if global.output == OutputMode::Json {
        let resources: Vec<_> = state
            .resources
            .iter()
            .map(|(id, e)| {
                json!({"id": id, "kind": e.kind, "name": e.name, "arn": e.arn,
                       "outcome": outcomes.get(id).map(|o| o.verb())})
            })
            .collect();
        return print_json(&json!({
            "stack": plan.stack, "region": plan.region, "account": plan.account,
            "state_file": store.path(), "source_bucket": plan.source_bucket(),
            "dest_bucket": plan.dest_bucket(), "function": plan.function(), "table": plan.table(),
            "topic_arn": plan.topic_arn(), "resources": resources,
            "created": count(Outcome::Created), "updated": count(Outcome::Updated),
            "unchanged": count(Outcome::Unchanged), "seconds": started.elapsed().as_secs_f64(),
        }));
    }
    println!(
        "Stack `{}` is up in {}: {} created, {} updated, {} unchanged ({:.1}s).",
        plan.stack,
        plan.region,
        count(Outcome::Created),
        count(Outcome::Updated),
        count(Outcome::Unchanged),
        started.elapsed().as_secs_f64()
    );
    println!("  uploads go to     s3://{}/", plan.source_bucket());
    println!("  thumbnails land in s3://{}/", plan.dest_bucket());
    println!("  metadata table    {}", plan.table());
    println!("  announcements     {}", plan.topic_arn());
    println!(
        "Remove it all with: thumbctl --stack {} destroy",
        plan.stack
    );
    Ok(())
}

fn dry_run(global: &GlobalArgs, plan: &Plan, existing: Option<&State>) -> anyhow::Result<()> {
    let steps = engine::steps(plan);
    let status_of = |id: &str| match existing.and_then(|s| s.resources.get(id)).map(|e| e.status) {
        Some(Status::Created) => "exists (check only)",
        Some(Status::Kept) => "kept (adopt)",
        Some(Status::Planned) => "create or adopt",
        None => "create",
    };
    if global.output == OutputMode::Json {
        let list: Vec<_> = steps
            .iter()
            .map(|s| {
                json!({"id": s.id, "kind": s.kind, "name": s.name, "arn": s.arn,
                            "after": engine::deps(&s.id), "action": status_of(&s.id)})
            })
            .collect();
        return print_json(
            &json!({"stack": plan.stack, "region": plan.region, "account": plan.account, "dry_run": true, "steps": list}),
        );
    }
    println!(
        "Dry run: stack `{}` in {} (account {}). Nothing will be created.",
        plan.stack, plan.region, plan.account
    );
    for s in &steps {
        let after = engine::deps(&s.id);
        let after = if after.is_empty() {
            String::new()
        } else {
            format!("  (after {})", after.join(", "))
        };
        println!(
            "  {:<20} {:<14} {:<45} {}{after}",
            s.id,
            s.kind,
            s.name,
            status_of(&s.id)
        );
    }
    Ok(())
}
