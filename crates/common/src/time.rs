//! Wall-clock time as unix seconds, and the one RFC 3339 form written here
//! (`2024-01-02T03:04:05Z`, whole seconds, UTC): Key Vault tags, Graph's
//! `…DateTime` fields in the simulator, the times the CLI prints.

/// Current wall-clock time as unix seconds (0 if the clock is before 1970).
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// `2024-01-02T03:04:05Z` for unix seconds; empty for a time chrono cannot represent.
pub fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Unix seconds (with fractions) of an RFC 3339 time, any offset; `None` if it is not one.
pub fn parse_rfc3339(s: &str) -> Option<f64> {
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.timestamp_millis() as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(i64::MAX), "");
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20Z"), Some(1_700_000_000.0));
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20.5+01:00"),
            Some(1_700_000_000.5)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert!(unix_now() > 1_700_000_000.0);
    }
}
