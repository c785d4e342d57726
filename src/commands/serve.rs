//! `stockade serve`: the gateway alone, in front of an engine someone else manages.

use super::{group_id, unix_socket, Signals};
use crate::failure::Failure;
use std::path::PathBuf;
use stockade_gateway::{GatewayConfig, GatewayListener, SocketOwnership};

/// Flags of `stockade serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The engine's socket, root-only: unix:///path.
    #[arg(long)]
    engine: String,
    /// The socket to serve the users on: unix:///path.
    #[arg(long)]
    listen: String,
    /// Group that may connect to the listening socket (mode 0660).
    #[arg(long, default_value = "docker")]
    group: String,
    /// Record every decision in this hash-chained audit log (created 0600 if missing).
    #[arg(long)]
    audit_log: Option<PathBuf>,
    /// The admin policy (default: /etc/stockade/admin-settings.json if it exists, else the
    /// built-in secure default). An invalid file stops the start.
    #[arg(long)]
    policy: Option<PathBuf>,
}

pub async fn run(args: ServeArgs) -> Result<(), Failure> {
    let engine = unix_socket("--engine", &args.engine)?;
    let listen = unix_socket("--listen", &args.listen)?;
    let gid = group_id(&args.group)?;
    let policy = super::policy::load(args.policy.as_deref())?;
    let mut signals = Signals::install()?;
    let facts = stockade_engine::check_engine(&engine)
        .await
        .map_err(|e| Failure::unsafe_env(e.to_string()))?;
    tracing::info!(engine = %engine.display(), version = %facts.version, isolation = ?facts.isolation, "engine checked");
    let audit = open_audit(args.audit_log.as_deref())?;
    let listener = GatewayListener::bind(&listen, SocketOwnership { gid, mode: 0o660 })
        .map_err(|e| Failure::unsafe_env(e.to_string()))?;
    serve_on(
        listener,
        engine,
        audit,
        policy,
        args.audit_log,
        &mut signals,
    )
    .await
}

/// Opens the audit log if one is asked for; a log that cannot be opened, or that does not
/// verify, stops the start (fail closed).
pub fn open_audit(
    path: Option<&std::path::Path>,
) -> Result<Option<std::sync::Arc<stockade_audit::AuditLog>>, Failure> {
    path.map(|path| {
        stockade_audit::AuditLog::open(path, stockade_audit::Options::default())
            .map(std::sync::Arc::new)
            .map_err(|e| Failure::unsafe_env(e.to_string()))
    })
    .transpose()
}

/// Serves on an already bound listener until SIGINT/SIGTERM.
pub async fn serve_on(
    listener: GatewayListener,
    engine: PathBuf,
    audit: Option<std::sync::Arc<stockade_audit::AuditLog>>,
    policy: stockade_policy::Policy,
    audit_path: Option<PathBuf>,
    signals: &mut Signals,
) -> Result<(), Failure> {
    tracing::info!(policy = %policy.source_name(), sha256 = %policy.hash(), "policy loaded");
    let mut config = GatewayConfig::new(engine.clone());
    config.audit = audit;
    config.policy = std::sync::Arc::new(policy);
    // No container may mount the sockets, the audit log or Stockade's directories.
    config.protected = [
        engine,
        listener.path().to_owned(),
        PathBuf::from("/etc/stockade"),
        PathBuf::from("/var/lib/stockade"),
        PathBuf::from("/run/stockade"),
    ]
    .into_iter()
    .chain(audit_path)
    .collect();
    stockade_gateway::serve(listener, config, signals.recv())
        .await
        .map_err(|e| Failure::unsafe_env(e.to_string()))
}
