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
    /// When the audit log cannot be written, keep serving (with a loud error per request)
    /// instead of refusing requests. Off by default: fail closed.
    #[arg(long)]
    audit_fail_open: bool,
    /// Sign checkpoints of the audit log with this ed25519 key (created 0600 if missing) into
    /// AUDIT_LOG.checkpoints; `stockade audit key --key-file K` prints its public key.
    #[arg(long, requires = "audit_log")]
    audit_key: Option<PathBuf>,
}

pub async fn run(args: ServeArgs) -> Result<(), Failure> {
    let engine = unix_socket("--engine", &args.engine)?;
    let listen = unix_socket("--listen", &args.listen)?;
    let gid = group_id(&args.group)?;
    let policy = super::policy::load_with_path(args.policy.as_deref())?;
    let mut signals = Signals::install()?;
    let facts = stockade_engine::check_engine(&engine, super::policy::tcp_2375_allowed(&policy.0))
        .await
        .map_err(|e| Failure::unsafe_env(e.to_string()))?;
    tracing::info!(engine = %engine.display(), version = %facts.version, isolation = ?facts.isolation, "engine checked");
    let audit = open_audit(
        args.audit_log.as_deref(),
        &policy.0,
        args.audit_key.as_deref(),
    )?;
    let listener = GatewayListener::bind(&listen, SocketOwnership { gid, mode: 0o660 })
        .map_err(|e| Failure::unsafe_env(e.to_string()))?;
    crate::notify::ready(&format!("serving {}", listen.display()));
    serve_on(
        listener,
        engine,
        (audit, args.audit_log, args.audit_fail_open),
        policy,
        &mut signals,
    )
    .await
}

/// Opens the audit log if one is asked for; a log that cannot be opened, or that does not
/// verify, stops the start (fail closed).
pub fn open_audit(
    path: Option<&std::path::Path>,
    policy: &stockade_policy::Policy,
    key: Option<&std::path::Path>,
) -> Result<Option<std::sync::Arc<stockade_audit::AuditLog>>, Failure> {
    // `audit.syslog`: every record is copied to the local syslog socket too.
    let settings = policy.effective(None, &stockade_policy::UserContext::new(0, "/root"));
    let checkpoint_key = key
        .map(|k| {
            stockade_audit::CheckpointKey::load_or_create(k)
                .map(std::sync::Arc::new)
                .map_err(|e| Failure::unsafe_env(e.to_string()))
        })
        .transpose()?;
    let options = stockade_audit::Options {
        syslog: settings.audit.syslog.then(|| PathBuf::from("/dev/log")),
        checkpoint_key,
        ..stockade_audit::Options::default()
    };
    path.map(|path| {
        stockade_audit::AuditLog::open(path, options.clone())
            .map(std::sync::Arc::new)
            .map_err(|e| Failure::unsafe_env(e.to_string()))
    })
    .transpose()
}

/// Serves on an already bound listener until SIGINT/SIGTERM.
pub async fn serve_on(
    listener: GatewayListener,
    engine: PathBuf,
    (audit, audit_path, audit_fail_open): (
        Option<std::sync::Arc<stockade_audit::AuditLog>>,
        Option<PathBuf>,
        bool,
    ),
    policy: (stockade_policy::Policy, Option<PathBuf>),
    signals: &mut Signals,
) -> Result<(), Failure> {
    let (policy, policy_path) = policy;
    tracing::info!(policy = %policy.source_name(), sha256 = %policy.hash(), "policy loaded");
    record_policy(
        audit.as_ref(),
        stockade_audit::Kind::PolicyLoad,
        &policy,
        None,
    )
    .await;
    let mut config = GatewayConfig::new(engine.clone());
    config.audit = audit.clone();
    config.audit_fail_open = audit_fail_open;
    if audit_fail_open && audit.is_some() {
        tracing::warn!("--audit-fail-open: requests are served even when they cannot be recorded");
    }
    config.policy = std::sync::Arc::new(stockade_gateway::PolicyHandle::new(policy));
    let _watcher = policy_path.map(|path| {
        AbortOnDrop(tokio::spawn(watch_policy(
            std::sync::Arc::clone(&config.policy),
            path,
            audit,
        )))
    });
    // Docker socket mounts: the users' socket (whatever path leads to it) is what a create
    // names; an allowed one gets a socket of its own, next to it.
    let listen = listener.path().to_owned();
    config.socket_paths = vec![std::fs::canonicalize(&listen).unwrap_or_else(|_| listen.clone())];
    let mut containers_dir = listen.clone().into_os_string();
    containers_dir.push(".containers");
    let containers_dir = PathBuf::from(containers_dir);
    config.container_socket_dir = Some(containers_dir.clone());
    // No container may mount the sockets, the audit log or Stockade's directories.
    config.protected = [
        engine,
        listener.path().to_owned(),
        containers_dir,
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

/// Ends the task when dropped (the policy watcher lives as long as the gateway).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What identifies one version of a file without reading it.
fn file_stamp(path: &std::path::Path) -> Option<(u64, u64, i64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((
        m.dev(),
        m.ino(),
        m.size().try_into().unwrap_or(i64::MAX),
        m.mtime_nsec() + m.mtime() * 1_000_000_000,
        m.ctime_nsec() + m.ctime() * 1_000_000_000,
    ))
}

/// Reloads the policy on SIGHUP and when the file changes (checked every second). A valid file
/// takes effect for the next request; an invalid one is refused, logged and recorded, and the
/// last good policy stays in force.
async fn watch_policy(
    handle: std::sync::Arc<stockade_gateway::PolicyHandle>,
    path: PathBuf,
    audit: Option<std::sync::Arc<stockade_audit::AuditLog>>,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!(error = %e, "cannot watch SIGHUP; the policy reloads on file change only");
            None
        }
    };
    // The catalog the policy names is watched with it.
    let stamp_now = |handle: &stockade_gateway::PolicyHandle| {
        let catalog = handle.current().catalog_path().map(file_stamp);
        (file_stamp(&path), catalog)
    };
    let mut seen = stamp_now(&handle);
    loop {
        let forced = tokio::select! {
            () = tokio::time::sleep(std::time::Duration::from_secs(1)) => false,
            Some(()) = async {
                match hangup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            } => true,
        };
        let stamp = stamp_now(&handle);
        if !forced && stamp == seen {
            continue;
        }
        seen = stamp;
        let loaded = stockade_policy::Policy::load(&path)
            .map_err(|e| e.to_string())
            .and_then(|policy| {
                stockade_policy::check_admin_file_owner(&path)?;
                if let Some(catalog) = policy.catalog_path() {
                    stockade_policy::check_admin_file_owner(catalog)?;
                }
                Ok(policy)
            });
        match loaded {
            Ok(policy) => {
                if policy.hash() == handle.current().hash() {
                    continue;
                }
                tracing::info!(policy = %path.display(), sha256 = %policy.hash(), "policy reloaded");
                record_policy(
                    audit.as_ref(),
                    stockade_audit::Kind::PolicyLoad,
                    &policy,
                    None,
                )
                .await;
                handle.replace(policy);
            }
            Err(e) => {
                tracing::error!(
                    policy = %path.display(),
                    "policy reload refused, the previous policy stays in force:\n{e}"
                );
                let current = handle.current();
                record_policy(
                    audit.as_ref(),
                    stockade_audit::Kind::PolicyReloadFailed,
                    &current,
                    Some(e.to_string()),
                )
                .await;
            }
        }
    }
}

/// Records a policy load (or a refused reload, with `failure`) durably in the audit log.
async fn record_policy(
    audit: Option<&std::sync::Arc<stockade_audit::AuditLog>>,
    kind: stockade_audit::Kind,
    policy: &stockade_policy::Policy,
    failure: Option<String>,
) {
    let Some(audit) = audit else { return };
    let mut event = stockade_audit::Event {
        kind: Some(kind),
        policy_hash: Some(policy.hash().to_owned()),
        reason: failure,
        ..stockade_audit::Event::default()
    };
    event
        .summary
        .insert("policy".into(), policy.source_name().to_owned().into());
    if let Err(e) = audit.append(event, stockade_audit::Durability::Sync).await {
        tracing::error!(error = %e, "cannot record the policy load in the audit log");
    }
}
