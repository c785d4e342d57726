//! [`RegistryHost`]: one `registryAccess.allowedRegistries` entry.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::grammar;
use crate::reference::{port_number, DOCKER_HUB, HUB_REGISTRY, LEGACY_HUB};
use crate::{RefError, Reference};

/// An `allowedRegistries` entry, `host[:port]`, compared the way an admin expects:
///
/// - the host is compared case-insensitively; IP literals are compared as addresses
///   (`[0:0::1]` is `[::1]`);
/// - `docker.io`, `index.docker.io` and `registry-1.docker.io` all mean Docker Hub and match
///   every Hub alias (see [`Reference::is_docker_hub`]);
/// - without a port the entry means the registry's default HTTPS port: it matches references
///   with no port or `:443`, and **not** `host:5000`, which is a different (often plain-HTTP)
///   registry on the same machine;
/// - with a port, the reference's port must be that number (`:443` also matches no port).
///
/// Schemes, paths and wildcards are refused when the entry is parsed, so a typo surfaces at
/// policy load time instead of silently matching nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RegistryHost {
    /// Lowercased host; IPv6 literals keep their brackets.
    host: String,
    port: Option<u16>,
    hub: bool,
}

impl RegistryHost {
    /// Parse an entry (`docker.io`, `ghcr.io`, `registry.example.com:5000`, `[::1]:5000`).
    pub fn parse(entry: &str) -> Result<Self, RefError> {
        let invalid = || RefError::InvalidRegistry {
            entry: entry.to_owned(),
        };
        if !grammar::is_domain(entry) {
            return Err(invalid());
        }
        let (host, port) = grammar::split_host_port(entry);
        let port = match port {
            Some(p) => Some(port_number(p).filter(|n| *n != 0).ok_or_else(invalid)?),
            None => None,
        };
        if host.starts_with('[') && ip_of(host).is_none() {
            return Err(invalid());
        }
        let host = host.to_ascii_lowercase();
        let hub = [DOCKER_HUB, LEGACY_HUB, HUB_REGISTRY].contains(&host.as_str())
            && port.is_none_or(|p| p == 443);
        Ok(Self { host, port, hub })
    }

    /// True for the Docker Hub entry.
    pub fn is_docker_hub(&self) -> bool {
        self.hub
    }

    /// Does `image` come from this registry?
    pub fn matches(&self, image: &Reference) -> bool {
        if self.hub || image.is_docker_hub() {
            return self.hub && image.is_docker_hub();
        }
        // The domain-less `foo_bar.com/app` case: its would-be host is no valid entry, so no
        // entry allows it.
        if image.domain().is_empty() {
            return false;
        }
        let image_port = match image.port() {
            None => 443,
            Some(p) => match port_number(p) {
                Some(n) => n,
                None => return false,
            },
        };
        image_port == self.port.unwrap_or(443) && same_host(&self.host, image.host())
    }
}

fn ip_of(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse().ok()
}

fn same_host(allowed_lower: &str, host: &str) -> bool {
    match (ip_of(allowed_lower), ip_of(host)) {
        (Some(a), Some(b)) => a == b,
        (None, None) => allowed_lower.eq_ignore_ascii_case(host),
        _ => false,
    }
}

impl fmt::Display for RegistryHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

impl FromStr for RegistryHost {
    type Err = RefError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}
