//! proptest strategies for hostile HTTP responses, shared by the property tests
//! of every parser (test builds only).

use proptest::prelude::*;
use serde_json::{Map, Value};

/// Keys the parsers look for, so generated objects reach past the first field.
const KEYS: &[&str] = &[
    "value",
    "nextLink",
    "@odata.nextLink",
    "access_token",
    "expires_in",
    "refresh_token",
    "error",
    "error_description",
    "error_codes",
    "code",
    "message",
    "description",
    "statusCode",
    "items",
    "links",
    "next",
    "uri",
    "headers",
    "key",
    "data",
    "$skipToken",
    "resultTruncated",
    "id",
    "attributes",
    "exp",
    "enabled",
    "tags",
    "contentType",
    "companyProfile",
    "tenantId",
    "subscriptionId",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(KEYS).prop_map(str::to_string),
        1 => ".{0,8}",
    ]
}

/// Any JSON value, nested a few levels, with keys biased to the ones parsed.
pub fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,20}".prop_map(Value::String),
        Just(Value::String("https://127.0.0.1/next".into())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A response body: random bytes, JSON, JSON cut short, or an HTML error page.
pub fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        json().prop_map(|v| v.to_string().into_bytes()),
        (json(), any::<prop::sample::Index>()).prop_map(|(v, i)| {
            let s = v.to_string().into_bytes();
            let cut = i.index(s.len().max(1));
            s[..cut.min(s.len())].to_vec()
        }),
        Just(b"<html><body><h1>502 Bad Gateway</h1></body></html>".to_vec()),
    ]
}

/// An HTTP status, biased to the ones the parsers branch on.
pub fn status() -> impl Strategy<Value = reqwest::StatusCode> {
    prop_oneof![
        3 => Just(200u16),
        1 => proptest::sample::select(&[201u16, 204, 400, 401, 403, 404, 429, 500, 502, 503][..]),
        1 => 100u16..1000,
    ]
    .prop_map(|s| reqwest::StatusCode::from_u16(s).unwrap_or(reqwest::StatusCode::OK))
}

/// Response headers with an arbitrary `Retry-After` and `Date`.
pub fn headers() -> impl Strategy<Value = reqwest::header::HeaderMap> {
    (
        proptest::option::of(".{0,40}"),
        proptest::option::of(".{0,40}"),
    )
        .prop_map(|(retry, date)| {
            let mut h = reqwest::header::HeaderMap::new();
            for (name, v) in [
                (reqwest::header::RETRY_AFTER, retry),
                (reqwest::header::DATE, date),
            ] {
                if let Some(v) = v.and_then(|v| reqwest::header::HeaderValue::from_str(&v).ok()) {
                    h.insert(name, v);
                }
            }
            h
        })
}
