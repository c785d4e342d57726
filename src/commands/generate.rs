//! `stockade generate-docs --out DIR` (hidden): man pages and shell completions generated from
//! the command-line definition itself, so they never drift from the flags. The Debian package
//! build calls it; the files land in `DIR/man/` and `DIR/completions/`.

use crate::failure::Failure;
use std::path::{Path, PathBuf};

/// Flags of `stockade generate-docs`.
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// Directory to write `man/*.1` and `completions/{stockade.bash,_stockade,stockade.fish}`
    /// into (created if missing).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: &GenerateArgs, mut command: clap::Command) -> Result<(), Failure> {
    let man = args.out.join("man");
    let completions = args.out.join("completions");
    for dir in [&man, &completions] {
        std::fs::create_dir_all(dir).map_err(|e| write_failure(dir, &e))?;
    }
    command.build();
    write_man_pages(&command, "stockade", &man)?;
    for (shell, file) in [
        (clap_complete::Shell::Bash, "stockade.bash"),
        (clap_complete::Shell::Zsh, "_stockade"),
        (clap_complete::Shell::Fish, "stockade.fish"),
    ] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut command.clone(), "stockade", &mut out);
        let path = completions.join(file);
        std::fs::write(&path, out).map_err(|e| write_failure(&path, &e))?;
    }
    Ok(())
}

/// One page per command and subcommand: `stockade.1`, `stockade-policy-check.1`, ...
fn write_man_pages(command: &clap::Command, name: &str, dir: &Path) -> Result<(), Failure> {
    if command.is_hide_set() {
        return Ok(());
    }
    let page = command.clone().name(name.to_owned());
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut out)
        .map_err(|e| Failure::unsafe_env(format!("cannot render the man page {name}: {e}")))?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, out).map_err(|e| write_failure(&path, &e))?;
    for sub in command.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        write_man_pages(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(())
}

fn write_failure(path: &Path, e: &std::io::Error) -> Failure {
    Failure::unsafe_env(format!("cannot write {}: {e}", path.display()))
}
