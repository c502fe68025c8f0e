//! Orders and runs the steps of `up` and `destroy`.
//!
//! The dependency graph is data ([`deps`]): each step names the steps that must be done
//! before it. `up` runs a step as soon as its dependencies are done, many at once; `destroy`
//! walks the same graph backwards. Each step records itself in the state before and after
//! its AWS calls (see `state.rs`), so stopping anywhere leaves a state that a rerun of
//! either command finishes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::Notify;

use crate::context::Ctx;
use crate::error::{AwsError, Class};
use crate::failpoint::crash_point;
use crate::progress::Progress;
use crate::resources::{
    self, Found, bucket, bucket_policy, build_project, distribution, function, log_group,
    notification, origin_access_control, permission, queue, repository, role, role_policy,
    subscription, table, topic,
};
use crate::retry::{self, Patience};
use crate::stack::{PERMISSION_SID, Plan, ROLE_POLICY_NAME};
use crate::state::{Entry, StateError, StateStore, Status};

/// Set by the first Ctrl-C: no new step starts, steps in flight finish and are recorded.
#[derive(Clone, Default)]
pub struct Cancel {
    flag: Arc<AtomicBool>,
    notify: Arc<Notify>,
}

impl Cancel {
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }
    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("interrupted: the steps in flight finished and the state was saved")]
    Interrupted,
    // Transparent: the inner error is the message, not also its cause, so `{:#}` prints it once.
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{} steps failed:\n{}", .0.len(), .0.iter().map(|e| format!("- {e}")).collect::<Vec<_>>().join("\n"))]
    Many(Vec<EngineError>),
}

/// The steps that must be done before `id` in `up` (and undone after it in `destroy`).
/// Only real dependencies: every ARN is derived from the plan, so e.g. the role's policy,
/// the table and the topic do not hold up the function; they only hold up the trigger.
pub fn deps(id: &str) -> Vec<&'static str> {
    match id {
        // With `--cdn`, the function invalidates what it deletes: its environment and its
        // policy name the distribution, whose id only exists once it is created.
        "lambda-role-policy" => vec!["lambda-role", "cdn"],
        "codebuild-role-policy" => vec!["codebuild-role"],
        "batch-role-policy" => vec!["batch-role"],
        "build-project" => vec![
            "codebuild-role",
            "codebuild-role-policy",
            "build-log-group",
            "repository",
        ],
        // The log group and the retry settings matter from the first invocation, which only
        // the notification can cause: they hold up the notification, not the function.
        "function" => vec!["lambda-role", "cdn"],
        "permission" => vec!["function"],
        // Lambda checks, when the destination is set, that the role may send to the queue.
        "invoke-config" => vec!["function", "failure-queue", "lambda-role-policy"],
        "notification" => vec![
            "permission",
            "invoke-config",
            "function-log-group",
            "source-bucket",
            "dest-bucket",
            "table",
            "topic",
            "lambda-role-policy",
        ],
        s if s.starts_with("subscription:") => vec!["topic"],
        // The distribution reads the bucket through the access control; both outlive it in
        // `destroy`: the access control cannot be deleted while in use, and a bucket deleted
        // first would leave a distribution pointing at a name anyone could then claim.
        "cdn" => vec!["cdn-access", "dest-bucket"],
        "cdn-bucket-policy" => vec!["cdn", "dest-bucket"],
        _ => vec![],
    }
}

/// One resource of the plan: its step id, kind and name, and what to record before creating it.
#[derive(Debug, Clone)]
pub struct Step {
    pub id: String,
    pub kind: &'static str,
    pub name: String,
    pub arn: Option<String>,
    pub extra: BTreeMap<String, String>,
}

impl Step {
    fn new(
        id: impl Into<String>,
        kind: &'static str,
        name: impl Into<String>,
        arn: Option<String>,
    ) -> Step {
        Step {
            id: id.into(),
            kind,
            name: name.into(),
            arn,
            extra: BTreeMap::new(),
        }
    }
}

/// Every resource `up` creates for this plan, in a readable order.
pub fn steps(plan: &Plan) -> Vec<Step> {
    let source = Step::new(
        "source-bucket",
        bucket::KIND,
        plan.source_bucket(),
        Some(plan.bucket_arn(&plan.source_bucket())),
    );
    let mut s = vec![
        if plan.source_adopted() {
            Step {
                extra: bucket::adopted_extra(),
                ..source
            }
        } else {
            source
        },
        Step::new(
            "dest-bucket",
            bucket::KIND,
            plan.dest_bucket(),
            Some(plan.bucket_arn(&plan.dest_bucket())),
        ),
        Step::new(
            "lambda-role",
            role::KIND,
            plan.lambda_role(),
            Some(plan.role_arn(&plan.lambda_role())),
        ),
        Step::new(
            "codebuild-role",
            role::KIND,
            plan.codebuild_role(),
            Some(plan.role_arn(&plan.codebuild_role())),
        ),
        Step {
            extra: role_policy::extra(&plan.lambda_role()),
            ..Step::new(
                "lambda-role-policy",
                role_policy::KIND,
                ROLE_POLICY_NAME,
                None,
            )
        },
        Step {
            extra: role_policy::extra(&plan.codebuild_role()),
            ..Step::new(
                "codebuild-role-policy",
                role_policy::KIND,
                ROLE_POLICY_NAME,
                None,
            )
        },
        Step::new(
            "repository",
            repository::KIND,
            plan.repository(),
            Some(plan.repository_arn()),
        ),
        Step::new(
            "function-log-group",
            log_group::KIND,
            plan.function_log_group(),
            Some(plan.log_group_arn(&plan.function_log_group())),
        ),
        Step::new(
            "build-log-group",
            log_group::KIND,
            plan.build_log_group(),
            Some(plan.log_group_arn(&plan.build_log_group())),
        ),
        Step::new(
            "build-project",
            build_project::KIND,
            plan.project(),
            Some(plan.project_arn()),
        ),
        Step::new("table", table::KIND, plan.table(), Some(plan.table_arn())),
        Step::new("topic", topic::KIND, plan.topic(), Some(plan.topic_arn())),
        Step::new(
            "failure-queue",
            queue::KIND,
            plan.failure_queue(),
            Some(plan.queue_arn()),
        ),
    ];
    if plan.settings.batch_operations {
        s.push(Step::new(
            "batch-role",
            role::KIND,
            plan.batch_role(),
            Some(plan.role_arn(&plan.batch_role())),
        ));
        s.push(Step {
            extra: role_policy::extra(&plan.batch_role()),
            ..Step::new(
                "batch-role-policy",
                role_policy::KIND,
                ROLE_POLICY_NAME,
                None,
            )
        });
    }
    if plan.settings.cdn {
        s.push(Step::new(
            "cdn-access",
            origin_access_control::KIND,
            plan.cdn(),
            None,
        ));
        s.push(Step {
            extra: distribution::extra(plan),
            ..Step::new("cdn", distribution::KIND, plan.cdn(), None)
        });
        s.push(Step {
            extra: bucket_policy::extra(),
            ..Step::new(
                "cdn-bucket-policy",
                bucket_policy::KIND,
                plan.dest_bucket(),
                None,
            )
        });
    }
    for email in &plan.settings.notify_emails {
        s.push(Step::new(
            format!("subscription:email:{email}"),
            subscription::KIND,
            email.clone(),
            None,
        ));
    }
    for url in &plan.settings.notify_urls {
        s.push(Step::new(
            format!("subscription:url:{url}"),
            subscription::KIND,
            url.clone(),
            None,
        ));
    }
    s.push(Step::new(
        "function",
        function::KIND,
        plan.function(),
        Some(plan.function_arn()),
    ));
    s.push(Step::new(
        "invoke-config",
        function::invoke_config::KIND,
        plan.function(),
        None,
    ));
    s.push(Step {
        extra: permission::extra(&plan.function()),
        ..Step::new("permission", permission::KIND, PERMISSION_SID, None)
    });
    s.push(Step {
        extra: notification::extra(),
        ..Step::new(
            "notification",
            notification::KIND,
            plan.source_bucket(),
            None,
        )
    });
    s
}

/// How a resource is named to the user: a policy or permission says what it belongs to.
pub fn label(kind: &str, name: &str, extra: &BTreeMap<String, String>) -> String {
    match extra.get("role").or_else(|| extra.get("function")) {
        Some(owner) => format!("{kind} {name} of {owner}"),
        None => format!("{kind} {name}"),
    }
}

/// Creates the resource of one step. Everything a step needs from another is derived from
/// the plan, or, for ids AWS generates (CloudFront's), read from the entry the other step
/// recorded: steps share nothing but the state.
async fn ensure(
    ctx: &Ctx,
    plan: &Plan,
    store: &StateStore,
    step: &Step,
) -> Result<Found, AwsError> {
    let recorded = |id: &str, what: &str| -> Result<String, AwsError> {
        let entry = store.entry(id);
        let value = match what {
            "arn" => entry.and_then(|e| e.arn),
            key => entry.and_then(|e| e.extra.get(key).cloned()),
        };
        value.ok_or_else(|| {
            AwsError::local(
                "create",
                step.kind,
                step.name.clone(),
                format!("the state records no {what} of step {id}; rerun `thumbctl up`"),
            )
        })
    };
    match step.id.as_str() {
        "source-bucket" | "dest-bucket" => bucket::ensure(ctx, plan, &step.name).await,
        "lambda-role" => role::ensure(ctx, plan, &step.name, "lambda.amazonaws.com").await,
        "codebuild-role" => role::ensure(ctx, plan, &step.name, "codebuild.amazonaws.com").await,
        "batch-role" => {
            role::ensure(ctx, plan, &step.name, "batchoperations.s3.amazonaws.com").await
        }
        "batch-role-policy" => {
            role_policy::ensure(ctx, &plan.batch_role(), &plan.batch_policy()).await
        }
        "lambda-role-policy" => {
            role_policy::ensure(ctx, &plan.lambda_role(), &plan.lambda_policy()).await
        }
        "codebuild-role-policy" => {
            role_policy::ensure(ctx, &plan.codebuild_role(), &plan.codebuild_policy()).await
        }
        "repository" => repository::ensure(ctx, plan, &step.name).await,
        "function-log-group" | "build-log-group" => log_group::ensure(ctx, plan, &step.name).await,
        "build-project" => {
            build_project::ensure(
                ctx,
                plan,
                &step.name,
                &plan.role_arn(&plan.codebuild_role()),
            )
            .await
        }
        "table" => table::ensure(ctx, plan, &step.name).await,
        "topic" => topic::ensure(ctx, plan, &step.name).await,
        "function" => function::ensure(ctx, plan, &plan.role_arn(&plan.lambda_role())).await,
        "permission" => permission::ensure(ctx, plan).await,
        "invoke-config" => {
            function::invoke_config::ensure(ctx, &step.name, &plan.queue_arn()).await
        }
        "failure-queue" => queue::ensure(ctx, plan, &step.name).await,
        "notification" => notification::ensure(ctx, plan, &plan.function_arn()).await,
        "cdn-access" => origin_access_control::ensure(ctx, plan, &step.name).await,
        "cdn" => distribution::ensure(ctx, plan, &step.name, &recorded("cdn-access", "id")?).await,
        "cdn-bucket-policy" => {
            let arn = plan.distribution_arn(&recorded("cdn", "id")?);
            bucket_policy::ensure(ctx, plan, &step.name, &arn).await
        }
        id if id.starts_with("subscription:email:") => {
            subscription::ensure(ctx, &plan.topic_arn(), "email", &step.name).await
        }
        id if id.starts_with("subscription:url:") => {
            let protocol = if step.name.starts_with("http://") {
                "http"
            } else {
                "https"
            };
            subscription::ensure(ctx, &plan.topic_arn(), protocol, &step.name).await
        }
        other => Err(AwsError::local(
            "create",
            "resource",
            other,
            "thumbctl has no step of this name",
        )),
    }
}

/// How an existing resource differs from what `up` made of it, each difference in words.
/// Kinds whose settings cannot drift in a way thumbctl cares about have none.
pub async fn drift(
    ctx: &Ctx,
    plan: &Plan,
    id: &str,
    entry: &Entry,
) -> Result<Vec<String>, AwsError> {
    match id {
        "source-bucket" | "dest-bucket" => bucket::drift(ctx, plan, &entry.name).await,
        "lambda-role-policy" => role_policy::drift(ctx, entry, &plan.lambda_policy()).await,
        "codebuild-role-policy" => role_policy::drift(ctx, entry, &plan.codebuild_policy()).await,
        "batch-role-policy" => role_policy::drift(ctx, entry, &plan.batch_policy()).await,
        "repository" => repository::drift(ctx, plan, &entry.name).await,
        "function" => function::drift(ctx, plan).await,
        "invoke-config" => function::invoke_config::drift(ctx, entry, &plan.queue_arn()).await,
        "notification" => notification::drift(ctx, plan, entry).await,
        "cdn" => distribution::drift(ctx, entry).await,
        _ => Ok(Vec::new()),
    }
}

/// What happened to one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Unchanged,
    Updated,
    Deleted,
    Kept,
    /// An adopted resource the stack let go of, untouched.
    Released,
}

impl Outcome {
    pub fn verb(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Unchanged => "exists",
            Outcome::Updated => "updated",
            Outcome::Deleted => "deleted",
            Outcome::Kept => "kept",
            Outcome::Released => "left alone (yours)",
        }
    }
}

/// Brings one step's resource into existence and records it.
async fn up_step(
    ctx: &Ctx,
    plan: &Plan,
    store: &StateStore,
    step: &Step,
) -> Result<Outcome, EngineError> {
    // The distribution id is generated by CloudFront during this very run on a first
    // `up --cdn`: read it from the state as it is now (the steps that use it wait for it).
    let plan = &Plan {
        settings: plan.settings.clone().with_cdn_id(
            store
                .entry("cdn")
                .and_then(|e| e.extra.get("id").cloned())
                .as_ref(),
        ),
        ..plan.clone()
    };
    if let Some(entry) = store.entry(&step.id)
        && entry.status != Status::Planned
    {
        // Recorded as existing: check it still does, and touch nothing if so.
        if resources::find(ctx, &entry).await?.is_some() {
            let mut outcome = Outcome::Unchanged;
            if step.id == "function" {
                if function::reconcile(ctx, plan).await? {
                    outcome = Outcome::Updated;
                }
            } else {
                // Someone changed it (console, CLI) or an older thumbctl made it: put back
                // what this plan says; every ensure is idempotent.
                let diffs = drift(ctx, plan, &step.id, &entry).await?;
                if !diffs.is_empty() {
                    tracing::warn!(step = %step.id, name = %entry.name, differences = %diffs.join("; "), "repairing drift");
                    with_propagation_retry(|| ensure(ctx, plan, store, step)).await?;
                    outcome = Outcome::Updated;
                }
            }
            if entry.status == Status::Kept {
                store.update(|s| {
                    if let Some(e) = s.resources.get_mut(&step.id) {
                        e.status = Status::Created;
                    }
                })?;
            }
            return Ok(outcome);
        }
        tracing::warn!(step = %step.id, name = %entry.name, "recorded as created but missing in AWS; creating it again");
    }
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
    crash_point(&format!("up:planned:{}", step.id));
    let found = with_propagation_retry(|| ensure(ctx, plan, store, step)).await?;
    crash_point(&format!("up:created:{}", step.id));
    store.update(|s| {
        if let Some(e) = s.resources.get_mut(&step.id) {
            e.status = Status::Created;
            if found.arn.is_some() {
                e.arn = found.arn.clone();
            }
            e.extra.extend(found.extra.clone());
        }
    })?;
    crash_point(&format!("up:recorded:{}", step.id));
    Ok(Outcome::Created)
}

/// IAM is eventually consistent on real AWS: a role created a moment ago can be refused by
/// Lambda or CodeBuild. Retry exactly that, with backoff, for about a minute and a half.
async fn with_propagation_retry<F, Fut>(f: F) -> Result<Found, AwsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Found, AwsError>>,
{
    retry::until_settled(
        Patience::IAM,
        |e| (e.class == Class::Propagation).then_some("IAM to propagate the new role"),
        f,
    )
    .await
}

/// Deletes one recorded resource and removes its entry (or marks a kept bucket).
async fn destroy_step(
    ctx: &Ctx,
    store: &StateStore,
    id: &str,
    keep_buckets: bool,
    in_flight_until: Option<std::time::Instant>,
    progress: &Progress,
) -> Result<Outcome, EngineError> {
    let Some(entry) = store.entry(id) else {
        return Ok(Outcome::Deleted);
    };
    // The user's own bucket: forgotten, never emptied nor deleted.
    if entry.kind == bucket::KIND && bucket::is_adopted(&entry) {
        store.update(|s| s.resources.remove(id))?;
        return Ok(Outcome::Released);
    }
    if keep_buckets && entry.kind == bucket::KIND {
        store.update(|s| {
            if let Some(e) = s.resources.get_mut(id) {
                e.status = Status::Kept;
            }
        })?;
        return Ok(Outcome::Kept);
    }
    let report = |what: &str| progress.update(id, what);
    resources::delete(ctx, &entry, &report).await?;
    // A planned entry is one whose create call may have been in flight when its process
    // died; AWS can still apply such a call after this delete found nothing. If that death
    // was moments ago, wait out the rest of the window and look once more.
    if entry.status == Status::Planned
        && let Some(until) = in_flight_until
    {
        let now = std::time::Instant::now();
        if until > now {
            tracing::info!(
                step = id,
                "planned moments ago: checking again for a create still in flight"
            );
            tokio::time::sleep(until - now).await;
        }
        if resources::find(ctx, &entry).await?.is_some() {
            resources::delete(ctx, &entry, &report).await?;
        }
    }
    crash_point(&format!("destroy:deleted:{id}"));
    store.update(|s| s.resources.remove(id))?;
    crash_point(&format!("destroy:recorded:{id}"));
    Ok(Outcome::Deleted)
}

type StepFuture<'a> = Pin<Box<dyn Future<Output = (String, Result<Outcome, EngineError>)> + 'a>>;

/// Runs `action` on every node once all of its `before` nodes succeeded, as many at a time as
/// are ready. A failure stops only the nodes that depend on it: independent branches go on,
/// so a rerun has less left to do. After Ctrl-C nothing new starts. Steps in flight always
/// finish, so their results are recorded.
async fn run_graph<'a>(
    nodes: Vec<(String, Vec<String>)>,
    cancel: &Cancel,
    progress: &Progress,
    action: impl Fn(String) -> StepFuture<'a>,
) -> Result<HashMap<String, Outcome>, EngineError> {
    let ids: HashSet<String> = nodes.iter().map(|(id, _)| id.clone()).collect();
    // Dependencies on steps outside this run (not planned, not recorded) are already satisfied.
    let mut waiting: Vec<(String, Vec<String>)> = nodes
        .into_iter()
        .map(|(id, before)| (id, before.into_iter().filter(|b| ids.contains(b)).collect()))
        .collect();
    let mut done: HashMap<String, Outcome> = HashMap::new();
    let mut failed: HashSet<String> = HashSet::new();
    let mut errors = Vec::new();
    let mut running = FuturesUnordered::new();
    loop {
        let stop = cancel.is_cancelled();
        if !stop {
            let (ready, rest): (Vec<_>, Vec<_>) = waiting
                .into_iter()
                .partition(|(_, before)| before.iter().all(|b| done.contains_key(b)));
            waiting = rest;
            for (id, _) in ready {
                progress.start(&id);
                running.push(action(id));
            }
        }
        let next = tokio::select! {
            r = running.next() => r,
            _ = cancel.notify.notified(), if !cancel.is_cancelled() => continue,
        };
        let Some((id, result)) = next else { break };
        match result {
            Ok(outcome) => {
                progress.finish(&id, outcome.verb());
                done.insert(id, outcome);
            }
            Err(e) => {
                progress.fail(&id, &e.to_string());
                failed.insert(id);
                errors.push(e);
            }
        }
        // Nodes behind a failure can never run.
        waiting.retain(|(_, before)| !before.iter().any(|b| failed.contains(b)));
    }
    if !errors.is_empty() {
        return Err(if errors.len() == 1 {
            errors.remove(0)
        } else {
            EngineError::Many(errors)
        });
    }
    if cancel.is_cancelled() && (!waiting.is_empty()) {
        return Err(EngineError::Interrupted);
    }
    Ok(done)
}

/// Creates (or confirms) every resource of the plan.
pub async fn up(
    ctx: &Ctx,
    plan: &Plan,
    store: &StateStore,
    cancel: &Cancel,
    progress: &Progress,
) -> Result<HashMap<String, Outcome>, EngineError> {
    run_up(ctx, plan, store, steps(plan), cancel, progress).await
}

/// Creates (or confirms) only `targets` and what they depend on, exactly as `up` would: the
/// image build needs its repository and project before the function can exist.
pub async fn up_only(
    ctx: &Ctx,
    plan: &Plan,
    store: &StateStore,
    targets: &[&str],
    cancel: &Cancel,
    progress: &Progress,
) -> Result<HashMap<String, Outcome>, EngineError> {
    let mut wanted: HashSet<&str> = HashSet::new();
    let mut todo: Vec<&str> = targets.to_vec();
    while let Some(id) = todo.pop() {
        if wanted.insert(id) {
            todo.extend(deps(id));
        }
    }
    let subset = steps(plan)
        .into_iter()
        .filter(|s| wanted.contains(s.id.as_str()))
        .collect();
    run_up(ctx, plan, store, subset, cancel, progress).await
}

async fn run_up(
    ctx: &Ctx,
    plan: &Plan,
    store: &StateStore,
    all: Vec<Step>,
    cancel: &Cancel,
    progress: &Progress,
) -> Result<HashMap<String, Outcome>, EngineError> {
    let by_id: HashMap<String, Step> = all.iter().map(|s| (s.id.clone(), s.clone())).collect();
    let nodes = all
        .iter()
        .map(|s| {
            (
                s.id.clone(),
                deps(&s.id).into_iter().map(str::to_owned).collect(),
            )
        })
        .collect();
    let by_id = &by_id;
    for s in &all {
        progress.add(&s.id, &label(s.kind, &s.name, &s.extra));
    }
    run_graph(nodes, cancel, progress, |id| {
        Box::pin(async move {
            let r = match by_id.get(&id) {
                Some(step) => up_step(ctx, plan, store, step).await,
                None => Ok(Outcome::Unchanged),
            };
            (id, r)
        })
    })
    .await
}

/// Deletes every resource recorded in the state, dependents first.
pub async fn destroy(
    ctx: &Ctx,
    store: &StateStore,
    keep_buckets: bool,
    cancel: &Cancel,
    progress: &Progress,
) -> Result<HashMap<String, Outcome>, EngineError> {
    let entries = store.snapshot().map(|s| s.resources).unwrap_or_default();
    let in_flight_until = in_flight_window(store.path());
    // Reverse the graph: a resource goes once everything that depends on it has gone.
    let mut before: BTreeMap<String, Vec<String>> =
        entries.keys().map(|id| (id.clone(), Vec::new())).collect();
    for id in entries.keys() {
        for dep in deps(id) {
            if let Some(list) = before.get_mut(dep) {
                list.push(id.clone());
            }
        }
    }
    for (id, e) in &entries {
        progress.add(id, &label(&e.kind, &e.name, &e.extra));
    }
    run_graph(before.into_iter().collect(), cancel, progress, |id| {
        Box::pin(async move {
            let r = destroy_step(ctx, store, &id, keep_buckets, in_flight_until, progress).await;
            (id, r)
        })
    })
    .await
}

/// How long after the state's last write a create call of the process that wrote it may
/// still be applied by AWS: the SDK's own attempt timeout bounds a call in flight, and AWS
/// answers within seconds; ten covers both with room.
const IN_FLIGHT: Duration = Duration::from_secs(10);

/// Until when a create call made by the state's last writer could still land, if that is
/// in the future (the state was written less than [`IN_FLIGHT`] ago).
fn in_flight_window(state: &std::path::Path) -> Option<std::time::Instant> {
    let written = std::fs::metadata(state).and_then(|m| m.modified()).ok()?;
    let age = std::time::SystemTime::now()
        .duration_since(written)
        .unwrap_or_default();
    IN_FLIGHT
        .checked_sub(age)
        .map(|left| std::time::Instant::now() + left)
}

/// Waits for the first and second Ctrl-C: the first cancels, the second exits at once.
pub fn install_interrupt_handler(cancel: Cancel, after_first: &'static str) {
    // The listener is registered here, before the task runs, and kept for both signals: a
    // Ctrl-C that arrives before the task is first polled, or between the two waits, is
    // then queued instead of lost (or of killing the process with the default action).
    #[cfg(unix)]
    let mut interrupts =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("cannot listen for Ctrl-C ({e}); it will stop thumbctl at once");
                return;
            }
        };
    tokio::spawn(async move {
        #[cfg(unix)]
        let first = interrupts.recv().await.is_some();
        #[cfg(not(unix))]
        let first = tokio::signal::ctrl_c().await.is_ok();
        if !first {
            return;
        }
        eprintln!("\nthumbctl: interrupted; {after_first} (press Ctrl-C again to quit at once)");
        cancel.cancel();
        #[cfg(unix)]
        let second = interrupts.recv().await.is_some();
        #[cfg(not(unix))]
        let second = tokio::signal::ctrl_c().await.is_ok();
        if second {
            eprintln!(
                "thumbctl: quitting now; the state file is valid, rerun the same command to finish"
            );
            std::process::exit(130);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::Settings;

    fn plan() -> Plan {
        Plan {
            stack: "t".into(),
            suffix: "s".into(),
            account: "1".into(),
            region: "us-east-1".into(),
            settings: Settings {
                notify_emails: vec!["a@example.com".into()],
                cdn: true,
                ..Settings::default()
            },
        }
    }

    #[test]
    fn every_dependency_is_a_step_and_the_graph_is_acyclic() {
        let all = steps(&plan());
        let ids: HashSet<&str> = all.iter().map(|s| s.id.as_str()).collect();
        for s in &all {
            for d in deps(&s.id) {
                assert!(ids.contains(d), "{} depends on unknown {d}", s.id);
            }
        }
        // Kahn's algorithm must consume every node.
        let mut left: Vec<&str> = ids.iter().copied().collect();
        let mut done: HashSet<&str> = HashSet::new();
        while !left.is_empty() {
            let before = left.len();
            left.retain(|id| {
                if deps(id).iter().all(|d| done.contains(d)) {
                    done.insert(id);
                    false
                } else {
                    true
                }
            });
            assert!(left.len() < before, "cycle among {left:?}");
        }
    }

    #[test]
    fn trigger_waits_for_everything_the_function_uses() {
        let d = deps("notification");
        for needed in [
            "permission",
            "source-bucket",
            "dest-bucket",
            "table",
            "topic",
            "lambda-role-policy",
        ] {
            assert!(d.contains(&needed), "notification must wait for {needed}");
        }
        assert_eq!(deps("permission"), ["function"]);
    }

    #[test]
    fn the_cdn_goes_before_what_it_uses_in_destroy() {
        // destroy reverses deps: the distribution must be gone before its access control
        // (in use until then) and before the bucket it points at.
        assert!(deps("cdn").contains(&"cdn-access"));
        assert!(deps("cdn").contains(&"dest-bucket"));
        assert!(deps("cdn-bucket-policy").contains(&"cdn"));
        let ids: Vec<String> = steps(&plan()).into_iter().map(|s| s.id).collect();
        for id in ["cdn-access", "cdn", "cdn-bucket-policy"] {
            assert!(ids.iter().any(|i| i == id), "{id} missing from {ids:?}");
        }
    }
}
