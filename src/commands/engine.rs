//! `stockade engine`: the managed engine alone (daemon.json, bridge, dockerd, the engine's
//! egress filter, the air gap), in the foreground until SIGINT or SIGTERM. This is what the
//! packaged `stockade-engine.service` runs; `stockade-gateway.service` serves the users in
//! front of it with `stockade serve`, so the gateway can be restarted (upgraded) without
//! stopping the engine and its containers.

use super::up::{check_managed, require_root, start, EngineFlags, Started};
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
    let Started {
        policy,
        // Kept open for the engine's whole run, as the engine's own copy is.
        audit: _audit,
        mut signals,
        engine: mut running,
    } = start(
        &args.engine,
        args.audit_log.as_deref(),
        args.audit_key.as_deref(),
    )
    .await?;
    let result = match check_managed(&running.layout, &policy.0).await {
        Ok(facts) => {
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
