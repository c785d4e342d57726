//! `docker cp` and the symlink-exchange race (CVE-2018-15664): the engine resolves the path of
//! `PUT`/`GET /containers/{id}/archive` inside the container's root filesystem while processes
//! in the container can still swap a path component for a symlink, so a running container
//! could steer the engine (real root, in the host's mount namespace) to read or write a host
//! path. The gateway pauses a running container for the copy (as the engine's own later fix
//! does) and unpauses it when the answer has been sent, or the client went away.
//!
//! While any copy of a container is in progress the container is *held*: the gateway unpauses
//! it only after the last copy ends. (The engine runs copies of one container one after another,
//! under the container's lock, so a second copy that came while the first had the container
//! paused runs just after the first ends: without the hold, the first copy's unpause would let
//! the container run under the second.) A container the user paused or stopped themselves is
//! held as it is, and the operations that would set its processes running (unpause, start,
//! restart, and stop and kill, since a restart policy starts it again) are refused while it is
//! held. (During the engine's part of a copy they wait for the engine's container lock anyway;
//! the hold covers the moments between copies.)

use crate::container_socket::engine_call;
use crate::respond::{Body, BoxError};
use bytes::Bytes;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};

/// The containers held for copies in progress, by full ID. Each hold has a lock of its own,
/// taken for its pause and unpause, so that no copy of that container can see a pause that is
/// about to be undone; copies of other containers do not wait for it.
#[derive(Debug, Default)]
pub(crate) struct Holds {
    map: RwLock<HashMap<String, Arc<tokio::sync::Mutex<Hold>>>>,
    /// How many holds have been released: a state read before a release may be stale.
    releases: std::sync::atomic::AtomicU64,
}

#[derive(Debug)]
struct Hold {
    copies: usize,
    /// Whether the gateway paused it (and so unpauses it after the last copy).
    paused_here: bool,
    /// False once released and out of the map: a copy that waited for it starts afresh.
    live: bool,
}

impl Holds {
    fn entry(&self, id: &str) -> Arc<tokio::sync::Mutex<Hold>> {
        let mut map = self
            .map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(map.entry(id.to_owned()).or_insert_with(|| {
            Arc::new(tokio::sync::Mutex::new(Hold {
                copies: 0,
                paused_here: false,
                live: true,
            }))
        }))
    }

    fn contains(&self, id: &str) -> bool {
        self.map
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains_key(id)
    }

    fn is_empty(&self) -> bool {
        self.map
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_empty()
    }

    fn remove(&self, id: &str) {
        self.map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id);
    }
}

/// One copy's hold on a container; released when dropped.
#[derive(Debug)]
pub(crate) struct Frozen {
    engine: PathBuf,
    id: String,
    holds: Arc<Holds>,
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let engine = self.engine.clone();
        let id = std::mem::take(&mut self.id);
        let holds = Arc::clone(&self.holds);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let entry = holds.entry(&id);
            let mut hold = entry.lock().await;
            hold.copies = hold.copies.saturating_sub(1);
            if hold.copies > 0 {
                return;
            }
            hold.live = false;
            holds.remove(&id);
            holds
                .releases
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if !hold.paused_here {
                return;
            }
            // Still under the hold's lock: a copy of this container that starts now waits,
            // then finds it running.
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

fn valid_reference(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// The container's full ID, whether it runs, and whether it is paused; `None`: no such container.
async fn state(engine: &Path, id: &str) -> Result<Option<(String, bool, bool)>, String> {
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
    let full = inspect["Id"]
        .as_str()
        .ok_or("the engine's answer has no Id")?
        .to_owned();
    Ok(Some((full, running, paused)))
}

/// Holds `id` for a copy, pausing it if it runs. `Ok(None)`: no such container (the engine
/// answers the copy itself) or a reference the engine will refuse anyway.
pub(crate) async fn freeze(
    engine: &Path,
    id: &str,
    holds: &Arc<Holds>,
) -> Result<Option<Frozen>, String> {
    if !valid_reference(id) {
        return Ok(None);
    }
    // The full ID first (it names the hold); the state again under the hold's lock if a hold
    // was released since (its unpause may have come after this look).
    let releases = holds.releases.load(std::sync::atomic::Ordering::SeqCst);
    let Some((full, running, paused)) = state(engine, id).await? else {
        return Ok(None);
    };
    loop {
        let entry = holds.entry(&full);
        let mut hold = entry.lock().await;
        if !hold.live {
            // Released while this copy waited for it.
            continue;
        }
        if hold.copies == 0 {
            let (running, paused) =
                if holds.releases.load(std::sync::atomic::Ordering::SeqCst) == releases {
                    (running, paused)
                } else {
                    match state(engine, &full).await? {
                        Some((_, running, paused)) => (running, paused),
                        None => {
                            hold.live = false;
                            holds.remove(&full);
                            return Ok(None);
                        }
                    }
                };
            if running && !paused {
                let (status, body) = engine_call(
                    engine,
                    http::Method::POST,
                    &format!("/containers/{full}/pause"),
                )
                .await?;
                if !status.is_success() {
                    hold.live = false;
                    holds.remove(&full);
                    return Err(format!(
                        "the engine answered {status} to the pause: {}",
                        String::from_utf8_lossy(&body).trim()
                    ));
                }
                hold.paused_here = true;
            }
        }
        hold.copies += 1;
        return Ok(Some(Frozen {
            engine: engine.to_owned(),
            id: full,
            holds: Arc::clone(holds),
        }));
    }
}

/// `Some(full ID)` when `id` names a container held for a copy in progress.
pub(crate) async fn held(engine: &Path, id: &str, holds: &Holds) -> Result<Option<String>, String> {
    if holds.is_empty() || !valid_reference(id) {
        return Ok(None);
    }
    let Some((full, _, _)) = state(engine, id).await? else {
        return Ok(None);
    };
    Ok(holds.contains(&full).then_some(full))
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
