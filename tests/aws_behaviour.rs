//! AWS's real behaviour, where moto is kinder: `up`, a rerun and `destroy` through
//! `scripts/aws_proxy.py`, which answers the way AWS does while IAM propagates, a function is
//! Pending or updating, a fresh bucket settles, a permission propagates, a table is CREATING,
//! an answer is lost on the wire, or a subscription was never confirmed. Each must succeed on
//! its first run, moto must hold exactly the pipeline afterwards (and nothing after
//! `destroy`), and the behaviour must have fired: a test whose fault never happened proves
//! nothing.

mod common;

use std::path::Path;
use std::process::Stdio;

use common::aws_proxy::AwsProxy;
use common::*;

/// What moto holds of a stack after `up`: the function, S3's permission to invoke it, the
/// notification naming it, and both buckets. Read from moto directly, not through the proxy.
async fn assert_pipeline(c: &Clients, dir: &Path, stack: &str) {
    let st = state_json(dir, stack);
    let name = |id: &str| {
        st["resources"][id]["name"]
            .as_str()
            .unwrap_or_else(|| panic!("no {id} in state: {st}"))
            .to_owned()
    };
    for (id, e) in st["resources"].as_object().unwrap() {
        assert_eq!(e["status"], "created", "{id} not recorded as created");
    }
    let function = name("function");
    let conf = c
        .lambda
        .get_function_configuration()
        .function_name(&function)
        .send()
        .await
        .expect("the function exists in moto");
    let arn = conf.function_arn().unwrap().to_owned();
    let policy = c
        .lambda
        .get_policy()
        .function_name(&function)
        .send()
        .await
        .expect("the function has a policy");
    let policy: serde_json::Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    assert!(
        policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["Sid"] == "thumbctl-s3-invoke"),
        "S3's invoke permission is missing: {policy}"
    );
    c.lambda
        .get_function_event_invoke_config()
        .function_name(&function)
        .send()
        .await
        .expect("the retry settings exist");
    let src = name("source-bucket");
    let n =
        c.s3.get_bucket_notification_configuration()
            .bucket(&src)
            .send()
            .await
            .expect("notification configuration");
    assert!(
        n.lambda_function_configurations()
            .iter()
            .any(|l| l.lambda_function_arn() == arn),
        "the source bucket does not notify {arn}"
    );
    for id in ["source-bucket", "dest-bucket"] {
        c.s3.get_bucket_encryption()
            .bucket(name(id))
            .send()
            .await
            .expect("bucket settings applied");
    }
    c.dynamodb
        .describe_table()
        .table_name(name("table"))
        .send()
        .await
        .expect("the table exists");
}

/// `up`, a rerun and `destroy`, each succeeding on its first run through the proxy; moto
/// holds the pipeline after `up` and nothing after `destroy`.
async fn round_trip(proxy: &AwsProxy, prefix: &str, extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name(prefix);
    let c = clients().await;
    let mut up = vec!["up", "--image-uri", IMAGE];
    up.extend_from_slice(extra);
    proxy.ok(dir.path(), &stack, &up);
    assert_pipeline(&c, dir.path(), &stack).await;
    proxy.ok(dir.path(), &stack, &up);
    assert_pipeline(&c, dir.path(), &stack).await;
    proxy.ok(dir.path(), &stack, &["destroy", "--yes"]);
    assert_eq!(leftovers(&c, &stack).await, Vec::<String>::new());
    assert!(
        !dir.path().join(format!("{stack}.json")).exists(),
        "state file left after destroy"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn iam_propagation_is_waited_out() {
    // Each role is refused for 1.5 s after it was created (and, for the on-failure queue,
    // after its policy was written), on every call: a retry that gives up after two quick
    // attempts fails here.
    let proxy = AwsProxy::start("iam-propagation", 1.5);
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("iamprop");
    let c = clients().await;
    let up = ["up", "--image-uri", IMAGE];
    proxy.ok(dir.path(), &stack, &up);
    assert_pipeline(&c, dir.path(), &stack).await;
    assert!(proxy.fired("iam-propagation:function").await >= 1);
    assert!(proxy.fired("iam-propagation:project").await >= 1);

    // The role's policy and the retry settings removed behind thumbctl's back: the rerun
    // writes the policy again and sets the on-failure queue right after, which Lambda refuses
    // until the new policy has propagated.
    let st = state_json(dir.path(), &stack);
    let res = |id: &str| st["resources"][id]["name"].as_str().unwrap().to_owned();
    c.iam
        .delete_role_policy()
        .role_name(res("lambda-role"))
        .policy_name(res("lambda-role-policy"))
        .send()
        .await
        .expect("remove the role's policy");
    c.lambda
        .delete_function_event_invoke_config()
        .function_name(res("function"))
        .send()
        .await
        .expect("remove the retry settings");
    proxy.ok(dir.path(), &stack, &up);
    assert!(
        proxy.fired("iam-propagation:destination").await >= 1,
        "{}",
        proxy.counts().await
    );
    assert_pipeline(&c, dir.path(), &stack).await;
    c.iam
        .get_role_policy()
        .role_name(res("lambda-role"))
        .policy_name(res("lambda-role-policy"))
        .send()
        .await
        .expect("the role's policy is back");
    proxy.ok(dir.path(), &stack, &["destroy", "--yes"]);
    assert_eq!(leftovers(&c, &stack).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn pending_and_updating_functions_are_waited_for() {
    let proxy = AwsProxy::start("function-states", 1.5);
    round_trip(&proxy, "fnstate", &[]).await;
    assert!(proxy.fired("function-states:pending-served").await >= 1);
    // Changes still conflict for a moment after reads say Active: S3's permission met
    // ResourceConflictException "The function is currently in the following state: Pending",
    // the code Lambda also gives a statement id that exists. It was waited out, not taken for
    // an existing statement: `round_trip` read the statement back from moto's policy.
    assert!(
        proxy
            .fired("function-states:conflict:pending:AddPermission")
            .await
            >= 1,
        "{}",
        proxy.counts().await
    );
    // A changed setting updates the function; the calls that follow meet InProgress.
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("fnupd");
    let c = clients().await;
    proxy.ok(dir.path(), &stack, &["up", "--image-uri", IMAGE]);
    proxy.ok(
        dir.path(),
        &stack,
        &[
            "up",
            "--image-uri",
            IMAGE,
            "--quality",
            "60",
            "--memory-mb",
            "2048",
        ],
    );
    let conf = c
        .lambda
        .get_function_configuration()
        .function_name(
            state_json(dir.path(), &stack)["resources"]["function"]["name"]
                .as_str()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(conf.memory_size(), Some(2048));
    assert!(proxy.fired("function-states:in-progress-served").await >= 1);
    proxy.ok(dir.path(), &stack, &["destroy", "--yes"]);
    assert_eq!(leftovers(&c, &stack).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_function_is_replaced_and_its_reason_shown() {
    let proxy = AwsProxy::start("function-failed", 1.5);
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("fnfail");
    let c = clients().await;
    let out = proxy.ok(dir.path(), &stack, &["up", "--image-uri", IMAGE, "-v"]);
    assert!(
        stderr(&out).contains("ImageAccessDenied"),
        "Lambda's StateReasonCode is not shown: {}",
        stderr(&out)
    );
    assert_pipeline(&c, dir.path(), &stack).await;
    assert!(proxy.fired("function-failed:served").await >= 1);
    proxy.ok(dir.path(), &stack, &["up", "--image-uri", IMAGE]);
    proxy.ok(dir.path(), &stack, &["destroy", "--yes"]);
    assert_eq!(leftovers(&c, &stack).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn unvalidated_notification_destinations_are_retried() {
    // S3 checks the function's policy (read from moto) on every call: without S3's invoke
    // permission the trigger is refused forever, and for 1.5 s after the AddPermission.
    let proxy = AwsProxy::start("notification-validation", 1.5);
    round_trip(&proxy, "notival", &[]).await;
    assert!(
        proxy.fired("notification-validation:propagating").await >= 1,
        "the trigger was not written while the permission propagated: {}",
        proxy.counts().await
    );
    assert_eq!(
        proxy.fired("notification-validation:no-permission").await,
        0,
        "the trigger was written before S3 was allowed to invoke the function"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fresh_buckets_settle_before_their_settings() {
    let proxy = AwsProxy::start("fresh-bucket", 1.5);
    round_trip(&proxy, "freshb", &[]).await;
    assert!(proxy.fired("fresh-bucket:OperationAborted").await >= 2);
    assert!(proxy.fired("fresh-bucket:NoSuchBucket").await >= 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn lost_answers_meet_already_exists_and_converge() {
    let proxy = AwsProxy::start("lost-answers", 1.5);
    round_trip(
        &proxy,
        "lostans",
        &[
            "--notify-email",
            "ops@example.com",
            "--cdn",
            "--max-concurrency",
            "5",
            "--expire-days",
            "30",
        ],
    )
    .await;
    let counts = proxy.counts().await;
    // Every create, delete and settings write of `up` and `destroy` lost its first answer
    // (objects are not deleted: the buckets are empty; the role has no managed policy).
    for action in [
        "CreateRole",
        "PutRolePolicy",
        "CreateBucket",
        "CreateTable",
        "CreateRepository",
        "PutLifecyclePolicy",
        "CreateLogGroup",
        "PutRetentionPolicy",
        "CreateProject",
        "CreateTopic",
        "Subscribe",
        "CreateQueue",
        "PutBucket:publicAccessBlock",
        "PutBucket:encryption",
        "PutBucket:policy",
        "PutBucketLifecycleConfiguration",
        "CreateFunction",
        "AddPermission",
        "PutFunctionEventInvokeConfig",
        "PutFunctionConcurrency",
        "PutBucketNotificationConfiguration",
        "CreateOriginAccessControl",
        "CreateDistribution",
        "UpdateDistribution",
        "DeleteDistribution",
        "DeleteOriginAccessControl",
        "DeleteFunction",
        "DeleteQueue",
        "DeleteBucket",
        "DeleteTable",
        "DeleteRole",
        "DeleteTopic",
        "DeleteRepository",
        "DeleteRolePolicy",
        "DeleteLogGroup",
        "DeleteProject",
        "Unsubscribe",
        "PutBucket:tagging",
        "DeleteBucketPolicy",
        "RemovePermission",
        "DeleteFunctionEventInvokeConfig",
    ] {
        assert_eq!(
            counts[format!("lost-answers:{action}")],
            1,
            "{action}'s answer was not lost: {counts}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unconfirmed_subscriptions_do_not_block_destroy() {
    let proxy = AwsProxy::start("pending-subscription", 1.5);
    round_trip(
        &proxy,
        "pendsub",
        &[
            "--notify-email",
            "ops@example.com",
            "--notify-url",
            "https://hooks.example.com/thumbs",
        ],
    )
    .await;
    assert_eq!(proxy.fired("pending-subscription").await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn destroy_after_a_kill_waits_for_a_creating_table() {
    let proxy = AwsProxy::start("table-creating", 4.0);
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("tblcre");
    let c = clients().await;
    // Kill `up` while it waits for the CREATING table, as a user's Ctrl-C-Ctrl-C or a lost
    // SSH session would; `destroy` then meets the table before DynamoDB has finished it.
    let mut up = proxy
        .cmd(dir.path(), &stack, &["up", "--image-uri", IMAGE])
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while proxy.fired("table-creating:creating-served").await == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "up never waited for the table"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    up.kill().unwrap();
    up.wait().unwrap();
    proxy.ok(dir.path(), &stack, &["destroy", "--yes"]);
    assert!(proxy.fired("table-creating:delete-refused").await >= 1);
    assert_eq!(leftovers(&c, &stack).await, Vec::<String>::new());

    // And `up` waits for a CREATING table before it wires the trigger: its own DescribeTable
    // of this stack's table was answered CREATING, and the notification naming the function
    // reached S3 only once the table had left CREATING (the proxy counts, per table, a
    // trigger that arrives while the table is still CREATING).
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("tblup");
    proxy.ok(dir.path(), &stack, &["up", "--image-uri", IMAGE]);
    assert_pipeline(&c, dir.path(), &stack).await;
    let table = state_json(dir.path(), &stack)["resources"]["table"]["name"]
        .as_str()
        .expect("the table is recorded")
        .to_owned();
    let counts = proxy.counts().await;
    assert!(
        proxy
            .fired(&format!("table-creating:creating-served:{table}"))
            .await
            >= 1,
        "up never saw {table} CREATING: {counts}"
    );
    assert_eq!(
        proxy
            .fired(&format!("table-creating:trigger-while-creating:{table}"))
            .await,
        0,
        "the trigger was wired while {table} was still CREATING: {counts}"
    );
    proxy.ok(dir.path(), &stack, &["destroy", "--yes"]);
    assert_eq!(leftovers(&c, &stack).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn destroy_right_after_a_kill_catches_a_create_still_in_flight() {
    // CreateFunction lands in moto 3 s after it was sent; `up` is killed while it is held, and
    // `destroy` starts at once: its first look finds no function, and only its second look,
    // after the in-flight window, can see the one that lands meanwhile.
    let proxy = AwsProxy::start("slow-create", 3.0);
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("inflight");
    let c = clients().await;
    let mut up = proxy
        .cmd(dir.path(), &stack, &["up", "--image-uri", IMAGE])
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while proxy.fired("slow-create:held").await == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "up never sent CreateFunction"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    up.kill().unwrap();
    up.wait().unwrap();
    assert_eq!(
        proxy.fired("slow-create:applied").await,
        0,
        "the create must still be in flight when destroy starts"
    );
    proxy.ok(dir.path(), &stack, &["destroy", "--yes"]);
    assert_eq!(proxy.fired("slow-create:applied").await, 1);
    assert_eq!(leftovers(&c, &stack).await, Vec::<String>::new());
}

/// A brand-new account: CloudFront will not create anything until AWS verifies the account,
/// CodeBuild may run 0 builds, and Lambda has 10 concurrent executions in all. Each refusal
/// is named for what it is (not a missing permission) with the next step, and nothing is left
/// half-made: no CloudFront resource, no reservation, no build, and `destroy` leaves nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_brand_new_accounts_refusals_say_what_to_do_and_leave_nothing() {
    let proxy = AwsProxy::start(
        "new-account-cloudfront,new-account-codebuild,new-account-concurrency",
        1.5,
    );
    let dir = tempfile::tempdir().unwrap();
    let stack = stack_name("newacct");
    let c = clients().await;
    let cf = aws_sdk_cloudfront::Client::new(&sdk().await);
    let prefix = format!("{stack}-");

    let out = proxy
        .cmd(
            dir.path(),
            &stack,
            &[
                "up",
                "--image-uri",
                IMAGE,
                "--cdn",
                "--max-concurrency",
                "5",
            ],
        )
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("until AWS has verified it") && err.contains("open a support case"),
        "CloudFront's refusal is not explained: {err}"
    );
    assert!(
        !err.contains("grant it that permission"),
        "an unverified account is reported as a missing permission: {err}"
    );
    assert!(proxy.fired("new-account-cloudfront").await >= 1);
    // Nothing of CloudFront exists or is recorded as made.
    let controls = cf.list_origin_access_controls().send().await.unwrap();
    let ours: Vec<_> = controls
        .origin_access_control_list()
        .map(|l| l.items())
        .unwrap_or_default()
        .iter()
        .filter(|o| o.name().starts_with(&prefix))
        .map(|o| o.name().to_owned())
        .collect();
    assert_eq!(ours, Vec::<String>::new());
    let dists = cf.list_distributions().send().await.unwrap();
    let ours = dists
        .distribution_list()
        .map(|l| l.items())
        .unwrap_or_default()
        .iter()
        .filter(|d| d.comment().contains(&format!("stack {stack}:")))
        .count();
    assert_eq!(ours, 0);
    let st = state_json(dir.path(), &stack);
    for id in ["cdn-access", "cdn"] {
        assert_ne!(
            st["resources"][id]["status"], "created",
            "{id} recorded as made: {st}"
        );
    }
    // With --cdn the function waits for the distribution (it is told the distribution's id),
    // so it was not made either.
    assert_ne!(st["resources"]["function"]["status"], "created", "{st}");
    proxy.ok(dir.path(), &stack, &["destroy", "--yes"]);
    assert_eq!(leftovers(&c, &stack).await, Vec::<String>::new());

    // Without --cdn: the function is made, its reservation refused for the account's floor.
    let stack = stack_name("newacct");
    let prefix = format!("{stack}-");
    let out = proxy
        .cmd(
            dir.path(),
            &stack,
            &["up", "--image-uri", IMAGE, "--max-concurrency", "5"],
        )
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("\"Concurrent executions\" quota") && err.contains("--max-concurrency none"),
        "the concurrency refusal is not explained: {err}"
    );
    assert!(proxy.fired("new-account-concurrency").await >= 1);
    // The function exists without a reservation (the refused one was not half applied).
    let function = resource_name(dir.path(), &stack, "function");
    let cap = c
        .lambda
        .get_function_concurrency()
        .function_name(&function)
        .send()
        .await
        .expect("the function exists");
    assert_eq!(cap.reserved_concurrent_executions(), None);

    // On macOS and Windows `up` falls back to CodeBuild; a new account cannot run a build.
    let out = proxy
        .cmd(dir.path(), &stack, &["build-image"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("AccountLimitExceededException")
            && err.contains("Concurrently running builds")
            && err.contains("--local"),
        "CodeBuild's refusal is not explained: {err}"
    );
    assert_eq!(proxy.fired("new-account-codebuild").await, 1);
    let project = state_json(dir.path(), &stack)["resources"]["build-project"]["name"]
        .as_str()
        .expect("the build project is recorded")
        .to_owned();
    let builds = c
        .codebuild
        .list_builds_for_project()
        .project_name(&project)
        .send()
        .await
        .expect("list builds");
    assert_eq!(builds.ids(), Vec::<String>::new().as_slice());
    let image = c
        .lambda
        .get_function()
        .function_name(&function)
        .send()
        .await
        .expect("the function exists");
    assert_eq!(
        image.code().and_then(|c| c.image_uri()),
        Some(IMAGE),
        "the function's image changed"
    );

    proxy.ok(dir.path(), &stack, &["destroy", "--yes"]);
    assert_eq!(leftovers(&c, &stack).await, Vec::<String>::new());
    let controls = cf.list_origin_access_controls().send().await.unwrap();
    assert!(
        controls
            .origin_access_control_list()
            .map(|l| l.items())
            .unwrap_or_default()
            .iter()
            .all(|o| !o.name().starts_with(&prefix))
    );
}
