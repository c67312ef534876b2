//! Entra ID (login origin): the v2 and v1 token endpoints and their grant
//! dispatch, OpenID discovery and a JWKS. The grants themselves live in
//! `app_tokens` (client credentials), `user_tokens` (refresh token),
//! `authorize` (authorization code + PKCE) and `device` (device code);
//! client authentication in `client_auth`.

pub(crate) mod errors;

pub(crate) mod aadsts;
pub(crate) mod app_tokens;
pub(crate) mod assertion;
pub(crate) mod authorize;
pub(crate) mod certs;
pub(crate) mod client_auth;
pub(crate) mod device;
pub(crate) mod federation;
pub(crate) mod keys;
pub(crate) mod managed_identity;
pub(crate) mod user_tokens;

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::clock::entra_timestamp;
use crate::http::{self, first};
use crate::state::SimState;
use crate::world::Tenant;
use errors::{aad, AadError, ErrorCtx};
use federation::ISSUER_PATH;

/// `grant_type` of the device authorization grant (RFC 8628 3.4).
pub(crate) const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Builds the login origin's routes.
pub(crate) fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token_v2).get(token_get))
        .route("/{tenant}/oauth2/token", post(token_v1).get(token_get))
        .route("/{tenant}/oauth2/v2.0/authorize", get(authorize::authorize))
        .route("/{tenant}/oauth2/v2.0/devicecode", post(device::devicecode))
        .route("/devicelogin", get(device::page).post(device::submit))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(openid_v2),
        )
        .route("/{tenant}/.well-known/openid-configuration", get(openid_v1))
        .route("/{tenant}/discovery/v2.0/keys", get(jwks))
        .route("/{tenant}/discovery/keys", get(jwks))
        .route(
            &format!("{ISSUER_PATH}.well-known/openid-configuration"),
            get(federation_discovery),
        )
        .route(
            &format!("{ISSUER_PATH}openid/v1/jwks"),
            get(federation_jwks),
        )
        .with_state(state)
}

/// Issues a refresh token for the partner admin and the SAM app, as the
/// one-time consent would have.
pub(crate) fn issue_consent_refresh_token(state: &SimState) -> String {
    let w = &state.world;
    user_tokens::new_refresh_token(state, &w.sam_app.client_id, &w.partner.id, false)
}

// ------------------------------------------------------------- authority

/// The tenant part of the path.
pub(crate) enum Authority<'a> {
    /// A tenant id or verified domain.
    Tenant(&'a Tenant),
    /// `organizations` or `common`: the user's home tenant decides.
    Multi(String),
}

impl Authority<'_> {
    /// How error messages name it.
    pub fn label(&self) -> String {
        match self {
            Authority::Tenant(t) => t.name.clone(),
            Authority::Multi(m) => m.clone(),
        }
    }

    /// A stable key: the tenant id, or the alias.
    pub fn key(&self) -> String {
        match self {
            Authority::Tenant(t) => t.id.clone(),
            Authority::Multi(m) => m.clone(),
        }
    }
}

/// Resolves a path segment the way Entra does: aliases, ids and domains.
pub(crate) fn resolve<'a>(state: &'a SimState, seg: &str) -> Result<Authority<'a>, AadError> {
    let lower = seg.to_ascii_lowercase();
    if lower == "organizations" || lower == "common" {
        return Ok(Authority::Multi(lower));
    }
    if seg.is_empty()
        || !seg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        return Err(aad::invalid_tenant_name(seg));
    }
    state
        .world
        .tenant(seg)
        .map(Authority::Tenant)
        .ok_or_else(|| aad::tenant_not_found(seg))
}

// ------------------------------------------------------------- token endpoint

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

async fn token_v2(
    State(state): State<Arc<SimState>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    token(&state, &tenant, &headers, &body, Flavor::V2)
}

async fn token_v1(
    State(state): State<Arc<SimState>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    token(&state, &tenant, &headers, &body, Flavor::V1)
}

async fn token_get(State(state): State<Arc<SimState>>) -> Response {
    let e = aad::post_only("GET");
    http::json(
        e.status,
        &e.body(&error_ctx(&state, http::new_id(), None)),
        &[],
    )
}

/// Trace/correlation ids and time for an error body.
pub(crate) fn error_ctx(
    state: &SimState,
    trace_id: String,
    correlation_id: Option<String>,
) -> ErrorCtx {
    ErrorCtx {
        login: state.origins.login.clone(),
        trace_id,
        correlation_id: correlation_id.unwrap_or_else(http::new_id),
        timestamp: entra_timestamp(state.clock.now()),
    }
}

/// An Entra error response with fresh ids.
pub(crate) fn error_response(state: &SimState, e: &AadError) -> Response {
    http::json(
        e.status,
        &e.body(&error_ctx(state, http::new_id(), None)),
        &[],
    )
}

fn token(
    state: &SimState,
    tenant: &str,
    headers: &HeaderMap,
    body: &[u8],
    flavor: Flavor,
) -> Response {
    // Injected per-tenant throttling answers before anything is parsed, as
    // the front door does (plain-text 429, catalog).
    if let Some(secs) = state
        .world
        .tenant(tenant)
        .and_then(|t| state.token_throttle(&t.id))
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
    match grant(state, tenant, headers, body, flavor) {
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
    state: &SimState,
    tenant_seg: &str,
    headers: &HeaderMap,
    body: &[u8],
    flavor: Flavor,
) -> Result<Issued, AadError> {
    let authority = resolve(state, tenant_seg)?;
    let form = http::pairs(body);
    let basic = basic_credentials(headers);
    let client_id = first(&form, "client_id")
        .map(str::to_string)
        .or_else(|| basic.as_ref().map(|(id, _)| id.clone()))
        .ok_or_else(|| aad::missing_parameter("client_id"))?;
    if let Authority::Tenant(t) = &authority {
        if let Some(code) = state.token_error(&t.id) {
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
        state,
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
            app_tokens::client_credentials(state, app, t, &form, flavor, auth)
        }
        "refresh_token" => user_tokens::refresh_token(state, app, authority, &form, flavor, client),
        "authorization_code" => authorize::redeem(state, app, authority, &form, flavor, client),
        DEVICE_CODE_GRANT => device::redeem(state, app, authority, &form, flavor, client),
        other => Err(aad::unsupported_grant_type(other)),
    }
}

async fn federation_discovery(State(state): State<Arc<SimState>>) -> Response {
    http::json(StatusCode::OK, &state.creds.issuer.discovery(), &[])
}

async fn federation_jwks(State(state): State<Arc<SimState>>) -> Response {
    http::json(StatusCode::OK, &state.creds.issuer.jwks(), &[])
}

// ------------------------------------------------------------- discovery

async fn openid_v2(State(state): State<Arc<SimState>>, Path(tenant): Path<String>) -> Response {
    discovery(&state, &tenant, Flavor::V2)
}

async fn openid_v1(State(state): State<Arc<SimState>>, Path(tenant): Path<String>) -> Response {
    discovery(&state, &tenant, Flavor::V1)
}

fn discovery(state: &SimState, seg: &str, flavor: Flavor) -> Response {
    let login = &state.origins.login;
    let (tid, issuer_tid, region) = match resolve(state, seg) {
        Ok(Authority::Tenant(t)) => (t.id.clone(), t.id.clone(), json!("NA")),
        // The multi-tenant documents keep a `{tenantid}` placeholder in the issuer.
        Ok(Authority::Multi(m)) => (m, "{tenantid}".to_string(), Value::Null),
        Err(e) => {
            let ctx = error_ctx(state, http::new_id(), None);
            return http::json(e.status, &e.body(&ctx), &[]);
        }
    };
    let graph_host = state
        .origins
        .graph
        .trim_start_matches("https://")
        .to_string();
    let doc = match flavor {
        Flavor::V2 => json!({
            "token_endpoint": format!("{login}/{tid}/oauth2/v2.0/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": format!("{login}/{tid}/discovery/v2.0/keys"),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": format!("{login}/{issuer_tid}/v2.0"),
            "request_uri_parameter_supported": false,
            "userinfo_endpoint": format!("{}/oidc/userinfo", state.origins.graph),
            "authorization_endpoint": format!("{login}/{tid}/oauth2/v2.0/authorize"),
            "device_authorization_endpoint": format!("{login}/{tid}/oauth2/v2.0/devicecode"),
            "http_logout_supported": true,
            "frontchannel_logout_supported": true,
            "end_session_endpoint": format!("{login}/{tid}/oauth2/v2.0/logout"),
            "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
            "kerberos_endpoint": format!("{login}/{tid}/kerberos"),
            "tenant_region_scope": region,
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": graph_host,
            "rbac_url": "https://pas.windows.net",
        }),
        Flavor::V1 => json!({
            "token_endpoint": format!("{login}/{tid}/oauth2/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": format!("{login}/common/discovery/keys"),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "http_logout_supported": true,
            "frontchannel_logout_supported": true,
            "end_session_endpoint": format!("{login}/{tid}/oauth2/logout"),
            "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
            "scopes_supported": ["openid"],
            "issuer": format!("https://sts.windows.net/{issuer_tid}/"),
            "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "amr", "nonce", "email", "given_name", "family_name", "nickname"],
            "microsoft_multi_refresh_token": true,
            "check_session_iframe": format!("{login}/{tid}/oauth2/checksession"),
            "userinfo_endpoint": format!("{login}/{tid}/openid/userinfo"),
            "kerberos_endpoint": format!("{login}/{tid}/kerberos"),
            "tenant_region_scope": region,
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": graph_host,
            "rbac_url": "https://pas.windows.net",
        }),
    };
    http::json(StatusCode::OK, &doc, &[])
}

/// A key set naming the sim's key id. The sim signs with HMAC, so the RSA
/// modulus here is a placeholder: clients fetch this but nothing verifies it.
async fn jwks(State(state): State<Arc<SimState>>) -> Response {
    let kid = state.signer.kid();
    let mut modulus = Vec::with_capacity(256);
    for i in 0u8..8 {
        modulus.extend_from_slice(&Sha256::new().chain_update(kid).chain_update([i]).finalize());
    }
    let doc = json!({
        "keys": [{
            "kty": "RSA",
            "use": "sig",
            "kid": kid,
            "x5t": kid,
            "n": URL_SAFE_NO_PAD.encode(&modulus),
            "e": "AQAB",
        }]
    });
    http::json(StatusCode::OK, &doc, &[])
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
