//! The gateway's content rules (Enhanced Container Isolation, DESIGN.md section 4) as one pure
//! function: [`decide`] takes a parsed [`Request`] and the caller's [`Settings`] and says allow or
//! deny, with a rule id and a reason in Docker Desktop's wording.
//!
//! The outside facts rules need are supplied in the [`Context`], so the rules stay pure and
//! unit-testable: where host paths lead (symlinks are resolved before a bind source is compared
//! with the shared directories), what the engine holds under an image name (its provenance),
//! and who owns a container another one wants to join. A fact that was not supplied is a
//! denial: fail closed.

use crate::access::{access_allowed, registry_allowed, AccessDenied};
use crate::catalog::Catalog;
use crate::Settings;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use stockade_engine_api::json::Value;
use stockade_engine_api::{ArchiveFacts, Operation, Request};
use stockade_imageref::{
    parse_build_tags, parse_push, parse_repo_and_tag, parse_tag_target, repo_tag_reference,
    ImagePattern, Reference,
};

/// What the rules need beside the request and the settings.
#[derive(Clone)]
pub struct Context<'a> {
    /// The caller's effective settings.
    pub settings: &'a Settings,
    /// Paths no container may mount, nor any directory above or below them: the engine and
    /// gateway sockets, Stockade's state, configuration and audit log.
    pub protected: &'a [PathBuf],
    /// Resolves a host path's symlinks (`std::fs::canonicalize` in the gateway); `None` when the
    /// path does not exist.
    pub resolve: &'a dyn Fn(&Path) -> Option<PathBuf>,
    /// The Docker Hub category catalog (Image Access Management), if the policy names one.
    pub catalog: Option<&'a Catalog>,
    /// What the engine's store holds under each name in [`images_to_look_up`], keyed by the
    /// name as the request writes it. A name the gateway did not look up is refused (fail
    /// closed).
    pub images: &'a BTreeMap<String, ImageLookup>,
    /// Whether the engine's own pulls go through Stockade's egress filter, which enforces
    /// registry access where the gateway cannot see (BuildKit builds).
    pub engine_pulls_filtered: bool,
    /// The caller's uid (`SO_PEERCRED`).
    pub caller: u32,
    /// The owner (the [`OWNER_LABEL`] uid) of each container in
    /// [`containers_to_look_up`], keyed as the request names it; `None`: not found, or created
    /// some other way than through the gateway (it belongs to nobody). A name not looked up is
    /// refused.
    pub containers: &'a BTreeMap<String, Option<u32>>,
    /// The gateway's sockets as host paths (symlinks resolved): binding one of them, or
    /// anything below [`Context::container_sockets`], into a container is a Docker socket mount.
    pub socket_paths: &'a [PathBuf],
    /// Where the per-container sockets live.
    pub container_sockets: Option<&'a Path>,
    /// Set when the request came through a container's own socket: the container, and the
    /// request target (`/v1.43/images/x/push?tag=1`) for `commandList` messages.
    pub via_container: Option<(&'a str, &'a str)>,
    /// Local images with registry digests, when a socket mount of a local-only image may be
    /// allowed as derived from one of them ([`needs_base_images`]).
    pub base_images: &'a [BaseImage],
}

/// The label the gateway puts on every container, volume and network it creates: the
/// creator's uid. No request may set it.
pub const OWNER_LABEL: &str = "io.stockade.owner";

/// The engine's answer about an image a request names (`GET /images/{name}/json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageLookup {
    /// No such image: a create would fail, and `docker run` pulls it first (a checked pull).
    Missing,
    /// The image in the store.
    Present {
        /// Its ID.
        id: String,
        /// Where it was pulled from or pushed to (`repo@sha256:…`); empty for images built,
        /// committed, loaded or imported here.
        repo_digests: Vec<String>,
        /// Its layers (`RootFS.Layers`), for telling whether it was built from another image.
        layers: Vec<String>,
    },
}

/// A local image pulled from a registry, a candidate base of a locally built image (for
/// `allowDerivedImages`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseImage {
    /// Its names (`RepoTags`).
    pub repo_tags: Vec<String>,
    /// Its registry digests (`RepoDigests`).
    pub repo_digests: Vec<String>,
    /// Its layers (`RootFS.Layers`).
    pub layers: Vec<String>,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("settings", self.settings)
            .field("protected", &self.protected)
            .finish_non_exhaustive()
    }
}

/// A rule's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may go to the engine.
    pub allow: bool,
    /// The rule that decided (`eci.privileged`), or `allow` when nothing objected.
    pub rule: &'static str,
    /// What the user sees on a denial.
    pub reason: String,
}

impl Decision {
    fn allow() -> Self {
        Self {
            allow: true,
            rule: "allow",
            reason: String::new(),
        }
    }
}

fn deny(rule: &'static str, reason: impl Into<String>) -> Decision {
    Decision {
        allow: false,
        rule,
        reason: reason.into(),
    }
}

type Verdict = Result<(), Decision>;

/// Judge a request. Deny reasons start with the Docker Desktop prefix
/// `enhanced container isolation: ` (or the Settings Management key that refused it).
#[must_use]
pub fn decide(request: &Request, ctx: &Context<'_>) -> Decision {
    match check(request, ctx) {
        Ok(()) => Decision::allow(),
        Err(decision) => decision,
    }
}

fn check(request: &Request, ctx: &Context<'_>) -> Verdict {
    let op = &request.route.operation;
    if let Some((_, target)) = ctx.via_container {
        command_list(request, target, ctx)?;
    }
    let loads = matches!(op, Operation::ImageLoad)
        || (matches!(op, Operation::ImageCreate) && request.query.get("fromSrc").is_some());
    if loads && ctx.settings.block_docker_load {
        return Err(deny(
            "settings.block_docker_load",
            "docker load and docker import are blocked by your administrator (blockDockerLoad)",
        ));
    }
    images(request, ctx)?;
    if !ctx.settings.eci.enabled {
        return Ok(());
    }
    let body = request.body.as_ref();
    match op {
        Operation::ContainerCreate => {
            let body = body.unwrap_or(&Value::Null);
            container_create(body, ctx)
        }
        Operation::ExecCreate { .. } => {
            if flag(body.and_then(|b| b.get("Privileged"))) {
                return Err(eci("eci.exec_privileged", "privileged exec is not allowed"));
            }
            Ok(())
        }
        Operation::ContainerUpdate { .. } => match body {
            Some(body) => resources(body),
            None => Ok(()),
        },
        Operation::VolumeCreate => match body {
            Some(body) => volume_driver(
                str_of(body.get("Driver")),
                body.get("DriverOpts"),
                ctx,
                "volume create",
            ),
            None => Ok(()),
        },
        Operation::NetworkCreate => network_create(body.unwrap_or(&Value::Null)),
        Operation::Build => build(request),
        _ => Ok(()),
    }
}

/// Registry and Image Access Management on every route an image enters by (DESIGN.md §5).
/// These rules hold whether or not ECI is on, as in Docker Desktop.
fn images(request: &Request, ctx: &Context<'_>) -> Verdict {
    let q = |name: &str| request.query.get(name).unwrap_or("");
    match &request.route.operation {
        Operation::ImageCreate => {
            if let Some(from_image) = request.query.get("fromImage") {
                let image = reference(parse_repo_and_tag(from_image, q("tag")), "fromImage")?;
                return access(&image, ctx, "pull");
            }
            if let Some(source) = request.query.get("fromSrc") {
                if source != "-" {
                    // CVE-2014-9356-era lesson: the engine fetches a URL import itself, from
                    // wherever the URL points, with its own network access.
                    return Err(deny(
                        "ram.import_url",
                        "importing from a URL is not allowed: the engine would fetch it itself; download the file and use `docker import FILE`",
                    ));
                }
                if let Some(target) = reference(repo_tag_reference(q("repo"), q("tag")), "repo")? {
                    return registry(&target, ctx, "import as");
                }
            }
            Ok(())
        }
        Operation::ImagePush { name } => {
            let target = reference(parse_push(name, q("tag")), "name")?;
            registry(&target, ctx, "push")
        }
        Operation::ImageTag { .. } => {
            match reference(parse_tag_target(q("repo"), q("tag")), "repo")? {
                Some(target) => registry(&target, ctx, "tag as"),
                None => Ok(()),
            }
        }
        Operation::Commit => match reference(repo_tag_reference(q("repo"), q("tag")), "repo")? {
            Some(target) => registry(&target, ctx, "commit as"),
            None => Ok(()),
        },
        Operation::ContainerCreate => {
            let named = request
                .body
                .as_ref()
                .and_then(|b| b.get("Image"))
                .and_then(Value::as_str)
                .unwrap_or("");
            create_image(named, ctx)
        }
        Operation::Build => build_images(request, ctx),
        Operation::ImageLoad => load_names(request, ctx),
        _ => Ok(()),
    }
}

/// A reference the engine would refuse is refused here too, with the engine's reason.
fn reference<T>(
    parsed: Result<T, stockade_imageref::RefError>,
    field: &str,
) -> Result<T, Decision> {
    parsed.map_err(|e| deny("image.reference", format!("{field}: {e}")))
}

fn denied(e: &AccessDenied, image: &Reference, action: &str) -> Decision {
    deny(
        e.rule(),
        format!("{} ({action} {})", e.message(), image.familiar()),
    )
}

/// RAM and IAM: pulls and runs.
fn access(image: &Reference, ctx: &Context<'_>, action: &str) -> Verdict {
    access_allowed(image, ctx.settings, ctx.catalog).map_err(|e| denied(&e, image, action))
}

/// RAM alone: pushes and names given to local images.
fn registry(image: &Reference, ctx: &Context<'_>, action: &str) -> Verdict {
    registry_allowed(image, ctx.settings).map_err(|e| denied(&e, image, action))
}

/// A container's image is judged by where its content came from: every registry repository
/// in its `RepoDigests` must be allowed, whatever name it is run by now, so re-tagging a
/// forbidden image under an allowed name, or a forbidden image pulled before the policy
/// changed, cannot be run. Images with no registry provenance were built, committed, loaded or
/// imported on this engine, all routes the gateway checks, and are allowed. An image that is
/// not present is judged by its name (`docker run` pulls it first, a checked pull).
fn create_image(named: &str, ctx: &Context<'_>) -> Verdict {
    used_image(named, ctx, "run", false)
}

/// An image a container or a build uses, by the name the request gives: judged by its
/// provenance when present, by its name when it will be pulled (missing, or `always_pull`).
fn used_image(named: &str, ctx: &Context<'_>, action: &str, always_pull: bool) -> Verdict {
    if always_pull {
        let image = reference(Reference::parse_normalized(named), action)?;
        access(&image, ctx, "pull")?;
    }
    match ctx.images.get(named) {
        None => Err(deny(
            "image.lookup",
            "the image could not be looked up in the engine, so where it came from is unknown; try again",
        )),
        Some(ImageLookup::Missing) => match Reference::parse_normalized(named) {
            Ok(image) => access(&image, ctx, action),
            // Not a name (an unknown ID prefix): the engine answers "no such image".
            Err(_) => Ok(()),
        },
        Some(ImageLookup::Present { repo_digests, .. }) => {
            for origin in repo_digests {
                let Ok(image) = Reference::parse_normalized(origin) else {
                    return Err(deny(
                        "image.provenance",
                        format!("the image records an origin that cannot be read ({origin:?}); remove it with docker rmi and pull it again"),
                    ));
                };
                access(&image.name_only(), ctx, action).map_err(|mut d| {
                    d.reason.push_str(": the image was pulled from there; remove it with docker rmi and pull it from an allowed source");
                    d
                })?;
            }
            Ok(())
        }
    }
}

/// Builds: the names given with `-t` must be in allowed registries; remote contexts and
/// BuildKit builds hide their base images from the gateway, so they are refused while the
/// image rules restrict anything the engine's egress filter does not enforce.
fn build_images(request: &Request, ctx: &Context<'_>) -> Verdict {
    let tags = reference(parse_build_tags(request.query.all("t")), "t")?;
    for tag in &tags {
        registry(tag, ctx, "build as")?;
    }
    let restricted = crate::access::restricts_categories(ctx.settings)
        || (crate::access::restricts_registries(ctx.settings) && !ctx.engine_pulls_filtered);
    if !restricted {
        return Ok(());
    }
    let remote = request.query.get("remote").unwrap_or("");
    let buildkit = request.query.get("version") == Some("2");
    if buildkit {
        return Err(deny(
            "ram.build_unchecked",
            "registry access: BuildKit builds fetch their base images where the gateway cannot check them; build with the classic builder (DOCKER_BUILDKIT=0) or ask your administrator",
        ));
    }
    if !remote.is_empty() {
        return Err(deny(
            "ram.build_remote",
            "registry access: a build from a remote context (URL or git) cannot be checked; fetch it and build from a local directory",
        ));
    }
    let Some(ArchiveFacts::BuildSources(sources)) = &request.archive else {
        return Err(deny(
            "ram.build_unchecked",
            "registry access: the build context was not inspected, so its base images are unknown; try again",
        ));
    };
    let always_pull = request.query.bool_value("pull");
    for source in sources {
        let what = format!("Dockerfile line {}: {}", source.line, source.instruction);
        used_image(&source.name, ctx, &what, always_pull)?;
    }
    Ok(())
}

/// Whether the gateway must read a streamed archive (build context, `docker load`) before
/// judging the request: only when the caller's image rules restrict something the archive
/// could get past, so unrestricted callers keep plain streaming.
#[must_use]
pub fn needs_archive(request: &Request, settings: &Settings) -> bool {
    let registries = crate::access::restricts_registries(settings);
    let categories = crate::access::restricts_categories(settings);
    match request.route.operation {
        Operation::Build => {
            (registries || categories)
                && request.query.get("version") != Some("2")
                && request.query.get("remote").unwrap_or("").is_empty()
        }
        Operation::ImageLoad => registries && !settings.block_docker_load,
        _ => false,
    }
}

/// The image names the rules need looked up in the engine's store for this request: a
/// create's image, a build's base images.
#[must_use]
pub fn images_to_look_up(request: &Request) -> Vec<String> {
    match (&request.route.operation, &request.archive) {
        (Operation::ContainerCreate, _) => request
            .body
            .as_ref()
            .and_then(|b| b.get("Image"))
            .and_then(Value::as_str)
            .map(|name| vec![name.to_owned()])
            .unwrap_or_default(),
        (Operation::Build, Some(ArchiveFacts::BuildSources(sources))) => {
            sources.iter().map(|s| s.name.clone()).collect()
        }
        _ => Vec::new(),
    }
}

/// `docker load`: the names the archive creates must be in allowed registries.
fn load_names(request: &Request, ctx: &Context<'_>) -> Verdict {
    if !crate::access::restricts_registries(ctx.settings) {
        return Ok(());
    }
    let Some(ArchiveFacts::LoadNames(names)) = &request.archive else {
        return Err(deny(
            "ram.load_unchecked",
            "registry access: the image archive was not inspected, so the names it creates are unknown; try again",
        ));
    };
    for name in names {
        let image = reference(Reference::parse_normalized(name), "manifest.json RepoTags")?;
        registry(&image, ctx, "load as")?;
    }
    Ok(())
}

fn eci(rule: &'static str, what: impl AsRef<str>) -> Decision {
    deny(
        rule,
        format!("enhanced container isolation: {}", what.as_ref()),
    )
}

fn flag(v: Option<&Value>) -> bool {
    v.and_then(Value::as_bool).unwrap_or(false)
}

fn str_of(v: Option<&Value>) -> &str {
    v.and_then(Value::as_str).unwrap_or("")
}

/// The strings of a `StrSlice` or string array (a lone string counts as one element).
fn strings(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn non_empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

/// Docker's default capability set: adding one of these changes nothing.
const DEFAULT_CAPS: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// A capability as the engine normalises it: upper case, without the `CAP_` prefix.
fn cap_name(raw: &str) -> String {
    let upper = raw.trim().to_ascii_uppercase();
    upper.strip_prefix("CAP_").unwrap_or(&upper).to_owned()
}

/// Sysctls the kernel namespaces per container (and the engine itself allows): IPC and message
/// queues, and the network namespace's own `net.*` (host networking is refused separately).
fn namespaced_sysctl(key: &str) -> bool {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    IPC.contains(&key) || key.starts_with("fs.mqueue.") || key.starts_with("net.")
}

/// `VolumesFrom` entries are `name[:ro|rw]`.
fn volumes_from_name(entry: &str) -> &str {
    entry.split(':').next().unwrap_or(entry)
}

/// `Links` entries are `name:alias` (the name may start with `/`).
fn link_name(entry: &str) -> &str {
    let name = entry.split(':').next().unwrap_or(entry);
    name.strip_prefix('/').unwrap_or(name)
}

/// Joining another container (its network namespace, its volumes, a link to it) is allowed
/// only when the caller created it through the gateway: otherwise one user could read another's
/// files or traffic.
fn own_container(name: &str, ctx: &Context<'_>, flag: &str, field: &str) -> Verdict {
    match ctx.containers.get(name) {
        Some(Some(owner)) if *owner == ctx.caller => Ok(()),
        Some(_) => Err(eci(
            "eci.ownership",
            format!("{flag}{name} is allowed only with your own containers, and {name} is not yours ({field})"),
        )),
        None => Err(eci(
            "eci.ownership",
            format!("{flag}{name}: the owner of {name} could not be checked ({field}); try again"),
        )),
    }
}

/// The containers whose owner the rules need: `--network container:X`, `--volumes-from X`,
/// `--link X`.
#[must_use]
pub fn containers_to_look_up(request: &Request) -> Vec<String> {
    if request.route.operation != Operation::ContainerCreate {
        return Vec::new();
    }
    let Some(hc) = request.body.as_ref().and_then(|b| b.get("HostConfig")) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    if let Some(target) = str_of(hc.get("NetworkMode")).strip_prefix("container:") {
        names.push(target.to_owned());
    }
    names.extend(
        strings(hc.get("VolumesFrom"))
            .into_iter()
            .map(|e| volumes_from_name(e).to_owned()),
    );
    names.extend(
        strings(hc.get("Links"))
            .into_iter()
            .map(|e| link_name(e).to_owned()),
    );
    names
}

/// Puts [`OWNER_LABEL`] with the caller's uid on what a request creates (a container, a volume,
/// a network), refusing a request that sets the label itself.
///
/// # Errors
/// The request tries to set the owner label.
pub fn stamp_owner(request: &mut Request, caller: u32) -> Result<(), Decision> {
    if !matches!(
        request.route.operation,
        Operation::ContainerCreate | Operation::VolumeCreate | Operation::NetworkCreate
    ) {
        return Ok(());
    }
    let body = request
        .body
        .get_or_insert_with(|| Value::Object(Vec::new()));
    let Value::Object(members) = body else {
        return Ok(());
    };
    let labels = match members.iter_mut().rev().find(|(k, _)| k == "Labels") {
        Some((_, labels)) => labels,
        None => {
            members.push(("Labels".to_owned(), Value::Object(Vec::new())));
            match members.last_mut() {
                Some((_, labels)) => labels,
                None => return Ok(()),
            }
        }
    };
    if matches!(labels, Value::Null) {
        *labels = Value::Object(Vec::new());
    }
    let Value::Object(entries) = labels else {
        return Ok(());
    };
    if entries.iter().any(|(k, _)| k == OWNER_LABEL) {
        return Err(eci(
            "eci.owner_label",
            format!("the label {OWNER_LABEL} is set by stockade and cannot be given in a request"),
        ));
    }
    entries.push((OWNER_LABEL.to_owned(), Value::String(caller.to_string())));
    Ok(())
}

fn namespace_mode(field: &str, value: &str, allow_container: bool) -> Verdict {
    let mode = value.trim();
    if mode == "host" {
        return Err(eci(
            "eci.host_namespace",
            format!("{field}=host is not allowed (it shares a namespace with the host)"),
        ));
    }
    if mode.starts_with("container:") && !allow_container {
        return Err(eci(
            "eci.container_namespace",
            format!("{field}={mode} is not allowed (joining another container's namespace)"),
        ));
    }
    Ok(())
}

fn container_create(body: &Value, ctx: &Context<'_>) -> Verdict {
    let empty = Value::Object(Vec::new());
    let hc = match body.get("HostConfig") {
        Some(v @ Value::Object(_)) => v,
        _ => &empty,
    };
    if flag(hc.get("Privileged")) {
        return Err(eci(
            "eci.privileged",
            "privileged containers are not allowed (HostConfig.Privileged)",
        ));
    }
    for field in [
        "PidMode",
        "IpcMode",
        "UTSMode",
        "UsernsMode",
        "CgroupnsMode",
    ] {
        namespace_mode(field, str_of(hc.get(field)), false)?;
    }
    // `container:` networking is allowed with the caller's own containers only.
    let network = str_of(hc.get("NetworkMode"));
    namespace_mode("NetworkMode", network, true)?;
    if let Some(target) = network.strip_prefix("container:") {
        own_container(
            target,
            ctx,
            "--network container:",
            "HostConfig.NetworkMode",
        )?;
    }
    if let Some(Value::Object(endpoints)) = body
        .get("NetworkingConfig")
        .and_then(|n| n.get("EndpointsConfig"))
    {
        for (name, _) in endpoints {
            if name.trim() == "host" {
                return Err(eci(
                    "eci.host_namespace",
                    "the host network is not allowed (NetworkingConfig.EndpointsConfig)",
                ));
            }
        }
    }
    for entry in strings(hc.get("VolumesFrom")) {
        own_container(
            volumes_from_name(entry),
            ctx,
            "--volumes-from ",
            "HostConfig.VolumesFrom",
        )?;
    }
    for entry in strings(hc.get("Links")) {
        own_container(link_name(entry), ctx, "--link ", "HostConfig.Links")?;
    }
    if non_empty(hc.get("Cgroup")) {
        return Err(eci(
            "eci.cgroup",
            "sharing another cgroup is not allowed (HostConfig.Cgroup)",
        ));
    }
    for cap in strings(hc.get("CapAdd")) {
        let name = cap_name(cap);
        if !DEFAULT_CAPS.contains(&name.as_str()) {
            return Err(eci(
                "eci.capabilities",
                format!("adding capability {name} is not allowed (HostConfig.CapAdd)"),
            ));
        }
    }
    for cap in strings(hc.get("Capabilities")) {
        let name = cap_name(cap);
        if !DEFAULT_CAPS.contains(&name.as_str()) {
            return Err(eci(
                "eci.capabilities",
                format!("capability {name} is not allowed (HostConfig.Capabilities)"),
            ));
        }
    }
    security_options(&strings(hc.get("SecurityOpt")))?;
    for field in ["MaskedPaths", "ReadonlyPaths"] {
        if matches!(hc.get(field), Some(v) if !matches!(v, Value::Null)) {
            return Err(eci(
                "eci.system_paths",
                format!("setting HostConfig.{field} is not allowed (it can unmask /proc and /sys)"),
            ));
        }
    }
    if let Some(Value::Object(sysctls)) = hc.get("Sysctls") {
        for (key, _) in sysctls {
            if !namespaced_sysctl(key.trim()) {
                return Err(eci(
                    "eci.sysctls",
                    format!("sysctl {key:?} is not allowed (HostConfig.Sysctls)"),
                ));
            }
        }
    }
    let runtime = str_of(hc.get("Runtime"));
    if !(runtime.is_empty() || runtime == "runc") {
        return Err(eci(
            "eci.runtime",
            format!("runtime {runtime:?} is not allowed (HostConfig.Runtime)"),
        ));
    }
    let isolation = str_of(hc.get("Isolation"));
    if !(isolation.is_empty() || isolation == "default") {
        return Err(eci(
            "eci.isolation",
            format!("isolation {isolation:?} is not allowed (HostConfig.Isolation)"),
        ));
    }
    if non_empty(hc.get("Annotations")) {
        return Err(eci(
            "eci.annotations",
            "OCI annotations are not allowed (HostConfig.Annotations)",
        ));
    }
    let log_driver = hc.get("LogConfig").and_then(|l| l.get("Type"));
    let log_driver = str_of(log_driver);
    if !matches!(log_driver, "" | "json-file" | "local" | "none" | "journald") {
        // Network log drivers (syslog, gelf, fluentd, ...) connect from the host, past the
        // containers' egress rules.
        return Err(eci(
            "eci.log_driver",
            format!("log driver {log_driver:?} is not allowed (HostConfig.LogConfig.Type)"),
        ));
    }
    let default_driver = str_of(hc.get("VolumeDriver"));
    if !(default_driver.is_empty() || default_driver == "local") {
        return Err(eci(
            "eci.volume_driver",
            format!("volume driver {default_driver:?} is not allowed (HostConfig.VolumeDriver)"),
        ));
    }
    resources(hc)?;
    let image = str_of(body.get("Image"));
    for bind in strings(hc.get("Binds")) {
        // `SRC:DST[:OPTIONS]`; a SRC that is an absolute path is a host path, anything else names
        // a volume.
        let source = bind.split(':').next().unwrap_or("");
        if source.starts_with('/') {
            if is_socket(source, ctx) {
                socket_mount(image, ctx)?;
            } else {
                host_path(source, ctx, "HostConfig.Binds")?;
            }
        }
    }
    if let Some(Value::Array(mounts)) = hc.get("Mounts") {
        for mount in mounts {
            match str_of(mount.get("Type")) {
                "bind" if is_socket(str_of(mount.get("Source")), ctx) => socket_mount(image, ctx)?,
                "bind" => host_path(str_of(mount.get("Source")), ctx, "HostConfig.Mounts")?,
                "volume" => {
                    let driver = mount
                        .get("VolumeOptions")
                        .and_then(|o| o.get("DriverConfig"));
                    if let Some(driver) = driver {
                        volume_driver(
                            str_of(driver.get("Name")),
                            driver.get("Options"),
                            ctx,
                            "HostConfig.Mounts",
                        )?;
                    }
                }
                "tmpfs" => {}
                other => {
                    return Err(eci(
                        "eci.mount_type",
                        format!("mounts of type {other:?} are not allowed (HostConfig.Mounts)"),
                    ))
                }
            }
        }
    }
    Ok(())
}

/// Resource fields of a create or update body that would widen the container's reach.
fn resources(body: &Value) -> Verdict {
    for field in ["Devices", "DeviceCgroupRules", "DeviceRequests"] {
        if non_empty(body.get(field)) {
            return Err(eci(
                "eci.devices",
                format!("host devices are not allowed (HostConfig.{field})"),
            ));
        }
    }
    if non_empty(body.get("CgroupParent")) {
        return Err(eci(
            "eci.cgroup_parent",
            "a custom cgroup parent is not allowed (HostConfig.CgroupParent)",
        ));
    }
    Ok(())
}

/// `SecurityOpt` entries, split as the engine splits them (`key=value`, or the legacy
/// `key:value`). Only options that keep or tighten the defaults are allowed.
fn security_options(options: &[&str]) -> Verdict {
    for option in options {
        let (key, value) = option
            .split_once('=')
            .or_else(|| option.split_once(':'))
            .unwrap_or((option, ""));
        let allowed = match key {
            "no-new-privileges" => value.is_empty() || value.eq_ignore_ascii_case("true"),
            "apparmor" => value == "docker-default",
            _ => false,
        };
        if !allowed {
            return Err(eci(
                "eci.security_opt",
                format!("security option {option:?} is not allowed (HostConfig.SecurityOpt)"),
            ));
        }
    }
    Ok(())
}

/// A volume driver and its options: only the local driver, and only options that do not mount
/// something of the host (a bind of a host path must be inside the shared directories).
fn volume_driver(driver: &str, options: Option<&Value>, ctx: &Context<'_>, field: &str) -> Verdict {
    if !(driver.is_empty() || driver == "local") {
        return Err(eci(
            "eci.volume_driver",
            format!("volume driver {driver:?} is not allowed ({field})"),
        ));
    }
    let Some(Value::Object(options)) = options else {
        return Ok(());
    };
    let get = |k: &str| {
        options
            .iter()
            .rev()
            .find(|(key, _)| key == k)
            .and_then(|(_, v)| v.as_str())
    };
    for (key, _) in options {
        if !matches!(key.as_str(), "type" | "o" | "device") {
            return Err(eci(
                "eci.volume_options",
                format!("volume option {key:?} is not allowed ({field})"),
            ));
        }
    }
    let kind = get("type").unwrap_or("");
    let o = get("o").unwrap_or("");
    let binds = o
        .split(',')
        .any(|opt| matches!(opt.trim(), "bind" | "rbind"));
    match (kind, binds) {
        ("tmpfs", false) => Ok(()),
        ("" | "none", true) => host_path(get("device").unwrap_or(""), ctx, field),
        ("", false) if get("device").is_none() => Ok(()),
        _ => Err(eci(
            "eci.volume_options",
            format!(
                "volume options that mount a device or a network share are not allowed ({field})"
            ),
        )),
    }
}

/// Whether a bind source is the Docker socket as Stockade serves it: the gateway's socket, or a
/// per-container socket (a container passing its own socket on).
fn is_socket(raw: &str, ctx: &Context<'_>) -> bool {
    SocketPlaces {
        paths: ctx.socket_paths,
        container_dir: ctx.container_sockets,
        resolve: ctx.resolve,
    }
    .holds(raw)
}

/// Where the gateway's sockets are, for finding Docker socket mounts in a create body.
#[derive(Clone, Copy)]
pub struct SocketPlaces<'a> {
    /// The gateway's sockets (symlinks resolved).
    pub paths: &'a [PathBuf],
    /// The directory of the per-container sockets.
    pub container_dir: Option<&'a Path>,
    /// Symlink resolution, as in [`Context::resolve`].
    pub resolve: &'a dyn Fn(&Path) -> Option<PathBuf>,
}

impl std::fmt::Debug for SocketPlaces<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketPlaces")
            .field("paths", &self.paths)
            .field("container_dir", &self.container_dir)
            .finish_non_exhaustive()
    }
}

impl SocketPlaces<'_> {
    /// Whether `raw`, a bind source, is one of the sockets.
    #[must_use]
    pub fn holds(&self, raw: &str) -> bool {
        let path = Path::new(raw);
        if !path.is_absolute() {
            return false;
        }
        let resolved = resolve_existing_prefix(path, self.resolve);
        self.paths.contains(&resolved)
            || self
                .container_dir
                .is_some_and(|dir| resolved.starts_with(dir) && resolved != dir)
    }
}

/// A Docker socket mount: only for images in `dockerSocketMount.imageList`, matched by name
/// and by provenance (the image's `RepoDigests`), so a re-tagged image does not pass.
fn socket_mount(image: &str, ctx: &Context<'_>) -> Verdict {
    let refused = |name: &str| {
        Err(eci(
            "eci.socket_mount",
            format!(
                "docker socket mount denied for container with image {name:?}; image is not in the allowed list; if you wish to allow it, ask your administrator to add it to enhancedContainerIsolation.dockerSocketMount.imageList"
            ),
        ))
    };
    let Ok(reference) = Reference::parse_normalized(image) else {
        return refused(image);
    };
    let shown = reference.name().to_owned();
    let patterns: Vec<ImagePattern> = ctx
        .settings
        .eci
        .socket_mount_images
        .iter()
        .filter_map(|p| ImagePattern::parse(p).ok())
        .collect();
    if patterns.iter().any(|p| matches!(p, ImagePattern::Any)) {
        return Ok(());
    }
    match ctx.images.get(image) {
        Some(ImageLookup::Present {
            repo_digests,
            layers,
            ..
        }) => {
            if patterns.iter().any(|p| p.matches(&reference, repo_digests)) {
                return Ok(());
            }
            // Docker Desktop's derived images: a local-only image whose layers start with all
            // the layers of a pulled image the list allows (it was built FROM that image).
            let derived = ctx.settings.eci.allow_derived_images
                && repo_digests.is_empty()
                && ctx.base_images.iter().any(|base| {
                    !base.layers.is_empty()
                        && layers.starts_with(&base.layers)
                        && base_allowed(base, &patterns)
                });
            if derived {
                Ok(())
            } else {
                refused(&shown)
            }
        }
        // The image must be present for its provenance to be checked (`docker run` pulls
        // it first).
        _ => refused(&shown),
    }
}

/// Whether a pulled image is in the socket-mount list under any of its names.
fn base_allowed(base: &BaseImage, patterns: &[ImagePattern]) -> bool {
    base.repo_tags
        .iter()
        .chain(&base.repo_digests)
        .filter_map(|name| Reference::parse_normalized(name).ok())
        .any(|name| {
            patterns
                .iter()
                .any(|p| p.matches(&name, &base.repo_digests))
        })
}

/// Whether the gateway should list the local images for [`Context::base_images`]: a socket
/// mount under `allowDerivedImages`.
#[must_use]
pub fn needs_base_images(
    request: &Request,
    settings: &Settings,
    places: &SocketPlaces<'_>,
) -> bool {
    settings.eci.enabled && settings.eci.allow_derived_images && has_socket_mounts(request, places)
}

/// Replaces the source of every Docker socket mount in a create body with `socket` (the
/// container's own gateway socket); returns how many were replaced. Call only for a request
/// [`decide`] allowed.
pub fn rewrite_socket_mounts(
    request: &mut Request,
    places: &SocketPlaces<'_>,
    socket: &Path,
) -> usize {
    let mut count = 0;
    let Some(Value::Object(members)) = request.body.as_mut() else {
        return 0;
    };
    let Some((_, Value::Object(hc))) = members.iter_mut().rev().find(|(k, _)| k == "HostConfig")
    else {
        return 0;
    };
    let new_source = socket.display().to_string();
    for (key, value) in hc.iter_mut() {
        match (key.as_str(), value) {
            ("Binds", Value::Array(binds)) => {
                for bind in binds.iter_mut() {
                    let Value::String(text) = bind else { continue };
                    let (source, rest) = text.split_once(':').unwrap_or((text.as_str(), ""));
                    if source.starts_with('/') && places.holds(source) {
                        *text = format!("{new_source}:{rest}");
                        count += 1;
                    }
                }
            }
            ("Mounts", Value::Array(mounts)) => {
                for mount in mounts.iter_mut() {
                    let Value::Object(fields) = mount else {
                        continue;
                    };
                    let bind = fields
                        .iter()
                        .any(|(k, v)| k == "Type" && v.as_str() == Some("bind"));
                    if !bind {
                        continue;
                    }
                    for (k, v) in fields.iter_mut() {
                        if k == "Source" && v.as_str().is_some_and(|src| places.holds(src)) {
                            *v = Value::String(new_source.clone());
                            count += 1;
                        }
                    }
                }
            }
            _ => {}
        }
    }
    count
}

/// `dockerSocketMount.commandList` for a request that came through a container's socket.
/// Commands are named as `docker --help` names them (`ps`, `build`, `push`), with the
/// wildcards `container*`, `image*`, `volume*`, `network*`, `build*`, `system*`.
fn command_list(request: &Request, target: &str, ctx: &Context<'_>) -> Verdict {
    let Some(list) = &ctx.settings.eci.command_list else {
        return Ok(());
    };
    if request.route.operation == Operation::Ping {
        // Every client pings first; refusing it would only break the allowed commands.
        return Ok(());
    }
    let names = command_names(request);
    let listed = list.commands.iter().any(|pattern| {
        names
            .iter()
            .any(|name| glob_match(pattern.as_bytes(), name.as_bytes()))
    });
    let allowed = match list.kind {
        crate::CommandListKind::Allow => listed,
        crate::CommandListKind::Deny => !listed,
    };
    if allowed {
        Ok(())
    } else {
        Err(eci(
            "eci.command_list",
            format!(
                "docker command {target:?} is blocked; if you wish to allow it, ask your administrator to change enhancedContainerIsolation.dockerSocketMount.commandList"
            ),
        ))
    }
}

/// `*` matches any run of characters; everything else literally.
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|i| glob_match(rest, &name[i..])),
        Some((c, rest)) => name.first() == Some(c) && glob_match(rest, &name[1..]),
    }
}

/// The docker CLI commands a request serves: the short form and the `group sub` form.
fn command_names(request: &Request) -> Vec<&'static str> {
    use Operation as O;
    match &request.route.operation {
        O::Ping => vec![],
        O::Version => vec!["version", "system version"],
        O::Info => vec!["info", "system info"],
        O::Events => vec!["events", "system events"],
        O::SystemDf => vec!["system df"],
        O::Auth => vec!["login"],
        O::ContainerList => vec!["ps", "container ls", "container list", "container ps"],
        O::ContainerCreate => vec!["create", "run", "container create", "container run"],
        O::ContainerPrune => vec!["container prune", "system prune"],
        O::ContainerInspect { .. } => vec!["inspect", "container inspect"],
        O::ContainerTop { .. } => vec!["top", "container top"],
        O::ContainerLogs { .. } => vec!["logs", "container logs"],
        O::ContainerChanges { .. } => vec!["diff", "container diff"],
        O::ContainerExport { .. } => vec!["export", "container export"],
        O::ContainerStats { .. } => vec!["stats", "container stats"],
        O::ContainerResize { .. } | O::ContainerAttach { .. } => {
            vec!["attach", "run", "container attach", "container run"]
        }
        O::ContainerStart { .. } => vec!["start", "run", "container start", "container run"],
        O::ContainerStop { .. } => vec!["stop", "container stop"],
        O::ContainerRestart { .. } => vec!["restart", "container restart"],
        O::ContainerKill { .. } => vec!["kill", "container kill"],
        O::ContainerUpdate { .. } => vec!["update", "container update"],
        O::ContainerRename { .. } => vec!["rename", "container rename"],
        O::ContainerPause { .. } => vec!["pause", "container pause"],
        O::ContainerUnpause { .. } => vec!["unpause", "container unpause"],
        O::ContainerWait { .. } => vec!["wait", "run", "container wait", "container run"],
        O::ContainerDelete { .. } => vec!["rm", "container rm"],
        O::ContainerArchiveStat { .. }
        | O::ContainerArchiveGet { .. }
        | O::ContainerArchivePut { .. } => vec!["cp", "container cp"],
        O::ExecCreate { .. }
        | O::ExecStart { .. }
        | O::ExecResize { .. }
        | O::ExecInspect { .. } => {
            vec!["exec", "container exec"]
        }
        O::ImageList => vec!["images", "image ls", "image list"],
        O::ImageCreate if request.query.get("fromImage").is_some() => vec!["pull", "image pull"],
        O::ImageCreate => vec!["import", "image import"],
        O::ImageSearch => vec!["search"],
        O::ImagePrune => vec!["image prune", "system prune"],
        O::ImageLoad => vec!["load", "image load"],
        O::ImageGetAll | O::ImageGet { .. } => vec!["save", "image save"],
        O::ImageInspect { .. } => vec!["inspect", "image inspect"],
        O::ImageHistory { .. } => vec!["history", "image history"],
        O::ImagePush { .. } => vec!["push", "image push"],
        O::ImageTag { .. } => vec!["tag", "image tag"],
        O::ImageDelete { .. } => vec!["rmi", "image rm"],
        O::Commit => vec!["commit", "container commit"],
        O::Build | O::Session | O::BuildCancel => vec!["build", "image build", "builder build"],
        O::BuildPrune => vec!["builder prune", "system prune"],
        O::VolumeList => vec!["volume ls"],
        O::VolumeCreate => vec!["volume create"],
        O::VolumePrune => vec!["volume prune", "system prune"],
        O::VolumeInspect { .. } => vec!["volume inspect"],
        O::VolumeDelete { .. } => vec!["volume rm"],
        O::NetworkList => vec!["network ls"],
        O::NetworkCreate => vec!["network create"],
        O::NetworkPrune => vec!["network prune", "system prune"],
        O::NetworkInspect { .. } => vec!["network inspect"],
        O::NetworkConnect { .. } => vec!["network connect"],
        O::NetworkDisconnect { .. } => vec!["network disconnect"],
        O::NetworkDelete { .. } => vec!["network rm"],
    }
}

/// Whether a create body mounts the Docker socket (the gateway then gives the container a socket
/// of its own).
#[must_use]
pub fn has_socket_mounts(request: &Request, places: &SocketPlaces<'_>) -> bool {
    if request.route.operation != Operation::ContainerCreate {
        return false;
    }
    let Some(hc) = request.body.as_ref().and_then(|b| b.get("HostConfig")) else {
        return false;
    };
    strings(hc.get("Binds")).iter().any(|bind| {
        let source = bind.split(':').next().unwrap_or("");
        source.starts_with('/') && places.holds(source)
    }) || match hc.get("Mounts") {
        Some(Value::Array(mounts)) => mounts
            .iter()
            .any(|m| str_of(m.get("Type")) == "bind" && places.holds(str_of(m.get("Source")))),
        _ => false,
    }
}

/// A host path a container would mount: inside a shared directory after resolving symlinks, and
/// never the engine or gateway socket or Stockade's own files, nor a directory holding them.
fn host_path(raw: &str, ctx: &Context<'_>, field: &str) -> Verdict {
    let denied = |why: String| {
        Err(deny(
            "eci.bind_mount",
            format!(
                "enhanced container isolation: mounting {raw:?} is not allowed ({field}): {why}"
            ),
        ))
    };
    let path = Path::new(raw);
    if !path.is_absolute() || path.components().any(|c| matches!(c, Component::ParentDir)) {
        return denied("write an absolute path without `..`".to_owned());
    }
    let resolved = resolve_existing_prefix(path, ctx.resolve);
    for protected in ctx.protected {
        if resolved.starts_with(protected) || protected.starts_with(&resolved) {
            return denied(format!(
                "it holds or is inside {} (Stockade's own files and sockets)",
                protected.display()
            ));
        }
    }
    let shared = &ctx.settings.filesharing_allowed_directories;
    let inside = shared.iter().any(|dir| {
        let dir = (ctx.resolve)(&dir.path).unwrap_or_else(|| dir.path.clone());
        resolved.starts_with(&dir)
    });
    if !inside {
        let dirs: Vec<String> = shared
            .iter()
            .map(|d| d.path.display().to_string())
            .collect();
        return denied(format!(
            "only paths inside the shared directories may be mounted ({}; filesharingAllowedDirectories)",
            if dirs.is_empty() { "none".to_owned() } else { dirs.join(", ") }
        ));
    }
    Ok(())
}

/// Resolve the longest existing prefix of `path` and append the rest (the engine creates a
/// missing bind source as a directory, so it is judged where it would be created).
fn resolve_existing_prefix(path: &Path, resolve: &dyn Fn(&Path) -> Option<PathBuf>) -> PathBuf {
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    loop {
        if let Some(resolved) = resolve(&existing) {
            let mut out = resolved;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return out;
        }
        match (
            existing.file_name().map(ToOwned::to_owned),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => return path.to_path_buf(),
        }
    }
}

fn network_create(body: &Value) -> Verdict {
    let driver = str_of(body.get("Driver"));
    if !(driver.is_empty() || driver == "bridge") {
        // macvlan/ipvlan attach to host interfaces past the egress rules; overlay is swarm.
        return Err(eci(
            "eci.network_driver",
            format!("network driver {driver:?} is not allowed (only bridge)"),
        ));
    }
    for field in ["ConfigFrom", "ConfigOnly", "Ingress"] {
        if non_empty(body.get(field)) && body.get(field) != Some(&Value::Bool(false)) {
            return Err(eci(
                "eci.network_options",
                format!("network field {field} is not allowed"),
            ));
        }
    }
    if let Some(Value::Object(options)) = body.get("Options") {
        for (key, _) in options {
            if !matches!(
                key.as_str(),
                "com.docker.network.driver.mtu" | "com.docker.network.bridge.enable_icc"
            ) {
                return Err(eci(
                    "eci.network_options",
                    format!("network option {key:?} is not allowed"),
                ));
            }
        }
    }
    Ok(())
}

fn build(request: &Request) -> Verdict {
    let network = request.query.get("networkmode").unwrap_or("");
    namespace_mode("networkmode", network, false)?;
    if !request.query.get("cgroupparent").unwrap_or("").is_empty() {
        return Err(eci(
            "eci.cgroup_parent",
            "a custom cgroup parent is not allowed for builds (cgroupparent)",
        ));
    }
    let isolation = request.query.get("isolation").unwrap_or("");
    if !(isolation.is_empty() || isolation == "default") {
        return Err(eci(
            "eci.isolation",
            format!("build isolation {isolation:?} is not allowed"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Policy, UserContext};
    use http::Method;
    use stockade_engine_api::Route;

    fn settings() -> Settings {
        Policy::builtin().effective(None, &UserContext::new(1000, "/home/u"))
    }

    fn judge(path: &str, query: &str, body: &str) -> Decision {
        judge_with(&settings(), &ImageLookup::Missing, path, query, body)
    }

    fn judge_with(
        settings: &Settings,
        image: &ImageLookup,
        path: &str,
        query: &str,
        body: &str,
    ) -> Decision {
        let protected = [PathBuf::from("/run/stockade")];
        let resolve = |p: &Path| -> Option<PathBuf> {
            // A tiny fake file system: /home/u/link -> /etc, everything under /home/u and /tmp
            // and /etc and /run exists.
            let s = p.to_str()?;
            if let Some(rest) = s.strip_prefix("/home/u/link") {
                return Some(PathBuf::from(format!("/etc{rest}")));
            }
            ["/home/u", "/tmp", "/etc", "/run", "/"]
                .iter()
                .any(|d| s == *d || s.starts_with(&format!("{d}/")))
                .then(|| p.to_path_buf())
        };
        let route = Route::parse(&Method::POST, path).unwrap();
        let raw = if body.starts_with("DOCKERFILE:") || body.starts_with("LOAD:") {
            ""
        } else {
            body
        };
        let mut request = Request::new(route, query, raw.as_bytes()).unwrap();
        if let Some(dockerfile) = body.strip_prefix("DOCKERFILE:") {
            // A build: the body stands for the context's Dockerfile.
            request.body = None;
            request.archive = Some(ArchiveFacts::BuildSources(
                stockade_engine_api::dockerfile::image_sources(dockerfile, &BTreeMap::new())
                    .unwrap(),
            ));
        }
        if let Some(names) = body.strip_prefix("LOAD:") {
            request.body = None;
            request.archive = Some(ArchiveFacts::LoadNames(
                names.split(',').map(str::to_owned).collect(),
            ));
        }
        let images: BTreeMap<String, ImageLookup> = images_to_look_up(&request)
            .into_iter()
            .map(|name| (name, image.clone()))
            .collect();
        // Containers named mine* belong to the caller (1000), theirs* to uid 1001, the rest
        // to nobody.
        let containers: BTreeMap<String, Option<u32>> = containers_to_look_up(&request)
            .into_iter()
            .map(|name| {
                let owner = if name.starts_with("mine") {
                    Some(1000)
                } else if name.starts_with("theirs") {
                    Some(1001)
                } else {
                    None
                };
                (name, owner)
            })
            .collect();
        let ctx = Context {
            settings,
            protected: &protected,
            resolve: &resolve,
            catalog: None,
            images: &images,
            engine_pulls_filtered: false,
            caller: 1000,
            containers: &containers,
            socket_paths: &[],
            container_sockets: None,
            via_container: None,
            base_images: &[],
        };
        decide(&request, &ctx)
    }

    fn create(hc: &str) -> Decision {
        judge(
            "/containers/create",
            "",
            &format!(r#"{{"Image":"busybox","HostConfig":{hc}}}"#),
        )
    }

    #[test]
    fn everyday_containers_are_allowed() {
        for hc in [
            "{}",
            r#"{"Binds":["/home/u/src:/src","named:/data"],"CapAdd":["chown","CAP_KILL"]}"#,
            r#"{"Mounts":[{"Type":"tmpfs","Target":"/t"},{"Type":"volume","Source":"v","Target":"/v"}]}"#,
            r#"{"SecurityOpt":["no-new-privileges"],"Sysctls":{"net.ipv4.ip_forward":"1"}}"#,
            r#"{"NetworkMode":"bridge","IpcMode":"private","LogConfig":{"Type":"json-file"}}"#,
            r#"{"Binds":["/tmp/new/dir:/x"]}"#,
        ] {
            let d = create(hc);
            assert!(d.allow, "{hc}: {}", d.reason);
        }
    }

    #[test]
    fn privilege_is_refused_in_every_spelling() {
        for (hc, rule) in [
            (r#"{"Privileged":true}"#, "eci.privileged"),
            (r#"{"privileged":true}"#, "eci.privileged"),
            (r#"{"PidMode":"host"}"#, "eci.host_namespace"),
            (r#"{"UsernsMode":"host"}"#, "eci.host_namespace"),
            (r#"{"NetworkMode":"host"}"#, "eci.host_namespace"),
            (r#"{"IpcMode":"container:abc"}"#, "eci.container_namespace"),
            (r#"{"CapAdd":["cap_sys_admin"]}"#, "eci.capabilities"),
            (r#"{"CapAdd":"ALL"}"#, "eci.capabilities"),
            (r#"{"Capabilities":["CAP_SYS_PTRACE"]}"#, "eci.capabilities"),
            (
                r#"{"SecurityOpt":["seccomp=unconfined"]}"#,
                "eci.security_opt",
            ),
            (
                r#"{"SecurityOpt":["seccomp:unconfined"]}"#,
                "eci.security_opt",
            ),
            (
                r#"{"SecurityOpt":["apparmor=unconfined"]}"#,
                "eci.security_opt",
            ),
            (r#"{"SecurityOpt":["label=disable"]}"#, "eci.security_opt"),
            (
                r#"{"SecurityOpt":["no-new-privileges=false"]}"#,
                "eci.security_opt",
            ),
            (
                r#"{"SecurityOpt":["systempaths=unconfined"]}"#,
                "eci.security_opt",
            ),
            (r#"{"MaskedPaths":[]}"#, "eci.system_paths"),
            (
                r#"{"Sysctls":{"kernel.core_pattern":"|/x"}}"#,
                "eci.sysctls",
            ),
            (r#"{"Devices":[{"PathOnHost":"/dev/sda"}]}"#, "eci.devices"),
            (r#"{"DeviceCgroupRules":["a *:* rwm"]}"#, "eci.devices"),
            (r#"{"Runtime":"runsc"}"#, "eci.runtime"),
            (r#"{"CgroupParent":"/"}"#, "eci.cgroup_parent"),
            (r#"{"VolumesFrom":["other"]}"#, "eci.ownership"),
            (r#"{"VolumesFrom":["theirs:ro"]}"#, "eci.ownership"),
            (r#"{"NetworkMode":"container:theirs"}"#, "eci.ownership"),
            (r#"{"NetworkMode":"container:nobody"}"#, "eci.ownership"),
            (r#"{"Links":["/theirs:db"]}"#, "eci.ownership"),
            (r#"{"LogConfig":{"Type":"syslog"}}"#, "eci.log_driver"),
            (r#"{"Binds":["/:/host"]}"#, "eci.bind_mount"),
            (r#"{"Binds":["/etc:/e:ro"]}"#, "eci.bind_mount"),
            (r#"{"Binds":["/home/u/link:/e"]}"#, "eci.bind_mount"),
            (r#"{"Binds":["/home/u/../../etc:/e"]}"#, "eci.bind_mount"),
            (
                r#"{"Binds":["/run/stockade/engine.sock:/s"]}"#,
                "eci.bind_mount",
            ),
            (
                r#"{"Mounts":[{"Type":"bind","Source":"/","Target":"/h"}]}"#,
                "eci.bind_mount",
            ),
            (
                r#"{"Mounts":[{"Type":"volume","Target":"/v","VolumeOptions":{"DriverConfig":{"Options":{"type":"none","o":"bind","device":"/etc"}}}}]}"#,
                "eci.bind_mount",
            ),
            (
                r#"{"Mounts":[{"Type":"volume","Target":"/v","VolumeOptions":{"DriverConfig":{"Options":{"type":"ext4","device":"/dev/sda1"}}}}]}"#,
                "eci.volume_options",
            ),
            (
                r#"{"Mounts":[{"Type":"npipe","Target":"/p"}]}"#,
                "eci.mount_type",
            ),
        ] {
            let d = create(hc);
            assert!(!d.allow, "{hc} was allowed");
            assert_eq!(d.rule, rule, "{hc}: {}", d.reason);
            assert!(
                d.reason.starts_with("enhanced container isolation: "),
                "{}",
                d.reason
            );
        }
        let d = judge(
            "/containers/create",
            "",
            r#"{"Image":"x","NetworkingConfig":{"EndpointsConfig":{"host":{}}}}"#,
        );
        assert_eq!(d.rule, "eci.host_namespace");
    }

    #[test]
    fn other_operations() {
        assert!(
            !judge(
                "/containers/x/exec",
                "",
                r#"{"Cmd":["sh"],"Privileged":true}"#
            )
            .allow
        );
        assert!(judge("/containers/x/exec", "", r#"{"Cmd":["sh"]}"#).allow);
        assert!(
            !judge(
                "/containers/x/update",
                "",
                r#"{"Devices":[{"PathOnHost":"/dev/mem"}]}"#
            )
            .allow
        );
        assert!(!judge("/build", "networkmode=host", "").allow);
        assert!(
            judge(
                "/build",
                "networkmode=default&t=a",
                "DOCKERFILE:FROM busybox"
            )
            .allow
        );
        assert!(!judge("/images/load", "", "").allow);
        assert!(!judge("/images/create", "fromSrc=-", "").allow);
        assert!(judge("/images/create", "fromImage=busybox&tag=latest", "").allow);
        assert!(
            !judge(
                "/volumes/create",
                "",
                r#"{"Name":"v","DriverOpts":{"type":"none","o":"bind","device":"/"}}"#
            )
            .allow
        );
        assert!(judge("/volumes/create", "", r#"{"Name":"v"}"#).allow);
        assert!(!judge("/networks/create", "", r#"{"Name":"n","Driver":"macvlan"}"#).allow);
        assert!(judge("/networks/create", "", r#"{"Name":"n","Driver":"bridge"}"#).allow);
    }

    fn restricted() -> Settings {
        let policy = Policy::parse(
            "p.json",
            br#"{"configurationFileVersion": 2,
                "enhancedContainerIsolation": {"locked": true, "value": false},
                "blockDockerLoad": {"locked": true, "value": false},
                "registryAccess": {"locked": true, "allowedRegistries": ["docker.io", "127.0.0.1:5000"]},
                "imageAccess": {"locked": true, "allowCommunityImages": false, "organizationNamespaces": ["myorg"]}}"#,
        )
        .unwrap();
        policy.effective(None, &UserContext::new(1000, "/home/u"))
    }

    fn image_rule(path: &str, query: &str, body: &str) -> Decision {
        judge_with(&restricted(), &ImageLookup::Missing, path, query, body)
    }

    #[test]
    fn pulls_pushes_tags_and_commits_are_held_to_registry_access_even_without_eci() {
        let ok = |p: &str, q: &str| {
            let d = image_rule(p, q, "");
            assert!(d.allow, "{p}?{q}: {}", d.reason);
        };
        let no = |p: &str, q: &str, rule: &str, words: &str| {
            let d = image_rule(p, q, "");
            assert!(!d.allow, "{p}?{q} allowed");
            assert_eq!(d.rule, rule, "{p}?{q}: {}", d.reason);
            assert!(d.reason.contains(words), "{p}?{q}: {}", d.reason);
        };
        ok("/images/create", "fromImage=busybox&tag=latest");
        ok("/images/create", "fromImage=127.0.0.1:5000/app&tag=1");
        ok("/images/create", "fromImage=myorg/app");
        no(
            "/images/create",
            "fromImage=127.0.0.2:5000/app&tag=1",
            "ram.registry",
            "registry access to 127.0.0.2:5000 is not allowed",
        );
        no(
            "/images/create",
            "fromImage=ann/tool",
            "iam.category",
            "image access denied: community images not allowed",
        );
        // The tag parameter can carry a digest; the name still decides.
        no(
            "/images/create",
            &format!("fromImage=quay.io/x/y&tag=sha256:{}", "a".repeat(64)),
            "ram.registry",
            "quay.io",
        );
        no(
            "/images/create",
            "fromImage=Busybox",
            "image.reference",
            "must be lowercase",
        );
        no(
            "/images/create",
            "fromSrc=http://127.0.0.1:8000/rootfs.tar",
            "ram.import_url",
            "URL",
        );
        no(
            "/images/create",
            "fromSrc=-&repo=127.0.0.2:5000/x",
            "ram.registry",
            "127.0.0.2:5000",
        );
        ok("/images/create", "fromSrc=-&repo=mine/x");
        ok("/images/busybox/push", "tag=");
        ok("/images/127.0.0.1:5000/app/push", "tag=1");
        no(
            "/images/127.0.0.2:5000/app/push",
            "tag=1",
            "ram.registry",
            "push 127.0.0.2:5000/app:1",
        );
        no(
            "/images/busybox/tag",
            "repo=127.0.0.2:5000/busybox&tag=x",
            "ram.registry",
            "tag as",
        );
        ok("/images/busybox/tag", "repo=127.0.0.1:5000/busybox&tag=x");
        // Tagging names a local image only: no category check.
        ok("/images/busybox/tag", "repo=ann/tool");
        no(
            "/commit",
            "container=c&repo=ghcr.io/x/y",
            "ram.registry",
            "commit as",
        );
        ok("/commit", "container=c&repo=mine/snapshot");
        no(
            "/build",
            "t=ok:1&t=127.0.0.2:5000/x",
            "ram.registry",
            "build as",
        );
        no(
            "/build",
            "version=2&t=ok",
            "ram.build_unchecked",
            "BuildKit",
        );
        no(
            "/build",
            "remote=https://github.com/x/y.git",
            "ram.build_remote",
            "remote",
        );
        no("/build", "t=ok:1", "ram.build_unchecked", "not inspected");
    }

    #[test]
    fn build_base_images_and_load_names_are_held_to_the_rules() {
        let s = restricted();
        let build = |image: &ImageLookup, query: &str, dockerfile: &str| {
            judge_with(
                &s,
                image,
                "/build",
                query,
                &format!("DOCKERFILE:{dockerfile}"),
            )
        };
        let missing = ImageLookup::Missing;
        let local = ImageLookup::Present {
            id: "sha256:1".to_owned(),
            repo_digests: Vec::new(),
            layers: Vec::new(),
        };
        let d = format!("@sha256:{}", "c".repeat(64));
        let from_bad = ImageLookup::Present {
            id: "sha256:2".to_owned(),
            repo_digests: vec![format!("127.0.0.2:5000/app{d}")],
            layers: Vec::new(),
        };
        assert!(
            build(
                &missing,
                "t=x",
                "FROM busybox\nFROM 127.0.0.1:5000/a AS b\nFROM b\n"
            )
            .allow
        );
        let denied = build(
            &missing,
            "t=x",
            "FROM busybox\nCOPY --from=127.0.0.2:5000/t /a /a\n",
        );
        assert_eq!(denied.rule, "ram.registry", "{}", denied.reason);
        assert!(
            denied
                .reason
                .contains("Dockerfile line 2: COPY --from 127.0.0.2:5000/t"),
            "{}",
            denied.reason
        );
        assert!(!build(&missing, "", "ARG R=127.0.0.2:5000\nFROM $R/x\n").allow);
        assert!(!build(&missing, "", "FROM ann/tool\n").allow);
        // A base present locally is judged by where it came from, not by its name.
        assert!(build(&local, "", "FROM ann/tool\n").allow);
        assert!(!build(&from_bad, "", "FROM busybox\n").allow);
        // --pull fetches by name whatever is local.
        assert!(!build(&local, "pull=1", "FROM ann/tool\n").allow);
        assert!(build(&local, "pull=1", "FROM busybox\n").allow);

        let mut open = s.clone();
        open.block_docker_load = false;
        let load = |names: &str| {
            judge_with(
                &open,
                &missing,
                "/images/load",
                "",
                &format!("LOAD:{names}"),
            )
        };
        assert!(load("busybox:1,127.0.0.1:5000/x:2").allow);
        let denied = load("busybox:1,127.0.0.2:5000/x:2");
        assert!(
            denied.reason.contains("load as 127.0.0.2:5000/x:2"),
            "{}",
            denied.reason
        );
        assert!(!load("UPPER:1").allow);
        let route = Route::parse(&Method::POST, "/images/load").unwrap();
        let request = Request::new(route, "", b"").unwrap();
        let mut blocked = s.clone();
        blocked.block_docker_load = true;
        assert!(needs_archive(&request, &open) && !needs_archive(&request, &blocked));
    }

    #[test]
    fn containers_are_judged_by_where_their_image_came_from() {
        let s = restricted();
        let present = |digests: &[&str]| ImageLookup::Present {
            id: format!("sha256:{}", "b".repeat(64)),
            repo_digests: digests.iter().map(|d| (*d).to_owned()).collect(),
            layers: Vec::new(),
        };
        let run = |image: &ImageLookup, name: &str| {
            judge_with(
                &s,
                image,
                "/containers/create",
                "",
                &format!(r#"{{"Image":"{name}"}}"#),
            )
        };
        let d = format!("@sha256:{}", "c".repeat(64));
        // Re-tagged under an allowed name: still the forbidden registry's image.
        let retagged = present(&[&format!("127.0.0.2:5000/app{d}")]);
        let denied = run(&retagged, "busybox");
        assert!(!denied.allow);
        assert!(
            denied
                .reason
                .contains("registry access to 127.0.0.2:5000 is not allowed"),
            "{}",
            denied.reason
        );
        assert!(!run(&retagged, "sha256:bbbb").allow);
        assert!(
            !run(
                &present(&[&format!("busybox{d}"), &format!("ann/tool{d}")]),
                "busybox"
            )
            .allow
        );
        assert!(
            run(
                &present(&[
                    &format!("busybox{d}"),
                    &format!("127.0.0.1:5000/busybox{d}")
                ]),
                "x"
            )
            .allow
        );
        // Built here: no provenance to hold against it.
        assert!(run(&present(&[]), "ann/tool").allow);
        // Not present: the name decides (the CLI then pulls, a checked pull).
        assert!(!run(&ImageLookup::Missing, "127.0.0.2:5000/app").allow);
        assert!(!run(&ImageLookup::Missing, "ann/tool").allow);
        assert!(run(&ImageLookup::Missing, "127.0.0.1:5000/app").allow);
        // Not looked up: refused.
        let protected: [PathBuf; 0] = [];
        let resolve = |p: &Path| Some(p.to_path_buf());
        let ctx = Context {
            settings: &s,
            protected: &protected,
            resolve: &resolve,
            catalog: None,
            images: &BTreeMap::new(),
            engine_pulls_filtered: false,
            caller: 1000,
            containers: &BTreeMap::new(),
            socket_paths: &[],
            container_sockets: None,
            via_container: None,
            base_images: &[],
        };
        let route = Route::parse(&Method::POST, "/containers/create").unwrap();
        let request = Request::new(route, "", br#"{"Image":"busybox"}"#).unwrap();
        assert_eq!(decide(&request, &ctx).rule, "image.lookup");
    }

    #[test]
    fn own_containers_may_be_joined_and_the_owner_label_is_stockades() {
        for hc in [
            r#"{"NetworkMode":"container:mine1"}"#,
            r#"{"VolumesFrom":["mine1:ro","mine2"]}"#,
            r#"{"Links":["/mine1:db"]}"#,
        ] {
            let d = create(hc);
            assert!(d.allow, "{hc}: {}", d.reason);
        }
        let d = create(r#"{"VolumesFrom":["mine1","theirs2"]}"#);
        assert!(
            d.reason
                .contains("--volumes-from theirs2 is allowed only with your own containers"),
            "{}",
            d.reason
        );
        // The label goes on containers, volumes and networks, and no request may set it.
        for (path, body) in [
            (
                "/containers/create",
                r#"{"Image":"busybox","Labels":{"a":"b"}}"#,
            ),
            ("/containers/create", r#"{"Image":"busybox","Labels":null}"#),
            ("/volumes/create", r#"{"Name":"v"}"#),
            ("/networks/create", r#"{"Name":"n"}"#),
        ] {
            let route = Route::parse(&Method::POST, path).unwrap();
            let mut request = Request::new(route, "", body.as_bytes()).unwrap();
            stamp_owner(&mut request, 1000).unwrap();
            let labels = request.body.as_ref().unwrap().get("Labels").unwrap();
            assert_eq!(
                labels.get(OWNER_LABEL).and_then(Value::as_str),
                Some("1000"),
                "{path} {body}"
            );
        }
        let route = Route::parse(&Method::POST, "/containers/create").unwrap();
        let mut request = Request::new(
            route,
            "",
            br#"{"Image":"busybox","Labels":{"io.stockade.owner":"0"}}"#,
        )
        .unwrap();
        assert_eq!(
            stamp_owner(&mut request, 1000).unwrap_err().rule,
            "eci.owner_label"
        );
    }

    fn socket_settings(commands: &str) -> Settings {
        let text = format!(
            r#"{{"configurationFileVersion": 2,
              "enhancedContainerIsolation": {{"locked": true, "value": true,
                "dockerSocketMount": {{"imageList": {{"images": ["docker:cli", "127.0.0.1:5000/tools:*"]}},
                                      "commandList": {commands}}}}}}}"#
        );
        Policy::parse("p.json", text.as_bytes())
            .unwrap()
            .effective(None, &UserContext::new(1000, "/home/u"))
    }

    fn socket_ctx_judge(
        settings: &Settings,
        image: &ImageLookup,
        body: &str,
        via: Option<(&str, &str)>,
        path: &str,
        query: &str,
    ) -> (Decision, Request) {
        socket_ctx_judge_with(settings, image, body, via, path, query, &[])
    }

    fn socket_ctx_judge_with(
        settings: &Settings,
        image: &ImageLookup,
        body: &str,
        via: Option<(&str, &str)>,
        path: &str,
        query: &str,
        bases: &[BaseImage],
    ) -> (Decision, Request) {
        let route = Route::parse(&Method::POST, path).unwrap();
        let request = Request::new(route, query, body.as_bytes()).unwrap();
        let images: BTreeMap<String, ImageLookup> = images_to_look_up(&request)
            .into_iter()
            .map(|n| (n, image.clone()))
            .collect();
        let protected = [PathBuf::from("/run/stk")];
        let sockets = [PathBuf::from("/run/stk/docker.sock")];
        let resolve = |p: &Path| -> Option<PathBuf> {
            let s = p.to_str()?;
            // /home/u/sock is a symlink to the gateway socket.
            if s == "/home/u/sock" {
                return Some(PathBuf::from("/run/stk/docker.sock"));
            }
            (s.starts_with("/run/stk") || s.starts_with("/home/u") || s == "/")
                .then(|| p.to_path_buf())
        };
        let containers = BTreeMap::new();
        let ctx = Context {
            settings,
            protected: &protected,
            resolve: &resolve,
            catalog: None,
            images: &images,
            engine_pulls_filtered: false,
            caller: 1000,
            containers: &containers,
            socket_paths: &sockets,
            container_sockets: Some(Path::new("/run/stk/c")),
            via_container: via,
            base_images: bases,
        };
        let d = decide(&request, &ctx);
        let mut rewritten = request.clone();
        if d.allow {
            let places = SocketPlaces {
                paths: &sockets,
                container_dir: Some(Path::new("/run/stk/c")),
                resolve: &resolve,
            };
            assert_eq!(has_socket_mounts(&request, &places), body.contains("sock"));
            rewrite_socket_mounts(
                &mut rewritten,
                &places,
                Path::new("/run/stk/c/tok/docker.sock"),
            );
        }
        (d, rewritten)
    }

    #[test]
    fn socket_mounts_need_an_allowed_image_and_get_a_socket_of_their_own() {
        let s = socket_settings(r#"{"type": "deny", "commands": ["push", "build*"]}"#);
        let d = format!("@sha256:{}", "e".repeat(64));
        let pulled = ImageLookup::Present {
            id: "sha256:1".into(),
            repo_digests: vec![format!("docker{d}")],
            layers: Vec::new(),
        };
        let retagged = ImageLookup::Present {
            id: "sha256:2".into(),
            repo_digests: vec![],
            layers: Vec::new(),
        };
        let create = |image: &ImageLookup, name: &str, hc: &str| {
            socket_ctx_judge(
                &s,
                image,
                &format!(r#"{{"Image":"{name}","HostConfig":{hc}}}"#),
                None,
                "/containers/create",
                "",
            )
        };
        let (ok, body) = create(
            &pulled,
            "docker:cli",
            r#"{"Binds":["/run/stk/docker.sock:/var/run/docker.sock"]}"#,
        );
        assert!(ok.allow, "{}", ok.reason);
        let binds = body
            .body
            .as_ref()
            .unwrap()
            .get("HostConfig")
            .unwrap()
            .get("Binds")
            .unwrap();
        assert_eq!(
            binds.as_array().unwrap()[0].as_str(),
            Some("/run/stk/c/tok/docker.sock:/var/run/docker.sock")
        );
        // Through a symlink, and as a Mounts entry, it is the same socket.
        let (ok, body) = create(
            &pulled,
            "docker:cli",
            r#"{"Mounts":[{"Type":"bind","Source":"/home/u/sock","Target":"/s"}]}"#,
        );
        assert!(ok.allow, "{}", ok.reason);
        let source = body
            .body
            .as_ref()
            .unwrap()
            .get("HostConfig")
            .unwrap()
            .get("Mounts")
            .unwrap()
            .as_array()
            .unwrap()[0]
            .get("Source")
            .unwrap()
            .as_str();
        assert_eq!(source, Some("/run/stk/c/tok/docker.sock"));
        // A container's own socket passed on to a child counts too.
        assert!(
            create(
                &pulled,
                "docker:cli",
                r#"{"Binds":["/run/stk/c/other/docker.sock:/s"]}"#
            )
            .0
            .allow
        );
        // Not in the list, re-tagged, or not present: refused with Docker Desktop's words.
        let (no, _) = create(
            &pulled,
            "busybox",
            r#"{"Binds":["/run/stk/docker.sock:/s"]}"#,
        );
        assert_eq!(no.rule, "eci.socket_mount");
        assert!(no.reason.starts_with("enhanced container isolation: docker socket mount denied for container with image \"docker.io/library/busybox\""), "{}", no.reason);
        assert!(
            !create(
                &retagged,
                "docker:cli",
                r#"{"Binds":["/run/stk/docker.sock:/s"]}"#
            )
            .0
            .allow
        );
        assert!(
            !create(
                &ImageLookup::Missing,
                "docker:cli",
                r#"{"Binds":["/run/stk/docker.sock:/s"]}"#
            )
            .0
            .allow
        );
        // Other things in the socket directory stay protected.
        assert_eq!(
            create(&pulled, "docker:cli", r#"{"Binds":["/run/stk:/s"]}"#)
                .0
                .rule,
            "eci.bind_mount"
        );
    }

    #[test]
    fn the_command_list_holds_requests_from_container_sockets() {
        let deny = socket_settings(r#"{"type": "deny", "commands": ["push", "build*"]}"#);
        let allow =
            socket_settings(r#"{"type": "allow", "commands": ["container*", "pull", "images"]}"#);
        let via = Some(("c0ffee", "/v1.43/images/x/push?tag=1"));
        let run = |s: &Settings, path: &str, query: &str, body: &str, via: Option<(&str, &str)>| {
            socket_ctx_judge(s, &ImageLookup::Missing, body, via, path, query).0
        };
        let pushed = run(&deny, "/images/x/push", "tag=1", "", via);
        assert_eq!(pushed.rule, "eci.command_list");
        assert!(
            pushed
                .reason
                .contains("docker command \"/v1.43/images/x/push?tag=1\" is blocked"),
            "{}",
            pushed.reason
        );
        assert!(!run(&deny, "/build", "", "", via).allow);
        assert!(run(&deny, "/images/create", "fromImage=busybox", "", via).allow);
        // The same requests from the user's own socket are not held to the list.
        assert!(run(&deny, "/images/x/push", "tag=1", "", None).allow);
        assert!(
            run(
                &allow,
                "/containers/create",
                "",
                r#"{"Image":"busybox"}"#,
                via
            )
            .allow
        );
        assert!(run(&allow, "/containers/abc/start", "", "", via).allow);
        assert!(run(&allow, "/images/create", "fromImage=busybox", "", via).allow);
        assert!(!run(&allow, "/images/create", "fromSrc=-", "", via).allow);
        assert!(!run(&allow, "/volumes/create", "", r#"{"Name":"v"}"#, via).allow);
        assert!(!run(&allow, "/images/x/tag", "repo=y", "", via).allow);
        assert!(glob_match(b"container*", b"container run"));
        assert!(!glob_match(b"container*", b"run"));
        assert!(glob_match(b"*", b""));
    }

    #[test]
    fn derived_images_may_mount_the_socket_when_allowed() {
        let text = r#"{"configurationFileVersion": 2,
            "enhancedContainerIsolation": {"locked": true, "value": true,
              "dockerSocketMount": {"imageList": {"images": ["paketo/builder:*"], "allowDerivedImages": true}}}}"#;
        let allow = Policy::parse("p.json", text.as_bytes())
            .unwrap()
            .effective(None, &UserContext::new(1000, "/home/u"));
        let mut deny = allow.clone();
        deny.eci.allow_derived_images = false;
        let d = format!("@sha256:{}", "f".repeat(64));
        let base = BaseImage {
            repo_tags: vec!["paketo/builder:base".into()],
            repo_digests: vec![format!("paketo/builder{d}")],
            layers: vec!["sha256:l1".into(), "sha256:l2".into()],
        };
        let other = BaseImage {
            repo_tags: vec!["evil/base:1".into()],
            repo_digests: vec![format!("evil/base{d}")],
            layers: vec!["sha256:e1".into()],
        };
        let local = |layers: &[&str]| ImageLookup::Present {
            id: "sha256:9".into(),
            repo_digests: vec![],
            layers: layers.iter().map(|l| (*l).to_owned()).collect(),
        };
        let body = r#"{"Image":"ephemeral:1","HostConfig":{"Binds":["/run/stk/docker.sock:/s"]}}"#;
        let run = |s: &Settings, image: &ImageLookup| {
            socket_ctx_judge_with(
                s,
                image,
                body,
                None,
                "/containers/create",
                "",
                &[other.clone(), base.clone()],
            )
            .0
        };
        assert!(run(&allow, &local(&["sha256:l1", "sha256:l2", "sha256:l3"])).allow);
        assert!(!run(&deny, &local(&["sha256:l1", "sha256:l2", "sha256:l3"])).allow);
        // Built from something else, or only sharing a first layer: refused.
        assert!(!run(&allow, &local(&["sha256:e1", "sha256:x"])).allow);
        assert!(!run(&allow, &local(&["sha256:l1"])).allow);
        // An image with registry digests of its own is not "derived": it must be listed.
        let pulled = ImageLookup::Present {
            id: "sha256:9".into(),
            repo_digests: vec![format!("other/x{d}")],
            layers: vec!["sha256:l1".into(), "sha256:l2".into(), "sha256:l3".into()],
        };
        assert!(!run(&allow, &pulled).allow);
    }
}
