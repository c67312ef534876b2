//! Entra ID (login origin): the v2 and v1 token endpoints, OpenID discovery
//! and a JWKS, for the refresh-token and client-credentials grants.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::Rng;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::clock::{dotnet_round_trip, entra_timestamp, to_datetime};
use super::data::{random_token, App, Tenant};
use super::errors::{aad, AadError, ErrorCtx};
use super::http::{self, first};
use super::resources::{ResourceRef, ScopeError, Scopes};
use super::state::{RefreshGrant, SimState};

/// Refresh tokens lapse after this long without being redeemed.
const REFRESH_TOKEN_INACTIVITY_SECS: i64 = 90 * 86_400;

/// Builds the login origin's routes.
pub(crate) fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token_v2).get(token_get))
        .route("/{tenant}/oauth2/token", post(token_v1).get(token_get))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(openid_v2),
        )
        .route("/{tenant}/.well-known/openid-configuration", get(openid_v1))
        .route("/{tenant}/discovery/v2.0/keys", get(jwks))
        .route("/{tenant}/discovery/keys", get(jwks))
        .with_state(state)
}

/// Issues a refresh token for the partner admin and the SAM app, as the
/// one-time consent would have.
pub(crate) fn issue_consent_refresh_token(state: &SimState) -> String {
    let w = &state.world;
    new_refresh_token(state, &w.sam_app.client_id, &w.admin.oid, &w.partner.id)
}

fn new_refresh_token(state: &SimState, client_id: &str, user_oid: &str, home: &str) -> String {
    let token = format!("1.AXoA{}", random_token(250));
    state.insert_refresh_token(
        token.clone(),
        RefreshGrant {
            client_id: client_id.to_string(),
            user_oid: user_oid.to_string(),
            home_tenant: home.to_string(),
            issued_at: state.clock.now_unix(),
        },
    );
    token
}

// ------------------------------------------------------------- authority

/// The tenant part of the path.
enum Authority<'a> {
    Tenant(&'a Tenant),
    /// `organizations` or `common`: the user's home tenant decides.
    Multi(String),
}

fn resolve<'a>(state: &'a SimState, seg: &str) -> Result<Authority<'a>, AadError> {
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavor {
    V2,
    V1,
}

/// What a successful grant produced, before formatting for v1 or v2.
struct Issued {
    access_token: String,
    expires_in: i64,
    now: i64,
    refresh_token: Option<String>,
    id_token: Option<String>,
    client_info: Option<String>,
    /// v2 `scope` (absent for client credentials, as Entra does).
    scope: Option<String>,
    /// v1 `scope`: short permission names.
    scope_v1: Option<String>,
    resource: String,
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

fn error_ctx(state: &SimState, trace_id: String, correlation_id: Option<String>) -> ErrorCtx {
    ErrorCtx {
        login: state.origins.login.clone(),
        trace_id,
        correlation_id: correlation_id.unwrap_or_else(http::new_id),
        timestamp: entra_timestamp(state.clock.now()),
    }
}

fn token(
    state: &SimState,
    tenant: &str,
    headers: &HeaderMap,
    body: &[u8],
    flavor: Flavor,
) -> Response {
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
    let tenant_label = match &authority {
        Authority::Tenant(t) => t.name.clone(),
        Authority::Multi(m) => m.clone(),
    };
    if let Authority::Tenant(t) = &authority {
        if let Some(code) = state.token_error(&t.id) {
            return Err(aad::from_code(code, &client_id, &t.name));
        }
    }
    let grant_type =
        first(&form, "grant_type").ok_or_else(|| aad::missing_parameter("grant_type"))?;
    let app = state
        .world
        .app(&client_id)
        .ok_or_else(|| aad::app_not_found(&client_id, &tenant_label))?;
    match &authority {
        Authority::Tenant(t) if !app.multi_tenant && t.id != app.home_tenant => {
            return Err(aad::app_not_found(&client_id, &t.name))
        }
        Authority::Multi(_) if !app.multi_tenant => {
            return Err(aad::not_multi_tenant(&app.client_id, &app.name))
        }
        _ => {}
    }
    let secret = first(&form, "client_secret")
        .map(str::to_string)
        .or_else(|| basic.map(|(_, s)| s));
    match grant_type {
        "client_credentials" => {
            let secret = secret.ok_or_else(aad::missing_client_credential_for_cc)?;
            check_secret(app, &secret)?;
            let Authority::Tenant(t) = authority else {
                return Err(aad::no_tenant_info());
            };
            client_credentials(state, app, t, &form, flavor)
        }
        "refresh_token" => {
            let secret = secret.ok_or_else(aad::missing_client_secret)?;
            check_secret(app, &secret)?;
            refresh_token(state, app, authority, &form, flavor)
        }
        other => Err(aad::unsupported_grant_type(other)),
    }
}

fn check_secret(app: &App, presented: &str) -> Result<(), AadError> {
    // Length leaks nothing useful here; the comparison still avoids early exit.
    let ok = app.secret.len() == presented.len()
        && app
            .secret
            .bytes()
            .zip(presented.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if ok {
        Ok(())
    } else {
        Err(aad::invalid_client_secret(&app.client_id))
    }
}

fn lifetime() -> i64 {
    // Entra trims a little off the hour, differently per token.
    rand::thread_rng().gen_range(3300..=3599)
}

fn client_credentials(
    state: &SimState,
    app: &App,
    tenant: &Tenant,
    form: &[(String, String)],
    flavor: Flavor,
) -> Result<Issued, AadError> {
    let resource = match flavor {
        Flavor::V2 => {
            let raw = first(form, "scope").ok_or_else(|| aad::missing_parameter("scope"))?;
            if raw.split_whitespace().any(|s| !s.ends_with("/.default")) {
                return Err(aad::cc_scope_needs_default(raw));
            }
            let scopes = Scopes::parse(raw).map_err(|e| match e {
                ScopeError::MultipleResources | ScopeError::Invalid => aad::invalid_scope(raw),
                ScopeError::UnknownResource(r) => aad::resource_not_found(&r, &tenant.name),
            })?;
            scopes.resource.ok_or_else(|| aad::invalid_scope(raw))?
        }
        Flavor::V1 => {
            let raw = first(form, "resource").ok_or_else(|| aad::missing_parameter("resource"))?;
            ResourceRef::named(raw).ok_or_else(|| aad::resource_not_found(raw, &tenant.name))?
        }
    };
    // The SAM app is granted app-only access in the partner tenant only;
    // elsewhere it has no app role assignments to act on.
    if tenant.id != app.home_tenant {
        return Err(aad::app_not_found(&app.client_id, &tenant.name));
    }
    let roles: Vec<&str> = if app.client_id == state.world.sam_app.client_id {
        resource.api.sam_app_roles.to_vec()
    } else {
        Vec::new()
    };
    let now = state.clock.now_unix();
    let expires_in = lifetime();
    let oid = state
        .world
        .service_principal_oid(&app.client_id, &tenant.id);
    let iss = format!("https://sts.windows.net/{}/", tenant.id);
    let mut claims = json!({
        "aud": resource.aud,
        "iss": iss,
        "iat": now,
        "nbf": now,
        "exp": now + expires_in,
        "aio": random_token(40),
        "appid": app.client_id,
        "appidacr": "1",
        "idp": iss,
        "idtyp": "app",
        "oid": oid,
        "rh": format!("0.{}.", random_token(20)),
        "sub": oid,
        "tid": tenant.id,
        "uti": random_token(22),
        "ver": "1.0",
    });
    if !roles.is_empty() {
        claims["roles"] = json!(roles);
    }
    let access_token = state.signer.sign(&claims);
    state.remember_secret(&access_token);
    Ok(Issued {
        access_token,
        expires_in,
        now,
        refresh_token: None,
        id_token: None,
        client_info: None,
        scope: None,
        scope_v1: None,
        resource: resource.prefix,
    })
}

fn refresh_token(
    state: &SimState,
    app: &App,
    authority: Authority<'_>,
    form: &[(String, String)],
    flavor: Flavor,
) -> Result<Issued, AadError> {
    let w = &state.world;
    let presented =
        first(form, "refresh_token").ok_or_else(|| aad::missing_parameter("refresh_token"))?;
    let grant = state
        .refresh_grant(presented)
        .ok_or_else(aad::malformed_grant)?;
    if !grant.client_id.eq_ignore_ascii_case(&app.client_id) {
        return Err(aad::grant_for_other_client());
    }
    let now = state.clock.now_unix();
    if now - grant.issued_at > REFRESH_TOKEN_INACTIVITY_SECS {
        return Err(aad::refresh_token_expired(&dotnet_round_trip(to_datetime(
            grant.issued_at,
        ))));
    }
    let home = w
        .tenant(&grant.home_tenant)
        .ok_or_else(aad::malformed_grant)?;
    // The partner admin is the only user who ever consented.
    if grant.user_oid != w.admin.oid {
        return Err(aad::malformed_grant());
    }
    let target = match authority {
        Authority::Tenant(t) => t,
        Authority::Multi(_) => home,
    };
    // Delegated admin (GDAP) lets the partner's admin act in every customer.
    if target.id != home.id && !w.is_customer(&target.id) {
        return Err(aad::user_not_in_tenant(&w.admin.upn, &target.name));
    }
    let (scopes, resource) = match flavor {
        Flavor::V2 => {
            let raw = first(form, "scope").ok_or_else(|| aad::missing_parameter("scope"))?;
            let scopes = Scopes::parse(raw).map_err(|e| match e {
                ScopeError::MultipleResources => aad::multiple_resources(raw),
                ScopeError::Invalid => aad::invalid_scope(raw),
                ScopeError::UnknownResource(r) => aad::resource_not_found(&r, &target.name),
            })?;
            let resource = scopes.resource_or_graph();
            (scopes, resource)
        }
        Flavor::V1 => {
            let raw = first(form, "resource").ok_or_else(|| aad::missing_parameter("resource"))?;
            let resource = ResourceRef::named(raw)
                .ok_or_else(|| aad::resource_not_found(raw, &target.name))?;
            let mut scopes = Scopes::parse(first(form, "scope").unwrap_or(""))
                .unwrap_or_else(|_| empty_scopes());
            scopes.resource = Some(resource.clone());
            scopes.permissions = vec![".default".into()];
            (scopes, resource)
        }
    };
    if !scopes.unconsented().is_empty() {
        return Err(aad::consent_required(&app.client_id, &app.name));
    }
    let scp = scopes.granted_short(&resource).join(" ");
    let expires_in = lifetime();
    let user = &w.admin;
    let mut claims = json!({
        "aud": resource.aud,
        "iss": format!("https://sts.windows.net/{}/", target.id),
        "iat": now,
        "nbf": now,
        "exp": now + expires_in,
        "acr": "1",
        "aio": random_token(40),
        "amr": ["pwd", "mfa"],
        "appid": app.client_id,
        "appidacr": "1",
        "family_name": "Agent",
        "given_name": "Partner Admin",
        "ipaddr": "127.0.0.1",
        "name": user.name,
        "oid": user.oid,
        "rh": format!("0.{}.", random_token(20)),
        "scp": scp,
        "sub": pairwise_sub(&user.oid, &resource.prefix),
        "tid": target.id,
        "unique_name": user.upn,
        "upn": user.upn,
        "uti": random_token(22),
        "ver": "1.0",
    });
    if target.id != home.id {
        claims["idp"] = json!(format!("https://sts.windows.net/{}/", home.id));
    }
    let access_token = state.signer.sign(&claims);
    state.remember_secret(&access_token);
    // Every redemption returns a new refresh token; the old one stays valid.
    let refresh = new_refresh_token(state, &app.client_id, &user.oid, &home.id);
    let id_token = scopes
        .openid
        .then(|| id_token(state, app, target, now, expires_in, flavor));
    let client_info = (first(form, "client_info") == Some("1"))
        .then(|| URL_SAFE_NO_PAD.encode(json!({"uid": user.oid, "utid": home.id}).to_string()));
    Ok(Issued {
        access_token,
        expires_in,
        now,
        refresh_token: Some(refresh),
        id_token,
        client_info,
        scope: Some(scopes.granted_scope_string(&resource)),
        scope_v1: Some(scp),
        resource: resource.prefix,
    })
}

fn empty_scopes() -> Scopes {
    Scopes {
        openid: false,
        profile: false,
        offline_access: false,
        email: false,
        resource: None,
        permissions: Vec::new(),
    }
}

fn id_token(
    state: &SimState,
    app: &App,
    tenant: &Tenant,
    now: i64,
    expires_in: i64,
    flavor: Flavor,
) -> String {
    let user = &state.world.admin;
    let (iss, ver) = match flavor {
        Flavor::V2 => (format!("{}/{}/v2.0", state.origins.login, tenant.id), "2.0"),
        Flavor::V1 => (format!("https://sts.windows.net/{}/", tenant.id), "1.0"),
    };
    let claims = json!({
        "aud": app.client_id,
        "iss": iss,
        "iat": now,
        "nbf": now,
        "exp": now + expires_in,
        "name": user.name,
        "oid": user.oid,
        "preferred_username": user.upn,
        "rh": format!("0.{}.", random_token(20)),
        "sub": pairwise_sub(&user.oid, &app.client_id),
        "tid": tenant.id,
        "upn": user.upn,
        "uti": random_token(22),
        "ver": ver,
    });
    let t = state.signer.sign(&claims);
    state.remember_secret(&t);
    t
}

/// `sub` is pairwise: stable per user and app, different across apps.
fn pairwise_sub(oid: &str, audience: &str) -> String {
    let d = Sha256::new()
        .chain_update(oid.as_bytes())
        .chain_update(b"/")
        .chain_update(audience.as_bytes())
        .finalize();
    URL_SAFE_NO_PAD.encode(d)
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
