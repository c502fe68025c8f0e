//! The container-image Lambda function that makes the thumbnails.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_lambda::client::Waiters;
use aws_sdk_lambda::types::{Architecture, Environment, FunctionCode, PackageType, State};

use super::Found;
use crate::context::Ctx;
use crate::error::{AwsError, OrNotFound, aws};
use crate::stack::Plan;

pub const KIND: &str = "function";
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
        .architectures(Architecture::X8664)
        .environment(environment(plan))
        .description(format!("thumbctl stack {}: makes thumbnails", plan.stack))
        .set_tags(Some(plan.tags().into_iter().collect()))
        .send()
        .await
        .map_err(aws("create", KIND, &name));
    // CreateFunction says ResourceConflictException when the name exists: an earlier run made it.
    let (adopted, active) = match result {
        Ok(out) => (false, out.state == Some(State::Active)),
        Err(e)
            if e.is_already_exists() || e.code.as_deref() == Some("ResourceConflictException") =>
        {
            (true, false)
        }
        Err(e) => return Err(e),
    };
    // An image function starts Pending on AWS; only an answer that says Active saves the wait.
    if !active {
        wait_active(ctx, &name).await?;
    }
    if adopted {
        reconcile(ctx, plan).await?;
    }
    Ok(Found::arn(plan.function_arn()))
}

/// Lambda's defaults retry a failed event twice over six hours; a thumbnail that failed twice
/// will not succeed later, and an hour-old upload is not worth a late thumbnail. Its own step,
/// so it runs alongside the S3 permission.
pub mod invoke_config {
    use super::*;
    use crate::state::Entry;

    pub const KIND: &str = "invoke-config";

    pub async fn ensure(ctx: &Ctx, function: &str) -> Result<Found, AwsError> {
        ctx.lambda
            .put_function_event_invoke_config()
            .function_name(function)
            .maximum_retry_attempts(2)
            .maximum_event_age_in_seconds(3600)
            .send()
            .await
            .map_err(aws("configure retries of", super::KIND, function))?;
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

async fn wait_active(ctx: &Ctx, name: &str) -> Result<(), AwsError> {
    ctx.lambda
        .wait_until_function_active_v2()
        .function_name(name)
        .wait(WAIT)
        .await
        .map_err(|e| {
            AwsError::local(
                "wait for",
                KIND,
                name,
                format!("the function did not become Active: {e}"),
            )
        })?;
    Ok(())
}

async fn wait_updated(ctx: &Ctx, name: &str) -> Result<(), AwsError> {
    ctx.lambda
        .wait_until_function_updated_v2()
        .function_name(name)
        .wait(WAIT)
        .await
        .map_err(|e| {
            AwsError::local(
                "wait for",
                KIND,
                name,
                format!("the function update did not finish: {e}"),
            )
        })?;
    Ok(())
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
            ctx.lambda
                .update_function_configuration()
                .function_name(&name)
                .memory_size(plan.settings.memory_mb)
                .timeout(plan.settings.timeout_s)
                .environment(environment(plan))
                .send()
                .await
                .map_err(aws("update configuration of", KIND, &name))?;
            wait_updated(ctx, &name).await?;
            changed = true;
        }
    }
    let have_image = out.code().and_then(|c| c.image_uri());
    if let Some(want) = plan.settings.image_uri.as_deref()
        && have_image != Some(want)
    {
        update_image(ctx, &name, want).await?;
        changed = true;
    }
    Ok(changed)
}

/// Points the function at a new image and waits until Lambda has switched to it.
pub async fn update_image(ctx: &Ctx, name: &str, image_uri: &str) -> Result<(), AwsError> {
    ctx.lambda
        .update_function_code()
        .function_name(name)
        .image_uri(image_uri)
        .send()
        .await
        .map_err(aws("update image of", KIND, name))?;
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
