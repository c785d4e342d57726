//! The engine Stockade runs itself: a private, hardened `dockerd` with its own data, exec root,
//! socket and bridge, so it can run beside any other engine on the host.

use crate::{client, EngineError};
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::net::Ipv4Addr;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Where everything of one managed engine lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The state directory (data, logs, config).
    pub state_dir: PathBuf,
    /// The engine's socket (root only).
    pub engine_socket: PathBuf,
    /// The gateway's socket (the users').
    pub gateway_socket: PathBuf,
}

impl Layout {
    /// Everything under `state_dir`, sockets included (`--state-dir D`).
    #[must_use]
    pub fn in_state_dir(state_dir: &Path) -> Self {
        Self {
            state_dir: state_dir.to_owned(),
            engine_socket: state_dir.join("engine.sock"),
            gateway_socket: state_dir.join("docker.sock"),
        }
    }

    /// The host-wide layout: state in `/var/lib/stockade`, sockets in `/run/stockade`.
    #[must_use]
    pub fn system() -> Self {
        Self {
            state_dir: PathBuf::from("/var/lib/stockade"),
            engine_socket: PathBuf::from("/run/stockade/engine.sock"),
            gateway_socket: PathBuf::from("/run/stockade/docker.sock"),
        }
    }

    /// The engine's data root.
    #[must_use]
    pub fn data_root(&self) -> PathBuf {
        self.state_dir.join("data")
    }
    /// The engine's exec root (containerd's sockets live here, so keep the path short).
    #[must_use]
    pub fn exec_root(&self) -> PathBuf {
        self.state_dir.join("exec")
    }
    /// The generated daemon.json.
    #[must_use]
    pub fn daemon_json(&self) -> PathBuf {
        self.state_dir.join("daemon.json")
    }
    /// dockerd's pid file.
    #[must_use]
    pub fn dockerd_pidfile(&self) -> PathBuf {
        self.state_dir.join("dockerd.pid")
    }
    /// dockerd's log.
    #[must_use]
    pub fn dockerd_log(&self) -> PathBuf {
        self.state_dir.join("dockerd.log")
    }
    fn lock_file(&self) -> PathBuf {
        self.state_dir.join("stockade.lock")
    }
    /// The name of this engine's bridge: derived from the state directory, so two instances never
    /// share one, and at most 15 characters (the kernel's limit).
    #[must_use]
    pub fn bridge_name(&self) -> String {
        // FNV-1a: stable across runs and builds, unlike std's hasher.
        let mut hash: u32 = 0x811c_9dc5;
        for byte in self.state_dir.as_os_str().as_encoded_bytes() {
            hash ^= u32::from(*byte);
            hash = hash.wrapping_mul(0x0100_0193);
        }
        format!("stk{hash:08x}")
    }
}

/// An IPv4 subnet given as the bridge's address and prefix, `10.213.0.1/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BridgeSubnet {
    /// The bridge's own address (the containers' gateway).
    pub address: Ipv4Addr,
    /// The prefix length, 8 to 30.
    pub prefix: u8,
}

impl std::str::FromStr for BridgeSubnet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (address, prefix) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not ADDRESS/PREFIX, e.g. 10.213.0.1/24"))?;
        let address: Ipv4Addr = address
            .parse()
            .map_err(|_| format!("{address:?} is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| (8..=30).contains(p))
            .ok_or_else(|| format!("prefix {prefix:?} must be a number from 8 to 30"))?;
        let subnet = Self { address, prefix };
        if address == subnet.network() || address == subnet.broadcast() {
            return Err(format!(
                "{address} is the network or broadcast address of /{prefix}; use a host address such as {}",
                Ipv4Addr::from(u32::from(subnet.network()) + 1)
            ));
        }
        Ok(subnet)
    }
}

impl std::fmt::Display for BridgeSubnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

impl BridgeSubnet {
    fn mask(self) -> u32 {
        u32::MAX << (32 - u32::from(self.prefix))
    }
    /// The network address.
    #[must_use]
    pub fn network(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.address) & self.mask())
    }
    fn broadcast(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.address) | !self.mask())
    }
    /// Whether the two subnets share any address.
    #[must_use]
    pub fn overlaps(self, other: Self) -> bool {
        let mask = self.mask() & other.mask();
        u32::from(self.address) & mask == u32::from(other.address) & mask
    }
}

/// How to run the managed engine.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Where its files and sockets go.
    pub layout: Layout,
    /// The bridge's address and subnet.
    pub bridge_subnet: BridgeSubnet,
    /// Address pool for user-defined networks, `base/prefix` split into `/size` networks.
    pub address_pool: (String, u8),
    /// The dockerd binary.
    pub dockerd: PathBuf,
    /// Extra environment for dockerd (e.g. proxies for its own pulls).
    pub env: Vec<(String, String)>,
    /// What the admin policy adds to daemon.json.
    pub policy: PolicyOptions,
    /// How long dockerd may take to answer `/_ping` after it starts.
    pub start_timeout: Duration,
}

/// What the admin policy adds to the managed engine's configuration.
#[derive(Debug, Clone, Default)]
pub struct PolicyOptions {
    /// `linuxVM.dockerDaemonOptions`, already checked by the policy; merged *under* the
    /// hardening keys, which win whatever it says.
    pub daemon_options: serde_json::Map<String, serde_json::Value>,
    /// `exposeDockerAPIOnTCP2375`, true and locked by the admin: listen on 127.0.0.1:2375 too
    /// (unauthenticated, as Docker Desktop does; the gateway is then bypassable on this host).
    pub expose_tcp_2375: bool,
}

/// The daemon.json of the managed engine: the policy's daemon options, then every hardening key
/// on top (see the comments), so no option can override one.
#[must_use]
pub fn daemon_config(
    layout: &Layout,
    bridge: &str,
    pool: &(String, u8),
    policy: &PolicyOptions,
) -> serde_json::Value {
    let mut merged = policy.daemon_options.clone();
    // Keys the admin may set; defaults here, the policy's value wins.
    let defaults = serde_json::json!({
        "default-address-pools": [{"base": pool.0, "size": pool.1}],
        "icc": true,
        "live-restore": false,
        "shutdown-timeout": 10,
        "experimental": false,
        "features": {"buildkit": true},
        "log-driver": "json-file",
        "log-opts": {"max-size": "50m", "max-file": "3"}
    });
    if let serde_json::Value::Object(defaults) = defaults {
        for (key, value) in defaults {
            merged.entry(key).or_insert(value);
        }
    }
    let mut hosts = vec![format!("unix://{}", layout.engine_socket.display())];
    if policy.expose_tcp_2375 {
        hosts.push("tcp://127.0.0.1:2375".to_owned());
    }
    let hardening = serde_json::json!({
        // Container root is an unprivileged subordinate uid on the host.
        "userns-remap": "default",
        // Only the private socket; no TCP listener unless the admin locked
        // exposeDockerAPIOnTCP2375 on (an open 2375 is the most common Docker host takeover).
        "hosts": hosts,
        // The engine socket is root:root 0660: nobody in the `docker` group can walk around the
        // gateway.
        "group": "root",
        "data-root": layout.data_root(),
        "exec-root": layout.exec_root(),
        "pidfile": layout.dockerd_pidfile(),
        // A bridge of our own, never docker0, so the engine can run beside another one.
        "bridge": bridge,
        // No iptables/NAT of the engine's own: containers have no route out unless Stockade's
        // egress rules give them one (air-gapped by default), and the host's other engines'
        // chains are left alone.
        "iptables": false,
        "ip-masq": false,
        "ip-forward": false,
        // setuid binaries in containers cannot raise privileges.
        "no-new-privileges": true,
        // The engine's BuildKit grants `RUN --network=host` unless told not to, and the
        // Dockerfile travels inside the opaque BuildKit session where the gateway cannot read
        // it: the entitlement is switched off here, where no request can switch it back on.
        "builder": {"Entitlements": {"network-host": false, "security-insecure": false}},
    });
    if let serde_json::Value::Object(hardening) = hardening {
        for (key, value) in hardening {
            merged.insert(key, value);
        }
    }
    // Options that would undo isolation for every container are dropped even if a policy
    // check was somehow skipped.
    for key in [
        "runtimes",
        "default-runtime",
        "tls",
        "tlsverify",
        "bip",
        "ip6tables",
    ] {
        merged.remove(key);
    }
    serde_json::Value::Object(merged)
}

/// A running managed engine. Dropping it without [`ManagedEngine::stop`] kills dockerd.
#[derive(Debug)]
pub struct ManagedEngine {
    settings: EngineSettings,
    child: Option<tokio::process::Child>,
    bridge: String,
    _lock: Flock<File>,
}

impl ManagedEngine {
    /// Takes the state directory, writes daemon.json, creates the bridge and starts dockerd, then
    /// waits until it answers `/_ping`.
    ///
    /// # Errors
    /// [`EngineError`] naming what failed: the state directory held by another instance, the
    /// subnet in use, dockerd failing to start (with the end of its log).
    pub async fn start(settings: EngineSettings) -> Result<Self, EngineError> {
        let layout = &settings.layout;
        create_dir(&layout.state_dir, 0o711)?;
        if let Some(parent) = layout.engine_socket.parent() {
            create_dir(parent, 0o755)?;
        }
        if let Some(parent) = layout.gateway_socket.parent() {
            create_dir(parent, 0o755)?;
        }
        let lock = take_lock(&layout.lock_file())?;
        // Mounts left by an instance that was killed (we hold the lock: nothing else uses them).
        unmount_under(&layout.state_dir);
        let bridge = layout.bridge_name();
        let config = daemon_config(layout, &bridge, &settings.address_pool, &settings.policy);
        let rendered = serde_json::to_vec_pretty(&config).map_err(|e| EngineError::Io {
            path: layout.daemon_json(),
            source: std::io::Error::other(e),
        })?;
        write_file(&layout.daemon_json(), &rendered, 0o600)?;
        setup_bridge(&bridge, settings.bridge_subnet)?;
        let mut engine = Self {
            child: None,
            bridge,
            _lock: lock,
            settings,
        };
        if let Err(e) = engine.spawn_and_wait().await {
            engine.stop().await;
            return Err(e);
        }
        Ok(engine)
    }

    async fn spawn_and_wait(&mut self) -> Result<(), EngineError> {
        let layout = &self.settings.layout;
        let log_path = layout.dockerd_log();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|source| EngineError::Io {
                path: log_path.clone(),
                source,
            })?;
        let log_err = log.try_clone().map_err(|source| EngineError::Io {
            path: log_path.clone(),
            source,
        })?;
        let mut command = tokio::process::Command::new(&self.settings.dockerd);
        command
            .arg("--config-file")
            .arg(layout.daemon_json())
            .envs(self.settings.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            // Its own process group: a Ctrl-C in the terminal reaches `stockade up`, which then
            // stops dockerd in order, instead of both racing to shut down.
            .process_group(0);
        let child = command.spawn().map_err(|source| EngineError::Spawn {
            dockerd: self.settings.dockerd.clone(),
            source,
        })?;
        let pid = child.id();
        self.child = Some(child);
        tracing::info!(pid, config = %layout.daemon_json().display(), "dockerd started");
        let deadline = Instant::now() + self.settings.start_timeout;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(EngineError::Exited {
                        status: status.to_string(),
                        log: log_path.clone(),
                        tail: log_tail(&log_path),
                    });
                }
            }
            if let Ok((status, _)) = client::get(&layout.engine_socket, "/_ping").await {
                if status.is_success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(EngineError::StartTimeout {
                    seconds: self.settings.start_timeout.as_secs(),
                    log: log_path.clone(),
                    tail: log_tail(&log_path),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Completes when dockerd exits by itself, with its exit status and the end of its log.
    /// Pending forever once the engine has been stopped. Cancel-safe.
    pub async fn exited(&mut self) -> EngineError {
        let Some(child) = self.child.as_mut() else {
            return std::future::pending().await;
        };
        let status = child
            .wait()
            .await
            .map_or_else(|e| e.to_string(), |s| s.to_string());
        self.child = None;
        let log = self.settings.layout.dockerd_log();
        EngineError::Exited {
            tail: log_tail(&log),
            status,
            log,
        }
    }

    /// Stops dockerd (SIGTERM, then SIGKILL after its shutdown timeout), makes sure the containerd
    /// it started is gone, and removes the bridge and the engine socket.
    pub async fn stop(&mut self) {
        let containerd = containerd_pid(&self.settings.layout);
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                terminate(&mut child, pid, Duration::from_secs(30)).await;
            }
        }
        // dockerd stops the containerd it supervises; if it was killed, that one is left.
        if let Some(pid) = containerd {
            if process_is(pid, "containerd") {
                tracing::warn!(pid, "containerd outlived dockerd; stopping it");
                let _ = signal::kill(Pid::from_raw(pid), Signal::SIGTERM);
                wait_gone(pid, Duration::from_secs(10)).await;
                if process_is(pid, "containerd") {
                    let _ = signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
        }
        // A dockerd that was killed leaves its mounts behind (with userns-remap, the remapped data
        // root is bind-mounted onto itself).
        unmount_under(&self.settings.layout.state_dir);
        remove_bridge(&self.bridge);
        let _ = std::fs::remove_file(&self.settings.layout.engine_socket);
        tracing::info!("managed engine stopped");
    }
}

impl Drop for ManagedEngine {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Some(pid) = child.id() {
                let _ = signal::kill(pid_of(pid), Signal::SIGTERM);
            }
        }
    }
}

fn pid_of(pid: u32) -> Pid {
    Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX))
}

async fn terminate(child: &mut tokio::process::Child, pid: u32, grace: Duration) {
    let _ = signal::kill(pid_of(pid), Signal::SIGTERM);
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(Ok(status)) => tracing::info!(pid, %status, "dockerd exited"),
        Ok(Err(e)) => tracing::warn!(pid, error = %e, "waiting for dockerd failed"),
        Err(_) => {
            tracing::warn!(pid, "dockerd did not stop within {grace:?}; killing it");
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
}

fn containerd_pid(layout: &Layout) -> Option<i32> {
    let text =
        std::fs::read_to_string(layout.exec_root().join("containerd/containerd.pid")).ok()?;
    text.trim().parse().ok()
}

/// Whether `pid` is alive and its command name starts with `name`.
fn process_is(pid: i32, name: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|comm| comm.trim_end().starts_with(name))
        .unwrap_or(false)
}

async fn wait_gone(pid: i32, limit: Duration) {
    let deadline = Instant::now() + limit;
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Mount points at or below `dir`, deepest first, from /proc/self/mountinfo.
fn mounts_under(dir: &Path, mountinfo: &str) -> Vec<PathBuf> {
    let mut points: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|point| PathBuf::from(point.replace("\\040", " ").replace("\\011", "\t")))
        .filter(|point| point.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    points.dedup();
    points
}

/// Detaches every mount at or below `dir`.
fn unmount_under(dir: &Path) {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    for point in mounts_under(dir, &mountinfo) {
        match nix::mount::umount2(&point, nix::mount::MntFlags::MNT_DETACH) {
            Ok(()) => tracing::info!(mount = %point.display(), "removed a mount left by dockerd"),
            Err(e) => {
                tracing::warn!(mount = %point.display(), error = %e, "cannot remove a mount left by dockerd")
            }
        }
    }
}

fn create_dir(path: &Path, mode: u32) -> Result<(), EngineError> {
    let io = |source| EngineError::Io {
        path: path.to_owned(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(io)?;
    // An existing directory keeps its mode otherwise; the remapped root must be able to
    // traverse the state directory, and nobody else may write into it.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io)
}

fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), EngineError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| EngineError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(io)?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)
}

fn take_lock(path: &Path) -> Result<Flock<File>, EngineError> {
    let io = |source| EngineError::Io {
        path: path.to_owned(),
        source,
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io)?;
    let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => lock,
        Err((mut file, errno)) => {
            if errno == nix::errno::Errno::EWOULDBLOCK {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(EngineError::StateDirInUse {
                    state_dir: path.parent().unwrap_or(path).to_owned(),
                    holder: holder.trim().to_owned(),
                });
            }
            return Err(io(std::io::Error::from(errno)));
        }
    };
    lock.set_len(0).map_err(io)?;
    lock.rewind().map_err(io)?;
    write!(lock, "{}", std::process::id()).map_err(io)?;
    Ok(lock)
}

/// The last lines of dockerd's log, for error messages.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}

fn ip(args: &[&str]) -> Result<String, String> {
    let output = std::process::Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `ip` (install iproute2): {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Addresses configured on interfaces other than `except`, from `ip -o -4 addr show`.
fn addresses_in_use(except: &str) -> Result<Vec<(String, BridgeSubnet)>, String> {
    let listing = ip(&["-o", "-4", "addr", "show"])?;
    Ok(listing
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let _index = words.next()?;
            let name = words.next()?.trim_end_matches(':').to_owned();
            let cidr = words.skip_while(|w| *w != "inet").nth(1)?;
            let (addr, prefix) = cidr.split_once('/')?;
            let subnet = BridgeSubnet {
                address: addr.parse().ok()?,
                prefix: prefix.parse().ok()?,
            };
            (name != except).then_some((name, subnet))
        })
        .collect())
}

fn setup_bridge(name: &str, subnet: BridgeSubnet) -> Result<(), EngineError> {
    let fail = |detail: String| EngineError::Bridge {
        bridge: name.to_owned(),
        detail,
    };
    if let Some((other, used)) = addresses_in_use(name)
        .map_err(fail)?
        .into_iter()
        .find(|(_, used)| used.overlaps(subnet))
    {
        return Err(EngineError::SubnetInUse {
            subnet: subnet.to_string(),
            interface: other,
            used: used.to_string(),
        });
    }
    // A bridge left by an instance that was killed is ours (the name is derived from the state
    // directory we hold the lock of): start from a clean one.
    if ip(&["link", "show", "dev", name]).is_ok() {
        ip(&["link", "del", "dev", name]).map_err(fail)?;
    }
    ip(&["link", "add", "name", name, "type", "bridge"]).map_err(fail)?;
    let address = subnet.to_string();
    let configure = ip(&["addr", "add", &address, "dev", name])
        .and_then(|_| ip(&["link", "set", "dev", name, "up"]));
    if let Err(detail) = configure {
        remove_bridge(name);
        return Err(fail(detail));
    }
    Ok(())
}

fn remove_bridge(name: &str) {
    if let Err(e) = ip(&["link", "del", "dev", name]) {
        tracing::warn!(bridge = name, error = %e, "could not remove the bridge");
    }
}

/// Finds `dockerd` on `PATH` (and in the sbin directories root's PATH may lack).
#[must_use]
pub fn find_dockerd() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            [
                "/usr/sbin",
                "/usr/bin",
                "/sbin",
                "/usr/local/sbin",
                "/usr/local/bin",
            ]
            .map(PathBuf::from),
        )
        .map(|dir| dir.join("dockerd"))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_below_a_directory_deepest_first() {
        let info = "36 35 98:0 / /tmp/stk/data/100000.100000 rw - ext4 /dev/vda rw\n\
            37 36 0:5 / /tmp/stk/data/100000.100000/overlay2/x/merged rw - overlay overlay rw\n\
            38 35 98:0 / /tmp/stkother rw - ext4 /dev/vda rw\n\
            39 35 98:0 / / rw - ext4 /dev/vda rw\n";
        assert_eq!(
            mounts_under(Path::new("/tmp/stk"), info),
            vec![
                PathBuf::from("/tmp/stk/data/100000.100000/overlay2/x/merged"),
                PathBuf::from("/tmp/stk/data/100000.100000"),
            ]
        );
    }

    #[test]
    fn subnet_parsing() {
        let s: BridgeSubnet = "10.213.0.1/24".parse().unwrap();
        assert_eq!(s.network(), Ipv4Addr::new(10, 213, 0, 0));
        assert!("10.213.0.0/24".parse::<BridgeSubnet>().is_err());
        assert!("10.213.0.255/24".parse::<BridgeSubnet>().is_err());
        assert!("10.213.0.1/31".parse::<BridgeSubnet>().is_err());
        assert!("10.213.0.1".parse::<BridgeSubnet>().is_err());
        assert!("10.213.0/24".parse::<BridgeSubnet>().is_err());
    }

    #[test]
    fn overlap() {
        let a: BridgeSubnet = "10.213.0.1/24".parse().unwrap();
        let b: BridgeSubnet = "10.213.0.77/16".parse().unwrap();
        let c: BridgeSubnet = "10.214.0.1/24".parse().unwrap();
        assert!(a.overlaps(b) && b.overlaps(a));
        assert!(!a.overlaps(c));
    }

    #[test]
    fn bridge_names_are_short_and_distinct() {
        let a = Layout::in_state_dir(Path::new("/tmp/a")).bridge_name();
        let b = Layout::in_state_dir(Path::new("/tmp/b")).bridge_name();
        assert!(a.len() <= 15);
        assert_ne!(a, b);
        assert_eq!(a, Layout::in_state_dir(Path::new("/tmp/a")).bridge_name());
    }

    #[test]
    fn daemon_config_is_hardened() {
        let layout = Layout::in_state_dir(Path::new("/tmp/stk"));
        let config = daemon_config(
            &layout,
            "stk0",
            &("10.214.0.0/16".to_owned(), 24),
            &PolicyOptions::default(),
        );
        assert_eq!(config["userns-remap"], "default");
        assert_eq!(
            config["hosts"],
            serde_json::json!(["unix:///tmp/stk/engine.sock"])
        );
        assert_eq!(config["group"], "root");
        assert_eq!(config["no-new-privileges"], true);
        assert_eq!(config["builder"]["Entitlements"]["network-host"], false);
        assert_eq!(
            config["builder"]["Entitlements"]["security-insecure"],
            false
        );
        assert_eq!(config["live-restore"], false);
        assert_eq!(config["bridge"], "stk0");
        assert_eq!(config["data-root"], "/tmp/stk/data");
    }

    #[test]
    fn policy_options_are_merged_under_the_hardening() {
        let layout = Layout::in_state_dir(Path::new("/tmp/stk"));
        let options = serde_json::json!({
            "debug": true,
            "log-driver": "local",
            "hosts": ["tcp://0.0.0.0:2375"],
            "userns-remap": "",
            "no-new-privileges": false,
            "iptables": true,
            "default-runtime": "evil",
            "builder": {"Entitlements": {"network-host": true}}
        });
        let serde_json::Value::Object(daemon_options) = options else {
            unreachable!()
        };
        let policy = PolicyOptions {
            daemon_options,
            expose_tcp_2375: false,
        };
        let config = daemon_config(&layout, "stk0", &("10.214.0.0/16".to_owned(), 24), &policy);
        assert_eq!(config["debug"], true);
        assert_eq!(config["log-driver"], "local");
        assert_eq!(
            config["hosts"],
            serde_json::json!(["unix:///tmp/stk/engine.sock"])
        );
        assert_eq!(config["userns-remap"], "default");
        assert_eq!(config["no-new-privileges"], true);
        assert_eq!(config["iptables"], false);
        assert!(config.get("default-runtime").is_none());
        assert_eq!(config["builder"]["Entitlements"]["network-host"], false);
        let exposed = PolicyOptions {
            expose_tcp_2375: true,
            ..PolicyOptions::default()
        };
        let config = daemon_config(&layout, "stk0", &("10.214.0.0/16".to_owned(), 24), &exposed);
        assert_eq!(
            config["hosts"],
            serde_json::json!(["unix:///tmp/stk/engine.sock", "tcp://127.0.0.1:2375"])
        );
    }

    #[test]
    fn lock_is_exclusive_and_names_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stockade.lock");
        let first = take_lock(&path).unwrap();
        match take_lock(&path) {
            Err(EngineError::StateDirInUse { holder, .. }) => {
                assert_eq!(holder, std::process::id().to_string());
            }
            other => panic!("expected StateDirInUse, got {other:?}"),
        }
        drop(first);
        assert!(take_lock(&path).is_ok());
    }
}
