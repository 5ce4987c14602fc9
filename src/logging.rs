//! Log output: the journal under systemd, readable text on a terminal, JSON for log shippers.
//!
//! Under systemd (`JOURNAL_STREAM` names our stderr) events go to journald natively, so
//! their fields become journal fields (`journalctl -u massaged ROUTINE=full-scalp`) and
//! levels become priorities. Secrets never reach this module: the configuration types
//! redact them in their `Debug` output (see `config::sections`).

use std::borrow::Cow;
use std::io::IsTerminal;
// `Targets` (target=level lists) rather than `EnvFilter`: same level syntax, without the
// regex engine `EnvFilter` brings (see docs/PERFORMANCE.md, footprint).
use std::time::{Duration, Instant};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets as LogFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Log output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// journald when started by systemd, else text.
    #[default]
    Auto,
    /// Human-readable text.
    Text,
    /// One JSON object per line.
    Json,
}

/// Level used when neither `RUST_LOG` nor `log.level` is usable.
const FALLBACK_LEVEL: &str = "info";

/// Where and how log events are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sink {
    /// Native journald protocol.
    Journald,
    /// One JSON object per line on stderr.
    Json,
    /// Text lines on stderr.
    Text {
        /// Colours (only on a terminal).
        ansi: bool,
        /// Own timestamps (not when the journal adds its own).
        timestamps: bool,
    },
}

/// Installs the global subscriber; `RUST_LOG` wins over `level`.
///
/// A second call (tests, `ctl` after `run` in one process) keeps the first subscriber.
pub fn init(level: &str, format: LogFormat) {
    let rust_log = std::env::var("RUST_LOG").ok();
    let (filter, filter_warning) = pick_filter(level, rust_log.as_deref());
    let journal_stream = std::env::var("JOURNAL_STREAM").ok();
    let stderr = std::io::stderr();
    let sink = choose_sink(
        format,
        journal_stream.as_deref(),
        stderr_identity(),
        stderr.is_terminal(),
    );

    let mut journald_error = None;
    let installed = match sink {
        Sink::Journald => match journald_layer() {
            Ok(layer) => tracing_subscriber::registry()
                .with(filter)
                .with(layer)
                .try_init(),
            Err(error) => {
                // stderr is still connected to the journal, as plain lines.
                journald_error = Some(error);
                text_init(filter, false, false)
            }
        },
        Sink::Json => tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_max_level(LevelFilter::TRACE)
            .json()
            .flatten_event(true)
            .finish()
            .with(filter)
            .try_init(),
        Sink::Text { ansi, timestamps } => text_init(filter, ansi, timestamps),
    };
    if installed.is_err() {
        return;
    }
    if let Some(error) = journald_error {
        tracing::warn!(%error, "journald socket unusable; logging text to stderr");
    }
    if let Some(warning) = filter_warning {
        tracing::warn!(%warning, fallback = FALLBACK_LEVEL, "log level not understood");
    }
}

fn text_init(
    filter: LogFilter,
    ansi: bool,
    timestamps: bool,
) -> Result<(), tracing_subscriber::util::TryInitError> {
    // The builder's own level (INFO unless set) would cap `filter`: let `filter` decide.
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(LevelFilter::TRACE)
        .with_ansi(ansi);
    if timestamps {
        builder.finish().with(filter).try_init()
    } else {
        builder.without_time().finish().with(filter).try_init()
    }
}

fn journald_layer() -> std::io::Result<tracing_journald::Layer> {
    use tracing_journald::{Priority, PriorityMappings};
    // The crate maps INFO to "notice", which journalctl highlights and which makes
    // `journalctl -p notice` show routine chatter; syslog's usual meaning fits better.
    let priorities = PriorityMappings {
        info: Priority::Informational,
        debug: Priority::Debug,
        ..PriorityMappings::new()
    };
    Ok(tracing_journald::layer()?
        .with_syslog_identifier("massaged".to_string())
        // Our field names (routine, topic, code, ...) never collide with journald's own
        // upper-case fields, and unprefixed they are easy to query.
        .with_field_prefix(None)
        .with_priority_mappings(priorities))
}

/// The filter from `RUST_LOG` if set and valid, else `level`, else [`FALLBACK_LEVEL`];
/// with a message when something given was not understood.
fn pick_filter(level: &str, rust_log: Option<&str>) -> (LogFilter, Option<String>) {
    let mut warning = None;
    if let Some(directives) = rust_log.filter(|d| !d.trim().is_empty()) {
        match directives.parse::<LogFilter>() {
            Ok(filter) => return (filter, None),
            Err(error) => warning = Some(format!("RUST_LOG={directives:?}: {error}")),
        }
    }
    // The filter reads a bare word as a target name ("loud" = trace for target `loud`);
    // in the config that is a typo for a level, so say so instead.
    let bare_non_level = level
        .split(',')
        .map(str::trim)
        .find(|directive| !directive.contains('=') && directive.parse::<LevelFilter>().is_err());
    if let Some(directive) = bare_non_level {
        let message = format!(
            "log.level = {level:?}: {directive:?} is not a level (trace, debug, info, warn, error, off)"
        );
        return (fallback_filter(), Some(message));
    }
    // The embedded broker logs every connection at info; only its problems matter here.
    match format!("{level},mqtt5=warn").parse::<LogFilter>() {
        Ok(filter) => (filter, warning),
        Err(error) => (
            fallback_filter(),
            Some(format!("log.level = {level:?}: {error}")),
        ),
    }
}

/// [`FALLBACK_LEVEL`] for every target.
fn fallback_filter() -> LogFilter {
    LogFilter::new().with_default(tracing::Level::INFO)
}

/// Picks the sink. `journal_stream` is `$JOURNAL_STREAM` (`DEVICE:INODE` of the journal
/// stream systemd gave us) and `stderr` the device and inode of our stderr: they match
/// only when stderr really goes to the journal, not when the variable was inherited by
/// something started from a shell under systemd.
fn choose_sink(
    format: LogFormat,
    journal_stream: Option<&str>,
    stderr: Option<(u64, u64)>,
    stderr_is_terminal: bool,
) -> Sink {
    let to_journal = stderr.is_some() && journal_stream.and_then(parse_journal_stream) == stderr;
    match format {
        LogFormat::Json => Sink::Json,
        LogFormat::Auto if to_journal => Sink::Journald,
        LogFormat::Auto | LogFormat::Text => Sink::Text {
            ansi: stderr_is_terminal && !to_journal,
            timestamps: !to_journal,
        },
    }
}

/// Parses `JOURNAL_STREAM`'s `DEVICE:INODE`.
fn parse_journal_stream(value: &str) -> Option<(u64, u64)> {
    let (device, inode) = value.trim().split_once(':')?;
    Some((device.parse().ok()?, inode.parse().ok()?))
}

/// Device and inode of our stderr, as systemd writes them into `JOURNAL_STREAM`.
fn stderr_identity() -> Option<(u64, u64)> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let fd = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
    let metadata = std::fs::File::from(fd).metadata().ok()?;
    Some((metadata.dev(), metadata.ino()))
}

/// `text` safe to put in a text log line: control characters (newline, carriage return, NUL,
/// escape, ...), the Unicode line separators and the backslash are written as `\n`, `\0`,
/// `\u{1b}`, `\\`, so a value copied from a command can never start a fake log line or hide
/// behind terminal escapes. Borrowed when there is nothing to escape.
pub(crate) fn escape_for_log(text: &str) -> Cow<'_, str> {
    let needs = |c: char| c == '\\' || c.is_control() || matches!(c, '\u{2028}' | '\u{2029}');
    if !text.chars().any(needs) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            '\t' => escaped.push_str("\\t"),
            '\0' => escaped.push_str("\\0"),
            c if needs(c) => escaped.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => escaped.push(c),
        }
    }
    Cow::Owned(escaped)
}

/// At most one log line per interval for a stream of similar events (refused commands, shed
/// messages), each line carrying the true count, and a final line with the count held back
/// when the stream stops. Pure: time comes in as an argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogThrottle {
    interval: Duration,
    last_line: Option<Instant>,
    held_back: u64,
}

impl LogThrottle {
    /// A throttle allowing one line per `interval`.
    pub fn new(interval: Duration) -> LogThrottle {
        LogThrottle {
            interval,
            last_line: None,
            held_back: 0,
        }
    }

    /// One line per second.
    pub(crate) fn per_second() -> LogThrottle {
        LogThrottle::new(Duration::from_secs(1))
    }

    /// Records one event at `now`: `Some(count)` when a line may go out now, `count` being the
    /// events it stands for (this one and those held back since the last line).
    pub(crate) fn record(&mut self, now: Instant) -> Option<u64> {
        self.held_back += 1;
        let due = self
            .last_line
            .is_none_or(|at| now.saturating_duration_since(at) >= self.interval);
        if !due {
            return None;
        }
        self.last_line = Some(now);
        Some(std::mem::take(&mut self.held_back))
    }

    /// When the events held back get their final line (`None` when none are held back).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.held_back == 0 {
            return None;
        }
        self.last_line.map(|at| at + self.interval)
    }

    /// At or after [`LogThrottle::poll_timeout`]: `Some(count)` of the events held back since
    /// the last line, the final count of a burst that has ended.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<u64> {
        let due = self.poll_timeout().is_some_and(|at| now >= at);
        if !due {
            return None;
        }
        self.last_line = Some(now);
        Some(std::mem::take(&mut self.held_back))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: Option<(u64, u64)> = Some((8, 12345));

    #[test]
    fn journal_stream_is_device_and_inode() {
        assert_eq!(parse_journal_stream("8:12345"), Some((8, 12345)));
        assert_eq!(parse_journal_stream("8:12345\n"), Some((8, 12345)));
        assert_eq!(parse_journal_stream("8"), None);
        assert_eq!(parse_journal_stream("a:b"), None);
        assert_eq!(parse_journal_stream(""), None);
    }

    #[test]
    fn auto_uses_journald_when_stderr_is_the_journal_stream() {
        assert_eq!(
            choose_sink(LogFormat::Auto, Some("8:12345"), STREAM, false),
            Sink::Journald
        );
    }

    #[test]
    fn an_inherited_journal_stream_that_is_not_our_stderr_is_ignored() {
        assert_eq!(
            choose_sink(LogFormat::Auto, Some("8:999"), STREAM, true),
            Sink::Text {
                ansi: true,
                timestamps: true
            }
        );
        assert_eq!(
            choose_sink(LogFormat::Auto, Some("8:12345"), None, false),
            Sink::Text {
                ansi: false,
                timestamps: true
            }
        );
    }

    #[test]
    fn a_terminal_gets_colours_and_a_pipe_does_not() {
        assert_eq!(
            choose_sink(LogFormat::Auto, None, STREAM, true),
            Sink::Text {
                ansi: true,
                timestamps: true
            }
        );
        assert_eq!(
            choose_sink(LogFormat::Text, None, STREAM, false),
            Sink::Text {
                ansi: false,
                timestamps: true
            }
        );
    }

    #[test]
    fn explicit_text_under_systemd_leaves_timestamps_to_the_journal() {
        assert_eq!(
            choose_sink(LogFormat::Text, Some("8:12345"), STREAM, false),
            Sink::Text {
                ansi: false,
                timestamps: false
            }
        );
    }

    #[test]
    fn json_is_json_everywhere() {
        assert_eq!(
            choose_sink(LogFormat::Json, Some("8:12345"), STREAM, false),
            Sink::Json
        );
        assert_eq!(choose_sink(LogFormat::Json, None, None, true), Sink::Json);
    }

    #[test]
    fn rust_log_wins_over_the_configured_level() {
        let (filter, warning) = pick_filter("warn", Some("massaged=debug"));
        assert_eq!(filter.to_string(), "massaged=debug");
        assert_eq!(warning, None);
    }

    #[test]
    fn configured_level_applies_without_rust_log() {
        let (filter, warning) = pick_filter("debug", None);
        assert_eq!(filter.to_string(), "mqtt5=warn,debug");
        assert_eq!(warning, None);
        let (filter, _) = pick_filter("debug", Some("  "));
        assert_eq!(filter.to_string(), "mqtt5=warn,debug");
        let (filter, warning) = pick_filter("warn,massaged=debug", None);
        assert_eq!(filter.to_string(), "massaged=debug,mqtt5=warn,warn");
        assert_eq!(warning, None);
    }

    #[test]
    fn bad_levels_fall_back_and_say_so() {
        let (filter, warning) = pick_filter("loud", None);
        assert_eq!(filter.to_string(), FALLBACK_LEVEL);
        assert!(warning.unwrap().contains("log.level"));

        let (filter, warning) = pick_filter("info,massaged=[bad", None);
        assert_eq!(filter.to_string(), FALLBACK_LEVEL);
        assert!(warning.unwrap().contains("log.level"));

        let (filter, warning) = pick_filter("warn", Some("massaged=[bad"));
        assert_eq!(filter.to_string(), "mqtt5=warn,warn");
        assert!(warning.unwrap().contains("RUST_LOG"));
    }

    #[test]
    fn stderr_identity_is_readable() {
        // Whatever stderr is under the test harness, it has a device and inode.
        assert!(stderr_identity().is_some());
    }

    #[test]
    fn escaping_keeps_every_value_on_one_line() {
        assert!(matches!(
            escape_for_log("full-scalp"),
            Cow::Borrowed("full-scalp")
        ));
        assert_eq!(
            escape_for_log("x\nINFO massaged: fake line\r\0\u{1b}[31m\\"),
            "x\\nINFO massaged: fake line\\r\\0\\u{1b}[31m\\\\"
        );
        assert_eq!(escape_for_log("a\u{2028}b\u{85}"), "a\\u{2028}b\\u{85}");
        assert_eq!(escape_for_log("Nacken ümlaut é"), "Nacken ümlaut é");
        for text in ["\n", "\u{0}", "a\u{7f}", "\t\t"] {
            let escaped = escape_for_log(text);
            assert!(!escaped.chars().any(char::is_control), "{escaped:?}");
        }
    }

    #[test]
    fn throttle_lets_one_line_a_second_through_with_the_true_count() {
        let start = Instant::now();
        let ms = |n: u64| start + Duration::from_millis(n);
        let mut throttle = LogThrottle::per_second();
        assert_eq!(throttle.poll_timeout(), None);
        assert_eq!(throttle.record(ms(0)), Some(1));
        for n in 1..1000 {
            assert_eq!(throttle.record(ms(n)), None);
        }
        assert_eq!(throttle.poll_timeout(), Some(ms(1000)));
        // The next event after the interval carries everything held back.
        assert_eq!(throttle.record(ms(1000)), Some(1000));
        assert_eq!(throttle.record(ms(1200)), None);
        assert_eq!(throttle.record(ms(1300)), None);
        // The burst ends: the final line at the timeout says how many were held back.
        assert_eq!(throttle.handle_timeout(ms(1999)), None);
        assert_eq!(throttle.handle_timeout(ms(2000)), Some(2));
        assert_eq!(throttle.poll_timeout(), None);
        assert_eq!(throttle.handle_timeout(ms(5000)), None);
        // Quiet since: the next event is logged at once.
        assert_eq!(throttle.record(ms(5000)), Some(1));
    }
}
