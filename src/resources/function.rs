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

/// One way the function in AWS differs from the plan. `status` prints them and `reconcile`
/// acts on exactly them: one comparison, so what `status` calls drift is what `up` repairs.
#[derive(Debug, Clone, PartialEq)]
pub enum Difference {
    NoConfiguration,
    Failed {
        code: String,
        reason: String,
    },
    Environment {
        key: String,
        have: Option<String>,
        want: Option<String>,
    },
    Memory {
        have: Option<i32>,
        want: i32,
    },
    Timeout {
        have: Option<i32>,
        want: i32,
    },
    Image {
        have: Option<String>,
        want: String,
    },
    Architecture {
        have: String,
        want: crate::image::Arch,
    },
    Concurrency {
        have: Option<i32>,
        want: Option<i32>,
    },
}

impl Difference {
    /// Repaired by UpdateFunctionConfiguration.
    fn is_configuration(&self) -> bool {
        matches!(
            self,
            Difference::Environment { .. } | Difference::Memory { .. } | Difference::Timeout { .. }
        )
    }
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Difference::NoConfiguration => write!(f, "Lambda returned no configuration"),
            Difference::Failed { code, reason } => {
                write!(f, "it is in state Failed ({code}: {reason})")
            }
            Difference::Environment {
                key,
                have: Some(h),
                want: Some(w),
            } => {
                write!(f, "environment {key} is `{h}`, not `{w}`")
            }
            Difference::Environment {
                key,
                have: None,
                want: Some(w),
            } => {
                write!(f, "environment {key} is missing (should be `{w}`)")
            }
            Difference::Environment { key, .. } => write!(f, "environment {key} was added"),
            Difference::Memory { have, want } => {
                write!(
                    f,
                    "memory is {} MB, not {want} MB",
                    have.unwrap_or_default()
                )
            }
            Difference::Timeout { have, want } => {
                write!(f, "timeout is {} s, not {want} s", have.unwrap_or_default())
            }
            Difference::Image { have, want } => {
                write!(
                    f,
                    "image is {}, not {want}",
                    have.as_deref().unwrap_or("none")
                )
            }
            Difference::Architecture { have, want } => {
                write!(f, "architecture is {have}, not {}", want.lambda_name())
            }
            Difference::Concurrency { have, want } => {
                let show = |c: &Option<i32>| {
                    c.map_or("unreserved".to_owned(), |n| format!("{n} reserved"))
                };
                write!(f, "concurrency is {}, not {}", show(have), show(want))
            }
        }
    }
}

/// How the function differs from the plan (empty: not at all).
fn differences(plan: &Plan, out: &GetFunctionOutput) -> Vec<Difference> {
    let mut diffs = Vec::new();
    let Some(conf) = out.configuration() else {
        return vec![Difference::NoConfiguration];
    };
    if conf.state() == Some(&State::Failed) {
        let (code, reason) = reason(
            conf.state_reason_code().map(|s| s.as_str().to_owned()),
            conf.state_reason(),
        );
        diffs.push(Difference::Failed { code, reason });
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
        let (have, want) = (have_env.get(k), want_env.get(k));
        if have != want {
            diffs.push(Difference::Environment {
                key: k.clone(),
                have: have.cloned(),
                want: want.cloned(),
            });
        }
    }
    if conf.memory_size() != Some(plan.settings.memory_mb) {
        diffs.push(Difference::Memory {
            have: conf.memory_size(),
            want: plan.settings.memory_mb,
        });
    }
    if conf.timeout() != Some(plan.settings.timeout_s) {
        diffs.push(Difference::Timeout {
            have: conf.timeout(),
            want: plan.settings.timeout_s,
        });
    }
    let have_image = out.code().and_then(|c| c.image_uri());
    if let Some(want) = plan.settings.image_uri.as_deref()
        && have_image != Some(want)
    {
        diffs.push(Difference::Image {
            have: have_image.map(str::to_owned),
            want: want.to_owned(),
        });
    }
    if let Some(want) = plan.settings.architecture
        && conf.architectures() != [want.lambda()]
    {
        let have: Vec<&str> = conf.architectures().iter().map(|a| a.as_str()).collect();
        diffs.push(Difference::Architecture {
            have: if have.is_empty() {
                "x86_64".to_owned()
            } else {
                have.join(",")
            },
            want,
        });
    }
    let have_cap = out
        .concurrency()
        .and_then(|c| c.reserved_concurrent_executions());
    if have_cap != plan.settings.max_concurrency {
        diffs.push(Difference::Concurrency {
            have: have_cap,
            want: plan.settings.max_concurrency,
        });
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
    Ok(differences(plan, &out)
        .iter()
        .map(ToString::to_string)
        .collect())
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

/// Brings an existing function in line with the plan: whatever [`differences`] finds (the
/// same list `status` shows as drift) is repaired, each kind by its one call. Returns whether
/// anything changed.
pub async fn reconcile(ctx: &Ctx, plan: &Plan) -> Result<bool, AwsError> {
    let name = plan.function();
    let out = ctx
        .lambda
        .get_function()
        .function_name(&name)
        .send()
        .await
        .map_err(aws("look up", KIND, &name))?;
    let diffs = differences(plan, &out);
    if let Some(Difference::Failed { code, reason }) = diffs
        .iter()
        .find(|d| matches!(d, Difference::Failed { .. }))
    {
        let role_arn = plan.role_arn(&plan.lambda_role());
        let failed = FunctionError::Failed {
            code: code.clone(),
            reason: reason.clone(),
        };
        recreate(ctx, plan, &role_arn, Some(failed)).await?;
        return Ok(true);
    }
    let mut changed = false;
    if diffs.iter().any(Difference::is_configuration) {
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
    if diffs
        .iter()
        .any(|d| matches!(d, Difference::Concurrency { .. }))
    {
        set_concurrency(ctx, plan).await?;
        changed = true;
    }
    // An image of another architecture needs the function switched with it, in one call.
    let switch_arch = diffs.iter().find_map(|d| match d {
        Difference::Architecture { want, .. } => Some(*want),
        _ => None,
    });
    let new_image = diffs.iter().any(|d| matches!(d, Difference::Image { .. }));
    if let Some(want) = plan.settings.image_uri.as_deref()
        && (new_image || switch_arch.is_some())
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

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_lambda::types::{
        Concurrency, EnvironmentResponse, FunctionCodeLocation, FunctionConfiguration,
    };

    use crate::image::Arch;
    use crate::stack::Settings;

    fn plan() -> Plan {
        let settings = Settings {
            image_uri: Some("123456789012.dkr.ecr.us-east-1.amazonaws.com/r:new".into()),
            architecture: Some(Arch::Arm64),
            max_concurrency: Some(5),
            ..Settings::default()
        };
        Plan {
            stack: "demo".into(),
            suffix: "abcd1234".into(),
            account: "123456789012".into(),
            region: "us-east-1".into(),
            settings,
        }
    }

    /// The function as Lambda would answer GetFunction: the plan's, then `change`d.
    fn answer(plan: &Plan, change: impl FnOnce(&mut FunctionConfiguration)) -> GetFunctionOutput {
        let mut conf = FunctionConfiguration::builder()
            .memory_size(plan.settings.memory_mb)
            .timeout(plan.settings.timeout_s)
            .architectures(Architecture::Arm64)
            .environment(
                EnvironmentResponse::builder()
                    .set_variables(Some(plan.function_environment().into_iter().collect()))
                    .build(),
            )
            .state(State::Active)
            .build();
        change(&mut conf);
        GetFunctionOutput::builder()
            .configuration(conf)
            .code(
                FunctionCodeLocation::builder()
                    .image_uri(plan.settings.image_uri.clone().unwrap_or_default())
                    .build(),
            )
            .concurrency(
                Concurrency::builder()
                    .set_reserved_concurrent_executions(plan.settings.max_concurrency)
                    .build(),
            )
            .build()
    }

    #[test]
    fn the_planned_function_has_no_differences() {
        let p = plan();
        assert_eq!(differences(&p, &answer(&p, |_| {})), Vec::new());
    }

    /// Each setting that `reconcile` repairs is one difference of its own kind, and `status`
    /// shows it in words.
    #[test]
    fn each_setting_is_one_difference_of_its_kind() {
        let p = plan();
        let got = differences(
            &p,
            &answer(&p, |c| {
                c.memory_size = Some(256);
                c.timeout = Some(3);
                c.architectures = Some(vec![Architecture::X8664]);
                if let Some(vars) = c.environment.as_mut().and_then(|e| e.variables.as_mut()) {
                    vars.insert("EXTRA".into(), "1".into());
                    vars.remove("TABLE_NAME");
                }
            }),
        );
        let words: Vec<String> = got.iter().map(ToString::to_string).collect();
        assert_eq!(
            words,
            [
                "environment EXTRA was added".to_owned(),
                format!(
                    "environment TABLE_NAME is missing (should be `{}`)",
                    p.table()
                ),
                format!("memory is 256 MB, not {} MB", p.settings.memory_mb),
                format!("timeout is 3 s, not {} s", p.settings.timeout_s),
                "architecture is x86_64, not arm64".to_owned(),
            ]
        );
        assert_eq!(got.iter().filter(|d| d.is_configuration()).count(), 4);
    }

    #[test]
    fn image_concurrency_and_failure_are_differences() {
        let p = plan();
        let mut out = answer(&p, |c| {
            c.state = Some(State::Failed);
            c.state_reason = Some("no image".into());
        });
        out.code = Some(FunctionCodeLocation::builder().image_uri("old").build());
        out.concurrency = None;
        let got = differences(&p, &out);
        assert!(
            matches!(&got[0], Difference::Failed { reason, .. } if reason == "no image"),
            "{got:?}"
        );
        assert!(got.contains(&Difference::Image {
            have: Some("old".into()),
            want: p.settings.image_uri.clone().unwrap_or_default(),
        }));
        assert!(got.contains(&Difference::Concurrency {
            have: None,
            want: Some(5)
        }));
        assert_eq!(got.iter().filter(|d| d.is_configuration()).count(), 0);
    }
}
