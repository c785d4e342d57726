//! The air gap's cost, side by side in one run: a "container" namespace on a bridge talks to an
//! "internet" namespace
//! - directly (routed by the host, no rules),
//! - through Stockade's transparent proxy (nftables redirect, a cached PAC answering DIRECT),
//! - through Stockade's transparent proxy with the PAC answering `PROXY` to a Squid on the
//!   host's loopback (Stockade opens a `CONNECT` tunnel through it),
//! - and through that Squid as an explicit HTTP proxy (`POST http://server/...`, as a client
//!   with `HTTP_PROXY` set would), on the bridge's address.
//!
//! Each way uploads [`BULK`] bytes in one `Content-Length` request (so through Stockade the
//! request head is checked and the body spliced) and opens [`CONNECTIONS`] connections one
//! after another, timing each to the first byte of the answer. The ways take turns for
//! [`rounds`] rounds (the nftables table is put in and taken out between them). Printed are
//! medians: throughput, its ratio to direct (the median of each round's ratio, so that load
//! from elsewhere on a shared machine cancels out), the CPU time the upload cost (client,
//! server, proxy and Squid together, per GiB: a cost that contention changes little) and its
//! ratio to direct, and connection setup latency.
//!
//! Needs root, iproute2 and nftables, and Squid for its two rows (Debian's `squid`; the system
//! service is not used: the bench runs `squid -N` with a configuration of its own and stops it
//! by its pid). `sudo cargo bench -p stockade-egress --bench egress`; `EGRESS_BENCH_ROUNDS=N`
//! changes the number of rounds (default 3).
//!
//! Targets (issue 8): proxied (DIRECT) throughput at least 0.9x direct; added setup latency p50
//! under 300 microseconds.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/netns/mod.rs"]
mod netns;

use netns::{in_netns, run, Net};
use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stockade_egress::nft::{self, Bridge, NftConfig};
use stockade_egress::proxy::{Decision, Outcome, ProxyConfig, TransparentProxy};
use stockade_egress::Hop;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const BULK: usize = 256 << 20;
const CONNECTIONS: usize = 400;

fn rounds() -> usize {
    std::env::var("EGRESS_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .filter(|r| (1..=50).contains(r))
        .unwrap_or(3)
}

/// Reads up to the end of a head; returns (head, bytes read past it).
async fn head(s: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = got.split_off(end + 4);
            return Some((String::from_utf8_lossy(&got).into_owned(), rest));
        }
        if got.len() > 64 << 10 {
            return None;
        }
        let n = s.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        got.extend_from_slice(&buf[..n]);
    }
}

fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0)
}

/// The server: reads a request's body (by its `Content-Length`) and answers how many body
/// bytes it got, then closes (gracefully).
fn serve(listener: std::net::TcpListener) {
    listener.set_nonblocking(true).unwrap();
    let listener = TcpListener::from_std(listener).unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Some((head, rest)) = head(&mut s).await else {
                    return;
                };
                let want = content_length(&head);
                let mut total = rest.len();
                let mut buf = vec![0u8; 256 * 1024];
                while total < want {
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    total += n;
                }
                let body = format!("{total}\n");
                let _ = s
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        )
                        .as_bytes(),
                    )
                    .await;
                // Close gracefully: whatever a proxy sends after the body (Squid may add a
                // CRLF) must not turn the close into a reset that loses the answer.
                let _ = s.shutdown().await;
                let _ = tokio::time::timeout(Duration::from_secs(2), async {
                    while s.read(&mut buf).await.unwrap_or(0) > 0 {}
                })
                .await;
            });
        }
    });
}

/// How the client reaches the server.
#[derive(Clone)]
struct Way {
    /// Where the client connects: the server (direct, transparent) or the explicit proxy.
    connect: SocketAddr,
    /// The request target: `/path` or, to an explicit proxy, `http://server/path`.
    prefix: String,
    /// The `Host` header.
    host: String,
}

/// Reads an answer (head and `Content-Length` body).
async fn answer(s: &mut TcpStream) -> String {
    let (head, mut body) = head(s).await.expect("an answer head");
    let want = content_length(&head);
    while body.len() < want {
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "answer cut short: {head}");
        body.extend_from_slice(&buf[..n]);
    }
    format!("{head}{}", String::from_utf8_lossy(&body))
}

async fn bulk(way: &Way) -> Duration {
    let start = Instant::now();
    let mut s = TcpStream::connect(way.connect).await.unwrap();
    s.set_nodelay(true).unwrap();
    s.write_all(
        format!(
            "POST {}/bulk HTTP/1.1\r\nHost: {}\r\nContent-Length: {BULK}\r\n\r\n",
            way.prefix, way.host
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let chunk = vec![7u8; 1 << 20];
    for i in 0..BULK >> 20 {
        if let Err(e) = s.write_all(&chunk).await {
            let mut back = Vec::new();
            let _ = s.read_to_end(&mut back).await;
            panic!(
                "upload to {} cut after {i} MiB ({e}); answer: {}",
                way.connect,
                String::from_utf8_lossy(&back)
            );
        }
    }
    let answer = answer(&mut s).await;
    assert!(answer.contains(&format!("\r\n\r\n{BULK}\n")), "{answer}");
    start.elapsed()
}

async fn setup_latencies(way: &Way) -> Vec<Duration> {
    let mut all = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let start = Instant::now();
        let mut s = TcpStream::connect(way.connect).await.unwrap();
        s.set_nodelay(true).unwrap();
        s.write_all(
            format!(
                "GET {}/ping HTTP/1.1\r\nHost: {}\r\n\r\n",
                way.prefix, way.host
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        let mut first = [0u8; 1];
        s.read_exact(&mut first).await.unwrap();
        all.push(start.elapsed());
    }
    all.sort();
    all
}

/// One measurement.
#[derive(Clone, Copy)]
struct Sample {
    /// The upload's time.
    bulk: Duration,
    /// CPU time spent during the upload by this process (client, server, Stockade's proxy)
    /// and Squid: a cost that other load on the host does not change much.
    cpu: Duration,
    /// Setup latency percentiles.
    p50: Duration,
    p99: Duration,
}

/// This process's CPU time, and Squid's (its main thread's, from schedstat) when running.
fn cpu_now(squid: Option<u32>) -> Duration {
    let own = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    let own = Duration::new(
        u64::try_from(own.tv_sec).unwrap(),
        u32::try_from(own.tv_nsec).unwrap(),
    );
    let squid = squid
        .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/schedstat")).ok())
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .map_or(Duration::ZERO, Duration::from_nanos);
    own + squid
}

fn measure(ns: &str, way: Way, warm: bool, squid: Option<u32>) -> Sample {
    in_netns(ns, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            if warm {
                let _ = setup_latencies(&way).await;
            }
            let lat = setup_latencies(&way).await;
            let cpu = cpu_now(squid);
            let took = bulk(&way).await;
            Sample {
                bulk: took,
                cpu: cpu_now(squid) - cpu,
                p50: lat[lat.len() / 2],
                p99: lat[lat.len() * 99 / 100],
            }
        })
    })
}

/// A Squid of the bench's own (`squid -N`, no cache, no logs but `cache.log`), stopped by
/// its pid on drop.
struct Squid {
    child: Child,
    dir: tempfile::TempDir,
}

impl Squid {
    fn start(listen: &[SocketAddr], clients: &[&str], server: IpAddr) -> Option<Self> {
        if Command::new("squid").arg("-v").output().is_err() {
            println!("squid: not installed (apt-get install squid), its rows are skipped");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        // Squid drops root for its `cache_effective_user` (Debian: proxy), which writes the log.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
        let path = dir.path().display();
        let ports: String = listen.iter().map(|a| format!("http_port {a}\n")).collect();
        let config = format!(
            "{ports}\
             acl clients src {}\n\
             acl server dst {server}/32\n\
             http_access allow clients server\n\
             http_access deny all\n\
             cache deny all\n\
             cache_mem 8 MB\n\
             access_log none\n\
             cache_store_log none\n\
             cache_log {path}/cache.log\n\
             netdb_filename none\n\
             pid_filename none\n\
             coredump_dir {path}\n\
             visible_hostname stockade-bench\n\
             dns_nameservers 127.0.0.1\n\
             pinger_enable off\n\
             via off\n\
             forwarded_for delete\n\
             shutdown_lifetime 0 seconds\n",
            clients.join(" ")
        );
        let file = dir.path().join("squid.conf");
        std::fs::write(&file, config).unwrap();
        let child = Command::new("squid")
            .arg("-N")
            .arg("-f")
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start squid");
        let squid = Self { child, dir };
        for _ in 0..100 {
            if listen.iter().all(|a| {
                std::net::TcpStream::connect_timeout(a, Duration::from_millis(100)).is_ok()
            }) {
                return Some(squid);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(squid.dir.path().join("cache.log")).unwrap_or_default();
        panic!("squid did not start listening on {listen:?}:\n{log}");
    }
}

impl Drop for Squid {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.path().join("cache.log"));
            println!("squid cache.log:\n{}", log.unwrap_or_default());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port(ip: IpAddr) -> u16 {
    std::net::TcpListener::bind(SocketAddr::new(ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
#[allow(clippy::too_many_lines)]
async fn main() {
    if !netns::supported() {
        return;
    }
    let id = std::process::id() % 100_000;
    let x = id % 200 + 20;
    let mut net = Net::default();
    let (c, inet) = (format!("sb{id}c"), format!("sb{id}i"));
    let (br, v_c, v_i) = (
        format!("sb{id}br"),
        format!("sb{id}vc"),
        format!("sb{id}vi"),
    );
    net.netns(&c);
    net.netns(&inet);
    run(&format!("ip link add {br} type bridge"));
    net.link(&br);
    run(&format!("ip addr add 10.233.{x}.1/24 dev {br}"));
    run(&format!("ip link set {br} up"));
    run(&format!(
        "ip link add {v_c} type veth peer name eth0 netns {c}"
    ));
    net.link(&v_c);
    run(&format!("ip link set {v_c} master {br} up"));
    run(&format!("ip -n {c} addr add 10.233.{x}.2/24 dev eth0"));
    run(&format!("ip -n {c} link set eth0 up"));
    run(&format!("ip -n {c} route add default via 10.233.{x}.1"));
    run(&format!(
        "ip link add {v_i} type veth peer name eth0 netns {inet}"
    ));
    net.link(&v_i);
    run(&format!("ip addr add 10.234.{x}.1/24 dev {v_i}"));
    run(&format!("ip link set {v_i} up"));
    run(&format!("ip -n {inet} addr add 10.234.{x}.2/24 dev eth0"));
    run(&format!("ip -n {inet} link set eth0 up"));
    run(&format!("ip -n {inet} route add default via 10.234.{x}.1"));
    let server: IpAddr = format!("10.234.{x}.2").parse().unwrap();
    let listener = in_netns(&inet, move || {
        std::net::TcpListener::bind(SocketAddr::new(server, 80)).unwrap()
    });
    serve(listener);

    // Squid on the loopback (Stockade's upstream) and on the bridge's address (for the
    // explicit client; reachable only while the nftables table is out).
    let loopback: IpAddr = "127.0.0.1".parse().unwrap();
    let bridge_ip: IpAddr = format!("10.233.{x}.1").parse().unwrap();
    let squid_lo = SocketAddr::new(loopback, free_port(loopback));
    let squid_br = SocketAddr::new(bridge_ip, free_port(bridge_ip));
    let squid = Squid::start(
        &[squid_lo, squid_br],
        &["127.0.0.1/32", &format!("10.233.{x}.0/24")],
        server,
    );

    // The transparent proxy; its decider is switched between the two PACs.
    let pac = |result: String| {
        Arc::new(stockade_egress::Decider::pac(
            stockade_egress::pac::PacSource::Embedded(format!(
                "function FindProxyForURL(url, host) {{ return \"{result}\"; }}"
            )),
            stockade_egress::DeciderOptions::default(),
        ))
    };
    let direct_pac = pac("DIRECT".into());
    let squid_pac = pac(format!("PROXY {squid_lo}"));
    let via_direct = Arc::new(AtomicUsize::new(0));
    let via_squid = Arc::new(AtomicUsize::new(0));
    let other = Arc::new(AtomicUsize::new(0));
    let sink = {
        let (d, s, o) = (
            Arc::clone(&via_direct),
            Arc::clone(&via_squid),
            Arc::clone(&other),
        );
        move |decision: &Decision| {
            match &decision.outcome {
                Outcome::Connected(Hop::Direct) => &d,
                Outcome::Connected(Hop::Proxy { .. }) => &s,
                _ => &o,
            }
            .fetch_add(1, Ordering::Relaxed);
        }
    };
    let proxy = TransparentProxy::bind(
        &["0.0.0.0:0".parse().unwrap()],
        direct_pac.clone(),
        Arc::new(sink),
        ProxyConfig::default(),
    )
    .unwrap();
    let handle = proxy.handle();
    let port = proxy.local_addrs()[0].port();
    let table = format!("sb{id}");
    net.table(&table);
    let mut config = NftConfig::new(port);
    config.table = table.clone();
    config.bridges = vec![Bridge {
        interface: br.clone(),
        subnets: vec![format!("10.233.{x}.0/24").parse().unwrap()],
    }];
    let proxy_task = tokio::spawn(proxy.run(std::future::pending::<()>()));

    let to_server = Way {
        connect: SocketAddr::new(server, 80),
        prefix: String::new(),
        host: server.to_string(),
    };
    let explicit = Way {
        connect: squid_br,
        prefix: format!("http://{server}"),
        host: server.to_string(),
    };
    let names = [
        "direct (routed by the host)",
        "stockade transparent, DIRECT",
        "stockade transparent, PROXY squid",
        "client -> squid explicitly",
    ];
    // samples[way][round]; `None`: that upload failed (Squid sometimes cuts a long upload
    // short; the panic message above says how). Stockade's own rows must not fail.
    let mut samples: Vec<Vec<Option<Sample>>> = vec![Vec::new(); names.len()];
    let forward = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let rounds = rounds();
    for round in 0..rounds {
        let warm = round == 0;
        let ns = c.clone();
        let squid_pid = squid.as_ref().map(|s| s.child.id());
        let go = |way: &Way| {
            let (ns, way) = (ns.clone(), way.clone());
            tokio::task::spawn_blocking(move || measure(&ns, way, warm, squid_pid))
        };
        // Direct: the host routes (forwarding on for it only, restored after).
        let _ = nft::remove(&table);
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").unwrap();
        samples[0].push(Some(go(&to_server).await.unwrap()));
        std::fs::write("/proc/sys/net/ipv4/ip_forward", forward.trim()).unwrap();
        if squid.is_some() {
            samples[3].push(go(&explicit).await.ok());
        }
        // Through the proxy: the nftables redirect, a PAC answering DIRECT, then PROXY squid.
        nft::apply(&config).unwrap();
        handle.set_decider(direct_pac.clone());
        samples[1].push(Some(go(&to_server).await.unwrap()));
        if squid.is_some() {
            handle.set_decider(squid_pac.clone());
            samples[2].push(go(&to_server).await.ok());
        }
    }
    proxy_task.abort();
    drop(squid);
    assert_eq!(
        other.load(Ordering::Relaxed),
        0,
        "a proxied connection failed"
    );
    assert!(via_direct.load(Ordering::Relaxed) > 0);

    let mbps = |d: Duration| (BULK as f64 / f64::from(1 << 20)) / d.as_secs_f64();
    let per_gib = |d: Duration| d.as_secs_f64() * 1000.0 * f64::from(1 << 30) / BULK as f64;
    let median_f = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "egress over a veth/bridge test network: {} MiB upload, {CONNECTIONS} connections; medians of {rounds} rounds",
        BULK >> 20
    );
    println!(
        "(x direct: the median of each round's ratio to that round's direct run; CPU: this process and squid, per GiB uploaded)"
    );
    println!(
        "{:<34} {:>8} {:>8} {:>11} {:>9} {:>10} {:>9} {:>10}",
        "way", "MiB/s", "x direct", "CPU ms/GiB", "x direct", "setup p50", "p99", "added p50"
    );
    let direct: Vec<Sample> = samples[0].iter().flatten().copied().collect();
    let direct_p50 = median(direct.iter().map(|x| x.p50).collect());
    let mut ratios = Vec::new();
    for (name, way) in names.iter().zip(&samples) {
        // Rounds where this way's upload succeeded, with that round's direct run.
        let (s, direct): (Vec<Sample>, Vec<Sample>) = way
            .iter()
            .zip(&direct)
            .filter_map(|(x, d)| Some(((*x)?, *d)))
            .unzip();
        if s.is_empty() {
            println!("{name:<34} skipped");
            ratios.push(None);
            continue;
        }
        let failed = way.len() - s.len();
        let speed = median_f(s.iter().map(|x| mbps(x.bulk)).collect());
        let ratio = median_f(
            s.iter()
                .zip(&direct)
                .map(|(x, d)| d.bulk.as_secs_f64() / x.bulk.as_secs_f64())
                .collect(),
        );
        let cpu = median_f(s.iter().map(|x| per_gib(x.cpu)).collect());
        let cpu_ratio = median_f(
            s.iter()
                .zip(&direct)
                .map(|(x, d)| x.cpu.as_secs_f64() / d.cpu.as_secs_f64())
                .collect(),
        );
        let p50 = median(s.iter().map(|x| x.p50).collect());
        let p99 = median(s.iter().map(|x| x.p99).collect());
        let note = if failed > 0 {
            format!("  ({failed} of {} uploads cut short)", way.len())
        } else {
            String::new()
        };
        println!(
            "{name:<34} {speed:>8.1} {ratio:>7.2}x {cpu:>11.0} {cpu_ratio:>8.2}x {p50:>10.1?} {p99:>9.1?} {:>10.1?}{note}",
            p50.saturating_sub(direct_p50)
        );
        ratios.push(Some((ratio, p50.saturating_sub(direct_p50))));
    }
    let (ratio, added) = ratios[1].unwrap();
    println!(
        "targets (issue 8): stockade DIRECT throughput {ratio:.2}x (>= 0.90), added setup p50 {added:.1?} (< 300us)"
    );
    drop(net);
}
