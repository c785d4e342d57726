//! Connecting to the destination by one [`Hop`]: directly, through an HTTP proxy
//! (`CONNECT host:port`) or through a SOCKS5 proxy (RFC 1928, no authentication). Every step is
//! bounded in time and size.
//!
//! # Forged names
//! A name read from SNI or `Host` is chosen by the client. For a `DIRECT` hop the proxy dials
//! the *name* (its addresses from the [`Resolve`] given), never the original IP, so a
//! ClientHello naming an allowed host on a connection to a forbidden IP reaches the allowed
//! host, not the forbidden one. Through a proxy the upstream is likewise asked for the name.
//! Without a name the original IP is used.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::target::Hop;

/// Turns a host name into addresses. Blocking is allowed: the proxy calls it from a blocking
/// thread with a time limit.
pub trait Resolve: Send + Sync {
    /// The addresses of `host`.
    ///
    /// # Errors
    /// When the name does not resolve.
    fn resolve(&self, host: &str) -> std::io::Result<Vec<IpAddr>>;
}

/// The host's resolver (`getaddrinfo`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        use std::net::ToSocketAddrs;
        Ok((host, 0).to_socket_addrs()?.map(|a| a.ip()).collect())
    }
}

/// Where the client wanted to go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dest {
    /// The validated name from SNI or `Host`.
    pub host: Option<String>,
    /// The original destination address.
    pub ip: IpAddr,
    /// The original destination port.
    pub port: u16,
}

impl Dest {
    /// `host:port` for a proxy request: the name when there is one, else the IP (IPv6 in
    /// brackets).
    #[must_use]
    pub fn authority(&self) -> String {
        match (&self.host, self.ip) {
            (Some(h), _) if h.contains(':') => format!("[{h}]:{}", self.port),
            (Some(h), _) => format!("{h}:{}", self.port),
            (None, IpAddr::V6(ip)) => format!("[{ip}]:{}", self.port),
            (None, ip) => format!("{ip}:{}", self.port),
        }
    }
}

/// Why a hop failed; the proxy then tries the next one.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The name did not resolve, or only to addresses the proxy never dials.
    #[error("resolving {host}: {reason}")]
    Resolve {
        /// The name.
        host: String,
        /// Why.
        reason: String,
    },
    /// The TCP connection failed.
    #[error("connecting to {addr}: {source}")]
    Connect {
        /// Where.
        addr: String,
        /// The error.
        source: std::io::Error,
    },
    /// A step took longer than allowed.
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// Which step.
        what: String,
        /// The limit.
        after: Duration,
    },
    /// The proxy answered something else than success.
    #[error("the upstream {hop} refused {authority}: {answer}")]
    Refused {
        /// The hop.
        hop: String,
        /// What was asked.
        authority: String,
        /// What it said.
        answer: String,
    },
    /// The proxy spoke something we do not understand.
    #[error("the upstream {hop} sent an invalid answer: {reason}")]
    Protocol {
        /// The hop.
        hop: String,
        /// What is wrong.
        reason: String,
    },
    /// Reading or writing failed during the handshake.
    #[error("talking to the upstream {hop}: {source}")]
    Io {
        /// The hop.
        hop: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Limits of the upstream connectors.
#[derive(Clone)]
pub struct Connector {
    /// Turns names into addresses (for `DIRECT` hops and proxy host names).
    pub resolver: Arc<dyn Resolve>,
    /// Each TCP connect, each resolution, and each proxy handshake (default 10 s).
    pub timeout: Duration,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Default for Connector {
    fn default() -> Self {
        Self {
            resolver: Arc::new(SystemResolver),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Largest proxy answer read (a CONNECT response head).
const MAX_ANSWER: usize = 8 * 1024;

/// Addresses a `DIRECT` hop never dials: loopback (the host's own services, e.g. a SNI of
/// `localhost` would otherwise reach 127.0.0.1 on the host), unspecified and multicast.
fn never_dialled(ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    ip.is_loopback() || ip.is_unspecified() || ip.is_multicast()
}

impl Connector {
    /// Connects to `dest` by `hop`, including the proxy handshake.
    ///
    /// # Errors
    /// Any failure to resolve, connect or complete the handshake.
    pub async fn connect(&self, hop: &Hop, dest: &Dest) -> Result<TcpStream, UpstreamError> {
        match hop {
            Hop::Direct => {
                let addrs = match &dest.host {
                    // Forged-name defence (module docs): dial the name, not the original IP.
                    Some(host) => self.resolve(host).await?,
                    None => vec![dest.ip],
                };
                let addrs: Vec<IpAddr> =
                    addrs.into_iter().filter(|ip| !never_dialled(*ip)).collect();
                if addrs.is_empty() {
                    return Err(UpstreamError::Resolve {
                        host: dest.authority(),
                        reason: "no address that may be dialled directly (loopback, unspecified and multicast are refused)".into(),
                    });
                }
                self.dial(&addrs, dest.port).await
            }
            Hop::Proxy { host, port } => {
                let mut stream = self.dial_named(host, *port).await?;
                let hop = hop.to_string();
                self.bounded(&hop, http_connect(&mut stream, &hop, &dest.authority()))
                    .await?;
                Ok(stream)
            }
            Hop::Socks5 { host, port } => {
                let mut stream = self.dial_named(host, *port).await?;
                let hop = hop.to_string();
                self.bounded(&hop, socks5_connect(&mut stream, &hop, dest))
                    .await?;
                Ok(stream)
            }
        }
    }

    async fn bounded<T>(
        &self,
        hop: &str,
        f: impl std::future::Future<Output = Result<T, UpstreamError>>,
    ) -> Result<T, UpstreamError> {
        tokio::time::timeout(self.timeout, f)
            .await
            .map_err(|_| UpstreamError::Timeout {
                what: format!("the handshake with {hop}"),
                after: self.timeout,
            })?
    }

    async fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, UpstreamError> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let resolver = Arc::clone(&self.resolver);
        let name = host.to_owned();
        let job = tokio::task::spawn_blocking(move || resolver.resolve(&name));
        let result = tokio::time::timeout(self.timeout, job)
            .await
            .map_err(|_| UpstreamError::Timeout {
                what: format!("resolving {host}"),
                after: self.timeout,
            })?
            .map_err(|e| UpstreamError::Resolve {
                host: host.to_owned(),
                reason: e.to_string(),
            })?;
        result.map_err(|e| UpstreamError::Resolve {
            host: host.to_owned(),
            reason: e.to_string(),
        })
    }

    async fn dial_named(&self, host: &str, port: u16) -> Result<TcpStream, UpstreamError> {
        let addrs = self.resolve(host).await?;
        self.dial(&addrs, port).await
    }

    /// Tries the addresses in order (at most 8), each with the timeout.
    async fn dial(&self, addrs: &[IpAddr], port: u16) -> Result<TcpStream, UpstreamError> {
        let mut last = None;
        for ip in addrs.iter().take(8) {
            let addr = SocketAddr::new(*ip, port);
            match tokio::time::timeout(self.timeout, TcpStream::connect(addr)).await {
                Ok(Ok(s)) => {
                    let _ = s.set_nodelay(true);
                    return Ok(s);
                }
                Ok(Err(source)) => {
                    last = Some(UpstreamError::Connect {
                        addr: addr.to_string(),
                        source,
                    });
                }
                Err(_) => {
                    last = Some(UpstreamError::Timeout {
                        what: format!("connecting to {addr}"),
                        after: self.timeout,
                    });
                }
            }
        }
        Err(last.unwrap_or_else(|| UpstreamError::Resolve {
            host: format!("port {port}"),
            reason: "no address".into(),
        }))
    }
}

/// `CONNECT authority HTTP/1.1`; reads the answer head byte by byte (so no tunnelled byte is
/// consumed), at most [`MAX_ANSWER`] bytes, and requires a 2xx status.
async fn http_connect(
    stream: &mut TcpStream,
    hop: &str,
    authority: &str,
) -> Result<(), UpstreamError> {
    let io = |source| UpstreamError::Io {
        hop: hop.to_owned(),
        source,
    };
    let request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.map_err(io)?;
    let mut head = Vec::with_capacity(128);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_ANSWER {
            return Err(UpstreamError::Protocol {
                hop: hop.to_owned(),
                reason: format!("the CONNECT answer is longer than {MAX_ANSWER} bytes"),
            });
        }
        if stream.read(&mut byte).await.map_err(io)? == 0 {
            return Err(UpstreamError::Protocol {
                hop: hop.to_owned(),
                reason: "the proxy closed the connection before answering CONNECT".into(),
            });
        }
        head.push(byte[0]);
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => {
            return Err(UpstreamError::Protocol {
                hop: hop.to_owned(),
                reason: "the CONNECT answer is not an HTTP response".into(),
            })
        }
    }
    let code = response.code.unwrap_or(0);
    if !(200..300).contains(&code) {
        let line = String::from_utf8_lossy(&head);
        return Err(UpstreamError::Refused {
            hop: hop.to_owned(),
            authority: authority.to_owned(),
            answer: line.lines().next().unwrap_or("").to_owned(),
        });
    }
    Ok(())
}

/// RFC 1928: no-authentication greeting, then `CONNECT` by domain name (type 3) or address.
async fn socks5_connect(
    stream: &mut TcpStream,
    hop: &str,
    dest: &Dest,
) -> Result<(), UpstreamError> {
    let io = |source| UpstreamError::Io {
        hop: hop.to_owned(),
        source,
    };
    let proto = |reason: &str| UpstreamError::Protocol {
        hop: hop.to_owned(),
        reason: reason.to_owned(),
    };
    stream.write_all(&[5, 1, 0]).await.map_err(io)?;
    let mut choice = [0u8; 2];
    stream.read_exact(&mut choice).await.map_err(io)?;
    if choice[0] != 5 {
        return Err(proto("not a SOCKS5 server"));
    }
    if choice[1] != 0 {
        return Err(proto(
            "the server requires authentication, which is not supported",
        ));
    }
    let mut request = vec![5, 1, 0];
    match (&dest.host, dest.ip) {
        (Some(h), _) if h.parse::<IpAddr>().is_err() => {
            let len = u8::try_from(h.len()).map_err(|_| proto("the host name is too long"))?;
            request.push(3);
            request.push(len);
            request.extend_from_slice(h.as_bytes());
        }
        (host, ip) => {
            let ip = host
                .as_deref()
                .and_then(|h| h.parse::<IpAddr>().ok())
                .unwrap_or(ip);
            match ip {
                IpAddr::V4(v4) => {
                    request.push(1);
                    request.extend_from_slice(&v4.octets());
                }
                IpAddr::V6(v6) => {
                    request.push(4);
                    request.extend_from_slice(&v6.octets());
                }
            }
        }
    }
    request.extend_from_slice(&dest.port.to_be_bytes());
    stream.write_all(&request).await.map_err(io)?;
    let mut reply = [0u8; 4];
    stream.read_exact(&mut reply).await.map_err(io)?;
    if reply[0] != 5 {
        return Err(proto("the CONNECT reply is not SOCKS5"));
    }
    if reply[1] != 0 {
        let why = match reply[1] {
            1 => "general failure",
            2 => "not allowed by ruleset",
            3 => "network unreachable",
            4 => "host unreachable",
            5 => "connection refused",
            6 => "TTL expired",
            7 => "command not supported",
            8 => "address type not supported",
            _ => "unknown error",
        };
        return Err(UpstreamError::Refused {
            hop: hop.to_owned(),
            authority: dest.authority(),
            answer: format!("SOCKS5 reply {} ({why})", reply[1]),
        });
    }
    // The bound address, which we do not need, but must consume.
    let rest = match reply[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        3 => {
            let mut len = [0u8; 1];
            stream.read_exact(&mut len).await.map_err(io)?;
            usize::from(len[0]) + 2
        }
        _ => return Err(proto("the CONNECT reply has an unknown address type")),
    };
    let mut skip = vec![0u8; rest];
    stream.read_exact(&mut skip).await.map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A one-shot server on loopback that reads what it is sent and answers `answer`.
    async fn answering(answer: &'static [u8]) -> (u16, tokio::task::JoinHandle<Vec<u8>>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut got = vec![0u8; 512];
            let n = s.read(&mut got).await.unwrap();
            got.truncate(n);
            s.write_all(answer).await.unwrap();
            got
        });
        (port, task)
    }

    fn dest(host: Option<&str>) -> Dest {
        Dest {
            host: host.map(str::to_owned),
            ip: "192.0.2.7".parse().unwrap(),
            port: 443,
        }
    }

    fn connector() -> Connector {
        Connector {
            timeout: Duration::from_secs(2),
            ..Connector::default()
        }
    }

    #[tokio::test]
    async fn connect_by_name_and_refusal() {
        let (port, seen) = answering(b"HTTP/1.1 403 Forbidden\r\nX: y\r\n\r\n").await;
        let hop = Hop::Proxy {
            host: "127.0.0.1".into(),
            port,
        };
        let err = connector()
            .connect(&hop, &dest(Some("a.example")))
            .await
            .unwrap_err();
        assert!(matches!(err, UpstreamError::Refused { .. }), "{err}");
        assert!(err.to_string().contains("403"), "{err}");
        let sent = String::from_utf8(seen.await.unwrap()).unwrap();
        assert!(sent.starts_with("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n"));

        let (port, seen) = answering(b"HTTP/1.0 200 OK\r\n\r\n").await;
        let hop = Hop::Proxy {
            host: "127.0.0.1".into(),
            port,
        };
        connector().connect(&hop, &dest(None)).await.unwrap();
        let sent = String::from_utf8(seen.await.unwrap()).unwrap();
        assert!(sent.starts_with("CONNECT 192.0.2.7:443 "), "{sent}");
    }

    #[tokio::test]
    async fn socks5_failure_reply_and_auth_are_errors() {
        // Greeting accepted, then "connection refused" (5).
        let (port, _seen) = answering(&[5, 0, 5, 5, 0, 1, 0, 0, 0, 0, 0, 0]).await;
        let hop = Hop::Socks5 {
            host: "127.0.0.1".into(),
            port,
        };
        let err = connector()
            .connect(&hop, &dest(Some("a.example")))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("connection refused"), "{err}");
        let (port, _seen) = answering(&[5, 2]).await;
        let hop = Hop::Socks5 {
            host: "127.0.0.1".into(),
            port,
        };
        let err = connector().connect(&hop, &dest(None)).await.unwrap_err();
        assert!(err.to_string().contains("authentication"), "{err}");
    }

    #[tokio::test]
    async fn direct_never_dials_loopback_even_by_name() {
        // A container naming `localhost` must not reach the host's own services.
        let err = connector()
            .connect(&Hop::Direct, &dest(Some("127.0.0.1")))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("loopback"), "{err}");
        let mut d = dest(None);
        d.ip = "::1".parse().unwrap();
        assert!(connector().connect(&Hop::Direct, &d).await.is_err());
        d.host = Some("::1".into());
        assert_eq!(d.authority(), "[::1]:443");
    }
}
