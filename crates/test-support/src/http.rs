//! Raw HTTP/1.1 over a unix socket, for status and body checks the CLI cannot make (denied routes,
//! malformed requests). Deliberately simple: one request per connection, `Connection: close`.

use crate::{Result, RigError};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// A parsed answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// Header lines as (lowercase name, value).
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked when chunked.
    pub body: Vec<u8>,
}

impl Answer {
    /// The body parsed as JSON (`Null` when it is not JSON).
    #[must_use]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The `message` of a Docker-style error body.
    #[must_use]
    pub fn message(&self) -> String {
        self.json()["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

fn io(socket: &Path, e: &std::io::Error) -> RigError {
    RigError::Command {
        command: format!("HTTP to {}", socket.display()),
        detail: e.to_string(),
    }
}

/// Sends one request and reads the whole answer (the server closes after it).
///
/// # Errors
/// [`RigError::Command`] on connection failures or an unparsable answer.
pub fn request(
    socket: &Path,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Answer> {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n");
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || matches!(method, "POST" | "PUT") {
        raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    raw.push_str("\r\n");
    let mut bytes = raw.into_bytes();
    bytes.extend_from_slice(body);
    let answer = exchange(socket, &bytes, Duration::from_secs(30))?;
    parse(&answer).ok_or_else(|| RigError::Command {
        command: format!("{method} {path} on {}", socket.display()),
        detail: format!(
            "unparsable answer: {:?}",
            String::from_utf8_lossy(&answer[..answer.len().min(500)])
        ),
    })
}

/// Writes `bytes` as they are and reads until the server closes or `limit` passes.
///
/// # Errors
/// [`RigError::Command`] when the socket cannot be reached.
pub fn exchange(socket: &Path, bytes: &[u8], limit: Duration) -> Result<Vec<u8>> {
    let mut stream = UnixStream::connect(socket).map_err(|e| io(socket, &e))?;
    stream
        .set_read_timeout(Some(limit))
        .map_err(|e| io(socket, &e))?;
    stream.write_all(bytes).map_err(|e| io(socket, &e))?;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    Ok(answer)
}

/// Parses a complete HTTP/1.x answer.
#[must_use]
pub fn parse(raw: &[u8]) -> Option<Answer> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Some(Answer {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chunked_and_plain() {
        let a = parse(b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n").unwrap();
        assert_eq!(a.status, 403);
        assert_eq!(a.body, b"{\"a\":1}");
        let b = parse(b"HTTP/1.0 200 OK\r\n\r\nraw").unwrap();
        assert_eq!(b.body, b"raw");
        assert!(parse(b"garbage").is_none());
    }
}
