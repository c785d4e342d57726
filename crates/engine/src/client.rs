//! A minimal Engine API client for the gateway's own checks (`/_ping`, `/info`), over the
//! engine's unix socket.

use crate::EngineError;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use std::path::Path;
use std::time::Duration;
use tokio::net::UnixStream;

/// Largest answer read from the engine for a check.
const MAX_BODY: usize = 4 * 1024 * 1024;
/// How long one check may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// GETs `path` from the engine at `socket` and returns the status and body.
///
/// # Errors
/// [`EngineError::Unreachable`] when the socket cannot be reached or answers badly.
pub async fn get(socket: &Path, path: &str) -> Result<(http::StatusCode, Bytes), EngineError> {
    let (status, _, body) = get_with_headers(socket, path).await?;
    Ok((status, body))
}

/// Like [`get`], with the response headers.
///
/// # Errors
/// [`EngineError::Unreachable`] when the socket cannot be reached or answers badly.
pub async fn get_with_headers(
    socket: &Path,
    path: &str,
) -> Result<(http::StatusCode, http::HeaderMap, Bytes), EngineError> {
    let unreachable = |detail: String| EngineError::Unreachable {
        socket: socket.to_owned(),
        detail,
    };
    let exchange = async {
        let stream = UnixStream::connect(socket)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let driver = tokio::spawn(conn);
        let request = http::Request::get(path)
            .header(http::header::HOST, "docker")
            .body(Empty::<Bytes>::new())
            .map_err(|e| unreachable(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| unreachable(format!("reading the answer to {path}: {e}")))?
            .to_bytes();
        driver.abort();
        Ok((status, headers, body))
    };
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| unreachable(format!("no answer to {path} within {TIMEOUT:?}")))?
}

/// GETs `path` and parses the answer as JSON, requiring status 200.
///
/// # Errors
/// [`EngineError::Unreachable`] on transport failures, non-200 answers or bad JSON.
pub async fn get_json(socket: &Path, path: &str) -> Result<serde_json::Value, EngineError> {
    let (status, body) = get(socket, path).await?;
    if status != http::StatusCode::OK {
        return Err(EngineError::Unreachable {
            socket: socket.to_owned(),
            detail: format!("{path} answered {status}"),
        });
    }
    serde_json::from_slice(&body).map_err(|e| EngineError::Unreachable {
        socket: socket.to_owned(),
        detail: format!("{path} answered with invalid JSON: {e}"),
    })
}
