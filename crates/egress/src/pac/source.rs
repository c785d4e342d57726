//! Where a PAC script comes from: `embeddedPac`, a local file, or an `http://` URL.
//!
//! Hardening:
//! - Every source is size-limited ([`PacOptions::max_size`](super::PacOptions), 1 MiB by
//!   default) so a huge or endless file cannot exhaust memory before the sandbox's own limit
//!   applies.
//! - The fetch has one overall deadline covering connect, send and every read: a server that
//!   trickles bytes (slowloris) cannot hold the loader past it.
//! - Redirects are not followed (the policy names one URL; following one could lead the fetch
//!   anywhere) and only `200 OK` is accepted.
//! - The request is HTTP/1.0 with `Connection: close`, so the body is never chunked and ends at
//!   the end of the stream; a `Content-Length` that disagrees with what arrived is an error.
//! - `https://` is refused with the fix named: TLS would need a client and a trust store that this
//!   crate does not carry. A PAC over plain HTTP can be altered on the path, so the docs
//!   recommend `embeddedPac` or a file.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use super::Resolver;
use crate::target::DecideError;

/// Where the script is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PacSource {
    /// The script itself (`embeddedPac`).
    Embedded(String),
    /// A local file (`pac` as an absolute path or a `file://` URL).
    File(std::path::PathBuf),
    /// An `http://` URL, fetched once per load.
    Http(String),
}

impl PacSource {
    /// Interprets the policy's `pac` value.
    ///
    /// # Errors
    /// [`DecideError::PacUnavailable`] for `https://`, other schemes and relative paths.
    pub fn from_pac_setting(pac: &str) -> Result<Self, DecideError> {
        let pac = pac.trim();
        let lower = pac.to_ascii_lowercase();
        if lower.starts_with("http://") {
            Ok(Self::Http(pac.to_owned()))
        } else if lower.starts_with("https://") {
            Err(DecideError::PacUnavailable(format!(
                "{pac}: https PAC URLs are not supported; serve the file over http, copy it to a \
                 local path (`pac: \"/etc/stockade/proxy.pac\"`) or put it in `embeddedPac`"
            )))
        } else if lower.starts_with("file://") {
            // `file:///etc/x.pac` and `file://localhost/etc/x.pac`; no other host.
            let rest = &pac["file://".len()..];
            let path = rest.strip_prefix("localhost").unwrap_or(rest);
            if path.starts_with('/') {
                Ok(Self::File(path.into()))
            } else {
                Err(DecideError::PacUnavailable(format!(
                    "{pac}: a file URL must name an absolute local path, e.g. file:///etc/proxy.pac"
                )))
            }
        } else if pac.starts_with('/') {
            Ok(Self::File(pac.into()))
        } else {
            Err(DecideError::PacUnavailable(format!(
                "{pac}: not an http:// URL, a file:// URL or an absolute path; fix containersProxy.pac"
            )))
        }
    }

    /// A short description for logs (the URL or path; never the script).
    pub fn describe(&self) -> String {
        match self {
            Self::Embedded(_) => "embeddedPac".to_owned(),
            Self::File(p) => p.display().to_string(),
            Self::Http(u) => u.clone(),
        }
    }

    /// Reads or fetches the script.
    ///
    /// # Errors
    /// [`DecideError::PacUnavailable`] naming the source and what went wrong.
    pub fn load(
        &self,
        max_size: usize,
        timeout: Duration,
        resolver: &dyn Resolver,
    ) -> Result<String, DecideError> {
        let fail = |msg: String| DecideError::PacUnavailable(format!("{}: {msg}", self.describe()));
        let text = match self {
            Self::Embedded(s) => {
                if s.len() > max_size {
                    return Err(fail(format!("larger than {max_size} bytes")));
                }
                return Ok(s.clone());
            }
            Self::File(path) => read_file(path, max_size).map_err(fail)?,
            Self::Http(url) => http_get(url, max_size, timeout, resolver).map_err(fail)?,
        };
        String::from_utf8(text).map_err(|_| fail("not UTF-8 text".to_owned()))
    }
}

fn read_file(path: &Path, max_size: usize) -> Result<Vec<u8>, String> {
    let file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let mut buf = Vec::new();
    // One byte more than allowed tells "exactly the limit" from "over it".
    file.take(limit_plus_one(max_size))
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read: {e}"))?;
    if buf.len() > max_size {
        return Err(format!("larger than {max_size} bytes"));
    }
    Ok(buf)
}

fn limit_plus_one(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX).saturating_add(1)
}

/// Splits `http://host[:port][/path]` into the authority, the address to dial and the path.
fn split_url(url: &str) -> Result<(String, String, u16, String), String> {
    let rest = url
        .get("http://".len()..)
        .ok_or_else(|| "not an http URL".to_owned())?;
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let path = path.split('#').next().unwrap_or("/");
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    if authority.contains('@') {
        return Err("credentials in the PAC URL are not supported".to_owned());
    }
    let (host, port) = super::result::host_port(authority, 80)
        .ok_or_else(|| format!("bad host or port {authority:?}"))?;
    if path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err("the path has spaces or control characters".to_owned());
    }
    Ok((authority.to_owned(), host, port, path))
}

fn http_get(
    url: &str,
    max_size: usize,
    timeout: Duration,
    resolver: &dyn Resolver,
) -> Result<Vec<u8>, String> {
    const MAX_HEAD: usize = 16 * 1024;
    let deadline = Instant::now() + timeout;
    let remaining = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| format!("no complete answer within {timeout:?}"))
    };
    let (authority, host, port, path) = split_url(url)?;
    // The resolver is bounded by the time left: a dead DNS server cannot hold the load.
    let addrs: Vec<SocketAddr> = resolver
        .resolve(&host, remaining()?)
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect();
    let mut stream = None;
    let mut last_err = format!("{host} has no address");
    for addr in addrs.iter().take(4) {
        match TcpStream::connect_timeout(addr, remaining()?) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_err = format!("cannot connect to {addr}: {e}"),
        }
    }
    let mut stream = stream.ok_or(last_err)?;
    stream
        .set_write_timeout(Some(remaining()?))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {authority}\r\nUser-Agent: stockade-egress\r\n\
         Accept: application/x-ns-proxy-autoconfig, */*\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("cannot send the request: {e}"))?;
    let cap = max_size.saturating_add(MAX_HEAD);
    let mut buf = Vec::with_capacity(8 * 1024);
    let mut chunk = [0u8; 8 * 1024];
    loop {
        stream
            .set_read_timeout(Some(remaining()?))
            .map_err(|e| e.to_string())?;
        let n = match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(format!("no complete answer within {timeout:?}"));
            }
            Err(e) => return Err(format!("cannot read the answer: {e}")),
        };
        if buf.len() + n > cap {
            return Err(format!("larger than {max_size} bytes"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(&buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err("the answer ended inside its head".into()),
        Err(e) => return Err(format!("not an HTTP answer: {e}")),
    };
    let code = response.code.unwrap_or(0);
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_owned())
    };
    if (300..400).contains(&code) {
        return Err(format!(
            "answered {code} redirecting to {}; redirects are not followed, put the final URL in the policy",
            header("location").unwrap_or_default()
        ));
    }
    if code != 200 {
        return Err(format!("answered {code}, not 200"));
    }
    if header("transfer-encoding").is_some() {
        return Err("chunked answer to an HTTP/1.0 request".into());
    }
    let body = &buf[head_len..];
    if body.len() > max_size {
        return Err(format!("larger than {max_size} bytes"));
    }
    if let Some(len) = header("content-length") {
        if len.parse::<usize>().ok() != Some(body.len()) {
            return Err(format!(
                "Content-Length {len} but {} bytes arrived (truncated?)",
                body.len()
            ));
        }
    }
    Ok(body.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings() {
        assert_eq!(
            PacSource::from_pac_setting("http://h:8080/p.pac").unwrap(),
            PacSource::Http("http://h:8080/p.pac".into())
        );
        assert_eq!(
            PacSource::from_pac_setting("/etc/p.pac").unwrap(),
            PacSource::File("/etc/p.pac".into())
        );
        assert_eq!(
            PacSource::from_pac_setting("file:///etc/p.pac").unwrap(),
            PacSource::File("/etc/p.pac".into())
        );
        assert_eq!(
            PacSource::from_pac_setting("file://localhost/etc/p.pac").unwrap(),
            PacSource::File("/etc/p.pac".into())
        );
        let err = PacSource::from_pac_setting("https://h/p.pac").unwrap_err();
        assert!(err.to_string().contains("embeddedPac"), "{err}");
        assert!(PacSource::from_pac_setting("p.pac").is_err());
        assert!(PacSource::from_pac_setting("file://server/p.pac").is_err());
        assert!(PacSource::from_pac_setting("ftp://h/p.pac").is_err());
    }

    #[test]
    fn urls() {
        assert_eq!(
            split_url("http://h:8080/a/p.pac?x=1#f").unwrap(),
            ("h:8080".into(), "h".into(), 8080, "/a/p.pac?x=1".into())
        );
        assert_eq!(
            split_url("http://h").unwrap(),
            ("h".into(), "h".into(), 80, "/".into())
        );
        assert_eq!(split_url("http://[::1]:81/x").unwrap().1, "::1");
        assert!(split_url("http://u:p@h/x").is_err());
        assert!(split_url("http://h/a b").is_err());
        assert!(split_url("http://h:99999/").is_err());
    }

    #[test]
    fn file_limits() {
        let none = super::super::StaticResolver::default();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.pac");
        std::fs::write(&path, "x".repeat(100)).unwrap();
        let src = PacSource::File(path.clone());
        assert_eq!(
            src.load(100, Duration::from_secs(1), &none).unwrap().len(),
            100
        );
        let err = src.load(99, Duration::from_secs(1), &none).unwrap_err();
        assert!(err.to_string().contains("larger than 99 bytes"), "{err}");
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        assert!(src.load(100, Duration::from_secs(1), &none).is_err());
        let missing = PacSource::File(dir.path().join("missing.pac"));
        let err = missing
            .load(100, Duration::from_secs(1), &none)
            .unwrap_err();
        assert!(
            err.to_string().contains("missing.pac: cannot open"),
            "{err}"
        );
    }
}
