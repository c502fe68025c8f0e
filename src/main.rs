//! `thumbctl`: parse, build the context, dispatch, and map errors to exit codes
//! (0 ok, 1 failure, 2 usage error, 130 interrupted).

mod cli;
mod commands;
mod context;
mod engine;
mod error;
mod failpoint;
mod image;
mod orphans;
mod permissions;
mod post_policy;
mod progress;
mod resources;
mod retry;
mod stack;
mod state;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

/// Exit status for a command the user must correct (clap uses the same for its own errors).
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_INTERRUPTED: u8 = 130;

/// An error that is the user's to fix on the command line: exits 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "unknown".into())
}

fn init_tracing(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let default = match (quiet, verbose) {
        (true, _) => "error",
        // The credential chain warns about every provider it tried; thumbctl's own error says
        // what failed and what to do, so those lines appear only from -vv on.
        (_, 0) => "warn,aws_config=error",
        (_, 1) => "thumbctl=info,warn,aws_config=error",
        (_, 2) => "thumbctl=debug,info",
        _ => "debug",
    };
    let filter =
        EnvFilter::try_from_env("THUMBCTL_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(lambda_image::redact::Scrubbed(
            lambda_image::redact::Sink::Stderr,
        ))
        .with_target(false)
        .init();
}

/// Whether Lambda started this process as the function: Lambda sets the Runtime API's address
/// for every function process, and the shipped image's entrypoint is this binary under the name
/// `bootstrap` (which without that address still goes to the function, to fail there in one
/// line naming the missing variable rather than as an unknown command).
fn started_as_function() -> bool {
    let runtime_api = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some_and(|v| !v.is_empty());
    let argv0 = std::env::args_os().next();
    let named_bootstrap = argv0
        .as_deref()
        .map(std::path::Path::new)
        .and_then(std::path::Path::file_name)
        .is_some_and(|name| name == "bootstrap");
    runtime_api || named_bootstrap
}

fn main() -> ExitCode {
    // `up` ships this very binary as the function's image: when Lambda runs it, it is
    // lambda-image's runtime, not the CLI (which would take Lambda's empty argv as a usage error).
    if started_as_function() {
        return lambda_image::runtime::run();
    }
    let cli = Cli::parse();
    init_tracing(cli.global.verbose, cli.global.quiet);
    #[cfg(feature = "failpoints")]
    let _scenario = fail::FailScenario::setup();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("thumbctl: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("thumbctl: error: {err:#}");
            if err.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(EXIT_USAGE)
            } else if matches!(
                err.downcast_ref::<engine::EngineError>(),
                Some(engine::EngineError::Interrupted)
            ) {
                ExitCode::from(EXIT_INTERRUPTED)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Up(args) => commands::up::run(&cli.global, args).await,
        Command::Status(args) => commands::status::run(&cli.global, args).await,
        Command::Destroy(args) => commands::destroy::run(&cli.global, args).await,
        Command::BuildImage(args) => commands::build_image::run(&cli.global, args).await,
        Command::Upload(args) => commands::upload::run(&cli.global, args).await,
        Command::List(args) => commands::images::list(&cli.global, args).await,
        Command::Get(args) => commands::images::get(&cli.global, args).await,
        Command::Delete(args) => commands::images::delete(&cli.global, args).await,
        Command::Presign(args) => commands::images::presign(&cli.global, args).await,
        Command::Gallery(args) => commands::gallery::run(&cli.global, args).await,
        Command::InvokeLocal(args) => commands::invoke_local::run(&cli.global, args).await,
        Command::Reprocess(args) => commands::reprocess::run(&cli.global, args).await,
        Command::Thumbnail(args) => commands::thumbnail::run(&cli.global, args),
        Command::Permissions => commands::permissions::run(&cli.global),
        Command::Completions(args) => commands::shell::completions(args),
        Command::Man(args) => commands::shell::man(args),
    }
}
