//! Effective settings: admin-locked > user > admin default > built-in default, per key.

use std::collections::HashMap;
use std::fmt;
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::layer::{Layer, Scope, LEAVES};

/// Who the settings are for: the caller's uid (from `SO_PEERCRED`) and where `$HOME` and `$TMP`
/// point for them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserContext {
    /// The caller's uid.
    pub uid: u32,
    /// Their home directory (from the password database), an absolute path.
    pub home: PathBuf,
    /// Their temporary directory (`$TMP` and `$TEMP`), an absolute path.
    pub tmp: PathBuf,
}

impl UserContext {
    /// A context with `$TMP` at `/tmp`.
    pub fn new(uid: u32, home: impl Into<PathBuf>) -> Self {
        UserContext {
            uid,
            home: home.into(),
            tmp: PathBuf::from("/tmp"),
        }
    }
}

/// Where an effective value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The admin file, `locked: true`: users cannot change it.
    AdminLocked,
    /// The user's settings file (the admin left the setting unlocked).
    User,
    /// The admin file, `locked: false`: a default the user did not override.
    AdminDefault,
    /// Stockade's built-in secure default (the admin file does not set the key).
    BuiltIn,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::AdminLocked => "admin, locked",
            Source::User => "user",
            Source::AdminDefault => "admin default",
            Source::BuiltIn => "built-in",
        })
    }
}

/// Enhanced Container Isolation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Eci {
    /// Whether the gateway's rule set applies.
    pub enabled: bool,
    /// Images whose containers may mount the Docker socket (`repo:tag`, `repo:*`,
    /// `repo@sha256:…`, `*`).
    pub socket_mount_images: Vec<String>,
    /// Whether images built from a listed image may mount it too.
    pub allow_derived_images: bool,
    /// Commands allowed or denied through a mounted socket; `None`: no restriction.
    pub command_list: Option<CommandList>,
}

/// `enhancedContainerIsolation.dockerSocketMount.commandList`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandList {
    /// Allow list or deny list.
    pub kind: CommandListKind,
    /// Command names, `*` wildcards allowed (`container*`).
    pub commands: Vec<String>,
}

/// Whether a command list allows or denies its commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CommandListKind {
    /// Only the listed commands are allowed.
    Allow,
    /// The listed commands are refused.
    Deny,
}

/// A host directory that may be bind-mounted (with everything below it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SharedDirectory {
    /// Absolute, with `$HOME`/`$TMP`/`$TEMP` expanded; symlinks are not resolved here.
    pub path: PathBuf,
    /// Docker Desktop shares it without the user adding it; informational for Stockade.
    pub shared_by_default: bool,
}

/// Proxy mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyMode {
    /// Use the host's own proxy configuration (the environment Stockade was started with).
    System,
    /// Use the values given.
    Manual,
}

/// `proxy`: what the engine's own pulls and pushes go through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Proxy {
    /// System or manual.
    pub mode: ProxyMode,
    /// Proxy for HTTP, `None` when empty.
    pub http: Option<String>,
    /// Proxy for HTTPS, `None` when empty.
    pub https: Option<String>,
    /// Hosts and domains that bypass the proxy (the string form is split at commas).
    pub exclude: Vec<String>,
    /// PAC file URL, `None` when empty.
    pub pac: Option<String>,
    /// Embedded PAC script, `None` when empty; takes precedence over the rest.
    pub embedded_pac: Option<String>,
}

/// `containersProxy`: air-gapped containers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainersProxy {
    /// System or manual.
    pub mode: ProxyMode,
    /// Proxy for HTTP, `None` when empty.
    pub http: Option<String>,
    /// Proxy for HTTPS, `None` when empty.
    pub https: Option<String>,
    /// Hosts and domains that bypass the proxy.
    pub exclude: Vec<String>,
    /// PAC file URL, `None` when empty.
    pub pac: Option<String>,
    /// Embedded PAC script, `None` when empty.
    pub embedded_pac: Option<String>,
    /// Container TCP ports sent through the proxy; `None` when absent or empty (the egress
    /// layer then applies its default, DESIGN.md §6).
    pub transparent_ports: Option<TransparentPorts>,
}

/// `containersProxy.transparentPorts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TransparentPorts {
    /// `"*"`: every port.
    All,
    /// These ports, sorted, without duplicates.
    Ports(Vec<u16>),
}

/// Registry Access Management.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegistryAccess {
    /// Allowed registries as `host[:port]`, lowercased; `None`: unrestricted.
    pub allowed_registries: Option<Vec<String>>,
}

/// Image Access Management (Docker Hub).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageAccess {
    /// Docker Official Images (`library/…`).
    pub allow_official_images: bool,
    /// Verified Publisher images.
    pub allow_verified_publisher_images: bool,
    /// Every other Docker Hub image.
    pub allow_community_images: bool,
    /// Namespaces always allowed.
    pub organization_namespaces: Vec<String>,
    /// Repositories always allowed.
    pub allowed_repositories: Vec<String>,
    /// The category catalog file.
    pub catalog: Option<PathBuf>,
}

/// The audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditSettings {
    /// Where the log goes; `None`: the binary's default.
    pub path: Option<PathBuf>,
    /// Whether records are copied to syslog.
    pub syslog: bool,
}

/// The settings in force for one user, and where each value came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    /// Enhanced Container Isolation.
    pub eci: Eci,
    /// Deny `docker load` and `docker import`.
    pub block_docker_load: bool,
    /// The only host directories that may be bind-mounted.
    pub filesharing_allowed_directories: Vec<SharedDirectory>,
    /// Whether the managed engine may listen on TCP 2375.
    pub expose_docker_api_on_tcp2375: bool,
    /// The engine's own proxy.
    pub proxy: Proxy,
    /// Air-gapped containers.
    pub containers_proxy: ContainersProxy,
    /// Extra `daemon.json` keys for the managed engine (hardening keys already refused).
    pub daemon_options: Map<String, Value>,
    /// Registry Access Management.
    pub registry_access: RegistryAccess,
    /// Image Access Management.
    pub image_access: ImageAccess,
    /// The audit log.
    pub audit: AuditSettings,
    /// Per key path: where the value came from and a note (such as a user value that was
    /// ignored because the admin locked the setting).
    pub sources: Vec<(String, Source, Option<String>)>,
    /// Per key path, the value shown by `render_text` and `to_json`.
    #[serde(skip)]
    values: Vec<(&'static str, Value)>,
}

/// The note for a user value that did not apply.
pub(crate) const IGNORED_LOCKED_ADMIN: &str = "user value ignored: locked by the admin";
pub(crate) const IGNORED_LOCKED_BUILTIN: &str =
    "user value ignored: locked by the built-in default policy";
pub(crate) const IGNORED_ENGINE_WIDE: &str =
    "user value ignored: engine-wide setting, only the admin policy sets it";

/// Merges the layers. `admin` is `None` when the policy in force is the built-in one.
pub(crate) fn effective(
    admin: Option<&Layer>,
    builtin: &Layer,
    user: Option<&Layer>,
    who: &UserContext,
) -> Settings {
    let mut merged: HashMap<&'static str, Value> = HashMap::new();
    let mut sources = Vec::with_capacity(LEAVES.len());
    for leaf in LEAVES {
        let admin_lock = admin.and_then(|a| a.locks.get(leaf.group).copied());
        let builtin_lock = builtin.locks.get(leaf.group).copied();
        // The lock comes from the highest layer that sets the setting at all.
        let (locked, locked_by_admin) = match (admin_lock, builtin_lock) {
            (Some(l), _) => (l, true),
            (None, Some(l)) => (l, false),
            (None, None) => (false, false),
        };
        let admin_value = admin.and_then(|a| a.values.get(leaf.path));
        let (base, base_source) = match (admin_value, builtin.values.get(leaf.path)) {
            (Some(v), _) if admin_lock == Some(true) => (Some(v), Source::AdminLocked),
            (Some(v), _) => (Some(v), Source::AdminDefault),
            (None, v) => (v, Source::BuiltIn),
        };
        let user_value = user.and_then(|u| u.values.get(leaf.path));
        let (value, source, note) = match user_value {
            Some(v) if leaf.scope == Scope::PerUser && !locked => (Some(v), Source::User, None),
            Some(_) => {
                let note = if leaf.scope == Scope::Engine {
                    IGNORED_ENGINE_WIDE
                } else if locked_by_admin {
                    IGNORED_LOCKED_ADMIN
                } else {
                    IGNORED_LOCKED_BUILTIN
                };
                (base, base_source, Some(note.to_owned()))
            }
            None => (base, base_source, None),
        };
        if let Some(value) = value {
            merged.insert(leaf.path, value.clone());
        }
        sources.push((leaf.path.to_owned(), source, note));
    }
    build(&merged, sources, who)
}

fn build(
    m: &HashMap<&'static str, Value>,
    sources: Vec<(String, Source, Option<String>)>,
    who: &UserContext,
) -> Settings {
    let get = |path: &str| m.get(path);
    let flag = |path: &str, default: bool| get(path).and_then(Value::as_bool).unwrap_or(default);
    let strings = |path: &str| -> Vec<String> {
        get(path)
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let text = |path: &str| -> Option<String> {
        get(path)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let mode = |path: &str| match get(path).and_then(Value::as_str) {
        Some("manual") => ProxyMode::Manual,
        _ => ProxyMode::System,
    };
    let exclude = |path: &str| -> Vec<String> {
        match get(path) {
            Some(Value::String(s)) => split_list(s),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .flat_map(split_list)
                .collect(),
            _ => Vec::new(),
        }
    };

    let command_list =
        get("enhancedContainerIsolation.dockerSocketMount.commandList").map(|v| CommandList {
            kind: if v.get("type").and_then(Value::as_str) == Some("allow") {
                CommandListKind::Allow
            } else {
                CommandListKind::Deny
            },
            commands: v
                .get("commands")
                .and_then(Value::as_array)
                .map(|c| {
                    c.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
        });

    let mut notes_extra = Vec::new();
    let filesharing: Vec<SharedDirectory> = get("filesharingAllowedDirectories.value")
        .and_then(Value::as_array)
        .map(|entries| {
            entries
                .iter()
                .filter_map(|entry| {
                    let raw = entry.get("path").and_then(Value::as_str)?;
                    let expanded = expand(raw, who);
                    if expanded.is_none() {
                        notes_extra.push(format!(
                            "shared directory {raw} dropped: the user's home or temporary directory is not an absolute path"
                        ));
                    }
                    Some(SharedDirectory {
                        path: expanded?,
                        shared_by_default: entry
                            .get("sharedByDefault")
                            .and_then(Value::as_bool)
                            .unwrap_or(false),
                    })
                })
                .collect()
        })
        .unwrap_or_default();

    let transparent_ports = text("containersProxy.transparentPorts").map(|s| {
        if s == "*" {
            TransparentPorts::All
        } else {
            let mut ports: Vec<u16> = s.split(',').filter_map(|p| p.trim().parse().ok()).collect();
            ports.sort_unstable();
            ports.dedup();
            TransparentPorts::Ports(ports)
        }
    });

    let daemon_options = get("linuxVM.dockerDaemonOptions.value")
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str::<Map<String, Value>>(s).ok())
        .unwrap_or_default();

    // `"*"` (a Stockade extension) lifts the restriction: every registry is allowed.
    let allowed_registries = get("registryAccess.allowedRegistries")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_ascii_lowercase)
                .collect::<Vec<_>>()
        })
        .filter(|items| !items.iter().any(|i| i == "*"));

    let mut values: Vec<(&'static str, Value)> = LEAVES
        .iter()
        .map(|leaf| (leaf.path, get(leaf.path).cloned().unwrap_or(Value::Null)))
        .collect();
    for (path, value) in &mut values {
        match *path {
            // Show what is in force: expanded paths, the options as an object, exclude as a list.
            "filesharingAllowedDirectories.value" => {
                *value = Value::Array(
                    filesharing
                        .iter()
                        .map(|d| Value::String(d.path.display().to_string()))
                        .collect(),
                );
            }
            "linuxVM.dockerDaemonOptions.value" => *value = Value::Object(daemon_options.clone()),
            "proxy.exclude" | "containersProxy.exclude" => {
                *value = Value::Array(exclude(path).into_iter().map(Value::String).collect());
            }
            _ => {}
        }
    }

    let mut sources = sources;
    if !notes_extra.is_empty() {
        if let Some(row) = sources
            .iter_mut()
            .find(|(path, _, _)| path == "filesharingAllowedDirectories.value")
        {
            let joined = notes_extra.join("; ");
            row.2 = Some(match row.2.take() {
                Some(note) => format!("{note}; {joined}"),
                None => joined,
            });
        }
    }

    Settings {
        eci: Eci {
            enabled: flag("enhancedContainerIsolation.value", true),
            socket_mount_images: strings(
                "enhancedContainerIsolation.dockerSocketMount.imageList.images",
            ),
            allow_derived_images: flag(
                "enhancedContainerIsolation.dockerSocketMount.imageList.allowDerivedImages",
                false,
            ),
            command_list,
        },
        block_docker_load: flag("blockDockerLoad.value", true),
        filesharing_allowed_directories: filesharing,
        expose_docker_api_on_tcp2375: flag("exposeDockerAPIOnTCP2375.value", false),
        proxy: Proxy {
            mode: mode("proxy.mode"),
            http: text("proxy.http"),
            https: text("proxy.https"),
            exclude: exclude("proxy.exclude"),
            pac: text("proxy.pac"),
            embedded_pac: text("proxy.embeddedPac"),
        },
        containers_proxy: ContainersProxy {
            mode: mode("containersProxy.mode"),
            http: text("containersProxy.http"),
            https: text("containersProxy.https"),
            exclude: exclude("containersProxy.exclude"),
            pac: text("containersProxy.pac"),
            embedded_pac: text("containersProxy.embeddedPac"),
            transparent_ports,
        },
        daemon_options,
        registry_access: RegistryAccess { allowed_registries },
        image_access: ImageAccess {
            allow_official_images: flag("imageAccess.allowOfficialImages", true),
            allow_verified_publisher_images: flag("imageAccess.allowVerifiedPublisherImages", true),
            allow_community_images: flag("imageAccess.allowCommunityImages", true),
            organization_namespaces: strings("imageAccess.organizationNamespaces"),
            allowed_repositories: strings("imageAccess.allowedRepositories"),
            catalog: text("imageAccess.catalog").map(PathBuf::from),
        },
        audit: AuditSettings {
            path: text("audit.path").map(PathBuf::from),
            syslog: flag("audit.syslog", false),
        },
        sources,
        values,
    }
}

/// Splits a comma-separated list, trimming blanks and dropping empty items.
fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Expands `$HOME`, `$TMP` and `$TEMP` and normalises the path (`//` and `.` removed; `..` was
/// refused when the file was read). `None` when the result is not absolute.
fn expand(raw: &str, who: &UserContext) -> Option<PathBuf> {
    let (base, rest): (&Path, &str) = if let Some(rest) = raw.strip_prefix("$HOME") {
        (&who.home, rest)
    } else if let Some(rest) = raw.strip_prefix("$TEMP") {
        (&who.tmp, rest)
    } else if let Some(rest) = raw.strip_prefix("$TMP") {
        (&who.tmp, rest)
    } else {
        (Path::new("/"), raw)
    };
    let joined = base.join(rest.trim_start_matches('/'));
    let mut out = PathBuf::new();
    for component in joined.components() {
        match component {
            Component::RootDir => out.push("/"),
            Component::Normal(c) => out.push(c),
            Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    out.is_absolute().then_some(out)
}

impl Settings {
    /// One line per key path: the value in force, where it came from and any note, e.g.
    /// `blockDockerLoad.value = true  (admin, locked)`.
    pub fn render_text(&self) -> String {
        let width = self.values.iter().map(|(p, _)| p.len()).max().unwrap_or(0);
        let mut out = String::new();
        for ((path, value), (_, source, note)) in self.values.iter().zip(&self.sources) {
            let shown = if value.is_null() {
                "(not set)".to_owned()
            } else {
                value.to_string()
            };
            let _ = write!(out, "{path:<width$} = {shown}  ({source}");
            if let Some(note) = note {
                let _ = write!(out, "; {note}");
            }
            out.push_str(")\n");
        }
        out
    }

    /// `{"effective": <the typed settings>, "keys": [{"key", "value", "source", "note"}]}`.
    pub fn to_json(&self) -> Value {
        let keys: Vec<Value> = self
            .values
            .iter()
            .zip(&self.sources)
            .map(|((path, value), (_, source, note))| {
                serde_json::json!({
                    "key": path,
                    "value": value,
                    "source": source,
                    "note": note,
                })
            })
            .collect();
        let mut effective = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut effective {
            map.remove("sources");
        }
        serde_json::json!({ "effective": effective, "keys": keys })
    }

    /// Where one key path's value came from.
    pub fn source_of(&self, key_path: &str) -> Option<(Source, Option<&str>)> {
        self.sources
            .iter()
            .find(|(path, _, _)| path == key_path)
            .map(|(_, source, note)| (*source, note.as_deref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion() {
        let who = UserContext {
            uid: 1000,
            home: "/home/ann".into(),
            tmp: "/tmp/ann".into(),
        };
        assert_eq!(expand("$HOME", &who), Some("/home/ann".into()));
        assert_eq!(
            expand("$HOME/src//x/./y/", &who),
            Some("/home/ann/src/x/y".into())
        );
        assert_eq!(expand("$TMP", &who), Some("/tmp/ann".into()));
        assert_eq!(expand("$TEMP/a", &who), Some("/tmp/ann/a".into()));
        assert_eq!(expand("/srv", &who), Some("/srv".into()));
        assert_eq!(expand("/", &who), Some("/".into()));
        let relative = UserContext::new(1, "home");
        assert_eq!(expand("$HOME", &relative), None);
    }

    #[test]
    fn lists() {
        assert_eq!(split_list(" a, b ,,c "), ["a", "b", "c"]);
        assert!(split_list("").is_empty());
    }
}
