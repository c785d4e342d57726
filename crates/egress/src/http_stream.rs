//! The request stream of a plain-HTTP connection (the HTTP ports, DESIGN.md §6), read as an
//! HTTP/1.1 server reads it, so that every request on a kept-alive connection is held to the
//! name the connection was decided for, not only the first.
//!
//! Without it a container could send a first request with an allowed `Host`, be connected to
//! that host's server, then send a second request on the same connection naming another host:
//! a shared front end (a CDN, a virtual-hosting load balancer) routes by `Host`, so the second
//! request would reach a host the policy never judged (domain fronting).
//!
//! [`RequestStream`] is a parser without I/O: it is handed the bytes the client sent, in order,
//! and answers how many of them may be forwarded. A request head is only ever passed on whole
//! and checked; a body is passed on as it arrives, framed by `Content-Length` or `chunked`
//! exactly as RFC 9112 §6 frames it, so the parser always knows where the next head starts.
//!
//! # Fail closed
//! Everything the parser cannot frame with certainty ends the connection: a head httparse
//! rejects, a bare LF as a line end, a head over the size limit, `CONNECT`, an `Upgrade`
//! header (the stream would turn into a tunnel the proxy cannot read), both `Content-Length`
//! and `Transfer-Encoding` (the classic request smuggling ambiguity, RFC 9112 §6.3), more than
//! one `Content-Length`, a transfer coding other than a lone `chunked`, a malformed chunk, and a
//! request naming another host than the decided one (or naming one when the connection was
//! decided by its IP, or none when it was decided by a name).
//!
//! # Limits
//! The parser frames requests as RFC 9112 does. A server that frames them otherwise (one that
//! ignores `Content-Length` on a `GET`, say) could read a second request out of what the parser
//! took for a body; such a server is already open to request smuggling by any client.
//!
//! ```
//! use stockade_egress::http_stream::RequestStream;
//!
//! let mut requests = RequestStream::new(Some("a.example".into()), 16 * 1024);
//! let two = b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\nGET / HTTP/1.1\r\nHost: b.example\r\n\r\n";
//! // The first request may be forwarded; the second names another host.
//! assert_eq!(requests.advance(two).unwrap(), 35);
//! assert!(requests.advance(&two[35..]).is_err());
//! ```

use crate::sniff::http_host;

/// Longest chunk-size line (with its extensions) accepted.
const MAX_CHUNK_LINE: usize = 4096;
/// Most header fields in a request head or trailer section (as the sniffer allows).
const MAX_HEADERS: usize = 100;

/// Why the connection is cut.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// A request names another host than the one the connection was decided for.
    #[error("request {request} on the connection names {} but the connection was decided for {}; connection cut", show(.asked), show(.decided))]
    OtherHost {
        /// Which request of the connection (1 is the first).
        request: u64,
        /// The name the connection was decided for (`None`: decided by its IP).
        decided: Option<String>,
        /// The name the request carries.
        asked: Option<String>,
    },
    /// The request cannot be framed with certainty, or would turn the stream into a tunnel.
    #[error("request {request} on the connection: {reason}; connection cut")]
    Refused {
        /// Which request of the connection (1 is the first).
        request: u64,
        /// What is wrong.
        reason: String,
    },
}

fn show(host: &Option<String>) -> String {
    host.as_deref()
        .map_or_else(|| "no host (its IP)".to_owned(), str::to_owned)
}

impl RequestError {
    /// The host the refused request named, when it named one.
    #[must_use]
    pub fn asked(&self) -> Option<&str> {
        match self {
            Self::OtherHost { asked, .. } => asked.as_deref(),
            Self::Refused { .. } => None,
        }
    }
}

/// Where in the stream the parser is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting a request head (empty lines before it are allowed, as RFC 9112 §2.2 says).
    Head,
    /// Inside a body of known length: this many bytes remain.
    Body(u64),
    /// Expecting a chunk-size line.
    ChunkSize,
    /// Inside a chunk: this many data bytes remain.
    ChunkData(u64),
    /// Expecting the CRLF that ends a chunk's data.
    ChunkEnd,
    /// After the last chunk: expecting the trailer section and its empty line.
    Trailers,
}

/// The client-to-server half of a plain-HTTP connection, as a parser (see the module docs).
#[derive(Debug, Clone)]
pub struct RequestStream {
    decided: Option<String>,
    max_head: usize,
    state: State,
    /// Requests whose head has been read so far.
    requests: u64,
}

impl RequestStream {
    /// A parser for a connection decided for `decided` (the name from the first request's
    /// `Host`, `None` when it was decided by its IP). Heads and trailer sections longer than
    /// `max_head` bytes are refused.
    #[must_use]
    pub fn new(decided: Option<String>, max_head: usize) -> Self {
        Self {
            decided,
            max_head,
            state: State::Head,
            requests: 0,
        }
    }

    /// How many bytes at the start of `buf` (the bytes the client sent next, of which none
    /// has been given before) may be forwarded now. `0` means more bytes are needed: the
    /// caller keeps `buf` and calls again with more appended. Call again after a non-zero
    /// answer with the rest: one call moves at most one step (a head, a piece of body, a
    /// chunk line).
    ///
    /// # Errors
    /// [`RequestError`] when the stream must be cut; nothing from `buf` may then be forwarded.
    pub fn advance(&mut self, buf: &[u8]) -> Result<usize, RequestError> {
        if buf.is_empty() {
            return Ok(0);
        }
        match self.state {
            State::Head => self.head(buf),
            State::Body(left) | State::ChunkData(left) => {
                let n = take(left, buf.len());
                self.consumed_body(n);
                Ok(n)
            }
            State::ChunkSize => self.chunk_size(buf),
            State::ChunkEnd => match buf {
                [b'\r'] => Ok(0),
                [b'\r', b'\n', ..] => {
                    self.state = State::ChunkSize;
                    Ok(2)
                }
                _ => Err(self.refused("a chunk's data is not followed by CRLF")),
            },
            State::Trailers => self.trailers(buf),
        }
    }

    /// [`Self::advance`] until it needs more bytes or `buf` is used up: how many bytes of
    /// `buf` may be forwarded.
    ///
    /// # Errors
    /// As [`Self::advance`]; then nothing of `buf` may be forwarded (the bytes before the
    /// failing step were valid, but the connection is cut anyway).
    pub fn advance_all(&mut self, buf: &[u8]) -> Result<usize, RequestError> {
        let mut done = 0;
        while done < buf.len() {
            let n = self.advance(&buf[done..])?;
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(done)
    }

    /// Inside a body (or a chunk's data): how many bytes of it remain. The caller may move
    /// that many bytes without looking at them (by `splice`), then report them with
    /// [`Self::consumed_body`].
    #[must_use]
    pub fn body_remaining(&self) -> Option<u64> {
        match self.state {
            State::Body(left) | State::ChunkData(left) => Some(left),
            _ => None,
        }
    }

    /// Records `n` body bytes moved by the caller (at most [`Self::body_remaining`]).
    pub fn consumed_body(&mut self, n: usize) {
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        self.state = match self.state {
            State::Body(left) if left <= n => State::Head,
            State::Body(left) => State::Body(left - n),
            State::ChunkData(left) if left <= n => State::ChunkEnd,
            State::ChunkData(left) => State::ChunkData(left - n),
            other => other,
        };
    }

    /// How many request heads have been read.
    #[must_use]
    pub fn requests(&self) -> u64 {
        self.requests
    }

    fn refused(&self, reason: &str) -> RequestError {
        RequestError::Refused {
            request: self.requests.max(1),
            reason: reason.to_owned(),
        }
    }

    fn head(&mut self, buf: &[u8]) -> Result<usize, RequestError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        let parsed = request.parse(buf);
        // Numbered from here on: errors below are about this request.
        let number = self.requests + 1;
        let refuse = |reason: String| RequestError::Refused {
            request: number,
            reason,
        };
        let len = match parsed {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => {
                if bare_lf(buf) {
                    return Err(refuse(
                        "a line of the request head ends in a bare LF".into(),
                    ));
                }
                if buf.len() >= self.max_head {
                    return Err(refuse(format!(
                        "the request head is larger than {} bytes",
                        self.max_head
                    )));
                }
                return Ok(0);
            }
            Err(e) => return Err(refuse(format!("the request head is malformed ({e})"))),
        };
        if len > self.max_head {
            return Err(refuse(format!(
                "the request head is larger than {} bytes",
                self.max_head
            )));
        }
        // httparse takes a lone LF as a line end; a server that does not would read the
        // head differently (one header line where we see two). Only CRLF is accepted.
        if bare_lf(&buf[..len]) {
            return Err(refuse(
                "a line of the request head ends in a bare LF".into(),
            ));
        }
        self.requests = number;
        if request.method == Some("CONNECT") {
            return Err(refuse(
                "CONNECT would open a tunnel the proxy cannot read".into(),
            ));
        }
        let asked = http_host(&request).map_err(refuse)?;
        if asked != self.decided {
            return Err(RequestError::OtherHost {
                request: number,
                decided: self.decided.clone(),
                asked,
            });
        }
        self.state = framing(&request).map_err(refuse)?;
        Ok(len)
    }

    fn chunk_size(&mut self, buf: &[u8]) -> Result<usize, RequestError> {
        let Some(lf) = buf.iter().take(MAX_CHUNK_LINE).position(|b| *b == b'\n') else {
            if buf.len() >= MAX_CHUNK_LINE {
                return Err(self.refused("a chunk-size line is too long"));
            }
            return Ok(0);
        };
        let line = &buf[..lf];
        let Some(line) = line.strip_suffix(b"\r") else {
            return Err(self.refused("a chunk-size line ends in a bare LF"));
        };
        let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        if digits == 0 || digits > 16 {
            return Err(self.refused("a chunk size is not 1 to 16 hex digits"));
        }
        let size = std::str::from_utf8(&line[..digits])
            .ok()
            .and_then(|d| u64::from_str_radix(d, 16).ok())
            .ok_or_else(|| self.refused("a chunk size is not a number"))?;
        // chunk-ext (RFC 9112 §7.1.1): BWS ";" ... ; only visible characters, spaces and tabs.
        let ext = &line[digits..];
        let ext_start = ext.iter().position(|b| *b != b' ' && *b != b'\t');
        if let Some(start) = ext_start {
            let valid = ext[start] == b';'
                && ext[start..]
                    .iter()
                    .all(|b| *b == b'\t' || (b' '..=b'~').contains(b) || *b >= 0x80);
            if !valid {
                return Err(self.refused("a chunk-size line has invalid extensions"));
            }
        } else if !ext.is_empty() {
            // Whitespace after the size with no extension: servers disagree on it.
            return Err(self.refused("a chunk size is followed by whitespace"));
        }
        self.state = if size == 0 {
            State::Trailers
        } else {
            State::ChunkData(size)
        };
        Ok(lf + 1)
    }

    fn trailers(&mut self, buf: &[u8]) -> Result<usize, RequestError> {
        match buf {
            [b'\r'] => return Ok(0),
            [b'\r', b'\n', ..] => {
                self.state = State::Head;
                return Ok(2);
            }
            _ => {}
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        match httparse::parse_headers(buf, &mut headers) {
            Ok(httparse::Status::Complete((len, _))) if !bare_lf(&buf[..len]) => {
                self.state = State::Head;
                Ok(len)
            }
            Ok(httparse::Status::Partial) if !bare_lf(buf) => {
                if buf.len() >= self.max_head {
                    return Err(self.refused("the trailer section is too large"));
                }
                Ok(0)
            }
            Ok(_) => Err(self.refused("a trailer line ends in a bare LF")),
            Err(e) => Err(self.refused(&format!("the trailer section is malformed ({e})"))),
        }
    }
}

fn take(left: u64, have: usize) -> usize {
    usize::try_from(left).map_or(have, |left| left.min(have))
}

/// Whether a LF in `bytes` is not preceded by CR.
fn bare_lf(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .enumerate()
        .any(|(i, b)| *b == b'\n' && (i == 0 || bytes[i - 1] != b'\r'))
}

/// How the body of `request` is framed (RFC 9112 §6.3, requests only), refusing every
/// ambiguity.
fn framing(request: &httparse::Request<'_, '_>) -> Result<State, String> {
    let mut length: Option<u64> = None;
    let mut chunked = false;
    for header in request.headers.iter() {
        let name = header.name;
        let value = trim(header.value);
        if name.eq_ignore_ascii_case("upgrade") {
            // websocket, h2c: after a 101 the stream is no longer HTTP/1.1.
            return Err("an Upgrade request would turn the connection into a tunnel".into());
        }
        if name.eq_ignore_ascii_case("content-length") {
            if length.is_some() {
                return Err("the request has more than one Content-Length".into());
            }
            if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
                return Err("the request's Content-Length is not a number".into());
            }
            length = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
            if length.is_none() {
                return Err("the request's Content-Length is not a number".into());
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // Only one `chunked` coding alone: `gzip, chunked`, `chunked, chunked`, two
            // headers, or `chunked` followed by more are refused, not interpreted.
            if chunked || !value.eq_ignore_ascii_case(b"chunked") {
                return Err("the request's Transfer-Encoding is not a single chunked".into());
            }
            chunked = true;
        }
    }
    match (length, chunked) {
        (Some(_), true) => Err("the request has both Content-Length and Transfer-Encoding".into()),
        (None, true) if request.version != Some(1) => {
            Err("an HTTP/1.0 request with Transfer-Encoding".into())
        }
        (None, true) => Ok(State::ChunkSize),
        (Some(0) | None, false) => Ok(State::Head),
        (Some(n), false) => Ok(State::Body(n)),
    }
}

fn trim(value: &[u8]) -> &[u8] {
    let start = value
        .iter()
        .position(|b| *b != b' ' && *b != b'\t')
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| *b != b' ' && *b != b'\t')
        .map_or(start, |e| e + 1);
    &value[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> RequestStream {
        RequestStream::new(Some("a.example".into()), 1024)
    }

    /// Feeds `bytes` in pieces of `step` bytes (as they might arrive), one step of the
    /// parser at a time, and returns how many bytes were let through before the end or the
    /// error.
    fn feed(s: &mut RequestStream, bytes: &[u8], step: usize) -> (usize, Option<RequestError>) {
        let mut held: Vec<u8> = Vec::new();
        let mut passed = 0;
        for piece in bytes.chunks(step) {
            held.extend_from_slice(piece);
            loop {
                match s.advance(&held) {
                    Ok(0) => break,
                    Ok(n) => {
                        passed += n;
                        held.drain(..n);
                    }
                    Err(e) => return (passed, Some(e)),
                }
            }
        }
        (passed, None)
    }

    fn all_steps(bytes: &[u8]) -> Vec<(usize, Option<RequestError>)> {
        [1, 2, 3, 7, 64, bytes.len().max(1)]
            .iter()
            .map(|step| feed(&mut stream(), bytes, *step))
            .collect()
    }

    /// Every way of cutting `bytes` into pieces lets exactly `passed` bytes through and
    /// ends with (or without) an error.
    fn check(bytes: &[u8], passed: usize, fails: bool) {
        for (n, err) in all_steps(bytes) {
            assert_eq!(
                (n, err.is_some()),
                (passed, fails),
                "{:?}: {err:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n";

    #[test]
    fn kept_alive_requests_for_the_same_host_pass() {
        let mut two = GET.to_vec();
        two.extend_from_slice(b"\r\nGET /2 HTTP/1.1\r\nhost: A.Example.:80\r\n\r\n");
        check(&two, two.len(), false);
        let mut s = stream();
        assert_eq!(s.advance_all(&two).unwrap(), two.len());
        assert_eq!(s.requests(), 2);
    }

    #[test]
    fn a_second_request_for_another_host_is_cut_before_it_passes() {
        let mut two = GET.to_vec();
        two.extend_from_slice(b"GET / HTTP/1.1\r\nHost: b.example\r\n\r\n");
        check(&two, GET.len(), true);
        let (_, err) = feed(&mut stream(), &two, two.len());
        assert_eq!(
            err,
            Some(RequestError::OtherHost {
                request: 2,
                decided: Some("a.example".into()),
                asked: Some("b.example".into()),
            })
        );
        // Named by the absolute URI, or by no Host at all.
        for second in [
            &b"GET http://b.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n",
        ] {
            let mut two = GET.to_vec();
            two.extend_from_slice(second);
            check(&two, GET.len(), true);
        }
        // Decided by the IP (no Host): a later request naming a host is cut too.
        let mut s = RequestStream::new(None, 1024);
        let mut two = b"GET / HTTP/1.0\r\n\r\n".to_vec();
        two.extend_from_slice(GET);
        assert_eq!(feed(&mut s, &two, 5).0, 18);
    }

    #[test]
    fn bodies_are_framed_by_content_length() {
        let mut bytes =
            b"POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 40\r\n\r\n".to_vec();
        // The body holds what looks like a request for another host: it is body, not a request.
        let body = b"GET / HTTP/1.1\r\nHost: b.example\r\n\r\n\r\n\r\nx";
        assert_eq!(body.len(), 40);
        bytes.extend_from_slice(body);
        bytes.extend_from_slice(GET);
        check(&bytes, bytes.len(), false);
        // ... and once the body ends, the next request is judged.
        let mut cut = bytes[..bytes.len() - GET.len()].to_vec();
        cut.extend_from_slice(b"GET / HTTP/1.1\r\nHost: b.example\r\n\r\n");
        check(&cut, bytes.len() - GET.len(), true);
        // Content-Length: 0 and no framing at all mean no body.
        let mut bytes = b"POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 0\r\n\r\n".to_vec();
        bytes.extend_from_slice(b"GET / HTTP/1.1\r\nHost: b.example\r\n\r\n");
        check(&bytes, bytes.len() - 35, true);
    }

    #[test]
    fn chunked_bodies_are_framed_by_their_chunks() {
        let mut bytes =
            b"POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: Chunked\r\n\r\n".to_vec();
        bytes.extend_from_slice(b"5;name=\"v\"\r\nhello\r\n1A\r\n");
        bytes.extend_from_slice(&[b'x'; 26]);
        bytes.extend_from_slice(b"\r\n0\r\nX-Trailer: 1\r\n\r\n");
        bytes.extend_from_slice(GET);
        check(&bytes, bytes.len(), false);
        // No trailers.
        let mut short =
            b"POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                .to_vec();
        let short_len = short.len();
        short.extend_from_slice(b"GET / HTTP/1.1\r\nHost: b.example\r\n\r\n");
        check(&short, short_len, true);
        // Malformed chunks.
        for bad in [
            &b"5\r\nhelloX\r\n"[..],
            b"5\nhello\r\n",
            b"0x5\r\nhello\r\n",
            b"+5\r\nhello\r\n",
            b"5 \r\nhello\r\n",
            b"5 x\r\nhello\r\n",
            b"5;a\x01\r\nhello\r\n",
            b"11111111111111111\r\n",
            b"0\r\nbad trailer\r\n\r\n",
            b"0\r\nX: 1\n\r\n",
        ] {
            let mut s = stream();
            let mut b = b"POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n"
                .to_vec();
            let head_len = b.len();
            b.extend_from_slice(bad);
            let (passed, err) = feed(&mut s, &b, b.len());
            assert!(err.is_some(), "{:?}", String::from_utf8_lossy(bad));
            assert!(passed >= head_len, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn ambiguous_framing_and_tunnels_are_cut() {
        for bad in [
            // CL.TE and TE.CL smuggling.
            &b"POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5, 5\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: +5\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 99999999999999999999\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: xchunked\r\n\r\n",
            b"POST / HTTP/1.0\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding : chunked\r\n\r\n",
            // Tunnels.
            b"CONNECT b.example:443 HTTP/1.1\r\nHost: a.example\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a.example\r\nupgrade: h2c\r\n\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            // Not HTTP/1.x, or not CRLF.
            b"GET / HTTP/1.1\nHost: a.example\n\n",
            b"GET / HTTP/1.1\r\nHost: a.example\nX: y\r\n\r\n",
            b"\x16\x03\x01\x00\x05hello",
            b"GET / HTTP/1.1\r\nHost: a.example\r\n folded\r\n\r\n",
        ] {
            let mut bytes = GET.to_vec();
            bytes.extend_from_slice(bad);
            check(&bytes, GET.len(), true);
        }
    }

    #[test]
    fn heads_are_bounded_and_errors_say_why() {
        let mut s = stream();
        let huge = format!(
            "GET / HTTP/1.1\r\nHost: a.example\r\nX: {}",
            "a".repeat(2000)
        );
        let err = s.advance_all(huge.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("larger than 1024 bytes"), "{err}");
        // Endless empty lines are bounded too.
        assert!(stream().advance_all(&b"\r\n".repeat(600)).is_err());
        let mut s = stream();
        assert_eq!(s.advance_all(GET).unwrap(), GET.len());
        let err = s
            .advance_all(b"GET / HTTP/1.1\r\nHost: b.example\r\n\r\n")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "request 2 on the connection names b.example but the connection was decided for a.example; connection cut"
        );
        assert_eq!(err.asked(), Some("b.example"));
    }

    #[test]
    fn a_body_can_be_moved_by_the_caller() {
        let mut s = stream();
        let head = b"PUT / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 1000000\r\n\r\n";
        assert_eq!(s.advance_all(head).unwrap(), head.len());
        assert_eq!(s.body_remaining(), Some(1_000_000));
        s.consumed_body(999_990);
        assert_eq!(s.advance_all(&[0; 4]).unwrap(), 4);
        assert_eq!(s.body_remaining(), Some(6));
        s.consumed_body(6);
        assert_eq!(s.body_remaining(), None);
        assert_eq!(s.advance_all(GET).unwrap(), GET.len());
        // A chunk's data too; then its CRLF is checked.
        let mut s = stream();
        let head =
            b"PUT / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n10000\r\n";
        assert_eq!(s.advance_all(head).unwrap(), head.len());
        assert_eq!(s.body_remaining(), Some(0x10000));
        s.consumed_body(0x10000);
        assert!(s.advance_all(b"XX").is_err());
    }
}
