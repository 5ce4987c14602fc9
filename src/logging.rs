//! Log output: readable text on a terminal, JSON for log shippers.

use crate::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; `RUST_LOG` wins over `level`.
pub fn init(level: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests) keeps the first subscriber.
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        // Under systemd the journal adds its own timestamps.
        LogFormat::Auto if std::env::var_os("JOURNAL_STREAM").is_some() => {
            builder.without_time().with_ansi(false).try_init()
        }
        LogFormat::Auto | LogFormat::Text => builder.try_init(),
    };
}
