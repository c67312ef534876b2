//! The one retry policy: exponential backoff with full jitter, and never
//! sooner than the server asked for with `Retry-After`.
//!
//! The request path, the token broker and scheduled rotation each pick their
//! own [`Backoff`] (a base and a cap fit for what they retry) but compute
//! every wait here, so they agree on what `Retry-After: 0`, an HTTP date or a
//! huge value means.
//!
//! Full jitter draws the wait uniformly between zero and the exponential
//! bound: thousands of tenants throttled at the same instant then come back
//! spread over the whole window instead of in synchronised waves
//! (<https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/>).

use std::time::{Duration, SystemTime};

use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// The shortest wait after a `Retry-After`, however small: `Retry-After: 0`
/// from a throttling service means "soon", and retrying in the same
/// millisecond only earns another 429.
pub const RETRY_AFTER_FLOOR: Duration = Duration::from_secs(1);

/// The longest `Retry-After` believed; larger values (or dates further out)
/// are clamped to it. Whether to wait that long is each caller's decision.
pub const RETRY_AFTER_MAX: Duration = Duration::from_secs(24 * 3600);

/// Exponential backoff with full jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Upper bound of the first retry's wait; each retry doubles it.
    pub base: Duration,
    /// The bound stops growing here.
    pub cap: Duration,
}

impl Backoff {
    /// A policy starting at `base` and doubling up to `cap`.
    pub const fn new(base: Duration, cap: Duration) -> Self {
        Self { base, cap }
    }

    /// The upper bound of the wait before retry `attempt` (1 is the first retry):
    /// `min(cap, base · 2^(attempt − 1))`.
    pub fn bound(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.base
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.cap)
            .min(self.cap)
    }

    /// The wait before retry `attempt`: a uniform draw in `[0, bound(attempt)]`,
    /// but never shorter than the server's `Retry-After` (itself at least
    /// [`RETRY_AFTER_FLOOR`]).
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let bound = self.bound(attempt);
        let jittered = if bound.is_zero() {
            Duration::ZERO
        } else {
            bound.mul_f64(rand::thread_rng().gen_range(0.0..=1.0))
        };
        match retry_after {
            Some(asked) => asked.max(RETRY_AFTER_FLOOR).max(jittered),
            None => jittered,
        }
    }
}

/// Cost Management's own back-off header after a 429, in seconds
/// (<https://learn.microsoft.com/azure/cost-management-billing/costs/manage-automation>).
const COST_RETRY_AFTER: &str = "x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after";

/// `Retry-After` of a response, as a delay from now (RFC 9110 §10.2.3):
/// delay-seconds, or an HTTP date in any of its three forms; without one,
/// Cost Management's `x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after`.
/// `None` when absent or unreadable.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers
        .get(RETRY_AFTER)
        .or_else(|| headers.get(COST_RETRY_AFTER))?
        .to_str()
        .ok()?;
    parse_retry_after(v, SystemTime::now())
}

/// The pure part of [`retry_after`], with the clock passed in. A date in the
/// past is "now" (zero); values beyond [`RETRY_AFTER_MAX`] are clamped to it.
pub fn parse_retry_after(v: &str, now: SystemTime) -> Option<Duration> {
    let v = v.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        // All digits but too long for u64 is still "a very long time".
        let secs = v.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(RETRY_AFTER_MAX));
    }
    // IMF-fixdate, RFC 850 and asctime: the three forms HTTP allows.
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(RETRY_AFTER_MAX),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// 2015-10-21T07:28:00Z, the instant the examples below are relative to.
    const NOW: u64 = 1_445_412_480;

    #[test]
    fn cost_managements_own_retry_after_counts_when_retry_after_is_absent() {
        use reqwest::header::HeaderValue;
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(COST_RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(
            retry_after(&h),
            Some(Duration::from_secs(3)),
            "Retry-After first"
        );
    }

    #[test]
    fn retry_after_in_every_form_http_allows() {
        let now = at(NOW);
        let d = |v| parse_retry_after(v, now);
        assert_eq!(d("57"), Some(Duration::from_secs(57)));
        assert_eq!(d(" 0 "), Some(Duration::ZERO));
        assert_eq!(
            d("Wed, 21 Oct 2015 07:29:00 GMT"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            d("Wednesday, 21-Oct-15 07:29:00 GMT"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(d("Wed Oct 21 07:29:00 2015"), Some(Duration::from_secs(60)));
        assert_eq!(
            d("Wed, 21 Oct 2015 07:00:00 GMT"),
            Some(Duration::ZERO),
            "a past date is now"
        );
        assert_eq!(d("99999999999999999999999"), Some(RETRY_AFTER_MAX));
        for bad in ["soon", "-3", "", "1.5", "12s"] {
            assert_eq!(d(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn full_jitter_stays_within_the_doubling_bound_and_the_cap() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        assert_eq!(b.bound(1), Duration::from_secs(1));
        assert_eq!(b.bound(3), Duration::from_secs(4));
        assert_eq!(b.bound(6), Duration::from_secs(30));
        assert_eq!(b.bound(u32::MAX), Duration::from_secs(30));
        let draws: Vec<Duration> = (0..2000).map(|_| b.delay(4, None)).collect();
        assert!(draws.iter().all(|d| *d <= Duration::from_secs(8)));
        // Full jitter, not "±20 %": draws reach both ends of [0, 8 s].
        assert!(draws.iter().any(|d| *d < Duration::from_secs(1)));
        assert!(draws.iter().any(|d| *d > Duration::from_secs(7)));
    }

    #[test]
    fn retry_after_is_a_floor_never_shortened_by_jitter() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        for _ in 0..200 {
            assert_eq!(
                b.delay(1, Some(Duration::from_secs(7))),
                Duration::from_secs(7)
            );
            let zero = b.delay(1, Some(Duration::ZERO));
            assert_eq!(zero, RETRY_AFTER_FLOOR, "Retry-After: 0 waits the floor");
        }
        let long = Backoff::new(Duration::from_secs(60), Duration::from_secs(60));
        let d = long.delay(1, Some(Duration::from_secs(2)));
        assert!(d >= Duration::from_secs(2) && d <= Duration::from_secs(60));
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn seconds_round_trip(secs in 0u64..=24 * 3600, now in 0u64..4_000_000_000) {
            prop_assert_eq!(parse_retry_after(&secs.to_string(), at(now)), Some(Duration::from_secs(secs)));
        }

        #[test]
        fn http_dates_round_trip(secs in 0u64..=24 * 3600, now in 0u64..4_000_000_000) {
            let date = httpdate::fmt_http_date(at(now + secs));
            prop_assert_eq!(parse_retry_after(&date, at(now)), Some(Duration::from_secs(secs)));
        }

        #[test]
        fn any_text_is_none_or_at_most_a_day(v in ".{0,64}", now in 0u64..4_000_000_000) {
            if let Some(d) = parse_retry_after(&v, at(now)) {
                prop_assert!(d <= RETRY_AFTER_MAX);
            }
        }
    }
}
