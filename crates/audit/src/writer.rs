//! Appending to the log: one writer thread and group commit.
//!
//! Callers hand events to the writer thread. The thread takes everything queued (up to
//! [`MAX_BATCH`]), chains it, and writes it with one `write`. When a record in the batch must be
//! durable (denials, state changes), it then calls `fdatasync` before answering anyone; those
//! callers wait. Allows are queued without waiting ([`AuditLog::append_grouped`]) and are
//! written and synced at the latest after [`Options::sync_interval`] (500 ms), or once
//! [`Options::max_unsynced`] (10,000) are pending. That is the bound on what a crash or a power
//! loss can take: allow records of the last interval, never a durable one. A failed write is undone (the file is cut back to its last whole record), every
//! caller in the batch gets the error, and the next batch tries again. That is how the log
//! recovers by itself once the disk has room again.

use crate::record::{line_hash, Event, Record, GENESIS};
use crate::verify::{verify, Anchor};
use crate::AuditError;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc::error::{TryRecvError, TrySendError};
use tokio::sync::mpsc::{self, Sender};

/// Most records written in one batch.
pub const MAX_BATCH: usize = 4096;

/// Queued records that make a caller who does not wait wake the writer anyway.
const WAKE_AT: usize = 256;

/// Whether a record must be on disk before the caller is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `fdatasync` before the answer: denials and state changes.
    Sync,
    /// Written before the answer, synced within the group-commit bound: allows.
    Grouped,
}

/// Tuning of the writer.
#[derive(Debug, Clone)]
pub struct Options {
    /// Longest time a grouped record stays unsynced.
    pub sync_interval: Duration,
    /// Most grouped records left unsynced.
    pub max_unsynced: usize,
    /// Most events queued for the writer; callers beyond it wait for room.
    pub queue: usize,
    /// Copy every record to this syslog socket (`/dev/log`); `None`: no copy.
    pub syslog: Option<PathBuf>,
    /// Rotate when the file would grow past this size: it is renamed `NAME.N` (N counting up
    /// from 1, oldest first) and a new file goes on with the same chain. Rotated files are kept
    /// (deleting evidence is the admin's decision). `None`: never rotate.
    pub rotate_bytes: Option<u64>,
    /// Sign the chain's head with this key every [`Options::checkpoint_every`] records or
    /// [`Options::checkpoint_interval`], and when the log closes (`NAME.checkpoints`).
    pub checkpoint_key: Option<std::sync::Arc<crate::CheckpointKey>>,
    /// Records between checkpoints.
    pub checkpoint_every: u64,
    /// Longest time between checkpoints while records are written.
    pub checkpoint_interval: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            sync_interval: Duration::from_millis(500),
            max_unsynced: 10_000,
            queue: 65_536,
            syslog: None,
            rotate_bytes: Some(64 << 20),
            checkpoint_key: None,
            checkpoint_every: 1000,
            checkpoint_interval: Duration::from_secs(60),
        }
    }
}

type Answer = tokio::sync::oneshot::Sender<Result<u64, AuditError>>;

struct Job {
    event: Event,
    durability: Durability,
    answer: Answer,
}

/// An open audit log. Dropping it flushes, syncs and stops the writer thread.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    queue: Option<Sender<Job>>,
    writer: Option<std::thread::JoinHandle<()>>,
    healthy: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl AuditLog {
    /// Opens (or creates, mode 0600) the log at `path` and continues its chain.
    ///
    /// An existing file is verified first. A last record cut short by a crash was never
    /// acknowledged to anyone and is removed. Any other damage is an error: the log is not
    /// continued on top of records that do not verify.
    ///
    /// # Errors
    /// [`AuditError::Open`] or [`AuditError::Damaged`].
    pub fn open(path: &Path, options: Options) -> Result<Self, AuditError> {
        let open_err = |source| AuditError::Open {
            path: path.to_owned(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(open_err)?;
        drop_partial_tail(&file).map_err(open_err)?;
        let len = file.metadata().map_err(open_err)?.len();
        let (seq, head) = if len == 0 {
            // After a rotation the current file may be empty: the chain goes on from the last
            // rotated file.
            match rotated_files(path).last() {
                Some((_, previous)) => {
                    let reader = BufReader::new(File::open(previous).map_err(open_err)?);
                    let verified =
                        verify(reader, Anchor::FirstRecord).map_err(|b| AuditError::Damaged {
                            path: previous.clone(),
                            line: b.line,
                            reason: b.reason,
                        })?;
                    (verified.last_seq, verified.head)
                }
                None => (0, GENESIS.to_owned()),
            }
        } else {
            let reader = BufReader::new(File::open(path).map_err(open_err)?);
            let verified =
                verify(reader, Anchor::FirstRecord).map_err(|b| AuditError::Damaged {
                    path: path.to_owned(),
                    line: b.line,
                    reason: b.reason,
                })?;
            (verified.last_seq, verified.head)
        };
        let (queue, jobs) = mpsc::channel(options.queue.max(1));
        let healthy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let state = WriterState {
            healthy: std::sync::Arc::clone(&healthy),
            path: path.to_owned(),
            file,
            len,
            seq,
            head,
            unsynced: 0,
            last_sync: Instant::now(),
            syslog: options.syslog.clone().map(crate::syslog::Syslog::new),
            since_checkpoint: 0,
            last_checkpoint: Instant::now(),
            options,
        };
        let writer = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || state.run(jobs))
            .map_err(open_err)?;
        Ok(Self {
            path: path.to_owned(),
            queue: Some(queue),
            writer: Some(writer),
            healthy,
        })
    }

    /// Whether the last write succeeded.
    #[must_use]
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Appends a group-committed record without waiting for it to be written, while the log is
    /// healthy; otherwise waits like [`AuditLog::append`], so that a caller learns of a failing
    /// log and the first write that works again restores the fast path.
    ///
    /// What this costs: when a write fails, the records of that batch that nobody waited for
    /// are lost (at most one batch, [`MAX_BATCH`] records). Every record after that is waited
    /// for until writing works again.
    ///
    /// # Errors
    /// As [`AuditLog::append`].
    pub async fn append_grouped(&self, event: Event) -> Result<(), AuditError> {
        if !self.is_healthy() {
            return self.append(event, Durability::Grouped).await.map(|_| ());
        }
        // Not waited for, so the writer is not woken for it alone: it picks the record up
        // within the sync interval, or as soon as WAKE_AT records are queued.
        let (answer, _unheard) = tokio::sync::oneshot::channel();
        let queue = self.queue.as_ref().ok_or(AuditError::Closed)?;
        let job = Job {
            event,
            durability: Durability::Grouped,
            answer,
        };
        match queue.try_send(job) {
            Ok(()) => {
                if queue.max_capacity() - queue.capacity() >= WAKE_AT {
                    self.wake_writer();
                }
                Ok(())
            }
            // The writer is behind: wait for room (backpressure) and make sure it is awake.
            Err(TrySendError::Full(job)) => {
                self.wake_writer();
                queue.send(job).await.map_err(|_| AuditError::Closed)
            }
            Err(TrySendError::Closed(_)) => Err(AuditError::Closed),
        }
    }

    /// The log's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `event` and returns its sequence number once it is written (and synced, for
    /// [`Durability::Sync`]).
    ///
    /// # Errors
    /// [`AuditError::Write`] when the record could not be written (the caller must then fail
    /// closed), [`AuditError::Closed`].
    pub async fn append(&self, event: Event, durability: Durability) -> Result<u64, AuditError> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job = Job {
            event,
            durability,
            answer,
        };
        let queue = self.queue.as_ref().ok_or(AuditError::Closed)?;
        // Waits for room when the writer is behind (backpressure, never a dropped record).
        queue.send(job).await.map_err(|_| AuditError::Closed)?;
        self.wake_writer();
        answered.await.map_err(|_| AuditError::Closed)?
    }

    /// Like [`AuditLog::append`] from blocking code.
    ///
    /// # Errors
    /// As [`AuditLog::append`].
    pub fn append_blocking(&self, event: Event, durability: Durability) -> Result<u64, AuditError> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let queue = self.queue.as_ref().ok_or(AuditError::Closed)?;
        queue
            .blocking_send(Job {
                event,
                durability,
                answer,
            })
            .map_err(|_| AuditError::Closed)?;
        self.wake_writer();
        answered.blocking_recv().map_err(|_| AuditError::Closed)?
    }

    fn wake_writer(&self) {
        if let Some(writer) = &self.writer {
            writer.thread().unpark();
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        drop(self.queue.take());
        self.wake_writer();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// Cuts a last line that has no newline (a write interrupted by a crash).
fn drop_partial_tail(file: &File) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    let mut reader = file;
    let window = len.min(1 << 20);
    reader.seek(SeekFrom::Start(len - window))?;
    let mut tail = Vec::with_capacity(usize::try_from(window).unwrap_or(0));
    reader.take(window).read_to_end(&mut tail)?;
    if tail.last() == Some(&b'\n') {
        return Ok(());
    }
    let keep = match tail.iter().rposition(|b| *b == b'\n') {
        Some(pos) => len - window + pos as u64 + 1,
        None if window == len => 0,
        // A single line longer than the window: leave it for verification to report.
        None => return Ok(()),
    };
    file.set_len(keep)?;
    file.sync_all()
}

struct WriterState {
    healthy: std::sync::Arc<std::sync::atomic::AtomicBool>,
    path: PathBuf,
    file: File,
    /// Length of the file: it ends with the whole record `seq`.
    len: u64,
    seq: u64,
    head: String,
    unsynced: usize,
    last_sync: Instant,
    options: Options,
    syslog: Option<crate::syslog::Syslog>,
    since_checkpoint: u64,
    last_checkpoint: Instant,
}

/// The rotated files of `path` (`NAME.1`, `NAME.2`, ...), oldest first.
pub fn rotated_files(path: &Path) -> Vec<(u64, PathBuf)> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Vec::new();
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!("{name}.");
    let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let file = entry.file_name();
            let n = file.to_str()?.strip_prefix(&prefix)?.parse::<u64>().ok()?;
            Some((n, entry.path()))
        })
        .collect();
    found.sort();
    found
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl WriterState {
    /// The writer does not block on the queue: a blocked receiver would be woken by every
    /// record, and on a small machine those wake-ups cost more than the writing. It parks for
    /// the sync interval instead, and is unparked by whoever waits for an answer, or when
    /// [`WAKE_AT`] records are queued.
    fn run(mut self, mut jobs: mpsc::Receiver<Job>) {
        let mut closed = false;
        while !closed {
            let mut batch = Vec::new();
            while batch.len() < MAX_BATCH {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        closed = true;
                        break;
                    }
                }
            }
            if batch.is_empty() {
                if self.unsynced > 0 && self.last_sync.elapsed() >= self.options.sync_interval {
                    let _ = self.sync();
                }
                if !closed {
                    std::thread::park_timeout(self.options.sync_interval);
                }
                continue;
            }
            self.commit(batch);
        }
        if self.unsynced > 0 {
            let _ = self.sync();
        }
        // The last checkpoint: the head as the log closes.
        if self.since_checkpoint > 0 {
            self.checkpoint();
        }
    }

    /// Signs the current head and appends it to the checkpoints file (and syslog).
    fn checkpoint(&mut self) {
        let Some(key) = self.options.checkpoint_key.clone() else {
            return;
        };
        if self.seq == 0 {
            return;
        }
        let line = key.checkpoint(self.seq, &self.head, &crate::format_time(now_ns()));
        let path = crate::checkpoints_path(&self.path);
        let written = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut f| {
                f.write_all(line.as_bytes())?;
                f.write_all(b"\n")?;
                f.sync_data()
            });
        if let Err(e) = written {
            #[allow(clippy::print_stderr)]
            {
                eprintln!(
                    "stockade audit: cannot write a checkpoint to {}: {e}",
                    path.display()
                );
            }
            return;
        }
        if let Some(syslog) = &mut self.syslog {
            syslog.send(line.as_bytes());
        }
        self.since_checkpoint = 0;
        self.last_checkpoint = Instant::now();
    }

    fn sync(&mut self) -> std::io::Result<()> {
        self.file.sync_data()?;
        self.unsynced = 0;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Renames the current file to the next `NAME.N` and starts a new one; the chain goes on.
    fn rotate(&mut self) -> std::io::Result<()> {
        self.sync()?;
        let next = rotated_files(&self.path).last().map_or(1, |(n, _)| n + 1);
        let rotated = PathBuf::from(format!("{}.{next}", self.path.display()));
        std::fs::rename(&self.path, &rotated)?;
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&self.path)?;
        if let Some(dir) = self.path.parent() {
            // The rename and the new file survive a crash.
            File::open(dir)?.sync_all()?;
        }
        self.file = file;
        self.len = 0;
        Ok(())
    }

    fn commit(&mut self, batch: Vec<Job>) {
        if let Some(limit) = self.options.rotate_bytes {
            if self.len > 0 && self.len >= limit {
                if let Err(e) = self.rotate() {
                    // Not rotating loses nothing: the records go on in the current file.
                    #[allow(clippy::print_stderr)]
                    {
                        eprintln!(
                            "stockade audit: cannot rotate {}: {e}; the log keeps growing",
                            self.path.display()
                        );
                    }
                }
            }
        }
        let mut bytes = Vec::with_capacity(batch.len() * 256);
        let mut seq = self.seq;
        let mut head = self.head.clone();
        let mut answers = Vec::with_capacity(batch.len());
        let mut durable = false;
        let time_ns = now_ns();
        for job in batch {
            seq += 1;
            let line = Record::new(job.event, seq, time_ns, head).to_line();
            head = line_hash(&line);
            bytes.extend_from_slice(&line);
            bytes.push(b'\n');
            durable |= job.durability == Durability::Sync;
            answers.push((seq, job.answer));
        }
        let pending = self.unsynced + answers.len();
        let must_sync = durable
            || pending >= self.options.max_unsynced
            || self.last_sync.elapsed() >= self.options.sync_interval;
        let mut written = self.file.write_all(&bytes);
        if written.is_ok() {
            if must_sync {
                written = self.sync();
            } else {
                self.unsynced = pending;
            }
        }
        match written {
            Ok(()) => {
                self.healthy
                    .store(true, std::sync::atomic::Ordering::Release);
                if let Some(syslog) = &mut self.syslog {
                    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                        syslog.send(line);
                    }
                }
                self.len += bytes.len() as u64;
                self.since_checkpoint += seq - self.seq;
                self.seq = seq;
                self.head = head;
                if self.options.checkpoint_key.is_some()
                    && (self.since_checkpoint >= self.options.checkpoint_every
                        || self.last_checkpoint.elapsed() >= self.options.checkpoint_interval)
                {
                    // The head must be on disk before it is signed.
                    if self.unsynced == 0 || self.sync().is_ok() {
                        self.checkpoint();
                    }
                }
                for (seq, answer) in answers {
                    let _ = answer.send(Ok(seq));
                }
            }
            Err(source) => {
                self.healthy
                    .store(false, std::sync::atomic::Ordering::Release);
                // Undo a partial write so the file still ends with a whole, chained record.
                let _ = self.file.set_len(self.len);
                let reason = source.to_string();
                for (_, answer) in answers {
                    let _ = answer.send(Err(AuditError::Write {
                        path: self.path.clone(),
                        reason: reason.clone(),
                    }));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Decision, Kind};

    fn event(n: u32) -> Event {
        Event {
            kind: Some(Kind::Decision),
            uid: Some(n),
            route: Some("GET /_ping".into()),
            decision: Some(if n % 2 == 0 {
                Decision::Allow
            } else {
                Decision::Deny
            }),
            ..Event::default()
        }
    }

    fn verify_file(path: &Path) -> crate::verify::Verified {
        verify(BufReader::new(File::open(path).unwrap()), Anchor::Genesis).unwrap()
    }

    #[tokio::test]
    async fn appends_chain_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        {
            let log = AuditLog::open(&path, Options::default()).unwrap();
            for n in 0..10 {
                let durability = if n % 2 == 0 {
                    Durability::Grouped
                } else {
                    Durability::Sync
                };
                assert_eq!(
                    log.append(event(n), durability).await.unwrap(),
                    u64::from(n) + 1
                );
            }
        }
        assert_eq!(verify_file(&path).last_seq, 10);
        let log = AuditLog::open(&path, Options::default()).unwrap();
        assert_eq!(log.append(event(99), Durability::Sync).await.unwrap(), 11);
        drop(log);
        assert_eq!(verify_file(&path).records, 11);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[tokio::test]
    async fn concurrent_appends_are_one_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = std::sync::Arc::new(AuditLog::open(&path, Options::default()).unwrap());
        let mut tasks = Vec::new();
        for t in 0..8u32 {
            let log = std::sync::Arc::clone(&log);
            tasks.push(tokio::spawn(async move {
                for n in 0..200 {
                    log.append(event(t * 1000 + n), Durability::Grouped)
                        .await
                        .unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        drop(log);
        assert_eq!(verify_file(&path).records, 1600);
    }

    #[tokio::test]
    async fn grouped_appends_without_waiting_are_all_written_by_close() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(&path, Options::default()).unwrap();
        assert!(log.is_healthy());
        for n in 0..500 {
            log.append_grouped(event(n)).await.unwrap();
        }
        drop(log);
        assert_eq!(verify_file(&path).records, 500);
    }

    #[test]
    fn a_crash_cut_last_line_is_dropped_and_the_chain_continues() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        {
            let log = AuditLog::open(&path, Options::default()).unwrap();
            for n in 0..3 {
                log.append_blocking(event(n), Durability::Sync).unwrap();
            }
        }
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(br#"{"v":1,"seq":4,"time_"#);
        std::fs::write(&path, &bytes).unwrap();
        let log = AuditLog::open(&path, Options::default()).unwrap();
        assert_eq!(log.append_blocking(event(7), Durability::Sync).unwrap(), 4);
        drop(log);
        assert_eq!(verify_file(&path).records, 4);
    }

    #[test]
    fn a_tampered_log_is_not_continued() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        {
            let log = AuditLog::open(&path, Options::default()).unwrap();
            for n in 0..3 {
                log.append_blocking(event(n), Durability::Sync).unwrap();
            }
        }
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replacen("\"uid\":0", "\"uid\":5", 1);
        std::fs::write(&path, text).unwrap();
        match AuditLog::open(&path, Options::default()) {
            Err(AuditError::Damaged { line, .. }) => assert_eq!(line, 2),
            other => panic!("expected Damaged, got {other:?}"),
        }
    }

    #[test]
    fn rotation_keeps_the_chain_across_files_and_reopening_continues_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let options = Options {
            rotate_bytes: Some(2000),
            ..Options::default()
        };
        {
            let log = AuditLog::open(&path, options.clone()).unwrap();
            for n in 0..40 {
                log.append_blocking(event(n), Durability::Sync).unwrap();
            }
        }
        let rotated = rotated_files(&path);
        assert!(rotated.len() >= 3, "{rotated:?}");
        // Reopen: the chain goes on, whether the current file has records or not.
        {
            let log = AuditLog::open(&path, options.clone()).unwrap();
            log.append_blocking(event(99), Durability::Sync).unwrap();
        }
        // Every file, oldest first, continues the one before.
        let mut files: Vec<PathBuf> = rotated_files(&path).into_iter().map(|(_, p)| p).collect();
        files.push(path.clone());
        let mut anchor = Anchor::Genesis;
        let mut total = 0;
        for file in &files {
            let v = verify(BufReader::new(File::open(file).unwrap()), anchor.clone()).unwrap();
            total += v.records;
            anchor = Anchor::After {
                seq: v.last_seq + 1,
                head: v.head.clone(),
            };
        }
        assert_eq!(total, 41);
        // A missing middle file breaks the chain.
        let middle = &files[1];
        std::fs::remove_file(middle).unwrap();
        let first = verify(
            BufReader::new(File::open(&files[0]).unwrap()),
            Anchor::Genesis,
        )
        .unwrap();
        let broken = verify(
            BufReader::new(File::open(&files[2]).unwrap()),
            Anchor::After {
                seq: first.last_seq + 1,
                head: first.head,
            },
        );
        assert!(broken.is_err());
    }

    #[test]
    fn checkpoints_detect_truncation_and_forgery() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let key = std::sync::Arc::new(
            crate::CheckpointKey::load_or_create(&dir.path().join("k")).unwrap(),
        );
        let options = Options {
            checkpoint_key: Some(std::sync::Arc::clone(&key)),
            checkpoint_every: 5,
            ..Options::default()
        };
        {
            let log = AuditLog::open(&path, options).unwrap();
            for n in 0..12 {
                log.append_blocking(event(n), Durability::Sync).unwrap();
            }
        }
        let checkpoints = crate::checkpoints_path(&path);
        let public = key.public_hex();
        let files = vec![path.clone()];
        let ok = crate::verify_checkpoints(&files, &checkpoints, &public).unwrap();
        // Every 5 records and at close.
        assert_eq!(ok.last_seq, 12);
        assert!(ok.checkpoints >= 3, "{ok:?}");
        // Removing records from the end (the chain alone cannot tell) is caught.
        let text = std::fs::read_to_string(&path).unwrap();
        let kept: Vec<&str> = text.lines().take(9).collect();
        std::fs::write(&path, format!("{}\n", kept.join("\n"))).unwrap();
        assert!(verify_file(&path).records == 9);
        let err = crate::verify_checkpoints(&files, &checkpoints, &public).unwrap_err();
        assert!(err.contains("records were removed from the end"), "{err}");
        // Another key does not verify the checkpoints.
        let other = crate::CheckpointKey::load_or_create(&dir.path().join("k2")).unwrap();
        std::fs::write(&path, text).unwrap();
        let err = crate::verify_checkpoints(&files, &checkpoints, &other.public_hex()).unwrap_err();
        assert!(err.contains("does not match"), "{err}");
    }
}
