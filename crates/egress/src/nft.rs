//! The nftables rules of air-gapped containers (DESIGN.md §6), in a table of Stockade's own
//! (`inet stockade` by default); no other table is ever read or changed.
//!
//! For each guarded bridge:
//! - TCP from the bridge to a transparent port of an address outside the bridge's own subnets
//!   and not of the host itself is redirected to the proxy port (nat prerouting, IPv4 and IPv6);
//! - on the input hook (traffic to the host), only redirected connections to the proxy port,
//!   DNS to the allowed resolvers, IPv6 neighbour discovery and replies are accepted; the rest
//!   from the bridge is dropped;
//! - on the forward hook, traffic between two containers of the same bridge, DNS to the allowed
//!   resolvers and replies are accepted; everything else leaving the bridge is dropped.
//!
//! A drop in any nftables base chain is final whatever other tables (Docker's iptables-nft
//! rules) accept, so these rules fail closed alongside Docker's own.
//!
//! The ruleset is text fed to `nft -f -` ([`render`]): the same text `stockade doctor` shows,
//! no serialisation layer between what is reviewed and what is applied, and no extra crate.
//! Every input is typed or validated before it is written into the text (interface and table
//! names by a strict character set), so nothing can inject a rule. [`apply`] replaces the
//! whole table in one `nft` transaction (`add table; delete table; table {...}`), so a bridge
//! coming or going never leaves a moment without rules.

use std::collections::BTreeSet;
use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::str::FromStr;

/// An IP subnet, such as `172.18.0.0/16` or `fd00:1::/64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subnet {
    /// The network address.
    pub addr: IpAddr,
    /// The prefix length.
    pub prefix: u8,
}

impl FromStr for Subnet {
    type Err = NftError;
    fn from_str(s: &str) -> Result<Self, NftError> {
        let bad = || NftError::Invalid(format!("{s:?} is not a subnet like 172.18.0.0/16"));
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(bad());
        }
        Ok(Self { addr, prefix })
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// One bridge network of the engine to guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bridge {
    /// The host interface of the bridge (`docker0`, `br-0123456789ab`).
    pub interface: String,
    /// Its IPv4 and IPv6 subnets.
    pub subnets: Vec<Subnet>,
}

/// Which TCP ports are sent to the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ports {
    /// These ports (`containersProxy.transparentPorts`, default 80 and 443).
    Some(BTreeSet<u16>),
    /// Every TCP port.
    All,
}

/// What the rules are built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftConfig {
    /// The table name, in family `inet` (default `stockade`).
    pub table: String,
    /// The bridges to guard.
    pub bridges: Vec<Bridge>,
    /// The transparent ports.
    pub ports: Ports,
    /// The proxy's listen port (on every host address, IPv4 and IPv6).
    pub proxy_port: u16,
    /// The resolvers containers may send DNS (UDP and TCP port 53) to.
    pub dns: Vec<IpAddr>,
}

impl NftConfig {
    /// A config with the default table name and ports 80 and 443.
    #[must_use]
    pub fn new(proxy_port: u16) -> Self {
        Self {
            table: "stockade".to_owned(),
            bridges: Vec::new(),
            ports: Ports::Some(BTreeSet::from([80, 443])),
            proxy_port,
            dns: Vec::new(),
        }
    }
}

/// Errors of the nftables rules.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// An input cannot be written into a rule.
    #[error("invalid nftables input: {0}")]
    Invalid(String),
    /// `nft` could not be run.
    #[error("cannot run `nft` ({source}); install the nftables package")]
    Spawn {
        /// The error.
        source: std::io::Error,
    },
    /// `nft` refused the command.
    #[error("`nft {args}` failed ({status}): {output}")]
    Failed {
        /// The arguments.
        args: String,
        /// The exit status.
        status: String,
        /// What nft printed.
        output: String,
    },
}

/// Interface names as the kernel allows them (IFNAMSIZ 16), restricted to characters that
/// cannot end a quoted string or start a new rule in the ruleset text.
fn check_name(what: &str, name: &str, max: usize) -> Result<(), NftError> {
    let ok = !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(NftError::Invalid(format!(
            "{what} {name:?} must be 1 to {max} letters, digits, '-', '_' or '.'"
        )))
    }
}

fn set<T: fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    let items: Vec<String> = items.into_iter().map(|i| i.to_string()).collect();
    format!("{{ {} }}", items.join(", "))
}

/// The table's definition (without the surrounding replace commands), as `nft list table`
/// would show it in spirit. This is what `stockade doctor` prints as the intended rules.
///
/// # Errors
/// [`NftError::Invalid`] for a bad table or interface name.
pub fn render(config: &NftConfig) -> Result<String, NftError> {
    check_name("the table name", &config.table, 64)?;
    if config.table.contains(['-', '.']) {
        return Err(NftError::Invalid(format!(
            "the table name {:?} must be letters, digits and '_'",
            config.table
        )));
    }
    let mut pre = String::new();
    let mut input = String::new();
    let mut fwd = String::new();
    let p = config.proxy_port;
    let dports = match &config.ports {
        Ports::All => String::new(),
        Ports::Some(ports) if ports.is_empty() => String::new(),
        Ports::Some(ports) => format!("tcp dport {} ", set(ports.iter())),
    };
    let dns4: Vec<IpAddr> = config.dns.iter().copied().filter(IpAddr::is_ipv4).collect();
    let dns6: Vec<IpAddr> = config.dns.iter().copied().filter(IpAddr::is_ipv6).collect();
    let redirecting = !matches!(&config.ports, Ports::Some(p) if p.is_empty());
    for bridge in &config.bridges {
        check_name("the interface name", &bridge.interface, 15)?;
        let i = format!("iifname \"{}\"", bridge.interface);
        let o = format!("oifname \"{}\"", bridge.interface);
        let v4: Vec<Subnet> = bridge
            .subnets
            .iter()
            .copied()
            .filter(|s| s.addr.is_ipv4())
            .collect();
        let v6: Vec<Subnet> = bridge
            .subnets
            .iter()
            .copied()
            .filter(|s| s.addr.is_ipv6())
            .collect();
        if redirecting {
            // DNS over TCP to an allowed resolver is not redirected even when every port is.
            if !dns4.is_empty() {
                let _ = writeln!(pre, "\t\t{i} ip daddr {} tcp dport 53 accept", set(&dns4));
            }
            if !dns6.is_empty() {
                let _ = writeln!(pre, "\t\t{i} ip6 daddr {} tcp dport 53 accept", set(&dns6));
            }
            // Redirect only what leaves the bridge's subnets and is not for the host itself:
            // the host's own addresses fall to the input chain's drop instead of reaching the
            // proxy, which would dial the host's services directly.
            let not4 = if v4.is_empty() {
                String::new()
            } else {
                format!("ip daddr != {} ", set(&v4))
            };
            let not6 = if v6.is_empty() {
                String::new()
            } else {
                format!("ip6 daddr != {} ", set(&v6))
            };
            let _ = writeln!(pre, "\t\t{i} meta nfproto ipv4 {not4}fib daddr type != local meta l4proto tcp {dports}redirect to :{p}");
            let _ = writeln!(pre, "\t\t{i} meta nfproto ipv6 {not6}fib daddr type != local meta l4proto tcp {dports}redirect to :{p}");
        }
        let _ = writeln!(input, "\t\t{i} ct state established,related accept");
        // Only connections nftables redirected may reach the proxy port: a container dialling
        // the proxy directly would otherwise make it connect wherever it likes.
        let _ = writeln!(input, "\t\t{i} tcp dport {p} ct status dnat accept");
        if !dns4.is_empty() {
            let _ = writeln!(
                input,
                "\t\t{i} ip daddr {} meta l4proto {{ tcp, udp }} th dport 53 accept",
                set(&dns4)
            );
            let _ = writeln!(
                fwd,
                "\t\t{i} ip daddr {} meta l4proto {{ tcp, udp }} th dport 53 accept",
                set(&dns4)
            );
        }
        if !dns6.is_empty() {
            let _ = writeln!(
                input,
                "\t\t{i} ip6 daddr {} meta l4proto {{ tcp, udp }} th dport 53 accept",
                set(&dns6)
            );
            let _ = writeln!(
                fwd,
                "\t\t{i} ip6 daddr {} meta l4proto {{ tcp, udp }} th dport 53 accept",
                set(&dns6)
            );
        }
        // IPv6 needs neighbour discovery with the host (the gateway) to reach the proxy at all.
        let _ = writeln!(input, "\t\t{i} icmpv6 type {{ nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit }} accept");
        // Everything else from containers to the host (SSH, the Docker API, metadata-style
        // services on the host's addresses) is dropped.
        let _ = writeln!(input, "\t\t{i} drop");
        // Container to container on the same bridge keeps working.
        let _ = writeln!(fwd, "\t\t{i} {o} accept");
        // Replies of connections made towards the containers (published ports).
        let _ = writeln!(fwd, "\t\t{i} ct state established,related accept");
        // All other egress (other ports, UDP, ICMP, IPv6 that was not redirected) is dropped.
        let _ = writeln!(fwd, "\t\t{i} drop");
    }
    let mut out = String::new();
    let _ = writeln!(out, "table inet {} {{", config.table);
    let _ = writeln!(out, "\tchain prerouting {{\n\t\ttype nat hook prerouting priority dstnat - 5; policy accept;\n{pre}\t}}");
    let _ = writeln!(out, "\tchain input {{\n\t\ttype filter hook input priority filter - 5; policy accept;\n{input}\t}}");
    let _ = writeln!(out, "\tchain forward {{\n\t\ttype filter hook forward priority filter - 5; policy accept;\n{fwd}\t}}");
    out.push_str("}\n");
    Ok(out)
}

fn nft(args: &[&str], stdin: Option<&str>) -> Result<String, NftError> {
    let mut cmd = Command::new("nft");
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| NftError::Spawn { source })?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(|source| NftError::Spawn { source })?;
    }
    let out = child
        .wait_with_output()
        .map_err(|source| NftError::Spawn { source })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(NftError::Failed {
            args: args.join(" "),
            status: out.status.to_string(),
            output: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// Creates or replaces the table atomically (blocking: runs `nft`). Call at start and whenever
/// the bridges change.
///
/// # Errors
/// Invalid input, or `nft` failing (with its output).
pub fn apply(config: &NftConfig) -> Result<(), NftError> {
    let table = render(config)?;
    let script = format!(
        "add table inet {t}\ndelete table inet {t}\n{table}",
        t = config.table
    );
    nft(&["-f", "-"], Some(&script)).map(|_| ())
}

/// Deletes the table (blocking). A table that does not exist is not an error.
///
/// # Errors
/// Invalid name, or `nft` failing.
pub fn remove(table: &str) -> Result<(), NftError> {
    check_name("the table name", table, 64)?;
    let script = format!("add table inet {table}\ndelete table inet {table}\n");
    nft(&["-f", "-"], Some(&script)).map(|_| ())
}

/// The rules in force, as `nft list table inet <table>` prints them, for `stockade doctor`.
///
/// # Errors
/// Invalid name, or `nft` failing (for instance when the table does not exist).
pub fn list(table: &str) -> Result<String, NftError> {
    check_name("the table name", table, 64)?;
    nft(&["list", "table", "inet", table], None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_bridge_and_rejects_injection() {
        let mut c = NftConfig::new(15001);
        c.bridges.push(Bridge {
            interface: "br-abc".into(),
            subnets: vec![
                "172.30.0.0/16".parse().unwrap(),
                "fd00:1::/64".parse().unwrap(),
            ],
        });
        c.dns = vec!["10.0.0.53".parse().unwrap()];
        let text = render(&c).unwrap();
        assert!(text.contains("iifname \"br-abc\" meta nfproto ipv4 ip daddr != { 172.30.0.0/16 } fib daddr type != local meta l4proto tcp tcp dport { 80, 443 } redirect to :15001"), "{text}");
        assert!(
            text.contains("ip daddr { 10.0.0.53 } meta l4proto { tcp, udp } th dport 53 accept")
        );
        c.bridges[0].interface = "x\" accept #".into();
        assert!(render(&c).is_err());
        assert!("10.0.0.0/33".parse::<Subnet>().is_err());
        let mut c = NftConfig::new(1);
        c.table = "a;b".into();
        assert!(render(&c).is_err());
    }
}
