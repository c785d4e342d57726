//! `stockade policy explain`: the gateway's decision for one request, and the rule that made
//! it, without an engine. The request is given as the Engine API sees it (`--route`, the body on
//! stdin) or as docker CLI arguments after `--`, translated the way the docker CLI sends them.

use crate::failure::Failure;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use stockade_engine_api::{ArchiveFacts, BodyKind, Query, Request, Route};
use stockade_policy::rules::{self, ImageLookup};
use stockade_policy::{UserContext, UserSettings};

/// Flags of `stockade policy explain`.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// The admin policy (default: /etc/stockade/admin-settings.json if it exists, else the
    /// built-in secure default).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Judge as this user (their settings file and shared directories); default: the caller.
    #[arg(long)]
    user: Option<u32>,
    /// The Engine API request, as `METHOD /path?query` (the body, if any, on stdin).
    #[arg(long, conflicts_with = "docker")]
    route: Option<String>,
    /// Or: docker CLI arguments, e.g. `-- docker run --privileged busybox`.
    #[arg(last = true)]
    docker: Vec<String>,
}

/// A request to judge: route, raw query, body bytes, facts read from an archive.
struct Translated {
    method: http::Method,
    path: String,
    query: String,
    body: Vec<u8>,
    archive: Option<ArchiveFacts>,
}

pub fn run(args: &ExplainArgs) -> Result<(), Failure> {
    let policy = super::policy::load(args.policy.as_deref())?;
    let uid = args.user.unwrap_or_else(|| nix::unistd::getuid().as_raw());
    let home = match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(user)) => user.dir,
        _ => {
            return Err(Failure::usage(format!(
                "no user with uid {uid} in the password database"
            )))
        }
    };
    let who = UserContext::new(uid, home);
    let user = UserSettings::read_for(&who).unwrap_or_else(|e| {
        let _ = writeln!(
            std::io::stderr(),
            "stockade: user {uid}'s settings are ignored: {e}"
        );
        None
    });
    let settings = policy.effective(user.as_ref(), &who);
    let translated = match (&args.route, args.docker.as_slice()) {
        (Some(route), []) => from_route(route)?,
        (None, [first, rest @ ..]) if first == "docker" => from_docker(rest)?,
        (None, [_, ..]) => {
            return Err(Failure::usage(
                "give the docker command line after `--`, starting with `docker`".to_owned(),
            ))
        }
        _ => {
            return Err(Failure::usage(
                "say what to explain: --route 'POST /containers/create' with the body on stdin, or -- docker run ...".to_owned(),
            ))
        }
    };
    let route = Route::parse(&translated.method, &translated.path)
        .map_err(|e| deny_exit(&format!("enhanced container isolation: {e}"), "route"))?;
    let query = Query::parse(&translated.query).map_err(|e| Failure::check(e.to_string()))?;
    let body: &[u8] = match BodyKind::of(&route.operation, &query) {
        BodyKind::Json { .. } | BodyKind::None => &translated.body,
        BodyKind::Stream => b"",
    };
    let mut request = Request::new(route, &translated.query, body).map_err(|e| {
        Failure::check(format!(
            "the request is malformed (the gateway answers 400): {e}"
        ))
    })?;
    request.archive = translated.archive;
    if let Err(d) = rules::stamp_owner(&mut request, uid) {
        return Err(deny_exit(&d.reason, d.rule));
    }
    // No engine is asked: images are judged by name, as if none were present.
    let images: BTreeMap<String, ImageLookup> = rules::images_to_look_up(&request)
        .into_iter()
        .map(|name| (name, ImageLookup::Missing))
        .collect();
    // Nor who owns a container: joining one is judged as if it were not the caller's.
    let containers: BTreeMap<String, Option<u32>> = rules::containers_to_look_up(&request)
        .into_iter()
        .map(|name| (name, None))
        .collect();
    let resolve = |p: &Path| std::fs::canonicalize(p).ok();
    let protected = [
        PathBuf::from("/run/stockade"),
        PathBuf::from("/var/lib/stockade"),
        PathBuf::from("/etc/stockade"),
        PathBuf::from("/var/run/docker.sock"),
    ];
    let ctx = rules::Context {
        settings: &settings,
        protected: &protected,
        resolve: &resolve,
        catalog: policy.catalog(),
        images: &images,
        engine_pulls_filtered: false,
        caller: uid,
        containers: &containers,
        socket_paths: &[],
        container_sockets: None,
        via_container: None,
        base_images: &[],
    };
    let decision = rules::decide(&request, &ctx);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "request: {} {}{}{}",
        translated.method,
        translated.path,
        if translated.query.is_empty() { "" } else { "?" },
        translated.query
    );
    let _ = writeln!(
        out,
        "policy: {} (sha256 {})",
        policy.source_name(),
        policy.hash()
    );
    let _ = writeln!(out, "user: {uid}");
    let _ = writeln!(
        out,
        "decision: {}",
        if decision.allow { "allow" } else { "deny" }
    );
    let _ = writeln!(out, "rule: {}", decision.rule);
    if !decision.allow {
        let _ = writeln!(out, "reason: {}", decision.reason);
    }
    if !images.is_empty() {
        let _ = writeln!(
            out,
            "note: images judged by name; the gateway judges an image already on the engine by where it was pulled from (its RepoDigests)"
        );
    }
    if decision.allow {
        Ok(())
    } else {
        Err(Failure::check_silent())
    }
}

fn deny_exit(message: &str, rule: &str) -> Failure {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "decision: deny\nrule: {rule}\nreason: {message}");
    Failure::check_silent()
}

fn from_route(route: &str) -> Result<Translated, Failure> {
    let (method, target) = route.trim().split_once(' ').ok_or_else(|| {
        Failure::usage(format!(
            "--route {route:?}: write it as METHOD /path?query, e.g. 'POST /containers/create'"
        ))
    })?;
    let method = http::Method::from_bytes(method.as_bytes())
        .map_err(|_| Failure::usage(format!("--route: {method:?} is not an HTTP method")))?;
    let (path, query) = target.trim().split_once('?').unwrap_or((target.trim(), ""));
    let mut body = Vec::new();
    if !atty_stdin() {
        std::io::stdin()
            .take(stockade_engine_api::request::MAX_JSON_BODY as u64 + 1)
            .read_to_end(&mut body)
            .map_err(|e| Failure::usage(format!("cannot read the body from stdin: {e}")))?;
    }
    Ok(Translated {
        method,
        path: path.to_owned(),
        query: query.to_owned(),
        body,
        archive: None,
    })
}

fn atty_stdin() -> bool {
    use std::io::IsTerminal as _;
    std::io::stdin().is_terminal()
}

/// Percent-encodes a query value.
fn q(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Splits `name[:tag]` the way the docker CLI does for `tag`/`commit` (a `:` after the last `/`).
fn split_tag(reference: &str) -> (&str, &str) {
    match reference.rfind(':') {
        Some(i) if !reference[i..].contains('/') => (&reference[..i], &reference[i + 1..]),
        _ => (reference, ""),
    }
}

fn post(path: String, query: String, body: Vec<u8>) -> Translated {
    Translated {
        method: http::Method::POST,
        path,
        query,
        body,
        archive: None,
    }
}

fn from_docker(args: &[String]) -> Result<Translated, Failure> {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["run" | "create", rest @ ..] | ["container", "run" | "create", rest @ ..] => create(rest),
        ["pull", image] | ["image", "pull", image] => Ok(post(
            "/images/create".to_owned(),
            format!("fromImage={}", q(image)),
            Vec::new(),
        )),
        ["push", image] | ["image", "push", image] => {
            let (name, tag) = split_tag(image);
            Ok(post(format!("/images/{name}/push"), format!("tag={}", q(tag)), Vec::new()))
        }
        ["tag", source, target] | ["image", "tag", source, target] => {
            let (repo, tag) = split_tag(target);
            Ok(post(
                format!("/images/{source}/tag"),
                format!("repo={}&tag={}", q(repo), q(tag)),
                Vec::new(),
            ))
        }
        ["commit", container] => Ok(post(
            "/commit".to_owned(),
            format!("container={}", q(container)),
            Vec::new(),
        )),
        ["commit", container, target] => {
            let (repo, tag) = split_tag(target);
            Ok(post(
                "/commit".to_owned(),
                format!("container={}&repo={}&tag={}", q(container), q(repo), q(tag)),
                Vec::new(),
            ))
        }
        ["exec", rest @ ..] => exec(rest),
        ["build", rest @ ..] | ["image", "build", rest @ ..] => build(rest),
        ["load", rest @ ..] | ["image", "load", rest @ ..] => load(rest),
        ["import", source, rest @ ..] => {
            let from = if *source == "-" || !source.contains("://") {
                "-"
            } else {
                source
            };
            let mut query = format!("fromSrc={}", q(from));
            if let Some(target) = rest.first() {
                let (repo, tag) = split_tag(target);
                query.push_str(&format!("&repo={}&tag={}", q(repo), q(tag)));
            }
            Ok(post("/images/create".to_owned(), query, Vec::new()))
        }
        ["volume", "create", rest @ ..] => volume_create(rest),
        ["network", "create", rest @ ..] => network_create(rest),
        _ => Err(Failure::usage(
            "explain knows docker run, create, exec, pull, push, tag, commit, build, load, import, volume create and network create; for anything else give the Engine API request with --route".to_owned(),
        )),
    }
}

/// Flags with their values, then the operands.
type Parsed<'a> = (Vec<(String, Option<&'a str>)>, Vec<&'a str>);

/// Splits `--flag=value`, `--flag value`, `-f value`, `-abc` into (flag, value) pairs up to the
/// first operand; `value_flags` lists the flags that take a value.
fn flags<'a>(args: &[&'a str], value_flags: &[&str]) -> Result<Parsed<'a>, Failure> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i];
        if arg == "--" {
            return Ok((out, args[i + 1..].to_vec()));
        }
        if !arg.starts_with('-') || arg == "-" {
            return Ok((out, args[i..].to_vec()));
        }
        if let Some((flag, value)) = arg.split_once('=') {
            out.push((flag.to_owned(), Some(value)));
        } else if value_flags.contains(&arg) {
            let value = args
                .get(i + 1)
                .ok_or_else(|| Failure::usage(format!("{arg} needs a value")))?;
            out.push((arg.to_owned(), Some(*value)));
            i += 1;
        } else if !arg.starts_with("--") && arg.len() > 2 {
            // Combined short flags (`-it`); a value flag may end the group (`-itv x`).
            let letters: Vec<char> = arg[1..].chars().collect();
            for (n, letter) in letters.iter().enumerate() {
                let flag = format!("-{letter}");
                if value_flags.contains(&flag.as_str()) {
                    if n + 1 != letters.len() {
                        return Err(Failure::usage(format!("{arg}: {flag} needs a value")));
                    }
                    let value = args
                        .get(i + 1)
                        .ok_or_else(|| Failure::usage(format!("{flag} needs a value")))?;
                    out.push((flag, Some(*value)));
                    i += 1;
                } else {
                    out.push((flag, None));
                }
            }
        } else {
            out.push((arg.to_owned(), None));
        }
        i += 1;
    }
    Ok((out, Vec::new()))
}

const RUN_VALUE_FLAGS: &[&str] = &[
    "-v",
    "--volume",
    "--mount",
    "--cap-add",
    "--cap-drop",
    "--security-opt",
    "--pid",
    "--ipc",
    "--uts",
    "--userns",
    "--cgroupns",
    "--network",
    "--net",
    "--device",
    "--device-cgroup-rule",
    "--gpus",
    "--sysctl",
    "--runtime",
    "--cgroup-parent",
    "--volumes-from",
    "--volume-driver",
    "--log-driver",
    "--log-opt",
    "--isolation",
    "--tmpfs",
    "--name",
    "--platform",
    "-e",
    "--env",
    "--env-file",
    "-l",
    "--label",
    "-w",
    "--workdir",
    "-u",
    "--user",
    "-h",
    "--hostname",
    "--entrypoint",
    "-p",
    "--publish",
    "--add-host",
    "--dns",
    "--restart",
    "-m",
    "--memory",
    "--cpus",
    "--shm-size",
    "--ulimit",
    "--group-add",
    "--pull",
    "--stop-signal",
    "--memory-swap",
    "--pids-limit",
    "--cpu-shares",
    "--network-alias",
    "--ip",
    "--mac-address",
    "--expose",
    "--health-cmd",
    "--link",
    "--annotation",
    "--storage-opt",
    "--label-file",
];

const RUN_BOOL_FLAGS: &[&str] = &[
    "--privileged",
    "--rm",
    "-d",
    "--detach",
    "-i",
    "--interactive",
    "-t",
    "--tty",
    "--read-only",
    "--init",
    "-P",
    "--publish-all",
    "--no-healthcheck",
    "--oom-kill-disable",
    "-q",
    "--quiet",
    "--sig-proxy",
];

fn push(host: &mut Map<String, Value>, key: &str, value: Value) {
    let entry = host.entry(key.to_owned()).or_insert_with(|| json!([]));
    if let Value::Array(items) = entry {
        items.push(value);
    }
}

fn insert_map(host: &mut Map<String, Value>, key: &str, k: &str, v: &str) {
    let entry = host.entry(key.to_owned()).or_insert_with(|| json!({}));
    if let Value::Object(map) = entry {
        map.insert(k.to_owned(), json!(v));
    }
}

fn create(args: &[&str]) -> Result<Translated, Failure> {
    let (pairs, operands) = flags(args, RUN_VALUE_FLAGS)?;
    let image = operands
        .first()
        .ok_or_else(|| Failure::usage("docker run needs an image".to_owned()))?;
    let mut config = Map::new();
    let mut host = Map::new();
    let mut query = Vec::new();
    config.insert("Image".to_owned(), json!(image));
    if operands.len() > 1 {
        config.insert("Cmd".to_owned(), json!(operands[1..]));
    }
    for (flag, value) in pairs {
        let v = value.unwrap_or("");
        match flag.as_str() {
            "--privileged" => {
                host.insert("Privileged".to_owned(), json!(value.is_none_or(|v| v == "true")));
            }
            "--read-only" => {
                host.insert("ReadonlyRootfs".to_owned(), json!(true));
            }
            "-v" | "--volume" => {
                if v.contains(':') {
                    push(&mut host, "Binds", json!(v));
                } else {
                    let entry = config.entry("Volumes".to_owned()).or_insert_with(|| json!({}));
                    if let Value::Object(map) = entry {
                        map.insert(v.to_owned(), json!({}));
                    }
                }
            }
            "--mount" => push(&mut host, "Mounts", mount(v)?),
            "--cap-add" => push(&mut host, "CapAdd", json!(v)),
            "--cap-drop" => push(&mut host, "CapDrop", json!(v)),
            "--security-opt" => push(&mut host, "SecurityOpt", json!(v)),
            "--pid" => drop(host.insert("PidMode".to_owned(), json!(v))),
            "--ipc" => drop(host.insert("IpcMode".to_owned(), json!(v))),
            "--uts" => drop(host.insert("UTSMode".to_owned(), json!(v))),
            "--userns" => drop(host.insert("UsernsMode".to_owned(), json!(v))),
            "--cgroupns" => drop(host.insert("CgroupnsMode".to_owned(), json!(v))),
            "--network" | "--net" => drop(host.insert("NetworkMode".to_owned(), json!(v))),
            "--device" => {
                let mut parts = v.splitn(3, ':');
                let on_host = parts.next().unwrap_or("");
                let inside = parts.next().unwrap_or(on_host);
                let perms = parts.next().unwrap_or("rwm");
                push(
                    &mut host,
                    "Devices",
                    json!({"PathOnHost": on_host, "PathInContainer": inside, "CgroupPermissions": perms}),
                );
            }
            "--device-cgroup-rule" => push(&mut host, "DeviceCgroupRules", json!(v)),
            "--gpus" => push(
                &mut host,
                "DeviceRequests",
                json!({"Driver": "", "Count": -1, "Capabilities": [["gpu"]]}),
            ),
            "--sysctl" => {
                let (k, val) = v.split_once('=').unwrap_or((v, ""));
                insert_map(&mut host, "Sysctls", k, val);
            }
            "--runtime" => drop(host.insert("Runtime".to_owned(), json!(v))),
            "--cgroup-parent" => drop(host.insert("CgroupParent".to_owned(), json!(v))),
            "--volumes-from" => push(&mut host, "VolumesFrom", json!(v)),
            "--volume-driver" => drop(host.insert("VolumeDriver".to_owned(), json!(v))),
            "--isolation" => drop(host.insert("Isolation".to_owned(), json!(v))),
            "--annotation" => {
                let (k, val) = v.split_once('=').unwrap_or((v, ""));
                insert_map(&mut host, "Annotations", k, val);
            }
            "--log-driver" => {
                let log = host
                    .entry("LogConfig".to_owned())
                    .or_insert_with(|| json!({"Type": "", "Config": {}}));
                log["Type"] = json!(v);
            }
            "--log-opt" => {
                let (k, val) = v.split_once('=').unwrap_or((v, ""));
                let log = host
                    .entry("LogConfig".to_owned())
                    .or_insert_with(|| json!({"Type": "", "Config": {}}));
                log["Config"][k] = json!(val);
            }
            "--tmpfs" => {
                let (path, opts) = v.split_once(':').unwrap_or((v, ""));
                insert_map(&mut host, "Tmpfs", path, opts);
            }
            "--link" => push(&mut host, "Links", json!(v)),
            "--name" => query.push(format!("name={}", q(v))),
            "--platform" => query.push(format!("platform={}", q(v))),
            "-e" | "--env" => {
                let entry = config.entry("Env".to_owned()).or_insert_with(|| json!([]));
                if let Value::Array(items) = entry {
                    items.push(json!(v));
                }
            }
            "-u" | "--user" => drop(config.insert("User".to_owned(), json!(v))),
            "-w" | "--workdir" => drop(config.insert("WorkingDir".to_owned(), json!(v))),
            "--entrypoint" => drop(config.insert("Entrypoint".to_owned(), json!([v]))),
            "-t" | "--tty" => drop(config.insert("Tty".to_owned(), json!(true))),
            "-i" | "--interactive" => drop(config.insert("OpenStdin".to_owned(), json!(true))),
            "--rm" => drop(host.insert("AutoRemove".to_owned(), json!(true))),
            other if RUN_VALUE_FLAGS.contains(&other) || RUN_BOOL_FLAGS.contains(&other) => {
                // Resource limits, ports, labels and the like: no rule looks at them.
            }
            other => {
                return Err(Failure::usage(format!(
                    "explain does not know the docker run flag {other}; give the Engine API body with --route 'POST /containers/create' instead"
                )))
            }
        }
    }
    config.insert("HostConfig".to_owned(), Value::Object(host));
    Ok(post(
        "/containers/create".to_owned(),
        query.join("&"),
        Value::Object(config).to_string().into_bytes(),
    ))
}

fn mount(spec: &str) -> Result<Value, Failure> {
    let mut m = Map::new();
    let mut driver_options = Map::new();
    let mut driver = String::new();
    for field in spec.split(',') {
        let (k, v) = field.split_once('=').unwrap_or((field, "true"));
        match k {
            "type" => drop(m.insert("Type".to_owned(), json!(v))),
            "source" | "src" => drop(m.insert("Source".to_owned(), json!(v))),
            "target" | "destination" | "dst" => drop(m.insert("Target".to_owned(), json!(v))),
            "readonly" | "ro" => drop(m.insert("ReadOnly".to_owned(), json!(v != "false"))),
            "volume-driver" => driver = v.to_owned(),
            "volume-opt" => {
                let (ok, ov) = v.split_once('=').unwrap_or((v, ""));
                driver_options.insert(ok.to_owned(), json!(ov));
            }
            "bind-propagation" => {
                m.insert("BindOptions".to_owned(), json!({"Propagation": v}));
            }
            "tmpfs-size" | "tmpfs-mode" | "consistency" | "volume-nocopy" | "volume-label" => {}
            other => {
                return Err(Failure::usage(format!(
                    "explain does not know the --mount field {other}"
                )))
            }
        }
    }
    if !m.contains_key("Type") {
        m.insert("Type".to_owned(), json!("volume"));
    }
    if !driver.is_empty() || !driver_options.is_empty() {
        m.insert(
            "VolumeOptions".to_owned(),
            json!({"DriverConfig": {"Name": driver, "Options": driver_options}}),
        );
    }
    Ok(Value::Object(m))
}

fn exec(args: &[&str]) -> Result<Translated, Failure> {
    let (pairs, operands) = flags(
        args,
        &[
            "-e",
            "--env",
            "-u",
            "--user",
            "-w",
            "--workdir",
            "--env-file",
            "--detach-keys",
        ],
    )?;
    let container = operands
        .first()
        .ok_or_else(|| Failure::usage("docker exec needs a container".to_owned()))?;
    let privileged = pairs.iter().any(|(f, _)| f == "--privileged");
    let body = json!({"Privileged": privileged, "Cmd": operands[1..]});
    Ok(post(
        format!("/containers/{container}/exec"),
        String::new(),
        body.to_string().into_bytes(),
    ))
}

fn build(args: &[&str]) -> Result<Translated, Failure> {
    let (pairs, operands) = flags(
        args,
        &[
            "-t",
            "--tag",
            "-f",
            "--file",
            "--network",
            "--build-arg",
            "--platform",
            "--target",
            "--cgroup-parent",
            "--isolation",
            "--label",
            "--cache-from",
        ],
    )?;
    let [context] = operands.as_slice() else {
        return Err(Failure::usage(
            "docker build needs one context directory".to_owned(),
        ));
    };
    let mut query = Vec::new();
    let mut dockerfile = "Dockerfile".to_owned();
    let mut build_args = BTreeMap::new();
    for (flag, value) in &pairs {
        let v = value.unwrap_or("");
        match flag.as_str() {
            "-t" | "--tag" => query.push(format!("t={}", q(v))),
            "-f" | "--file" => dockerfile = v.to_owned(),
            "--network" => query.push(format!("networkmode={}", q(v))),
            "--cgroup-parent" => query.push(format!("cgroupparent={}", q(v))),
            "--isolation" => query.push(format!("isolation={}", q(v))),
            "--pull" => query.push("pull=1".to_owned()),
            "--build-arg" => {
                let (k, val) = v.split_once('=').unwrap_or((v, ""));
                build_args.insert(k.to_owned(), Some(val.to_owned()));
            }
            _ => {}
        }
    }
    if context.contains("://") {
        query.push(format!("remote={}", q(context)));
        return Ok(post("/build".to_owned(), query.join("&"), Vec::new()));
    }
    let path = Path::new(context).join(&dockerfile);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
    let sources =
        stockade_engine_api::dockerfile::image_sources(&text, &build_args).map_err(|e| {
            deny_exit(
                &format!("registry access: the archive cannot be checked: {e}"),
                "ram.build_unchecked",
            )
        })?;
    if !build_args.is_empty() {
        let encoded: Map<String, Value> = build_args
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        query.push(format!(
            "buildargs={}",
            q(&Value::Object(encoded).to_string())
        ));
    }
    let mut translated = post("/build".to_owned(), query.join("&"), Vec::new());
    translated.archive = Some(ArchiveFacts::BuildSources(sources));
    Ok(translated)
}

fn load(args: &[&str]) -> Result<Translated, Failure> {
    let (pairs, _) = flags(args, &["-i", "--input"])?;
    let mut translated = post("/images/load".to_owned(), String::new(), Vec::new());
    if let Some((_, Some(file))) = pairs.iter().find(|(f, _)| f == "-i" || f == "--input") {
        let reader = std::fs::File::open(file)
            .map_err(|e| Failure::usage(format!("cannot read {file}: {e}")))?;
        let names = stockade_engine_api::archive::load_names(reader)
            .map_err(|e| Failure::check(format!("{file}: {e}")))?;
        translated.archive = Some(ArchiveFacts::LoadNames(names));
    }
    Ok(translated)
}

fn volume_create(args: &[&str]) -> Result<Translated, Failure> {
    let (pairs, operands) = flags(args, &["-d", "--driver", "-o", "--opt", "--label"])?;
    let mut body = json!({"Name": operands.first().copied().unwrap_or(""), "Driver": "local", "DriverOpts": {}});
    for (flag, value) in &pairs {
        let v = value.unwrap_or("");
        match flag.as_str() {
            "-d" | "--driver" => body["Driver"] = json!(v),
            "-o" | "--opt" => {
                let (k, val) = v.split_once('=').unwrap_or((v, ""));
                body["DriverOpts"][k] = json!(val);
            }
            _ => {}
        }
    }
    Ok(post(
        "/volumes/create".to_owned(),
        String::new(),
        body.to_string().into_bytes(),
    ))
}

fn network_create(args: &[&str]) -> Result<Translated, Failure> {
    let (pairs, operands) = flags(
        args,
        &[
            "-d",
            "--driver",
            "-o",
            "--opt",
            "--subnet",
            "--gateway",
            "--label",
            "--config-from",
        ],
    )?;
    let name = operands
        .first()
        .ok_or_else(|| Failure::usage("docker network create needs a name".to_owned()))?;
    let mut body = json!({"Name": name, "Driver": "bridge", "Options": {}});
    for (flag, value) in &pairs {
        let v = value.unwrap_or("");
        match flag.as_str() {
            "-d" | "--driver" => body["Driver"] = json!(v),
            "-o" | "--opt" => {
                let (k, val) = v.split_once('=').unwrap_or((v, ""));
                body["Options"][k] = json!(val);
            }
            "--config-from" => body["ConfigFrom"] = json!({"Network": v}),
            "--ingress" => body["Ingress"] = json!(true),
            "--config-only" => body["ConfigOnly"] = json!(true),
            _ => {}
        }
    }
    Ok(post(
        "/networks/create".to_owned(),
        String::new(),
        body.to_string().into_bytes(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_split_like_the_docker_cli() {
        let (pairs, rest) = flags(
            &[
                "-it", "--rm", "-v", "/a:/b", "--name=x", "img", "sh", "-c", "id",
            ],
            RUN_VALUE_FLAGS,
        )
        .unwrap();
        let names: Vec<&str> = pairs.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(names, ["-i", "-t", "--rm", "-v", "--name"]);
        assert_eq!(pairs[3].1, Some("/a:/b"));
        assert_eq!(rest, ["img", "sh", "-c", "id"]);
        assert_eq!(split_tag("127.0.0.1:5000/x:1"), ("127.0.0.1:5000/x", "1"));
        assert_eq!(split_tag("127.0.0.1:5000/x"), ("127.0.0.1:5000/x", ""));
    }
}
