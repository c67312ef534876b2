//! The simulator's admin API: plain HTTP on loopback, for shell scripts and
//! for end-to-end tests that run `tenantwatch sim` as a process. It drives
//! the same controls as [`crate::SimHandle`] and never returns a secret or
//! token value.
//!
//! What acts on "the" partner's refresh tokens (`/_sim/revoke`,
//! `/_sim/password-reset`) takes `?partner=` (an index or the partner's
//! tenant id or domain) and acts on partner 0 without it, answering as a
//! single-partner simulator does.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::Router;
use serde_json::{json, Value};

use crate::faults::Fault;
use crate::http::{self, first};

use crate::entra::state::Entra;
use crate::entra::user_tokens;
use crate::keyvault::KeyVault;
use crate::service::Service;
use crate::state::SimState;
use crate::truth;
use crate::world::Partner;

/// What the admin API controls: the shared state and the services' own.
/// Handlers take the part they need (axum's `FromRef`).
#[derive(Clone)]
pub(crate) struct Admin {
    /// What every service shares: faults, clock, request log, world.
    pub sim: Arc<SimState>,
    /// Entra, for revocation, injected token errors and device codes.
    pub entra: Arc<Entra>,
    /// Key Vault, for the secret view.
    pub keyvault: Arc<KeyVault>,
}

impl FromRef<Admin> for Arc<Entra> {
    fn from_ref(admin: &Admin) -> Self {
        admin.entra.clone()
    }
}

impl FromRef<Admin> for Arc<SimState> {
    fn from_ref(admin: &Admin) -> Self {
        admin.sim.clone()
    }
}

impl FromRef<Admin> for Arc<KeyVault> {
    fn from_ref(admin: &Admin) -> Self {
        admin.keyvault.clone()
    }
}

/// Builds the admin API's routes.
pub(crate) fn router(admin: Admin) -> Router {
    Router::new()
        .route("/_sim", get(index))
        .route("/_sim/clock", get(clock))
        .route("/_sim/clock/advance", post(advance))
        .route("/_sim/revoke", post(revoke))
        .route("/_sim/password-reset", post(revoke))
        .route("/_sim/tenants/{tenant}/cae-event", post(cae_event))
        .route("/_sim/next-sign-in-without-mfa", post(without_mfa))
        .route(
            "/_sim/tenants/{tenant}/token-error",
            post(token_error).delete(clear_token_error),
        )
        .route(
            "/_sim/tenants/{tenant}/token-throttle",
            post(token_throttle).delete(clear_token_error),
        )
        .route("/_sim/faults/{service}", post(fault).delete(clear_fault))
        .route("/_sim/faults/{service}/next", post(fault_next))
        .route("/_sim/faults/{service}/rate", post(fault_rate))
        .route(
            "/_sim/tenants/{tenant}/faults/{service}",
            post(tenant_fault),
        )
        .route("/_sim/tenants/{tenant}/faults", delete(clear_tenant_faults))
        .route("/_sim/customers/{tenant}", delete(remove_customer))
        .route("/_sim/ground-truth", get(ground_truth))
        .route("/_sim/device/approve", post(approve))
        .route("/_sim/device/deny", post(deny))
        .route(
            "/_sim/clients/{client_id}/expire-secret",
            post(expire_secret),
        )
        .route("/_sim/requests", get(requests))
        .route("/_sim/limits", get(limits).post(set_limits))
        .route("/_sim/secrets/{name}", get(secret))
        .fallback(not_found)
        .with_state(admin)
}

fn ok(body: Value) -> Response {
    http::json(StatusCode::OK, &body, &[])
}

fn fail(status: StatusCode, message: impl Into<String>) -> Response {
    http::json(status, &json!({"error": message.into()}), &[])
}

async fn not_found() -> Response {
    fail(
        StatusCode::NOT_FOUND,
        "no such admin endpoint; see docs/simulator.md",
    )
}

/// A required unsigned integer query parameter.
fn number(q: &[(String, String)], key: &str) -> Result<u64, Box<Response>> {
    let raw = first(q, key).ok_or_else(|| {
        Box::new(fail(
            StatusCode::BAD_REQUEST,
            format!("query parameter '{key}' is required"),
        ))
    })?;
    raw.parse().map_err(|_| {
        Box::new(fail(
            StatusCode::BAD_REQUEST,
            format!("query parameter '{key}' must be a non-negative integer, got '{raw}'"),
        ))
    })
}

async fn index(State(state): State<Arc<SimState>>, State(entra): State<Arc<Entra>>) -> Response {
    let o = &state.origins;
    ok(json!({
        "login": o.login,
        "keyvault": o.keyvault,
        "graph": o.graph,
        "arm": o.arm,
        "partner_center": o.partner_center,
        "imds": format!("{}/metadata/identity/oauth2/token", o.managed_identity),
        "identity_endpoint": format!("{}/msi/token", o.managed_identity),
        "admin": o.admin,
        "device_login": format!("{}/devicelogin", o.login),
        "federation_issuer": entra.creds.issuer.url(),
    }))
}

fn clock_body(state: &SimState) -> Value {
    let now = state.clock.now_unix();
    json!({"now": now, "offset_seconds": now - chrono::Utc::now().timestamp()})
}

async fn clock(State(state): State<Arc<SimState>>) -> Response {
    ok(clock_body(&state))
}

async fn advance(State(state): State<Arc<SimState>>, uri: Uri) -> Response {
    match number(&http::query(&uri), "seconds") {
        Ok(secs) => {
            state.clock.advance(Duration::from_secs(secs));
            ok(clock_body(&state))
        }
        Err(resp) => *resp,
    }
}

/// The partner `?partner=` names (its index, or its tenant id or domain),
/// `None` without one, or 404.
fn selected_partner<'a>(
    state: &'a SimState,
    q: &[(String, String)],
) -> Result<Option<&'a Partner>, Box<Response>> {
    let Some(key) = first(q, "partner") else {
        return Ok(None);
    };
    if key.is_empty() {
        return Err(Box::new(fail(
            StatusCode::BAD_REQUEST,
            "partner= needs an index, a tenant id or a domain",
        )));
    }
    let w = &state.world;
    let found = match key.parse::<usize>() {
        Ok(k) => w.partner(k),
        Err(_) => w.tenant(key).and_then(|t| w.partner_by_tenant(&t.id)),
    };
    found.map(Some).ok_or_else(|| {
        Box::new(fail(
            StatusCode::NOT_FOUND,
            format!("no simulated partner '{key}'"),
        ))
    })
}

/// Revokes a partner admin's refresh tokens (partner 0's without
/// `?partner=`); the answer names the partner only when one was selected.
async fn revoke(
    State(state): State<Arc<SimState>>,
    State(entra): State<Arc<Entra>>,
    uri: Uri,
) -> Response {
    let selected = match selected_partner(&state, &http::query(&uri)) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let partner = selected.unwrap_or_else(|| state.world.default_partner());
    entra.revoke_refresh_tokens(&partner.admin.oid);
    let mut body = json!({
        "revoked": true,
        "tokens_valid_from": entra.refresh_tokens.valid_from(&partner.admin.oid),
    });
    if let Some(p) = selected {
        body["partner"] = json!(p.index);
        body["tenant_id"] = json!(p.tenant.id);
    }
    ok(body)
}

/// A critical event in one tenant that leaves refresh tokens valid (a
/// Conditional Access policy change): its CAE tokens issued before now are
/// answered with a claims challenge, and redeeming again satisfies it.
async fn cae_event(State(state): State<Arc<SimState>>, Path(tenant): Path<String>) -> Response {
    match tenant_id(&state, &tenant) {
        Ok(id) => {
            let now = state.clock.now_unix();
            state.cae.event(Some(&id), now);
            ok(json!({"tenant": id, "cae_event": now}))
        }
        Err(r) => *r,
    }
}

async fn without_mfa(State(entra): State<Arc<Entra>>) -> Response {
    entra.next_sign_in_without_mfa();
    ok(json!({"next_sign_in_mfa": false}))
}

/// The tenant id a path names (id or domain), or 404.
fn tenant_id(state: &SimState, key: &str) -> Result<String, Box<Response>> {
    state
        .world
        .tenant(key)
        .map(|t| t.id.clone())
        .ok_or_else(|| {
            Box::new(fail(
                StatusCode::NOT_FOUND,
                format!("no simulated tenant '{key}'"),
            ))
        })
}

async fn token_error(
    State(state): State<Arc<SimState>>,
    State(entra): State<Arc<Entra>>,
    Path(tenant): Path<String>,
    uri: Uri,
) -> Response {
    let id = match tenant_id(&state, &tenant) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    match number(&http::query(&uri), "code").map(u32::try_from) {
        Ok(Ok(code)) => {
            entra.set_token_error(&id, code);
            ok(json!({"tenant_id": id, "code": code}))
        }
        Ok(Err(_)) => fail(StatusCode::BAD_REQUEST, "'code' is out of range"),
        Err(r) => *r,
    }
}

async fn token_throttle(
    State(state): State<Arc<SimState>>,
    State(entra): State<Arc<Entra>>,
    Path(tenant): Path<String>,
    uri: Uri,
) -> Response {
    let id = match tenant_id(&state, &tenant) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    match number(&http::query(&uri), "retry_after") {
        Ok(secs) => {
            entra.set_token_throttle(&id, secs);
            ok(json!({"tenant_id": id, "retry_after": secs}))
        }
        Err(r) => *r,
    }
}

async fn clear_token_error(
    State(state): State<Arc<SimState>>,
    State(entra): State<Arc<Entra>>,
    Path(tenant): Path<String>,
) -> Response {
    match tenant_id(&state, &tenant) {
        Ok(id) => {
            entra.clear_token_error(&id);
            ok(json!({"tenant_id": id, "cleared": true}))
        }
        Err(r) => *r,
    }
}

fn service(name: &str) -> Result<Service, Box<Response>> {
    Service::from_name(name).ok_or_else(|| {
        Box::new(fail(
            StatusCode::NOT_FOUND,
            format!("no service '{name}'; use token, keyvault, graph, arm, partner_center or managed_identity"),
        ))
    })
}

/// The fault a query names: exactly one of `status=CODE`,
/// `throttle=SECS` or `hang=1`.
fn parse_fault(q: &[(String, String)]) -> Result<Fault, Box<Response>> {
    let chosen = [
        first(q, "status").is_some(),
        first(q, "throttle").is_some(),
        first(q, "hang").is_some(),
    ];
    if chosen.iter().filter(|c| **c).count() != 1 {
        return Err(Box::new(fail(
            StatusCode::BAD_REQUEST,
            "give exactly one of status=CODE, throttle=SECS or hang=1",
        )));
    }
    if chosen[0] {
        number(q, "status").and_then(|s| match u16::try_from(s) {
            Ok(s) if (100..=599).contains(&s) => Ok(Fault::Status(s)),
            _ => Err(Box::new(fail(
                StatusCode::BAD_REQUEST,
                "'status' must be an HTTP status code",
            ))),
        })
    } else if chosen[1] {
        number(q, "throttle").map(|s| Fault::Throttle {
            retry_after_secs: s,
        })
    } else {
        Ok(Fault::Hang)
    }
}

fn fault_json(f: Fault) -> Value {
    match f {
        Fault::Status(s) => json!({"status": s}),
        Fault::Throttle { retry_after_secs } => json!({"throttle": retry_after_secs}),
        Fault::Hang => json!({"hang": true}),
    }
}

async fn fault(State(state): State<Arc<SimState>>, Path(name): Path<String>, uri: Uri) -> Response {
    let svc = match service(&name) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let q = http::query(&uri);
    let f = match parse_fault(&q) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let window = match first(&q, "seconds") {
        None => None,
        Some(_) => match number(&q, "seconds") {
            Ok(s) => Some(Duration::from_secs(s)),
            Err(r) => return *r,
        },
    };
    state.faults.set(svc, f, window);
    ok(json!({
        "service": svc.as_str(),
        "fault": fault_json(f),
        "seconds": window.map(|w| w.as_secs()),
    }))
}

async fn fault_next(
    State(state): State<Arc<SimState>>,
    Path(name): Path<String>,
    uri: Uri,
) -> Response {
    let svc = match service(&name) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let q = http::query(&uri);
    let parsed = parse_fault(&q).and_then(|f| {
        let count = number(&q, "count")?;
        usize::try_from(count)
            .map(|c| (f, c))
            .map_err(|_| Box::new(fail(StatusCode::BAD_REQUEST, "'count' is out of range")))
    });
    match parsed {
        Ok((f, count)) => {
            state.faults.set_next(svc, f, count);
            ok(json!({"service": svc.as_str(), "fault": fault_json(f), "count": count}))
        }
        Err(r) => *r,
    }
}

async fn fault_rate(
    State(state): State<Arc<SimState>>,
    Path(name): Path<String>,
    uri: Uri,
) -> Response {
    let q = http::query(&uri);
    let parsed = service(&name).and_then(|svc| {
        let f = parse_fault(&q)?;
        let fraction = first(&q, "fraction")
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| (0.0..=1.0).contains(v))
            .ok_or_else(|| {
                Box::new(fail(
                    StatusCode::BAD_REQUEST,
                    "'fraction' must be a number from 0 to 1",
                ))
            })?;
        Ok((svc, f, fraction))
    });
    match parsed {
        Ok((svc, f, fraction)) => {
            state.faults.set_rate(svc, f, fraction);
            ok(json!({"service": svc.as_str(), "fault": fault_json(f), "fraction": fraction}))
        }
        Err(r) => *r,
    }
}

async fn tenant_fault(
    State(state): State<Arc<SimState>>,
    Path((tenant, name)): Path<(String, String)>,
    uri: Uri,
) -> Response {
    let parsed = tenant_id(&state, &tenant).and_then(|id| {
        let svc = service(&name)?;
        let f = parse_fault(&http::query(&uri))?;
        Ok((id, svc, f))
    });
    match parsed {
        Ok((id, svc, f)) => {
            state.faults.set_tenant(&id, svc, f);
            ok(json!({"tenant_id": id, "service": svc.as_str(), "fault": fault_json(f)}))
        }
        Err(r) => *r,
    }
}

async fn clear_tenant_faults(
    State(state): State<Arc<SimState>>,
    Path(tenant): Path<String>,
) -> Response {
    match tenant_id(&state, &tenant) {
        Ok(id) => {
            state.faults.clear_tenant(&id);
            ok(json!({"tenant_id": id, "cleared": true}))
        }
        Err(r) => *r,
    }
}

async fn remove_customer(
    State(state): State<Arc<SimState>>,
    Path(tenant): Path<String>,
) -> Response {
    match tenant_id(&state, &tenant) {
        Ok(id) if state.world.is_customer(&id) => {
            state.remove_customer(&id);
            ok(json!({"tenant_id": id, "removed": true}))
        }
        Ok(id) => fail(
            StatusCode::NOT_FOUND,
            format!("'{id}' is not a customer tenant"),
        ),
        Err(r) => *r,
    }
}

async fn ground_truth(State(state): State<Arc<SimState>>) -> Response {
    ok(json!(truth::build(&state)))
}

async fn clear_fault(State(state): State<Arc<SimState>>, Path(name): Path<String>) -> Response {
    match service(&name) {
        Ok(svc) => {
            state.faults.clear(svc);
            ok(json!({"service": svc.as_str(), "cleared": true}))
        }
        Err(r) => *r,
    }
}

fn decide(entra: &Entra, uri: &Uri, approve: bool) -> Response {
    let q = http::query(uri);
    let Some(code) = first(&q, "user_code") else {
        return fail(
            StatusCode::BAD_REQUEST,
            "query parameter 'user_code' is required",
        );
    };
    if entra
        .device_codes
        .decide(code, approve, entra.sim.clock.now_unix())
    {
        ok(json!({"user_code": code, "approved": approve}))
    } else {
        fail(
            StatusCode::NOT_FOUND,
            format!("no pending, unexpired device code with user code '{code}'"),
        )
    }
}

async fn approve(State(entra): State<Arc<Entra>>, uri: Uri) -> Response {
    decide(&entra, &uri, true)
}

async fn deny(State(entra): State<Arc<Entra>>, uri: Uri) -> Response {
    decide(&entra, &uri, false)
}

async fn expire_secret(
    State(state): State<Arc<SimState>>,
    State(entra): State<Arc<Entra>>,
    Path(client_id): Path<String>,
) -> Response {
    match state.world.app(&client_id) {
        Some(app) => {
            entra.expire_secret(&app.client_id);
            ok(json!({"client_id": app.client_id, "secret_expired": true}))
        }
        None => fail(
            StatusCode::NOT_FOUND,
            format!("no simulated app '{client_id}'"),
        ),
    }
}

async fn requests(State(state): State<Arc<SimState>>) -> Response {
    let mut out: BTreeMap<&'static str, (u64, BTreeMap<String, u64>)> = Service::ALL
        .iter()
        .map(|s| (s.as_str(), (0, BTreeMap::new())))
        .collect();
    for (svc, tenant, n) in state.request_counts() {
        let entry = out.entry(svc.as_str()).or_default();
        entry.0 += n;
        *entry
            .1
            .entry(tenant.unwrap_or_else(|| "(none)".into()))
            .or_default() += n;
    }
    let mut body: serde_json::Map<String, Value> = out
        .into_iter()
        .map(|(k, (total, tenants))| (k.to_string(), json!({"total": total, "tenants": tenants})))
        .collect();
    body.insert("throttled".into(), json!(truth::throttled(&state)));
    body.insert("records".into(), json!(state.requests.records()));
    ok(Value::Object(body))
}

fn limits_body(state: &SimState) -> Value {
    let imposed: serde_json::Map<String, Value> = state
        .limits
        .imposed()
        .into_iter()
        .map(|(l, d)| (l.as_str().to_string(), json!(d.as_secs_f64())))
        .collect();
    json!({
        "enabled": state.limits.enabled(),
        "scale": state.limits.scale(),
        "imposed_seconds": imposed,
    })
}

async fn limits(State(state): State<Arc<SimState>>) -> Response {
    ok(limits_body(&state))
}

/// `POST /_sim/limits?enabled=on|off&scale=F`: either or both; every bucket
/// starts full again.
async fn set_limits(State(state): State<Arc<SimState>>, uri: Uri) -> Response {
    let q = http::query(&uri);
    let enabled = match first(&q, "enabled") {
        None => state.limits.enabled(),
        Some("on") => true,
        Some("off") => false,
        Some(_) => return fail(StatusCode::BAD_REQUEST, "enabled must be on or off"),
    };
    let scale = match first(&q, "scale").map(str::parse::<f64>) {
        None => state.limits.scale(),
        Some(Ok(f)) if f.is_finite() && f > 0.0 => f,
        Some(_) => return fail(StatusCode::BAD_REQUEST, "scale must be a number above 0"),
    };
    state.limits.configure(enabled, scale);
    ok(limits_body(&state))
}

async fn secret(
    State(state): State<Arc<SimState>>,
    State(entra): State<Arc<Entra>>,
    State(keyvault): State<Arc<KeyVault>>,
    Path(name): Path<String>,
) -> Response {
    let latest = keyvault.latest_version(&name);
    match latest {
        Some((name, version, value, updated)) => {
            let valid = user_tokens::check_refresh_token(&entra, &value).is_ok();
            ok(json!({
                "name": name,
                "version": version,
                "id": format!("{}/secrets/{name}/{version}", state.origins.keyvault),
                "updated": updated,
                "refresh_token_valid": valid,
            }))
        }
        None => fail(
            StatusCode::NOT_FOUND,
            format!("no secret '{name}' in the vault"),
        ),
    }
}
