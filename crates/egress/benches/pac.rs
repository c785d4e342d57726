//! Cost of a PAC decision, in the release profile: `cargo bench -p stockade-egress --bench pac`.
//! Measured separately: loading a script into a fresh sandbox (what the first connection on a
//! thread pays), one evaluation in a warm sandbox (a cache miss), and a decision answered from
//! the decider's cache (the common case).
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use stockade_egress::decide::{Decider, DeciderOptions};
use stockade_egress::pac::{Pac, PacOptions, PacSource, StaticResolver};
use stockade_egress::{Decide, Scheme, Target};

/// A typical corporate PAC file: a few exclusions, a network test, a proxy list.
const SCRIPT: &str = r#"
function FindProxyForURL(url, host) {
    if (isPlainHostName(host) || dnsDomainIs(host, ".corp.example") ||
        shExpMatch(host, "*.internal.example")) {
        return "DIRECT";
    }
    if (isInNet(host, "10.0.0.0", "255.0.0.0") || isInNet(host, "192.168.0.0", "255.255.0.0")) {
        return "DIRECT";
    }
    if (shExpMatch(url, "https://*.blocked.example/*")) {
        return "PROXY reject.docker.internal:1";
    }
    return "PROXY proxy1.corp.example:3128; PROXY proxy2.corp.example:3128";
}
"#;

fn time<T>(what: &str, runs: u32, mut f: impl FnMut() -> T) {
    for _ in 0..runs / 10 {
        std::hint::black_box(f());
    }
    let start = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(f());
    }
    println!(
        "{what}: {:?} per call ({runs} runs)",
        start.elapsed() / runs
    );
}

fn main() {
    let options = PacOptions {
        resolver: Arc::new(StaticResolver::new([(
            "www.example.org",
            "93.184.215.14".parse().unwrap(),
        )])),
        ..PacOptions::default()
    };
    let target = Target {
        ip: "93.184.215.14".parse().unwrap(),
        port: 443,
        host: Some("www.example.org".to_owned()),
        scheme: Scheme::Https,
    };

    time("load the script into a fresh sandbox", 500, || {
        Pac::new(SCRIPT, options.clone()).unwrap()
    });

    let pac = Pac::new(SCRIPT, options.clone()).unwrap();
    assert_eq!(pac.evaluate(&target).unwrap().hops.len(), 2);
    time("evaluate in a warm sandbox (cache miss)", 20_000, || {
        pac.evaluate(&target).unwrap()
    });

    let decider = Decider::pac(
        PacSource::Embedded(SCRIPT.to_owned()),
        DeciderOptions {
            pac: options.clone(),
            cache_ttl: Duration::from_secs(3600),
            ..DeciderOptions::default()
        },
    );
    decider.decide(&target).unwrap();
    time("decide from the cache", 200_000, || {
        decider.decide(&target).unwrap()
    });

    let uncached = Decider::pac(
        PacSource::Embedded(SCRIPT.to_owned()),
        DeciderOptions {
            pac: options,
            cache_ttl: Duration::ZERO,
            ..DeciderOptions::default()
        },
    );
    time(
        "decide without the cache (evaluate + parse)",
        20_000,
        || uncached.decide(&target).unwrap(),
    );
}
