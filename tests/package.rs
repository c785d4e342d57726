//! The Debian package end to end: built from this tree around the `stockade` binary under test,
//! then installed, weakened, upgraded, removed and purged on a throw-away Debian 12 booted with
//! systemd as PID 1 (debootstrap + systemd-nspawn), where Debian's docker.io runs first, as on a
//! real host. The steps and what each checks are in `tests/package/install-upgrade-remove.sh`.

#![allow(clippy::expect_used)] // a test binary: a failed setup step should panic with its error

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const STOCKADE: &str = env!("CARGO_BIN_EXE_stockade");
/// The first run downloads the Debian root (~3 minutes here); later runs reuse it.
const LIMIT: Duration = Duration::from_secs(20 * 60);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a command to its end within `limit`, with its output captured.
fn run_bounded(command: &mut Command, limit: Duration) -> (bool, String) {
    let out =
        std::env::temp_dir().join(format!("stockade-package-test-{}.log", std::process::id()));
    let file = std::fs::File::create(&out).expect("create the output file");
    let mut child = command
        .stdout(file.try_clone().expect("clone the output file"))
        .stderr(file)
        .stdin(Stdio::null())
        .spawn()
        .expect("start the command");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the command") {
            break Some(status);
        }
        if started.elapsed() > limit {
            // The script stops what it started on SIGTERM (its EXIT trap).
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid")),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let _ = std::fs::remove_file(&out);
    (status.is_some_and(|s| s.success()), text)
}

#[test]
fn package_installs_takes_over_upgrades_and_gives_the_socket_back() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the package test boots a Debian root with systemd-nspawn and needs root: run it with sudo"
    );
    for tool in ["dpkg-buildpackage", "dh", "debootstrap", "systemd-nspawn"] {
        assert!(
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success()),
            "{tool} is missing: apt-get install debhelper debootstrap systemd-container (.ci/run does)"
        );
    }
    let work = tempfile::Builder::new()
        .prefix("stockade-package-")
        .tempdir_in("/var/tmp")
        .expect("scratch directory");
    let out = work.path().join("deb");
    let (built, log) = run_bounded(
        Command::new(repo().join("scripts/build-deb.sh"))
            .arg("--binary")
            .arg(STOCKADE)
            .arg("--out")
            .arg(&out)
            .current_dir(repo()),
        Duration::from_secs(600),
    );
    assert!(built, "scripts/build-deb.sh failed:\n{log}");
    let deb = PathBuf::from(log.lines().last().unwrap_or_default().trim());
    assert!(
        deb.extension().is_some_and(|e| e == "deb") && deb.is_file(),
        "build-deb.sh did not name a package: {log}"
    );
    check_contents(&deb);
    let (passed, log) = run_bounded(
        Command::new(repo().join("tests/package/install-upgrade-remove.sh"))
            .arg(&deb)
            .arg(work.path().join("run")),
        LIMIT,
    );
    assert!(passed, "the package trial failed:\n{log}");
    assert!(log.contains("package-test: PASS"), "{log}");
}

/// What the package holds: the binary, the policy as a conffile, both units, man pages and
/// completions generated from the command line.
fn check_contents(deb: &Path) {
    let listing = Command::new("dpkg-deb")
        .arg("-c")
        .arg(deb)
        .output()
        .expect("dpkg-deb -c");
    let listing = String::from_utf8_lossy(&listing.stdout).to_string();
    for path in [
        "./usr/bin/stockade",
        "./etc/stockade/admin-settings.json",
        "./etc/default/stockade",
        "./lib/systemd/system/stockade-engine.service",
        "./lib/systemd/system/stockade-gateway.service",
        "./usr/share/man/man1/stockade.1.gz",
        "./usr/share/man/man1/stockade-serve.1.gz",
        "./usr/share/man/man1/stockade-policy-check.1.gz",
        "./usr/share/bash-completion/completions/stockade",
        "./usr/share/zsh/vendor-completions/_stockade",
        "./usr/share/fish/vendor_completions.d/stockade.fish",
        "./usr/share/stockade/admin-settings.schema.json",
    ] {
        assert!(
            listing.lines().any(|l| l.ends_with(path)),
            "the package lacks {path}:\n{listing}"
        );
    }
    let conffiles = Command::new("dpkg-deb")
        .arg("--info")
        .arg(deb)
        .arg("conffiles")
        .output()
        .expect("dpkg-deb --info conffiles");
    let conffiles = String::from_utf8_lossy(&conffiles.stdout).to_string();
    assert!(
        conffiles
            .lines()
            .any(|l| l == "/etc/stockade/admin-settings.json"),
        "the policy is not a conffile: {conffiles}"
    );
    // The policy shipped is the built-in default, byte for byte.
    let extracted = tempfile::tempdir().expect("scratch directory");
    let status = Command::new("dpkg-deb")
        .arg("-x")
        .arg(deb)
        .arg(extracted.path())
        .status()
        .expect("dpkg-deb -x");
    assert!(status.success(), "dpkg-deb -x failed");
    let policy = std::fs::read(extracted.path().join("etc/stockade/admin-settings.json"))
        .expect("the packaged policy");
    let default = std::fs::read(repo().join("crates/policy/default-admin-settings.json"))
        .expect("the built-in policy");
    assert_eq!(
        policy, default,
        "the packaged policy is not the built-in default"
    );
}
