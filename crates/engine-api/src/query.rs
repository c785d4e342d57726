//! Query strings read the way the engine's Go `net/http` reads them, and the parameters each
//! operation takes.
//!
//! Go's `url.ParseQuery` splits on `&` only, refuses a segment holding `;`, decodes `+` as a space
//! and `%XX` escapes, and keeps repeated keys in order; the engine's handlers read the first value
//! of a key (`r.FormValue`) or all of them (`r.Form["t"]`). Keys are case-sensitive. So that no
//! rule reads a different value than the engine does, a parameter an operation does not take, or
//! a single-valued parameter given twice, is refused.

use crate::route::Operation;
use std::fmt;

/// A parsed query string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

/// Why a query string is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryError {
    /// Not something Go's `url.ParseQuery` reads without error.
    Malformed(String),
    /// A parameter this operation does not take.
    Unknown(String),
    /// A single-valued parameter given more than once.
    Repeated(String),
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::Malformed(why) => write!(f, "malformed query string: {why}"),
            QueryError::Unknown(key) => write!(
                f,
                "query parameter {key:?} is not one this endpoint takes (the gateway forwards only what it understands)"
            ),
            QueryError::Repeated(key) => {
                write!(f, "query parameter {key:?} is given more than once")
            }
        }
    }
}

impl std::error::Error for QueryError {}

fn unescape(s: &str) -> Result<String, QueryError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |b: u8| match b {
                    b'0'..=b'9' => Some(b - b'0'),
                    b'a'..=b'f' => Some(b - b'a' + 10),
                    b'A'..=b'F' => Some(b - b'A' + 10),
                    _ => None,
                };
                let (Some(h), Some(l)) = (
                    bytes.get(i + 1).and_then(|&b| hex(b)),
                    bytes.get(i + 2).and_then(|&b| hex(b)),
                ) else {
                    return Err(QueryError::Malformed(format!("invalid escape in {s:?}")));
                };
                out.push(h * 16 + l);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    // Go keeps invalid UTF-8 as bytes; the gateway has no use for such values and refuses them.
    String::from_utf8(out)
        .map_err(|_| QueryError::Malformed(format!("{s:?} does not decode to UTF-8")))
}

impl Query {
    /// Parse a raw query string (without the `?`).
    ///
    /// # Errors
    /// Whatever Go's `url.ParseQuery` would report, and escapes that decode to invalid UTF-8.
    pub fn parse(raw: &str) -> Result<Self, QueryError> {
        let mut pairs = Vec::new();
        for segment in raw.split('&') {
            if segment.contains(';') {
                return Err(QueryError::Malformed(
                    "`;` is not a separator (the engine refuses it)".to_owned(),
                ));
            }
            if segment.is_empty() {
                continue;
            }
            let (key, value) = segment.split_once('=').unwrap_or((segment, ""));
            pairs.push((unescape(key)?, unescape(value)?));
        }
        Ok(Self { pairs })
    }

    /// The first value of `key`, as the engine's `r.FormValue` reads it (`""` when absent).
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`, in order.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The engine's `httputils.BoolValue`: absent, empty, `0`, `no`, `false` and `none` (any case,
    /// surrounding spaces trimmed) are false, anything else is true.
    #[must_use]
    pub fn bool_value(&self, key: &str) -> bool {
        let v = self.get(key).unwrap_or("").trim().to_ascii_lowercase();
        !matches!(v.as_str(), "" | "0" | "no" | "false" | "none")
    }

    /// All pairs, in order.
    #[must_use]
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// Refuse parameters `operation` does not take, and single-valued ones given twice.
    ///
    /// # Errors
    /// The first such parameter.
    pub fn check_for(&self, operation: &Operation) -> Result<(), QueryError> {
        let (single, multi) = parameters(operation);
        for (i, (key, _)) in self.pairs.iter().enumerate() {
            if multi.contains(&key.as_str()) {
                continue;
            }
            if !single.contains(&key.as_str()) {
                return Err(QueryError::Unknown(key.clone()));
            }
            if self.pairs[..i].iter().any(|(k, _)| k == key) {
                return Err(QueryError::Repeated(key.clone()));
            }
        }
        Ok(())
    }
}

/// The query parameters the engine reads for each operation: single-valued, then repeatable.
/// Taken from the engine's route handlers (API 1.24 to 1.52).
#[allow(clippy::too_many_lines)]
fn parameters(operation: &Operation) -> (&'static [&'static str], &'static [&'static str]) {
    use Operation as O;
    const NONE: &[&str] = &[];
    match operation {
        O::Ping | O::Version | O::Info | O::Auth => (NONE, NONE),
        O::SystemDf => (NONE, &["type"]),
        O::Events => (&["since", "until", "filters"], NONE),
        // `trunc_cmd` (and `only_ids` below) are sent by docker-py, and so by compose 1.x and
        // testcontainers; the engine reads neither, so forwarding them changes nothing.
        O::ContainerList => (
            &[
                "all",
                "limit",
                "size",
                "filters",
                "before",
                "since",
                "trunc_cmd",
            ],
            NONE,
        ),
        O::ContainerCreate => (&["name", "platform"], NONE),
        O::ContainerPrune | O::ImagePrune | O::VolumePrune | O::NetworkPrune => {
            (&["filters"], NONE)
        }
        O::ContainerInspect { .. } => (&["size"], NONE),
        O::ContainerTop { .. } => (&["ps_args"], NONE),
        O::ContainerLogs { .. } => (
            &[
                "follow",
                "stdout",
                "stderr",
                "since",
                "until",
                "timestamps",
                "tail",
                "details",
            ],
            NONE,
        ),
        O::ContainerChanges { .. }
        | O::ContainerExport { .. }
        | O::ContainerUpdate { .. }
        | O::ContainerPause { .. }
        | O::ContainerUnpause { .. }
        | O::ExecCreate { .. }
        | O::ExecStart { .. }
        | O::ExecInspect { .. }
        | O::VolumeCreate
        | O::VolumeInspect { .. }
        | O::NetworkCreate
        | O::NetworkConnect { .. }
        | O::NetworkDisconnect { .. }
        | O::NetworkDelete { .. }
        | O::Session => (NONE, NONE),
        O::ContainerStats { .. } => (&["stream", "one-shot"], NONE),
        O::ContainerResize { .. } | O::ExecResize { .. } => (&["h", "w"], NONE),
        // `checkpoint` and `checkpoint-dir` (restore from a checkpoint) are left out on purpose:
        // checkpoints are a closed area.
        O::ContainerStart { .. } => (&["detachKeys"], NONE),
        O::ContainerStop { .. } | O::ContainerRestart { .. } => (&["t", "signal"], NONE),
        O::ContainerKill { .. } => (&["signal"], NONE),
        O::ContainerRename { .. } => (&["name"], NONE),
        O::ContainerAttach { .. } => (
            &["detachKeys", "logs", "stream", "stdin", "stdout", "stderr"],
            NONE,
        ),
        O::ContainerWait { .. } => (&["condition"], NONE),
        O::ContainerDelete { .. } => (&["v", "force", "link"], NONE),
        O::ContainerArchiveStat { .. } | O::ContainerArchiveGet { .. } => (&["path"], NONE),
        O::ContainerArchivePut { .. } => (&["path", "noOverwriteDirNonDir", "copyUIDGID"], NONE),
        O::ImageList => (
            &[
                "all",
                "filters",
                "filter",
                "digests",
                "shared-size",
                "manifests",
                "only_ids",
            ],
            NONE,
        ),
        O::ImageCreate => (
            &["fromImage", "fromSrc", "repo", "tag", "message", "platform"],
            &["changes"],
        ),
        O::ImageSearch => (&["term", "limit", "filters"], NONE),
        O::ImageLoad => (&["quiet"], &["platform"]),
        O::ImageGetAll => (NONE, &["names", "platform"]),
        O::ImageGet { .. } => (NONE, &["platform"]),
        O::ImageInspect { .. } => (&["manifests"], NONE),
        O::ImageHistory { .. } => (&["platform"], NONE),
        O::ImagePush { .. } => (&["tag", "platform"], NONE),
        O::ImageTag { .. } => (&["repo", "tag"], NONE),
        O::ImageDelete { .. } => (&["force", "noprune"], &["platforms"]),
        O::Commit => (
            &["container", "repo", "tag", "comment", "author", "pause"],
            &["changes"],
        ),
        O::Build => (
            &[
                "dockerfile",
                "extrahosts",
                "remote",
                "q",
                "nocache",
                "pull",
                "rm",
                "forcerm",
                "memory",
                "memswap",
                "cpushares",
                "cpusetcpus",
                "cpusetmems",
                "cpuperiod",
                "cpuquota",
                "buildargs",
                "shmsize",
                "squash",
                "labels",
                "networkmode",
                "platform",
                "target",
                "outputs",
                "version",
                "session",
                "buildid",
                "isolation",
                "cgroupparent",
                "ulimits",
                "cachefrom",
            ],
            &["t"],
        ),
        O::BuildPrune => (
            &[
                "all",
                "keep-storage",
                "filters",
                "reserved-space",
                "max-used-space",
                "min-free-space",
            ],
            NONE,
        ),
        O::BuildCancel => (&["id"], NONE),
        O::VolumeList | O::NetworkList => (&["filters"], NONE),
        O::VolumeDelete { .. } => (&["force"], NONE),
        O::NetworkInspect { .. } => (&["verbose", "scope"], NONE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_go() {
        let q = Query::parse("a=1&b=x+y%2Fz&a=2&&c&d=").unwrap();
        assert_eq!(q.get("a"), Some("1"));
        assert_eq!(q.all("a").collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(q.get("b"), Some("x y/z"));
        assert_eq!(q.get("c"), Some(""));
        assert_eq!(q.get("d"), Some(""));
        assert_eq!(q.get("A"), None);
        assert!(Query::parse("a=1;b=2").is_err());
        assert!(Query::parse("a=%zz").is_err());
        assert!(Query::parse("a=%4").is_err());
        assert!(Query::parse("a=%ff").is_err());
        assert_eq!(Query::parse("a=%3B").unwrap().get("a"), Some(";"));
    }

    #[test]
    fn bool_value_mirrors_the_engine() {
        for (raw, expected) in [
            ("all=1", true),
            ("all=true", true),
            ("all=yes", true),
            ("all=%20FALSE%20", false),
            ("all=0", false),
            ("all=none", false),
            ("all=", false),
            ("", false),
            ("all=2", true),
        ] {
            assert_eq!(
                Query::parse(raw).unwrap().bool_value("all"),
                expected,
                "{raw}"
            );
        }
    }

    #[test]
    fn unknown_and_repeated_parameters_are_refused() {
        let build = Operation::Build;
        assert!(Query::parse("t=a&t=b&networkmode=default")
            .unwrap()
            .check_for(&build)
            .is_ok());
        assert_eq!(
            Query::parse("networkmode=default&networkmode=host")
                .unwrap()
                .check_for(&build),
            Err(QueryError::Repeated("networkmode".into()))
        );
        assert_eq!(
            Query::parse("NetworkMode=host").unwrap().check_for(&build),
            Err(QueryError::Unknown("NetworkMode".into()))
        );
        let start = Operation::ContainerStart { id: "x".into() };
        assert!(Query::parse("checkpoint=c1")
            .unwrap()
            .check_for(&start)
            .is_err());
    }

    /// Regression: docker-py (compose 1.x, testcontainers) lists with parameters the CLI does
    /// not send, and every list failed with 400.
    #[test]
    fn docker_py_list_parameters_are_taken() {
        let containers = "limit=-1&all=1&size=0&trunc_cmd=0&filters=%7B%7D";
        assert!(Query::parse(containers)
            .unwrap()
            .check_for(&Operation::ContainerList)
            .is_ok());
        assert!(Query::parse("only_ids=0&all=0")
            .unwrap()
            .check_for(&Operation::ImageList)
            .is_ok());
    }
}
