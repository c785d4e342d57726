//! The admin policy (`admin-settings.json`, Docker Desktop's Settings Management format), user
//! settings and their precedence.
//!
//! - [`Policy`] is a validated admin file (`configurationFileVersion: 2`, each setting
//!   `{"locked": bool, "value": ...}`), or the built-in secure default ([`Policy::builtin`],
//!   embedded from `default-admin-settings.json`).
//! - [`UserSettings`] is a user's `~/.config/stockade/settings.json`: the same keys and shapes
//!   without `locked`. [`UserSettings::read_for`] reads it safely as root;
//!   [`UserSettingsCache`] keeps it per uid and re-reads only on change.
//! - [`Policy::effective`] merges them into plain [`Settings`], recording where each value
//!   came from ([`Source`]).
//!
//! Precedence, per key path: **admin-locked > user > admin unlocked default > built-in
//! default**. A key the admin file leaves out falls back to the built-in secure default,
//! *including its lock*: an admin file that omits `enhancedContainerIsolation` gets ECI on and
//! locked, and so cannot be weakened by a user. Engine-wide settings (the engine's proxy,
//! air-gapped containers, daemon options, TCP exposure, the IAM catalog and the audit log) serve
//! every user at once, so user values for them are ignored and `policy show` says so.
//!
//! Every problem in a file is reported, each as `FILE:LINE:COL: key.path: message`. Unknown keys
//! are errors with a "did you mean" suggestion; keys of Docker's Settings Management reference
//! that mean nothing on Linux are accepted in their documented shape and listed in
//! [`Policy::notes`]. The published JSON Schema (`schema/admin-settings.schema.json`) is
//! generated from the same key table the parser uses.
//!
//! ```
//! use stockade_policy::{Policy, Source, UserContext, UserSettings};
//!
//! let admin = Policy::parse("admin-settings.json", br#"{
//!   "configurationFileVersion": 2,
//!   "enhancedContainerIsolation": {"locked": true, "value": true},
//!   "blockDockerLoad": {"locked": false, "value": true}
//! }"#)?;
//! let user = UserSettings::parse("settings.json", br#"{
//!   "enhancedContainerIsolation": {"value": false},
//!   "blockDockerLoad": {"value": false}
//! }"#)?;
//! let who = UserContext::new(1000, "/home/ann");
//! let settings = admin.effective(Some(&user), &who);
//!
//! assert!(settings.eci.enabled); // locked by the admin
//! assert_eq!(
//!     settings.source_of("enhancedContainerIsolation.value"),
//!     Some((Source::AdminLocked, Some("user value ignored: locked by the admin")))
//! );
//! assert!(!settings.block_docker_load); // an admin default the user overrode
//! assert_eq!(settings.registry_access.allowed_registries, Some(vec!["docker.io".to_owned()])); // built-in
//!
//! let err = Policy::parse("bad.json", br#"{"configurationFileVersion": 2,
//!   "blockDockerLoad": {"locked": true, "value": "yes"}, "exposeDockerApiOnTCP2375": {}}"#)
//!     .unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "bad.json:2:48: blockDockerLoad.value: expected a boolean (true or false), found a string\n\
//!      bad.json:2:56: exposeDockerApiOnTCP2375: unknown key: did you mean `exposeDockerAPIOnTCP2375`?"
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub mod access;
pub mod catalog;
mod checks;
mod error;
mod json;
mod layer;
pub mod rules;
pub mod schema;
mod settings;
mod shape;
mod user;

use std::io::Read;
use std::path::Path;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

pub use error::{Diagnostic, PolicyError, UserSettingsError};
pub use settings::{
    AuditSettings, CommandList, CommandListKind, ContainersProxy, Eci, ImageAccess, Proxy,
    ProxyMode, RegistryAccess, Settings, SharedDirectory, Source, TransparentPorts, UserContext,
};
pub use user::{UserSettingsCache, USER_SETTINGS_LIMIT, USER_SETTINGS_PATH};

use catalog::Catalog;
use error::describe_io;
use json::LineIndex;
use layer::Layer;
use shape::{Mode, Problem};
use std::sync::Arc;

/// Largest admin settings file read (1 MiB).
pub const ADMIN_SETTINGS_LIMIT: u64 = 1024 * 1024;

/// What [`Policy::source_name`] says for the built-in policy.
pub const BUILTIN_SOURCE: &str = "built-in";

/// The built-in secure default policy, as shipped in the binary.
pub const BUILTIN_ADMIN_SETTINGS: &str = include_str!("../default-admin-settings.json");

/// A validated admin settings file, or the built-in default.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    source_name: String,
    hash: String,
    notes: Vec<String>,
    layer: Layer,
    builtin: bool,
    catalog: Option<Arc<Catalog>>,
    catalog_path: Option<std::path::PathBuf>,
}

impl Policy {
    /// Reads and validates an admin settings file (at most 1 MiB, a regular file).
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let name = path.display().to_string();
        let bytes = read_limited(path, &name, ADMIN_SETTINGS_LIMIT)?;
        let mut policy = Policy::parse(&name, &bytes)?;
        policy.load_catalog()?;
        Ok(policy)
    }

    /// Loads the Docker Hub category catalog the file names (`imageAccess.catalog`), so that a
    /// broken catalog refuses the policy like any other error in it.
    fn load_catalog(&mut self) -> Result<(), PolicyError> {
        let admin = self.effective(None, &UserContext::new(0, "/root"));
        if let Some(path) = admin.image_access.catalog {
            let catalog = Catalog::load(&path)?;
            // Decisions depend on both files, so the hash the audit log records covers both.
            self.hash = sha256_hex(format!("{}\n{}", self.hash, catalog.hash()).as_bytes());
            self.catalog = Some(Arc::new(catalog));
            self.catalog_path = Some(path);
        }
        Ok(())
    }

    /// The catalog file the policy loaded, to watch for changes.
    #[must_use]
    pub fn catalog_path(&self) -> Option<&Path> {
        self.catalog_path.as_deref()
    }

    /// The Docker Hub category catalog, when the policy names one.
    #[must_use]
    pub fn catalog(&self) -> Option<&Catalog> {
        self.catalog.as_deref()
    }

    /// Validates admin settings held in memory; `file_name` is used in diagnostics.
    pub fn parse(file_name: &str, bytes: &[u8]) -> Result<Policy, PolicyError> {
        let (layer, notes) = parse_document(file_name, bytes, Mode::Admin, ADMIN_SETTINGS_LIMIT)?;
        Ok(Policy {
            source_name: file_name.to_owned(),
            hash: sha256_hex(bytes),
            notes,
            layer,
            builtin: false,
            catalog: None,
            catalog_path: None,
        })
    }

    /// The built-in secure default policy: ECI on and locked, `docker load` blocked, file
    /// sharing limited to `$HOME` and `$TMP`, only Docker Hub, no TCP exposure.
    pub fn builtin() -> Policy {
        static BUILTIN: OnceLock<Policy> = OnceLock::new();
        BUILTIN
            .get_or_init(|| {
                let mut policy = Policy::parse(BUILTIN_SOURCE, BUILTIN_ADMIN_SETTINGS.as_bytes())
                    .unwrap_or_else(|_| Policy {
                        // Unreachable (a unit test parses the file); if it ever happens, lock
                        // everything down rather than fail open.
                        source_name: String::new(),
                        hash: sha256_hex(BUILTIN_ADMIN_SETTINGS.as_bytes()),
                        notes: Vec::new(),
                        layer: locked_down_layer(),
                        builtin: true,
                        catalog: None,
                        catalog_path: None,
                    });
                policy.builtin = true;
                BUILTIN_SOURCE.clone_into(&mut policy.source_name);
                policy
            })
            .clone()
    }

    /// The SHA-256 of the source bytes, lowercase hex (for the audit log).
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The file the policy came from, or `built-in`.
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// Whether this is the built-in policy.
    pub fn is_builtin(&self) -> bool {
        self.builtin
    }

    /// `key.path: no effect on Linux` for each Docker Desktop-only key in the file.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The settings in force for one user (`user`: their settings file, if any).
    pub fn effective(&self, user: Option<&UserSettings>, who: &UserContext) -> Settings {
        static BUILTIN_LAYER: OnceLock<Layer> = OnceLock::new();
        let builtin = BUILTIN_LAYER.get_or_init(|| Policy::builtin().layer);
        let admin = (!self.builtin).then_some(&self.layer);
        settings::effective(admin, builtin, user.map(|u| &u.layer), who)
    }
}

/// Refuses an admin policy file that someone other than root could change: the file must be
/// owned by root and not writable by group or others, and so must every directory above it
/// (a directory with the sticky bit, such as `/tmp`, protects root's files in it). Otherwise
/// whoever can write there could rewrite the policy the gateway enforces.
///
/// # Errors
/// A sentence naming the path and the fix.
pub fn check_admin_file_owner(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let absolute = std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let meta = std::fs::metadata(&absolute)
        .map_err(|e| format!("cannot read {}: {e}", absolute.display()))?;
    if meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        return Err(format!(
            "the policy file {} can be changed by someone other than root (owner uid {}, mode {:o}): run `chown root:root {0} && chmod 0644 {0}`",
            absolute.display(),
            meta.uid(),
            meta.mode() & 0o7777
        ));
    }
    let mut dir = absolute.parent();
    while let Some(d) = dir {
        let meta = std::fs::metadata(d).map_err(|e| format!("cannot read {}: {e}", d.display()))?;
        let sticky = meta.mode() & 0o1000 != 0;
        if meta.uid() != 0 || (meta.mode() & 0o022 != 0 && !sticky) {
            return Err(format!(
                "the directory {} holding the policy can be changed by someone other than root (owner uid {}, mode {:o}): make it root-owned and not group- or world-writable",
                d.display(),
                meta.uid(),
                meta.mode() & 0o7777
            ));
        }
        dir = d.parent();
    }
    Ok(())
}

/// A user's settings file: the admin file's keys and shapes without `locked`.
#[derive(Debug, Clone, PartialEq)]
pub struct UserSettings {
    source_name: String,
    notes: Vec<String>,
    layer: Layer,
}

impl UserSettings {
    /// Validates user settings held in memory (at most 256 KiB); `file_name` is used in
    /// diagnostics. `configurationFileVersion` is optional; `locked` is an error.
    pub fn parse(file_name: &str, bytes: &[u8]) -> Result<Self, PolicyError> {
        let (layer, notes) = parse_document(file_name, bytes, Mode::User, USER_SETTINGS_LIMIT)?;
        Ok(UserSettings {
            source_name: file_name.to_owned(),
            notes,
            layer,
        })
    }

    /// The file the settings came from.
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// `key.path: no effect on Linux` for each Docker Desktop-only key in the file.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

fn human_size(limit: u64) -> String {
    if limit % (1024 * 1024) == 0 {
        format!("{} MiB", limit / (1024 * 1024))
    } else {
        format!("{} KiB", limit / 1024)
    }
}

/// Reads a regular file of at most `limit` bytes; never blocks on a FIFO.
fn read_limited(path: &Path, name: &str, limit: u64) -> Result<Vec<u8>, PolicyError> {
    use rustix::fs::{fstat, open, FileType, Mode as FileMode, OFlags};
    let cannot = |err: std::io::Error| {
        PolicyError::file(
            name,
            format!(
                "cannot read the file: {}: check the path and its permissions",
                describe_io(&err)
            ),
        )
    };
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let fd = open(path, flags, FileMode::empty()).map_err(|e| cannot(e.into()))?;
    let st = fstat(&fd).map_err(|e| cannot(e.into()))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(PolicyError::file(
            name,
            "not a regular file: give the path of the settings file itself".to_owned(),
        ));
    }
    let too_large = |size: u64| {
        PolicyError::file(
            name,
            format!(
                "the file is {size} bytes, over the {} limit: remove what is not needed",
                human_size(limit)
            ),
        )
    };
    #[allow(clippy::cast_sign_loss)]
    let size = st.st_size.max(0) as u64;
    if size > limit {
        return Err(too_large(size));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    std::fs::File::from(fd)
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Size, encoding, syntax, duplicates, then shape: every problem, sorted by position.
/// Checks size, BOM and UTF-8, parses the JSON and lists its duplicate keys: the steps every
/// positioned file (settings, catalog) shares.
pub(crate) fn parse_json<'t>(
    file_name: &str,
    bytes: &'t [u8],
    limit: u64,
) -> Result<(&'t str, json::Parsed, Vec<Problem>), PolicyError> {
    if bytes.len() as u64 > limit {
        return Err(PolicyError::file(
            file_name,
            format!(
                "the file is {} bytes, over the {} limit: remove what is not needed",
                bytes.len(),
                human_size(limit)
            ),
        ));
    }
    let diagnostic = |index: &LineIndex<'_>, pos: usize, path: String, message: String| {
        let (line, column) = index.line_col(pos);
        Diagnostic {
            file: file_name.to_owned(),
            line,
            column,
            path,
            message,
        }
    };
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        let index = LineIndex::new("");
        return Err(PolicyError::new(vec![diagnostic(
            &index,
            0,
            "(root)".to_owned(),
            "the file starts with a byte order mark: save it as UTF-8 without BOM".to_owned(),
        )]));
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => {
            let valid = err.valid_up_to();
            let prefix = std::str::from_utf8(&bytes[..valid]).unwrap_or_default();
            let index = LineIndex::new(prefix);
            return Err(PolicyError::new(vec![diagnostic(
                &index,
                valid,
                "(root)".to_owned(),
                "the file is not valid UTF-8: save it as UTF-8".to_owned(),
            )]));
        }
    };
    let index = LineIndex::new(text);
    let parsed = json::parse(text).map_err(|err| {
        PolicyError::new(vec![diagnostic(&index, err.pos, err.path, err.message)])
    })?;
    let problems: Vec<Problem> = parsed
        .duplicates
        .iter()
        .map(|dup| {
            let (line, column) = index.line_col(dup.first_pos);
            Problem {
                pos: dup.pos,
                path: dup.path.clone(),
                message: format!(
                    "duplicate key (first at line {line}, column {column}): remove one of them"
                ),
            }
        })
        .collect();
    Ok((text, parsed, problems))
}

fn parse_document(
    file_name: &str,
    bytes: &[u8],
    mode: Mode,
    limit: u64,
) -> Result<(Layer, Vec<String>), PolicyError> {
    let (text, parsed, mut problems) = parse_json(file_name, bytes, limit)?;
    let (found, notes) = shape::validate(&parsed.root, mode);
    problems.extend(found);
    if !problems.is_empty() {
        return Err(problems_error(file_name, text, problems));
    }
    Ok((Layer::from_root(&parsed.root, mode), notes))
}

/// Every problem of one file as positioned diagnostics, in file order.
pub(crate) fn problems_error(
    file_name: &str,
    text: &str,
    mut problems: Vec<Problem>,
) -> PolicyError {
    let index = LineIndex::new(text);
    problems.sort_by_key(|p| p.pos);
    PolicyError::new(
        problems
            .into_iter()
            .map(|p| {
                let (line, column) = index.line_col(p.pos);
                Diagnostic {
                    file: file_name.to_owned(),
                    line,
                    column,
                    path: p.path,
                    message: p.message,
                }
            })
            .collect(),
    )
}

/// The most restrictive layer, used only if the embedded default failed to parse.
fn locked_down_layer() -> Layer {
    let mut layer = Layer::default();
    for leaf in layer::LEAVES {
        layer.locks.insert(leaf.group, true);
    }
    let values = [
        ("enhancedContainerIsolation.value", serde_json::json!(true)),
        ("blockDockerLoad.value", serde_json::json!(true)),
        ("filesharingAllowedDirectories.value", serde_json::json!([])),
        ("exposeDockerAPIOnTCP2375.value", serde_json::json!(false)),
        ("registryAccess.allowedRegistries", serde_json::json!([])),
    ];
    for (path, value) in values {
        layer.values.insert(path, value);
    }
    layer
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn ann() -> UserContext {
        UserContext {
            uid: 1000,
            home: "/home/ann".into(),
            tmp: "/tmp".into(),
        }
    }

    #[test]
    fn builtin_parses_and_is_secure() {
        let policy = Policy::parse(
            "default-admin-settings.json",
            BUILTIN_ADMIN_SETTINGS.as_bytes(),
        )
        .unwrap();
        assert!(policy.notes().is_empty());
        let builtin = Policy::builtin();
        assert!(builtin.is_builtin());
        assert_eq!(builtin.source_name(), "built-in");
        assert_eq!(
            builtin.hash(),
            sha256_hex(BUILTIN_ADMIN_SETTINGS.as_bytes())
        );
        let s = builtin.effective(None, &ann());
        assert!(s.eci.enabled);
        assert!(s.block_docker_load);
        assert!(!s.expose_docker_api_on_tcp2375);
        assert_eq!(
            s.filesharing_allowed_directories,
            [
                SharedDirectory {
                    path: "/home/ann".into(),
                    shared_by_default: true
                },
                SharedDirectory {
                    path: "/tmp".into(),
                    shared_by_default: false
                },
            ]
        );
        assert_eq!(
            s.registry_access.allowed_registries,
            Some(vec!["docker.io".to_owned()])
        );
        assert!(s
            .sources
            .iter()
            .all(|(_, source, _)| *source == Source::BuiltIn));
        // Every group Stockade acts on is set, and locked, by the built-in policy.
        for leaf in layer::LEAVES {
            assert_eq!(
                builtin.layer.locks.get(leaf.group),
                Some(&true),
                "{}",
                leaf.group
            );
        }
        // A user cannot loosen the built-in policy.
        let user = UserSettings::parse(
            "u.json",
            br#"{"enhancedContainerIsolation": {"value": false}, "registryAccess": {"allowedRegistries": ["evil.io"]}}"#,
        )
        .unwrap();
        let s = builtin.effective(Some(&user), &ann());
        assert!(s.eci.enabled);
        assert_eq!(
            s.source_of("registryAccess.allowedRegistries"),
            Some((
                Source::BuiltIn,
                Some("user value ignored: locked by the built-in default policy")
            ))
        );
    }

    #[test]
    fn locked_down_fallback_is_restrictive() {
        let fallback = Policy {
            source_name: String::new(),
            hash: String::new(),
            notes: Vec::new(),
            layer: locked_down_layer(),
            builtin: false,
            catalog: None,
            catalog_path: None,
        };
        let s = fallback.effective(None, &ann());
        assert!(s.eci.enabled && s.block_docker_load);
        assert!(s.filesharing_allowed_directories.is_empty());
        assert_eq!(s.registry_access.allowed_registries, Some(vec![]));
    }

    #[test]
    fn precedence() {
        let admin = Policy::parse(
            "a.json",
            br#"{"configurationFileVersion": 2,
                 "enhancedContainerIsolation": {"locked": false, "value": true,
                    "dockerSocketMount": {"imageList": {"images": ["docker.io/testcontainers/ryuk:*"]},
                                          "commandList": {"type": "deny", "commands": ["push"]}}},
                 "blockDockerLoad": {"locked": true, "value": false},
                 "filesharingAllowedDirectories": {"locked": false, "value": [{"path": "$HOME/src"}]},
                 "proxy": {"locked": false, "mode": "manual", "http": "http://p:3128", "exclude": "a, b"},
                 "imageAccess": {"locked": false, "allowCommunityImages": false}}"#,
        )
        .unwrap();
        let user = UserSettings::parse(
            "u.json",
            br#"{"enhancedContainerIsolation": {"value": false},
                 "blockDockerLoad": {"value": true},
                 "filesharingAllowedDirectories": [{"path": "$TMP/x", "sharedByDefault": true}],
                 "proxy": {"http": "http://mine:1"},
                 "imageAccess": {"organizationNamespaces": ["myorg"], "catalog": "/etc/shadow"}}"#,
        )
        .unwrap();
        let s = admin.effective(Some(&user), &ann());
        // Unlocked: the user wins, field by field.
        assert!(!s.eci.enabled);
        assert_eq!(
            s.source_of("enhancedContainerIsolation.value"),
            Some((Source::User, None))
        );
        assert_eq!(
            s.eci.socket_mount_images,
            ["docker.io/testcontainers/ryuk:*"]
        );
        assert_eq!(
            s.source_of("enhancedContainerIsolation.dockerSocketMount.imageList.images"),
            Some((Source::AdminDefault, None))
        );
        assert_eq!(
            s.eci.command_list,
            Some(CommandList {
                kind: CommandListKind::Deny,
                commands: vec!["push".into()]
            })
        );
        assert_eq!(
            s.filesharing_allowed_directories[0].path,
            Path::new("/tmp/x")
        );
        // Locked: the admin wins and the ignored user value is recorded.
        assert!(!s.block_docker_load);
        assert_eq!(
            s.source_of("blockDockerLoad.value"),
            Some((
                Source::AdminLocked,
                Some("user value ignored: locked by the admin")
            ))
        );
        // Engine-wide: the user never wins.
        assert_eq!(s.proxy.http.as_deref(), Some("http://p:3128"));
        assert_eq!(s.proxy.exclude, ["a", "b"]);
        assert_eq!(s.proxy.mode, ProxyMode::Manual);
        assert_eq!(
            s.source_of("proxy.http"),
            Some((Source::AdminDefault, Some(settings::IGNORED_ENGINE_WIDE)))
        );
        assert_eq!(s.image_access.catalog, None);
        assert!(!s.image_access.allow_community_images);
        assert_eq!(s.image_access.organization_namespaces, ["myorg"]);
        // Absent from the admin file: the built-in default.
        assert_eq!(
            s.registry_access.allowed_registries,
            Some(vec!["docker.io".to_owned()])
        );
        assert_eq!(
            s.source_of("registryAccess.allowedRegistries"),
            Some((Source::BuiltIn, None))
        );
        // Without user settings, the admin defaults apply.
        let s = admin.effective(None, &ann());
        assert!(s.eci.enabled);
        assert_eq!(
            s.source_of("enhancedContainerIsolation.value"),
            Some((Source::AdminDefault, None))
        );
        assert_eq!(
            s.filesharing_allowed_directories[0].path,
            Path::new("/home/ann/src")
        );
    }

    #[test]
    fn typed_values() {
        let admin = Policy::parse(
            "a.json",
            br#"{"configurationFileVersion": 2,
                 "containersProxy": {"locked": true, "mode": "manual", "exclude": ["a,b", " c "],
                                     "transparentPorts": "443, 80,443", "embeddedPac": ""},
                 "linuxVM": {"dockerDaemonOptions": {"locked": true, "value": "{\"debug\": true}"}},
                 "registryAccess": {"locked": true, "allowedRegistries": ["Docker.IO", "ghcr.io:443"]},
                 "audit": {"path": "/var/log/stockade/audit.log", "syslog": true}}"#,
        )
        .unwrap();
        let s = admin.effective(None, &ann());
        assert_eq!(s.containers_proxy.exclude, ["a", "b", "c"]);
        assert_eq!(
            s.containers_proxy.transparent_ports,
            Some(TransparentPorts::Ports(vec![80, 443]))
        );
        assert_eq!(s.containers_proxy.embedded_pac, None);
        assert_eq!(
            s.daemon_options.get("debug"),
            Some(&serde_json::json!(true))
        );
        assert_eq!(
            s.registry_access.allowed_registries,
            Some(vec!["docker.io".to_owned(), "ghcr.io:443".to_owned()])
        );
        assert_eq!(
            s.audit.path.as_deref(),
            Some(Path::new("/var/log/stockade/audit.log"))
        );
        assert!(s.audit.syslog);
        let all = Policy::parse(
            "b.json",
            br#"{"configurationFileVersion": 2, "containersProxy": {"locked": true, "transparentPorts": "*"}}"#,
        )
        .unwrap();
        assert_eq!(
            all.effective(None, &ann())
                .containers_proxy
                .transparent_ports,
            Some(TransparentPorts::All)
        );
    }

    #[test]
    fn render_and_json() {
        let user =
            UserSettings::parse("u.json", br#"{"blockDockerLoad": {"value": false}}"#).unwrap();
        let s = Policy::builtin().effective(Some(&user), &ann());
        let text = s.render_text();
        assert!(text.contains("blockDockerLoad.value"), "{text}");
        let line = text
            .lines()
            .find(|l| l.starts_with("blockDockerLoad.value"))
            .unwrap();
        assert!(
            line.ends_with(
                "= true  (built-in; user value ignored: locked by the built-in default policy)"
            ),
            "{line}"
        );
        let line = text
            .lines()
            .find(|l| l.starts_with("filesharingAllowedDirectories"))
            .unwrap();
        assert!(line.contains(r#"["/home/ann","/tmp"]"#), "{line}");
        let json = s.to_json();
        assert_eq!(
            json["effective"]["block_docker_load"],
            serde_json::json!(true)
        );
        let keys = json["keys"].as_array().unwrap();
        assert_eq!(keys.len(), layer::LEAVES.len());
        let row = keys
            .iter()
            .find(|k| k["key"] == "blockDockerLoad.value")
            .unwrap();
        assert_eq!(row["source"], "built-in");
        assert_eq!(row["value"], true);
    }

    #[test]
    fn file_level_errors() {
        let err = Policy::parse("big.json", &vec![b' '; 1024 * 1024 + 1]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "big.json: the file is 1048577 bytes, over the 1 MiB limit: remove what is not needed"
        );
        let err = UserSettings::parse("u.json", &vec![b' '; 256 * 1024 + 1]).unwrap_err();
        assert!(err.to_string().contains("over the 256 KiB limit"), "{err}");
        let err = Policy::load(Path::new("/nonexistent/admin.json")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/nonexistent/admin.json: cannot read the file: no such file or directory: check the path and its permissions"
        );
        let err = Policy::load(Path::new("/")).unwrap_err();
        assert!(err
            .to_string()
            .ends_with("not a regular file: give the path of the settings file itself"));
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.json");
        std::fs::write(&big, vec![b' '; 2 * 1024 * 1024]).unwrap();
        let err = Policy::load(&big).unwrap_err();
        assert!(
            err.to_string()
                .contains("2097152 bytes, over the 1 MiB limit"),
            "{err}"
        );
        let good = dir.path().join("good.json");
        std::fs::write(&good, BUILTIN_ADMIN_SETTINGS).unwrap();
        let policy = Policy::load(&good).unwrap();
        assert_eq!(policy.source_name(), good.display().to_string());
        assert_eq!(policy.hash(), Policy::builtin().hash());
    }

    #[test]
    fn user_settings_rules() {
        assert!(UserSettings::parse("u.json", b"{}").is_ok());
        assert!(UserSettings::parse("u.json", br#"{"configurationFileVersion": 2}"#).is_ok());
        let err = UserSettings::parse("u.json", br#"{"configurationFileVersion": 1}"#).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("u.json:1:30: configurationFileVersion: unsupported version"),
            "{err}"
        );
        let err = UserSettings::parse(
            "u.json",
            br#"{"blockDockerLoad": {"locked": false, "value": true}}"#,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "u.json:1:22: blockDockerLoad.locked: `locked` belongs in the admin file only: remove it from user settings"
        );
    }

    /// Loading and validating a 100 KiB policy must take well under 10 ms. Prints the time; not
    /// a timed assertion (CI machines vary).
    #[test]
    fn load_time_of_a_100_kib_policy() {
        let mut text = String::from(
            "{\n  \"configurationFileVersion\": 2,\n  \"enhancedContainerIsolation\": {\n    \"locked\": true,\n    \"value\": true,\n    \"dockerSocketMount\": {\n      \"imageList\": {\n        \"images\": [\n",
        );
        let mut i = 0;
        while text.len() < 100 * 1024 {
            text.push_str(&format!(
                "          \"registry{i}.example.com:5000/team{i}/image-{i}:v{i}\",\n"
            ));
            i += 1;
        }
        text.push_str("          \"*\"\n        ]\n      }\n    }\n  },\n  \"blockDockerLoad\"");
        let (_, rest) = BUILTIN_ADMIN_SETTINGS
            .split_once("\"blockDockerLoad\"")
            .unwrap();
        text.push_str(rest);
        assert!(text.len() >= 100 * 1024);
        let runs = 20;
        let start = Instant::now();
        for _ in 0..runs {
            let policy = Policy::parse("big.json", text.as_bytes()).unwrap();
            let _ = policy.effective(None, &ann());
        }
        let per_run = start.elapsed() / runs;
        #[allow(clippy::print_stderr)]
        {
            eprintln!(
                "load + validate + effective of a {} byte policy ({i} images): {per_run:?} per run",
                text.len()
            );
        }
    }

    #[test]
    fn the_catalog_is_loaded_with_the_policy_and_a_broken_one_refuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = dir.path().join("catalog.json");
        let policy = dir.path().join("admin-settings.json");
        std::fs::write(
            &policy,
            format!(
                r#"{{"configurationFileVersion": 2, "imageAccess": {{"locked": true, "catalog": "{}"}}}}"#,
                catalog.display()
            ),
        )
        .unwrap();
        // Missing: refused, naming the catalog file.
        let err = Policy::load(&policy).unwrap_err().to_string();
        assert!(err.starts_with(&catalog.display().to_string()), "{err}");
        assert!(err.contains("no such file"), "{err}");
        std::fs::write(
            &catalog,
            "{\n  \"catalogVersion\": 1,\n  \"namespaces\": {\"x\": 3}\n}",
        )
        .unwrap();
        let err = Policy::load(&policy).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}:3:23: namespaces.x: expected \"verified-publisher\" or \"community\"",
                catalog.display()
            )
        );
        std::fs::write(
            &catalog,
            r#"{"catalogVersion": 1, "namespaces": {"bitnami": "verified-publisher"}}"#,
        )
        .unwrap();
        let loaded = Policy::load(&policy).unwrap();
        let image = stockade_imageref::Reference::parse_normalized("bitnami/redis").unwrap();
        assert_eq!(
            loaded.catalog().and_then(|c| c.category(&image)),
            Some(catalog::Category::VerifiedPublisher)
        );
        assert!(Policy::builtin().catalog().is_none());
    }
}
