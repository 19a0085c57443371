//! Logging setup. Every log line comes from `tracing`; tokens and secrets
//! are never given to it (see `gate::decision` for the decision line's fields).
//!
//! JSON lines are written by [`JsonLine`]: it caches the formatted second of
//! the timestamp and escapes strings itself, at about a third of the cost of
//! the generic JSON formatter. The one line per decision authgate writes on
//! every request skips tracing's machinery altogether ([`info_line`]: its
//! fields formatted straight into the line, a third of the instructions
//! again). Lines go to stderr through [`crate::obs::sink`]: a request pays
//! for formatting, never for `write(2)` or a slow reader.

use crate::config::{LogConfig, LogFormat};
use crate::obs::sink::{Guard, Priority};
use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::io::IsTerminal;
use std::time::{SystemTime, UNIX_EPOCH};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

static FORMAT: std::sync::OnceLock<LogFormat> = std::sync::OnceLock::new();

/// Installs the global subscriber, writing to stderr through the log sink
/// (at most `queue_lines` waiting). `RUST_LOG`, when set, replaces the
/// configured level. Keep the returned guard alive until exit: dropping it
/// writes what is queued. `None` when a subscriber was already installed.
pub fn init(log: &LogConfig) -> Option<Guard> {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new(&log.level));
    let ansi = std::io::stderr().is_terminal();
    let summary = match log.format {
        LogFormat::Json => json_summary,
        LogFormat::Human => human_summary,
    };
    let (sink, guard) = crate::obs::sink::install(Box::new(std::io::stderr()), log.queue_lines, summary)?;
    let _ = FORMAT.set(log.format);
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(sink).with_ansi(ansi);
    let installed = match log.format {
        LogFormat::Json => builder.event_format(JsonLine).try_init(),
        LogFormat::Human => builder.compact().fmt_fields(SafeFields).try_init(),
    };
    installed.ok().map(|()| guard)
}

/// A field value of a line written by [`info_line`].
#[derive(Debug, Clone, Copy)]
pub enum FieldValue<'a> {
    /// A string, escaped for the format.
    Str(&'a str),
    /// `true` / `false`.
    Bool(bool),
    /// A number.
    U64(u64),
}

/// Writes one INFO line of `target` with `message` and `fields` (`None`
/// values left out, as tracing leaves out absent ones), in the configured
/// format, straight to the sink with `priority`: the same line tracing
/// would write, for a third of the work. Without an installed sink (a
/// library user) the line goes through tracing as its message. The caller
/// checks the level first (`tracing::enabled!`).
pub fn info_line(target: &str, message: &str, fields: &[(&str, Option<FieldValue<'_>>)], priority: Priority) {
    match crate::obs::sink::installed().zip(FORMAT.get()) {
        Some((sink, format)) => {
            sink.send(format_line(*format, "INFO", target, message, fields).into_bytes(), priority)
        }
        None => {
            let line = format_line(LogFormat::Json, "INFO", target, message, fields);
            tracing::info!("{}", line.trim_end());
        }
    }
}

/// One line as [`JsonLine`] or tracing's `compact()` with [`SafeFields`]
/// writes it, ending in a newline.
fn format_line(
    format: LogFormat,
    level: &str,
    target: &str,
    message: &str,
    fields: &[(&str, Option<FieldValue<'_>>)],
) -> String {
    let mut line = String::with_capacity(320);
    let escape: fn(&mut String, &str) = match format {
        LogFormat::Json => {
            line.push_str("{\"timestamp\":\"");
            push_timestamp(&mut line, SystemTime::now());
            line.push_str("\",\"level\":\"");
            line.push_str(level);
            line.push_str("\",\"target\":");
            push_json_str(&mut line, target);
            line.push_str(",\"message\":");
            push_json_str(&mut line, message);
            push_json_str
        }
        LogFormat::Human => {
            push_timestamp(&mut line, SystemTime::now());
            line.push_str(if level.len() < 5 { "  " } else { " " });
            line.push_str(level);
            line.push(' ');
            line.push_str(target);
            line.push_str(": ");
            push_human_value(&mut line, message);
            push_human_value
        }
    };
    for (name, value) in fields {
        let Some(value) = value else { continue };
        // Field names are the code's own identifiers: nothing to escape.
        match format {
            LogFormat::Json => {
                line.push_str(",\"");
                line.push_str(name);
                line.push_str("\":");
            }
            LogFormat::Human => {
                line.push(' ');
                line.push_str(name);
                line.push('=');
            }
        }
        match value {
            FieldValue::Str(s) => escape(&mut line, s),
            FieldValue::Bool(b) => line.push_str(if *b { "true" } else { "false" }),
            FieldValue::U64(n) => line.push_str(itoa::Buffer::new().format(*n)),
        }
    }
    line.push_str(if format == LogFormat::Json { "}\n" } else { "\n" });
    line
}

/// The line that reports drops, once stderr has caught up.
fn summary(format: LogFormat, granted: u64, other: u64) -> Vec<u8> {
    let fields = [("granted", Some(FieldValue::U64(granted))), ("other", Some(FieldValue::U64(other)))];
    format_line(format, "WARN", "authgate::obs::sink", "log lines dropped", &fields).into_bytes()
}

fn json_summary(granted: u64, other: u64) -> Vec<u8> {
    summary(LogFormat::Json, granted, other)
}

fn human_summary(granted: u64, other: u64) -> Vec<u8> {
    summary(LogFormat::Human, granted, other)
}

/// One JSON object per event: `timestamp` (RFC 3339, UTC, microseconds),
/// `level`, `target`, `message`, then the event's fields at the top level.
/// Span context is not included.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLine;

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = String::with_capacity(256);
        line.push_str("{\"timestamp\":\"");
        push_timestamp(&mut line, SystemTime::now());
        line.push_str("\",\"level\":\"");
        line.push_str(event.metadata().level().as_str());
        line.push_str("\",\"target\":");
        push_json_str(&mut line, event.metadata().target());
        event.record(&mut JsonFields { line: &mut line });
        line.push_str("}\n");
        writer.write_str(&line)
    }
}

struct JsonFields<'a> {
    line: &'a mut String,
}

impl JsonFields<'_> {
    fn key(&mut self, field: &Field) {
        self.line.push(',');
        push_json_str(self.line, field.name());
        self.line.push(':');
    }
}

impl Visit for JsonFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        push_json_str(self.line, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.line.push_str(if value { "true" } else { "false" });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        let _ = write!(self.line, "{value}");
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        let _ = write!(self.line, "{value}");
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.key(field);
        push_json_str(self.line, &format!("{value:?}"));
    }
}

/// Appends `s` as a JSON string literal (RFC 8259 escaping).
pub fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    // Most values (names, reasons, ids, addresses) are plain printable
    // ASCII: one branch-free pass, then one copy.
    if !s.bytes().fold(false, |special, b| special | !(0x20..0x7f).contains(&b) | (b == b'"') | (b == b'\\'))
    {
        out.push_str(s);
        out.push('"');
        return;
    }
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x00..=0x1f | 0x7f => "",
            // A multi-byte character: escaped when it is a C1 control or an
            // invisible formatting character (bidi overrides...).
            0xc2..=0xf4 => {
                let c = s[i..].chars().next().unwrap_or_default();
                if !is_deceptive(c) {
                    continue;
                }
                out.push_str(&s[start..i]);
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{:04x}", u);
                }
                start = i + c.len_utf8();
                continue;
            }
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Characters that change how a log line reads without being visible
/// themselves: controls (C0, DEL, C1) and Unicode formatting characters
/// (bidi embeddings and overrides, isolates, zero-width characters, line
/// and paragraph separators, the BOM).
pub fn is_deceptive(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061c}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}')
}

/// Appends `s` for the human format: deceptive characters as `\u{..}`,
/// and the whole value in quotes (with `"` and `\` escaped) when it holds
/// anything that could make it read as more than one field: a space, `=`,
/// a quote, or an escaped character. A value from a request or a token can
/// then neither start a new line nor add a `granted=true` of its own.
pub fn push_human_value(out: &mut String, s: &str) {
    let ascii_plain = !s.bytes().fold(false, |special, b| {
        special | !(0x21..0x7f).contains(&b) | (b == b'=') | (b == b'"') | (b == b'\\')
    });
    let plain = !s.is_empty()
        && (ascii_plain
            || !s.chars().any(|c| c == ' ' || c == '=' || c == '"' || c == '\\' || is_deceptive(c)));
    if plain {
        out.push_str(s);
        return;
    }
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if is_deceptive(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Field formatter of the human format: every field value goes through
/// [`push_human_value`], whatever its origin (tracing's default prints
/// `%`-formatted values raw).
#[derive(Debug, Clone, Copy, Default)]
pub struct SafeFields;

impl<'w> FormatFields<'w> for SafeFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        mut writer: Writer<'w>,
        fields: R,
    ) -> fmt::Result {
        let mut visitor = HumanFields { line: String::new() };
        fields.record(&mut visitor);
        writer.write_str(&visitor.line)
    }
}

struct HumanFields {
    line: String,
}

impl Visit for HumanFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if !self.line.is_empty() {
            self.line.push(' ');
        }
        if field.name() != "message" {
            self.line.push_str(field.name());
            self.line.push('=');
        }
        push_human_value(&mut self.line, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

thread_local! {
    /// The last second formatted on this thread, as `YYYY-MM-DDTHH:MM:SS`.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// Appends `t` as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC).
fn push_timestamp(out: &mut String, t: SystemTime) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    SECOND.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.0 != secs {
            cache.1.clear();
            let (y, m, day) = civil_from_days((secs / 86_400) as i64);
            let s = secs % 86_400;
            let _ =
                write!(cache.1, "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
            cache.0 = secs;
        }
        out.push_str(&cache.1);
    });
    // Six digits, zero-padded, without the formatting machinery.
    let micros = d.subsec_micros() + 1_000_000;
    out.push('.');
    out.push_str(&itoa::Buffer::new().format(micros)[1..]);
    out.push('Z');
}

/// (year, month, day) of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn escapes_like_serde_json() {
        for s in ["plain", "quote\" back\\slash", "nl\n tab\t cr\r", "ctl \u{1} \u{1f}", "ünïcødé ✓", ""]
        {
            let mut out = String::new();
            push_json_str(&mut out, s);
            assert_eq!(serde_json::from_str::<String>(&out).unwrap(), s, "{out}");
        }
    }

    #[test]
    fn json_escapes_deceptive_characters() {
        let mut out = String::new();
        push_json_str(&mut out, "admin\u{202e}nimda\u{7f}\u{85}\u{1b}[31m ü");
        assert_eq!(out, "\"admin\\u202enimda\\u007f\\u0085\\u001b[31m ü\"");
        assert_eq!(
            serde_json::from_str::<String>(&out).unwrap(),
            "admin\u{202e}nimda\u{7f}\u{85}\u{1b}[31m ü"
        );
    }

    #[test]
    fn human_values_cannot_forge_fields_or_lines() {
        let cases = [
            ("plain", "orders", "orders"),
            ("unicode stays readable", "jürgen@example.com", "jürgen@example.com"),
            ("a forged field is quoted", "x granted=true subject=admin", "\"x granted=true subject=admin\""),
            (
                "newline",
                "x\n2026-11-27T00:00:00Z INFO decision granted=true",
                "\"x\\u{a}2026-11-27T00:00:00Z INFO decision granted=true\"",
            ),
            ("escape sequence", "\u{1b}[2J", "\"\\u{1b}[2J\""),
            ("bidi override", "admin\u{202e}", "\"admin\\u{202e}\""),
            ("NUL", "a\0b", "\"a\\u{0}b\""),
            ("quotes", "a\"b", "\"a\\\"b\""),
            ("empty", "", "\"\""),
        ];
        for (description, value, want) in cases {
            let mut out = String::new();
            push_human_value(&mut out, value);
            assert_eq!(out, want, "{description}");
        }
    }

    #[test]
    fn direct_lines_match_the_formats() {
        let fields = [
            ("adapter", Some(FieldValue::Str("verify"))),
            ("reason", None),
            ("subject", Some(FieldValue::Str("a b\n\"c\""))),
            ("granted", Some(FieldValue::Bool(true))),
            ("latency_us", Some(FieldValue::U64(42))),
        ];
        let json = format_line(LogFormat::Json, "INFO", "authgate::gate::decision", "decision", &fields);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["message"], "decision");
        assert_eq!(v["subject"], "a b\n\"c\"");
        assert_eq!((v["granted"].as_bool(), v["latency_us"].as_u64()), (Some(true), Some(42)));
        assert!(v.get("reason").is_none(), "absent fields are left out");
        let human = format_line(LogFormat::Human, "INFO", "authgate::gate::decision", "decision", &fields);
        let tail = human.split_once("Z  INFO ").unwrap().1;
        assert_eq!(
            tail,
            "authgate::gate::decision: decision adapter=verify subject=\"a b\\u{a}\\\"c\\\"\" granted=true latency_us=42\n"
        );
        let warn = String::from_utf8(human_summary(3, 0)).unwrap();
        assert!(
            warn.contains("Z  WARN authgate::obs::sink: \"log lines dropped\" granted=3 other=0"),
            "{warn}"
        );
        let warn: serde_json::Value = serde_json::from_slice(&json_summary(3, 1)).unwrap();
        assert_eq!((warn["level"].as_str(), warn["other"].as_u64()), (Some("WARN"), Some(1)));
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let cases = [
            (0, "1970-01-01T00:00:00.000000Z"),
            (951_782_400, "2000-02-29T00:00:00.000000Z"),
            (1_795_680_645, "2026-11-26T08:10:45.000000Z"),
            (4_102_444_799, "2099-12-31T23:59:59.000000Z"),
        ];
        for (secs, want) in cases {
            let mut out = String::new();
            push_timestamp(&mut out, UNIX_EPOCH + Duration::from_secs(secs));
            assert_eq!(out, want);
        }
        let mut out = String::new();
        push_timestamp(&mut out, UNIX_EPOCH + Duration::from_micros(1_500_000));
        assert_eq!(out, "1970-01-01T00:00:01.500000Z");
    }
}
