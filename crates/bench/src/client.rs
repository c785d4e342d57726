//! The engine endpoints under test and the two ways the bench talks to them: hyper for plain
//! requests, a raw socket for hijacked streams (so the bench itself adds no framing).

use crate::BenchError;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::path::PathBuf;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// One socket speaking the Engine API: the engine itself, the gateway, or a peer proxy.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Its label in the report.
    pub name: String,
    /// Its socket.
    pub socket: PathBuf,
}

/// A keep-alive connection to an endpoint.
#[derive(Debug)]
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    driver: tokio::task::JoinHandle<()>,
    endpoint: String,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Endpoint {
    fn err(&self, detail: impl std::fmt::Display) -> BenchError {
        BenchError::Endpoint {
            endpoint: self.name.clone(),
            detail: detail.to_string(),
        }
    }

    /// Opens a keep-alive connection.
    ///
    /// # Errors
    /// [`BenchError::Endpoint`] when the socket does not answer.
    pub async fn connect(&self) -> Result<Conn, BenchError> {
        let stream = UnixStream::connect(&self.socket)
            .await
            .map_err(|e| self.err(format!("{}: {e}", self.socket.display())))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.err(e))?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn {
            sender,
            driver,
            endpoint: self.name.clone(),
        })
    }

    /// One request on a fresh connection.
    ///
    /// # Errors
    /// [`BenchError::Endpoint`] on transport failures.
    pub async fn once(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(u16, Bytes), BenchError> {
        self.connect().await?.call(method, path, body).await
    }

    /// A request that must answer `expected`; returns the body parsed as JSON (or `Null`).
    ///
    /// # Errors
    /// [`BenchError::Unexpected`] for any other status.
    pub async fn expect(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
        expected: u16,
    ) -> Result<serde_json::Value, BenchError> {
        let (status, bytes) = self.once(method, path, body).await?;
        if status != expected {
            return Err(BenchError::Unexpected {
                endpoint: self.name.clone(),
                request: format!("{method} {path}"),
                detail: format!("status {status}: {}", String::from_utf8_lossy(&bytes)),
            });
        }
        Ok(serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    }

    /// Sends a request that the engine answers with `101` and returns the raw stream with any
    /// bytes read past the response head.
    ///
    /// # Errors
    /// [`BenchError::Unexpected`] when the answer is not `101`.
    pub async fn hijack(
        &self,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(UnixStream, Vec<u8>), BenchError> {
        let mut stream = UnixStream::connect(&self.socket)
            .await
            .map_err(|e| self.err(e))?;
        // Attach takes no body (the CLI sends none, and the gateway refuses one); exec start does.
        let head = match body {
            Some(body) => {
                let body = body.to_string();
                format!(
                    "POST {path} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
            }
            None => format!(
                "POST {path} HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
            ),
        };
        stream
            .write_all(head.as_bytes())
            .await
            .map_err(|e| self.err(e))?;
        let mut buffer = Vec::with_capacity(4096);
        let end = loop {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.map_err(|e| self.err(e))?;
            if n == 0 {
                return Err(self.err(format!("{path}: connection closed before the answer")));
            }
            buffer.extend_from_slice(&chunk[..n]);
            if let Some(pos) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos + 4;
            }
            if buffer.len() > 64 * 1024 {
                return Err(self.err(format!("{path}: answer head too large")));
            }
        };
        if !buffer.starts_with(b"HTTP/1.1 101") {
            return Err(BenchError::Unexpected {
                endpoint: self.name.clone(),
                request: format!("POST {path} (upgrade)"),
                detail: String::from_utf8_lossy(&buffer).into_owned(),
            });
        }
        Ok((stream, buffer.split_off(end)))
    }
}

impl Conn {
    /// Sends a request on this connection and reads the whole answer.
    ///
    /// # Errors
    /// [`BenchError::Endpoint`] on transport failures.
    pub async fn call(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(u16, Bytes), BenchError> {
        let (status, body) = self.call_streaming(method, path, body).await?;
        let bytes = body.collect().await.map_err(|e| self.err(e))?.to_bytes();
        Ok((status, bytes))
    }

    /// Sends a request and returns the status and the body to be read by the caller.
    ///
    /// # Errors
    /// [`BenchError::Endpoint`] on transport failures.
    pub async fn call_streaming(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(u16, hyper::body::Incoming), BenchError> {
        let payload = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        self.send_raw(method, path, "application/json", payload)
            .await
    }

    /// Sends `payload` with `content_type`.
    ///
    /// # Errors
    /// [`BenchError::Endpoint`] on transport failures.
    pub async fn send_raw(
        &mut self,
        method: &str,
        path: &str,
        content_type: &str,
        payload: Bytes,
    ) -> Result<(u16, hyper::body::Incoming), BenchError> {
        let response = self.send(method, path, content_type, payload).await?;
        Ok((response.status().as_u16(), response.into_body()))
    }

    /// Sends `HEAD path` and returns the value of `header` (empty when absent).
    ///
    /// # Errors
    /// [`BenchError::Unexpected`] when the answer is not 200.
    pub async fn head_header(&mut self, path: &str, header: &str) -> Result<String, BenchError> {
        let response = self
            .send("HEAD", path, "application/json", Bytes::new())
            .await?;
        if response.status() != http::StatusCode::OK {
            return Err(BenchError::Unexpected {
                endpoint: self.endpoint.clone(),
                request: format!("HEAD {path}"),
                detail: response.status().to_string(),
            });
        }
        Ok(response
            .headers()
            .get(header)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned())
    }

    async fn send(
        &mut self,
        method: &str,
        path: &str,
        content_type: &str,
        payload: Bytes,
    ) -> Result<http::Response<hyper::body::Incoming>, BenchError> {
        self.sender.ready().await.map_err(|e| self.err(e))?;
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, "docker")
            .header(http::header::CONTENT_TYPE, content_type)
            .body(Full::new(payload))
            .map_err(|e| self.err(e))?;
        self.sender
            .send_request(request)
            .await
            .map_err(|e| self.err(e))
    }

    fn err(&self, detail: impl std::fmt::Display) -> BenchError {
        BenchError::Endpoint {
            endpoint: self.endpoint.clone(),
            detail: detail.to_string(),
        }
    }
}

/// Counts the payload bytes of a multiplexed stdout/stderr stream (8-byte frame headers), fed
/// in arbitrary pieces.
#[derive(Debug, Default)]
pub struct Demux {
    header: [u8; 8],
    header_len: usize,
    remaining: usize,
    /// Payload bytes of stream 1 (stdout).
    pub stdout: u64,
    /// Payload bytes of other streams.
    pub other: u64,
    stream: u8,
}

impl Demux {
    /// Feeds the next piece of the stream.
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.remaining == 0 {
                let take = (8 - self.header_len).min(data.len());
                self.header[self.header_len..self.header_len + take].copy_from_slice(&data[..take]);
                self.header_len += take;
                data = &data[take..];
                if self.header_len == 8 {
                    self.stream = self.header[0];
                    let size = u32::from_be_bytes([
                        self.header[4],
                        self.header[5],
                        self.header[6],
                        self.header[7],
                    ]);
                    self.remaining = size as usize;
                    self.header_len = 0;
                }
                continue;
            }
            let take = self.remaining.min(data.len());
            if self.stream == 1 {
                self.stdout += take as u64;
            } else {
                self.other += take as u64;
            }
            self.remaining -= take;
            data = &data[take..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demux_counts_split_frames() {
        let mut frames = Vec::new();
        frames.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 5]);
        frames.extend_from_slice(b"hello");
        frames.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 3]);
        frames.extend_from_slice(b"err");
        frames.extend_from_slice(&[1, 0, 0, 0, 0, 0, 1, 0]);
        frames.extend_from_slice(&[b'x'; 256]);
        for split in [1, 3, 7, 9, 100] {
            let mut demux = Demux::default();
            for piece in frames.chunks(split) {
                demux.feed(piece);
            }
            assert_eq!(demux.stdout, 261, "split {split}");
            assert_eq!(demux.other, 3);
        }
    }
}
