//! The one HTTP client every API client shares, and the response handling they
//! have in common: size caps, JSON decoding with context, Microsoft's error
//! bodies, and the claims challenges (CAE) of a `401`'s `WWW-Authenticate`.

use std::path::Path;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Client, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;

use crate::support::scrub;

/// Largest response body read from any Microsoft API. Real pages are far smaller;
/// the cap keeps a broken or hostile endpoint from exhausting memory.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Why the HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The extra CA file could not be read.
    #[error("cloud.ca_file: cannot read {path}: {source}")]
    ReadCa {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A certificate in the CA file is not valid.
    #[error("cloud.ca_file: {path}: {source}")]
    BadCa {
        path: String,
        #[source]
        source: reqwest::Error,
    },
    /// reqwest refused the configuration.
    #[error("cannot build HTTP client: {0}")]
    Build(#[source] reqwest::Error),
}

/// Builds the shared client: rustls with the web PKI roots plus `ca_file`,
/// `HTTPS_PROXY`/`NO_PROXY` from the environment (reqwest's default), and
/// `request_timeout` for each request (a timed-out request is retried).
pub fn build_client(
    ca_file: Option<&Path>,
    request_timeout: Duration,
) -> Result<Client, ClientError> {
    let mut b = Client::builder()
        .user_agent(concat!("tenantwatch/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10).min(request_timeout))
        .timeout(request_timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .https_only(true);
    if let Some(path) = ca_file {
        let pem = crate::support::files::read_capped(path, crate::support::files::DOCUMENT_LIMIT)
            .map_err(|source| ClientError::ReadCa {
            path: path.display().to_string(),
            source,
        })?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| ClientError::BadCa {
                path: path.display().to_string(),
                source,
            })?;
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    b.build().map_err(ClientError::Build)
}

/// A failed call to a Microsoft API, with the API, tenant and URL it concerns.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No response: DNS, connect, TLS, timeout.
    // reqwest's own text leaves the reason (refused, certificate, timeout) to its causes.
    #[error("{api} {url} (tenant {tenant}): request failed: {}", crate::support::error_text::chain(.source))]
    Transport {
        api: &'static str,
        tenant: String,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The service answered with an error status.
    #[error("{api} {url} (tenant {tenant}): HTTP {status}: {code}: {message}{}", refused(.refused_wait))]
    Status {
        api: &'static str,
        tenant: String,
        url: String,
        status: u16,
        code: String,
        message: String,
        retry_after: Option<Duration>,
        /// Set when a retryable answer was not retried because its `Retry-After` was too long.
        refused_wait: Option<RefusedWait>,
    },
    /// The body was not what the API documents.
    #[error("{api} {url} (tenant {tenant}): unexpected response body: {source} (body starts {snippet:?})")]
    Decode {
        api: &'static str,
        tenant: String,
        url: String,
        #[source]
        source: serde_json::Error,
        snippet: String,
    },
    /// The body exceeded [`MAX_BODY_BYTES`].
    #[error("{api} {url} (tenant {tenant}): response larger than {limit} bytes")]
    TooLarge {
        api: &'static str,
        tenant: String,
        url: String,
        limit: usize,
    },
    /// A next-page link pointed at another host: following it would send the
    /// tenant's bearer token there.
    #[error("{api} {url} (tenant {tenant}): next-page link {link:?} leaves the API's host; not followed")]
    ForeignNextLink {
        api: &'static str,
        tenant: String,
        url: String,
        link: String,
    },
    /// A claims challenge (Continuous Access Evaluation): 401 with
    /// `WWW-Authenticate: Bearer … error="insufficient_claims", claims="<base64>"`.
    /// The token was revoked before its expiry; `claims` (decoded JSON) must
    /// go back to Entra with the next redemption.
    /// <https://learn.microsoft.com/entra/identity-platform/claims-challenge>
    #[error("{api} {url} (tenant {tenant}): HTTP 401: insufficient_claims: the access token was revoked (claims challenge)")]
    ClaimsChallenge {
        api: &'static str,
        tenant: String,
        url: String,
        /// The decoded claims request, a JSON object; outside text, never logged.
        claims: String,
    },
    /// Paging did not end within the cap.
    #[error("{api} {url} (tenant {tenant}): more than {max} pages; stopping")]
    TooManyPages {
        api: &'static str,
        tenant: String,
        url: String,
        max: usize,
    },
}

/// A `Retry-After` the request path would not wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefusedWait {
    /// What the server asked for.
    pub asked: Duration,
    /// The longest wait allowed ([`crate::config::ApiLimits::max_retry_wait`]).
    pub allowed: Duration,
}

fn refused(w: &Option<RefusedWait>) -> String {
    match w {
        Some(w) => format!(
            "; the server asked to wait {} s, more than the {} s allowed, so it was not retried",
            w.asked.as_secs(),
            w.allowed.as_secs()
        ),
        None => String::new(),
    }
}

impl ApiError {
    /// True for failures worth retrying soon: throttling, 5xx, no response.
    pub fn is_transient(&self) -> bool {
        match self {
            ApiError::Transport { .. } => true,
            ApiError::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

/// Sends a request and returns status, headers and a size-capped body. The cap
/// is checked against `Content-Length` up front and again chunk by chunk, so a
/// body that lies about or omits its length is never held beyond the cap.
pub async fn send(
    api: &'static str,
    tenant: &str,
    url: &str,
    req: RequestBuilder,
) -> Result<(StatusCode, HeaderMap, Vec<u8>), ApiError> {
    // A followed next-page link is the server's text: errors keep it scrubbed,
    // and the transport error's own copy of the URL is dropped.
    let transport = |source: reqwest::Error| ApiError::Transport {
        api,
        tenant: tenant.to_string(),
        url: scrub::upstream(url),
        source: source.without_url(),
    };
    let too_large = || ApiError::TooLarge {
        api,
        tenant: tenant.to_string(),
        url: scrub::upstream(url),
        limit: MAX_BODY_BYTES,
    };
    // Every outbound request ends within the request timeout; each end is
    // progress for the watchdog of the job that sent it.
    let resp = req.send().await;
    crate::support::liveness::progress();
    let mut resp: Response = resp.map_err(transport)?;
    let status = resp.status();
    let headers = resp.headers().clone();
    if resp.content_length().unwrap_or(0) > MAX_BODY_BYTES as u64 {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(transport)? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, headers, body))
}

/// True when `link` has the scheme, host and port of `url`, so a next-page
/// link can be followed with the same bearer token.
pub fn same_origin(url: &str, link: &str) -> bool {
    match (url::Url::parse(url), url::Url::parse(link)) {
        (Ok(a), Ok(b)) => a.origin() == b.origin(),
        _ => false,
    }
}

/// Sends a request and decodes a JSON success body, or turns an error status into [`ApiError::Status`].
pub async fn send_json<T: DeserializeOwned>(
    api: &'static str,
    tenant: &str,
    url: &str,
    req: RequestBuilder,
) -> Result<(T, HeaderMap), ApiError> {
    let (status, headers, body) = send(api, tenant, url, req).await?;
    let value = parse_json(api, tenant, url, status, &headers, &body)?;
    Ok((value, headers))
}

/// The pure half of every JSON call: a success status decodes `body` as `T`,
/// any other becomes [`ApiError::Status`]. The fuzz targets call this too.
pub fn parse_json<T: DeserializeOwned>(
    api: &'static str,
    tenant: &str,
    url: &str,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, ApiError> {
    if !status.is_success() {
        return Err(status_error(api, tenant, url, status, headers, body));
    }
    // 204 No Content has no body: it decodes as `null` (an `Option` is
    // `None`, anything else a decode error naming the empty body).
    if status == StatusCode::NO_CONTENT && body.iter().all(u8::is_ascii_whitespace) {
        return decode(api, tenant, url, b"null");
    }
    decode(api, tenant, url, body)
}

/// Decodes JSON, keeping the start of the body for the error message.
pub fn decode<T: DeserializeOwned>(
    api: &'static str,
    tenant: &str,
    url: &str,
    body: &[u8],
) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|source| ApiError::Decode {
        api,
        tenant: tenant.to_string(),
        url: scrub::upstream(url),
        source,
        snippet: snippet(body),
    })
}

/// The start of a body for an error message: scrubbed, escaped, bounded.
fn snippet(body: &[u8]) -> String {
    scrub::upstream(&String::from_utf8_lossy(&body[..body.len().min(200)]))
}

/// Builds [`ApiError::Status`] from any of Microsoft's three error body shapes:
/// `{"error":{"code","message"}}` (ARM, Graph, Key Vault), `{"code","description"}`
/// (Partner Center) and `{"statusCode","message"}` (Partner Center's 429).
pub fn status_error(
    api: &'static str,
    tenant: &str,
    url: &str,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiError {
    if status == StatusCode::UNAUTHORIZED {
        if let Some(claims) = claims_challenge(headers) {
            return ApiError::ClaimsChallenge {
                api,
                tenant: tenant.to_string(),
                url: scrub::upstream(url),
                claims,
            };
        }
    }
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
    let s = |v: &serde_json::Value| v.as_str().map(str::to_string);
    let (code, message) = if let Some(e) = v.get("error").filter(|e| e.is_object()) {
        (e.get("code").and_then(s), e.get("message").and_then(s))
    } else if v.get("code").is_some() || v.get("description").is_some() {
        (
            v.get("code")
                .and_then(|c| s(c).or_else(|| Some(c.to_string()))),
            v.get("description").and_then(s),
        )
    } else {
        (
            v.get("statusCode").map(|c| c.to_string()),
            v.get("message").and_then(s),
        )
    };
    ApiError::Status {
        api,
        tenant: tenant.to_string(),
        url: scrub::upstream(url),
        status: status.as_u16(),
        code: code
            .map(|c| scrub::upstream(&c))
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string()),
        message: message
            .map(|m| scrub::upstream(&m))
            .unwrap_or_else(|| snippet(body)),
        retry_after: crate::support::retry::retry_after(headers),
        refused_wait: None,
    }
}

/// Longest decoded claims request accepted from a challenge; real ones are
/// under a hundred bytes.
const MAX_CLAIMS_BYTES: usize = 8 * 1024;

/// The claims request of a CAE claims challenge among the `WWW-Authenticate`
/// headers: a `Bearer` challenge with `error="insufficient_claims"` and a
/// `claims` parameter whose base64 (standard or URL-safe, padded or not, as
/// seen in the wild) decodes to a JSON object. `None` for any other 401, an
/// ordinary expired-token one included.
pub fn claims_challenge(headers: &HeaderMap) -> Option<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    use base64::Engine;
    headers
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let v = v.trim_start_matches(|c: char| c == '=' || c.is_whitespace());
            let rest = v.get(..6).filter(|s| s.eq_ignore_ascii_case("bearer"))?;
            let params = auth_params(&v[rest.len()..]);
            let get = |name: &str| {
                params
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.as_str())
            };
            if get("error") != Some("insufficient_claims") {
                return None;
            }
            let raw = get("claims")?.trim();
            if raw.len() > MAX_CLAIMS_BYTES * 2 {
                return None;
            }
            let bytes = [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
                .iter()
                .find_map(|e| e.decode(raw).ok())?;
            if bytes.len() > MAX_CLAIMS_BYTES {
                return None;
            }
            let text = String::from_utf8(bytes).ok()?;
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&text).ok()?;
            Some(text)
        })
}

/// `name=value` pairs of a challenge (RFC 9110 §11.2): values are tokens or
/// quoted strings with `\` escapes; pairs are separated by commas.
fn auth_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let name: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim()
            .to_string();
        if name.is_empty() {
            return out;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
            value = value.trim().to_string();
        }
        out.push((name, value));
    }
}

/// The server's clock from the `Date` header, unix seconds. Lifetimes Entra and
/// Key Vault state (issue times, `exp`) are in the server's frame; comparing them
/// with the server's own "now" keeps a skewed local clock out of the answer.
pub fn server_time(headers: &HeaderMap) -> Option<i64> {
    let v = headers.get(reqwest::header::DATE)?.to_str().ok()?;
    chrono::DateTime::parse_from_rfc2822(v.trim())
        .ok()
        .map(|t| t.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> (String, String) {
        match status_error(
            "t",
            "tenant",
            "u",
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            body.as_bytes(),
        ) {
            ApiError::Status { code, message, .. } => (code, message),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn three_error_shapes() {
        assert_eq!(
            err(r#"{"error":{"code":"SecretNotFound","message":"nope","innererror":null}}"#),
            ("SecretNotFound".into(), "nope".into())
        );
        assert_eq!(
            err(r#"{"code":"600008","description":"The customer does not exist"}"#),
            ("600008".into(), "The customer does not exist".into())
        );
        assert_eq!(
            err(
                r#"{ "statusCode": 429, "message": "Rate limit is exceeded. Try again in 57 seconds." }"#
            ),
            (
                "429".into(),
                "Rate limit is exceeded. Try again in 57 seconds.".into()
            )
        );
        assert_eq!(err("<html>").0, "Bad Request");
    }

    fn challenge(values: &[&str]) -> Option<String> {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(
                reqwest::header::WWW_AUTHENTICATE,
                reqwest::header::HeaderValue::from_str(v).unwrap(),
            );
        }
        claims_challenge(&h)
    }

    #[test]
    fn documented_claims_challenges_decode() {
        // The claims-challenge page's example (its `=Bearer` spacing kept).
        assert_eq!(
            challenge(&[r#"=Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnsiYWNycyI6eyJlc3NlbnRpYWwiOnRydWUsInZhbHVlIjoiY3AxIn19fQ==""#]).as_deref(),
            Some(r#"{"access_token":{"acrs":{"essential":true,"value":"cp1"}}}"#)
        );
        // The CAE resilience page's, parameters in another order.
        assert_eq!(
            challenge(&[r#"Bearer authorization_uri="https://login.windows.net/common/oauth2/authorize", error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnsibmJmIjp7ImVzc2VudGlhbCI6dHJ1ZSwgInZhbHVlIjoiMTYwNDEwNjY1MSJ9fX0=""#]).as_deref(),
            Some(r#"{"access_token":{"nbf":{"essential":true, "value":"1604106651"}}}"#)
        );
        // Unpadded URL-safe base64, in the second of two headers.
        assert!(challenge(&[
            r#"Bearer error="invalid_token""#,
            r#"Bearer error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnt9fQ""#,
        ])
        .is_some());
    }

    #[test]
    fn other_401s_are_not_claims_challenges() {
        for v in [
            r#"Bearer authorization_uri="https://login.windows.net/", error="invalid_token", error_description="The access token has expired.""#,
            r#"Bearer error="insufficient_claims""#,
            r#"Bearer error="insufficient_claims", claims="bm90IGpzb24=""#,
            r#"Bearer error="insufficient_claims", claims="!!!""#,
            r#"Basic realm="x", error="insufficient_claims", claims="e30=""#,
        ] {
            assert_eq!(challenge(&[v]), None, "{v}");
        }
        let e = status_error(
            "graph",
            "t",
            "u",
            StatusCode::UNAUTHORIZED,
            &{
                let mut h = HeaderMap::new();
                h.insert(
                    reqwest::header::WWW_AUTHENTICATE,
                    reqwest::header::HeaderValue::from_static(
                        r#"Bearer error="insufficient_claims", claims="e30=""#,
                    ),
                );
                h
            },
            b"{}",
        );
        assert!(
            matches!(e, ApiError::ClaimsChallenge { ref claims, .. } if claims == "{}"),
            "{e:?}"
        );
    }

    #[test]
    fn next_links_must_stay_on_the_host() {
        let u = "https://graph.microsoft.com/v1.0/organization";
        assert!(same_origin(
            u,
            "https://graph.microsoft.com/v1.0/organization?$skiptoken=x"
        ));
        assert!(!same_origin(u, "https://evil.example/v1.0/organization"));
        assert!(!same_origin(
            u,
            "http://graph.microsoft.com/v1.0/organization"
        ));
        assert!(!same_origin(
            u,
            "https://graph.microsoft.com:8443/v1.0/organization"
        ));
        assert!(!same_origin(u, "/v1.0/organization"));
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_response_is_a_value_or_an_error_naming_api_and_tenant(
            status in crate::arb::status(),
            headers in crate::arb::headers(),
            body in crate::arb::body(),
        ) {
            let r = parse_json::<serde_json::Value>(
                "graph", "contoso-tenant", "https://graph.test/v1.0/x", status, &headers, &body,
            );
            match r {
                Ok(_) => prop_assert!(status.is_success()),
                Err(e) => {
                    let text = e.to_string();
                    prop_assert!(text.contains("graph") && text.contains("contoso-tenant"), "{}", text);
                    prop_assert!(matches!(e, ApiError::Status { .. } | ApiError::Decode { .. } | ApiError::ClaimsChallenge { .. }), "{e:?}");
                }
            }
        }
    }
}
