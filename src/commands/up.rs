//! `stockade up`: the one-command start. A private hardened dockerd and the gateway in front of
//! it, in the foreground until Ctrl-C or SIGTERM, then both stopped in order.
//!
//! The engine half (daemon.json, bridge, dockerd, the engine's egress filter and the air gap)
//! is [`start_engine`], which `stockade engine` (the packaged `stockade-engine.service`) runs on
//! its own.

use super::{group_id, Signals};
use crate::failure::Failure;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use stockade_engine::{BridgeSubnet, EngineSettings, Layout, ManagedEngine};
use stockade_gateway::{GatewayListener, SocketOwnership};

/// Where user-defined networks get their subnets unless `--network-pool` says otherwise.
pub const DEFAULT_NETWORK_POOL: &str = "10.214.0.0/16";

/// The managed engine's flags, shared by `up` and `engine`.
#[derive(Debug, clap::Args)]
pub struct EngineFlags {
    /// Keep everything (data, config, logs and both sockets) in this directory instead of
    /// /var/lib/stockade and /run/stockade.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// The engine bridge's address and subnet.
    #[arg(long, default_value = "10.213.0.1/24")]
    pub bridge_subnet: BridgeSubnet,
    /// Address pool for user-defined networks, split into /24 networks.
    #[arg(long, default_value = DEFAULT_NETWORK_POOL)]
    pub network_pool: String,
    /// The admin policy (default: /etc/stockade/admin-settings.json if it exists, else the
    /// built-in secure default). An invalid file stops the start.
    #[arg(long)]
    pub policy: Option<PathBuf>,
}

/// Flags of `stockade up`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    #[command(flatten)]
    engine: EngineFlags,
    /// Group that may connect to the gateway socket (mode 0660).
    #[arg(long, default_value = "docker")]
    group: String,
    /// Record every decision in this hash-chained audit log (created 0600 if missing).
    #[arg(long)]
    audit_log: Option<PathBuf>,
    /// When the audit log cannot be written, keep serving (with a loud error per request)
    /// instead of refusing requests. Off by default: fail closed.
    #[arg(long)]
    audit_fail_open: bool,
    /// Sign checkpoints of the audit log with this ed25519 key (created 0600 if missing).
    #[arg(long, requires = "audit_log")]
    audit_key: Option<PathBuf>,
}

pub async fn run(args: UpArgs) -> Result<(), Failure> {
    require_root("stockade up")?;
    let gid = group_id(&args.group)?;
    let Started {
        policy,
        audit,
        mut signals,
        mut engine,
    } = start(
        &args.engine,
        args.audit_log.as_deref(),
        args.audit_key.as_deref(),
    )
    .await?;
    let result = tokio::select! {
        result = serve(&engine.layout, gid, (audit, args.audit_log.clone(), args.audit_fail_open), policy, &mut signals) => result,
        // An engine that dies under the gateway is not papered over with 502s: stop and say so.
        died = engine.engine.exited() => Err(Failure::unsafe_env(format!(
            "the managed engine stopped unexpectedly, so stockade is stopping too: {died}"
        ))),
    };
    engine.stop().await;
    result
}

/// Refuses to go on unless running as root.
pub fn require_root(command: &str) -> Result<(), Failure> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(Failure::unsafe_env(format!(
            "{command} must run as root (it starts dockerd and creates a network bridge); run it with sudo"
        )))
    }
}

/// The managed engine with what runs beside it: the engine's egress filter and the air gap.
pub struct RunningEngine {
    /// The engine process.
    pub engine: ManagedEngine,
    /// Where its state and sockets are.
    pub layout: Layout,
    airgap: Option<super::airgap::Airgap>,
    _filter: AbortOnDrop,
}

impl RunningEngine {
    /// Removes the air-gap rules, then stops dockerd (and a containerd that outlived it) and
    /// removes the bridge and the engine socket.
    pub async fn stop(mut self) {
        if let Some(airgap) = self.airgap.take() {
            airgap.stop().await;
        }
        self.engine.stop().await;
    }
}

/// What `up` and `stockade engine` have once the managed engine runs.
pub struct Started {
    /// The admin policy and the file it came from.
    pub policy: (stockade_policy::Policy, Option<PathBuf>),
    /// The audit log, when one is asked for.
    pub audit: Option<Arc<stockade_audit::AuditLog>>,
    /// SIGINT and SIGTERM, installed before the engine starts.
    pub signals: Signals,
    /// The engine and its egress controls.
    pub engine: RunningEngine,
}

/// Loads the policy, opens the audit log, installs the signal handlers and starts the managed
/// engine: what `up` and `stockade engine` do first.
///
/// # Errors
/// As [`start_engine`], or when the policy or the audit log cannot be loaded.
pub async fn start(
    flags: &EngineFlags,
    audit_log: Option<&std::path::Path>,
    audit_key: Option<&std::path::Path>,
) -> Result<Started, Failure> {
    let policy = super::policy::load_with_path(flags.policy.as_deref())?;
    let audit = super::serve::open_audit(audit_log, &policy.0, audit_key)?;
    let signals = Signals::install()?;
    let engine = start_engine(flags, &policy.0, audit.clone()).await?;
    Ok(Started {
        policy,
        audit,
        signals,
        engine,
    })
}

/// The managed engine must pass the same checks `serve` applies to any engine before anyone is
/// told it is up.
///
/// # Errors
/// When it does not (the caller stops it).
pub async fn check_managed(
    layout: &Layout,
    policy: &stockade_policy::Policy,
) -> Result<stockade_engine::EngineFacts, Failure> {
    let facts = stockade_engine::check_engine(
        &layout.engine_socket,
        super::policy::tcp_2375_allowed(policy),
    )
    .await
    .map_err(|e| Failure::unsafe_env(e.to_string()))?;
    tracing::info!(version = %facts.version, isolation = ?facts.isolation, "managed engine ready");
    Ok(facts)
}

/// Writes the managed engine's configuration under the policy, starts dockerd behind
/// Stockade's egress filter, waits until it answers, and applies the air gap when the policy
/// configures `containersProxy`.
///
/// # Errors
/// dockerd is missing, the state directory is held by another instance, the engine does not
/// come up, or the egress controls cannot be put in place (the engine is stopped again).
pub async fn start_engine(
    flags: &EngineFlags,
    policy: &stockade_policy::Policy,
    audit: Option<Arc<stockade_audit::AuditLog>>,
) -> Result<RunningEngine, Failure> {
    let dockerd = stockade_engine::find_dockerd().ok_or_else(|| {
        Failure::unsafe_env("dockerd was not found; install it with `apt-get install docker.io`")
    })?;
    let inputs = super::policy::engine_inputs(policy, &|k| std::env::var(k).ok())?;
    // The engine's own pulls and pushes go through the egress filter: only allowed registries.
    let filter = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| {
            Failure::unsafe_env(format!(
                "cannot open the engine's egress filter on 127.0.0.1: {e}"
            ))
        })?;
    let filter_url = format!(
        "http://{}",
        filter
            .local_addr()
            .map_err(|e| Failure::unsafe_env(e.to_string()))?
    );
    let mut filter_rules = stockade_egress::engine_filter::RegistryFilter::new(
        inputs.allowed_registries.as_deref(),
        inputs.upstream.clone(),
    )
    .with_direct(&inputs.direct);
    if let Some(source) = inputs.pac.clone() {
        // Loading may fetch an http:// PAC: off the executor. A PAC that fails to load
        // refuses every engine connection until it loads (fail closed), reported once.
        let pac = tokio::task::spawn_blocking(move || {
            stockade_egress::Decider::pac(source, stockade_egress::DeciderOptions::default())
        })
        .await
        .map_err(|e| Failure::unsafe_env(format!("cannot load the engine's PAC file: {e}")))?;
        filter_rules = filter_rules.with_route(Arc::new(pac));
    }
    let decide: Arc<dyn stockade_egress::Decide> = Arc::new(filter_rules);
    let filter = AbortOnDrop(tokio::spawn(stockade_egress::engine_filter::serve(
        filter,
        decide,
        filter_reporter(audit.clone()),
    )));
    let mut engine_env = Vec::new();
    for key in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
        engine_env.push((key.to_owned(), filter_url.clone()));
    }
    for key in ["NO_PROXY", "no_proxy"] {
        engine_env.push((key.to_owned(), String::new()));
    }
    let layout = match &flags.state_dir {
        Some(dir) => Layout::in_state_dir(&absolute(dir)?),
        None => Layout::system(),
    };
    let settings = EngineSettings {
        layout: layout.clone(),
        bridge_subnet: flags.bridge_subnet,
        address_pool: (flags.network_pool.clone(), 24),
        dockerd,
        env: engine_env,
        policy: inputs.options,
        start_timeout: Duration::from_secs(60),
    };
    let mut engine = ManagedEngine::start(settings)
        .await
        .map_err(|e| Failure::unsafe_env(e.to_string()))?;
    // Air-gapped containers, when the policy configures containersProxy.
    let subnet: Result<stockade_egress::nft::Subnet, _> = format!(
        "{}/{}",
        flags.bridge_subnet.network(),
        flags.bridge_subnet.prefix
    )
    .parse();
    let subnet = match subnet {
        Ok(subnet) => subnet,
        Err(e) => {
            engine.stop().await;
            return Err(Failure::unsafe_env(format!("the bridge subnet: {e}")));
        }
    };
    let bridge = layout.bridge_name();
    let network = super::airgap::EngineNetwork {
        socket: &layout.engine_socket,
        bridge: &bridge,
        subnet,
    };
    let airgap = match super::airgap::start(policy, &network, audit).await {
        Ok(airgap) => airgap,
        Err(e) => {
            engine.stop().await;
            return Err(e);
        }
    };
    Ok(RunningEngine {
        engine,
        layout,
        airgap,
        _filter: filter,
    })
}

/// Logs and records each decision of the engine's egress filter.
fn filter_reporter(
    audit: Option<Arc<stockade_audit::AuditLog>>,
) -> Arc<dyn Fn(stockade_egress::engine_filter::FilterEvent) + Send + Sync> {
    Arc::new(move |event: stockade_egress::engine_filter::FilterEvent| {
        tracing::info!(destination = %event.destination, allowed = event.allowed, reason = %event.reason, "engine egress");
        let Some(audit) = &audit else { return };
        let decision = if event.allowed {
            stockade_audit::Decision::Allow
        } else {
            stockade_audit::Decision::Deny
        };
        let durability = if event.allowed {
            stockade_audit::Durability::Grouped
        } else {
            stockade_audit::Durability::Sync
        };
        let mut record = stockade_audit::Event {
            kind: Some(stockade_audit::Kind::Decision),
            decision: Some(decision),
            route: Some("engine_egress".into()),
            reason: Some(event.reason.clone()),
            ..stockade_audit::Event::default()
        };
        record
            .summary
            .insert("destination".into(), event.destination.clone().into());
        let audit = Arc::clone(audit);
        tokio::spawn(async move {
            if let Err(e) = audit.append(record, durability).await {
                tracing::error!(error = %e, "cannot record an engine egress decision");
            }
        });
    })
}

/// Ends a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn serve(
    layout: &Layout,
    gid: u32,
    audit: (Option<Arc<stockade_audit::AuditLog>>, Option<PathBuf>, bool),
    policy: (stockade_policy::Policy, Option<PathBuf>),
    signals: &mut Signals,
) -> Result<(), Failure> {
    check_managed(layout, &policy.0).await?;
    let listener =
        GatewayListener::bind(&layout.gateway_socket, SocketOwnership { gid, mode: 0o660 })
            .map_err(|e| Failure::unsafe_env(e.to_string()))?;
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "export DOCKER_HOST=unix://{}",
            layout.gateway_socket.display()
        );
        let _ = out.flush();
    }
    crate::notify::ready(&format!("serving {}", layout.gateway_socket.display()));
    super::serve::serve_on(
        listener,
        layout.engine_socket.clone(),
        audit,
        policy,
        signals,
    )
    .await
}

fn absolute(dir: &std::path::Path) -> Result<PathBuf, Failure> {
    std::path::absolute(dir)
        .map_err(|e| Failure::usage(format!("--state-dir {}: {e}", dir.display())))
}
