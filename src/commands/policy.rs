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
        /// Instead of the settings, print the daemon.json and environment `stockade up` gives
        /// the managed engine under this policy.
        #[arg(long, conflicts_with_all = ["user", "json"])]
        engine_config: bool,
        /// With --engine-config: the state directory `up` would use.
        #[arg(long, requires = "engine_config")]
        state_dir: Option<PathBuf>,
    },
    /// The decision and the rule that made it for one request, without an engine: an Engine
    /// API request (`--route 'POST /containers/create'`, body on stdin) or docker CLI arguments
    /// (`-- docker run --privileged busybox`). Exit 0 when allowed, 1 when denied.
    Explain(super::explain::ExplainArgs),
}

/// What the admin policy gives the managed engine: daemon.json additions and the environment
/// for its own pulls and pushes (`proxy`).
///
/// # Errors
/// A `proxy` the engine cannot apply (a PAC file): refused rather than ignored, since the
/// engine would otherwise pull without the proxy the admin asked for.
pub fn engine_inputs(
    policy: &Policy,
) -> Result<(stockade_engine::PolicyOptions, Vec<(String, String)>), Failure> {
    // Engine-wide settings: only the admin's values count.
    let settings = policy.effective(None, &UserContext::new(0, "/root"));
    let locked_on = settings.expose_docker_api_on_tcp2375
        && matches!(
            settings.source_of("exposeDockerAPIOnTCP2375.value"),
            Some((stockade_policy::Source::AdminLocked, _))
        );
    let options = stockade_engine::PolicyOptions {
        daemon_options: settings.daemon_options.clone(),
        expose_tcp_2375: locked_on,
    };
    let proxy = &settings.proxy;
    if proxy.pac.is_some() || proxy.embedded_pac.is_some() {
        return Err(Failure::check(
            "the policy sets proxy.pac or proxy.embeddedPac, which the managed engine's own pulls cannot use yet; set proxy.mode to manual with proxy.http/proxy.https instead".to_owned(),
        ));
    }
    let mut env = Vec::new();
    if proxy.mode == stockade_policy::ProxyMode::Manual {
        for (key, value) in [("HTTP_PROXY", &proxy.http), ("HTTPS_PROXY", &proxy.https)] {
            // An empty manual value means no proxy: clear what the environment may hold.
            env.push((key.to_owned(), value.clone().unwrap_or_default()));
            env.push((key.to_ascii_lowercase(), value.clone().unwrap_or_default()));
        }
        let exclude = proxy.exclude.join(",");
        env.push(("NO_PROXY".to_owned(), exclude.clone()));
        env.push(("no_proxy".to_owned(), exclude));
    }
    Ok((options, env))
}

pub fn run(command: PolicyCommand) -> Result<(), Failure> {
    match command {
        PolicyCommand::Check { file } => check(&file),
        PolicyCommand::Explain(args) => super::explain::run(&args),
        PolicyCommand::Show {
            engine_config: true,
            policy,
            state_dir,
            ..
        } => show_engine_config(policy.as_deref(), state_dir.as_deref()),
        PolicyCommand::Show {
            policy, user, json, ..
        } => show(policy.as_deref(), user, json),
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
    stockade_policy::check_admin_file_owner(&path).map_err(Failure::unsafe_env)?;
    if let Some(catalog) = policy.catalog_path() {
        stockade_policy::check_admin_file_owner(catalog).map_err(Failure::unsafe_env)?;
    }
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

fn show_engine_config(policy: Option<&Path>, state_dir: Option<&Path>) -> Result<(), Failure> {
    let policy = load(policy)?;
    let (options, env) = engine_inputs(&policy)?;
    let layout = match state_dir {
        Some(dir) => stockade_engine::Layout::in_state_dir(dir),
        None => stockade_engine::Layout::system(),
    };
    let config = stockade_engine::daemon_config(
        &layout,
        &layout.bridge_name(),
        &(super::up::DEFAULT_NETWORK_POOL.to_owned(), 24),
        &options,
    );
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "# {} (from policy {}, sha256 {})",
        layout.daemon_json().display(),
        policy.source_name(),
        policy.hash()
    );
    let _ = writeln!(out, "{config:#}");
    if env.is_empty() {
        let _ = writeln!(
            out,
            "# environment: proxy.mode is system, dockerd inherits stockade's HTTP_PROXY/HTTPS_PROXY/NO_PROXY"
        );
    } else {
        let _ = writeln!(out, "# environment:");
        for (key, value) in &env {
            let _ = writeln!(out, "{key}={value}");
        }
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
