//! Where log lines go: a bounded queue drained into stderr by one writer
//! thread, so that a request pays for formatting its line, never for
//! `write(2)` and never for a slow reader.
//!
//! Logging never blocks a decision. When stderr takes lines more slowly than
//! they come (a pipe read slowly, a stuck log shipper), lines are dropped
//! instead of requests delayed: granted decision lines once the queue is
//! three quarters full, every line once it is full, so denials and
//! operational lines are the last to go. Every drop is counted
//! (`authgate_log_lines_dropped_total{kind}`) and, once the writer has caught
//! up, summarised in one `log lines dropped` line. The writer used to be
//! lossless, and a slow reader slowed every request: a deliberate change.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, LazyLock, OnceLock};

/// Which lines go first when the queue fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// A granted decision: dropped from three quarters full.
    Granted,
    /// Denials and every other line: dropped only when full.
    Other,
}

impl Priority {
    fn as_str(self) -> &'static str {
        match self {
            Priority::Granted => "granted",
            Priority::Other => "other",
        }
    }
}

/// Lines dropped, by `kind` (`granted`, `other`): one family for the
/// process, registered by every [`crate::obs::metrics::Metrics`].
pub static DROPPED: LazyLock<Family<crate::obs::metrics::KindLabels, Counter>> =
    LazyLock::new(Family::default);

fn dropped(priority: Priority) -> u64 {
    DROPPED.get_or_create(&crate::obs::metrics::KindLabels { kind: priority.as_str() }).get()
}

enum Msg {
    Line(Vec<u8>),
    Stop,
}

/// The queue's sending side, shared by every thread that logs.
pub struct Sink {
    tx: mpsc::SyncSender<Msg>,
    queued: Arc<AtomicUsize>,
    capacity: usize,
    granted_limit: usize,
}

/// How long exit waits for queued lines to reach stderr: a stuck reader
/// must not hold the process (it held a benchmark's server for minutes).
const EXIT_FLUSH_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Stops the writer when dropped, after it has written what is queued, or
/// after [`EXIT_FLUSH_WAIT`] when stderr does not take it.
pub struct Guard {
    tx: mpsc::SyncSender<Msg>,
    done: mpsc::Receiver<()>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        // Senders never hold more than `capacity` slots of the channel's
        // `capacity + 1`: there is room for this message.
        if self.tx.try_send(Msg::Stop).is_ok() {
            let _ = self.done.recv_timeout(EXIT_FLUSH_WAIT);
        }
    }
}

static INSTALLED: OnceLock<Sink> = OnceLock::new();

/// The process's sink, once [`install`]ed (the binary; not a library user
/// or an in-process test).
pub fn installed() -> Option<&'static Sink> {
    INSTALLED.get()
}

/// Installs the process's sink writing to `out`; `summary` formats the
/// line that reports drops (granted, other). `None` when one is installed
/// already (the first stays).
pub fn install(
    out: Box<dyn Write + Send>,
    capacity: usize,
    summary: fn(u64, u64) -> Vec<u8>,
) -> Option<(&'static Sink, Guard)> {
    let (sink, guard) = Sink::start(out, capacity, summary).ok()?;
    INSTALLED.set(sink).ok()?;
    Some((INSTALLED.get()?, guard))
}

impl Sink {
    /// A sink of `capacity` lines and its writer thread.
    pub fn start(
        out: Box<dyn Write + Send>,
        capacity: usize,
        summary: fn(u64, u64) -> Vec<u8>,
    ) -> std::io::Result<(Sink, Guard)> {
        let capacity = capacity.max(4);
        let (tx, rx) = mpsc::sync_channel(capacity + 1);
        let (done_tx, done) = mpsc::channel();
        let queued = Arc::new(AtomicUsize::new(0));
        std::thread::Builder::new().name("authgate-log".into()).spawn({
            let queued = queued.clone();
            move || {
                write_lines(rx, &queued, out, summary);
                let _ = done_tx.send(());
            }
        })?;
        let sink = Sink { tx: tx.clone(), queued, capacity, granted_limit: capacity / 4 * 3 };
        Ok((sink, Guard { tx, done }))
    }

    /// Queues one line (ending in `\n`), or drops and counts it when the
    /// queue is past `priority`'s limit.
    pub fn send(&self, line: Vec<u8>, priority: Priority) {
        let limit = if priority == Priority::Granted { self.granted_limit } else { self.capacity };
        // The slot is taken before the send, so concurrent senders never
        // overshoot the limit.
        let taken = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < limit).then_some(n + 1))
            .is_ok();
        if taken && self.tx.try_send(Msg::Line(line)).is_ok() {
            return;
        }
        if taken {
            self.queued.fetch_sub(1, Ordering::AcqRel);
        }
        DROPPED.get_or_create(&crate::obs::metrics::KindLabels { kind: priority.as_str() }).inc();
    }

    /// A writer for one line of `priority`: queued when dropped.
    pub fn line(&self, priority: Priority) -> LineWriter<'_> {
        LineWriter { sink: self, priority, buf: Vec::new() }
    }
}

/// Collects one line and queues it when dropped (tracing's formatter writes
/// an event through one of these).
pub struct LineWriter<'a> {
    sink: &'a Sink,
    priority: Priority,
    buf: Vec<u8>,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter<'_> {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            self.sink.send(std::mem::take(&mut self.buf), self.priority);
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for &'static Sink {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> LineWriter<'a> {
        self.line(Priority::Other)
    }
}

/// The writer thread: writes what is queued, flushes whenever the queue is
/// empty, and then reports drops since the last report.
///
/// While lines keep coming it does not wait on the channel but naps a
/// millisecond between batches: a receiver parked on the channel makes
/// every send a futex wake-up (a system call on the request's thread, which
/// cost more than formatting the line); a napping one is never woken, and
/// at 70,000 lines a second a batch is ~70 lines.
fn write_lines(
    rx: mpsc::Receiver<Msg>,
    queued: &AtomicUsize,
    out: Box<dyn Write + Send>,
    summary: fn(u64, u64) -> Vec<u8>,
) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    let mut reported = [dropped(Priority::Granted), dropped(Priority::Other)];
    let mut next = rx.recv().ok();
    while let Some(first) = next {
        let mut stop = false;
        let mut msg = Some(first);
        while let Some(m) = msg {
            match m {
                Msg::Line(line) => {
                    queued.fetch_sub(1, Ordering::AcqRel);
                    let _ = out.write_all(&line);
                }
                Msg::Stop => stop = true,
            }
            msg = rx.try_recv().ok();
        }
        let _ = out.flush();
        // Reported once caught up: while the flush waited, lines may have
        // queued (and others been dropped); those go out first.
        let caught_up = queued.load(Ordering::Acquire) == 0;
        let now = [dropped(Priority::Granted), dropped(Priority::Other)];
        if caught_up && now != reported {
            let _ = out.write_all(&summary(now[0] - reported[0], now[1] - reported[1]));
            let _ = out.flush();
            reported = now;
        }
        if stop {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
        next = match rx.try_recv() {
            Ok(m) => Some(m),
            Err(mpsc::TryRecvError::Empty) => rx.recv().ok(),
            Err(mpsc::TryRecvError::Disconnected) => None,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A stderr that takes nothing until opened, then everything.
    #[derive(Clone)]
    struct Gate {
        open: Arc<(Mutex<bool>, std::sync::Condvar)>,
        written: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Gate {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            let (lock, cv) = &*self.open;
            let mut open = lock.lock().unwrap();
            while !*open {
                open = cv.wait(open).unwrap();
            }
            self.written.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn summary(granted: u64, other: u64) -> Vec<u8> {
        format!("dropped granted={granted} other={other}\n").into_bytes()
    }

    #[test]
    fn a_stuck_reader_drops_granted_lines_first_and_reports_them() {
        let gate = Gate { open: Default::default(), written: Default::default() };
        let before = [dropped(Priority::Granted), dropped(Priority::Other)];
        let (sink, guard) = Sink::start(Box::new(gate.clone()), 8, summary).unwrap();
        // The writer takes the first line and blocks in write(2) on it.
        sink.send(b"first\n".to_vec(), Priority::Other);
        while sink.queued.load(Ordering::Acquire) != 0 {
            std::thread::yield_now();
        }
        // 8 slots: granted lines fill 6, the rest are dropped; denials take
        // the last 2, then they are dropped too. Nothing here waits.
        let cases = [
            ("granted, below three quarters", Priority::Granted, 6, 6),
            ("granted, past three quarters", Priority::Granted, 3, 6),
            ("other, up to full", Priority::Other, 2, 8),
            ("other, past full", Priority::Other, 2, 8),
        ];
        for (description, priority, n, queued_after) in cases {
            for i in 0..n {
                sink.send(format!("{} {i}\n", priority.as_str()).into_bytes(), priority);
            }
            assert_eq!(sink.queued.load(Ordering::Acquire), queued_after, "{description}");
        }
        let after = [dropped(Priority::Granted), dropped(Priority::Other)];
        // Other tests may drop lines in this process too: at least ours.
        assert!(after[0] - before[0] >= 3 && after[1] - before[1] >= 2, "{before:?} -> {after:?}");
        *gate.open.0.lock().unwrap() = true;
        gate.open.1.notify_all();
        drop(guard);
        let written = String::from_utf8(gate.written.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = written.lines().collect();
        assert_eq!(lines.iter().filter(|l| l.starts_with("granted")).count(), 6, "{written}");
        assert_eq!(lines.iter().filter(|l| l.starts_with("other")).count(), 2, "{written}");
        let report = lines.last().unwrap();
        assert!(report.starts_with("dropped granted="), "the summary comes once caught up: {written}");
    }
}
