//! Child processes with bounded waits, stopped by pid.

use crate::{Result, RigError};
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What a finished command left.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Exit code (`None` when killed by a signal or by the timeout).
    pub code: Option<i32>,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
    /// Whether the timeout killed it.
    pub timed_out: bool,
}

impl Finished {
    /// Exit code 0 and not timed out.
    #[must_use]
    pub fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }

    /// A one-paragraph description for assertion messages.
    #[must_use]
    pub fn describe(&self) -> String {
        format!(
            "code {:?}{}; stdout: {:?}; stderr: {:?}",
            self.code,
            if self.timed_out { " (timed out)" } else { "" },
            truncate(&self.stdout),
            truncate(&self.stderr)
        )
    }
}

fn truncate(s: &str) -> &str {
    let mut end = s.len().min(4000);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Runs `command` to completion, feeding `stdin` (then closing it), killing it after `limit`.
///
/// # Errors
/// [`RigError::Command`] when it cannot be started.
pub fn run_with_timeout(
    command: &mut Command,
    stdin: Option<&[u8]>,
    limit: Duration,
) -> Result<Finished> {
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|e| RigError::Command {
        command: format!("{command:?}"),
        detail: e.to_string(),
    })?;
    let writer = stdin.map(|data| {
        let data = data.to_vec();
        let mut pipe = child.stdin.take();
        std::thread::spawn(move || {
            if let Some(pipe) = pipe.as_mut() {
                let _ = pipe.write_all(&data);
            }
            drop(pipe);
        })
    });
    let out = child.stdout.take().map(reader);
    let err = child.stderr.take().map(reader);
    let deadline = Instant::now() + limit;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() > deadline => {
                timed_out = true;
                let _ = child.kill();
                break child.wait().ok();
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break None,
        }
    };
    if let Some(w) = writer {
        let _ = w.join();
    }
    let collect = |h: Option<std::thread::JoinHandle<Vec<u8>>>| {
        h.and_then(|h| h.join().ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    Ok(Finished {
        code: status.and_then(|s| s.code()),
        stdout: collect(out),
        stderr: collect(err),
        timed_out,
    })
}

fn reader<R: Read + Send + 'static>(mut pipe: R) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

/// A long-running child, stopped by its pid on drop: `signal`, then SIGKILL after `grace`.
#[derive(Debug)]
pub struct Spawned {
    child: Option<Child>,
    pid: u32,
    signal: Signal,
    grace: Duration,
}

impl Spawned {
    /// Spawns `command`.
    ///
    /// # Errors
    /// [`RigError::Command`] when it cannot be started.
    pub fn start(command: &mut Command, signal: Signal, grace: Duration) -> Result<Self> {
        let child = command.spawn().map_err(|e| RigError::Command {
            command: format!("{command:?}"),
            detail: e.to_string(),
        })?;
        Ok(Self {
            pid: child.id(),
            child: Some(child),
            signal,
            grace,
        })
    }

    /// The pid.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether it has not exited yet.
    #[must_use]
    pub fn is_running(&self) -> bool {
        // try_wait needs &mut; /proc answers with &self.
        if self.child.is_none() {
            return false;
        }
        std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .map(|stat| {
                // State is the field after the parenthesised command name; Z is a zombie.
                stat.rsplit_once(')')
                    .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
                    .unwrap_or(false)
            })
            .unwrap_or(false)
    }

    /// Sends `signal`, waits up to the grace period, then SIGKILL. Returns the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        self.stop_with(self.signal)
    }

    /// Like [`Spawned::stop`] with another signal.
    pub fn stop_with(&mut self, signal: Signal) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = signal::kill(pid(self.pid), signal);
        let deadline = Instant::now() + self.grace;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status.code(),
                Ok(None) if Instant::now() > deadline => {
                    let _ = child.kill();
                    return child.wait().ok().and_then(|s| s.code());
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(_) => return None,
            }
        }
    }

    /// Waits for it to exit by itself, up to `limit`; kills it after that.
    pub fn wait(&mut self, limit: Duration) -> Option<i32> {
        let mut child = self.child.take()?;
        let deadline = Instant::now() + limit;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status.code(),
                Ok(None) if Instant::now() > deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return None;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(_) => return None,
            }
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.stop();
    }
}

fn pid(pid: u32) -> Pid {
    Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX))
}

/// Stops `pid` if it is alive and its command name starts with `name` (it is the process the
/// rig started, not a recycled pid).
pub fn stop_pid_if(pid: i32, name: &str, grace: Duration) {
    let is_it = || {
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|c| c.trim_end().starts_with(name))
            .unwrap_or(false)
    };
    if !is_it() {
        return;
    }
    let _ = signal::kill(Pid::from_raw(pid), Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while is_it() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if is_it() {
        let _ = signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// Socket file descriptors open in process `pid`.
#[must_use]
pub fn socket_fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|fds| {
            fds.flatten()
                .filter_map(|fd| std::fs::read_link(fd.path()).ok())
                .filter(|target| target.to_string_lossy().starts_with("socket:"))
                .count()
        })
        .unwrap_or(0)
}
