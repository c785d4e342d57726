//! `stockade doctor`: pass/fail host checks with fixes.

use super::unix_socket;
use crate::failure::Failure;
use std::io::Write;
use stockade_engine::doctor::{self, Status};

/// Flags of `stockade doctor`.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// An engine socket to examine besides the dockerd processes found on the host.
    #[arg(long)]
    engine: Vec<String>,
}

pub async fn run(args: DoctorArgs) -> Result<(), Failure> {
    let engines = args
        .engine
        .iter()
        .map(|e| unix_socket("--engine", e))
        .collect::<Result<Vec<_>, _>>()?;
    let checks = doctor::run(&engines).await;
    let mut out = std::io::stdout().lock();
    for check in &checks {
        let _ = writeln!(out, "{check}");
    }
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    if failed == 0 {
        Ok(())
    } else {
        Err(Failure::unsafe_env(format!(
            "{failed} host check(s) failed; apply the fixes above"
        )))
    }
}
