//! The v2 and v1 token endpoints (`/{tenant}/oauth2/v2.0/token`,
//! `/{tenant}/oauth2/token`): injected throttling and AADSTS errors first,
//! then the client, its authentication, and the dispatch to the grant —
//! client credentials ([`super::app_tokens`]), refresh token
//! ([`super::user_tokens`]), authorization code ([`super::authorize`]) or
//! device code ([`super::device`]) — and the v1 or v2 response.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Serialize;
use serde_json::Value;

use super::authority::{resolve, Authority};
use super::errors::{aad, error_ctx, AadError, ErrorCtx};
use super::state::Entra;
use super::{aadsts, app_tokens, authorize, client_auth, device, user_tokens};
use crate::clock::entra_timestamp;
use crate::http::{self, first};
use crate::state::SimState;

/// `grant_type` of the device authorization grant (RFC 8628 3.4).
pub(crate) const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Which token endpoint a request came to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// `/oauth2/v2.0/token`: scopes, integer lifetimes.
    V2,
    /// `/oauth2/token`: `resource=`, lifetimes as strings.
    V1,
}

/// What a successful grant produced, before formatting for v1 or v2.
pub(crate) struct Issued {
    pub access_token: String,
    pub expires_in: i64,
    pub now: i64,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    pub client_info: Option<String>,
    /// v2 `scope` (absent for client credentials, as Entra does).
    pub scope: Option<String>,
    /// v1 `scope`: short permission names.
    pub scope_v1: Option<String>,
    pub resource: String,
}

#[derive(Serialize)]
struct TokenResponseV2 {
    token_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    expires_in: i64,
    ext_expires_in: i64,
    access_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_info: Option<String>,
}

/// The v1 endpoint sends its numbers as strings
/// (partnercenter/docs-enable-secure-app-model.md).
#[derive(Serialize)]
struct TokenResponseV1 {
    token_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    expires_in: String,
    ext_expires_in: String,
    expires_on: String,
    not_before: String,
    resource: String,
    access_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
}

/// `POST /{tenant}/oauth2/v2.0/token`.
pub(super) async fn token_v2(
    State(entra): State<Arc<Entra>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    token(&entra, &tenant, &headers, &body, Flavor::V2)
}

/// `POST /{tenant}/oauth2/token`.
pub(super) async fn token_v1(
    State(entra): State<Arc<Entra>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    token(&entra, &tenant, &headers, &body, Flavor::V1)
}

/// `GET` on either token endpoint: Entra's POST-only error.
pub(super) async fn token_get(State(entra): State<Arc<Entra>>) -> Response {
    let state = &*entra.sim;
    let e = aad::post_only("GET");
    http::json(
        e.status,
        &e.body(&error_ctx(state, http::new_id(), None)),
        &[],
    )
}

fn token(
    entra: &Entra,
    tenant: &str,
    headers: &HeaderMap,
    body: &[u8],
    flavor: Flavor,
) -> Response {
    let state = &*entra.sim;
    // Injected per-tenant throttling answers before anything is parsed, as
    // the front door does (plain-text 429, catalog).
    if let Some(secs) = state
        .world
        .tenant(tenant)
        .and_then(|t| entra.token_throttle(&t.id))
    {
        let mut resp = fault_response(state, StatusCode::TOO_MANY_REQUESTS, Some(secs));
        if let Ok(v) = secs.to_string().parse() {
            resp.headers_mut().insert("retry-after", v);
        }
        return resp;
    }
    let trace_id = http::new_id();
    // Entra reuses the caller's client-request-id as the correlation id.
    let correlation_id = http::header(headers, "client-request-id")
        .filter(|v| uuid::Uuid::parse_str(v).is_ok())
        .map_or_else(http::new_id, str::to_string);
    let mut extra = vec![
        ("cache-control", "no-store, no-cache".to_string()),
        ("pragma", "no-cache".to_string()),
        ("x-ms-request-id", trace_id.clone()),
        (
            "x-ms-ests-server",
            "2.1.19210.5 - SIM ProdSlices".to_string(),
        ),
    ];
    if let Some(c) = http::header(headers, "client-request-id") {
        extra.push(("client-request-id", c.to_string()));
    }
    match grant(entra, tenant, headers, body, flavor) {
        Ok(issued) => {
            let resp = format_success(&issued, flavor);
            http::json(StatusCode::OK, &resp, &extra)
        }
        Err(e) => {
            let ctx = error_ctx(state, trace_id, Some(correlation_id));
            http::json(e.status, &e.body(&ctx), &extra)
        }
    }
}

fn format_success(i: &Issued, flavor: Flavor) -> Value {
    let v = match flavor {
        Flavor::V2 => serde_json::to_value(TokenResponseV2 {
            token_type: "Bearer",
            scope: i.scope.clone(),
            expires_in: i.expires_in,
            ext_expires_in: i.expires_in,
            access_token: i.access_token.clone(),
            refresh_token: i.refresh_token.clone(),
            id_token: i.id_token.clone(),
            client_info: i.client_info.clone(),
        }),
        Flavor::V1 => serde_json::to_value(TokenResponseV1 {
            token_type: "Bearer",
            scope: i.scope_v1.clone(),
            expires_in: i.expires_in.to_string(),
            ext_expires_in: i.expires_in.to_string(),
            expires_on: (i.now + i.expires_in).to_string(),
            not_before: i.now.to_string(),
            resource: i.resource.clone(),
            access_token: i.access_token.clone(),
            refresh_token: i.refresh_token.clone(),
            id_token: i.id_token.clone(),
        }),
    };
    v.unwrap_or(Value::Null)
}

/// `client_id`/`client_secret` from HTTP Basic (RFC 6749 2.3.1: each part
/// form-url-encoded before base64).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let v = http::header(headers, "authorization")?;
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(rest.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let dec = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((dec(id)?, dec(secret)?))
}

fn grant(
    entra: &Entra,
    tenant_seg: &str,
    headers: &HeaderMap,
    body: &[u8],
    flavor: Flavor,
) -> Result<Issued, AadError> {
    let state = &*entra.sim;
    let authority = resolve(state, tenant_seg)?;
    let form = http::pairs(body);
    let basic = basic_credentials(headers);
    let client_id = first(&form, "client_id")
        .map(str::to_string)
        .or_else(|| basic.as_ref().map(|(id, _)| id.clone()))
        .ok_or_else(|| aad::missing_parameter("client_id"))?;
    if let Authority::Tenant(t) = &authority {
        if let Some(code) = entra.token_error(&t.id) {
            return Err(aadsts::injected(code, &client_id, &t.name));
        }
    }
    let grant_type =
        first(&form, "grant_type").ok_or_else(|| aad::missing_parameter("grant_type"))?;
    let app = state
        .world
        .app(&client_id)
        .ok_or_else(|| aad::app_not_found(&client_id, &authority.label()))?;
    match &authority {
        Authority::Tenant(t) if !app.multi_tenant && t.id != app.home_tenant => {
            return Err(aad::app_not_found(&client_id, &t.name))
        }
        Authority::Multi(_) if !app.multi_tenant => {
            return Err(aad::not_multi_tenant(&app.client_id, &app.name))
        }
        _ => {}
    }
    let client = client_auth::authenticate(
        entra,
        app,
        &form,
        basic.map(|(_, s)| s),
        tenant_seg,
        &authority,
    )?;
    match grant_type {
        "client_credentials" => {
            let auth = client.ok_or_else(aad::missing_client_credential_for_cc)?;
            let Authority::Tenant(t) = authority else {
                return Err(aad::no_tenant_info());
            };
            app_tokens::client_credentials(entra, app, t, &form, flavor, auth)
        }
        "refresh_token" => user_tokens::refresh_token(entra, app, authority, &form, flavor, client),
        "authorization_code" => authorize::redeem(entra, app, authority, &form, flavor, client),
        DEVICE_CODE_GRANT => device::redeem(entra, app, authority, &form, flavor, client),
        other => Err(aad::unsupported_grant_type(other)),
    }
}

/// The token endpoint under an injected fault (and injected per-tenant
/// throttling): 429 is plain text `Too Many Requests` (catalog,
/// MSAL.NET#2855); 5xx is a JSON error with `temporarily_unavailable`.
pub(crate) fn fault_response(
    state: &SimState,
    status: StatusCode,
    retry_after: Option<u64>,
) -> Response {
    if retry_after.is_some() || status == StatusCode::TOO_MANY_REQUESTS {
        return http::with_headers(
            StatusCode::TOO_MANY_REQUESTS,
            "text/plain; charset=utf-8",
            Body::from("Too Many Requests"),
            &[],
        );
    }
    let ctx = ErrorCtx {
        login: state.origins.login.clone(),
        trace_id: http::new_id(),
        correlation_id: http::new_id(),
        timestamp: entra_timestamp(state.clock.now()),
    };
    let e = aadsts::transient(status);
    http::json(status, &e.body(&ctx), &[])
}
