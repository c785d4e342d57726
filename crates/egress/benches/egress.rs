//! The air gap's cost, side by side in one run: a "container" namespace on a bridge talks to an
//! "internet" namespace directly (routed by the host, no rules) and through Stockade's
//! transparent proxy (nftables redirect, PAC returning DIRECT, cached). Prints throughput and
//! connection-setup latency for both, and their ratios.
//!
//! Needs root, iproute2 and nftables: `sudo cargo bench -p stockade-egress --bench egress`.
//! Targets (issue 8): proxied throughput at least 0.9x direct; added setup latency p50 under
//! 300 microseconds.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/netns/mod.rs"]
mod netns;

use netns::{in_netns, run, Net};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stockade_egress::nft::{self, Bridge, NftConfig};
use stockade_egress::proxy::{Decision, ProxyConfig, TransparentProxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const BULK: usize = 256 << 20;
const CONNECTIONS: usize = 400;

/// The server: after the request head, either counts bytes until EOF and answers the count
/// (`/bulk`), or answers one line at once (`/ping`).
fn serve(listener: std::net::TcpListener) {
    listener.set_nonblocking(true).unwrap();
    let listener = TcpListener::from_std(listener).unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = vec![0u8; 256 * 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    head.extend_from_slice(&buf[..n]);
                }
                let end = head.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                let mut total = head.len() - end;
                if head.starts_with(b"POST /bulk") {
                    loop {
                        let n = s.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        total += n;
                    }
                }
                let _ = s
                    .write_all(format!("HTTP/1.0 200 OK\r\n\r\n{total}\n").as_bytes())
                    .await;
            });
        }
    });
}

/// Runs `f` in the container namespace with a runtime of its own.
fn in_container<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    in_netns(ns, f)
}

async fn bulk(to: SocketAddr, host: String) -> Duration {
    let start = Instant::now();
    let mut s = TcpStream::connect(to).await.unwrap();
    s.write_all(format!("POST /bulk HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let chunk = vec![7u8; 1 << 20];
    for _ in 0..BULK >> 20 {
        s.write_all(&chunk).await.unwrap();
    }
    s.shutdown().await.unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.unwrap();
    assert!(answer.contains(&BULK.to_string()), "{answer}");
    start.elapsed()
}

async fn setup_latencies(to: SocketAddr, host: String) -> Vec<Duration> {
    let mut all = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let start = Instant::now();
        let mut s = TcpStream::connect(to).await.unwrap();
        s.write_all(format!("GET /ping HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut first = [0u8; 1];
        s.read_exact(&mut first).await.unwrap();
        all.push(start.elapsed());
    }
    all.sort();
    all
}

fn measure(ns: &str, to: SocketAddr) -> (Duration, Duration, Duration) {
    let host = to.ip().to_string();
    in_container(ns, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let _warm = setup_latencies(to, host.clone()).await;
            let lat = setup_latencies(to, host.clone()).await;
            let took = bulk(to, host).await;
            (took, lat[lat.len() / 2], lat[lat.len() * 99 / 100])
        })
    })
}

#[tokio::main]
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

    // Direct: the host routes (forwarding on for the run, restored after).
    let forward = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").unwrap();
    let to = SocketAddr::new(server, 80);
    let direct = tokio::task::spawn_blocking({
        let c = c.clone();
        move || measure(&c, to)
    })
    .await
    .unwrap();
    std::fs::write("/proc/sys/net/ipv4/ip_forward", forward.trim()).unwrap();

    // Through the proxy: nftables redirect, a PAC answering DIRECT (cached after the first).
    let pac = stockade_egress::Decider::pac(
        stockade_egress::pac::PacSource::Embedded(
            "function FindProxyForURL(url, host) { return \"DIRECT\"; }".to_owned(),
        ),
        stockade_egress::DeciderOptions::default(),
    );
    let proxy = TransparentProxy::bind(
        &["0.0.0.0:0".parse().unwrap()],
        Arc::new(pac),
        Arc::new(|_: &Decision| {}),
        ProxyConfig::default(),
    )
    .unwrap();
    let port = proxy.local_addrs()[0].port();
    let table = format!("sb{id}");
    net.table(&table);
    let mut config = NftConfig::new(port);
    config.table = table;
    config.bridges = vec![Bridge {
        interface: br.clone(),
        subnets: vec![format!("10.233.{x}.0/24").parse().unwrap()],
    }];
    nft::apply(&config).unwrap();
    let proxy_task = tokio::spawn(proxy.run(std::future::pending::<()>()));
    let proxied = tokio::task::spawn_blocking({
        let c = c.clone();
        move || measure(&c, to)
    })
    .await
    .unwrap();
    proxy_task.abort();

    let mbps = |d: Duration| (BULK as f64 / (1 << 20) as f64) / d.as_secs_f64();
    println!(
        "egress over a veth/bridge test network, {} MiB bulk, {CONNECTIONS} connections",
        BULK >> 20
    );
    println!(
        "direct : {:8.1} MiB/s  setup p50 {:>7.1?}  p99 {:>7.1?}",
        mbps(direct.0),
        direct.1,
        direct.2
    );
    println!(
        "proxied: {:8.1} MiB/s  setup p50 {:>7.1?}  p99 {:>7.1?}",
        mbps(proxied.0),
        proxied.1,
        proxied.2
    );
    println!(
        "ratios : throughput {:.2}x (target >= 0.90), added setup p50 {:?} (target < 300us)",
        mbps(proxied.0) / mbps(direct.0),
        proxied.1.saturating_sub(direct.1)
    );
    drop(net);
}
