//! `scripts/prereqs.sh`, which the README's two commands run before compiling: on a machine
//! that lacks a package or the musl target it installs them (as root) or stops at once
//! naming the exact command (not root, no sudo). The system tools it calls (dpkg, apt-get,
//! id, sudo, rustup) are stand-ins on PATH that record what they were asked.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Machine {
    dir: tempfile::TempDir,
}

impl Machine {
    /// A machine where dpkg knows `installed`, `id -u` says `uid`, sudo exists only if
    /// `sudo`, and rustup has `targets`.
    fn new(installed: &[&str], uid: u32, sudo: bool, targets: &[&str]) -> Machine {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let log = dir.path().join("log");
        let script = |name: &str, body: String| {
            let p = bin.join(name);
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        let known = installed.join(" ");
        // `dpkg-query -W -f='${Status}' PKG`: a removed package keeps its config files, and
        // says so, as Debian's does (the state `dpkg -s` wrongly reports as success).
        script(
            "dpkg-query",
            format!(
                "for p in {known}; do [ \"$p\" = \"$3\" ] && printf 'install ok installed' && exit 0; done; printf 'deinstall ok config-files'"
            ),
        );
        script(
            "apt-get",
            format!("echo \"apt-get $*\" >> {}", log.display()),
        );
        script("id", format!("echo {uid}"));
        if sudo {
            script(
                "sudo",
                format!(
                    "[ \"$1\" = -n ] && shift; [ \"$1\" = true ] && exit 0; echo \"sudo $*\" >> {}; exec \"$@\"",
                    log.display()
                ),
            );
        }
        let listed = targets.join("\n");
        script(
            "rustup",
            format!(
                "if [ \"$1 $2\" = \"target list\" ]; then printf '%s\\n' \"{listed}\"; else echo \"rustup $*\" >> {}; fi",
                log.display()
            ),
        );
        Machine { dir }
    }

    fn run(&self, functions: &str) -> Output {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let bin: PathBuf = self.dir.path().join("bin");
        // The stand-ins first; the real shell tools (grep, cat, ...) after them. Cargo and
        // python3 are found where they really are.
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Command::new("bash")
            .arg("-c")
            .arg(format!("source scripts/prereqs.sh; {functions}"))
            .current_dir(root)
            .env("PATH", path)
            .output()
            .unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }
}

const ALL: &[&str] = &[
    "cmake",
    "nasm",
    "ca-certificates",
    "libde265-dev",
    "musl-tools",
    "docker-registry",
    "apache2-utils",
    "python3-venv",
    "chromium",
    "chromium-driver",
    "libgs-common",
    "man-db",
    "shellcheck",
];
const MUSL: &str = "x86_64-unknown-linux-musl";

#[test]
fn a_complete_machine_installs_nothing() {
    let m = Machine::new(ALL, 1000, false, &[MUSL]);
    let out = m.run("prereqs_build; prereqs_tests");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(m.log(), "", "nothing may be installed");
}

#[test]
fn as_root_the_missing_packages_and_target_are_installed() {
    let have: Vec<&str> = ALL
        .iter()
        .copied()
        .filter(|p| !["nasm", "musl-tools"].contains(p))
        .collect();
    let m = Machine::new(&have, 0, false, &[]);
    let out = m.run("prereqs_build; prereqs_tests");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = m.log();
    assert!(log.contains("apt-get update"), "{log}");
    assert!(
        log.lines()
            .any(|l| l.starts_with("apt-get install") && l.contains(" nasm")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.starts_with("apt-get install") && l.contains(" musl-tools")),
        "{log}"
    );
    assert!(log.contains(&format!("rustup target add {MUSL}")), "{log}");
}

#[test]
fn with_sudo_it_installs_through_sudo() {
    let have: Vec<&str> = ALL.iter().copied().filter(|p| *p != "cmake").collect();
    let m = Machine::new(&have, 1000, true, &[MUSL]);
    let out = m.run("prereqs_build");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        m.log()
            .lines()
            .any(|l| l.starts_with("sudo apt-get install") && l.contains("cmake")),
        "{}",
        m.log()
    );
}

#[test]
fn without_root_or_sudo_it_stops_naming_the_command() {
    let have: Vec<&str> = ALL
        .iter()
        .copied()
        .filter(|p| *p != "docker-registry")
        .collect();
    let m = Machine::new(&have, 1000, false, &[MUSL]);
    let out = m.run("prereqs_build; prereqs_tests; echo REACHED");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("sudo apt-get install -y docker-registry"),
        "{err}"
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("REACHED"),
        "it must stop"
    );
    assert_eq!(m.log(), "", "nothing may be attempted without rights");
}
