//! `stockade serve`: the gateway alone, in front of an engine someone else manages.

use super::{group_id, unix_socket, Signals};
use crate::failure::Failure;
use std::path::PathBuf;
use stockade_gateway::{GatewayConfig, GatewayListener, SocketOwnership};

/// Flags of `stockade serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The engine's socket, root-only: unix:///path.
    #[arg(long)]
    engine: String,
    /// The socket to serve the users on: unix:///path.
    #[arg(long)]
    listen: String,
    /// Group that may connect to the listening socket (mode 0660).
    #[arg(long, default_value = "docker")]
    group: String,
}

pub async fn run(args: ServeArgs) -> Result<(), Failure> {
    let engine = unix_socket("--engine", &args.engine)?;
    let listen = unix_socket("--listen", &args.listen)?;
    let gid = group_id(&args.group)?;
    let mut signals = Signals::install()?;
    let facts = stockade_engine::check_engine(&engine)
        .await
        .map_err(|e| Failure::unsafe_env(e.to_string()))?;
    tracing::info!(engine = %engine.display(), version = %facts.version, isolation = ?facts.isolation, "engine checked");
    serve_until_signal(engine, &listen, gid, &mut signals).await
}

/// Binds the gateway socket and serves until SIGINT/SIGTERM; the socket is removed on return.
pub async fn serve_until_signal(
    engine: PathBuf,
    listen: &std::path::Path,
    gid: u32,
    signals: &mut Signals,
) -> Result<(), Failure> {
    let listener = GatewayListener::bind(listen, SocketOwnership { gid, mode: 0o660 })
        .map_err(|e| Failure::unsafe_env(e.to_string()))?;
    serve_on(listener, engine, signals).await
}

/// Serves on an already bound listener until SIGINT/SIGTERM.
pub async fn serve_on(
    listener: GatewayListener,
    engine: PathBuf,
    signals: &mut Signals,
) -> Result<(), Failure> {
    stockade_gateway::serve(listener, GatewayConfig::new(engine), signals.recv())
        .await
        .map_err(|e| Failure::unsafe_env(e.to_string()))
}
