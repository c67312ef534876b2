//! `Retry-After` (delay-seconds or HTTP-date) and `Date` header values.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use reqwest::header::{HeaderMap, HeaderValue, DATE, RETRY_AFTER};
use tenantwatch_daemon::outbound::client::{parse_retry_after, retry_after, server_time};

const DAY: Duration = Duration::from_secs(24 * 3600);

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = std::str::from_utf8(data) {
        let now = chrono::DateTime::from_timestamp(1_445_412_480, 0).expect("static time");
        if let Some(d) = parse_retry_after(v, now) {
            assert!(d <= DAY, "{v:?} -> {d:?}");
        }
    }
    if let Ok(v) = HeaderValue::from_bytes(data) {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, v.clone());
        h.insert(DATE, v);
        if let Some(d) = retry_after(&h) {
            assert!(d <= DAY);
        }
        let _ = server_time(&h);
    }
});
