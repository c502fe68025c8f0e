//! `thumbctl completions` and `thumbctl man`, used as a user would: the bash script is loaded
//! into a real bash and asked to complete, and the page is rendered by `man -l`.

use std::path::Path;
use std::process::{Command, Output};

fn thumbctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_thumbctl"))
        .args(args)
        .output()
        .expect("run thumbctl")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What bash offers for the words typed so far (the last one being completed).
fn bash_completes(script: &Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source '{}'\nCOMP_WORDS=({})\nCOMP_CWORD={}\nCOMP_LINE='{}'\nCOMP_POINT=${{#COMP_LINE}}\n\
         _thumbctl thumbctl '{}' '{}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script.display(),
        quoted.join(" "),
        words.len() - 1,
        words.join(" "),
        words[words.len() - 1],
        words[words.len().saturating_sub(2)],
    );
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &program])
        .output()
        .expect("run bash");
    stdout(&out).lines().map(str::to_owned).collect()
}

#[test]
fn bash_completes_commands_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("thumbctl.bash");
    std::fs::write(&script, stdout(&thumbctl(&["completions", "bash"]))).unwrap();

    let commands = bash_completes(&script, &["thumbctl", "de"]);
    assert!(commands.contains(&"delete".to_owned()), "{commands:?}");
    assert!(commands.contains(&"destroy".to_owned()), "{commands:?}");
    assert!(!commands.contains(&"up".to_owned()), "{commands:?}");

    let flags = bash_completes(&script, &["thumbctl", "up", "--dry"]);
    assert_eq!(flags, ["--dry-run"]);
    let values = bash_completes(&script, &["thumbctl", "completions", "p"]);
    assert_eq!(values, ["powershell"]);
}

#[test]
fn every_shell_gets_a_script_naming_the_commands() {
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let text = stdout(&thumbctl(&["completions", shell]));
        for word in ["reprocess", "dry-run", "endpoint-url"] {
            assert!(text.contains(word), "{shell}: no {word}");
        }
    }
    let bad = thumbctl(&["completions", "tcsh"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn the_manual_page_renders_with_man() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("thumbctl.1");
    std::fs::write(&page, stdout(&thumbctl(&["man"]))).unwrap();
    let out = Command::new("man")
        .args(["-P", "cat", "-l"])
        .arg(&page)
        .env("MANWIDTH", "100")
        .env("COLUMNS", "100")
        .output()
        .expect("run man");
    let text = stdout(&out);
    for want in [
        "NAME",
        "SYNOPSIS",
        "thumbctl",
        "--endpoint-url",
        "reprocess",
        "serverless image-thumbnail pipeline",
    ] {
        assert!(
            text.contains(want),
            "no {want:?} in the rendered page:\n{text}"
        );
    }

    let pages = dir.path().join("man1");
    let out = thumbctl(&["man", "--dir", pages.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let up = pages.join("thumbctl-up.1");
    let out = Command::new("man")
        .args(["-P", "cat", "-l"])
        .arg(&up)
        .output()
        .expect("run man");
    let text = stdout(&out);
    assert!(text.contains("--image-uri"), "{text}");
}
