//! Crash-resume: `up` and `destroy` killed at every step (cargo feature `failpoints`), then
//! rerun. The stack must converge to exactly what a clean `up` makes, and after `destroy`
//! nothing of it may be left in moto, of any kind.
//!
//! What "every step" means is not taken from thumbctl alone: a clean `up` of a reference stack
//! is read back from moto, kind by kind, and must match the design (`EXPECTED_KINDS`); the dry
//! run, the reference's state and moto must agree on those steps; and each matrix counts the
//! (step, crash point) pairs it really crashed at (thumbctl names the point it stops at), so a
//! skipped step or a crash point that never fires fails the test.
#![cfg(feature = "failpoints")]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use aws_sdk_s3::error::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde_json::{Value, json};

use common::*;

const CRASH_EXIT: i32 = 86;

/// The crash stack: every kind `up` makes, including an e-mail subscription.
const UP: [&str; 5] = [
    "up",
    "--image-uri",
    IMAGE,
    "--notify-email",
    "ops@example.com",
];

/// What `up` makes for the crash stack, by kind: the design of README's "What `up` creates"
/// with one `--notify-email`. The crash matrices iterate exactly these 18 steps.
const EXPECTED_KINDS: [(&str, usize); 14] = [
    ("bucket", 2),
    ("build-project", 1),
    ("function", 1),
    ("invoke-config", 1),
    ("log-group", 2),
    ("notification", 1),
    ("permission", 1),
    ("queue", 1),
    ("repository", 1),
    ("role", 2),
    ("role-policy", 2),
    ("subscription", 1),
    ("table", 1),
    ("topic", 1),
];

fn expected_steps() -> usize {
    EXPECTED_KINDS.iter().map(|(_, n)| n).sum()
}

fn with_failpoint(dir: &Path, stack: &str, args: &[&str], failpoint: &str) -> Output {
    let mut cmd = thumbctl_cmd(dir, stack, args);
    cmd.env("FAILPOINTS", failpoint)
        .output()
        .expect("run thumbctl")
}

/// Runs thumbctl with a crash point and insists it stopped there, at that point and no other.
fn crash_at(dir: &Path, stack: &str, args: &[&str], point: &str) {
    let out = with_failpoint(dir, stack, args, &format!("{point}=return"));
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(CRASH_EXIT),
        "crash at {point} did not happen: {err}"
    );
    assert!(
        err.contains(&format!("crash point {point} reached")),
        "stopped elsewhere than {point}: {err}"
    );
}

/// Every step id `up` runs for the crash stack, read from a dry run.
fn step_ids(dir: &Path) -> Vec<String> {
    let mut args = UP.to_vec();
    args.extend(["--dry-run", "--output", "json"]);
    let out = ok(dir, "dryrun", &args);
    let plan: Value = serde_json::from_slice(&out.stdout).expect("dry run JSON");
    assert!(
        !dir.join("dryrun.json").exists(),
        "a dry run must not write state"
    );
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

/// How a resource is named below, for state entries and moto's resources alike: `kind name`,
/// or `kind name of owner` for a role's policy or a function's permission.
fn label(kind: &str, name: &str, owner: Option<&str>) -> String {
    match owner {
        Some(o) => format!("{kind} {name} of {o}"),
        None => format!("{kind} {name}"),
    }
}

fn entry_label(e: &Value) -> String {
    let owner = e["extra"]["role"]
        .as_str()
        .or_else(|| e["extra"]["function"].as_str());
    label(
        e["kind"].as_str().unwrap(),
        e["name"].as_str().unwrap(),
        owner,
    )
}

/// The labels of every resource the state records, sorted.
fn state_labels(st: &Value) -> Vec<String> {
    let mut l: Vec<String> = st["resources"]
        .as_object()
        .unwrap()
        .values()
        .map(entry_label)
        .collect();
    l.sort();
    l
}

/// One resource in moto: its label and what matters of its content.
type Held = Vec<(String, Value)>;

fn labels(held: &Held) -> Vec<String> {
    held.iter().map(|(l, _)| l.clone()).collect()
}

/// `Some` if the call found the resource, `None` if AWS says it does not exist; any other
/// error fails the test (it must not pass for "gone").
fn found<T, E, R>(what: &str, r: Result<T, SdkError<E, R>>) -> Option<T>
where
    E: ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            let code = e.code().unwrap_or_default();
            assert!(
                code.contains("NotFound") || code.contains("NoSuch"),
                "{what}: {e:?}"
            );
            None
        }
    }
}

fn url_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .expect("UTF-8 policy")
        .into_owned()
}

/// The Lambda configurations of a bucket's notification, or `None` when the bucket is gone.
async fn notifications(c: &Clients, bucket: &str) -> Option<Vec<Value>> {
    match c
        .s3
        .get_bucket_notification_configuration()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(o) => {
            let mut all: Vec<Value> = o
                .lambda_function_configurations()
                .iter()
                .map(|l| {
                    json!({
                        "id": l.id(),
                        "function": l.lambda_function_arn(),
                        "events": l.events().iter().map(|e| e.as_str()).collect::<Vec<_>>(),
                    })
                })
                .collect();
            // Anything else sent somewhere is not ours, and counts against us.
            all.extend(
                o.queue_configurations()
                    .iter()
                    .map(|q| json!({"queue": q.queue_arn()})),
            );
            all.extend(
                o.topic_configurations()
                    .iter()
                    .map(|t| json!({"topic": t.topic_arn()})),
            );
            Some(all)
        }
        // moto answers an empty configuration with XML the SDK cannot parse, with HTTP 200.
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 200) => Some(vec![]),
        Err(e) => found(&format!("notification of {bucket}"), Err::<(), _>(e)).map(|_| vec![]),
    }
}

/// The statements of a function's resource policy, or `None` when it has none (or is gone).
async fn permission_statements(c: &Clients, function: &str) -> Option<Vec<Value>> {
    let out = found(
        &format!("policy of {function}"),
        c.lambda.get_policy().function_name(function).send().await,
    )?;
    let policy: Value = serde_json::from_str(out.policy().unwrap_or("{}")).unwrap();
    Some(policy["Statement"].as_array().cloned().unwrap_or_default())
}

/// Everything moto holds in the stack's namespace, every kind `up` makes and the parts of
/// others (inline and attached role policies, permission statements, notification
/// configurations, subscriptions), one entry per resource, sorted, duplicates kept.
async fn holdings(c: &Clients, stack: &str) -> Held {
    let prefix = format!("{stack}-");
    let ours = |n: &str| n.starts_with(&prefix);
    let mut held: Held = Vec::new();

    let buckets = c.s3.list_buckets().send().await.expect("list buckets");
    for b in buckets
        .buckets()
        .iter()
        .filter_map(|b| b.name())
        .filter(|n| ours(n))
    {
        held.push((label("bucket", b, None), Value::Null));
        for n in notifications(c, b).await.unwrap_or_default() {
            held.push((label("notification", b, None), n));
        }
    }

    let roles: Vec<_> = c
        .iam
        .list_roles()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .expect("list roles");
    for r in roles.iter().map(|r| r.role_name()).filter(|n| ours(n)) {
        held.push((label("role", r, None), Value::Null));
        let inline = c
            .iam
            .list_role_policies()
            .role_name(r)
            .send()
            .await
            .expect("list role policies");
        for p in inline.policy_names() {
            let doc = c
                .iam
                .get_role_policy()
                .role_name(r)
                .policy_name(p)
                .send()
                .await
                .expect("get role policy");
            let doc: Value = serde_json::from_str(&url_decode(doc.policy_document())).unwrap();
            held.push((label("role-policy", p, Some(r)), doc));
        }
        let attached = c
            .iam
            .list_attached_role_policies()
            .role_name(r)
            .send()
            .await
            .expect("list attached role policies");
        for p in attached.attached_policies() {
            let arn = p.policy_arn().unwrap_or_default();
            held.push((label("attached-policy", arn, Some(r)), Value::Null));
        }
    }

    let repos: Vec<_> = c
        .ecr
        .describe_repositories()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .expect("list repositories");
    for r in repos
        .iter()
        .filter_map(|r| r.repository_name())
        .filter(|n| ours(n))
    {
        held.push((label("repository", r, None), Value::Null));
    }

    let projects = c
        .codebuild
        .list_projects()
        .send()
        .await
        .expect("list projects");
    for p in projects.projects().iter().filter(|p| ours(p)) {
        held.push((label("build-project", p, None), Value::Null));
    }

    for group_prefix in [
        format!("/aws/lambda/{prefix}"),
        format!("/aws/codebuild/{prefix}"),
    ] {
        let groups = c
            .logs
            .describe_log_groups()
            .log_group_name_prefix(&group_prefix)
            .send()
            .await
            .expect("list log groups");
        for g in groups.log_groups() {
            held.push((
                label("log-group", g.log_group_name().unwrap_or_default(), None),
                json!({"retention_days": g.retention_in_days()}),
            ));
        }
    }

    let tables: Vec<_> = c
        .dynamodb
        .list_tables()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .expect("list tables");
    for t in tables.iter().filter(|t| ours(t)) {
        held.push((label("table", t, None), Value::Null));
    }

    let topic_name = |arn: &str| arn.rsplit(':').next().unwrap_or_default().to_owned();
    let topics: Vec<_> = c
        .sns
        .list_topics()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .expect("list topics");
    for t in topics.iter().filter_map(|t| t.topic_arn()).map(topic_name) {
        if ours(&t) {
            held.push((label("topic", &t, None), Value::Null));
        }
    }
    let subs: Vec<_> = c
        .sns
        .list_subscriptions()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .expect("list subscriptions");
    for s in &subs {
        let topic = topic_name(s.topic_arn().unwrap_or_default());
        if ours(&topic) {
            held.push((
                label("subscription", s.endpoint().unwrap_or_default(), None),
                json!({"protocol": s.protocol(), "topic": topic}),
            ));
        }
    }

    for url in c
        .sqs
        .list_queues()
        .queue_name_prefix(&prefix)
        .send()
        .await
        .expect("list queues")
        .queue_urls()
    {
        let name = url.rsplit('/').next().unwrap_or_default();
        held.push((label("queue", name, None), Value::Null));
    }

    let functions: Vec<_> = c
        .lambda
        .list_functions()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .expect("list functions");
    for f in functions
        .iter()
        .filter_map(|f| f.function_name())
        .filter(|n| ours(n))
    {
        held.push((label("function", f, None), Value::Null));
        // A crash can land after another step's AddPermission and before its state write, and
        // the rerun adds the statement again. AWS refuses a second statement with the same id
        // (ResourceConflictException, which thumbctl counts as done); moto keeps both. So
        // identical duplicates are moto's and count once; statements that differ all count.
        let mut statements: Vec<Value> = Vec::new();
        for s in permission_statements(c, f).await.unwrap_or_default() {
            if !statements.contains(&s) {
                statements.push(s);
            }
        }
        for s in statements {
            let sid = s["Sid"].as_str().unwrap_or_default().to_owned();
            held.push((label("permission", &sid, Some(f)), s));
        }
        if let Some(conf) = found(
            &format!("invoke config of {f}"),
            c.lambda
                .get_function_event_invoke_config()
                .function_name(f)
                .send()
                .await,
        ) {
            held.push((
                label("invoke-config", f, None),
                json!({
                    "retries": conf.maximum_retry_attempts(),
                    "max_age_s": conf.maximum_event_age_in_seconds(),
                }),
            ));
        }
    }
    held.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| a.1.to_string().cmp(&b.1.to_string()))
    });
    held
}

fn norm(s: &str, stack: &str, suffix: &str) -> String {
    s.replace(suffix, "SFX").replace(stack, "STACK")
}

/// `held` with this stack's name and suffix replaced by placeholders, as text, so that two
/// stacks' holdings compare equal when they hold the same things with the same content.
fn normalised(held: &Held, stack: &str, suffix: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = held
        .iter()
        .map(|(l, v)| (norm(l, stack, suffix), norm(&v.to_string(), stack, suffix)))
        .collect();
    out.sort();
    out
}

fn suffix_of(st: &Value) -> String {
    st["suffix"].as_str().unwrap().to_owned()
}

/// Counts by kind (the first word of a label).
fn per_kind(labels: &[String]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for l in labels {
        *m.entry(l.split(' ').next().unwrap().to_owned())
            .or_default() += 1;
    }
    m
}

/// Whether moto still has the resource a state entry records, asked by its recorded name
/// (not by prefix, so a misnamed leftover cannot hide), for each kind `up` makes.
async fn still_there(c: &Clients, e: &Value) -> bool {
    let kind = e["kind"].as_str().unwrap();
    let name = e["name"].as_str().unwrap();
    let what = entry_label(e);
    match kind {
        "bucket" => found(&what, c.s3.head_bucket().bucket(name).send().await).is_some(),
        "role" => found(&what, c.iam.get_role().role_name(name).send().await).is_some(),
        "role-policy" => {
            let role = e["extra"]["role"].as_str().unwrap();
            let policy = c
                .iam
                .get_role_policy()
                .role_name(role)
                .policy_name(name)
                .send()
                .await;
            let listed = c.iam.list_role_policies().role_name(role).send().await;
            found(&what, policy).is_some()
                || found(&what, listed).is_some_and(|l| !l.policy_names().is_empty())
        }
        "repository" => found(
            &what,
            c.ecr
                .describe_repositories()
                .repository_names(name)
                .send()
                .await,
        )
        .is_some(),
        "log-group" => c
            .logs
            .describe_log_groups()
            .log_group_name_prefix(name)
            .send()
            .await
            .expect("list log groups")
            .log_groups()
            .iter()
            .any(|g| g.log_group_name() == Some(name)),
        "build-project" => !c
            .codebuild
            .batch_get_projects()
            .names(name)
            .send()
            .await
            .expect("get project")
            .projects()
            .is_empty(),
        "table" => found(
            &what,
            c.dynamodb.describe_table().table_name(name).send().await,
        )
        .is_some(),
        "topic" => found(
            &what,
            c.sns
                .get_topic_attributes()
                .topic_arn(e["arn"].as_str().unwrap())
                .send()
                .await,
        )
        .is_some(),
        "subscription" => match e["arn"].as_str() {
            Some(arn) => found(
                &what,
                c.sns
                    .get_subscription_attributes()
                    .subscription_arn(arn)
                    .send()
                    .await,
            )
            .is_some(),
            None => false,
        },
        "queue" => c
            .sqs
            .list_queues()
            .queue_name_prefix(name)
            .send()
            .await
            .expect("list queues")
            .queue_urls()
            .iter()
            .any(|u| u.rsplit('/').next() == Some(name)),
        "function" => found(
            &what,
            c.lambda.get_function().function_name(name).send().await,
        )
        .is_some(),
        "invoke-config" => found(
            &what,
            c.lambda
                .get_function_event_invoke_config()
                .function_name(name)
                .send()
                .await,
        )
        .is_some(),
        "permission" => {
            let function = e["extra"]["function"].as_str().unwrap();
            permission_statements(c, function)
                .await
                .is_some_and(|s| !s.is_empty())
        }
        "notification" => notifications(c, name).await.is_some_and(|n| !n.is_empty()),
        other => panic!("no leftover check for kind {other}: add one to still_there"),
    }
}

/// After `destroy`: nothing in the stack's namespace (`leftovers` and every kind of
/// `holdings`), and nothing the state ever recorded, asked by name.
async fn assert_nothing_left(c: &Clients, stack: &str, recorded: &Value, when: &str) {
    let left = leftovers(c, stack).await;
    assert!(left.is_empty(), "leaked after {when}: {left:?}");
    let held = holdings(c, stack).await;
    assert!(held.is_empty(), "leaked after {when}: {:?}", labels(&held));
    for (id, e) in recorded["resources"].as_object().unwrap() {
        assert!(
            !still_there(c, e).await,
            "leaked after {when}: {id} ({}) is still in moto",
            entry_label(e)
        );
    }
}

/// A clean `up` of the crash stack, read back from moto: the steps and what each crashed
/// stack must converge to.
struct Reference {
    ids: Vec<String>,
    held: Vec<(String, String)>,
}

async fn reference(c: &Clients, dir: &Path) -> Reference {
    let ids = step_ids(dir);
    let stack = stack_name("cref");
    ok(dir, &stack, &UP);
    let st = state_json(dir, &stack);
    let held = holdings(c, &stack).await;
    // moto holds exactly what the state records, each once, and nothing else...
    assert_eq!(labels(&held), state_labels(&st), "a clean up");
    // ...which is the design, kind by kind...
    let want: BTreeMap<String, usize> = EXPECTED_KINDS
        .iter()
        .map(|(k, n)| ((*k).to_owned(), *n))
        .collect();
    assert_eq!(per_kind(&labels(&held)), want, "what a clean up makes");
    // ...and the dry run plans exactly those steps.
    let recorded: BTreeSet<&String> = st["resources"].as_object().unwrap().keys().collect();
    let planned: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(planned, recorded, "dry run against a clean up's state");
    assert_eq!(ids.len(), expected_steps(), "{ids:?}");
    let normal = normalised(&held, &stack, &suffix_of(&st));
    ok(dir, &stack, &["destroy", "--yes"]);
    assert_nothing_left(c, &stack, &st, "destroying the reference").await;
    Reference { ids, held: normal }
}

async fn up_crash_matrix(phase: &str) {
    let c = clients().await;
    let dir = tempfile::tempdir().unwrap();
    let r = reference(&c, dir.path()).await;
    let mut covered = BTreeSet::new();
    for (i, id) in r.ids.iter().enumerate() {
        let stack = stack_name(&format!("cu{}{i}", &phase[..1]));
        let point = format!("up:{phase}:{id}");
        crash_at(dir.path(), &stack, &UP, &point);

        // At the crash: the step is recorded (planned until its state write)...
        let st = state_json(dir.path(), &stack);
        let entry = &st["resources"][id];
        assert!(entry.is_object(), "{id} must be recorded before the crash");
        let status = if phase == "recorded" {
            "created"
        } else {
            "planned"
        };
        assert_eq!(entry["status"], status, "at {point}: {st}");
        // ...and moto has its resource exactly when the create call was made, with the
        // content a clean up gives it.
        let suffix = suffix_of(&st);
        let mine = norm(&entry_label(entry), &stack, &suffix);
        let now: Vec<_> = normalised(&holdings(&c, &stack).await, &stack, &suffix)
            .into_iter()
            .filter(|(l, _)| *l == mine)
            .collect();
        let want: Vec<_> = match phase {
            "planned" => vec![],
            _ => r.held.iter().filter(|(l, _)| *l == mine).cloned().collect(),
        };
        assert_eq!(now, want, "moto at {point}");

        // The rerun converges: every step created, and moto holds exactly what the state
        // records, with exactly the content of a clean up (statements, subscriptions,
        // notification, retry settings), nothing twice.
        ok(dir.path(), &stack, &UP);
        let st = state_json(dir.path(), &stack);
        let resources = st["resources"].as_object().unwrap();
        assert!(
            resources.values().all(|e| e["status"] == "created"),
            "after rerun at {point}: {st}"
        );
        assert_eq!(resources.len(), r.ids.len(), "after rerun at {point}");
        let held = holdings(&c, &stack).await;
        assert_eq!(
            labels(&held),
            state_labels(&st),
            "moto after rerun at {point}"
        );
        assert_eq!(
            normalised(&held, &stack, &suffix),
            r.held,
            "moto after rerun at {point}, against a clean up"
        );

        ok(dir.path(), &stack, &["destroy", "--yes"]);
        assert_nothing_left(
            &c,
            &stack,
            &st,
            &format!("crash at {point}, rerun, destroy"),
        )
        .await;
        assert!(covered.insert(id.clone()), "{id} twice");
    }
    eprintln!(
        "crash matrix up:{phase}: {} of {} steps crashed at, rerun and destroyed; all converged to a clean up, 0 leaked",
        covered.len(),
        expected_steps()
    );
    assert_eq!(covered.len(), expected_steps());
}

#[tokio::test(flavor = "multi_thread")]
async fn up_crash_before_create_call() {
    up_crash_matrix("planned").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn up_crash_between_create_call_and_state_write() {
    up_crash_matrix("created").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn up_crash_after_state_write() {
    up_crash_matrix("recorded").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn destroy_crash_matrix() {
    let c = clients().await;
    let dir = tempfile::tempdir().unwrap();
    let r = reference(&c, dir.path()).await;
    let mut covered = BTreeSet::new();
    for phase in ["deleted", "recorded"] {
        for (i, id) in r.ids.iter().enumerate() {
            let stack = stack_name(&format!("cd{}{i}", &phase[..1]));
            ok(dir.path(), &stack, &UP);
            let before = state_json(dir.path(), &stack);
            let point = format!("destroy:{phase}:{id}");
            crash_at(dir.path(), &stack, &["destroy", "--yes"], &point);
            // At the crash the resource is gone from moto; the state still records it
            // until its state write.
            let entry = &before["resources"][id];
            let mine = entry_label(entry);
            let held = holdings(&c, &stack).await;
            assert!(
                !labels(&held).contains(&mine),
                "{mine} still in moto at {point}"
            );
            assert!(
                !still_there(&c, entry).await,
                "{mine} still in moto at {point}"
            );
            let st = state_json(dir.path(), &stack);
            assert_eq!(
                st["resources"].get(id).is_some(),
                phase == "deleted",
                "at {point}: {st}"
            );
            // The state is still valid and the rerun finishes the job.
            ok(dir.path(), &stack, &["status", "--output", "json"]);
            ok(dir.path(), &stack, &["destroy", "--yes"]);
            assert_nothing_left(&c, &stack, &before, &format!("crash at {point}, rerun")).await;
            assert!(!dir.path().join(format!("{stack}.json")).exists());
            assert!(covered.insert(point.clone()), "{point} twice");
        }
    }
    eprintln!(
        "crash matrix destroy: {} of {} crash points (2 x {} steps) covered, all converged, 0 leaked",
        covered.len(),
        2 * expected_steps(),
        expected_steps()
    );
    assert_eq!(covered.len(), 2 * expected_steps());
}

#[tokio::test(flavor = "multi_thread")]
async fn second_process_on_the_same_stack_is_refused_and_other_stacks_run_in_parallel() {
    let c = clients().await;
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("lock");
    let other = stack_name("lock-other");
    // The first `up` pauses inside a step, holding the stack's lock, for as long as the test
    // needs (the stall never runs out here; the test ends it by quitting `up`), so the second
    // process meets the lock whatever the machine's speed: no time window.
    let mut first = up_stalled_at_function(dir.path(), &stack, 600_000);
    let second = thumbctl(dir.path(), &stack, &["destroy", "--yes"]);
    assert_eq!(second.status.code(), Some(1));
    let err = stderr(&second);
    assert!(
        err.contains("in use by another thumbctl") && err.contains("thumbctl up"),
        "{err}"
    );
    // A different stack in the same state directory is not held up.
    ok(dir.path(), &other, &["up", "--image-uri", IMAGE]);
    // The first `up` is still there, holding its lock, until it is told to quit.
    assert!(
        first.try_wait().unwrap().is_none(),
        "the first up ended early"
    );
    let mut err_pipe = first.stderr.take().unwrap();
    sigint(&first);
    read_until(&mut err_pipe, &mut Vec::new(), "press Ctrl-C again");
    sigint(&first);
    assert_eq!(first.wait().unwrap().code(), Some(130));
    // Its lock went with it: the stack is usable again.
    ok(dir.path(), &stack, &["up"]);
    for s in [&stack, &other] {
        ok(dir.path(), s, &["destroy", "--yes"]);
        assert!(leftovers(&c, s).await.is_empty());
    }
}

/// Starts `up` with the function step stalled for `ms` before its create call, and returns
/// once the state file records that step as planned: the stall is under way and the step has
/// made no call. Waits for exactly that (the process is running `up`'s steps, so its interrupt
/// handler, installed before the first step, is in place), however long it takes; if `up`
/// ends first, that is the failure.
fn up_stalled_at_function(dir: &Path, stack: &str, ms: u32) -> std::process::Child {
    let mut cmd = thumbctl_cmd(dir, stack, &["up", "--image-uri", IMAGE]);
    cmd.env("FAILPOINTS", format!("up:planned:function=sleep({ms})"));
    let mut child = cmd
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let state = dir.join(format!("{stack}.json"));
    loop {
        // The state file is replaced atomically: what parses is a whole state.
        let planned = std::fs::read_to_string(&state)
            .ok()
            .and_then(|s| serde_json::from_str::<Value>(&s).ok())
            .is_some_and(|st| st["resources"]["function"]["status"] == "planned");
        if planned {
            return child;
        }
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "up ended ({:?}) before its function step was planned: {}",
                out.status,
                stderr(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sigint(child: &std::process::Child) {
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_finishes_the_call_in_flight_saves_state_and_a_rerun_finishes() {
    let c = clients().await;
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("sigint");
    let child = up_stalled_at_function(dir.path(), &stack, 1500);
    sigint(&child);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("Rerun `thumbctl up`"), "{err}");
    // The step in flight finished and was recorded; nothing after it started.
    let st = state_json(dir.path(), &stack);
    assert_eq!(st["resources"]["function"]["status"], "created", "{st}");
    assert!(
        st["resources"].get("notification").is_none(),
        "no new step may start after Ctrl-C"
    );
    let function = st["resources"]["function"]["name"].as_str().unwrap();
    c.lambda
        .get_function()
        .function_name(function)
        .send()
        .await
        .expect("the function in flight was created");
    ok(dir.path(), &stack, &["up"]);
    assert_eq!(
        state_json(dir.path(), &stack)["resources"]["notification"]["status"],
        "created"
    );
    ok(dir.path(), &stack, &["destroy", "--yes"]);
    assert!(leftovers(&c, &stack).await.is_empty());
}

/// Reads `pipe` into `seen` until it contains `line`; fails if the pipe closes first.
fn read_until(pipe: &mut impl std::io::Read, seen: &mut Vec<u8>, line: &str) {
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(seen).contains(line) {
        let n = pipe.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "ended before saying {line:?}: {}",
            String::from_utf8_lossy(seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn second_ctrl_c_quits_at_once_and_leaves_a_valid_state() {
    let c = clients().await;
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("sigint2");
    // The function step stalls long before its create call: only quitting at once ends the
    // process without that call, which is what the assertions below tell apart. Each signal
    // is sent on an event the process shows, never after a guessed delay: the first once the
    // state records the stalled step as planned, the second once the first was handled.
    let mut child = up_stalled_at_function(dir.path(), &stack, 60_000);
    let mut err_pipe = child.stderr.take().unwrap();
    sigint(&child);
    let mut seen = Vec::new();
    read_until(&mut err_pipe, &mut seen, "press Ctrl-C again");
    sigint(&child);
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err_pipe, &mut rest).unwrap();
    let err = format!("{}{rest}", String::from_utf8_lossy(&seen));
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("quitting now"), "{err}");

    // The stalled step never made its call; the state file is whole and says so.
    let st = state_json(dir.path(), &stack);
    assert_eq!(st["resources"]["function"]["status"], "planned", "{st}");
    let function = st["resources"]["function"]["name"].as_str().unwrap();
    assert!(
        c.lambda
            .get_function()
            .function_name(function)
            .send()
            .await
            .is_err(),
        "quitting at once must not wait for the stalled step's create call"
    );
    // Its dependency was created and recorded before it started.
    assert_eq!(st["resources"]["lambda-role"]["status"], "created", "{st}");

    // And it is usable: a rerun finishes, destroy leaves nothing.
    ok(dir.path(), &stack, &["up"]);
    ok(dir.path(), &stack, &["destroy", "--yes"]);
    assert!(leftovers(&c, &stack).await.is_empty());
}
