//! The Stockade gateway: serves the Docker Engine API on the users' unix socket and forwards to
//! the real engine only what the route table (and, later, the policy) allows.
//!
//! One task per client connection; each client connection gets its own engine connection, taken
//! from a small pool of idle ones or opened on first use, and kept for the client's keep-alive
//! requests; nothing is spawned per request. Responses stream through without being buffered;
//! attach, exec and BuildKit's session are hijacked after the engine's `101` and then copied in
//! both directions with half-close. Every denial and failure becomes a Docker-style JSON answer in
//! one place ([`respond`]).
//!
//! The caller's identity is the peer's uid from `SO_PEERCRED`, known before the first request.
// `unsafe` only in `sys` (one read into uninitialised memory), which allows it.
#![deny(unsafe_code)]

mod container_socket;
mod freeze;
mod listener;
mod proxy;
pub mod respond;
mod spool;
mod stream;
mod sys;

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use listener::{GatewayListener, SocketOwnership};

/// Errors that stop the gateway from starting or serving.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The listening socket could not be created.
    #[error("cannot listen on {path}: {source}")]
    Listen {
        /// The socket path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Another process is already serving on the socket path.
    #[error(
        "{path} is already served by a running process; stop it or choose another --listen path"
    )]
    InUse {
        /// The socket path.
        path: PathBuf,
    },
    /// Something that is not a socket sits at the listening path.
    #[error("{path} exists and is not a unix socket; remove it or choose another --listen path")]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// Accepting connections failed for good.
    #[error("accepting connections on {path} failed: {source}")]
    Accept {
        /// The socket path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// How the gateway reaches the engine and protects itself from its clients.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The engine's unix socket.
    pub engine: PathBuf,
    /// Largest request or response head accepted, in bytes (the registry auth headers of `docker
    /// build` can be a few hundred KiB).
    pub max_head_bytes: usize,
    /// How long a client may take to send a request head.
    pub header_read_timeout: Duration,
    /// Most client connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Most idle engine connections kept for reuse by new client connections.
    pub idle_engine_connections: usize,
    /// Where every decision is recorded. When set, a request whose record cannot be written is
    /// refused (fail closed), and a denial's record is on disk before the denial is sent.
    pub audit: Option<Arc<stockade_audit::AuditLog>>,
    /// When the audit log cannot be written: serve anyway, logging an error per request
    /// (`--audit-fail-open`), instead of refusing (the default).
    pub audit_fail_open: bool,
    /// The admin policy; each caller's settings are derived from it and their own settings file.
    /// Replaced in place on reload; a request uses the policy in force when it is judged.
    pub policy: Arc<PolicyHandle>,
    /// Per-uid user settings, re-read only when the file changes.
    pub users: Arc<stockade_policy::UserSettingsCache>,
    /// Host paths no container may mount, nor anything above or below them.
    pub protected: Vec<PathBuf>,
    /// Whether the engine's own pulls go through Stockade's egress filter (then registry access
    /// is enforced for BuildKit builds too, where the gateway cannot see the base images).
    pub engine_pulls_filtered: bool,
    /// Where archives the rules must read (build contexts, `docker load`) are held, as unlinked
    /// files, until they are judged and forwarded.
    pub spool_dir: PathBuf,
    /// The largest archive held for inspection; larger ones are refused.
    pub max_spooled_archive: u64,
    /// The users' gateway sockets as host paths (symlinks resolved): binding one into a
    /// container is a Docker socket mount.
    pub socket_paths: Vec<PathBuf>,
    /// Where per-container sockets are made for allowed Docker socket mounts; `None`: socket
    /// mounts are refused.
    pub container_socket_dir: Option<PathBuf>,
}

/// The policy in force, swapped whole on reload.
#[derive(Debug)]
pub struct PolicyHandle(std::sync::RwLock<Arc<stockade_policy::Policy>>);

impl PolicyHandle {
    /// A handle holding `policy`.
    #[must_use]
    pub fn new(policy: stockade_policy::Policy) -> Self {
        Self(std::sync::RwLock::new(Arc::new(policy)))
    }

    /// The policy in force now.
    #[must_use]
    pub fn current(&self) -> Arc<stockade_policy::Policy> {
        Arc::clone(
            &self
                .0
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Put `policy` in force for every request judged from now on.
    pub fn replace(&self, policy: stockade_policy::Policy) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(policy);
    }
}

impl GatewayConfig {
    /// Defaults for an engine at `engine`.
    #[must_use]
    pub fn new(engine: PathBuf) -> Self {
        Self {
            max_head_bytes: 1024 * 1024,
            header_read_timeout: Duration::from_secs(30),
            max_connections: 1024,
            idle_engine_connections: 32,
            audit: None,
            audit_fail_open: false,
            policy: Arc::new(PolicyHandle::new(stockade_policy::Policy::builtin())),
            users: Arc::new(stockade_policy::UserSettingsCache::new()),
            protected: vec![engine.clone()],
            engine_pulls_filtered: false,
            spool_dir: std::env::temp_dir(),
            max_spooled_archive: 8 << 30,
            socket_paths: Vec::new(),
            container_socket_dir: None,
            engine,
        }
    }
}

/// Serves the gateway on `listener` until `shutdown` completes, then stops accepting, drops every
/// open connection and removes the socket.
///
/// # Errors
/// [`GatewayError::Accept`] when the listening socket fails for good, [`GatewayError::Listen`]
/// when it cannot be registered with the runtime.
pub async fn serve(
    listener: GatewayListener,
    config: GatewayConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), GatewayError> {
    let config = Arc::new(config);
    record_state_change(&config, stockade_audit::Kind::GatewayStart, &listener).await;
    let permits = Arc::new(tokio::sync::Semaphore::new(config.max_connections));
    let mut socket_jobs = None;
    let sockets = match &config.container_socket_dir {
        Some(dir) => match container_socket::Registry::new(dir) {
            Ok((registry, jobs)) => {
                socket_jobs = Some(jobs);
                Some(Arc::new(registry))
            }
            Err(e) => {
                // Fail closed: without the directory no socket mount can be served, so every
                // one is refused (the rules see no container socket place and the create
                // gets no socket).
                tracing::error!(dir = %dir.display(), error = %e, "cannot prepare the container socket directory; Docker socket mounts will be refused");
                None
            }
        },
        None => None,
    };
    let pool = Arc::new(proxy::Pool::new(
        config.idle_engine_connections,
        sockets.clone(),
    ));
    let acceptor = listener.acceptor().map_err(|source| GatewayError::Listen {
        path: listener.path().to_owned(),
        source,
    })?;
    let mut connections = tokio::task::JoinSet::new();
    let _socket_jobs = match (socket_jobs, &sockets) {
        (Some(jobs), Some(registry)) => {
            Some(AbortOnDrop(tokio::spawn(container_socket::run_jobs(
                jobs,
                Arc::clone(registry),
                Arc::clone(&config),
                Arc::clone(&pool),
            ))))
        }
        _ => None,
    };
    let mut next_id: u64 = 0;
    // A timer always due within a second. hyper arms a header-read timer before each request
    // head on a keep-alive connection; when the runtime has no timer due sooner, arming one
    // wakes the I/O driver (an eventfd write and an extra epoll_wait per request). With this
    // one due first, it does not. It costs one wake-up a second.
    let _timer = AbortOnDrop(tokio::spawn(async {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }));
    tokio::pin!(shutdown);
    tracing::info!(
        listen = %listener.path().display(),
        engine = %config.engine.display(),
        "gateway serving"
    );
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = acceptor.accept() => match accepted {
                Ok(stream) => stream,
                Err(e) if transient_accept_error(&e) => {
                    tracing::warn!(error = %e, "accept failed, retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Err(source) => {
                    return Err(GatewayError::Accept { path: listener.path().to_owned(), source });
                }
            },
        };
        // Reap finished connection tasks so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
        next_id += 1;
        let config = Arc::clone(&config);
        let pool = Arc::clone(&pool);
        let id = next_id;
        connections.spawn(async move {
            proxy::serve_connection(stream, config, pool, id, None).await;
            drop(permit);
        });
    }
    tracing::info!(listen = %listener.path().display(), "gateway stopping");
    connections.shutdown().await;
    if let Some(sockets) = &sockets {
        sockets.shutdown();
    }
    record_state_change(&config, stockade_audit::Kind::GatewayStop, &listener).await;
    Ok(())
}

async fn record_state_change(
    config: &GatewayConfig,
    kind: stockade_audit::Kind,
    listener: &GatewayListener,
) {
    let Some(audit) = &config.audit else { return };
    let mut event = stockade_audit::Event {
        kind: Some(kind),
        ..stockade_audit::Event::default()
    };
    event.summary.insert(
        "listen".into(),
        listener.path().display().to_string().into(),
    );
    event
        .summary
        .insert("engine".into(), config.engine.display().to_string().into());
    if let Err(e) = audit.append(event, stockade_audit::Durability::Sync).await {
        tracing::error!(error = %e, "cannot record the gateway's {kind:?} in the audit log");
    }
}

/// Ends a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn transient_accept_error(e: &io::Error) -> bool {
    // Out of file descriptors or memory, or a peer that went away between connect and accept:
    // the listener itself is fine.
    matches!(
        e.raw_os_error(),
        Some(libc_errno::EMFILE | libc_errno::ENFILE | libc_errno::ENOBUFS | libc_errno::ENOMEM)
    ) || e.kind() == io::ErrorKind::ConnectionAborted
        || e.kind() == io::ErrorKind::Interrupted
}

mod libc_errno {
    use nix::errno::Errno;
    pub const EMFILE: i32 = Errno::EMFILE as i32;
    pub const ENFILE: i32 = Errno::ENFILE as i32;
    pub const ENOBUFS: i32 = Errno::ENOBUFS as i32;
    pub const ENOMEM: i32 = Errno::ENOMEM as i32;
}
