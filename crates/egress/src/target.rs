//! The vocabulary shared by the proxy (which asks) and the deciders (which answer).

use std::fmt;
use std::net::IpAddr;

/// How the hostname of a connection was learnt, which is also the scheme of the PAC `url`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP: the name came from the `Host` header.
    Http,
    /// TLS: the name came from the ClientHello's SNI.
    Https,
    /// Neither could be read (another port, or no name sent): only the IP is known.
    Other,
}

/// A connection a container opened, as the transparent proxy saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The original destination address (`SO_ORIGINAL_DST`).
    pub ip: IpAddr,
    /// The original destination port.
    pub port: u16,
    /// The hostname read from SNI or `Host`, lowercased, without a port; `None` when none.
    pub host: Option<String>,
    /// Where the hostname came from.
    pub scheme: Scheme,
}

/// One way to reach a target, in the order the PAC result or the fixed proxy gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hop {
    /// Connect to the destination directly.
    Direct,
    /// Tunnel through an HTTP proxy with `CONNECT host:port`.
    Proxy {
        /// Proxy host.
        host: String,
        /// Proxy port.
        port: u16,
    },
    /// Tunnel through a SOCKS5 proxy (no authentication).
    Socks5 {
        /// Proxy host.
        host: String,
        /// Proxy port.
        port: u16,
    },
}

impl fmt::Display for Hop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Direct => f.write_str("DIRECT"),
            Self::Proxy { host, port } => write!(f, "PROXY {host}:{port}"),
            Self::Socks5 { host, port } => write!(f, "SOCKS5 {host}:{port}"),
        }
    }
}

/// A decision: the hops to try in order. No hops means refuse (for example
/// `PROXY reject.docker.internal:<port>`); `reason` says why, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Hops in order of preference; empty: refuse the connection.
    pub hops: Vec<Hop>,
    /// What made the decision, for logs and the audit record (e.g. `pac: PROXY a:3128; DIRECT`).
    pub reason: String,
}

/// A decider could not decide; the connection is refused (fail closed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecideError {
    /// The PAC file could not be loaded (fetch, read or parse).
    #[error("the PAC file could not be loaded: {0}")]
    PacUnavailable(String),
    /// `FindProxyForURL` threw, returned a non-string, ran out of time or memory.
    #[error("the PAC evaluation failed: {0}")]
    PacFailed(String),
    /// The result string could not be understood.
    #[error("the PAC result {0:?} is not understood")]
    BadResult(String),
}

/// Something that turns a target into a plan. Implementations may block (PAC evaluation has its
/// own time limit); the proxy calls them off the async executor.
pub trait Decide: Send + Sync {
    /// Decides for one connection.
    ///
    /// # Errors
    /// When no decision can be made; the caller refuses the connection.
    fn decide(&self, target: &Target) -> Result<Plan, DecideError>;
}
