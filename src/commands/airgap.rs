//! Air-gapped containers under `up` (DESIGN.md §6): when the policy configures
//! `containersProxy`, container TCP on the transparent ports goes to Stockade's transparent
//! proxy (decided by the proxy setting or PAC file), and every other packet leaving the engine's
//! bridges is dropped. The rules follow the engine's networks: each network created or removed
//! (seen in the engine's event stream) rebuilds the table in one transaction.

use crate::failure::Failure;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use stockade_egress::nft::{self, Bridge, NftConfig, Ports, Subnet};
use stockade_egress::proxy::{Decision, Outcome, ProxyConfig, TransparentProxy};
use tokio::net::UnixStream;

/// The running air gap; [`Airgap::stop`] removes the rules.
#[derive(Debug)]
pub struct Airgap {
    table: String,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Airgap {
    /// Stops the proxy and the network follower, and removes the table.
    pub async fn stop(self) {
        for task in &self.tasks {
            task.abort();
        }
        let table = self.table.clone();
        let removed = tokio::task::spawn_blocking(move || nft::remove(&table)).await;
        if let Ok(Err(e)) = removed {
            tracing::error!(error = %e, table = %self.table, "cannot remove the air-gap rules");
        }
    }
}

/// What `up` knows of its engine.
#[derive(Debug)]
pub struct EngineNetwork<'a> {
    /// The engine socket.
    pub socket: &'a Path,
    /// The default bridge's interface.
    pub bridge: &'a str,
    /// The default bridge's subnet (`10.213.0.0/24`).
    pub subnet: Subnet,
}

/// Starts the air gap when the admin policy configures `containersProxy`; `Ok(None)`
/// otherwise (the managed engine has no NAT of its own, so containers reach nothing outside
/// their networks either way).
///
/// # Errors
/// The proxy cannot listen or the rules cannot be applied: the start is refused, since
/// containers would otherwise run without the egress control the admin asked for.
pub async fn start(
    policy: &stockade_policy::Policy,
    engine: &EngineNetwork<'_>,
    audit: Option<Arc<stockade_audit::AuditLog>>,
) -> Result<Option<Airgap>, Failure> {
    let settings = policy.effective(None, &stockade_policy::UserContext::new(0, "/root"));
    let cp = settings.containers_proxy.clone();
    let system = stockade_egress::SystemProxy::from_vars(|k| std::env::var(k).ok());
    let decider = tokio::task::spawn_blocking(move || {
        stockade_egress::Decider::from_policy(
            &cp,
            &system,
            stockade_egress::DeciderOptions::default(),
        )
    })
    .await
    .map_err(|e| Failure::unsafe_env(format!("cannot load containersProxy: {e}")))?;
    let Some(decider) = decider else {
        return Ok(None);
    };
    if let Some(error) = decider.load_error() {
        // Fail closed: every connection is refused until it loads; said once here.
        tracing::error!(error = %error, "containersProxy: the PAC file did not load; container egress is refused until it does");
    }
    let ports = match &settings.containers_proxy.transparent_ports {
        Some(stockade_policy::TransparentPorts::All) => Ports::All,
        Some(stockade_policy::TransparentPorts::Ports(list)) => {
            Ports::Some(list.iter().copied().collect())
        }
        None => Ports::Some(BTreeSet::from([80, 443])),
    };
    let sink_audit = audit.clone();
    let names = Arc::new(ContainerNames::new(engine.socket.to_owned()));
    let follower_names = Arc::clone(&names);
    let sink = Arc::new(move |decision: &Decision| {
        // Logged and recorded with the container the source address belongs to (looked up
        // in the engine off the proxy's path).
        let decision = decision.clone();
        let audit = sink_audit.clone();
        let names = Arc::clone(&names);
        tokio::spawn(async move {
            let container = names.of(decision.source.ip()).await;
            tracing::info!(
                container = container.as_deref().unwrap_or("-"),
                "{decision}"
            );
            if let Some(audit) = &audit {
                record(audit, &decision, container);
            }
        });
    });
    let proxy = TransparentProxy::bind(
        &[SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))],
        Arc::new(decider),
        sink,
        ProxyConfig::default(),
    )
    .map_err(|e| Failure::unsafe_env(format!("cannot start the containers' egress proxy: {e}")))?;
    let port = proxy
        .local_addrs()
        .first()
        .map(SocketAddr::port)
        .ok_or_else(|| {
            Failure::unsafe_env("the containers' egress proxy has no address".to_owned())
        })?;
    let mut config = NftConfig::new(port);
    // A table per instance, so two `up`s on one host never touch each other's rules.
    config.table = format!("stockade_{}", engine.bridge.replace('-', "_"));
    config.ports = ports;
    config.dns = resolvers(Path::new("/etc/resolv.conf"));
    let table = config.table.clone();
    let default_bridge = Bridge {
        interface: engine.bridge.to_owned(),
        subnets: vec![engine.subnet],
    };
    config.bridges = vec![default_bridge.clone()];
    apply(config.clone()).await?;
    tracing::info!(table = %table, port, "air-gapped containers: egress goes through the proxy");
    let proxy_task = tokio::spawn(proxy.run(std::future::pending::<()>()));
    let follower = tokio::spawn(follow_networks(
        engine.socket.to_owned(),
        config,
        default_bridge,
        follower_names,
    ));
    Ok(Some(Airgap {
        table,
        tasks: vec![proxy_task, follower],
    }))
}

async fn apply(config: NftConfig) -> Result<(), Failure> {
    tokio::task::spawn_blocking(move || nft::apply(&config))
        .await
        .map_err(|e| Failure::unsafe_env(e.to_string()))?
        .map_err(|e| {
            Failure::unsafe_env(format!(
                "cannot apply the air-gap nftables rules ({e}); check that nftables is installed (apt-get install nftables)"
            ))
        })
}

/// Container names by address: learnt from the engine's network events as containers connect
/// (so even a container gone by the time its connection is logged is named), and from a
/// listing of the running containers when an address is unknown.
struct ContainerNames {
    engine: PathBuf,
    known: tokio::sync::RwLock<std::collections::HashMap<IpAddr, String>>,
}

impl ContainerNames {
    fn new(engine: PathBuf) -> Self {
        Self {
            engine,
            known: tokio::sync::RwLock::new(std::collections::HashMap::new()),
        }
    }

    async fn of(&self, ip: IpAddr) -> Option<String> {
        if let Some(name) = self.known.read().await.get(&ip) {
            return Some(name.clone());
        }
        let list = get_json(&self.engine, "/containers/json").await.ok()?;
        let mut known = self.known.write().await;
        for container in list.as_array().into_iter().flatten() {
            learn(&mut known, container);
        }
        known.get(&ip).cloned()
    }

    /// A container connected to a network: remember its addresses (the newest owner of an
    /// address wins).
    async fn connected(&self, id: &str) {
        let valid = !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric());
        if !valid {
            return;
        }
        if let Ok(container) = get_json(&self.engine, &format!("/containers/{id}/json")).await {
            learn(&mut *self.known.write().await, &container);
        }
    }
}

/// Records a container's addresses from `/containers/json` or `/containers/{id}/json`.
fn learn(known: &mut std::collections::HashMap<IpAddr, String>, container: &serde_json::Value) {
    let name = container["Names"][0]
        .as_str()
        .or_else(|| container["Name"].as_str())
        .unwrap_or("")
        .trim_start_matches('/')
        .to_owned();
    if name.is_empty() {
        return;
    }
    if let Some(networks) = container["NetworkSettings"]["Networks"].as_object() {
        for network in networks.values() {
            if let Some(addr) = network["IPAddress"].as_str().and_then(|a| a.parse().ok()) {
                known.insert(addr, name.clone());
            }
        }
    }
}

/// A GET on the engine, its JSON answer.
async fn get_json(engine: &Path, uri: &str) -> Result<serde_json::Value, String> {
    stockade_engine::client::get_json(engine, uri)
        .await
        .map_err(|e| e.to_string())
}

fn record(audit: &Arc<stockade_audit::AuditLog>, decision: &Decision, container: Option<String>) {
    let allowed = matches!(decision.outcome, Outcome::Connected(_));
    let mut event = stockade_audit::Event {
        kind: Some(stockade_audit::Kind::Decision),
        container,
        route: Some("container_egress".into()),
        decision: Some(if allowed {
            stockade_audit::Decision::Allow
        } else {
            stockade_audit::Decision::Deny
        }),
        reason: Some(decision.reason.clone()),
        ..stockade_audit::Event::default()
    };
    event
        .summary
        .insert("source".into(), decision.source.to_string().into());
    if let Some(destination) = decision.destination {
        event
            .summary
            .insert("destination".into(), destination.to_string().into());
    }
    if let Some(host) = &decision.host {
        event.summary.insert("host".into(), host.clone().into());
    }
    let audit = Arc::clone(audit);
    tokio::spawn(async move {
        let durability = if allowed {
            stockade_audit::Durability::Grouped
        } else {
            stockade_audit::Durability::Sync
        };
        if let Err(e) = audit.append(event, durability).await {
            tracing::error!(error = %e, "cannot record a container egress decision");
        }
    });
}

/// The non-loopback nameservers of a resolv.conf: where containers' DNS may go.
fn resolvers(path: &Path) -> Vec<IpAddr> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.trim().parse::<IpAddr>().ok())
        .filter(|ip| !ip.is_loopback())
        .collect()
}

/// Rebuilds the rules whenever the engine creates or removes a network, from the engine's
/// event stream (reconnecting if it breaks).
async fn follow_networks(
    engine: PathBuf,
    mut config: NftConfig,
    default_bridge: Bridge,
    names: Arc<ContainerNames>,
) {
    loop {
        if let Err(e) = refresh(&engine, &mut config, &default_bridge).await {
            tracing::warn!(error = %e, "cannot refresh the air-gap networks");
        }
        if let Err(e) = watch(&engine, &mut config, &default_bridge, &names).await {
            tracing::debug!(error = %e, "engine event stream ended");
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

async fn watch(
    engine: &Path,
    config: &mut NftConfig,
    default_bridge: &Bridge,
    names: &ContainerNames,
) -> Result<(), String> {
    let stream = UnixStream::connect(engine)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    let driver = tokio::spawn(conn);
    let request = http::Request::get("/events?filters=%7B%22type%22%3A%5B%22network%22%5D%7D")
        .header(http::header::HOST, "docker")
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    let mut body = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?
        .into_body();
    let mut pending = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| e.to_string())?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        pending.extend_from_slice(&data);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let event: serde_json::Value = serde_json::from_slice(&line).unwrap_or_default();
            let action = event["Action"].as_str().unwrap_or("");
            if action == "connect" {
                if let Some(id) = event["Actor"]["Attributes"]["container"].as_str() {
                    names.connected(id).await;
                }
            }
            if matches!(action, "create" | "destroy") {
                refresh(engine, config, default_bridge).await?;
            }
        }
    }
    driver.abort();
    Ok(())
}

/// Lists the engine's bridge networks and applies the rules for them.
async fn refresh(
    engine: &Path,
    config: &mut NftConfig,
    default_bridge: &Bridge,
) -> Result<(), String> {
    let listed = get_json(engine, "/networks").await?;
    let networks: Vec<serde_json::Value> = listed.as_array().cloned().unwrap_or_default();
    let mut bridges = vec![default_bridge.clone()];
    for network in &networks {
        if network["Driver"].as_str() != Some("bridge")
            || network["Name"].as_str() == Some("bridge")
        {
            continue;
        }
        let id = network["Id"].as_str().unwrap_or("");
        let interface = network["Options"]["com.docker.network.bridge.name"]
            .as_str()
            .map_or_else(
                || format!("br-{}", id.get(..12).unwrap_or(id)),
                str::to_owned,
            );
        let subnets: Vec<Subnet> = network["IPAM"]["Config"]
            .as_array()
            .map(|configs| {
                configs
                    .iter()
                    .filter_map(|c| c["Subnet"].as_str())
                    .filter_map(|s| s.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        if !subnets.is_empty() {
            bridges.push(Bridge { interface, subnets });
        }
    }
    if bridges != config.bridges {
        config.bridges = bridges;
        let next = config.clone();
        tokio::task::spawn_blocking(move || nft::apply(&next))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        tracing::info!(
            bridges = config.bridges.len(),
            "air-gap rules follow the engine's networks"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolvers_skip_loopback() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("resolv.conf");
        std::fs::write(&file, "# x\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nnameserver  ::1\nnameserver fd00::1\nsearch corp\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let found = resolvers(&file);
        assert_eq!(
            found,
            vec![
                "10.0.0.2"
                    .parse::<IpAddr>()
                    .unwrap_or_else(|e| panic!("{e}")),
                "fd00::1".parse().unwrap_or_else(|e| panic!("{e}"))
            ]
        );
    }
}
