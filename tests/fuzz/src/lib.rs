//! The input format the response targets share: a first line `STATUS[ RETRY-AFTER]`
//! and the body after it, so seeds are readable files (`200\n{"value":[]}`).

use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::StatusCode;

/// Tenant every target passes; errors must name it.
pub const TENANT: &str = "fuzz-tenant-0001";

/// A response as the parsers see it.
pub struct Response<'a> {
    /// The status line's code.
    pub status: StatusCode,
    /// `Retry-After`, when the first line has one.
    pub headers: HeaderMap,
    /// Everything after the first line.
    pub body: &'a [u8],
}

/// Splits fuzz input into a response. Input without a valid first line is all
/// body with status 200, so raw JSON files work as seeds too.
pub fn response(data: &[u8]) -> Response<'_> {
    let ok = |body| Response {
        status: StatusCode::OK,
        headers: HeaderMap::new(),
        body,
    };
    let Some(nl) = data.iter().position(|b| *b == b'\n') else {
        return ok(data);
    };
    let Ok(head) = std::str::from_utf8(&data[..nl]) else {
        return ok(data);
    };
    let (code, retry) = match head.split_once(' ') {
        Some((c, r)) => (c, Some(r)),
        None => (head, None),
    };
    let Some(status) = code.parse().ok().and_then(|c| StatusCode::from_u16(c).ok()) else {
        return ok(data);
    };
    let mut headers = HeaderMap::new();
    if let Some(v) = retry.and_then(|r| HeaderValue::from_str(r).ok()) {
        headers.insert(RETRY_AFTER, v);
    }
    Response {
        status,
        headers,
        body: &data[nl + 1..],
    }
}

/// Panics (a fuzz finding) unless `text` names both the API and the tenant.
pub fn assert_names(text: &str, api: &str) {
    assert!(
        text.contains(api) && text.contains(TENANT),
        "error does not name {api} and the tenant: {text}"
    );
}
