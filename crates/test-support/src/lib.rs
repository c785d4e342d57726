//! The real-engine test rig: a private `dockerd` (userns-remap, its own bridge, data and exec
//! roots, proxies pointed at a closed port so nothing reaches outside), a real registry on
//! 127.0.0.1, a busybox-static test image, the `stockade` gateway as a process, and the stock
//! `docker` CLI pointed at it.
//!
//! Every process the rig starts is stopped by its pid when its handle drops; every wait is bounded.
//! Tests need root (dockerd, bridges).
#![forbid(unsafe_code)]

pub mod http;
mod process;
pub mod trials;

use nix::sys::signal::Signal;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub use process::{run_with_timeout, Finished, Spawned};

/// Rig failures, with enough context to see what broke.
#[derive(Debug, thiserror::Error)]
pub enum RigError {
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A command could not run or failed.
    #[error("{command} failed: {detail}")]
    Command {
        /// The command line.
        command: String,
        /// What happened (status and output).
        detail: String,
    },
    /// Something did not become ready in time.
    #[error("{what} was not ready within {seconds} s: {detail}")]
    NotReady {
        /// What was awaited.
        what: String,
        /// The limit.
        seconds: u64,
        /// Diagnostics (log tail).
        detail: String,
    },
}

/// Result type of the rig.
pub type Result<T> = std::result::Result<T, RigError>;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RigError + '_ {
    move |source| RigError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The name of the image [`build_test_image`] imports.
pub const TEST_IMAGE: &str = "stockade-test/busybox:latest";

/// A closed loopback port for `HTTP_PROXY`, so an accidental pull of a public name fails at once.
pub const CLOSED_PROXY: &str = "http://127.0.0.1:9";

static SEQUENCE: AtomicU32 = AtomicU32::new(0);

/// A fresh short directory under /tmp (unix socket paths must stay under 108 bytes), mode 0711
/// so that the remapped root of a userns engine can traverse it.
///
/// # Errors
/// [`RigError::Io`] if it cannot be created.
pub fn scratch_dir(tag: &str) -> Result<PathBuf> {
    let n = SEQUENCE.fetch_add(1, Ordering::SeqCst);
    let path = PathBuf::from(format!("/tmp/stk-{tag}-{}-{n}", std::process::id()));
    if path.exists() {
        std::fs::remove_dir_all(&path).map_err(io_err(&path))?;
    }
    std::fs::create_dir_all(&path).map_err(io_err(&path))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o711))
        .map_err(io_err(&path))?;
    Ok(path)
}

/// A /24 in 10.231.0.0/16 that no interface uses, as `(bridge address/24)`.
///
/// # Errors
/// [`RigError::Command`] when `ip` fails or every subnet is taken.
pub fn free_subnet() -> Result<String> {
    let listing = run_with_timeout(
        Command::new("ip").args(["-o", "-4", "addr", "show"]),
        None,
        Duration::from_secs(10),
    )?;
    let start = (std::process::id() % 200) as usize;
    for offset in 0..250 {
        let n = (start + offset + SEQUENCE.fetch_add(1, Ordering::SeqCst) as usize) % 250 + 1;
        let prefix = format!("10.231.{n}.");
        if !listing.stdout.contains(&prefix) {
            return Ok(format!("10.231.{n}.1/24"));
        }
    }
    Err(RigError::Command {
        command: "ip -o -4 addr show".into(),
        detail: "no free 10.231.N.0/24 subnet".into(),
    })
}

/// Runs a command that must succeed within `limit`.
///
/// # Errors
/// [`RigError::Command`] with its status and output otherwise.
pub fn must_run(command: &mut Command, limit: Duration) -> Result<Finished> {
    let done = run_with_timeout(command, None, limit)?;
    if done.success() {
        Ok(done)
    } else {
        Err(RigError::Command {
            command: format!("{command:?}"),
            detail: done.describe(),
        })
    }
}

/// How to configure a test engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Run containers in a user namespace (userns-remap), as Stockade requires.
    pub userns: bool,
    /// Mode of the engine socket after start (dockerd creates it 0660 root:root).
    pub socket_mode: Option<u32>,
    /// Also listen on this TCP port on 127.0.0.1 (an engine `serve` must refuse).
    pub tcp_port: Option<u16>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            userns: true,
            socket_mode: None,
            tcp_port: None,
        }
    }
}

/// A private dockerd for tests.
#[derive(Debug)]
pub struct TestEngine {
    dir: PathBuf,
    bridge: String,
    process: Spawned,
}

impl TestEngine {
    /// Starts a dockerd on its own bridge and waits for `/_ping`.
    ///
    /// # Errors
    /// [`RigError`] when the bridge or dockerd cannot be set up, with the end of dockerd's log.
    pub fn start(options: &EngineOptions) -> Result<Self> {
        let dir = scratch_dir("eng")?;
        let n = SEQUENCE.fetch_add(1, Ordering::SeqCst);
        let bridge = format!("stkt{}x{n}", std::process::id() % 100_000);
        let subnet = free_subnet()?;
        must_run(
            Command::new("ip").args(["link", "add", "name", &bridge, "type", "bridge"]),
            Duration::from_secs(10),
        )?;
        let configured = must_run(
            Command::new("ip").args(["addr", "add", &subnet, "dev", &bridge]),
            Duration::from_secs(10),
        )
        .and_then(|_| {
            must_run(
                Command::new("ip").args(["link", "set", "dev", &bridge, "up"]),
                Duration::from_secs(10),
            )
        });
        if let Err(e) = configured {
            remove_bridge(&bridge);
            return Err(e);
        }
        let mut config = serde_json::json!({
            "hosts": [format!("unix://{}/engine.sock", dir.display())],
            "group": "root",
            "data-root": dir.join("data"),
            "exec-root": dir.join("exec"),
            "pidfile": dir.join("dockerd.pid"),
            "bridge": bridge,
            "iptables": false,
            "ip-masq": false,
            "ip-forward": false,
            "no-new-privileges": true,
            "live-restore": false,
            "shutdown-timeout": 5,
        });
        if options.userns {
            config["userns-remap"] = "default".into();
        }
        if let Some(port) = options.tcp_port {
            config["hosts"] = serde_json::json!([
                format!("unix://{}/engine.sock", dir.display()),
                format!("tcp://127.0.0.1:{port}"),
            ]);
        }
        let config_path = dir.join("daemon.json");
        std::fs::write(&config_path, config.to_string()).map_err(io_err(&config_path))?;
        let log_path = dir.join("dockerd.log");
        let log = std::fs::File::create(&log_path).map_err(io_err(&log_path))?;
        let log2 = log.try_clone().map_err(io_err(&log_path))?;
        let mut command = Command::new("dockerd");
        command
            .arg("--config-file")
            .arg(&config_path)
            .env("HTTP_PROXY", CLOSED_PROXY)
            .env("HTTPS_PROXY", CLOSED_PROXY)
            .env("NO_PROXY", "127.0.0.0/8,localhost")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        let process = match Spawned::start(&mut command, Signal::SIGTERM, Duration::from_secs(30)) {
            Ok(p) => p,
            Err(e) => {
                remove_bridge(&bridge);
                return Err(e);
            }
        };
        let engine = Self {
            dir,
            bridge,
            process,
        };
        engine.wait_ready(Duration::from_secs(60))?;
        if let Some(mode) = options.socket_mode {
            let socket = engine.socket();
            std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(mode))
                .map_err(io_err(&socket))?;
        }
        Ok(engine)
    }

    fn wait_ready(&self, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(answer) = http::request(&self.socket(), "GET", "/_ping", &[], b"") {
                if answer.status == 200 {
                    return Ok(());
                }
            }
            if Instant::now() > deadline || !self.process.is_running() {
                return Err(RigError::NotReady {
                    what: "test dockerd".into(),
                    seconds: limit.as_secs(),
                    detail: log_tail(&self.dir.join("dockerd.log")),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The engine's socket.
    #[must_use]
    pub fn socket(&self) -> PathBuf {
        self.dir.join("engine.sock")
    }

    /// The engine's state directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// dockerd's pid.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// A docker CLI talking to this engine directly (for setup and for checking effects).
    #[must_use]
    pub fn direct_cli(&self) -> Docker {
        Docker::new(&self.socket())
    }
}

impl Drop for TestEngine {
    fn drop(&mut self) {
        let containerd = std::fs::read_to_string(self.dir.join("exec/containerd/containerd.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok());
        self.process.stop();
        if let Some(pid) = containerd {
            process::stop_pid_if(pid, "containerd", Duration::from_secs(10));
        }
        remove_bridge(&self.bridge);
        // Overlay mounts are gone once dockerd stopped; what remains is plain files.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn remove_bridge(bridge: &str) {
    let _ = run_with_timeout(
        Command::new("ip").args(["link", "del", "dev", bridge]),
        None,
        Duration::from_secs(10),
    );
}

/// The last lines of a log file.
#[must_use]
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Debian's docker-registry on 127.0.0.1 with filesystem storage in a scratch directory.
#[derive(Debug)]
pub struct Registry {
    dir: PathBuf,
    ip: String,
    port: u16,
    log: PathBuf,
    _process: Spawned,
}

impl Registry {
    /// Starts the registry on a free loopback port and waits for `/v2/`.
    ///
    /// # Errors
    /// [`RigError`] when it does not come up.
    pub fn start() -> Result<Self> {
        Self::start_at("127.0.0.1")
    }

    /// Starts the registry on a free port of another loopback address (`127.0.0.2`), so that
    /// a test has a second registry host, and logs every request it serves.
    ///
    /// # Errors
    /// [`RigError`] when it does not come up.
    pub fn start_at(ip: &str) -> Result<Self> {
        let port = free_port_at(ip)?;
        Self::start_with(ip, port, None)
    }

    /// Starts the registry inside the network namespace `netns`, on `ip:port` there (an address
    /// the host reaches over a veth the caller set up).
    ///
    /// # Errors
    /// [`RigError`] when it does not come up.
    pub fn start_in_netns(netns: &str, ip: &str, port: u16) -> Result<Self> {
        Self::start_with(ip, port, Some(netns))
    }

    fn start_with(ip: &str, port: u16, netns: Option<&str>) -> Result<Self> {
        let dir = scratch_dir("reg")?;
        let config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {ip}:{port}\n",
            dir.join("data").display()
        );
        let config_path = dir.join("config.yml");
        std::fs::write(&config_path, config).map_err(io_err(&config_path))?;
        let log_path = dir.join("registry.log");
        let log = std::fs::File::create(&log_path).map_err(io_err(&log_path))?;
        let log2 = log.try_clone().map_err(io_err(&log_path))?;
        let mut command = match netns {
            // `ip netns exec` execs the registry itself, so the pid is the registry's.
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "docker-registry"]);
                c
            }
            None => Command::new("docker-registry"),
        };
        command
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        let process = Spawned::start(&mut command, Signal::SIGTERM, Duration::from_secs(10))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut stream) = std::net::TcpStream::connect((ip, port)) {
                let _ = stream.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n");
                let mut head = [0u8; 12];
                if std::io::Read::read_exact(&mut stream, &mut head).is_ok()
                    && head.starts_with(b"HTTP/1.0 200")
                {
                    break;
                }
            }
            if Instant::now() > deadline || !process.is_running() {
                return Err(RigError::NotReady {
                    what: "docker-registry".into(),
                    seconds: 30,
                    detail: log_tail(&log_path),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(Self {
            dir,
            ip: ip.to_owned(),
            port,
            log: log_path,
            _process: process,
        })
    }

    /// `IP:PORT`, usable as an image name prefix (loopback registries are insecure by default
    /// in dockerd, so no TLS is needed).
    #[must_use]
    pub fn host(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// How many requests for the registry API (`/v2/...`) the registry has served so far.
    #[must_use]
    pub fn api_requests(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("/v2/"))
            .count()
    }

    /// How many manifest requests (`/v2/.../manifests/...`, any method) the registry has
    /// served so far, from its own request log: what a pull or push must ask for first.
    #[must_use]
    pub fn manifest_requests(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("/manifests/") && l.contains("/v2/"))
            .count()
    }

    /// Whether the registry stores a manifest for `repo:tag` (checked on the registry itself).
    #[must_use]
    pub fn has_manifest(&self, repo: &str, tag: &str) -> bool {
        self.dir
            .join("data/docker/registry/v2/repositories")
            .join(repo)
            .join("_manifests/tags")
            .join(tag)
            .exists()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port_at(ip: &str) -> Result<u16> {
    let listener = std::net::TcpListener::bind((ip, 0)).map_err(io_err(Path::new(ip)))?;
    let port = listener.local_addr().map_err(io_err(Path::new(ip)))?.port();
    Ok(port)
}

/// Builds a busybox-static rootfs and imports it as [`TEST_IMAGE`] on the engine at `socket`.
///
/// # Errors
/// [`RigError`] if busybox-static is missing or the import fails.
pub fn build_test_image(socket: &Path) -> Result<()> {
    let dir = scratch_dir("img")?;
    let rootfs = dir.join("rootfs");
    busybox_rootfs(
        &rootfs,
        &[
            "sh",
            "cat",
            "echo",
            "true",
            "false",
            "sleep",
            "ls",
            "id",
            "head",
            "yes",
            "tr",
            "wc",
            "md5sum",
            "sha256sum",
            "dd",
            "env",
            "mkdir",
            "rm",
            "touch",
            "seq",
            "tty",
            "stat",
            "printf",
            "wget",
            "nc",
        ],
    )?;
    let imported = import_rootfs(socket, &rootfs, &["CMD [\"/bin/sh\"]"], TEST_IMAGE);
    let _ = std::fs::remove_dir_all(&dir);
    imported
}

/// Lays out a busybox-static root filesystem in `rootfs`: `bin`, `tmp` (1777), `etc`, `proc`,
/// `sys`, `dev` and `root`, `/bin/busybox` with each of `applets` linked to it, and root in
/// `/etc/passwd`.
///
/// # Errors
/// [`RigError`] if busybox-static is missing or a file cannot be written.
pub fn busybox_rootfs(rootfs: &Path, applets: &[&str]) -> Result<()> {
    let bin = rootfs.join("bin");
    for d in ["bin", "tmp", "etc", "proc", "sys", "dev", "root"] {
        let p = rootfs.join(d);
        std::fs::create_dir_all(&p).map_err(io_err(&p))?;
    }
    std::fs::set_permissions(rootfs.join("tmp"), std::fs::Permissions::from_mode(0o1777))
        .map_err(io_err(rootfs))?;
    let busybox = Path::new("/bin/busybox");
    std::fs::copy(busybox, bin.join("busybox")).map_err(io_err(busybox))?;
    for applet in applets {
        let link = bin.join(applet);
        std::os::unix::fs::symlink("busybox", &link).map_err(io_err(&link))?;
    }
    std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")
        .map_err(io_err(rootfs))
}

/// Imports the directory `rootfs` as the image `name` on the engine at `socket`, with
/// `changes` (Dockerfile instructions such as `CMD ["/bin/sh"]`) applied.
///
/// # Errors
/// [`RigError`] if the tar or the import fails.
pub fn import_rootfs(socket: &Path, rootfs: &Path, changes: &[&str], name: &str) -> Result<()> {
    let tar = rootfs.with_extension("tar");
    must_run(
        Command::new("tar")
            .arg("-C")
            .arg(rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg("."),
        Duration::from_secs(60),
    )?;
    let tar_path = tar.to_string_lossy().into_owned();
    let mut args = vec!["import"];
    for change in changes {
        args.extend(["-c", change]);
    }
    args.extend([tar_path.as_str(), name]);
    let imported = Docker::new(socket).must(&args, Duration::from_secs(120));
    let _ = std::fs::remove_file(&tar);
    imported.map(|_| ())
}

/// The stock docker CLI pointed at one socket, with a private config directory.
#[derive(Debug, Clone)]
pub struct Docker {
    host: String,
    config: std::sync::Arc<ConfigDir>,
    program: PathBuf,
    env: Vec<(String, String)>,
}

/// A CLI config directory, removed when the last [`Docker`] using it is dropped.
#[derive(Debug)]
struct ConfigDir(PathBuf);

impl Drop for ConfigDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Docker {
    /// A CLI for the socket at `socket`.
    #[must_use]
    pub fn new(socket: &Path) -> Self {
        let config = PathBuf::from(format!(
            "/tmp/stk-cli-{}-{}",
            std::process::id(),
            SEQUENCE.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::create_dir_all(&config);
        Self {
            host: format!("unix://{}", socket.display()),
            config: std::sync::Arc::new(ConfigDir(config)),
            program: PathBuf::from("docker"),
            env: Vec::new(),
        }
    }

    /// Uses another docker binary (e.g. Debian's 20.10 CLI, which has BuildKit built in).
    #[must_use]
    pub fn with_program(mut self, program: &Path) -> Self {
        self.program = program.to_owned();
        self
    }

    /// Adds an environment variable to every invocation.
    #[must_use]
    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The command, ready for arguments.
    #[must_use]
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command
            .env("DOCKER_HOST", &self.host)
            .env("DOCKER_CONFIG", &self.config.0)
            .env("DOCKER_CLI_HINTS", "false")
            .env_remove("DOCKER_CONTEXT")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// Runs `docker args...` with optional stdin, bounded by `limit`.
    ///
    /// # Errors
    /// [`RigError::Command`] if it cannot be started.
    pub fn run(&self, args: &[&str], stdin: Option<&[u8]>, limit: Duration) -> Result<Finished> {
        run_with_timeout(self.command().args(args), stdin, limit)
    }

    /// Runs `docker args...`, which must succeed.
    ///
    /// # Errors
    /// [`RigError::Command`] with the output when it fails.
    pub fn must(&self, args: &[&str], limit: Duration) -> Result<Finished> {
        must_run(self.command().args(args), limit)
    }
}

/// `stockade serve` as a process.
#[derive(Debug)]
pub struct Gateway {
    socket: PathBuf,
    log: PathBuf,
    process: Spawned,
}

impl Gateway {
    /// Starts `stockade serve --engine unix://ENGINE --listen unix://LISTEN` plus `extra` flags,
    /// and waits until `/_ping` through it answers 200.
    ///
    /// # Errors
    /// [`RigError::NotReady`] with the gateway's log when it does not come up.
    pub fn start(stockade: &Path, engine: &Path, listen: &Path, extra: &[&str]) -> Result<Self> {
        let log = listen.with_extension("log");
        let file = std::fs::File::create(&log).map_err(io_err(&log))?;
        let mut command = Command::new(stockade);
        command
            .arg("serve")
            .arg("--engine")
            .arg(format!("unix://{}", engine.display()))
            .arg("--listen")
            .arg(format!("unix://{}", listen.display()))
            .args(extra)
            .env("STOCKADE_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file);
        let process = Spawned::start(&mut command, Signal::SIGTERM, Duration::from_secs(10))?;
        let gateway = Self {
            socket: listen.to_owned(),
            log,
            process,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(answer) = http::request(listen, "GET", "/_ping", &[], b"") {
                if answer.status == 200 {
                    return Ok(gateway);
                }
            }
            if Instant::now() > deadline || !gateway.process.is_running() {
                return Err(RigError::NotReady {
                    what: "stockade serve".into(),
                    seconds: 20,
                    detail: log_tail(&gateway.log),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The gateway socket.
    #[must_use]
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The gateway's pid.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The gateway's log so far.
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A docker CLI talking to the gateway.
    #[must_use]
    pub fn cli(&self) -> Docker {
        Docker::new(&self.socket)
    }

    /// Stops the gateway with `signal` (SIGTERM for a clean stop, SIGKILL for a crash) and
    /// returns its exit code.
    pub fn stop_with(&mut self, signal: Signal) -> Option<i32> {
        self.process.stop_with(signal)
    }

    /// Open unix-socket file descriptors held by the gateway process.
    #[must_use]
    pub fn socket_fds(&self) -> usize {
        process::socket_fd_count(self.pid())
    }
}

/// Everything most trials need: a userns engine with the test image, a registry, a gateway.
#[derive(Debug)]
pub struct Rig {
    /// The gateway in front of the engine.
    pub gateway: Gateway,
    /// The registry on 127.0.0.1.
    pub registry: Registry,
    /// The engine.
    pub engine: TestEngine,
    /// Where the gateway socket lives.
    pub dir: PathBuf,
    /// The rig gateway's policy: the built-in default, plus the rig registry in
    /// `registryAccess.allowedRegistries`.
    pub policy: PathBuf,
    /// The stockade binary under test.
    pub stockade: PathBuf,
}

impl Rig {
    /// Starts engine, registry, test image and gateway.
    ///
    /// # Errors
    /// [`RigError`] from whichever part failed.
    pub fn start(stockade: &Path) -> Result<Self> {
        let engine = TestEngine::start(&EngineOptions::default())?;
        build_test_image(&engine.socket())?;
        let registry = Registry::start()?;
        let dir = scratch_dir("gw")?;
        let policy = dir.join("admin-settings.json");
        let text = rig_policy(&[(
            "registryAccess",
            serde_json::json!({
                "locked": true,
                "allowedRegistries": ["docker.io", registry.host()],
            }),
        )]);
        std::fs::write(&policy, text).map_err(io_err(&policy))?;
        let gateway = Gateway::start(
            stockade,
            &engine.socket(),
            &dir.join("docker.sock"),
            &["--policy", &policy.to_string_lossy()],
        )?;
        Ok(Self {
            gateway,
            registry,
            engine,
            dir,
            policy,
            stockade: stockade.to_owned(),
        })
    }

    /// The CLI through the gateway.
    #[must_use]
    pub fn cli(&self) -> Docker {
        self.gateway.cli()
    }

    /// The CLI on the engine directly, to check effects.
    #[must_use]
    pub fn engine_cli(&self) -> Docker {
        self.engine.direct_cli()
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The built-in default policy with some top-level settings replaced, as JSON text.
#[must_use]
pub fn rig_policy(replace: &[(&str, serde_json::Value)]) -> String {
    let mut policy: serde_json::Value =
        serde_json::from_str(include_str!("../../policy/default-admin-settings.json"))
            .unwrap_or_else(|_| serde_json::json!({"configurationFileVersion": 2}));
    for (key, value) in replace {
        policy[*key] = value.clone();
    }
    policy.to_string()
}

/// A unique name for containers, volumes, networks and tags made by a trial.
#[must_use]
pub fn unique(tag: &str) -> String {
    format!(
        "stk-{tag}-{}-{}",
        std::process::id(),
        SEQUENCE.fetch_add(1, Ordering::SeqCst)
    )
}
