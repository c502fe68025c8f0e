//! The function's image made of the running thumbctl itself: thumbctl hands over to
//! lambda-image's runtime when Lambda starts it (see `main.rs`), so the binary that runs `up`
//! can be the function, and `up` needs no build.
//!
//! The image is `scratch` plus what the binary needs to start, and nothing else of this
//! machine: no CA bundle (the function trusts the roots compiled into it when its environment
//! has none, see `lambda_image::tls`, so no host layout is assumed):
//! - a statically linked binary needs nothing else;
//! - a dynamically linked one needs its ELF interpreter (at the path its `PT_INTERP` names)
//!   and the shared libraries of its dynamic section, resolved as the loader resolves them
//!   (RUNPATH/RPATH, `LD_LIBRARY_PATH`, `/etc/ld.so.conf`, the trusted directories) by the
//!   `lddtree` crate, each put at the path where the loader found it here. The image then
//!   carries its own libc and runs on Lambda whatever libc this machine has.
//!
//! Nothing is read twice or guessed: [`resolve`] lists the files, [`layer_tar`] reads them into
//! the layer, reproducibly (the same binary on the same machine gives the same digest).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use super::{Arch, oci};

/// ELF `e_machine` values of the two architectures Lambda runs.
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;

/// Libraries glibc before 2.34 loads with `dlopen` to resolve host names (name service
/// switch), so no dynamic section names them; without them the function could not find an
/// AWS endpoint. Since 2.34 they are empty stubs (libc does the work), a few KB each, shipped
/// anyway when they sit next to libc rather than guessing the glibc version.
const NSS_LIBRARIES: [&str; 3] = ["libnss_dns.so.2", "libnss_files.so.2", "libresolv.so.2"];

#[derive(Debug, thiserror::Error)]
pub enum SelfShipError {
    /// The running binary cannot run on Lambda: the reason, for `up` to say before it falls
    /// back to building the image.
    #[error("{0}")]
    Unsuitable(String),
    #[error("cannot read {what} {path}: {source}\n  hint: {hint}")]
    Read {
        what: &'static str,
        path: PathBuf,
        hint: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot read the shared-library dependencies of {path}: {source}\n  hint: build the function's image instead: `thumbctl up --local` or `thumbctl up --codebuild`"
    )]
    Resolve {
        path: PathBuf,
        #[source]
        source: lddtree::Error,
    },
    #[error(
        "{binary} needs {library}, which the dynamic loader would not find on this machine (searched the binary's RUNPATH, LD_LIBRARY_PATH, /etc/ld.so.conf and the system directories).\n  hint: this thumbctl cannot run here as it is; use a statically linked thumbctl (x86_64-unknown-linux-musl), or build the function's image with `thumbctl up --codebuild`"
    )]
    MissingLibrary { binary: PathBuf, library: String },
    #[error(
        "the loader found {library} at {path}, which cannot be a path in the image (it must be absolute, without `..`, in UTF-8).\n  hint: set LD_LIBRARY_PATH to a plain directory holding {library}, or use a statically linked thumbctl"
    )]
    BadPath { library: String, path: PathBuf },
}

/// A file of the image: where it goes, and where its bytes are on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub image_path: String,
    pub source: PathBuf,
}

/// What the image of a binary holds, before any byte is read.
#[derive(Debug, Clone)]
pub struct Contents {
    pub binary: PathBuf,
    pub arch: Arch,
    /// The ELF interpreter as the binary names it; `None` for a statically linked binary.
    pub interpreter: Option<String>,
    /// The interpreter and the shared libraries, sorted by their path in the image; empty for
    /// a statically linked binary.
    pub libraries: Vec<Placed>,
}

impl Contents {
    /// Variables for the image's configuration, beyond `PATH`.
    ///
    /// The libraries sit where this machine's loader found them, which the shipped loader
    /// searches by default when they are in the system directories (its own defaults are
    /// this machine's). `LD_LIBRARY_PATH` names their directories anyway, for a library found
    /// through `/etc/ld.so.conf` elsewhere: the image has no `ld.so.cache` to point there.
    pub fn env(&self) -> Vec<String> {
        let mut dirs: Vec<&str> = self
            .libraries
            .iter()
            .filter(|p| Some(&p.image_path) != self.interpreter.as_ref())
            .filter_map(|p| p.image_path.rsplit_once('/').map(|(dir, _)| dir))
            .filter(|d| !d.is_empty())
            .collect();
        dirs.sort_unstable();
        dirs.dedup();
        if dirs.is_empty() {
            Vec::new()
        } else {
            vec![format!("LD_LIBRARY_PATH={}", dirs.join(":"))]
        }
    }

    /// One line for the user: the architecture and how the binary is linked.
    pub fn describe(&self) -> String {
        match &self.interpreter {
            None => format!("{}, statically linked", self.arch.lambda_name()),
            Some(interp) => format!(
                "{}, dynamically linked: with {interp} and {} shared libraries",
                self.arch.lambda_name(),
                self.libraries.len().saturating_sub(1)
            ),
        }
    }
}

/// The file this process runs from, if it could be the function at all.
pub fn running_binary() -> Result<PathBuf, SelfShipError> {
    if !cfg!(target_os = "linux") {
        return Err(SelfShipError::Unsuitable(format!(
            "this thumbctl is a {} binary, and Lambda runs Linux binaries",
            std::env::consts::OS
        )));
    }
    std::env::current_exe().map_err(|e| {
        SelfShipError::Unsuitable(format!(
            "cannot tell which file this thumbctl runs from ({e})"
        ))
    })
}

/// The Lambda architecture of an ELF binary, from its header; why it cannot run on Lambda
/// otherwise.
pub fn elf_arch(header: &[u8]) -> Result<Arch, String> {
    if header.len() < 20 || &header[..4] != b"\x7fELF" {
        return Err("it is not an ELF binary, and Lambda runs Linux (ELF) binaries".into());
    }
    if header[4] != 2 {
        return Err("it is a 32-bit binary, and Lambda runs 64-bit x86_64 or arm64".into());
    }
    if header[5] != 1 {
        return Err(
            "it is a big-endian binary, and Lambda runs little-endian x86_64 or arm64".into(),
        );
    }
    match u16::from_le_bytes([header[18], header[19]]) {
        EM_X86_64 => Ok(Arch::X86_64),
        EM_AARCH64 => Ok(Arch::Arm64),
        other => Err(format!(
            "it is built for ELF machine type {other}, and Lambda runs x86_64 (62) or arm64 (183)"
        )),
    }
}

fn read_err(
    what: &'static str,
    path: &Path,
    hint: &'static str,
) -> impl FnOnce(std::io::Error) -> SelfShipError {
    let path = path.to_path_buf();
    move |source| SelfShipError::Read {
        what,
        path,
        hint,
        source,
    }
}

/// The path a file found at `found` on this machine gets in the image: the same, as a plain
/// absolute path (`.` dropped; `..` refused, as it would name another place in the image).
fn image_path(library: &str, found: &Path) -> Result<String, SelfShipError> {
    let bad = || SelfShipError::BadPath {
        library: library.to_owned(),
        path: found.to_path_buf(),
    };
    if !found.is_absolute() {
        return Err(bad());
    }
    let mut out = String::new();
    for c in found.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => {
                out.push('/');
                out.push_str(part.to_str().ok_or_else(bad)?);
            }
            Component::ParentDir | Component::Prefix(_) => return Err(bad()),
        }
    }
    if out.is_empty() {
        return Err(bad());
    }
    Ok(out)
}

/// Lists what the image of `binary` holds: checks that Lambda can run it (ELF, 64-bit,
/// x86_64 or arm64) and, if it is dynamically linked, resolves its interpreter and libraries.
pub fn resolve(binary: &Path) -> Result<Contents, SelfShipError> {
    const HINT: &str = "check that the file is readable";
    let mut header = Vec::with_capacity(64);
    std::fs::File::open(binary)
        .and_then(|f| f.take(64).read_to_end(&mut header))
        .map_err(read_err("the running binary", binary, HINT))?;
    let arch = elf_arch(&header)
        .map_err(|why| SelfShipError::Unsuitable(format!("{}: {why}", binary.display())))?;

    let tree = lddtree::DependencyAnalyzer::default()
        .analyze(binary)
        .map_err(|source| SelfShipError::Resolve {
            path: binary.to_path_buf(),
            source,
        })?;
    let Some(interpreter) = tree.interpreter.clone() else {
        if tree.needed.is_empty() {
            return Ok(Contents {
                binary: binary.to_path_buf(),
                arch,
                interpreter: None,
                libraries: Vec::new(),
            });
        }
        return Err(SelfShipError::Unsuitable(format!(
            "{} needs shared libraries ({}) but names no ELF interpreter to load them",
            binary.display(),
            tree.needed.join(", ")
        )));
    };
    let missing = |library: &str| SelfShipError::MissingLibrary {
        binary: binary.to_path_buf(),
        library: library.to_owned(),
    };
    let interp_real = std::fs::canonicalize(&interpreter).map_err(|_| missing(&interpreter))?;

    // Keyed by path in the image: sorted, and one file per path.
    let mut placed: BTreeMap<String, PathBuf> = BTreeMap::new();
    placed.insert(
        image_path(&interpreter, Path::new(&interpreter))?,
        interp_real.clone(),
    );
    let mut libc_dir: Option<PathBuf> = None;
    for (name, lib) in &tree.libraries {
        let real = lib.realpath.as_ref().ok_or_else(|| missing(name))?;
        // libc names the loader as a dependency too; the loader answers that name itself
        // (it is already in memory under its soname) and never opens a second copy.
        if *real == interp_real {
            continue;
        }
        if name == "libc.so.6" {
            libc_dir = lib.path.parent().map(Path::to_path_buf);
        }
        placed.insert(image_path(name, &lib.path)?, real.clone());
    }
    if let Some(dir) = libc_dir {
        for name in NSS_LIBRARIES {
            let found = dir.join(name);
            if let Ok(real) = std::fs::canonicalize(&found) {
                placed.entry(image_path(name, &found)?).or_insert(real);
            }
        }
    }
    Ok(Contents {
        binary: binary.to_path_buf(),
        arch,
        interpreter: Some(image_path(&interpreter, Path::new(&interpreter))?),
        libraries: placed
            .into_iter()
            .map(|(image_path, source)| Placed { image_path, source })
            .collect(),
    })
}

/// The image's one layer, uncompressed: the binary as the entrypoint, and the interpreter and
/// libraries of `contents`, each read now.
pub fn layer_tar(contents: &Contents) -> Result<Vec<u8>, SelfShipError> {
    let binary = std::fs::read(&contents.binary).map_err(read_err(
        "the running binary",
        &contents.binary,
        "check that the file is readable",
    ))?;
    let mut libraries = Vec::with_capacity(contents.libraries.len());
    for p in &contents.libraries {
        let bytes = std::fs::read(&p.source).map_err(read_err(
            "the shared library",
            &p.source,
            "check that the file is readable, or use a statically linked thumbctl",
        ))?;
        libraries.push((p.image_path.as_str(), bytes));
    }
    let mut files = vec![oci::File {
        path: oci::ENTRYPOINT,
        mode: 0o755,
        bytes: &binary,
    }];
    files.extend(libraries.iter().map(|(path, bytes)| oci::File {
        path,
        mode: 0o755,
        bytes,
    }));
    oci::layer_tar(&files).map_err(read_err(
        "the image layer for",
        &contents.binary,
        "check free memory",
    ))
}

/// The tag of an image by the digest of its uncompressed layer: known before compressing,
/// so a rerun with the same binary finds its image by one HEAD and compresses nothing.
pub fn tag(diff_id: &str) -> String {
    let hex = diff_id.trim_start_matches("sha256:");
    format!("self-{}", &hex[..hex.len().min(24)])
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn this_test_binary() -> PathBuf {
        std::env::current_exe().expect("the test binary's path")
    }

    #[test]
    fn the_header_says_which_lambda_architecture() {
        let mut h = [0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2;
        h[5] = 1;
        h[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        assert_eq!(elf_arch(&h), Ok(Arch::X86_64));
        h[18..20].copy_from_slice(&EM_AARCH64.to_le_bytes());
        assert_eq!(elf_arch(&h), Ok(Arch::Arm64));
        h[18..20].copy_from_slice(&40u16.to_le_bytes()); // 32-bit ARM's machine type
        assert!(elf_arch(&h).unwrap_err().contains("machine type 40"));
        h[4] = 1;
        assert!(elf_arch(&h).unwrap_err().contains("32-bit"));
        assert!(
            elf_arch(b"\xcf\xfa\xed\xfe\x07\x00\x00\x01 a Mach-O header....")
                .unwrap_err()
                .contains("not an ELF")
        );
        assert!(elf_arch(b"").is_err());
    }

    #[test]
    fn image_paths_are_plain_absolute_paths() {
        assert_eq!(
            image_path("libc.so.6", Path::new("/lib/./x86_64-linux-gnu//libc.so.6")).unwrap(),
            "/lib/x86_64-linux-gnu/libc.so.6"
        );
        assert!(image_path("x", Path::new("lib/libx.so")).is_err());
        assert!(image_path("x", Path::new("/lib/../etc/libx.so")).is_err());
        assert!(image_path("x", Path::new("/")).is_err());
    }

    #[test]
    fn tag_is_the_layer_digest() {
        assert_eq!(
            tag("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
            "self-0123456789abcdef01234567"
        );
    }

    /// This test binary is linked like thumbctl (dynamically, against glibc here): its image
    /// must hold the interpreter it names and libc, at the paths this machine's loader uses,
    /// every file byte for byte; and the architecture is this machine's.
    #[test]
    fn the_test_binary_ships_with_its_loader_and_libraries() {
        let bin = this_test_binary();
        let contents = resolve(&bin).expect("resolve the test binary");
        eprintln!(
            "{}: {contents:#?}\n{:?}",
            contents.describe(),
            contents.env()
        );
        let host = if cfg!(target_arch = "aarch64") {
            Arch::Arm64
        } else {
            Arch::X86_64
        };
        assert_eq!(contents.arch, host);
        if cfg!(target_env = "musl") {
            // A musl test binary is static: the binary alone is the image.
            assert_eq!(contents.interpreter, None);
            assert!(contents.libraries.is_empty());
            return;
        }
        let interp = contents
            .interpreter
            .clone()
            .expect("a glibc test binary names its ELF interpreter");
        assert!(interp.starts_with('/'), "{interp}");
        let by_path: BTreeMap<&str, &Path> = contents
            .libraries
            .iter()
            .map(|p| (p.image_path.as_str(), p.source.as_path()))
            .collect();
        assert_eq!(
            by_path.get(interp.as_str()).copied(),
            Some(std::fs::canonicalize(&interp).unwrap().as_path()),
            "the interpreter is at the path the binary names: {by_path:?}"
        );
        let libc: Vec<&&str> = by_path
            .keys()
            .filter(|p| p.ends_with("/libc.so.6"))
            .collect();
        assert_eq!(libc.len(), 1, "one libc: {by_path:?}");
        // Where the loader of this machine finds libc (ldd asks the loader itself).
        let ldd = std::process::Command::new("ldd").arg(&bin).output();
        if let Ok(out) = ldd {
            let text = String::from_utf8_lossy(&out.stdout);
            let found = text
                .lines()
                .find(|l| l.trim_start().starts_with("libc.so.6 =>"))
                .and_then(|l| l.split("=>").nth(1))
                .and_then(|r| r.split_whitespace().next())
                .map(str::to_owned);
            if let Some(found) = found {
                assert_eq!(
                    by_path[*libc[0]],
                    std::fs::canonicalize(&found).unwrap(),
                    "the libc the loader loads: {text}"
                );
            }
        }
        // Nothing is shipped twice.
        let files: Vec<&PathBuf> = contents.libraries.iter().map(|p| &p.source).collect();
        let mut unique = files.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), files.len(), "a file shipped twice: {files:?}");
        let env = contents.env();
        assert_eq!(env.len(), 1, "{env:?}");
        assert!(
            env[0].starts_with("LD_LIBRARY_PATH=/") && !env[0].contains(&interp),
            "{env:?}"
        );

        // The layer holds exactly these files, plus the binary: no CA bundle of this machine.
        let tar = layer_tar(&contents).expect("layer");
        let again = layer_tar(&contents).expect("layer");
        assert!(tar == again, "the same binary gives the same layer");
        let mut archive = tar::Archive::new(&tar[..]);
        let mut seen = BTreeMap::new();
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            if e.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let path = format!("/{}", e.path().unwrap().display());
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes).unwrap();
            seen.insert(path, bytes);
        }
        assert_eq!(
            seen.get(oci::ENTRYPOINT).map(Vec::len),
            Some(std::fs::metadata(&bin).unwrap().len() as usize)
        );
        assert!(seen.get(oci::ENTRYPOINT) == Some(&std::fs::read(&bin).unwrap()));
        for p in &contents.libraries {
            assert!(
                seen.get(&p.image_path) == Some(&std::fs::read(&p.source).unwrap()),
                "{} holds {}",
                p.image_path,
                p.source.display()
            );
        }
        assert_eq!(
            seen.len(),
            contents.libraries.len() + 1,
            "{:?}",
            seen.keys()
        );
    }

    #[test]
    fn a_file_that_is_not_elf_cannot_be_the_function() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("thumbctl");
        std::fs::write(&script, b"#!/bin/sh\necho hi\n").unwrap();
        match resolve(&script) {
            Err(SelfShipError::Unsuitable(why)) => assert!(why.contains("not an ELF"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
