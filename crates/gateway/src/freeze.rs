//! `docker cp` and the symlink-exchange race (CVE-2018-15664): the engine resolves the path of
//! `PUT`/`GET /containers/{id}/archive` inside the container's root filesystem while processes
//! in the container can still swap a path component for a symlink, so a running container
//! could steer the engine (real root, in the host's mount namespace) to read or write a host
//! path. The gateway pauses a running container for the copy (as the engine's own later fix
//! does) and unpauses it when the answer has been sent, or the client went away.

use crate::container_socket::engine_call;
use crate::respond::{Body, BoxError};
use bytes::Bytes;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

/// A container the gateway paused; unpaused when dropped.
#[derive(Debug)]
pub(crate) struct Frozen {
    engine: PathBuf,
    id: String,
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let engine = self.engine.clone();
        let id = std::mem::take(&mut self.id);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let uri = format!("/containers/{id}/unpause");
            match engine_call(&engine, http::Method::POST, &uri).await {
                Ok((status, _)) if status.is_success() => {}
                Ok((status, body)) => tracing::warn!(
                    container = %id,
                    %status,
                    answer = %String::from_utf8_lossy(&body),
                    "cannot unpause the container after a copy"
                ),
                Err(e) => tracing::warn!(container = %id, error = %e, "cannot unpause the container after a copy"),
            }
        });
    }
}

/// Pauses `id` if it is running and not paused already. `Ok(None)`: nothing to do (not
/// running, paused by someone else, or no such container: the engine answers the copy itself).
pub(crate) async fn freeze(engine: &Path, id: &str) -> Result<Option<Frozen>, String> {
    let valid = !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !valid {
        return Ok(None);
    }
    let (status, body) =
        engine_call(engine, http::Method::GET, &format!("/containers/{id}/json")).await?;
    if status == http::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !status.is_success() {
        return Err(format!("the engine answered {status}"));
    }
    let inspect: serde_json::Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    let running = inspect["State"]["Running"].as_bool().unwrap_or(false);
    let paused = inspect["State"]["Paused"].as_bool().unwrap_or(false);
    if !running || paused {
        return Ok(None);
    }
    // The full ID, so the unpause hits the same container whatever the name does meanwhile.
    let full = inspect["Id"].as_str().unwrap_or(id).to_owned();
    let (status, body) = engine_call(
        engine,
        http::Method::POST,
        &format!("/containers/{full}/pause"),
    )
    .await?;
    if !status.is_success() {
        return Err(format!(
            "the engine answered {status} to the pause: {}",
            String::from_utf8_lossy(&body).trim()
        ));
    }
    Ok(Some(Frozen {
        engine: engine.to_owned(),
        id: full,
    }))
}

/// A response body that keeps the container paused until the body ends or is dropped.
pub(crate) struct ThawOnEnd {
    inner: Body,
    frozen: Option<Frozen>,
}

impl ThawOnEnd {
    pub(crate) fn new(inner: Body, frozen: Frozen) -> Self {
        Self {
            inner,
            frozen: Some(frozen),
        }
    }
}

impl http_body::Body for ThawOnEnd {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.frozen = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
