//! `thumbctl completions SHELL` and `thumbctl man`: both generated at run time from the clap
//! definitions in `cli.rs`, so a new command or flag is completed and documented without
//! anyone regenerating files (the release tarball carries the same output, see scripts/dist.sh).

use std::io::Write;

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, ManArgs};

pub fn completions(args: CompletionsArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut Cli::command(), "thumbctl", &mut out);
    out.flush()
        .context("writing the completion script to stdout")
}

pub fn man(args: ManArgs) -> anyhow::Result<()> {
    let cmd = Cli::command();
    let Some(dir) = args.dir else {
        let mut out = std::io::stdout().lock();
        clap_mangen::Man::new(cmd)
            .render(&mut out)
            .context("writing the manual page to stdout")?;
        return out.flush().context("writing the manual page to stdout");
    };
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating the manual directory {}", dir.display()))?;
    // One page for thumbctl and one per command (thumbctl-up.1, ...), as git and cargo ship them.
    clap_mangen::generate_to(cmd, &dir)
        .with_context(|| format!("writing the manual pages into {}", dir.display()))?;
    eprintln!(
        "Wrote the manual pages into {}; read one with: man -l {}/thumbctl-up.1",
        dir.display(),
        dir.display()
    );
    Ok(())
}
