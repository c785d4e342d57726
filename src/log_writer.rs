//! Where log lines go: stderr, written by a thread of their own in batches, so that a request
//! never waits for a line to be written and never wakes another thread to have it written.
//!
//! A line is queued on a bounded channel. The writer thread blocks until a line arrives, then
//! sleeps [`BATCH`], writes all that has been queued in one `write`, and blocks again. While lines keep
//! coming it therefore wakes once per batch, not once per line: a send into the channel wakes
//! nobody unless the thread is blocked on it. (tracing-appender's writer wakes for each line,
//! a futex wake and several `sched_yield`s per request on the gateway's hot path.)
//!
//! Not lossy: when the queue is full, loggers wait. Dropping the [`Guard`] writes everything
//! queued before it; a line logged after that is written directly.

use std::io::Write;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long the writer lets lines gather after the first one before writing them.
const BATCH: Duration = Duration::from_millis(10);
/// Lines queued at most before loggers wait.
const QUEUE: usize = 16 * 1024;

/// A handle for the logging layer: every `write` is one formatted line (tracing-subscriber's
/// formatter writes each event whole).
#[derive(Clone)]
pub(crate) struct Lines(SyncSender<Line>);

enum Line {
    Text(Vec<u8>),
    /// Write everything before this and stop.
    End,
}

/// Stops the writer thread when dropped, after it has written every queued line.
pub(crate) struct Guard {
    lines: Lines,
    thread: Option<JoinHandle<()>>,
}

/// Starts the writer thread.
///
/// # Errors
/// When the thread cannot be started.
pub(crate) fn start() -> std::io::Result<(Lines, Guard)> {
    let (sender, receiver) = sync_channel(QUEUE);
    let thread = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || write_batches(&receiver))?;
    let lines = Lines(sender);
    Ok((
        lines.clone(),
        Guard {
            lines,
            thread: Some(thread),
        },
    ))
}

fn write_batches(receiver: &Receiver<Line>) {
    let mut batch = Vec::with_capacity(64 * 1024);
    loop {
        // Block until there is something to write.
        let mut ended = match receiver.recv() {
            Ok(Line::Text(text)) => {
                batch.extend_from_slice(&text);
                false
            }
            Ok(Line::End) | Err(_) => true,
        };
        // Then sleep rather than wait on the channel: a logger only wakes a thread that waits
        // on it, so the lines of the next BATCH are queued without waking anyone.
        if !ended {
            std::thread::sleep(BATCH);
        }
        while !ended && batch.len() < 1 << 20 {
            match receiver.try_recv() {
                Ok(Line::Text(text)) => batch.extend_from_slice(&text),
                Ok(Line::End) | Err(TryRecvError::Disconnected) => ended = true,
                Err(TryRecvError::Empty) => break,
            }
        }
        // Nothing useful can be done when stderr itself fails.
        let _ = std::io::stderr().lock().write_all(&batch);
        batch.clear();
        if ended {
            return;
        }
    }
}

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Err(unsent) = self.0.send(Line::Text(buf.to_vec())) {
            // The writer has stopped (the process is ending): write the line here.
            if let Line::Text(text) = unsent.0 {
                std::io::stderr().lock().write_all(&text)?;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.lines.0.send(Line::End);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_sent_before_the_guard_is_dropped_are_all_written_in_order() {
        // The writer's own output goes to the test's stderr; what is checked here is that the
        // guard waits for the thread, which has then taken every line off the queue.
        let (mut lines, guard) = start().unwrap();
        for i in 0..1000 {
            writeln!(lines, "line {i}").unwrap();
        }
        let sender = lines.0.clone();
        drop(guard);
        // The receiver is gone once the thread has ended, so a send fails: nothing is left
        // queued behind a stopped writer.
        assert!(sender.try_send(Line::Text(b"late\n".to_vec())).is_err());
        // And a late line still gets written (directly) rather than lost or blocking.
        writeln!(lines, "after the guard").unwrap();
    }
}
