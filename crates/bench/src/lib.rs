//! `stockade bench`: the engine socket, the gateway and any peer proxies measured side by side in
//! one run.
//!
//! Each metric is measured in rounds. Within a round every endpoint takes its turn, and the order
//! rotates from round to round, so machine noise hits all of them alike. Every measurement
//! checks what came back (byte counts, statuses), so a broken path cannot look fast. The report
//! gives each endpoint's figure, its ratio to the direct engine, and the target from the issue.
#![forbid(unsafe_code)]

mod client;
mod metrics;
mod pull;
mod report;

use std::path::PathBuf;

pub use client::{Demux, Endpoint};
pub use report::{Report, Row};

/// Flags of `stockade bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// The engine's own socket: unix:///path.
    #[arg(long)]
    pub direct: String,
    /// The Stockade gateway's socket: unix:///path.
    #[arg(long)]
    pub gateway: String,
    /// Another proxy to compare, NAME=unix:///path (repeatable).
    #[arg(long = "peer")]
    pub peers: Vec<String>,
    /// A local image with busybox (`sh`, `cat`, `yes`, `head`, `true`, `sleep`).
    #[arg(long, default_value = "stockade-test/busybox:latest")]
    pub image: String,
    /// The gateway's pid, to report its memory with 100 open streams.
    #[arg(long)]
    pub gateway_pid: Option<u32>,
    /// Small sizes and one round: a smoke run in well under a minute.
    #[arg(long)]
    pub quick: bool,
    /// Rounds per metric (default 3, or 1 with --quick).
    #[arg(long)]
    pub rounds: Option<usize>,
    /// Measure only these (comma-separated): ping, connect, rps, lifecycle, logs, exec, attach,
    /// archive, pull, rss, audit. Default: all (pull only with --pull-direct).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// The pull scenario: an image in a local registry by a loopback name (REGISTRY/REPO:TAG),
    /// which the direct engine pulls without any proxy.
    #[arg(long, requires = "pull_proxied")]
    pub pull_direct: Option<String>,
    /// The same image by a non-loopback address of the same registry, which the gateway and
    /// the peers pull: the engine fetches it through its egress filter.
    #[arg(long, requires = "pull_direct")]
    pub pull_proxied: Option<String>,
    /// The image ID every pull must end with (sha256:...); default: the first pull's.
    #[arg(long)]
    pub pull_id: Option<String>,
}

/// Why the bench could not run or a measurement was refused.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A flag is malformed.
    #[error("{flag} {value:?}: {reason}")]
    Usage {
        /// The flag.
        flag: &'static str,
        /// The value given.
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// An endpoint failed at the transport level.
    #[error("{endpoint}: {detail}")]
    Endpoint {
        /// The endpoint's name.
        endpoint: String,
        /// What happened.
        detail: String,
    },
    /// An endpoint answered something other than what the measurement needs.
    #[error("{endpoint}: {request} answered unexpectedly: {detail}")]
    Unexpected {
        /// The endpoint's name.
        endpoint: String,
        /// The request.
        request: String,
        /// The answer.
        detail: String,
    },
    /// The bytes that came back do not match what was sent or expected.
    #[error("{endpoint}: {metric} returned {got} bytes instead of {expected}")]
    WrongBytes {
        /// The endpoint's name.
        endpoint: String,
        /// The metric.
        metric: &'static str,
        /// Bytes received.
        got: u64,
        /// Bytes expected.
        expected: u64,
    },
}

/// Sizes for one run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sizes {
    pub rounds: usize,
    pub pings: usize,
    pub load_seconds: f64,
    pub lifecycles: usize,
    pub logs_bytes: u64,
    pub stream_bytes: u64,
    pub streams_for_rss: usize,
    pub audit_records: usize,
    pub pull_rounds: usize,
}

fn socket(flag: &'static str, value: &str) -> Result<PathBuf, BenchError> {
    value
        .strip_prefix("unix://")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .ok_or(BenchError::Usage {
            flag,
            value: value.to_owned(),
            reason: "must be unix:///absolute/path",
        })
}

/// Runs every metric and returns the report.
///
/// # Errors
/// [`BenchError`] when an endpoint fails or returns wrong bytes.
pub async fn run(args: BenchArgs) -> Result<Report, BenchError> {
    let mut endpoints = vec![
        Endpoint {
            name: "direct".into(),
            socket: socket("--direct", &args.direct)?,
        },
        Endpoint {
            name: "stockade".into(),
            socket: socket("--gateway", &args.gateway)?,
        },
    ];
    for peer in &args.peers {
        let (name, address) = peer.split_once('=').ok_or(BenchError::Usage {
            flag: "--peer",
            value: peer.clone(),
            reason: "must be NAME=unix:///path",
        })?;
        endpoints.push(Endpoint {
            name: name.to_owned(),
            socket: socket("--peer", address)?,
        });
    }
    let sizes = if args.quick {
        Sizes {
            rounds: args.rounds.unwrap_or(1),
            pings: 300,
            load_seconds: 0.5,
            lifecycles: 3,
            logs_bytes: 16 << 20,
            stream_bytes: 16 << 20,
            streams_for_rss: 100,
            audit_records: 20_000,
            pull_rounds: args.rounds.unwrap_or(1),
        }
    } else {
        Sizes {
            rounds: args.rounds.unwrap_or(3),
            pings: 2000,
            load_seconds: 2.0,
            lifecycles: 8,
            logs_bytes: 200 << 20,
            stream_bytes: 100 << 20,
            streams_for_rss: 100,
            audit_records: 200_000,
            pull_rounds: args.rounds.unwrap_or(5),
        }
    };
    const KNOWN: &[&str] = &[
        "ping",
        "connect",
        "rps",
        "lifecycle",
        "logs",
        "exec",
        "attach",
        "archive",
        "pull",
        "rss",
        "audit",
    ];
    if let Some(unknown) = args.only.iter().find(|m| !KNOWN.contains(&m.as_str())) {
        return Err(BenchError::Usage {
            flag: "--only",
            value: unknown.clone(),
            reason: "is not one of ping, connect, rps, lifecycle, logs, exec, attach, archive, pull, rss, audit",
        });
    }
    let selected = |metric: &str| args.only.is_empty() || args.only.iter().any(|m| m == metric);
    let selection = metrics::Selection {
        ping: selected("ping"),
        connect: selected("connect"),
        rps: selected("rps"),
        lifecycle: selected("lifecycle"),
        logs: selected("logs"),
        exec: selected("exec"),
        attach: selected("attach"),
        archive: selected("archive"),
        pull: selected("pull"),
        rss: selected("rss"),
        audit: selected("audit"),
    };
    let pull = match (args.pull_direct, args.pull_proxied) {
        (Some(direct), Some(proxied)) => Some(pull::PullSpec {
            direct,
            proxied,
            id: args.pull_id,
        }),
        _ => None,
    };
    if pull.is_none() && args.only.iter().any(|m| m == "pull") {
        return Err(BenchError::Usage {
            flag: "--only",
            value: "pull".to_owned(),
            reason: "needs --pull-direct and --pull-proxied (benches/run.sh sets them up)",
        });
    }
    let selection = metrics::Selection {
        pull: selection.pull && pull.is_some(),
        ..selection
    };
    metrics::run_all(
        &endpoints,
        &args.image,
        args.gateway_pid,
        sizes,
        selection,
        pull.as_ref(),
    )
    .await
}
