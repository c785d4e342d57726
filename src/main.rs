//! `stockade`: the command-line glue over the Stockade crates. Flags are parsed here, each
//! subcommand lives in its own module, and every failure leaves through [`Failure`] with the exit
//! code of DESIGN.md section 2 (0 ok, 1 policy/check failure, 2 usage, 3 environment not safe).
#![forbid(unsafe_code)]

mod commands;
mod failure;
mod log_format;
mod log_writer;
mod notify;

use clap::{CommandFactory, Parser, Subcommand};
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
    /// Run the managed hardened engine alone, for `stockade serve` to front (systemd).
    Engine(commands::engine::EngineArgs),
    /// Check this host: engine sockets, user namespaces, TCP exposure, tools.
    Doctor(commands::doctor::DoctorArgs),
    /// Measure the gateway against the direct engine socket, side by side.
    Bench(stockade_bench::BenchArgs),
    /// Validate the admin policy, or show the settings in force.
    #[command(subcommand)]
    Policy(commands::policy::PolicyCommand),
    /// Verify or read audit logs.
    #[command(subcommand)]
    Audit(commands::audit::AuditCommand),
    /// Write man pages and shell completions generated from this command line.
    #[command(hide = true)]
    GenerateDocs(commands::generate::GenerateArgs),
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
    if let Command::GenerateDocs(args) = &cli.command {
        return match commands::generate::run(args, Cli::command()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(failure) => report(&failure),
        };
    }
    let log_guard = init_logging();
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
            Command::Engine(args) => commands::engine::run(args).await,
            Command::Doctor(args) => commands::doctor::run(args).await,
            Command::Bench(args) => commands::bench::run(args).await,
            Command::Audit(command) => commands::audit::run(command).await,
            Command::Policy(command) => commands::policy::run(command),
            Command::GenerateDocs(_) => Ok(()),
        }
    });
    // Flush the log lines before the final message so they come out in order.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    drop(log_guard);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => report(&failure),
    }
}

fn report(failure: &Failure) -> ExitCode {
    if !failure.message.is_empty() {
        let _ = writeln!(std::io::stderr(), "stockade: {}", failure.message);
    }
    ExitCode::from(failure.code)
}

/// Logs go to stderr through a writer thread that writes them in batches (see [`log_writer`]), so
/// a request never waits for its line to be written (one line per request cost ~50 us on the hot
/// path when written inline) nor wakes the writer for it. Not lossy: if the writer falls behind,
/// callers wait rather than lines being dropped. The guard writes what is queued on exit.
fn init_logging() -> Option<log_writer::Guard> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STOCKADE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    match log_writer::start() {
        Ok((lines, guard)) => {
            let builder = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(move || lines.clone())
                .with_ansi(ansi)
                .with_target(false);
            // A terminal gets tracing's coloured format; a file or a pipe the same text,
            // written faster and with every value escaped (see `log_format`).
            if ansi {
                builder.init();
            } else {
                builder.event_format(log_format::Plain).init();
            }
            Some(guard)
        }
        // Without a thread to spare, lines are written where they are logged.
        Err(_) => {
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .with_ansi(ansi)
                .with_target(false)
                .init();
            None
        }
    }
}
