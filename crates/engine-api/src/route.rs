//! The route table: method and path to a closed [`Operation`], default deny.

use http::Method;
use std::fmt;

/// The lowest API version the gateway serves (Docker Engine 1.12's API; older clients cannot
/// negotiate the hijack and build protocols the gateway relies on).
pub const MIN_API_MINOR: u16 = 24;
/// The highest minor version accepted in a `/v1.N` prefix. The engine itself refuses versions newer
/// than it supports, with its own message; this bound only keeps absurd prefixes out.
pub const MAX_API_MINOR: u16 = 99;

/// An API version taken from a `/vX.Y` path prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion {
    /// Always 1 for the Docker Engine API.
    pub major: u16,
    /// The minor version, `MIN_API_MINOR..=MAX_API_MINOR`.
    pub minor: u16,
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// How a route's connection may be taken over after the response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hijack {
    /// A plain request and response.
    No,
    /// Attach and exec start: the client may ask for `Upgrade: tcp` and then gets a raw duplex
    /// stream; without the header the engine streams the output until it closes.
    Raw,
    /// BuildKit's session: an upgrade to HTTP/2 over the same connection.
    H2c,
}

/// Every Engine API operation the gateway forwards. Anything not listed here is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Operation {
    Ping,
    Version,
    Info,
    Events,
    SystemDf,
    Auth,

    ContainerList,
    ContainerCreate,
    ContainerPrune,
    ContainerInspect { id: String },
    ContainerTop { id: String },
    ContainerLogs { id: String },
    ContainerChanges { id: String },
    ContainerExport { id: String },
    ContainerStats { id: String },
    ContainerResize { id: String },
    ContainerStart { id: String },
    ContainerStop { id: String },
    ContainerRestart { id: String },
    ContainerKill { id: String },
    ContainerUpdate { id: String },
    ContainerRename { id: String },
    ContainerPause { id: String },
    ContainerUnpause { id: String },
    ContainerAttach { id: String },
    ContainerWait { id: String },
    ContainerDelete { id: String },
    ContainerArchiveStat { id: String },
    ContainerArchiveGet { id: String },
    ContainerArchivePut { id: String },
    ExecCreate { id: String },

    ExecStart { id: String },
    ExecResize { id: String },
    ExecInspect { id: String },

    ImageList,
    ImageCreate,
    ImageSearch,
    ImagePrune,
    ImageLoad,
    ImageGetAll,
    ImageInspect { name: String },
    ImageHistory { name: String },
    ImagePush { name: String },
    ImageTag { name: String },
    ImageGet { name: String },
    ImageDelete { name: String },
    Commit,
    Build,
    BuildPrune,
    BuildCancel,
    Session,

    VolumeList,
    VolumeCreate,
    VolumePrune,
    VolumeInspect { name: String },
    VolumeDelete { name: String },

    NetworkList,
    NetworkCreate,
    NetworkPrune,
    NetworkInspect { id: String },
    NetworkConnect { id: String },
    NetworkDisconnect { id: String },
    NetworkDelete { id: String },
}

impl Operation {
    /// Whether and how the connection may be hijacked after this operation's response head.
    #[must_use]
    pub fn hijack(&self) -> Hijack {
        match self {
            Self::ContainerAttach { .. } | Self::ExecStart { .. } => Hijack::Raw,
            Self::Session => Hijack::H2c,
            _ => Hijack::No,
        }
    }

    /// A stable name for logs and rules, in Docker's command naming (`container_create`).
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Ping => "ping",
            Self::Version => "version",
            Self::Info => "info",
            Self::Events => "events",
            Self::SystemDf => "system_df",
            Self::Auth => "auth",
            Self::ContainerList => "container_list",
            Self::ContainerCreate => "container_create",
            Self::ContainerPrune => "container_prune",
            Self::ContainerInspect { .. } => "container_inspect",
            Self::ContainerTop { .. } => "container_top",
            Self::ContainerLogs { .. } => "container_logs",
            Self::ContainerChanges { .. } => "container_changes",
            Self::ContainerExport { .. } => "container_export",
            Self::ContainerStats { .. } => "container_stats",
            Self::ContainerResize { .. } => "container_resize",
            Self::ContainerStart { .. } => "container_start",
            Self::ContainerStop { .. } => "container_stop",
            Self::ContainerRestart { .. } => "container_restart",
            Self::ContainerKill { .. } => "container_kill",
            Self::ContainerUpdate { .. } => "container_update",
            Self::ContainerRename { .. } => "container_rename",
            Self::ContainerPause { .. } => "container_pause",
            Self::ContainerUnpause { .. } => "container_unpause",
            Self::ContainerAttach { .. } => "container_attach",
            Self::ContainerWait { .. } => "container_wait",
            Self::ContainerDelete { .. } => "container_delete",
            Self::ContainerArchiveStat { .. } => "container_archive_stat",
            Self::ContainerArchiveGet { .. } => "container_archive_get",
            Self::ContainerArchivePut { .. } => "container_archive_put",
            Self::ExecCreate { .. } => "exec_create",
            Self::ExecStart { .. } => "exec_start",
            Self::ExecResize { .. } => "exec_resize",
            Self::ExecInspect { .. } => "exec_inspect",
            Self::ImageList => "image_list",
            Self::ImageCreate => "image_create",
            Self::ImageSearch => "image_search",
            Self::ImagePrune => "image_prune",
            Self::ImageLoad => "image_load",
            Self::ImageGetAll => "image_save",
            Self::ImageInspect { .. } => "image_inspect",
            Self::ImageHistory { .. } => "image_history",
            Self::ImagePush { .. } => "image_push",
            Self::ImageTag { .. } => "image_tag",
            Self::ImageGet { .. } => "image_save",
            Self::ImageDelete { .. } => "image_delete",
            Self::Commit => "image_commit",
            Self::Build => "image_build",
            Self::BuildPrune => "build_prune",
            Self::BuildCancel => "build_cancel",
            Self::Session => "build_session",
            Self::VolumeList => "volume_list",
            Self::VolumeCreate => "volume_create",
            Self::VolumePrune => "volume_prune",
            Self::VolumeInspect { .. } => "volume_inspect",
            Self::VolumeDelete { .. } => "volume_delete",
            Self::NetworkList => "network_list",
            Self::NetworkCreate => "network_create",
            Self::NetworkPrune => "network_prune",
            Self::NetworkInspect { .. } => "network_inspect",
            Self::NetworkConnect { .. } => "network_connect",
            Self::NetworkDisconnect { .. } => "network_disconnect",
            Self::NetworkDelete { .. } => "network_delete",
        }
    }
}

/// A request line that passed the route table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The `/vX.Y` prefix, when the client sent one.
    pub version: Option<ApiVersion>,
    /// What the request asks the engine to do.
    pub operation: Operation,
}

/// Why a request line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The path is not in canonical form; it is refused rather than normalised, because the engine
    /// and the gateway could normalise it differently.
    #[error("the path {path:?} is not in canonical form ({reason}); send it without percent-encoding, empty, '.' or '..' segments")]
    NotCanonical {
        /// The path as received.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The `/vX.Y` prefix is malformed or outside the supported range.
    #[error("API version {version:?} is not supported; use a version between 1.{MIN_API_MINOR} and 1.{MAX_API_MINOR}")]
    UnsupportedVersion {
        /// The prefix without its `v`.
        version: String,
    },
    /// A part of the Engine API that Stockade never forwards.
    #[error("{method} {path} is not allowed: {reason}")]
    Forbidden {
        /// The request method.
        method: Method,
        /// The path as received.
        path: String,
        /// Why this part of the API is closed.
        reason: &'static str,
    },
    /// Not a route of the Engine API that the gateway knows.
    #[error("{method} {path} is not a Docker Engine API route that Stockade forwards")]
    Unknown {
        /// The request method.
        method: Method,
        /// The path as received.
        path: String,
    },
}

/// API areas refused as a whole, with the reason given to the user.
const FORBIDDEN_AREAS: &[(&str, &str)] = &[
    ("plugins", "engine plugins run with host privileges"),
    ("swarm", "swarm mode is not available through Stockade"),
    (
        "services",
        "swarm services are not available through Stockade",
    ),
    ("nodes", "swarm nodes are not available through Stockade"),
    ("tasks", "swarm tasks are not available through Stockade"),
    (
        "secrets",
        "swarm secrets are not available through Stockade",
    ),
    (
        "configs",
        "swarm configs are not available through Stockade",
    ),
    (
        "distribution",
        "the engine's distribution endpoint is internal",
    ),
    ("libpod", "the Podman API is not served"),
    (
        "grpc",
        "direct BuildKit control cannot be checked by the gateway",
    ),
];

/// Whether a path segment is made only of characters that appear in Engine API paths: names,
/// ids, image references (which also use `/`, handled as segment separators) and versions.
fn segment_is_plain(segment: &str) -> bool {
    segment
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':' | b'@'))
}

fn split_canonical(path: &str) -> Result<Vec<&str>, RouteError> {
    let not_canonical = |reason| RouteError::NotCanonical {
        path: path.to_owned(),
        reason,
    };
    let Some(rest) = path.strip_prefix('/') else {
        return Err(not_canonical("it does not start with '/'"));
    };
    if path.contains('%') {
        return Err(not_canonical("percent-encoding"));
    }
    let segments: Vec<&str> = rest.split('/').collect();
    for segment in &segments {
        match *segment {
            "" => return Err(not_canonical("an empty segment")),
            "." | ".." => return Err(not_canonical("a '.' or '..' segment")),
            s if !segment_is_plain(s) => {
                return Err(not_canonical(
                    "a character that Engine API paths never contain",
                ));
            }
            _ => {}
        }
    }
    Ok(segments)
}

fn parse_version(segment: &str) -> Option<Result<ApiVersion, RouteError>> {
    let digits = segment.strip_prefix('v')?;
    if !digits.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let unsupported = || RouteError::UnsupportedVersion {
        version: digits.to_owned(),
    };
    let parsed = digits.split_once('.').and_then(|(major, minor)| {
        let plain =
            |s: &str| !s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit());
        if !plain(major) || !plain(minor) {
            return None;
        }
        Some(ApiVersion {
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
        })
    });
    Some(match parsed {
        Some(v) if v.major == 1 && (MIN_API_MINOR..=MAX_API_MINOR).contains(&v.minor) => Ok(v),
        _ => Err(unsupported()),
    })
}

impl Route {
    /// Turns a request method and path (without the query) into a route, or refuses it.
    ///
    /// # Errors
    /// [`RouteError`] for every path that is not canonical, not in the table, or in a closed area.
    pub fn parse(method: &Method, path: &str) -> Result<Self, RouteError> {
        let all = split_canonical(path)?;
        let (version, segments) = match all.split_first() {
            Some((first, rest)) => match parse_version(first) {
                Some(v) => (Some(v?), rest),
                None => (None, all.as_slice()),
            },
            None => (None, all.as_slice()),
        };
        let forbidden = |reason| RouteError::Forbidden {
            method: method.clone(),
            path: path.to_owned(),
            reason,
        };
        let unknown = || RouteError::Unknown {
            method: method.clone(),
            path: path.to_owned(),
        };
        let Some(area) = segments.first() else {
            return Err(unknown());
        };
        if let Some((_, reason)) = FORBIDDEN_AREAS.iter().find(|(a, _)| a == area) {
            return Err(forbidden(reason));
        }
        let operation = match *area {
            "containers" => containers(method, &segments[1..], forbidden),
            "exec" => exec(method, &segments[1..]),
            "images" => images(method, &segments[1..]),
            "volumes" => volumes(method, &segments[1..]),
            "networks" => networks(method, &segments[1..]),
            _ => top_level(method, segments),
        };
        match operation {
            Some(Ok(operation)) => Ok(Self { version, operation }),
            Some(Err(e)) => Err(e),
            None => Err(unknown()),
        }
    }
}

fn top_level(method: &Method, segments: &[&str]) -> Option<Result<Operation, RouteError>> {
    let op = match (method.as_str(), segments) {
        ("GET" | "HEAD", ["_ping"]) => Operation::Ping,
        ("GET", ["version"]) => Operation::Version,
        ("GET", ["info"]) => Operation::Info,
        ("GET", ["events"]) => Operation::Events,
        ("GET", ["system", "df"]) => Operation::SystemDf,
        ("POST", ["auth"]) => Operation::Auth,
        ("POST", ["commit"]) => Operation::Commit,
        ("POST", ["build"]) => Operation::Build,
        ("POST", ["build", "prune"]) => Operation::BuildPrune,
        ("POST", ["build", "cancel"]) => Operation::BuildCancel,
        ("POST", ["session"]) => Operation::Session,
        _ => return None,
    };
    Some(Ok(op))
}

fn containers(
    method: &Method,
    segments: &[&str],
    forbidden: impl Fn(&'static str) -> RouteError,
) -> Option<Result<Operation, RouteError>> {
    let id = |s: &str| s.to_owned();
    let op = match (method.as_str(), segments) {
        ("GET", ["json"]) => Operation::ContainerList,
        ("POST", ["create"]) => Operation::ContainerCreate,
        ("POST", ["prune"]) => Operation::ContainerPrune,
        ("GET", [c, "json"]) => Operation::ContainerInspect { id: id(c) },
        ("GET", [c, "top"]) => Operation::ContainerTop { id: id(c) },
        ("GET", [c, "logs"]) => Operation::ContainerLogs { id: id(c) },
        ("GET", [c, "changes"]) => Operation::ContainerChanges { id: id(c) },
        ("GET", [c, "export"]) => Operation::ContainerExport { id: id(c) },
        ("GET", [c, "stats"]) => Operation::ContainerStats { id: id(c) },
        ("POST", [c, "resize"]) => Operation::ContainerResize { id: id(c) },
        ("POST", [c, "start"]) => Operation::ContainerStart { id: id(c) },
        ("POST", [c, "stop"]) => Operation::ContainerStop { id: id(c) },
        ("POST", [c, "restart"]) => Operation::ContainerRestart { id: id(c) },
        ("POST", [c, "kill"]) => Operation::ContainerKill { id: id(c) },
        ("POST", [c, "update"]) => Operation::ContainerUpdate { id: id(c) },
        ("POST", [c, "rename"]) => Operation::ContainerRename { id: id(c) },
        ("POST", [c, "pause"]) => Operation::ContainerPause { id: id(c) },
        ("POST", [c, "unpause"]) => Operation::ContainerUnpause { id: id(c) },
        ("POST", [c, "attach"]) => Operation::ContainerAttach { id: id(c) },
        ("POST", [c, "wait"]) => Operation::ContainerWait { id: id(c) },
        ("POST", [c, "exec"]) => Operation::ExecCreate { id: id(c) },
        ("DELETE", [c]) => Operation::ContainerDelete { id: id(c) },
        ("HEAD", [c, "archive"]) => Operation::ContainerArchiveStat { id: id(c) },
        ("GET", [c, "archive"]) => Operation::ContainerArchiveGet { id: id(c) },
        ("PUT", [c, "archive"]) => Operation::ContainerArchivePut { id: id(c) },
        (_, [_, "attach", "ws"]) => {
            return Some(Err(forbidden(
                "websocket attach is not served; use the hijacked attach endpoint",
            )))
        }
        (_, [_, "checkpoints", ..]) => {
            return Some(Err(forbidden(
                "checkpoints are an experimental engine feature",
            )))
        }
        _ => return None,
    };
    Some(Ok(op))
}

fn exec(method: &Method, segments: &[&str]) -> Option<Result<Operation, RouteError>> {
    let id = |s: &str| s.to_owned();
    let op = match (method.as_str(), segments) {
        ("POST", [e, "start"]) => Operation::ExecStart { id: id(e) },
        ("POST", [e, "resize"]) => Operation::ExecResize { id: id(e) },
        ("GET", [e, "json"]) => Operation::ExecInspect { id: id(e) },
        _ => return None,
    };
    Some(Ok(op))
}

/// Image routes take a name that may itself contain `/` (`/images/127.0.0.1:5000/a/b/json`), so
/// they are matched the way the engine's router registers them: fixed routes first, then the
/// action as the last segment with everything between as the name.
fn images(method: &Method, segments: &[&str]) -> Option<Result<Operation, RouteError>> {
    let fixed = match (method.as_str(), segments) {
        ("GET", ["json"]) => Some(Operation::ImageList),
        ("GET", ["search"]) => Some(Operation::ImageSearch),
        ("GET", ["get"]) => Some(Operation::ImageGetAll),
        ("POST", ["load"]) => Some(Operation::ImageLoad),
        ("POST", ["create"]) => Some(Operation::ImageCreate),
        ("POST", ["prune"]) => Some(Operation::ImagePrune),
        _ => None,
    };
    if let Some(op) = fixed {
        return Some(Ok(op));
    }
    if method == Method::DELETE {
        return (!segments.is_empty()).then(|| {
            Ok(Operation::ImageDelete {
                name: segments.join("/"),
            })
        });
    }
    let (action, name) = segments.split_last()?;
    if name.is_empty() {
        return None;
    }
    let name = name.join("/");
    let op = match (method.as_str(), *action) {
        ("GET", "json") => Operation::ImageInspect { name },
        ("GET", "history") => Operation::ImageHistory { name },
        ("GET", "get") => Operation::ImageGet { name },
        ("POST", "push") => Operation::ImagePush { name },
        ("POST", "tag") => Operation::ImageTag { name },
        _ => return None,
    };
    Some(Ok(op))
}

fn volumes(method: &Method, segments: &[&str]) -> Option<Result<Operation, RouteError>> {
    let op = match (method.as_str(), segments) {
        ("GET", []) => Operation::VolumeList,
        ("POST", ["create"]) => Operation::VolumeCreate,
        ("POST", ["prune"]) => Operation::VolumePrune,
        ("GET", [v]) => Operation::VolumeInspect {
            name: (*v).to_owned(),
        },
        ("DELETE", [v]) => Operation::VolumeDelete {
            name: (*v).to_owned(),
        },
        _ => return None,
    };
    Some(Ok(op))
}

fn networks(method: &Method, segments: &[&str]) -> Option<Result<Operation, RouteError>> {
    let id = |s: &str| s.to_owned();
    let op = match (method.as_str(), segments) {
        ("GET", []) => Operation::NetworkList,
        ("POST", ["create"]) => Operation::NetworkCreate,
        ("POST", ["prune"]) => Operation::NetworkPrune,
        ("GET", [n]) => Operation::NetworkInspect { id: id(n) },
        ("POST", [n, "connect"]) => Operation::NetworkConnect { id: id(n) },
        ("POST", [n, "disconnect"]) => Operation::NetworkDisconnect { id: id(n) },
        ("DELETE", [n]) => Operation::NetworkDelete { id: id(n) },
        _ => return None,
    };
    Some(Ok(op))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(method: Method, path: &str) -> Operation {
        match Route::parse(&method, path) {
            Ok(route) => route.operation,
            Err(e) => panic!("{method} {path} refused: {e}"),
        }
    }

    fn refused(method: Method, path: &str) -> RouteError {
        match Route::parse(&method, path) {
            Ok(route) => panic!("{method} {path} accepted as {route:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn cli_routes_with_and_without_version() {
        for prefix in ["", "/v1.24", "/v1.41", "/v1.51"] {
            assert_eq!(op(Method::GET, &format!("{prefix}/_ping")), Operation::Ping);
            assert_eq!(
                op(Method::HEAD, &format!("{prefix}/_ping")),
                Operation::Ping
            );
            assert_eq!(
                op(Method::POST, &format!("{prefix}/containers/create")),
                Operation::ContainerCreate
            );
            assert_eq!(
                op(Method::POST, &format!("{prefix}/exec/abc123/start")),
                Operation::ExecStart {
                    id: "abc123".into()
                }
            );
        }
    }

    #[test]
    fn version_prefix_is_recorded() {
        let route = Route::parse(&Method::GET, "/v1.41/info").unwrap();
        assert_eq!(
            route.version,
            Some(ApiVersion {
                major: 1,
                minor: 41
            })
        );
        assert_eq!(route.operation, Operation::Info);
        assert_eq!(Route::parse(&Method::GET, "/info").unwrap().version, None);
    }

    #[test]
    fn image_names_with_slashes_and_ports() {
        assert_eq!(
            op(
                Method::GET,
                "/v1.41/images/127.0.0.1:5000/team/app:1.0/json"
            ),
            Operation::ImageInspect {
                name: "127.0.0.1:5000/team/app:1.0".into()
            }
        );
        assert_eq!(
            op(Method::POST, "/images/localhost:5000/app/push"),
            Operation::ImagePush {
                name: "localhost:5000/app".into()
            }
        );
        assert_eq!(
            op(Method::DELETE, "/images/a/b@sha256:0123abcd"),
            Operation::ImageDelete {
                name: "a/b@sha256:0123abcd".into()
            }
        );
        assert_eq!(op(Method::GET, "/images/json"), Operation::ImageList);
        assert_eq!(
            op(Method::GET, "/images/json/json"),
            Operation::ImageInspect {
                name: "json".into()
            }
        );
    }

    #[test]
    fn hijack_kinds() {
        assert_eq!(
            op(Method::POST, "/containers/x/attach").hijack(),
            Hijack::Raw
        );
        assert_eq!(op(Method::POST, "/exec/x/start").hijack(), Hijack::Raw);
        assert_eq!(op(Method::POST, "/session").hijack(), Hijack::H2c);
        assert_eq!(op(Method::GET, "/containers/x/logs").hijack(), Hijack::No);
    }

    #[test]
    fn closed_areas_are_forbidden_with_reason() {
        for path in [
            "/plugins",
            "/v1.41/plugins/pull",
            "/swarm/init",
            "/services/create",
            "/nodes",
            "/tasks",
            "/secrets/create",
            "/configs",
            "/distribution/busybox/json",
            "/libpod/containers/json",
            "/v1.41/libpod/info",
            "/grpc",
            "/containers/x/attach/ws",
            "/containers/x/checkpoints",
        ] {
            assert!(
                matches!(refused(Method::POST, path), RouteError::Forbidden { .. }),
                "{path}"
            );
        }
    }

    #[test]
    fn unknown_routes_and_wrong_methods() {
        for (method, path) in [
            (Method::GET, "/"),
            (Method::GET, "/containers"),
            (Method::DELETE, "/_ping"),
            (Method::POST, "/containers/json"),
            (Method::GET, "/containers/x/start"),
            (Method::PUT, "/volumes/x"),
            (Method::GET, "/images"),
            (Method::POST, "/images/x/json"),
            (Method::GET, "/exec/x/start"),
            (Method::GET, "/v1.41"),
            (Method::GET, "/containers/a/b/json"),
            (Method::GET, "/debug/pprof/"),
            (Method::OPTIONS, "/_ping"),
        ] {
            assert!(
                matches!(
                    refused(method.clone(), path),
                    RouteError::Unknown { .. } | RouteError::NotCanonical { .. }
                ),
                "{method} {path}"
            );
        }
    }

    #[test]
    fn non_canonical_paths_are_refused_not_normalised() {
        for path in [
            "/containers//json",
            "//containers/json",
            "/containers/json/",
            "/containers/./json",
            "/containers/x/../../plugins",
            "/v1.41/../plugins",
            "/%63ontainers/json",
            "/containers/x%2Fy/json",
            "/swarm%2finit",
            "containers/json",
            "/containers/x y/json",
            "/containers/x\\y/json",
            "/images/a/../../plugins/json",
        ] {
            assert!(
                matches!(refused(Method::GET, path), RouteError::NotCanonical { .. }),
                "{path}"
            );
        }
    }

    #[test]
    fn version_prefixes_out_of_range() {
        for path in [
            "/v1.23/_ping",
            "/v2.0/_ping",
            "/v1.411/_ping",
            "/v1/_ping",
            "/v1.41.1/_ping",
            "/v1.-1/_ping",
            "/v01.0041/_ping",
        ] {
            assert!(
                matches!(
                    refused(Method::GET, path),
                    RouteError::UnsupportedVersion { .. }
                ),
                "{path}"
            );
        }
    }

    /// No input panics the parser, and whatever it accepts is canonical: a cheap, deterministic
    /// stand-in for the fuzz target, run with every test.
    #[test]
    fn arbitrary_paths_never_panic_and_accepted_ones_are_canonical() {
        let alphabet: &[u8] = b"/._-:@%?#azAZ09 \\\x00\xff";
        let words = [
            "containers",
            "json",
            "images",
            "exec",
            "v1.41",
            "..",
            ".",
            "swarm",
            "plugins",
            "start",
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let methods = [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::HEAD,
        ];
        for _ in 0..50_000 {
            let mut path = String::new();
            let parts = next() % 8;
            for _ in 0..parts {
                if next() % 2 == 0 {
                    path.push('/');
                    path.push_str(words[(next() % words.len() as u64) as usize]);
                } else {
                    let byte = alphabet[(next() % alphabet.len() as u64) as usize];
                    path.push(char::from(byte));
                }
            }
            let method = &methods[(next() % methods.len() as u64) as usize];
            if let Ok(route) = Route::parse(method, &path) {
                assert!(path.starts_with('/'), "{path:?} -> {route:?}");
                assert!(!path.contains("//") && !path.contains('%'), "{path:?}");
                assert!(
                    !path.split('/').any(|s| s == "." || s == ".."),
                    "{path:?} -> {route:?}"
                );
            }
        }
    }
}
