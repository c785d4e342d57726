//! PAC evaluation through the real sandbox: the helpers as scripts see them, the limits, result
//! handling, loading (embedded, file, HTTP from a server on 127.0.0.1) and the decider's cache.
//! Network traffic goes only to 127.0.0.1; every loop is bounded.
// Test helpers outside `#[test]` functions unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use stockade_egress::decide::{is_configured, Decider, DeciderOptions, SystemProxy};
use stockade_egress::pac::{
    pac_arguments, FixedClock, Now, Pac, PacOptions, PacSource, Resolver, StaticResolver,
};
use stockade_egress::{Decide, DecideError, Hop, Scheme, Target};
use stockade_policy::{ContainersProxy, ProxyMode, TransparentPorts};

fn target(host: Option<&str>, ip: &str, port: u16, scheme: Scheme) -> Target {
    Target {
        ip: ip.parse().unwrap(),
        port,
        host: host.map(str::to_owned),
        scheme,
    }
}

fn https(host: &str) -> Target {
    target(Some(host), "192.0.2.10", 443, Scheme::Https)
}

/// Wednesday 2025-03-12 14:30:15 local, 13:30:15 UTC.
fn clock() -> Arc<FixedClock> {
    let local = NaiveDate::from_ymd_opt(2025, 3, 12)
        .unwrap()
        .and_hms_opt(14, 30, 15)
        .unwrap();
    Arc::new(FixedClock(Now {
        local,
        utc: local - chrono::Duration::hours(1),
    }))
}

fn options() -> PacOptions {
    PacOptions {
        resolver: Arc::new(StaticResolver::new([
            ("intranet.corp", "10.1.2.3".parse().unwrap()),
            ("dual.example", "192.0.2.5".parse().unwrap()),
            ("dual.example", "2001:db8::5".parse().unwrap()),
            ("v6only.example", "2001:db8::6".parse().unwrap()),
        ])),
        clock: clock(),
        my_ip: "172.17.0.1".parse().unwrap(),
        ..PacOptions::default()
    }
}

/// Evaluates `String(expr)` inside `FindProxyForURL`.
fn js(expr: &str) -> String {
    let script = format!("function FindProxyForURL(url, host) {{ return String({expr}); }}");
    Pac::new(script, options())
        .unwrap()
        .find_proxy("https://x.example:443/", "x.example")
        .unwrap()
}

#[test]
fn helpers_as_scripts_see_them() {
    let cases = [
        ("isPlainHostName('www')", "true"),
        ("isPlainHostName('www.example.com')", "false"),
        ("dnsDomainIs('www.example.com', '.example.com')", "true"),
        ("dnsDomainIs('www', '.example.com')", "false"),
        ("localHostOrDomainIs('www', 'www.example.com')", "true"),
        (
            "localHostOrDomainIs('www.example.org', 'www.example.com')",
            "false",
        ),
        ("dnsDomainLevels('www.example.com')", "2"),
        ("dnsDomainLevels('www')", "0"),
        (
            "shExpMatch('http://a.example.com/x', 'http://*.example.com/*')",
            "true",
        ),
        ("shExpMatch('a.example.org', '*.example.com')", "false"),
        ("shExpMatch('ab', 'a?')", "true"),
        ("isResolvable('intranet.corp')", "true"),
        ("isResolvable('nowhere.invalid')", "false"),
        ("isResolvable('v6only.example')", "false"),
        ("dnsResolve('intranet.corp')", "10.1.2.3"),
        ("dnsResolve('dual.example')", "192.0.2.5"),
        ("dnsResolve('nowhere.invalid')", "null"),
        ("dnsResolve('10.9.9.9')", "10.9.9.9"),
        ("isInNet('intranet.corp', '10.0.0.0', '255.0.0.0')", "true"),
        (
            "isInNet('intranet.corp', '10.2.0.0', '255.255.0.0')",
            "false",
        ),
        ("isInNet('10.1.2.3', '10.1.2.0', '255.255.255.0')", "true"),
        ("isInNet('nowhere.invalid', '0.0.0.0', '0.0.0.0')", "false"),
        ("myIpAddress()", "172.17.0.1"),
        ("myIpAddressEx()", "172.17.0.1"),
        ("dnsResolveEx('dual.example')", "192.0.2.5;2001:db8::5"),
        ("dnsResolveEx('nowhere.invalid')", ""),
        ("isResolvableEx('v6only.example')", "true"),
        ("isInNetEx('v6only.example', '2001:db8::/32')", "true"),
        ("isInNetEx('intranet.corp', '10.0.0.0/8')", "true"),
        ("isInNetEx('intranet.corp', '11.0.0.0/8')", "false"),
        (
            "sortIpAddressList('10.0.0.2;10.0.0.1;::1')",
            "::1;10.0.0.1;10.0.0.2",
        ),
        ("sortIpAddressList('junk')", "false"),
        ("getClientVersion()", "1.0"),
        ("weekdayRange('MON', 'FRI')", "true"),
        ("weekdayRange('SAT', 'SUN')", "false"),
        ("weekdayRange('WED', 'GMT')", "true"),
        ("dateRange('MAR')", "true"),
        ("dateRange(1, 15)", "true"),
        ("dateRange(2025)", "true"),
        ("dateRange('APR', 'OCT')", "false"),
        ("dateRange(12, 'MAR', 2025, 12, 'MAR', 2025)", "true"),
        ("timeRange(14)", "true"),
        ("timeRange(9, 17)", "true"),
        ("timeRange(13, 'GMT')", "true"),
        ("timeRange(14, 31, 15, 0)", "false"),
        ("timeRange(22, 6)", "false"),
        ("alert('hello from the PAC')", "undefined"),
        // Missing arguments behave as browsers do: no exception, just false.
        ("dnsDomainIs('a')", "false"),
        ("weekdayRange()", "false"),
    ];
    for (expr, want) in cases {
        assert_eq!(js(expr), want, "{expr}");
    }
}

#[test]
fn nothing_but_the_helpers() {
    let kinds = js(
        "[typeof require, typeof fetch, typeof os, typeof std, typeof XMLHttpRequest, \
          typeof setTimeout, typeof Promise, typeof process, typeof print, typeof console].join()",
    );
    assert_eq!(
        kinds,
        "undefined,undefined,undefined,undefined,undefined,undefined,undefined,undefined,undefined,undefined"
    );
    // The ordinary built-ins a PAC file uses are there.
    assert_eq!(
        js("typeof Date + typeof RegExp + typeof JSON"),
        "functionfunctionobject"
    );
    assert_eq!(js("/^a.c$/.test('abc')"), "true");
}

#[test]
fn url_and_host_arguments() {
    let pac = Pac::new(
        "function FindProxyForURL(url, host) { return url + ' ' + host; }",
        options(),
    )
    .unwrap();
    let run = |t: Target| {
        let (url, host) = pac_arguments(&t);
        pac.find_proxy(&url, &host).unwrap()
    };
    assert_eq!(
        run(target(Some("example.com"), "192.0.2.1", 443, Scheme::Https)),
        "https://example.com:443/ example.com"
    );
    assert_eq!(
        run(target(Some("example.com"), "192.0.2.1", 80, Scheme::Http)),
        "http://example.com:80/ example.com"
    );
    assert_eq!(
        run(target(Some("example.com"), "192.0.2.1", 8080, Scheme::Http)),
        "http://example.com:8080/ example.com"
    );
    assert_eq!(
        run(target(None, "192.0.2.1", 5432, Scheme::Other)),
        "http://192.0.2.1:5432/ 192.0.2.1"
    );
    assert_eq!(
        run(target(None, "192.0.2.1", 443, Scheme::Other)),
        "https://192.0.2.1:443/ 192.0.2.1"
    );
    assert_eq!(
        run(target(None, "2001:db8::1", 22, Scheme::Other)),
        "http://[2001:db8::1]:22/ 2001:db8::1"
    );
}

#[test]
fn results_are_parsed() {
    let pac = Pac::new(
        r#"function FindProxyForURL(url, host) {
            if (host == "direct.example") return "DIRECT";
            if (host == "list.example") return "PROXY a.corp:3128; SOCKS5 s.corp:1080; DIRECT";
            if (host == "reject.example") return "PROXY reject.docker.internal:1234";
            if (host == "https-proxy.example") return "HTTPS secure.corp:443";
            if (host == "empty.example") return "";
            return "I am not a proxy list";
        }"#,
        options(),
    )
    .unwrap();
    assert_eq!(
        pac.evaluate(&https("direct.example")).unwrap().hops,
        vec![Hop::Direct]
    );
    assert_eq!(
        pac.evaluate(&https("list.example")).unwrap().hops,
        vec![
            Hop::Proxy {
                host: "a.corp".into(),
                port: 3128
            },
            Hop::Socks5 {
                host: "s.corp".into(),
                port: 1080
            },
            Hop::Direct
        ]
    );
    let plan = pac.evaluate(&https("reject.example")).unwrap();
    assert!(plan.hops.is_empty());
    assert_eq!(plan.reason, "pac: reject");
    let plan = pac.evaluate(&https("https-proxy.example")).unwrap();
    assert!(
        plan.hops.is_empty(),
        "never DIRECT in place of an unsupported proxy"
    );
    assert!(matches!(
        pac.evaluate(&https("empty.example")),
        Err(DecideError::BadResult(_))
    ));
    assert!(matches!(
        pac.evaluate(&https("other.example")),
        Err(DecideError::BadResult(_))
    ));
}

fn failure(script: &str, opts: PacOptions) -> String {
    let pac = Pac::new(script, opts).unwrap();
    match pac.find_proxy("https://x.example:443/", "x.example") {
        Err(DecideError::PacFailed(m)) => m,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn endless_loop_is_stopped_at_the_time_limit() {
    let start = Instant::now();
    let m = failure(
        "function FindProxyForURL(u, h) { while (true) {} }",
        options(),
    );
    assert!(m.contains("longer than the 100ms limit"), "{m}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn catastrophic_regex_is_stopped() {
    let start = Instant::now();
    let m = failure(
        r#"function FindProxyForURL(u, h) {
            return /^(a+)+$/.test("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!") ? "DIRECT" : "DIRECT";
        }"#,
        options(),
    );
    assert!(m.contains("longer than"), "{m}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn memory_bomb_is_stopped() {
    let opts = PacOptions {
        time_limit: Duration::from_secs(5),
        memory_limit: 8 * 1024 * 1024,
        ..options()
    };
    let m = failure(
        r#"function FindProxyForURL(u, h) {
            var keep = [];
            for (var i = 0; i < 100000; i++) keep.push(new Array(100000).join("x") + i);
            return "DIRECT";
        }"#,
        opts,
    );
    assert!(m.contains("out of memory"), "{m}");
}

#[test]
fn deep_recursion_is_an_error_not_a_crash() {
    let m = failure(
        "function f(n) { return f(n + 1) + 1; } function FindProxyForURL(u, h) { return f(0); }",
        options(),
    );
    assert!(m.contains("threw"), "{m}");
}

#[test]
fn throw_and_non_strings_fail() {
    let m = failure(
        "function FindProxyForURL(u, h) { throw new Error('boom'); }",
        options(),
    );
    assert_eq!(m, "FindProxyForURL threw: boom");
    let m = failure(
        "function FindProxyForURL(u, h) { throw 'plain'; }",
        options(),
    );
    assert_eq!(m, "FindProxyForURL threw: plain");
    for (value, kind) in [
        ("42", "int"),
        ("null", "null"),
        ("undefined", "undefined"),
        ("{}", "object"),
    ] {
        let m = failure(
            &format!("function FindProxyForURL(u, h) {{ return {value}; }}"),
            options(),
        );
        assert!(m.contains(&format!("returned {kind}")), "{value}: {m}");
    }
}

#[test]
fn broken_scripts_do_not_load() {
    for (script, want) in [
        ("function FindProxyForURL(u, h) { return 'DIRECT'", "threw"),
        ("var x = 1;", "no FindProxyForURL"),
        ("var FindProxyForURL = 'DIRECT';", "no FindProxyForURL"),
        ("throw new Error('at load');", "at load"),
        ("while (true) {}", "longer than"),
    ] {
        match Pac::new(script, options()) {
            Err(DecideError::PacUnavailable(m)) => assert!(m.contains(want), "{script}: {m}"),
            other => panic!("{script}: {other:?}"),
        }
    }
    let opts = PacOptions {
        max_size: 10,
        ..options()
    };
    assert!(matches!(
        Pac::new("function FindProxyForURL(u, h) { return 'DIRECT'; }", opts),
        Err(DecideError::PacUnavailable(_))
    ));
}

#[test]
fn a_failure_leaves_no_state_behind() {
    let pac = Pac::new(
        r#"var calls = 0;
        function FindProxyForURL(u, host) {
            calls++;
            if (host == "bad.example") { while (true) {} }
            return "PROXY p" + calls + ":1";
        }"#,
        options(),
    )
    .unwrap();
    assert_eq!(pac.find_proxy("u", "a.example").unwrap(), "PROXY p1:1");
    assert_eq!(pac.find_proxy("u", "a.example").unwrap(), "PROXY p2:1");
    assert!(pac.find_proxy("u", "bad.example").is_err());
    // The sandbox was rebuilt from the script: the counter starts again.
    assert_eq!(pac.find_proxy("u", "a.example").unwrap(), "PROXY p1:1");
}

#[test]
fn find_proxy_for_url_ex_is_preferred() {
    let pac = Pac::new(
        "function FindProxyForURL(u, h) { return 'PROXY old:1'; }
         function FindProxyForURLEx(u, h) { return 'PROXY new:1'; }",
        options(),
    )
    .unwrap();
    assert_eq!(pac.find_proxy("u", "h").unwrap(), "PROXY new:1");
}

#[test]
fn evaluation_works_from_many_threads() {
    let pac = Pac::new(
        "function FindProxyForURL(u, h) { return 'PROXY ' + h + ':1'; }",
        options(),
    )
    .unwrap();
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let pac = pac.clone();
            std::thread::spawn(move || {
                for j in 0..20 {
                    let host = format!("h{i}-{j}");
                    assert_eq!(
                        pac.find_proxy("u", &host).unwrap(),
                        format!("PROXY {host}:1")
                    );
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

/// A resolver that takes as long as it is allowed and records the timeouts it was given.
#[derive(Default)]
struct Slow {
    calls: AtomicUsize,
    longest_ms: AtomicUsize,
    total_ms: AtomicUsize,
}

impl Resolver for Slow {
    fn resolve(&self, _host: &str, timeout: Duration) -> Vec<IpAddr> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let ms = usize::try_from(timeout.as_millis()).unwrap_or(usize::MAX);
        self.longest_ms.fetch_max(ms, Ordering::SeqCst);
        self.total_ms.fetch_add(ms, Ordering::SeqCst);
        std::thread::sleep(timeout);
        Vec::new()
    }
}

#[test]
fn slow_dns_cannot_stretch_the_time_limit() {
    let slow = Arc::new(Slow::default());
    let opts = PacOptions {
        resolver: slow.clone(),
        dns_timeout: Duration::from_millis(30),
        ..options()
    };
    let start = Instant::now();
    let m = failure(
        "function FindProxyForURL(u, h) { for (var i = 0; i < 1000000; i++) dnsResolve('n' + i + '.example'); return 'DIRECT'; }",
        opts,
    );
    assert!(m.contains("longer than"), "{m}");
    // 16 lookups of 30 ms would be 480 ms: the lookups were given only the time left.
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "{:?}",
        start.elapsed()
    );
    assert!(slow.longest_ms.load(Ordering::SeqCst) <= 30);
    let total = slow.total_ms.load(Ordering::SeqCst);
    assert!(
        total <= 100,
        "lookups were given {total} ms in all, more than the time limit"
    );
    assert!(
        slow.calls.load(Ordering::SeqCst) <= 16,
        "lookups per evaluation are capped"
    );
}

#[test]
fn alerts_are_bounded() {
    let pac = Pac::new(
        "function FindProxyForURL(u, h) { for (var i = 0; i < 10000; i++) alert('x' + i); return 'DIRECT'; }",
        options(),
    )
    .unwrap();
    assert_eq!(pac.find_proxy("u", "h").unwrap(), "DIRECT");
}

// ---- the decider ----

fn containers_proxy() -> ContainersProxy {
    ContainersProxy {
        mode: ProxyMode::Manual,
        http: None,
        https: None,
        exclude: Vec::new(),
        pac: None,
        embedded_pac: None,
        transparent_ports: None,
    }
}

fn decider_options() -> DeciderOptions {
    DeciderOptions {
        pac: options(),
        ..DeciderOptions::default()
    }
}

#[test]
fn not_configured_means_no_decider() {
    let cp = ContainersProxy {
        mode: ProxyMode::System,
        ..containers_proxy()
    };
    assert!(!is_configured(&cp));
    assert!(Decider::from_policy(&cp, &SystemProxy::default(), decider_options()).is_none());
    let cp = ContainersProxy {
        transparent_ports: Some(TransparentPorts::All),
        ..cp
    };
    assert!(is_configured(&cp));
    let d = Decider::from_policy(&cp, &SystemProxy::default(), decider_options()).unwrap();
    assert_eq!(
        d.decide(&https("a.example")).unwrap().hops,
        vec![Hop::Direct]
    );
}

#[test]
fn precedence_embedded_then_pac_then_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("proxy.pac");
    std::fs::write(
        &file,
        "function FindProxyForURL(u, h) { return 'PROXY file:1'; }",
    )
    .unwrap();
    let cp = ContainersProxy {
        http: Some("http://fixed:1".into()),
        https: Some("http://fixed:1".into()),
        pac: Some(file.display().to_string()),
        embedded_pac: Some("function FindProxyForURL(u, h) { return 'PROXY embedded:1'; }".into()),
        ..containers_proxy()
    };
    let hop = |cp: &ContainersProxy| {
        let d = Decider::from_policy(cp, &SystemProxy::default(), decider_options()).unwrap();
        d.decide(&https("a.example")).unwrap().hops
    };
    assert_eq!(
        hop(&cp),
        vec![Hop::Proxy {
            host: "embedded".into(),
            port: 1
        }]
    );
    let cp = ContainersProxy {
        embedded_pac: None,
        ..cp
    };
    assert_eq!(
        hop(&cp),
        vec![Hop::Proxy {
            host: "file".into(),
            port: 1
        }]
    );
    let cp = ContainersProxy {
        pac: Some(format!("file://{}", file.display())),
        ..cp
    };
    assert_eq!(
        hop(&cp),
        vec![Hop::Proxy {
            host: "file".into(),
            port: 1
        }]
    );
    let cp = ContainersProxy { pac: None, ..cp };
    assert_eq!(
        hop(&cp),
        vec![Hop::Proxy {
            host: "fixed".into(),
            port: 1
        }]
    );
}

#[test]
fn system_mode_uses_the_given_environment() {
    let cp = ContainersProxy {
        mode: ProxyMode::System,
        embedded_pac: Some("function FindProxyForURL(u, h) { return 'PROXY ignored:1'; }".into()),
        ..containers_proxy()
    };
    let system = SystemProxy {
        http: Some("http://sys:3128".into()),
        https: None,
        no_proxy: Some("localhost,.internal.example".into()),
    };
    let d = Decider::from_policy(&cp, &system, decider_options()).unwrap();
    let sys = vec![Hop::Proxy {
        host: "sys".into(),
        port: 3128,
    }];
    assert_eq!(d.decide(&https("a.example")).unwrap().hops, sys);
    assert_eq!(
        d.decide(&https("git.internal.example")).unwrap().hops,
        vec![Hop::Direct]
    );
    assert!(d.describe().starts_with("system:"), "{}", d.describe());
}

#[test]
fn unusable_settings_refuse_everything() {
    for cp in [
        ContainersProxy {
            pac: Some("https://pac.example/proxy.pac".into()),
            ..containers_proxy()
        },
        ContainersProxy {
            pac: Some("relative.pac".into()),
            ..containers_proxy()
        },
        ContainersProxy {
            pac: Some("/nonexistent/proxy.pac".into()),
            ..containers_proxy()
        },
        ContainersProxy {
            https: Some("https://tls-proxy:443".into()),
            ..containers_proxy()
        },
        ContainersProxy {
            embedded_pac: Some("function (".into()),
            ..containers_proxy()
        },
    ] {
        let d = Decider::from_policy(&cp, &SystemProxy::default(), decider_options()).unwrap();
        let err = d
            .load_error()
            .unwrap_or_else(|| panic!("{cp:?} should not load"));
        assert!(matches!(err, DecideError::PacUnavailable(_)), "{err}");
        assert_eq!(d.decide(&https("a.example")).unwrap_err(), err);
    }
}

/// A resolver that counts lookups, to count evaluations of a script calling `dnsResolve(host)`.
#[derive(Default)]
struct Counting(AtomicUsize);

impl Resolver for Counting {
    fn resolve(&self, _host: &str, _timeout: Duration) -> Vec<IpAddr> {
        self.0.fetch_add(1, Ordering::SeqCst);
        vec!["10.0.0.1".parse().unwrap()]
    }
}

fn counting_decider(ttl: Duration) -> (Decider, Arc<Counting>) {
    let counter = Arc::new(Counting::default());
    let opts = DeciderOptions {
        pac: PacOptions {
            resolver: counter.clone(),
            ..options()
        },
        cache_ttl: ttl,
        ..DeciderOptions::default()
    };
    let d = Decider::pac(
        PacSource::Embedded(
            "function FindProxyForURL(u, h) { dnsResolve(h); return 'PROXY p:1'; }".into(),
        ),
        opts,
    );
    (d, counter)
}

#[test]
fn answers_are_cached_per_scheme_host_and_port() {
    let (d, counter) = counting_decider(Duration::from_secs(60));
    let evaluations = || counter.0.load(Ordering::SeqCst);
    d.decide(&https("a.example")).unwrap();
    d.decide(&https("a.example")).unwrap();
    assert_eq!(evaluations(), 1);
    // Another address for the same name and port: the PAC cannot tell them apart.
    d.decide(&target(Some("a.example"), "192.0.2.99", 443, Scheme::Https))
        .unwrap();
    assert_eq!(evaluations(), 1);
    d.decide(&target(
        Some("a.example"),
        "192.0.2.10",
        8443,
        Scheme::Https,
    ))
    .unwrap();
    assert_eq!(evaluations(), 2);
    d.decide(&target(Some("a.example"), "192.0.2.10", 443, Scheme::Http))
        .unwrap();
    assert_eq!(evaluations(), 3);
    d.decide(&https("b.example")).unwrap();
    assert_eq!(evaluations(), 4);
    d.refresh().unwrap();
    d.decide(&https("a.example")).unwrap();
    assert_eq!(evaluations(), 5, "a refresh empties the cache");

    let (d, counter) = counting_decider(Duration::ZERO);
    d.decide(&https("a.example")).unwrap();
    d.decide(&https("a.example")).unwrap();
    assert_eq!(
        counter.0.load(Ordering::SeqCst),
        2,
        "expired answers are evaluated again"
    );
}

#[test]
fn a_fixed_pac_file_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("proxy.pac");
    std::fs::write(&file, "function FindProxyForURL(u, h) { return ").unwrap();
    let opts = DeciderOptions {
        retry_interval: Duration::ZERO,
        error_ttl: Duration::from_millis(20),
        ..decider_options()
    };
    let d = Decider::pac(PacSource::File(file.clone()), opts);
    assert!(d.load_error().is_some());
    assert!(d.decide(&https("a.example")).is_err());
    std::fs::write(&file, "function FindProxyForURL(u, h) { return 'DIRECT'; }").unwrap();
    std::thread::sleep(Duration::from_millis(40));
    assert_eq!(
        d.decide(&https("a.example")).unwrap().hops,
        vec![Hop::Direct]
    );
    assert!(d.load_error().is_none());
}

#[test]
fn evaluation_errors_are_cached_briefly() {
    let opts = DeciderOptions {
        error_ttl: Duration::from_secs(5),
        ..decider_options()
    };
    let d = Decider::pac(
        PacSource::Embedded("function FindProxyForURL(u, h) { while (true) {} }".into()),
        opts,
    );
    let start = Instant::now();
    for _ in 0..20 {
        assert!(matches!(
            d.decide(&https("a.example")),
            Err(DecideError::PacFailed(_))
        ));
    }
    // One evaluation ran into the 100 ms limit; the other 19 were answered from the cache.
    // (19 more evaluations would take 1.9 s.)
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "{:?}",
        start.elapsed()
    );
}

// ---- PAC over HTTP, from a server on 127.0.0.1 ----

/// Serves `answers` in order, one per connection, then stops. Returns the URL.
fn serve(answers: Vec<Vec<u8>>, delay: Duration) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for answer in answers {
            let Ok((mut conn, _)) = listener.accept() else {
                return;
            };
            conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.ends_with(b"\r\n\r\n") && request.len() < 16 * 1024 {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            std::thread::sleep(delay);
            let _ = conn.write_all(&answer);
        }
    });
    format!("http://{addr}/proxy.pac")
}

fn ok(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/x-ns-proxy-autoconfig\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[test]
fn pac_over_http() {
    let url = serve(
        vec![ok(
            "function FindProxyForURL(u, h) { return 'PROXY from-http:8080; DIRECT'; }",
        )],
        Duration::ZERO,
    );
    let cp = ContainersProxy {
        pac: Some(url),
        ..containers_proxy()
    };
    let d = Decider::from_policy(&cp, &SystemProxy::default(), decider_options()).unwrap();
    assert!(d.load_error().is_none(), "{:?}", d.load_error());
    assert_eq!(
        d.decide(&https("a.example")).unwrap().hops,
        vec![
            Hop::Proxy {
                host: "from-http".into(),
                port: 8080
            },
            Hop::Direct
        ]
    );
}

#[test]
fn pac_over_http_failures_are_fail_closed() {
    let body = "function FindProxyForURL(u, h) { return 'DIRECT'; }";
    let huge = format!("/* {} */ {body}", "x".repeat(2 * 1024 * 1024));
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
            "answered 404",
        ),
        (
            b"HTTP/1.1 302 Found\r\nLocation: http://elsewhere/p.pac\r\nContent-Length: 0\r\n\r\n"
                .to_vec(),
            "redirects are not followed",
        ),
        (ok(&huge), "larger than"),
        (
            format!("HTTP/1.1 200 OK\r\nContent-Length: 9999\r\n\r\n{body}").into_bytes(),
            "Content-Length",
        ),
        (b"SSH-2.0-OpenSSH\r\n".to_vec(), "not an HTTP answer"),
    ];
    for (answer, want) in cases {
        let url = serve(vec![answer], Duration::ZERO);
        let d = Decider::pac(PacSource::Http(url), decider_options());
        let err = d.load_error().expect("must not load");
        assert!(err.to_string().contains(want), "{want}: {err}");
        assert!(d.decide(&https("a.example")).is_err());
    }
}

#[test]
fn slow_pac_server_times_out() {
    let url = serve(
        vec![ok("function FindProxyForURL(u, h) { return 'DIRECT'; }")],
        Duration::from_secs(2),
    );
    let opts = DeciderOptions {
        pac: PacOptions {
            fetch_timeout: Duration::from_millis(300),
            ..options()
        },
        ..DeciderOptions::default()
    };
    let start = Instant::now();
    let d = Decider::pac(PacSource::Http(url), opts);
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "{:?}",
        start.elapsed()
    );
    let err = d.load_error().expect("must not load");
    assert!(err.to_string().contains("within"), "{err}");
}

#[test]
fn unreachable_pac_server_recovers_on_retry() {
    // Find a free port, then serve on it only after the first attempt failed.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/proxy.pac");
    let opts = DeciderOptions {
        retry_interval: Duration::ZERO,
        error_ttl: Duration::ZERO,
        ..decider_options()
    };
    let d = Decider::pac(PacSource::Http(url), opts);
    assert!(d.load_error().is_some());
    assert!(d.decide(&https("a.example")).is_err());
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    std::thread::spawn(move || {
        if let Ok((mut conn, _)) = listener.accept() {
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(&ok("function FindProxyForURL(u, h) { return 'DIRECT'; }"));
        }
    });
    assert_eq!(
        d.decide(&https("a.example")).unwrap().hops,
        vec![Hop::Direct]
    );
}

// ---- failures are reported once ----

/// A log sink for one test thread.
#[derive(Clone, Default)]
struct Capture(Arc<std::sync::RwLock<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn failures_are_logged_once_not_per_connection() {
    let capture = Capture::default();
    let sink = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let cp = ContainersProxy {
            pac: Some("/nonexistent/proxy.pac".into()),
            ..containers_proxy()
        };
        let opts = DeciderOptions {
            error_ttl: Duration::ZERO,
            ..decider_options()
        };
        let d = Decider::from_policy(&cp, &SystemProxy::default(), opts).unwrap();
        for i in 0..50 {
            assert!(d.decide(&https(&format!("h{i}.example"))).is_err());
        }
        let d = Decider::pac(
            PacSource::Embedded(
                "function FindProxyForURL(u, h) { throw new Error('broken'); }".into(),
            ),
            DeciderOptions {
                error_ttl: Duration::ZERO,
                ..decider_options()
            },
        );
        for i in 0..50 {
            assert!(d.decide(&https(&format!("h{i}.example"))).is_err());
        }
    });
    let log = String::from_utf8(capture.0.read().unwrap().clone()).unwrap();
    assert_eq!(
        log.matches("/nonexistent/proxy.pac: cannot open").count(),
        1,
        "{log}"
    );
    assert_eq!(log.matches("threw: broken").count(), 1, "{log}");
}
