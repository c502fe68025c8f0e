//! The function's process: validate the environment, then serve events (any JSON payload,
//! dispatched by [`Handler::handle_invocation`]: S3 notifications, S3 Batch Operations
//! requests) through the Lambda Runtime API until the process is stopped. [`run`] is the whole of it, so that the
//! `lambda-image` binary and thumbctl (which hands over to it when Lambda starts it as the
//! function) run the same code.

use std::process::ExitCode;
use std::sync::Arc;

use crate::config::Config;
use crate::handler::Handler;
use crate::invocation::InvokeError;
use futures::FutureExt;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};

/// Variables that `lambda_runtime` reads with `expect` (it would panic without them).
fn check_runtime_env() -> Result<(), String> {
    for name in [
        "AWS_LAMBDA_RUNTIME_API",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_VERSION",
    ] {
        if std::env::var_os(name).is_none_or(|v| v.is_empty()) {
            return Err(format!(
                "{name} is not set (this binary runs inside AWS Lambda or against a Runtime API emulator)"
            ));
        }
    }
    let mem = std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").unwrap_or_default();
    if mem.parse::<i32>().is_err() {
        return Err(format!(
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE={mem:?} is not set to an integer"
        ));
    }
    Ok(())
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(
            "info,aws_config=warn,aws_smithy_runtime=warn,aws_smithy_runtime_api=warn,hyper=warn",
        )
    });
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_target(false)
        .with_current_span(false)
        .with_span_list(false)
        .flatten_event(true)
        .with_writer(crate::redact::Scrubbed(crate::redact::Sink::Stdout))
        .init();
}

async fn serve(config: Config) -> Result<(), lambda_runtime::Error> {
    // Build the AWS clients on a blocking thread while the runtime already polls for the first
    // event: loading the SDK configuration (and the TLS root certificates) would otherwise sit
    // between process start and the first request to the Runtime API.
    let rt = tokio::runtime::Handle::current();
    let handler = tokio::task::spawn_blocking(move || {
        rt.block_on(async move {
            // The function's own trust anchors: the image need not carry a CA bundle.
            let roots = crate::tls::load();
            tracing::info!(
                tls_roots = roots.source.as_str(),
                count = roots.count,
                "TLS root certificates"
            );
            let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .http_client(crate::tls::https_client(&roots))
                .load()
                .await;
            // A failure is reported by the first call that needs the credentials, per record.
            let _ = crate::redact::register_credentials(&sdk).await;
            Arc::new(Handler::new(config, &sdk))
        })
    })
    .map(|r| r.map_err(|e| format!("initialisation failed: {e}")))
    .boxed()
    .shared();
    // A `Value`, not a typed event: a payload of another kind must get an `UnsupportedEvent`
    // answer naming what was expected, not the runtime's deserialisation error.
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let handler = handler.clone();
        async move {
            let handler = handler.await.map_err(|e| Diagnostic {
                error_type: "InitFailure".into(),
                error_message: e,
            })?;
            handler
                .handle_invocation(event.payload)
                .await
                .map_err(|e: InvokeError| {
                    if let InvokeError::Unsupported(u) = &e {
                        tracing::error!(reason = %u, "unsupported event");
                    }
                    Diagnostic {
                        error_type: e.error_type().into(),
                        error_message: e.to_string(),
                    }
                })
        }
    }))
    .await
}

/// Runs the function until the Runtime API stops serving it. Exit status: 2 for an environment
/// that is not Lambda's (missing or malformed variables, named in one line), 1 when the runtime
/// could not start or failed.
pub fn run() -> ExitCode {
    let config = match Config::from_env().map_err(|e| e.to_string()).and_then(|c| {
        check_runtime_env()?;
        Ok(c)
    }) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("lambda-image: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("lambda-image: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lambda-image: runtime error: {e}");
            ExitCode::from(1)
        }
    }
}
