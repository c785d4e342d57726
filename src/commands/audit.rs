//! `stockade audit verify|tail`: check the hash chain of audit log files, print records.

use crate::failure::Failure;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::time::Duration;
use stockade_audit::{format_time, verify, Anchor, Record};

/// `stockade audit` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain; with several files (oldest first), also that each continues the one
    /// before. Exit 1 naming the first bad record.
    Verify {
        /// Audit log files, oldest first.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Also check these signed checkpoints (a copy held elsewhere): each signature, and that
        /// the records they sign are all in the files (catches records removed from the end).
        #[arg(long, requires = "public_key")]
        checkpoints: Option<PathBuf>,
        /// The checkpoints' public key (hex, as `stockade audit key` prints it).
        #[arg(long, requires = "checkpoints")]
        public_key: Option<String>,
    },
    /// Print the public key of a checkpoint signing key (created 0600 if missing).
    Key {
        /// The signing key file (`serve`/`up --audit-key`).
        #[arg(long)]
        key_file: PathBuf,
    },
    /// Print records readably.
    Tail {
        /// The audit log.
        file: PathBuf,
        /// Keep printing records as they are appended, until Ctrl-C.
        #[arg(long)]
        follow: bool,
        /// Print the stored JSON lines as they are.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(command: AuditCommand) -> Result<(), Failure> {
    match command {
        AuditCommand::Verify {
            files,
            checkpoints,
            public_key,
        } => {
            verify_files(&files)?;
            match (checkpoints, public_key) {
                (Some(checkpoints), Some(key)) => {
                    let checked = stockade_audit::verify_checkpoints(&files, &checkpoints, &key)
                        .map_err(Failure::check)?;
                    let _ = writeln!(
                        std::io::stdout(),
                        "{}: {} checkpoints verified, up to record {}",
                        checkpoints.display(),
                        checked.checkpoints,
                        checked.last_seq
                    );
                    Ok(())
                }
                _ => Ok(()),
            }
        }
        AuditCommand::Key { key_file } => {
            let key = stockade_audit::CheckpointKey::load_or_create(&key_file)
                .map_err(|e| Failure::unsafe_env(e.to_string()))?;
            let _ = writeln!(std::io::stdout(), "{}", key.public_hex());
            Ok(())
        }
        AuditCommand::Tail { file, follow, json } => tail(&file, follow, json).await,
    }
}

fn open(path: &PathBuf) -> Result<std::fs::File, Failure> {
    std::fs::File::open(path)
        .map_err(|e| Failure::usage(format!("cannot open {}: {e}", path.display())))
}

fn first_seq(path: &PathBuf) -> Result<Option<u64>, Failure> {
    let mut first = String::new();
    BufReader::new(open(path)?)
        .read_line(&mut first)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
    Ok(serde_json::from_str::<Record>(first.trim_end())
        .ok()
        .map(|r| r.seq))
}

fn verify_files(files: &[PathBuf]) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    let mut anchor = None;
    for path in files {
        let this_anchor = match anchor.take() {
            Some(anchor) => anchor,
            None => match first_seq(path)? {
                Some(seq) if seq > 1 => {
                    let _ = writeln!(
                        out,
                        "{}: starts at record {seq}; the records before it are in earlier files not given here",
                        path.display()
                    );
                    Anchor::FirstRecord
                }
                _ => Anchor::Genesis,
            },
        };
        let verified = verify(BufReader::new(open(path)?), this_anchor).map_err(|b| {
            Failure::check(format!(
                "{}:{}: record {}: {}",
                path.display(),
                b.line,
                b.expected_seq,
                b.reason
            ))
        })?;
        let _ = writeln!(
            out,
            "{}: {} records ({}..{}) verified, head {}",
            path.display(),
            verified.records,
            verified.first_seq,
            verified.last_seq,
            verified.head
        );
        anchor = Some(Anchor::After {
            seq: verified.last_seq + 1,
            head: verified.head,
        });
    }
    Ok(())
}

fn readable(line: &str) -> String {
    let Ok(record) = serde_json::from_str::<Record>(line) else {
        return format!("(not a valid record) {line}");
    };
    let mut text = format!(
        "{} #{} {}",
        format_time(record.time_ns),
        record.seq,
        serde_json::to_value(record.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    );
    if let Some(uid) = record.uid {
        text.push_str(&format!(" uid={uid}"));
    }
    if let Some(container) = &record.container {
        text.push_str(&format!(" container={container}"));
    }
    if let Some(decision) = record.decision {
        text.push_str(match decision {
            stockade_audit::Decision::Allow => " ALLOW",
            stockade_audit::Decision::Deny => " DENY",
        });
    }
    if let Some(route) = &record.route {
        text.push_str(&format!(" {route}"));
    }
    for (key, value) in &record.summary {
        text.push_str(&format!(" {key}={value}"));
    }
    if let Some(rule) = &record.rule {
        text.push_str(&format!(" rule={rule}"));
    }
    if let Some(reason) = &record.reason {
        text.push_str(&format!(" reason={reason:?}"));
    }
    text
}

async fn tail(path: &PathBuf, follow: bool, json: bool) -> Result<(), Failure> {
    let mut file = open(path)?;
    let mut pending = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let read = file
            .read(&mut chunk)
            .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
        if read == 0 {
            if !follow {
                break;
            }
            // A rotation renamed the file we read and started a new one at the path: go on
            // there (what was left in the old file was read just now).
            use std::os::unix::fs::MetadataExt as _;
            let ours = file.metadata().map(|m| m.ino()).ok();
            let at_path = std::fs::metadata(path).map(|m| m.ino()).ok();
            if at_path.is_some() && ours != at_path {
                file = open(path)?;
                continue;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        pending.extend_from_slice(&chunk[..read]);
        let mut out = std::io::stdout().lock();
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            let shown = if json { line } else { readable(&line) };
            if writeln!(out, "{shown}").is_err() {
                return Ok(());
            }
        }
        let _ = out.flush();
    }
    Ok(())
}
