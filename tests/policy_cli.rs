//! `stockade policy check` and `show` run as a user would: every file of the bad corpus gives
//! exit 1 and exactly its expected lines, every good one exit 0; `show` reports sources.

#![allow(clippy::unwrap_used)] // a test binary: a failed setup step should panic with its error

use std::path::Path;
use std::process::Command;

const STOCKADE: &str = env!("CARGO_BIN_EXE_stockade");

fn corpus(kind: &str) -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/policy")
        .join(kind);
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

#[test]
fn check_lists_every_error_with_position_and_exits_1() {
    let files = corpus("bad");
    assert!(files.len() >= 30);
    for file in files {
        let out = Command::new(STOCKADE)
            .args(["policy", "check"])
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", file.display());
        let stderr = String::from_utf8(out.stderr).unwrap();
        let expected = std::fs::read_to_string(file.with_extension("expected")).unwrap();
        let name = file.file_name().unwrap().to_str().unwrap();
        for line in expected.lines() {
            // The corpus names the file by its name only; the command names it as given.
            let line = line.replacen(name, &file.display().to_string(), 1);
            assert!(
                stderr.contains(&line),
                "{name}: missing {line:?} in\n{stderr}"
            );
        }
    }
}

#[test]
fn check_accepts_good_files_and_the_examples() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files = corpus("good");
    for entry in std::fs::read_dir(examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            files.push(path);
        }
    }
    assert!(files.len() >= 7);
    for file in files {
        let out = Command::new(STOCKADE)
            .args(["policy", "check"])
            .arg(&file)
            .output()
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(out.status.code(), Some(0), "{}: {stdout}", file.display());
        assert!(stdout.contains(": valid (sha256 "), "{stdout}");
    }
}

#[test]
fn show_names_the_source_of_each_value() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("admin-settings.json");
    std::fs::write(
        &file,
        r#"{"configurationFileVersion": 2,
            "enhancedContainerIsolation": {"locked": false, "value": true},
            "blockDockerLoad": {"locked": true, "value": false}}"#,
    )
    .unwrap();
    let out = Command::new(STOCKADE)
        .args(["policy", "show", "--json", "--policy"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let source = |key: &str| {
        shown["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["key"] == key)
            .map(|k| (k["value"].clone(), k["source"].clone()))
            .unwrap()
    };
    assert_eq!(source("blockDockerLoad.value").0, false);
    assert_eq!(source("enhancedContainerIsolation.value").0, true);
    assert_ne!(
        source("blockDockerLoad.value").1,
        source("exposeDockerAPIOnTCP2375.value").1,
        "an admin value and a built-in one must show different sources"
    );
    // A broken file: exit 1, no settings printed.
    std::fs::write(&file, "{").unwrap();
    let out = Command::new(STOCKADE)
        .args(["policy", "show", "--policy"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
}

#[test]
fn show_engine_config_merges_daemon_options_under_the_hardening() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("admin-settings.json");
    std::fs::write(
        &policy,
        r#"{"configurationFileVersion": 2,
  "linuxVM": {"dockerDaemonOptions": {"locked": true, "value": "{\"debug\": true, \"log-driver\": \"local\"}"}},
  "proxy": {"locked": true, "mode": "manual", "http": "http://proxy.corp:3128", "https": "http://proxy.corp:3128", "exclude": "localhost,.corp"}}"#,
    )
    .unwrap();
    let out = Command::new(STOCKADE)
        .args([
            "policy",
            "show",
            "--engine-config",
            "--state-dir",
            "/srv/stk",
            "--policy",
        ])
        .arg(&policy)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let start = stdout.find('{').unwrap();
    let end = stdout.rfind('}').unwrap();
    let config: serde_json::Value = serde_json::from_str(&stdout[start..=end]).unwrap();
    assert_eq!(config["debug"], true);
    assert_eq!(config["log-driver"], "local");
    assert_eq!(config["userns-remap"], "default");
    assert_eq!(
        config["hosts"],
        serde_json::json!(["unix:///srv/stk/engine.sock"])
    );
    assert!(
        stdout.contains("# egress filter: upstream PROXY proxy.corp:3128"),
        "{stdout}"
    );
    assert!(
        stdout.contains("# egress filter: allows docker.io"),
        "{stdout}"
    );
    assert!(
        stdout.contains("# egress filter: direct for localhost, .corp"),
        "{stdout}"
    );

    // An option that would weaken isolation is a policy error, and the engine never sees it.
    std::fs::write(
        &policy,
        r#"{"configurationFileVersion": 2,
  "linuxVM": {"dockerDaemonOptions": {"locked": true, "value": "{\"default-runtime\": \"x\"}"}}}"#,
    )
    .unwrap();
    let out = Command::new(STOCKADE)
        .args(["policy", "show", "--engine-config", "--policy"])
        .arg(&policy)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("`default-runtime` is managed by stockade")
    );
}

fn explain(args: &[&str], stdin: Option<&str>) -> (Option<i32>, String) {
    use std::io::Write as _;
    let mut child = Command::new(STOCKADE)
        .args(["policy", "explain"])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn explain_gives_the_decision_and_the_rule() {
    let policy =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/policy/default-admin-settings.json");
    let p = policy.to_str().unwrap();
    for (args, stdin, code, words) in [
        (
            vec!["--", "docker", "run", "--rm", "--privileged", "busybox"],
            None,
            1,
            "rule: eci.privileged",
        ),
        (
            vec!["--", "docker", "run", "--cap-add=SYS_ADMIN", "busybox"],
            None,
            1,
            "rule: eci.capabilities",
        ),
        (
            vec![
                "--", "docker", "run", "-it", "--rm", "--tmpfs", "/t", "busybox", "sh",
            ],
            None,
            0,
            "decision: allow",
        ),
        (
            vec!["--", "docker", "pull", "quay.io/x/y:1"],
            None,
            1,
            "registry access to quay.io is not allowed",
        ),
        (
            vec!["--", "docker", "exec", "--privileged", "c", "sh"],
            None,
            1,
            "rule: eci.exec_privileged",
        ),
        (
            vec!["--", "docker", "load", "-i", "/nonexistent"],
            None,
            2,
            "cannot read /nonexistent",
        ),
        (
            vec!["--route", "POST /v1.43/containers/create"],
            Some(r#"{"Image":"busybox","HostConfig":{"IpcMode":"host"}}"#),
            1,
            "IpcMode=host",
        ),
        (
            vec!["--route", "POST /containers/create"],
            Some(r#"{"Image":"x","image":"y"}"#),
            1,
            "malformed",
        ),
        (vec!["--route", "GET /plugins"], None, 1, "rule: route"),
        (
            vec!["--", "docker", "run", "--no-such-flag", "x"],
            None,
            2,
            "does not know the docker run flag",
        ),
    ] {
        let mut all = vec!["--policy", p];
        all.extend(&args);
        let (status, text) = explain(&all, stdin);
        assert_eq!(status, Some(code), "{args:?}: {text}");
        assert!(text.contains(words), "{args:?}: {text}");
    }
    // A build: the Dockerfile is read from the context directory.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "ARG R=docker.io\nFROM ${R}/library/busybox\n",
    )
    .unwrap();
    let ctx = dir.path().to_str().unwrap();
    let (status, text) = explain(
        &["--policy", p, "--", "docker", "build", "-t", "x", ctx],
        None,
    );
    assert_eq!(status, Some(0), "{text}");
    let (status, text) = explain(
        &[
            "--policy",
            p,
            "--",
            "docker",
            "build",
            "--build-arg",
            "R=ghcr.io",
            ctx,
        ],
        None,
    );
    assert_eq!(status, Some(1), "{text}");
    assert!(
        text.contains("registry access to ghcr.io is not allowed (Dockerfile line 2: FROM"),
        "{text}"
    );
}
