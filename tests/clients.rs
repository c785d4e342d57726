//! Real Docker clients beyond the docker CLI, through the gateway, each against the rig's real
//! userns dockerd: Debian's docker-compose 1.29, docker-py, testcontainers-python (without and
//! with its socket-mounting reaper) and the devcontainer CLI. One rig for the whole binary
//! (libtest-mimic), trials one at a time.
//!
//! Each client either works or is refused with the gateway's "enhanced container isolation: ..."
//! message where the policy says so; refusals are judged by their effect on the engine, checked
//! on the engine socket directly. Every command runs in a process group of its own with a bounded
//! time and the whole group is killed when it is over, so nothing hangs and nothing is left.
//!
//! The clients come from `scripts/install-test-clients.sh` (Debian's docker-compose, a venv with
//! docker-py and testcontainers, the devcontainer CLI under /opt/stockade-test-clients); a trial
//! whose client is missing fails saying so. Overrides: `STOCKADE_TEST_CLIENTS` (the prefix),
//! `STOCKADE_TEST_PYTHON`, `STOCKADE_DOCKER_COMPOSE`, `STOCKADE_DEVCONTAINER`.

use libtest_mimic::Failed;
use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::io::{Read, Seek};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use stockade_test_support::trials::{ensure, must, Outcome};
use stockade_test_support::{scratch_dir, unique, Gateway, Rig, TEST_IMAGE};

const STOCKADE: &str = env!("CARGO_BIN_EXE_stockade");
/// Scripts, compose files, devcontainer.json and reaper image files of these trials.
const SUPPORT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients");
const SHORT: Duration = Duration::from_secs(60);
const LONG: Duration = Duration::from_secs(240);
const INSTALL: &str = "install the test clients with `sudo scripts/install-test-clients.sh`";
/// The richer test image the devcontainer trial builds: every busybox applet and an os-release,
/// which the devcontainer CLI reads and uses (`test`, `sed`, `grep`, `getent`) while it sets the
/// container up. Must match tests/clients/devcontainer/devcontainer.json.
const FULL_IMAGE: &str = "stockade-test/busybox-full:latest";
/// The ECI wording every gateway refusal starts with.
const ECI: &str = "enhanced container isolation";

fn main() {
    stockade_test_support::trials::run(
        "client",
        Path::new(STOCKADE),
        vec![
            ("compose_project_lifecycle", compose_project_lifecycle),
            (
                "compose_privileged_service_is_refused",
                compose_privileged_service_is_refused,
            ),
            ("docker_py_everyday_calls", docker_py_everyday_calls),
            (
                "testcontainers_without_reaper",
                testcontainers_without_reaper,
            ),
            (
                "testcontainers_reaper_mounts_the_socket_by_digest",
                testcontainers_reaper_mounts_the_socket_by_digest,
            ),
            ("devcontainer_up_and_exec", devcontainer_up_and_exec),
        ],
    );
}

fn support(path: &str) -> PathBuf {
    Path::new(SUPPORT).join(path)
}

// ---------------------------------------------------------------------------------------------
// Finding the clients.

fn clients_prefix() -> PathBuf {
    std::env::var_os("STOCKADE_TEST_CLIENTS").map_or_else(
        || PathBuf::from("/opt/stockade-test-clients"),
        PathBuf::from,
    )
}

fn executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `override_var` if set, else `default`; it must be an executable file.
fn tool(what: &str, override_var: &str, default: PathBuf) -> Result<PathBuf, Failed> {
    let path = std::env::var_os(override_var).map_or(default, PathBuf::from);
    ensure(executable(&path), || {
        format!(
            "{what} not found at {} (set {override_var} to use another one): {INSTALL}",
            path.display()
        )
    })?;
    Ok(path)
}

fn in_path(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|p| executable(p))
        })
        .unwrap_or_else(|| PathBuf::from(format!("/usr/bin/{name}")))
}

fn compose_program() -> Result<PathBuf, Failed> {
    tool(
        "docker-compose (Debian's docker-compose package)",
        "STOCKADE_DOCKER_COMPOSE",
        in_path("docker-compose"),
    )
}

/// The venv's python, which must import the given modules.
fn python_with(modules: &str) -> Result<PathBuf, Failed> {
    let python = tool(
        "the test clients' python venv",
        "STOCKADE_TEST_PYTHON",
        clients_prefix().join("venv/bin/python"),
    )?;
    let done = run(
        Command::new(&python).args(["-c", &format!("import {modules}")]),
        SHORT,
    )?;
    ensure(done.success(), || {
        format!(
            "{} cannot import {modules} ({}): {INSTALL}",
            python.display(),
            done.describe()
        )
    })?;
    Ok(python)
}

fn devcontainer_program() -> Result<PathBuf, Failed> {
    tool(
        "the devcontainer CLI (npm @devcontainers/cli)",
        "STOCKADE_DEVCONTAINER",
        clients_prefix().join("node/node_modules/.bin/devcontainer"),
    )
}

// ---------------------------------------------------------------------------------------------
// Running clients: a process group each, bounded, with nothing left behind.

/// What a finished client left.
#[derive(Debug)]
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    timed_out: bool,
}

impl Ran {
    fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }

    fn describe(&self) -> String {
        // The end is what matters (a traceback's last line, a client's final error).
        let cut = |s: &str| {
            let mut start = s.len().saturating_sub(4000);
            while !s.is_char_boundary(start) {
                start += 1;
            }
            s[start..].to_owned()
        };
        format!(
            "code {:?}{}; stdout: {:?}; stderr: {:?}",
            self.code,
            if self.timed_out { " (timed out)" } else { "" },
            cut(&self.stdout),
            cut(&self.stderr)
        )
    }
}

/// A client running in a process group of its own, its output going to unlinked files (so a
/// grandchild that keeps them open cannot make a reader wait). Dropping it kills the group.
struct Running {
    child: Child,
    group: Pid,
    stdout: std::fs::File,
    stderr: std::fs::File,
    done: bool,
}

impl Running {
    fn start(command: &mut Command) -> Result<Self, Failed> {
        let stdout = tempfile::tempfile()?;
        let stderr = tempfile::tempfile()?;
        command
            .stdin(Stdio::null())
            .stdout(stdout.try_clone()?)
            .stderr(stderr.try_clone()?)
            .process_group(0);
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {command:?}: {e}"))?;
        let group = Pid::from_raw(i32::try_from(child.id())?);
        Ok(Self {
            child,
            group,
            stdout,
            stderr,
            done: false,
        })
    }

    /// Whether the group leader has exited (not yet reaped, so its group id stays reserved).
    fn exited(&self) -> bool {
        !matches!(
            waitid(
                Id::Pid(self.group),
                WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT,
            ),
            Ok(WaitStatus::StillAlive)
        )
    }

    fn read(file: &mut std::fs::File) -> String {
        let mut bytes = Vec::new();
        let _ = file.rewind();
        let _ = file.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Standard output so far.
    fn stdout_so_far(&mut self) -> String {
        Self::read(&mut self.stdout)
    }

    /// Waits up to `limit` for the client to exit, then kills whatever is left of its group.
    fn finish(mut self, limit: Duration) -> Ran {
        let deadline = Instant::now() + limit;
        let mut timed_out = false;
        while !self.exited() {
            if Instant::now() > deadline {
                timed_out = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Whatever the client left running in its group (a `docker events`, a log follower).
        let _ = killpg(self.group, Signal::SIGKILL);
        let status = self.child.wait().ok();
        self.done = true;
        Ran {
            code: status.and_then(|s| s.code()),
            stdout: Self::read(&mut self.stdout),
            stderr: Self::read(&mut self.stderr),
            timed_out,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.done {
            let _ = killpg(self.group, Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// Runs a client to completion within `limit`.
fn run(command: &mut Command, limit: Duration) -> Result<Ran, Failed> {
    Ok(Running::start(command)?.finish(limit))
}

/// Runs a client that must succeed.
fn must_run(what: &str, command: &mut Command, limit: Duration) -> Result<Ran, Failed> {
    let done = run(command, limit)?;
    ensure(done.success(), || format!("{what}: {}", done.describe()))?;
    Ok(done)
}

/// The last line of `text` that is a JSON object.
fn json_line(what: &str, text: &str) -> Result<serde_json::Value, Failed> {
    text.lines()
        .rev()
        .find_map(|l| {
            serde_json::from_str::<serde_json::Value>(l.trim())
                .ok()
                .filter(serde_json::Value::is_object)
        })
        .ok_or_else(|| format!("{what} printed no JSON object: {text:?}").into())
}

fn str_at<'a>(value: &'a serde_json::Value, key: &str) -> &'a str {
    value
        .get(key)
        .and_then(serde_json::Value::as_str)
        .unwrap_or("")
}

// ---------------------------------------------------------------------------------------------
// Looking at the engine directly.

/// Every container on the engine (name, privileged), read on the engine socket.
fn engine_containers(rig: &Rig) -> Result<Vec<(String, bool)>, Failed> {
    let direct = rig.engine_cli();
    let ids = must(&direct, &["ps", "-aq", "--no-trunc"])?;
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut args = vec!["inspect", "-f", "{{.Name}} {{.HostConfig.Privileged}}"];
    args.extend(ids);
    let out = must(&direct, &args)?;
    Ok(out
        .lines()
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(name, privileged)| {
            (
                name.trim_start_matches('/').to_owned(),
                privileged == "true",
            )
        })
        .collect())
}

fn no_privileged_container(rig: &Rig) -> Outcome {
    let privileged: Vec<String> = engine_containers(rig)?
        .into_iter()
        .filter(|(_, p)| *p)
        .map(|(n, _)| n)
        .collect();
    ensure(privileged.is_empty(), || {
        format!("privileged containers exist on the engine: {privileged:?}")
    })
}

/// Removes (on the engine) the containers carrying `label` (`k=v`) and returns their ids: what a
/// trial left behind, so that a failed trial does not disturb the next one.
fn remove_labelled(rig: &Rig, label: &str) -> Result<Vec<String>, Failed> {
    let direct = rig.engine_cli();
    let ids = must(
        &direct,
        &[
            "ps",
            "-aq",
            "--no-trunc",
            "--filter",
            &format!("label={label}"),
        ],
    )?;
    let ids: Vec<String> = ids.split_whitespace().map(str::to_owned).collect();
    for id in &ids {
        let _ = direct.run(&["rm", "-f", "-v", id], None, SHORT);
    }
    Ok(ids)
}

/// Whether `kind` (container, volume, network) `name` exists on the engine.
fn engine_has(rig: &Rig, kind: &str, name: &str) -> Result<bool, Failed> {
    let done = rig
        .engine_cli()
        .run(&[kind, "inspect", "-f", "{{.Name}}", name], None, SHORT)?;
    Ok(done.success())
}

fn wait_until(
    limit: Duration,
    mut condition: impl FnMut() -> Result<bool, Failed>,
) -> Result<bool, Failed> {
    let deadline = Instant::now() + limit;
    loop {
        if condition()? {
            return Ok(true);
        }
        if Instant::now() > deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A client command talking to `socket` like a user's shell with `DOCKER_HOST` exported.
fn client(program: &Path, socket: &Path) -> Command {
    let mut command = Command::new(program);
    command
        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_CERT_PATH")
        .env_remove("DOCKER_TLS_VERIFY")
        .env("DOCKER_CLI_HINTS", "false");
    command
}

// ---------------------------------------------------------------------------------------------
// docker compose.

/// `docker-compose -f FILE -p PROJECT ...` through `socket`.
fn compose(program: &Path, socket: &Path, file: &str, project: &str) -> Command {
    let mut command = client(program, socket);
    command
        .args(["--ansi", "never"])
        .arg("-f")
        .arg(support(file))
        .arg("-p")
        .arg(project)
        .env("STOCKADE_TEST_IMAGE", TEST_IMAGE)
        .env("COMPOSE_HTTP_TIMEOUT", "60");
    command
}

/// `up -d`, `ps`, `logs`, `exec` (compose's own docker-py exec and its docker CLI one) and
/// `down -v` of a project with a named volume and a user network, each checked on the engine.
fn compose_project_lifecycle(rig: &Rig) -> Outcome {
    let program = compose_program()?;
    let socket = rig.gateway.socket().to_owned();
    let project = unique("compose");
    let container = format!("{project}_app_1");
    let volume = format!("{project}_appdata");
    let network = format!("{project}_backend");
    let dc = || compose(&program, &socket, "compose/project.yml", &project);
    let result = (|| -> Outcome {
        must_run("docker-compose up -d", dc().args(["up", "-d"]), LONG)?;
        // The effect, on the engine: the service runs on the user network with the volume, and
        // carries its creator's owner label.
        let direct = rig.engine_cli();
        let seen = must(
            &direct,
            &[
                "inspect",
                "-f",
                "{{.State.Running}} {{index .Config.Labels \"io.stockade.owner\"}} {{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}{{range .Mounts}}{{.Name}}{{end}}",
                &container,
            ],
        )?;
        ensure(seen.trim() == format!("true 0 {network} {volume}"), || {
            format!("the compose container on the engine: {seen:?}")
        })?;
        ensure(engine_has(rig, "volume", &volume)?, || {
            format!("volume {volume} is not on the engine")
        })?;
        ensure(engine_has(rig, "network", &network)?, || {
            format!("network {network} is not on the engine")
        })?;
        // A second `up` finds the project as it left it and recreates nothing.
        let id = |what: &str| must(&direct, &["inspect", "-f", "{{.Id}}", what]);
        let first = id(&container)?;
        let again = must_run(
            "a second docker-compose up -d",
            dc().args(["up", "-d"]),
            LONG,
        )?;
        ensure(again.stderr.contains("is up-to-date"), || {
            format!("a second docker-compose up -d: {}", again.describe())
        })?;
        ensure(id(&container)? == first, || {
            "a second docker-compose up -d recreated the container".into()
        })?;

        let ps = must_run("docker-compose ps", dc().arg("ps"), SHORT)?;
        ensure(
            ps.stdout.contains(&container) && ps.stdout.contains("Up"),
            || format!("docker-compose ps: {}", ps.describe()),
        )?;
        let logs = must_run(
            "docker-compose logs",
            dc().args(["logs", "--no-color"]),
            SHORT,
        )?;
        ensure(logs.stdout.contains("compose-app-started"), || {
            format!("docker-compose logs: {}", logs.describe())
        })?;
        // compose's own exec (docker-py, exec start with Upgrade): output and exit code.
        let exec = run(
            dc().env("COMPOSE_INTERACTIVE_NO_CLI", "1").args([
                "exec",
                "-T",
                "app",
                "sh",
                "-c",
                "cat /data/marker; exit 7",
            ]),
            SHORT,
        )?;
        ensure(
            exec.code == Some(7) && exec.stdout.contains("from-the-volume"),
            || format!("docker-compose exec (docker-py): {}", exec.describe()),
        )?;
        // The default exec, which hands over to the docker CLI.
        let exec = must_run(
            "docker-compose exec (docker CLI)",
            dc().args(["exec", "-T", "app", "cat", "/data/marker"]),
            SHORT,
        )?;
        ensure(exec.stdout.trim() == "from-the-volume", || {
            format!("docker-compose exec (docker CLI): {}", exec.describe())
        })?;

        must_run("docker-compose down -v", dc().args(["down", "-v"]), LONG)?;
        for (kind, name) in [
            ("container", &container),
            ("volume", &volume),
            ("network", &network),
        ] {
            ensure(!engine_has(rig, kind, name)?, || {
                format!("{kind} {name} is still on the engine after down -v")
            })?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = run(dc().args(["down", "-v"]), LONG);
    }
    result
}

/// A compose service with `privileged: true` is refused with the ECI message, and no privileged
/// container (nor any container of the project) exists on the engine afterwards.
fn compose_privileged_service_is_refused(rig: &Rig) -> Outcome {
    let program = compose_program()?;
    let socket = rig.gateway.socket().to_owned();
    let project = unique("composepriv");
    let dc = || compose(&program, &socket, "compose/privileged.yml", &project);
    let result = (|| -> Outcome {
        let up = run(dc().args(["up", "-d"]), LONG)?;
        ensure(
            !up.success()
                && up.stderr.contains(ECI)
                && up.stderr.contains("privileged containers are not allowed"),
            || {
                format!(
                    "docker-compose up of a privileged service: {}",
                    up.describe()
                )
            },
        )?;
        no_privileged_container(rig)?;
        let of_project = must(
            &rig.engine_cli(),
            &[
                "ps",
                "-aq",
                "--filter",
                &format!("label=com.docker.compose.project={project}"),
            ],
        )?;
        ensure(of_project.trim().is_empty(), || {
            format!("the refused project left containers: {of_project:?}")
        })
    })();
    let down = run(dc().args(["down", "-v"]), LONG);
    result?;
    let down = down?;
    ensure(down.success(), || {
        format!("docker-compose down after the refusal: {}", down.describe())
    })
}

// ---------------------------------------------------------------------------------------------
// docker-py.

/// docker-py's everyday calls (tests/clients/docker_py.py) and a privileged run refused with
/// the ECI message, judged on the engine.
fn docker_py_everyday_calls(rig: &Rig) -> Outcome {
    let python = python_with("docker")?;
    let prefix = unique("dockerpy");
    let done = must_run(
        "docker_py.py",
        client(&python, rig.gateway.socket())
            .arg(support("docker_py.py"))
            .args([TEST_IMAGE, &prefix]),
        LONG,
    );
    let leftovers = remove_labelled(rig, &format!("io.stockade.test={prefix}"));
    let done = done?;
    let seen = json_line("docker_py.py", &done.stdout)?;
    let expect = |key: &str, want: &serde_json::Value| {
        ensure(seen.get(key) == Some(want), || {
            format!("docker-py {key}: want {want}, saw {seen}")
        })
    };
    // stdout and stderr come as the engine multiplexed them: in either order.
    let lines = |key: &str| {
        let mut lines: Vec<&str> = str_at(&seen, key).lines().collect();
        lines.sort_unstable();
        lines
    };
    ensure(
        lines("run_output") == ["hello-from-docker-py", "to-stderr"],
        || format!("docker-py containers.run output: {seen}"),
    )?;
    expect("streamed_logs", &"line-1\nline-2\nline-3\n".into())?;
    expect("exec_exit_code", &3.into())?;
    ensure(lines("exec_output") == ["exec-err", "exec-out"], || {
        format!("docker-py exec_run output: {seen}")
    })?;
    expect("exec_stream", &"1\n2\n3\n4\n5\n".into())?;
    expect("listed", &serde_json::json!([format!("{prefix}-logs")]))?;
    expect("volume_created", &format!("{prefix}-vol").into())?;
    expect("volume_listed_after_remove", &serde_json::json!([]))?;
    expect("network_created", &format!("{prefix}-net").into())?;
    expect("network_listed_after_remove", &serde_json::json!([]))?;
    let tags = seen.get("image_tags").and_then(serde_json::Value::as_array);
    ensure(
        tags.is_some_and(|t| t.iter().any(|t| t.as_str() == Some(TEST_IMAGE))),
        || format!("images.list did not show {TEST_IMAGE}: {seen}"),
    )?;
    expect("privileged", &"refused".into())?;
    expect("privileged_status", &403.into())?;
    let message = str_at(&seen, "privileged_message");
    ensure(
        message.starts_with(ECI) && message.contains("privileged containers are not allowed"),
        || format!("the privileged run's APIError: {message:?}"),
    )?;
    // The effects, on the engine: nothing privileged, nothing of the trial left behind.
    no_privileged_container(rig)?;
    ensure(
        !engine_has(rig, "container", &format!("{prefix}-priv"))?,
        || "the refused privileged run left a container".into(),
    )?;
    ensure(leftovers?.is_empty(), || {
        "docker-py's containers outlived their removal".into()
    })?;
    ensure(
        !engine_has(rig, "volume", &format!("{prefix}-vol"))?
            && !engine_has(rig, "network", &format!("{prefix}-net"))?,
        || "the removed volume or network is still on the engine".into(),
    )
}

// ---------------------------------------------------------------------------------------------
// testcontainers-python.

/// The environment testcontainers gets: this host has a /.dockerenv, which makes testcontainers
/// believe it runs inside a container and look for a gateway address; it must connect to the
/// reaper's published port on the loopback address instead.
fn testcontainers(python: &Path, socket: &Path, script: &str) -> Command {
    let mut command = client(python, socket);
    command
        .arg(support(script))
        .env("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
        .env("TESTCONTAINERS_CONNECTION_MODE", "docker_host")
        .env_remove("TESTCONTAINERS_RYUK_DISABLED")
        .env_remove("RYUK_CONTAINER_IMAGE")
        .env_remove("TESTCONTAINERS_DOCKER_SOCKET_OVERRIDE");
    command
}

/// A generic DockerContainer from the local test image with the reaper disabled: start, logs,
/// exec, stop, checked on the engine.
fn testcontainers_without_reaper(rig: &Rig) -> Outcome {
    let python = python_with("testcontainers.core.container")?;
    let done = must_run(
        "testcontainers_generic.py",
        testcontainers(&python, rig.gateway.socket(), "testcontainers_generic.py")
            .env("TESTCONTAINERS_RYUK_DISABLED", "true")
            .arg(TEST_IMAGE),
        LONG,
    );
    let leftovers = remove_labelled(rig, "org.testcontainers=true");
    let done = done?;
    let seen = json_line("testcontainers_generic.py", &done.stdout)?;
    ensure(seen.get("ryuk_disabled") == Some(&true.into()), || {
        format!("the reaper was not disabled: {seen}")
    })?;
    ensure(
        str_at(&seen, "stdout") == "hello-from-testcontainers\n"
            && str_at(&seen, "exec") == "exec-through-testcontainers\n",
        || format!("testcontainers logs and exec: {seen}"),
    )?;
    let labels = seen.get("labels").cloned().unwrap_or_default();
    ensure(
        labels.get("org.testcontainers") == Some(&"true".into())
            && labels.get("io.stockade.owner") == Some(&"0".into()),
        || format!("the container's labels: {labels}"),
    )?;
    let id = str_at(&seen, "id");
    ensure(!id.is_empty() && !engine_has(rig, "container", id)?, || {
        format!("container {id:?} is still on the engine after stop")
    })?;
    ensure(leftovers?.is_empty(), || {
        "testcontainers left containers behind (a reaper although disabled?)".into()
    })
}

/// The host's docker CLI (first, symlinks resolved) and the shared libraries `ldd` lists for it,
/// each to be copied to the same path in the image.
fn docker_cli_files() -> Result<Vec<PathBuf>, Failed> {
    let docker = in_path("docker");
    ensure(executable(&docker), || {
        "no docker CLI in PATH to put into the reaper image".into()
    })?;
    let docker = std::fs::canonicalize(&docker)?;
    let mut files = vec![docker.clone()];
    // A static binary makes ldd fail with "not a dynamic executable": nothing more to copy.
    let ldd = run(Command::new("ldd").arg(&docker), SHORT)?;
    if ldd.success() {
        for line in ldd.stdout.lines() {
            let path = match line.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next(),
                None => line.split_whitespace().next(),
            };
            if let Some(path) = path.filter(|p| p.starts_with('/')) {
                files.push(PathBuf::from(path));
            }
        }
    }
    Ok(files)
}

/// Builds the reaper image (busybox, the docker CLI, tests/clients/reaper/*.sh) on the engine
/// and pushes it to the rig's registry as `REPO:TAG`; `extra` is another `docker import -c`
/// change (to make a different image). Returns its registry digest reference `REPO@sha256:...`.
fn reaper_image(rig: &Rig, repo: &str, tag: &str, extra: &str) -> Result<String, Failed> {
    let dir = scratch_dir("reaper")?;
    let rootfs = dir.join("rootfs");
    stockade_test_support::busybox_rootfs(
        &rootfs,
        &[
            "sh", "nc", "cat", "tr", "echo", "printf", "sleep", "test", "[", "ls", "env",
        ],
    )?;
    for d in ["var/run", "reaper"] {
        std::fs::create_dir_all(rootfs.join(d))?;
    }
    let files = docker_cli_files()?;
    let docker_dir = files
        .first()
        .and_then(|docker| docker.parent())
        .map_or_else(|| "/usr/bin".to_owned(), |dir| dir.display().to_string());
    for file in &files {
        let target = rootfs.join(file.strip_prefix("/")?);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(file, &target)?;
    }
    for script in ["reaper.sh", "session.sh"] {
        let target = rootfs.join("reaper").join(script);
        std::fs::copy(support("reaper").join(script), &target)?;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))?;
    }
    let name = format!("{repo}:{tag}");
    let direct = rig.engine_cli();
    let imported = stockade_test_support::import_rootfs(
        &rig.engine.socket(),
        &rootfs,
        &[
            &format!("ENV PATH={docker_dir}:/usr/bin:/bin"),
            "CMD [\"/reaper/reaper.sh\"]",
            extra,
        ],
        &name,
    );
    let _ = std::fs::remove_dir_all(&dir);
    imported?;
    must(&direct, &["push", &name])?;
    let digests = must(&direct, &["inspect", "-f", "{{json .RepoDigests}}", &name])?;
    let digests: Vec<String> = serde_json::from_str(digests.trim())?;
    digests
        .into_iter()
        .find(|d| d.starts_with(&format!("{repo}@sha256:")))
        .ok_or_else(|| format!("{name} has no registry digest after the push").into())
}

/// testcontainers with its reaper: a locally built Ryuk-style image, listed BY DIGEST in
/// dockerSocketMount.imageList, mounts the socket, gets its own held socket, may run only what
/// commandList allows, and removes the session's container once the session ends. An image not
/// in the list (same repository, other digest) cannot mount the socket.
#[allow(clippy::too_many_lines)]
fn testcontainers_reaper_mounts_the_socket_by_digest(rig: &Rig) -> Outcome {
    let python = python_with("testcontainers.core.container")?;
    let repo = format!("{}/stockade-test/reaper", rig.registry.host());
    let tag = unique("r");
    let listed = reaper_image(rig, &repo, &tag, "LABEL io.stockade.test.reaper=listed")?;
    let unlisted_tag = format!("{tag}-unlisted");
    let unlisted = reaper_image(
        rig,
        &repo,
        &unlisted_tag,
        "LABEL io.stockade.test.reaper=unlisted",
    );
    let dir = scratch_dir("tcreaper")?;
    let result = (|| -> Outcome {
        let unlisted = unlisted?;
        ensure(unlisted != listed, || {
            "the unlisted reaper image has the listed one's digest".into()
        })?;
        let policy = dir.join("policy.json");
        std::fs::write(
            &policy,
            stockade_test_support::rig_policy(&[
                (
                    "enhancedContainerIsolation",
                    serde_json::json!({"locked": true, "value": true, "dockerSocketMount": {
                        "imageList": {"images": [listed], "allowDerivedImages": false},
                        "commandList": {"type": "allow", "commands": ["ps", "rm", "network*", "volume*"]}}}),
                ),
                (
                    "registryAccess",
                    serde_json::json!({"locked": true, "allowedRegistries": ["docker.io", rig.registry.host()]}),
                ),
            ]),
        )?;
        let gateway = Gateway::start(
            &rig.stockade,
            &rig.engine.socket(),
            &dir.join("docker.sock"),
            &["--policy", &policy.to_string_lossy()],
        )?;
        let cli = gateway.cli();
        let direct = rig.engine_cli();

        // The session: testcontainers starts the reaper (by tag; the gateway finds its digest),
        // registers its session label, starts the test container, then waits for GO.
        let go = dir.join("go");
        let mut session = Running::start(
            testcontainers(&python, gateway.socket(), "testcontainers_reaper.py")
                .env("RYUK_CONTAINER_IMAGE", format!("{repo}:{tag}"))
                .arg(TEST_IMAGE)
                .arg(&go),
        )?;
        let mut seen = None;
        let up = wait_until(LONG, || {
            seen = json_line("", &session.stdout_so_far()).ok();
            Ok(seen.is_some() || session.exited())
        })?;
        let Some(seen) = seen.filter(|_| up) else {
            let ran = session.finish(SHORT);
            return Err(format!("the reaper session did not start: {}", ran.describe()).into());
        };
        if seen.get("started") != Some(&true.into()) {
            let ran = session.finish(SHORT);
            return Err(format!("the reaper session: {seen}; {}", ran.describe()).into());
        }
        let id = str_at(&seen, "id").to_owned();
        let reaper = str_at(&seen, "reaper_id").to_owned();
        let checks = (|| -> Outcome {
            // On the engine: the reaper's socket mount points at a socket of its own.
            let source = must(
                &direct,
                &[
                    "inspect",
                    "-f",
                    "{{range .Mounts}}{{.Source}}{{end}}",
                    &reaper,
                ],
            )?;
            let own = format!("{}.containers/", gateway.socket().display());
            ensure(source.trim().starts_with(&own), || {
                format!("the reaper's socket mount points at {source:?}, not under {own}")
            })?;
            let label = must(
                &direct,
                &[
                    "inspect",
                    "-f",
                    "{{index .Config.Labels \"org.testcontainers.session-id\"}}",
                    &id,
                ],
            )?;
            ensure(
                str_at(&seen, "session_label").ends_with(label.trim()) && !label.trim().is_empty(),
                || format!("the test container's session label: {label:?}, session {seen}"),
            )?;
            // From inside the reaper: what commandList allows works ...
            let ps = cli.run(
                &["exec", &reaper, "docker", "ps", "-q", "--no-trunc"],
                None,
                SHORT,
            )?;
            ensure(ps.success() && ps.stdout.contains(&id), || {
                format!("docker ps inside the reaper: {}", ps.describe())
            })?;
            // ... and what it does not is refused, with nothing done.
            let images = cli.run(&["exec", &reaper, "docker", "images"], None, SHORT)?;
            ensure(
                !images.success()
                    && images.stderr.contains(ECI)
                    && images.stderr.contains("is blocked")
                    && images.stderr.contains("commandList"),
                || format!("docker images inside the reaper: {}", images.describe()),
            )?;
            let before = must(&direct, &["ps", "-aq"])?;
            let create = cli.run(
                &["exec", &reaper, "docker", "create", TEST_IMAGE, "true"],
                None,
                SHORT,
            )?;
            ensure(
                !create.success() && create.stderr.contains("is blocked"),
                || format!("docker create inside the reaper: {}", create.describe()),
            )?;
            let after = must(&direct, &["ps", "-aq"])?;
            ensure(before == after, || {
                format!(
                    "a refused create from the reaper made a container: {before:?} then {after:?}"
                )
            })
        })();
        // End the session; the reaper must remove the test container, then go itself.
        std::fs::write(&go, "")?;
        let ran = session.finish(SHORT);
        checks?;
        ensure(ran.success(), || {
            format!("the reaper session: {}", ran.describe())
        })?;
        let reaped = wait_until(SHORT, || Ok(!engine_has(rig, "container", &id)?))?;
        ensure(reaped, || {
            format!("the reaper did not remove the session's container {id}")
        })?;
        let gone = wait_until(SHORT, || Ok(!engine_has(rig, "container", &reaper)?))?;
        ensure(gone, || format!("the reaper container {reaper} did not go"))?;

        // An image not in the list (same repository, another digest) may not mount the socket.
        let refused = must_run(
            "testcontainers_reaper.py with an unlisted reaper",
            testcontainers(&python, gateway.socket(), "testcontainers_reaper.py")
                .env("RYUK_CONTAINER_IMAGE", format!("{repo}:{unlisted_tag}"))
                .arg(TEST_IMAGE)
                .arg(&go),
            LONG,
        )?;
        let seen = json_line("testcontainers_reaper.py", &refused.stdout)?;
        let message = str_at(&seen, "message");
        ensure(
            seen.get("started") == Some(&false.into())
                && seen.get("status") == Some(&403.into())
                && message.starts_with(ECI)
                && message.contains("docker socket mount denied"),
            || format!("the unlisted reaper: {seen}"),
        )?;
        let session = str_at(&seen, "session_label")
            .rsplit('=')
            .next()
            .unwrap_or("");
        ensure(
            !session.is_empty()
                && !engine_has(rig, "container", &format!("testcontainers-ryuk-{session}"))?,
            || "the refused reaper left a container".into(),
        )?;
        let of_image = must(
            &direct,
            &[
                "ps",
                "-aq",
                "--filter",
                &format!("ancestor={repo}:{unlisted_tag}"),
            ],
        )?;
        ensure(of_image.trim().is_empty(), || {
            format!("containers of the unlisted image exist: {of_image:?}")
        })
    })();
    let _ = remove_labelled(rig, "org.testcontainers=true");
    let direct = rig.engine_cli();
    let _ = direct.run(
        &[
            "rmi",
            "-f",
            &format!("{repo}:{tag}"),
            &format!("{repo}:{unlisted_tag}"),
        ],
        None,
        SHORT,
    );
    let _ = std::fs::remove_dir_all(&dir);
    result
}

// ---------------------------------------------------------------------------------------------
// devcontainer CLI.

/// Imports [`FULL_IMAGE`] on the engine: every busybox applet, an os-release and a group file.
fn full_test_image(rig: &Rig) -> Outcome {
    let dir = scratch_dir("fullimg")?;
    let rootfs = dir.join("rootfs");
    let list = must_run(
        "busybox --list",
        Command::new("/bin/busybox").arg("--list"),
        SHORT,
    )?;
    let applets: Vec<&str> = list
        .stdout
        .split_whitespace()
        .filter(|a| *a != "busybox")
        .collect();
    stockade_test_support::busybox_rootfs(&rootfs, &applets)?;
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\n")?;
    std::fs::write(
        rootfs.join("etc/os-release"),
        "NAME=\"Stockade test busybox\"\nID=busybox\nVERSION_ID=1\nPRETTY_NAME=\"Stockade test busybox\"\n",
    )?;
    let imported = stockade_test_support::import_rootfs(
        &rig.engine.socket(),
        &rootfs,
        &["ENV PATH=/bin", "CMD [\"/bin/sh\"]"],
        FULL_IMAGE,
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(imported?)
}

/// `devcontainer up` of a workspace under $TMP (a shared directory of the default policy) whose
/// devcontainer.json names a local image, then `devcontainer exec`, then removal.
fn devcontainer_up_and_exec(rig: &Rig) -> Outcome {
    let program = devcontainer_program()?;
    full_test_image(rig)?;
    let workspace = scratch_dir("devc")?;
    let name = workspace
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    std::fs::create_dir_all(workspace.join(".devcontainer"))?;
    std::fs::copy(
        support("devcontainer/devcontainer.json"),
        workspace.join(".devcontainer/devcontainer.json"),
    )?;
    std::fs::write(workspace.join("marker.txt"), "from-the-host-workspace\n")?;
    let socket = rig.gateway.socket().to_owned();
    let home = scratch_dir("devchome")?;
    let devcontainer = |args: &[&str]| {
        let mut command = client(&program, &socket);
        command
            .args(args)
            .arg("--workspace-folder")
            .arg(&workspace)
            // The CLI keeps state under $HOME; keep it out of root's.
            .env("HOME", &home);
        command
    };
    let mut container = String::new();
    let result = (|| -> Outcome {
        let up = must_run("devcontainer up", &mut devcontainer(&["up"]), LONG)?;
        let seen = json_line("devcontainer up", &up.stdout)?;
        container = str_at(&seen, "containerId").to_owned();
        ensure(
            str_at(&seen, "outcome") == "success" && !container.is_empty(),
            || format!("devcontainer up: {}", up.describe()),
        )?;
        let remote = format!("/workspaces/{name}");
        ensure(str_at(&seen, "remoteWorkspaceFolder") == remote, || {
            format!("devcontainer up's workspace folder: {seen}")
        })?;
        // On the engine: the container runs the local image with the workspace bind-mounted.
        let mounts = must(
            &rig.engine_cli(),
            &[
                "inspect",
                "-f",
                "{{.State.Running}} {{.Config.Image}} {{range .Mounts}}{{.Source}}:{{.Destination}}{{end}}",
                &container,
            ],
        )?;
        ensure(
            mounts.trim() == format!("true {FULL_IMAGE} {}:{remote}", workspace.display()),
            || format!("the devcontainer on the engine: {mounts:?}"),
        )?;
        let exec = must_run(
            "devcontainer exec",
            devcontainer(&["exec"]).args([
                "sh",
                "-c",
                "echo \"exec-in-devcontainer $STOCKADE_DEVCONTAINER $(pwd)\"; cat marker.txt",
            ]),
            LONG,
        )?;
        ensure(
            exec.stdout.contains(&format!(
                "exec-in-devcontainer yes {remote}\nfrom-the-host-workspace\n"
            )),
            || format!("devcontainer exec: {}", exec.describe()),
        )?;
        // Removed the way a user would: through the gateway.
        must(&rig.cli(), &["rm", "-f", &container])?;
        ensure(!engine_has(rig, "container", &container)?, || {
            format!("the devcontainer {container} is still on the engine")
        })
    })();
    if !container.is_empty() {
        let _ = rig.engine_cli().run(&["rm", "-f", &container], None, SHORT);
    }
    let _ = std::fs::remove_dir_all(&workspace);
    let _ = std::fs::remove_dir_all(&home);
    result
}
