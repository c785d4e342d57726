//! Archives the rules must read before the engine gets them (a build context whose Dockerfile
//! names base images, a `docker load` archive whose manifest names images): the stream is
//! written to an unlinked temporary file, read there, and forwarded from there, so what was
//! judged is exactly what the engine receives.

use bytes::Bytes;
use futures_core::Stream;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::collections::BTreeMap;
use std::io::{Seek, SeekFrom};
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use stockade_engine_api::{archive, dockerfile, ArchiveFacts, Operation, Request};
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

/// Why a stream could not be spooled or read.
#[derive(Debug)]
pub(crate) enum SpoolError {
    /// Larger than the limit.
    TooLarge(u64),
    /// The client's stream broke off.
    Client(String),
    /// The temporary file could not be written.
    Local(String),
    /// The archive's content cannot be judged.
    Content(String),
}

/// A spooled stream: the file (unlinked) and its length.
#[derive(Debug)]
pub(crate) struct Spooled {
    file: std::fs::File,
    len: u64,
}

/// Writes `body` to an unlinked file in `dir`, at most `limit` bytes.
pub(crate) async fn spool(
    mut body: Incoming,
    dir: &Path,
    limit: u64,
) -> Result<Spooled, SpoolError> {
    let std_file = tempfile::tempfile_in(dir).map_err(|e| {
        SpoolError::Local(format!(
            "cannot create a spool file in {}: {e}",
            dir.display()
        ))
    })?;
    let reader = std_file
        .try_clone()
        .map_err(|e| SpoolError::Local(e.to_string()))?;
    let mut file = tokio::fs::File::from_std(std_file);
    let mut len: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| SpoolError::Client(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            len += data.len() as u64;
            if len > limit {
                return Err(SpoolError::TooLarge(limit));
            }
            file.write_all(&data).await.map_err(|e| {
                SpoolError::Local(format!(
                    "cannot write the spool file in {}: {e}",
                    dir.display()
                ))
            })?;
        }
    }
    file.flush()
        .await
        .map_err(|e| SpoolError::Local(e.to_string()))?;
    Ok(Spooled { file: reader, len })
}

impl Spooled {
    /// Reads what the rules need out of the archive (off the async executor).
    pub(crate) async fn inspect(
        self,
        request: &Request,
    ) -> Result<(Self, ArchiveFacts), SpoolError> {
        let operation = request.route.operation.clone();
        let dockerfile_name = request.query.get("dockerfile").unwrap_or("").to_owned();
        let build_args = request.query.get("buildargs").unwrap_or("").to_owned();
        tokio::task::spawn_blocking(move || {
            let mut me = self;
            me.file
                .seek(SeekFrom::Start(0))
                .map_err(|e| SpoolError::Local(e.to_string()))?;
            let facts = match operation {
                Operation::Build => {
                    let args = parse_build_args(&build_args)?;
                    let text = archive::build_dockerfile(&me.file, &dockerfile_name)
                        .map_err(|e| SpoolError::Content(e.to_string()))?;
                    let text = String::from_utf8(text).map_err(|_| {
                        SpoolError::Content("the Dockerfile is not UTF-8".to_owned())
                    })?;
                    let sources = dockerfile::image_sources(&text, &args)
                        .map_err(|e| SpoolError::Content(e.to_string()))?;
                    ArchiveFacts::BuildSources(sources)
                }
                _ => ArchiveFacts::LoadNames(
                    archive::load_names(&me.file)
                        .map_err(|e| SpoolError::Content(e.to_string()))?,
                ),
            };
            me.file
                .seek(SeekFrom::Start(0))
                .map_err(|e| SpoolError::Local(e.to_string()))?;
            Ok((me, facts))
        })
        .await
        .map_err(|e| SpoolError::Local(e.to_string()))?
    }

    /// The spooled bytes as a request body for the engine.
    pub(crate) fn into_body(self) -> FileBody {
        FileBody {
            len: self.len,
            stream: ReaderStream::with_capacity(tokio::fs::File::from_std(self.file), 256 * 1024),
        }
    }

    /// Its length in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }
}

/// The engine's `buildargs`: a JSON object of strings or nulls.
fn parse_build_args(raw: &str) -> Result<BTreeMap<String, Option<String>>, SpoolError> {
    let mut args = BTreeMap::new();
    if raw.is_empty() {
        return Ok(args);
    }
    let bad = || SpoolError::Content("buildargs is not a JSON object of strings".to_owned());
    let value = stockade_engine_api::json::parse(raw.as_bytes()).map_err(|_| bad())?;
    for (key, value) in value.as_object().ok_or_else(bad)? {
        let value = match value {
            stockade_engine_api::json::Value::Null => None,
            other => Some(other.as_str().ok_or_else(bad)?.to_owned()),
        };
        // Go fills a map: the last duplicate wins.
        args.insert(key.clone(), value);
    }
    Ok(args)
}

/// A spooled file streamed to the engine.
#[derive(Debug)]
pub(crate) struct FileBody {
    len: u64,
    stream: ReaderStream<tokio::fs::File>,
}

impl Body for FileBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        Pin::new(&mut self.stream)
            .poll_next(cx)
            .map(|item| item.map(|chunk| chunk.map(Frame::data)))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len)
    }
}
