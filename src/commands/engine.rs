//! `stockade engine`: the managed engine alone (daemon.json, bridge, dockerd, the engine's
//! egress filter, the air gap), in the foreground until SIGINT or SIGTERM. This is what the
//! packaged `stockade-engine.service` runs; `stockade-gateway.service` serves the users in
//! front of it with `stockade serve`, so the gateway can be restarted (upgraded) without
//! stopping the engine and its containers.

use super::up::{require_root, start_engine, EngineFlags};
use super::Signals;
use crate::failure::Failure;
use crate::notify;
use std::io::Write;
use std::path::PathBuf;

/// Flags of `stockade engine`.
#[derive(Debug, clap::Args)]
pub struct EngineArgs {
    #[command(flatten)]
    engine: EngineFlags,
    /// Record the engine's egress decisions (its own pulls and pushes, and containers' egress
    /// under the air gap) in this hash-chained audit log. Use a file of its own: the gateway's
    /// log is written by the gateway alone.
    #[arg(long)]
    audit_log: Option<PathBuf>,
    /// Sign checkpoints of the audit log with this ed25519 key (created 0600 if missing).
    #[arg(long, requires = "audit_log")]
    audit_key: Option<PathBuf>,
}

pub async fn run(args: EngineArgs) -> Result<(), Failure> {
    require_root("stockade engine")?;
    let policy = super::policy::load_with_path(args.engine.policy.as_deref())?;
    let audit = super::serve::open_audit(
        args.audit_log.as_deref(),
        &policy.0,
        args.audit_key.as_deref(),
    )?;
    let mut signals = Signals::install()?;
    let mut running = start_engine(&args.engine, &policy.0, audit.clone()).await?;
    // The engine must pass the checks `serve` will apply to it before anyone is told it is up.
    let checked = stockade_engine::check_engine(
        &running.layout.engine_socket,
        super::policy::tcp_2375_allowed(&policy.0),
    )
    .await
    .map_err(|e| Failure::unsafe_env(e.to_string()));
    let result = match checked {
        Ok(facts) => {
            tracing::info!(version = %facts.version, isolation = ?facts.isolation, "managed engine ready");
            {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(
                    out,
                    "engine ready: stockade serve --engine unix://{}",
                    running.layout.engine_socket.display()
                );
                let _ = out.flush();
            }
            notify::ready(&format!(
                "engine {} ready at {}",
                facts.version,
                running.layout.engine_socket.display()
            ));
            tokio::select! {
                () = signals.recv() => Ok(()),
                died = running.engine.exited() => Err(Failure::unsafe_env(format!(
                    "the managed engine stopped unexpectedly: {died}"
                ))),
            }
        }
        Err(e) => Err(e),
    };
    notify::stopping();
    running.stop().await;
    result
}
