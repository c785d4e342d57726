//! `stockade policy check|show`: validate an admin policy, and show the settings in force for a
//! user with where each value came from.

use crate::failure::Failure;
use std::io::Write;
use std::path::{Path, PathBuf};
use stockade_policy::{Policy, UserContext, UserSettings};

/// Where `serve` and `up` look for the admin policy when none is given.
pub const DEFAULT_POLICY: &str = "/etc/stockade/admin-settings.json";

/// `stockade policy` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    /// Validate an admin-settings.json; exit 1 with every error as FILE:LINE:COL: key.path: message.
    Check {
        /// The admin policy file.
        file: PathBuf,
    },
    /// The effective settings after admin-locked > user > admin default > built-in, with the
    /// source of each value.
    Show {
        /// The admin policy file (default: /etc/stockade/admin-settings.json if it exists, else
        /// the built-in secure default).
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Apply this user's ~/.config/stockade/settings.json.
        #[arg(long)]
        user: Option<u32>,
        /// Print JSON instead of one line per key.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: PolicyCommand) -> Result<(), Failure> {
    match command {
        PolicyCommand::Check { file } => check(&file),
        PolicyCommand::Show { policy, user, json } => show(policy.as_deref(), user, json),
    }
}

/// Loads the admin policy for `serve`/`up`: the given file, else the default path when it
/// exists, else the built-in default. An invalid file is an error listing every problem.
pub fn load(path: Option<&Path>) -> Result<Policy, Failure> {
    Ok(load_with_path(path)?.0)
}

/// As [`load`], also returning the file to watch for reloads (`None` for the built-in).
pub fn load_with_path(path: Option<&Path>) -> Result<(Policy, Option<PathBuf>), Failure> {
    let path = match path {
        Some(path) => path.to_owned(),
        None => {
            let default = PathBuf::from(DEFAULT_POLICY);
            if !default.exists() {
                return Ok((Policy::builtin(), None));
            }
            default
        }
    };
    let policy = Policy::load(&path).map_err(|e| {
        Failure::check(format!(
            "the policy {} is not valid; fix these and retry (`stockade policy check` shows them too):\n{e}",
            path.display()
        ))
    })?;
    Ok((policy, Some(path)))
}

fn check(file: &Path) -> Result<(), Failure> {
    let policy = Policy::load(file).map_err(|e| {
        let count = e.errors().len().max(1);
        Failure::check(format!(
            "{} is not a valid policy ({count} error{}):\n{e}",
            file.display(),
            if count == 1 { "" } else { "s" }
        ))
    })?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}: valid (sha256 {})", file.display(), policy.hash());
    for note in policy.notes() {
        let _ = writeln!(out, "{}: note: {note}", file.display());
    }
    Ok(())
}

fn show(policy: Option<&Path>, uid: Option<u32>, json: bool) -> Result<(), Failure> {
    let policy = load(policy)?;
    let (who, user) = match uid {
        None => (UserContext::new(0, "/root"), None),
        Some(uid) => {
            let home = match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
                Ok(Some(user)) => user.dir,
                Ok(None) => {
                    return Err(Failure::usage(format!(
                        "no user with uid {uid} in the password database"
                    )))
                }
                Err(e) => {
                    return Err(Failure::unsafe_env(format!(
                        "cannot look up uid {uid}: {e}"
                    )))
                }
            };
            let who = UserContext::new(uid, home);
            let user = match UserSettings::read_for(&who) {
                Ok(user) => user,
                Err(e) => {
                    // As the gateway does: an unusable user file means the admin policy alone.
                    let _ = writeln!(
                        std::io::stderr(),
                        "stockade: user {uid}'s settings are ignored: {e}"
                    );
                    None
                }
            };
            (who, user)
        }
    };
    let settings = policy.effective(user.as_ref(), &who);
    let mut out = std::io::stdout().lock();
    if json {
        let _ = writeln!(out, "{:#}", settings.to_json());
    } else {
        let _ = writeln!(
            out,
            "# policy: {} (sha256 {})",
            policy.source_name(),
            policy.hash()
        );
        if let Some(user) = &user {
            let _ = writeln!(out, "# user settings: {}", user.source_name());
        }
        let _ = write!(out, "{}", settings.render_text());
    }
    Ok(())
}
