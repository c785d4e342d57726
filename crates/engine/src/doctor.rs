//! Host checks for `stockade doctor`: every running dockerd's sockets, TCP listeners and user
//! namespaces, who can reach them, and the tools Stockade needs.
//!
//! Processes and their sockets are found through `/proc` (the listening sockets in
//! `/proc/net/{unix,tcp,tcp6}` matched to the socket inodes each process holds), so an engine
//! that somebody started by hand is found as well as Stockade's own.

use crate::{client, safety};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// The verdict of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Nothing to do.
    Pass,
    /// The host is not safe until this is fixed.
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Pass or fail.
    pub status: Status,
    /// What was found.
    pub finding: String,
    /// What to do about a failure.
    pub fix: Option<String>,
}

impl Check {
    fn pass(finding: String) -> Self {
        Self {
            status: Status::Pass,
            finding,
            fix: None,
        }
    }
    fn fail(finding: String, fix: String) -> Self {
        Self {
            status: Status::Fail,
            finding,
            fix: Some(fix),
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.status {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
        };
        write!(f, "{tag}  {}", self.finding)?;
        if let Some(fix) = &self.fix {
            write!(f, "\n      fix: {fix}")?;
        }
        Ok(())
    }
}

/// A process and the listening sockets it holds.
#[derive(Debug, Clone, Default)]
struct Listeners {
    unix: BTreeSet<PathBuf>,
    tcp: BTreeSet<u16>,
}

/// Runs every check. `engines` are extra engine sockets to examine besides the dockerd processes
/// found on the host.
pub async fn run(engines: &[PathBuf]) -> Vec<Check> {
    let mut checks = Vec::new();
    let processes = processes_named(&["dockerd"]);
    let mut examined = BTreeSet::new();
    if processes.is_empty() && engines.is_empty() {
        checks.push(Check::fail(
            "no dockerd is running on this host".to_owned(),
            "start the managed engine with `stockade up`".to_owned(),
        ));
    }
    for (pid, listeners) in &processes {
        for port in &listeners.tcp {
            checks.push(Check::fail(
                format!("dockerd (pid {pid}) listens on TCP port {port}: anyone who reaches it is root on this host"),
                "remove tcp:// entries from its \"hosts\" (daemon.json) and -H flags".to_owned(),
            ));
        }
        if listeners.tcp.is_empty() {
            checks.push(Check::pass(format!(
                "dockerd (pid {pid}) has no TCP listener"
            )));
        }
        let mut api_sockets = 0;
        for socket in &listeners.unix {
            // dockerd also listens on internal sockets (metrics, libnetwork); only the ones that
            // speak the Engine API are ways in.
            if !speaks_engine_api(socket).await {
                continue;
            }
            api_sockets += 1;
            examined.insert(socket.clone());
            examine_engine(socket, &mut checks).await;
        }
        if api_sockets == 0 && listeners.tcp.is_empty() {
            checks.push(Check::fail(
                format!(
                    "dockerd (pid {pid}) serves the Engine API on no socket that could be examined"
                ),
                "check its \"hosts\" setting".to_owned(),
            ));
        }
    }
    for socket in engines {
        if !examined.contains(socket) {
            examine_engine(socket, &mut checks).await;
        }
    }
    if let Some(install) = Install::detect(Path::new("/")) {
        let stockade = processes_named(&["stockade"]);
        install.check(&processes, &stockade, &mut checks);
    }
    checks.push(nft_check());
    checks
}

/// The Debian package's layout (`stockade-engine.service` and `stockade-gateway.service`):
/// when its units are installed, the host is checked for what would walk around them.
#[derive(Debug, Clone)]
pub struct Install {
    /// The filesystem root the unit files were found under (`/` on a real host).
    root: PathBuf,
}

/// Where systemd's packaged unit files live.
const UNIT_DIRS: [&str; 2] = ["lib/systemd/system", "usr/lib/systemd/system"];
/// The users' socket the packaged gateway serves (`/var/run` is a link to `/run`).
const USERS_SOCKET: &str = "/run/docker.sock";

impl Install {
    /// Finds the packaged units under `root`.
    #[must_use]
    pub fn detect(root: &Path) -> Option<Self> {
        UNIT_DIRS
            .iter()
            .any(|d| root.join(d).join("stockade-gateway.service").exists())
            .then(|| Self {
                root: root.to_owned(),
            })
    }

    fn shipped(&self, unit: &str) -> bool {
        UNIT_DIRS
            .iter()
            .any(|d| self.root.join(d).join(unit).exists())
    }

    /// Whether `unit` is masked (linked to /dev/null in /etc/systemd/system).
    #[must_use]
    pub fn masked(&self, unit: &str) -> bool {
        std::fs::read_link(self.root.join("etc/systemd/system").join(unit))
            .is_ok_and(|target| target == Path::new("/dev/null"))
    }

    /// The stock engine's units must be masked: the first `systemctl start docker` would
    /// otherwise bring back an engine whose socket the `docker` group opens.
    pub fn unit_checks(&self, checks: &mut Vec<Check>) {
        for unit in ["docker.service", "docker.socket"] {
            if !self.shipped(unit) {
                continue;
            }
            if self.masked(unit) {
                checks.push(Check::pass(format!(
                    "{unit} is masked: nothing starts the stock engine beside Stockade's"
                )));
            } else {
                checks.push(Check::fail(
                    format!("{unit} is not masked: `systemctl start {unit}` starts an engine that users in group docker can open, around the gateway"),
                    "systemctl mask --now docker.service docker.socket".to_owned(),
                ));
            }
        }
    }

    fn check(
        &self,
        dockerds: &BTreeMap<i32, Listeners>,
        stockade: &BTreeMap<i32, Listeners>,
        checks: &mut Vec<Check>,
    ) {
        self.unit_checks(checks);
        // Stockade's managed engine is the one whose pid is in its pid file; any other dockerd
        // is an engine the gateway does not front.
        let pidfile = crate::Layout::system().dockerd_pidfile();
        let managed = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
            .filter(|pid| dockerds.contains_key(pid));
        match managed {
            Some(pid) => checks.push(Check::pass(format!(
                "Stockade's managed engine is running (dockerd pid {pid})"
            ))),
            None => checks.push(Check::fail(
                format!("Stockade's managed engine is not running (no live dockerd in {})", pidfile.display()),
                "systemctl start stockade-engine; journalctl -u stockade-engine says why it stopped".to_owned(),
            )),
        }
        for pid in dockerds.keys().filter(|pid| Some(**pid) != managed) {
            checks.push(Check::fail(
                format!("dockerd (pid {pid}) is not Stockade's managed engine: what it runs is not held to the admin policy"),
                format!("stop it (kill {pid}; systemctl mask --now docker.service docker.socket) and use the engine behind the gateway"),
            ));
        }
        let users = Path::new(USERS_SOCKET);
        let served_by = |procs: &BTreeMap<i32, Listeners>| {
            procs
                .iter()
                .find(|(_, l)| l.unix.iter().any(|p| same_socket_path(p, users)))
                .map(|(pid, _)| *pid)
        };
        match (served_by(stockade), served_by(dockerds)) {
            (_, Some(pid)) => checks.push(Check::fail(
                format!("{USERS_SOCKET} is served by dockerd (pid {pid}) itself: users reach the engine around the gateway"),
                "systemctl mask --now docker.service docker.socket && systemctl restart stockade-gateway".to_owned(),
            )),
            (Some(pid), None) => {
                checks.push(Check::pass(format!(
                    "{USERS_SOCKET} is the Stockade gateway's (pid {pid})"
                )));
                checks.push(users_socket_mode(users));
            }
            (None, None) => checks.push(Check::fail(
                format!("nothing Stockade runs serves {USERS_SOCKET}"),
                "systemctl start stockade-gateway".to_owned(),
            )),
        }
    }
}

/// The users' socket is for the `docker` group: `root:docker 0660`, no one else.
fn users_socket_mode(socket: &Path) -> Check {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let shown = socket.display();
    let Ok(meta) = std::fs::metadata(socket) else {
        return Check::fail(
            format!("cannot examine {shown}"),
            "systemctl restart stockade-gateway".to_owned(),
        );
    };
    let mode = meta.permissions().mode() & 0o7777;
    let docker = nix::unistd::Group::from_name("docker")
        .ok()
        .flatten()
        .map(|g| g.gid.as_raw());
    if meta.uid() == 0 && mode & 0o007 == 0 && Some(meta.gid()) == docker {
        Check::pass(format!(
            "{shown} is root:docker {mode:04o}: the docker group's only"
        ))
    } else {
        Check::fail(
            format!("{shown} is uid {} gid {} mode {mode:04o}: users outside the docker group may reach the gateway", meta.uid(), meta.gid()),
            "systemctl restart stockade-gateway (it binds the socket root:docker 0660)".to_owned(),
        )
    }
}

/// `/var/run/x` and `/run/x` are one socket on Debian.
fn same_socket_path(found: &Path, expected: &Path) -> bool {
    found == expected
        || found
            .strip_prefix("/var")
            .is_ok_and(|rest| Path::new("/").join(rest) == expected)
}

/// Whether `/_ping` on the socket answers like the Engine API (200 with an `Api-Version`).
async fn speaks_engine_api(socket: &Path) -> bool {
    match client::get_with_headers(socket, "/_ping").await {
        Ok((status, headers, _)) => status.is_success() && headers.contains_key("api-version"),
        Err(_) => false,
    }
}

async fn examine_engine(socket: &Path, checks: &mut Vec<Check>) {
    let shown = socket.display();
    match safety::socket_exposure(socket) {
        Ok(None) => checks.push(Check::pass(format!(
            "engine socket {shown} can be opened by root only"
        ))),
        Ok(Some(way_in)) => {
            checks.push(Check::fail(
                format!("engine socket {shown}: {way_in}, and whoever opens it is root on this host"),
                format!("set \"group\": \"root\" in the engine's daemon.json (or chmod 0600 {shown}), take users out of that group, and give them the Stockade gateway socket instead"),
            ));
        }
        Err(e) => checks.push(Check::fail(
            e.to_string(),
            "check the engine's \"hosts\" setting".to_owned(),
        )),
    }
    match client::get_json(socket, "/info").await {
        Ok(info) => match safety::isolation_from_info(&info) {
            Some(isolation) => checks.push(Check::pass(format!(
                "engine at {shown} isolates containers ({isolation:?})"
            ))),
            None => checks.push(Check::fail(
                format!("engine at {shown} runs containers without user namespaces: root in a container is root on the host"),
                "set \"userns-remap\": \"default\" in its daemon.json, or run it rootless (`stockade up` does this)".to_owned(),
            )),
        },
        Err(e) => checks.push(Check::fail(
            e.to_string(),
            "start the engine or fix the socket path".to_owned(),
        )),
    }
}

fn nft_check() -> Check {
    match std::process::Command::new("nft").arg("--version").output() {
        Ok(out) if out.status.success() => Check::pass(format!(
            "nftables available ({})",
            String::from_utf8_lossy(&out.stdout).trim()
        )),
        _ => Check::fail(
            "nftables (`nft`) is not available; air-gapped containers need it".to_owned(),
            "apt-get install nftables".to_owned(),
        ),
    }
}

/// Processes whose command name is one of `names`, with their listening sockets.
fn processes_named(names: &[&str]) -> BTreeMap<i32, Listeners> {
    let unix = listening_unix_sockets();
    let tcp = listening_tcp_ports();
    let mut found = BTreeMap::new();
    for pid in pids() {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if !names.contains(&comm.trim_end()) {
            continue;
        }
        let mut listeners = Listeners::default();
        for inode in socket_inodes(pid) {
            if let Some(path) = unix.get(&inode) {
                listeners.unix.insert(path.clone());
            }
            if let Some(port) = tcp.get(&inode) {
                listeners.tcp.insert(*port);
            }
        }
        found.insert(pid, listeners);
    }
    found
}

/// The process that holds the listening socket `socket` (the engine serving it), with the TCP
/// ports it listens on. `None` when no process visible here holds it (an engine in another PID
/// namespace, say).
#[must_use]
pub fn socket_holder_tcp_ports(socket: &Path) -> Option<(i32, BTreeSet<u16>)> {
    let wanted = std::fs::canonicalize(socket).unwrap_or_else(|_| socket.to_owned());
    let inodes: BTreeSet<u64> = listening_unix_sockets()
        .into_iter()
        .filter(|(_, path)| {
            path == &wanted || std::fs::canonicalize(path).is_ok_and(|p| p == wanted)
        })
        .map(|(inode, _)| inode)
        .collect();
    if inodes.is_empty() {
        return None;
    }
    let tcp = listening_tcp_ports();
    let mut holders: Vec<(i32, BTreeSet<u16>)> = Vec::new();
    for pid in pids() {
        let held = socket_inodes(pid);
        if !held.iter().any(|i| inodes.contains(i)) {
            continue;
        }
        let ports = held.iter().filter_map(|i| tcp.get(i).copied()).collect();
        holders.push((pid, ports));
    }
    // Socket activation: systemd (pid 1) holds the socket too; the engine is the other holder,
    // and any holder with a TCP port is the answer that matters.
    holders.sort_by_key(|(pid, ports)| (ports.is_empty(), *pid == 1, *pid));
    holders.into_iter().next()
}

/// Every process visible in /proc.
fn pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn socket_inodes(pid: i32) -> Vec<u64> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    fds.flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|target| {
            target
                .to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

/// Listening unix sockets with a path: inode → path.
fn listening_unix_sockets() -> BTreeMap<u64, PathBuf> {
    let text = std::fs::read_to_string("/proc/net/unix").unwrap_or_default();
    parse_proc_net_unix(&text)
}

fn parse_proc_net_unix(text: &str) -> BTreeMap<u64, PathBuf> {
    const ACCEPTING: u32 = 0x0001_0000;
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // Num RefCount Protocol Flags Type St Inode Path
            let flags = u32::from_str_radix(fields.get(3)?, 16).ok()?;
            let path = fields.get(7)?;
            if flags & ACCEPTING == 0 || path.starts_with('@') {
                return None;
            }
            Some((fields.get(6)?.parse().ok()?, PathBuf::from(path)))
        })
        .collect()
}

/// Listening TCP sockets (IPv4 and IPv6): inode → port.
fn listening_tcp_ports() -> BTreeMap<u64, u16> {
    let mut ports = BTreeMap::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        ports.extend(parse_proc_net_tcp(&text));
    }
    ports
}

fn parse_proc_net_tcp(text: &str) -> BTreeMap<u64, u16> {
    const LISTEN: &str = "0A";
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
            if *fields.get(3)? != LISTEN {
                return None;
            }
            let port = u16::from_str_radix(fields.get(1)?.rsplit(':').next()?, 16).ok()?;
            Some((fields.get(9)?.parse().ok()?, port))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_listeners_are_parsed() {
        let text = "Num       RefCount Protocol Flags    Type St Inode Path\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 23456 /run/stockade/engine.sock\n\
            0000000000000000: 00000003 00000000 00000000 0001 03 23457 /run/stockade/engine.sock\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 23458 @abstract\n";
        let map = parse_proc_net_unix(text);
        assert_eq!(map.len(), 1);
        assert_eq!(map[&23456], PathBuf::from("/run/stockade/engine.sock"));
    }

    #[test]
    fn tcp_listeners_are_parsed() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
            0: 00000000:0947 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0 100 0 0 10 0\n\
            1: 0100007F:0948 0100007F:9999 01 00000000:00000000 00:00000000 00000000     0        0 4243 1 0 100 0 0 10 0\n";
        let map = parse_proc_net_tcp(text);
        assert_eq!(map.len(), 1);
        assert_eq!(map[&4242], 2375);
    }

    #[test]
    fn packaged_units_are_found_and_masks_read() {
        let root = tempfile::tempdir().unwrap();
        assert!(Install::detect(root.path()).is_none());
        let units = root.path().join("lib/systemd/system");
        std::fs::create_dir_all(&units).unwrap();
        std::fs::write(units.join("stockade-gateway.service"), "").unwrap();
        std::fs::write(units.join("docker.service"), "").unwrap();
        std::fs::write(units.join("docker.socket"), "").unwrap();
        let install = Install::detect(root.path()).unwrap();
        let etc = root.path().join("etc/systemd/system");
        std::fs::create_dir_all(&etc).unwrap();
        std::os::unix::fs::symlink("/dev/null", etc.join("docker.service")).unwrap();
        std::os::unix::fs::symlink(
            "/lib/systemd/system/docker.socket",
            etc.join("docker.socket"),
        )
        .unwrap();
        let mut checks = Vec::new();
        install.unit_checks(&mut checks);
        assert_eq!(checks.len(), 2);
        assert_eq!(checks[0].status, Status::Pass, "{}", checks[0]);
        assert!(checks[0].finding.contains("docker.service is masked"));
        assert_eq!(checks[1].status, Status::Fail, "{}", checks[1]);
        assert!(checks[1].finding.contains("docker.socket is not masked"));
    }

    #[test]
    fn var_run_is_run() {
        let users = Path::new("/run/docker.sock");
        assert!(same_socket_path(Path::new("/var/run/docker.sock"), users));
        assert!(same_socket_path(Path::new("/run/docker.sock"), users));
        assert!(!same_socket_path(Path::new("/tmp/run/docker.sock"), users));
    }

    #[test]
    fn report_lines() {
        let line = Check::fail("bad".into(), "do this".into()).to_string();
        assert_eq!(line, "FAIL  bad\n      fix: do this");
        assert_eq!(Check::pass("good".into()).to_string(), "PASS  good");
    }
}
