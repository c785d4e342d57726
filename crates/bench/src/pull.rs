//! The `pull` scenario: an image pulled from a local registry, the direct engine against each
//! proxy in front of it.
//!
//! The direct engine pulls the image by a loopback name, which dockerd never sends through a
//! proxy. Every other endpoint pulls the same image by a name on a non-loopback address of the
//! same registry, so the engine fetches it through the egress filter `stockade up` gives it as
//! `HTTP(S)_PROXY`: the gateway column is the gateway and the filter together. Before each pull
//! the image is removed (all its names) and must be gone; the pull must download every layer
//! (no "Already exists") and end with the expected image ID, so every figure moved the bytes.

use crate::client::Endpoint;
use crate::BenchError;
use http_body_util::BodyExt;
use std::time::Instant;

/// The image to pull, by the name each side uses.
#[derive(Debug, Clone)]
pub(crate) struct PullSpec {
    /// The name the direct engine pulls (a loopback registry: no proxy).
    pub direct: String,
    /// The name every other endpoint pulls (the same registry on a non-loopback address).
    pub proxied: String,
    /// The image ID every pull must end with; `None`: the first pull's, for all that follow.
    pub id: Option<String>,
}

/// One pull's figures.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pulled {
    pub seconds: f64,
    pub bytes: u64,
}

/// `repo:tag` split for `POST /images/create` (a port colon is not a tag).
fn split_reference(reference: &str) -> (&str, &str) {
    match reference.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (reference, "latest"),
    }
}

/// Percent-encodes a query value (unreserved characters kept).
fn encode_query(value: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn unexpected(endpoint: &Endpoint, request: &str, detail: impl std::fmt::Display) -> BenchError {
    BenchError::Unexpected {
        endpoint: endpoint.name.clone(),
        request: request.to_owned(),
        detail: detail.to_string(),
    }
}

/// Removes the image by ID (every name it has) on the direct engine and checks it is gone.
pub(crate) async fn remove(direct: &Endpoint, id: &str) -> Result<(), BenchError> {
    let path = format!("/images/{id}?force=1");
    let (status, body) = direct.once("DELETE", &path, None).await?;
    if status != 200 && status != 404 {
        return Err(unexpected(
            direct,
            &format!("DELETE {path}"),
            format!("{status}: {}", String::from_utf8_lossy(&body)),
        ));
    }
    let (status, _) = direct
        .once("GET", &format!("/images/{id}/json"), None)
        .await?;
    if status != 404 {
        return Err(unexpected(
            direct,
            &format!("GET /images/{id}/json"),
            format!("the image is still there after removal ({status})"),
        ));
    }
    Ok(())
}

/// What the progress stream of a pull said.
#[derive(Debug, Default, PartialEq)]
struct Progress {
    /// Layers that were downloaded and extracted.
    complete: usize,
    /// Layers the engine already had.
    existing: usize,
    /// The first error message.
    error: Option<String>,
}

impl Progress {
    fn line(&mut self, line: &[u8]) {
        let Ok(message) = serde_json::from_slice::<serde_json::Value>(line) else {
            return;
        };
        if let Some(error) = message["error"].as_str() {
            self.error.get_or_insert_with(|| error.to_owned());
        }
        match message["status"].as_str() {
            Some("Pull complete") => self.complete += 1,
            Some("Already exists") => self.existing += 1,
            _ => {}
        }
    }
}

/// Pulls `reference` on `endpoint` (the image absent before), times it to the end of the
/// progress stream, and checks the result on the direct engine: every layer downloaded, the
/// image ID `expected` when given. Returns the figures and the image ID.
pub(crate) async fn pull_once(
    endpoint: &Endpoint,
    direct: &Endpoint,
    reference: &str,
    expected: Option<&str>,
) -> Result<(Pulled, String), BenchError> {
    let (repo, tag) = split_reference(reference);
    let path = format!(
        "/images/create?fromImage={}&tag={}",
        encode_query(repo),
        encode_query(tag)
    );
    let request = format!("POST {path}");
    let mut conn = endpoint.connect().await?;
    let started = Instant::now();
    let (status, mut body) = conn.call_streaming("POST", &path, None).await?;
    if status != 200 {
        let text = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        return Err(unexpected(
            endpoint,
            &request,
            format!("{status}: {}", String::from_utf8_lossy(&text)),
        ));
    }
    let mut progress = Progress::default();
    let mut pending = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| unexpected(endpoint, &request, e))?;
        if let Some(data) = frame.data_ref() {
            pending.extend_from_slice(data);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                progress.line(&pending[..end]);
                pending.drain(..=end);
            }
        }
    }
    progress.line(&pending);
    let seconds = started.elapsed().as_secs_f64();
    if let Some(error) = progress.error {
        return Err(unexpected(endpoint, &request, error));
    }
    if progress.complete == 0 || progress.existing > 0 {
        return Err(unexpected(
            endpoint,
            &request,
            format!(
                "{} layers downloaded, {} already present: the engine did not fetch the whole image",
                progress.complete, progress.existing
            ),
        ));
    }
    let inspect = direct
        .expect("GET", &format!("/images/{reference}/json"), None, 200)
        .await?;
    let id = inspect["Id"].as_str().unwrap_or_default().to_owned();
    if let Some(want) = expected.filter(|want| *want != id) {
        return Err(unexpected(
            endpoint,
            &request,
            format!("pulled image {id}, expected {want}"),
        ));
    }
    let bytes = inspect["Size"].as_u64().unwrap_or(0);
    if bytes == 0 {
        return Err(unexpected(
            endpoint,
            &request,
            "the pulled image has no size",
        ));
    }
    Ok((Pulled { seconds, bytes }, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_at_the_tag_not_the_port() {
        assert_eq!(
            split_reference("127.0.0.1:5000/bench/fat:1"),
            ("127.0.0.1:5000/bench/fat", "1")
        );
        assert_eq!(
            split_reference("10.215.0.1:5000/bench/fat"),
            ("10.215.0.1:5000/bench/fat", "latest")
        );
        assert_eq!(encode_query("10.0.0.1:5000/a"), "10.0.0.1%3A5000%2Fa");
    }

    #[test]
    fn progress_counts_layers_and_errors() {
        let mut p = Progress::default();
        for line in [
            r#"{"status":"Pulling from bench/fat","id":"1"}"#,
            r#"{"status":"Pulling fs layer","progressDetail":{},"id":"abc"}"#,
            r#"{"status":"Downloading","progressDetail":{"current":1,"total":2},"id":"abc"}"#,
            r#"{"status":"Pull complete","progressDetail":{},"id":"abc"}"#,
            r#"{"status":"Already exists","progressDetail":{},"id":"def"}"#,
            "not json",
            r#"{"errorDetail":{"message":"boom"},"error":"boom"}"#,
        ] {
            p.line(line.as_bytes());
        }
        assert_eq!(
            p,
            Progress {
                complete: 1,
                existing: 1,
                error: Some("boom".into())
            }
        );
    }
}
