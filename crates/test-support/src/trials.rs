//! The harness of the real-engine trial suites (`tests/gateway.rs`, `tests/clients.rs`): one
//! [`Rig`] shared by every trial, run one at a time unless asked otherwise, and the small checks
//! the trials share.

use crate::{Docker, Rig};
use libtest_mimic::{Arguments, Failed, Trial};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// What a trial returns.
pub type Outcome = Result<(), Failed>;
/// A trial: a check against the shared rig.
pub type TrialFn = fn(&Rig) -> Outcome;

/// How long a docker CLI call of [`must`] may take.
const MUST_LIMIT: Duration = Duration::from_secs(240);

/// Starts the rig with the `stockade` binary under test, runs `trials` (one at a time unless
/// `--test-threads` says otherwise), stops the rig and exits with the result. `suite` names the
/// trials in the message a non-root run gets.
#[allow(clippy::print_stderr)] // the harness reports setup failures itself
pub fn run(suite: &str, stockade: &Path, trials: Vec<(&'static str, TrialFn)>) -> ! {
    let mut args = Arguments::from_args();
    if args.test_threads.is_none() {
        args.test_threads = Some(1);
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("the {suite} tests start dockerd and need root: run them with sudo");
        std::process::exit(1);
    }
    let rig = match Rig::start(stockade) {
        Ok(rig) => Arc::new(rig),
        Err(e) => {
            eprintln!("cannot set up the test rig: {e}");
            std::process::exit(1);
        }
    };
    let trials = trials
        .into_iter()
        .map(|(name, f)| {
            let rig = Arc::clone(&rig);
            Trial::test(name, move || f(&rig))
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    drop(rig);
    conclusion.exit();
}

/// `Ok` when `condition` holds, else a failure saying `message`.
///
/// # Errors
/// The failure.
pub fn ensure(condition: bool, message: impl FnOnce() -> String) -> Outcome {
    if condition {
        Ok(())
    } else {
        Err(message().into())
    }
}

/// Runs `docker ARGS` and returns its standard output; a failure if it does not succeed.
///
/// # Errors
/// When the command cannot be run, times out or fails.
pub fn must(docker: &Docker, args: &[&str]) -> Result<String, Failed> {
    let done = docker.run(args, None, MUST_LIMIT)?;
    ensure(done.success(), || {
        format!("docker {args:?}: {}", done.describe())
    })?;
    Ok(done.stdout)
}
