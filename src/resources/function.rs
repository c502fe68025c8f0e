//! The container-image Lambda function that makes the thumbnails.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_lambda::operation::get_function::GetFunctionOutput;
use aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput;
use aws_sdk_lambda::types::{
    Architecture, Environment, FunctionCode, LastUpdateStatus, PackageType, State,
};

use super::Found;
use crate::context::Ctx;
use crate::error::{AwsError, OrNotFound, aws};
use crate::retry::{self, Patience};
use crate::stack::Plan;

pub const KIND: &str = "function";
/// What a call refused with "an update is in progress" waits for.
pub const UPDATING: &str = "the function to finish its current update";
const WAIT: Duration = Duration::from_secs(600);

fn image_uri(plan: &Plan) -> Result<&str, AwsError> {
    plan.settings.image_uri.as_deref().ok_or_else(|| {
        AwsError::local(
            "create",
            KIND,
            plan.function(),
            "no container image: pass --image-uri URI, or run `thumbctl build-image` and rerun `up`",
        )
    })
}

fn environment(plan: &Plan) -> Environment {
    Environment::builder()
        .set_variables(Some(plan.function_environment().into_iter().collect()))
        .build()
}

pub async fn ensure(ctx: &Ctx, plan: &Plan, role_arn: &str) -> Result<Found, AwsError> {
    let name = plan.function();
    let (adopted, active) = create(ctx, plan, role_arn).await?;
    // An image function starts Pending on AWS; only an answer that says Active saves the wait.
    let settled = if active {
        Ok(())
    } else {
        wait_active(ctx, &name).await
    };
    match settled {
        Ok(()) => {}
        // A function that failed to start (e.g. its image could not be pulled) stays Failed
        // for good: only a new function helps. Once; a second failure is the user's to see.
        Err(e @ FunctionError::Failed { .. }) => {
            recreate(ctx, plan, role_arn, Some(e)).await?;
            return Ok(Found::arn(plan.function_arn()));
        }
        Err(e) => return Err(e.into_aws(&name)),
    }
    if adopted {
        reconcile(ctx, plan).await?;
    } else if plan.settings.max_concurrency.is_some() {
        set_concurrency(ctx, plan).await?;
    }
    Ok(Found::arn(plan.function_arn()))
}

/// Reserves (or releases) the function's concurrency as the plan says. Lambda keeps a floor
/// of unreserved concurrency for the account's other functions, and new accounts often have
/// only 10 in total: `error` classifies that refusal (`Class::AccountLimit`), and its hint
/// says what to do.
async fn set_concurrency(ctx: &Ctx, plan: &Plan) -> Result<(), AwsError> {
    let name = plan.function();
    match plan.settings.max_concurrency {
        Some(n) => ctx
            .lambda
            .put_function_concurrency()
            .function_name(&name)
            .reserved_concurrent_executions(n)
            .send()
            .await
            .map(|_| ())
            .map_err(aws("reserve concurrency for", KIND, &name)),
        None => ctx
            .lambda
            .delete_function_concurrency()
            .function_name(&name)
            .send()
            .await
            .map(|_| ())
            .map_err(aws("release the reserved concurrency of", KIND, &name)),
    }
}

/// How the function differs from the plan: each difference in words (empty: none).
fn differences(plan: &Plan, out: &GetFunctionOutput) -> Vec<String> {
    let mut diffs = Vec::new();
    let Some(conf) = out.configuration() else {
        return vec!["Lambda returned no configuration".to_owned()];
    };
    if conf.state() == Some(&State::Failed) {
        diffs.push("it is in state Failed".to_owned());
    }
    let want_env: HashMap<String, String> = plan.function_environment().into_iter().collect();
    let have_env = conf
        .environment()
        .and_then(|e| e.variables())
        .cloned()
        .unwrap_or_default();
    let mut keys: Vec<&String> = want_env.keys().chain(have_env.keys()).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        match (have_env.get(k), want_env.get(k)) {
            (Some(h), Some(w)) if h != w => {
                diffs.push(format!("environment {k} is `{h}`, not `{w}`"))
            }
            (None, Some(w)) => diffs.push(format!("environment {k} is missing (should be `{w}`)")),
            (Some(_), None) => diffs.push(format!("environment {k} was added")),
            _ => {}
        }
    }
    if conf.memory_size() != Some(plan.settings.memory_mb) {
        diffs.push(format!(
            "memory is {} MB, not {} MB",
            conf.memory_size().unwrap_or_default(),
            plan.settings.memory_mb
        ));
    }
    if conf.timeout() != Some(plan.settings.timeout_s) {
        diffs.push(format!(
            "timeout is {} s, not {} s",
            conf.timeout().unwrap_or_default(),
            plan.settings.timeout_s
        ));
    }
    let have_image = out.code().and_then(|c| c.image_uri());
    if let Some(want) = plan.settings.image_uri.as_deref()
        && have_image != Some(want)
    {
        diffs.push(format!(
            "image is {}, not {want}",
            have_image.unwrap_or("none")
        ));
    }
    let have_cap = out
        .concurrency()
        .and_then(|c| c.reserved_concurrent_executions());
    if have_cap != plan.settings.max_concurrency {
        let show = |c: Option<i32>| c.map_or("unreserved".to_owned(), |n| format!("{n} reserved"));
        diffs.push(format!(
            "concurrency is {}, not {}",
            show(have_cap),
            show(plan.settings.max_concurrency)
        ));
    }
    diffs
}

/// What differs between the function in AWS and the plan (for `status`).
pub async fn drift(ctx: &Ctx, plan: &Plan) -> Result<Vec<String>, AwsError> {
    let name = plan.function();
    let out = ctx
        .lambda
        .get_function()
        .function_name(&name)
        .send()
        .await
        .map_err(aws("look up", KIND, &name))?;
    Ok(differences(plan, &out))
}

/// The function's reserved concurrency (`None`: unreserved), for `status`.
pub async fn concurrency(ctx: &Ctx, name: &str) -> Result<Option<i32>, AwsError> {
    let out = ctx
        .lambda
        .get_function_concurrency()
        .function_name(name)
        .send()
        .await
        .map_err(aws("read the concurrency of", KIND, name))?;
    Ok(out.reserved_concurrent_executions())
}

/// Calls CreateFunction; returns (adopted, answered Active).
async fn create(ctx: &Ctx, plan: &Plan, role_arn: &str) -> Result<(bool, bool), AwsError> {
    let name = plan.function();
    let image = image_uri(plan)?;
    let result = ctx
        .lambda
        .create_function()
        .function_name(&name)
        .package_type(PackageType::Image)
        .code(FunctionCode::builder().image_uri(image).build())
        .role(role_arn)
        .memory_size(plan.settings.memory_mb)
        .timeout(plan.settings.timeout_s)
        .architectures(
            plan.settings
                .architecture
                .map_or(Architecture::X8664, crate::image::Arch::lambda),
        )
        .environment(environment(plan))
        .description(format!("thumbctl stack {}: makes thumbnails", plan.stack))
        .set_tags(Some(plan.tags().into_iter().collect()))
        .send()
        .await
        .map_err(aws("create", KIND, &name));
    // CreateFunction says ResourceConflictException "Function already exist" when the name
    // exists (an earlier run made it, or the SDK retried a create whose answer was lost):
    // `error` classifies that message, and only that one, as already there.
    match result {
        Ok(out) => Ok((false, out.state == Some(State::Active))),
        Err(e) if e.is_already_exists() => Ok((true, false)),
        Err(e) => Err(e),
    }
}

/// Deletes a Failed function and creates it again, once. `why` is the failure that led here,
/// logged so the user sees what Lambda said the first time.
async fn recreate(
    ctx: &Ctx,
    plan: &Plan,
    role_arn: &str,
    why: Option<FunctionError>,
) -> Result<(), AwsError> {
    let name = plan.function();
    if let Some(why) = why {
        tracing::warn!(function = %name, "{why}; deleting it and creating it again");
    }
    delete(ctx, &name).await?;
    // The old function's permission and retry settings went with it; their steps run after
    // this one and find them missing, so they are added again.
    let (_, active) = retry::until_settled(
        Patience::SETTLE,
        |e| {
            (e.code.as_deref() == Some("ResourceConflictException"))
                .then_some("the deleted function to be gone")
        },
        || async {
            match create(ctx, plan, role_arn).await? {
                // Still the old one (deletion not finished): that is a conflict to wait out.
                (true, _) => Err(AwsError {
                    code: Some("ResourceConflictException".into()),
                    ..AwsError::local("create", KIND, &name, "the deleted function still exists")
                }),
                (false, active) => Ok((false, active)),
            }
        },
    )
    .await?;
    if !active {
        wait_active(ctx, &name)
            .await
            .map_err(|e| e.into_aws(&name))?;
    }
    if plan.settings.max_concurrency.is_some() {
        set_concurrency(ctx, plan).await?;
    }
    Ok(())
}

/// Lambda's defaults retry a failed event twice over six hours; a thumbnail that failed twice
/// will not succeed later, and an hour-old upload is not worth a late thumbnail. Its own step,
/// so it runs alongside the S3 permission.
pub mod invoke_config {
    use super::*;
    use crate::state::Entry;
    use aws_sdk_lambda::types::{DestinationConfig, OnFailure};

    pub const KIND: &str = "invoke-config";

    /// Also names the on-failure destination: an event Lambda gives up on (retries spent, too
    /// old, or the function timed out or crashed before it could record a failure) goes to the
    /// stack's failure queue instead of vanishing.
    pub async fn ensure(ctx: &Ctx, function: &str, queue_arn: &str) -> Result<Found, AwsError> {
        let destination = DestinationConfig::builder()
            .on_failure(OnFailure::builder().destination(queue_arn).build())
            .build();
        retry::until_settled(Patience::SETTLE, retry::busy(UPDATING), || async {
            ctx.lambda
                .put_function_event_invoke_config()
                .function_name(function)
                .maximum_retry_attempts(2)
                .maximum_event_age_in_seconds(3600)
                .destination_config(destination.clone())
                .send()
                .await
                .map_err(aws("configure retries of", super::KIND, function))
        })
        .await?;
        Ok(Found::default())
    }

    pub async fn find(ctx: &Ctx, e: &Entry) -> Result<Option<Found>, AwsError> {
        let out = ctx
            .lambda
            .get_function_event_invoke_config()
            .function_name(&e.name)
            .send()
            .await
            .map_err(aws("look up", KIND, &e.name))
            .or_not_found()?;
        Ok(out.map(|_| Found::default()))
    }

    /// Whether failures still go to the stack's queue.
    pub async fn drift(ctx: &Ctx, e: &Entry, queue_arn: &str) -> Result<Vec<String>, AwsError> {
        let out = ctx
            .lambda
            .get_function_event_invoke_config()
            .function_name(&e.name)
            .send()
            .await
            .map_err(aws("look up", KIND, &e.name))?;
        let have = out
            .destination_config()
            .and_then(|d| d.on_failure())
            .and_then(|f| f.destination());
        Ok(if have == Some(queue_arn) {
            Vec::new()
        } else {
            vec![format!(
                "failed events go to {}, not the stack's queue",
                have.unwrap_or("nowhere")
            )]
        })
    }

    pub async fn delete(ctx: &Ctx, e: &Entry) -> Result<(), AwsError> {
        ctx.lambda
            .delete_function_event_invoke_config()
            .function_name(&e.name)
            .send()
            .await
            .map_err(aws("delete", KIND, &e.name))
            .or_not_found()?;
        Ok(())
    }
}

/// Why a function did not reach the state `up` needs.
#[derive(Debug, thiserror::Error)]
enum FunctionError {
    #[error("Lambda put the function in state Failed ({code}): {reason}")]
    Failed { code: String, reason: String },
    #[error("its last update failed ({code}): {reason}")]
    UpdateFailed { code: String, reason: String },
    #[error("it was still {state} after {secs} s")]
    Timeout { state: String, secs: u64 },
    #[error(transparent)]
    Aws(#[from] AwsError),
}

impl FunctionError {
    fn into_aws(self, name: &str) -> AwsError {
        let hint = match &self {
            FunctionError::Failed { code, .. } | FunctionError::UpdateFailed { code, .. } => {
                match code.as_str() {
                    "ImageAccessDenied" | "ImageDeleted" => {
                        " Lambda could not pull the image: check that the image exists in the stack's \
                         repository and that the repository policy lets lambda.amazonaws.com read it \
                         (`thumbctl up` sets it; see README, \"Permissions\"), then rerun `thumbctl up`."
                    }
                    "InvalidImage" => {
                        " The image is not a valid Lambda image for this function's architecture: \
                         rebuild it with `thumbctl build-image` and rerun `thumbctl up`."
                    }
                    _ => {
                        " Fix the cause and rerun `thumbctl up`, which replaces a Failed function."
                    }
                }
            }
            FunctionError::Timeout { .. } => " Rerun `thumbctl up` to keep waiting.",
            FunctionError::Aws(_) => "",
        };
        match self {
            FunctionError::Aws(e) => e,
            other => AwsError::local("wait for", KIND, name, format!("{other}.{hint}")),
        }
    }
}

/// Polls the function until `done` accepts its configuration. Not the SDK's waiters: they
/// report a Failed function as "waiting failed" and drop the StateReason that says why.
async fn poll<F>(ctx: &Ctx, name: &str, mut done: F) -> Result<(), FunctionError>
where
    F: FnMut(&GetFunctionConfigurationOutput) -> Result<bool, FunctionError>,
{
    let started = std::time::Instant::now();
    let mut delay = Duration::from_millis(500);
    loop {
        let conf = ctx
            .lambda
            .get_function_configuration()
            .function_name(name)
            .send()
            .await
            .map_err(aws("look up", KIND, name))?;
        if done(&conf)? {
            return Ok(());
        }
        if started.elapsed() > WAIT {
            let state = match conf.state() {
                Some(State::Active) => conf
                    .last_update_status()
                    .map(|s| format!("updating ({})", s.as_str()))
                    .unwrap_or_else(|| "updating".into()),
                Some(s) => s.as_str().to_owned(),
                None => "in an unknown state".into(),
            };
            return Err(FunctionError::Timeout {
                state,
                secs: WAIT.as_secs(),
            });
        }
        tracing::info!(function = name, state = ?conf.state(), update = ?conf.last_update_status(), "waiting for the function");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

fn reason(code: Option<String>, reason: Option<&str>) -> (String, String) {
    (
        code.unwrap_or_else(|| "no code".into()),
        reason.unwrap_or("Lambda gave no reason").to_owned(),
    )
}

async fn wait_active(ctx: &Ctx, name: &str) -> Result<(), FunctionError> {
    poll(ctx, name, |c| match c.state() {
        Some(State::Failed) => {
            let (code, reason) = reason(
                c.state_reason_code().map(|s| s.as_str().to_owned()),
                c.state_reason(),
            );
            Err(FunctionError::Failed { code, reason })
        }
        // Inactive (idle for weeks) is a usable function: Lambda reactivates it on use.
        Some(State::Active) | Some(State::Inactive) => Ok(true),
        _ => Ok(false),
    })
    .await
}

async fn wait_updated(ctx: &Ctx, name: &str) -> Result<(), AwsError> {
    poll(ctx, name, |c| match c.last_update_status() {
        Some(LastUpdateStatus::Failed) => {
            let (code, reason) = reason(
                c.last_update_status_reason_code()
                    .map(|s| s.as_str().to_owned()),
                c.last_update_status_reason(),
            );
            Err(FunctionError::UpdateFailed { code, reason })
        }
        Some(LastUpdateStatus::InProgress) => Ok(false),
        _ => Ok(c.state() != Some(&State::Pending)),
    })
    .await
    .map_err(|e| e.into_aws(name))
}

/// Brings an existing function in line with the plan: configuration (environment, memory,
/// timeout) and image. Returns whether anything changed.
pub async fn reconcile(ctx: &Ctx, plan: &Plan) -> Result<bool, AwsError> {
    let name = plan.function();
    let out = ctx
        .lambda
        .get_function()
        .function_name(&name)
        .send()
        .await
        .map_err(aws("look up", KIND, &name))?;
    let mut changed = false;
    if let Some(conf) = out.configuration()
        && conf.state() == Some(&State::Failed)
    {
        let (code, reason) = reason(
            conf.state_reason_code().map(|s| s.as_str().to_owned()),
            conf.state_reason(),
        );
        let role_arn = plan.role_arn(&plan.lambda_role());
        recreate(
            ctx,
            plan,
            &role_arn,
            Some(FunctionError::Failed { code, reason }),
        )
        .await?;
        return Ok(true);
    }
    if let Some(conf) = out.configuration() {
        let want_env: HashMap<String, String> = plan.function_environment().into_iter().collect();
        let have_env = conf
            .environment()
            .and_then(|e| e.variables())
            .cloned()
            .unwrap_or_default();
        if have_env != want_env
            || conf.memory_size() != Some(plan.settings.memory_mb)
            || conf.timeout() != Some(plan.settings.timeout_s)
        {
            retry::until_settled(Patience::SETTLE, retry::busy(UPDATING), || async {
                ctx.lambda
                    .update_function_configuration()
                    .function_name(&name)
                    .memory_size(plan.settings.memory_mb)
                    .timeout(plan.settings.timeout_s)
                    .environment(environment(plan))
                    .send()
                    .await
                    .map_err(aws("update configuration of", KIND, &name))
            })
            .await?;
            wait_updated(ctx, &name).await?;
            changed = true;
        }
    }
    let have_cap = out
        .concurrency()
        .and_then(|c| c.reserved_concurrent_executions());
    if have_cap != plan.settings.max_concurrency {
        set_concurrency(ctx, plan).await?;
        changed = true;
    }
    let have_image = out.code().and_then(|c| c.image_uri());
    // An image of another architecture needs the function switched with it, in one call.
    let switch_arch = plan.settings.architecture.filter(|want| {
        out.configuration()
            .is_some_and(|c| c.architectures() != [want.lambda()])
    });
    if let Some(want) = plan.settings.image_uri.as_deref()
        && (have_image != Some(want) || switch_arch.is_some())
    {
        update_image_for(ctx, &name, want, switch_arch).await?;
        changed = true;
    }
    Ok(changed)
}

/// Points the function at a new image and waits until Lambda has switched to it.
pub async fn update_image(ctx: &Ctx, name: &str, image_uri: &str) -> Result<(), AwsError> {
    update_image_for(ctx, name, image_uri, None).await
}

/// [`update_image`], switching the function's architecture too when `arch` says so.
pub async fn update_image_for(
    ctx: &Ctx,
    name: &str,
    image_uri: &str,
    arch: Option<crate::image::Arch>,
) -> Result<(), AwsError> {
    retry::until_settled(Patience::SETTLE, retry::busy(UPDATING), || async {
        ctx.lambda
            .update_function_code()
            .function_name(name)
            .image_uri(image_uri)
            .set_architectures(arch.map(|a| vec![a.lambda()]))
            .send()
            .await
            .map_err(aws("update image of", KIND, name))
    })
    .await?;
    wait_updated(ctx, name).await
}

pub async fn find(ctx: &Ctx, name: &str) -> Result<Option<Found>, AwsError> {
    let out = ctx
        .lambda
        .get_function_configuration()
        .function_name(name)
        .send()
        .await
        .map_err(aws("look up", KIND, name))
        .or_not_found()?;
    Ok(out.map(|c| Found {
        arn: c.function_arn,
        ..Found::default()
    }))
}

pub async fn delete(ctx: &Ctx, name: &str) -> Result<(), AwsError> {
    ctx.lambda
        .delete_function()
        .function_name(name)
        .send()
        .await
        .map_err(aws("delete", KIND, name))
        .or_not_found()?;
    Ok(())
}
