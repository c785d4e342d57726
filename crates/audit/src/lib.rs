//! The tamper-evident audit log: one JSON line per event, each naming the SHA-256 of the line
//! before, so that editing, removing, inserting or reordering records breaks the chain where it
//! happened ([`verify()`]). Writing is done by one thread with group commit ([`AuditLog`]):
//! records that must be durable are synced before their callers are answered.
//!
//! ```
//! use stockade_audit::{verify, Anchor, AuditLog, Durability, Event, Options};
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("audit.log");
//! let log = AuditLog::open(&path, Options::default()).unwrap();
//! let seq = log.append_blocking(Event::default(), Durability::Sync).unwrap();
//! assert_eq!(seq, 1);
//! drop(log);
//! let file = std::io::BufReader::new(std::fs::File::open(&path).unwrap());
//! assert_eq!(verify(file, Anchor::Genesis).unwrap().records, 1);
//! ```
//!
//! What the chain alone cannot show is the removal of records from the end. The signed
//! checkpoints of the head hash (a later step) are for that.
#![forbid(unsafe_code)]

mod checkpoint;
mod record;
mod syslog;
mod verify;
mod writer;

use std::path::PathBuf;

pub use checkpoint::{checkpoints_path, verify_checkpoints, CheckedCheckpoints, CheckpointKey};
pub use record::{format_time, line_hash, Decision, Event, Kind, Record, FORMAT_VERSION, GENESIS};
pub use verify::{verify, Anchor, Break, Verified};
pub use writer::{rotated_files, AuditLog, Durability, Options, MAX_BATCH};

/// Audit log failures. A caller that needs a record and gets one of these must fail closed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The log file cannot be opened or created.
    #[error("cannot open the audit log {path}: {source}")]
    Open {
        /// The log path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The existing log does not verify, so it is not continued.
    #[error("the audit log {path} is damaged at line {line} ({reason}); keep it as evidence, move it aside and start a new log")]
    Damaged {
        /// The log path.
        path: PathBuf,
        /// The first bad line.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// Writing or syncing failed (disk full, permissions, directory removed).
    #[error("cannot write the audit log {path}: {reason}; free space or fix permissions, the log recovers by itself")]
    Write {
        /// The log path.
        path: PathBuf,
        /// The underlying error, as text (it is handed to every caller of a batch).
        reason: String,
    },
    /// The log was closed.
    #[error("the audit log is closed")]
    Closed,
    /// The checkpoint signing key cannot be used.
    #[error("the audit checkpoint key {path}: {reason}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong and the fix.
        reason: String,
    },
}
