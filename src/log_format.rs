//! How a log line is written when it goes to a file or a pipe (the services' journal, `up`'s
//! stderr): the text tracing-subscriber's default format gives without colours,
//!
//! `2026-12-01T20:48:50.618375Z  INFO request forwarded conn=1563 uid=0 path="/_ping"`,
//!
//! in less than half the time (0.5 against 1.2 us for the gateway's per-request line, formatted
//! in a loop on the 2-core VM; in the gateway, between requests, both cost more). The time of
//! day is formatted once a second per thread; fields are written straight, without tracing's
//! styling layers. And every
//! value is escaped, not only the message: a control character in a path, an engine answer or
//! an error (a newline that would forge a line, an escape sequence for a terminal) is written
//! as `\n`, `\x1b`, `\u{9b}`. Spans are not shown (Stockade opens none).

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The plain line format (see the module docs).
pub(crate) struct Plain;

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        timestamp(&mut writer, SystemTime::now())?;
        writer.write_str(match *event.metadata().level() {
            Level::TRACE => " TRACE ",
            Level::DEBUG => " DEBUG ",
            Level::INFO => "  INFO ",
            Level::WARN => "  WARN ",
            Level::ERROR => " ERROR ",
        })?;
        let mut fields = Fields {
            writer: &mut writer,
            first: true,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_char('\n')
    }
}

/// `YYYY-MM-DDTHH:MM:SS.uuuuuuZ`, as tracing-subscriber's `SystemTime` timer writes it.
fn timestamp(writer: &mut impl fmt::Write, now: SystemTime) -> fmt::Result {
    thread_local! {
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    SECOND.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != secs {
            // The audit log's RFC 3339 formatter, to the second (it adds milliseconds).
            let mut text = stockade_audit::format_time(secs.saturating_mul(1_000_000_000));
            text.truncate(19);
            cached.1 = text;
            cached.0 = secs;
        }
        writer.write_str(&cached.1)
    })?;
    write!(writer, ".{:06}Z", since.subsec_micros())
}

/// Writes an event's message, then ` name=value` for each other field.
struct Fields<'a, 'w> {
    writer: &'a mut Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    fn field(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        if self.result.is_err() || field.name().starts_with("log.") {
            return;
        }
        let name = field.name();
        let name = name.strip_prefix("r#").unwrap_or(name);
        let mut out = Escaping(&mut *self.writer);
        self.result = (|| {
            if !std::mem::take(&mut self.first) {
                out.0.write_char(' ')?;
            }
            if name != "message" {
                out.0.write_str(name)?;
                out.0.write_char('=')?;
            }
            out.write_fmt(value)
        })();
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.field(field, format_args!("{value}"));
        } else {
            self.field(field, format_args!("{value:?}"));
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, format_args!("{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, format_args!("{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, format_args!("{value}"));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.field(field, format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, format_args!("{value:?}"));
    }
}

/// Passes text through with control characters escaped (tab aside).
struct Escaping<'a, W: fmt::Write + ?Sized>(&'a mut W);

impl<W: fmt::Write + ?Sized> fmt::Write for Escaping<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(at) = rest.find(|c: char| c.is_control() && c != '\t') {
            self.0.write_str(&rest[..at])?;
            let mut chars = rest[at..].chars();
            let c = chars.next().unwrap_or_default();
            match c {
                '\n' => self.0.write_str("\\n")?,
                '\r' => self.0.write_str("\\r")?,
                c if u32::from(c) < 0x80 => write!(self.0, "\\x{:02x}", u32::from(c))?,
                c => write!(self.0, "\\u{{{:x}}}", u32::from(c))?,
            }
            rest = chars.as_str();
        }
        self.0.write_str(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, RwLock};

    /// A writer for tests: everything written, kept.
    #[derive(Clone, Default)]
    struct Captured(Arc<RwLock<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.write().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.read().unwrap().clone()).unwrap()
        }
    }

    fn emit_all() {
        let method = http::Method::GET;
        let error = std::io::Error::other("engine gone");
        tracing::info!(
            conn = 7_u64,
            uid = 1000_u32,
            pid = -1_i32,
            %method,
            path = "/v1.41/containers/json",
            operation = "container_list",
            ok = true,
            micros = 106_u64,
            "request forwarded"
        );
        tracing::warn!(error = %error, detail = ?Some("x"), "engine connection lost");
        tracing::error!("no fields at all");
        tracing::debug!(count = 3, "debug with {} formatting", "inline");
    }

    fn captured_with(plain: bool) -> String {
        let out = Captured::default();
        let sink = out.clone();
        let builder = tracing_subscriber::fmt()
            .with_max_level(Level::DEBUG)
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .with_target(false);
        if plain {
            tracing::subscriber::with_default(builder.event_format(Plain).finish(), emit_all);
        } else {
            tracing::subscriber::with_default(builder.finish(), emit_all);
        }
        out.text()
    }

    /// The lines without their timestamps (the two formats are asked for the time apart).
    fn untimed(text: &str) -> Vec<String> {
        text.lines()
            .map(|l| l.split_once(' ').map_or(l, |(_, rest)| rest).to_owned())
            .collect()
    }

    #[test]
    fn lines_match_tracing_subscribers_default_format() {
        let ours = captured_with(true);
        let theirs = captured_with(false);
        assert_eq!(
            untimed(&ours),
            untimed(&theirs),
            "ours:\n{ours}\ntheirs:\n{theirs}"
        );
        assert_eq!(ours.lines().count(), 4);
        // The timestamps have the same shape.
        for (a, b) in ours.lines().zip(theirs.lines()) {
            let (a, b) = (a.split(' ').next().unwrap(), b.split(' ').next().unwrap());
            assert_eq!(a.len(), b.len(), "{a} / {b}");
            assert_eq!(a[..13], b[..13], "{a} / {b}");
        }
    }

    #[test]
    fn timestamps_are_utc_with_microseconds() {
        let at = |secs: u64, micros: u32| {
            let mut out = String::new();
            timestamp(
                &mut out,
                UNIX_EPOCH + std::time::Duration::new(secs, micros * 1000),
            )
            .unwrap();
            out
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.000005Z");
        assert_eq!(at(1_796_164_130, 618_375), "2026-12-01T22:28:50.618375Z");
        assert_eq!(at(4_102_444_799, 999_999), "2099-12-31T23:59:59.999999Z");
        // The cached second is not reused for another one.
        assert_eq!(at(4_102_444_800, 0), "2100-01-01T00:00:00.000000Z");
    }

    #[test]
    fn control_characters_are_escaped_in_every_value() {
        let out = Captured::default();
        let sink = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .event_format(Plain)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let forged = "x\n2026-12-01T00:00:00.000000Z  INFO forged";
            tracing::warn!(reason = %forged, path = forged, "a \x1b[31mred\x1b[0m\u{9b}2J message\ttab");
        });
        let text = out.text();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.ends_with(
            "  WARN a \\x1b[31mred\\x1b[0m\\u{9b}2J message\ttab reason=x\\n2026-12-01T00:00:00.000000Z  INFO forged path=\"x\\n2026-12-01T00:00:00.000000Z  INFO forged\"\n"
        ), "{text}");
    }
}
