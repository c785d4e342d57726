//! Per-container gateway sockets (Docker socket mounts under ECI, DESIGN.md §4).
//!
//! A container allowed to mount the Docker socket never gets the engine's socket, nor the
//! users' gateway socket: it gets a socket of its own, in a directory with an unguessable name
//! below [`Registry::dir`]. Requests on it are served as its owner's, marked as coming from the
//! container (so `commandList` applies and the audit log names it), and only from processes
//! inside that container: the peer's PID namespace must be the container's, so another user who
//! learns the path (it shows in `docker inspect`) cannot borrow the container's access.
//!
//! The socket lives as long as the container: its task checks every few seconds whether the
//! container still exists, and removes the socket when it is gone or the gateway stops.

use crate::proxy::{serve_connection, Pool};
use crate::GatewayConfig;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use tokio::net::{UnixListener, UnixStream};
use tokio::task::AbortHandle;

/// How often a container socket checks that its container still exists.
const LIVENESS_INTERVAL: Duration = Duration::from_secs(3);

/// The per-container sockets of one gateway.
#[derive(Debug)]
pub(crate) struct Registry {
    dir: PathBuf,
    tasks: RwLock<HashMap<String, AbortHandle>>,
    jobs: tokio::sync::mpsc::UnboundedSender<Job>,
}

/// A container socket to start serving.
#[derive(Debug)]
pub(crate) struct Job {
    listener: UnixListener,
    token: String,
    dir: PathBuf,
    socket: PathBuf,
    id: String,
    owner: u32,
}

/// Starts a task for each activated container socket, until the gateway stops.
pub(crate) async fn run_jobs(
    mut jobs: tokio::sync::mpsc::UnboundedReceiver<Job>,
    registry: Arc<Registry>,
    config: Arc<GatewayConfig>,
    pool: Arc<Pool>,
) {
    while let Some(job) = jobs.recv().await {
        let Job {
            listener,
            token,
            dir,
            socket,
            id,
            owner,
        } = job;
        tracing::info!(container = %id, socket = %socket.display(), "container socket serving");
        let config = Arc::clone(&config);
        let pool = Arc::clone(&pool);
        let reg = Arc::clone(&registry);
        let key = token.clone();
        let task = tokio::spawn(async move {
            serve_container(listener, &id, owner, &config, &pool).await;
            let _ = std::fs::remove_dir_all(&dir);
            reg.tasks
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&key);
            tracing::info!(container = %id, "container socket removed");
        });
        registry
            .tasks
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(token, task.abort_handle());
    }
}

/// A socket bound for a container that is being created; removed when dropped unless
/// [`Registry::activate`] took it.
#[derive(Debug)]
pub(crate) struct Pending {
    token: String,
    dir: PathBuf,
    socket: PathBuf,
    listener: Option<UnixListener>,
}

impl Pending {
    /// The socket's host path, which replaces the bind source in the create body.
    pub(crate) fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.listener.is_some() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Registry {
    /// Creates (or takes over) the directory, removing sockets a previous gateway left.
    pub(crate) fn new(dir: &Path) -> io::Result<(Self, tokio::sync::mpsc::UnboundedReceiver<Job>)> {
        if dir.exists() {
            for entry in std::fs::read_dir(dir)? {
                let _ = std::fs::remove_dir_all(entry?.path());
            }
        } else {
            std::fs::create_dir_all(dir)?;
        }
        // Others may traverse (a container's remapped root must reach its socket) but not list.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711))?;
        let (jobs, receiver) = tokio::sync::mpsc::unbounded_channel();
        Ok((
            Self {
                dir: dir.to_owned(),
                tasks: RwLock::new(HashMap::new()),
                jobs,
            },
            receiver,
        ))
    }

    /// Where the sockets live.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Binds a new socket in a fresh directory with an unguessable name.
    pub(crate) fn allocate(&self) -> io::Result<Pending> {
        let token = random_token()?;
        let dir = self.dir.join(&token);
        std::fs::create_dir(&dir)?;
        // Bound while the directory is root-only, so the socket is never reachable before it
        // has its final mode.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        let socket = dir.join("docker.sock");
        let bound = (|| {
            let listener = UnixListener::bind(&socket)?;
            std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666))?;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711))?;
            Ok::<_, io::Error>(listener)
        })();
        match bound {
            Ok(listener) => Ok(Pending {
                token,
                dir,
                socket,
                listener: Some(listener),
            }),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }

    /// Starts serving `pending` for the container `id`, created by `owner`. The socket's task
    /// is started by [`run_jobs`] (a request handler cannot spawn connection tasks itself
    /// without making the connection future's type refer to itself).
    pub(crate) fn activate(&self, mut pending: Pending, id: String, owner: u32) {
        let Some(listener) = pending.listener.take() else {
            return;
        };
        let job = Job {
            listener,
            token: pending.token.clone(),
            dir: pending.dir.clone(),
            socket: pending.socket.clone(),
            id,
            owner,
        };
        if let Err(e) = self.jobs.send(job) {
            // The gateway is stopping: nothing will serve the socket, so remove it.
            let _ = std::fs::remove_dir_all(&e.0.dir);
        }
    }

    /// Stops every container socket and removes them.
    pub(crate) fn shutdown(&self) {
        let tasks: Vec<(String, AbortHandle)> = self
            .tasks
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .collect();
        for (token, task) in tasks {
            task.abort();
            let _ = std::fs::remove_dir_all(self.dir.join(token));
        }
    }
}

fn random_token() -> io::Result<String> {
    use std::fmt::Write as _;
    use std::io::Read as _;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().fold(String::with_capacity(32), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    }))
}

async fn serve_container(
    listener: UnixListener,
    id: &str,
    owner: u32,
    config: &Arc<GatewayConfig>,
    pool: &Arc<Pool>,
) {
    let container: Arc<str> = Arc::from(id);
    let mut liveness = tokio::time::interval(LIVENESS_INTERVAL);
    liveness.tick().await;
    let mut next_id: u64 = 0;
    loop {
        let stream = tokio::select! {
            _ = liveness.tick() => {
                match container_pid(&config.engine, id).await {
                    Ok(_) => continue,
                    Err(Lookup::Gone) => return,
                    Err(Lookup::Failed(e)) => {
                        tracing::debug!(container = id, error = %e, "container check failed");
                        continue;
                    }
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(container = id, error = %e, "container socket accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Only processes inside the container may use its socket.
        match peer_inside(&stream, &config.engine, id).await {
            Ok(()) => {}
            Err(why) => {
                tracing::warn!(container = id, reason = %why, "container socket connection refused");
                continue;
            }
        }
        let stream = match crate::stream::Stream::from_tokio(stream) {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(container = id, error = %e, "container socket connection lost");
                continue;
            }
        };
        next_id += 1;
        let config = Arc::clone(config);
        let pool = Arc::clone(pool);
        let container = Arc::clone(&container);
        let conn_id = next_id | (1 << 63);
        tokio::spawn(async move {
            serve_connection(stream, config, pool, conn_id, Some((owner, container))).await;
        });
    }
}

async fn peer_inside(stream: &UnixStream, engine: &Path, id: &str) -> Result<(), String> {
    let cred = stream
        .peer_cred()
        .map_err(|e| format!("no peer credentials: {e}"))?;
    let peer = cred.pid().ok_or("the peer's pid is unknown")?;
    let pid = match container_pid(engine, id).await {
        Ok(Some(pid)) => pid,
        Ok(None) => return Err("the container is not running".to_owned()),
        Err(Lookup::Gone) => return Err("the container is gone".to_owned()),
        Err(Lookup::Failed(e)) => return Err(e),
    };
    let ns = |pid: i32| std::fs::read_link(format!("/proc/{pid}/ns/pid"));
    match (ns(peer), ns(pid)) {
        (Ok(a), Ok(b)) if a == b => Ok(()),
        (Ok(_), Ok(_)) => Err(format!("pid {peer} is not inside the container")),
        (Err(e), _) | (_, Err(e)) => Err(format!("cannot read a pid namespace: {e}")),
    }
}

enum Lookup {
    Gone,
    Failed(String),
}

/// The container's init pid on the host (`None` when it is not running).
async fn container_pid(engine: &Path, id: &str) -> Result<Option<i32>, Lookup> {
    let (status, body) = engine_get(engine, &format!("/containers/{id}/json"))
        .await
        .map_err(Lookup::Failed)?;
    match status {
        http::StatusCode::NOT_FOUND => Err(Lookup::Gone),
        http::StatusCode::OK => {
            let inspect: serde_json::Value =
                serde_json::from_slice(&body).map_err(|e| Lookup::Failed(e.to_string()))?;
            let pid = inspect["State"]["Pid"].as_i64().unwrap_or(0);
            Ok(i32::try_from(pid).ok().filter(|p| *p > 0))
        }
        other => Err(Lookup::Failed(format!("the engine answered {other}"))),
    }
}

/// A GET on a fresh engine connection, the answer read whole.
async fn engine_get(engine: &Path, uri: &str) -> Result<(http::StatusCode, Bytes), String> {
    engine_call(engine, http::Method::GET, uri).await
}

/// A body-less request on a fresh engine connection, the answer read whole.
pub(crate) async fn engine_call(
    engine: &Path,
    method: http::Method,
    uri: &str,
) -> Result<(http::StatusCode, Bytes), String> {
    let stream = UnixStream::connect(engine)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    let driver = tokio::spawn(conn);
    let request = http::Request::builder()
        .method(method)
        .uri(uri)
        .header(http::header::HOST, "docker")
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body = Limited::new(response.into_body(), 8 << 20)
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    driver.abort();
    Ok((status, body))
}

/// A response body passed through unchanged while its bytes are kept (up to 64 KiB); at its
/// end, `done` gets the `Id` of the JSON it held (a container create's answer).
pub(crate) struct SniffId<F: FnOnce(Option<String>)> {
    inner: crate::respond::Body,
    seen: Vec<u8>,
    done: Option<F>,
}

impl<F: FnOnce(Option<String>)> SniffId<F> {
    pub(crate) fn new(inner: crate::respond::Body, done: F) -> Self {
        Self {
            inner,
            seen: Vec::new(),
            done: Some(done),
        }
    }
}

impl<F: FnOnce(Option<String>)> SniffId<F> {
    fn finish(&mut self) {
        if let Some(done) = self.done.take() {
            let id = serde_json::from_slice::<serde_json::Value>(&self.seen)
                .ok()
                .and_then(|v| v["Id"].as_str().map(str::to_owned));
            done(id);
        }
    }
}

/// The server may stop polling once it has sent as many bytes as the length said, and drop the
/// body without asking for its end: the answer is complete by then.
impl<F: FnOnce(Option<String>)> Drop for SniffId<F> {
    fn drop(&mut self) {
        self.finish();
    }
}

impl<F: FnOnce(Option<String>) + Unpin> http_body::Body for SniffId<F> {
    type Data = Bytes;
    type Error = crate::respond::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            std::task::Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    if self.seen.len() + data.len() <= 64 * 1024 {
                        self.seen.extend_from_slice(data);
                    }
                }
            }
            std::task::Poll::Ready(None) => self.finish(),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream() && self.done.is_none()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
