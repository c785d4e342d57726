//! `stockade`: the command-line glue over the Stockade crates. Flags are parsed here, each
//! subcommand lives in its own module, and every failure leaves through [`Failure`] with the exit
//! code of DESIGN.md section 2 (0 ok, 1 policy/check failure, 2 usage, 3 environment not safe).
#![forbid(unsafe_code)]

mod commands;
mod failure;

use clap::{Parser, Subcommand};
use failure::Failure;
use std::io::Write;
use std::process::ExitCode;

/// Hardened gateway for the Docker Engine: admin policy, enhanced container isolation, audit.
#[derive(Debug, Parser)]
#[command(name = "stockade", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a private hardened engine and the gateway in front of it, until Ctrl-C.
    Up(commands::up::UpArgs),
    /// Serve the gateway in front of an engine someone else manages.
    Serve(commands::serve::ServeArgs),
    /// Check this host: engine sockets, user namespaces, TCP exposure, tools.
    Doctor(commands::doctor::DoctorArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help and version to stdout with exit 0, and usage errors with exit 2.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            return report(&Failure::unsafe_env(format!(
                "cannot start the async runtime: {e}"
            )))
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Up(args) => commands::up::run(args).await,
            Command::Serve(args) => commands::serve::run(args).await,
            Command::Doctor(args) => commands::doctor::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => report(&failure),
    }
}

fn report(failure: &Failure) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "stockade: {}", failure.message);
    ExitCode::from(failure.code)
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STOCKADE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}
