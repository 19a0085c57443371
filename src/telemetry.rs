//! Logging setup. Every log line comes from `tracing`; tokens and secrets
//! are never given to it (see `pipeline` for the decision line's fields).

use crate::config::{LogConfig, LogFormat};
use std::io::IsTerminal;
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// Lines buffered between the request threads and the writer thread. When
/// full, request threads wait (lossless): losing decision lines silently
/// would be worse than slowing down.
const LOG_QUEUE_LINES: usize = 64 * 1024;

/// Installs the global subscriber, writing to stderr from a background
/// thread so that a decision line costs its formatting, not a `write(2)`;
/// the writer batches through a buffer and flushes whenever the queue is
/// empty. `RUST_LOG`, when set, replaces the configured level. Keep the
/// returned guard alive until exit: dropping it flushes. `None` when a
/// subscriber was already installed.
pub fn init(log: &LogConfig) -> Option<WorkerGuard> {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new(&log.level));
    let ansi = std::io::stderr().is_terminal();
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .finish(std::io::BufWriter::with_capacity(64 * 1024, std::io::stderr()));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(ansi);
    let installed = match log.format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).try_init(),
        LogFormat::Human => builder.compact().try_init(),
    };
    installed.ok().map(|()| guard)
}
