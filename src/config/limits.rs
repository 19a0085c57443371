//! `[server]` limits and timeouts of both listening ports.

use super::read::{Reader, Section, parse_bounded, parse_duration};
use std::time::Duration;

/// The limits and timeouts of both listening ports (`[server]`), so that
/// no client can hold more than a bounded share of memory, descriptors and
/// time. Worst-case memory is stated in the README's Security model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenLimits {
    /// `max_connections`: default 256, per port (1..=65536). At the cap,
    /// new connections wait in the kernel backlog.
    pub max_connections: usize,
    /// `max_streams_per_connection`: default 100 (1..=1024): HTTP/2
    /// concurrent streams on one gRPC connection.
    pub max_streams_per_connection: u32,
    /// `max_in_flight`: default 128 (1..=65536): gRPC requests being
    /// decoded or decided at once, process-wide; beyond it
    /// RESOURCE_EXHAUSTED at once. Bounds the memory of announced messages
    /// at `max_in_flight × max_message_bytes`.
    pub max_in_flight: usize,
    /// `request_timeout`: default 15s: a gRPC request (reading its message
    /// included) taking longer is cancelled (DEADLINE_EXCEEDED).
    pub request_timeout: Duration,
    /// `handshake_timeout`: default 10s: a new connection must start its
    /// handshake (gRPC: the 24-byte HTTP/2 preface) within this.
    pub handshake_timeout: Duration,
    /// `http_header_timeout`: default 10s: the HTTP port closes a connection
    /// whose request head is not complete this long after it began to wait
    /// for one (slowloris, and idle keep-alive).
    pub http_header_timeout: Duration,
    /// `keepalive_interval`: default 30s: gRPC connections are pinged this
    /// often when quiet.
    pub keepalive_interval: Duration,
    /// `keepalive_timeout`: default 10s: a ping unanswered this long closes
    /// the connection.
    pub keepalive_timeout: Duration,
}

impl Default for ListenLimits {
    fn default() -> Self {
        Self {
            max_connections: 256,
            max_streams_per_connection: 100,
            max_in_flight: 128,
            request_timeout: Duration::from_secs(15),
            handshake_timeout: Duration::from_secs(10),
            http_header_timeout: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
        }
    }
}

pub(super) fn read_limits(r: &mut Reader<'_>, s: &mut Section<'_>) -> ListenLimits {
    let d = ListenLimits::default();
    let mut count = |s: &mut Section<'_>, key: &str, max: usize, default: usize| {
        s.parsed(r, key, None, None, |v| parse_bounded(v, 1, max)).unwrap_or(default)
    };
    let max_connections = count(s, "max_connections", 65_536, d.max_connections);
    let max_streams_per_connection =
        count(s, "max_streams_per_connection", 1024, d.max_streams_per_connection as usize) as u32;
    let max_in_flight = count(s, "max_in_flight", 65_536, d.max_in_flight);
    let mut time = |s: &mut Section<'_>, key: &str, default: Duration| {
        let v = s.parsed(r, key, None, None, parse_duration).unwrap_or(default);
        if v.is_zero() || v > Duration::from_secs(3600) {
            r.errors.push(format!("server.{key} must be between 1ms and 1h"));
        }
        v
    };
    ListenLimits {
        max_connections,
        max_streams_per_connection,
        max_in_flight,
        request_timeout: time(s, "request_timeout", d.request_timeout),
        handshake_timeout: time(s, "handshake_timeout", d.handshake_timeout),
        http_header_timeout: time(s, "http_header_timeout", d.http_header_timeout),
        keepalive_interval: time(s, "keepalive_interval", d.keepalive_interval),
        keepalive_timeout: time(s, "keepalive_timeout", d.keepalive_timeout),
    }
}
