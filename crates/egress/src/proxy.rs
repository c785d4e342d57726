//! The transparent proxy: accepts the connections nftables redirected ([`crate::nft`]),
//! recovers their destination, reads the hostname ([`crate::sniff`]), asks the [`Decide`], and
//! connects by the plan's hops in order ([`crate::upstream`]), then relays both ways with
//! splice(2) (`relay.rs`). On the HTTP ports every request of the connection is held to the
//! name it was decided for ([`crate::http_stream`]), not only the first.
//!
//! # Use
//! ```no_run
//! # async fn f(decide: std::sync::Arc<dyn stockade_egress::Decide>) -> Result<(), Box<dyn std::error::Error>> {
//! use stockade_egress::proxy::{ProxyConfig, TransparentProxy};
//! let proxy = TransparentProxy::bind(
//!     &["0.0.0.0:15001".parse()?, "[::]:15001".parse()?],
//!     decide,
//!     std::sync::Arc::new(|d: &stockade_egress::proxy::Decision| tracing::info!("{d}")),
//!     ProxyConfig::default(),
//! )?;
//! proxy.run(std::future::pending()).await;
//! # Ok(()) }
//! ```
//!
//! # Refusal
//! An empty plan, a [`crate::DecideError`], a connection that could not be sniffed or every hop
//! failing: the client connection is closed. For a plain-HTTP connection (name from `Host`)
//! refused by policy a short `403` saying so is sent first, so a user sees why; TLS clients see
//! a closed connection (no certificate could be presented).
//!
//! A later request of a kept-alive HTTP connection that names another host, or that the
//! request-stream parser cannot frame with certainty, is never forwarded: the connection is
//! cut (both sides closed) and a second [`Decision`] ([`Outcome::Refused`]) says why. Cutting
//! rather than deciding the new name again is deliberate: the connection already leads to the
//! server (or through the proxy tunnel) chosen for the first name, so even a name the policy
//! allows would be carried to the wrong place, a shared front end that routes by `Host`
//! (domain fronting), or past an upstream proxy that was asked for the first name only. Real
//! clients keep one connection per host and do not notice.
//!
//! # Reporting
//! Every connection's outcome goes to the [`DecisionSink`]. A decider that keeps failing (a
//! broken PAC) is logged once when it starts failing and once when it recovers, not per
//! connection.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::http_stream::RequestStream;
use crate::relay::{relay, ClientSide, Ended};
use crate::sniff::{sniff, SniffConfig};
use crate::sys;
use crate::target::{Decide, Hop, Plan, Scheme, Target};
use crate::upstream::{Connector, Dest};

/// Settings of the transparent proxy.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Which ports are sniffed for a name, and how long and how much.
    pub sniff: SniffConfig,
    /// Resolution, connect and handshake limits for the hops.
    pub connector: Connector,
    /// Most connections handled at once (default 4096); more wait in the kernel's backlog.
    pub max_connections: usize,
    /// A connection with no byte in either direction for this long is closed (default 10 min).
    pub idle_timeout: Duration,
    /// Longest wait for the decider beyond its own limits (default 30 s).
    pub decide_timeout: Duration,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            sniff: SniffConfig::default(),
            connector: Connector::default(),
            max_connections: 4096,
            idle_timeout: Duration::from_secs(600),
            decide_timeout: Duration::from_secs(30),
        }
    }
}

/// What happened to one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Connected through this hop.
    Connected(Hop),
    /// Refused by policy (empty plan) or because no decision could be made.
    Refused,
    /// Allowed, but every hop of the plan failed.
    Failed,
}

/// One decision, for the audit log (the binary maps `source` to a container).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The client (a container's address).
    pub source: SocketAddr,
    /// The original destination; `None` when it could not be recovered.
    pub destination: Option<SocketAddr>,
    /// The name read from SNI or `Host`.
    pub host: Option<String>,
    /// Where the name came from.
    pub scheme: Scheme,
    /// The result.
    pub outcome: Outcome,
    /// Why: the plan's reason, the decider's error, or the hop failures.
    pub reason: String,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dest = self
            .destination
            .map_or_else(|| "?".to_owned(), |d| d.to_string());
        let host = self.host.as_deref().unwrap_or("-");
        let outcome = match &self.outcome {
            Outcome::Connected(hop) => format!("connected via {hop}"),
            Outcome::Refused => "refused".to_owned(),
            Outcome::Failed => "failed".to_owned(),
        };
        write!(
            f,
            "egress {} -> {dest} host {host} ({:?}): {outcome}: {}",
            self.source, self.scheme, self.reason
        )
    }
}

/// Receives every decision.
pub trait DecisionSink: Send + Sync {
    /// Records one decision. Called on the executor: must not block.
    fn record(&self, decision: &Decision);
}

impl<F: Fn(&Decision) + Send + Sync> DecisionSink for F {
    fn record(&self, decision: &Decision) {
        self(decision);
    }
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}: {source}; choose a free port for the egress proxy")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: sys::SysError,
    },
    /// No listen address was given.
    #[error("the egress proxy needs at least one listen address")]
    NoAddress,
}

/// The transparent proxy, bound and ready to run.
pub struct TransparentProxy {
    listeners: Vec<TcpListener>,
    shared: Arc<Shared>,
}

impl fmt::Debug for TransparentProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransparentProxy")
            .field("addrs", &self.local_addrs())
            .finish_non_exhaustive()
    }
}

struct Shared {
    /// Swapped by [`ProxyHandle::set_decider`] when the policy is reloaded.
    decide: RwLock<Arc<dyn Decide>>,
    sink: Arc<dyn DecisionSink>,
    config: ProxyConfig,
    /// Whether the decider's last answer was an error (logged on change only).
    decider_failing: AtomicBool,
}

impl TransparentProxy {
    /// Binds every address (IPv6 ones IPv6-only, so `0.0.0.0:P` and `[::]:P` can both be
    /// given). Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// [`ProxyError`] when an address cannot be bound.
    pub fn bind(
        addrs: &[SocketAddr],
        decide: Arc<dyn Decide>,
        sink: Arc<dyn DecisionSink>,
        config: ProxyConfig,
    ) -> Result<Self, ProxyError> {
        if addrs.is_empty() {
            return Err(ProxyError::NoAddress);
        }
        let mut listeners = Vec::new();
        for addr in addrs {
            let listener = sys::listen_socket(*addr)
                .and_then(|s| {
                    s.listen(1024).map_err(|source| sys::SysError::Socket {
                        what: "listen",
                        source,
                    })
                })
                .map_err(|source| ProxyError::Bind {
                    addr: *addr,
                    source,
                })?;
            listeners.push(listener);
        }
        Ok(Self {
            listeners,
            shared: Arc::new(Shared {
                decide: RwLock::new(decide),
                sink,
                config,
                decider_failing: AtomicBool::new(false),
            }),
        })
    }

    /// A handle to change the decider while the proxy runs.
    #[must_use]
    pub fn handle(&self) -> ProxyHandle {
        ProxyHandle(Arc::clone(&self.shared))
    }

    /// The bound addresses (with the ports chosen when port 0 was asked for).
    #[must_use]
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// Serves until `shutdown` completes. Connections in progress are left to finish on their
    /// own tasks (bounded by the idle timeout).
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let limit = Arc::new(Semaphore::new(self.shared.config.max_connections.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        for listener in self.listeners {
            let shared = Arc::clone(&self.shared);
            let limit = Arc::clone(&limit);
            tasks.spawn(accept_loop(listener, shared, limit));
        }
        shutdown.await;
        tasks.abort_all();
    }
}

/// Changes a running proxy's decider (on policy reload); connections already decided keep
/// their plan.
#[derive(Clone)]
pub struct ProxyHandle(Arc<Shared>);

impl fmt::Debug for ProxyHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProxyHandle")
    }
}

impl ProxyHandle {
    /// Uses `decide` for every connection from now on.
    pub fn set_decider(&self, decide: Arc<dyn Decide>) {
        let mut slot = self
            .0
            .decide
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        *slot = decide;
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, limit: Arc<Semaphore>) {
    loop {
        // Bounded concurrency: wait for a slot before accepting, so excess connections wait
        // in the backlog instead of exhausting file descriptors and memory.
        let Ok(permit) = Arc::clone(&limit).acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((stream, peer)) => {
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    handle(stream, peer, &shared).await;
                    drop(permit);
                });
            }
            Err(e) => {
                tracing::warn!("egress proxy: accept failed: {e}");
                // EMFILE and friends: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn handle(mut client: TcpStream, peer: SocketAddr, shared: &Shared) {
    let _ = client.set_nodelay(true);
    let mut decision = Decision {
        source: peer,
        destination: None,
        host: None,
        scheme: Scheme::Other,
        outcome: Outcome::Refused,
        reason: String::new(),
    };
    let original = match sys::original_dst(&client) {
        Ok(a) => a,
        Err(e) => {
            decision.reason = e.to_string();
            shared.sink.record(&decision);
            return;
        }
    };
    decision.destination = Some(original);
    let sniffed = match sniff(&mut client, original.port(), &shared.config.sniff).await {
        Ok(s) => s,
        Err(e) => {
            decision.reason = e.to_string();
            shared.sink.record(&decision);
            return;
        }
    };
    decision.host.clone_from(&sniffed.host);
    decision.scheme = sniffed.scheme;
    let target = Target {
        ip: original.ip().to_canonical(),
        port: original.port(),
        host: sniffed.host.clone(),
        scheme: sniffed.scheme,
    };
    // On an HTTP port the whole request stream is checked as it passes. What was read while
    // sniffing may already hold more (a body, a pipelined request): a prefix that breaks the
    // rules (ambiguous framing, a second request for another host) is refused before
    // anything is dialled.
    let side = if shared.config.sniff.http_ports.contains(&original.port()) {
        let mut requests = RequestStream::new(sniffed.host.clone(), shared.config.sniff.max_bytes);
        match requests.advance_all(&sniffed.bytes) {
            Ok(passed) => ClientSide::Http {
                requests,
                held: sniffed.bytes,
                passed,
            },
            Err(e) => {
                decision.reason = e.to_string();
                shared.sink.record(&decision);
                return;
            }
        }
    } else {
        ClientSide::Opaque {
            prefix: sniffed.bytes,
        }
    };
    let plan = match ask(shared, target.clone()).await {
        Ok(plan) => plan,
        Err(reason) => {
            decision.reason = reason;
            shared.sink.record(&decision);
            refuse(&mut client, &target).await;
            return;
        }
    };
    if plan.hops.is_empty() {
        decision.reason = plan.reason;
        shared.sink.record(&decision);
        refuse(&mut client, &target).await;
        return;
    }
    let dest = Dest {
        host: target.host.clone(),
        ip: target.ip,
        port: target.port,
    };
    let mut failures = Vec::new();
    let mut upstream = None;
    for hop in &plan.hops {
        match shared.config.connector.connect(hop, &dest).await {
            Ok(s) => {
                upstream = Some((hop.clone(), s));
                break;
            }
            Err(e) => failures.push(format!("{hop}: {e}")),
        }
    }
    let Some((hop, server)) = upstream else {
        decision.outcome = Outcome::Failed;
        decision.reason = format!("{}; every hop failed: {}", plan.reason, failures.join("; "));
        shared.sink.record(&decision);
        return;
    };
    decision.outcome = Outcome::Connected(hop);
    decision.reason = if failures.is_empty() {
        plan.reason
    } else {
        format!("{}; after failures: {}", plan.reason, failures.join("; "))
    };
    shared.sink.record(&decision);
    match relay(client, server, side, shared.config.idle_timeout).await {
        Ended::Cut(e) => {
            // The connection's own decision stays as recorded; this one is the refused request.
            decision.host = e.asked().map(str::to_owned);
            decision.outcome = Outcome::Refused;
            decision.reason = e.to_string();
            shared.sink.record(&decision);
        }
        Ended::Idle => tracing::debug!(
            "egress: closing a connection idle for {:?}",
            shared.config.idle_timeout
        ),
        Ended::Failed(e) => tracing::debug!("egress: a relay from {peer} ended: {e}"),
        Ended::Done => {}
    }
}

/// Asks the decider on a blocking thread, with a time limit; logs failure state changes once.
async fn ask(shared: &Shared, target: Target) -> Result<Plan, String> {
    let decide = Arc::clone(&shared.decide.read().unwrap_or_else(PoisonError::into_inner));
    let job = tokio::task::spawn_blocking(move || decide.decide(&target));
    let result = match tokio::time::timeout(shared.config.decide_timeout, job).await {
        Err(_) => Err(format!(
            "the decider gave no answer within {:?}",
            shared.config.decide_timeout
        )),
        Ok(Err(e)) => Err(format!("the decider failed: {e}")),
        Ok(Ok(Err(e))) => Err(e.to_string()),
        Ok(Ok(Ok(plan))) => Ok(plan),
    };
    let failing = result.is_err();
    if shared.decider_failing.swap(failing, Ordering::Relaxed) != failing {
        match &result {
            Err(e) => tracing::error!(
                "egress: {e}; refusing container connections on transparent ports until it is fixed"
            ),
            Ok(_) => tracing::info!("egress: the containers proxy policy answers again"),
        }
    }
    result
}

async fn refuse(client: &mut TcpStream, target: &Target) {
    if target.scheme == Scheme::Http {
        let host = target.host.as_deref().unwrap_or("this host");
        let body = format!("stockade: egress to {host} refused by the containers proxy policy\n");
        let answer = format!(
            "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ =
            tokio::time::timeout(Duration::from_secs(2), client.write_all(answer.as_bytes())).await;
    }
    let _ = client.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::DecideError;
    use std::sync::atomic::AtomicUsize;

    /// Fails on calls 1-3, then answers, then fails again.
    struct Flaky(AtomicUsize);

    impl Decide for Flaky {
        fn decide(&self, _: &Target) -> Result<Plan, DecideError> {
            let n = self.0.fetch_add(1, Ordering::Relaxed);
            if !(3..5).contains(&n) {
                Err(DecideError::PacFailed("boom".into()))
            } else {
                Ok(Plan {
                    hops: vec![Hop::Direct],
                    reason: "ok".into(),
                })
            }
        }
    }

    #[derive(Clone, Default)]
    struct Capture(Arc<RwLock<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.write().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_failing_decider_is_logged_once_per_state_change() {
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let shared = Shared {
            decide: RwLock::new(Arc::new(Flaky(AtomicUsize::new(0)))),
            sink: Arc::new(|_: &Decision| {}),
            config: ProxyConfig::default(),
            decider_failing: AtomicBool::new(false),
        };
        let target = Target {
            ip: "192.0.2.1".parse().unwrap(),
            port: 443,
            host: None,
            scheme: Scheme::Other,
        };
        let mut results = Vec::new();
        for _ in 0..7 {
            results.push(ask(&shared, target.clone()).await.is_ok());
        }
        assert_eq!(results, [false, false, false, true, true, false, false]);
        let text = String::from_utf8(capture.0.read().unwrap().clone()).unwrap();
        assert_eq!(text.matches("boom").count(), 2, "{text}");
        assert_eq!(text.matches("answers again").count(), 1, "{text}");
    }

    #[test]
    fn decisions_read_well_in_logs() {
        let d = Decision {
            source: "10.0.0.2:5000".parse().unwrap(),
            destination: Some("192.0.2.1:443".parse().unwrap()),
            host: Some("a.example".into()),
            scheme: Scheme::Https,
            outcome: Outcome::Connected(Hop::Direct),
            reason: "pac: DIRECT".into(),
        };
        assert_eq!(
            d.to_string(),
            "egress 10.0.0.2:5000 -> 192.0.2.1:443 host a.example (Https): connected via DIRECT: pac: DIRECT"
        );
    }
}
