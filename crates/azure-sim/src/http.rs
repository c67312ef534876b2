//! Plumbing shared by every simulated service: injected latency, request
//! counting, query/form parsing and JSON responses.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::Serialize;

use crate::faults::Fault;
use crate::jwt;
use crate::requests::RequestRecord;
use crate::server::fault_bodies;
use crate::service::Service;
use crate::state::SimState;

/// Wraps a service's router with request recording, latency and fault
/// injection (in that order: faulted requests are recorded too).
pub(crate) fn instrument(router: Router, state: Arc<SimState>, service: Service) -> Router {
    router.layer(axum::middleware::from_fn_with_state(
        (state, service),
        track,
    ))
}

async fn track(
    State((state, service)): State<(Arc<SimState>, Service)>,
    req: Request,
    next: Next,
) -> Response {
    let tenant = match service {
        // The token endpoint is counted by the tenant in its path, resolved
        // to an id when it is a known domain.
        Service::Token => req
            .uri()
            .path()
            .trim_start_matches('/')
            .split('/')
            .next()
            // The device-login page and the federation issuer name no tenant.
            .filter(|s| !s.is_empty() && *s != "devicelogin" && *s != "k8s-oidc")
            .map(|seg| {
                state
                    .world
                    .tenant(seg)
                    .map_or_else(|| seg.to_ascii_lowercase(), |t| t.id.clone())
            }),
        // Resources are counted by the tenant the presented token is for.
        _ => bearer(req.headers())
            .and_then(jwt::claims_unverified)
            .and_then(|c| c.get("tid").and_then(|v| v.as_str()).map(str::to_string)),
    };
    let fault = state.faults.decide(service, tenant.as_deref());
    state.record(RequestRecord {
        service,
        tenant,
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
    });
    let latency = state.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut resp = match fault {
        None => next.run(req).await,
        // Held until the fault is lifted; dropped if the client gives up first.
        Some((Fault::Hang, lift)) => {
            state.faults.hang(&lift).await;
            next.run(req).await
        }
        Some((fault, _)) => {
            fault_bodies::respond(&state, service, fault, req.uri().path(), req.headers())
        }
    };
    // `Date` on the simulated clock, as the real services stamp theirs: clients that
    // measure lifetimes in the server's frame see the moved clock. (hyper only adds
    // its own `Date` when the response has none.)
    let date = state
        .clock
        .now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    if let Ok(v) = HeaderValue::from_str(&date) {
        resp.headers_mut().insert(axum::http::header::DATE, v);
    }
    resp
}

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
