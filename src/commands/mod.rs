//! One module per subcommand.

pub mod airgap;
pub mod audit;
pub mod bench;
pub mod doctor;
pub mod engine;
pub mod explain;
pub mod generate;
pub mod policy;
pub mod serve;
pub mod up;

use crate::failure::Failure;
use std::path::PathBuf;

/// Parses `unix:///absolute/path`.
pub fn unix_socket(flag: &str, value: &str) -> Result<PathBuf, Failure> {
    let path = value.strip_prefix("unix://").ok_or_else(|| {
        Failure::usage(format!(
            "{flag} {value:?} must be a unix socket address such as unix:///run/stockade/engine.sock"
        ))
    })?;
    let path = PathBuf::from(path);
    if !path.is_absolute() {
        return Err(Failure::usage(format!(
            "{flag} {value:?} must name an absolute path, e.g. unix:///run/stockade/engine.sock"
        )));
    }
    Ok(path)
}

/// The gid of `group`, for the gateway socket.
pub fn group_id(group: &str) -> Result<u32, Failure> {
    match nix::unistd::Group::from_name(group) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => Err(Failure::unsafe_env(format!(
            "the group {group:?} for the gateway socket does not exist; create it with `groupadd {group}` or pass --group"
        ))),
        Err(e) => Err(Failure::unsafe_env(format!(
            "cannot look up the group {group:?}: {e}"
        ))),
    }
}

/// Completes on SIGINT or SIGTERM.
pub struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers; from now on those signals are queued for [`Signals::recv`].
    pub fn install() -> Result<Self, Failure> {
        use tokio::signal::unix::{signal, SignalKind};
        let install = |kind| {
            signal(kind)
                .map_err(|e| Failure::unsafe_env(format!("cannot install signal handlers: {e}")))
        };
        Ok(Self {
            interrupt: install(SignalKind::interrupt())?,
            terminate: install(SignalKind::terminate())?,
        })
    }

    /// Waits for the next SIGINT or SIGTERM.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => tracing::info!("interrupted"),
            _ = self.terminate.recv() => tracing::info!("terminated"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_socket_addresses() {
        assert_eq!(
            unix_socket("--engine", "unix:///run/x.sock").unwrap(),
            PathBuf::from("/run/x.sock")
        );
        assert_eq!(
            unix_socket("--engine", "tcp://1.2.3.4:2375")
                .unwrap_err()
                .code,
            2
        );
        assert_eq!(
            unix_socket("--engine", "unix://relative.sock")
                .unwrap_err()
                .code,
            2
        );
        assert_eq!(unix_socket("--engine", "/run/x.sock").unwrap_err().code, 2);
    }
}
