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

/// [`check`] taking the parsed value, which is checked and made canonical in place: nothing is
/// copied or rebuilt, only keys not spelled as their field are rewritten.
///
/// # Errors
/// As [`check`].
pub fn check_owned(mut value: Value, ty: &Ty) -> Result<Value, SchemaError> {
    if matches!(value, Value::Null) {
        return Err(SchemaError {
            path: String::new(),
            message: "the body is null".to_owned(),
        });
    }
    check_at(&mut value, ty, &Path::Root)?;
    Ok(value)
}

/// Where a value is, as a chain of steps up to the body; written out only for an error.
#[derive(Clone, Copy)]
enum Path<'a> {
    /// The body itself.
    Root,
    /// A struct field, by its canonical name.
    Field(&'a Path<'a>, &'static str),
    /// An array element.
    Index(&'a Path<'a>, usize),
    /// A map entry.
    Key(&'a Path<'a>, &'a str),
}

impl Path<'_> {
    /// The dotted form of [`SchemaError::path`] (`HostConfig.Mounts[0]`, `Labels["a"]`).
    fn render(&self, out: &mut String) {
        match self {
            Path::Root => {}
            Path::Field(parent, name) => {
                parent.render(out);
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(name);
            }
            Path::Index(parent, i) => {
                parent.render(out);
                let _ = write!(out, "[{i}]");
            }
            Path::Key(parent, key) => {
                parent.render(out);
                let _ = write!(out, "[{}]", Shown(key));
            }
        }
    }
}

fn fail(path: &Path<'_>, message: String) -> SchemaError {
    let mut rendered = String::new();
    path.render(&mut rendered);
    SchemaError {
        path: rendered,
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

/// The field `key` reaches, searching from `hint` on and then from the start: bodies list
/// fields in the order of the Go struct, which the tables follow, leaving out some, so the field
/// is usually at or a little after the one after the previous key's. No two names of a table
/// fold alike (a test checks every table), so at most one field matches and where the search
/// starts cannot change the answer.
fn find_field(fields: &[Field], key: &str, hint: usize) -> Option<usize> {
    let hint = hint.min(fields.len());
    let (after, before) = (&fields[hint..], &fields[..hint]);
    if key.is_ascii() {
        // The common case, without per-character folding: same length, same letters whatever
        // their case (length and first letter first: most fields differ there).
        let first = key.as_bytes().first()?.to_ascii_uppercase();
        let matches = |fd: &Field| {
            fd.name.len() == key.len()
                && fd.name.as_bytes().first().map(u8::to_ascii_uppercase) == Some(first)
                && (fd.name == key || fd.name.eq_ignore_ascii_case(key))
        };
        after
            .iter()
            .position(matches)
            .map(|i| hint + i)
            .or_else(|| before.iter().position(matches))
    } else {
        let matches = |fd: &Field| key_matches(key, fd.name);
        after
            .iter()
            .position(matches)
            .map(|i| hint + i)
            .or_else(|| before.iter().position(matches))
    }
}

/// The fields of a struct already set by a key.
enum Seen {
    /// Up to 128 fields, one bit each (every table here).
    Bits(u128),
    /// Larger tables.
    Flags(Vec<bool>),
}

impl Seen {
    fn new(fields: usize) -> Self {
        if fields <= 128 {
            Seen::Bits(0)
        } else {
            Seen::Flags(vec![false; fields])
        }
    }

    /// Marks field `index` as set; whether it was already.
    fn set(&mut self, index: usize) -> bool {
        match self {
            Seen::Bits(bits) => {
                let bit = 1u128 << index;
                let was = *bits & bit != 0;
                *bits |= bit;
                was
            }
            Seen::Flags(flags) => std::mem::replace(&mut flags[index], true),
        }
    }
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

/// Checks a value that is not `null` (a `null` member is kept as it is: to Go it is not always
/// the same as no member, it allocates the embedded struct that holds the field, for one), and
/// respells its struct keys as their fields.
fn check_at(value: &mut Value, ty: &Ty, path: &Path<'_>) -> Result<(), SchemaError> {
    if matches!(value, Value::Null) {
        return Ok(());
    }
    let kind = value.kind();
    let wrong =
        |path: &Path<'_>, expected: &str| fail(path, format!("expected {expected}, found {kind}"));
    match ty {
        Ty::Str => match value {
            Value::String(_) => Ok(()),
            _ => Err(wrong(path, "a string")),
        },
        Ty::Bool => match value {
            Value::Bool(_) => Ok(()),
            _ => Err(wrong(path, "a boolean")),
        },
        Ty::Int(bits) | Ty::Uint(bits) => {
            let Value::Number(text) = value else {
                return Err(wrong(path, "an integer"));
            };
            let signed = matches!(ty, Ty::Int(_));
            if integer_fits(text, signed, *bits) {
                Ok(())
            } else {
                Err(fail(
                    path,
                    format!(
                        "{text} is not an {} integer of {bits} bits",
                        if signed { "signed" } else { "unsigned" }
                    ),
                ))
            }
        }
        Ty::StrSlice => match value {
            Value::String(_) => Ok(()),
            Value::Array(_) => check_at(value, &STRINGS, path),
            _ => Err(wrong(path, "a string or an array of strings")),
        },
        Ty::Array(element) => {
            let Value::Array(items) = value else {
                return Err(wrong(path, "an array"));
            };
            for (i, item) in items.iter_mut().enumerate() {
                let here = Path::Index(path, i);
                if matches!(item, Value::Null) {
                    return Err(fail(&here, "null is not allowed in an array".to_owned()));
                }
                check_at(item, element, &here)?;
            }
            Ok(())
        }
        Ty::Map(element) => {
            let Value::Object(members) = value else {
                return Err(wrong(path, "an object"));
            };
            for i in 0..members.len() {
                let (before, rest) = members.split_at_mut(i);
                let Some((key, item)) = rest.first_mut() else {
                    break;
                };
                let here = Path::Key(path, key);
                if before.iter().any(|(k, _)| k == key) {
                    return Err(fail(&here, "duplicate key".to_owned()));
                }
                if matches!(item, Value::Null) {
                    return Err(fail(&here, "null is not allowed as a map value".to_owned()));
                }
                check_at(item, element, &here)?;
            }
            Ok(())
        }
        Ty::Empty => match value {
            Value::Object(members) if members.is_empty() => Ok(()),
            _ => Err(wrong(path, "an empty object `{}`")),
        },
        Ty::Struct(fields) => {
            let Value::Object(members) = value else {
                return Err(wrong(path, "an object"));
            };
            let mut seen = Seen::new(fields.len());
            let mut hint = 0;
            // Keys are respelled once all members passed, so a collision message can still show
            // the earlier key as it was written.
            let mut respell = false;
            for i in 0..members.len() {
                let (before, rest) = members.split_at_mut(i);
                let Some((key, item)) = rest.first_mut() else {
                    break;
                };
                let Some(index) = find_field(fields, key, hint) else {
                    return Err(fail(path, format!("unknown field {}", shown(key))));
                };
                hint = index + 1;
                let field = &fields[index];
                let here = Path::Field(path, field.name);
                if seen.set(index) {
                    let previous = before
                        .iter()
                        .find(|(k, _)| key_matches(k, field.name))
                        .map_or(field.name, |(k, _)| k.as_str());
                    return Err(fail(
                        &here,
                        format!(
                            "keys {} and {} both set this field (the engine would keep only the last)",
                            shown(previous),
                            shown(key)
                        ),
                    ));
                }
                check_at(item, field.ty, &here)?;
                respell |= *key != field.name;
            }
            if respell {
                for (key, _) in members.iter_mut() {
                    if let Some(field) = find_field(fields, key, 0).map(|i| &fields[i]) {
                        if *key != field.name {
                            key.clear();
                            key.push_str(field.name);
                        }
                    }
                }
            }
            Ok(())
        }
    }
}

/// Whether `text` (a JSON number) is an integer Go's `strconv.ParseInt`/`ParseUint` accepts for
/// a field of this many bits.
fn integer_fits(text: &str, signed: bool, bits: u32) -> bool {
    // The common case, a few digits and no sign (the CLI sends mostly `0`): no parse needed.
    // At least 0 and below 10^15, so it fits every 64-bit type.
    if (1..=15).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit()) {
        let n = text.bytes().fold(0u64, |n, b| n * 10 + u64::from(b - b'0'));
        let limit = if signed { bits - 1 } else { bits };
        return limit >= 64 || n < (1u64 << limit);
    }
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

    /// Every struct table reachable from `ty`.
    fn tables(ty: &'static Ty, out: &mut Vec<&'static [Field]>) {
        match ty {
            Ty::Array(element) | Ty::Map(element) => tables(element, out),
            Ty::Struct(fields) if !out.iter().any(|t| std::ptr::eq(*t, *fields)) => {
                out.push(fields);
                for field in *fields {
                    tables(field.ty, out);
                }
            }
            _ => {}
        }
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
        // `find_field` relies on this: at most one field matches a key, wherever the search
        // starts.
        let mut all = Vec::new();
        for ty in [
            &CONTAINER_CREATE,
            &CONFIG,
            &HOST_CONFIG,
            &CONTAINER_UPDATE,
            &EXEC_CREATE,
            &EXEC_START,
            &VOLUME_CREATE,
            &NETWORK_CREATE,
            &NETWORK_CONNECT,
            &NETWORK_DISCONNECT,
            &ENDPOINT_SETTINGS,
            &AUTH,
        ] {
            tables(ty, &mut all);
        }
        assert!(all.len() > 20);
        for fields in all {
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
    fn collisions_name_both_keys_as_written() {
        // The first key is respelled only once the whole object passed: the message shows it
        // as the body wrote it.
        assert_eq!(
            run(
                r#"{"Image":"x","HostConfig":{"privileged":false,"Memory":0,"PRIVILEGED":true}}"#,
                &CONTAINER_CREATE
            ),
            Err("HostConfig.Privileged: keys \"privileged\" and \"PRIVILEGED\" both set this field (the engine would keep only the last)".to_owned())
        );
        assert_eq!(
            run("{\"\u{17F}ysctls\":{},\"sysctls\":{}}", &HOST_CONFIG),
            Err("Sysctls: keys \"\u{17F}ysctls\" and \"sysctls\" both set this field (the engine would keep only the last)".to_owned())
        );
    }

    #[test]
    fn fields_are_found_in_any_order_and_respelled_in_place() {
        assert_eq!(
            run(
                r#"{"shell":["sh"],"Image":"x","hostname":"h","HostConfig":{"CapAdd":["A"],"binds":["/a:/b"],"Capabilities":null,"cpushares":2}}"#,
                &CONTAINER_CREATE
            ),
            Ok(r#"{"Shell":["sh"],"Image":"x","Hostname":"h","HostConfig":{"CapAdd":["A"],"Binds":["/a:/b"],"Capabilities":null,"CpuShares":2}}"#.to_owned())
        );
        assert_eq!(
            run(r#"{"":1}"#, &HOST_CONFIG),
            Err("unknown field \"\"".to_owned())
        );
    }

    #[test]
    fn integers_at_the_bounds() {
        for (body, ok) in [
            (r#"{"BlkioWeight":65535}"#, true),
            (r#"{"BlkioWeight":65536}"#, false),
            // Go's ParseUint refuses a sign, even on zero.
            (r#"{"BlkioWeight":-0}"#, false),
            (r#"{"Memory":-0}"#, true),
            (r#"{"BlkioWeight":-1}"#, false),
            (r#"{"Memory":999999999999999}"#, true),
            (r#"{"Memory":9223372036854775807}"#, true),
            (r#"{"Memory":-9223372036854775809}"#, false),
            (r#"{"IOMaximumIOps":18446744073709551615}"#, true),
            (r#"{"IOMaximumIOps":18446744073709551616}"#, false),
        ] {
            assert_eq!(run(body, &HOST_CONFIG).is_ok(), ok, "{body}");
        }
        let mount = |mode: &str| format!(r#"{{"Mounts":[{{"TmpfsOptions":{{"Mode":{mode}}}}}]}}"#);
        assert!(run(&mount("4294967295"), &HOST_CONFIG).is_ok());
        assert_eq!(
            run(&mount("4294967296"), &HOST_CONFIG),
            Err(
                "Mounts[0].TmpfsOptions.Mode: 4294967296 is not an unsigned integer of 32 bits"
                    .to_owned()
            )
        );
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
