//! The measurements. Each takes one endpoint, checks what came back, and returns a figure.

use crate::client::{Demux, Endpoint};
use crate::pull::PullSpec;
use crate::report::{Report, Row, Target};
use crate::{BenchError, Sizes};
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MIB: f64 = 1024.0 * 1024.0;
const CHUNK: usize = 256 * 1024;

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn unexpected(endpoint: &Endpoint, request: &str, detail: impl std::fmt::Display) -> BenchError {
    BenchError::Unexpected {
        endpoint: endpoint.name.clone(),
        request: request.to_owned(),
        detail: detail.to_string(),
    }
}

async fn ping_keepalive(endpoint: &Endpoint, count: usize) -> Result<Vec<f64>, BenchError> {
    let mut conn = endpoint.connect().await?;
    let mut samples = Vec::with_capacity(count);
    for i in 0..count + 20 {
        let started = Instant::now();
        let (status, body) = conn.call("GET", "/_ping", None).await?;
        let elapsed = started.elapsed();
        if status != 200 || body.as_ref() != b"OK" {
            return Err(unexpected(
                endpoint,
                "GET /_ping",
                format!("{status} {body:?}"),
            ));
        }
        if i >= 20 {
            samples.push(micros(elapsed));
        }
    }
    Ok(samples)
}

async fn ping_new_connection(endpoint: &Endpoint, count: usize) -> Result<Vec<f64>, BenchError> {
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        let (status, body) = endpoint.once("GET", "/_ping", None).await?;
        let elapsed = started.elapsed();
        if status != 200 || body.as_ref() != b"OK" {
            return Err(unexpected(
                endpoint,
                "GET /_ping",
                format!("{status} {body:?}"),
            ));
        }
        samples.push(micros(elapsed));
    }
    Ok(samples)
}

async fn requests_per_second(
    endpoint: &Endpoint,
    clients: usize,
    seconds: f64,
) -> Result<f64, BenchError> {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::with_capacity(clients);
    let started = Instant::now();
    for _ in 0..clients {
        let mut conn = endpoint.connect().await?;
        let endpoint = endpoint.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0u64;
            while Instant::now() < deadline {
                let (status, _) = conn.call("GET", "/_ping", None).await?;
                if status != 200 {
                    return Err(unexpected(&endpoint, "GET /_ping", status));
                }
                done += 1;
            }
            Ok::<u64, BenchError>(done)
        }));
    }
    let mut total = 0u64;
    for task in tasks {
        total += task
            .await
            .map_err(|e| unexpected(endpoint, "load client", e))??;
    }
    #[allow(clippy::cast_precision_loss)]
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

async fn create(endpoint: &Endpoint, body: &serde_json::Value) -> Result<String, BenchError> {
    let created = endpoint
        .expect("POST", "/containers/create", Some(body), 201)
        .await?;
    created["Id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| unexpected(endpoint, "POST /containers/create", "no Id"))
}

async fn lifecycles(endpoint: &Endpoint, image: &str, count: usize) -> Result<f64, BenchError> {
    let started = Instant::now();
    for _ in 0..count {
        let id = create(endpoint, &json!({"Image": image, "Cmd": ["true"]})).await?;
        endpoint
            .expect("POST", &format!("/containers/{id}/start"), None, 204)
            .await?;
        let waited = endpoint
            .expect("POST", &format!("/containers/{id}/wait"), None, 200)
            .await?;
        if waited["StatusCode"] != 0 {
            return Err(unexpected(endpoint, "POST wait", waited));
        }
        endpoint
            .expect("DELETE", &format!("/containers/{id}"), None, 204)
            .await?;
    }
    #[allow(clippy::cast_precision_loss)]
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

async fn logs(endpoint: &Endpoint, id: &str, expected: u64) -> Result<f64, BenchError> {
    let mut conn = endpoint.connect().await?;
    let started = Instant::now();
    let (status, mut body) = conn
        .call_streaming("GET", &format!("/containers/{id}/logs?stdout=1"), None)
        .await?;
    if status != 200 {
        return Err(unexpected(endpoint, "GET logs", status));
    }
    let mut demux = Demux::default();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| unexpected(endpoint, "GET logs", e))?;
        if let Some(data) = frame.data_ref() {
            demux.feed(data);
        }
    }
    let elapsed = started.elapsed();
    if demux.stdout != expected {
        return Err(BenchError::WrongBytes {
            endpoint: endpoint.name.clone(),
            metric: "logs",
            got: demux.stdout,
            expected,
        });
    }
    #[allow(clippy::cast_precision_loss)]
    Ok(expected as f64 / MIB / elapsed.as_secs_f64())
}

/// Writes `bytes` into a hijacked stream, half-closes, and counts stdout coming back.
async fn echo_through(
    endpoint: &Endpoint,
    stream: tokio::net::UnixStream,
    leftover: Vec<u8>,
    bytes: u64,
    metric: &'static str,
    before_write: impl std::future::Future<Output = Result<(), BenchError>>,
) -> Result<f64, BenchError> {
    let (mut reader, mut writer) = stream.into_split();
    let started = Instant::now();
    before_write.await?;
    let write = tokio::spawn(async move {
        let chunk = vec![b'e'; CHUNK];
        let mut left = bytes;
        while left > 0 {
            let n = usize::try_from(left).unwrap_or(CHUNK).min(CHUNK);
            writer.write_all(&chunk[..n]).await?;
            left -= n as u64;
        }
        writer.shutdown().await?;
        Ok::<_, std::io::Error>(writer)
    });
    let mut demux = Demux::default();
    demux.feed(&leftover);
    let mut buffer = vec![0u8; CHUNK];
    loop {
        let n = reader
            .read(&mut buffer)
            .await
            .map_err(|e| unexpected(endpoint, metric, e))?;
        if n == 0 {
            break;
        }
        demux.feed(&buffer[..n]);
    }
    let elapsed = started.elapsed();
    let _writer = write
        .await
        .map_err(|e| unexpected(endpoint, metric, e))?
        .map_err(|e| unexpected(endpoint, metric, e))?;
    if demux.stdout != bytes {
        return Err(BenchError::WrongBytes {
            endpoint: endpoint.name.clone(),
            metric,
            got: demux.stdout,
            expected: bytes,
        });
    }
    #[allow(clippy::cast_precision_loss)]
    Ok(bytes as f64 / MIB / elapsed.as_secs_f64())
}

async fn exec_echo(endpoint: &Endpoint, container: &str, bytes: u64) -> Result<f64, BenchError> {
    let created = endpoint
        .expect(
            "POST",
            &format!("/containers/{container}/exec"),
            Some(&json!({"AttachStdin": true, "AttachStdout": true, "Cmd": ["cat"]})),
            201,
        )
        .await?;
    let id = created["Id"]
        .as_str()
        .ok_or_else(|| unexpected(endpoint, "exec create", "no Id"))?;
    let (stream, leftover) = endpoint
        .hijack(
            &format!("/exec/{id}/start"),
            Some(&json!({"Detach": false, "Tty": false})),
        )
        .await?;
    echo_through(endpoint, stream, leftover, bytes, "exec echo", async {
        Ok(())
    })
    .await
}

async fn attach_echo(endpoint: &Endpoint, image: &str, bytes: u64) -> Result<f64, BenchError> {
    let id = create(
        endpoint,
        &json!({"Image": image, "Cmd": ["cat"], "OpenStdin": true, "StdinOnce": true,
                "AttachStdin": true, "AttachStdout": true}),
    )
    .await?;
    let result = async {
        let (stream, leftover) = endpoint
            .hijack(
                &format!("/containers/{id}/attach?stream=1&stdin=1&stdout=1"),
                None,
            )
            .await?;
        let start = async {
            endpoint
                .expect("POST", &format!("/containers/{id}/start"), None, 204)
                .await
                .map(|_| ())
        };
        echo_through(endpoint, stream, leftover, bytes, "attach echo", start).await
    }
    .await;
    let _ = endpoint
        .once("DELETE", &format!("/containers/{id}?force=1"), None)
        .await;
    result
}

/// A tar archive with one file of `size` bytes named `bench.bin`.
fn tar_with_file(size: u64) -> Bytes {
    let mut header = [0u8; 512];
    header[..9].copy_from_slice(b"bench.bin");
    header[100..107].copy_from_slice(b"0000644");
    header[108..115].copy_from_slice(b"0000000");
    header[116..123].copy_from_slice(b"0000000");
    header[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    header[136..147].copy_from_slice(b"00000000000");
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].copy_from_slice(b"        ");
    let checksum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    header[148..155].copy_from_slice(format!("{checksum:06o}\0").as_bytes());
    let size = usize::try_from(size).unwrap_or(0);
    let padding = (512 - size % 512) % 512;
    let mut tar = Vec::with_capacity(512 + size + padding + 1024);
    tar.extend_from_slice(&header);
    tar.resize(512 + size, b'a');
    tar.resize(512 + size + padding + 1024, 0);
    Bytes::from(tar)
}

async fn archive_put(
    endpoint: &Endpoint,
    container: &str,
    tar: Bytes,
    size: u64,
) -> Result<f64, BenchError> {
    let mut conn = endpoint.connect().await?;
    let length = tar.len();
    let started = Instant::now();
    let (status, body) = conn
        .send_raw(
            "PUT",
            &format!("/containers/{container}/archive?path=/"),
            "application/x-tar",
            tar,
        )
        .await?;
    let _ = body.collect().await;
    let elapsed = started.elapsed();
    if status != 200 {
        return Err(unexpected(endpoint, "PUT archive", status));
    }
    let stat = conn
        .head_header(
            &format!("/containers/{container}/archive?path=/bench.bin"),
            "x-docker-container-path-stat",
        )
        .await?;
    let decoded = base64_decode(&stat).unwrap_or_default();
    let stat: serde_json::Value = serde_json::from_slice(&decoded).unwrap_or_default();
    if stat["size"].as_u64() != Some(size) {
        return Err(BenchError::WrongBytes {
            endpoint: endpoint.name.clone(),
            metric: "archive put",
            got: stat["size"].as_u64().unwrap_or(0),
            expected: size,
        });
    }
    #[allow(clippy::cast_precision_loss)]
    Ok(length as f64 / MIB / elapsed.as_secs_f64())
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).ok()?);
        }
    }
    Some(out)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

async fn rss_with_streams(
    endpoint: &Endpoint,
    pid: u32,
    streams: usize,
) -> Result<(f64, f64), BenchError> {
    let before = rss_kib(pid).unwrap_or(0);
    let mut open = Vec::with_capacity(streams);
    for _ in 0..streams {
        let mut conn = endpoint.connect().await?;
        let (status, body) = conn.call_streaming("GET", "/events", None).await?;
        if status != 200 {
            return Err(unexpected(endpoint, "GET /events", status));
        }
        open.push((conn, body));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let during = rss_kib(pid).unwrap_or(0);
    drop(open);
    #[allow(clippy::cast_precision_loss)]
    Ok((before as f64 / 1024.0, during as f64 / 1024.0))
}

/// Appends `count` allow records from 16 tasks to a fresh log in the system's temporary
/// directory the way the gateway does (queued for group commit), closes the log (which writes
/// and syncs everything queued), checks the chain, and returns records per second over the
/// whole time, close included.
async fn audit_records_per_second(count: usize) -> Result<f64, BenchError> {
    use stockade_audit::{AuditLog, Event, Options};
    let failed = |detail: String| BenchError::Endpoint {
        endpoint: "audit".into(),
        detail,
    };
    let path =
        std::env::temp_dir().join(format!("stockade-bench-audit-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let log = std::sync::Arc::new(
        AuditLog::open(&path, Options::default()).map_err(|e| failed(e.to_string()))?,
    );
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..16 {
        let log = std::sync::Arc::clone(&log);
        tasks.push(tokio::spawn(async move {
            for n in 0..count / 16 {
                let event = Event {
                    uid: Some(1000 + t),
                    route: Some(format!("GET /v1.41/containers/json?n={n}")),
                    ..Event::default()
                };
                log.append_grouped(event).await?;
            }
            Ok::<(), stockade_audit::AuditError>(())
        }));
    }
    for task in tasks {
        task.await
            .map_err(|e| failed(e.to_string()))?
            .map_err(|e| failed(e.to_string()))?;
    }
    drop(log);
    let elapsed = started.elapsed();
    let file = std::fs::File::open(&path).map_err(|e| failed(e.to_string()))?;
    let verified = stockade_audit::verify(
        std::io::BufReader::new(file),
        stockade_audit::Anchor::Genesis,
    )
    .map_err(|b| failed(format!("the chain written does not verify: {}", b.reason)))?;
    let _ = std::fs::remove_file(&path);
    let written = usize::try_from(verified.records).unwrap_or(0);
    if written != count / 16 * 16 {
        return Err(failed(format!(
            "{written} records verified, {} written",
            count / 16 * 16
        )));
    }
    #[allow(clippy::cast_precision_loss)]
    Ok(written as f64 / elapsed.as_secs_f64())
}

/// Runs `measure` for every endpoint, `rounds` times, rotating the order each round.
///
/// A failure of the direct engine or the gateway ends the run; a peer that fails (HAProxy
/// breaks exec upgrades that carry a body, for one) is reported as broken for that metric and
/// left out of its later rounds.
async fn interleaved<F, Fut, T>(
    endpoints: &[Endpoint],
    rounds: usize,
    notes: &mut Vec<String>,
    mut measure: F,
) -> Result<Vec<Vec<T>>, BenchError>
where
    F: FnMut(Endpoint) -> Fut,
    Fut: std::future::Future<Output = Result<T, BenchError>>,
{
    let mut results: Vec<Vec<T>> = endpoints.iter().map(|_| Vec::new()).collect();
    let mut broken = vec![false; endpoints.len()];
    for round in 0..rounds {
        for turn in 0..endpoints.len() {
            let index = (turn + round) % endpoints.len();
            if broken[index] {
                continue;
            }
            match measure(endpoints[index].clone()).await {
                Ok(value) => results[index].push(value),
                Err(e) if index >= 2 => {
                    broken[index] = true;
                    results[index].clear();
                    let first_line = e.to_string().lines().next().unwrap_or_default().to_owned();
                    notes.push(first_line);
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(results)
}

/// The pull scenario: one untimed warm-up pull per name (and the image ID, when not given),
/// then `rounds` interleaved rounds; returns the image ID and the rows.
async fn measure_pulls(
    endpoints: &[Endpoint],
    spec: &PullSpec,
    rounds: usize,
    notes: &mut Vec<String>,
) -> Result<(String, Vec<Row>), BenchError> {
    let direct = endpoints[0].clone();
    let mut id = spec.id.clone();
    // Nothing of the image may be on the engine before the first pull; by ID when known.
    if let Some(known) = &id {
        crate::pull::remove(&direct, known).await?;
    }
    for (endpoint, reference) in [
        (&endpoints[0], &spec.direct),
        (&endpoints[1], &spec.proxied),
    ] {
        let (_, pulled) =
            crate::pull::pull_once(endpoint, &direct, reference, id.as_deref()).await?;
        crate::pull::remove(&direct, &pulled).await?;
        id = Some(pulled);
    }
    let id = id.unwrap_or_default();
    let samples = interleaved(endpoints, rounds, notes, |e| {
        let direct = direct.clone();
        let reference = if e.name == direct.name {
            spec.direct.clone()
        } else {
            spec.proxied.clone()
        };
        let id = id.clone();
        async move {
            let pulled = crate::pull::pull_once(&e, &direct, &reference, Some(&id)).await;
            let removed = crate::pull::remove(&direct, &id).await;
            let (pulled, _) = pulled?;
            removed?;
            Ok(pulled)
        }
    })
    .await?;
    let mib = samples
        .first()
        .and_then(|s| s.first())
        .map_or(0, |p| p.bytes >> 20);
    #[allow(clippy::cast_precision_loss)]
    let rate: Vec<Vec<f64>> = samples
        .iter()
        .map(|s| s.iter().map(|p| p.bytes as f64 / MIB / p.seconds).collect())
        .collect();
    let millis: Vec<Vec<f64>> = samples
        .iter()
        .map(|s| s.iter().map(|p| p.seconds * 1e3).collect())
        .collect();
    Ok((
        id,
        vec![
            Row::throughput(
                &format!("pull {mib} MiB, via egress filter"),
                "MiB/s",
                rate,
                Target::RatioAtLeast(0.95),
            ),
            Row::throughput("pull, time each (median)", "ms", millis, Target::None),
        ],
    ))
}

/// Containers the bench made on the engine, removed at the end whatever happened.
struct Fixtures {
    direct: Endpoint,
    ids: Vec<String>,
}

impl Fixtures {
    async fn cleanup(self) {
        for id in self.ids {
            let _ = self
                .direct
                .once("DELETE", &format!("/containers/{id}?force=1"), None)
                .await;
        }
    }
}

/// Which metrics to measure.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Selection {
    pub ping: bool,
    pub connect: bool,
    pub rps: bool,
    pub lifecycle: bool,
    pub logs: bool,
    pub exec: bool,
    pub attach: bool,
    pub archive: bool,
    pub pull: bool,
    pub rss: bool,
    pub audit: bool,
}

pub(crate) async fn run_all(
    endpoints: &[Endpoint],
    image: &str,
    gateway_pid: Option<u32>,
    sizes: Sizes,
    selection: Selection,
    pull: Option<&PullSpec>,
) -> Result<Report, BenchError> {
    let direct = endpoints[0].clone();
    let mut fixtures = Fixtures {
        direct: direct.clone(),
        ids: Vec::new(),
    };
    let result = measure_all(
        endpoints,
        image,
        gateway_pid,
        sizes,
        selection,
        &mut fixtures,
    )
    .await;
    fixtures.cleanup().await;
    let mut report = result?;
    if let (true, Some(spec)) = (selection.pull, pull) {
        let mut notes = Vec::new();
        let measured = measure_pulls(endpoints, spec, sizes.pull_rounds, &mut notes).await;
        // Whatever happened, the bench leaves no pulled image behind.
        for name in [&spec.direct, &spec.proxied] {
            let _ = direct
                .once("DELETE", &format!("/images/{name}?force=1"), None)
                .await;
        }
        let (_, rows) = measured?;
        for row in rows {
            report.push(row);
        }
        for note in notes {
            report.note(note);
        }
    }
    Ok(report)
}

async fn fixture(
    direct: &Endpoint,
    fixtures: &mut Fixtures,
    body: &serde_json::Value,
    start: bool,
) -> Result<String, BenchError> {
    let id = create(direct, body).await?;
    fixtures.ids.push(id.clone());
    if start {
        direct
            .expect("POST", &format!("/containers/{id}/start"), None, 204)
            .await?;
    }
    Ok(id)
}

/// Adds the p50 row (held to `target`) and the p99 row of latency samples from every round.
fn push_latency(report: &mut Report, metric: &str, samples: Vec<Vec<Vec<f64>>>, target: Target) {
    let samples: Vec<Vec<f64>> = samples.into_iter().map(|rounds| rounds.concat()).collect();
    report.push(Row::latency(
        &format!("{metric} p50"),
        samples.clone(),
        0.5,
        target,
    ));
    report.push(Row::latency(
        &format!("{metric} p99"),
        samples,
        0.99,
        Target::None,
    ));
}

#[allow(clippy::too_many_lines)]
async fn measure_all(
    endpoints: &[Endpoint],
    image: &str,
    gateway_pid: Option<u32>,
    sizes: Sizes,
    selection: Selection,
    fixtures: &mut Fixtures,
) -> Result<Report, BenchError> {
    let direct = endpoints[0].clone();
    let names = endpoints.iter().map(|e| e.name.clone()).collect();
    let mut report = Report::new(names, sizes.rounds);
    let rounds = sizes.rounds;
    let mut notes = Vec::new();

    if selection.ping {
        let samples = interleaved(endpoints, rounds, &mut notes, |e| async move {
            ping_keepalive(&e, sizes.pings).await
        })
        .await?;
        push_latency(
            &mut report,
            "/_ping keep-alive",
            samples,
            Target::AddedAtMost(50.0),
        );
    }
    if selection.connect {
        let samples = interleaved(endpoints, rounds, &mut notes, |e| async move {
            ping_new_connection(&e, sizes.pings / 4).await
        })
        .await?;
        push_latency(
            &mut report,
            "/_ping new connection",
            samples,
            Target::RatioAtMost(1.3),
        );
    }
    if selection.rps {
        let rps = interleaved(endpoints, rounds, &mut notes, |e| async move {
            requests_per_second(&e, 16, sizes.load_seconds).await
        })
        .await?;
        report.push(Row::throughput(
            "req/s, 16 keep-alive clients",
            "req/s",
            rps,
            Target::RatioAtLeast(0.6),
        ));
    }
    if selection.lifecycle {
        let lifecycle = interleaved(endpoints, rounds, &mut notes, |e| {
            let image = image.to_owned();
            async move { lifecycles(&e, &image, sizes.lifecycles).await }
        })
        .await?;
        report.push(Row::throughput(
            "create+start+wait+rm",
            "/s",
            lifecycle,
            Target::RatioAtLeast(0.97),
        ));
    }
    if selection.logs {
        // Long lines: the engine's json-file reader costs per line, and the gateway is what is
        // measured here, not that.
        let script = format!(
            "line=$(head -c 4095 /dev/zero | tr '\\0' x); yes \"$line\" | head -c {}",
            sizes.logs_bytes
        );
        let id = fixture(
            &direct,
            fixtures,
            &json!({"Image": image, "Cmd": ["sh", "-c", script],
                    "HostConfig": {"LogConfig": {"Type": "json-file", "Config": {"max-size": "8g"}}}}),
            true,
        )
        .await?;
        let waited = direct
            .expect("POST", &format!("/containers/{id}/wait"), None, 200)
            .await?;
        if waited["StatusCode"] != 0 {
            return Err(unexpected(&direct, "logs fixture", waited));
        }
        let mib = interleaved(endpoints, rounds, &mut notes, |e| {
            let id = id.clone();
            async move { logs(&e, &id, sizes.logs_bytes).await }
        })
        .await?;
        report.push(Row::throughput(
            &format!("logs, {} MiB", sizes.logs_bytes >> 20),
            "MiB/s",
            mib,
            Target::RatioAtLeast(0.9),
        ));
    }
    if selection.exec {
        let id = fixture(
            &direct,
            fixtures,
            &json!({"Image": image, "Cmd": ["sleep", "3600"]}),
            true,
        )
        .await?;
        let mib = interleaved(endpoints, rounds, &mut notes, |e| {
            let id = id.clone();
            async move { exec_echo(&e, &id, sizes.stream_bytes).await }
        })
        .await?;
        report.push(Row::throughput(
            &format!("exec echo, {} MiB", sizes.stream_bytes >> 20),
            "MiB/s",
            mib,
            Target::RatioAtLeast(0.9),
        ));
    }
    if selection.attach {
        let mib = interleaved(endpoints, rounds, &mut notes, |e| {
            let image = image.to_owned();
            async move { attach_echo(&e, &image, sizes.stream_bytes).await }
        })
        .await?;
        report.push(Row::throughput(
            &format!("attach echo, {} MiB", sizes.stream_bytes >> 20),
            "MiB/s",
            mib,
            Target::RatioAtLeast(0.9),
        ));
    }
    if selection.archive {
        let id = fixture(
            &direct,
            fixtures,
            &json!({"Image": image, "Cmd": ["true"]}),
            false,
        )
        .await?;
        let tar = tar_with_file(sizes.stream_bytes);
        let mib = interleaved(endpoints, rounds, &mut notes, |e| {
            let id = id.clone();
            let tar = tar.clone();
            async move { archive_put(&e, &id, tar, sizes.stream_bytes).await }
        })
        .await?;
        report.push(Row::throughput(
            &format!("archive PUT, {} MiB", sizes.stream_bytes >> 20),
            "MiB/s",
            mib,
            Target::RatioAtLeast(0.9),
        ));
    }
    if let (true, Some(pid)) = (selection.rss, gateway_pid) {
        let (idle, busy) = rss_with_streams(&endpoints[1], pid, sizes.streams_for_rss).await?;
        report.set_rss(idle, busy, sizes.streams_for_rss);
    }
    if selection.audit {
        let rate = audit_records_per_second(sizes.audit_records).await?;
        report.set_audit(rate, sizes.audit_records);
    }
    for note in notes {
        report.note(note);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_layout() {
        let tar = tar_with_file(1000);
        assert_eq!(tar.len(), 512 + 1024 + 1024);
        assert_eq!(&tar[..9], b"bench.bin");
        assert_eq!(&tar[257..262], b"ustar");
    }

    #[test]
    fn base64() {
        assert_eq!(base64_decode("eyJzaXplIjoxfQ==").unwrap(), b"{\"size\":1}");
        assert!(base64_decode("not base64!").is_none());
    }
}
