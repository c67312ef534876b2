//! Logging setup: human-readable or JSON lines on stderr, filtered by `RUST_LOG`
//! or the configured level.
//!
//! Every line leaves through [`ScrubbedStderr`], which passes it through
//! `support::scrub` first, whatever field or message carried a secret. The
//! text format also escapes control characters in every field and message
//! (the JSON format escapes them itself), so a newline or an escape sequence
//! in text from outside cannot forge a line or colour a terminal.
//!
//! Commands with a config have had both checked by [`crate::config`] (a bad
//! one is exit 2); `demo` and `sim` have none, so a bad `RUST_LOG` there is
//! ignored with a warning rather than silencing the log.
//!
//! The filter can be replaced while running ([`set_level`]): a configuration
//! reload puts a changed `log.level` in force, unless `--log.level` or
//! `RUST_LOG` chose the level.

use std::io::Write;
use std::sync::OnceLock;

use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use crate::support::scrub::{escape_controls, scrub};

use crate::config::{check_log_filter, LogFormat, LOG_ENV};

/// Puts a new filter in force, once the subscriber is installed.
type SetFilter = Box<dyn Fn(EnvFilter) -> bool + Send + Sync>;

/// The filter of the installed subscriber, and what chose its directives.
struct Installed {
    set: SetFilter,
    /// What overrides `log.level`, if anything: `--log.level` or `RUST_LOG`.
    pinned_by: Option<&'static str>,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();

/// Installs the global subscriber. `flag` (`--log.level`) wins over
/// `RUST_LOG`, which wins over `level` (`log.level`) when set and not blank.
pub fn init(format: LogFormat, level: &str, flag: Option<&str>) {
    let from_env = std::env::var(LOG_ENV).ok().filter(|v| !v.trim().is_empty());
    let (directives, ignored, pinned_by) = match (flag, from_env) {
        (Some(f), _) => (f.to_string(), None, Some("--log.level")),
        (None, Some(v)) => match check_log_filter(&v) {
            Ok(()) => (v, None, Some(LOG_ENV)),
            Err(e) => (level.to_string(), Some(e), None),
        },
        (None, None) => (level.to_string(), None, None),
    };
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal;
    // Colour only for a person at a terminal, never into journald or a log file.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(ScrubbedStderr);
    // A second init (tests, demo) keeps the first subscriber; that is fine.
    let set: Option<SetFilter> = match format {
        LogFormat::Text => {
            let b = builder.fmt_fields(escaped_fields()).with_filter_reloading();
            let handle = b.reload_handle();
            b.try_init()
                .ok()
                .map(|()| Box::new(move |f| handle.reload(f).is_ok()) as SetFilter)
        }
        LogFormat::Json => {
            let b = builder.json().flatten_event(true).with_filter_reloading();
            let handle = b.reload_handle();
            b.try_init()
                .ok()
                .map(|()| Box::new(move |f| handle.reload(f).is_ok()) as SetFilter)
        }
    };
    if let Some(set) = set {
        let _ = INSTALLED.set(Installed { set, pinned_by });
    }
    if let Some(e) = ignored {
        tracing::warn!(error = %e, "{LOG_ENV} ignored; logging at {level}");
    }
}

/// Puts `level` (a reloaded `log.level`, already checked) in force. `Err`
/// says why it was not: `--log.level` or `RUST_LOG` override it, or this
/// process's subscriber was installed elsewhere.
pub fn set_level(level: &str) -> Result<(), String> {
    let installed = INSTALLED
        .get()
        .ok_or_else(|| "the log subscriber cannot be changed".to_string())?;
    if let Some(by) = installed.pinned_by {
        return Err(format!("{by} overrides log.level"));
    }
    let filter = EnvFilter::try_new(level).map_err(|e| e.to_string())?;
    if (installed.set)(filter) {
        Ok(())
    } else {
        Err("the log subscriber is gone".to_string())
    }
}

/// The text format's fields: `name=value`, the message bare, each with its
/// control characters escaped (`\n`, `\u{1b}`), as tracing's default
/// formatter writes them otherwise.
fn escaped_fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> + 'static {
    tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
        let text = format!("{value:?}");
        let text = escape_controls(&text);
        if field.name() == "message" {
            write!(w, "{text}")
        } else {
            write!(w, "{}={text}", field.name())
        }
    })
    .delimited(" ")
}

/// stderr, with each formatted event scrubbed of secrets before it is written.
pub struct ScrubbedStderr;

impl<'a> MakeWriter<'a> for ScrubbedStderr {
    type Writer = ScrubWriter;

    fn make_writer(&'a self) -> Self::Writer {
        ScrubWriter
    }
}

/// Writes one scrubbed event to stderr. tracing's formatter hands over each
/// event whole, in one `write`, so a secret is never split across calls.
pub struct ScrubWriter;

impl Write for ScrubWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().write_all(scrub(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn text_fields_and_messages_cannot_forge_lines_or_colour() {
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .fmt_fields(escaped_fields())
            .with_writer(move || out.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let hostile = "ok\n2026-01-01T00:00:00Z ERROR forged\u{1b}[31m";
            tracing::warn!(tenant = %hostile, quoted = hostile, "message {hostile}");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text.matches('\n').count(),
            1,
            "one event, one line: {text:?}"
        );
        assert!(!text.contains('\u{1b}'), "{text:?}");
        assert!(text.contains("tenant=ok\\n2026"), "{text:?}");
        assert!(text.contains("message ok\\n2026"), "{text:?}");
    }
}
