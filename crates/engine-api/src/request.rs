//! A request as the rules see it: its route, its query and, for the operations whose body the
//! gateway inspects, the checked canonical body.

use crate::json::{self, Value};
use crate::query::{Query, QueryError};
use crate::route::{Operation, Route};
use crate::schema::{self, Ty};
use std::fmt;

/// The most a JSON body may hold. Create bodies from the CLI are a few KiB; a long environment
/// or many labels stay far below this.
pub const MAX_JSON_BODY: usize = 4 << 20;

/// What an operation carries as its request body.
#[derive(Debug, Clone, Copy)]
pub enum BodyKind {
    /// Nothing: a request that sends a body anyway is refused.
    None,
    /// JSON of this type, checked and forwarded re-serialised. `required`: an empty body is
    /// refused (the engine would refuse it too).
    Json {
        /// The Go type the engine decodes the body into.
        ty: &'static Ty,
        /// Whether an empty body is an error.
        required: bool,
    },
    /// A byte stream the engine reads itself (a tar archive: build context, `docker load`,
    /// `docker import`, `docker cp` into a container), streamed through.
    Stream,
}

impl BodyKind {
    /// The body an operation takes. `docker import` (`POST /images/create?fromSrc=-`) streams a
    /// tarball; every other image create takes no body.
    #[must_use]
    pub fn of(operation: &Operation, query: &Query) -> BodyKind {
        use Operation as O;
        let json = |ty, required| BodyKind::Json { ty, required };
        match operation {
            O::ContainerCreate => json(&schema::CONTAINER_CREATE, true),
            O::ExecCreate { .. } => json(&schema::EXEC_CREATE, true),
            O::ExecStart { .. } => json(&schema::EXEC_START, false),
            O::ContainerUpdate { .. } => json(&schema::CONTAINER_UPDATE, true),
            O::VolumeCreate => json(&schema::VOLUME_CREATE, false),
            O::NetworkCreate => json(&schema::NETWORK_CREATE, true),
            O::NetworkConnect { .. } => json(&schema::NETWORK_CONNECT, true),
            O::NetworkDisconnect { .. } => json(&schema::NETWORK_DISCONNECT, true),
            O::Commit => json(&schema::CONFIG, false),
            O::Auth => json(&schema::AUTH, true),
            O::Build | O::ImageLoad | O::ContainerArchivePut { .. } => BodyKind::Stream,
            O::ImageCreate if query.get("fromSrc") == Some("-") => BodyKind::Stream,
            _ => BodyKind::None,
        }
    }
}

/// A request the rules can judge: nothing in it is left unparsed.
#[derive(Debug, Clone)]
pub struct Request {
    /// Route and operation.
    pub route: Route,
    /// The query string, checked against the parameters the operation takes.
    pub query: Query,
    /// For JSON operations, the canonical checked body (`None` when the body was empty).
    pub body: Option<Value>,
    /// For streamed archives the gateway read before forwarding: what the rules need from
    /// them (`None` when the stream was not read).
    pub archive: Option<ArchiveFacts>,
}

/// What the gateway read out of a streamed archive before forwarding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveFacts {
    /// The images a build context's Dockerfile uses.
    BuildSources(Vec<crate::dockerfile::ImageSource>),
    /// The image names a `docker load` archive creates.
    LoadNames(Vec<String>),
}

/// Why a request cannot be judged. Each becomes a 400 naming the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// The query string.
    Query(QueryError),
    /// A body on an operation that takes none.
    UnexpectedBody,
    /// An empty body where one is required.
    MissingBody,
    /// Over [`MAX_JSON_BODY`].
    BodyTooLarge,
    /// Not JSON this gateway accepts.
    Json(json::JsonError),
    /// JSON of the wrong shape.
    Schema(schema::SchemaError),
    /// A content type the engine would read as form fields.
    FormContentType(String),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Query(e) => e.fmt(f),
            RequestError::UnexpectedBody => f.write_str("this endpoint takes no request body"),
            RequestError::MissingBody => f.write_str("this endpoint needs a JSON request body"),
            RequestError::BodyTooLarge => write!(
                f,
                "the JSON request body is larger than {} MiB",
                MAX_JSON_BODY >> 20
            ),
            RequestError::Json(e) => write!(f, "the request body is not valid JSON: {e}"),
            RequestError::Schema(e) => write!(f, "request body: {e}"),
            RequestError::FormContentType(t) => write!(
                f,
                "content type {t:?} is refused: the engine would read the body as query parameters"
            ),
        }
    }
}

impl std::error::Error for RequestError {}

impl From<QueryError> for RequestError {
    fn from(e: QueryError) -> Self {
        RequestError::Query(e)
    }
}

/// Refuse a `Content-Type` that makes Go's `Request.ParseForm` read the body as form fields.
/// The engine reads parameters with `r.FormValue`, where body fields come before query fields,
/// so such a body could override a query parameter the rules checked
/// (`POST /build?networkmode=default` with the body `networkmode=host`).
///
/// # Errors
/// [`RequestError::FormContentType`] for `application/x-www-form-urlencoded` and
/// `multipart/form-data`, in any case and with any parameters.
pub fn check_content_type(content_type: Option<&[u8]>) -> Result<(), RequestError> {
    let Some(raw) = content_type else {
        return Ok(());
    };
    let text = String::from_utf8_lossy(raw);
    let media = text
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media == "application/x-www-form-urlencoded" || media == "multipart/form-data" {
        return Err(RequestError::FormContentType(text.into_owned()));
    }
    Ok(())
}

impl Request {
    /// Build a request from its parts. `body` is the whole body for JSON operations, and must be
    /// empty for operations that take none; stream operations pass an empty slice (their body is
    /// not read here).
    ///
    /// # Errors
    /// The query, the body's presence, its JSON or its shape.
    pub fn new(route: Route, raw_query: &str, body: &[u8]) -> Result<Self, RequestError> {
        let query = Query::parse(raw_query)?;
        query.check_for(&route.operation)?;
        let body = match BodyKind::of(&route.operation, &query) {
            BodyKind::None => {
                if !body.is_empty() {
                    return Err(RequestError::UnexpectedBody);
                }
                None
            }
            BodyKind::Stream => None,
            BodyKind::Json { ty, required } => {
                if body.len() > MAX_JSON_BODY {
                    return Err(RequestError::BodyTooLarge);
                }
                if body.iter().all(u8::is_ascii_whitespace) {
                    if required {
                        return Err(RequestError::MissingBody);
                    }
                    None
                } else {
                    let value = json::parse(body).map_err(RequestError::Json)?;
                    Some(schema::check_owned(value, ty).map_err(RequestError::Schema)?)
                }
            }
        };
        Ok(Self {
            route,
            query,
            body,
            archive: None,
        })
    }

    /// The canonical body as it is forwarded.
    #[must_use]
    pub fn body_bytes(&self) -> Option<Vec<u8>> {
        self.body.as_ref().map(Value::to_json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    fn req(method: Method, path: &str, query: &str, body: &str) -> Result<Request, RequestError> {
        Request::new(Route::parse(&method, path).unwrap(), query, body.as_bytes())
    }

    #[test]
    fn bodies_where_none_belong_are_refused() {
        assert_eq!(
            req(Method::POST, "/containers/x/start", "", "{}").unwrap_err(),
            RequestError::UnexpectedBody
        );
        assert!(req(Method::POST, "/containers/x/start", "", "").is_ok());
        assert_eq!(
            req(Method::POST, "/containers/create", "", " ").unwrap_err(),
            RequestError::MissingBody
        );
        assert!(req(Method::POST, "/images/create", "fromSrc=-", "tar bytes").is_ok());
        assert_eq!(
            req(Method::POST, "/images/create", "fromImage=x", "tar").unwrap_err(),
            RequestError::UnexpectedBody
        );
    }

    #[test]
    fn json_bodies_are_checked_and_canonical() {
        let r = req(
            Method::POST,
            "/v1.41/containers/create",
            "name=a",
            r#"{"image":"busybox","HostConfig":{"privileged":false}}"#,
        )
        .unwrap();
        assert_eq!(
            r.body_bytes().unwrap(),
            br#"{"Image":"busybox","HostConfig":{"Privileged":false}}"#
        );
        assert!(matches!(
            req(
                Method::POST,
                "/containers/create",
                "",
                r#"{"Image":"x"} {}"#
            ),
            Err(RequestError::Json(_))
        ));
        assert!(matches!(
            req(
                Method::POST,
                "/containers/create",
                "",
                r#"{"Image":"x","Privileged":true}"#
            ),
            Err(RequestError::Schema(_))
        ));
        assert!(req(Method::POST, "/commit", "container=x", "").is_ok());
    }

    #[test]
    fn form_content_types_are_refused() {
        assert!(check_content_type(None).is_ok());
        assert!(check_content_type(Some(b"application/json")).is_ok());
        assert!(check_content_type(Some(b"application/x-tar")).is_ok());
        for bad in [
            &b"application/x-www-form-urlencoded"[..],
            b"Application/X-WWW-Form-Urlencoded; charset=utf-8",
            b" multipart/form-data; boundary=x",
        ] {
            assert!(check_content_type(Some(bad)).is_err());
        }
    }
}
