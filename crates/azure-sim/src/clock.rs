//! The simulator's clock: wall time plus an adjustable offset, so tests can
//! jump 90 days ahead to expire refresh tokens without waiting.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Wall clock shifted by an offset that only ever grows.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    offset_secs: AtomicI64,
}

impl Clock {
    /// Current simulated time, whole seconds since the epoch.
    pub fn now_unix(&self) -> i64 {
        Utc::now().timestamp() + self.offset_secs.load(Ordering::Relaxed)
    }

    /// Current simulated time.
    pub fn now(&self) -> DateTime<Utc> {
        to_datetime(self.now_unix())
    }

    /// Moves simulated time forward.
    pub fn advance(&self, by: Duration) {
        let secs = i64::try_from(by.as_secs()).unwrap_or(i64::MAX / 4);
        self.offset_secs.fetch_add(secs, Ordering::Relaxed);
    }
}

/// Unix seconds to a UTC time; out-of-range values clamp to the epoch.
pub(crate) fn to_datetime(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

/// `2024-01-02 03:04:05Z`, the timestamp format of Entra error bodies.
pub(crate) fn entra_timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// `2024-01-02T03:04:05`, the `innerError.date` format of Graph errors.
pub(crate) fn graph_date(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// `2024-01-02T03:04:05.0000000Z`, .NET round-trip format used in AADSTS messages.
pub(crate) fn dotnet_round_trip(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S.0000000Z").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_moves_now_forward() {
        let c = Clock::default();
        let before = c.now_unix();
        c.advance(Duration::from_secs(90 * 86_400));
        assert!(c.now_unix() - before >= 90 * 86_400);
    }

    #[test]
    fn formats() {
        let t = to_datetime(1_700_000_000);
        assert_eq!(entra_timestamp(t), "2023-11-14 22:13:20Z");
        assert_eq!(graph_date(t), "2023-11-14T22:13:20");
        assert_eq!(dotnet_round_trip(t), "2023-11-14T22:13:20.0000000Z");
        // Graph's `…DateTime` fields use the project's one RFC 3339 form.
        assert_eq!(
            tenantwatch_common::time::rfc3339(1_700_000_000),
            "2023-11-14T22:13:20Z"
        );
    }
}
