//! Crash-resume: `up` and `destroy` killed at every step (cargo feature `failpoints`), then
//! rerun. The stack must converge to exactly what a clean `up` makes, and after `destroy`
//! nothing of it may be left in moto, of any kind.
//!
//! What "every step" means is not taken from thumbctl alone: a clean `up` of a reference stack
//! is read back from moto, kind by kind, and must match the design (`EXPECTED_KINDS`); the dry
//! run, the reference's state and moto must agree on those steps; and each matrix counts the
//! (step, crash point) pairs it really crashed at (thumbctl names the point it stops at), so a
//! skipped step or a crash point that never fires fails the test.
//!
//! What an option adds is crashed the same way on its own, smaller matrices: the CDN's steps
//! (`up --cdn`) and the batch role (`reprocess --batch`), against a clean run of that stack;
//! and the self-ship push (`up` without an image) at the points inside it where a crash leaves
//! a partial image in the registry.
#![cfg(feature = "failpoints")]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use aws_sdk_s3::error::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde_json::{Value, json};

use common::registry::{LocalRegistry, OCI_MANIFEST, sha256};
use common::*;

/// The Sid of the bucket-policy statement the CDN step owns (src/stack.rs).
const CDN_POLICY_SID: &str = "ThumbctlCloudFrontReadsThumbnails";

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
    step_ids_of(dir, &UP)
}

/// Every step id `up` with `up_args` runs, read from a dry run of a new stack.
fn step_ids_of(dir: &Path, up_args: &[&str]) -> Vec<String> {
    let mut args = up_args.to_vec();
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

/// The statements of a bucket's policy that the CDN's step owns (by its Sid).
async fn cdn_statements(c: &Clients, bucket: &str) -> Vec<Value> {
    let Some(p) = found(
        &format!("policy of {bucket}"),
        c.s3.get_bucket_policy().bucket(bucket).send().await,
    ) else {
        return vec![];
    };
    let doc: Value = serde_json::from_str(p.policy().unwrap_or("{}")).expect("policy JSON");
    let all = match &doc["Statement"] {
        Value::Array(a) => a.clone(),
        Value::Null => vec![],
        one => vec![one.clone()],
    };
    all.into_iter()
        .filter(|s| s["Sid"] == CDN_POLICY_SID)
        .collect()
}

/// CloudFront distributions whose comment starts with `comment_prefix` (a stack's are found
/// as `leftovers` finds them, by the comment thumbctl writes): id and comment.
async fn our_distributions(c: &Clients, comment_prefix: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = c
            .cloudfront
            .list_distributions()
            .set_marker(marker.clone())
            .send()
            .await
            .expect("list distributions");
        let Some(list) = page.distribution_list() else {
            break;
        };
        for d in list.items() {
            if d.comment().starts_with(comment_prefix) {
                out.push((d.id().to_owned(), d.comment().to_owned()));
            }
        }
        match list.next_marker() {
            Some(m) if list.is_truncated() && !m.is_empty() => marker = Some(m.to_owned()),
            _ => break,
        }
    }
    out
}

/// Origin access controls named `<prefix>…-cdn` (a stack's: `<stack>-…-cdn`): id, name, and
/// their settings.
async fn our_origin_access_controls(c: &Clients, prefix: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = c
            .cloudfront
            .list_origin_access_controls()
            .set_marker(marker.clone())
            .send()
            .await
            .expect("list origin access controls");
        let Some(list) = page.origin_access_control_list() else {
            break;
        };
        for o in list.items() {
            if o.name().starts_with(prefix) && o.name().ends_with("-cdn") {
                out.push((o.id().to_owned(), o.name().to_owned(), format!("{o:?}")));
            }
        }
        match list.next_marker() {
            Some(m) if list.is_truncated() && !m.is_empty() => marker = Some(m.to_owned()),
            _ => break,
        }
    }
    out
}

/// Everything moto holds in the stack's namespace, every kind `up` makes and the parts of
/// others (inline and attached role policies, permission statements, notification
/// configurations, subscriptions), one entry per resource, sorted, duplicates kept.
async fn holdings(c: &Clients, stack: &str) -> Held {
    let prefix = format!("{stack}-");
    let ours = |n: &str| n.starts_with(&prefix);
    let mut held: Held = Vec::new();

    // The CDN's ids are random: its distribution's and origin access control's ids are
    // replaced by placeholders wherever they appear (the bucket policy names the
    // distribution), so two stacks compare on what the CDN is, not on its ids.
    let distributions = our_distributions(c, &format!("thumbctl stack {stack}:")).await;
    let oacs = our_origin_access_controls(c, &prefix).await;
    let ids: Vec<String> = distributions
        .iter()
        .map(|d| d.0.clone())
        .chain(oacs.iter().map(|o| o.0.clone()))
        .collect();
    let unid = |text: String| {
        ids.iter()
            .fold(text, |t, id| t.replace(id.as_str(), "CDN-ID"))
    };
    for (id, comment) in &distributions {
        // The comment ends with the distribution's name in thumbctl's terms: `(… -cdn)`.
        let name = comment
            .rsplit_once('(')
            .map(|(_, n)| n.trim_end_matches(')'))
            .unwrap_or(comment);
        let conf = c
            .cloudfront
            .get_distribution_config()
            .id(id)
            .send()
            .await
            .expect("get distribution config");
        let conf = format!("{:?}", conf.distribution_config());
        held.push((label("distribution", name, None), Value::String(unid(conf))));
    }
    for (_, name, summary) in &oacs {
        held.push((
            label("origin-access-control", name, None),
            Value::String(unid(summary.clone())),
        ));
    }

    let buckets = c.s3.list_buckets().send().await.expect("list buckets");
    for b in buckets
        .buckets()
        .iter()
        .filter_map(|b| b.name())
        .filter(|n| ours(n))
    {
        held.push((label("bucket", b, None), Value::Null));
        for st in cdn_statements(c, b).await {
            let st: Value = serde_json::from_str(&unid(st.to_string())).unwrap();
            held.push((label("bucket-policy", b, None), st));
        }
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
    // The CDN's ids appear in other kinds' content too (the function role's invalidation
    // statement names the distribution): placeholders there as well.
    let mut held: Held = held
        .into_iter()
        .map(|(l, v)| {
            let text = unid(v.to_string());
            (
                l,
                serde_json::from_str(&text).unwrap_or(Value::String(text)),
            )
        })
        .collect();
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
        "bucket-policy" => !cdn_statements(c, name).await.is_empty(),
        "distribution" => {
            let comment = e["extra"]["comment"].as_str().unwrap();
            !our_distributions(c, comment).await.is_empty()
        }
        "origin-access-control" => our_origin_access_controls(c, name)
            .await
            .iter()
            .any(|(_, n, _)| n == name),
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
    /// The steps the matrix crashes at.
    ids: Vec<String>,
    /// How many steps the stack has in all.
    total: usize,
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
    Reference {
        total: ids.len(),
        ids,
        held: normal,
    }
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
        converges_after_crash(&c, dir.path(), &stack, &r, id, phase, &UP).await;
        assert!(covered.insert(id.clone()), "{id} twice");
    }
    eprintln!(
        "crash matrix up:{phase}: {} of {} steps crashed at, rerun and destroyed; all converged to a clean up, 0 leaked",
        covered.len(),
        expected_steps()
    );
    assert_eq!(covered.len(), expected_steps());
}

/// After a crash of `stack` at `up:<phase>:<id>`: the state and moto are as the crash point
/// says, the rerun (`up` with `rerun`) converges to the reference `r`, and destroy leaves
/// nothing.
async fn converges_after_crash(
    c: &Clients,
    dir: &Path,
    stack: &str,
    r: &Reference,
    id: &str,
    phase: &str,
    rerun: &[&str],
) {
    let point = format!("up:{phase}:{id}");
    {
        // At the crash: the step is recorded (planned until its state write)...
        let st = state_json(dir, stack);
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
        let mine = norm(&entry_label(entry), stack, &suffix);
        let now: Vec<_> = normalised(&holdings(c, stack).await, stack, &suffix)
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
        ok(dir, stack, rerun);
        let st = state_json(dir, stack);
        let resources = st["resources"].as_object().unwrap();
        assert!(
            resources.values().all(|e| e["status"] == "created"),
            "after rerun at {point}: {st}"
        );
        assert_eq!(resources.len(), r.total, "after rerun at {point}");
        let held = holdings(c, stack).await;
        assert_eq!(
            labels(&held),
            state_labels(&st),
            "moto after rerun at {point}"
        );
        assert_eq!(
            normalised(&held, stack, &suffix),
            r.held,
            "moto after rerun at {point}, against a clean up"
        );

        ok(dir, stack, &["destroy", "--yes"]);
        assert_nothing_left(c, stack, &st, &format!("crash at {point}, rerun, destroy")).await;
    }
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
            let point = destroy_crashed_at(&c, dir.path(), &stack, id, phase).await;
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

/// Crashes the `destroy` of the made stack `stack` at `destroy:<phase>:<id>`: the resource is
/// gone from moto at the crash, the state records it until its state write, and the rerun
/// finishes with nothing left. Returns the crash point.
async fn destroy_crashed_at(c: &Clients, dir: &Path, stack: &str, id: &str, phase: &str) -> String {
    let before = state_json(dir, stack);
    let point = format!("destroy:{phase}:{id}");
    crash_at(dir, stack, &["destroy", "--yes"], &point);
    // At the crash the resource is gone from moto; the state still records it
    // until its state write.
    let entry = &before["resources"][id];
    let mine = entry_label(entry);
    let held = holdings(c, stack).await;
    assert!(
        !labels(&held).contains(&mine),
        "{mine} still in moto at {point}"
    );
    assert!(
        !still_there(c, entry).await,
        "{mine} still in moto at {point}"
    );
    let st = state_json(dir, stack);
    assert_eq!(
        st["resources"].get(id).is_some(),
        phase == "deleted",
        "at {point}: {st}"
    );
    // The state is still valid and the rerun finishes the job.
    ok(dir, stack, &["status", "--output", "json"]);
    ok(dir, stack, &["destroy", "--yes"]);
    assert_nothing_left(c, stack, &before, &format!("crash at {point}, rerun")).await;
    assert!(!dir.join(format!("{stack}.json")).exists());
    point
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

// ------------------------------------------------------------ the CDN's steps, the batch role

/// The crash stack with a CDN in front of its thumbnails (`up --cdn`).
const UP_CDN: [&str; 6] = [
    "up",
    "--image-uri",
    IMAGE,
    "--notify-email",
    "ops@example.com",
    "--cdn",
];

/// The steps beyond the crash stack's that an option adds, and what they make by kind. These
/// matrices crash only at those steps: the crash stack's own are covered above, and each
/// crash here still runs (and checks) every step of the stack around it.
#[derive(Clone, Copy, Debug)]
enum Extra {
    /// `up --cdn`: origin access control, distribution, the bucket-policy statement.
    Cdn,
    /// `reprocess --batch`: the batch role and its policy, made through `engine::up_only`.
    Batch,
}

impl Extra {
    fn steps(self) -> &'static [&'static str] {
        match self {
            Extra::Cdn => &["cdn-access", "cdn", "cdn-bucket-policy"],
            Extra::Batch => &["batch-role", "batch-role-policy"],
        }
    }

    fn kinds(self) -> &'static [(&'static str, usize)] {
        match self {
            Extra::Cdn => &[
                ("bucket-policy", 1),
                ("distribution", 1),
                ("origin-access-control", 1),
            ],
            Extra::Batch => &[("role", 1), ("role-policy", 1)],
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Extra::Cdn => "n",
            Extra::Batch => "b",
        }
    }

    /// How the stack is brought up again after a crash: for the batch role, the state's
    /// settings (batch operations on, written before its steps run) make plain `up` run them.
    fn up(self) -> &'static [&'static str] {
        match self {
            Extra::Cdn => &UP_CDN,
            Extra::Batch => &UP,
        }
    }

    /// The command that runs the extra steps.
    fn command(self) -> &'static [&'static str] {
        match self {
            Extra::Cdn => &UP_CDN,
            Extra::Batch => &["reprocess", "--batch"],
        }
    }

    /// Brings a new stack to where `command` runs the extra steps: for the batch role, the
    /// stack and one original, so `reprocess --batch` has a manifest to hand to a job.
    async fn prepare(self, c: &Clients, dir: &Path, stack: &str) {
        if let Extra::Batch = self {
            ok(dir, stack, &UP);
            let st = state_json(dir, stack);
            let src = st["resources"]["source-bucket"]["name"].as_str().unwrap();
            c.s3.put_object()
                .bucket(src)
                .key("a.png")
                .body(b"not looked at".to_vec().into())
                .send()
                .await
                .expect("put an original");
        }
    }

    /// Runs `command` to its end: `up --cdn` succeeds; `reprocess --batch` makes the role,
    /// then moto (no S3 Batch Operations) refuses the job, which this matrix does not need.
    fn run_clean(self, dir: &Path, stack: &str) {
        match self {
            Extra::Cdn => {
                ok(dir, stack, self.command());
            }
            Extra::Batch => {
                let out = thumbctl(dir, stack, self.command());
                let err = stderr(&out);
                assert_eq!(out.status.code(), Some(1), "{err}");
                assert!(err.contains("no S3 Batch Operations"), "{err}");
            }
        }
    }
}

/// A clean run of the extra's stack, read back from moto: the crash stack's steps plus
/// exactly the extra's, each made once, with the design's kinds.
async fn extra_reference(c: &Clients, dir: &Path, extra: Extra) -> Reference {
    let base = step_ids(dir);
    let stack = stack_name(&format!("cref{}", extra.tag()));
    extra.prepare(c, dir, &stack).await;
    extra.run_clean(dir, &stack);
    let st = state_json(dir, &stack);
    let held = holdings(c, &stack).await;
    assert_eq!(labels(&held), state_labels(&st), "a clean {extra:?} stack");
    let mut want: BTreeMap<String, usize> = EXPECTED_KINDS
        .iter()
        .map(|(k, n)| ((*k).to_owned(), *n))
        .collect();
    for (k, n) in extra.kinds() {
        *want.entry((*k).to_owned()).or_default() += n;
    }
    assert_eq!(per_kind(&labels(&held)), want, "a clean {extra:?} stack");
    let recorded: BTreeSet<String> = st["resources"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert!(
        base.iter().all(|id| recorded.contains(id)),
        "{recorded:?} against {base:?}"
    );
    let ids: Vec<String> = recorded
        .iter()
        .filter(|id| !base.contains(id))
        .cloned()
        .collect();
    let mut steps: Vec<String> = extra.steps().iter().map(|s| (*s).to_owned()).collect();
    steps.sort();
    assert_eq!(ids, steps, "the steps {extra:?} adds");
    if let Extra::Cdn = extra {
        let planned: BTreeSet<String> = step_ids_of(dir, &UP_CDN).into_iter().collect();
        assert_eq!(planned, recorded, "dry run of up --cdn against a clean one");
    }
    let normal = normalised(&held, &stack, &suffix_of(&st));
    ok(dir, &stack, &["destroy", "--yes"]);
    assert_nothing_left(
        c,
        &stack,
        &st,
        &format!("destroying the {extra:?} reference"),
    )
    .await;
    Reference {
        ids,
        total: recorded.len(),
        held: normal,
    }
}

/// Every extra step x every up crash point: crash, rerun, converge, destroy, nothing left.
async fn extra_up_crash_matrix(c: &Clients, dir: &Path, extra: Extra, r: &Reference) {
    let mut covered = BTreeSet::new();
    for phase in ["planned", "created", "recorded"] {
        for (i, id) in r.ids.iter().enumerate() {
            let stack = stack_name(&format!("x{}{}{i}", extra.tag(), &phase[..1]));
            let point = format!("up:{phase}:{id}");
            extra.prepare(c, dir, &stack).await;
            crash_at(dir, &stack, extra.command(), &point);
            converges_after_crash(c, dir, &stack, r, id, phase, extra.up()).await;
            assert!(covered.insert(point.clone()), "{point} twice");
        }
    }
    eprintln!(
        "crash matrix up, {extra:?}: {} crash points (3 x {} steps), all converged, 0 leaked",
        covered.len(),
        extra.steps().len()
    );
    assert_eq!(covered.len(), 3 * extra.steps().len());
}

/// Every extra step x every destroy crash point, and for the CDN the point inside its
/// delete (disabled, not yet deleted).
async fn extra_destroy_crash_matrix(c: &Clients, dir: &Path, extra: Extra, r: &Reference) {
    let made = |stack: String| async move {
        extra.prepare(c, dir, &stack).await;
        extra.run_clean(dir, &stack);
        stack
    };
    let mut covered = BTreeSet::new();
    for phase in ["deleted", "recorded"] {
        for (i, id) in r.ids.iter().enumerate() {
            let stack = made(stack_name(&format!("y{}{}{i}", extra.tag(), &phase[..1]))).await;
            let point = destroy_crashed_at(c, dir, &stack, id, phase).await;
            assert!(covered.insert(point.clone()), "{point} twice");
        }
    }
    if let Extra::Cdn = extra {
        // Disabled and not yet deleted: the distribution is still in moto, still recorded,
        // and the rerun deletes it.
        let stack = made(stack_name("ynd")).await;
        let before = state_json(dir, &stack);
        let point = "destroy:disabled:cdn";
        crash_at(dir, &stack, &["destroy", "--yes"], point);
        let entry = &before["resources"]["cdn"];
        assert!(still_there(c, entry).await, "deleted already at {point}");
        let st = state_json(dir, &stack);
        assert!(st["resources"].get("cdn").is_some(), "at {point}: {st}");
        ok(dir, &stack, &["destroy", "--yes"]);
        assert_nothing_left(c, &stack, &before, &format!("crash at {point}, rerun")).await;
        assert!(covered.insert(point.to_owned()));
    }
    eprintln!(
        "crash matrix destroy, {extra:?}: {} crash points, all converged, 0 leaked",
        covered.len()
    );
    let inner = usize::from(matches!(extra, Extra::Cdn));
    assert_eq!(covered.len(), 2 * extra.steps().len() + inner);
}

#[tokio::test(flavor = "multi_thread")]
async fn cdn_steps_crash_matrix() {
    extra_crash_matrices(Extra::Cdn).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_role_crash_matrix() {
    extra_crash_matrices(Extra::Batch).await;
}

/// One reference, then the extra's up and destroy matrices against it.
async fn extra_crash_matrices(extra: Extra) {
    let c = clients().await;
    let dir = tempfile::tempdir().unwrap();
    let r = extra_reference(&c, dir.path(), extra).await;
    extra_up_crash_matrix(&c, dir.path(), extra, &r).await;
    extra_destroy_crash_matrix(&c, dir.path(), extra, &r).await;
}

// ------------------------------------------------------------ the self-ship push

/// `up` without an image pushes this thumbctl to the stack's repository (a local registry
/// standing in for ECR). Crashed where the push leaves partial state: blobs uploaded and no
/// manifest; the image complete and nothing recorded (so no function points at it; the
/// function's own step is in the matrices above). Each rerun must complete the image without
/// uploading again and point the function at its digest, a rerun after that pushes nothing,
/// and destroy leaves nothing. Each `up` here reads the ~200 MB test binary (tens of seconds
/// on a busy machine), so there is one push per point and one extra rerun in all.
#[tokio::test(flavor = "multi_thread")]
async fn self_ship_push_crash_points_converge() {
    let c = clients().await;
    let reg = LocalRegistry::start();
    let dir = tempfile::tempdir().unwrap();
    let args = ["up", "--registry-url", &reg.url, "--output", "json"];
    let mut digests = BTreeSet::new();
    let points = ["push:blobs-uploaded", "ship:manifest-pushed"];
    for (i, point) in points.iter().enumerate() {
        let stack = stack_name(&format!("cs{i}"));
        crash_at(dir.path(), &stack, &args, point);

        // At the crash: the repository is recorded (it is made before the push), and the
        // registry and the state are as partial as the point says.
        let st = state_json(dir.path(), &stack);
        let repo = st["resources"]["repository"]["name"]
            .as_str()
            .unwrap()
            .to_owned();
        let recorded_image = st["settings"]["image_uri"].as_str().map(str::to_owned);
        let tags_at_crash = usize::from(*point == "ship:manifest-pushed");
        assert_eq!(reg.tags(&repo).await.len(), tags_at_crash, "at {point}");
        assert_eq!(recorded_image, None, "at {point}: {st}");
        assert!(
            st["resources"].get("function").is_none(),
            "at {point}: {st}"
        );

        // The rerun completes it: nothing uploaded again (the blobs are there), the image
        // complete in the registry, the function on its digest.
        let up: Value = serde_json::from_slice(&ok(dir.path(), &stack, &args).stdout).unwrap();
        assert_eq!(up["image"]["uploaded_bytes"], 0, "rerun at {point}: {up}");
        let st = state_json(dir.path(), &stack);
        let image_uri = st["settings"]["image_uri"].as_str().unwrap().to_owned();
        let (_, digest) = image_uri.split_once('@').expect("a digest URI");
        assert_eq!(up["image"]["digest"], digest, "rerun at {point}: {up}");
        let f = c
            .lambda
            .get_function()
            .function_name(st["resources"]["function"]["name"].as_str().unwrap())
            .send()
            .await
            .expect("the function after the rerun");
        assert_eq!(
            f.code().and_then(|c| c.image_uri()),
            Some(image_uri.as_str()),
            "rerun at {point}"
        );
        let tag = up["image"]["tag"].as_str().unwrap();
        assert_eq!(
            reg.tags(&repo).await,
            vec![tag.to_owned()],
            "rerun at {point}"
        );
        let (status, manifest) = reg
            .get(
                &format!("/v2/{repo}/manifests/{digest}"),
                Some(OCI_MANIFEST),
            )
            .await;
        assert_eq!(status, 200, "manifest after rerun at {point}");
        assert_eq!(sha256(&manifest), digest);
        let m: Value = serde_json::from_slice(&manifest).unwrap();
        let blobs = std::iter::once(&m["config"]).chain(m["layers"].as_array().unwrap());
        for b in blobs {
            let blob = b["digest"].as_str().unwrap();
            assert_eq!(
                reg.head(&format!("/v2/{repo}/blobs/{blob}")).await,
                200,
                "blob {blob} after rerun at {point}"
            );
        }

        // After the rerun that put the manifest, the next finds the image by its tag and
        // pushes nothing, changes nothing. (After the other point, the rerun above was that.)
        if *point == "push:blobs-uploaded" {
            let again: Value =
                serde_json::from_slice(&ok(dir.path(), &stack, &args).stdout).unwrap();
            assert_eq!(again["image"]["uploaded_bytes"], 0, "{again}");
            assert_eq!(again["image"]["digest"], digest, "{again}");
            assert_eq!(again["created"], 0, "{again}");
            assert_eq!(again["updated"], 0, "{again}");
            assert_eq!(reg.tags(&repo).await, vec![tag.to_owned()], "{again}");
            assert_eq!(
                state_json(dir.path(), &stack)["settings"]["image_uri"],
                image_uri.as_str()
            );
        }
        digests.insert(digest.to_owned());

        ok(dir.path(), &stack, &["destroy", "--yes"]);
        assert_nothing_left(
            &c,
            &stack,
            &st,
            &format!("crash at {point}, rerun, destroy"),
        )
        .await;
    }
    // The same binary is the same image, however its push was interrupted.
    assert_eq!(digests.len(), 1, "{digests:?}");
}
