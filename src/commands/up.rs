//! `thumbctl up`: decide every name, record the intent, create what is missing.

use std::time::Instant;

use anyhow::Context;
use serde_json::json;

use super::build_image::{self, Built};
use super::{check_account, context_for, print_json};
use crate::UsageError;
use crate::cli::{Cap, GlobalArgs, OutputMode, UpArgs};
use crate::context::Ctx;
use crate::engine::{self, Cancel, EngineError, Outcome};
use crate::image::selfship::{self, SelfShipError};
use crate::image::{Arch, oci, prepare, sha256_digest};
use crate::progress::Progress;
use crate::stack::{ImageSource, Plan, Settings, new_suffix};
use crate::state::{STATE_VERSION, State, StateStore, Status};

/// Options given now win; options not given keep what the stack was last brought up with.
fn merge(previous: Settings, args: &UpArgs) -> Settings {
    let mut s = previous;
    if let Some(v) = &args.sizes {
        s.sizes = v.clone();
    }
    if let Some(v) = &args.format {
        s.format = v.clone();
    }
    if let Some(v) = args.quality {
        s.quality = v;
    }
    if let Some(v) = args.keep_copyright {
        s.keep_copyright = v;
    }
    if let Some(v) = args.memory_mb {
        s.memory_mb = v;
    }
    if let Some(v) = args.timeout_s {
        s.timeout_s = v;
    }
    if let Some(v) = &args.image_uri {
        s.image_uri = Some(v.clone());
        // Given, not made: a later plain `up` keeps it. Its architecture is unknown here, so
        // the function keeps the one it has.
        s.image_source = None;
    }
    for e in &args.notify_email {
        if !s.notify_emails.contains(e) {
            s.notify_emails.push(e.clone());
        }
    }
    for u in &args.notify_url {
        if !s.notify_urls.contains(u) {
            s.notify_urls.push(u.clone());
        }
    }
    match args.max_concurrency {
        Some(Cap::Limit(n)) => s.max_concurrency = Some(n),
        Some(Cap::Unlimited) => s.max_concurrency = None,
        None => {}
    }
    for e in &args.expire_days {
        if e.originals {
            s.expire_originals_days = e.days;
        }
        if e.thumbnails {
            s.expire_thumbnails_days = e.days;
        }
    }
    if let Some(b) = &args.source_bucket {
        s.adopted_source_bucket = Some(b.clone());
    }
    if let Some(p) = &args.source_prefix {
        s.source_prefix = Some(p.clone()).filter(|p| !p.is_empty());
    }
    if args.cdn {
        s.cdn = true;
    }
    s
}

/// The source bucket and its prefix are part of the stack's identity: changing them on a
/// stack that exists would strand its images and notification, so it is refused.
fn check_source_unchanged(previous: &Settings, args: &UpArgs) -> Result<(), UsageError> {
    let now_bucket = args.source_bucket.as_ref();
    let now_prefix = args.source_prefix.as_ref().filter(|p| !p.is_empty());
    let bucket_changes =
        now_bucket.is_some() && now_bucket != previous.adopted_source_bucket.as_ref();
    let prefix_changes =
        args.source_prefix.is_some() && now_prefix != previous.source_prefix.as_ref();
    if bucket_changes || prefix_changes {
        return Err(UsageError(format!(
            "the source of an existing stack cannot change (it is {}{}).\n  hint: drop --source-bucket/--source-prefix, or `thumbctl destroy` and `up` again, or use another --stack",
            previous
                .adopted_source_bucket
                .as_deref()
                .unwrap_or("the stack's own bucket"),
            previous
                .source_prefix
                .as_deref()
                .map(|p| format!(", prefix `{p}`"))
                .unwrap_or_default()
        )));
    }
    Ok(())
}

/// `--expire-days originals=N` is a lifecycle rule on the source bucket; an adopted bucket's
/// settings are the user's and thumbctl writes none, so the option would do nothing, silently.
/// Refused before anything is made, with what works instead.
fn check_expiry_applies(settings: &Settings) -> Result<(), UsageError> {
    match (
        &settings.adopted_source_bucket,
        settings.expire_originals_days,
    ) {
        (Some(bucket), Some(days)) => Err(UsageError(format!(
            "--expire-days would expire originals after {days} days, but the source bucket `{bucket}` is yours: \
             thumbctl leaves its settings, lifecycle rules included, alone.\n  hint: add an expiration rule to \
             `{bucket}` yourself (its expirations reach the function as LifecycleExpiration events, which remove \
             each original's thumbnails and item), and give `--expire-days thumbnails=N` for the thumbnails only; \
             `--expire-days originals=off` clears an expiry recorded earlier"
        ))),
        _ => Ok(()),
    }
}

/// An adopted bucket's customer managed KMS key, if any, into the plan (the function's role
/// is then granted `kms:Decrypt` on it), with a note naming the key.
async fn read_source_kms_key(
    global: &GlobalArgs,
    ctx: &Ctx,
    plan: &mut Plan,
) -> anyhow::Result<()> {
    plan.settings.source_kms_key = crate::resources::bucket::source_kms_key(ctx, plan)
        .await
        .context("reading how the adopted source bucket encrypts its objects")?;
    if let Some(key) = &plan.settings.source_kms_key {
        note(global.quiet, &kms_note(plan, key));
    }
    Ok(())
}

/// What `up` tells about an adopted bucket encrypted with a KMS key of the user's.
fn kms_note(plan: &Plan, key: &str) -> String {
    let mut line = format!(
        "The source bucket {} encrypts with the KMS key {key}: the function's role may use it to decrypt (kms:Decrypt).",
        plan.source_bucket()
    );
    // Another account's key answers to its own key policy as well as to the role's policy.
    let key_account = key.split(':').nth(4).unwrap_or_default();
    if !key_account.is_empty() && key_account != plan.account {
        line.push_str(&format!(
            "\n  The key belongs to account {key_account}: its key policy must also allow kms:Decrypt to role {}.",
            plan.role_arn(&plan.lambda_role())
        ));
    }
    line
}

/// How `up` gets the function's image this time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ImagePath {
    /// The image given now, or the one recorded, stays.
    Keep,
    /// Ship this thumbctl binary (or build in CodeBuild where it cannot be the function).
    ThisBinary,
    /// Build lambda-image's image: on this machine (`local`) or in CodeBuild.
    Build { local: bool },
}

/// The default is this binary; `--local`/`--codebuild` choose a build. Either replaces only a
/// missing image or one this binary's kind shipped (so a rerun follows thumbctl upgrades):
/// an image given with --image-uri or built on purpose stays until `build-image` replaces it.
fn image_path(previous: Option<&Settings>, args: &UpArgs) -> ImagePath {
    if args.image_uri.is_some() {
        return ImagePath::Keep;
    }
    let replaceable = previous
        .is_none_or(|s| s.image_uri.is_none() || s.image_source == Some(ImageSource::ThisBinary));
    match (replaceable, args.local, args.codebuild) {
        (false, _, _) => ImagePath::Keep,
        (true, true, _) => ImagePath::Build { local: true },
        (true, false, true) => ImagePath::Build { local: false },
        (true, false, false) => ImagePath::ThisBinary,
    }
}

/// Whether `endpoint` is AWS's own: none given (the SDK resolves AWS's), or a host under one of
/// AWS's domains (a FIPS, dual-stack or VPC endpoint). Anything else is an emulator or a
/// mirror, where nobody pays for the function's speed.
fn is_aws_endpoint(endpoint: Option<&str>) -> bool {
    let Some(url) = endpoint else {
        return true;
    };
    let host = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['/', ':', '?'])
        .next()
        .unwrap_or_default()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    [".amazonaws.com", ".amazonaws.com.cn", ".api.aws"]
        .iter()
        .any(|d| host.ends_with(d))
}

/// Whether this thumbctl is a debug build. `debug_assertions` is what tells Cargo's `dev`
/// profile (a plain `cargo build`) from `release` and `lambda` at compile time, with nothing
/// to read or guess at run time; a hand-made profile that optimises with debug assertions on
/// (or the reverse) would be misjudged, and can use --codebuild or --image-uri.
const DEBUG_BUILD: bool = cfg!(debug_assertions);

/// One argument for a shell command line, quoted when it needs to be.
fn shell_word(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:=,@%+".contains(c));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// The command that builds an optimised thumbctl, and the same `up` run with it: next to this
/// binary's `target/debug`, the `lambda` profile's `target/lambda` (release code, stripped).
fn optimised_rerun(exe: Option<&std::path::Path>, args: &[String]) -> String {
    let built = exe
        .and_then(|e| {
            let dir = e.parent()?;
            (dir.file_name()? == std::ffi::OsStr::new("debug"))
                .then(|| dir.parent().map(|t| t.join("lambda")))?
        })
        .map(|dir| dir.join("thumbctl").display().to_string())
        .unwrap_or_else(|| "target/lambda/thumbctl".to_owned());
    let mut line = format!(
        "cargo build --locked --profile lambda -p thumbctl && {}",
        shell_word(&built)
    );
    for a in args {
        line.push(' ');
        line.push_str(&shell_word(a));
    }
    line
}

/// `up` never ships a debug build to AWS: its image would be several times larger (an 82 MB
/// layer measured) and the function several times slower on every image, billed by the
/// millisecond. Against an emulator the debug build is what the tests and the local demo
/// want, fast to build. `debug_self` is whether the running binary would be shipped as a debug
/// build; `debug_local` whether `--local` would build one (THUMBCTL_LAMBDA_PROFILE=dev).
fn refuse_debug_build(
    path: ImagePath,
    endpoint: Option<&str>,
    debug_self: bool,
    debug_local: bool,
    rerun: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    if !is_aws_endpoint(endpoint) {
        return Ok(());
    }
    match path {
        ImagePath::ThisBinary if debug_self => Err(anyhow::anyhow!(
            "this thumbctl is a debug build (unoptimised), and `up` ships the running thumbctl as the function: on AWS that would be a much larger image and a function several times slower on every image, which you pay for. Nothing was created.\n  hint: build an optimised thumbctl and run `up` with it:\n    {}\n  or let CodeBuild build the function (`up --codebuild`), or pass --image-uri",
            rerun()
        )),
        ImagePath::Build { local: true } if debug_local => Err(anyhow::anyhow!(
            "THUMBCTL_LAMBDA_PROFILE asks `up --local` for an unoptimised (debug) build of the function, and this is AWS: the function would be several times slower on every image, which you pay for. Nothing was created.\n  hint: unset THUMBCTL_LAMBDA_PROFILE (the default, `{}`, is optimised)",
            crate::image::build::PROFILE
        )),
        _ => Ok(()),
    }
}

/// Why shipping this binary did not give an image.
enum ShipError {
    /// It cannot run on Lambda (the reason): `up` builds instead.
    Unsuitable(String),
    Failed(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for ShipError {
    fn from(e: E) -> Self {
        ShipError::Failed(e.into())
    }
}

fn note(quiet: bool, line: &str) {
    if !quiet {
        eprintln!("{line}");
    }
}

/// Pushes this thumbctl, with what it needs to start, as the function's image to the stack's
/// repository (creating and recording the repository first if needed). The tag is the digest
/// of the uncompressed layer, so an unchanged binary is found by one HEAD and neither
/// compressed nor pushed again.
async fn ship_self(
    ctx: &Ctx,
    plan: &Plan,
    store: &StateStore,
    registry_url: Option<&str>,
    quiet: bool,
) -> Result<(Built, Arch), ShipError> {
    let started = Instant::now();
    let contents = tokio::task::spawn_blocking(|| {
        selfship::running_binary().and_then(|bin| selfship::resolve(&bin))
    })
    .await
    .context("looking at the running binary")?
    .map_err(|e| match e {
        SelfShipError::Unsuitable(why) => ShipError::Unsuitable(why),
        other => ShipError::Failed(other.into()),
    })?;
    note(
        quiet,
        &format!(
            "Shipping this thumbctl as the function ({}): {}",
            contents.describe(),
            contents.binary.display()
        ),
    );
    // No CA bundle of this machine goes in: the function trusts the roots compiled into it
    // when its environment has none (lambda_image::tls), whatever this host's layout.
    let arch = contents.arch;
    let env = contents.env();
    let (tar, diff_id) = tokio::task::spawn_blocking(move || {
        selfship::layer_tar(&contents).map(|tar| {
            let diff_id = sha256_digest(&tar);
            (tar, diff_id)
        })
    })
    .await
    .context("assembling the image layer")??;
    let tag = selfship::tag(&diff_id);

    prepare::ensure_steps(ctx, plan, store, prepare::FOR_LOCAL, quiet)
        .await
        .context("creating the repository the image goes to")?;
    let repo = plan.repository();
    let reg = build_image::stack_registry(ctx, &repo, registry_url).await?;
    let (digest, layer_bytes, uploaded) = match reg.manifest_digest(&repo, &tag).await? {
        Some(digest) => {
            note(
                quiet,
                &format!(
                    "  {repo}:{tag} is already in {}: this binary was shipped before, nothing to push.",
                    reg.base()
                ),
            );
            (digest, None, 0)
        }
        None => {
            let image =
                tokio::task::spawn_blocking(move || oci::assemble_tar(&tar, diff_id, arch, &env))
                    .await
                    .context("assembling the image")??;
            note(
                quiet,
                &format!(
                    "Image {} assembled: layer {:.1} MB compressed. Pushing to {}/{repo}...",
                    image.manifest.digest,
                    image.layer.bytes.len() as f64 / 1e6,
                    reg.base()
                ),
            );
            let report = reg
                .push(&repo, &image, &tag, |l| note(quiet, &format!("  {l}")))
                .await
                .with_context(|| format!("pushing the image to {}/{repo}", reg.base()))?;
            // The image is complete in the registry; nothing records it yet.
            crate::failpoint::crash_point("ship:manifest-pushed");
            (
                report.manifest_digest,
                Some(image.layer.bytes.len() as u64),
                report.uploaded_bytes,
            )
        }
    };
    let uri = build_image::repository_uri(ctx, &repo).await?;
    Ok((
        Built {
            image_uri: format!("{uri}@{digest}"),
            digest,
            tag,
            how: "self",
            layer_bytes,
            uploaded_bytes: Some(uploaded),
            seconds: started.elapsed().as_secs_f64(),
        },
        arch,
    ))
}

/// Builds lambda-image's image (CodeBuild, or here with `local`), creating and recording
/// first what the build needs.
async fn build(
    ctx: &Ctx,
    plan: &Plan,
    store: &StateStore,
    local: bool,
    registry_url: Option<String>,
    quiet: bool,
) -> anyhow::Result<Built> {
    let opts = build_image::Options::for_up(local, registry_url, quiet);
    build_image::produce(ctx, plan, store, &opts)
        .await
        .with_context(|| {
            format!(
                "building the function's image for stack `{}` (what was made so far is recorded in {}; rerun `thumbctl up`, or pass --image-uri)",
                plan.stack,
                store.path().display()
            )
        })
}

pub async fn run(global: &GlobalArgs, args: UpArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let store = StateStore::open(&global.state_dir, &global.stack, "up")?;
    let existing = store.snapshot();
    let ctx = context_for(global, existing.as_ref()).await?;
    // Before any AWS call: a refused `up` creates nothing and asks nothing. A dry run creates
    // nothing anyway, and says it in its image line.
    let refused = refuse_debug_build(
        image_path(existing.as_ref().map(|s| &s.settings), &args),
        ctx.endpoint.as_deref(),
        DEBUG_BUILD && cfg!(target_os = "linux"),
        matches!(crate::image::build::profile().as_str(), "dev" | "test"),
        || {
            let exe = std::env::current_exe().ok();
            let args: Vec<String> = std::env::args().skip(1).collect();
            optimised_rerun(exe.as_deref(), &args)
        },
    );
    let refused = match refused {
        Err(e) if !args.dry_run => return Err(e),
        other => other.err(),
    };
    let account = check_account(&ctx, existing.as_ref()).await?;
    if let Some(prev) = &existing {
        check_source_unchanged(&prev.settings, &args)?;
    }
    let settings = merge(
        existing
            .as_ref()
            .map(|s| s.settings.clone())
            .unwrap_or_default(),
        &args,
    );
    check_expiry_applies(&settings)?;
    let mut plan = Plan {
        stack: global.stack.clone(),
        suffix: existing
            .as_ref()
            .map(|s| s.suffix.clone())
            .unwrap_or_else(new_suffix),
        account: account.clone(),
        region: ctx.region.clone(),
        settings,
    };

    if args.dry_run {
        if plan.source_adopted() {
            read_source_kms_key(global, &ctx, &mut plan).await?;
        }
        let mut image = image_plan_line(
            image_path(existing.as_ref().map(|s| &s.settings), &args),
            &plan,
        )
        .await;
        if let Some(why) = refused {
            image = format!("REFUSED, {image}: {why:#}");
        }
        return dry_run(global, &plan, existing.as_ref(), &image);
    }

    // A bucket to adopt is checked before anything is made or recorded: the engine runs
    // independent steps side by side, so a missing bucket, another account's or another
    // region's would otherwise be refused only after the rest of the stack was created.
    if plan.source_adopted() {
        let name = plan.source_bucket();
        crate::resources::bucket::ensure(&ctx, &plan, &name)
            .await
            .with_context(|| {
                format!("checking --source-bucket {name} before anything is made; nothing was")
            })?;
        // Only once the bucket is known to be the account's: another account's answers its
        // encryption with AccessDenied, which would hide the real reason.
        read_source_kms_key(global, &ctx, &mut plan).await?;
    }

    match &existing {
        None => store.init(State {
            version: STATE_VERSION,
            stack: plan.stack.clone(),
            region: plan.region.clone(),
            account,
            suffix: plan.suffix.clone(),
            created_at: crate::now_rfc3339(),
            settings: plan.settings.clone(),
            resources: Default::default(),
        })?,
        // Record the intended settings first: a crash mid-way then resumes towards them.
        Some(_) => store.update(|s| s.settings = plan.settings.clone())?,
    }

    // The image first: creating only what making it needs, recorded like every other
    // resource; then the function gets it by digest.
    let quiet = global.quiet;
    let mut made: Option<(Built, ImageSource, Arch)> = None;
    match image_path(existing.as_ref().map(|s| &s.settings), &args) {
        ImagePath::Keep => {
            if (args.local || args.codebuild)
                && let Some(uri) = &plan.settings.image_uri
            {
                note(
                    quiet,
                    &format!(
                        "The stack keeps its image {uri}; `thumbctl build-image{}` builds a new one.",
                        if args.local { " --local" } else { "" }
                    ),
                );
            }
        }
        ImagePath::Build { local } => {
            let built = build(&ctx, &plan, &store, local, args.registry_url.clone(), quiet).await?;
            let source = if local {
                ImageSource::Local
            } else {
                ImageSource::CodeBuild
            };
            made = Some((built, source, Arch::X86_64));
        }
        ImagePath::ThisBinary => {
            match ship_self(&ctx, &plan, &store, args.registry_url.as_deref(), quiet).await {
                Ok((built, arch)) => made = Some((built, ImageSource::ThisBinary, arch)),
                Err(ShipError::Unsuitable(why)) => {
                    if let Some(uri) = &plan.settings.image_uri {
                        note(
                            quiet,
                            &format!(
                                "This thumbctl cannot be the function ({why}); the function keeps {uri}."
                            ),
                        );
                    } else {
                        note(
                            quiet,
                            &format!(
                                "This thumbctl cannot be the function ({why}): building the function's image in CodeBuild instead{}.",
                                if args.registry_url.is_some() {
                                    " (--registry-url does not apply to it)"
                                } else {
                                    ""
                                }
                            ),
                        );
                        let built = build(&ctx, &plan, &store, false, None, quiet).await?;
                        made = Some((built, ImageSource::CodeBuild, Arch::X86_64));
                    }
                }
                Err(ShipError::Failed(e)) => {
                    return Err(e).with_context(|| {
                        format!(
                            "shipping this thumbctl as the function's image for stack `{}` (what was made so far is recorded in {}; rerun `thumbctl up`, or pass --image-uri, --local or --codebuild)",
                            plan.stack,
                            store.path().display()
                        )
                    });
                }
            }
        }
    }
    if let Some((built, source, arch)) = &made {
        plan.settings.image_uri = Some(built.image_uri.clone());
        plan.settings.image_source = Some(*source);
        plan.settings.architecture = Some(*arch);
        store.update(|s| s.settings = plan.settings.clone())?;
        note(
            quiet,
            &format!(
                "Image {} ({}, {})",
                built.image_uri,
                built.how,
                arch.lambda_name()
            ),
        );
    }
    let progress = Progress::new(global.quiet);
    progress.note(&format!(
        "Bringing up stack `{}` in {} (account {}); state: {}",
        plan.stack,
        plan.region,
        plan.account,
        store.path().display()
    ));
    if !ctx.tls_only_policy() {
        progress.note("Note: the endpoint is plain HTTP (an emulator), so the buckets get no TLS-only policy; on AWS they always do.");
    }
    let cancel = Cancel::default();
    engine::install_interrupt_handler(
        cancel.clone(),
        "finishing the AWS calls in flight and saving the state",
    );
    let outcomes = match engine::up(&ctx, &plan, &store, &cancel, &progress).await {
        Ok(o) => o,
        Err(EngineError::Interrupted) => {
            return Err(anyhow::Error::new(EngineError::Interrupted)).with_context(|| {
                format!(
                    "`up` of stack `{}` stopped part-way; state saved in {}. Rerun `thumbctl up` to finish, or `thumbctl destroy` to remove what was made",
                    plan.stack,
                    store.path().display()
                )
            });
        }
        Err(e) => {
            return Err(anyhow::Error::new(e)).with_context(|| {
                format!(
                    "`up` of stack `{}` did not finish; everything made so far is recorded in {}. Fix the cause and rerun `thumbctl up` (it resumes), or run `thumbctl destroy`",
                    plan.stack,
                    store.path().display()
                )
            });
        }
    };

    let count = |o: Outcome| outcomes.values().filter(|v| **v == o).count();
    let state = store
        .snapshot()
        .context("the state vanished while running")?;
    if global.output == OutputMode::Json {
        let resources: Vec<_> = state
            .resources
            .iter()
            .map(|(id, e)| {
                json!({"id": id, "kind": e.kind, "name": e.name, "arn": e.arn,
                       "outcome": outcomes.get(id).map(|o| o.verb())})
            })
            .collect();
        return print_json(&json!({
            "stack": plan.stack, "region": plan.region, "account": plan.account,
            "state_file": store.path(), "source_bucket": plan.source_bucket(),
            "dest_bucket": plan.dest_bucket(), "function": plan.function(), "table": plan.table(),
            "topic_arn": plan.topic_arn(), "resources": resources,
            "cdn_domain": cdn_domain(&state),
            "created": count(Outcome::Created), "updated": count(Outcome::Updated),
            "unchanged": count(Outcome::Unchanged), "seconds": started.elapsed().as_secs_f64(),
            "image": made.as_ref().map(|(built, _, arch)| {
                let mut v = json!(built);
                v["architecture"] = json!(arch);
                v
            }),
        }));
    }
    println!(
        "Stack `{}` is up in {}: {} created, {} updated, {} unchanged ({:.1}s).",
        plan.stack,
        plan.region,
        count(Outcome::Created),
        count(Outcome::Updated),
        count(Outcome::Unchanged),
        started.elapsed().as_secs_f64()
    );
    println!("  uploads go to     s3://{}/", plan.source_bucket());
    println!("  thumbnails land in s3://{}/", plan.dest_bucket());
    println!("  metadata table    {}", plan.table());
    println!("  announcements     {}", plan.topic_arn());
    if let Some(domain) = cdn_domain(&state) {
        println!(
            "  thumbnails served https://{domain}/<key> (CloudFront; a new distribution takes a few minutes to deploy)"
        );
    }
    println!(
        "Remove it all with: thumbctl --stack {} destroy",
        plan.stack
    );
    if let Some(previous) = existing.as_ref().map(|s| &s.settings)
        && (previous.sizes != plan.settings.sizes || previous.format != plan.settings.format)
    {
        match lacking_new_thumbnails(&ctx, &plan).await {
            Ok((0, _, _)) => {}
            Ok((lacking, seen, capped)) => println!(
                "{lacking} of {}{seen} processed images lack the new thumbnails ({} as {}). Make them with:\n  \
                 thumbctl --stack {} reprocess --only-missing      (or --batch for very many)",
                if capped { "the first " } else { "" },
                plan.settings.sizes.join(","),
                plan.settings.format,
                plan.stack
            ),
            Err(e) => {
                tracing::warn!("could not count the images that lack the new thumbnails: {e:#}")
            }
        }
    }
    Ok(())
}

/// The CloudFront domain the state records for the stack, if it has a distribution.
fn cdn_domain(state: &State) -> Option<String> {
    state
        .resources
        .get("cdn")
        .and_then(|e| e.extra.get("domain").cloned())
}

/// How many recorded images lack thumbnails of the plan's sizes and format (of the first
/// 10 000 items, to stay quick): (lacking, looked at, stopped at the cap).
async fn lacking_new_thumbnails(ctx: &Ctx, plan: &Plan) -> anyhow::Result<(usize, usize, bool)> {
    const CAP: usize = 10_000;
    let env = plan.function_environment().into_iter().collect();
    let config = lambda_image::config::Config::from_vars(&env)?;
    let items = super::images::list_items(ctx, &plan.table(), None, CAP).await?;
    let lacking = items
        .iter()
        .filter(|item| {
            let etag = item
                .get("etag")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default();
            !super::reprocess::is_current(item, etag, &config)
        })
        .count();
    Ok((lacking, items.len(), items.len() >= CAP))
}

/// What `up` would do for the image, in words, for the dry run.
async fn image_plan_line(path: ImagePath, plan: &Plan) -> String {
    match path {
        ImagePath::Keep => match &plan.settings.image_uri {
            Some(uri) => format!("keep {uri}"),
            None => "none given".into(),
        },
        ImagePath::Build { local: true } => "build lambda-image on this machine and push it".into(),
        ImagePath::Build { local: false } => "build lambda-image in CodeBuild".into(),
        ImagePath::ThisBinary => {
            let contents = tokio::task::spawn_blocking(|| {
                selfship::running_binary().and_then(|bin| selfship::resolve(&bin))
            })
            .await;
            match contents {
                Ok(Ok(c)) => format!(
                    "ship this thumbctl ({}): {}",
                    c.describe(),
                    c.binary.display()
                ),
                Ok(Err(SelfShipError::Unsuitable(why))) => {
                    format!(
                        "build lambda-image in CodeBuild (this thumbctl cannot be the function: {why})"
                    )
                }
                Ok(Err(e)) => format!("ship this thumbctl, which would fail: {e}"),
                Err(e) => format!("ship this thumbctl (could not look at it: {e})"),
            }
        }
    }
}

fn dry_run(
    global: &GlobalArgs,
    plan: &Plan,
    existing: Option<&State>,
    image: &str,
) -> anyhow::Result<()> {
    let steps = engine::steps(plan);
    let status_of = |id: &str| match existing.and_then(|s| s.resources.get(id)).map(|e| e.status) {
        Some(Status::Created) => "exists (check only)",
        Some(Status::Kept) => "kept (adopt)",
        Some(Status::Planned) => "create or adopt",
        None => "create",
    };
    if global.output == OutputMode::Json {
        let list: Vec<_> = steps
            .iter()
            .map(|s| {
                json!({"id": s.id, "kind": s.kind, "name": s.name, "arn": s.arn,
                            "after": engine::deps(&s.id), "action": status_of(&s.id)})
            })
            .collect();
        return print_json(
            &json!({"stack": plan.stack, "region": plan.region, "account": plan.account, "dry_run": true, "image": image, "steps": list}),
        );
    }
    println!(
        "Dry run: stack `{}` in {} (account {}). Nothing will be created.",
        plan.stack, plan.region, plan.account
    );
    println!("  image: {image}");
    for s in &steps {
        let after = engine::deps(&s.id);
        let after = if after.is_empty() {
            String::new()
        } else {
            format!("  (after {})", after.join(", "))
        };
        println!(
            "  {:<20} {:<14} {:<45} {}{after}",
            s.id,
            s.kind,
            s.name,
            status_of(&s.id)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn args(line: &[&str]) -> UpArgs {
        let cli = Cli::try_parse_from(["thumbctl", "up"].iter().chain(line)).expect("parses");
        match cli.command {
            Command::Up(a) => a,
            other => panic!("{other:?}"),
        }
    }

    fn recorded(source: Option<ImageSource>) -> Settings {
        Settings {
            image_uri: Some("1.dkr.ecr.us-east-1.amazonaws.com/r@sha256:ab".into()),
            image_source: source,
            ..Settings::default()
        }
    }

    #[test]
    fn this_binary_by_default_and_builds_on_request() {
        let fresh = Settings::default();
        for previous in [None, Some(&fresh)] {
            assert_eq!(image_path(previous, &args(&[])), ImagePath::ThisBinary);
            assert_eq!(
                image_path(
                    previous,
                    &args(&["--registry-url", "http://127.0.0.1:5000"])
                ),
                ImagePath::ThisBinary
            );
            assert_eq!(
                image_path(previous, &args(&["--local"])),
                ImagePath::Build { local: true }
            );
            assert_eq!(
                image_path(previous, &args(&["--codebuild"])),
                ImagePath::Build { local: false }
            );
            assert_eq!(
                image_path(previous, &args(&["--image-uri", "x/y:1"])),
                ImagePath::Keep
            );
        }
    }

    /// A rerun ships itself again only over what it shipped (so the function follows a new
    /// thumbctl); an image given or built on purpose stays, as before this path existed.
    #[test]
    fn a_rerun_replaces_only_a_shipped_image() {
        let shipped = recorded(Some(ImageSource::ThisBinary));
        assert_eq!(
            image_path(Some(&shipped), &args(&[])),
            ImagePath::ThisBinary
        );
        assert_eq!(
            image_path(Some(&shipped), &args(&["--codebuild"])),
            ImagePath::Build { local: false }
        );
        for source in [None, Some(ImageSource::Local), Some(ImageSource::CodeBuild)] {
            let s = recorded(source);
            assert_eq!(
                image_path(Some(&s), &args(&[])),
                ImagePath::Keep,
                "{source:?}"
            );
            assert_eq!(
                image_path(Some(&s), &args(&["--local"])),
                ImagePath::Keep,
                "{source:?}"
            );
        }
    }

    #[test]
    fn a_given_image_is_no_longer_recorded_as_shipped() {
        let s = merge(
            recorded(Some(ImageSource::ThisBinary)),
            &args(&["--image-uri", "x/y:1"]),
        );
        assert_eq!(s.image_uri.as_deref(), Some("x/y:1"));
        assert_eq!(s.image_source, None);
    }

    #[test]
    fn aws_endpoints_are_told_from_emulators() {
        for aws in [
            None,
            Some("https://lambda.us-east-1.amazonaws.com"),
            Some("https://sts-fips.us-east-1.amazonaws.com/"),
            Some("https://ecr.cn-north-1.amazonaws.com.cn"),
            Some("https://s3.dualstack.eu-west-1.api.aws"),
            Some("https://vpce-0a1b-x.lambda.eu-west-1.vpce.amazonaws.com:443/"),
        ] {
            assert!(is_aws_endpoint(aws), "{aws:?}");
        }
        for emulator in [
            "http://127.0.0.1:5000",
            "http://localhost:4566",
            "https://amazonaws.com.evil.example",
            "http://moto",
        ] {
            assert!(!is_aws_endpoint(Some(emulator)), "{emulator}");
        }
    }

    #[test]
    fn a_debug_build_is_refused_on_aws_only() {
        let rerun = || "REBUILD".to_owned();
        let err = refuse_debug_build(ImagePath::ThisBinary, None, true, false, rerun)
            .expect_err("a debug build to AWS");
        let text = err.to_string();
        assert!(text.contains("debug build"), "{text}");
        assert!(text.contains("REBUILD"), "{text}");
        assert!(text.contains("Nothing was created"), "{text}");
        // An emulator, an optimised build, or an image that is not this binary: no refusal.
        let local = Some("http://127.0.0.1:5000");
        assert!(refuse_debug_build(ImagePath::ThisBinary, local, true, true, rerun).is_ok());
        assert!(refuse_debug_build(ImagePath::ThisBinary, None, false, false, rerun).is_ok());
        assert!(refuse_debug_build(ImagePath::Keep, None, true, true, rerun).is_ok());
        assert!(
            refuse_debug_build(ImagePath::Build { local: false }, None, true, true, rerun).is_ok()
        );
        // `--local` with the tests' unoptimised profile, on AWS.
        let local_build = ImagePath::Build { local: true };
        assert!(refuse_debug_build(local_build, None, true, true, rerun).is_err());
        assert!(refuse_debug_build(local_build, None, true, false, rerun).is_ok());
        assert!(refuse_debug_build(local_build, local, false, true, rerun).is_ok());
    }

    #[test]
    fn the_rerun_command_builds_the_lambda_profile_and_repeats_the_arguments() {
        let args: Vec<String> = ["--stack", "my demo", "up", "--sizes", "128,256"]
            .map(String::from)
            .into();
        assert_eq!(
            optimised_rerun(
                Some(Path::new("/src/thumbctl/target/debug/thumbctl")),
                &args
            ),
            "cargo build --locked --profile lambda -p thumbctl && /src/thumbctl/target/lambda/thumbctl --stack 'my demo' up --sizes 128,256"
        );
        assert_eq!(
            optimised_rerun(Some(Path::new("/usr/local/bin/thumbctl")), &[]),
            "cargo build --locked --profile lambda -p thumbctl && target/lambda/thumbctl"
        );
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }

    #[test]
    fn build_flags_exclude_each_other_and_a_given_image() {
        for bad in [
            &["--local", "--codebuild"][..],
            &["--image-uri", "x/y:1", "--local"],
            &["--image-uri", "x/y:1", "--registry-url", "http://r"],
            &["--codebuild", "--registry-url", "http://r"],
        ] {
            assert!(
                Cli::try_parse_from(["thumbctl", "up"].iter().chain(bad)).is_err(),
                "{bad:?}"
            );
        }
    }
}
