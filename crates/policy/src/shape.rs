//! The shape of `admin-settings.json`: every key Stockade acts on and every other key of Docker
//! Desktop's Settings Management reference, as data. Validation walks a parsed file against
//! this table and collects every problem; the published JSON Schema is generated from the same
//! table (see `schema.rs`), so the two cannot drift apart.

use crate::checks::{self, StrRule};
use crate::json::{format_path, Kind, Member, Node, Segment};

/// The configuration file version Stockade reads (Docker Desktop's current format).
pub(crate) const FILE_VERSION: i64 = 2;

/// What a value must look like.
#[derive(Debug)]
pub(crate) enum Shape {
    Bool,
    /// A whole number in `min..=max`.
    Int {
        min: i64,
        max: i64,
    },
    /// `configurationFileVersion`: the number 2.
    Version,
    Str(&'static StrRule),
    /// One of these strings.
    Enum(&'static [&'static str]),
    Array(&'static Shape),
    /// An object with exactly these keys (unknown keys are errors).
    Object(&'static [Field]),
    /// Either shape, chosen by the JSON type of the value (their types differ).
    Either(&'static Shape, &'static Shape),
}

/// One key of an object.
#[derive(Debug)]
pub(crate) struct Field {
    pub(crate) name: &'static str,
    pub(crate) shape: &'static Shape,
    pub(crate) presence: Presence,
    pub(crate) effect: Effect,
    /// Shown by editors (schema `description`).
    pub(crate) doc: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Presence {
    Optional,
    Required,
    /// `locked`: required in the admin file, not allowed in user settings.
    Locked,
    /// `configurationFileVersion`: required in the admin file, optional in user settings.
    Version,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Stockade acts on the key.
    Applies,
    /// A Docker Desktop key accepted for compatibility; it earns a "no effect on Linux" note.
    NoEffectOnLinux,
}

/// Which file is being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Admin,
    User,
}

const fn field(name: &'static str, shape: &'static Shape, doc: &'static str) -> Field {
    Field {
        name,
        shape,
        presence: Presence::Optional,
        effect: Effect::Applies,
        doc,
    }
}

const fn required(name: &'static str, shape: &'static Shape, doc: &'static str) -> Field {
    Field {
        name,
        shape,
        presence: Presence::Required,
        effect: Effect::Applies,
        doc,
    }
}

const fn no_effect(name: &'static str, shape: &'static Shape, doc: &'static str) -> Field {
    Field {
        name,
        shape,
        presence: Presence::Optional,
        effect: Effect::NoEffectOnLinux,
        doc,
    }
}

const LOCKED: Field = Field {
    name: "locked",
    shape: &Shape::Bool,
    presence: Presence::Locked,
    effect: Effect::Applies,
    doc: "true: the admin value applies and users cannot change it; false: the value is a default users may override",
};

const BOOL: Shape = Shape::Bool;
const STRING: Shape = Shape::Str(&checks::ANY);
const STRINGS: Shape = Shape::Array(&STRING);

/// `{"locked": bool, "value": <shape>}`, the form of most settings.
macro_rules! setting {
    ($shape:expr, $doc:expr) => {
        Shape::Object(&[LOCKED, required("value", $shape, $doc)])
    };
}

const BOOL_SETTING: Shape = setting!(&BOOL, "on or off");
const STRING_SETTING: Shape = setting!(&STRING, "a string");

const PROXY_MODE: Shape = Shape::Enum(&["system", "manual"]);
const PROXY_URL: Shape = Shape::Str(&checks::PROXY_URL);
const PAC_URL: Shape = Shape::Str(&checks::PAC_URL);
/// Docker's own examples write `exclude` both as a comma-separated string and as an array.
const EXCLUDE: Shape = Shape::Either(&STRING, &STRINGS);

const SHARED_DIRECTORY: Shape = Shape::Object(&[
    required(
        "path",
        &Shape::Str(&checks::SHARED_PATH),
        checks::SHARED_PATH.description,
    ),
    field(
        "sharedByDefault",
        &BOOL,
        "whether the directory is shared without the user adding it",
    ),
]);
const SHARED_DIRECTORIES: Shape = Shape::Array(&SHARED_DIRECTORY);

/// Every top-level key, in the order of DESIGN.md §3 and then Docker's reference.
pub(crate) const TOP: &[Field] = &[
    Field {
        name: "configurationFileVersion",
        shape: &Shape::Version,
        presence: Presence::Version,
        effect: Effect::Applies,
        doc: "the file format version; Stockade reads version 2",
    },
    field(
        "enhancedContainerIsolation",
        &Shape::Object(&[
            LOCKED,
            required("value", &BOOL, "turn Enhanced Container Isolation (the gateway's rule set) on or off"),
            field(
                "dockerSocketMount",
                &Shape::Object(&[
                    field(
                        "imageList",
                        &Shape::Object(&[
                            field(
                                "images",
                                &Shape::Array(&Shape::Str(&checks::IMAGE)),
                                "images whose containers may mount the Docker socket (they get the gateway socket)",
                            ),
                            field(
                                "allowDerivedImages",
                                &BOOL,
                                "also allow images built from a listed image",
                            ),
                        ]),
                        "which images may mount the Docker socket",
                    ),
                    field(
                        "commandList",
                        &Shape::Object(&[
                            required(
                                "type",
                                &Shape::Enum(&["deny", "allow"]),
                                "deny: the commands are refused; allow: only the commands are allowed",
                            ),
                            required(
                                "commands",
                                &Shape::Array(&Shape::Str(&checks::COMMAND)),
                                checks::COMMAND.description,
                            ),
                        ]),
                        "which API commands containers with a socket mount may issue",
                    ),
                ]),
                "exceptions for mounting the Docker socket into containers",
            ),
        ]),
        "Enhanced Container Isolation: the gateway's rule set",
    ),
    field(
        "blockDockerLoad",
        &setting!(&BOOL, "deny docker load and docker import"),
        "deny docker load and docker import",
    ),
    field(
        "filesharingAllowedDirectories",
        &Shape::Either(
            &SHARED_DIRECTORIES,
            &Shape::Object(&[
                LOCKED,
                required("value", &SHARED_DIRECTORIES, "the allowed directories"),
            ]),
        ),
        "the only host directories that may be bind-mounted; Docker Desktop's bare array form is locked",
    ),
    field(
        "exposeDockerAPIOnTCP2375",
        &setting!(&BOOL, "let the managed engine listen on TCP 2375 (unauthenticated)"),
        "let the engine listen on TCP 2375 (unauthenticated)",
    ),
    field(
        "proxy",
        &Shape::Object(&[
            LOCKED,
            field("mode", &PROXY_MODE, "system: the host's proxy settings; manual: the values below"),
            field("http", &PROXY_URL, checks::PROXY_URL.description),
            field("https", &PROXY_URL, checks::PROXY_URL.description),
            field("exclude", &EXCLUDE, "hosts and domains that bypass the proxy (comma-separated string or array)"),
            field("pac", &PAC_URL, checks::PAC_URL.description),
            field("embeddedPac", &STRING, "a PAC script; takes precedence over the other values"),
            no_effect("windowsDockerdPort", &Shape::Int { min: -1, max: 65535 }, "Docker Desktop on Windows only"),
            no_effect("enableKerberosNtlm", &BOOL, "Docker Desktop only"),
        ]),
        "the proxy the engine's own pulls and pushes go through",
    ),
    field(
        "containersProxy",
        &Shape::Object(&[
            LOCKED,
            field("mode", &PROXY_MODE, "system: the host's proxy settings; manual: the values below"),
            field("http", &PROXY_URL, checks::PROXY_URL.description),
            field("https", &PROXY_URL, checks::PROXY_URL.description),
            field("exclude", &EXCLUDE, "hosts and domains that bypass the proxy (comma-separated string or array)"),
            field("pac", &PAC_URL, checks::PAC_URL.description),
            field("embeddedPac", &STRING, "a PAC script; takes precedence over the other values"),
            field(
                "transparentPorts",
                &Shape::Str(&checks::TRANSPARENT_PORTS),
                checks::TRANSPARENT_PORTS.description,
            ),
        ]),
        "air-gapped containers: where container egress goes",
    ),
    field(
        "linuxVM",
        &Shape::Object(&[
            no_effect("wslEngineEnabled", &BOOL_SETTING, "Docker Desktop on Windows only"),
            field(
                "dockerDaemonOptions",
                &setting!(&Shape::Str(&checks::DAEMON_OPTIONS), checks::DAEMON_OPTIONS.description),
                "extra daemon.json keys for the managed engine; hosts, userns-remap and no-new-privileges are Stockade's",
            ),
            no_effect("vpnkitCIDR", &STRING_SETTING, "Docker Desktop only"),
        ]),
        "engine settings",
    ),
    field(
        "registryAccess",
        &Shape::Object(&[
            LOCKED,
            required(
                "allowedRegistries",
                &Shape::Array(&Shape::Str(&checks::REGISTRY)),
                checks::REGISTRY.description,
            ),
        ]),
        "Registry Access Management: the registries images may come from (Stockade extension)",
    ),
    field(
        "imageAccess",
        &Shape::Object(&[
            LOCKED,
            field("allowOfficialImages", &BOOL, "allow Docker Official Images (library/...)"),
            field("allowVerifiedPublisherImages", &BOOL, "allow Verified Publisher images"),
            field("allowCommunityImages", &BOOL, "allow all other Docker Hub images"),
            field(
                "organizationNamespaces",
                &Shape::Array(&Shape::Str(&checks::NAMESPACE)),
                "Docker Hub namespaces always allowed",
            ),
            field(
                "allowedRepositories",
                &Shape::Array(&Shape::Str(&checks::REPOSITORY)),
                checks::REPOSITORY.description,
            ),
            field("catalog", &Shape::Str(&checks::ABSOLUTE_PATH), "the image category catalog file"),
        ]),
        "Image Access Management for Docker Hub images (Stockade extension)",
    ),
    field(
        "audit",
        &Shape::Object(&[
            field("path", &Shape::Str(&checks::ABSOLUTE_PATH), "the audit log file"),
            field("syslog", &BOOL, "also copy audit records to syslog"),
        ]),
        "the audit log (Stockade extension; admin only)",
    ),
    // Docker Desktop keys with no effect on Linux, accepted so an existing file works unchanged.
    no_effect("analyticsEnabled", &BOOL_SETTING, "Docker Desktop only"),
    no_effect("disableUpdate", &BOOL_SETTING, "Docker Desktop only"),
    no_effect("displayedOnboarding", &BOOL_SETTING, "Docker Desktop only"),
    no_effect("desktopTerminalEnabled", &BOOL_SETTING, "Docker Desktop only"),
    no_effect("silentModulesUpdate", &BOOL_SETTING, "Docker Desktop only"),
    no_effect("extensionsEnabled", &BOOL_SETTING, "Docker Desktop only"),
    no_effect("onlyMarketplaceExtensions", &BOOL_SETTING, "Docker Desktop only"),
    no_effect("extensionsPrivateMarketplace", &BOOL_SETTING, "Docker Desktop only"),
    no_effect("extensionsPrivateMarketplaceAdminContactURL", &STRING_SETTING, "Docker Desktop only"),
    no_effect("useVirtualizationFrameworkVirtioFS", &BOOL_SETTING, "Docker Desktop on macOS only"),
    no_effect("useGrpcfuse", &BOOL_SETTING, "Docker Desktop on macOS only"),
    no_effect("useVirtualizationFrameworkRosetta", &BOOL_SETTING, "Docker Desktop on macOS only"),
    no_effect("allowBetaFeatures", &BOOL_SETTING, "Docker Desktop only"),
    no_effect("allowExperimentalFeatures", &BOOL_SETTING, "Docker Desktop only"),
    no_effect("enableDockerAI", &BOOL_SETTING, "Docker Desktop only"),
    no_effect("enableDockerMCPToolkit", &BOOL_SETTING, "Docker Desktop only"),
    no_effect("enableCloud", &BOOL_SETTING, "Docker Desktop only"),
    no_effect("enableInference", &BOOL_SETTING, "Docker Desktop only"),
    no_effect("enableInferenceTCP", &BOOL_SETTING, "Docker Desktop only"),
    no_effect(
        "enableInferenceTCPPort",
        &setting!(&Shape::Int { min: 1, max: 65535 }, "a TCP port"),
        "Docker Desktop only",
    ),
    no_effect("enableInferenceCORS", &STRING_SETTING, "Docker Desktop only"),
    no_effect("enableInferenceGPUVariant", &BOOL_SETTING, "Docker Desktop on Windows only"),
    no_effect(
        "defaultNetworkingMode",
        &setting!(&Shape::Enum(&["dual-stack", "ipv4only", "ipv6only"]), "the default IP mode"),
        "Docker Desktop on Windows and macOS only",
    ),
    no_effect(
        "dnsInhibition",
        &setting!(&Shape::Enum(&["auto", "ipv4", "ipv6", "none"]), "DNS record filtering"),
        "Docker Desktop on Windows and macOS only",
    ),
    no_effect(
        "portBindingBehavior",
        &setting!(
            &Shape::Enum(&["default-port-binding", "default-local-port-binding", "local-only-port-binding"]),
            "port binding restrictions"
        ),
        "Docker Desktop only",
    ),
    no_effect(
        "kubernetes",
        &Shape::Object(&[
            LOCKED,
            field("enabled", &BOOL, "start Kubernetes"),
            field("showSystemContainers", &BOOL, "show Kubernetes system containers"),
            field("imagesRepository", &STRING, "the registry for control-plane images"),
        ]),
        "Docker Desktop only",
    ),
    no_effect("KubernetesImagesRepository", &STRING_SETTING, "Docker Desktop only"),
    no_effect(
        "scout",
        &Shape::Object(&[
            LOCKED,
            field("sbomIndexing", &BOOL, "SBOM indexing"),
            field("useBackgroundIndexing", &BOOL, "background indexing"),
        ]),
        "Docker Desktop only",
    ),
    no_effect(
        "windowsContainers",
        &Shape::Object(&[field("dockerDaemonOptions", &STRING_SETTING, "Windows daemon options")]),
        "Docker Desktop on Windows only",
    ),
];

/// The root shape.
pub(crate) const ROOT: Shape = Shape::Object(TOP);

/// A problem found by validation, before positions become line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) pos: usize,
    pub(crate) path: String,
    pub(crate) message: String,
}

/// Checks a parsed document; returns every problem and the "no effect on Linux" notes.
pub(crate) fn validate(root: &Node, mode: Mode) -> (Vec<Problem>, Vec<String>) {
    let mut walker = Walker {
        mode,
        problems: Vec::new(),
        notes: Vec::new(),
        path: Vec::new(),
    };
    if matches!(root.kind, Kind::Object(_)) {
        walker.walk(root, &ROOT);
    } else {
        walker.problems.push(Problem {
            pos: root.pos,
            path: "(root)".to_owned(),
            message: format!(
                "expected a JSON object holding the settings, found {}: wrap the settings in {{ }}",
                type_name(root)
            ),
        });
    }
    (walker.problems, walker.notes)
}

fn type_name(node: &Node) -> &'static str {
    match node.kind {
        Kind::Null => "null",
        Kind::Bool(_) => "a boolean",
        Kind::Number(_) => "a number",
        Kind::String(_) => "a string",
        Kind::Array(_) => "an array",
        Kind::Object(_) => "an object",
    }
}

/// What a shape expects, for messages.
fn expectation(shape: &Shape) -> String {
    match shape {
        Shape::Bool => "a boolean (true or false)".to_owned(),
        Shape::Int { min, max } => format!("a whole number from {min} to {max}"),
        Shape::Version => format!("the number {FILE_VERSION}"),
        Shape::Str(_) => "a string".to_owned(),
        Shape::Enum(values) => format!("one of {}", quoted_list(values)),
        Shape::Array(item) => match item {
            Shape::Object(_) => "an array of objects".to_owned(),
            Shape::Str(_) => "an array of strings".to_owned(),
            _ => "an array".to_owned(),
        },
        Shape::Object(_) => "an object".to_owned(),
        Shape::Either(a, b) => format!("{} or {}", expectation(a), expectation(b)),
    }
}

fn quoted_list(values: &[&str]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("\"{v}\"")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.join(""),
    }
}

/// Whether a node has the JSON type a shape wants (the value may still be wrong).
fn type_matches(shape: &Shape, node: &Node) -> bool {
    matches!(
        (shape, &node.kind),
        (Shape::Bool, Kind::Bool(_))
            | (Shape::Int { .. } | Shape::Version, Kind::Number(_))
            | (Shape::Str(_) | Shape::Enum(_), Kind::String(_))
            | (Shape::Array(_), Kind::Array(_))
            | (Shape::Object(_), Kind::Object(_))
    )
}

struct Walker {
    mode: Mode,
    problems: Vec<Problem>,
    notes: Vec<String>,
    path: Vec<Segment>,
}

impl Walker {
    fn problem(&mut self, pos: usize, message: String) {
        self.problems.push(Problem {
            pos,
            path: format_path(&self.path),
            message,
        });
    }

    fn wrong_type(&mut self, node: &Node, shape: &Shape) {
        let message = format!("expected {}, found {}", expectation(shape), type_name(node));
        self.problem(node.pos, message);
    }

    fn walk(&mut self, node: &Node, shape: &Shape) {
        match (shape, &node.kind) {
            (Shape::Either(a, b), _) => {
                if type_matches(a, node) {
                    self.walk(node, a);
                } else if type_matches(b, node) {
                    self.walk(node, b);
                } else {
                    self.wrong_type(node, shape);
                }
            }
            (Shape::Bool, Kind::Bool(_)) => {}
            (Shape::Int { min, max }, Kind::Number(n)) => {
                if !n.int.is_some_and(|i| (*min..=*max).contains(&i)) {
                    self.problem(
                        node.pos,
                        format!("expected a whole number from {min} to {max}"),
                    );
                }
            }
            (Shape::Version, Kind::Number(n)) => {
                if n.int != Some(FILE_VERSION) {
                    self.problem(
                        node.pos,
                        format!(
                            "unsupported version: stockade reads configurationFileVersion {FILE_VERSION}; set it to {FILE_VERSION} and write each setting as {{\"locked\": ..., \"value\": ...}}"
                        ),
                    );
                }
            }
            (Shape::Str(rule), Kind::String(s)) => {
                if let Err(message) = (rule.check)(s) {
                    self.problem(node.pos, message);
                }
            }
            (Shape::Enum(values), Kind::String(s)) => {
                if !values.contains(&s.as_str()) {
                    self.problem(node.pos, format!("expected one of {}", quoted_list(values)));
                }
            }
            (Shape::Array(item), Kind::Array(items)) => {
                for (i, element) in items.iter().enumerate() {
                    self.path.push(Segment::Index(i));
                    self.walk(element, item);
                    self.path.pop();
                }
            }
            (Shape::Object(fields), Kind::Object(members)) => {
                self.object(node.pos, fields, members)
            }
            _ => self.wrong_type(node, shape),
        }
    }

    fn object(&mut self, pos: usize, fields: &'static [Field], members: &[Member]) {
        for member in members {
            self.path.push(Segment::Key(member.key.clone()));
            match fields.iter().find(|f| f.name == member.key) {
                None => {
                    let message = unknown_key_message(&member.key, fields, self.path.len() == 1);
                    self.problem(member.key_pos, message);
                }
                Some(f) if f.presence == Presence::Locked && self.mode == Mode::User => {
                    self.problem(
                        member.key_pos,
                        "`locked` belongs in the admin file only: remove it from user settings"
                            .to_owned(),
                    );
                }
                Some(f) => {
                    if f.effect == Effect::NoEffectOnLinux {
                        self.notes
                            .push(format!("{}: no effect on Linux", format_path(&self.path)));
                    }
                    self.walk(&member.value, f.shape);
                }
            }
            self.path.pop();
        }
        for f in fields {
            let needed = match f.presence {
                Presence::Optional => false,
                Presence::Required => true,
                Presence::Locked | Presence::Version => self.mode == Mode::Admin,
            };
            if needed && !members.iter().any(|m| m.key == f.name) {
                self.path.push(Segment::Key(f.name.to_owned()));
                let message = match f.presence {
                    Presence::Locked => "missing key: add \"locked\": true (users cannot change the setting) or false (the value is only a default)".to_owned(),
                    Presence::Version => format!("missing key: add \"configurationFileVersion\": {FILE_VERSION} at the top of the file"),
                    _ => format!("missing key: add \"{}\" with {}", f.name, expectation(f.shape)),
                };
                self.problem(pos, message);
                self.path.pop();
            }
        }
    }
}

/// "unknown key" with the nearest known key, or where the key belongs if it is misplaced.
fn unknown_key_message(key: &str, fields: &[Field], top: bool) -> String {
    let best = fields
        .iter()
        .map(|f| {
            (
                edit_distance(&key.to_lowercase(), &f.name.to_lowercase()),
                f.name,
            )
        })
        .min_by_key(|&(distance, _)| distance);
    if let Some((distance, name)) = best {
        let allowed = (name.chars().count() / 4).clamp(1, 4);
        if distance <= allowed {
            return format!("unknown key: did you mean `{name}`?");
        }
    }
    if top {
        if let Some(path) = find_nested(key, TOP, &mut Vec::new()) {
            return format!("unknown key at the top level: did you mean `{path}`?");
        }
        return "unknown key: remove it or fix its name (see Docker's Settings Management reference for the keys)".to_owned();
    }
    let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
    format!("unknown key: expected one of {}", names.join(", "))
}

/// Finds a nested key with this name (case-insensitively) and returns its full path.
fn find_nested(key: &str, fields: &[Field], path: &mut Vec<&'static str>) -> Option<String> {
    for f in fields {
        path.push(f.name);
        if path.len() > 1 && f.name.eq_ignore_ascii_case(key) {
            return Some(path.join("."));
        }
        let mut shape = f.shape;
        while let Shape::Either(_, b) = shape {
            shape = b;
        }
        if let Shape::Object(inner) = shape {
            if let Some(found) = find_nested(key, inner, path) {
                return Some(found);
            }
        }
        path.pop();
    }
    None
}

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse;

    fn problems(text: &str, mode: Mode) -> Vec<(String, String)> {
        let parsed = parse(text).unwrap();
        validate(&parsed.root, mode)
            .0
            .into_iter()
            .map(|p| (p.path, p.message))
            .collect()
    }

    #[test]
    fn distance() {
        assert_eq!(edit_distance("value", "valeu"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }

    #[test]
    fn suggestions() {
        let p = problems(
            r#"{"configurationFileVersion": 2, "enhancedContainerIsolaton": {}}"#,
            Mode::Admin,
        );
        assert_eq!(p[0].0, "enhancedContainerIsolaton");
        assert_eq!(
            p[0].1,
            "unknown key: did you mean `enhancedContainerIsolation`?"
        );
        let p = problems(
            r#"{"configurationFileVersion": 2, "BlockDockerLoad": {}}"#,
            Mode::Admin,
        );
        assert_eq!(p[0].1, "unknown key: did you mean `blockDockerLoad`?");
        let p = problems(
            r#"{"configurationFileVersion": 2, "dockerDaemonOptions": {}}"#,
            Mode::Admin,
        );
        assert_eq!(
            p[0].1,
            "unknown key at the top level: did you mean `linuxVM.dockerDaemonOptions`?"
        );
        let p = problems(
            r#"{"configurationFileVersion": 2, "zzzzzzzz": 1}"#,
            Mode::Admin,
        );
        assert!(p[0].1.starts_with("unknown key: remove it"));
        let p = problems(
            r#"{"configurationFileVersion": 2, "audit": {"zz": 1}}"#,
            Mode::Admin,
        );
        assert_eq!(p[0].1, "unknown key: expected one of path, syslog");
    }

    #[test]
    fn user_mode_rules() {
        assert!(problems(r#"{"blockDockerLoad": {"value": true}}"#, Mode::User).is_empty());
        let p = problems(
            r#"{"blockDockerLoad": {"locked": true, "value": true}}"#,
            Mode::User,
        );
        assert_eq!(p[0].0, "blockDockerLoad.locked");
        let p = problems(r#"{"blockDockerLoad": {"value": true}}"#, Mode::Admin);
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(p[0].0, "blockDockerLoad.locked");
        assert_eq!(p[1].0, "configurationFileVersion");
    }

    #[test]
    fn every_shape_rejects_a_wrong_type() {
        let p = problems(
            r#"{"configurationFileVersion": "2", "proxy": {"locked": 1, "exclude": 5, "mode": "auto", "windowsDockerdPort": 1.5}}"#,
            Mode::Admin,
        );
        let messages: Vec<_> = p.iter().map(|(a, b)| format!("{a}: {b}")).collect();
        assert_eq!(
            messages,
            [
                "configurationFileVersion: expected the number 2, found a string",
                "proxy.locked: expected a boolean (true or false), found a number",
                "proxy.exclude: expected a string or an array of strings, found a number",
                "proxy.mode: expected one of \"system\" or \"manual\"",
                "proxy.windowsDockerdPort: expected a whole number from -1 to 65535",
            ]
        );
    }

    #[test]
    fn notes_for_desktop_only_keys() {
        let parsed = parse(
            r#"{"configurationFileVersion": 2, "analyticsEnabled": {"locked": true, "value": false},
                "linuxVM": {"vpnkitCIDR": {"locked": false, "value": "192.168.65.0/24"}}}"#,
        )
        .unwrap();
        let (problems, notes) = validate(&parsed.root, Mode::Admin);
        assert!(problems.is_empty());
        assert_eq!(
            notes,
            [
                "analyticsEnabled: no effect on Linux",
                "linuxVM.vpnkitCIDR: no effect on Linux"
            ]
        );
    }
}
