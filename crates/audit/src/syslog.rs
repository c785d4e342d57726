//! The optional syslog copy (`audit.syslog`): every record, as written to the log, is also sent
//! to the local syslog socket (`/dev/log`) as one RFC 3164 message (facility authpriv), so a
//! copy leaves the host's control of the log file (rsyslog/journald can forward it).
//!
//! Syslog is a copy, never a gate: a missing or slow syslog never blocks or fails a request.
//! The socket is non-blocking; what cannot be sent is dropped and the failure is reported once
//! (on stderr, through the caller's log) until sending works again.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;

/// authpriv (10) * 8 + notice (5).
const PRIORITY: u8 = 85;
/// Larger datagrams are cut (syslog daemons take 8 KiB by default; rsyslog up to 64 KiB).
const MAX_MESSAGE: usize = 8 * 1024;

/// A connection to the syslog socket, reopened when it fails.
#[derive(Debug)]
pub(crate) struct Syslog {
    path: PathBuf,
    socket: Option<UnixDatagram>,
    failing: bool,
}

impl Syslog {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self {
            path,
            socket: None,
            failing: false,
        }
    }

    /// Sends one record line.
    pub(crate) fn send(&mut self, line: &[u8]) {
        let mut message = format!("<{PRIORITY}>stockade[{}]: ", std::process::id()).into_bytes();
        let room = MAX_MESSAGE.saturating_sub(message.len());
        message.extend_from_slice(&line[..line.len().min(room)]);
        let result = self.socket().and_then(|s| s.send(&message).map(|_| ()));
        match result {
            Ok(()) => {
                if self.failing {
                    self.failing = false;
                    report(&format!(
                        "audit records reach syslog ({}) again",
                        self.path.display()
                    ));
                }
            }
            Err(e) => {
                self.socket = None;
                if !self.failing {
                    self.failing = true;
                    report(&format!(
                        "audit records cannot be copied to syslog ({}): {e}; the log file is still written",
                        self.path.display()
                    ));
                }
            }
        }
    }

    fn socket(&mut self) -> std::io::Result<&UnixDatagram> {
        if self.socket.is_none() {
            let socket = UnixDatagram::unbound()?;
            socket.set_nonblocking(true)?;
            socket.connect(&self.path)?;
            self.socket = Some(socket);
        }
        self.socket
            .as_ref()
            .ok_or_else(|| std::io::Error::other("no syslog socket"))
    }
}

#[allow(clippy::print_stderr)]
fn report(message: &str) {
    eprintln!("stockade audit: {message}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_go_out_as_authpriv_messages_and_failures_do_not_block() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sock");
        let mut syslog = Syslog::new(path.clone());
        // No socket yet: dropped, no panic, no wait.
        syslog.send(b"{\"seq\":1}");
        assert!(syslog.failing);
        let server = UnixDatagram::bind(&path).unwrap();
        syslog.send(b"{\"seq\":2}");
        assert!(!syslog.failing);
        let mut buf = [0u8; 256];
        let n = server.recv(&mut buf).unwrap();
        let got = String::from_utf8_lossy(&buf[..n]).to_string();
        assert!(got.starts_with("<85>stockade["), "{got}");
        assert!(got.ends_with("]: {\"seq\":2}"), "{got}");
        let long = vec![b'x'; 20_000];
        syslog.send(&long);
        let mut big = vec![0u8; 65536];
        let n = server.recv(&mut big).unwrap();
        assert_eq!(n, MAX_MESSAGE);
    }
}
