//! What a log filter (`log.level`, `RUST_LOG`) may say.
//!
//! tracing's `EnvFilter` reads a word it does not know as a target name:
//! `warning` becomes "everything from the module `warning`, at trace", which
//! silences every other line, ERROR included, while the daemon runs on. So a
//! filter is accepted only when each comma-separated directive is a level or
//! `TARGET=LEVEL` (spans and fields as `EnvFilter` allows) with LEVEL one of
//! [`LEVELS`], and `EnvFilter` parses the whole.

use tracing_subscriber::EnvFilter;

/// The variable that overrides `log.level` when set and not blank.
pub const LOG_ENV: &str = "RUST_LOG";

/// The levels a directive may name.
pub const LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "off"];

/// `Ok` when `filter` is a filter the daemon logs by; otherwise why not, in
/// words for the key or variable it came from.
pub fn check_log_filter(filter: &str) -> Result<(), String> {
    let levels = LEVELS.join(", ");
    if filter.trim().is_empty() {
        return Err(format!("is empty; expected a level ({levels})"));
    }
    for directive in filter.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let level = match level_of(directive) {
            Some(level) => level,
            None => directive,
        };
        if !LEVELS.iter().any(|l| l.eq_ignore_ascii_case(level.trim())) {
            let what = if level == directive {
                format!("{directive:?} is not a level")
            } else {
                format!("{directive:?} has level {level:?}")
            };
            return Err(format!(
                "{what}; expected {levels}, or TARGET=LEVEL (e.g. tenantwatch_daemon=debug,info)"
            ));
        }
    }
    EnvFilter::builder()
        .parse(filter)
        .map(|_| ())
        .map_err(|e| format!("{filter:?} is not a log filter: {e}"))
}

/// The text after a directive's `=` outside `[span{field=…}]`, if it has one.
fn level_of(directive: &str) -> Option<&str> {
    let mut depth = 0usize;
    for (i, c) in directive.char_indices() {
        match c {
            '[' | '{' => depth += 1,
            ']' | '}' => depth = depth.saturating_sub(1),
            '=' if depth == 0 => return Some(&directive[i + 1..]),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_target_levels_pass() {
        for ok in [
            "info",
            "debug",
            "off",
            "WARN",
            "tenantwatch_daemon=debug,info",
            "tenantwatch_daemon::collect=trace, warn",
            "hyper=off,reqwest[request{tenant=contoso}]=debug",
        ] {
            assert_eq!(check_log_filter(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn unknown_levels_and_bare_targets_are_refused() {
        let e = check_log_filter("warning").unwrap_err();
        assert!(e.contains("\"warning\" is not a level"), "{e}");
        assert!(e.contains("trace, debug, info, warn, error, off"), "{e}");
        let e = check_log_filter("info,tenantwatch_daemon=verbose").unwrap_err();
        assert!(
            e.contains("\"tenantwatch_daemon=verbose\" has level \"verbose\""),
            "{e}"
        );
        assert!(check_log_filter("tenantwatch_daemon").is_err());
        assert!(check_log_filter("3").is_err());
        assert!(check_log_filter(" ").unwrap_err().contains("is empty"));
        // A level but not a directive EnvFilter can parse.
        let e = check_log_filter("!x=info").unwrap_err();
        assert!(e.contains("is not a log filter"), "{e}");
    }
}
