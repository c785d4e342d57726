//! The shapes of the request bodies the gateway inspects, as the engine's Go types declare them,
//! and the check that turns a parsed body into the canonical object that is forwarded.
//!
//! The engine decodes bodies with Go's `encoding/json`: a key reaches a struct field when it equals
//! the field's JSON name after case folding ([`go_fold`](crate::json::go_fold)), and when two keys reach the same field
//! the last one wins. A checker that matched keys differently from the engine could approve one
//! value while the engine used another (`{"Privileged":false,"privileged":true}`), so
//! [`check`]:
//! - refuses any object in which two keys reach the same field, and any key that reaches no field
//!   (the engine would ignore it today, a newer engine might not);
//! - refuses values of the wrong type, integers out of range and numbers Go would not take for an
//!   integer (`1.0`, `1e3`);
//! - returns the body rebuilt with every key spelled exactly as the field's JSON name (a `null`
//!   member stays `null`; rules read it as absent, as Go leaves the field at its zero value), so
//!   what the engine reads is what the rules read.
//!
//! The field lists cover every version of the Engine API from 1.24 to 1.52; fields that newer
//! engines removed are kept, since an older engine still reads them.

use crate::json::Value;
use std::fmt;
use std::fmt::Write as _;

/// A Go type, as far as JSON decoding is concerned.
#[derive(Debug)]
pub enum Ty {
    /// `string`
    Str,
    /// `bool`
    Bool,
    /// A signed integer of this many bits.
    Int(u32),
    /// An unsigned integer of this many bits.
    Uint(u32),
    /// `strslice.StrSlice`: a string or an array of strings.
    StrSlice,
    /// A slice or array of the element type.
    Array(&'static Ty),
    /// `map[string]T`: keys are matched exactly, so an exact duplicate is refused.
    Map(&'static Ty),
    /// A struct with these fields.
    Struct(&'static [Field]),
    /// `struct{}`: only `{}` is accepted (Go would ignore any members).
    Empty,
}

/// A struct field: its JSON name and type.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// The JSON name, exactly as the Go struct tag spells it.
    pub name: &'static str,
    /// Its type.
    pub ty: &'static Ty,
}

const fn f(name: &'static str, ty: &'static Ty) -> Field {
    Field { name, ty }
}

static STR: Ty = Ty::Str;
static BOOL: Ty = Ty::Bool;
static INT: Ty = Ty::Int(64);
static UINT: Ty = Ty::Uint(64);
static UINT16: Ty = Ty::Uint(16);
static UINT32: Ty = Ty::Uint(32);
static STRSLICE: Ty = Ty::StrSlice;
static STRINGS: Ty = Ty::Array(&STR);
static STRINGS2: Ty = Ty::Array(&STRINGS);
static STRMAP: Ty = Ty::Map(&STR);
static EMPTY: Ty = Ty::Empty;
static SET: Ty = Ty::Map(&EMPTY);
static UINTS: Ty = Ty::Array(&UINT);

static HEALTHCHECK: Ty = Ty::Struct(&[
    f("Test", &STRINGS),
    f("Interval", &INT),
    f("Timeout", &INT),
    f("StartPeriod", &INT),
    f("StartInterval", &INT),
    f("Retries", &INT),
]);

/// Fields of `container.Config`, the top level of a create body and the body of a commit.
const CONFIG_FIELDS: [Field; CONFIG_LEN] = [
    f("Hostname", &STR),
    f("Domainname", &STR),
    f("User", &STR),
    f("AttachStdin", &BOOL),
    f("AttachStdout", &BOOL),
    f("AttachStderr", &BOOL),
    f("ExposedPorts", &SET),
    f("Tty", &BOOL),
    f("OpenStdin", &BOOL),
    f("StdinOnce", &BOOL),
    f("Env", &STRINGS),
    f("Cmd", &STRSLICE),
    f("Healthcheck", &HEALTHCHECK),
    f("ArgsEscaped", &BOOL),
    f("Image", &STR),
    f("Volumes", &SET),
    f("WorkingDir", &STR),
    f("Entrypoint", &STRSLICE),
    f("NetworkDisabled", &BOOL),
    f("MacAddress", &STR),
    f("OnBuild", &STRINGS),
    f("Labels", &STRMAP),
    f("StopSignal", &STR),
    f("StopTimeout", &INT),
    f("Shell", &STRSLICE),
];

/// `container.Config`.
pub static CONFIG: Ty = Ty::Struct(&CONFIG_FIELDS);

static LOG_CONFIG: Ty = Ty::Struct(&[f("Type", &STR), f("Config", &STRMAP)]);
static PORT_BINDING: Ty = Ty::Struct(&[f("HostIp", &STR), f("HostPort", &STR)]);
static PORT_BINDINGS: Ty = Ty::Map(&PORT_BINDING_LIST);
static PORT_BINDING_LIST: Ty = Ty::Array(&PORT_BINDING);
static RESTART_POLICY: Ty = Ty::Struct(&[f("Name", &STR), f("MaximumRetryCount", &INT)]);
static WEIGHT_DEVICE: Ty = Ty::Struct(&[f("Path", &STR), f("Weight", &UINT16)]);
static THROTTLE_DEVICE: Ty = Ty::Struct(&[f("Path", &STR), f("Rate", &UINT)]);
static WEIGHT_DEVICES: Ty = Ty::Array(&WEIGHT_DEVICE);
static THROTTLE_DEVICES: Ty = Ty::Array(&THROTTLE_DEVICE);
static DEVICE_MAPPING: Ty = Ty::Struct(&[
    f("PathOnHost", &STR),
    f("PathInContainer", &STR),
    f("CgroupPermissions", &STR),
]);
static DEVICE_MAPPINGS: Ty = Ty::Array(&DEVICE_MAPPING);
static DEVICE_REQUEST: Ty = Ty::Struct(&[
    f("Driver", &STR),
    f("Count", &INT),
    f("DeviceIDs", &STRINGS),
    f("Capabilities", &STRINGS2),
    f("Options", &STRMAP),
]);
static DEVICE_REQUESTS: Ty = Ty::Array(&DEVICE_REQUEST);
static ULIMIT: Ty = Ty::Struct(&[f("Name", &STR), f("Hard", &INT), f("Soft", &INT)]);
static ULIMITS: Ty = Ty::Array(&ULIMIT);

static BIND_OPTIONS: Ty = Ty::Struct(&[
    f("Propagation", &STR),
    f("NonRecursive", &BOOL),
    f("CreateMountpoint", &BOOL),
    f("ReadOnlyNonRecursive", &BOOL),
    f("ReadOnlyForceRecursive", &BOOL),
]);
static DRIVER: Ty = Ty::Struct(&[f("Name", &STR), f("Options", &STRMAP)]);
static VOLUME_OPTIONS: Ty = Ty::Struct(&[
    f("NoCopy", &BOOL),
    f("Labels", &STRMAP),
    f("Subpath", &STR),
    f("DriverConfig", &DRIVER),
]);
static IMAGE_OPTIONS: Ty = Ty::Struct(&[f("Subpath", &STR)]);
static TMPFS_OPTIONS: Ty = Ty::Struct(&[
    f("SizeBytes", &INT),
    f("Mode", &UINT32),
    f("Options", &STRINGS2),
]);
static MOUNT: Ty = Ty::Struct(&[
    f("Type", &STR),
    f("Source", &STR),
    f("Target", &STR),
    f("ReadOnly", &BOOL),
    f("Consistency", &STR),
    f("BindOptions", &BIND_OPTIONS),
    f("VolumeOptions", &VOLUME_OPTIONS),
    f("ImageOptions", &IMAGE_OPTIONS),
    f("TmpfsOptions", &TMPFS_OPTIONS),
    f("ClusterOptions", &EMPTY),
]);
static MOUNTS: Ty = Ty::Array(&MOUNT);

/// Fields of `container.Resources`, embedded in the host config and in an update body.
macro_rules! resources_fields {
    () => {
        [
            f("CpuShares", &INT),
            f("Memory", &INT),
            f("NanoCpus", &INT),
            f("CgroupParent", &STR),
            f("BlkioWeight", &UINT16),
            f("BlkioWeightDevice", &WEIGHT_DEVICES),
            f("BlkioDeviceReadBps", &THROTTLE_DEVICES),
            f("BlkioDeviceWriteBps", &THROTTLE_DEVICES),
            f("BlkioDeviceReadIOps", &THROTTLE_DEVICES),
            f("BlkioDeviceWriteIOps", &THROTTLE_DEVICES),
            f("CpuPeriod", &INT),
            f("CpuQuota", &INT),
            f("CpuRealtimePeriod", &INT),
            f("CpuRealtimeRuntime", &INT),
            f("CpusetCpus", &STR),
            f("CpusetMems", &STR),
            f("Devices", &DEVICE_MAPPINGS),
            f("DeviceCgroupRules", &STRINGS),
            f("DeviceRequests", &DEVICE_REQUESTS),
            f("KernelMemory", &INT),
            f("KernelMemoryTCP", &INT),
            f("MemoryReservation", &INT),
            f("MemorySwap", &INT),
            f("MemorySwappiness", &INT),
            f("OomKillDisable", &BOOL),
            f("PidsLimit", &INT),
            f("Ulimits", &ULIMITS),
            f("CpuCount", &INT),
            f("CpuPercent", &INT),
            f("IOMaximumIOps", &UINT),
            f("IOMaximumBandwidth", &UINT),
        ]
    };
}

const RESOURCES_LEN: usize = resources_fields!().len();
const HOST_OWN_LEN: usize = 41;

static HOST_CONFIG_FIELDS: [Field; RESOURCES_LEN + HOST_OWN_LEN] = {
    let resources = resources_fields!();
    let own: [Field; HOST_OWN_LEN] = [
        f("Binds", &STRINGS),
        f("ContainerIDFile", &STR),
        f("LogConfig", &LOG_CONFIG),
        f("NetworkMode", &STR),
        f("PortBindings", &PORT_BINDINGS),
        f("RestartPolicy", &RESTART_POLICY),
        f("AutoRemove", &BOOL),
        f("VolumeDriver", &STR),
        f("VolumesFrom", &STRINGS),
        f("ConsoleSize", &UINTS),
        f("Annotations", &STRMAP),
        f("CapAdd", &STRSLICE),
        f("CapDrop", &STRSLICE),
        f("CgroupnsMode", &STR),
        f("Dns", &STRINGS),
        f("DnsOptions", &STRINGS),
        f("DnsSearch", &STRINGS),
        f("ExtraHosts", &STRINGS),
        f("GroupAdd", &STRINGS),
        f("IpcMode", &STR),
        f("Cgroup", &STR),
        f("Links", &STRINGS),
        f("OomScoreAdj", &INT),
        f("PidMode", &STR),
        f("Privileged", &BOOL),
        f("PublishAllPorts", &BOOL),
        f("ReadonlyRootfs", &BOOL),
        f("SecurityOpt", &STRINGS),
        f("StorageOpt", &STRMAP),
        f("Tmpfs", &STRMAP),
        f("UTSMode", &STR),
        f("UsernsMode", &STR),
        f("ShmSize", &INT),
        f("Sysctls", &STRMAP),
        f("Runtime", &STR),
        f("Isolation", &STR),
        f("Mounts", &MOUNTS),
        f("MaskedPaths", &STRINGS),
        f("ReadonlyPaths", &STRINGS),
        f("Init", &BOOL),
        f("Capabilities", &STRINGS),
    ];
    concat(resources, own)
};

const fn concat<const A: usize, const B: usize, const C: usize>(
    a: [Field; A],
    b: [Field; B],
) -> [Field; C] {
    assert!(A + B == C);
    let mut out = [f("", &EMPTY); C];
    let mut i = 0;
    while i < A {
        out[i] = a[i];
        i += 1;
    }
    let mut j = 0;
    while j < B {
        out[A + j] = b[j];
        j += 1;
    }
    out
}

/// `container.HostConfig`.
pub static HOST_CONFIG: Ty = Ty::Struct(&HOST_CONFIG_FIELDS);

static IPAM_CONFIG: Ty = Ty::Struct(&[
    f("IPv4Address", &STR),
    f("IPv6Address", &STR),
    f("LinkLocalIPs", &STRINGS),
]);

/// `network.EndpointSettings`.
pub static ENDPOINT_SETTINGS: Ty = Ty::Struct(&[
    f("IPAMConfig", &IPAM_CONFIG),
    f("Links", &STRINGS),
    f("Aliases", &STRINGS),
    f("DriverOpts", &STRMAP),
    f("GwPriority", &INT),
    f("MacAddress", &STR),
    f("NetworkID", &STR),
    f("EndpointID", &STR),
    f("Gateway", &STR),
    f("IPAddress", &STR),
    f("IPPrefixLen", &INT),
    f("IPv6Gateway", &STR),
    f("GlobalIPv6Address", &STR),
    f("GlobalIPv6PrefixLen", &INT),
    f("DNSNames", &STRINGS),
]);
static ENDPOINTS: Ty = Ty::Map(&ENDPOINT_SETTINGS);
static NETWORKING_CONFIG: Ty = Ty::Struct(&[f("EndpointsConfig", &ENDPOINTS)]);

static CREATE_FIELDS: [Field; CONFIG_LEN + 2] = concat(
    CONFIG_FIELDS,
    [
        f("HostConfig", &HOST_CONFIG),
        f("NetworkingConfig", &NETWORKING_CONFIG),
    ],
);
const CONFIG_LEN: usize = 25;

/// The body of `POST /containers/create`: `container.Config` with `HostConfig` and
/// `NetworkingConfig` beside its fields. Docker 20.10's decoder also embeds a whole second
/// `HostConfig` at the top level (deprecated, still read when no `HostConfig` member is sent), so
/// `{"Image":"x","Privileged":true}` makes a privileged container there: top-level host config
/// fields are unknown fields here and refused.
pub static CONTAINER_CREATE: Ty = Ty::Struct(&CREATE_FIELDS);

/// `container.ExecOptions` (exec create).
pub static EXEC_CREATE: Ty = Ty::Struct(&[
    // API 1.24's `ExecConfig` had it and docker-py still sends it; engines take the container
    // from the path and ignore it.
    f("Container", &STR),
    f("User", &STR),
    f("Privileged", &BOOL),
    f("Tty", &BOOL),
    f("ConsoleSize", &UINTS),
    f("AttachStdin", &BOOL),
    f("AttachStderr", &BOOL),
    f("AttachStdout", &BOOL),
    f("Detach", &BOOL),
    f("DetachKeys", &STR),
    f("Env", &STRINGS),
    f("WorkingDir", &STR),
    f("Cmd", &STRSLICE),
]);

/// `container.ExecStartOptions` (exec start).
pub static EXEC_START: Ty = Ty::Struct(&[
    f("Detach", &BOOL),
    f("Tty", &BOOL),
    f("ConsoleSize", &UINTS),
]);

static UPDATE_FIELDS: [Field; RESOURCES_LEN + 1] = {
    let resources = resources_fields!();
    concat(resources, [f("RestartPolicy", &RESTART_POLICY)])
};

/// `container.UpdateConfig` (container update).
pub static CONTAINER_UPDATE: Ty = Ty::Struct(&UPDATE_FIELDS);

/// `volume.CreateOptions` (volume create). `ClusterVolumeSpec` (swarm) is left out on purpose.
pub static VOLUME_CREATE: Ty = Ty::Struct(&[
    f("Name", &STR),
    f("Driver", &STR),
    f("DriverOpts", &STRMAP),
    f("Labels", &STRMAP),
]);

static IPAM_POOL: Ty = Ty::Struct(&[
    f("Subnet", &STR),
    f("IPRange", &STR),
    f("Gateway", &STR),
    f("AuxiliaryAddresses", &STRMAP),
]);
static IPAM_POOLS: Ty = Ty::Array(&IPAM_POOL);
static IPAM: Ty = Ty::Struct(&[
    f("Driver", &STR),
    f("Config", &IPAM_POOLS),
    f("Options", &STRMAP),
]);
static CONFIG_REFERENCE: Ty = Ty::Struct(&[f("Network", &STR)]);

/// `network.CreateRequest` (network create).
pub static NETWORK_CREATE: Ty = Ty::Struct(&[
    f("Name", &STR),
    f("CheckDuplicate", &BOOL),
    f("Driver", &STR),
    f("Scope", &STR),
    f("EnableIPv4", &BOOL),
    f("EnableIPv6", &BOOL),
    f("IPAM", &IPAM),
    f("Internal", &BOOL),
    f("Attachable", &BOOL),
    f("Ingress", &BOOL),
    f("ConfigOnly", &BOOL),
    f("ConfigFrom", &CONFIG_REFERENCE),
    f("Options", &STRMAP),
    f("Labels", &STRMAP),
]);

/// `network.ConnectOptions`.
pub static NETWORK_CONNECT: Ty = Ty::Struct(&[
    f("Container", &STR),
    f("EndpointConfig", &ENDPOINT_SETTINGS),
]);

/// `network.DisconnectOptions`.
pub static NETWORK_DISCONNECT: Ty = Ty::Struct(&[f("Container", &STR), f("Force", &BOOL)]);

/// `registry.AuthConfig` (login check).
pub static AUTH: Ty = Ty::Struct(&[
    f("username", &STR),
    f("password", &STR),
    f("auth", &STR),
    f("email", &STR),
    f("serveraddress", &STR),
    f("identitytoken", &STR),
    f("registrytoken", &STR),
]);

/// Why a body does not fit its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError {
    /// Where, as a dotted path of canonical field names (`HostConfig.CapAdd[2]`).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for SchemaError {}

/// Check `value` against `ty` and return its canonical form (see the module docs).
///
/// # Errors
/// The first member that collides, is unknown, or has the wrong type.
pub fn check(value: &Value, ty: &Ty) -> Result<Value, SchemaError> {
    check_owned(value.clone(), ty)
}

/// [`check`] taking the parsed value, so its strings move into the canonical form instead of
/// being copied.
///
/// # Errors
/// As [`check`].
pub fn check_owned(value: Value, ty: &Ty) -> Result<Value, SchemaError> {
    let mut path = String::new();
    match check_at(value, ty, &mut path)? {
        Some(Value::Null) | None => Err(SchemaError {
            path: String::new(),
            message: "the body is null".to_owned(),
        }),
        Some(v) => Ok(v),
    }
}

fn fail(path: &str, message: String) -> SchemaError {
    SchemaError {
        path: path.to_owned(),
        message,
    }
}

/// Whether a JSON key reaches the field named `name` under Go's matching.
fn key_matches(key: &str, name: &str) -> bool {
    // Field names are ASCII: an ASCII key matches only at the same length, compared without
    // case; only keys with other characters (U+017F, U+212A fold to ASCII) need the slow way.
    if key.is_ascii() {
        return key.len() == name.len() && key.eq_ignore_ascii_case(name);
    }
    let mut name_bytes = name.bytes();
    for c in key.chars() {
        let folded = match c {
            '\u{17F}' => 'S',
            '\u{212A}' => 'K',
            c => c.to_ascii_uppercase(),
        };
        match name_bytes.next() {
            Some(n) if folded.is_ascii() && n.to_ascii_uppercase() == folded as u8 => {}
            _ => return false,
        }
    }
    name_bytes.next().is_none()
}

/// A key as it may appear in a path: escaped, and cut short (without building a String).
struct Shown<'a>(&'a str);

impl std::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cut = self
            .0
            .char_indices()
            .nth(64)
            .map_or(self.0.len(), |(i, _)| i);
        if cut < self.0.len() {
            write!(f, "{:?}", format!("{}…", &self.0[..cut]))
        } else {
            write!(f, "{:?}", self.0)
        }
    }
}

/// A key as it may appear in a message: escaped, and cut short.
fn shown(key: &str) -> String {
    let mut s: String = key.chars().take(64).collect();
    if s.len() < key.len() {
        s.push('…');
    }
    format!("{s:?}")
}

fn check_at(value: Value, ty: &Ty, path: &mut String) -> Result<Option<Value>, SchemaError> {
    if matches!(value, Value::Null) {
        // Kept, not dropped: to Go a `null` member is not always the same as no member (it
        // allocates the embedded struct that holds the field, for one).
        return Ok(Some(Value::Null));
    }
    let kind = value.kind();
    let wrong =
        |path: &str, expected: &str| fail(path, format!("expected {expected}, found {kind}"));
    let checked = match ty {
        Ty::Str => match value {
            Value::String(_) => value,
            _ => return Err(wrong(path, "a string")),
        },
        Ty::Bool => match value {
            Value::Bool(_) => value,
            _ => return Err(wrong(path, "a boolean")),
        },
        Ty::Int(bits) | Ty::Uint(bits) => {
            let Value::Number(text) = &value else {
                return Err(wrong(path, "an integer"));
            };
            let signed = matches!(ty, Ty::Int(_));
            if !integer_fits(text, signed, *bits) {
                return Err(fail(
                    path,
                    format!(
                        "{text} is not an {} integer of {bits} bits",
                        if signed { "signed" } else { "unsigned" }
                    ),
                ));
            }
            value
        }
        Ty::StrSlice => match value {
            Value::String(_) => value,
            Value::Array(_) => return check_at(value, &STRINGS, path),
            _ => return Err(wrong(path, "a string or an array of strings")),
        },
        Ty::Array(element) => {
            let Value::Array(items) = value else {
                return Err(wrong(path, "an array"));
            };
            let mut out = Vec::with_capacity(items.len());
            let base = path.len();
            for (i, item) in items.into_iter().enumerate() {
                let _ = write!(path, "[{i}]");
                if matches!(item, Value::Null) {
                    return Err(fail(path, "null is not allowed in an array".to_owned()));
                }
                if let Some(v) = check_at(item, element, path)? {
                    out.push(v);
                }
                path.truncate(base);
            }
            Value::Array(out)
        }
        Ty::Map(element) => {
            let Value::Object(members) = value else {
                return Err(wrong(path, "an object"));
            };
            let mut out: Vec<(String, Value)> = Vec::with_capacity(members.len());
            let base = path.len();
            for (key, item) in members {
                let _ = write!(path, "[{}]", Shown(&key));
                if out.iter().any(|(k, _)| *k == key) {
                    return Err(fail(path, "duplicate key".to_owned()));
                }
                if matches!(item, Value::Null) {
                    return Err(fail(path, "null is not allowed as a map value".to_owned()));
                }
                if let Some(v) = check_at(item, element, path)? {
                    out.push((key, v));
                }
                path.truncate(base);
            }
            Value::Object(out)
        }
        Ty::Empty => match value {
            Value::Object(members) if members.is_empty() => Value::Object(Vec::new()),
            _ => return Err(wrong(path, "an empty object `{}`")),
        },
        Ty::Struct(fields) => {
            let Value::Object(members) = value else {
                return Err(wrong(path, "an object"));
            };
            // For each field, the key that set it (for the collision message).
            let mut seen: Vec<Option<std::borrow::Cow<'static, str>>> = vec![None; fields.len()];
            let mut out: Vec<(String, Value)> = Vec::with_capacity(members.len());
            let base = path.len();
            for (key, item) in members {
                let found = if key.is_ascii() {
                    // The common case, without per-character folding: same length, same
                    // letters whatever their case.
                    fields.iter().position(|fd| {
                        fd.name.len() == key.len() && fd.name.eq_ignore_ascii_case(&key)
                    })
                } else {
                    fields.iter().position(|fd| key_matches(&key, fd.name))
                };
                let Some(index) = found else {
                    let at = if path.is_empty() {
                        String::new()
                    } else {
                        path.clone()
                    };
                    return Err(fail(&at, format!("unknown field {}", shown(&key))));
                };
                let field = &fields[index];
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(field.name);
                if let Some(previous) = &seen[index] {
                    return Err(fail(
                        path,
                        format!(
                            "keys {} and {} both set this field (the engine would keep only the last)",
                            shown(previous),
                            shown(&key)
                        ),
                    ));
                }
                if let Some(v) = check_at(item, field.ty, path)? {
                    // The key is usually spelled as the field already: reuse its allocation.
                    if key == field.name {
                        out.push((key, v));
                        seen[index] = Some(std::borrow::Cow::Borrowed(field.name));
                        path.truncate(base);
                        continue;
                    }
                    out.push((field.name.to_owned(), v));
                }
                seen[index] = Some(std::borrow::Cow::Owned(key));
                path.truncate(base);
            }
            Value::Object(out)
        }
    };
    Ok(Some(checked))
}

/// Whether `text` (a JSON number) is an integer Go's `strconv.ParseInt`/`ParseUint` accepts for
/// a field of this many bits.
fn integer_fits(text: &str, signed: bool, bits: u32) -> bool {
    if text.contains(['.', 'e', 'E']) {
        return false;
    }
    if signed {
        let Ok(n) = text.parse::<i64>() else {
            return false;
        };
        bits >= 64 || (n >= -(1i64 << (bits - 1)) && n < (1i64 << (bits - 1)))
    } else {
        if text.starts_with('-') {
            return false;
        }
        let Ok(n) = text.parse::<u64>() else {
            return false;
        };
        bits >= 64 || n < (1u64 << bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{go_fold, parse};

    fn run(body: &str, ty: &Ty) -> Result<String, String> {
        let value = parse(body.as_bytes()).map_err(|e| e.to_string())?;
        check(&value, ty)
            .map(|v| String::from_utf8(v.to_json()).unwrap())
            .map_err(|e| e.to_string())
    }

    /// Regression: docker-py's exec create sends API 1.24's `Container` field, and every
    /// `exec_run` failed with 400.
    #[test]
    fn docker_py_exec_create_body_is_taken() {
        let body = r#"{"AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"Tty":false,"Privileged":false,"User":"","Cmd":["sh","-c","exit 3"],"Container":"abc"}"#;
        let forwarded = run(body, &EXEC_CREATE).unwrap();
        assert!(forwarded.contains(r#""Container":"abc""#), "{forwarded}");
    }

    #[test]
    fn field_tables_have_no_two_names_that_fold_alike() {
        for ty in [
            &CONTAINER_CREATE,
            &HOST_CONFIG,
            &CONTAINER_UPDATE,
            &EXEC_CREATE,
            &NETWORK_CREATE,
        ] {
            let Ty::Struct(fields) = ty else { panic!() };
            for (i, a) in fields.iter().enumerate() {
                assert!(!a.name.is_empty());
                for b in &fields[i + 1..] {
                    assert_ne!(
                        go_fold(a.name),
                        go_fold(b.name),
                        "{} and {}",
                        a.name,
                        b.name
                    );
                }
            }
        }
        let Ty::Struct(fields) = &CONTAINER_CREATE else {
            panic!()
        };
        assert_eq!(fields.len(), 27);
        assert_eq!(fields[CONFIG_LEN - 1].name, "Shell");
    }

    #[test]
    fn canonicalises_key_spelling_and_keeps_nulls() {
        assert_eq!(
            run(
                r#"{"image":"x","hostconfig":{"PRIVILEGED":false,"capAdd":null},"Cmd":"sh"}"#,
                &CONTAINER_CREATE
            ),
            Ok(
                r#"{"Image":"x","HostConfig":{"Privileged":false,"CapAdd":null},"Cmd":"sh"}"#
                    .to_owned()
            )
        );
        assert_eq!(
            run("{\"\u{17F}ysctls\":{\"a\":\"b\"}}", &HOST_CONFIG),
            Ok(r#"{"Sysctls":{"a":"b"}}"#.to_owned())
        );
    }

    #[test]
    fn refuses_keys_that_collide_under_go_folding() {
        let e = run(
            r#"{"HostConfig":{"Privileged":false,"privileged":true}}"#,
            &CONTAINER_CREATE,
        )
        .unwrap_err();
        assert!(
            e.starts_with("HostConfig.Privileged: keys \"Privileged\" and \"privileged\""),
            "{e}"
        );
        assert!(run("{\"CapAdd\":[],\"C\u{212A}\":1}", &HOST_CONFIG).is_err());
        assert!(run(
            "{\"Sysctls\":{},\"\u{17F}ysctls\":{\"kernel.x\":\"1\"}}",
            &HOST_CONFIG
        )
        .unwrap_err()
        .contains("both set"));
        // Escapes are decoded before matching.
        assert!(run(
            r#"{"Privileged":false,"Privil\u0065ged":true}"#,
            &HOST_CONFIG
        )
        .is_err());
    }

    #[test]
    fn refuses_unknown_fields_naming_them() {
        assert_eq!(
            run(r#"{"Image":"x","Privileged":true}"#, &CONTAINER_CREATE),
            Err("unknown field \"Privileged\"".to_owned())
        );
        assert_eq!(
            run(
                r#"{"HostConfig":{"Mounts":[{"Type":"bind","Bogus":1}]}}"#,
                &CONTAINER_CREATE
            ),
            Err("HostConfig.Mounts[0]: unknown field \"Bogus\"".to_owned())
        );
        // Dotless i does not fold to i.
        assert!(run("{\"Pr\u{131}vileged\":true}", &HOST_CONFIG).is_err());
    }

    #[test]
    fn types_are_checked_like_go() {
        assert!(run(r#"{"Privileged":"true"}"#, &HOST_CONFIG).is_err());
        assert!(run(r#"{"Memory":1.0}"#, &HOST_CONFIG).is_err());
        assert!(run(r#"{"Memory":1e3}"#, &HOST_CONFIG).is_err());
        assert!(run(r#"{"Memory":9223372036854775808}"#, &HOST_CONFIG).is_err());
        assert!(run(r#"{"Memory":-9223372036854775808}"#, &HOST_CONFIG).is_ok());
        assert!(run(r#"{"BlkioWeight":65536}"#, &HOST_CONFIG).is_err());
        assert!(run(r#"{"BlkioWeight":65535}"#, &HOST_CONFIG).is_ok());
        assert!(run(r#"{"IOMaximumIOps":-1}"#, &HOST_CONFIG).is_err());
        assert!(run(r#"{"CapAdd":"NET_ADMIN"}"#, &HOST_CONFIG).is_ok());
        assert!(run(r#"{"CapAdd":["A",null]}"#, &HOST_CONFIG).is_err());
        assert!(run(r#"{"Binds":"/:/h"}"#, &HOST_CONFIG).is_err());
        assert!(run(r#"{"Labels":{"a":"1","a":"2"}}"#, &CONFIG).is_err());
        assert!(run(r#"{"Labels":{"a":"1","A":"2"}}"#, &CONFIG).is_ok());
        assert!(run(r#"{"ExposedPorts":{"80/tcp":{"x":1}}}"#, &CONFIG).is_err());
        assert!(run(r#"{"ExposedPorts":{"80/tcp":{}}}"#, &CONFIG).is_ok());
        assert!(run("null", &CONFIG).is_err());
        assert!(run("[]", &CONFIG).is_err());
    }
}
