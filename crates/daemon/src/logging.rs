//! Logging setup: human-readable or JSON lines on stderr, filtered by `RUST_LOG`
//! or the configured level.
//!
//! Commands with a config have had both checked by [`crate::config`] (a bad
//! one is exit 2); `demo` and `sim` have none, so a bad `RUST_LOG` there is
//! ignored with a warning rather than silencing the log.

use tracing_subscriber::EnvFilter;

use crate::config::{check_log_filter, LogFormat, LOG_ENV};

/// Installs the global subscriber. `RUST_LOG` wins over `level` when set and not blank.
pub fn init(format: LogFormat, level: &str) {
    let from_env = std::env::var(LOG_ENV).ok().filter(|v| !v.trim().is_empty());
    let (directives, ignored) = match from_env {
        Some(v) => match check_log_filter(&v) {
            Ok(()) => (v, None),
            Err(e) => (level.to_string(), Some(e)),
        },
        None => (level.to_string(), None),
    };
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal;
    // Colour only for a person at a terminal, never into journald or a log file.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    // A second init (tests, demo) keeps the first subscriber; that is fine.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    if let Some(e) = ignored {
        tracing::warn!(error = %e, "{LOG_ENV} ignored; logging at {level}");
    }
}
