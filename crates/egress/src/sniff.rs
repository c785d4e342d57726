//! Reading the hostname a container asked for from the first bytes of its connection: the SNI
//! of a TLS ClientHello on the HTTPS ports, the `Host` header of an HTTP/1.x request on the
//! HTTP ports (DESIGN.md §6: 80 and 443 by default). On every other port nothing is read (a
//! server-speaks-first protocol must not wait for the client) and only the IP is known.
//!
//! The bytes read are returned in [`Sniffed::bytes`] and must be replayed to the upstream
//! before splicing.
//!
//! # Fail closed
//! On an HTTP or HTTPS port, anything that is not a well-formed request head or ClientHello, a
//! name that is not a valid DNS name or IP literal, two different names (two `Host` headers, an
//! absolute URI naming another host), or a client that sends too much or too slowly is an
//! error, and the proxy refuses the connection. Only a well-formed message that carries no name
//! at all (a ClientHello without SNI, an HTTP/1.0 request without `Host`) is let through as
//! [`Scheme::Other`], to be decided by the IP like any other unnamed connection. Rationale: a
//! name the proxy cannot read is a name the PAC cannot judge, and guessing would let a client
//! choose how it is judged.
//!
//! # Limits
//! Only the first request of a connection is read here, to decide it. The later requests of a
//! kept-alive HTTP connection are held to the same name by [`crate::http_stream`] as they pass.
//! With Encrypted Client Hello only the outer (public) name is visible, and that is the name
//! judged and dialled.
//!
//! ```
//! use stockade_egress::sniff::{sniff, SniffConfig};
//! use stockade_egress::Scheme;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let mut client: &[u8] = b"GET / HTTP/1.1\r\nHost: Example.ORG.:80\r\n\r\n";
//! let s = sniff(&mut client, 80, &SniffConfig::default()).await.unwrap();
//! assert_eq!(s.host.as_deref(), Some("example.org"));
//! assert_eq!(s.scheme, Scheme::Http);
//! # });
//! ```

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::target::Scheme;

/// Which ports are sniffed, and the limits of sniffing.
#[derive(Debug, Clone)]
pub struct SniffConfig {
    /// Ports whose connections must start with an HTTP/1.x request (default 80).
    pub http_ports: BTreeSet<u16>,
    /// Ports whose connections must start with a TLS ClientHello (default 443).
    pub https_ports: BTreeSet<u16>,
    /// How long a client on a sniffed port may take to send the whole request head or
    /// ClientHello (default 10 s). Stops idle connections holding a proxy slot.
    pub timeout: Duration,
    /// Largest request head or ClientHello accepted (default 16 KiB; a post-quantum
    /// ClientHello is about 2 KiB). Stops memory exhaustion by an endless header.
    pub max_bytes: usize,
}

impl Default for SniffConfig {
    fn default() -> Self {
        Self {
            http_ports: BTreeSet::from([80]),
            https_ports: BTreeSet::from([443]),
            timeout: Duration::from_secs(10),
            max_bytes: 16 * 1024,
        }
    }
}

/// What was learnt from the start of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sniffed {
    /// The validated hostname (lowercase, no port, no trailing dot), or `None`.
    pub host: Option<String>,
    /// [`Scheme::Http`] or [`Scheme::Https`] when a name was read, else [`Scheme::Other`].
    pub scheme: Scheme,
    /// The bytes consumed from the client, to replay upstream.
    pub bytes: Vec<u8>,
}

/// Why a connection on a sniffed port is refused.
#[derive(Debug, thiserror::Error)]
pub enum SniffError {
    /// Nothing (or not enough) arrived in time.
    #[error("the client sent no complete {what} within {0:?} on port {port}", .timeout)]
    Timeout {
        /// `request head` or `TLS ClientHello`.
        what: &'static str,
        /// The destination port.
        port: u16,
        /// The limit.
        timeout: Duration,
    },
    /// The client closed before a complete message.
    #[error("the client closed the connection before a complete {what} on port {port}")]
    Closed {
        /// `request head` or `TLS ClientHello`.
        what: &'static str,
        /// The destination port.
        port: u16,
    },
    /// The message is larger than [`SniffConfig::max_bytes`].
    #[error("the {what} on port {port} is larger than {limit} bytes")]
    TooLarge {
        /// `request head` or `TLS ClientHello`.
        what: &'static str,
        /// The destination port.
        port: u16,
        /// The limit.
        limit: usize,
    },
    /// The bytes are not what the port requires, or the name is not valid.
    #[error("refusing the connection on port {port}: {reason}")]
    Malformed {
        /// The destination port.
        port: u16,
        /// What is wrong.
        reason: String,
    },
    /// Reading from the client failed.
    #[error("reading from the client on port {port}: {source}")]
    Io {
        /// The destination port.
        port: u16,
        /// The error.
        source: std::io::Error,
    },
}

/// Reads the hostname from the start of a connection to `port`. On ports that are neither
/// HTTP nor HTTPS it returns at once without reading.
///
/// # Errors
/// See the module documentation: on an HTTP or HTTPS port anything but a well-formed message
/// with a valid (or no) name.
pub async fn sniff<R: AsyncRead + Unpin>(
    client: &mut R,
    port: u16,
    config: &SniffConfig,
) -> Result<Sniffed, SniffError> {
    let (what, tls) = if config.https_ports.contains(&port) {
        ("TLS ClientHello", true)
    } else if config.http_ports.contains(&port) {
        ("request head", false)
    } else {
        // Not sniffed: a server-speaks-first protocol (SMTP, SSH) must not wait for the client.
        return Ok(Sniffed {
            host: None,
            scheme: Scheme::Other,
            bytes: Vec::new(),
        });
    };
    let mut buf = Vec::with_capacity(2048);
    let work = async {
        if tls {
            read_client_hello(client, port, config.max_bytes, &mut buf).await
        } else {
            read_http_head(client, port, config.max_bytes, &mut buf).await
        }
    };
    // Bounded in time as a whole, not per read: a client trickling one byte at a time
    // (slowloris) cannot hold the slot longer than `timeout`.
    let host = tokio::time::timeout(config.timeout, work)
        .await
        .map_err(|_| SniffError::Timeout {
            what,
            port,
            timeout: config.timeout,
        })??;
    let scheme = match (&host, tls) {
        (None, _) => Scheme::Other,
        (Some(_), true) => Scheme::Https,
        (Some(_), false) => Scheme::Http,
    };
    Ok(Sniffed {
        host,
        scheme,
        bytes: buf,
    })
}

/// Reads more bytes into `buf`, at most up to `limit` in total.
async fn fill<R: AsyncRead + Unpin>(
    client: &mut R,
    buf: &mut Vec<u8>,
    want: usize,
    limit: usize,
    what: &'static str,
    port: u16,
) -> Result<(), SniffError> {
    if want > limit {
        return Err(SniffError::TooLarge { what, port, limit });
    }
    while buf.len() < want {
        let mut chunk = [0u8; 4096];
        let room = (want - buf.len()).min(chunk.len());
        let n = client
            .read(&mut chunk[..room])
            .await
            .map_err(|source| SniffError::Io { port, source })?;
        if n == 0 {
            return Err(SniffError::Closed { what, port });
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

const TLS_HANDSHAKE: u8 = 0x16;
const CLIENT_HELLO: u8 = 0x01;

/// Reads whole TLS records until the ClientHello handshake message is complete (it may be
/// fragmented over several records), then parses it. Returns the SNI host name.
async fn read_client_hello<R: AsyncRead + Unpin>(
    client: &mut R,
    port: u16,
    limit: usize,
    buf: &mut Vec<u8>,
) -> Result<Option<String>, SniffError> {
    const WHAT: &str = "TLS ClientHello";
    let bad = |reason: &str| SniffError::Malformed {
        port,
        reason: reason.to_owned(),
    };
    // The handshake message, reassembled from the record fragments.
    let mut handshake = Vec::new();
    loop {
        let start = buf.len();
        fill(client, buf, start + 5, limit, WHAT, port).await?;
        let header = &buf[start..start + 5];
        // Anything but a handshake record (plain HTTP, SSH, a TLS alert) on an HTTPS port is
        // refused: tunnelling another protocol through 443 would skip the name check.
        if header[0] != TLS_HANDSHAKE || header[1] != 3 {
            return Err(bad("the connection does not start with a TLS handshake"));
        }
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        // RFC 8446 §5.1: a plaintext fragment is at most 2^14 bytes and never empty.
        if len == 0 || len > 16384 {
            return Err(bad("a TLS record has an invalid length"));
        }
        fill(client, buf, start + 5 + len, limit, WHAT, port).await?;
        handshake.extend_from_slice(&buf[start + 5..start + 5 + len]);
        if handshake.len() >= 4 {
            if handshake[0] != CLIENT_HELLO {
                return Err(bad("the first TLS handshake message is not a ClientHello"));
            }
            let body = usize::from(handshake[1]) << 16
                | usize::from(handshake[2]) << 8
                | usize::from(handshake[3]);
            if body + 4 > limit {
                return Err(SniffError::TooLarge {
                    what: WHAT,
                    port,
                    limit,
                });
            }
            if handshake.len() >= body + 4 {
                handshake.truncate(body + 4);
                break;
            }
        }
    }
    client_hello_sni(&handshake).map_err(|reason| SniffError::Malformed { port, reason })
}

/// The SNI host name of a complete ClientHello handshake message; `Ok(None)` when it has no
/// SNI extension.
fn client_hello_sni(handshake: &[u8]) -> Result<Option<String>, String> {
    use tls_parser::{TlsExtension, TlsMessage, TlsMessageHandshake};
    let (_, message) = tls_parser::parse_tls_message_handshake(handshake)
        .map_err(|_| "the TLS ClientHello cannot be parsed".to_owned())?;
    let TlsMessage::Handshake(TlsMessageHandshake::ClientHello(hello)) = message else {
        return Err("the first TLS handshake message is not a ClientHello".to_owned());
    };
    let Some(ext) = hello.ext else {
        return Ok(None);
    };
    let (_, extensions) = tls_parser::parse_tls_client_hello_extensions(ext)
        .map_err(|_| "the TLS ClientHello extensions cannot be parsed".to_owned())?;
    let mut found: Option<String> = None;
    for extension in &extensions {
        let TlsExtension::SNI(names) = extension else {
            continue;
        };
        for (kind, name) in names {
            if kind.0 != 0 {
                continue;
            }
            let name = std::str::from_utf8(name)
                .ok()
                .and_then(normalize_host)
                .ok_or_else(|| "the TLS SNI is not a valid host name".to_owned())?;
            // Two server names (two SNI extensions, or two host_name entries) could be read
            // differently by the proxy and the server: refuse the ambiguity.
            if found.as_ref().is_some_and(|f| *f != name) {
                return Err("the TLS ClientHello names two different servers".to_owned());
            }
            found = Some(name);
        }
    }
    Ok(found)
}

/// Reads an HTTP/1.x request head and returns its `Host`.
async fn read_http_head<R: AsyncRead + Unpin>(
    client: &mut R,
    port: u16,
    limit: usize,
    buf: &mut Vec<u8>,
) -> Result<Option<String>, SniffError> {
    const WHAT: &str = "request head";
    loop {
        let want = buf.len() + 1;
        // Read whatever is there (at least one byte), then try to parse.
        let mut chunk = [0u8; 4096];
        if want > limit {
            return Err(SniffError::TooLarge {
                what: WHAT,
                port,
                limit,
            });
        }
        let room = (limit - buf.len()).min(chunk.len());
        let n = client
            .read(&mut chunk[..room])
            .await
            .map_err(|source| SniffError::Io { port, source })?;
        if n == 0 {
            return Err(SniffError::Closed { what: WHAT, port });
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 100];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(buf) {
            Ok(httparse::Status::Complete(_)) => {
                return http_host(&request).map_err(|reason| SniffError::Malformed { port, reason })
            }
            Ok(httparse::Status::Partial) => {}
            Err(e) => {
                return Err(SniffError::Malformed {
                    port,
                    reason: format!("the HTTP request head is malformed ({e})"),
                })
            }
        }
    }
}

/// The host a request names: its `Host`, or the authority of an absolute-form target (which
/// must then agree with `Host`). `Ok(None)` when it names none.
pub(crate) fn http_host(request: &httparse::Request<'_, '_>) -> Result<Option<String>, String> {
    let mut host: Option<String> = None;
    for header in request.headers.iter() {
        if !header.name.eq_ignore_ascii_case("host") {
            continue;
        }
        // Two Host headers (CVE-2016-10033-style request confusion): the proxy and the server
        // could each pick a different one. RFC 9112 §3.2 requires a 400; we refuse.
        if host.is_some() {
            return Err("the HTTP request has more than one Host header".to_owned());
        }
        let name = std::str::from_utf8(header.value)
            .ok()
            .and_then(normalize_host)
            .ok_or_else(|| "the HTTP Host header is not a valid host name".to_owned())?;
        host = Some(name);
    }
    // An absolute-form target (`GET http://other/ HTTP/1.1`) overrides Host at the server
    // (RFC 9112 §3.2.2): a request naming an allowed Host but another authority in the URI
    // would be judged by one and served by the other. Refuse when they differ.
    if let Some(path) = request.path {
        let lower = path.to_ascii_lowercase();
        if let Some(rest) = lower
            .strip_prefix("http://")
            .or_else(|| lower.strip_prefix("https://"))
        {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
            let authority = authority.rsplit('@').next().unwrap_or("");
            let uri_host = normalize_host(authority)
                .ok_or_else(|| "the HTTP request URI names an invalid host".to_owned())?;
            match &host {
                Some(h) if *h != uri_host => {
                    return Err("the HTTP request URI and Host header name different hosts".into())
                }
                Some(_) => {}
                None => host = Some(uri_host),
            }
        }
    }
    Ok(host)
}

/// Validates and normalises a host name as read from SNI or `Host`: strips a port and a
/// trailing dot, lowercases; accepts DNS names (letters, digits, `-`, `_`, labels of 1 to 63
/// characters, 253 in all) and IP literals (IPv6 in brackets when a port follows). `None` for
/// anything else.
#[must_use]
pub fn normalize_host(raw: &str) -> Option<String> {
    let raw = raw.trim_matches([' ', '\t']);
    // `[v6]` or `[v6]:port`.
    if let Some(rest) = raw.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || valid_port(after.strip_prefix(':')?)) {
            return None;
        }
        return inside.parse::<Ipv6Addr>().ok().map(|ip| ip.to_string());
    }
    // A bare IPv6 literal (SNI never carries one, but a Host may in broken clients).
    if let Ok(ip) = raw.parse::<IpAddr>() {
        return Some(ip.to_string());
    }
    let name = match raw.rsplit_once(':') {
        Some((name, port)) if valid_port(port) => name,
        Some(_) => return None,
        None => raw,
    };
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Some(ip.to_string());
    }
    // Only DNS syntax: no NUL, spaces, `/`, `@` or `%` that a resolver, a PAC's string
    // functions and the upstream could each read differently.
    let valid_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(valid_label) {
        return None;
    }
    Some(name)
}

fn valid_port(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 5
        && p.bytes().all(|b| b.is_ascii_digit())
        && p.parse::<u16>().is_ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal TLS 1.2/1.3-style ClientHello record carrying `names` as SNI host names.
    pub(crate) fn client_hello(names: &[&str]) -> Vec<u8> {
        let mut ext = Vec::new();
        if !names.is_empty() {
            let mut list = Vec::new();
            for n in names {
                list.push(0u8);
                list.extend_from_slice(&u16::try_from(n.len()).unwrap().to_be_bytes());
                list.extend_from_slice(n.as_bytes());
            }
            let mut sni = Vec::new();
            sni.extend_from_slice(&u16::try_from(list.len()).unwrap().to_be_bytes());
            sni.extend_from_slice(&list);
            ext.extend_from_slice(&[0, 0]);
            ext.extend_from_slice(&u16::try_from(sni.len()).unwrap().to_be_bytes());
            ext.extend_from_slice(&sni);
        }
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7u8; 32]);
        body.push(0); // session id
        body.extend_from_slice(&[0, 2, 0x13, 0x01]); // one cipher
        body.extend_from_slice(&[1, 0]); // null compression
        body.extend_from_slice(&u16::try_from(ext.len()).unwrap().to_be_bytes());
        body.extend_from_slice(&ext);
        let mut hs = vec![CLIENT_HELLO];
        hs.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes()[1..]);
        hs.extend_from_slice(&body);
        let mut rec = vec![TLS_HANDSHAKE, 3, 1];
        rec.extend_from_slice(&u16::try_from(hs.len()).unwrap().to_be_bytes());
        rec.extend_from_slice(&hs);
        rec
    }

    fn run(bytes: &[u8], port: u16) -> Result<Sniffed, SniffError> {
        let cfg = SniffConfig {
            timeout: Duration::from_millis(300),
            ..SniffConfig::default()
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (mut a, mut b) = tokio::io::duplex(65536);
            tokio::io::AsyncWriteExt::write_all(&mut a, bytes)
                .await
                .unwrap();
            // Keep `a` open: a client that stops sending must time out, not read as closed.
            let r = sniff(&mut b, port, &cfg).await;
            drop(a);
            r
        })
    }

    #[test]
    fn sni_is_read_and_the_record_replayed() {
        let hello = client_hello(&["Allowed.Example."]);
        let s = run(&hello, 443).unwrap();
        assert_eq!(s.host.as_deref(), Some("allowed.example"));
        assert_eq!(s.scheme, Scheme::Https);
        assert_eq!(s.bytes, hello);
    }

    #[test]
    fn a_client_hello_fragmented_over_two_records_is_reassembled() {
        let hello = client_hello(&["a.example"]);
        let hs = &hello[5..];
        let (one, two) = hs.split_at(20);
        let mut bytes = Vec::new();
        for part in [one, two] {
            bytes.extend_from_slice(&[0x16, 3, 1]);
            bytes.extend_from_slice(&u16::try_from(part.len()).unwrap().to_be_bytes());
            bytes.extend_from_slice(part);
        }
        let s = run(&bytes, 443).unwrap();
        assert_eq!(s.host.as_deref(), Some("a.example"));
        assert_eq!(s.bytes, bytes);
    }

    #[test]
    fn no_sni_is_other_and_bad_sni_is_refused() {
        let s = run(&client_hello(&[]), 443).unwrap();
        assert_eq!((s.host, s.scheme), (None, Scheme::Other));
        assert!(run(&client_hello(&["bad name"]), 443).is_err());
        assert!(run(&client_hello(&["a.example", "b.example"]), 443).is_err());
        assert!(run(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 443).is_err());
        // Half a ClientHello then silence: a timeout, not a hang.
        let hello = client_hello(&["a.example"]);
        assert!(matches!(
            run(&hello[..30], 443),
            Err(SniffError::Timeout { .. })
        ));
    }

    #[test]
    fn host_header_rules() {
        let s = run(b"GET / HTTP/1.1\r\nHost: WWW.a.example:8080\r\n\r\n", 80).unwrap();
        assert_eq!(s.host.as_deref(), Some("www.a.example"));
        assert_eq!(s.scheme, Scheme::Http);
        let s = run(b"GET / HTTP/1.0\r\n\r\n", 80).unwrap();
        assert_eq!((s.host, s.scheme), (None, Scheme::Other));
        assert!(run(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 80).is_err());
        assert!(run(b"GET http://b/ HTTP/1.1\r\nHost: a\r\n\r\n", 80).is_err());
        assert!(run(b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 80).is_err());
        assert!(run(b"\x16\x03\x01\x00\x05hello", 80).is_err());
        assert!(matches!(
            run(b"GET / HTTP/1.1\r\n", 80),
            Err(SniffError::Timeout { .. })
        ));
        let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000));
        assert!(matches!(
            run(huge.as_bytes(), 80),
            Err(SniffError::TooLarge { .. })
        ));
    }

    #[test]
    fn other_ports_are_not_read() {
        let s = run(b"", 22).unwrap();
        assert_eq!((s.host, s.scheme, s.bytes.len()), (None, Scheme::Other, 0));
    }

    #[test]
    fn host_names_are_normalised() {
        assert_eq!(normalize_host("A.B.").as_deref(), Some("a.b"));
        assert_eq!(normalize_host("[::1]:80").as_deref(), Some("::1"));
        assert_eq!(normalize_host("10.0.0.1:443").as_deref(), Some("10.0.0.1"));
        assert_eq!(normalize_host("a-b_c.d").as_deref(), Some("a-b_c.d"));
        for bad in [
            "", "a..b", "-a.b", "a b", "a@b", "a:99999", "a:x", "a\0b", "[::1", ".",
        ] {
            assert_eq!(normalize_host(bad), None, "{bad:?}");
        }
    }
}
