//! PAC evaluation: `FindProxyForURL(url, host)` in an embedded, time- and memory-limited
//! JavaScript sandbox (QuickJS-NG through rquickjs).
//!
//! ```
//! use std::sync::Arc;
//! use stockade_egress::pac::{Pac, PacOptions, StaticResolver};
//! use stockade_egress::{Hop, Scheme, Target};
//!
//! let script = r#"function FindProxyForURL(url, host) {
//!     if (dnsDomainIs(host, ".corp.example")) return "DIRECT";
//!     if (isInNet(host, "10.0.0.0", "255.0.0.0")) return "DIRECT";
//!     return "PROXY proxy.corp.example:3128; PROXY reject.docker.internal:1";
//! }"#;
//! let options = PacOptions {
//!     resolver: Arc::new(StaticResolver::new([("intranet", "10.1.2.3".parse()?)])),
//!     ..PacOptions::default()
//! };
//! let pac = Pac::new(script, options)?;
//! let target = |host: &str| Target {
//!     ip: "192.0.2.1".parse().unwrap(),
//!     port: 443,
//!     host: Some(host.to_owned()),
//!     scheme: Scheme::Https,
//! };
//! assert_eq!(pac.evaluate(&target("git.corp.example"))?.hops, vec![Hop::Direct]);
//! assert_eq!(pac.evaluate(&target("intranet"))?.hops, vec![Hop::Direct]);
//! let plan = pac.evaluate(&target("example.org"))?;
//! assert_eq!(plan.reason, "pac: PROXY proxy.corp.example:3128; reject");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The sandbox
//! The context has the ECMAScript built-ins a PAC file uses (`Date`, `RegExp`, `JSON`, `Map`,
//! `Set`, `eval`) and the PAC helpers, written in Rust (see [`helpers`]): `isPlainHostName`,
//! `dnsDomainIs`, `localHostOrDomainIs`, `isResolvable`, `isInNet`, `dnsResolve`,
//! `myIpAddress`, `dnsDomainLevels`, `shExpMatch`, `weekdayRange`, `dateRange`, `timeRange`,
//! `alert`, and Microsoft's IPv6 extensions `isResolvableEx`, `dnsResolveEx`, `myIpAddressEx`,
//! `isInNetEx`, `sortIpAddressList`, `getClientVersion`. When the script
//! defines `FindProxyForURLEx`, it is called instead of `FindProxyForURL`, as Windows does.
//!
//! Hardening, each for a way a PAC file could hurt the gateway:
//! - **No I/O**: no `std`/`os` modules, no module loader, no `fetch`, `require`, `XMLHttpRequest`
//!   or timers, so a script (fetched over plain HTTP, perhaps altered on the way) cannot read
//!   files or open connections. Its only way out is name resolution through the [`Resolver`].
//! - **Time limit** per evaluation ([`PacOptions::time_limit`], 100 ms by default): QuickJS's
//!   interrupt handler aborts `while(true){}` and catastrophic regular expressions
//!   (`/(a+)+$/.test("aaaa…b")`, ReDoS); native helpers that may block (DNS) are given only the
//!   time left. Loading the script gets ten times the limit.
//! - **Memory limit** per sandbox ([`PacOptions::memory_limit`], 16 MiB): a memory bomb ends in
//!   an out-of-memory exception, not in the gateway being killed.
//! - **Stack limit** (256 KiB): unbounded recursion is a `RangeError`, not a crash.
//! - **Bounded helpers**: at most [`MAX_LOOKUPS`] name lookups and [`MAX_ALERTS`] `alert` lines
//!   (each cut to 512 characters) per evaluation, so a script cannot flood the resolver or the
//!   log; `shExpMatch` is a linear-time glob, not a translated regular expression.
//! - **Fail closed**: a script that does not compile, throws, runs out of time or memory, or
//!   returns anything but a string is a [`DecideError`]; after any failure the sandbox is thrown
//!   away and rebuilt, so a half-finished evaluation leaves nothing behind.
//!
//! Sandboxes are per thread (QuickJS runtimes are single-threaded): each thread that evaluates
//! keeps up to four compiled scripts (about 85 KiB each for a small script, never more than the
//! memory limit), so the common call costs one function call, not a compile. A replaced script's
//! sandboxes leave a thread's list as newer ones arrive, or when the thread ends.

pub mod helpers;
mod result;
mod source;

pub use helpers::Now;
pub(crate) use result::{host_port as host_port_for, valid_host as valid_name};
pub use result::{parse_result, REJECT_HOST};
pub use source::PacSource;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use rquickjs::context::intrinsic;
use rquickjs::convert::Coerced;
use rquickjs::function::Rest;
use rquickjs::{CatchResultExt, CaughtError, Context, Ctx, Function, IntoJs, Runtime, Value};

use crate::target::{DecideError, Plan, Scheme, Target};

/// Most name lookups one evaluation may make; later ones answer "not resolvable".
pub const MAX_LOOKUPS: u32 = 16;
/// Most `alert` lines one evaluation may log.
pub const MAX_ALERTS: u32 = 8;
/// Longest `alert` line logged, in characters.
const MAX_ALERT_CHARS: usize = 512;
/// The QuickJS stack limit.
const STACK_LIMIT: usize = 256 * 1024;
/// Compiled scripts kept per thread.
const SANDBOXES_PER_THREAD: usize = 4;

/// Name resolution for `dnsResolve`, `isResolvable`, `isInNet` and their `Ex` forms.
pub trait Resolver: Send + Sync {
    /// The addresses of `host`, or none when it cannot be resolved within `timeout`. Must return
    /// within `timeout` (the evaluation's time limit depends on it).
    fn resolve(&self, host: &str, timeout: Duration) -> Vec<IpAddr>;
}

/// The system resolver (`getaddrinfo`), bounded in time.
///
/// Each lookup runs on its own short-lived thread and the caller waits at most `timeout`; a
/// lookup that outlives it keeps its thread until the C library gives up (`resolv.conf`'s
/// `timeout` × `attempts`), and at most `max_in_flight` such threads exist at once (further
/// lookups answer "not resolvable" at once), so a dead DNS server cannot pile up threads.
#[derive(Debug)]
pub struct SystemResolver {
    in_flight: Arc<AtomicUsize>,
    max_in_flight: usize,
}

impl SystemResolver {
    /// A resolver allowing `max_in_flight` lookups at once.
    pub fn new(max_in_flight: usize) -> Self {
        Self {
            in_flight: Arc::new(AtomicUsize::new(0)),
            max_in_flight,
        }
    }
}

impl Default for SystemResolver {
    fn default() -> Self {
        Self::new(16)
    }
}

impl Resolver for SystemResolver {
    fn resolve(&self, host: &str, timeout: Duration) -> Vec<IpAddr> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return vec![ip];
        }
        // Only DNS names reach getaddrinfo: never an empty string, spaces or `%` scope ids.
        if !result::valid_host(host) || timeout.is_zero() {
            return Vec::new();
        }
        if self.in_flight.fetch_add(1, Ordering::SeqCst) >= self.max_in_flight {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!(
                host,
                "pac: too many name lookups at once; answering not resolvable"
            );
            return Vec::new();
        }
        let (tx, rx) = mpsc::sync_channel(1);
        let in_flight = Arc::clone(&self.in_flight);
        let name = host.to_owned();
        let spawned = std::thread::Builder::new()
            .name("pac-dns".into())
            .spawn(move || {
                let mut ips: Vec<IpAddr> = (name.as_str(), 0)
                    .to_socket_addrs()
                    .map(|addrs| addrs.map(|a| a.ip()).collect())
                    .unwrap_or_default();
                ips.dedup();
                ips.truncate(16);
                in_flight.fetch_sub(1, Ordering::SeqCst);
                let _ = tx.send(ips);
            });
        if spawned.is_err() {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            return Vec::new();
        }
        rx.recv_timeout(timeout).unwrap_or_default()
    }
}

/// A fixed table of names, for tests and for deployments that pin names.
#[derive(Debug, Clone, Default)]
pub struct StaticResolver(HashMap<String, Vec<IpAddr>>);

impl StaticResolver {
    /// A table from `(name, address)` pairs; a name may appear more than once.
    pub fn new<'a>(entries: impl IntoIterator<Item = (&'a str, IpAddr)>) -> Self {
        let mut map: HashMap<String, Vec<IpAddr>> = HashMap::new();
        for (name, ip) in entries {
            map.entry(name.to_ascii_lowercase()).or_default().push(ip);
        }
        Self(map)
    }
}

impl Resolver for StaticResolver {
    fn resolve(&self, host: &str, _timeout: Duration) -> Vec<IpAddr> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return vec![ip];
        }
        self.0
            .get(&host.to_ascii_lowercase())
            .cloned()
            .unwrap_or_default()
    }
}

/// The time source of `weekdayRange`, `dateRange` and `timeRange`.
pub trait Clock: Send + Sync {
    /// The current time, local and UTC.
    fn now(&self) -> Now;
}

/// The host's clock and time zone.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Now {
        let local = chrono::Local::now();
        Now {
            local: local.naive_local(),
            utc: local.naive_utc(),
        }
    }
}

/// A clock stopped at one time, for tests.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub Now);

impl Clock for FixedClock {
    fn now(&self) -> Now {
        self.0
    }
}

/// Limits and environment of PAC evaluation.
#[derive(Clone)]
pub struct PacOptions {
    /// Longest one `FindProxyForURL` call may run (default 100 ms).
    pub time_limit: Duration,
    /// Heap limit of each sandbox, in bytes (default 16 MiB).
    pub memory_limit: usize,
    /// Longest one name lookup may take, further bounded by the time left (default 50 ms).
    pub dns_timeout: Duration,
    /// What `myIpAddress()` answers (default 127.0.0.1; the binary passes the address of the
    /// bridge gateway the containers see). `myIpAddress` answers 127.0.0.1 for an IPv6 address;
    /// `myIpAddressEx` answers it as is.
    pub my_ip: IpAddr,
    /// Largest PAC file loaded, in bytes (default 1 MiB).
    pub max_size: usize,
    /// Longest an `http://` PAC fetch may take in all (default 5 s).
    pub fetch_timeout: Duration,
    /// Name resolution (default: [`SystemResolver`]).
    pub resolver: Arc<dyn Resolver>,
    /// Time source of the date helpers (default: [`SystemClock`]).
    pub clock: Arc<dyn Clock>,
}

impl Default for PacOptions {
    fn default() -> Self {
        Self {
            time_limit: Duration::from_millis(100),
            memory_limit: 16 * 1024 * 1024,
            dns_timeout: Duration::from_millis(50),
            my_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            max_size: 1024 * 1024,
            fetch_timeout: Duration::from_secs(5),
            resolver: Arc::new(SystemResolver::default()),
            clock: Arc::new(SystemClock),
        }
    }
}

impl fmt::Debug for PacOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PacOptions")
            .field("time_limit", &self.time_limit)
            .field("memory_limit", &self.memory_limit)
            .field("dns_timeout", &self.dns_timeout)
            .field("my_ip", &self.my_ip)
            .field("max_size", &self.max_size)
            .field("fetch_timeout", &self.fetch_timeout)
            .finish_non_exhaustive()
    }
}

/// The `url` and `host` arguments of `FindProxyForURL` for a connection.
///
/// `url` is `scheme://host:port/`: the scheme is `http` for a name read from the `Host` header
/// and `https` for one read from TLS SNI; for a connection with no name ([`Scheme::Other`]) the
/// host is the destination IP and the scheme is `https` on port 443 (TLS without SNI) and `http`
/// elsewhere. The port is always written, even the default one, so scripts can tell ports
/// apart on any `transparentPorts`; the path is `/` because it is never known (browsers strip
/// `https` paths too), which keeps the usual `shExpMatch(url, "https://*.example.com/*")`
/// patterns working. `host` is the name without a port, or the IP (IPv6 without brackets).
pub fn pac_arguments(target: &Target) -> (String, String) {
    let host = target.host.clone().unwrap_or_else(|| target.ip.to_string());
    let scheme = match target.scheme {
        Scheme::Http => "http",
        Scheme::Https => "https",
        Scheme::Other if target.port == 443 => "https",
        Scheme::Other => "http",
    };
    let url_host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.clone()
    };
    (format!("{scheme}://{url_host}:{}/", target.port), host)
}

/// A loaded PAC script, ready to evaluate from any thread.
#[derive(Clone)]
pub struct Pac {
    shared: Arc<Shared>,
}

struct Shared {
    id: u64,
    script: String,
    options: PacOptions,
}

impl fmt::Debug for Pac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pac")
            .field("id", &self.shared.id)
            .field("script_len", &self.shared.script.len())
            .field("options", &self.shared.options)
            .finish()
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's compiled scripts, least recently used first.
    static SANDBOXES: RefCell<Vec<Sandbox>> = const { RefCell::new(Vec::new()) };
}

impl Pac {
    /// Compiles `script` (running its top level once) and checks it defines `FindProxyForURL`.
    ///
    /// # Errors
    /// [`DecideError::PacUnavailable`] when the script is too large, does not compile, throws
    /// while loading, or defines no `FindProxyForURL` function.
    pub fn new(script: impl Into<String>, options: PacOptions) -> Result<Self, DecideError> {
        let script = script.into();
        if script.len() > options.max_size {
            return Err(DecideError::PacUnavailable(format!(
                "the script is larger than {} bytes",
                options.max_size
            )));
        }
        let pac = Self {
            shared: Arc::new(Shared {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                script,
                options,
            }),
        };
        let sandbox = Sandbox::build(&pac.shared).map_err(|e| match e {
            DecideError::PacFailed(m) => DecideError::PacUnavailable(m),
            other => other,
        })?;
        put_back(sandbox);
        Ok(pac)
    }

    /// Loads the script from `source` and compiles it.
    ///
    /// # Errors
    /// [`DecideError::PacUnavailable`] naming the source.
    pub fn load(source: &PacSource, options: PacOptions) -> Result<Self, DecideError> {
        let script = source.load(
            options.max_size,
            options.fetch_timeout,
            options.resolver.as_ref(),
        )?;
        Self::new(script, options).map_err(|e| match e {
            DecideError::PacUnavailable(m) => {
                DecideError::PacUnavailable(format!("{}: {m}", source.describe()))
            }
            other => other,
        })
    }

    /// The options the script was loaded with.
    pub fn options(&self) -> &PacOptions {
        &self.shared.options
    }

    /// Calls `FindProxyForURL(url, host)` (or `FindProxyForURLEx`) and returns its string.
    ///
    /// # Errors
    /// [`DecideError::PacFailed`] when the call throws, runs out of time or memory, or returns
    /// something other than a string.
    pub fn find_proxy(&self, url: &str, host: &str) -> Result<String, DecideError> {
        let sandbox = match take(self.shared.id) {
            Some(s) => s,
            None => Sandbox::build(&self.shared)?,
        };
        let result = sandbox.call(&self.shared.options, url, host);
        // A failed evaluation may leave the script's globals half-updated or the heap at its
        // limit: the sandbox is dropped and the next call compiles afresh.
        if result.is_ok() {
            put_back(sandbox);
        }
        result
    }

    /// Evaluates the script for a connection and parses the answer.
    ///
    /// # Errors
    /// As [`Pac::find_proxy`], and [`DecideError::BadResult`] for an answer that is not a
    /// proxy list.
    pub fn evaluate(&self, target: &Target) -> Result<Plan, DecideError> {
        let (url, host) = pac_arguments(target);
        parse_result(&self.find_proxy(&url, &host)?)
    }
}

fn take(id: u64) -> Option<Sandbox> {
    SANDBOXES.with(|cell| {
        let mut list = cell.borrow_mut();
        let i = list.iter().position(|s| s.id == id)?;
        Some(list.remove(i))
    })
}

fn put_back(sandbox: Sandbox) {
    SANDBOXES.with(|cell| {
        let mut list = cell.borrow_mut();
        if list.len() >= SANDBOXES_PER_THREAD {
            list.remove(0);
        }
        list.push(sandbox);
    });
}

/// `now + limit`, saturating (a huge configured limit must not panic).
fn deadline_after(limit: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(limit)
        .unwrap_or_else(|| now + Duration::from_secs(86_400))
}

/// Per-evaluation state the native helpers read.
struct Budget {
    deadline: Cell<Instant>,
    lookups: Cell<u32>,
    alerts: Cell<u32>,
}

impl Budget {
    fn reset(&self, limit: Duration) {
        self.deadline.set(deadline_after(limit));
        self.lookups.set(0);
        self.alerts.set(0);
    }

    fn expired(&self) -> bool {
        Instant::now() >= self.deadline.get()
    }
}

/// One compiled script in its own QuickJS runtime. Field order matters: the context is dropped
/// before the runtime.
struct Sandbox {
    id: u64,
    context: Context,
    _runtime: Runtime,
    budget: Rc<Budget>,
}

impl Sandbox {
    fn build(shared: &Shared) -> Result<Self, DecideError> {
        let options = &shared.options;
        let fail = |what: &str, e: rquickjs::Error| {
            DecideError::PacFailed(format!("cannot start the PAC sandbox ({what}): {e}"))
        };
        let runtime = Runtime::new().map_err(|e| fail("runtime", e))?;
        runtime.set_memory_limit(options.memory_limit);
        runtime.set_max_stack_size(STACK_LIMIT);
        let load_limit = options.time_limit.saturating_mul(10);
        let budget = Rc::new(Budget {
            deadline: Cell::new(deadline_after(load_limit)),
            lookups: Cell::new(0),
            alerts: Cell::new(0),
        });
        let watch = Rc::clone(&budget);
        runtime.set_interrupt_handler(Some(Box::new(move || watch.expired())));
        // Only pure built-ins; no Promise (nothing would run its jobs), no Proxy, no typed arrays,
        // WeakRef or Performance (no PAC needs them, and each is more surface).
        let context = Context::builder()
            .with::<intrinsic::Date>()
            .with::<intrinsic::Eval>()
            .with::<intrinsic::RegExpCompiler>()
            .with::<intrinsic::RegExp>()
            .with::<intrinsic::Json>()
            .with::<intrinsic::MapSet>()
            .build(&runtime)
            .map_err(|e| fail("context", e))?;
        let sandbox = Self {
            id: shared.id,
            context,
            _runtime: runtime,
            budget,
        };
        sandbox.context.with(|ctx| -> Result<(), DecideError> {
            install_helpers(&ctx, options, &sandbox.budget).map_err(|e| fail("helpers", e))?;
            ctx.eval::<(), _>(shared.script.as_bytes())
                .catch(&ctx)
                .map_err(|e| {
                    DecideError::PacFailed(describe_failure(
                        &e,
                        &sandbox.budget,
                        load_limit,
                        options.memory_limit,
                        "loading the script",
                    ))
                })?;
            let f: Value = ctx
                .globals()
                .get("FindProxyForURL")
                .map_err(|e| fail("lookup", e))?;
            if !f.is_function() {
                return Err(DecideError::PacFailed(
                    "the script defines no FindProxyForURL(url, host) function".to_owned(),
                ));
            }
            Ok(())
        })?;
        Ok(sandbox)
    }

    fn call(&self, options: &PacOptions, url: &str, host: &str) -> Result<String, DecideError> {
        self.budget.reset(options.time_limit);
        self.context.with(|ctx| {
            let globals = ctx.globals();
            let function = |name: &str| globals.get::<_, Option<Function>>(name).ok().flatten();
            let Some(f) = function("FindProxyForURLEx").or_else(|| function("FindProxyForURL"))
            else {
                return Err(DecideError::PacFailed(
                    "FindProxyForURL is no longer a function".to_owned(),
                ));
            };
            let value: Value = f.call((url, host)).catch(&ctx).map_err(|e| {
                DecideError::PacFailed(describe_failure(
                    &e,
                    &self.budget,
                    options.time_limit,
                    options.memory_limit,
                    "FindProxyForURL",
                ))
            })?;
            match value.as_string() {
                Some(s) => s.to_string().map_err(|e| {
                    DecideError::PacFailed(format!("FindProxyForURL returned a bad string: {e}"))
                }),
                None => Err(DecideError::PacFailed(format!(
                    "FindProxyForURL returned {}, not a string; return e.g. \"DIRECT\"",
                    value.type_name()
                ))),
            }
        })
    }
}

fn describe_failure(
    e: &CaughtError<'_>,
    budget: &Budget,
    time_limit: Duration,
    memory_limit: usize,
    what: &str,
) -> String {
    let message = match e {
        CaughtError::Exception(ex) => ex.message().unwrap_or_else(|| "exception".to_owned()),
        CaughtError::Value(v) => v
            .clone()
            .get::<Coerced<String>>()
            .map_or_else(|_| "a value".to_owned(), |s| s.0),
        CaughtError::Error(err) => err.to_string(),
    };
    if budget.expired() {
        format!(
            "{what} ran longer than the {time_limit:?} limit (an endless loop or a slow regular expression?)"
        )
    } else if message.contains("out of memory") {
        format!("{what} ran out of memory (limit {memory_limit} bytes)")
    } else {
        format!("{what} threw: {}", result::shorten(&message))
    }
}

/// A helper's answer that may be `null` or `false` instead of a string.
enum Answer {
    Text(String),
    Null,
    False,
}

impl<'js> IntoJs<'js> for Answer {
    fn into_js(self, ctx: &Ctx<'js>) -> rquickjs::Result<Value<'js>> {
        match self {
            Self::Text(s) => s.into_js(ctx),
            Self::Null => Ok(Value::new_null(ctx.clone())),
            Self::False => Ok(Value::new_bool(ctx.clone(), false)),
        }
    }
}

fn arg(args: &Rest<Coerced<String>>, i: usize) -> &str {
    args.0.get(i).map_or("undefined", |c| c.0.as_str())
}

fn strings(args: Rest<Coerced<String>>) -> Vec<String> {
    args.0.into_iter().map(|c| c.0).collect()
}

/// Resolves for a helper within the evaluation's budget.
fn lookup(
    resolver: &dyn Resolver,
    budget: &Budget,
    dns_timeout: Duration,
    host: &str,
) -> Vec<IpAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return vec![ip];
    }
    if budget.lookups.get() >= MAX_LOOKUPS {
        return Vec::new();
    }
    budget.lookups.set(budget.lookups.get() + 1);
    let left = budget
        .deadline
        .get()
        .saturating_duration_since(Instant::now());
    resolver.resolve(host, dns_timeout.min(left))
}

fn first_v4(ips: &[IpAddr]) -> Option<IpAddr> {
    ips.iter().copied().find(IpAddr::is_ipv4)
}

#[allow(clippy::too_many_lines)]
fn install_helpers(
    ctx: &Ctx<'_>,
    options: &PacOptions,
    budget: &Rc<Budget>,
) -> rquickjs::Result<()> {
    let g = ctx.globals();
    g.set(
        "isPlainHostName",
        Function::new(ctx.clone(), |a: Rest<Coerced<String>>| {
            helpers::is_plain_host_name(arg(&a, 0))
        })?,
    )?;
    g.set(
        "dnsDomainIs",
        Function::new(ctx.clone(), |a: Rest<Coerced<String>>| {
            helpers::dns_domain_is(arg(&a, 0), arg(&a, 1))
        })?,
    )?;
    g.set(
        "localHostOrDomainIs",
        Function::new(ctx.clone(), |a: Rest<Coerced<String>>| {
            helpers::local_host_or_domain_is(arg(&a, 0), arg(&a, 1))
        })?,
    )?;
    g.set(
        "dnsDomainLevels",
        Function::new(ctx.clone(), |a: Rest<Coerced<String>>| {
            u32::try_from(helpers::dns_domain_levels(arg(&a, 0))).unwrap_or(u32::MAX)
        })?,
    )?;
    g.set(
        "shExpMatch",
        Function::new(ctx.clone(), |a: Rest<Coerced<String>>| {
            helpers::sh_exp_match(arg(&a, 0), arg(&a, 1))
        })?,
    )?;
    g.set(
        "sortIpAddressList",
        Function::new(ctx.clone(), |a: Rest<Coerced<String>>| {
            helpers::sort_ip_address_list(arg(&a, 0)).map_or(Answer::False, Answer::Text)
        })?,
    )?;
    g.set("getClientVersion", Function::new(ctx.clone(), || "1.0")?)?;

    let clock = Arc::clone(&options.clock);
    g.set(
        "weekdayRange",
        Function::new(ctx.clone(), move |a: Rest<Coerced<String>>| {
            helpers::weekday_range(&strings(a), &clock.now())
        })?,
    )?;
    let clock = Arc::clone(&options.clock);
    g.set(
        "dateRange",
        Function::new(ctx.clone(), move |a: Rest<Coerced<String>>| {
            helpers::date_range(&strings(a), &clock.now())
        })?,
    )?;
    let clock = Arc::clone(&options.clock);
    g.set(
        "timeRange",
        Function::new(ctx.clone(), move |a: Rest<Coerced<String>>| {
            helpers::time_range(&strings(a), &clock.now())
        })?,
    )?;

    let my_ip = options.my_ip;
    g.set(
        "myIpAddress",
        Function::new(ctx.clone(), move || match my_ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(_) => Ipv4Addr::LOCALHOST.to_string(),
        })?,
    )?;
    g.set(
        "myIpAddressEx",
        Function::new(ctx.clone(), move || my_ip.to_string())?,
    )?;

    let b = Rc::clone(budget);
    g.set(
        "alert",
        Function::new(ctx.clone(), move |a: Rest<Coerced<String>>| {
            let n = b.alerts.get();
            b.alerts.set(n.saturating_add(1));
            if n < MAX_ALERTS {
                let line: String = arg(&a, 0).chars().take(MAX_ALERT_CHARS).collect();
                tracing::info!(target: "stockade_egress::pac", "pac alert: {line}");
            } else if n == MAX_ALERTS {
                tracing::info!(
                    target: "stockade_egress::pac",
                    "pac alert: further alerts of this evaluation dropped"
                );
            }
        })?,
    )?;

    // The DNS helpers share the resolver, the budget and the lookup timeout.
    let dns = Rc::new((
        Arc::clone(&options.resolver),
        Rc::clone(budget),
        options.dns_timeout,
    ));
    let d = Rc::clone(&dns);
    g.set(
        "dnsResolve",
        Function::new(ctx.clone(), move |a: Rest<Coerced<String>>| {
            // `null` for a name that does not resolve, as the PAC definition says.
            first_v4(&lookup(d.0.as_ref(), &d.1, d.2, arg(&a, 0)))
                .map_or(Answer::Null, |ip| Answer::Text(ip.to_string()))
        })?,
    )?;
    let d = Rc::clone(&dns);
    g.set(
        "isResolvable",
        Function::new(ctx.clone(), move |a: Rest<Coerced<String>>| {
            first_v4(&lookup(d.0.as_ref(), &d.1, d.2, arg(&a, 0))).is_some()
        })?,
    )?;
    let d = Rc::clone(&dns);
    g.set(
        "isInNet",
        Function::new(ctx.clone(), move |a: Rest<Coerced<String>>| {
            first_v4(&lookup(d.0.as_ref(), &d.1, d.2, arg(&a, 0)))
                .is_some_and(|ip| helpers::ipv4_in_net(ip, arg(&a, 1), arg(&a, 2)))
        })?,
    )?;
    let d = Rc::clone(&dns);
    g.set(
        "dnsResolveEx",
        Function::new(ctx.clone(), move |a: Rest<Coerced<String>>| {
            lookup(d.0.as_ref(), &d.1, d.2, arg(&a, 0))
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(";")
        })?,
    )?;
    let d = Rc::clone(&dns);
    g.set(
        "isResolvableEx",
        Function::new(ctx.clone(), move |a: Rest<Coerced<String>>| {
            !lookup(d.0.as_ref(), &d.1, d.2, arg(&a, 0)).is_empty()
        })?,
    )?;
    let d = dns;
    g.set(
        "isInNetEx",
        Function::new(ctx.clone(), move |a: Rest<Coerced<String>>| {
            lookup(d.0.as_ref(), &d.1, d.2, arg(&a, 0))
                .into_iter()
                .any(|ip| helpers::in_prefix(ip, arg(&a, 1)))
        })?,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_resolver_is_bounded() {
        let r = SystemResolver::new(2);
        // /etc/hosts answers without the network.
        assert!(r
            .resolve("localhost", Duration::from_secs(2))
            .iter()
            .any(IpAddr::is_loopback));
        assert_eq!(
            r.resolve("10.1.2.3", Duration::ZERO),
            vec![IpAddr::from([10, 1, 2, 3])]
        );
        for junk in ["", "a b", "a..b", "x%eth0", &"a".repeat(300)] {
            assert!(
                r.resolve(junk, Duration::from_secs(1)).is_empty(),
                "{junk:?}"
            );
        }
        assert!(r.resolve("localhost", Duration::ZERO).is_empty());
        // Nothing stays in flight.
        assert_eq!(r.in_flight.load(Ordering::SeqCst), 0);
        let full = SystemResolver::new(0);
        assert!(full.resolve("localhost", Duration::from_secs(1)).is_empty());
        assert_eq!(full.in_flight.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_sandbox_is_small() {
        // Each evaluating thread keeps up to four sandboxes; the docs say about 85 KiB each.
        let shared = Shared {
            id: 0,
            script: "function FindProxyForURL(u, h) { return shExpMatch(h, '*.a') ? 'DIRECT' : 'PROXY p:1'; }"
                .to_owned(),
            options: PacOptions::default(),
        };
        let sandbox = Sandbox::build(&shared).unwrap();
        assert_eq!(
            sandbox
                .call(&shared.options, "https://x.a:443/", "x.a")
                .unwrap(),
            "DIRECT"
        );
        let used = sandbox._runtime.memory_usage().malloc_size;
        assert!(used < 512 * 1024, "{used} bytes");
    }

    #[test]
    fn static_resolver() {
        let r = StaticResolver::new([("A.example", IpAddr::from([192, 0, 2, 1]))]);
        assert_eq!(
            r.resolve("a.example", Duration::ZERO),
            vec![IpAddr::from([192, 0, 2, 1])]
        );
        assert!(r.resolve("b.example", Duration::ZERO).is_empty());
    }
}
