//! `stockade bench`: the direct engine and the gateway (and peers) side by side.

use crate::failure::Failure;
use std::io::Write;

pub async fn run(args: stockade_bench::BenchArgs) -> Result<(), Failure> {
    let report = stockade_bench::run(args)
        .await
        .map_err(|e| Failure::unsafe_env(format!("benchmark failed: {e}")))?;
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "{report}");
    let _ = out.flush();
    Ok(())
}
