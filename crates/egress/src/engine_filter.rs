//! The managed engine's own egress filter (DESIGN.md §5, defence in depth): an HTTP forward
//! proxy that dockerd is given as `HTTP_PROXY`/`HTTPS_PROXY`, which lets the engine reach only
//! the registries the admin allows (and, for Docker Hub, its auth and blob hosts). A pull that
//! slipped past the gateway's rules still cannot reach a forbidden registry.
//!
//! It takes `CONNECT host:port` (HTTPS registries) and absolute-form requests
//! (`GET http://host:port/v2/...`, insecure registries). An absolute-form request is forwarded
//! with `Connection: close`, so the engine cannot reuse the connection for another host. The
//! decision is a [`Decide`] like the containers' proxy uses; [`RegistryFilter`] is the one for
//! registries.
//!
//! Limits: Go never sends requests for loopback hosts through a proxy, so registries on
//! 127.0.0.0/8 and `localhost` are not covered here (the gateway's rules still are).

use crate::upstream::{Connector, Dest};
use crate::{Decide, DecideError, Hop, Plan, Scheme, Target};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Largest request head read from the engine.
const MAX_HEAD: usize = 16 * 1024;
/// How long the engine may take to send a request head, and a connection to be made.
const TIMEOUT: Duration = Duration::from_secs(15);

/// Docker Hub's hosts: the registry, its token service and its blob storage.
const HUB_HOSTS: &[&str] = &[
    "registry-1.docker.io",
    "index.docker.io",
    "auth.docker.io",
    "production.cloudflare.docker.com",
];

/// Allows connections to the hosts of the allowed registries only.
#[derive(Clone, Debug)]
pub struct RegistryFilter {
    /// `None`: every registry is allowed.
    allowed: Option<Vec<(String, Option<u16>)>>,
    /// How allowed connections leave the host: directly, or through the admin's proxy.
    via: Hop,
    /// Hosts that bypass `via` (the proxy's `exclude`): a name, `.domain` or `*.domain`.
    direct: Vec<String>,
    /// When set (the admin's `proxy` is a PAC file), the way out of each allowed connection.
    route: Option<Arc<dyn Decide>>,
}

impl std::fmt::Debug for dyn Decide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Decide")
    }
}

impl RegistryFilter {
    /// `allowed`: `registryAccess.allowedRegistries` of the admin (`docker.io` means Docker Hub
    /// and its auth and blob hosts; add the storage hosts other registries redirect blob
    /// downloads to); `None` allows every registry. `via`: the upstream for allowed
    /// connections (the admin's `proxy`), or [`Hop::Direct`].
    #[must_use]
    pub fn new(allowed: Option<&[String]>, via: Hop) -> Self {
        let allowed = allowed.map(|entries| {
            let mut hosts = Vec::new();
            for entry in entries {
                let entry = entry.to_ascii_lowercase();
                if ["docker.io", "index.docker.io", "registry-1.docker.io"]
                    .contains(&entry.as_str())
                {
                    hosts.extend(HUB_HOSTS.iter().map(|h| ((*h).to_owned(), Some(443))));
                    continue;
                }
                let (host, port) = split_host_port(&entry);
                hosts.push((host.to_owned(), port));
            }
            hosts
        });
        Self {
            allowed,
            via,
            direct: Vec::new(),
            route: None,
        }
    }

    /// Allowed connections leave the way `route` says (a PAC decider), not through `via`.
    #[must_use]
    pub fn with_route(mut self, route: Arc<dyn Decide>) -> Self {
        self.route = Some(route);
        self
    }

    /// Hosts reached directly rather than through the upstream proxy (still filtered).
    #[must_use]
    pub fn with_direct(mut self, exclude: &[String]) -> Self {
        self.direct = exclude
            .iter()
            .map(|e| e.trim().trim_start_matches('*').to_ascii_lowercase())
            .filter(|e| !e.is_empty())
            .collect();
        self
    }

    fn hop_for(&self, host: &str) -> Hop {
        let host = host.to_ascii_lowercase();
        let excluded = self.direct.iter().any(|e| {
            if let Some(domain) = e.strip_prefix('.') {
                host.ends_with(&format!(".{domain}"))
            } else {
                host == *e || host.ends_with(&format!(".{e}"))
            }
        });
        if excluded {
            Hop::Direct
        } else {
            self.via.clone()
        }
    }

    fn allows(&self, host: &str, port: u16) -> bool {
        let Some(allowed) = &self.allowed else {
            return true;
        };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        allowed.iter().any(|(h, p)| {
            *h == host
                && match p {
                    Some(p) => *p == port,
                    // A registry without a port: HTTPS on 443, or plain HTTP on 80.
                    None => port == 443 || port == 80,
                }
        })
    }
}

impl Decide for RegistryFilter {
    fn decide(&self, target: &Target) -> Result<Plan, DecideError> {
        let host = target.host.clone().unwrap_or_else(|| target.ip.to_string());
        if self.allows(&host, target.port) {
            if let Some(route) = &self.route {
                let plan = route.decide(target)?;
                return Ok(Plan {
                    reason: format!(
                        "registry {host}:{} is allowed; {}",
                        target.port, plan.reason
                    ),
                    hops: plan.hops,
                });
            }
            Ok(Plan {
                hops: vec![self.hop_for(&host)],
                reason: format!("registry {host}:{} is allowed", target.port),
            })
        } else {
            Ok(Plan {
                hops: Vec::new(),
                reason: format!("registry access to {host}:{} is not allowed", target.port),
            })
        }
    }
}

/// `host[:port]` with IPv6 brackets kept on the host.
fn split_host_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        if let Some((inside, after)) = rest.split_once(']') {
            let port = after.strip_prefix(':').and_then(|p| p.parse().ok());
            return (&entry[..inside.len() + 2], port);
        }
    }
    match entry.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, port.parse().ok()),
        _ => (entry, None),
    }
}

/// One decision of the filter, for logs and the audit log.
#[derive(Debug, Clone)]
pub struct FilterEvent {
    /// `host:port` the engine asked for.
    pub destination: String,
    /// Whether it was let through.
    pub allowed: bool,
    /// Why.
    pub reason: String,
}

/// Serves the forward proxy on `listener` until the task is dropped; `report` gets every
/// decision.
pub async fn serve(
    listener: TcpListener,
    decide: Arc<dyn Decide>,
    report: Arc<dyn Fn(FilterEvent) + Send + Sync>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let decide = Arc::clone(&decide);
        let report = Arc::clone(&report);
        tokio::spawn(async move {
            if let Err(e) = handle(stream, &decide, &report).await {
                tracing::debug!(error = %e, "engine egress connection ended");
            }
        });
    }
}

/// What the engine asked for.
struct Asked {
    connect: bool,
    host: String,
    port: u16,
    /// For absolute-form requests, the head to send on (origin-form, `Connection: close`).
    head: Vec<u8>,
    /// Bytes after the head already read.
    rest: Vec<u8>,
}

async fn handle(
    mut client: TcpStream,
    decide: &Arc<dyn Decide>,
    report: &Arc<dyn Fn(FilterEvent) + Send + Sync>,
) -> std::io::Result<()> {
    let asked = match tokio::time::timeout(TIMEOUT, read_head(&mut client)).await {
        Ok(Ok(asked)) => asked,
        Ok(Err(why)) => {
            let _ = respond(&mut client, 400, &why).await;
            return Ok(());
        }
        Err(_) => return Ok(()),
    };
    let target = Target {
        ip: asked
            .host
            .parse::<IpAddr>()
            .unwrap_or(IpAddr::from([0, 0, 0, 0])),
        port: asked.port,
        host: Some(asked.host.clone()),
        scheme: if asked.connect {
            Scheme::Https
        } else {
            Scheme::Http
        },
    };
    let destination = format!("{}:{}", asked.host, asked.port);
    let decider = Arc::clone(decide);
    let plan = tokio::task::spawn_blocking(move || decider.decide(&target))
        .await
        .map_err(std::io::Error::other)?;
    let plan = match plan {
        Ok(plan) if !plan.hops.is_empty() => plan,
        Ok(plan) => {
            report(FilterEvent {
                destination: destination.clone(),
                allowed: false,
                reason: plan.reason.clone(),
            });
            tracing::warn!(destination, reason = %plan.reason, "engine egress refused");
            respond(&mut client, 403, &format!("stockade: {}", plan.reason)).await?;
            return Ok(());
        }
        Err(e) => {
            report(FilterEvent {
                destination: destination.clone(),
                allowed: false,
                reason: e.to_string(),
            });
            respond(&mut client, 403, &format!("stockade: {e}")).await?;
            return Ok(());
        }
    };
    let mut upstream = None;
    // The same connectors as the containers' proxy (DIRECT by name, CONNECT, SOCKS5).
    let connector = Connector::default();
    let dest = match asked.host.parse::<IpAddr>() {
        Ok(ip) => Dest {
            host: None,
            ip,
            port: asked.port,
        },
        Err(_) => Dest {
            host: Some(asked.host.to_ascii_lowercase()),
            ip: IpAddr::from([0, 0, 0, 0]),
            port: asked.port,
        },
    };
    for hop in &plan.hops {
        // An allowed registry named by IP is dialled as given (the engine is no container
        // forging names; the allowlist already decided); everything else goes through the
        // shared connectors.
        let connected = match (hop, dest.host.as_ref()) {
            (Hop::Direct, None) => {
                tokio::time::timeout(TIMEOUT, TcpStream::connect((dest.ip, dest.port)))
                    .await
                    .map_err(|_| std::io::Error::other("connect timed out"))
                    .and_then(|r| r)
                    .map_err(|e| e.to_string())
            }
            _ => connector
                .connect(hop, &dest)
                .await
                .map_err(|e| e.to_string()),
        };
        match connected {
            Ok(stream) => {
                upstream = Some(stream);
                break;
            }
            Err(e) => tracing::debug!(%hop, error = %e, "engine egress hop failed"),
        }
    }
    let Some(mut upstream) = upstream else {
        report(FilterEvent {
            destination: destination.clone(),
            allowed: false,
            reason: format!("{}; but no hop could connect", plan.reason),
        });
        respond(
            &mut client,
            502,
            "stockade: the registry could not be reached",
        )
        .await?;
        return Ok(());
    };
    report(FilterEvent {
        destination,
        allowed: true,
        reason: plan.reason,
    });
    if asked.connect {
        client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await?;
    } else {
        upstream.write_all(&asked.head).await?;
    }
    if !asked.rest.is_empty() {
        upstream.write_all(&asked.rest).await?;
    }
    tokio::io::copy_bidirectional_with_sizes(&mut client, &mut upstream, 256 << 10, 256 << 10)
        .await?;
    Ok(())
}

async fn respond(client: &mut TcpStream, status: u16, message: &str) -> std::io::Result<()> {
    let reason = match status {
        400 => "Bad Request",
        403 => "Forbidden",
        _ => "Bad Gateway",
    };
    let text = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{message}\n",
        message.len() + 1
    );
    client.write_all(text.as_bytes()).await?;
    client.shutdown().await
}

async fn read_head(client: &mut TcpStream) -> Result<Asked, String> {
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 4096];
    loop {
        let n = client
            .read(&mut chunk)
            .await
            .map_err(|e| format!("reading the request: {e}"))?;
        if n == 0 {
            return Err("the connection closed before a request".to_owned());
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let method = request.method.unwrap_or("");
                let path = request.path.unwrap_or("");
                if method == "CONNECT" {
                    let (host, port) = split_host_port(path);
                    let port = port.ok_or("CONNECT needs host:port")?;
                    return Ok(Asked {
                        connect: true,
                        host: host.trim_matches(['[', ']']).to_owned(),
                        port,
                        head: Vec::new(),
                        rest: buf[len..].to_vec(),
                    });
                }
                let rest_of_url = path
                    .strip_prefix("http://")
                    .ok_or("only CONNECT and absolute http:// requests are proxied")?;
                let (authority, origin) = match rest_of_url.find('/') {
                    Some(i) => (&rest_of_url[..i], &rest_of_url[i..]),
                    None => (rest_of_url, "/"),
                };
                let (host, port) = split_host_port(authority);
                let mut head = format!("{method} {origin} HTTP/1.1\r\n").into_bytes();
                for h in request.headers.iter() {
                    let name = h.name.to_ascii_lowercase();
                    // Hop-by-hop and proxy headers stay here; the connection closes after one
                    // exchange so it cannot be reused for another host.
                    if name == "connection"
                        || name == "proxy-connection"
                        || name == "keep-alive"
                        || name.starts_with("proxy-")
                    {
                        continue;
                    }
                    head.extend_from_slice(h.name.as_bytes());
                    head.extend_from_slice(b": ");
                    head.extend_from_slice(h.value);
                    head.extend_from_slice(b"\r\n");
                }
                head.extend_from_slice(b"Connection: close\r\n\r\n");
                return Ok(Asked {
                    connect: false,
                    host: host.trim_matches(['[', ']']).to_owned(),
                    port: port.unwrap_or(80),
                    head,
                    rest: buf[len..].to_vec(),
                });
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
            Ok(httparse::Status::Partial) => return Err("the request head is too large".to_owned()),
            Err(e) => return Err(format!("malformed request: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(host: &str, port: u16) -> Target {
        Target {
            ip: IpAddr::from([0, 0, 0, 0]),
            port,
            host: Some(host.to_owned()),
            scheme: Scheme::Https,
        }
    }

    #[test]
    fn only_allowed_registries_and_hub_hosts() {
        let allowed = vec![
            "docker.io".to_owned(),
            "registry.corp:5000".to_owned(),
            "ghcr.io".to_owned(),
        ];
        let f = RegistryFilter::new(Some(&allowed), Hop::Direct);
        let ok = |h: &str, p: u16| !f.decide(&target(h, p)).unwrap().hops.is_empty();
        assert!(ok("registry-1.docker.io", 443));
        assert!(ok("auth.docker.io", 443));
        assert!(ok("production.cloudflare.docker.com", 443));
        assert!(ok("Registry.Corp", 5000));
        assert!(ok("ghcr.io", 443));
        assert!(ok("ghcr.io.", 443));
        assert!(!ok("registry.corp", 443));
        assert!(!ok("ghcr.io", 8443));
        assert!(!ok("quay.io", 443));
        assert!(!ok("evil.docker.io.attacker", 443));
        let plan = f.decide(&target("quay.io", 443)).unwrap();
        assert_eq!(plan.reason, "registry access to quay.io:443 is not allowed");
        let proxied = RegistryFilter::new(
            Some(&allowed),
            Hop::Proxy {
                host: "p".into(),
                port: 3128,
            },
        )
        .with_direct(&[".corp".to_owned()]);
        assert_eq!(
            proxied.decide(&target("registry.corp", 5000)).unwrap().hops,
            [Hop::Direct]
        );
        assert_eq!(
            proxied.decide(&target("ghcr.io", 443)).unwrap().hops,
            [Hop::Proxy {
                host: "p".into(),
                port: 3128
            }]
        );
        let open = RegistryFilter::new(None, Hop::Direct);
        assert!(!open.decide(&target("anything", 1)).unwrap().hops.is_empty());
        assert_eq!(split_host_port("[::1]:5000"), ("[::1]", Some(5000)));
        assert_eq!(split_host_port("h"), ("h", None));
    }

    #[test]
    fn a_pac_route_chooses_the_way_out_of_allowed_connections_only() {
        let script = r#"function FindProxyForURL(url, host) {
            if (host == "ghcr.io") return "PROXY corp-proxy:3128; DIRECT";
            return "PROXY reject.docker.internal:1";
        }"#;
        let pac = crate::Decider::pac(
            crate::pac::PacSource::Embedded(script.to_owned()),
            crate::DeciderOptions::default(),
        );
        let allowed = vec!["ghcr.io".to_owned(), "quay.io".to_owned()];
        let f = RegistryFilter::new(Some(&allowed), Hop::Direct).with_route(Arc::new(pac));
        let plan = f.decide(&target("ghcr.io", 443)).unwrap();
        assert_eq!(
            plan.hops,
            [
                Hop::Proxy {
                    host: "corp-proxy".into(),
                    port: 3128
                },
                Hop::Direct
            ]
        );
        // Allowed by the registry list but refused by the PAC: refused.
        assert!(f.decide(&target("quay.io", 443)).unwrap().hops.is_empty());
        // Not allowed: the PAC is not even asked.
        let plan = f.decide(&target("evil.io", 443)).unwrap();
        assert!(plan.hops.is_empty() && plan.reason.contains("not allowed"));
    }

    #[tokio::test]
    async fn the_proxy_tunnels_allowed_and_refuses_the_rest() {
        // A "registry" on loopback that answers one line.
        let registry = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let registry_port = registry.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = registry.accept().await {
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let seen = String::from_utf8_lossy(&buf[..n]).to_string();
                let body = format!("seen: {}", seen.lines().next().unwrap_or(""));
                let _ = s
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        )
                        .as_bytes(),
                    )
                    .await;
            }
        });
        let allowed = vec![format!("127.0.0.1:{registry_port}")];
        let filter: Arc<dyn Decide> = Arc::new(RegistryFilter::new(Some(&allowed), Hop::Direct));
        let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy_addr = proxy.local_addr().unwrap();
        let events = Arc::new(std::sync::RwLock::new(Vec::new()));
        let sink = Arc::clone(&events);
        tokio::spawn(serve(
            proxy,
            filter,
            Arc::new(move |e: FilterEvent| {
                if let Ok(mut v) = sink.write() {
                    v.push(e);
                }
            }),
        ));
        let ask = |request: String| async move {
            let mut s = TcpStream::connect(proxy_addr).await.unwrap();
            s.write_all(request.as_bytes()).await.unwrap();
            let mut out = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
            String::from_utf8_lossy(&out).to_string()
        };
        let answer = ask(format!(
            "GET http://127.0.0.1:{registry_port}/v2/ HTTP/1.1\r\nHost: 127.0.0.1:{registry_port}\r\nProxy-Connection: keep-alive\r\n\r\n"
        ))
        .await;
        assert!(answer.contains("seen: GET /v2/ HTTP/1.1"), "{answer}");
        let answer = ask(format!(
            "GET http://127.0.0.1:{}/v2/ HTTP/1.1\r\nHost: x\r\n\r\n",
            registry_port + 1
        ))
        .await;
        assert!(
            answer.starts_with("HTTP/1.1 403") && answer.contains("is not allowed"),
            "{answer}"
        );
        let answer =
            ask("CONNECT quay.io:443 HTTP/1.1\r\nHost: quay.io:443\r\n\r\n".to_owned()).await;
        assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
        let answer = ask("GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n".to_owned()).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        let seen = events.read().unwrap().clone();
        assert_eq!(seen.iter().filter(|e| e.allowed).count(), 1, "{seen:?}");
        assert_eq!(seen.iter().filter(|e| !e.allowed).count(), 2, "{seen:?}");
    }
}
