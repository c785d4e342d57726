//! The `containersProxy` decider: a PAC script, or a fixed proxy (`mode: manual` with
//! `http`/`https`/`exclude`, or `mode: system` with the proxy environment the caller passes).
//!
//! ```
//! use stockade_egress::decide::{Decider, DeciderOptions, SystemProxy};
//! use stockade_egress::{Decide, Hop, Scheme, Target};
//!
//! let env = [
//!     ("HTTPS_PROXY", "http://proxy.corp:3128"),
//!     ("NO_PROXY", "localhost,.corp,10.0.0.0/8"),
//! ];
//! let system = SystemProxy::from_vars(|k| {
//!     env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
//! });
//! let decider = Decider::fixed("system", None, system.https.as_deref(), &system.exclude())?;
//! let target = |host: &str, ip: &str| Target {
//!     ip: ip.parse().unwrap(),
//!     port: 443,
//!     host: Some(host.to_owned()),
//!     scheme: Scheme::Https,
//! };
//! let plan = decider.decide(&target("example.org", "192.0.2.1"))?;
//! assert_eq!(plan.hops, vec![Hop::Proxy { host: "proxy.corp".into(), port: 3128 }]);
//! assert_eq!(decider.decide(&target("git.corp", "192.0.2.2"))?.hops, vec![Hop::Direct]);
//! assert_eq!(decider.decide(&target("example.org", "10.1.1.1"))?.hops, vec![Hop::Direct]);
//! # let _ = DeciderOptions::default();
//! # Ok::<(), stockade_egress::DecideError>(())
//! ```
//!
//! # Use
//! Build with [`Decider::from_policy`] whenever the policy is (re)loaded, off the async executor
//! (an `http://` PAC is fetched then), keep it as an `Arc<dyn Decide>` and swap the `Arc` on
//! reload; `None` means `containersProxy` is not configured and egress is not controlled. Ask
//! [`Decide::decide`] per connection from a blocking thread (`spawn_blocking`): a cache miss
//! runs the script for up to [`PacOptions::time_limit`]. An error means refuse.
//!
//! # Which settings apply
//! As Docker Desktop documents for `containersProxy`: with `mode: manual`, `embeddedPac` wins
//! over `pac`, and either wins over `http`/`https`/`exclude`. With `mode: system` the PAC
//! settings have no effect (a warning says so) and the proxy environment the caller passes
//! ([`SystemProxy`]; this crate never reads the environment itself) is used like `http`,
//! `https` and `exclude`.
//!
//! One deliberate difference: Docker Desktop connects directly when the PAC file cannot be
//! downloaded. Stockade refuses every connection instead (fail closed, DESIGN.md §6), logs the
//! failure once, and retries the load at most every [`DeciderOptions::retry_interval`].
//!
//! # Fixed proxies
//! `http` serves connections whose name came from the `Host` header, `https` those named by
//! SNI. A connection with no name ([`Scheme::Other`], any other port) goes through `https`: it
//! is an opaque stream, which is what `CONNECT` carries. When only one of the two is set it
//! serves every connection (an admin who set one proxy did not mean the other traffic to go
//! out unseen); with neither set, connections go direct, as with no proxy at all. Proxy values
//! are `http://host[:port]` (port 80 by default), `host:port`, or `socks5://host[:port]` (also
//! `socks5h://`, port 1080); `https://` proxies and credentials are refused (the proxy speaks
//! neither TLS to the proxy nor proxy authentication), which refuses every connection until fixed.
//! A proxy on `reject.docker.internal` refuses, as it does in a PAC answer, so
//! `http: "reject.docker.internal:1"` with an `exclude` list is an allow list.
//!
//! # Exclusions
//! `exclude` (and `NO_PROXY`) entries, compared case-insensitively, each optionally with
//! `:port`: `*` (everything); `<local>` (names without a dot, as on Windows); a name
//! (`corp.example`: the name and its subdomains); `.name` or `*.name` (subdomains only); an IP
//! address; a CIDR block (`10.0.0.0/8`, `fd00::/8`). Names
//! are compared with the connection's name (SNI or `Host`), addresses and blocks with the real
//! destination address. Note for the proxy: a name comes from the client, so an excluded name
//! can be claimed for any destination; a `DIRECT` hop chosen for a name should be dialled by that
//! name (or the destination checked against it).
//!
//! # Cache
//! PAC answers are cached per (scheme, name or IP, port) for [`DeciderOptions::cache_ttl`]
//! (60 s), at most [`DeciderOptions::cache_capacity`] entries (expired ones go first, then the
//! oldest). Failures are cached only for [`DeciderOptions::error_ttl`] (2 s): long enough that a
//! script that times out cannot be made to run once per connection, short enough that a fixed
//! script recovers at once.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use stockade_policy::{ContainersProxy, ProxyMode};

use crate::pac::{Pac, PacOptions, PacSource};
use crate::target::{Decide, DecideError, Hop, Plan, Scheme, Target};

/// The host's proxy environment for `mode: system`, handed over by the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemProxy {
    /// `HTTP_PROXY`.
    pub http: Option<String>,
    /// `HTTPS_PROXY`.
    pub https: Option<String>,
    /// `NO_PROXY`, comma-separated.
    pub no_proxy: Option<String>,
}

impl SystemProxy {
    /// Reads the usual variables through `get` (upper case first, then lower case; empty values
    /// count as unset). The binary passes `|k| std::env::var(k).ok()`.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Self {
        let var = |upper: &str, lower: &str| {
            get(upper)
                .filter(|v| !v.trim().is_empty())
                .or_else(|| get(lower).filter(|v| !v.trim().is_empty()))
        };
        Self {
            http: var("HTTP_PROXY", "http_proxy"),
            https: var("HTTPS_PROXY", "https_proxy"),
            no_proxy: var("NO_PROXY", "no_proxy"),
        }
    }

    /// `NO_PROXY` split into entries.
    pub fn exclude(&self) -> Vec<String> {
        self.no_proxy
            .as_deref()
            .unwrap_or("")
            .split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// Tuning of the decider.
#[derive(Debug, Clone)]
pub struct DeciderOptions {
    /// PAC limits and environment.
    pub pac: PacOptions,
    /// How long a PAC answer is reused (default 60 s).
    pub cache_ttl: Duration,
    /// How long a PAC failure is reused (default 2 s).
    pub error_ttl: Duration,
    /// Most cached answers (default 4096).
    pub cache_capacity: usize,
    /// Least time between two attempts to load a PAC file that failed to load (default 30 s).
    pub retry_interval: Duration,
}

impl Default for DeciderOptions {
    fn default() -> Self {
        Self {
            pac: PacOptions::default(),
            cache_ttl: Duration::from_secs(60),
            error_ttl: Duration::from_secs(2),
            cache_capacity: 4096,
            retry_interval: Duration::from_secs(30),
        }
    }
}

/// Whether `containersProxy` asks for egress control at all: any field set (a mode of
/// `manual`, a proxy, an exclusion, a PAC or `transparentPorts`). A bare `{"locked": true}`
/// or an absent key does not. The caller that knows whether the admin file has the key (for
/// example through `Settings::source_of`) may use that instead.
pub fn is_configured(cp: &ContainersProxy) -> bool {
    cp.mode == ProxyMode::Manual
        || cp.http.is_some()
        || cp.https.is_some()
        || !cp.exclude.is_empty()
        || cp.pac.is_some()
        || cp.embedded_pac.is_some()
        || cp.transparent_ports.is_some()
}

/// The decision for `containersProxy`; build one per policy and swap it when the policy changes.
#[derive(Debug)]
pub struct Decider(Inner);

#[derive(Debug)]
enum Inner {
    Fixed(FixedProxy),
    Pac(Box<PacDecider>),
    Broken(DecideError),
}

impl Decider {
    /// The decider for a policy; `None` when `containersProxy` is not configured (see
    /// [`is_configured`]), meaning no egress control.
    ///
    /// Never fails: a setting that cannot be used (a bad proxy URL, an `https://` PAC, a PAC
    /// that does not load) gives a decider that refuses every connection with that error
    /// ([`Decider::load_error`]); the error is logged once here.
    pub fn from_policy(
        cp: &ContainersProxy,
        system: &SystemProxy,
        options: DeciderOptions,
    ) -> Option<Self> {
        if !is_configured(cp) {
            return None;
        }
        let decider = match cp.mode {
            ProxyMode::Manual => {
                if let Some(script) = &cp.embedded_pac {
                    Self::pac(PacSource::Embedded(script.clone()), options)
                } else if let Some(pac) = &cp.pac {
                    match PacSource::from_pac_setting(pac) {
                        Ok(source) => Self::pac(source, options),
                        Err(e) => Self::broken(e),
                    }
                } else {
                    Self::fixed(
                        "manual",
                        cp.http.as_deref(),
                        cp.https.as_deref(),
                        &cp.exclude,
                    )
                    .unwrap_or_else(Self::broken)
                }
            }
            ProxyMode::System => {
                if cp.pac.is_some() || cp.embedded_pac.is_some() {
                    tracing::warn!(
                        "containersProxy: pac and embeddedPac take effect only with mode \"manual\" \
                         (as in Docker Desktop); using the system proxy. Set \"mode\": \"manual\" to use the PAC"
                    );
                }
                // `exclude`, like `http` and `https`, applies only with mode manual (Docker
                // Desktop); NO_PROXY takes its place.
                let exclude = system.exclude();
                Self::fixed(
                    "system",
                    system.http.as_deref(),
                    system.https.as_deref(),
                    &exclude,
                )
                .unwrap_or_else(Self::broken)
            }
        };
        // A PAC that does not load is reported by the PAC decider itself (once).
        if let Inner::Broken(e) = &decider.0 {
            tracing::error!(
                "containersProxy: {e}; every container connection on a transparent port is refused until fixed"
            );
        }
        Some(decider)
    }

    /// A fixed proxy decider; `label` (`manual`, `system`) starts each plan's reason.
    ///
    /// # Errors
    /// [`DecideError::PacUnavailable`] for a proxy value that cannot be used.
    pub fn fixed(
        label: &'static str,
        http: Option<&str>,
        https: Option<&str>,
        exclude: &[String],
    ) -> Result<Self, DecideError> {
        let parse = |name: &str, value: Option<&str>| {
            value
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| {
                    parse_proxy(v).map_err(|m| {
                        DecideError::PacUnavailable(format!("{label} proxy {name} {v:?}: {m}"))
                    })
                })
                .transpose()
        };
        Ok(Self(Inner::Fixed(FixedProxy {
            label,
            http: parse("http", http)?,
            https: parse("https", https)?,
            exclude: Exclude::parse(exclude),
        })))
    }

    /// A PAC decider. The script is loaded now (an `http://` fetch blocks for at most
    /// [`PacOptions::fetch_timeout`]; call this off the async executor); a failed load is retried
    /// on use at most every [`DeciderOptions::retry_interval`].
    pub fn pac(source: PacSource, options: DeciderOptions) -> Self {
        let loaded = Pac::load(&source, options.pac.clone());
        let state = match loaded {
            Ok(pac) => {
                tracing::info!(source = %source.describe(), "containersProxy: PAC loaded");
                PacState::Loaded(pac)
            }
            Err(error) => PacState::Failed {
                error,
                at: Instant::now(),
            },
        };
        let decider = PacDecider {
            source,
            cache: Cache::new(options.cache_capacity, options.cache_ttl, options.error_ttl),
            options,
            state: RwLock::new(state),
            loading: AtomicBool::new(false),
            reported: RwLock::new(HashSet::new()),
        };
        if let PacState::Failed { error, .. } =
            &*decider.state.read().unwrap_or_else(PoisonError::into_inner)
        {
            decider.report(error);
        }
        Self(Inner::Pac(Box::new(decider)))
    }

    fn broken(error: DecideError) -> Self {
        Self(Inner::Broken(error))
    }

    /// Why every decision fails, if it does (the PAC did not load, a proxy value is unusable).
    pub fn load_error(&self) -> Option<DecideError> {
        match &self.0 {
            Inner::Fixed(_) => None,
            Inner::Pac(p) => match &*p.state.read().unwrap_or_else(PoisonError::into_inner) {
                PacState::Loaded(_) => None,
                PacState::Failed { error, .. } => Some(error.clone()),
            },
            Inner::Broken(e) => Some(e.clone()),
        }
    }

    /// Loads the PAC file again now (for example on a timer, or when an admin says it changed)
    /// and empties the cache. Keeps the previous script when the new load fails. Does nothing
    /// for fixed proxies.
    ///
    /// # Errors
    /// The load error, also logged.
    pub fn refresh(&self) -> Result<(), DecideError> {
        match &self.0 {
            Inner::Pac(p) => p.reload(true),
            Inner::Fixed(_) | Inner::Broken(_) => Ok(()),
        }
    }

    /// One line saying what decides, for `stockade doctor` and logs.
    pub fn describe(&self) -> String {
        match &self.0 {
            Inner::Fixed(f) => format!(
                "{}: http {}, https {}, {} exclusions",
                f.label,
                f.http
                    .as_ref()
                    .map_or_else(|| "none".to_owned(), ToString::to_string),
                f.https
                    .as_ref()
                    .map_or_else(|| "none".to_owned(), ToString::to_string),
                f.exclude.rules.len()
            ),
            Inner::Pac(p) => format!("pac: {}", p.source.describe()),
            Inner::Broken(e) => format!("refusing everything: {e}"),
        }
    }
}

impl Decide for Decider {
    fn decide(&self, target: &Target) -> Result<Plan, DecideError> {
        match &self.0 {
            Inner::Fixed(f) => Ok(f.decide(target)),
            Inner::Pac(p) => p.decide(target),
            Inner::Broken(e) => Err(e.clone()),
        }
    }
}

/// `http://host[:port][/]`, `host:port`, `socks5://host[:port]`.
fn parse_proxy(value: &str) -> Result<Hop, String> {
    let lower = value.to_ascii_lowercase();
    let (rest, socks) = if let Some(i) = lower.find("://") {
        match &lower[..i] {
            "http" => (&value[i + 3..], false),
            "socks5" | "socks5h" => (&value[i + 3..], true),
            "https" => {
                return Err(
                    "https proxies (TLS to the proxy) are not supported; use http://".into(),
                )
            }
            other => {
                return Err(format!(
                    "unknown proxy scheme {other}; use http:// or socks5://"
                ))
            }
        }
    } else {
        (value, false)
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains('@') {
        return Err(
            "proxy credentials are not supported; allow the gateway's address on the proxy instead"
                .into(),
        );
    }
    if authority.contains('/') {
        return Err("a proxy is host[:port], without a path".into());
    }
    let (host, port) = crate::pac::host_port_for(authority, if socks { 1080 } else { 80 })
        .ok_or_else(|| "not host[:port]".to_owned())?;
    Ok(if socks {
        Hop::Socks5 { host, port }
    } else {
        Hop::Proxy { host, port }
    })
}

/// `mode: manual` without a PAC, or `mode: system`.
#[derive(Debug)]
struct FixedProxy {
    label: &'static str,
    http: Option<Hop>,
    https: Option<Hop>,
    exclude: Exclude,
}

impl FixedProxy {
    fn decide(&self, target: &Target) -> Plan {
        if let Some(rule) = self.exclude.matching(target) {
            return Plan {
                hops: vec![Hop::Direct],
                reason: format!("{}: DIRECT (excluded by {rule})", self.label),
            };
        }
        let hop = match target.scheme {
            Scheme::Http => self.http.as_ref().or(self.https.as_ref()),
            Scheme::Https | Scheme::Other => self.https.as_ref().or(self.http.as_ref()),
        };
        match hop {
            // Docker Desktop's refusal host means the same here as in a PAC answer.
            Some(Hop::Proxy { host, .. } | Hop::Socks5 { host, .. })
                if host == crate::pac::REJECT_HOST =>
            {
                Plan {
                    hops: Vec::new(),
                    reason: format!("{}: reject", self.label),
                }
            }
            Some(hop) => Plan {
                hops: vec![hop.clone()],
                reason: format!("{}: {hop}", self.label),
            },
            None => Plan {
                hops: vec![Hop::Direct],
                reason: format!("{}: DIRECT (no proxy set)", self.label),
            },
        }
    }
}

/// A parsed `exclude`/`NO_PROXY` list.
#[derive(Debug, Default)]
pub struct Exclude {
    rules: Vec<Rule>,
}

#[derive(Debug)]
struct Rule {
    text: String,
    kind: RuleKind,
    port: Option<u16>,
}

#[derive(Debug)]
enum RuleKind {
    All,
    /// `<local>` (Windows' bypass list): names without a dot.
    Plain,
    Net(IpAddr, u8),
    Ip(IpAddr),
    /// `.suffix` (with the dot); `also_itself`: the name without the dot matches too.
    Domain {
        suffix: String,
        also_itself: bool,
    },
}

impl Exclude {
    /// Parses entries; ones that mean nothing (`a/b/c`, `host:port:x`) are ignored with a warning.
    pub fn parse(entries: &[String]) -> Self {
        let mut rules = Vec::new();
        for entry in entries.iter().flat_map(|e| e.split(',')) {
            let text = entry.trim().to_ascii_lowercase();
            if text.is_empty() {
                continue;
            }
            match parse_rule(&text) {
                Some((kind, port)) => rules.push(Rule { text, kind, port }),
                None => {
                    tracing::warn!(
                        entry = %text,
                        "containersProxy: exclude entry ignored: not a name, address or CIDR block"
                    )
                }
            }
        }
        Self { rules }
    }

    /// The entry that exempts `target` from the proxy, if any.
    pub fn matching(&self, target: &Target) -> Option<&str> {
        let ip = match target.ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(target.ip, IpAddr::V4),
            v4 @ IpAddr::V4(_) => v4,
        };
        let host = target
            .host
            .as_deref()
            .map(|h| h.strip_suffix('.').unwrap_or(h).to_ascii_lowercase());
        let host_ip = host.as_deref().and_then(|h| h.parse::<IpAddr>().ok());
        self.rules
            .iter()
            .find(|rule| {
                rule.port.is_none_or(|p| p == target.port)
                    && match &rule.kind {
                        RuleKind::All => true,
                        RuleKind::Plain => host
                            .as_deref()
                            .is_some_and(|h| !h.contains('.') && host_ip.is_none()),
                        RuleKind::Net(net, len) => {
                            crate::pac::helpers::cidr_contains(*net, *len, ip)
                        }
                        RuleKind::Ip(a) => *a == ip || Some(*a) == host_ip,
                        RuleKind::Domain {
                            suffix,
                            also_itself,
                        } => host.as_deref().is_some_and(|h| {
                            h.ends_with(suffix.as_str()) || (*also_itself && h == &suffix[1..])
                        }),
                    }
            })
            .map(|rule| rule.text.as_str())
    }
}

fn parse_rule(text: &str) -> Option<(RuleKind, Option<u16>)> {
    if text == "*" {
        return Some((RuleKind::All, None));
    }
    if text == "<local>" {
        return Some((RuleKind::Plain, None));
    }
    if let Some((net, len)) = text.split_once('/') {
        let net: IpAddr = net.parse().ok()?;
        let len: u8 = len.parse().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        return (len <= max).then_some((RuleKind::Net(net, len), None));
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some((RuleKind::Ip(ip), None));
    }
    // `[v6]:port`, `v4:port`, `name:port`, `name`.
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?.parse::<u16>().ok()?),
        };
        (h, port)
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) => (h, Some(p.parse::<u16>().ok()?)),
            None => (text, None),
        }
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some((RuleKind::Ip(ip), port));
    }
    let host = host.strip_prefix('*').unwrap_or(host);
    let host = host.strip_suffix('.').unwrap_or(host);
    let (suffix, also_itself) = match host.strip_prefix('.') {
        Some(rest) => (rest, false),
        None => (host, true),
    };
    if !crate::pac::valid_name(suffix) {
        return None;
    }
    Some((
        RuleKind::Domain {
            suffix: format!(".{suffix}"),
            also_itself,
        },
        port,
    ))
}

enum PacState {
    Loaded(Pac),
    Failed { error: DecideError, at: Instant },
}

impl fmt::Debug for PacState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Loaded(p) => f.debug_tuple("Loaded").field(p).finish(),
            Self::Failed { error, .. } => f.debug_tuple("Failed").field(error).finish(),
        }
    }
}

/// Most distinct failure messages logged per script; more are counted, not logged.
const MAX_REPORTED: usize = 32;

#[derive(Debug)]
struct PacDecider {
    source: PacSource,
    options: DeciderOptions,
    state: RwLock<PacState>,
    /// Set while one caller reloads, so a dead PAC server is asked once, not once per connection.
    loading: AtomicBool,
    cache: Cache,
    /// Failure messages already logged (once per failure, not per connection).
    reported: RwLock<HashSet<String>>,
}

impl PacDecider {
    fn decide(&self, target: &Target) -> Result<Plan, DecideError> {
        let key = Key::of(target);
        if let Some(hit) = self.cache.get(&key) {
            return hit;
        }
        let result = self.evaluate(target);
        if let Err(e) = &result {
            self.report(e);
        }
        self.cache.put(key, result.clone());
        result
    }

    fn evaluate(&self, target: &Target) -> Result<Plan, DecideError> {
        let pac = {
            let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
            match &*state {
                PacState::Loaded(pac) => Some(pac.clone()),
                PacState::Failed { error, at } => {
                    if at.elapsed() < self.options.retry_interval {
                        return Err(error.clone());
                    }
                    None
                }
            }
        };
        match pac {
            Some(pac) => pac.evaluate(target),
            None => {
                // Due for another attempt; one caller loads, the others keep refusing meanwhile.
                let _ = self.reload(false);
                match &*self.state.read().unwrap_or_else(PoisonError::into_inner) {
                    PacState::Loaded(pac) => pac.clone().evaluate(target),
                    PacState::Failed { error, .. } => Err(error.clone()),
                }
            }
        }
    }

    /// Loads the script again; `keep_good`: a failed load keeps a loaded script.
    fn reload(&self, keep_good: bool) -> Result<(), DecideError> {
        if self.loading.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let loaded = Pac::load(&self.source, self.options.pac.clone());
        let outcome = {
            let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
            match loaded {
                Ok(pac) => {
                    tracing::info!(source = %self.source.describe(), "containersProxy: PAC loaded");
                    *state = PacState::Loaded(pac);
                    self.reported
                        .write()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clear();
                    Ok(())
                }
                Err(error) => {
                    if !(keep_good && matches!(*state, PacState::Loaded(_))) {
                        *state = PacState::Failed {
                            error: error.clone(),
                            at: Instant::now(),
                        };
                    }
                    Err(error)
                }
            }
        };
        self.cache.clear();
        self.loading.store(false, Ordering::SeqCst);
        if let Err(e) = &outcome {
            self.report(e);
        }
        outcome
    }

    fn report(&self, error: &DecideError) {
        let message = error.to_string();
        if self
            .reported
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&message)
        {
            return;
        }
        let mut reported = self
            .reported
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if reported.len() < MAX_REPORTED && reported.insert(message) {
            tracing::error!(
                source = %self.source.describe(),
                "containersProxy: {error}; the connections concerned are refused (further occurrences are not logged)"
            );
        } else if reported.len() == MAX_REPORTED && reported.insert(String::new()) {
            tracing::error!(
                source = %self.source.describe(),
                "containersProxy: more than {MAX_REPORTED} different PAC failures; further ones are not logged until the PAC is reloaded"
            );
        }
    }
}

/// What a PAC answer depends on: the `url` and `host` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    /// The url's scheme is `https` (else `http`).
    https: bool,
    name: String,
    port: u16,
}

impl Key {
    fn of(target: &Target) -> Self {
        let (url, name) = crate::pac::pac_arguments(target);
        // The url's scheme already folds Scheme::Other into http/https.
        Self {
            https: url.starts_with("https:"),
            name,
            port: target.port,
        }
    }
}

/// When an answer was cached, and the answer.
type Entry = (Instant, Result<Plan, DecideError>);

#[derive(Debug)]
struct Cache {
    map: RwLock<HashMap<Key, Entry>>,
    capacity: usize,
    ttl: Duration,
    error_ttl: Duration,
}

impl Cache {
    fn new(capacity: usize, ttl: Duration, error_ttl: Duration) -> Self {
        Self {
            map: RwLock::new(HashMap::new()),
            capacity,
            ttl,
            error_ttl,
        }
    }

    fn fresh(&self, at: Instant, value: &Result<Plan, DecideError>) -> bool {
        at.elapsed()
            < if value.is_ok() {
                self.ttl
            } else {
                self.error_ttl
            }
    }

    fn get(&self, key: &Key) -> Option<Result<Plan, DecideError>> {
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        map.get(key)
            .filter(|(at, value)| self.fresh(*at, value))
            .map(|(_, value)| value.clone())
    }

    fn put(&self, key: Key, value: Result<Plan, DecideError>) {
        if self.capacity == 0 {
            return;
        }
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= self.capacity && !map.contains_key(&key) {
            map.retain(|_, (at, value)| self.fresh(*at, value));
            if map.len() >= self.capacity {
                let oldest = map
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    map.remove(&oldest);
                }
            }
        }
        map.insert(key, (Instant::now(), value));
    }

    fn clear(&self) {
        self.map
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(host: Option<&str>, ip: &str, port: u16, scheme: Scheme) -> Target {
        Target {
            ip: ip.parse().unwrap(),
            port,
            host: host.map(str::to_owned),
            scheme,
        }
    }

    fn ex(entries: &[&str]) -> Exclude {
        Exclude::parse(&entries.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn exclude_names() {
        let e = ex(&[
            "corp.example",
            ".sub.example",
            "*.star.example",
            "Upper.Example.",
        ]);
        let m = |h: &str| {
            e.matching(&t(Some(h), "192.0.2.1", 443, Scheme::Https))
                .is_some()
        };
        assert!(m("corp.example"));
        assert!(m("git.corp.example"));
        assert!(!m("badcorp.example"), "a suffix must start at a label");
        assert!(!m("sub.example"), "a leading dot: subdomains only");
        assert!(m("a.sub.example"));
        assert!(!m("star.example"));
        assert!(m("a.star.example"));
        assert!(m("upper.example"));
        assert!(m("corp.example."), "a trailing dot is the same name");
        assert!(!m("example"));
        let local = ex(&["<local>"]);
        assert!(local
            .matching(&t(Some("intranet"), "10.0.0.1", 80, Scheme::Http))
            .is_some());
        assert!(local
            .matching(&t(Some("a.example"), "10.0.0.1", 80, Scheme::Http))
            .is_none());
        assert!(local
            .matching(&t(None, "10.0.0.1", 80, Scheme::Other))
            .is_none());
        assert!(
            e.matching(&t(None, "192.0.2.1", 443, Scheme::Other))
                .is_none(),
            "no name, no name match"
        );
    }

    #[test]
    fn exclude_addresses_and_ports() {
        let e = ex(&[
            "10.0.0.0/8",
            "192.0.2.7",
            "fd00::/8",
            "[::1]:8080",
            "api.example:8443",
            "bad/entry/x",
            "a:b",
        ]);
        let m = |h: Option<&str>, ip: &str, port: u16| {
            e.matching(&t(h, ip, port, Scheme::Other)).is_some()
        };
        assert!(m(None, "10.1.2.3", 443));
        assert!(
            m(Some("anything.example"), "10.1.2.3", 443),
            "the real destination counts"
        );
        assert!(m(None, "::ffff:10.1.2.3", 80), "IPv4-mapped");
        assert!(!m(None, "11.1.2.3", 443));
        assert!(m(None, "192.0.2.7", 80));
        assert!(
            m(Some("192.0.2.7"), "203.0.113.1", 80),
            "an IP literal name"
        );
        assert!(m(None, "fd12::1", 80));
        assert!(m(None, "::1", 8080));
        assert!(!m(None, "::1", 8081));
        assert!(m(Some("api.example"), "203.0.113.1", 8443));
        assert!(!m(Some("api.example"), "203.0.113.1", 443));
        assert_eq!(e.rules.len(), 5, "nonsense entries are ignored");
        assert!(ex(&["*"])
            .matching(&t(None, "203.0.113.1", 1, Scheme::Other))
            .is_some());
        assert!(
            ex(&["a, b,,c"]).rules.len() == 3,
            "comma lists inside an entry"
        );
        assert!(ex(&[])
            .matching(&t(Some("a"), "10.0.0.1", 80, Scheme::Http))
            .is_none());
    }

    #[test]
    fn proxy_values() {
        let p = |h: &str, port| Hop::Proxy {
            host: h.into(),
            port,
        };
        assert_eq!(parse_proxy("http://proxy:3128").unwrap(), p("proxy", 3128));
        assert_eq!(parse_proxy("http://proxy:3128/").unwrap(), p("proxy", 3128));
        assert_eq!(parse_proxy("HTTP://Proxy").unwrap(), p("proxy", 80));
        assert_eq!(parse_proxy("proxy:8080").unwrap(), p("proxy", 8080));
        assert_eq!(
            parse_proxy("http://[fd00::1]:3128").unwrap(),
            p("fd00::1", 3128)
        );
        assert_eq!(
            parse_proxy("socks5://s").unwrap(),
            Hop::Socks5 {
                host: "s".into(),
                port: 1080
            }
        );
        assert_eq!(
            parse_proxy("socks5h://s:9050").unwrap(),
            Hop::Socks5 {
                host: "s".into(),
                port: 9050
            }
        );
        assert!(parse_proxy("https://p:443")
            .unwrap_err()
            .contains("not supported"));
        assert!(parse_proxy("http://u:pw@p:3128")
            .unwrap_err()
            .contains("credentials"));
        assert!(parse_proxy("ftp://p").is_err());
        assert!(parse_proxy("http://p/path").is_err());
        assert!(parse_proxy("http://p:0").is_err());
    }

    #[test]
    fn fixed_choice_by_scheme() {
        let both = Decider::fixed(
            "manual",
            Some("http://h:1"),
            Some("http://s:2"),
            &["no.example".into()],
        )
        .unwrap();
        let hop = |d: &Decider, target: Target| d.decide(&target).unwrap().hops;
        let h = Hop::Proxy {
            host: "h".into(),
            port: 1,
        };
        let s = Hop::Proxy {
            host: "s".into(),
            port: 2,
        };
        assert_eq!(
            hop(&both, t(Some("a.example"), "192.0.2.1", 80, Scheme::Http)),
            vec![h.clone()]
        );
        assert_eq!(
            hop(&both, t(Some("a.example"), "192.0.2.1", 443, Scheme::Https)),
            vec![s.clone()]
        );
        assert_eq!(
            hop(&both, t(None, "192.0.2.1", 22, Scheme::Other)),
            vec![s.clone()]
        );
        assert_eq!(
            hop(
                &both,
                t(Some("no.example"), "192.0.2.1", 443, Scheme::Https)
            ),
            vec![Hop::Direct]
        );
        let plan = both
            .decide(&t(Some("x.no.example"), "192.0.2.1", 80, Scheme::Http))
            .unwrap();
        assert_eq!(plan.reason, "manual: DIRECT (excluded by no.example)");

        let http_only = Decider::fixed("manual", Some("h:1"), None, &[]).unwrap();
        assert_eq!(
            hop(&http_only, t(Some("a"), "192.0.2.1", 443, Scheme::Https)),
            vec![h.clone()]
        );
        assert_eq!(
            hop(&http_only, t(None, "192.0.2.1", 5432, Scheme::Other)),
            vec![h]
        );
        let https_only = Decider::fixed("manual", None, Some("s:2"), &[]).unwrap();
        assert_eq!(
            hop(&https_only, t(Some("a"), "192.0.2.1", 80, Scheme::Http)),
            vec![s]
        );
        let none = Decider::fixed("manual", Some(" "), None, &[]).unwrap();
        let plan = none
            .decide(&t(Some("a"), "192.0.2.1", 80, Scheme::Http))
            .unwrap();
        assert_eq!(plan.hops, vec![Hop::Direct]);
        assert_eq!(plan.reason, "manual: DIRECT (no proxy set)");
        assert!(Decider::fixed("manual", Some("https://p"), None, &[]).is_err());
        let reject = Decider::fixed(
            "manual",
            Some("http://reject.docker.internal:1"),
            None,
            &["ok.example".into()],
        )
        .unwrap();
        let plan = reject
            .decide(&t(Some("a"), "192.0.2.1", 443, Scheme::Https))
            .unwrap();
        assert!(plan.hops.is_empty());
        assert_eq!(plan.reason, "manual: reject");
        assert_eq!(
            hop(
                &reject,
                t(Some("ok.example"), "192.0.2.1", 443, Scheme::Https)
            ),
            vec![Hop::Direct]
        );
    }

    #[test]
    fn system_vars() {
        let vars = [
            ("http_proxy", "http://lower:1"),
            ("HTTPS_PROXY", "http://upper:2"),
            ("https_proxy", "http://ignored:3"),
            ("NO_PROXY", "a.example, .b.example,10.0.0.0/8"),
            ("HTTP_PROXY", ""),
        ];
        let sys = SystemProxy::from_vars(|k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        });
        assert_eq!(sys.http.as_deref(), Some("http://lower:1"));
        assert_eq!(sys.https.as_deref(), Some("http://upper:2"));
        assert_eq!(sys.exclude(), vec!["a.example", ".b.example", "10.0.0.0/8"]);
    }

    #[test]
    fn cache_bounds_and_ttl() {
        let cache = Cache::new(3, Duration::from_secs(60), Duration::ZERO);
        let key = |n: &str| Key {
            https: true,
            name: n.into(),
            port: 443,
        };
        let plan = Ok(Plan {
            hops: vec![Hop::Direct],
            reason: "x".into(),
        });
        for n in ["a", "b", "c", "d"] {
            cache.put(key(n), plan.clone());
        }
        assert_eq!(cache.len(), 3);
        assert!(cache.get(&key("a")).is_none(), "the oldest went first");
        assert!(cache.get(&key("d")).is_some());
        cache.put(key("e"), Err(DecideError::PacFailed("x".into())));
        assert!(
            cache.get(&key("e")).is_none(),
            "an error with a zero TTL is not reused"
        );
        cache.clear();
        assert_eq!(cache.len(), 0);
    }
}
