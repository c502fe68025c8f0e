//! `thumbctl build-image`: get the function's image into ECR, through CodeBuild (default) or
//! built on this machine without Docker (`--local`), then point the function at it by digest.
//! `up` calls [`produce`] the same way when no `--image-uri` is given.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;

use super::{check_account, context_for, print_json};
use crate::UsageError;
use crate::cli::{BuildImageArgs, GlobalArgs, OutputMode};
use crate::context::Ctx;
use crate::error::{AwsError, OrNotFound, aws};
use crate::image::codebuild::{self, FollowError, FollowOptions};
use crate::image::{Arch, build, oci, package, prepare, registry};
use crate::resources::{build_project, function};
use crate::stack::{BUILD_SOURCE_KEY, ImageSource, Plan, ROLE_POLICY_NAME};
use crate::state::{StateStore, Status};

/// How to make the image.
#[derive(Debug, Clone)]
pub struct Options {
    pub local: bool,
    pub registry_url: Option<String>,
    pub arch: Arch,
    pub force: bool,
    pub timeout: Duration,
    pub source: PathBuf,
    pub quiet: bool,
}

impl Options {
    /// The defaults `up` uses: CodeBuild unless `local`, x86_64, sources in the current directory.
    pub fn for_up(local: bool, registry_url: Option<String>, quiet: bool) -> Options {
        Options {
            local,
            registry_url,
            arch: Arch::X86_64,
            force: false,
            timeout: Duration::from_secs(30 * 60),
            source: PathBuf::from("."),
            quiet,
        }
    }
}

/// The image that was made (or found).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Built {
    /// `<repository uri>@sha256:...`: what the function runs.
    pub image_uri: String,
    pub digest: String,
    pub tag: String,
    /// `codebuild`, `local`, or `already-in-ecr` (nothing was built).
    pub how: &'static str,
    /// Compressed size of the image's layers, when known.
    pub layer_bytes: Option<u64>,
    pub uploaded_bytes: Option<u64>,
    pub seconds: f64,
}

fn note(quiet: bool, line: &str) {
    if !quiet {
        eprintln!("{line}");
    }
}

/// The repository's URI (`<registry host>/<name>`), as ECR states it.
pub async fn repository_uri(ctx: &Ctx, repo: &str) -> Result<String, AwsError> {
    let out = ctx
        .ecr
        .describe_repositories()
        .repository_names(repo)
        .send()
        .await
        .map_err(aws("look up", "repository", repo))?;
    out.repositories()
        .first()
        .and_then(|r| r.repository_uri())
        .map(str::to_owned)
        .ok_or_else(|| {
            AwsError::local(
                "look up",
                "repository",
                repo,
                "ECR returned no repository URI",
            )
        })
}

/// The digest of `repo:tag` if ECR has it.
pub async fn ecr_digest(ctx: &Ctx, repo: &str, tag: &str) -> Result<Option<String>, AwsError> {
    let out = ctx
        .ecr
        .describe_images()
        .repository_name(repo)
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag(tag)
                .build(),
        )
        .send()
        .await
        .map_err(aws("look up image in", "repository", repo));
    // A missing tag is ImageNotFoundException, which is an answer here, not a failure.
    let out = match out {
        Err(e) if e.code.as_deref() == Some("ImageNotFoundException") => return Ok(None),
        other => other.or_not_found()?,
    };
    Ok(out.and_then(|o| {
        o.image_details()
            .first()
            .and_then(|d| d.image_digest())
            .map(str::to_owned)
    }))
}

/// Makes the image (or finds it already made) and returns its digest URI. Creates, and
/// records, whatever part of the stack the build needs that does not exist yet.
pub async fn produce(
    ctx: &Ctx,
    plan: &Plan,
    store: &StateStore,
    opts: &Options,
) -> anyhow::Result<Built> {
    let needs = if opts.local {
        prepare::FOR_LOCAL
    } else {
        prepare::FOR_CODEBUILD
    };
    prepare::ensure_steps(ctx, plan, store, needs, opts.quiet)
        .await
        .context("creating what the image build needs")?;
    if opts.local {
        produce_local(ctx, plan, opts).await
    } else {
        produce_codebuild(ctx, plan, opts).await
    }
}

async fn produce_local(ctx: &Ctx, plan: &Plan, opts: &Options) -> anyhow::Result<Built> {
    let started = Instant::now();
    let repo = plan.repository();
    note(
        opts.quiet,
        &format!(
            "Building lambda-image for {} on this machine (cargo, profile `{}`)...",
            opts.arch.rust_target(),
            build::profile()
        ),
    );
    let bin_path = build::build_binary(&opts.source, opts.arch, opts.quiet).await?;
    let binary = tokio::fs::read(&bin_path)
        .await
        .with_context(|| format!("reading the built binary {}", bin_path.display()))?;
    // The binary alone: it trusts the TLS roots compiled into it (lambda_image::tls), so
    // nothing of this machine's CA layout goes into the image.
    let arch = opts.arch;
    let image = tokio::task::spawn_blocking(move || oci::assemble(&binary, arch))
        .await
        .context("assembling the image")??;
    let tag = format!("local-{}", &image.manifest.digest["sha256:".len()..][..24]);
    note(
        opts.quiet,
        &format!(
            "Image {} assembled: layer {:.1} MB compressed.",
            image.manifest.digest,
            image.layer.bytes.len() as f64 / 1e6
        ),
    );

    let reg = stack_registry(ctx, &repo, opts.registry_url.as_deref()).await?;
    note(opts.quiet, &format!("Pushing to {}/{repo}...", reg.base()));
    let report = reg
        .push(&repo, &image, &tag, |l| note(opts.quiet, &format!("  {l}")))
        .await
        .with_context(|| format!("pushing the image to {}/{repo}", reg.base()))?;
    let uri = repository_uri(ctx, &repo).await?;
    Ok(Built {
        image_uri: format!("{uri}@{}", report.manifest_digest),
        digest: report.manifest_digest.clone(),
        tag,
        how: "local",
        layer_bytes: Some(image.layer.bytes.len() as u64),
        uploaded_bytes: Some(report.uploaded_bytes),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// A client for the registry of the stack's repository `repo`, logged in with ECR's token:
/// ECR's own endpoint, or `registry_url` (a mirror, the tests' registry) when given.
pub async fn stack_registry(
    ctx: &Ctx,
    repo: &str,
    registry_url: Option<&str>,
) -> anyhow::Result<registry::Registry> {
    // ECR's token is base64 `AWS:<password>`, exactly the Basic credential the registry wants.
    let auth = ctx.ecr.get_authorization_token().send().await.map_err(aws(
        "get a push token for",
        "repository",
        repo,
    ))?;
    let data = auth.authorization_data().first();
    let token = data.and_then(|d| d.authorization_token()).ok_or_else(|| {
        AwsError::local(
            "get a push token for",
            "repository",
            repo,
            "ECR returned no authorization token",
        )
    })?;
    let endpoint = match (registry_url, data.and_then(|d| d.proxy_endpoint())) {
        (Some(url), _) => url.to_owned(),
        (None, Some(proxy)) => proxy.to_owned(),
        (None, None) => {
            return Err(AwsError::local(
                "get a push token for",
                "repository",
                repo,
                "ECR returned no registry endpoint; pass --registry-url",
            )
            .into());
        }
    };
    Ok(registry::Registry::new(&endpoint, Some(token))?)
}

/// How long to wait before starting a build again that was refused access before it ran:
/// IAM usually propagates a new role policy within seconds, and the refused attempt has
/// already spent some time queued and provisioning before CodeBuild reported the denial.
const ACCESS_RETRY_WAIT: Duration = Duration::from_secs(30);

async fn produce_codebuild(ctx: &Ctx, plan: &Plan, opts: &Options) -> anyhow::Result<Built> {
    let started = Instant::now();
    let repo = plan.repository();
    let source = opts.source.clone();
    let pkg = tokio::task::spawn_blocking(move || package::package(&source))
        .await
        .context("packaging the sources")??;
    let tag = pkg.tag();
    let uri = repository_uri(ctx, &repo).await?;
    if !opts.force
        && let Some(digest) = ecr_digest(ctx, &repo, &tag).await?
    {
        note(
            opts.quiet,
            &format!(
                "ECR already holds {repo}:{tag} (these sources were built before): nothing to build. Use --force to rebuild."
            ),
        );
        return Ok(Built {
            image_uri: format!("{uri}@{digest}"),
            digest,
            tag,
            how: "already-in-ecr",
            layer_bytes: None,
            uploaded_bytes: None,
            seconds: started.elapsed().as_secs_f64(),
        });
    }

    // A rerun of `up` only checks that a recorded project exists, so one made by an older
    // thumbctl is brought in line here, before the build that depends on its settings.
    let project = plan.project();
    let changed = build_project::reconcile(ctx, plan, &project).await?;
    if !changed.is_empty() {
        note(
            opts.quiet,
            &format!(
                "Updated CodeBuild project {project}: {}.",
                changed.join(", ")
            ),
        );
    }

    let bucket = plan.dest_bucket();
    note(
        opts.quiet,
        &format!(
            "Uploading the sources ({} files, {:.0} KB, tag {tag}) to s3://{bucket}/{BUILD_SOURCE_KEY}",
            pkg.files,
            pkg.zip.len() as f64 / 1e3
        ),
    );
    let put = ctx
        .s3
        .put_object()
        .bucket(&bucket)
        .key(BUILD_SOURCE_KEY)
        .content_type("application/zip")
        .body(pkg.zip.clone().into())
        .send()
        .await
        .map_err(aws("upload the build sources to", "bucket", &bucket))?;

    let quiet = opts.quiet;
    let builds_started = Instant::now();
    let mut retried = false;
    let (build_id, build) = loop {
        // `None` on the stack's unversioned bucket: see `codebuild::start`.
        let build_id = codebuild::start(ctx, &project, put.version_id(), &tag).await?;
        note(quiet, &format!("Started CodeBuild build {build_id}."));
        // --timeout bounds the whole wait, a second attempt included.
        let remaining = opts.timeout.saturating_sub(builds_started.elapsed());
        match follow_build(ctx, &build_id, remaining, quiet).await {
            Ok(b) => break (build_id, b),
            Err(FollowError::Failed(f))
                if !retried && codebuild::is_access_denied_before_build(&f.phase, &f.messages) =>
            {
                retried = true;
                note(
                    quiet,
                    &format!(
                        "Build {build_id} was refused access in {} before any of its commands ran:\n  {}\n  The build role's permissions are most likely not in effect yet (IAM takes a few seconds to propagate a new policy). Starting the build once more in {} s.",
                        f.phase,
                        f.messages
                            .first()
                            .map(String::as_str)
                            .unwrap_or("(no message)"),
                        ACCESS_RETRY_WAIT.as_secs()
                    ),
                );
                tokio::select! {
                    () = tokio::time::sleep(ACCESS_RETRY_WAIT) => {}
                    _ = tokio::signal::ctrl_c() => {
                        return Err(anyhow::Error::new(crate::engine::EngineError::Interrupted))
                            .context(format!("interrupted before build {build_id} was started again; nothing is running"));
                    }
                }
            }
            Err(FollowError::Failed(mut f)) => {
                if retried && codebuild::is_access_denied_before_build(&f.phase, &f.messages) {
                    f.note = Some(format!(
                        "the second attempt, {} s after the first, was refused too, so this is not IAM propagation: check that role {} still has its inline policy `{ROLE_POLICY_NAME}` (`thumbctl status`) and that no policy denies it",
                        ACCESS_RETRY_WAIT.as_secs(),
                        plan.codebuild_role()
                    ));
                }
                if let (Some(g), Some(s)) = (f.log_group.clone(), f.log_stream.clone()) {
                    f.log_tail = codebuild::log_tail(ctx, &g, &s, 25).await;
                }
                return Err(FollowError::Failed(f).into());
            }
            Err(e @ (FollowError::TimedOut { .. } | FollowError::Interrupted { .. })) => {
                if let Err(stop_err) = codebuild::stop(ctx, &build_id).await {
                    note(
                        quiet,
                        &format!("could not stop build {build_id}: {stop_err}"),
                    );
                }
                if matches!(e, FollowError::Interrupted { .. }) {
                    return Err(anyhow::Error::new(crate::engine::EngineError::Interrupted))
                        .context(format!("build {build_id} was stopped at your request"));
                }
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        }
    };
    let digest = match codebuild::exported_digest(&build) {
        Some(d) => d,
        None => ecr_digest(ctx, &repo, &tag).await?.ok_or_else(|| {
            AwsError::local(
                "find the image in",
                "repository",
                &repo,
                format!(
                    "build {build_id} succeeded but ECR holds no image tagged {tag}.\n  hint: check that lambda-image/buildspec.yml pushes $REPOSITORY_URI:$IMAGE_TAG (an emulator such as moto never really builds)"
                ),
            )
        })?,
    };
    Ok(Built {
        image_uri: format!("{uri}@{digest}"),
        digest,
        tag,
        how: "codebuild",
        layer_bytes: None,
        uploaded_bytes: None,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Follows one build to its end, printing each phase change; Ctrl-C ends the wait.
async fn follow_build(
    ctx: &Ctx,
    build_id: &str,
    timeout: Duration,
    quiet: bool,
) -> Result<aws_sdk_codebuild::types::Build, FollowError> {
    let follow_opts = FollowOptions {
        interval: Duration::from_secs(5),
        timeout,
    };
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    codebuild::follow(
        &mut codebuild::CodeBuild(&ctx.codebuild),
        build_id,
        &follow_opts,
        stop,
        |p| {
            note(
                quiet,
                &format!(
                    "  build {build_id}: {} ({}m{:02}s)",
                    p.phase,
                    p.elapsed.as_secs() / 60,
                    p.elapsed.as_secs() % 60
                ),
            )
        },
    )
    .await
}

/// Points the function (if the stack has one) at the image and records it in the settings.
async fn deploy(
    ctx: &Ctx,
    plan: &Plan,
    store: &StateStore,
    built: &Built,
    arch: Arch,
) -> anyhow::Result<bool> {
    let has_function = store
        .entry("function")
        .is_some_and(|e| e.status == Status::Created);
    if has_function && arch == Arch::Arm64 {
        // The function's architecture must match the image's: switch it with the code.
        use aws_sdk_lambda::client::Waiters;
        let name = plan.function();
        ctx.lambda
            .update_function_code()
            .function_name(&name)
            .image_uri(&built.image_uri)
            .architectures(aws_sdk_lambda::types::Architecture::Arm64)
            .send()
            .await
            .map_err(aws("update image of", function::KIND, &name))?;
        ctx.lambda
            .wait_until_function_updated_v2()
            .function_name(&name)
            .wait(Duration::from_secs(600))
            .await
            .map_err(|e| {
                AwsError::local(
                    "wait for",
                    function::KIND,
                    &name,
                    format!("the function update did not finish: {e}"),
                )
            })?;
    } else if has_function {
        function::update_image(ctx, &plan.function(), &built.image_uri).await?;
    }
    // Recorded as built, so that a plain `up` keeps this image rather than shipping itself.
    let source = if built.how == "local" {
        ImageSource::Local
    } else {
        ImageSource::CodeBuild
    };
    store.update(|s| {
        s.settings.image_uri = Some(built.image_uri.clone());
        s.settings.image_source = Some(source);
        s.settings.architecture = Some(arch);
    })?;
    Ok(has_function)
}

fn parse_arch(s: &str) -> Arch {
    if s == "arm64" {
        Arch::Arm64
    } else {
        Arch::X86_64
    }
}

pub async fn run(global: &GlobalArgs, args: BuildImageArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let store = StateStore::open(&global.state_dir, &global.stack, "build-image")?;
    let Some(state) = store.snapshot() else {
        return Err(UsageError(format!(
            "stack `{}` has no state in {}: there is no repository to push to yet.\n  hint: run `thumbctl up` (without --image-uri it builds the image itself), or pass the right --stack/--state-dir",
            global.stack,
            global.state_dir.display()
        ))
        .into());
    };
    let ctx = context_for(global, Some(&state)).await?;
    check_account(&ctx, Some(&state)).await?;
    let plan = Plan {
        stack: state.stack.clone(),
        suffix: state.suffix.clone(),
        account: state.account.clone(),
        region: state.region.clone(),
        settings: state.settings.clone(),
    };
    let opts = Options {
        local: args.local,
        registry_url: args.registry_url.clone(),
        arch: parse_arch(&args.arch),
        force: args.force,
        timeout: args.timeout,
        source: args.source.clone(),
        quiet: global.quiet,
    };
    if opts.arch == Arch::Arm64 && !opts.local {
        return Err(UsageError(
            "--arch arm64 is available with --local only: the CodeBuild project builds x86_64"
                .into(),
        )
        .into());
    }
    if args.dry_run {
        return dry_run(global, &ctx, &plan, &opts).await;
    }
    let built = produce(&ctx, &plan, &store, &opts).await?;
    let updated = deploy(&ctx, &plan, &store, &built, opts.arch)
        .await
        .with_context(|| {
            format!(
                "pointing function {} at {}",
                plan.function(),
                built.image_uri
            )
        })?;
    let total = started.elapsed().as_secs_f64();
    if global.output == OutputMode::Json {
        return print_json(&json!({
            "stack": plan.stack, "image_uri": built.image_uri, "digest": built.digest,
            "tag": built.tag, "how": built.how, "layer_bytes": built.layer_bytes,
            "uploaded_bytes": built.uploaded_bytes, "function_updated": updated,
            "seconds": total,
        }));
    }
    println!("Image {} ({}, {:.1}s)", built.image_uri, built.how, total);
    if updated {
        println!(
            "  function {} now runs digest {}",
            plan.function(),
            built.digest
        );
    } else {
        println!(
            "  recorded for stack `{}`; `thumbctl up` creates the function with it",
            plan.stack
        );
    }
    Ok(())
}

/// What would happen: the tag of the current sources and whether ECR has it.
async fn dry_run(
    global: &GlobalArgs,
    ctx: &Ctx,
    plan: &Plan,
    opts: &Options,
) -> anyhow::Result<()> {
    let repo = plan.repository();
    let source: &Path = &opts.source;
    let pkg = package::package(source)?;
    let present = if opts.local {
        None
    } else {
        ecr_digest(ctx, &repo, &pkg.tag()).await?
    };
    let action = match (&present, opts.local, opts.force) {
        (_, true, _) => "build locally and push",
        (Some(_), false, false) => "nothing (ECR has this tag)",
        _ => "build in CodeBuild",
    };
    if global.output == OutputMode::Json {
        return print_json(&json!({
            "stack": plan.stack, "repository": repo, "tag": pkg.tag(), "source_sha256": pkg.sha256,
            "source_files": pkg.files, "source_bytes": pkg.zip.len(), "in_ecr": present,
            "action": action, "dry_run": true,
        }));
    }
    println!(
        "Dry run: sources {} files ({} bytes), tag {}: {action}.",
        pkg.files,
        pkg.zip.len(),
        pkg.tag()
    );
    Ok(())
}
