//! Getting the function's container image (lambda-image's code) into ECR.
//!
//! Three paths, all ending in an image digest in ECR that the function is pointed at:
//! - **CodeBuild** (`build-image`'s default, `up --codebuild`): [`package`] zips the Lambda's
//!   sources deterministically, the zip goes to the project's S3 source location,
//!   [`codebuild`] starts the build and follows it.
//!   Images are tagged by the hash of that zip, so unchanged sources build nothing.
//! - **This binary** (`up`'s default): [`selfship`] lists the running thumbctl with its ELF
//!   interpreter and shared libraries (if any), [`oci`] assembles them into one layer, and
//!   [`registry`] pushes it: the binary runs as the function (no build at all).
//! - **Local** (`--local`): [`build`] compiles a static musl binary with cargo, [`oci`]
//!   assembles a one-layer OCI image from it byte for byte reproducibly, and [`registry`]
//!   pushes it with the OCI distribution API using ECR's authorization token. No Docker.

pub mod build;
pub mod codebuild;
pub mod oci;
pub mod package;
pub mod prepare;
pub mod registry;
pub mod selfship;

use sha2::{Digest as _, Sha256};

/// `sha256:<hex>` of some bytes: the content address registries and OCI use.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

/// Lower-case hex of the SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The function's architecture, as Lambda, Rust and OCI each spell it (recorded in the state
/// as Lambda does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Arch {
    #[serde(rename = "x86_64")]
    X86_64,
    #[serde(rename = "arm64")]
    Arm64,
}

impl Arch {
    pub fn lambda_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "arm64",
        }
    }

    pub fn lambda(self) -> aws_sdk_lambda::types::Architecture {
        match self {
            Arch::X86_64 => aws_sdk_lambda::types::Architecture::X8664,
            Arch::Arm64 => aws_sdk_lambda::types::Architecture::Arm64,
        }
    }

    pub fn rust_target(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-musl",
            Arch::Arm64 => "aarch64-unknown-linux-musl",
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn digest_of_empty_input() {
        assert_eq!(
            super::sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
