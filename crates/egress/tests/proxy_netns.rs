//! The transparent proxy and the nftables rules together, on a real network: a Linux bridge
//! with two "container" namespaces, an "internet" namespace behind a veth with HTTP and TLS
//! (recording) servers, an HTTP CONNECT proxy and a SOCKS5 server, a table of real nftables
//! rules, and the proxy in this process. Every verdict is judged by what the servers actually
//! received. Needs root, iproute2 and nftables; skipped otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod netns;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream as StdStream, UdpSocket};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use stockade_egress::nft::{self, Bridge, NftConfig};
use stockade_egress::proxy::{Decision, Outcome, ProxyConfig, TransparentProxy};
use stockade_egress::sniff::SniffConfig;
use stockade_egress::upstream::{Connector, Resolve};
use stockade_egress::{Decide, DecideError, Hop, Plan, Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use netns::{in_netns, run, Net};

type Log = Arc<RwLock<Vec<(String, Vec<u8>)>>>;

/// The test's decider: a fixed map from the name (or the IP when there is none) to a plan.
struct FixedDecide(HashMap<String, Result<Vec<Hop>, DecideError>>);

impl Decide for FixedDecide {
    fn decide(&self, t: &Target) -> Result<Plan, DecideError> {
        let key = t.host.clone().unwrap_or_else(|| t.ip.to_string());
        match self.0.get(&key) {
            Some(Ok(hops)) => Ok(Plan {
                hops: hops.clone(),
                reason: format!("test map: {key}"),
            }),
            Some(Err(e)) => Err(e.clone()),
            None => Ok(Plan {
                hops: vec![],
                reason: format!("test map: {key} not listed"),
            }),
        }
    }
}

/// The test's resolver: a fixed map.
struct FixedResolve(HashMap<String, IpAddr>);

impl Resolve for FixedResolve {
    fn resolve(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        self.0
            .get(host)
            .map(|ip| vec![*ip])
            .ok_or_else(|| std::io::Error::other(format!("{host} not in the test map")))
    }
}

/// Binds a TCP listener inside `ns`.
fn listen_in(ns: &str, addr: SocketAddr) -> TcpListener {
    let l = in_netns(ns, move || {
        std::net::TcpListener::bind(addr).expect("bind in netns")
    });
    l.set_nonblocking(true).unwrap();
    TcpListener::from_std(l).unwrap()
}

/// A server that records what it receives (until a blank line, or 300 ms of silence) and
/// answers `ok from NAME`.
fn recording_server(listener: TcpListener, name: &'static str, log: Log) {
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                for _ in 0..64 {
                    match tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await {
                        Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
                        _ => break,
                    }
                    if got.ends_with(b"\r\n\r\n") {
                        break;
                    }
                }
                log.write().unwrap().push((name.to_owned(), got));
                let _ = s.write_all(format!("ok from {name}").as_bytes()).await;
            });
        }
    });
}

/// Reads a bounded head up to a blank line.
async fn read_head(s: &mut TcpStream) -> Vec<u8> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 4096 {
        if s.read(&mut b).await.unwrap_or(0) == 0 {
            break;
        }
        head.push(b[0]);
    }
    head
}

/// An HTTP CONNECT proxy that logs each target and connects to it through `names`.
fn connect_proxy(listener: TcpListener, names: HashMap<String, IpAddr>, log: Log) {
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let (log, names) = (Arc::clone(&log), names.clone());
            tokio::spawn(async move {
                let head = String::from_utf8_lossy(&read_head(&mut s).await).to_string();
                let target = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                log.write()
                    .unwrap()
                    .push(("connect-proxy".into(), target.clone().into_bytes()));
                let (host, port) = target.rsplit_once(':').unwrap();
                let Some(ip) = names.get(host) else { return };
                let mut up = TcpStream::connect((*ip, port.parse::<u16>().unwrap()))
                    .await
                    .unwrap();
                s.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .unwrap();
                let _ = tokio::io::copy_bidirectional(&mut s, &mut up).await;
            });
        }
    });
}

/// A SOCKS5 server (no auth, CONNECT by name) that logs each target.
fn socks_server(listener: TcpListener, names: HashMap<String, IpAddr>, log: Log) {
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let (log, names) = (Arc::clone(&log), names.clone());
            tokio::spawn(async move {
                let mut g = [0u8; 3];
                s.read_exact(&mut g).await.unwrap();
                s.write_all(&[5, 0]).await.unwrap();
                let mut r = [0u8; 5];
                s.read_exact(&mut r).await.unwrap();
                assert_eq!(r[3], 3, "the proxy asks by name");
                let mut name = vec![0u8; usize::from(r[4])];
                s.read_exact(&mut name).await.unwrap();
                let mut port = [0u8; 2];
                s.read_exact(&mut port).await.unwrap();
                let host = String::from_utf8(name).unwrap();
                let port = u16::from_be_bytes(port);
                log.write()
                    .unwrap()
                    .push(("socks".into(), format!("{host}:{port}").into_bytes()));
                let ip = names[&host];
                let mut up = TcpStream::connect((ip, port)).await.unwrap();
                s.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut s, &mut up).await;
            });
        }
    });
}

/// From namespace `ns`: connect to `to`, send `bytes`, return what came back (empty when the
/// connection failed or was closed at once).
async fn client(ns: &str, to: SocketAddr, bytes: Vec<u8>) -> Result<Vec<u8>, String> {
    let ns = ns.to_owned();
    tokio::task::spawn_blocking(move || {
        in_netns(&ns, move || {
            let mut s = StdStream::connect_timeout(&to, Duration::from_millis(1500))
                .map_err(|e| format!("connect {to}: {e}"))?;
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.write_all(&bytes).map_err(|e| e.to_string())?;
            let mut out = Vec::new();
            let _ = s.read_to_end(&mut out);
            Ok(out)
        })
    })
    .await
    .unwrap()
}

/// From namespace `ns`: one UDP datagram.
fn udp_send(ns: &str, to: SocketAddr) {
    in_netns(ns, move || {
        let bind: SocketAddr = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }
            .parse()
            .unwrap();
        let s = UdpSocket::bind(bind).unwrap();
        let _ = s.send_to(b"udp-probe", to);
    });
}

/// A UDP socket in `ns` that records datagrams.
fn udp_server(ns: &str, addr: SocketAddr, name: &'static str, log: Log) {
    let s = in_netns(ns, move || UdpSocket::bind(addr).unwrap());
    s.set_nonblocking(true).unwrap();
    let s = tokio::net::UdpSocket::from_std(s).unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        while let Ok(n) = s.recv(&mut buf).await {
            log.write()
                .unwrap()
                .push((name.to_owned(), buf[..n].to_vec()));
        }
    });
}

fn received(log: &Log, name: &str) -> Vec<String> {
    log.read()
        .unwrap()
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
        .collect()
}

/// A ClientHello record with one SNI name, followed by nothing.
fn client_hello(name: &str) -> Vec<u8> {
    let n = name.as_bytes();
    let len16 = |x: usize| u16::try_from(x).unwrap().to_be_bytes();
    let mut sni = len16(n.len() + 3).to_vec();
    sni.push(0);
    sni.extend_from_slice(&len16(n.len()));
    sni.extend_from_slice(n);
    let mut ext = vec![0, 0];
    ext.extend_from_slice(&len16(sni.len()));
    ext.extend_from_slice(&sni);
    let mut body = vec![3, 3];
    body.extend_from_slice(&[9u8; 32]);
    body.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0]);
    body.extend_from_slice(&len16(ext.len()));
    body.extend_from_slice(&ext);
    let mut hs = vec![1];
    hs.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 3, 1];
    rec.extend_from_slice(&len16(hs.len()));
    rec.extend_from_slice(&hs);
    rec
}

fn get(host: &str) -> Vec<u8> {
    format!("GET /x HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)]
async fn containers_reach_only_what_the_policy_allows() {
    if !netns::supported() {
        return;
    }
    let id = std::process::id() % 100_000;
    let x = id % 200 + 20;
    let mut net = Net::default();
    let (c, c2, inet) = (format!("sk{id}c"), format!("sk{id}d"), format!("sk{id}i"));
    let (br, v_c, v_c2, v_i) = (
        format!("sk{id}br"),
        format!("sk{id}vc"),
        format!("sk{id}vd"),
        format!("sk{id}vi"),
    );
    for ns in [&c, &c2, &inet] {
        net.netns(ns);
    }
    // The bridge and the two containers on it.
    run(&format!("ip link add {br} type bridge"));
    net.link(&br);
    run(&format!("ip addr add 10.231.{x}.1/24 dev {br}"));
    run(&format!("ip addr add fd00:231:{x}::1/64 dev {br} nodad"));
    run(&format!("ip link set {br} up"));
    for (ns, v, host) in [(&c, &v_c, 2), (&c2, &v_c2, 3)] {
        run(&format!(
            "ip link add {v} type veth peer name eth0 netns {ns}"
        ));
        net.link(v);
        run(&format!("ip link set {v} master {br} up"));
        run(&format!(
            "ip -n {ns} addr add 10.231.{x}.{host}/24 dev eth0"
        ));
        run(&format!(
            "ip -n {ns} addr add fd00:231:{x}::{host}/64 dev eth0 nodad"
        ));
        run(&format!("ip -n {ns} link set eth0 up"));
        run(&format!("ip -n {ns} route add default via 10.231.{x}.1"));
        run(&format!(
            "ip -n {ns} -6 route add default via fd00:231:{x}::1"
        ));
    }
    // The "internet": an allowed server address (.2) and a forbidden one (.3).
    run(&format!(
        "ip link add {v_i} type veth peer name eth0 netns {inet}"
    ));
    net.link(&v_i);
    run(&format!("ip addr add 10.232.{x}.1/24 dev {v_i}"));
    run(&format!("ip addr add fd00:232:{x}::1/64 dev {v_i} nodad"));
    run(&format!("ip link set {v_i} up"));
    run(&format!("ip -n {inet} addr add 10.232.{x}.2/24 dev eth0"));
    run(&format!("ip -n {inet} addr add 10.232.{x}.3/24 dev eth0"));
    run(&format!(
        "ip -n {inet} addr add fd00:232:{x}::2/64 dev eth0 nodad"
    ));
    run(&format!("ip -n {inet} link set eth0 up"));
    run(&format!("ip -n {inet} route add default via 10.232.{x}.1"));
    run(&format!(
        "ip -n {inet} -6 route add default via fd00:232:{x}::1"
    ));

    let allowed: IpAddr = format!("10.232.{x}.2").parse().unwrap();
    let forbidden: IpAddr = format!("10.232.{x}.3").parse().unwrap();
    let allowed6: IpAddr = format!("fd00:232:{x}::2").parse().unwrap();
    let at = |ip: IpAddr, port: u16| SocketAddr::new(ip, port);
    let log: Log = Arc::default();
    recording_server(listen_in(&inet, at(allowed, 80)), "web", Arc::clone(&log));
    recording_server(listen_in(&inet, at(allowed, 443)), "tls", Arc::clone(&log));
    recording_server(listen_in(&inet, at(allowed, 8080)), "alt", Arc::clone(&log));
    recording_server(
        listen_in(&inet, at(forbidden, 80)),
        "bad-web",
        Arc::clone(&log),
    );
    recording_server(
        listen_in(&inet, at(forbidden, 443)),
        "bad-tls",
        Arc::clone(&log),
    );
    recording_server(
        listen_in(&inet, at(allowed6, 8080)),
        "alt6",
        Arc::clone(&log),
    );
    let c2_server: IpAddr = format!("10.231.{x}.3").parse().unwrap();
    recording_server(
        listen_in(&c2, at(c2_server, 8080)),
        "peer",
        Arc::clone(&log),
    );
    udp_server(&inet, at(allowed, 53), "dns", Arc::clone(&log));
    udp_server(&inet, at(forbidden, 53), "bad-dns", Arc::clone(&log));
    udp_server(&inet, at(allowed, 9999), "udp", Arc::clone(&log));
    udp_server(&inet, at(allowed6, 9999), "udp6", Arc::clone(&log));
    let names: HashMap<String, IpAddr> = [
        "www.allowed.test",
        "tls.allowed.test",
        "via-proxy.test",
        "via-socks.test",
        "fallback.test",
    ]
    .iter()
    .map(|n| ((*n).to_owned(), allowed))
    .collect();
    connect_proxy(
        listen_in(&inet, at(allowed, 3128)),
        names.clone(),
        Arc::clone(&log),
    );
    socks_server(
        listen_in(&inet, at(allowed, 1080)),
        names.clone(),
        Arc::clone(&log),
    );

    // The decider's map.
    let direct = || Ok(vec![Hop::Direct]);
    let plans: HashMap<String, Result<Vec<Hop>, DecideError>> = [
        ("www.allowed.test", direct()),
        ("tls.allowed.test", direct()),
        (
            "via-proxy.test",
            Ok(vec![Hop::Proxy {
                host: allowed.to_string(),
                port: 3128,
            }]),
        ),
        (
            "via-socks.test",
            Ok(vec![Hop::Socks5 {
                host: allowed.to_string(),
                port: 1080,
            }]),
        ),
        (
            "fallback.test",
            Ok(vec![
                Hop::Proxy {
                    host: allowed.to_string(),
                    port: 3999,
                },
                Hop::Direct,
            ]),
        ),
        ("reject.test", Ok(vec![])),
        (
            "broken.test",
            Err(DecideError::PacFailed("script threw".into())),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();

    // The proxy on a free port, IPv4 and IPv6.
    let port = std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let decisions: Arc<RwLock<Vec<Decision>>> = Arc::default();
    let sink = Arc::clone(&decisions);
    let config = ProxyConfig {
        sniff: SniffConfig {
            timeout: Duration::from_secs(2),
            ..SniffConfig::default()
        },
        connector: Connector {
            resolver: Arc::new(FixedResolve(names.clone())),
            timeout: Duration::from_secs(2),
        },
        ..ProxyConfig::default()
    };
    let proxy = TransparentProxy::bind(
        &[
            format!("0.0.0.0:{port}").parse().unwrap(),
            format!("[::]:{port}").parse().unwrap(),
        ],
        Arc::new(FixedDecide(plans)),
        Arc::new(move |d: &Decision| sink.write().unwrap().push(d.clone())),
        config,
    )
    .unwrap();
    let handle = proxy.handle();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let proxy_task = tokio::spawn(proxy.run(async {
        let _ = stopped.await;
    }));

    // Control: without the rules this network forwards anything (so the drops seen later
    // are the rules' doing, not the host's).
    let _forwarding = netns::Forwarding::on();
    let open = client(&c, at(allowed, 8080), b"before\r\n\r\n".to_vec()).await;
    assert_eq!(open.unwrap(), b"ok from alt");
    udp_send(&c, at(allowed, 9999));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(received(&log, "udp"), ["udp-probe"]);
    log.write().unwrap().clear();

    // The rules.
    let table = format!("sktest{id}");
    let mut rules = NftConfig::new(port);
    rules.table.clone_from(&table);
    rules.bridges.push(Bridge {
        interface: br.clone(),
        subnets: vec![
            format!("10.231.{x}.0/24").parse().unwrap(),
            format!("fd00:231:{x}::/64").parse().unwrap(),
        ],
    });
    rules.dns = vec![allowed];
    net.table(&table);
    nft::apply(&rules).unwrap();
    // Applying again (a network came or went) replaces the table atomically.
    nft::apply(&rules).unwrap();
    let listed = nft::list(&table).unwrap();
    assert!(listed.contains(&format!("redirect to :{port}")), "{listed}");

    let text =
        |r: Result<Vec<u8>, String>| String::from_utf8_lossy(&r.unwrap_or_default()).into_owned();

    // Allowed by Host, DIRECT.
    let out = text(client(&c, at(allowed, 80), get("www.allowed.test")).await);
    assert_eq!(out, "ok from web");
    assert!(received(&log, "web")[0].contains("Host: www.allowed.test"));
    // Allowed by SNI, DIRECT: the server got the very ClientHello.
    let hello = client_hello("tls.allowed.test");
    let out = text(client(&c, at(allowed, 443), hello.clone()).await);
    assert_eq!(out, "ok from tls");
    assert_eq!(
        log.read()
            .unwrap()
            .iter()
            .find(|(n, _)| n == "tls")
            .unwrap()
            .1,
        hello
    );
    // Through the HTTP CONNECT proxy and the SOCKS5 server, asked by name.
    let out = text(client(&c, at(allowed, 80), get("via-proxy.test")).await);
    assert_eq!(out, "ok from web");
    assert_eq!(received(&log, "connect-proxy"), ["via-proxy.test:80"]);
    let out = text(client(&c, at(allowed, 443), client_hello("via-socks.test")).await);
    assert_eq!(out, "ok from tls");
    assert_eq!(received(&log, "socks"), ["via-socks.test:443"]);
    // The first hop is down: the next one is used.
    let out = text(client(&c, at(allowed, 80), get("fallback.test")).await);
    assert_eq!(out, "ok from web");
    // IPv6 on port 80 is redirected too and decided the same way.
    let out = text(client(&c, at(allowed6, 80), get("www.allowed.test")).await);
    assert_eq!(out, "ok from web");
    let web_before = received(&log, "web").len();
    assert_eq!(web_before, 4);

    // Refused by the plan: a 403 for HTTP, a close for TLS; the server receives nothing.
    let out = text(client(&c, at(allowed, 80), get("reject.test")).await);
    assert!(out.starts_with("HTTP/1.1 403"), "{out}");
    assert!(out.contains("stockade: egress to reject.test refused by the containers proxy policy"));
    let out = text(client(&c, at(allowed, 443), client_hello("reject.test")).await);
    assert_eq!(out, "");
    // The decider fails (broken PAC): refused.
    let out = text(client(&c, at(allowed, 80), get("broken.test")).await);
    assert!(out.starts_with("HTTP/1.1 403"), "{out}");
    // Raw IP without Host: decided by the IP, which is not allowed.
    let out = text(client(&c, at(allowed, 80), b"GET / HTTP/1.0\r\n\r\n".to_vec()).await);
    assert_eq!(out, "");
    // Not HTTP on port 80: refused without asking.
    let out = text(client(&c, at(allowed, 80), b"SSH-2.0-x\r\n\r\n".to_vec()).await);
    assert_eq!(out, "");

    // Forged names towards the forbidden address: the name is dialled, never the IP.
    let out = text(client(&c, at(forbidden, 80), get("www.allowed.test")).await);
    assert_eq!(out, "ok from web");
    let mut forged = client_hello("tls.allowed.test");
    forged.extend_from_slice(b"GET / HTTP/1.1\r\nHost: forbidden.test\r\n\r\n");
    let out = text(client(&c, at(forbidden, 443), forged).await);
    assert_eq!(out, "ok from tls");
    assert!(received(&log, "bad-web").is_empty() && received(&log, "bad-tls").is_empty());

    // Other ports and UDP are dropped; DNS only to the allowed resolver.
    assert!(client(&c, at(allowed, 8080), b"x".to_vec()).await.is_err());
    assert!(client(&c, at(allowed6, 8080), b"x".to_vec()).await.is_err());
    udp_send(&c, at(allowed, 9999));
    udp_send(&c, at(allowed6, 9999));
    udp_send(&c, at(forbidden, 53));
    udp_send(&c, at(allowed, 53));
    // The proxy port from a container without redirection: dropped.
    let gateway: IpAddr = format!("10.231.{x}.1").parse().unwrap();
    assert!(client(&c, at(gateway, port), get("www.allowed.test"))
        .await
        .is_err());
    // The proxy port from outside the bridges: reached, but not a relay.
    let host_side: IpAddr = format!("10.232.{x}.1").parse().unwrap();
    let out = text(client(&inet, at(host_side, port), get("www.allowed.test")).await);
    assert_eq!(out, "");
    // Container to container on the same bridge still works.
    let out = text(client(&c, at(c2_server, 8080), b"hello peer\r\n\r\n".to_vec()).await);
    assert_eq!(out, "ok from peer");

    // The host's own addresses outside the bridge are not redirected but dropped: the proxy
    // must not become a way to the host's services.
    assert!(client(&c, at(host_side, 80), get("www.allowed.test"))
        .await
        .is_err());

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(received(&log, "dns"), ["udp-probe"]);
    for silent in [
        "udp", "udp6", "bad-dns", "alt", "alt6", "bad-web", "bad-tls",
    ] {
        assert!(
            received(&log, silent).is_empty(),
            "{silent} received traffic"
        );
    }
    assert_eq!(received(&log, "web").len(), web_before + 1);

    // A policy reload: the new decider applies to the next connection.
    handle.set_decider(Arc::new(FixedDecide(HashMap::new())));
    let out = text(client(&c, at(allowed, 80), get("www.allowed.test")).await);
    assert!(out.starts_with("HTTP/1.1 403"), "{out}");
    assert_eq!(received(&log, "web").len(), web_before + 1);

    // Every decision reached the sink.
    let seen = decisions.read().unwrap().clone();
    let find = |host: &str| {
        seen.iter()
            .find(|d| d.host.as_deref() == Some(host))
            .unwrap_or_else(|| panic!("no decision for {host}: {seen:#?}"))
    };
    assert_eq!(
        find("via-socks.test").outcome,
        Outcome::Connected(Hop::Socks5 {
            host: allowed.to_string(),
            port: 1080
        })
    );
    let fb = find("fallback.test");
    assert_eq!(fb.outcome, Outcome::Connected(Hop::Direct));
    assert!(fb.reason.contains("after failures"), "{}", fb.reason);
    assert_eq!(find("reject.test").outcome, Outcome::Refused);
    let broken = find("broken.test");
    assert!(broken.reason.contains("script threw"), "{}", broken.reason);
    assert!(
        seen.iter().any(|d| d.reason.contains("not redirected")),
        "{seen:#?}"
    );
    assert!(seen.iter().all(|d| d
        .source
        .ip()
        .to_canonical()
        .to_string()
        .starts_with("10.231.")
        || d.source.ip().to_string().starts_with("fd00:231:")
        || d.reason.contains("not redirected")));

    let _ = stop.send(());
    let _ = proxy_task.await;
    nft::remove(&table).unwrap();
    assert!(nft::list(&table).is_err());
    drop(net);
}

/// A front end shared by several hosts: records every byte each connection carried (once it
/// ends: closed, or 3 s of silence), and answers `200` to each request head it sees.
fn front_end(listener: TcpListener, log: Arc<RwLock<Vec<Vec<u8>>>>) {
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let mut got = Vec::new();
                let mut answered = 0;
                let mut buf = vec![0u8; 64 << 10];
                while got.len() < 64 << 20 {
                    match tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf)).await {
                        Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
                        _ => break,
                    }
                    let heads = got.windows(4).filter(|w| w == b"\r\n\r\n").count();
                    while answered < heads {
                        answered += 1;
                        let _ = s
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                            .await;
                    }
                }
                log.write().unwrap().push(got);
            });
        }
    });
}

/// One step of a client's conversation.
enum Step {
    /// Send these bytes.
    Send(Vec<u8>),
    /// Wait (at most 5 s) until this many `200` answers have come back.
    Answers(usize),
}

/// From namespace `ns`: one connection to `to` that follows `steps`, then reads until the
/// proxy or the server closes (at most 5 s). Returns what came back and whether the
/// connection was closed on the client (rather than left open).
async fn conversation(ns: &str, to: SocketAddr, steps: Vec<Step>) -> (String, bool) {
    let ns = ns.to_owned();
    tokio::task::spawn_blocking(move || {
        in_netns(&ns, move || {
            let mut s = StdStream::connect_timeout(&to, Duration::from_millis(1500)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            let mut closed = false;
            for step in steps {
                match step {
                    Step::Send(bytes) => {
                        if s.write_all(&bytes).is_err() {
                            closed = true;
                            break;
                        }
                    }
                    Step::Answers(n) => {
                        while String::from_utf8_lossy(&got).matches("200 OK").count() < n {
                            match s.read(&mut buf) {
                                Ok(k) if k > 0 => got.extend_from_slice(&buf[..k]),
                                _ => panic!("answer {n} never came: {got:?}"),
                            }
                        }
                    }
                }
            }
            if !closed {
                let _ = s.shutdown(std::net::Shutdown::Write);
                loop {
                    match s.read(&mut buf) {
                        Ok(0) => {
                            closed = true;
                            break;
                        }
                        Ok(k) => got.extend_from_slice(&buf[..k]),
                        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                            closed = true;
                            break;
                        }
                        Err(_) => break,
                    }
                }
            }
            (String::from_utf8_lossy(&got).into_owned(), closed)
        })
    })
    .await
    .unwrap()
}

/// Waits (at most 5 s) until the front end has recorded `n` connections.
async fn recorded(log: &Arc<RwLock<Vec<Vec<u8>>>>, n: usize) -> Vec<Vec<u8>> {
    for _ in 0..50 {
        if log.read().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    log.read().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)]
async fn every_request_of_a_kept_alive_connection_is_held_to_the_decided_host() {
    if !netns::supported() {
        return;
    }
    let id = std::process::id() % 100_000;
    let x = id % 200 + 20;
    let mut net = Net::default();
    let (c, inet) = (format!("sf{id}c"), format!("sf{id}i"));
    let (br, v_c, v_i) = (
        format!("sf{id}br"),
        format!("sf{id}vc"),
        format!("sf{id}vi"),
    );
    net.netns(&c);
    net.netns(&inet);
    run(&format!("ip link add {br} type bridge"));
    net.link(&br);
    run(&format!("ip addr add 10.237.{x}.1/24 dev {br}"));
    run(&format!("ip link set {br} up"));
    run(&format!(
        "ip link add {v_c} type veth peer name eth0 netns {c}"
    ));
    net.link(&v_c);
    run(&format!("ip link set {v_c} master {br} up"));
    run(&format!("ip -n {c} addr add 10.237.{x}.2/24 dev eth0"));
    run(&format!("ip -n {c} link set eth0 up"));
    run(&format!("ip -n {c} route add default via 10.237.{x}.1"));
    run(&format!(
        "ip link add {v_i} type veth peer name eth0 netns {inet}"
    ));
    net.link(&v_i);
    run(&format!("ip addr add 10.238.{x}.1/24 dev {v_i}"));
    run(&format!("ip link set {v_i} up"));
    run(&format!("ip -n {inet} addr add 10.238.{x}.2/24 dev eth0"));
    run(&format!("ip -n {inet} link set eth0 up"));
    run(&format!("ip -n {inet} route add default via 10.238.{x}.1"));

    // One front end serving two hosts, both of which the policy allows: the fronting case.
    let front: IpAddr = format!("10.238.{x}.2").parse().unwrap();
    let log: Arc<RwLock<Vec<Vec<u8>>>> = Arc::default();
    front_end(
        listen_in(&inet, SocketAddr::new(front, 80)),
        Arc::clone(&log),
    );
    let hosts = ["www.allowed.test", "other.allowed.test"];
    let names: HashMap<String, IpAddr> = hosts.iter().map(|h| ((*h).to_owned(), front)).collect();
    let plans = hosts
        .iter()
        .map(|h| ((*h).to_owned(), Ok(vec![Hop::Direct])))
        .collect();
    let decisions: Arc<RwLock<Vec<Decision>>> = Arc::default();
    let sink = Arc::clone(&decisions);
    let proxy = TransparentProxy::bind(
        &["0.0.0.0:0".parse().unwrap()],
        Arc::new(FixedDecide(plans)),
        Arc::new(move |d: &Decision| sink.write().unwrap().push(d.clone())),
        ProxyConfig {
            sniff: SniffConfig {
                timeout: Duration::from_secs(2),
                ..SniffConfig::default()
            },
            connector: Connector {
                resolver: Arc::new(FixedResolve(names)),
                timeout: Duration::from_secs(2),
            },
            ..ProxyConfig::default()
        },
    )
    .unwrap();
    let port = proxy.local_addrs()[0].port();
    let table = format!("sftest{id}");
    let mut rules = NftConfig::new(port);
    rules.table.clone_from(&table);
    rules.bridges.push(Bridge {
        interface: br.clone(),
        subnets: vec![format!("10.237.{x}.0/24").parse().unwrap()],
    });
    net.table(&table);
    nft::apply(&rules).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let proxy_task = tokio::spawn(proxy.run(async {
        let _ = stopped.await;
    }));
    let to = SocketAddr::new(front, 80);
    let get = |host: &str| format!("GET /x HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes();

    // Control: a second request for the same host (another spelling) on the same connection.
    let (out, _) = conversation(
        &c,
        to,
        vec![
            Step::Send(get("www.allowed.test")),
            Step::Answers(1),
            Step::Send(get("WWW.Allowed.Test.:80")),
            Step::Answers(2),
        ],
    )
    .await;
    assert_eq!(out.matches("200 OK").count(), 2, "{out}");
    let seen = recorded(&log, 1).await;
    let mut both = get("www.allowed.test");
    both.extend_from_slice(&get("WWW.Allowed.Test.:80"));
    assert_eq!(seen, [both]);

    // Domain fronting: the first request for one host, the second (after the first answer)
    // for another one behind the same front end. The second never reaches the front end,
    // and the connection is closed.
    let (out, closed) = conversation(
        &c,
        to,
        vec![
            Step::Send(get("www.allowed.test")),
            Step::Answers(1),
            Step::Send(get("other.allowed.test")),
        ],
    )
    .await;
    assert!(closed, "the connection was left open: {out}");
    assert_eq!(out.matches("200 OK").count(), 1, "{out}");
    let seen = recorded(&log, 2).await;
    assert_eq!(seen[1], get("www.allowed.test"));

    // The same after a body the proxy spliced: the body is carried, the next head judged.
    let mut post =
        b"POST /up HTTP/1.1\r\nHost: www.allowed.test\r\nContent-Length: 1048576\r\n\r\n".to_vec();
    let head_len = post.len();
    post.extend(std::iter::repeat_n(b'x', 1 << 20));
    let (out, closed) = conversation(
        &c,
        to,
        vec![
            Step::Send(post.clone()),
            Step::Answers(1),
            Step::Send(get("other.allowed.test")),
        ],
    )
    .await;
    assert!(closed, "{out}");
    let seen = recorded(&log, 3).await;
    assert_eq!(seen[2].len(), head_len + (1 << 20));
    assert!(seen[2] == post, "the front end received other bytes");

    // Pipelined in one write, and requests whose framing could be read two ways or that would
    // turn the connection into a tunnel: refused before anything is dialled or forwarded.
    let mut pipelined = get("www.allowed.test");
    pipelined.extend_from_slice(&get("other.allowed.test"));
    for bad in [
        pipelined,
        b"POST / HTTP/1.1\r\nHost: www.allowed.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: other.allowed.test\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost: www.allowed.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n".to_vec(),
        b"CONNECT other.allowed.test:80 HTTP/1.1\r\nHost: www.allowed.test\r\n\r\n".to_vec(),
    ] {
        let (out, closed) = conversation(&c, to, vec![Step::Send(bad.clone())]).await;
        assert!(closed && out.is_empty(), "{out}");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = recorded(&log, 3).await;
    assert_eq!(
        seen.len(),
        3,
        "the front end got connections it should not have"
    );
    assert!(seen
        .iter()
        .all(|c| !String::from_utf8_lossy(c).contains("other.allowed.test")));

    // The cut is reported as a refused decision naming the host asked for.
    let seen = decisions.read().unwrap().clone();
    let cuts: Vec<&Decision> = seen
        .iter()
        .filter(|d| d.outcome == Outcome::Refused)
        .collect();
    assert_eq!(cuts.len(), 6, "{seen:#?}");
    assert_eq!(cuts[0].host.as_deref(), Some("other.allowed.test"));
    assert!(
        cuts[0]
            .reason
            .contains("request 2 on the connection names other.allowed.test")
            && cuts[0].reason.contains("connection cut"),
        "{}",
        cuts[0].reason
    );

    let _ = stop.send(());
    let _ = proxy_task.await;
    nft::remove(&table).unwrap();
    drop(net);
}
