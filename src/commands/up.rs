//! `stockade up`: the one-command start. A private hardened dockerd and the gateway in front of
//! it, in the foreground until Ctrl-C or SIGTERM, then both stopped in order.

use super::{group_id, Signals};
use crate::failure::Failure;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;
use stockade_engine::{BridgeSubnet, EngineSettings, Layout, ManagedEngine};
use stockade_gateway::{GatewayListener, SocketOwnership};

/// Where user-defined networks get their subnets unless `--network-pool` says otherwise.
pub const DEFAULT_NETWORK_POOL: &str = "10.214.0.0/16";

/// Flags of `stockade up`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Keep everything (data, config, logs and both sockets) in this directory instead of
    /// /var/lib/stockade and /run/stockade.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// The engine bridge's address and subnet.
    #[arg(long, default_value = "10.213.0.1/24")]
    bridge_subnet: BridgeSubnet,
    /// Address pool for user-defined networks, split into /24 networks.
    #[arg(long, default_value = DEFAULT_NETWORK_POOL)]
    network_pool: String,
    /// Group that may connect to the gateway socket (mode 0660).
    #[arg(long, default_value = "docker")]
    group: String,
    /// Record every decision in this hash-chained audit log (created 0600 if missing).
    #[arg(long)]
    audit_log: Option<PathBuf>,
    /// The admin policy (default: /etc/stockade/admin-settings.json if it exists, else the
    /// built-in secure default). An invalid file stops the start.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// When the audit log cannot be written, keep serving (with a loud error per request)
    /// instead of refusing requests. Off by default: fail closed.
    #[arg(long)]
    audit_fail_open: bool,
    /// Sign checkpoints of the audit log with this ed25519 key (created 0600 if missing).
    #[arg(long, requires = "audit_log")]
    audit_key: Option<PathBuf>,
}

pub async fn run(args: UpArgs) -> Result<(), Failure> {
    if !nix::unistd::geteuid().is_root() {
        return Err(Failure::unsafe_env(
            "stockade up must run as root (it starts dockerd and creates a network bridge); run it with sudo",
        ));
    }
    let dockerd = stockade_engine::find_dockerd().ok_or_else(|| {
        Failure::unsafe_env("dockerd was not found; install it with `apt-get install docker.io`")
    })?;
    let gid = group_id(&args.group)?;
    let policy = super::policy::load_with_path(args.policy.as_deref())?;
    let audit = super::serve::open_audit(
        args.audit_log.as_deref(),
        &policy.0,
        args.audit_key.as_deref(),
    )?;
    let inputs = super::policy::engine_inputs(&policy.0, &|k| std::env::var(k).ok())?;
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
        filter_rules = filter_rules.with_route(std::sync::Arc::new(pac));
    }
    let decide: std::sync::Arc<dyn stockade_egress::Decide> = std::sync::Arc::new(filter_rules);
    let filter_audit = audit.clone();
    let report = std::sync::Arc::new(move |event: stockade_egress::engine_filter::FilterEvent| {
        tracing::info!(destination = %event.destination, allowed = event.allowed, reason = %event.reason, "engine egress");
        if let Some(audit) = &filter_audit {
            let mut record = stockade_audit::Event {
                kind: Some(stockade_audit::Kind::Decision),
                decision: Some(if event.allowed {
                    stockade_audit::Decision::Allow
                } else {
                    stockade_audit::Decision::Deny
                }),
                route: Some("engine_egress".into()),
                reason: Some(event.reason.clone()),
                ..stockade_audit::Event::default()
            };
            record
                .summary
                .insert("destination".into(), event.destination.clone().into());
            let audit = std::sync::Arc::clone(audit);
            tokio::spawn(async move {
                let durability = if record.decision == Some(stockade_audit::Decision::Deny) {
                    stockade_audit::Durability::Sync
                } else {
                    stockade_audit::Durability::Grouped
                };
                if let Err(e) = audit.append(record, durability).await {
                    tracing::error!(error = %e, "cannot record an engine egress decision");
                }
            });
        }
    });
    let _filter = AbortOnDrop(tokio::spawn(stockade_egress::engine_filter::serve(
        filter, decide, report,
    )));
    let mut engine_env = Vec::new();
    for key in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
        engine_env.push((key.to_owned(), filter_url.clone()));
    }
    for key in ["NO_PROXY", "no_proxy"] {
        engine_env.push((key.to_owned(), String::new()));
    }
    let engine_policy = inputs.options;
    let layout = match &args.state_dir {
        Some(dir) => Layout::in_state_dir(&absolute(dir)?),
        None => Layout::system(),
    };
    let mut signals = Signals::install()?;
    let settings = EngineSettings {
        layout: layout.clone(),
        bridge_subnet: args.bridge_subnet,
        address_pool: (args.network_pool.clone(), 24),
        dockerd,
        env: engine_env,
        policy: engine_policy,
        start_timeout: Duration::from_secs(60),
    };
    let mut engine = ManagedEngine::start(settings)
        .await
        .map_err(|e| Failure::unsafe_env(e.to_string()))?;
    // Air-gapped containers, when the policy configures containersProxy.
    let subnet: stockade_egress::nft::Subnet = format!(
        "{}/{}",
        args.bridge_subnet.network(),
        args.bridge_subnet.prefix
    )
    .parse()
    .map_err(|e| Failure::unsafe_env(format!("the bridge subnet: {e}")))?;
    let bridge = layout.bridge_name();
    let network = super::airgap::EngineNetwork {
        socket: &layout.engine_socket,
        bridge: &bridge,
        subnet,
    };
    let airgap = match super::airgap::start(&policy.0, &network, audit.clone()).await {
        Ok(airgap) => airgap,
        Err(e) => {
            engine.stop().await;
            return Err(e);
        }
    };
    let result = tokio::select! {
        result = serve(&layout, gid, (audit, args.audit_log.clone(), args.audit_fail_open), policy, &mut signals) => result,
        // An engine that dies under the gateway is not papered over with 502s: stop and say so.
        died = engine.exited() => Err(Failure::unsafe_env(format!(
            "the managed engine stopped unexpectedly, so stockade is stopping too: {died}"
        ))),
    };
    if let Some(airgap) = airgap {
        airgap.stop().await;
    }
    engine.stop().await;
    result
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
    audit: (
        Option<std::sync::Arc<stockade_audit::AuditLog>>,
        Option<PathBuf>,
        bool,
    ),
    policy: (stockade_policy::Policy, Option<PathBuf>),
    signals: &mut Signals,
) -> Result<(), Failure> {
    // The engine we just configured must pass the same checks `serve` applies to any engine.
    let facts = stockade_engine::check_engine(&layout.engine_socket)
        .await
        .map_err(|e| Failure::unsafe_env(e.to_string()))?;
    tracing::info!(version = %facts.version, isolation = ?facts.isolation, "managed engine ready");
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
