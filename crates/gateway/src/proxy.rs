//! One client connection: identify the peer, parse each request against the route table, forward
//! what passes over this connection's own engine connection, stream the answer back.

use crate::respond::{Body, BoxError, Refusal};
use crate::spool::{FileBody, SpoolError};
use crate::stream::Stream;
use crate::GatewayConfig;
use http::{header, HeaderMap, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;
use stockade_engine_api::{check_content_type, BodyKind, Hijack, Query, Route};
use stockade_policy::rules::ImageLookup;
use tokio::sync::Mutex;
use tokio::task::AbortHandle;

/// Who is on the other end of a client connection, from `SO_PEERCRED`.
#[derive(Debug, Clone)]
struct Peer {
    /// The caller's uid: the peer's own, or for a container socket the container's owner.
    uid: u32,
    gid: u32,
    pid: Option<i32>,
    /// For a container socket: the container the request came from.
    container: Option<Arc<str>>,
}

/// An engine connection: the request handle and the task driving the socket. Dropping it ends
/// the task, which closes the socket, which is how the engine learns that a client went away
/// (and stops following logs or events for it).
/// What goes to the engine: the client's body streamed through (tar archives), or the body the
/// gateway read, checked and re-serialised (JSON), or nothing.
type EngineBody = Either<Incoming, Either<Full<bytes::Bytes>, FileBody>>;

struct Upstream {
    sender: SendRequest<EngineBody>,
    driver: AbortOnDrop,
}

struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Idle engine connections left by client connections that ended, reused by new ones so that a
/// client opening a connection per request does not cost an engine connection each time. Only a
/// connection with no request in flight is kept; one whose client went away mid-answer is closed
/// (that is what tells the engine to stop following logs or events).
pub(crate) struct Pool {
    /// Each caller's merged settings, reused while the policy and their settings file stay
    /// the same (merging costs about ten microseconds a request).
    settings: std::sync::RwLock<std::collections::HashMap<u32, CachedSettings>>,
    idle: Mutex<Vec<Upstream>>,
    capacity: usize,
    /// The per-container sockets, when the gateway serves Docker socket mounts.
    pub(crate) sockets: Option<Arc<crate::container_socket::Registry>>,
    /// The containers held still for copies in progress.
    holds: Arc<crate::freeze::Holds>,
}

impl Pool {
    pub(crate) fn new(
        capacity: usize,
        sockets: Option<Arc<crate::container_socket::Registry>>,
    ) -> Self {
        Self {
            holds: Arc::default(),
            settings: std::sync::RwLock::new(std::collections::HashMap::new()),
            idle: Mutex::new(Vec::with_capacity(capacity)),
            capacity,
            sockets,
        }
    }

    fn take(&self) -> Option<Upstream> {
        let mut idle = self.idle.try_lock().ok()?;
        while let Some(upstream) = idle.pop() {
            if upstream.sender.is_ready() {
                return Some(upstream);
            }
        }
        None
    }

    fn give_back(&self, upstream: Upstream) {
        if !upstream.sender.is_ready() {
            return;
        }
        if let Ok(mut idle) = self.idle.try_lock() {
            if idle.len() < self.capacity {
                idle.push(upstream);
            }
        }
    }
}

struct Connection {
    config: Arc<GatewayConfig>,
    pool: Arc<Pool>,
    peer: Peer,
    id: u64,
    upstream: Mutex<Option<Upstream>>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(upstream) = self.upstream.get_mut().take() {
            self.pool.give_back(upstream);
        }
    }
}

pub(crate) async fn serve_connection(
    stream: Stream,
    config: Arc<GatewayConfig>,
    pool: Arc<Pool>,
    id: u64,
    container: Option<(u32, Arc<str>)>,
) {
    // Fail closed: a caller we cannot identify is not served at all.
    let peer = match stream.peer_cred() {
        Ok(cred) => match container {
            // A container socket: the caller is the container, acting for its owner.
            Some((owner, container)) => Peer {
                uid: owner,
                gid: cred.gid,
                pid: Some(cred.pid),
                container: Some(container),
            },
            None => Peer {
                uid: cred.uid,
                gid: cred.gid,
                pid: Some(cred.pid),
                container: None,
            },
        },
        Err(e) => {
            tracing::warn!(conn = id, error = %e, "cannot read the peer's credentials; closing");
            return;
        }
    };
    tracing::debug!(
        conn = id,
        uid = peer.uid,
        gid = peer.gid,
        pid = peer.pid.unwrap_or(0),
        container = peer.container.as_deref().unwrap_or(""),
        "client connected"
    );
    let connection = Arc::new(Connection {
        config: Arc::clone(&config),
        pool,
        peer,
        id,
        upstream: Mutex::new(None),
    });
    let service = hyper::service::service_fn(move |req| {
        let connection = Arc::clone(&connection);
        async move { Ok::<_, Infallible>(connection.handle(req).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .max_buf_size(config.max_head_bytes)
        .keep_alive(true);
    let served = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades()
        .await;
    if let Err(e) = served {
        tracing::debug!(conn = id, error = %e, "client connection ended with an error");
    }
}

impl Connection {
    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let route = match Route::parse(&method, &path) {
            Ok(route) => route,
            Err(e) => {
                let refusal = Refusal::Denied(format!("enhanced container isolation: {e}"));
                return self
                    .refuse(&method, &path, "-", started, refusal, req, true)
                    .await;
            }
        };
        let operation = route.operation.name();
        let upgrade_requested = wants_upgrade(req.headers());
        if route.operation.hijack() == Hijack::H2c && !upgrade_requested {
            let refusal = Refusal::BadRequest(
                "the BuildKit session endpoint needs an HTTP upgrade".to_owned(),
            );
            return self
                .refuse(&method, &path, operation, started, refusal, req, true)
                .await;
        }
        // Parse, then judge: the query and the body are read the way the engine reads them, and
        // what cannot be read so is refused before anything is forwarded.
        let raw_query = req.uri().query().unwrap_or("").to_owned();
        let target = if raw_query.is_empty() {
            path.clone()
        } else {
            format!("{path}?{raw_query}")
        };
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.as_bytes().to_vec());
        let query = match check_content_type(content_type.as_deref())
            .map_err(|e| e.to_string())
            .and_then(|()| Query::parse(&raw_query).map_err(|e| e.to_string()))
            .and_then(|q| {
                q.check_for(&route.operation)
                    .map(|()| q)
                    .map_err(|e| e.to_string())
            }) {
            Ok(query) => query,
            Err(e) => {
                return self
                    .refuse(
                        &method,
                        &path,
                        operation,
                        started,
                        Refusal::BadRequest(e),
                        req,
                        true,
                    )
                    .await;
            }
        };
        let kind = BodyKind::of(&route.operation, &query);
        if let BodyKind::Stream = kind {
            // The rules judge the query; the stream goes to the engine unread unless the
            // caller's image rules need what is inside it (a build's base images, the names a
            // load creates): then it is spooled, read, judged and forwarded from the spool.
            let mut checked =
                match stockade_engine_api::Request::new(route.clone(), &raw_query, b"") {
                    Ok(checked) => checked,
                    Err(e) => {
                        let refusal = Refusal::BadRequest(e.to_string());
                        return self
                            .refuse(&method, &path, operation, started, refusal, req, true)
                            .await;
                    }
                };
            let needs_archive = match self.caller_settings() {
                Ok((_, settings)) => stockade_policy::rules::needs_archive(&checked, &settings),
                Err(refusal) => {
                    return self
                        .refuse(&method, &path, operation, started, refusal, req, true)
                        .await;
                }
            };
            // Refuse what the query alone refuses before reading anything.
            let first = if needs_archive {
                None
            } else {
                self.judge(&checked, &Facts::default(), &target)
            };
            if let Some(refusal) = first {
                return self
                    .refuse(&method, &path, operation, started, refusal, req, true)
                    .await;
            }
            if needs_archive {
                let (mut parts, body) = req.into_parts();
                let file = match self.read_archive(body, &mut checked, &target).await {
                    Ok(file) => file,
                    Err(refusal) => {
                        return self
                            .answer_read(&method, &path, operation, started, refusal)
                            .await;
                    }
                };
                parts.headers.remove(header::TRANSFER_ENCODING);
                parts.headers.insert(
                    header::CONTENT_LENGTH,
                    header::HeaderValue::from(file.len()),
                );
                let req =
                    Request::from_parts(parts, Either::Right(Either::Right(file.into_body())));
                return self
                    .send_checked(req, &route, false, &method, &path, started)
                    .await;
            }
        }
        // docker cp into or out of a running container: paused for the copy (CVE-2018-15664).
        let frozen = match &route.operation {
            stockade_engine_api::Operation::ContainerArchivePut { id }
            | stockade_engine_api::Operation::ContainerArchiveGet { id } => {
                match crate::freeze::freeze(&self.config.engine, id, &self.pool.holds).await {
                    Ok(frozen) => frozen,
                    Err(e) => {
                        let refusal = Refusal::Denied(format!(
                            "enhanced container isolation: the container could not be paused for a safe copy ({e}); try again"
                        ));
                        return self
                            .refuse(&method, &path, operation, started, refusal, req, true)
                            .await;
                    }
                }
            }
            // What would set a held container's processes running waits for the copies.
            stockade_engine_api::Operation::ContainerStart { id }
            | stockade_engine_api::Operation::ContainerStop { id }
            | stockade_engine_api::Operation::ContainerRestart { id }
            | stockade_engine_api::Operation::ContainerKill { id }
            | stockade_engine_api::Operation::ContainerUnpause { id } => {
                let refusal = match crate::freeze::held(&self.config.engine, id, &self.pool.holds).await {
                    Ok(None) => None,
                    Ok(Some(_)) => Some(Refusal::Denied(
                        "enhanced container isolation: a copy into or out of this container (docker cp) is in progress, and until it ends the container is held as it is (CVE-2018-15664); try again when the copy has finished".to_owned(),
                    )),
                    Err(e) => Some(Refusal::Denied(format!(
                        "enhanced container isolation: cannot tell whether a copy into or out of this container is in progress ({e}); try again"
                    ))),
                };
                if let Some(refusal) = refusal {
                    return self
                        .refuse(&method, &path, operation, started, refusal, req, true)
                        .await;
                }
                None
            }
            _ => None,
        };
        let (mut parts, body) = req.into_parts();
        let mut pending = None;
        let body: EngineBody = match kind {
            BodyKind::Stream => Either::Left(body),
            BodyKind::None | BodyKind::Json { .. } => {
                let limit = match kind {
                    BodyKind::Json { .. } => stockade_engine_api::request::MAX_JSON_BODY,
                    _ => 0,
                };
                let bytes = match Limited::new(body, limit).collect().await {
                    Ok(collected) => collected.to_bytes(),
                    Err(e) => {
                        let message = if matches!(kind, BodyKind::None) {
                            "this endpoint takes no request body".to_owned()
                        } else {
                            format!("the request body could not be read: {e}")
                        };
                        return self
                            .answer_read(
                                &method,
                                &path,
                                operation,
                                started,
                                Refusal::BadRequest(message),
                            )
                            .await;
                    }
                };
                let mut checked =
                    match stockade_engine_api::Request::new(route.clone(), &raw_query, &bytes) {
                        Ok(checked) => checked,
                        Err(e) => {
                            return self
                                .answer_read(
                                    &method,
                                    &path,
                                    operation,
                                    started,
                                    Refusal::BadRequest(e.to_string()),
                                )
                                .await;
                        }
                    };
                // What the caller creates is labelled as theirs; a request may not set the
                // label itself.
                if let Err(d) = stockade_policy::rules::stamp_owner(&mut checked, self.peer.uid) {
                    return self
                        .answer_read(
                            &method,
                            &path,
                            operation,
                            started,
                            Refusal::Denied(d.reason),
                        )
                        .await;
                }
                let facts = match self.look_up_facts(&checked).await {
                    Ok(facts) => facts,
                    Err(refusal) => {
                        return self
                            .answer_read(&method, &path, operation, started, refusal)
                            .await;
                    }
                };
                if let Some(refusal) = self.judge(&checked, &facts, &target) {
                    return self
                        .answer_read(&method, &path, operation, started, refusal)
                        .await;
                }
                // An allowed Docker socket mount gets the container's own socket instead.
                match self.container_socket_for(&mut checked) {
                    Ok(p) => pending = p,
                    Err(refusal) => {
                        return self
                            .answer_read(&method, &path, operation, started, refusal)
                            .await;
                    }
                }
                let forwarded = checked.body_bytes().unwrap_or_default();
                parts.headers.remove(header::TRANSFER_ENCODING);
                if forwarded.is_empty() {
                    parts.headers.remove(header::CONTENT_TYPE);
                    parts.headers.remove(header::CONTENT_LENGTH);
                } else {
                    parts.headers.insert(
                        header::CONTENT_TYPE,
                        header::HeaderValue::from_static("application/json"),
                    );
                    parts.headers.insert(
                        header::CONTENT_LENGTH,
                        header::HeaderValue::from(forwarded.len()),
                    );
                }
                Either::Right(Either::Left(Full::new(bytes::Bytes::from(forwarded))))
            }
        };
        let req = Request::from_parts(parts, body);
        let response = self
            .send_checked(req, &route, upgrade_requested, &method, &path, started)
            .await;
        let response = match pending {
            Some(pending) => self.activate_container_socket(pending, response),
            None => response,
        };
        match frozen {
            Some(frozen) => {
                response.map(|body| crate::freeze::ThawOnEnd::new(body, frozen).boxed_unsync())
            }
            None => response,
        }
    }

    /// For a create that mounts the Docker socket: a socket of the container's own, which
    /// replaces the mount's source in the body.
    fn container_socket_for(
        &self,
        checked: &mut stockade_engine_api::Request,
    ) -> Result<Option<crate::container_socket::Pending>, Refusal> {
        if checked.route.operation != stockade_engine_api::Operation::ContainerCreate {
            return Ok(None);
        }
        let resolve = |p: &std::path::Path| std::fs::canonicalize(p).ok();
        let registry = self.pool.sockets.as_deref();
        let places = stockade_policy::rules::SocketPlaces {
            paths: &self.config.socket_paths,
            container_dir: registry.map(crate::container_socket::Registry::dir),
            resolve: &resolve,
        };
        if !stockade_policy::rules::has_socket_mounts(checked, &places) {
            return Ok(None);
        }
        // Never the gateway's own socket: without a container socket there is no mount.
        let registry = registry.ok_or_else(|| {
            Refusal::Denied("enhanced container isolation: docker socket mounts are not available on this gateway (no container socket directory); ask your administrator".to_owned())
        })?;
        let pending = registry.allocate().map_err(|e| {
            Refusal::Denied(format!(
                "enhanced container isolation: the container's docker socket could not be created ({e}); try again"
            ))
        })?;
        stockade_policy::rules::rewrite_socket_mounts(checked, &places, pending.socket());
        Ok(Some(pending))
    }

    /// Once the engine created the container, its socket starts serving; if the create failed,
    /// the socket is removed (when `pending` drops). The answer streams through untouched; the
    /// container's ID is read from it on the way.
    fn activate_container_socket(
        &self,
        pending: crate::container_socket::Pending,
        response: Response<Body>,
    ) -> Response<Body> {
        let Some(registry) = self.pool.sockets.clone() else {
            return response;
        };
        if response.status() != StatusCode::CREATED {
            return response;
        }
        let owner = self.peer.uid;
        let conn = self.id;
        let mut pending = Some(pending);
        response.map(move |body| {
            crate::container_socket::SniffId::new(body, move |id| match (id, pending.take()) {
                (Some(id), Some(pending)) => registry.activate(pending, id, owner),
                _ => tracing::warn!(
                    conn,
                    "container create answered without an Id; its socket is removed"
                ),
            })
            .boxed_unsync()
        })
    }

    /// Records and forwards a request that passed every check, and logs the outcome.
    async fn send_checked(
        &self,
        mut req: Request<EngineBody>,
        route: &Route,
        upgrade_requested: bool,
        method: &http::Method,
        path: &str,
        started: Instant,
    ) -> Response<Body> {
        let operation = route.operation.name();
        // Fail closed: a request that cannot be recorded is not forwarded.
        if let Err(refusal) = self.record(method, path, operation, None, "allow").await {
            self.log(
                method,
                path,
                operation,
                refusal.status(),
                started,
                Some(refusal.message()),
            );
            return refusal.into_response();
        }
        // The engine gets the origin form (path and query) whatever form the client used; an
        // absolute-form target's scheme and authority mean nothing on a unix socket.
        if req.uri().authority().is_some() {
            if let Some(origin) = req.uri().path_and_query().cloned() {
                *req.uri_mut() = http::Uri::from(origin);
            }
        }
        let hijacking = upgrade_requested && route.operation.hijack() != Hijack::No;
        strip_hop_by_hop(req.headers_mut(), hijacking);
        let result = match (route.operation.hijack(), upgrade_requested) {
            (Hijack::Raw | Hijack::H2c, true) => {
                let client_upgrade = hyper::upgrade::on(&mut req);
                self.forward_upgrade(req, client_upgrade).await
            }
            // The engine never upgrades other routes; the upgrade headers were stripped above,
            // so the request goes on as a plain one and no connection is taken over.
            (_, _) => self.forward(req).await,
        };
        match result {
            Ok(response) => {
                self.log(method, path, operation, response.status(), started, None);
                response
            }
            Err(refusal) => {
                self.log(
                    method,
                    path,
                    operation,
                    refusal.status(),
                    started,
                    Some(refusal.message()),
                );
                refusal.into_response()
            }
        }
    }

    /// Answers a request with `refusal` after logging it, recording it as a denial when
    /// `record` (not when the refusal is that recording failed), and draining its body.
    #[allow(clippy::too_many_arguments)]
    async fn refuse(
        &self,
        method: &http::Method,
        path: &str,
        operation: &str,
        started: Instant,
        refusal: Refusal,
        req: Request<Incoming>,
        record: bool,
    ) -> Response<Body> {
        self.log(
            method,
            path,
            operation,
            refusal.status(),
            started,
            Some(refusal.message()),
        );
        if record {
            // Refused either way; a record that cannot be written is logged by `record`.
            let _ = self
                .record(
                    method,
                    path,
                    operation,
                    Some(refusal.message()),
                    refusal.rule(),
                )
                .await;
        }
        refuse_after_draining(req.into_body(), refusal).await
    }

    /// The caller's settings applied to a parsed request: `Some` refusal when a rule denies it.
    /// Spools a streamed archive, reads what the rules need from it, looks up the images it
    /// names and judges the request; the spool is what gets forwarded.
    async fn read_archive(
        &self,
        body: Incoming,
        checked: &mut stockade_engine_api::Request,
        target: &str,
    ) -> Result<crate::spool::Spooled, Refusal> {
        let file = crate::spool::spool(
            body,
            &self.config.spool_dir,
            self.config.max_spooled_archive,
        )
        .await
        .map_err(spool_refusal)?;
        let (file, facts) = file.inspect(checked).await.map_err(spool_refusal)?;
        checked.archive = Some(facts);
        let facts = self.look_up_facts(checked).await?;
        match self.judge(checked, &facts, target) {
            Some(refusal) => Err(refusal),
            None => Ok(file),
        }
    }

    /// The facts from the engine the rules need: what its store holds under each image name
    /// (a create's image, a build's base images), so that images are judged by where they came
    /// from (their `RepoDigests`), not by the name they are used under; and who owns each
    /// container a create wants to join.
    async fn look_up_facts(
        &self,
        request: &stockade_engine_api::Request,
    ) -> Result<Facts, Refusal> {
        let mut facts = Facts::default();
        for name in stockade_policy::rules::images_to_look_up(request) {
            if facts.images.contains_key(&name) {
                continue;
            }
            let found = self.look_up_image(&name).await?;
            facts.images.insert(name, found);
        }
        for name in stockade_policy::rules::containers_to_look_up(request) {
            if facts.containers.contains_key(&name) {
                continue;
            }
            let owner = self.look_up_owner(&name).await?;
            facts.containers.insert(name, owner);
        }
        if self.needs_base_images(request) {
            facts.bases = self.look_up_bases().await?;
        }
        Ok(facts)
    }

    fn needs_base_images(&self, request: &stockade_engine_api::Request) -> bool {
        // Only a create mounts anything: the caller's settings are not looked up for the rest
        // (a lookup costs about a microsecond, a sixth of a /_ping's time in the gateway).
        if request.route.operation != stockade_engine_api::Operation::ContainerCreate {
            return false;
        }
        let Ok((_, settings)) = self.caller_settings() else {
            return false;
        };
        let resolve = |p: &std::path::Path| std::fs::canonicalize(p).ok();
        let places = stockade_policy::rules::SocketPlaces {
            paths: &self.config.socket_paths,
            container_dir: self
                .pool
                .sockets
                .as_deref()
                .map(crate::container_socket::Registry::dir),
            resolve: &resolve,
        };
        stockade_policy::rules::needs_base_images(request, &settings, &places)
    }

    /// The engine's pulled images (those with registry digests) with their layers.
    async fn look_up_bases(&self) -> Result<Vec<stockade_policy::rules::BaseImage>, Refusal> {
        let failed = |what: &dyn std::fmt::Display| {
            Refusal::Denied(format!(
                "enhanced container isolation: the engine's images could not be listed ({what}); try again"
            ))
        };
        let (status, body) = self
            .engine_get("/images/json")
            .await?
            .map_err(|e| failed(&e))?;
        if status != StatusCode::OK {
            return Err(failed(&format_args!("the engine answered {status}")));
        }
        #[derive(serde::Deserialize)]
        struct Summary {
            #[serde(rename = "Id")]
            id: String,
            #[serde(rename = "RepoDigests", default)]
            repo_digests: Option<Vec<String>>,
        }
        let list: Vec<Summary> = serde_json::from_slice(&body).map_err(|e| failed(&e))?;
        let mut bases = Vec::new();
        for summary in list
            .into_iter()
            .filter(|s| s.repo_digests.as_ref().is_some_and(|d| !d.is_empty()))
            .take(MAX_BASE_IMAGES)
        {
            let (status, body) = self
                .engine_get(&format!("/images/{}/json", encode_path(&summary.id)))
                .await?
                .map_err(|e| failed(&e))?;
            if status != StatusCode::OK {
                continue;
            }
            let inspect: ImageInspect = serde_json::from_slice(&body).map_err(|e| failed(&e))?;
            bases.push(stockade_policy::rules::BaseImage {
                repo_tags: inspect.repo_tags.unwrap_or_default(),
                repo_digests: inspect.repo_digests.unwrap_or_default(),
                layers: inspect.root_fs.and_then(|r| r.layers).unwrap_or_default(),
            });
        }
        Ok(bases)
    }

    /// The owner label of a container, `None` when it has none or does not exist.
    async fn look_up_owner(&self, name: &str) -> Result<Option<u32>, Refusal> {
        let failed = |what: &dyn std::fmt::Display| {
            Refusal::Denied(format!(
                "enhanced container isolation: the owner of container {name:?} could not be looked up ({what}); try again"
            ))
        };
        // Container names and IDs are [a-zA-Z0-9][a-zA-Z0-9_.-]*; anything else names nothing
        // and is not spliced into a path.
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !valid {
            return Ok(None);
        }
        let (status, body) = self
            .engine_get(&format!("/containers/{name}/json"))
            .await?
            .map_err(|e| failed(&e))?;
        match status {
            StatusCode::NOT_FOUND => Ok(None),
            StatusCode::OK => {
                let inspect: serde_json::Value =
                    serde_json::from_slice(&body).map_err(|e| failed(&e))?;
                Ok(
                    inspect["Config"]["Labels"][stockade_policy::rules::OWNER_LABEL]
                        .as_str()
                        .and_then(|uid| uid.parse().ok()),
                )
            }
            other => Err(failed(&format_args!("the engine answered {other}"))),
        }
    }

    /// A GET to the engine on this connection's engine connection, the answer read whole. An
    /// engine that cannot be reached is the usual 502; other failures are the error text.
    async fn engine_get(
        &self,
        uri: &str,
    ) -> Result<Result<(StatusCode, bytes::Bytes), String>, Refusal> {
        let mut upstream = self.take_upstream().await?;
        let answer = self.engine_get_on(&mut upstream, uri).await;
        if answer.is_ok() {
            // Read whole: the engine connection can carry the next request.
            *self.upstream.lock().await = Some(upstream);
        }
        Ok(answer)
    }

    async fn engine_get_on(
        &self,
        upstream: &mut Upstream,
        uri: &str,
    ) -> Result<(StatusCode, bytes::Bytes), String> {
        let lookup = Request::get(uri)
            .header(header::HOST, "docker")
            .body(Either::Right(Either::Left(Full::new(bytes::Bytes::new()))))
            .map_err(|e| e.to_string())?;
        let response = upstream
            .sender
            .send_request(lookup)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body = Limited::new(response.into_body(), IMAGE_INSPECT_LIMIT)
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, body))
    }

    async fn look_up_image(&self, name: &str) -> Result<ImageLookup, Refusal> {
        // Only names the engine could resolve are asked about: references and image IDs. Any
        // other string cannot name an image (the engine answers "no such image"), and must not
        // be spliced into a request path.
        let is_id = {
            let hex = name.strip_prefix("sha256:").unwrap_or(name);
            !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
        };
        if !is_id && stockade_imageref::Reference::parse_normalized(name).is_err() {
            return Ok(ImageLookup::Missing);
        }
        let failed = |what: &dyn std::fmt::Display| {
            Refusal::Denied(format!(
                "enhanced container isolation: the image {name:?} could not be looked up in the engine ({what}), so where it came from is unknown; try again"
            ))
        };
        let (status, body) = self
            .engine_get(&format!("/images/{}/json", encode_path(name)))
            .await?
            .map_err(|e| failed(&e))?;
        match status {
            StatusCode::NOT_FOUND => Ok(ImageLookup::Missing),
            StatusCode::OK => {
                let inspect: ImageInspect =
                    serde_json::from_slice(&body).map_err(|e| failed(&e))?;
                Ok(ImageLookup::Present {
                    id: inspect.id,
                    repo_digests: inspect.repo_digests.unwrap_or_default(),
                    layers: inspect.root_fs.and_then(|r| r.layers).unwrap_or_default(),
                })
            }
            other => Err(failed(&format_args!("the engine answered {other}"))),
        }
    }

    /// The caller's effective settings under the policy in force.
    fn caller_settings(
        &self,
    ) -> Result<(Arc<stockade_policy::Policy>, Arc<stockade_policy::Settings>), Refusal> {
        let uid = self.peer.uid;
        let policy = self.config.policy.current();
        let cached = self
            .pool
            .settings
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&uid)
            .cloned();
        // The home directory from the password database, re-read every minute.
        let home = match &cached {
            Some(c) if c.at.elapsed() < HOME_TTL => Some(c.home.clone()),
            _ => nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                .ok()
                .flatten()
                .map(|u| u.dir),
        };
        let Some(home) = home else {
            return Err(Refusal::Denied(format!(
                "enhanced container isolation: uid {uid} has no entry in the password database, so its settings and shared directories are unknown; ask your administrator"
            )));
        };
        let who = stockade_policy::UserContext::new(uid, home.clone());
        let user = match self.config.users.get(&who) {
            Ok(user) => user,
            Err(e) => {
                // An unusable settings file means the admin policy alone applies.
                tracing::warn!(conn = self.id, uid, error = %e, "user settings ignored");
                None
            }
        };
        // The merge is only redone when the policy, the user's file or their home changed.
        if let Some(c) = &cached {
            let same_user = match (&c.user, &user) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            };
            if Arc::ptr_eq(&c.policy, &policy) && same_user && c.home == home {
                return Ok((policy, Arc::clone(&c.settings)));
            }
        }
        let settings = Arc::new(policy.effective(user.as_deref(), &who));
        let fresh = CachedSettings {
            policy: Arc::clone(&policy),
            user,
            at: match &cached {
                Some(c) if c.home == home && c.at.elapsed() < HOME_TTL => c.at,
                _ => Instant::now(),
            },
            home,
            settings: Arc::clone(&settings),
        };
        self.pool
            .settings
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(uid, fresh);
        Ok((policy, settings))
    }

    fn judge(
        &self,
        request: &stockade_engine_api::Request,
        facts: &Facts,
        target: &str,
    ) -> Option<Refusal> {
        let (policy, settings) = match self.caller_settings() {
            Ok(found) => found,
            Err(refusal) => return Some(refusal),
        };
        let resolve = |p: &std::path::Path| std::fs::canonicalize(p).ok();
        let ctx = stockade_policy::rules::Context {
            settings: &settings,
            protected: &self.config.protected,
            resolve: &resolve,
            catalog: policy.catalog(),
            images: &facts.images,
            engine_pulls_filtered: self.config.engine_pulls_filtered,
            caller: self.peer.uid,
            containers: &facts.containers,
            socket_paths: &self.config.socket_paths,
            container_sockets: self.pool.sockets.as_deref().map(|r| r.dir()),
            via_container: self.peer.container.as_deref().map(|c| (c, target)),
            base_images: &facts.bases,
        };
        let decision = stockade_policy::rules::decide(request, &ctx);
        (!decision.allow).then(|| {
            tracing::info!(
                conn = self.id,
                uid = self.peer.uid,
                rule = decision.rule,
                "denied by rule"
            );
            Refusal::DeniedBy(decision.rule, decision.reason)
        })
    }

    /// Answers with `refusal` a request whose body was already read: logged and recorded.
    async fn answer_read(
        &self,
        method: &http::Method,
        path: &str,
        operation: &str,
        started: Instant,
        refusal: Refusal,
    ) -> Response<Body> {
        self.log(
            method,
            path,
            operation,
            refusal.status(),
            started,
            Some(refusal.message()),
        );
        // Refused either way; a record that cannot be written is logged by `record`.
        let _ = self
            .record(
                method,
                path,
                operation,
                Some(refusal.message()),
                refusal.rule(),
            )
            .await;
        refusal.into_response()
    }

    /// Records the decision on this request in the audit log, if there is one. A denial
    /// (`refusal` set) is synced to disk before this returns; an allow is queued for group
    /// commit (waited for only while the log is failing). An allow that cannot be recorded
    /// becomes a refusal.
    async fn record(
        &self,
        method: &http::Method,
        path: &str,
        operation: &str,
        refusal: Option<&str>,
        rule: &str,
    ) -> Result<(), Refusal> {
        let Some(audit) = &self.config.audit else {
            return Ok(());
        };
        let mut event = stockade_audit::Event {
            kind: Some(stockade_audit::Kind::Decision),
            uid: Some(self.peer.uid),
            container: self.peer.container.as_deref().map(str::to_owned),
            route: Some(format!("{method} {path}")),
            decision: Some(if refusal.is_some() {
                stockade_audit::Decision::Deny
            } else {
                stockade_audit::Decision::Allow
            }),
            rule: Some(rule.to_owned()),
            reason: refusal.map(str::to_owned),
            policy_hash: Some(self.config.policy.current().hash().to_owned()),
            ..stockade_audit::Event::default()
        };
        event.summary.insert("operation".into(), operation.into());
        if let Some(pid) = self.peer.pid {
            event.summary.insert("pid".into(), pid.into());
        }
        let durability = if refusal.is_some() {
            stockade_audit::Durability::Sync
        } else {
            stockade_audit::Durability::Grouped
        };
        match audit.append(event, durability).await {
            Ok(_) => Ok(()),
            Err(e) if self.config.audit_fail_open => {
                // Loud on every request while it lasts; the log recovers by itself.
                tracing::error!(error = %e, operation, "AUDIT LOG UNWRITABLE: serving WITHOUT a record (--audit-fail-open)");
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "audit record failed");
                Err(Refusal::Denied(format!(
                    "stockade refused the request because it cannot be recorded: {e}"
                )))
            }
        }
    }

    fn log(
        &self,
        method: &http::Method,
        path: &str,
        operation: &str,
        status: StatusCode,
        started: Instant,
        refusal: Option<&str>,
    ) {
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        // One line per request, with the caller; a refusal also gives its reason.
        macro_rules! line {
            ($level:ident, $($reason:ident,)? $message:literal) => {
                tracing::$level!(
                    conn = self.id,
                    uid = self.peer.uid,
                    pid = self.peer.pid.unwrap_or(0),
                    %method,
                    path,
                    operation,
                    status = status.as_u16(),
                    micros,
                    $($reason,)?
                    $message
                )
            };
        }
        match refusal {
            Some(reason) => line!(warn, reason, "request refused"),
            // With an audit log, every request is recorded there with its uid, so this line is
            // at debug: formatting it is a few microseconds of each request's time (it was
            // ~10 us of /_ping latency, and ~20% of keep-alive req/s on the 2-core VM, when
            // each line still woke the log writer). Without one, this line is the record: info.
            None if self.config.audit.is_some() => line!(debug, "request forwarded"),
            None => line!(info, "request forwarded"),
        }
    }

    /// Takes this connection's engine connection if it can carry another request, or opens one.
    async fn take_upstream(&self) -> Result<Upstream, Refusal> {
        let existing = self.upstream.lock().await.take();
        if let Some(mut upstream) = existing {
            if upstream.sender.ready().await.is_ok() {
                return Ok(upstream);
            }
        }
        if let Some(upstream) = self.pool.take() {
            return Ok(upstream);
        }
        self.connect().await
    }

    async fn connect(&self) -> Result<Upstream, Refusal> {
        let engine = &self.config.engine;
        let unavailable = |e: &dyn std::fmt::Display| {
            Refusal::EngineUnavailable(format!(
                "stockade cannot reach the docker engine at {}: {e}; check that the engine is running (stockade up starts it)",
                engine.display()
            ))
        };
        let stream = Stream::connect(engine).await.map_err(|e| unavailable(&e))?;
        let (sender, conn) = hyper::client::conn::http1::Builder::new()
            .max_buf_size(self.config.max_head_bytes)
            .handshake::<_, EngineBody>(TokioIo::new(stream))
            .await
            .map_err(|e| unavailable(&e))?;
        let id = self.id;
        tracing::debug!(conn = id, "engine connection opened");
        let task = tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(conn = id, error = %e, "engine connection ended with an error");
            }
        });
        Ok(Upstream {
            sender,
            driver: AbortOnDrop(task.abort_handle()),
        })
    }

    async fn forward(&self, req: Request<EngineBody>) -> Result<Response<Body>, Refusal> {
        let mut upstream = self.take_upstream().await?;
        let response = upstream
            .sender
            .send_request(req)
            .await
            .map_err(|e| self.broken_exchange(&e))?;
        *self.upstream.lock().await = Some(upstream);
        Ok(stream_back(response))
    }

    async fn forward_upgrade(
        &self,
        req: Request<EngineBody>,
        client_upgrade: hyper::upgrade::OnUpgrade,
    ) -> Result<Response<Body>, Refusal> {
        let mut upstream = self.take_upstream().await?;
        let mut response = upstream
            .sender
            .send_request(req)
            .await
            .map_err(|e| self.broken_exchange(&e))?;
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            // The engine answered without taking the connection over (an error, or an old-style
            // stream): pass that answer through and keep the connection for further requests.
            *self.upstream.lock().await = Some(upstream);
            return Ok(stream_back(response));
        }
        let engine_upgrade = hyper::upgrade::on(&mut response);
        let id = self.id;
        tokio::spawn(async move {
            // The engine connection's driver must live until the engine side is handed over.
            let _driver = upstream.driver;
            let (client, engine) = match tokio::try_join!(client_upgrade, engine_upgrade) {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::debug!(conn = id, error = %e, "upgrade did not complete");
                    return;
                }
            };
            let mut client = TokioIo::new(client);
            let mut engine = TokioIo::new(engine);
            match tokio::io::copy_bidirectional_with_sizes(
                &mut client,
                &mut engine,
                COPY_BUFFER,
                COPY_BUFFER,
            )
            .await
            {
                Ok((up, down)) => {
                    tracing::debug!(
                        conn = id,
                        bytes_to_engine = up,
                        bytes_to_client = down,
                        "hijacked stream closed"
                    );
                }
                Err(e) => tracing::debug!(conn = id, error = %e, "hijacked stream broke"),
            }
        });
        let (parts, _) = response.into_parts();
        let mut answer = Response::from_parts(parts, crate::respond::full(bytes::Bytes::new()));
        *answer.version_mut() = Version::HTTP_11;
        Ok(answer)
    }

    fn broken_exchange(&self, e: &hyper::Error) -> Refusal {
        Refusal::EngineUnavailable(format!(
            "the docker engine at {} closed the connection before answering ({e}); retry, and check the engine's log if it persists",
            self.config.engine.display()
        ))
    }
}

/// Most of a refused request's body read and discarded before the answer goes out (a refused
/// `docker load` of a large archive must still get its message, not a broken pipe).
const DRAIN_LIMIT: usize = 256 * 1024 * 1024;
/// Longest wait for a refused request's body.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// Answers a refused request after reading (and discarding) its body, so that a client still
/// sending it gets the refusal instead of a broken pipe. A body too large or too slow to drain is
/// left unread and the connection is closed after the answer.
async fn refuse_after_draining(mut body: Incoming, refusal: Refusal) -> Response<Body> {
    let drain = async {
        let mut read = 0usize;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return false };
            read += frame.data_ref().map_or(0, bytes::Buf::remaining);
            if read > DRAIN_LIMIT {
                return false;
            }
        }
        true
    };
    let drained = tokio::time::timeout(DRAIN_TIME, drain)
        .await
        .unwrap_or(false);
    let mut response = refusal.into_response();
    if !drained {
        response.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
    response
}

/// Buffer size for hijacked streams: large enough that bulk stdin/stdout moves in few syscalls.
const COPY_BUFFER: usize = 256 * 1024;

/// Streams the engine's answer back as it arrives, never buffering the body.
///
/// A response that carries neither `Content-Length` nor chunked framing is delimited by the
/// engine closing the connection (attach and exec start without an upgrade do this); it is sent
/// on as HTTP/1.0 so that it stays close-delimited, because clients such as docker-py read the
/// raw socket after the head and would see chunk framing as data.
fn stream_back(response: Response<Incoming>) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    let close_delimited = !parts.headers.contains_key(header::CONTENT_LENGTH)
        && !parts.headers.contains_key(header::TRANSFER_ENCODING)
        && body_allowed(parts.status)
        && !http_body::Body::is_end_stream(&body);
    parts.version = if close_delimited {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let body = body.map_err(|e| -> BoxError { Box::new(e) }).boxed_unsync();
    Response::from_parts(parts, body)
}

/// How long a caller's home directory from the password database is trusted.
const HOME_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// One caller's merged settings and what they were merged from.
#[derive(Clone)]
struct CachedSettings {
    policy: Arc<stockade_policy::Policy>,
    user: Option<Arc<stockade_policy::UserSettings>>,
    home: std::path::PathBuf,
    at: Instant,
    settings: Arc<stockade_policy::Settings>,
}

/// What the engine told the gateway for one request's rules.
#[derive(Debug, Default)]
struct Facts {
    images: BTreeMap<String, ImageLookup>,
    containers: BTreeMap<String, Option<u32>>,
    bases: Vec<stockade_policy::rules::BaseImage>,
}

/// The parts of `GET /images/{name}/json` the rules use.
#[derive(serde::Deserialize)]
struct ImageInspect {
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "RepoDigests", default)]
    repo_digests: Option<Vec<String>>,
    #[serde(rename = "RootFS", default)]
    root_fs: Option<RootFs>,
}

#[derive(serde::Deserialize)]
struct RootFs {
    #[serde(rename = "Layers", default)]
    layers: Option<Vec<String>>,
}

/// At most this many pulled images are inspected as candidate bases of a derived image.
const MAX_BASE_IMAGES: usize = 256;

/// The answer to an archive that could not be spooled or read.
fn spool_refusal(e: SpoolError) -> Refusal {
    match e {
        SpoolError::TooLarge(limit) => Refusal::BadRequest(format!(
            "the archive is larger than {} MiB, the most the gateway inspects; make the build context smaller (.dockerignore) or ask your administrator",
            limit >> 20
        )),
        SpoolError::Client(e) => Refusal::BadRequest(format!("the request body could not be read: {e}")),
        SpoolError::Local(e) => Refusal::Denied(format!(
            "registry access: the gateway could not hold the archive for inspection ({e}); ask your administrator"
        )),
        SpoolError::Content(e) => Refusal::Denied(format!(
            "registry access: the archive cannot be checked: {e}"
        )),
    }
}

/// Largest `GET /images/{name}/json` answer read (an image with thousands of tags is still
/// far below this).
const IMAGE_INSPECT_LIMIT: usize = 8 * 1024 * 1024;

/// Percent-encodes an image name for a request path: everything but unreserved characters and
/// the `/`, `:` and `@` that references contain.
fn encode_path(name: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/:@".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn body_allowed(status: StatusCode) -> bool {
    !(status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED)
}

fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
}

/// Removes the hop-by-hop headers (RFC 9110 section 7.6.1): they describe the client's
/// connection to the gateway, not the gateway's to the engine. A client's `Connection: close`
/// must not close a pooled engine connection, and no header a client lists in `Connection` is
/// passed on. For a hijack the upgrade is re-stated, since that is what the engine must see.
fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let listed: Vec<header::HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|token| header::HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        if !(keep_upgrade && name == header::UPGRADE) {
            headers.remove(name);
        }
    }
    for name in [
        header::CONNECTION,
        header::TE,
        header::TRAILER,
        header::PROXY_AUTHORIZATION,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
    if keep_upgrade {
        headers.insert(
            header::CONNECTION,
            header::HeaderValue::from_static("Upgrade"),
        );
    } else {
        headers.remove(header::UPGRADE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_needs_both_headers() {
        let mut headers = HeaderMap::new();
        assert!(!wants_upgrade(&headers));
        headers.insert(header::UPGRADE, "tcp".parse().unwrap());
        assert!(!wants_upgrade(&headers));
        headers.insert(header::CONNECTION, "keep-alive, Upgrade".parse().unwrap());
        assert!(wants_upgrade(&headers));
    }

    #[test]
    fn hop_by_hop_headers_are_not_forwarded() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONNECTION, "close, X-Secret".parse().unwrap());
        headers.insert("x-secret", "1".parse().unwrap());
        headers.insert("keep-alive", "timeout=5".parse().unwrap());
        headers.insert(header::UPGRADE, "tcp".parse().unwrap());
        headers.insert("x-registry-auth", "kept".parse().unwrap());
        let mut plain = headers.clone();
        strip_hop_by_hop(&mut plain, false);
        assert_eq!(plain.len(), 1);
        assert_eq!(plain["x-registry-auth"], "kept");
        strip_hop_by_hop(&mut headers, true);
        assert_eq!(headers[header::CONNECTION], "Upgrade");
        assert_eq!(headers[header::UPGRADE], "tcp");
        assert!(!headers.contains_key("x-secret"));
    }
}
