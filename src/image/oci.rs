//! A one-layer OCI image around the static Lambda binary, assembled in Rust and reproducible
//! byte for byte: the same binary gives the same layer, config, manifest and digests.
//!
//! The layer holds the binary (the entrypoint, which speaks the Lambda Runtime API itself) and
//! nothing from the machine that assembles it: no CA bundle either, since the function carries
//! its own TLS roots (`lambda_image::tls`), so HTTPS to AWS works from an image with nothing
//! else in it, whatever this machine's layout.

use std::io::Write;
use std::str::FromStr;

use flate2::{Compression, GzBuilder};
use oci_spec::image::{
    Arch as OciArch, ConfigBuilder, Descriptor, Digest, ImageConfigurationBuilder,
    ImageManifestBuilder, MediaType, Os, RootFsBuilder,
};

use super::{Arch, sha256_digest};

/// Where the binary sits in the image, and so the entrypoint.
pub const ENTRYPOINT: &str = "/var/runtime/bootstrap";
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("assembling the image layer: {0}")]
    Layer(#[from] std::io::Error),
    #[error("assembling the image metadata: {0}")]
    Spec(#[from] oci_spec::OciSpecError),
}

/// A blob: its bytes and its content address.
#[derive(Debug, Clone)]
pub struct Blob {
    pub bytes: Vec<u8>,
    pub digest: String,
}

impl Blob {
    fn new(bytes: Vec<u8>) -> Blob {
        let digest = sha256_digest(&bytes);
        Blob { bytes, digest }
    }
}

#[derive(Debug, Clone)]
pub struct Image {
    pub layer: Blob,
    /// Digest of the uncompressed layer tar (the config's `rootfs.diff_ids`).
    #[allow(dead_code)] // read by the tests
    pub diff_id: String,
    pub config: Blob,
    pub manifest: Blob,
}

/// One file of the layer.
pub struct File<'a> {
    /// Absolute path in the image.
    pub path: &'a str,
    pub mode: u32,
    pub bytes: &'a [u8],
}

/// The layer's tar: parent directories first, then files, all with mtime 0, owner 0:0 and
/// fixed modes, so it depends on nothing but the bytes given.
pub fn layer_tar(files: &[File<'_>]) -> std::io::Result<Vec<u8>> {
    let mut dirs: Vec<String> = Vec::new();
    for f in files {
        let mut prefix = String::new();
        let parts: Vec<&str> = f.path.trim_start_matches('/').split('/').collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            prefix.push_str(part);
            prefix.push('/');
            if !dirs.contains(&prefix) {
                dirs.push(prefix.clone());
            }
        }
    }
    dirs.push("tmp/".into());
    dirs.sort();
    dirs.dedup();
    let mut tar = tar::Builder::new(Vec::new());
    tar.mode(tar::HeaderMode::Deterministic);
    for d in &dirs {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(if d == "tmp/" { 0o1777 } else { 0o755 });
        h.set_size(0);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        tar.append_data(&mut h, d, std::io::empty())?;
    }
    let mut sorted: Vec<&File<'_>> = files.iter().collect();
    sorted.sort_by_key(|f| f.path);
    for f in sorted {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(f.mode);
        h.set_size(f.bytes.len() as u64);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        tar.append_data(&mut h, f.path.trim_start_matches('/'), f.bytes)?;
    }
    tar.into_inner()
}

/// gzip with a zero mtime, no file name and a pinned level.
fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut gz = GzBuilder::new()
        .mtime(0)
        .write(Vec::with_capacity(bytes.len() / 2), Compression::new(6));
    gz.write_all(bytes)?;
    gz.finish()
}

fn digest(d: &str) -> Result<Digest, OciError> {
    Ok(Digest::from_str(d)?)
}

/// Assembles the image for `binary`.
pub fn assemble(binary: &[u8], arch: Arch) -> Result<Image, OciError> {
    let tar = layer_tar(&[File {
        path: ENTRYPOINT,
        mode: 0o755,
        bytes: binary,
    }])?;
    let diff_id = sha256_digest(&tar);
    assemble_tar(&tar, diff_id, arch, &[])
}

/// Assembles the image around one uncompressed layer `tar` (from [`layer_tar`], whose digest
/// is `diff_id`), with the entrypoint at [`ENTRYPOINT`] and `extra_env` after the usual
/// variables.
pub fn assemble_tar(
    tar: &[u8],
    diff_id: String,
    arch: Arch,
    extra_env: &[String],
) -> Result<Image, OciError> {
    let layer = Blob::new(gzip(tar)?);

    let oci_arch = match arch {
        Arch::X86_64 => OciArch::Amd64,
        Arch::Arm64 => OciArch::ARM64,
    };
    let config = ImageConfigurationBuilder::default()
        .created("1970-01-01T00:00:00Z")
        .architecture(oci_arch)
        .os(Os::Linux)
        .config(
            ConfigBuilder::default()
                .entrypoint(vec![ENTRYPOINT.to_owned()])
                .env(
                    std::iter::once(
                        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
                            .to_owned(),
                    )
                    .chain(extra_env.iter().cloned())
                    .collect::<Vec<_>>(),
                )
                .working_dir("/")
                .build()?,
        )
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![diff_id.clone()])
                .build()?,
        )
        .build()?;
    let config = Blob::new(config.to_string()?.into_bytes());

    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(Descriptor::new(
            MediaType::ImageConfig,
            config.bytes.len() as u64,
            digest(&config.digest)?,
        ))
        .layers(vec![Descriptor::new(
            MediaType::ImageLayerGzip,
            layer.bytes.len() as u64,
            digest(&layer.digest)?,
        )])
        .build()?;
    let manifest = Blob::new(manifest.to_string()?.into_bytes());
    Ok(Image {
        layer,
        diff_id,
        config,
        manifest,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn same_binary_same_bytes_and_a_readable_layer() {
        let bin = b"\x7fELF pretend binary".repeat(1000);
        let a = assemble(&bin, Arch::X86_64).unwrap();
        let b = assemble(&bin, Arch::X86_64).unwrap();
        assert_eq!(a.layer.bytes, b.layer.bytes);
        assert_eq!(a.config.bytes, b.config.bytes);
        assert_eq!(a.manifest.bytes, b.manifest.bytes);
        assert_eq!(a.manifest.digest, b.manifest.digest);
        let other = assemble(b"other", Arch::X86_64).unwrap();
        assert_ne!(other.manifest.digest, a.manifest.digest);

        let config: serde_json::Value = serde_json::from_slice(&a.config.bytes).unwrap();
        assert_eq!(config["architecture"], "amd64");
        assert_eq!(config["config"]["Entrypoint"][0], ENTRYPOINT);
        // Nothing points the function at a bundle the image does not hold.
        assert_eq!(
            config["config"]["Env"],
            serde_json::json!([
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            ])
        );
        assert_eq!(config["rootfs"]["diff_ids"][0], a.diff_id.as_str());
        let manifest: serde_json::Value = serde_json::from_slice(&a.manifest.bytes).unwrap();
        assert_eq!(manifest["mediaType"], MANIFEST_MEDIA_TYPE);
        assert_eq!(manifest["config"]["digest"], a.config.digest.as_str());
        assert_eq!(manifest["layers"][0]["digest"], a.layer.digest.as_str());
        assert_eq!(manifest["layers"][0]["size"], a.layer.bytes.len() as u64);

        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&a.layer.bytes[..])
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(sha256_digest(&tar), a.diff_id);
        let mut archive = tar::Archive::new(&tar[..]);
        let mut seen = Vec::new();
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            let path = e.path().unwrap().display().to_string();
            let mode = e.header().mode().unwrap();
            assert_eq!(e.header().mtime().unwrap(), 0);
            if path == "var/runtime/bootstrap" {
                let mut got = Vec::new();
                e.read_to_end(&mut got).unwrap();
                assert_eq!(got, bin);
            }
            seen.push((path, mode));
        }
        assert!(
            seen.contains(&("var/runtime/bootstrap".into(), 0o755)),
            "{seen:?}"
        );
        assert!(seen.contains(&("tmp/".into(), 0o1777)), "{seen:?}");
        // The binary, its directories and /tmp: nothing read from this machine.
        assert_eq!(
            seen.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
            ["tmp/", "var/", "var/runtime/", "var/runtime/bootstrap"]
        );
    }
}
