//! The gateway end to end: the stock docker CLI through `stockade serve` against a real userns
//! dockerd and a real registry. One rig for the whole binary, set up once and torn down after all
//! trials (libtest-mimic), trials run one at a time because some count the gateway's sockets.
//!
//! Security trials check the effect on the engine itself, not only the status code.

use libtest_mimic::Failed;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use stockade_test_support::trials::{ensure, must, Outcome};
use stockade_test_support::{
    http, run_with_timeout, scratch_dir, unique, Docker, EngineOptions, Gateway, Rig, Spawned,
    TestEngine, TEST_IMAGE,
};

const STOCKADE: &str = env!("CARGO_BIN_EXE_stockade");
const SHORT: Duration = Duration::from_secs(60);
const LONG: Duration = Duration::from_secs(240);

fn main() {
    stockade_test_support::trials::run(
        "gateway",
        Path::new(STOCKADE),
        vec![
            ("run_rm_prints_output", run_rm_prints_output),
            ("run_i_passes_stdin_and_exits", run_i_passes_stdin_and_exits),
            (
                "exec_i_round_trips_a_megabyte",
                exec_i_round_trips_a_megabyte,
            ),
            ("run_it_works_under_a_pty", run_it_works_under_a_pty),
            (
                "exec_without_upgrade_streams_close_delimited",
                exec_without_upgrade_streams_close_delimited,
            ),
            (
                "logs_follow_cancel_releases_engine_connection",
                logs_follow_cancel_releases_engine_connection,
            ),
            (
                "wait_cancel_releases_engine_connection",
                wait_cancel_releases_engine_connection,
            ),
            (
                "idle_engine_connections_are_reused",
                idle_engine_connections_are_reused,
            ),
            ("cp_in_and_out_keeps_content", cp_in_and_out_keeps_content),
            (
                "copy_in_progress_holds_the_container_still",
                copy_in_progress_holds_the_container_still,
            ),
            ("build_classic", build_classic),
            ("build_buildkit_session", build_buildkit_session),
            (
                "push_and_pull_through_local_registry",
                push_and_pull_through_local_registry,
            ),
            ("events_stream_shows_create", events_stream_shows_create),
            ("stats_no_stream", stats_no_stream),
            ("volume_and_network_create_rm", volume_and_network_create_rm),
            ("save_and_load_50_mb_image", save_and_load_50_mb_image),
            ("many_clients_at_once", many_clients_at_once),
            (
                "closed_areas_are_refused_without_effect",
                closed_areas_are_refused_without_effect,
            ),
            (
                "non_canonical_paths_are_refused",
                non_canonical_paths_are_refused,
            ),
            (
                "absolute_form_targets_are_checked_by_path",
                absolute_form_targets_are_checked_by_path,
            ),
            (
                "audit_records_every_decision_and_verifies",
                audit_records_every_decision_and_verifies,
            ),
            (
                "audit_unwritable_fails_closed_and_recovers",
                audit_unwritable_fails_closed_and_recovers,
            ),
            (
                "audit_fail_open_serves_and_says_so",
                audit_fail_open_serves_and_says_so,
            ),
            (
                "audit_denials_survive_sigkill",
                audit_denials_survive_sigkill,
            ),
            (
                "malformed_http_gets_400_and_close",
                malformed_http_gets_400_and_close,
            ),
            (
                "engine_gone_gives_502_naming_socket",
                engine_gone_gives_502_naming_socket,
            ),
            (
                "serve_refuses_engine_without_userns",
                serve_refuses_engine_without_userns,
            ),
            ("serve_refuses_engine_on_tcp", serve_refuses_engine_on_tcp),
            (
                "serve_refuses_world_writable_engine_socket",
                serve_refuses_world_writable_engine_socket,
            ),
            (
                "serve_refuses_a_policy_others_can_change",
                serve_refuses_a_policy_others_can_change,
            ),
            (
                "gateway_socket_mode_and_non_root_callers",
                gateway_socket_mode_and_non_root_callers,
            ),
            ("doctor_reports_the_engine", doctor_reports_the_engine),
            (
                "bypass_create_bodies_make_no_container",
                bypass_create_bodies_make_no_container,
            ),
            (
                "cli_shows_denials_and_everyday_runs_work",
                cli_shows_denials_and_everyday_runs_work,
            ),
            (
                "policy_reloads_on_change_and_keeps_the_last_good_one",
                policy_reloads_on_change_and_keeps_the_last_good_one,
            ),
            (
                "bypass_framing_and_form_tricks_are_refused",
                bypass_framing_and_form_tricks_are_refused,
            ),
            (
                "registry_access_holds_on_every_path",
                registry_access_holds_on_every_path,
            ),
            (
                "build_bases_and_load_names_are_checked",
                build_bases_and_load_names_are_checked,
            ),
            (
                "image_access_follows_the_catalog",
                image_access_follows_the_catalog,
            ),
            (
                "user_settings_apply_to_their_owner_only",
                user_settings_apply_to_their_owner_only,
            ),
            (
                "containers_join_only_their_owners_containers",
                containers_join_only_their_owners_containers,
            ),
            (
                "socket_mounts_get_their_own_held_socket",
                socket_mounts_get_their_own_held_socket,
            ),
            (
                "eci_off_lifts_content_rules_only",
                eci_off_lifts_content_rules_only,
            ),
            ("bench_smoke_run_checks_bytes", bench_smoke_run_checks_bytes),
            (
                "engine_pulls_reach_only_allowed_registries",
                engine_pulls_reach_only_allowed_registries,
            ),
            (
                "containers_reach_only_what_the_pac_allows",
                containers_reach_only_what_the_pac_allows,
            ),
            (
                "classic_build_run_steps_reach_only_what_the_pac_allows",
                classic_build_run_steps_reach_only_what_the_pac_allows,
            ),
            ("up_refuses_non_root", up_refuses_non_root),
            ("up_starts_and_stops_cleanly", up_starts_and_stops_cleanly),
            (
                "up_stops_when_its_engine_dies",
                up_stops_when_its_engine_dies,
            ),
        ],
    );
}

/// Runs a detached `sleep` container through the gateway and returns its name.
fn sleeper(rig: &Rig, tag: &str) -> Result<String, Failed> {
    let name = unique(tag);
    must(
        &rig.cli(),
        &["run", "-d", "--name", &name, TEST_IMAGE, "sleep", "300"],
    )?;
    Ok(name)
}

fn remove(rig: &Rig, name: &str) {
    let _ = rig.engine_cli().run(&["rm", "-f", name], None, SHORT);
}

fn run_rm_prints_output(rig: &Rig) -> Outcome {
    let out = must(
        &rig.cli(),
        &["run", "--rm", TEST_IMAGE, "echo", "hello-stockade"],
    )?;
    ensure(out == "hello-stockade\n", || format!("got {out:?}"))
}

fn run_i_passes_stdin_and_exits(rig: &Rig) -> Outcome {
    let done = rig.cli().run(
        &["run", "-i", "--rm", TEST_IMAGE, "cat"],
        Some(b"hi\n"),
        SHORT,
    )?;
    ensure(done.success() && done.stdout == "hi\n", || done.describe())
}

fn exec_i_round_trips_a_megabyte(rig: &Rig) -> Outcome {
    let name = sleeper(rig, "exec")?;
    let input: Vec<u8> = (0..1_048_576u32)
        .map(|i| b"stockade\n"[(i % 9) as usize])
        .collect();
    let done = rig
        .cli()
        .run(&["exec", "-i", &name, "cat"], Some(&input), SHORT);
    remove(rig, &name);
    let done = done?;
    ensure(done.success(), || done.describe())?;
    ensure(done.stdout.as_bytes() == input.as_slice(), || {
        format!(
            "{} bytes back instead of {}",
            done.stdout.len(),
            input.len()
        )
    })
}

fn run_it_works_under_a_pty(rig: &Rig) -> Outcome {
    let command = rig.cli().command();
    let docker_line = format!("docker run -it --rm {TEST_IMAGE} sh -c 'tty; echo pty-ok'");
    let mut script = std::process::Command::new("script");
    script.args(["-qec", &docker_line, "/dev/null"]);
    for (key, value) in command.get_envs() {
        if let Some(value) = value {
            script.env(key, value);
        }
    }
    let done = run_with_timeout(&mut script, None, SHORT)?;
    ensure(
        done.success() && done.stdout.contains("/dev/pts/") && done.stdout.contains("pty-ok"),
        || done.describe(),
    )
}

fn exec_without_upgrade_streams_close_delimited(rig: &Rig) -> Outcome {
    let name = sleeper(rig, "noupgrade")?;
    let result = (|| -> Outcome {
        let created = http::request(
            rig.gateway.socket(),
            "POST",
            &format!("/v1.41/containers/{name}/exec"),
            &[("Content-Type", "application/json")],
            br#"{"AttachStdout":true,"Cmd":["echo","no-upgrade-output"]}"#,
        )?;
        ensure(created.status == 201, || {
            format!("exec create: {created:?}")
        })?;
        let id = created.json()["Id"].as_str().unwrap_or_default().to_owned();
        let body = r#"{"Detach":false,"Tty":false}"#;
        let raw = http::exchange(
            rig.gateway.socket(),
            format!(
                "POST /v1.41/exec/{id}/start HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
            Duration::from_secs(30),
        )?;
        let answer = http::parse(&raw).ok_or("unparsable answer")?;
        ensure(answer.status == 200, || format!("status {}", answer.status))?;
        // docker-py reads the raw socket after the head: no chunk framing may appear.
        ensure(
            !answer.headers.iter().any(|(n, _)| n == "transfer-encoding"),
            || format!("answer was re-framed: {:?}", answer.headers),
        )?;
        // One stdout frame: 8-byte header (stream 1, length) then the payload.
        ensure(
            answer.body.len() > 8
                && answer.body[0] == 1
                && answer.body[8..] == *b"no-upgrade-output\n",
            || format!("body {:?}", String::from_utf8_lossy(&answer.body)),
        )
    })();
    remove(rig, &name);
    result
}

/// Sends `request` raw through a gateway of its own, waits until `started` says the exchange is
/// under way, hangs up, and checks that the gateway closed the engine connection too (the engine
/// learns that way that nobody is listening any more). A gateway of its own, because then every
/// socket it holds beyond its listener belongs to this exchange.
fn hang_up_closes_engine_connection(
    rig: &Rig,
    tag: &str,
    request: &str,
    started: impl Fn(&[u8]) -> bool,
) -> Outcome {
    let dir = scratch_dir(tag)?;
    let gateway = Gateway::start(
        Path::new(STOCKADE),
        &rig.engine.socket(),
        &dir.join("gw.sock"),
        &[],
    )?;
    let result = (|| -> Outcome {
        let mut client = std::os::unix::net::UnixStream::connect(gateway.socket())?;
        client.set_read_timeout(Some(Duration::from_millis(200)))?;
        std::io::Write::write_all(&mut client, request.as_bytes())?;
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !started(&seen) {
            ensure(Instant::now() < deadline, || {
                format!(
                    "the exchange did not start: {:?}",
                    String::from_utf8_lossy(&seen)
                )
            })?;
            let mut buffer = [0u8; 4096];
            match std::io::Read::read(&mut client, &mut buffer) {
                Ok(0) => return Err("the gateway closed the connection".into()),
                Ok(n) => seen.extend_from_slice(&buffer[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.into()),
            }
        }
        let during = gateway.socket_fds();
        drop(client);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // The client's connection and its engine connection are both gone.
            let now = gateway.socket_fds();
            if now + 2 <= during {
                return Ok(());
            }
            ensure(Instant::now() < deadline, || {
                format!("gateway holds {now} sockets, {during} during the exchange: the engine connection outlived its client")
            })?;
            std::thread::sleep(Duration::from_millis(100));
        }
    })();
    drop(gateway);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn logs_follow_cancel_releases_engine_connection(rig: &Rig) -> Outcome {
    let name = unique("logs");
    must(
        &rig.engine_cli(),
        &[
            "run",
            "-d",
            "--name",
            &name,
            TEST_IMAGE,
            "sh",
            "-c",
            "while true; do echo tick; sleep 0.1; done",
        ],
    )?;
    let result = hang_up_closes_engine_connection(
        rig,
        "follow",
        &format!(
            "GET /v1.41/containers/{name}/logs?follow=1&stdout=1 HTTP/1.1\r\nHost: docker\r\n\r\n"
        ),
        |seen| String::from_utf8_lossy(seen).matches("tick").count() >= 5,
    );
    remove(rig, &name);
    result
}

fn wait_cancel_releases_engine_connection(rig: &Rig) -> Outcome {
    // `docker wait` on a container that keeps running: no answer head comes back at all.
    let name = sleeper(rig, "wait")?;
    let asked = Instant::now();
    let result = hang_up_closes_engine_connection(
        rig,
        "wait",
        &format!("POST /v1.41/containers/{name}/wait HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n\r\n"),
        |_| asked.elapsed() > Duration::from_millis(700),
    );
    remove(rig, &name);
    result
}

fn idle_engine_connections_are_reused(rig: &Rig) -> Outcome {
    let dir = scratch_dir("pool")?;
    let gateway = Gateway::start(
        Path::new(STOCKADE),
        &rig.engine.socket(),
        &dir.join("gw.sock"),
        &[],
    )?;
    // Forty clients, one request each, one after another: each client's engine connection is
    // handed on to the next client instead of a new one being opened.
    for _ in 0..40 {
        let answer = http::request(gateway.socket(), "GET", "/_ping", &[], b"")?;
        ensure(answer.status == 200 && answer.body == b"OK", || {
            format!("{answer:?}")
        })?;
        std::thread::sleep(Duration::from_millis(20));
    }
    // The gateway writes its log from a writer thread, a little after the request.
    std::thread::sleep(Duration::from_millis(200));
    let opened = gateway.log().matches("engine connection opened").count();
    drop(gateway);
    let _ = std::fs::remove_dir_all(&dir);
    ensure((1..=8).contains(&opened), || {
        format!("{opened} engine connections opened for 41 sequential clients")
    })
}

fn cp_in_and_out_keeps_content(rig: &Rig) -> Outcome {
    let name = sleeper(rig, "cp")?;
    let result = (|| -> Outcome {
        let dir = scratch_dir("cp")?;
        let source = dir.join("payload.bin");
        let mut payload = vec![0u8; 4 * 1024 * 1024];
        let mut state: u32 = 0x1234_5678;
        for byte in &mut payload {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            *byte = state.to_le_bytes()[0];
        }
        std::fs::write(&source, &payload)?;
        must(
            &rig.cli(),
            &[
                "cp",
                &source.to_string_lossy(),
                &format!("{name}:/tmp/payload.bin"),
            ],
        )?;
        let back = dir.join("back.bin");
        must(
            &rig.cli(),
            &[
                "cp",
                &format!("{name}:/tmp/payload.bin"),
                &back.to_string_lossy(),
            ],
        )?;
        let returned = std::fs::read(&back)?;
        let _ = std::fs::remove_dir_all(&dir);
        ensure(returned == payload, || {
            format!(
                "{} bytes came back, {} went in, content differs",
                returned.len(),
                payload.len()
            )
        })?;
        // Both copies ran with the container paused (CVE-2018-15664), and it runs again after
        // (the unpause follows the end of the answer).
        let mut actions = Vec::new();
        let settled = wait_for(|| {
            actions = pause_events(rig, &name)?;
            Ok(actions == ["pause", "unpause", "pause", "unpause"])
        })?;
        ensure(settled, || {
            format!("pause events around the copies: {actions:?}")
        })?;
        let state = must(
            &rig.engine_cli(),
            &["inspect", "-f", "{{.State.Status}}", &name],
        )?;
        ensure(state.trim() == "running", || {
            format!("after the copies: {state}")
        })
    })();
    remove(rig, &name);
    result
}

/// The pause and unpause events of container `name` in the last two minutes, in order.
fn pause_events(rig: &Rig, name: &str) -> Result<Vec<String>, Failed> {
    let events = must(
        &rig.engine_cli(),
        &[
            "events",
            "--since",
            "2m",
            "--until",
            "0s",
            "--filter",
            &format!("container={name}"),
            "--format",
            "{{.Action}}",
        ],
    )?;
    Ok(events
        .lines()
        .filter(|a| a.contains("pause"))
        .map(str::to_owned)
        .collect())
}

/// A tar archive holding one file, made by `tar` from a scratch directory.
fn one_file_tar(dir: &Path, name: &str, content: &[u8]) -> Result<Vec<u8>, Failed> {
    let tree = dir.join("tree");
    std::fs::create_dir_all(&tree)?;
    std::fs::write(tree.join(name), content)?;
    let out = std::process::Command::new("tar")
        .arg("-C")
        .arg(&tree)
        .args(["-cf", "-", name])
        .output()?;
    ensure(out.status.success(), || "tar failed".to_owned())?;
    Ok(out.stdout)
}

fn engine_state(rig: &Rig, name: &str) -> Result<String, Failed> {
    Ok(must(
        &rig.engine_cli(),
        &["inspect", "-f", "{{.State.Status}}", name],
    )?
    .trim()
    .to_owned())
}

/// Starts a copy into `name` whose archive is sent only as far as `first`: the copy stays in
/// progress until [`finish_held`].
fn open_held(
    rig: &Rig,
    name: &str,
    first: &[u8],
) -> Result<std::os::unix::net::UnixStream, Failed> {
    use std::io::Write;
    let mut held = std::os::unix::net::UnixStream::connect(rig.gateway.socket())?;
    held.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        held,
        "PUT /containers/{name}/archive?path=/tmp HTTP/1.1\r\nHost: docker\r\nContent-Type: application/x-tar\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
        first.len()
    )?;
    held.write_all(first)?;
    held.write_all(b"\r\n")?;
    Ok(held)
}

/// Sends the rest of a held copy's archive; the engine must answer 200.
fn finish_held(mut held: std::os::unix::net::UnixStream, rest: &[u8]) -> Outcome {
    use std::io::{Read, Write};
    write!(held, "{:x}\r\n", rest.len())?;
    held.write_all(rest)?;
    held.write_all(b"\r\n0\r\n\r\n")?;
    let mut answer = [0u8; 12];
    held.read_exact(&mut answer)?;
    ensure(&answer == b"HTTP/1.1 200", || {
        format!("a held copy's answer: {}", String::from_utf8_lossy(&answer))
    })
}

/// Whether the kernel has the container's processes frozen, read from its freezer cgroup on the
/// host (cgroup v1: `freezer.state` is `FROZEN`; v2: `frozen 1` in `cgroup.events`), not asked
/// of the engine, which holds the container's lock (and keeps inspect waiting) while a copy runs.
fn frozen(pid: &str) -> Result<bool, Failed> {
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
    if let Some(path) = cgroups.lines().find_map(|l| {
        let (_, rest) = l.split_once(':')?;
        rest.strip_prefix("freezer:")
    }) {
        let state = std::fs::read_to_string(format!("/sys/fs/cgroup/freezer{path}/freezer.state"))?;
        return Ok(state.trim() == "FROZEN");
    }
    let path = cgroups
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or_else(|| format!("no freezer cgroup for pid {pid}: {cgroups}"))?;
    let events = std::fs::read_to_string(format!("/sys/fs/cgroup{path}/cgroup.events"))?;
    Ok(events.lines().any(|l| l == "frozen 1"))
}

/// CVE-2018-15664 is a race against the copy, so the container must stay still for as long as
/// any copy of it is in progress, not only while the copy that paused it runs. Two copies are
/// held open here (each archive sent in two parts, the second only later). The second starts
/// while the first has the container paused; the engine runs it once the first is done, and
/// the container must be frozen then too (before the holds, the second copy took the pause
/// it found for its own, and the first copy's unpause could come in under it), even with an
/// unpause through the gateway queued behind the first copy. Judged on the
/// host's cgroup freezer, then on the engine: pauses and unpauses in pairs, both files there,
/// the container running.
fn copy_in_progress_holds_the_container_still(rig: &Rig) -> Outcome {
    let running = sleeper(rig, "hold")?;
    let result = (|| -> Outcome {
        let dir = scratch_dir("hold")?;
        let pid = must(
            &rig.engine_cli(),
            &["inspect", "-f", "{{.State.Pid}}", &running],
        )?;
        let pid = pid.trim().to_owned();
        ensure(!frozen(&pid)?, || "frozen before any copy".to_owned())?;
        let first_archive = one_file_tar(&dir.join("a"), "first.txt", b"first copy")?;
        let second_archive = one_file_tar(&dir.join("b"), "second.txt", b"second copy")?;
        let (a_head, a_rest) = first_archive.split_at(512);
        let (b_head, b_rest) = second_archive.split_at(512);

        let first = open_held(rig, &running, a_head)?;
        ensure(wait_for(|| frozen(&pid))?, || {
            "not frozen during the first copy".to_owned()
        })?;
        let second = open_held(rig, &running, b_head)?;
        // Let the second reach the gateway (it waits there for the engine to see the container).
        std::thread::sleep(Duration::from_millis(500));
        // The attack: an unpause sent now waits for the engine's container lock (the first
        // copy has it) and would run between the two copies.
        let unpause = {
            let cli = rig.cli();
            let name = running.clone();
            std::thread::spawn(move || cli.run(&["unpause", &name], None, SHORT))
        };
        std::thread::sleep(Duration::from_millis(500));
        finish_held(first, a_rest)?;
        // The engine now runs the second copy, which waits for the rest of its archive.
        std::thread::sleep(Duration::from_millis(1000));
        ensure(frozen(&pid)?, || {
            "the container ran again while the second copy was still in progress".to_owned()
        })?;
        finish_held(second, b_rest)?;
        // Refused while a copy held the container; let through only if it came between the two
        // holds (after the first copy's own unpause: then it finds nothing to unpause, or the
        // check above shows it harmless).
        let unpaused = unpause
            .join()
            .map_err(|_| "the unpause thread panicked")??;
        ensure(
            unpaused.success()
                || unpaused
                    .stderr
                    .contains("copy into or out of this container")
                || unpaused.stderr.contains("is not paused"),
            || format!("the unpause during the copies: {}", unpaused.describe()),
        )?;
        ensure(wait_for(|| Ok(!frozen(&pid)?))?, || {
            "still frozen after both copies".to_owned()
        })?;
        let state = engine_state(rig, &running)?;
        ensure(state == "running", || format!("after the copies: {state}"))?;
        // Paused once for both, or once each (when the second reached the engine only after
        // the first was released): never a copy with the container running, and it runs after.
        let mut pauses = Vec::new();
        let settled =
            wait_for(|| {
                pauses = pause_events(rig, &running)?;
                Ok(pauses == ["pause", "unpause"]
                    || pauses == ["pause", "unpause", "pause", "unpause"])
            })?;
        ensure(settled, || {
            format!("pause events around the two copies: {pauses:?}")
        })?;
        for (file, content) in [("first.txt", "first copy"), ("second.txt", "second copy")] {
            let copied = must(
                &rig.engine_cli(),
                &["exec", &running, "cat", &format!("/tmp/{file}")],
            )?;
            ensure(copied == content, || format!("{file}: {copied:?}"))?;
        }
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    })();
    remove(rig, &running);
    result
}

fn write_context(dockerfile: &str) -> Result<PathBuf, Failed> {
    let dir = scratch_dir("ctx")?;
    std::fs::write(dir.join("Dockerfile"), dockerfile)?;
    std::fs::write(dir.join("data.txt"), "from-context\n")?;
    Ok(dir)
}

fn build_and_run(rig: &Rig, cli: &Docker, tag: &str) -> Outcome {
    let image = format!("{}:t", unique(tag));
    let ctx = write_context(&format!(
        "FROM {TEST_IMAGE}\nCOPY data.txt /data.txt\nRUN echo built-by-{tag} >> /data.txt\nCMD [\"cat\", \"/data.txt\"]\n"
    ))?;
    let done = cli.run(&["build", "-t", &image, &ctx.to_string_lossy()], None, LONG)?;
    let _ = std::fs::remove_dir_all(&ctx);
    ensure(done.success(), || format!("build: {}", done.describe()))?;
    let out = must(cli, &["run", "--rm", &image]);
    let _ = rig.engine_cli().run(&["rmi", "-f", &image], None, SHORT);
    let out = out?;
    ensure(out == format!("from-context\nbuilt-by-{tag}\n"), || {
        format!("got {out:?}")
    })
}

fn build_classic(rig: &Rig) -> Outcome {
    build_and_run(rig, &rig.cli().with_env("DOCKER_BUILDKIT", "0"), "classic")
}

fn build_buildkit_session(rig: &Rig) -> Outcome {
    // Debian's 20.10 CLI has BuildKit built in (the newer CLI needs the buildx plugin, which
    // Debian 12 does not package); it drives the /session upgrade and /build?version=2.
    let legacy = Path::new("/usr/bin/docker");
    ensure(legacy.exists(), || {
        "/usr/bin/docker (Debian's docker.io CLI) is missing; install docker.io".into()
    })?;
    // While registry access is restricted, a BuildKit build (whose base images the gateway
    // cannot see) is refused with a message saying what to do, and builds nothing.
    let ctx = write_context(&format!("FROM {TEST_IMAGE}\nRUN true\n"))?;
    let image = unique("bk-refused");
    let refused = rig
        .cli()
        .with_program(legacy)
        .with_env("DOCKER_BUILDKIT", "1")
        .run(&["build", "-t", &image, &ctx.to_string_lossy()], None, LONG)?;
    let _ = std::fs::remove_dir_all(&ctx);
    ensure(
        !refused.success() && refused.stderr.contains("DOCKER_BUILDKIT=0"),
        || {
            format!(
                "BuildKit build under restricted registries: {}",
                refused.describe()
            )
        },
    )?;
    let present = rig
        .engine_cli()
        .run(&["image", "inspect", &image], None, SHORT)?;
    ensure(!present.success(), || {
        "the refused build made an image".into()
    })?;
    // With registries unrestricted ("*"), BuildKit builds work through the gateway.
    let dir = scratch_dir("bk")?;
    let gateway = gateway_with_policy(
        rig,
        &dir,
        &stockade_test_support::rig_policy(&[(
            "registryAccess",
            serde_json::json!({"locked": true, "allowedRegistries": ["*"]}),
        )]),
    )?;
    let built = build_and_run(
        rig,
        &gateway
            .cli()
            .with_program(legacy)
            .with_env("DOCKER_BUILDKIT", "1"),
        "buildkit",
    );
    // The gateway writes its log from a writer thread, a little after the request.
    let through_session = wait_for(|| Ok(gateway.log().contains("build_session")))?;
    drop(gateway);
    let _ = std::fs::remove_dir_all(&dir);
    built?;
    ensure(through_session, || {
        "the BuildKit build did not go through the /session route".into()
    })
}

fn push_and_pull_through_local_registry(rig: &Rig) -> Outcome {
    let repo = unique("push");
    let image = format!("{}/{repo}:v1", rig.registry.host());
    let cli = rig.cli();
    must(&cli, &["tag", TEST_IMAGE, &image])?;
    must(&cli, &["push", &image])?;
    ensure(rig.registry.has_manifest(&repo, "v1"), || {
        format!("the registry has no manifest for {repo}:v1")
    })?;
    must(&cli, &["rmi", &image])?;
    let gone = rig
        .engine_cli()
        .run(&["image", "inspect", &image], None, SHORT)?;
    ensure(!gone.success(), || {
        "the image was still present before the pull".into()
    })?;
    must(&cli, &["pull", &image])?;
    let present = rig
        .engine_cli()
        .run(&["image", "inspect", &image], None, SHORT)?;
    let _ = rig.engine_cli().run(&["rmi", &image], None, SHORT);
    ensure(present.success(), || {
        format!("pulled image missing: {}", present.describe())
    })
}

fn events_stream_shows_create(rig: &Rig) -> Outcome {
    let name = unique("events");
    let dir = scratch_dir("events")?;
    let out_path = dir.join("out");
    let mut command = rig.cli().command();
    command
        .args([
            "events",
            "--filter",
            "type=container",
            "--format",
            "{{.Action}} {{.Actor.Attributes.name}}",
        ])
        .stdout(std::fs::File::create(&out_path)?)
        .stderr(std::process::Stdio::null());
    let _events = Spawned::start(
        &mut command,
        nix::sys::signal::Signal::SIGKILL,
        Duration::from_secs(5),
    )?;
    std::thread::sleep(Duration::from_millis(500));
    must(&rig.cli(), &["create", "--name", &name, TEST_IMAGE, "true"])?;
    let expected = format!("create {name}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let result = loop {
        if std::fs::read_to_string(&out_path)?.contains(&expected) {
            break Ok(());
        }
        if Instant::now() > deadline {
            break Err(format!("no {expected:?} event streamed").into());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    remove(rig, &name);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn stats_no_stream(rig: &Rig) -> Outcome {
    let name = sleeper(rig, "stats")?;
    let out = must(
        &rig.cli(),
        &[
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}} {{.MemUsage}}",
            &name,
        ],
    );
    remove(rig, &name);
    let out = out?;
    ensure(out.starts_with(&format!("{name} ")), || {
        format!("got {out:?}")
    })
}

fn volume_and_network_create_rm(rig: &Rig) -> Outcome {
    let cli = rig.cli();
    let engine = rig.engine_cli();
    for kind in ["volume", "network"] {
        let name = unique(kind);
        let on_engine = || -> Result<bool, Failed> {
            Ok(engine
                .run(&[kind, "inspect", &name], None, SHORT)?
                .success())
        };
        must(&cli, &[kind, "create", &name])?;
        ensure(on_engine()?, || format!("{kind} not on the engine"))?;
        must(&cli, &[kind, "rm", &name])?;
        ensure(!on_engine()?, || format!("{kind} still on the engine"))?;
    }
    Ok(())
}

fn save_and_load_50_mb_image(rig: &Rig) -> Outcome {
    let image = format!("{}:big", unique("load"));
    let ctx = write_context(&format!(
        "FROM {TEST_IMAGE}\nRUN dd if=/dev/urandom of=/big bs=1048576 count=50 && sha256sum /big > /big.sum\n"
    ))?;
    let cli = rig.cli().with_env("DOCKER_BUILDKIT", "0");
    let built = cli.run(&["build", "-t", &image, &ctx.to_string_lossy()], None, LONG)?;
    ensure(built.success(), || built.describe())?;
    let tar = ctx.join("image.tar");
    let result = (|| -> Outcome {
        must(&cli, &["save", "-o", &tar.to_string_lossy(), &image])?;
        let size = std::fs::metadata(&tar)?.len();
        ensure(size > 50 * 1024 * 1024, || {
            format!("saved archive is only {size} bytes")
        })?;
        must(&cli, &["rmi", &image])?;
        // The built-in policy blocks `docker load`: refused, and no image came to exist.
        let refused = cli.run(&["load", "-i", &tar.to_string_lossy()], None, LONG)?;
        ensure(
            !refused.success() && refused.stderr.contains("blockDockerLoad"),
            || refused.describe(),
        )?;
        let present = rig
            .engine_cli()
            .run(&["image", "inspect", &image], None, SHORT)?;
        ensure(!present.success(), || {
            format!("{image} exists after a refused load")
        })?;
        // A policy that leaves load unblocked: the archive streams through intact.
        let policy = ctx.join("allow-load.json");
        std::fs::write(
            &policy,
            r#"{"configurationFileVersion": 2, "blockDockerLoad": {"locked": true, "value": false}}"#,
        )?;
        let gateway = Gateway::start(
            Path::new(STOCKADE),
            &rig.engine.socket(),
            &ctx.join("gw.sock"),
            &["--policy", &policy.to_string_lossy()],
        )?;
        must(&gateway.cli(), &["load", "-i", &tar.to_string_lossy()])?;
        let check = must(
            &rig.cli(),
            &["run", "--rm", &image, "sha256sum", "-c", "/big.sum"],
        )?;
        ensure(check.contains("/big: OK"), || {
            format!("checksum after load: {check:?}")
        })
    })();
    let _ = rig.engine_cli().run(&["rmi", "-f", &image], None, SHORT);
    let _ = std::fs::remove_dir_all(&ctx);
    result
}

fn many_clients_at_once(rig: &Rig) -> Outcome {
    let socket = rig.gateway.socket().to_owned();
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let socket = socket.clone();
            std::thread::spawn(move || -> Result<usize, String> {
                let mut ok = 0;
                for _ in 0..20 {
                    let answer =
                        http::request(&socket, "GET", "/v1.41/containers/json?all=1", &[], b"")
                            .map_err(|e| e.to_string())?;
                    if answer.status == 200 && answer.json().is_array() {
                        ok += 1;
                    }
                }
                Ok(ok)
            })
        })
        .collect();
    let mut total = 0;
    for worker in workers {
        total += worker.join().map_err(|_| "worker panicked")??;
    }
    ensure(total == 16 * 20, || {
        format!("{total} of 320 requests answered 200 with a list")
    })
}

fn closed_areas_are_refused_without_effect(rig: &Rig) -> Outcome {
    let gw = rig.gateway.socket();
    let engine = rig.engine.socket();
    for (method, path) in [
        ("POST", "/v1.41/swarm/init"),
        ("POST", "/swarm/init"),
        ("POST", "/v1.41/plugins/pull?remote=127.0.0.1:1/evil"),
        ("GET", "/v1.41/libpod/info"),
        ("GET", "/v1.41/services"),
        ("GET", "/nodes"),
        ("POST", "/v1.41/secrets/create"),
        ("GET", "/configs"),
        ("GET", "/v1.41/distribution/busybox/json"),
        ("POST", "/grpc"),
        ("GET", "/v1.41/no/such/route"),
    ] {
        let body: &[u8] = if method == "POST" {
            br#"{"ListenAddr":"127.0.0.1:2377"}"#
        } else {
            b""
        };
        let answer = http::request(
            gw,
            method,
            path,
            &[("Content-Type", "application/json")],
            body,
        )?;
        ensure(answer.status == 403, || {
            format!("{method} {path}: {answer:?}")
        })?;
        let message = answer.message();
        ensure(
            message.starts_with("enhanced container isolation: ") && message.contains("not"),
            || format!("{method} {path}: message {message:?}"),
        )?;
    }
    // The effect: the engine never joined a swarm and has no plugin.
    let info = http::request(&engine, "GET", "/info", &[], b"")?.json();
    ensure(info["Swarm"]["LocalNodeState"] == "inactive", || {
        format!("swarm state {:?}", info["Swarm"])
    })?;
    let plugins = http::request(&engine, "GET", "/plugins", &[], b"")?.json();
    ensure(plugins.as_array().is_some_and(Vec::is_empty), || {
        format!("plugins {plugins}")
    })?;
    // The CLI shows the message as is.
    let done = rig.cli().run(&["swarm", "init"], None, SHORT)?;
    ensure(
        !done.success() && done.stderr.contains("enhanced container isolation:"),
        || done.describe(),
    )
}

fn absolute_form_targets_are_checked_by_path(rig: &Rig) -> Outcome {
    // The route table judges the path of an absolute-form target like any other.
    let raw = http::exchange(
        rig.gateway.socket(),
        b"POST http://docker/v1.41/swarm/init HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        Duration::from_secs(10),
    )?;
    let answer = http::parse(&raw).ok_or("unparsable answer")?;
    ensure(answer.status == 403, || format!("{answer:?}"))?;
    let raw = http::exchange(
        rig.gateway.socket(),
        b"GET http://elsewhere:2375/v1.41/version HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n",
        Duration::from_secs(10),
    )?;
    let answer = http::parse(&raw).ok_or("unparsable answer")?;
    ensure(
        answer.status == 200 && answer.json()["ApiVersion"].is_string(),
        || format!("{answer:?}"),
    )
}

fn audit_records(path: &Path) -> Result<Vec<serde_json::Value>, Failed> {
    Ok(std::fs::read_to_string(path)?
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or(serde_json::Value::Null))
        .collect())
}

/// A gateway of its own in `dir`, in front of the rig's engine, recording to `log`.
fn audited_gateway(rig: &Rig, dir: &Path, log: &Path) -> Result<Gateway, Failed> {
    Ok(Gateway::start(
        Path::new(STOCKADE),
        &rig.engine.socket(),
        &dir.join("gw.sock"),
        &["--audit-log", &log.to_string_lossy()],
    )?)
}

fn audit_verify(path: &Path) -> Result<stockade_test_support::Finished, Failed> {
    let mut command = std::process::Command::new(STOCKADE);
    command.args(["audit", "verify"]).arg(path);
    Ok(run_with_timeout(&mut command, None, SHORT)?)
}

fn audit_records_every_decision_and_verifies(rig: &Rig) -> Outcome {
    let dir = scratch_dir("audit")?;
    let log = dir.join("audit.log");
    let mut gateway = audited_gateway(rig, &dir, &log)?;
    let cli = gateway.cli();
    must(&cli, &["version"])?;
    let denied = http::request(gateway.socket(), "POST", "/v1.41/swarm/init", &[], b"{}")?;
    ensure(denied.status == 403, || format!("{denied:?}"))?;
    let privileged = cli.run(
        &["run", "--rm", "--privileged", TEST_IMAGE, "true"],
        None,
        SHORT,
    )?;
    ensure(!privileged.success(), || privileged.describe())?;
    gateway.stop_with(nix::sys::signal::Signal::SIGTERM);
    let verified = audit_verify(&log)?;
    ensure(verified.success(), || verified.describe())?;
    let records = audit_records(&log)?;
    // Tampering of each kind on this log, written by real traffic, is caught and the first
    // bad record named.
    let original = std::fs::read_to_string(&log)?;
    let lines: Vec<&str> = original.lines().collect();
    let n = lines.len();
    ensure(n >= 5, || format!("too few records to tamper with: {n}"))?;
    let edited = lines[2].replacen("\"uid\":0", "\"uid\":1000", 1);
    let cases: Vec<(&str, Vec<String>, String)> = vec![
        (
            "edited",
            lines
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    if i == 2 && edited != *l {
                        edited.clone()
                    } else if i == 2 {
                        l.replacen("\"seq\":3", "\"seq\":3 ", 1)
                    } else {
                        (*l).to_owned()
                    }
                })
                .collect(),
            "4".to_owned(),
        ),
        (
            "deleted",
            lines
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != 2)
                .map(|(_, l)| (*l).to_owned())
                .collect(),
            "3".to_owned(),
        ),
        (
            "reordered",
            {
                let mut v: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
                v.swap(2, 3);
                v
            },
            "3".to_owned(),
        ),
        (
            "inserted",
            {
                let mut v: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
                v.insert(2, lines[1].to_owned());
                v
            },
            "3".to_owned(),
        ),
    ];
    for (what, tampered, first_bad) in cases {
        std::fs::write(&log, format!("{}\n", tampered.join("\n")))?;
        let out = audit_verify(&log)?;
        ensure(
            out.code == Some(1)
                && (out.stderr.contains(&format!("record {first_bad}"))
                    || out.stderr.contains(&format!("line {first_bad}"))),
            || format!("{what} record: {}", out.describe()),
        )?;
    }
    std::fs::write(&log, &original)?;
    let _ = std::fs::remove_dir_all(&dir);
    // The policy in force is recorded first, then the start; decisions name the policy's hash.
    ensure(
        records.len() > 2
            && records[0]["kind"] == "policy_load"
            && records[0]["summary"]["policy"] == "built-in"
            && records[1]["kind"] == "gateway_start",
        || format!("{records:?}"),
    )?;
    ensure(
        records
            .iter()
            .filter(|r| r["kind"] == "decision")
            .all(|r| r["policy_hash"] == records[0]["policy_hash"]),
        || format!("a decision without the policy hash: {records:?}"),
    )?;
    ensure(
        records.last().is_some_and(|r| r["kind"] == "gateway_stop"),
        || format!("{records:?}"),
    )?;
    ensure(
        records.iter().any(|r| {
            r["decision"] == "allow" && r["uid"] == 0 && r["summary"]["operation"] == "version"
        }),
        || format!("no allow record for version: {records:?}"),
    )?;
    ensure(
        records.iter().any(|r| {
            r["decision"] == "deny"
                && r["route"] == "POST /v1.41/swarm/init"
                && r["reason"].as_str().is_some_and(|m| m.contains("swarm"))
        }),
        || format!("no deny record for swarm init: {records:?}"),
    )?;
    // A rule's denial names the rule.
    ensure(
        records
            .iter()
            .any(|r| r["decision"] == "deny" && r["rule"] == "eci.privileged"),
        || format!("no deny record naming eci.privileged: {records:?}"),
    )
}

fn audit_unwritable_fails_closed_and_recovers(rig: &Rig) -> Outcome {
    let dir = scratch_dir("auditfull")?;
    let mount = dir.join("small");
    std::fs::create_dir(&mount)?;
    stockade_test_support::must_run(
        std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k"])
            .arg("tmpfs")
            .arg(&mount),
        SHORT,
    )?;
    let result = (|| -> Outcome {
        let log = mount.join("audit.log");
        let gateway = audited_gateway(rig, &dir, &log)?;
        // Fill the file system.
        let filler = mount.join("filler");
        let mut file = std::fs::File::create(&filler)?;
        let chunk = vec![0u8; 4096];
        while std::io::Write::write_all(&mut file, &chunk).is_ok() {}
        drop(file);
        // The log's last page may still have room for a few records; then writing fails.
        let mut refused_ping = false;
        for _ in 0..200 {
            let answer = http::request(gateway.socket(), "GET", "/_ping", &[], b"")?;
            if answer.status == 403 {
                ensure(answer.message().contains("cannot be recorded"), || {
                    answer.message()
                })?;
                refused_ping = true;
                break;
            }
            // Allows are written within the group-commit interval; once a write has failed,
            // every request waits for its record and is refused.
            std::thread::sleep(Duration::from_millis(50));
        }
        ensure(refused_ping, || {
            "requests were still served with the audit log's disk full".into()
        })?;
        let name = unique("full");
        let body = serde_json::json!({"Image": TEST_IMAGE, "Cmd": ["true"]}).to_string();
        let refused = http::request(
            gateway.socket(),
            "POST",
            &format!("/v1.41/containers/create?name={name}"),
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )?;
        ensure(
            refused.status == 403 && refused.message().contains("cannot be recorded"),
            || format!("{} {:?}", refused.status, refused.message()),
        )?;
        // The effect: no such container came to exist.
        let absent = rig
            .engine_cli()
            .run(&["container", "inspect", &name], None, SHORT)?;
        ensure(!absent.success(), || {
            "the container was created although it could not be recorded".into()
        })?;
        // Room again: the log recovers by itself.
        std::fs::remove_file(&filler)?;
        let served = http::request(gateway.socket(), "GET", "/v1.41/version", &[], b"")?;
        ensure(served.status == 200, || {
            format!("after freeing space: {served:?}")
        })?;
        drop(gateway);
        let verified = audit_verify(&log)?;
        ensure(verified.success(), || verified.describe())
    })();
    let _ = run_with_timeout(
        std::process::Command::new("umount").arg(&mount),
        None,
        SHORT,
    );
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn audit_denials_survive_sigkill(rig: &Rig) -> Outcome {
    let dir = scratch_dir("auditkill")?;
    let log = dir.join("audit.log");
    let mut gateway = audited_gateway(rig, &dir, &log)?;
    let socket = gateway.socket().to_owned();
    // A burst of denied requests from four clients; the gateway is killed in the middle of it.
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let socket = socket.clone();
            let answered = std::sync::Arc::clone(&answered);
            std::thread::spawn(move || {
                for _ in 0..200 {
                    match http::request(&socket, "POST", "/v1.41/swarm/init", &[], b"{}") {
                        Ok(answer) if answer.status == 403 => {
                            answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                        _ => break,
                    }
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while answered.load(std::sync::atomic::Ordering::SeqCst) < 50 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    gateway.stop_with(nix::sys::signal::Signal::SIGKILL);
    for worker in workers {
        let _ = worker.join();
    }
    let denials_answered = answered.load(std::sync::atomic::Ordering::SeqCst);
    let verified = audit_verify(&log)?;
    let records = audit_records(&log)?;
    let _ = std::fs::remove_dir_all(&dir);
    ensure(verified.success(), || verified.describe())?;
    let denials_recorded = records.iter().filter(|r| r["decision"] == "deny").count();
    ensure(
        denials_answered >= 50 && denials_recorded >= denials_answered,
        || format!("{denials_answered} denials answered, {denials_recorded} recorded"),
    )
}

fn non_canonical_paths_are_refused(rig: &Rig) -> Outcome {
    for path in [
        "/containers/%6Aso%6E",
        "/v1.41/containers//json",
        "/v1.41/containers/./json",
        "/v1.41/containers/x/../../swarm/init",
        "/v1.41/images/a/../../plugins/json",
        "/v1.41/containers/json/",
        "/v1.41%2fcontainers/json",
    ] {
        let answer = http::request(rig.gateway.socket(), "GET", path, &[], b"")?;
        ensure(
            answer.status == 403 && answer.message().contains("canonical"),
            || format!("{path}: {} {:?}", answer.status, answer.message()),
        )?;
    }
    Ok(())
}

fn malformed_http_gets_400_and_close(rig: &Rig) -> Outcome {
    for garbage in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET /_ping HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"GET /_ping HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"POST /_ping HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET /_ping HTTP/1.1\r\nBad Header\r\n\r\n",
        b"\x00\x01\x02\x03\r\n\r\n",
    ] {
        // exchange() returns once the server closes; a kept-open connection would hit the
        // read timeout instead.
        let started = Instant::now();
        let raw = http::exchange(rig.gateway.socket(), garbage, Duration::from_secs(10))?;
        ensure(raw.starts_with(b"HTTP/1.1 400"), || {
            format!(
                "{:?} got {:?}",
                String::from_utf8_lossy(garbage),
                String::from_utf8_lossy(&raw)
            )
        })?;
        ensure(started.elapsed() < Duration::from_secs(5), || {
            "connection was not closed".into()
        })?;
    }
    // Still serving afterwards.
    ensure(
        http::request(rig.gateway.socket(), "GET", "/_ping", &[], b"")?.status == 200,
        || "gateway stopped answering".into(),
    )
}

fn engine_gone_gives_502_naming_socket(_rig: &Rig) -> Outcome {
    // An engine of its own, stopped under the gateway's feet.
    let engine = TestEngine::start(&EngineOptions::default())?;
    let dir = scratch_dir("502")?;
    let gateway = Gateway::start(
        Path::new(STOCKADE),
        &engine.socket(),
        &dir.join("gw.sock"),
        &[],
    )?;
    let socket = engine.socket().to_string_lossy().to_string();
    drop(engine);
    let answer = http::request(gateway.socket(), "GET", "/v1.41/containers/json", &[], b"")?;
    drop(gateway);
    let _ = std::fs::remove_dir_all(&dir);
    ensure(
        answer.status == 502 && answer.message().contains(&socket),
        || format!("{} {:?}", answer.status, answer.message()),
    )
}

fn serve_exit(engine: &Path, dir: &Path) -> Result<stockade_test_support::Finished, Failed> {
    let mut command = std::process::Command::new(STOCKADE);
    command.args([
        "serve",
        "--engine",
        &format!("unix://{}", engine.display()),
        "--listen",
        &format!("unix://{}", dir.join("refused.sock").display()),
    ]);
    Ok(run_with_timeout(&mut command, None, SHORT)?)
}

fn serve_refuses_engine_without_userns(_rig: &Rig) -> Outcome {
    let plain = TestEngine::start(&EngineOptions {
        userns: false,
        ..EngineOptions::default()
    })?;
    let done = serve_exit(&plain.socket(), plain.dir())?;
    ensure(
        done.code == Some(3)
            && done.stderr.contains("without user namespaces")
            && done.stderr.contains("userns-remap"),
        || done.describe(),
    )?;
    ensure(!plain.dir().join("refused.sock").exists(), || {
        "a socket was created anyway".into()
    })
}

fn serve_refuses_engine_on_tcp(_rig: &Rig) -> Outcome {
    // A free port on loopback: bound, read, released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let open = TestEngine::start(&EngineOptions {
        tcp_port: Some(port),
        ..EngineOptions::default()
    })?;
    // The engine really answers on that port: the gateway would be walked around.
    let mut direct = std::net::TcpStream::connect(("127.0.0.1", port))?;
    std::io::Write::write_all(&mut direct, b"GET /_ping HTTP/1.0\r\n\r\n")?;
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut direct, &mut answer)?;
    ensure(answer.starts_with("HTTP/1.0 200"), || {
        format!("the engine does not answer on TCP {port}: {answer}")
    })?;
    let done = serve_exit(&open.socket(), open.dir())?;
    ensure(
        done.code == Some(3)
            && done.stderr.contains(&format!("listens on TCP port {port}"))
            && done.stderr.contains("exposeDockerAPIOnTCP2375"),
        || done.describe(),
    )?;
    ensure(!open.dir().join("refused.sock").exists(), || {
        "a socket was created anyway".into()
    })?;
    // With exposeDockerAPIOnTCP2375 locked on, the admin has said so: served.
    let policy = open.dir().join("tcp-policy.json");
    std::fs::write(
        &policy,
        stockade_test_support::rig_policy(&[(
            "exposeDockerAPIOnTCP2375",
            serde_json::json!({"locked": true, "value": true}),
        )]),
    )?;
    let gateway = Gateway::start(
        Path::new(STOCKADE),
        &open.socket(),
        &open.dir().join("allowed.sock"),
        &["--policy", &policy.to_string_lossy()],
    )?;
    let version = gateway
        .cli()
        .must(&["version", "--format", "{{.Server.Version}}"], SHORT)?;
    ensure(!version.stdout.trim().is_empty(), || version.describe())
}

fn serve_refuses_world_writable_engine_socket(rig: &Rig) -> Outcome {
    let socket = rig.engine.socket();
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666))?;
    let done = serve_exit(&socket, &rig.dir);
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o660))?;
    let done = done?;
    ensure(
        done.code == Some(3) && done.stderr.contains("every user can connect"),
        || done.describe(),
    )
}

fn gateway_socket_mode_and_non_root_callers(rig: &Rig) -> Outcome {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(rig.gateway.socket())?;
    let docker_gid = nix::unistd::Group::from_name("docker")?
        .ok_or("no docker group")?
        .gid
        .as_raw();
    ensure(
        meta.mode() & 0o7777 == 0o660 && meta.uid() == 0 && meta.gid() == docker_gid,
        || {
            format!(
                "socket is {:o} {}:{}",
                meta.mode() & 0o7777,
                meta.uid(),
                meta.gid()
            )
        },
    )?;
    let config = scratch_dir("u1000")?;
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o777))?;
    let as_user = |groups: &str| {
        let mut command = std::process::Command::new("setpriv");
        command
            .args(["--reuid", "1000", "--regid", "1000"])
            .args(if groups.is_empty() {
                vec!["--clear-groups".to_owned()]
            } else {
                vec!["--groups".to_owned(), groups.to_owned()]
            })
            .args(["docker", "version", "--format", "{{.Server.Version}}"])
            .env(
                "DOCKER_HOST",
                format!("unix://{}", rig.gateway.socket().display()),
            )
            .env("DOCKER_CONFIG", &config)
            .env("HOME", &config);
        run_with_timeout(&mut command, None, SHORT)
    };
    let member = as_user(&docker_gid.to_string())?;
    ensure(member.success() && !member.stdout.trim().is_empty(), || {
        format!("member: {}", member.describe())
    })?;
    let outsider = as_user("")?;
    ensure(
        !outsider.success() && outsider.stderr.contains("permission denied"),
        || format!("outsider: {}", outsider.describe()),
    )?;
    let _ = std::fs::remove_dir_all(&config);
    // The gateway writes its log from a writer thread, a little after the request.
    let logged = wait_for(|| Ok(rig.gateway.log().contains("uid=1000")))?;
    ensure(logged, || {
        "the gateway did not log the caller's uid 1000".into()
    })
}

fn doctor_reports_the_engine(rig: &Rig) -> Outcome {
    let socket = rig.engine.socket();
    let mut command = std::process::Command::new(STOCKADE);
    command.args([
        "doctor",
        "--engine",
        &format!("unix://{}", socket.display()),
    ]);
    let done = run_with_timeout(&mut command, None, SHORT)?;
    let shown = socket.display().to_string();
    ensure(
        done.stdout.contains(&format!(
            "PASS  engine socket {shown} can be opened by root only"
        )) && done
            .stdout
            .contains(&format!("PASS  engine at {shown} isolates containers")),
        || done.describe(),
    )?;
    // And it fails the same engine once its socket is opened to everyone.
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666))?;
    let exposed = run_with_timeout(&mut command, None, SHORT);
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o660))?;
    let exposed = exposed?;
    ensure(
        exposed.code == Some(3)
            && exposed.stdout.contains(&format!(
                "FAIL  engine socket {shown}: every user can connect"
            )),
        || exposed.describe(),
    )
}

fn bench_smoke_run_checks_bytes(rig: &Rig) -> Outcome {
    let mut command = std::process::Command::new(STOCKADE);
    command.args([
        "bench",
        "--direct",
        &format!("unix://{}", rig.engine.socket().display()),
        "--gateway",
        &format!("unix://{}", rig.gateway.socket().display()),
        "--image",
        TEST_IMAGE,
        "--quick",
        "--only",
        "ping,exec,attach,archive,logs",
    ]);
    let done = run_with_timeout(&mut command, None, LONG)?;
    ensure(done.success(), || done.describe())?;
    for row in [
        "/_ping keep-alive p50",
        "exec echo, 16 MiB",
        "attach echo, 16 MiB",
        "archive PUT, 16 MiB",
        "logs, 16 MiB",
    ] {
        let line = done
            .stdout
            .lines()
            .find(|l| l.starts_with(row))
            .unwrap_or_default();
        ensure(line.contains('x') && !line.contains("broken"), || {
            format!("row {row:?} missing or broken:\n{}", done.stdout)
        })?;
    }
    // A wrong engine path is a clear error, not a table.
    let mut wrong = std::process::Command::new(STOCKADE);
    wrong.args([
        "bench",
        "--direct",
        "unix:///nonexistent.sock",
        "--gateway",
        "unix:///nonexistent.sock",
        "--quick",
    ]);
    let failed = run_with_timeout(&mut wrong, None, SHORT)?;
    ensure(
        failed.code == Some(3) && failed.stderr.contains("/nonexistent.sock"),
        || failed.describe(),
    )
}

fn up_refuses_non_root(_rig: &Rig) -> Outcome {
    let dir = scratch_dir("upuser")?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))?;
    let mut command = std::process::Command::new("setpriv");
    command
        .args([
            "--reuid",
            "1000",
            "--regid",
            "1000",
            "--clear-groups",
            STOCKADE,
            "up",
            "--state-dir",
        ])
        .arg(dir.join("s"));
    let done = run_with_timeout(&mut command, None, SHORT)?;
    let _ = std::fs::remove_dir_all(&dir);
    ensure(
        done.code == Some(3) && done.stderr.contains("must run as root"),
        || done.describe(),
    )
}

/// A running `stockade up` in a scratch directory, ready (its export line printed).
struct RunningUp {
    process: Spawned,
    dir: PathBuf,
    state: PathBuf,
    log: PathBuf,
}

impl RunningUp {
    fn start(tag: &str) -> Result<Self, Failed> {
        Self::start_with(tag, &[])
    }

    fn start_with(tag: &str, policy: &[(&str, serde_json::Value)]) -> Result<Self, Failed> {
        let dir = scratch_dir(tag)?;
        let policy_file = dir.join("policy.json");
        std::fs::write(&policy_file, stockade_test_support::rig_policy(policy))?;
        let subnet = stockade_test_support::free_subnet()?;
        let log = dir.join("up.log");
        let out = dir.join("up.out");
        let state = dir.join("s");
        let mut command = std::process::Command::new(STOCKADE);
        command
            .args([
                "up",
                "--state-dir",
                &state.to_string_lossy(),
                "--bridge-subnet",
                &subnet,
                "--network-pool",
                "10.232.0.0/16",
                "--policy",
                &policy_file.to_string_lossy(),
            ])
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&out)?)
            .stderr(std::fs::File::create(&log)?);
        let process = Spawned::start(
            &mut command,
            nix::sys::signal::Signal::SIGTERM,
            Duration::from_secs(60),
        )?;
        let up = Self {
            process,
            dir,
            state,
            log,
        };
        let expected = format!(
            "export DOCKER_HOST=unix://{}/docker.sock",
            up.state.display()
        );
        let deadline = Instant::now() + Duration::from_secs(90);
        while !std::fs::read_to_string(&out)?.contains(&expected) {
            ensure(Instant::now() < deadline && up.process.is_running(), || {
                format!(
                    "no export line; log: {}",
                    stockade_test_support::log_tail(&up.log)
                )
            })?;
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(up)
    }

    fn dockerd_pid(&self) -> Result<i32, Failed> {
        Ok(std::fs::read_to_string(self.state.join("dockerd.pid"))?
            .trim()
            .parse()?)
    }

    fn bridge(&self) -> Result<String, Failed> {
        std::fs::read_to_string(self.state.join("daemon.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["bridge"].as_str().map(str::to_owned))
            .ok_or_else(|| "daemon.json has no bridge".into())
    }

    /// Checks that nothing of this instance is left: processes, sockets, bridge.
    fn check_gone(&self, dockerd: i32, bridge: &str) -> Outcome {
        ensure(!Path::new(&format!("/proc/{dockerd}")).exists(), || {
            format!("dockerd {dockerd} still running")
        })?;
        ensure(
            !self.state.join("docker.sock").exists() && !self.state.join("engine.sock").exists(),
            || "sockets left behind".into(),
        )?;
        let link = run_with_timeout(
            std::process::Command::new("ip").args(["link", "show", "dev", bridge]),
            None,
            SHORT,
        )?;
        ensure(!link.success(), || format!("bridge {bridge} left behind"))?;
        let mounts = std::fs::read_to_string("/proc/self/mountinfo")?;
        let state = self.state.to_string_lossy().to_string();
        ensure(!mounts.contains(&state), || {
            format!(
                "mounts left below {state}: {:?}",
                mounts
                    .lines()
                    .filter(|l| l.contains(&state))
                    .collect::<Vec<_>>()
            )
        })?;
        let leftovers = processes_mentioning(&self.state.to_string_lossy());
        ensure(leftovers.is_empty(), || {
            format!("processes left behind: {leftovers:?}")
        })
    }
}

impl Drop for RunningUp {
    fn drop(&mut self) {
        self.process.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn up_stops_when_its_engine_dies(_rig: &Rig) -> Outcome {
    let mut up = RunningUp::start("updie")?;
    let dockerd = up.dockerd_pid()?;
    let bridge = up.bridge()?;
    // The engine dies under the gateway (an OOM kill, say): up must not keep serving 502s.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(dockerd),
        nix::sys::signal::Signal::SIGKILL,
    )?;
    let code = up.process.wait(Duration::from_secs(60));
    let log = std::fs::read_to_string(&up.log)?;
    ensure(
        code == Some(3) && log.contains("stopped unexpectedly"),
        || {
            format!(
                "up exited with {code:?}; log: {}",
                stockade_test_support::log_tail(&up.log)
            )
        },
    )?;
    up.check_gone(dockerd, &bridge)
}

fn up_starts_and_stops_cleanly(_rig: &Rig) -> Outcome {
    // The policy's daemon options and engine proxy reach the managed engine; the hardening
    // stays whatever the options say.
    let mut up = RunningUp::start_with(
        "up",
        &[
            (
                "linuxVM",
                serde_json::json!({"dockerDaemonOptions": {"locked": true,
                    "value": "{\"labels\": [\"stockade-test=1\"]}"}}),
            ),
            (
                "proxy",
                serde_json::json!({"locked": true, "mode": "manual",
                    "http": "http://127.0.0.1:9", "https": "http://127.0.0.1:9", "exclude": "localhost"}),
            ),
        ],
    )?;
    let state = up.state.clone();
    let dockerd = up.dockerd_pid()?;
    let bridge = up.bridge()?;
    stockade_test_support::build_test_image(&state.join("engine.sock"))?;
    let cli = Docker::new(&state.join("docker.sock"));
    let ran = must(&cli, &["run", "--rm", TEST_IMAGE, "echo", "through-up"])?;
    ensure(ran == "through-up\n", || format!("got {ran:?}"))?;
    let info = must(
        &cli,
        &[
            "info",
            "--format",
            "{{.Labels}} {{.HTTPSProxy}} {{.SecurityOptions}}",
        ],
    )?;
    ensure(
        // The engine's proxy is Stockade's egress filter (which goes on to the admin's proxy).
        info.contains("stockade-test=1")
            && info.contains(" http://127.0.0.1:")
            && !info.contains("127.0.0.1:9 ")
            && info.contains("userns"),
        || format!("docker info through up: {info}"),
    )?;
    // A second instance on the same state directory is refused.
    let mut second = std::process::Command::new(STOCKADE);
    second.args([
        "up",
        "--state-dir",
        &state.to_string_lossy(),
        "--bridge-subnet",
        "10.233.250.1/24",
    ]);
    let refused = run_with_timeout(&mut second, None, SHORT)?;
    ensure(
        refused.code == Some(3) && refused.stderr.contains("in use by another stockade"),
        || refused.describe(),
    )?;
    let code = up.process.stop();
    ensure(code == Some(0), || {
        format!(
            "up exited with {code:?}; log: {}",
            stockade_test_support::log_tail(&up.log)
        )
    })?;
    up.check_gone(dockerd, &bridge)
}

/// Command lines of live processes that mention `needle` (a state directory).
fn processes_mentioning(needle: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
        .filter(|line| line.contains(needle))
        .collect()
}

/// The create bodies of the bypass suite: each must be refused, and judged by effect: the engine
/// (asked directly) has no container of that name afterwards. `IMAGE` is replaced by the test
/// image.
const BYPASS_CREATE: &[(&str, &str)] = &[
    ("privileged", r#"{"Image":"IMAGE","HostConfig":{"Privileged":true}}"#),
    ("privileged lower case key", r#"{"Image":"IMAGE","HostConfig":{"privileged":true}}"#),
    ("privileged upper case key", r#"{"Image":"IMAGE","hostconfig":{"PRIVILEGED":true}}"#),
    ("privileged escaped key", r#"{"Image":"IMAGE","HostConfig":{"Privil\u0065ged":true}}"#),
    ("privileged duplicate last wins", r#"{"Image":"IMAGE","HostConfig":{"Privileged":false,"privileged":true}}"#),
    ("privileged at top level (20.10 embedded HostConfig)", r#"{"Image":"IMAGE","Privileged":true}"#),
    ("binds at top level", r#"{"Image":"IMAGE","Binds":["/:/host"]}"#),
    ("two HostConfig members", r#"{"Image":"IMAGE","HostConfig":{},"hostConfig":{"Privileged":true}}"#),
    ("trailing second object", r#"{"Image":"IMAGE"} {"HostConfig":{"Privileged":true}}"#),
    ("capability via long s", "{\"Image\":\"IMAGE\",\"HostConfig\":{\"CapAdd\":[],\"CapAdd\u{17F}\":1}}"),
    ("sysctls via long s", "{\"Image\":\"IMAGE\",\"HostConfig\":{\"\u{17F}ysctls\":{\"kernel.core_pattern\":\"|/x\"}}}"),
    ("cap_sys_admin", r#"{"Image":"IMAGE","HostConfig":{"CapAdd":["cap_sys_admin"]}}"#),
    ("cap ALL as string", r#"{"Image":"IMAGE","HostConfig":{"CapAdd":"ALL"}}"#),
    ("Capabilities list", r#"{"Image":"IMAGE","HostConfig":{"Capabilities":["CAP_SYS_ADMIN"]}}"#),
    ("pid host", r#"{"Image":"IMAGE","HostConfig":{"PidMode":"host"}}"#),
    ("userns host", r#"{"Image":"IMAGE","HostConfig":{"UsernsMode":"host"}}"#),
    ("network host", r#"{"Image":"IMAGE","HostConfig":{"NetworkMode":"host"}}"#),
    ("network host by endpoint", r#"{"Image":"IMAGE","NetworkingConfig":{"EndpointsConfig":{"host":{}}}}"#),
    ("ipc host", r#"{"Image":"IMAGE","HostConfig":{"IpcMode":"host"}}"#),
    ("uts host", r#"{"Image":"IMAGE","HostConfig":{"UTSMode":"host"}}"#),
    ("cgroupns host", r#"{"Image":"IMAGE","HostConfig":{"CgroupnsMode":"host"}}"#),
    ("seccomp unconfined", r#"{"Image":"IMAGE","HostConfig":{"SecurityOpt":["seccomp=unconfined"]}}"#),
    ("seccomp legacy colon", r#"{"Image":"IMAGE","HostConfig":{"SecurityOpt":["seccomp:unconfined"]}}"#),
    ("apparmor unconfined", r#"{"Image":"IMAGE","HostConfig":{"SecurityOpt":["apparmor=unconfined"]}}"#),
    ("label disable", r#"{"Image":"IMAGE","HostConfig":{"SecurityOpt":["label=disable"]}}"#),
    ("no-new-privileges false", r#"{"Image":"IMAGE","HostConfig":{"SecurityOpt":["no-new-privileges=false"]}}"#),
    ("systempaths unconfined", r#"{"Image":"IMAGE","HostConfig":{"SecurityOpt":["systempaths=unconfined"]}}"#),
    ("masked paths emptied", r#"{"Image":"IMAGE","HostConfig":{"MaskedPaths":[]}}"#),
    ("readonly paths emptied", r#"{"Image":"IMAGE","HostConfig":{"ReadonlyPaths":[]}}"#),
    ("device", r#"{"Image":"IMAGE","HostConfig":{"Devices":[{"PathOnHost":"/dev/mem","PathInContainer":"/dev/mem","CgroupPermissions":"rwm"}]}}"#),
    ("device cgroup rule", r#"{"Image":"IMAGE","HostConfig":{"DeviceCgroupRules":["a *:* rwm"]}}"#),
    ("device request", r#"{"Image":"IMAGE","HostConfig":{"DeviceRequests":[{"Count":-1,"Capabilities":[["gpu"]]}]}}"#),
    ("core_pattern sysctl", r#"{"Image":"IMAGE","HostConfig":{"Sysctls":{"kernel.core_pattern":"|/x"}}}"#),
    ("runtime", r#"{"Image":"IMAGE","HostConfig":{"Runtime":"io.containerd.runc.v2"}}"#),
    ("cgroup parent", r#"{"Image":"IMAGE","HostConfig":{"CgroupParent":"/"}}"#),
    ("bind root", r#"{"Image":"IMAGE","HostConfig":{"Binds":["/:/host"]}}"#),
    ("bind etc read-only", r#"{"Image":"IMAGE","HostConfig":{"Binds":["/etc:/e:ro"]}}"#),
    ("bind with dot-dot", r#"{"Image":"IMAGE","HostConfig":{"Binds":["/tmp/../etc:/e"]}}"#),
    ("bind docker socket dir", r#"{"Image":"IMAGE","HostConfig":{"Binds":["/run:/r"]}}"#),
    ("mount bind root", r#"{"Image":"IMAGE","HostConfig":{"Mounts":[{"Type":"bind","Source":"/","Target":"/h"}]}}"#),
    ("mount type case", r#"{"Image":"IMAGE","HostConfig":{"Mounts":[{"Type":"BIND","Source":"/","Target":"/h"}]}}"#),
    ("volume bind opts", r#"{"Image":"IMAGE","HostConfig":{"Mounts":[{"Type":"volume","Target":"/v","VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"type":"none","o":"bind","device":"/etc"}}}}]}}"#),
    ("volume block device", r#"{"Image":"IMAGE","HostConfig":{"Mounts":[{"Type":"volume","Target":"/v","VolumeOptions":{"DriverConfig":{"Options":{"type":"ext4","device":"/dev/sda1"}}}}]}}"#),
    ("volumes-from", r#"{"Image":"IMAGE","HostConfig":{"VolumesFrom":["anything"]}}"#),
    ("syslog log driver", r#"{"Image":"IMAGE","HostConfig":{"LogConfig":{"Type":"syslog","Config":{"syslog-address":"tcp://10.0.0.1:514"}}}}"#),
    ("unknown field", r#"{"Image":"IMAGE","HostConfig":{"Bogus":true}}"#),
    ("wrong type", r#"{"Image":"IMAGE","HostConfig":{"Privileged":"true"}}"#),
    ("lone surrogate", r#"{"Image":"IMAGE","Labels":{"a":"\ud800"}}"#),
    // Key spellings Go folds together (U+017F long s, U+212A Kelvin) on other fields.
    ("security opt via long s", "{\"Image\":\"IMAGE\",\"HostConfig\":{\"\u{17F}ecurityOpt\":[\"seccomp=unconfined\"]}}"),
    ("devices via long s", "{\"Image\":\"IMAGE\",\"HostConfig\":{\"Device\u{17F}\":[{\"PathOnHost\":\"/dev/mem\",\"PathInContainer\":\"/dev/mem\",\"CgroupPermissions\":\"rwm\"}]}}"),
    ("binds via long s", "{\"Image\":\"IMAGE\",\"HostConfig\":{\"Bind\u{17F}\":[\"/:/host\"]}}"),
    ("masked paths via long s", "{\"Image\":\"IMAGE\",\"HostConfig\":{\"Ma\u{17F}kedPaths\":[]}}"),
    ("escaped long s key", r#"{"Image":"IMAGE","HostConfig":{"\u017fysctls":{"kernel.core_pattern":"|/x"}}}"#),
    ("upper-case HOSTCONFIG", r#"{"Image":"IMAGE","HOSTCONFIG":{"PRIVILEGED":true}}"#),
    ("key with a NUL", r#"{"Image":"IMAGE","HostConfig":{"Privileged\u0000":true}}"#),
    ("duplicate HostConfig, last privileged", r#"{"Image":"IMAGE","HostConfig":{"Privileged":false},"HostConfig":{"Privileged":true}}"#),
    ("nested duplicate Binds", r#"{"Image":"IMAGE","HostConfig":{"Binds":[],"binds":["/etc:/e"]}}"#),
    ("privileged as number", r#"{"Image":"IMAGE","HostConfig":{"Privileged":1}}"#),
    ("body is an array", r#"[{"Image":"IMAGE","HostConfig":{"Privileged":true}}]"#),
    ("body is null", "null"),
    // Capabilities in other spellings and the well-known escape ones.
    ("cap all lower", r#"{"Image":"IMAGE","HostConfig":{"CapAdd":["all"]}}"#),
    ("cap ALL", r#"{"Image":"IMAGE","HostConfig":{"CapAdd":["ALL"]}}"#),
    ("cap SYS_MODULE", r#"{"Image":"IMAGE","HostConfig":{"CapAdd":["SYS_MODULE"]}}"#),
    ("cap DAC_READ_SEARCH (shocker)", r#"{"Image":"IMAGE","HostConfig":{"CapAdd":["DAC_READ_SEARCH"]}}"#),
    ("cap SYS_PTRACE", r#"{"Image":"IMAGE","HostConfig":{"CapAdd":["CAP_SYS_PTRACE"]}}"#),
    ("cap NET_ADMIN", r#"{"Image":"IMAGE","HostConfig":{"CapAdd":["net_admin"]}}"#),
    ("cap BPF", r#"{"Image":"IMAGE","HostConfig":{"CapAdd":["BPF"]}}"#),
    ("cap SYSLOG", r#"{"Image":"IMAGE","HostConfig":{"CapAdd":["SYSLOG"]}}"#),
    // Security options in other spellings.
    ("custom seccomp profile allowing everything", r#"{"Image":"IMAGE","HostConfig":{"SecurityOpt":["seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}"]}}"#),
    ("apparmor legacy colon", r#"{"Image":"IMAGE","HostConfig":{"SecurityOpt":["apparmor:unconfined"]}}"#),
    ("label legacy colon", r#"{"Image":"IMAGE","HostConfig":{"SecurityOpt":["label:disable"]}}"#),
    ("label type spc_t", r#"{"Image":"IMAGE","HostConfig":{"SecurityOpt":["label=type:spc_t"]}}"#),
    ("no-new-privileges colon false", r#"{"Image":"IMAGE","HostConfig":{"SecurityOpt":["no-new-privileges:false"]}}"#),
    ("masked paths reduced", r#"{"Image":"IMAGE","HostConfig":{"MaskedPaths":["/proc/asound"]}}"#),
    // Namespaces of other containers.
    ("pid of another container", r#"{"Image":"IMAGE","HostConfig":{"PidMode":"container:someone"}}"#),
    ("ipc of another container", r#"{"Image":"IMAGE","HostConfig":{"IpcMode":"container:someone"}}"#),
    ("network of a container made elsewhere", r#"{"Image":"IMAGE","HostConfig":{"NetworkMode":"container:someone"}}"#),
    ("link to a container made elsewhere", r#"{"Image":"IMAGE","HostConfig":{"Links":["/someone:db"]}}"#),
    ("volumes-from read-write", r#"{"Image":"IMAGE","HostConfig":{"VolumesFrom":["someone:rw"]}}"#),
    ("cgroup of another container", r#"{"Image":"IMAGE","HostConfig":{"Cgroup":"container:someone"}}"#),
    // Sysctls that are not namespaced.
    ("sysctl modprobe", r#"{"Image":"IMAGE","HostConfig":{"Sysctls":{"kernel.modprobe":"/tmp/x"}}}"#),
    ("sysctl upper case", r#"{"Image":"IMAGE","HostConfig":{"Sysctls":{"KERNEL.CORE_PATTERN":"|/x"}}}"#),
    ("sysctl vm", r#"{"Image":"IMAGE","HostConfig":{"Sysctls":{"vm.overcommit_memory":"1"}}}"#),
    ("sysctl suid_dumpable", r#"{"Image":"IMAGE","HostConfig":{"Sysctls":{"fs.suid_dumpable":"2"}}}"#),
    // Host paths in other spellings, and Stockade's own sockets.
    ("bind double slash", r#"{"Image":"IMAGE","HostConfig":{"Binds":["//etc:/e"]}}"#),
    ("bind proc", r#"{"Image":"IMAGE","HostConfig":{"Binds":["/proc:/p"]}}"#),
    ("bind sys", r#"{"Image":"IMAGE","HostConfig":{"Binds":["/sys:/s"]}}"#),
    ("bind dev", r#"{"Image":"IMAGE","HostConfig":{"Binds":["/dev:/d"]}}"#),
    ("bind root home", r#"{"Image":"IMAGE","HostConfig":{"Binds":["/root/../etc:/x"]}}"#),
    ("bind the engine socket", r#"{"Image":"IMAGE","HostConfig":{"Binds":["ENGINESOCK:/var/run/docker.sock"]}}"#),
    ("mount the engine socket", r#"{"Image":"IMAGE","HostConfig":{"Mounts":[{"Type":"bind","Source":"ENGINESOCK","Target":"/s"}]}}"#),
    ("bind the gateway socket, image not allowed", r#"{"Image":"IMAGE","HostConfig":{"Binds":["GWSOCK:/var/run/docker.sock"]}}"#),
    ("mount the gateway socket, image not allowed", r#"{"Image":"IMAGE","HostConfig":{"Mounts":[{"Type":"bind","Source":"GWSOCK","Target":"/s"}]}}"#),
    ("bind the container sockets directory", r#"{"Image":"IMAGE","HostConfig":{"Binds":["GWSOCK.containers:/c"]}}"#),
    ("bind the gateway directory", r#"{"Image":"IMAGE","HostConfig":{"Binds":["GWDIR:/g"]}}"#),
    ("mount type npipe", r#"{"Image":"IMAGE","HostConfig":{"Mounts":[{"Type":"npipe","Source":"/","Target":"/h"}]}}"#),
    ("mount type cluster", r#"{"Image":"IMAGE","HostConfig":{"Mounts":[{"Type":"cluster","Source":"x","Target":"/h"}]}}"#),
    ("volume plugin driver in mount", r#"{"Image":"IMAGE","HostConfig":{"Mounts":[{"Type":"volume","Source":"v","Target":"/v","VolumeOptions":{"DriverConfig":{"Name":"rexray"}}}]}}"#),
    ("volume tmpfs type with bind option", r#"{"Image":"IMAGE","HostConfig":{"Mounts":[{"Type":"volume","Target":"/v","VolumeOptions":{"DriverConfig":{"Options":{"type":"tmpfs","o":"bind","device":"/etc"}}}}]}}"#),
    ("volume nfs", r#"{"Image":"IMAGE","HostConfig":{"Mounts":[{"Type":"volume","Target":"/v","VolumeOptions":{"DriverConfig":{"Options":{"type":"nfs","o":"addr=10.0.0.1","device":":/export"}}}}]}}"#),
    ("volume driver default", r#"{"Image":"IMAGE","HostConfig":{"VolumeDriver":"rexray"}}"#),
    // Other engine-side powers.
    ("gelf log driver", r#"{"Image":"IMAGE","HostConfig":{"LogConfig":{"Type":"gelf","Config":{"gelf-address":"udp://10.0.0.1:12201"}}}}"#),
    ("fluentd log driver", r#"{"Image":"IMAGE","HostConfig":{"LogConfig":{"Type":"fluentd","Config":{}}}}"#),
    ("splunk log driver", r#"{"Image":"IMAGE","HostConfig":{"LogConfig":{"Type":"splunk","Config":{}}}}"#),
    ("hyperv isolation", r#"{"Image":"IMAGE","HostConfig":{"Isolation":"hyperv"}}"#),
    ("annotations", r#"{"Image":"IMAGE","HostConfig":{"Annotations":{"io.kubernetes.cri-o.Devices":"/dev/mem"}}}"#),
    ("cgroup parent dot-dot", r#"{"Image":"IMAGE","HostConfig":{"CgroupParent":"../../"}}"#),
    // Ownership and images.
    ("forged owner label", r#"{"Image":"IMAGE","Labels":{"io.stockade.owner":"1000"}}"#),
    ("image from a forbidden registry", r#"{"Image":"quay.io/evil/tool:1"}"#),
    ("image name that is no reference", r#"{"Image":"../../containers/x"}"#),
];

fn bypass_create_bodies_make_no_container(rig: &Rig) -> Outcome {
    let socket = rig.gateway.socket().to_owned();
    let mut failures = Vec::new();
    for (what, body) in BYPASS_CREATE {
        let name = unique("bypass");
        let gateway_dir = socket.parent().unwrap_or(Path::new("/"));
        let body = body
            .replace("IMAGE", TEST_IMAGE)
            .replace("ENGINESOCK", &rig.engine.socket().to_string_lossy())
            .replace("GWSOCK", &socket.to_string_lossy())
            .replace("GWDIR", &gateway_dir.to_string_lossy());
        let answer = http::request(
            &socket,
            "POST",
            &format!("/v1.41/containers/create?name={name}"),
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )?;
        // The effect, asked of the engine directly: no such container.
        let exists = rig
            .engine_cli()
            .run(&["container", "inspect", &name], None, SHORT)?;
        if exists.success() {
            let _ = rig.engine_cli().run(&["rm", "-f", &name], None, SHORT);
            failures.push(format!(
                "{what}: a container was created (status {})",
                answer.status
            ));
        } else if !matches!(answer.status, 400 | 403) {
            failures.push(format!("{what}: answered {}", answer.status));
        }
    }
    // And the everyday body next to them still works, so the refusals above are the rules'.
    let name = unique("bypass-ok");
    let shared = scratch_dir("bypass-ok")?;
    let body = format!(
        r#"{{"Image":"{TEST_IMAGE}","Cmd":["true"],"HostConfig":{{"Binds":["{}:/t"]}}}}"#,
        shared.display()
    );
    let answer = http::request(
        &socket,
        "POST",
        &format!("/v1.41/containers/create?name={name}"),
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )?;
    let _ = rig.engine_cli().run(&["rm", "-f", &name], None, SHORT);
    let _ = std::fs::remove_dir_all(&shared);
    ensure(answer.status == 201, || {
        format!(
            "an everyday create was refused: {}",
            String::from_utf8_lossy(&answer.body)
        )
    })?;
    ensure(failures.is_empty(), || failures.join("\n"))
}

fn bypass_framing_and_form_tricks_are_refused(rig: &Rig) -> Outcome {
    let socket = rig.gateway.socket().to_owned();
    // A form body would override the checked query parameter in the engine's r.FormValue.
    let answer = http::request(
        &socket,
        "POST",
        "/v1.41/build?networkmode=default",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"networkmode=host",
    )?;
    ensure(answer.status == 400, || {
        format!("form build: {}", answer.status)
    })?;
    for (path, what) in [
        ("/v1.41/build?networkmode=host", "build on the host network"),
        (
            "/v1.41/build?networkmode=default&networkmode=host",
            "repeated parameter",
        ),
        (
            "/v1.41/build?NetworkMode=host",
            "unknown parameter spelling",
        ),
        ("/v1.41/build?networkmode=host;x=1", "semicolon separator"),
        (
            "/v1.41/containers/x/start?checkpoint=c",
            "checkpoint restore",
        ),
    ] {
        let answer = http::request(
            &socket,
            "POST",
            path,
            &[("Content-Type", "application/x-tar")],
            b"",
        )?;
        ensure(matches!(answer.status, 400 | 403), || {
            format!("{what}: answered {}", answer.status)
        })?;
    }
    // A body on a route that takes none (start would be forwarded with it otherwise).
    let answer = http::request(
        &socket,
        "POST",
        "/v1.41/containers/nonexistent/start",
        &[("Content-Type", "application/json")],
        br#"{"Privileged":true}"#,
    )?;
    ensure(answer.status == 400, || {
        format!("body on start: {}", answer.status)
    })?;
    // Chunked create with a privileged body: de-chunked, checked, refused, nothing created.
    let name = unique("chunked");
    let body = format!(r#"{{"Image":"{TEST_IMAGE}","HostConfig":{{"Privileged":true}}}}"#);
    let chunked = format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
    let mut stream = std::os::unix::net::UnixStream::connect(&socket)?;
    std::io::Write::write_all(
        &mut stream,
        format!(
            "POST /v1.41/containers/create?name={name} HTTP/1.1\r\nHost: d\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{chunked}"
        )
        .as_bytes(),
    )?;
    let mut reply = String::new();
    std::io::Read::read_to_string(&mut stream, &mut reply)?;
    ensure(reply.starts_with("HTTP/1.1 403"), || {
        format!("chunked: {reply}")
    })?;
    let exists = rig
        .engine_cli()
        .run(&["container", "inspect", &name], None, SHORT)?;
    ensure(!exists.success(), || {
        "a chunked privileged create made a container".to_owned()
    })
}

/// Whether the gateway itself refused a `docker load` (the engine's own answer to a junk archive
/// is an error too, but never a blockDockerLoad refusal).
fn load_blocked(socket: &Path) -> Result<bool, Failed> {
    let answer = http::request(
        socket,
        "POST",
        "/v1.41/images/load?quiet=1",
        &[("Content-Type", "application/x-tar")],
        b"not a tar archive",
    )?;
    Ok(answer.status == 403 && String::from_utf8_lossy(&answer.body).contains("blockDockerLoad"))
}

fn wait_for(mut condition: impl FnMut() -> Result<bool, Failed>) -> Result<bool, Failed> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if condition()? {
            return Ok(true);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(false)
}

fn policy_reloads_on_change_and_keeps_the_last_good_one(rig: &Rig) -> Outcome {
    let dir = scratch_dir("reload")?;
    let policy = dir.join("admin-settings.json");
    let write = |blocked: bool| {
        std::fs::write(
            &policy,
            format!(
                r#"{{"configurationFileVersion": 2, "blockDockerLoad": {{"locked": true, "value": {blocked}}}}}"#
            ),
        )
    };
    write(true)?;
    let log = dir.join("audit.log");
    let mut gateway = Gateway::start(
        Path::new(STOCKADE),
        &rig.engine.socket(),
        &dir.join("gw.sock"),
        &[
            "--policy",
            &policy.to_string_lossy(),
            "--audit-log",
            &log.to_string_lossy(),
        ],
    )?;
    let socket = gateway.socket().to_owned();
    ensure(load_blocked(&socket)?, || {
        "the policy file's block is not in force".to_owned()
    })?;
    // A valid change takes effect without a restart.
    write(false)?;
    ensure(wait_for(|| load_blocked(&socket).map(|b| !b))?, || {
        "a changed policy file was not reloaded".to_owned()
    })?;
    // A broken file is refused and the last good policy stays.
    std::fs::write(
        &policy,
        "{\"configurationFileVersion\": 2, \"blockDockerLoad\": ",
    )?;
    ensure(
        wait_for(|| Ok(gateway.log().contains("policy reload refused")))?,
        || format!("the broken file was not reported:\n{}", gateway.log()),
    )?;
    ensure(!load_blocked(&socket)?, || {
        "a broken file changed the policy".to_owned()
    })?;
    // SIGHUP reloads at once.
    write(true)?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(gateway.pid())?),
        nix::sys::signal::Signal::SIGHUP,
    )?;
    ensure(wait_for(|| load_blocked(&socket))?, || {
        "SIGHUP did not reload".to_owned()
    })?;
    gateway.stop_with(nix::sys::signal::Signal::SIGTERM);
    // The audit log holds the loads and the refused reload, and verifies.
    let records = std::fs::read_to_string(&log)?;
    ensure(records.matches("\"policy_load\"").count() >= 3, || {
        records.clone()
    })?;
    ensure(records.contains("\"policy_reload_failed\""), || {
        records.clone()
    })?;
    let verified = audit_verify(&log)?;
    drop(gateway);
    let _ = std::fs::remove_dir_all(&dir);
    ensure(verified.success(), || verified.describe())
}

fn cli_shows_denials_and_everyday_runs_work(rig: &Rig) -> Outcome {
    let cli = rig.cli();
    // The stock CLI prints the gateway's message as it is; nothing is created.
    for (args, message) in [
        (
            vec!["run", "--rm", "--privileged", TEST_IMAGE, "true"],
            "enhanced container isolation: privileged containers are not allowed",
        ),
        (
            vec!["run", "--rm", "-v", "/usr:/host-usr", TEST_IMAGE, "true"],
            "filesharingAllowedDirectories",
        ),
        (
            vec!["run", "--rm", "--cap-add", "SYS_ADMIN", TEST_IMAGE, "true"],
            "adding capability SYS_ADMIN is not allowed",
        ),
        (
            vec!["run", "--rm", "--pid", "host", TEST_IMAGE, "true"],
            "PidMode=host is not allowed",
        ),
        (
            vec![
                "run",
                "--rm",
                "--security-opt",
                "seccomp=unconfined",
                TEST_IMAGE,
                "true",
            ],
            "security option",
        ),
    ] {
        let before = must(&rig.engine_cli(), &["ps", "-aq"])?;
        let out = cli.run(&args, None, SHORT)?;
        ensure(!out.success() && out.stderr.contains(message), || {
            format!("{args:?}: {}", out.describe())
        })?;
        let after = must(&rig.engine_cli(), &["ps", "-aq"])?;
        ensure(before == after, || {
            format!("{args:?} left a container behind")
        })?;
    }
    // Everyday use keeps working: a bind mount of a directory under $TMP, env, ports, tmpfs.
    let shared = scratch_dir("cli-bind")?;
    std::fs::write(shared.join("hello.txt"), "hello from the host\n")?;
    let out = must(
        &cli,
        &[
            "run",
            "--rm",
            "-e",
            "A=1",
            "--tmpfs",
            "/scratch",
            "--cap-add",
            "CHOWN",
            "--security-opt",
            "no-new-privileges",
            "-v",
            &format!("{}:/data:ro", shared.display()),
            TEST_IMAGE,
            "cat",
            "/data/hello.txt",
        ],
    )?;
    let _ = std::fs::remove_dir_all(&shared);
    ensure(out.contains("hello from the host"), || out.clone())
}

/// Images present on the engine whose name or ID contains `needle`.
fn engine_images(rig: &Rig) -> Result<String, Failed> {
    must(
        &rig.engine_cli(),
        &[
            "images",
            "-a",
            "--no-trunc",
            "--digests",
            "--format",
            "{{.Repository}}:{{.Tag}}@{{.Digest}} {{.ID}}",
        ],
    )
}

/// Registry access on every path an image enters, against a real allowed registry (the rig's,
/// 127.0.0.1) and a real forbidden one (127.0.0.2), judged by what the forbidden registry was
/// asked and what the engine holds afterwards.
fn registry_access_holds_on_every_path(rig: &Rig) -> Outcome {
    let forbidden = stockade_test_support::Registry::start_at("127.0.0.2")?;
    let bad = forbidden.host();
    let good = rig.registry.host();
    let direct = rig.engine_cli();
    let cli = rig.cli();
    // Seed both registries straight through the engine (as an admin would have, before the
    // policy), then forget the local copies.
    let seed_bad = format!("{bad}/seed:v1");
    let seed_good = format!("{good}/seed:v1");
    for seed in [&seed_bad, &seed_good] {
        must(&direct, &["tag", TEST_IMAGE, seed])?;
        must(&direct, &["push", seed])?;
        must(&direct, &["rmi", seed])?;
    }
    let asked_before = forbidden.manifest_requests();
    let denied = |args: &[&str], words: &str| -> Outcome {
        let containers = must(&direct, &["ps", "-aq"])?;
        let out = cli.run(args, None, LONG)?;
        ensure(!out.success() && out.stderr.contains(words), || {
            format!(
                "{args:?} should be refused with {words:?}: {}",
                out.describe()
            )
        })?;
        let after = must(&direct, &["ps", "-aq"])?;
        ensure(containers == after, || format!("{args:?} left a container"))
    };
    let refused = format!("registry access to {bad} is not allowed");
    // Pull, and run of an image that is not present (the CLI would pull it next).
    denied(&["pull", &seed_bad], &refused)?;
    denied(&["run", "--rm", &seed_bad, "true"], &refused)?;
    denied(&["create", &seed_bad], &refused)?;
    // Push: tagging into the forbidden registry is refused, and so is pushing a name the
    // engine was given some other way.
    let pushed = format!("{bad}/pushed:v1");
    denied(&["tag", TEST_IMAGE, &pushed], &refused)?;
    must(&direct, &["tag", TEST_IMAGE, &pushed])?;
    denied(&["push", &pushed], &refused)?;
    must(&direct, &["rmi", &pushed])?;
    ensure(!forbidden.has_manifest("pushed", "v1"), || {
        "the forbidden registry received the pushed image".to_owned()
    })?;
    // Commit and build into the forbidden registry's namespace.
    let box_name = sleeper(rig, "ram-commit")?;
    let committed = format!("{bad}/committed:v1");
    let commit = denied(&["commit", &box_name, &committed], &refused);
    remove(rig, &box_name);
    commit?;
    let context = write_context(&format!("FROM {TEST_IMAGE}\nRUN true\n"))?;
    let built = format!("{bad}/built:v1");
    let build = cli.clone().with_env("DOCKER_BUILDKIT", "0").run(
        &["build", "-t", &built, &context.to_string_lossy()],
        None,
        LONG,
    )?;
    let _ = std::fs::remove_dir_all(&context);
    ensure(!build.success() && build.stderr.contains(&refused), || {
        format!("build -t {built}: {}", build.describe())
    })?;
    // A forbidden image pulled before the policy, then re-tagged under an allowed name, cannot
    // be run by either name nor by ID.
    let asked_before_direct = forbidden.manifest_requests();
    must(&direct, &["pull", &seed_bad])?;
    let retagged = unique("retagged");
    must(&direct, &["tag", &seed_bad, &retagged])?;
    let id = must(&direct, &["image", "inspect", "-f", "{{.Id}}", &retagged])?;
    let asked_after_seed = forbidden.manifest_requests();
    let provenance = denied(&["run", "--rm", &retagged, "true"], &refused)
        .and_then(|()| denied(&["run", "--rm", id.trim(), "true"], &refused));
    let _ = direct.run(&["rmi", "-f", &retagged, &seed_bad], None, SHORT);
    provenance?;
    // Effect: the forbidden registry was asked for no manifest through the gateway, and no
    // forbidden image is left in the engine.
    ensure(
        forbidden.manifest_requests() == asked_after_seed
            && asked_before_direct == asked_before
            && asked_after_seed > asked_before_direct,
        || {
            format!(
                "the forbidden registry served manifests through the gateway: {asked_before} before, {asked_before_direct} before the direct pull, {asked_after_seed} after it, {} at the end",
                forbidden.manifest_requests()
            )
        },
    )?;
    let images = engine_images(rig)?;
    ensure(!images.contains(&bad), || {
        format!("a forbidden image is in the engine: {images}")
    })?;
    // The allowed registry works on every path.
    must(&cli, &["pull", &seed_good])?;
    let out = must(&cli, &["run", "--rm", &seed_good, "echo", "allowed"])?;
    ensure(out.contains("allowed"), || out.clone())?;
    let ok_push = format!("{good}/{}:v1", unique("ok-push"));
    must(&cli, &["tag", TEST_IMAGE, &ok_push])?;
    must(&cli, &["push", &ok_push])?;
    let _ = direct.run(&["rmi", &ok_push, &seed_good], None, SHORT);
    Ok(())
}

/// Builds: the classic builder's base images (FROM after ARG substitution, COPY --from) are
/// read out of the context and held to registry access; `docker load` archives are held to it
/// by the names in their manifest. Judged by the forbidden registry's log and the engine.
fn build_bases_and_load_names_are_checked(rig: &Rig) -> Outcome {
    let forbidden = stockade_test_support::Registry::start_at("127.0.0.2")?;
    let bad = forbidden.host();
    let direct = rig.engine_cli();
    let seed = format!("{bad}/base:v1");
    must(&direct, &["tag", TEST_IMAGE, &seed])?;
    must(&direct, &["push", &seed])?;
    must(&direct, &["rmi", &seed])?;
    let asked = forbidden.manifest_requests();
    let classic = rig.cli().with_env("DOCKER_BUILDKIT", "0");
    let refused = format!("registry access to {bad} is not allowed");
    let cases = [
        format!("FROM {seed}\nRUN true\n"),
        format!("ARG REG={}\nFROM ${{REG}}/base:v1\n", rig.registry.host()),
        format!("FROM {TEST_IMAGE} AS one\nFROM one\nCOPY --from={seed} /bin/sh /x\n"),
        format!("# escape=`\nFROM `\n  {seed}\n"),
    ];
    for (i, dockerfile) in cases.iter().enumerate() {
        let ctx = write_context(dockerfile)?;
        let tag = unique("bad-base");
        // Case 1 names the allowed registry by default and is turned forbidden by --build-arg.
        let mut args = vec!["build", "-t", &tag];
        let build_arg = format!("REG={bad}");
        if i == 1 {
            args.extend(["--build-arg", &build_arg]);
        }
        let path = ctx.to_string_lossy().to_string();
        args.push(&path);
        let out = classic.run(&args, None, LONG)?;
        let _ = std::fs::remove_dir_all(&ctx);
        ensure(!out.success() && out.stderr.contains(&refused), || {
            format!("build of {dockerfile:?}: {}", out.describe())
        })?;
        let made = direct.run(&["image", "inspect", &tag], None, SHORT)?;
        ensure(!made.success(), || format!("{dockerfile:?} built an image"))?;
    }
    // A base that cannot be resolved exactly is refused, not guessed.
    let ctx = write_context("ARG A\nFROM ${A#x}\n")?;
    let out = classic.run(&["build", &ctx.to_string_lossy()], None, LONG)?;
    let _ = std::fs::remove_dir_all(&ctx);
    ensure(
        !out.success() && out.stderr.contains("cannot resolve"),
        || format!("unresolvable FROM: {}", out.describe()),
    )?;
    ensure(forbidden.manifest_requests() == asked, || {
        "the forbidden registry was asked for a manifest during the builds".to_owned()
    })?;
    // Everyday builds from a local base keep working (see build_classic) and from the allowed
    // registry too.
    let good_base = format!("{}/{}:v1", rig.registry.host(), unique("base"));
    must(&direct, &["tag", TEST_IMAGE, &good_base])?;
    must(&direct, &["push", &good_base])?;
    must(&direct, &["rmi", &good_base])?;
    let ctx = write_context(&format!("FROM {good_base}\nCOPY data.txt /d\n"))?;
    let tag = unique("good-base");
    let out = classic.run(&["build", "-t", &tag, &ctx.to_string_lossy()], None, LONG)?;
    let _ = std::fs::remove_dir_all(&ctx);
    let _ = direct.run(&["rmi", "-f", &tag, &good_base], None, SHORT);
    ensure(out.success(), || {
        format!("build from the allowed registry: {}", out.describe())
    })?;
    // docker load, with a policy that allows it: an archive naming a forbidden registry is
    // refused and creates nothing; one naming allowed names loads.
    let dir = scratch_dir("load-ram")?;
    let gateway = gateway_with_policy(
        rig,
        &dir,
        &stockade_test_support::rig_policy(&[
            (
                "blockDockerLoad",
                serde_json::json!({"locked": true, "value": false}),
            ),
            (
                "registryAccess",
                serde_json::json!({"locked": true, "allowedRegistries": ["docker.io", rig.registry.host()]}),
            ),
        ]),
    )?;
    let result = (|| -> Outcome {
        let bad_name = format!("{bad}/loaded:v1");
        let good_name = unique("loaded");
        for (name, allowed) in [(&bad_name, false), (&good_name, true)] {
            must(&direct, &["tag", TEST_IMAGE, name])?;
            let archive = dir.join("image.tar");
            must(&direct, &["save", "-o", &archive.to_string_lossy(), name])?;
            must(&direct, &["rmi", name])?;
            let out = gateway
                .cli()
                .run(&["load", "-i", &archive.to_string_lossy()], None, LONG)?;
            let present = direct
                .run(&["image", "inspect", name], None, SHORT)?
                .success();
            let _ = direct.run(&["rmi", name], None, SHORT);
            if allowed {
                ensure(out.success() && present, || {
                    format!("load of {name}: {}", out.describe())
                })?;
            } else {
                ensure(
                    !out.success() && out.stderr.contains(&refused) && !present,
                    || {
                        format!(
                            "load of {name}: {} (present afterwards: {present})",
                            out.describe()
                        )
                    },
                )?;
            }
        }
        Ok(())
    })();
    drop(gateway);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Image access by Docker Hub category, with a catalog file: what the policy refuses is
/// refused before the engine is asked (no image comes to exist); what it allows reaches the
/// engine (which cannot pull here: no network, so its own error comes back instead).
fn image_access_follows_the_catalog(rig: &Rig) -> Outcome {
    let dir = scratch_dir("iam")?;
    let catalog = dir.join("catalog.json");
    std::fs::write(
        &catalog,
        r#"{"catalogVersion": 1, "namespaces": {"trusted": "verified-publisher"}}"#,
    )?;
    let gateway = gateway_with_policy(
        rig,
        &dir,
        &stockade_test_support::rig_policy(&[(
            "imageAccess",
            serde_json::json!({
                "locked": true,
                "allowOfficialImages": true,
                "allowVerifiedPublisherImages": true,
                "allowCommunityImages": false,
                "organizationNamespaces": ["myorg"],
                "allowedRepositories": ["someone/allowed"],
                "catalog": catalog,
            }),
        )]),
    )?;
    let result = (|| -> Outcome {
        let cli = gateway.cli();
        for (image, refused) in [
            ("someone/tool:1", true),
            ("docker.io/trusted-evil/x", true),
            ("trusted/app:2", false),
            ("myorg/app", false),
            ("someone/allowed", false),
            ("stk-official-probe", false),
        ] {
            let out = cli.run(&["pull", image], None, LONG)?;
            let ours = out
                .stderr
                .contains("image access denied: community images not allowed");
            ensure(!out.success() && ours == refused, || {
                format!(
                    "pull {image} (refusal expected: {refused}): {}",
                    out.describe()
                )
            })?;
            let present = rig
                .engine_cli()
                .run(&["image", "inspect", image], None, SHORT)?
                .success();
            ensure(!present, || format!("{image} is in the engine"))?;
        }
        // The catalog is watched with the policy: once it no longer lists the namespace,
        // its images are community images.
        std::fs::write(&catalog, r#"{"catalogVersion": 1}"#)?;
        let reloaded = wait_for(|| {
            let out = cli.run(&["pull", "trusted/app:2"], None, LONG)?;
            Ok(out
                .stderr
                .contains("image access denied: community images not allowed"))
        })?;
        ensure(reloaded, || {
            format!("the catalog change was not picked up: {}", gateway.log())
        })
    })();
    drop(gateway);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// A throw-away system user with a home directory, removed (with the home) when dropped.
struct TestUser {
    name: String,
    uid: u32,
    home: PathBuf,
}

impl TestUser {
    fn create() -> Result<Self, Failed> {
        let name = format!("stk{}", std::process::id());
        let home = scratch_dir("home")?.join(&name);
        let done = run_with_timeout(
            std::process::Command::new("useradd")
                .args([
                    "--system",
                    "--create-home",
                    "--shell",
                    "/bin/sh",
                    "--home-dir",
                ])
                .arg(&home)
                .arg(&name),
            None,
            SHORT,
        )?;
        ensure(done.success(), || format!("useradd: {}", done.describe()))?;
        let uid = nix::unistd::User::from_name(&name)?
            .ok_or("the new user is not in the password database")?
            .uid
            .as_raw();
        Ok(Self { name, uid, home })
    }

    /// The docker CLI as this user (in the docker group), pointed at `socket`.
    fn docker(
        &self,
        socket: &Path,
        args: &[&str],
    ) -> Result<stockade_test_support::Finished, Failed> {
        let docker_gid = nix::unistd::Group::from_name("docker")?
            .ok_or("no docker group")?
            .gid
            .as_raw();
        let mut command = std::process::Command::new("setpriv");
        command
            .args([
                "--reuid",
                &self.uid.to_string(),
                "--regid",
                &self.uid.to_string(),
            ])
            .args(["--groups", &docker_gid.to_string(), "docker"])
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", socket.display()))
            .env("DOCKER_CONFIG", self.home.join(".docker"))
            .env("HOME", &self.home);
        Ok(run_with_timeout(&mut command, None, LONG)?)
    }

    fn write_settings(&self, text: &str) -> Outcome {
        let dir = self.home.join(".config/stockade");
        std::fs::create_dir_all(&dir)?;
        let file = dir.join("settings.json");
        std::fs::write(&file, text)?;
        for path in [self.home.join(".config"), dir, file] {
            nix::unistd::chown(
                &path,
                Some(nix::unistd::Uid::from_raw(self.uid)),
                Some(nix::unistd::Gid::from_raw(self.uid)),
            )?;
        }
        Ok(())
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = std::process::Command::new("userdel")
            .arg(&self.name)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        if let Some(parent) = self.home.parent() {
            let _ = std::fs::remove_dir_all(parent);
        }
    }
}

/// A real non-root user's own settings file, read by the gateway for that caller's uid: an
/// unlocked setting the user changes applies to them only, a locked one does not move, and
/// `$HOME` in the shared directories is their home. Judged by what the engine holds.
fn user_settings_apply_to_their_owner_only(rig: &Rig) -> Outcome {
    let user = TestUser::create()?;
    let dir = scratch_dir("usr-gw")?;
    let gateway = gateway_with_policy(
        rig,
        &dir,
        &stockade_test_support::rig_policy(&[(
            "blockDockerLoad",
            serde_json::json!({"locked": false, "value": true}),
        )]),
    )?;
    let result = (|| -> Outcome {
        let direct = rig.engine_cli();
        let socket = gateway.socket();
        user.write_settings(
            r#"{"blockDockerLoad": {"value": false}, "enhancedContainerIsolation": {"value": false}}"#,
        )?;
        let name = unique("user-load");
        must(&direct, &["tag", TEST_IMAGE, &name])?;
        let archive = user.home.join("image.tar");
        must(&direct, &["save", "-o", &archive.to_string_lossy(), &name])?;
        nix::unistd::chown(&archive, Some(nix::unistd::Uid::from_raw(user.uid)), None)?;
        must(&direct, &["rmi", &name])?;
        // root has no settings file: the admin default blocks the load.
        let as_root = gateway
            .cli()
            .run(&["load", "-i", &archive.to_string_lossy()], None, LONG)?;
        ensure(
            !as_root.success() && as_root.stderr.contains("blockDockerLoad"),
            || format!("root's load: {}", as_root.describe()),
        )?;
        ensure(
            !direct
                .run(&["image", "inspect", &name], None, SHORT)?
                .success(),
            || "root's refused load created the image".into(),
        )?;
        // The user unblocked it for themselves.
        let loaded = user.docker(socket, &["load", "-i", &archive.to_string_lossy()])?;
        let present = direct
            .run(&["image", "inspect", &name], None, SHORT)?
            .success();
        let _ = direct.run(&["rmi", &name], None, SHORT);
        ensure(loaded.success() && present, || {
            format!("the user's load: {}", loaded.describe())
        })?;
        // ECI is locked on by the built-in default: the user's value is ignored.
        let before = must(&direct, &["ps", "-aq"])?;
        let privileged =
            user.docker(socket, &["run", "--rm", "--privileged", TEST_IMAGE, "true"])?;
        ensure(
            !privileged.success()
                && privileged
                    .stderr
                    .contains("privileged containers are not allowed"),
            || format!("the user's privileged run: {}", privileged.describe()),
        )?;
        // $HOME is the caller's home: the user may mount their own, not root's.
        std::fs::write(user.home.join("mine.txt"), "user file\n")?;
        let own = user.docker(
            socket,
            &[
                "run",
                "--rm",
                "-v",
                &format!("{}:/h:ro", user.home.display()),
                TEST_IMAGE,
                "cat",
                "/h/mine.txt",
            ],
        )?;
        ensure(own.success() && own.stdout.contains("user file"), || {
            format!("the user's own home: {}", own.describe())
        })?;
        let roots = user.docker(
            socket,
            &["run", "--rm", "-v", "/root:/h", TEST_IMAGE, "true"],
        )?;
        ensure(
            !roots.success() && roots.stderr.contains("filesharingAllowedDirectories"),
            || format!("root's home by the user: {}", roots.describe()),
        )?;
        let after = must(&direct, &["ps", "-aq"])?;
        ensure(before == after, || "a refused run left a container".into())?;
        // A settings file the user does not own is not read (it could be anyone's words).
        nix::unistd::chown(
            &user.home.join(".config/stockade/settings.json"),
            Some(nix::unistd::Uid::from_raw(0)),
            None,
        )?;
        let name2 = unique("user-load2");
        must(&direct, &["tag", TEST_IMAGE, &name2])?;
        must(&direct, &["save", "-o", &archive.to_string_lossy(), &name2])?;
        nix::unistd::chown(&archive, Some(nix::unistd::Uid::from_raw(user.uid)), None)?;
        must(&direct, &["rmi", &name2])?;
        let mut last = String::new();
        let refused = wait_for(|| {
            let out = user.docker(socket, &["load", "-i", &archive.to_string_lossy()])?;
            let _ = direct.run(&["rmi", &name2], None, SHORT);
            last = out.describe();
            Ok(!out.success() && out.stderr.contains("blockDockerLoad"))
        })?;
        ensure(refused, || {
            format!(
                "a settings file owned by root was honoured for the user: {last}\n{}",
                gateway.log()
            )
        })
    })();
    drop(gateway);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// A policy file that someone other than root could rewrite is not enforced: `serve` refuses to
/// start on it, naming the fix.
fn serve_refuses_a_policy_others_can_change(rig: &Rig) -> Outcome {
    let dir = scratch_dir("policy-mode")?;
    let policy = dir.join("admin-settings.json");
    std::fs::write(&policy, stockade_test_support::rig_policy(&[]))?;
    std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o664))?;
    let mut command = std::process::Command::new(STOCKADE);
    command.args([
        "serve",
        "--engine",
        &format!("unix://{}", rig.engine.socket().display()),
        "--listen",
        &format!("unix://{}", dir.join("refused.sock").display()),
        "--policy",
        &policy.to_string_lossy(),
    ]);
    let done = run_with_timeout(&mut command, None, SHORT);
    let _ = std::fs::remove_dir_all(&dir);
    let done = done?;
    ensure(
        done.code == Some(3)
            && done
                .stderr
                .contains("can be changed by someone other than root")
            && done.stderr.contains("chmod 0644"),
        || done.describe(),
    )
}

/// Ownership: what a caller creates through the gateway carries their uid in a label no request
/// may set; joining a container (its network namespace, its volumes, a link) is allowed with
/// one's own containers only; containers made some other way belong to nobody.
fn containers_join_only_their_owners_containers(rig: &Rig) -> Outcome {
    let direct = rig.engine_cli();
    let cli = rig.cli();
    let mine = sleeper(rig, "own")?;
    let foreign = unique("foreign");
    must(
        &direct,
        &["run", "-d", "--name", &foreign, TEST_IMAGE, "sleep", "300"],
    )?;
    let user = TestUser::create()?;
    let result = (|| -> Outcome {
        let label = must(
            &direct,
            &[
                "inspect",
                "-f",
                "{{index .Config.Labels \"io.stockade.owner\"}}",
                &mine,
            ],
        )?;
        ensure(label.trim() == "0", || {
            format!("owner label of root's container: {label:?}")
        })?;
        for args in [
            vec![
                "run",
                "--rm",
                "--network",
                &format!("container:{mine}"),
                TEST_IMAGE,
                "true",
            ],
            vec![
                "run",
                "--rm",
                "--volumes-from",
                &format!("{mine}:ro"),
                TEST_IMAGE,
                "true",
            ],
        ] {
            must(&cli, &args)?;
        }
        let before = must(&direct, &["ps", "-aq"])?;
        let refused = |out: stockade_test_support::Finished, what: &str| -> Outcome {
            ensure(
                !out.success() && out.stderr.contains("is not yours"),
                || format!("{what}: {}", out.describe()),
            )
        };
        refused(
            cli.run(
                &[
                    "run",
                    "--rm",
                    "--network",
                    &format!("container:{foreign}"),
                    TEST_IMAGE,
                    "true",
                ],
                None,
                SHORT,
            )?,
            "root joining a container made outside the gateway",
        )?;
        let socket = rig.gateway.socket();
        refused(
            user.docker(
                socket,
                &[
                    "run",
                    "--rm",
                    "--network",
                    &format!("container:{mine}"),
                    TEST_IMAGE,
                    "true",
                ],
            )?,
            "another user joining root's network namespace",
        )?;
        refused(
            user.docker(
                socket,
                &["run", "--rm", "--volumes-from", &mine, TEST_IMAGE, "true"],
            )?,
            "another user taking root's volumes",
        )?;
        refused(
            user.docker(
                socket,
                &[
                    "run",
                    "--rm",
                    "--link",
                    &format!("{mine}:db"),
                    TEST_IMAGE,
                    "true",
                ],
            )?,
            "another user linking to root's container",
        )?;
        let forged = cli.run(
            &[
                "run",
                "--rm",
                "--label",
                "io.stockade.owner=1234",
                TEST_IMAGE,
                "true",
            ],
            None,
            SHORT,
        )?;
        ensure(
            !forged.success() && forged.stderr.contains("set by stockade"),
            || format!("a forged owner label: {}", forged.describe()),
        )?;
        let after = must(&direct, &["ps", "-aq"])?;
        ensure(before == after, || "a refused join left a container".into())?;
        // Volumes and networks carry the label too.
        let volume = unique("ownvol");
        let network = unique("ownnet");
        must(&cli, &["volume", "create", &volume])?;
        must(&cli, &["network", "create", &network])?;
        let vlabel = must(
            &direct,
            &[
                "volume",
                "inspect",
                "-f",
                "{{index .Labels \"io.stockade.owner\"}}",
                &volume,
            ],
        );
        let nlabel = must(
            &direct,
            &[
                "network",
                "inspect",
                "-f",
                "{{index .Labels \"io.stockade.owner\"}}",
                &network,
            ],
        );
        let _ = direct.run(&["volume", "rm", &volume], None, SHORT);
        let _ = direct.run(&["network", "rm", &network], None, SHORT);
        ensure(vlabel?.trim() == "0" && nlabel?.trim() == "0", || {
            "volume or network without the owner label".into()
        })
    })();
    remove(rig, &mine);
    remove(rig, &foreign);
    result
}

/// An image with the docker CLI (Debian's, with the two libraries it needs) and busybox, pushed
/// to the rig registry so that it has a registry digest; returns its name there.
fn docker_cli_image(rig: &Rig) -> Result<String, Failed> {
    let name = format!("{}/tools/cli:1", rig.registry.host());
    let dir = scratch_dir("cli-img")?;
    let rootfs = dir.join("rootfs");
    for d in [
        "bin",
        "usr/bin",
        "lib/x86_64-linux-gnu",
        "lib64",
        "tmp",
        "etc",
        "var/run",
    ] {
        std::fs::create_dir_all(rootfs.join(d))?;
    }
    for (from, to) in [
        ("/bin/busybox", "bin/busybox"),
        ("/usr/bin/docker", "usr/bin/docker"),
        (
            "/lib/x86_64-linux-gnu/libc.so.6",
            "lib/x86_64-linux-gnu/libc.so.6",
        ),
        ("/lib64/ld-linux-x86-64.so.2", "lib64/ld-linux-x86-64.so.2"),
    ] {
        std::fs::copy(from, rootfs.join(to))?;
    }
    for applet in ["sh", "true", "echo", "cat", "sleep"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet))?;
    }
    let tar = dir.join("rootfs.tar");
    let done = run_with_timeout(
        std::process::Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg("."),
        None,
        LONG,
    )?;
    ensure(done.success(), || done.describe())?;
    let direct = rig.engine_cli();
    must(
        &direct,
        &[
            "import",
            "-c",
            "ENV PATH=/usr/bin:/bin",
            &tar.to_string_lossy(),
            &name,
        ],
    )?;
    must(&direct, &["push", &name])?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(name)
}

/// Docker socket mounts: allowed only for images in the list (by registry digest), and such a
/// container gets a socket of its own: requests through it are judged as its owner's, held to
/// commandList, and only accepted from inside that container.
fn socket_mounts_get_their_own_held_socket(rig: &Rig) -> Outcome {
    let image = docker_cli_image(rig)?;
    let repo = image.trim_end_matches(":1");
    let dir = scratch_dir("sockmount")?;
    let gateway = gateway_with_policy(
        rig,
        &dir,
        &stockade_test_support::rig_policy(&[
            (
                "enhancedContainerIsolation",
                serde_json::json!({"locked": true, "value": true, "dockerSocketMount": {
                    "imageList": {"images": [format!("{repo}:*")], "allowDerivedImages": true},
                    "commandList": {"type": "deny", "commands": ["push", "volume*"]}}}),
            ),
            (
                "registryAccess",
                serde_json::json!({"locked": true, "allowedRegistries": ["docker.io", rig.registry.host()]}),
            ),
        ]),
    )?;
    let direct = rig.engine_cli();
    let cli = gateway.cli();
    let socket = gateway.socket().to_string_lossy().to_string();
    let mount = format!("{socket}:/var/run/docker.sock");
    let result = (|| -> Outcome {
        // Allowed image: the docker CLI inside talks to the gateway, as its owner.
        let out = must(
            &cli,
            &[
                "run",
                "--rm",
                "-v",
                &mount,
                &image,
                "docker",
                "version",
                "--format",
                "{{.Server.Version}}",
            ],
        )?;
        ensure(!out.trim().is_empty(), || {
            format!("docker version inside: {out:?}")
        })?;
        // Nested requests are judged like any other, and held to the command list.
        let name = unique("sock");
        must(
            &cli,
            &[
                "run", "-d", "--name", &name, "-v", &mount, &image, "sleep", "300",
            ],
        )?;
        let source = must(
            &direct,
            &[
                "inspect",
                "-f",
                "{{range .Mounts}}{{.Source}}{{end}}",
                &name,
            ],
        )?;
        ensure(
            source.trim().starts_with(&format!("{socket}.containers/"))
                && source.trim() != socket
                && !source.contains("engine"),
            || format!("the container's socket mount points at {source:?}"),
        )?;
        let before = must(&direct, &["ps", "-aq"])?;
        let privileged = cli.run(
            &[
                "exec",
                &name,
                "docker",
                "run",
                "--rm",
                "--privileged",
                TEST_IMAGE,
                "true",
            ],
            None,
            LONG,
        )?;
        ensure(
            privileged
                .stderr
                .contains("privileged containers are not allowed"),
            || format!("privileged run from inside: {}", privileged.describe()),
        )?;
        let volumes = cli.run(&["exec", &name, "docker", "volume", "ls"], None, LONG)?;
        ensure(
            !volumes.success()
                && volumes.stderr.contains("is blocked")
                && volumes.stderr.contains("commandList"),
            || format!("volume ls from inside: {}", volumes.describe()),
        )?;
        let after = must(&direct, &["ps", "-aq"])?;
        ensure(before == after, || {
            "a refused nested run left a container".into()
        })?;
        // The same socket is useless outside the container, even to root.
        let outside = Docker::new(Path::new(source.trim())).run(&["version"], None, SHORT)?;
        ensure(!outside.success(), || {
            format!(
                "the container's socket served a host process: {}",
                outside.describe()
            )
        })?;
        // Removing the container removes its socket.
        must(&direct, &["rm", "-f", &name])?;
        let gone = wait_for(|| Ok(!Path::new(source.trim()).exists()))?;
        ensure(gone, || "the container's socket outlived it".into())?;
        // Not in the list, or in the list by name only (re-tagged locally): refused, nothing made.
        let baseline = must(&direct, &["ps", "-aq"])?;
        let retagged = format!("{repo}:local");
        must(&direct, &["tag", TEST_IMAGE, &retagged])?;
        for img in [TEST_IMAGE, retagged.as_str()] {
            let out = cli.run(&["run", "--rm", "-v", &mount, img, "true"], None, SHORT)?;
            ensure(
                !out.success()
                    && out
                        .stderr
                        .contains("docker socket mount denied for container with image"),
                || format!("socket mount with {img}: {}", out.describe()),
            )?;
        }
        let _ = direct.run(&["rmi", &retagged], None, SHORT);
        // A local image built FROM the allowed one (allowDerivedImages) may mount the socket.
        let ctx = write_context(&format!("FROM {image}\nCOPY data.txt /data.txt\n"))?;
        let derived = unique("derived");
        let built = cli.clone().with_env("DOCKER_BUILDKIT", "0").run(
            &["build", "-t", &derived, &ctx.to_string_lossy()],
            None,
            LONG,
        )?;
        let _ = std::fs::remove_dir_all(&ctx);
        ensure(built.success(), || {
            format!("build of a derived image: {}", built.describe())
        })?;
        let ran = cli.run(
            &[
                "run",
                "--rm",
                "-v",
                &mount,
                &derived,
                "docker",
                "version",
                "--format",
                "{{.Server.Version}}",
            ],
            None,
            LONG,
        )?;
        let _ = direct.run(&["rmi", "-f", &derived], None, SHORT);
        ensure(ran.success(), || {
            format!("socket mount of a derived image: {}", ran.describe())
        })?;
        let last = must(&direct, &["ps", "-aq"])?;
        ensure(last == baseline, || {
            format!("a refused socket mount left a container: {baseline:?} then {last:?}")
        })
    })();
    drop(gateway);
    let _ = direct.run(&["rmi", "-f", &image], None, SHORT);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// A network namespace with a veth to the host, removed when dropped.
struct Netns {
    name: String,
    host_if: String,
    /// The address inside the namespace.
    inner: String,
}

impl Netns {
    fn create(tag: &str) -> Result<Self, Failed> {
        let n = std::process::id() % 10_000;
        let name = format!("stk{tag}{n}");
        let host_if = format!("stkh{tag}{n}");
        let peer = format!("stkp{tag}{n}");
        let subnet = stockade_test_support::free_subnet()?;
        let base = subnet.trim_end_matches(".1/24");
        let inner = format!("{base}.2");
        let ns = Self {
            name: name.clone(),
            host_if: host_if.clone(),
            inner: inner.clone(),
        };
        for args in [
            vec!["netns", "add", &name],
            vec![
                "link", "add", &host_if, "type", "veth", "peer", "name", &peer,
            ],
            vec!["link", "set", &peer, "netns", &name],
            vec!["addr", "add", &subnet, "dev", &host_if],
            vec!["link", "set", &host_if, "up"],
            vec![
                "-n",
                &name,
                "addr",
                "add",
                &format!("{inner}/24"),
                "dev",
                &peer,
            ],
            vec!["-n", &name, "link", "set", &peer, "up"],
            vec!["-n", &name, "link", "set", "lo", "up"],
        ] {
            let done = run_with_timeout(std::process::Command::new("ip").args(&args), None, SHORT)?;
            ensure(done.success(), || {
                format!("ip {args:?}: {}", done.describe())
            })?;
        }
        Ok(ns)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for args in [
            vec!["link", "del", &self.host_if],
            vec!["netns", "del", &self.name],
        ] {
            let _ = std::process::Command::new("ip")
                .args(&args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// Defence in depth: the managed engine's own pulls go through Stockade's egress filter, so a
/// pull that never passed the gateway (here: straight on the engine socket) reaches an allowed
/// registry and not a forbidden one. Judged by the registries' own request logs. The registries
/// live in a network namespace (Go never proxies loopback, so loopback registries would not
/// show the filter).
fn engine_pulls_reach_only_allowed_registries(_rig: &Rig) -> Outcome {
    let ns = Netns::create("r")?;
    let forbidden = stockade_test_support::Registry::start_in_netns(&ns.name, &ns.inner, 5000)?;
    let allowed = stockade_test_support::Registry::start_in_netns(&ns.name, &ns.inner, 5001)?;
    let bad = format!("{}:5000", ns.inner);
    let good = format!("{}:5001", ns.inner);
    let options = serde_json::json!({"insecure-registries": [bad, good]}).to_string();
    let mut up = RunningUp::start_with(
        "upreg",
        &[
            (
                "registryAccess",
                serde_json::json!({"locked": true, "allowedRegistries": ["docker.io", good]}),
            ),
            (
                "linuxVM",
                serde_json::json!({"dockerDaemonOptions": {"locked": true, "value": options}}),
            ),
            (
                "proxy",
                serde_json::json!({"locked": true, "mode": "manual", "http": "", "https": "", "exclude": []}),
            ),
        ],
    )?;
    let result = (|| -> Outcome {
        let engine = Docker::new(&up.state.join("engine.sock"));
        let before_bad = forbidden.api_requests();
        let refused = engine.run(&["pull", &format!("{bad}/x:1")], None, LONG)?;
        ensure(!refused.success(), || {
            format!("pull from the forbidden registry: {}", refused.describe())
        })?;
        ensure(forbidden.api_requests() == before_bad, || {
            "the forbidden registry received a request from the engine".to_owned()
        })?;
        let before_good = allowed.api_requests();
        let reached = engine.run(&["pull", &format!("{good}/x:1")], None, LONG)?;
        // Nothing is stored there: the pull fails, but only after the registry was asked.
        ensure(allowed.api_requests() > before_good, || {
            format!(
                "the allowed registry was not reached: {}",
                reached.describe()
            )
        })?;
        // up writes its log from a writer thread, a little after the event.
        let logged = wait_for(|| {
            let log = std::fs::read_to_string(&up.log)?;
            Ok(log.contains("engine egress refused") && log.contains(&bad))
        })?;
        ensure(logged, || {
            "the filter's refusal is not in the log".to_owned()
        })
    })();
    let code = up.process.stop();
    drop(forbidden);
    drop(allowed);
    drop(ns);
    result?;
    ensure(code == Some(0), || format!("up exited with {code:?}"))
}

/// busybox httpd serving `dir` on `addr` inside `netns`, logging each request it serves.
fn netns_httpd(netns: &str, addr: &str, dir: &Path) -> Result<(Spawned, PathBuf), Failed> {
    let log = dir.join(format!("httpd-{}.log", addr.replace([':', '.'], "-")));
    let mut command = std::process::Command::new("ip");
    command
        .args([
            "netns", "exec", netns, "busybox", "httpd", "-f", "-vv", "-p", addr, "-h",
        ])
        .arg(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&log)?)
        .stderr(std::fs::File::create(&log)?.try_clone()?);
    let process = Spawned::start(&mut command, nix::sys::signal::Signal::SIGTERM, SHORT)?;
    // Ready when it accepts a connection (from the host, over the veth).
    let ready = wait_for(|| Ok(std::net::TcpStream::connect(addr).is_ok()))?;
    ensure(ready, || format!("httpd on {addr} did not come up"))?;
    // The probe above is not a request: start the count after it.
    std::fs::write(&log, "")?;
    Ok((process, log))
}

/// A test "internet" for the air-gap trials: a namespace with busybox httpd servers on its
/// address (port 80, allowed by the PAC, and port 8080) and on a second address (port 80,
/// refused by the PAC), and `up` with containersProxy set to that PAC.
struct AirGapLab {
    ns: Netns,
    /// The second address, whose server the PAC refuses.
    forbidden_ip: String,
    logs: ServerLogs,
    /// What the servers serve (removed by the trial).
    www: PathBuf,
    /// Kept running as long as the lab is.
    servers: [Spawned; 3],
    up: RunningUp,
}

impl AirGapLab {
    fn start(tag: &str, up_tag: &str) -> Result<Self, Failed> {
        let ns = Netns::create(tag)?;
        let forbidden_ip = format!("{}.3", ns.inner.rsplit_once('.').map_or("", |(net, _)| net));
        let peer = format!("stkp{tag}{}", std::process::id() % 10_000);
        let done = run_with_timeout(
            std::process::Command::new("ip").args([
                "-n",
                &ns.name,
                "addr",
                "add",
                &format!("{forbidden_ip}/24"),
                "dev",
                &peer,
            ]),
            None,
            SHORT,
        )?;
        ensure(done.success(), || done.describe())?;
        let www = scratch_dir(&format!("www{tag}"))?;
        std::fs::write(www.join("hello.txt"), "hello from outside\n")?;
        let (allowed, allowed_log) = netns_httpd(&ns.name, &format!("{}:80", ns.inner), &www)?;
        let (forbidden, forbidden_log) =
            netns_httpd(&ns.name, &format!("{forbidden_ip}:80"), &www)?;
        let (other, other_log) = netns_httpd(&ns.name, &format!("{}:8080", ns.inner), &www)?;
        let pac = format!(
            "function FindProxyForURL(url, host) {{ if (host == \"{}\") return \"DIRECT\"; return \"PROXY reject.docker.internal:1\"; }}",
            ns.inner
        );
        let up = RunningUp::start_with(
            up_tag,
            &[(
                "containersProxy",
                serde_json::json!({"locked": true, "mode": "manual", "http": "", "https": "", "exclude": [],
                    "pac": "", "embeddedPac": pac, "transparentPorts": "80,443"}),
            )],
        )?;
        Ok(Self {
            ns,
            forbidden_ip,
            logs: ServerLogs {
                allowed: allowed_log,
                forbidden: forbidden_log,
                other: other_log,
            },
            www,
            servers: [allowed, forbidden, other],
            up,
        })
    }
}

/// The request logs of an [`AirGapLab`]'s three servers.
struct ServerLogs {
    allowed: PathBuf,
    forbidden: PathBuf,
    other: PathBuf,
}

impl ServerLogs {
    /// The allowed server got `/hello.txt`; the PAC-refused one and the one on port 8080 did
    /// not. `request` names the request in the messages.
    fn only_the_allowed_one_saw(&self, request: &str) -> Outcome {
        ensure(
            std::fs::read_to_string(&self.allowed)?.contains("hello.txt"),
            || format!("the allowed server did not see the {request}"),
        )?;
        for (what, log) in [("PAC-refused", &self.forbidden), ("port 8080", &self.other)] {
            let seen = std::fs::read_to_string(log)?;
            ensure(!seen.contains("hello.txt"), || {
                format!("the {what} server received the {request}: {seen}")
            })?;
        }
        Ok(())
    }
}

/// Air-gapped containers under `up`: with containersProxy set to a PAC file, a container's
/// HTTP goes through Stockade's proxy and reaches only what the PAC allows; other ports go
/// nowhere. Judged by the servers' own request logs.
fn containers_reach_only_what_the_pac_allows(_rig: &Rig) -> Outcome {
    let AirGapLab {
        ns,
        forbidden_ip,
        logs,
        www,
        servers: _servers,
        mut up,
    } = AirGapLab::start("i", "upgap")?;
    let result = (|| -> Outcome {
        stockade_test_support::build_test_image(&up.state.join("engine.sock"))?;
        let cli = Docker::new(&up.state.join("docker.sock"));
        // A plain HTTP/1.0 request with busybox nc (its wget looks names up through NSS, which a
        // static binary cannot load in a bare image).
        let fetch = |ip: &str, port: u16| {
            let script = format!(
                "printf 'GET /hello.txt HTTP/1.0\\r\\nHost: {ip}\\r\\n\\r\\n' | nc -w 5 {ip} {port}"
            );
            cli.run(
                &["run", "--rm", TEST_IMAGE, "sh", "-c", &script],
                None,
                LONG,
            )
        };
        let allowed = fetch(&ns.inner, 80)?;
        ensure(allowed.stdout.contains("hello from outside"), || {
            format!(
                "allowed fetch: {}; up log: {}",
                allowed.describe(),
                stockade_test_support::log_tail(&up.log)
            )
        })?;
        let refused = fetch(&forbidden_ip, 80)?;
        ensure(
            !refused.stdout.contains("hello from outside") && refused.stdout.contains("403"),
            || format!("PAC-refused fetch: {}", refused.describe()),
        )?;
        let other = fetch(&ns.inner, 8080)?;
        ensure(!other.stdout.contains("hello from outside"), || {
            format!("fetch on port 8080: {}", other.describe())
        })?;
        logs.only_the_allowed_one_saw("request")?;
        // The refusal is logged with the container the connection came from (up writes its
        // log from a writer thread, a little after the event).
        let named = wait_for(|| {
            let log = std::fs::read_to_string(&up.log)?;
            Ok(log.lines().any(|l| {
                l.contains("refused")
                    && l.contains("container=")
                    && l.contains(&forbidden_ip)
                    && !l.contains("container=\"-\"")
                    && !l.contains("container=-")
            }))
        })?;
        ensure(named, || {
            format!(
                "the proxy's refusal, with its container, is not in up's log: {}",
                stockade_test_support::log_tail(&up.log)
            )
        })
    })();
    let table = format!(
        "stockade_{}",
        up.bridge().unwrap_or_default().replace('-', "_")
    );
    // doctor shows the rules in force.
    let doctor = run_with_timeout(
        std::process::Command::new(STOCKADE).arg("doctor"),
        None,
        SHORT,
    )?;
    let shown = doctor
        .stdout
        .contains(&format!("air-gap rules in force (table inet {table})"))
        && doctor.stdout.contains("redirect");
    let code = up.process.stop();
    // The rules went with up.
    let tables = run_with_timeout(
        std::process::Command::new("nft").args(["list", "tables"]),
        None,
        SHORT,
    )?;
    let _ = std::fs::remove_dir_all(&www);
    drop(ns);
    result?;
    ensure(shown, || {
        format!("doctor did not show the rules: {}", doctor.stdout)
    })?;
    ensure(!tables.stdout.contains(&table), || {
        format!("{table} outlived up: {}", tables.stdout)
    })?;
    ensure(code == Some(0), || format!("up exited with {code:?}"))
}

/// Air-gapped builds under `up`: the `RUN` steps of a classic-builder build (DOCKER_BUILDKIT=0)
/// run in containers on the engine's bridge, so they are held to the same containersProxy PAC
/// as `docker run`: an allowed server is reached, a PAC-refused one and another port are not.
/// Judged by the servers' own request logs.
fn classic_build_run_steps_reach_only_what_the_pac_allows(_rig: &Rig) -> Outcome {
    let AirGapLab {
        ns,
        forbidden_ip,
        logs,
        www,
        servers: _servers,
        mut up,
    } = AirGapLab::start("b", "upbuild")?;
    let result = (|| -> Outcome {
        stockade_test_support::build_test_image(&up.state.join("engine.sock"))?;
        let cli = Docker::new(&up.state.join("docker.sock")).with_env("DOCKER_BUILDKIT", "0");
        // One RUN step per fetch (busybox nc, HTTP/1.0), each printing what came back between
        // markers; `|| true` so a refused fetch does not fail the build.
        let fetch = |what: &str, ip: &str, port: u16| {
            format!(
                "RUN echo {what}-begin; printf 'GET /hello.txt HTTP/1.0\\r\\nHost: {ip}\\r\\n\\r\\n' | nc -w 5 {ip} {port} || true; echo {what}-end\n"
            )
        };
        let ctx = write_context(&format!(
            "FROM {TEST_IMAGE}\n{}{}{}",
            fetch("allowed", &ns.inner, 80),
            fetch("refused", &forbidden_ip, 80),
            fetch("other", &ns.inner, 8080),
        ))?;
        let image = format!("{}:t", unique("airgapbuild"));
        let built = cli.run(
            &["build", "--no-cache", "-t", &image, &ctx.to_string_lossy()],
            None,
            LONG,
        );
        let _ = std::fs::remove_dir_all(&ctx);
        let _ = Docker::new(&up.state.join("engine.sock")).run(&["rmi", "-f", &image], None, SHORT);
        let built = built?;
        ensure(built.success(), || format!("build: {}", built.describe()))?;
        let between = |what: &str| {
            let out = &built.stdout;
            let start = out.find(&format!("{what}-begin\n")).unwrap_or(out.len());
            let end = out[start..]
                .find(&format!("{what}-end"))
                .map_or(out.len(), |e| start + e);
            out[start..end].to_owned()
        };
        ensure(between("allowed").contains("hello from outside"), || {
            format!(
                "allowed fetch in a RUN step: {}; up log: {}",
                built.describe(),
                stockade_test_support::log_tail(&up.log)
            )
        })?;
        let refused = between("refused");
        ensure(
            !refused.contains("hello from outside") && refused.contains("403"),
            || format!("PAC-refused fetch in a RUN step: {}", built.describe()),
        )?;
        ensure(!between("other").contains("hello from outside"), || {
            format!("fetch on port 8080 in a RUN step: {}", built.describe())
        })?;
        logs.only_the_allowed_one_saw("RUN step's request")
    })();
    let code = up.process.stop();
    let _ = std::fs::remove_dir_all(&www);
    drop(ns);
    result?;
    ensure(code == Some(0), || format!("up exited with {code:?}"))
}

/// ECI off (the admin left it unlocked and the policy turns it off): the content rules do not
/// apply, while the route table still does.
fn eci_off_lifts_content_rules_only(rig: &Rig) -> Outcome {
    let dir = scratch_dir("eci-off")?;
    let gateway = gateway_with_policy(
        rig,
        &dir,
        &stockade_test_support::rig_policy(&[(
            "enhancedContainerIsolation",
            serde_json::json!({"locked": true, "value": false}),
        )]),
    )?;
    let result = (|| -> Outcome {
        let cli = gateway.cli();
        // A capability the rules would refuse: the engine runs it (as root in a user namespace).
        let out = cli.run(
            &[
                "run",
                "--rm",
                "--cap-add",
                "SYS_PTRACE",
                TEST_IMAGE,
                "echo",
                "ran",
            ],
            None,
            LONG,
        )?;
        ensure(out.success() && out.stdout.contains("ran"), || {
            format!(
                "with ECI off, a content rule still refused: {}",
                out.describe()
            )
        })?;
        // The route table still refuses what is closed.
        let answer = http::request(gateway.socket(), "GET", "/v1.41/plugins", &[], b"")?;
        ensure(answer.status == 403, || {
            format!("with ECI off, /plugins answered {}", answer.status)
        })?;
        // And registry access still holds (it is not part of ECI).
        let pull = cli.run(&["pull", "quay.io/x/y:1"], None, SHORT)?;
        ensure(
            pull.stderr
                .contains("registry access to quay.io is not allowed"),
            || {
                format!(
                    "with ECI off, the registry rule did not hold: {}",
                    pull.describe()
                )
            },
        )
    })();
    drop(gateway);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// A gateway in front of the rig's engine with `policy` (JSON text) as its admin policy, its
/// socket and policy file in `dir`.
fn gateway_with_policy(rig: &Rig, dir: &Path, policy: &str) -> Result<Gateway, Failed> {
    let file = dir.join("policy.json");
    std::fs::write(&file, policy)?;
    Ok(Gateway::start(
        &rig.stockade,
        &rig.engine.socket(),
        &dir.join("docker.sock"),
        &["--policy", &file.to_string_lossy()],
    )?)
}

/// `--audit-fail-open`: with the audit log's disk full, requests are still served, each with a
/// loud error in the gateway's log; once there is room, records are written again.
fn audit_fail_open_serves_and_says_so(rig: &Rig) -> Outcome {
    let dir = scratch_dir("auditopen")?;
    let mount = dir.join("small");
    std::fs::create_dir(&mount)?;
    stockade_test_support::must_run(
        std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k"])
            .arg("tmpfs")
            .arg(&mount),
        SHORT,
    )?;
    let result = (|| -> Outcome {
        let log = mount.join("audit.log");
        let gateway = Gateway::start(
            Path::new(STOCKADE),
            &rig.engine.socket(),
            &dir.join("gw.sock"),
            &["--audit-log", &log.to_string_lossy(), "--audit-fail-open"],
        )?;
        let filler = mount.join("filler");
        let mut file = std::fs::File::create(&filler)?;
        let chunk = vec![0u8; 4096];
        while std::io::Write::write_all(&mut file, &chunk).is_ok() {}
        drop(file);
        let mut unrecorded = false;
        for _ in 0..200 {
            let answer = http::request(gateway.socket(), "GET", "/_ping", &[], b"")?;
            ensure(answer.status == 200, || {
                format!(
                    "fail-open refused a request: {} {}",
                    answer.status,
                    answer.message()
                )
            })?;
            if gateway.log().contains("serving WITHOUT a record") {
                unrecorded = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        ensure(unrecorded, || {
            "no loud error while the log could not be written".into()
        })?;
        std::fs::remove_file(&filler)?;
        let before = audit_records(&log)?.len();
        let recovered = wait_for(|| {
            http::request(gateway.socket(), "GET", "/v1.41/version", &[], b"")?;
            Ok(audit_records(&log)?.len() > before)
        })?;
        ensure(recovered, || "the log did not recover".into())
    })();
    let _ = std::process::Command::new("umount").arg(&mount).status();
    let _ = std::fs::remove_dir_all(&dir);
    result
}
