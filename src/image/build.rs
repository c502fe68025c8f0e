//! The local build of the Lambda binary: `cargo build` of `lambda-image` for a static musl
//! target, with the checks that turn a missing target or C cross-compiler into one clear line.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::Arch;

/// The cargo profile the image is built with (see the root Cargo.toml): release code with
/// thin LTO over 16 units, stripped.
pub const PROFILE: &str = "lambda";

/// `THUMBCTL_LAMBDA_PROFILE` overrides the profile: the tests build with `dev`, which proves
/// the same path (static musl binary, OCI push, the pulled image runs) in a fraction of the
/// cold build time; an image for real use keeps the default.
pub fn profile() -> String {
    match std::env::var("THUMBCTL_LAMBDA_PROFILE") {
        Ok(p)
            if !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
        {
            p
        }
        _ => PROFILE.to_owned(),
    }
}

/// The directory cargo puts a profile's output in (`dev` and `test` share `debug`).
fn profile_dir(profile: &str) -> &str {
    match profile {
        "dev" | "test" => "debug",
        "bench" => "release",
        other => other,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot run `{program}`: {source}\n  hint: {hint}")]
    Tool {
        program: String,
        hint: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("the Rust target {target} is not installed.\n  hint: run `rustup target add {target}`")]
    MissingTarget { target: &'static str },
    #[error("no C compiler for {target} (tried {tried}).\n  hint: {hint}")]
    MissingCc {
        target: &'static str,
        tried: String,
        hint: &'static str,
    },
    #[error(
        "cargo build of lambda-image for {target} failed (exit {code:?}); its messages are above.\n  hint: fix the error, or use the CodeBuild path (drop --local)"
    )]
    Cargo {
        target: &'static str,
        code: Option<i32>,
    },
    #[error("the build finished but {0} is missing")]
    NoBinary(PathBuf),
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// The target directory cargo will use for `root` (CARGO_TARGET_DIR wins, as in cargo).
pub fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => {
            let d = PathBuf::from(d);
            if d.is_absolute() { d } else { root.join(d) }
        }
        None => root.join("target"),
    }
}

pub fn binary_path(root: &Path, arch: Arch) -> PathBuf {
    let profile = profile();
    target_dir(root)
        .join(arch.rust_target())
        .join(profile_dir(&profile))
        .join("lambda-image")
}

async fn target_installed(target: &str) -> Result<bool, BuildError> {
    // Without rustup (a distribution toolchain) there is nothing to ask: let cargo say.
    if !on_path("rustup") {
        return Ok(true);
    }
    let out = tokio::process::Command::new("rustup")
        .args(["target", "list", "--installed"])
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|source| BuildError::Tool {
            program: "rustup".into(),
            hint: "install Rust with rustup (https://rustup.rs)",
            source,
        })?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.trim() == target))
}

/// The musl libde265 prefix for a local build with HEIC, when everything it needs is there.
fn heic_prefix(arch: Arch) -> Option<std::ffi::OsString> {
    let prefix = std::env::var_os("THUMBCTL_LIBDE265_MUSL")?;
    let ready = matches!(arch, Arch::X86_64)
        && Path::new(&prefix).join("lib/libde265.a").is_file()
        && on_path("cargo-zigbuild");
    ready.then_some(prefix)
}

/// Builds the static binary and returns its path. Cargo's own progress goes to stderr
/// unless `quiet`.
pub async fn build_binary(root: &Path, arch: Arch, quiet: bool) -> Result<PathBuf, BuildError> {
    let target = arch.rust_target();
    if !target_installed(target).await? {
        return Err(BuildError::MissingTarget { target });
    }
    let mut cmd =
        tokio::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // The SDK's TLS (aws-lc) and the image codecs (libjpeg-turbo, libwebp) are C: they need a
    // C compiler that targets musl.
    match arch {
        Arch::X86_64 => {
            if !on_path("x86_64-linux-musl-gcc") && !on_path("musl-gcc") {
                return Err(BuildError::MissingCc {
                    target,
                    tried: "x86_64-linux-musl-gcc, musl-gcc".into(),
                    hint: "install musl-tools (Debian/Ubuntu: `apt-get install musl-tools`), or drop --local to build in CodeBuild",
                });
            }
            if !on_path("x86_64-linux-musl-gcc") {
                cmd.env("CC_x86_64_unknown_linux_musl", "musl-gcc");
            }
        }
        Arch::Arm64 => {
            let cc = ["aarch64-linux-musl-gcc", "aarch64-linux-gnu-gcc"]
                .into_iter()
                .find(|c| on_path(c))
                .ok_or(BuildError::MissingCc {
                    target,
                    tried: "aarch64-linux-musl-gcc, aarch64-linux-gnu-gcc".into(),
                    hint: "install a cross compiler (Debian/Ubuntu: `apt-get install gcc-aarch64-linux-gnu`), or build x86_64 (drop --arch), or drop --local to build in CodeBuild",
                })?;
            cmd.env("CC_aarch64_unknown_linux_musl", cc);
            if std::env::var_os("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER").is_none() {
                cmd.env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER", "rust-lld");
            }
        }
    }
    // HEIC input (libheif, libde265: C++) needs zig's libc++ for musl and a libde265 built
    // for musl, as the Dockerfile sets up; given both (THUMBCTL_LIBDE265_MUSL, the prefix that
    // lambda-image/scripts/libde265-musl.sh filled, and cargo-zigbuild on PATH), the local
    // binary has it too. Otherwise it is built without, and refuses HEIC as `unsupported`.
    let heic = heic_prefix(arch);
    match &heic {
        Some(prefix) => {
            cmd.env(
                "PKG_CONFIG_PATH",
                Path::new(prefix).join("lib/pkgconfig").as_os_str(),
            )
            .env("PKG_CONFIG_ALLOW_CROSS", "1")
            .arg("zigbuild");
        }
        None => {
            if !quiet {
                eprintln!(
                    "note: this local build has no HEIC input (set THUMBCTL_LIBDE265_MUSL and install cargo-zigbuild for it; see lambda-image/scripts/libde265-musl.sh); the CodeBuild image has it"
                );
            }
            cmd.args(["build", "--no-default-features"]);
        }
    }
    cmd.current_dir(root)
        .args(["--locked", "-p", "lambda-image", "--bin", "lambda-image"])
        .args(["--profile", &profile(), "--target", target])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    if quiet {
        cmd.arg("--quiet").stderr(Stdio::null());
    } else {
        cmd.stderr(Stdio::inherit());
    }
    let status = cmd.status().await.map_err(|source| BuildError::Tool {
        program: "cargo".into(),
        hint: "install Rust (https://rustup.rs), or drop --local to build in CodeBuild",
        source,
    })?;
    if !status.success() {
        return Err(BuildError::Cargo {
            target,
            code: status.code(),
        });
    }
    let bin = binary_path(root, arch);
    if !bin.is_file() {
        return Err(BuildError::NoBinary(bin));
    }
    Ok(bin)
}
