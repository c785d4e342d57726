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

/// What the admin policy gives the managed engine: daemon.json additions, and the registries
/// its own pulls and pushes may reach with the upstream they go through (`proxy`).
#[derive(Debug)]
pub struct EngineInputs {
    /// daemon.json additions.
    pub options: stockade_engine::PolicyOptions,
    /// `registryAccess.allowedRegistries` of the admin; `None`: every registry.
    pub allowed_registries: Option<Vec<String>>,
    /// Where allowed connections go: the admin's proxy, or directly.
    pub upstream: stockade_egress::Hop,
    /// Hosts that bypass the upstream proxy (`proxy.exclude`, or `NO_PROXY` in system mode).
    pub direct: Vec<String>,
    /// The admin's PAC file for the engine's pulls (`proxy.embeddedPac` or `proxy.pac`, manual
    /// mode): it chooses the way out of each allowed connection.
    pub pac: Option<stockade_egress::pac::PacSource>,
}

/// Whether the admin locked `exposeDockerAPIOnTCP2375` on: only then may an engine listen on
/// TCP (the managed one on 127.0.0.1:2375; `serve` refuses any other engine that does).
pub fn tcp_2375_allowed(policy: &Policy) -> bool {
    let settings = policy.effective(None, &UserContext::new(0, "/root"));
    settings.expose_docker_api_on_tcp2375
        && matches!(
            settings.source_of("exposeDockerAPIOnTCP2375.value"),
            Some((stockade_policy::Source::AdminLocked, _))
        )
}

/// Reads the engine's inputs from the policy. `env` looks up the environment Stockade was
/// started with (`proxy.mode: system`).
///
/// # Errors
/// A `proxy` the engine's egress filter cannot apply (a PAC file, SOCKS, credentials): refused
/// rather than ignored, since the engine would otherwise pull without the proxy asked for.
pub fn engine_inputs(
    policy: &Policy,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<EngineInputs, Failure> {
    // Engine-wide settings: only the admin's values count.
    let settings = policy.effective(None, &UserContext::new(0, "/root"));
    let locked_on = tcp_2375_allowed(policy);
    let options = stockade_engine::PolicyOptions {
        daemon_options: settings.daemon_options.clone(),
        expose_tcp_2375: locked_on,
    };
    let proxy = &settings.proxy;
    let pac = match (&proxy.mode, &proxy.embedded_pac, &proxy.pac) {
        (stockade_policy::ProxyMode::Manual, Some(script), _) => {
            Some(stockade_egress::pac::PacSource::Embedded(script.clone()))
        }
        (stockade_policy::ProxyMode::Manual, None, Some(pac)) => Some(
            stockade_egress::pac::PacSource::from_pac_setting(pac)
                .map_err(|e| Failure::check(format!("proxy.pac: {e}")))?,
        ),
        _ => None,
    };
    let (url, direct) = match proxy.mode {
        stockade_policy::ProxyMode::Manual => (
            proxy.https.clone().or_else(|| proxy.http.clone()),
            proxy.exclude.clone(),
        ),
        stockade_policy::ProxyMode::System => {
            let get = |k: &str| {
                env(k)
                    .or_else(|| env(&k.to_ascii_lowercase()))
                    .filter(|v| !v.is_empty())
            };
            (
                get("HTTPS_PROXY").or_else(|| get("HTTP_PROXY")),
                get("NO_PROXY")
                    .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect())
                    .unwrap_or_default(),
            )
        }
    };
    let upstream = match url {
        None => stockade_egress::Hop::Direct,
        Some(url) => proxy_hop(&url)?,
    };
    Ok(EngineInputs {
        options,
        allowed_registries: settings.registry_access.allowed_registries.clone(),
        upstream,
        direct,
        pac,
    })
}

/// `http://host:port` (or `host:port`) as an upstream hop.
fn proxy_hop(url: &str) -> Result<stockade_egress::Hop, Failure> {
    let unsupported = |why: &str| {
        Failure::check(format!(
            "the engine's proxy {url:?} cannot be used: {why}; give it as http://host:port"
        ))
    };
    let rest = url.strip_prefix("http://").unwrap_or(url);
    if rest.contains("://") {
        return Err(unsupported(
            "only http:// proxies are supported for the engine's pulls",
        ));
    }
    if rest.contains('@') {
        return Err(unsupported("proxy credentials are not supported"));
    }
    let authority = rest.split('/').next().unwrap_or(rest);
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (
            host,
            port.parse::<u16>()
                .map_err(|_| unsupported("the port is not a number"))?,
        ),
        None => (authority, 80),
    };
    if host.is_empty() {
        return Err(unsupported("no host"));
    }
    Ok(stockade_egress::Hop::Proxy {
        host: host.trim_matches(['[', ']']).to_owned(),
        port,
    })
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
    let inputs = engine_inputs(&policy, &|k| std::env::var(k).ok())?;
    let layout = match state_dir {
        Some(dir) => stockade_engine::Layout::in_state_dir(dir),
        None => stockade_engine::Layout::system(),
    };
    let config = stockade_engine::daemon_config(
        &layout,
        &layout.bridge_name(),
        &(super::up::DEFAULT_NETWORK_POOL.to_owned(), 24),
        &inputs.options,
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
    let _ = writeln!(
        out,
        "# environment: HTTP_PROXY and HTTPS_PROXY point at stockade's engine egress filter on 127.0.0.1 (port chosen at start), NO_PROXY is empty"
    );
    let registries = inputs
        .allowed_registries
        .as_ref()
        .map_or_else(|| "every registry".to_owned(), |r| r.join(", "));
    let _ = writeln!(out, "# egress filter: allows {registries}");
    match &inputs.pac {
        Some(pac) => {
            let _ = writeln!(
                out,
                "# egress filter: upstream chosen by the PAC {}",
                pac.describe()
            );
        }
        None => {
            let _ = writeln!(out, "# egress filter: upstream {}", inputs.upstream);
        }
    }
    if !inputs.direct.is_empty() {
        let _ = writeln!(
            out,
            "# egress filter: direct for {}",
            inputs.direct.join(", ")
        );
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
