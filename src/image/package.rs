//! The Lambda's sources as a deterministic zip: what CodeBuild builds from, and whose hash tags
//! the image. Entries are sorted, every timestamp is 1980-01-01, modes are fixed, so the same
//! sources always give the same bytes (and so the same tag, and no rebuild).

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error(
        "{0} does not look like the thumbctl workspace (no lambda-image/Cargo.toml there).\n  hint: run thumbctl from the repository root, or pass --source DIR"
    )]
    NotWorkspace(PathBuf),
    #[error(
        "{0} is missing: CodeBuild builds the image with it.\n  hint: restore it (`git checkout -- {1}`), or build with --local"
    )]
    Missing(PathBuf, &'static str),
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing the source zip: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("writing the source zip: {0}")]
    Io(#[from] std::io::Error),
}

/// Where the buildspec sits in the zip. The CodeBuild project names this path (CodeBuild
/// itself would only look for `buildspec.yml` at the zip's root).
pub const BUILDSPEC: &str = "lambda-image/buildspec.yml";
/// What CodeBuild cannot build without: packaging stops early, naming the file, rather than
/// the build failing minutes later with YAML_FILE_ERROR or a missing Dockerfile.
const REQUIRED: &[&str] = &[BUILDSPEC, "lambda-image/Dockerfile"];

/// Files at the workspace root that the build needs besides `lambda-image/`.
const ROOT_FILES: &[&str] = &["Cargo.toml", "Cargo.lock", "rust-toolchain.toml"];
/// Inside `lambda-image/`: what compiles the binary and builds the image. Tests, examples and
/// benchmarks are left out, so editing a test does not rebuild the image.
const LAMBDA_DIRS: &[&str] = &["src"];
const LAMBDA_FILES: &[&str] = &[
    "Cargo.toml",
    "Dockerfile",
    "buildspec.yml",
    "APT_PACKAGES",
    "build.rs",
    // The Dockerfile builds HEIC's decoder for musl with it.
    "scripts/libde265-musl.sh",
];
/// The workspace also lists thumbctl itself (the root package); cargo needs a target for it
/// to load the workspace, so the zip carries this stub instead of thumbctl's sources.
const ROOT_STUB_PATH: &str = "src/main.rs";
const ROOT_STUB: &[u8] =
    b"// Stub for the workspace root package: the image build compiles only lambda-image.\nfn main() {}\n";

/// The packaged sources: the zip and the hash that names the image.
#[derive(Debug, Clone)]
pub struct Package {
    pub zip: Vec<u8>,
    /// Hex SHA-256 of `zip`.
    pub sha256: String,
    pub files: usize,
}

impl Package {
    /// The image tag for these sources (ECR tags: up to 128 of `[A-Za-z0-9_.-]`).
    pub fn tag(&self) -> String {
        format!("src-{}", &self.sha256[..24])
    }
}

/// Lists the files to package as (path in the zip, path on disk), sorted by zip path.
pub fn collect(root: &Path) -> Result<Vec<(String, PathBuf)>, PackageError> {
    let lambda = root.join("lambda-image");
    if !lambda.join("Cargo.toml").is_file() {
        return Err(PackageError::NotWorkspace(root.to_owned()));
    }
    let mut files = Vec::new();
    for f in ROOT_FILES {
        let p = root.join(f);
        if p.is_file() {
            files.push(((*f).to_owned(), p));
        }
    }
    for f in LAMBDA_FILES {
        let p = lambda.join(f);
        if p.is_file() {
            files.push((format!("lambda-image/{f}"), p));
        }
    }
    for d in LAMBDA_DIRS {
        walk(&lambda.join(d), &format!("lambda-image/{d}"), &mut files)?;
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    for required in REQUIRED {
        if !files.iter().any(|(name, _)| name == required) {
            return Err(PackageError::Missing(root.join(required), required));
        }
    }
    Ok(files)
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) -> Result<(), PackageError> {
    let read = |source| PackageError::Read {
        path: dir.to_owned(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(read(e)),
    };
    for entry in entries {
        let entry = entry.map_err(read)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Editor droppings and hidden files never belong in a build.
        if name.starts_with('.') || name.ends_with('~') {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type().map_err(read)?;
        if kind.is_dir() {
            walk(&path, &format!("{prefix}/{name}"), out)?;
        } else if kind.is_file() {
            out.push((format!("{prefix}/{name}"), path));
        }
    }
    Ok(())
}

/// Zips `(name, bytes)` entries deterministically: in the given order, every entry dated
/// 1980-01-01 00:00, mode 0644, deflated at a pinned level, no extra fields.
pub fn zip_entries(entries: &[(String, Vec<u8>)]) -> Result<Vec<u8>, PackageError> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(6))
        .last_modified_time(DateTime::DEFAULT)
        .unix_permissions(0o644);
    for (name, bytes) in entries {
        zip.start_file(name.as_str(), options)?;
        zip.write_all(bytes)?;
    }
    Ok(zip.finish()?.into_inner())
}

/// Packages the workspace at `root`.
pub fn package(root: &Path) -> Result<Package, PackageError> {
    let mut entries = Vec::new();
    for (name, path) in collect(root)? {
        let bytes = std::fs::read(&path).map_err(|source| PackageError::Read {
            path: path.clone(),
            source,
        })?;
        entries.push((name, bytes));
    }
    entries.push((ROOT_STUB_PATH.to_owned(), ROOT_STUB.to_vec()));
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let files = entries.len();
    let zip = zip_entries(&entries)?;
    let sha256 = super::sha256_hex(&zip);
    Ok(Package { zip, sha256, files })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_workspace(dir: &Path) {
        std::fs::create_dir_all(dir.join("lambda-image/src/engine")).unwrap();
        std::fs::create_dir_all(dir.join("lambda-image/tests")).unwrap();
        std::fs::write(dir.join("Cargo.toml"), "[workspace]\n").unwrap();
        std::fs::write(dir.join("Cargo.lock"), "# lock\n").unwrap();
        std::fs::write(dir.join("lambda-image/Cargo.toml"), "[package]\n").unwrap();
        std::fs::write(dir.join("lambda-image/Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(dir.join("lambda-image/buildspec.yml"), "version: 0.2\n").unwrap();
        std::fs::write(dir.join("lambda-image/src/main.rs"), "fn main() {}\n").unwrap();
        std::fs::write(dir.join("lambda-image/src/engine/mod.rs"), "// e\n").unwrap();
        std::fs::write(dir.join("lambda-image/tests/t.rs"), "// t\n").unwrap();
        std::fs::write(dir.join("lambda-image/src/.swp"), "x").unwrap();
    }

    #[test]
    fn same_sources_same_bytes_whatever_the_mtimes() {
        let a = tempfile::tempdir().unwrap();
        fake_workspace(a.path());
        let first = package(a.path()).unwrap();
        // Same content written again later (new mtimes, new inode order): same zip.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let b = tempfile::tempdir().unwrap();
        fake_workspace(b.path());
        let second = package(b.path()).unwrap();
        assert_eq!(first.zip, second.zip);
        assert_eq!(first.tag(), second.tag());
        // Tests, hidden files are not packaged; the root stub is.
        let names: Vec<String> = collect(a.path())
            .unwrap()
            .into_iter()
            .map(|e| e.0)
            .collect();
        assert_eq!(
            names,
            [
                "Cargo.lock",
                "Cargo.toml",
                "lambda-image/Cargo.toml",
                "lambda-image/Dockerfile",
                "lambda-image/buildspec.yml",
                "lambda-image/src/engine/mod.rs",
                "lambda-image/src/main.rs"
            ]
        );
        assert_eq!(first.files, 8);
        // A changed source changes the tag; a changed test does not.
        std::fs::write(b.path().join("lambda-image/tests/t.rs"), "// changed\n").unwrap();
        assert_eq!(package(b.path()).unwrap().zip, first.zip);
        std::fs::write(b.path().join("lambda-image/src/main.rs"), "fn main() { }\n").unwrap();
        assert_ne!(package(b.path()).unwrap().tag(), first.tag());
    }

    /// The buildspec is in the zip at the path the project names; without it (or the
    /// Dockerfile) packaging fails at once, naming the file.
    #[test]
    fn the_zip_holds_the_buildspec_the_project_names() {
        let d = tempfile::tempdir().unwrap();
        fake_workspace(d.path());
        let pkg = package(d.path()).unwrap();
        let zip = zip::ZipArchive::new(Cursor::new(pkg.zip)).unwrap();
        assert!(zip.index_for_name(BUILDSPEC).is_some());
        for required in REQUIRED {
            let e = tempfile::tempdir().unwrap();
            fake_workspace(e.path());
            std::fs::remove_file(e.path().join(required)).unwrap();
            let err = package(e.path()).unwrap_err().to_string();
            assert!(err.contains(required) && err.contains("missing"), "{err}");
        }
    }

    /// The buildspec CodeBuild runs (the repository's own file, as packaged): every build in it
    /// runs with BuildKit's default attestations off, so the pushed image is one manifest and
    /// not an image index, which Lambda refuses (aws/aws-lambda-roadmap#82); and the build
    /// fails on an index anyway, before `up` points the function at it.
    #[test]
    fn the_buildspec_builds_without_attestations() {
        let spec = include_str!("../../lambda-image/buildspec.yml");
        // `env: variables:`, the block-mapping lines of it (four spaces in).
        let mut variables = Vec::new();
        let mut section = "";
        for line in spec.lines() {
            if !line.starts_with(' ') && line.ends_with(':') {
                section = line;
                continue;
            }
            if section == "env:" && line.starts_with("    ") && !line.trim_start().starts_with('#')
            {
                variables.push(line.trim());
            }
        }
        assert!(
            variables.contains(&r#"BUILDX_NO_DEFAULT_ATTESTATIONS: "1""#),
            "{variables:?}"
        );
        let commands: Vec<&str> = spec
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .collect();
        let builds = commands
            .iter()
            .filter(|l| l.contains("docker build") || l.contains("docker buildx build"))
            .count();
        assert_eq!(builds, 2, "the dependency stage and the image");
        for flag in ["--provenance=true", "--sbom=true", "--attest"] {
            assert!(
                !commands.iter().any(|l| l.contains(flag)),
                "{flag} turns an attestation back on"
            );
        }
        assert!(
            commands
                .iter()
                .any(|l| l.contains("imageManifestMediaType")),
            "post_build checks the pushed media type"
        );
    }

    #[test]
    fn not_a_workspace_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let err = package(d.path()).unwrap_err().to_string();
        assert!(err.contains("--source"), "{err}");
    }
}
