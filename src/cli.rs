//! The command-line contract, in one place. Later work and outside checks rely on these names.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const ABOUT: &str = "Provision, use and remove a serverless image-thumbnail pipeline on AWS.";
const LONG_ABOUT: &str = "\
Provision, use and remove a serverless image-thumbnail pipeline on AWS.

`thumbctl up` creates, with the AWS SDK directly: a source and a destination S3 bucket, IAM
roles with least-privilege policies, an ECR repository, a CodeBuild project, a DynamoDB
table, an SNS topic, log groups, the container-image Lambda that makes the thumbnails, and
the S3 trigger. Every resource is recorded in a state file the moment it exists, so
`thumbctl destroy` removes exactly what was made, even after a crash.

Credentials and region come from the usual AWS places (environment, ~/.aws, --profile).
Set --endpoint-url (or AWS_ENDPOINT_URL) to use a local emulator such as moto.";

const AFTER_HELP: &str = "\
Examples:
  thumbctl up
  thumbctl up --image-uri 123456789012.dkr.ecr.eu-west-1.amazonaws.com/thumbs:1
  thumbctl status --output json
  thumbctl --stack demo destroy --yes";

const PRESIGN_AFTER_HELP: &str = "\
Examples:
  thumbctl presign trip/cat.jpg                 a download link (GET)
  thumbctl presign trip/cat.jpg --put           an upload URL (PUT; any size)
  thumbctl presign 'uploads/${filename}' --post --max-size 20MB --expires 1h

A presigned PUT cannot cap the upload's size. --post makes a form upload instead, signed with
a POST policy that S3 enforces: at most --max-size bytes (and not empty), a Content-Type that
starts with image/ (exactly --content-type if given), the key (or, for a key ending in
${filename}, any key under that prefix; S3 puts the uploaded file's name there), and the
expiry. It prints the URL, the form's fields, and a curl command; a browser sends the same
fields in a multipart/form-data POST, with the file as the last field:

  curl --form-string 'key=uploads/${filename}' --form-string 'Content-Type=image/jpeg' \\
       --form-string 'policy=...' ... -F file=@photo.jpg https://<bucket>.s3.<region>.amazonaws.com/

S3 answers 204 on success, and 400 EntityTooLarge or 403 AccessDenied (\"Invalid according to
Policy\") when the upload breaks a condition.";

#[derive(Debug, Parser)]
#[command(name = "thumbctl", version, about = ABOUT, long_about = LONG_ABOUT, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Name of the stack: lower-case letters, digits and hyphens; prefixes every resource name.
    #[arg(long, global = true, default_value = "thumbctl", value_parser = parse_stack)]
    pub stack: String,
    /// Directory holding the state files (`<stack>.json`).
    #[arg(long, global = true, default_value = "state", value_name = "DIR")]
    pub state_dir: PathBuf,
    /// AWS region (default: from the environment or profile; for an existing stack, its own).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// AWS profile from ~/.aws/config.
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// Send every AWS call to this endpoint (e.g. a local emulator); S3 then uses path-style addressing.
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL", value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Output format of the command's result.
    #[arg(long, global = true, value_enum, default_value_t = OutputMode::Text)]
    pub output: OutputMode,
    /// More logging (-v info, -vv debug, -vvv AWS SDK debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print only errors and the result.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputMode {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the pipeline, or bring an existing one in line with the options (idempotent).
    #[command(
        after_help = "A rerun creates nothing that exists; changed --sizes/--format/--quality/--memory-mb/\
--timeout-s/--image-uri update the function in place. Options not given keep their previous values.\n\n\
Without --image-uri, the function's image is this thumbctl binary itself (it runs as the function when \
Lambda starts it), with what it needs to start, pushed to the stack's ECR repository: no build. A rerun \
ships it again (nothing is pushed if it did not change). Where this binary cannot run on Lambda (not \
Linux x86_64/arm64), up builds the image in CodeBuild instead; --local or --codebuild choose a build."
    )]
    Up(UpArgs),
    /// Show every resource recorded for the stack and whether it still exists in AWS.
    Status(StatusArgs),
    /// Delete everything the stack created, newest dependencies first.
    #[command(
        after_help = "Only resources recorded in the state file are touched. Buckets are emptied first \
(all versions and unfinished uploads) unless --keep-buckets."
    )]
    Destroy(DestroyArgs),
    /// Build the function's container image, push it to ECR and point the function at it.
    #[command(
        after_help = "Default: package lambda-image's sources and build in the stack's CodeBuild project \
(nothing needed on this machine); the image is tagged by the sources' hash, so unchanged sources build \
nothing. --local: build a static binary with cargo and push a one-layer OCI image directly (no Docker)."
    )]
    BuildImage(BuildImageArgs),
    /// Upload images (files or directories) to the stack's source bucket.
    #[command(
        after_help = "Examples:\n  thumbctl upload cat.jpg\n  thumbctl upload ~/Pictures/trip --prefix trip/ --wait\n\n\
Files are typed from their bytes, not their names; what is not an image is refused (all or nothing) unless --force. \
Large files go up in parts. With --wait, prints each image's thumbnails with download links."
    )]
    Upload(UploadArgs),
    /// List the images the function has processed, newest first.
    List(ListArgs),
    /// Show one image's metadata and thumbnails, with download links.
    Get(GetArgs),
    /// Delete images: the original, every thumbnail, and the metadata item.
    Delete(DeleteArgs),
    /// Make a presigned URL to upload (PUT) or download (GET) an object, or a form (POST) a
    /// browser uploads with under a size cap.
    #[command(after_help = PRESIGN_AFTER_HELP)]
    Presign(PresignArgs),
    /// Serve a web page of the stack's images: thumbnails, drag-and-drop upload, delete.
    #[command(after_help = GALLERY_AFTER_HELP)]
    Gallery(GalleryArgs),
    /// Run the function's handler on this machine for objects already in the source bucket.
    #[command(
        after_help = "Uses the deployed function's environment and the exact event S3 sends, \
so the result in S3, DynamoDB and SNS is what the function would produce. This is how the local \
emulator, which runs no Lambda code, completes the pipeline."
    )]
    InvokeLocal(InvokeLocalArgs),
    /// Run the function again over originals already in the source bucket (backfill).
    #[command(
        after_help = "After `up --sizes/--format` changed the thumbnails, or to retry failures:\n  \
thumbctl reprocess --only-missing\n  thumbctl reprocess --failed\n  thumbctl reprocess --prefix 2024/ --local\n  \
thumbctl reprocess --batch --only-missing\n\n\
Each original is sent to the function as the S3 event of its upload (asynchronously, --concurrency at once); \
the function skips what already has the current thumbnails, so a rerun after Ctrl-C or a failure only does what is \
left. --only-missing checks that here first and sends only the rest. --local runs the function's handler on this \
machine instead (as invoke-local does). --failed replays the events Lambda gave up on (the stack's failure queue) and \
the images recorded as failed. --batch hands the list to S3 Batch Operations (for millions of originals): thumbctl \
writes the manifest, creates the job and shows its progress."
    )]
    Reprocess(ReprocessArgs),
    /// Make thumbnails of local files with the function's engine, to preview its output.
    Thumbnail(ThumbnailArgs),
    /// Print the least IAM policy a person needs to run thumbctl for this stack name.
    #[command(
        after_help = "Every resource is scoped to the stack's name prefix (`<stack>-*`), except the calls AWS \
only authorises on \"*\" (the ECR login, and the listings `status --orphans` searches). Give it to the \
user or role that runs thumbctl:\n  thumbctl --stack thumbs permissions > policy.json\n  \
aws iam put-user-policy --user-name alice --policy-name thumbctl --policy-document file://policy.json"
    )]
    Permissions,
    /// Print a shell completion script (bash, zsh, fish, elvish or powershell).
    #[command(
        after_help = "Examples:\n  thumbctl completions bash > ~/.local/share/bash-completion/completions/thumbctl\n  \
thumbctl completions zsh > \"${fpath[1]}/_thumbctl\"\n  thumbctl completions fish > ~/.config/fish/completions/thumbctl.fish\n  \
thumbctl completions powershell >> $PROFILE"
    )]
    Completions(CompletionsArgs),
    /// Print the manual page (roff), or write one page per command into --dir.
    #[command(
        after_help = "Examples:\n  thumbctl man | man -l -\n  thumbctl man --dir ~/.local/share/man/man1 && man thumbctl-up"
    )]
    Man(ManArgs),
}

#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Clone, Args)]
pub struct ManArgs {
    /// Write `thumbctl.1` and a `thumbctl-<command>.1` for each command here, instead of
    /// printing `thumbctl.1`.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct UploadArgs {
    /// Image files or directories (recursed).
    #[arg(required = true, value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,
    /// Prefix for the object keys (e.g. `trip/`).
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Wait until the function has processed each image, then print its thumbnails.
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits (e.g. 90s, 5m).
    #[arg(long, default_value = "120s", value_parser = parse_expiry)]
    pub timeout: std::time::Duration,
    /// Upload files that are not images too.
    #[arg(long)]
    pub force: bool,
}

const GALLERY_AFTER_HELP: &str = "Examples:\n  thumbctl gallery --open\n  thumbctl gallery --port 9000\n  \
thumbctl gallery --bind 0.0.0.0   # reachable from other machines, with a one-time token in the URL\n\n\
The page lists every image newest first as its thumbnail, with its status, size and age (a failed image shows \
why); a click shows every size and the metadata. Files dropped on the page (or picked) go through thumbctl \
itself, typed from their bytes like `thumbctl upload`; what is not an image is refused with the reason. New \
thumbnails appear as the function finishes them. Against a local emulator, which runs no Lambda, the gallery \
runs the function's handler here on each upload (as invoke-local does); --processing chooses. Stop with Ctrl-C.";

/// Who makes the thumbnails of what the gallery uploads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Processing {
    /// `local` against an endpoint override (an emulator), else `lambda`.
    Auto,
    /// The deployed function, from S3's event notification.
    Lambda,
    /// The function's handler, run by the gallery on this machine after each upload.
    Local,
}

#[derive(Debug, Clone, Args)]
pub struct GalleryArgs {
    /// TCP port to listen on (0: any free port; the URL printed names it).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Address to listen on. Anything other than loopback makes the page reachable from other
    /// machines, so every request must then carry a one-time token, printed in the URL.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: std::net::IpAddr,
    /// Open the page in the default browser.
    #[arg(long)]
    pub open: bool,
    /// Who makes the thumbnails of uploads.
    #[arg(long, value_enum, default_value_t = Processing::Auto)]
    pub processing: Processing,
}

#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// Only images with this status.
    #[arg(long, value_parser = ["ok", "failed"])]
    pub status: Option<String>,
    /// At most this many items.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100000))]
    pub limit: u32,
}

#[derive(Debug, Clone, Args)]
pub struct GetArgs {
    /// The image's id: its key in the source bucket (see `thumbctl list`).
    pub id: String,
}

#[derive(Debug, Clone, Args)]
pub struct DeleteArgs {
    /// Ids of the images (their keys in the source bucket).
    #[arg(required = true)]
    pub ids: Vec<String>,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long, short)]
    pub yes: bool,
}

/// `--max-size` when `--post` is given without it.
pub const DEFAULT_POST_MAX_BYTES: u64 = 20_000_000;
/// The largest object one S3 POST (like one PUT) may carry: 5 GiB.
pub const MAX_POST_BYTES: u64 = 5 * 1024 * 1024 * 1024;

#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("upload").args(["put", "post"])))]
pub struct PresignArgs {
    /// Object key (in the source bucket; with --thumbnail, in the destination bucket). With
    /// --post it may end in `${filename}`: the form then accepts any key under that prefix.
    pub key: String,
    /// A URL to upload with (PUT) instead of to download with (GET).
    #[arg(long)]
    pub put: bool,
    /// An HTML-form upload (POST) whose size, type and key S3 enforces, instead of a URL.
    #[arg(long, conflicts_with_all = ["put", "thumbnail"])]
    pub post: bool,
    /// Download from the thumbnails bucket.
    #[arg(long, conflicts_with = "put")]
    pub thumbnail: bool,
    /// The Content-Type the upload must send [default: PUT: from the key's extension; POST:
    /// any image/*].
    #[arg(long, requires = "upload")]
    pub content_type: Option<String>,
    /// Largest file the POST accepts: bytes, or with a unit (KB, MB, GB; KiB, MiB, GiB); at
    /// most 5GiB [default: 20MB].
    #[arg(long, value_name = "SIZE", requires = "post", conflicts_with = "put", value_parser = parse_byte_size)]
    pub max_size: Option<u64>,
    /// How long the URL (or the form) works (e.g. 15m, 1h, 7d).
    #[arg(long, default_value = "15m", value_parser = parse_expiry)]
    pub expires: std::time::Duration,
}

#[derive(Debug, Clone, Args)]
pub struct InvokeLocalArgs {
    /// Keys of objects in the source bucket.
    #[arg(required = true)]
    pub keys: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ReprocessArgs {
    /// Only originals whose keys start with this [default: the stack's --source-prefix].
    #[arg(long)]
    pub prefix: Option<String>,
    /// Only originals without thumbnails of the current sizes and format (checked here first).
    #[arg(long)]
    pub only_missing: bool,
    /// Instead: replay the events Lambda gave up on and the images recorded as failed.
    #[arg(long, conflicts_with_all = ["only_missing", "prefix", "batch"])]
    pub failed: bool,
    /// Run the function's handler on this machine instead of invoking the function.
    #[arg(long, conflicts_with = "batch")]
    pub local: bool,
    /// Hand the list to an S3 Batch Operations job that invokes the function (millions).
    #[arg(long)]
    pub batch: bool,
    /// How many originals are in flight at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Count what would be sent, and send nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ThumbnailArgs {
    /// Image files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Directory for the thumbnails (laid out like the destination bucket).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Boxes to fit, as for `up`.
    #[arg(long, value_delimiter = ',', default_value = "128,256,512", value_parser = parse_size)]
    pub sizes: Vec<String>,
    /// Output format: jpeg, png, webp or avif (smallest files, slowest to encode).
    #[arg(long, default_value = "jpeg", value_parser = ["jpeg", "png", "webp", "avif"])]
    pub format: String,
    /// Encoder quality, 1-100.
    #[arg(long, default_value_t = 80, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub quality: u8,
    /// Carry the EXIF Artist and Copyright into the thumbnails, as `up --keep-copyright` does.
    #[arg(long)]
    pub keep_copyright: bool,
}

#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// Thumbnail boxes: `256` fits in 256x256, `320x200` in a rectangle; `256!` is exactly
    /// 256x256, cropped from the centre, `256!attention` from the busiest region (quote them
    /// in a shell: '128,256!') [default: 128,256,512]
    #[arg(long, value_delimiter = ',', value_parser = parse_size)]
    pub sizes: Option<Vec<String>>,
    /// Thumbnail format: jpeg, png, webp or avif (smallest files, several times the encode
    /// time of jpeg) [default: jpeg]
    #[arg(long, value_parser = ["jpeg", "png", "webp", "avif"])]
    pub format: Option<String>,
    /// Encoder quality for jpeg, webp and avif, 1-100 [default: 80]
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub quality: Option<u8>,
    /// Container image for the function (e.g. an ECR URI with tag or digest).
    #[arg(long, value_name = "URI")]
    pub image_uri: Option<String>,
    /// Function memory in MB, 128-10240 [default: 1024]
    #[arg(long, value_parser = clap::value_parser!(i32).range(128..=10240))]
    pub memory_mb: Option<i32>,
    /// Function timeout in seconds, 1-900 [default: 60]
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=900))]
    pub timeout_s: Option<i32>,
    /// E-mail address to notify of each finished image (repeatable; must confirm by e-mail).
    #[arg(long, value_name = "ADDR", value_parser = parse_email)]
    pub notify_email: Vec<String>,
    /// HTTP(S) endpoint to notify of each finished image (repeatable).
    #[arg(long, value_name = "URL", value_parser = parse_url)]
    pub notify_url: Vec<String>,
    /// Show what would be created, and create nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Without --image-uri: build the image from lambda-image's sources on this machine (cargo,
    /// no Docker) instead of shipping this thumbctl binary as the function.
    #[arg(long, conflicts_with = "image_uri")]
    pub local: bool,
    /// Without --image-uri: build the image from lambda-image's sources in the stack's
    /// CodeBuild project instead of shipping this thumbctl binary as the function.
    #[arg(long, conflicts_with_all = ["image_uri", "local"])]
    pub codebuild: bool,
    /// Push the image to this registry instead of ECR's endpoint (private mirrors, tests).
    #[arg(long, value_name = "URL", conflicts_with_all = ["image_uri", "codebuild"], value_parser = parse_url)]
    pub registry_url: Option<String>,
    /// Reserve this many concurrent executions for the function, and never run more: a burst
    /// of uploads then cannot starve the account's other functions. `none` removes the cap.
    #[arg(long, value_name = "N|none", value_parser = parse_concurrency)]
    pub max_concurrency: Option<Cap>,
    /// Delete objects after N days: `N` (originals and thumbnails), `originals=N`,
    /// `thumbnails=N`, or `originals=off` (repeatable). Deleting an original also deletes its
    /// thumbnails and item.
    #[arg(long, value_name = "[WHICH=]DAYS", value_parser = parse_expiry_days)]
    pub expire_days: Vec<Expiry>,
    /// Use this existing bucket of yours as the source instead of creating one. It is never
    /// emptied or deleted, its settings are left alone, and our notification is merged into
    /// its existing ones (and removed alone by `destroy`). Only when the stack is created.
    #[arg(long, value_name = "BUCKET", value_parser = parse_bucket_name)]
    pub source_bucket: Option<String>,
    /// Only objects under this prefix trigger the function (e.g. `uploads/`), so that other
    /// notifications of an adopted bucket can keep theirs. Only when the stack is created.
    #[arg(long, value_name = "PREFIX")]
    pub source_prefix: Option<String>,
    /// Serve the thumbnails through a CloudFront distribution (HTTPS, cached at the edge;
    /// the bucket stays private). Kept on reruns; `get`, `list` and `upload --wait` then
    /// print CDN URLs instead of presigned links.
    #[arg(long)]
    pub cdn: bool,
    /// Carry each original's EXIF Artist and Copyright (and nothing else: no GPS, no camera
    /// data) into its thumbnails, for attribution that must travel with every copy. Kept on
    /// reruns; `--keep-copyright=false` turns it off. Existing thumbnails change when
    /// reprocessed: `thumbctl reprocess --only-missing` redoes those made the other way.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub keep_copyright: Option<bool>,
}

/// `--max-concurrency`: a reservation, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    Limit(i32),
    Unlimited,
}

/// What an `--expire-days` value applies to, and after how many days (`None`: never).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry {
    pub originals: bool,
    pub thumbnails: bool,
    pub days: Option<i32>,
}

#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// Look for resources tagged with this stack that the state does not record (e.g. after
    /// the state file was lost). Works without a state file.
    #[arg(long)]
    pub orphans: bool,
}

#[derive(Debug, Clone, Args)]
pub struct DestroyArgs {
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long, short)]
    pub yes: bool,
    /// Leave both buckets and their objects in place (recorded as kept in the state).
    #[arg(long)]
    pub keep_buckets: bool,
    /// Instead: delete resources tagged with this stack that the state does not record.
    /// Lists them, and deletes only with --yes. Untagged look-alikes are never touched.
    #[arg(long, conflicts_with = "keep_buckets")]
    pub orphans: bool,
}

#[derive(Debug, Clone, Args)]
pub struct BuildImageArgs {
    /// Build on this machine (cargo, static musl binary) and push the OCI image directly; no Docker, no CodeBuild.
    #[arg(long)]
    pub local: bool,
    /// Push to this registry instead of ECR's endpoint (private mirrors, tests). With --local.
    #[arg(long, value_name = "URL", requires = "local", value_parser = parse_url)]
    pub registry_url: Option<String>,
    /// CPU architecture of the image (arm64: --local only, needs the target and a cross C compiler).
    #[arg(long, default_value = "x86_64", value_parser = ["x86_64", "arm64"])]
    pub arch: String,
    /// Build even if ECR already holds an image of these sources.
    #[arg(long)]
    pub force: bool,
    /// Give up on a CodeBuild build after this long, and stop it (e.g. 20m, 1h).
    #[arg(long, default_value = "30m", value_parser = parse_timeout)]
    pub timeout: std::time::Duration,
    /// The thumbctl repository (holding lambda-image/).
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub source: PathBuf,
    /// Show the sources' tag and what would be built; build nothing.
    #[arg(long)]
    pub dry_run: bool,
}

fn parse_stack(s: &str) -> Result<String, String> {
    crate::stack::validate_stack_name(s)
}

/// The function's own parser (`lambda_image`'s `ThumbSpec`), so that what `up` accepts is
/// exactly what the function will; with a side limit of 10 000 on top.
fn parse_size(s: &str) -> Result<String, String> {
    match s.parse::<lambda_image::engine::ThumbSpec>() {
        Ok(spec) if spec.width <= 10_000 && spec.height <= 10_000 => Ok(spec.to_string()),
        _ => Err(format!(
            "`{s}` is not a size: use a box side like 256, a rectangle like 320x200 (1-10000), \
or add ! for exactly that size, cropped (256!, 320x200!attention)"
        )),
    }
}

fn parse_email(s: &str) -> Result<String, String> {
    match s.split_once('@') {
        Some((user, domain))
            if !user.is_empty() && domain.contains('.') && !s.contains(char::is_whitespace) =>
        {
            Ok(s.to_owned())
        }
        _ => Err(format!("`{s}` is not an e-mail address")),
    }
}

fn parse_url(s: &str) -> Result<String, String> {
    if (s.starts_with("https://") || s.starts_with("http://")) && s.len() > 8 {
        Ok(s.to_owned())
    } else {
        Err(format!("`{s}` is not an http(s) URL"))
    }
}

// Value parsers live with the contract they check.

fn parse_concurrency(s: &str) -> Result<Cap, String> {
    if s == "none" {
        return Ok(Cap::Unlimited);
    }
    match s.parse::<i32>() {
        // 0 is legal in Lambda but stops the function entirely: not what a cap means here.
        Ok(n) if (1..=100_000).contains(&n) => Ok(Cap::Limit(n)),
        _ => Err(format!(
            "`{s}` is not a concurrency: use a number of executions (1 or more) or `none`"
        )),
    }
}

fn parse_expiry_days(s: &str) -> Result<Expiry, String> {
    let (which, days) = match s.split_once('=') {
        Some((w, d)) => (Some(w), d),
        None => (None, s),
    };
    let (originals, thumbnails) = match which {
        None | Some("all") => (true, true),
        Some("originals") => (true, false),
        Some("thumbnails") => (false, true),
        Some(other) => {
            return Err(format!(
                "`{other}` is neither `originals` nor `thumbnails` (e.g. --expire-days thumbnails=90)"
            ));
        }
    };
    let days = match days {
        "off" | "never" => None,
        d => Some(
            d.parse::<i32>()
                .ok()
                .filter(|n| (1..=36500).contains(n))
                .ok_or_else(|| format!("`{d}` is not a number of days (1-36500) or `off`"))?,
        ),
    };
    Ok(Expiry {
        originals,
        thumbnails,
        days,
    })
}

/// S3's bucket naming rules, checked before any call so the error says which rule.
fn parse_bucket_name(s: &str) -> Result<String, String> {
    let ok_chars = s
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    let ends_ok = s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric());
    if (3..=63).contains(&s.len()) && ok_chars && ends_ok && !s.contains("..") {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "`{s}` is not an S3 bucket name: 3-63 lower-case letters, digits, hyphens and dots, \
             starting and ending with a letter or digit"
        ))
    }
}

/// Parses `15m`, `1h`, `90s`, `7d` (presigned URLs live at most 7 days).
pub fn parse_expiry(s: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration like 15m or 1h: {e}"))?;
    if d.is_zero() || d > std::time::Duration::from_secs(7 * 24 * 3600) {
        return Err(format!(
            "`{s}`: a presigned URL lives between 1 second and 7 days"
        ));
    }
    Ok(d)
}

/// `--max-size`: `20MB`, `512KiB`, `1GB`, `1048576` (bytes). KB/MB/GB are powers of 1000,
/// KiB/MiB/GiB powers of 1024 (units in any case); 1 byte to 5 GiB, S3's limit for one POST.
pub fn parse_byte_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "mb" => 1000 * 1000,
        "gb" => 1000 * 1000 * 1000,
        "kib" => 1024,
        "mib" => 1024 * 1024,
        "gib" => 1024 * 1024 * 1024,
        _ => {
            return Err(format!(
                "`{s}` is not a size: use a whole number of bytes, or with KB, MB, GB, KiB, MiB or GiB (e.g. 20MB)"
            ));
        }
    };
    let n: u64 = digits.parse().map_err(|_| {
        format!(
            "`{s}` is not a size: use a whole number, optionally with a unit (e.g. 20MB, 512KiB)"
        )
    })?;
    let bytes = n
        .checked_mul(multiplier)
        .filter(|b| (1..=MAX_POST_BYTES).contains(b))
        .ok_or_else(|| {
            format!(
                "`{s}`: an upload's size cap is between 1 byte and 5GiB (S3's limit for one POST)"
            )
        })?;
    Ok(bytes)
}

/// `--timeout`: a duration like `20m`, `1h`, `90s`; at least a minute.
pub fn parse_timeout(s: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration like 20m or 1h: {e}"))?;
    if d < std::time::Duration::from_secs(60) {
        return Err(format!(
            "`{s}` is too short: a build takes minutes; use at least 1m"
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_format_the_cli_offers_is_one_the_engine_makes() {
        use lambda_image::engine::OutputFormat;
        let cmd = Cli::command();
        for sub in ["up", "thumbnail"] {
            let arg = cmd
                .find_subcommand(sub)
                .and_then(|c| c.get_arguments().find(|a| a.get_id() == "format"))
                .unwrap_or_else(|| panic!("{sub} has --format"));
            let offered: Vec<String> = arg
                .get_possible_values()
                .iter()
                .map(|v| v.get_name().to_string())
                .collect();
            assert!(offered.iter().any(|v| v == "avif"), "{sub}: {offered:?}");
            for v in &offered {
                assert!(v.parse::<OutputFormat>().is_ok(), "{sub} --format {v}");
            }
        }
        let cli = Cli::try_parse_from([
            "thumbctl",
            "thumbnail",
            "a.jpg",
            "--out",
            "o",
            "--format",
            "avif",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        match cli.command {
            Command::Thumbnail(a) => assert_eq!(a.format.parse(), Ok(OutputFormat::Avif)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sizes_parse() {
        assert!(parse_size("256").is_ok());
        assert!(parse_size("320x200").is_ok());
        assert!(parse_size("0").is_err());
        assert!(parse_size("big").is_err());
        assert!(parse_size("10x").is_err());
        assert!(parse_size("256x256!").is_ok());
        assert!(parse_size("64!attention").is_ok());
        assert!(parse_size("64!middle").is_err());
    }

    #[test]
    fn operations_options_parse() {
        assert_eq!(parse_concurrency("5"), Ok(Cap::Limit(5)));
        assert_eq!(parse_concurrency("none"), Ok(Cap::Unlimited));
        assert!(parse_concurrency("0").is_err());
        assert!(parse_concurrency("-3").is_err());
        let e = parse_expiry_days("thumbnails=90").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((e.originals, e.thumbnails, e.days), (false, true, Some(90)));
        let e = parse_expiry_days("30").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((e.originals, e.thumbnails, e.days), (true, true, Some(30)));
        let e = parse_expiry_days("originals=off").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((e.originals, e.thumbnails, e.days), (true, false, None));
        assert!(parse_expiry_days("photos=3").is_err());
        assert!(parse_expiry_days("0").is_err());
        assert!(parse_bucket_name("my-photos.2026").is_ok());
        assert!(parse_bucket_name("My_Photos").is_err());
        assert!(parse_bucket_name("ab").is_err());
    }

    #[test]
    fn byte_sizes_parse() {
        assert_eq!(parse_byte_size("20MB"), Ok(20_000_000));
        assert_eq!(parse_byte_size("512KiB"), Ok(512 * 1024));
        assert_eq!(parse_byte_size("1GB"), Ok(1_000_000_000));
        assert_eq!(parse_byte_size("1048576"), Ok(1_048_576));
        assert_eq!(parse_byte_size("10 mb"), Ok(10_000_000));
        assert_eq!(parse_byte_size("5GiB"), Ok(MAX_POST_BYTES));
        assert_eq!(parse_byte_size("5GB"), Ok(5_000_000_000));
        for bad in [
            "0",
            "0MB",
            "6GB",
            "5121MiB",
            "",
            "MB",
            "1.5MB",
            "-1",
            "20XB",
            "99999999999999999999GB",
        ] {
            assert!(parse_byte_size(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn presign_post_flags_combine_as_documented() {
        let parse = |args: &[&str]| Cli::try_parse_from([&["thumbctl", "presign"], args].concat());
        let ok = parse(&["k.jpg", "--post"]).expect("--post alone");
        let Command::Presign(p) = ok.command else {
            panic!("not presign")
        };
        assert!(p.post && p.max_size.is_none());
        assert!(
            parse(&[
                "k.jpg",
                "--post",
                "--max-size",
                "1MB",
                "--content-type",
                "image/png"
            ])
            .is_ok()
        );
        assert!(parse(&["k.jpg", "--put", "--content-type", "image/png"]).is_ok());
        for bad in [
            &["k.jpg", "--post", "--put"][..],
            &["k.jpg", "--post", "--thumbnail"],
            &["k.jpg", "--max-size", "1MB"],
            &["k.jpg", "--put", "--max-size", "1MB"],
            &["k.jpg", "--content-type", "image/png"],
            &["k.jpg", "--post", "--max-size", "0"],
            &["k.jpg", "--post", "--max-size", "6GB"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
