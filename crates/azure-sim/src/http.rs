//! HTTP plumbing every simulated service shares: bearer-header, query and
//! form parsing, fresh request ids, and JSON responses with a service's own
//! headers. A leaf, so every service can use it without reaching up.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The token of an `Authorization: Bearer …` header.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = v.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Decoded `application/x-www-form-urlencoded` pairs (query strings too).
pub(crate) fn pairs(raw: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw).into_owned().collect()
}

/// The first value of `key` (exact, case-sensitive as the services are).
pub(crate) fn first<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The query pairs of a request URI.
pub(crate) fn query(uri: &axum::http::Uri) -> Vec<(String, String)> {
    pairs(uri.query().unwrap_or("").as_bytes())
}

/// A header's value as text, if present and valid.
pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A fresh GUID string.
pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A JSON response with `Content-Type: application/json; charset=utf-8`
/// and the given extra headers.
pub(crate) fn json(
    status: StatusCode,
    body: &impl Serialize,
    extra: &[(&'static str, String)],
) -> Response {
    json_with_type(status, "application/json; charset=utf-8", body, extra)
}

/// A JSON response with a service-specific content type.
pub(crate) fn json_with_type(
    status: StatusCode,
    content_type: &str,
    body: &impl Serialize,
    extra: &[(&'static str, String)],
) -> Response {
    let bytes = match serde_json::to_vec(body) {
        Ok(b) => b,
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    with_headers(status, content_type, Body::from(bytes), extra)
}

/// A response with a content type and extra headers; headers whose values
/// are not valid header text are dropped rather than failing the response.
pub(crate) fn with_headers(
    status: StatusCode,
    content_type: &str,
    body: Body,
    extra: &[(&'static str, String)],
) -> Response {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        h.insert(axum::http::header::CONTENT_TYPE, v);
    }
    for (name, value) in extra {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.append(HeaderName::from_static(name), v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert("authorization", HeaderValue::from_static("Bearer abc"));
        assert_eq!(bearer(&h), Some("abc"));
        h.insert("authorization", HeaderValue::from_static("bearer  abc "));
        assert_eq!(bearer(&h), Some("abc"));
        h.insert("authorization", HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
        h.insert("authorization", HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&h), None);
    }

    #[test]
    fn form_parsing() {
        let p = pairs(b"a=1&scope=x%2F.default+openid&a=2");
        assert_eq!(first(&p, "a"), Some("1"));
        assert_eq!(first(&p, "scope"), Some("x/.default openid"));
        assert_eq!(first(&p, "b"), None);
    }
}
