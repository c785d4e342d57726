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
    // The air-gap rules in force (one table per running `up` with containersProxy).
    let tables = std::process::Command::new("nft")
        .args(["list", "tables"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    let ours: Vec<&str> = tables
        .lines()
        .filter_map(|l| l.strip_prefix("table inet "))
        .filter(|t| t.starts_with("stockade"))
        .collect();
    if ours.is_empty() {
        let _ = writeln!(
            out,
            "INFO  no air-gap rules in force (containersProxy is not configured, or no stockade up is running)"
        );
    }
    for table in ours {
        match stockade_egress::nft::list(table) {
            Ok(rules) => {
                let _ = writeln!(out, "INFO  air-gap rules in force (table inet {table}):");
                for line in rules.lines() {
                    let _ = writeln!(out, "      {line}");
                }
            }
            Err(e) => {
                let _ = writeln!(out, "INFO  table inet {table} could not be listed: {e}");
            }
        }
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
