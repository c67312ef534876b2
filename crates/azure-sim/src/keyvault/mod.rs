//! Key Vault: the secrets data plane of one vault at an origin root, with
//! the 401 bearer challenge the Azure SDKs depend on. Shapes follow
//! keyvault/secrets-2025-07-01.json, its examples and the recorded session.
//!
//! This file authenticates, authorises and answers errors; [`store`] keeps
//! every version of every secret; [`secrets`] serves the secret operations.

mod secrets;
mod store;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use tenantwatch_common::sync::lock;

use crate::bearer::{self, AccessClaims, BearerError};
use crate::faults::server_code;
use crate::http::{self, first};
use crate::resources::KEY_VAULT;
use crate::state::SimState;
use store::Vault;

/// api-versions the service answers (7.x, the date-based ones in the specs,
/// and 2026-04-01, the default of azure-keyvault-secrets 4.12).
const API_VERSIONS: &[&str] = &[
    "2016-10-01",
    "7.0",
    "7.1",
    "7.2",
    "7.3",
    "7.4",
    "7.5",
    "7.6",
    "2025-06-01",
    "2025-07-01",
    "2026-04-01",
];
const LATEST_API_VERSION: &str = "2026-04-01";
const REGION: &str = "westeurope";
/// The simulated vault's name, as it appears in 403 messages.
const VAULT_NAME: &str = "tenantwatch-sim";

/// Key Vault's state: what every service shares, and the vault's contents.
pub(crate) struct KeyVault {
    /// What every service shares (clock, world, token signer…).
    pub sim: Arc<SimState>,
    /// The secrets; locked only for the length of one operation.
    vault: Mutex<Vault>,
}

impl KeyVault {
    /// An empty vault.
    pub fn new(sim: Arc<SimState>) -> Self {
        Self {
            sim,
            vault: Mutex::default(),
        }
    }

    /// Adds a version of a secret, as a `PUT` without attributes would;
    /// returns its version id.
    pub fn set(&self, name: &str, value: &str, now: i64) -> String {
        lock(&self.vault).set(name, value, None, now)
    }

    /// The value of the newest version of a secret.
    pub fn latest_value(&self, name: &str) -> Option<String> {
        lock(&self.vault).latest_value(name)
    }

    /// The newest version of a secret: (name as created, version id, value, updated).
    pub fn latest_version(&self, name: &str) -> Option<(String, String, String, i64)> {
        lock(&self.vault).latest_version(name)
    }
}

/// The vault belongs to the service identity's tenant.
fn vault_tenant(state: &SimState) -> &str {
    &state.world.identity_app.home_tenant
}

/// Builds the Key Vault origin's routes.
pub(crate) fn router(kv: Arc<KeyVault>) -> Router {
    Router::new()
        .route("/secrets", get(secrets::list_secrets))
        .route(
            "/secrets/{name}",
            get(secrets::get_latest).put(secrets::set_secret),
        )
        .route(
            "/secrets/{name}/",
            get(secrets::get_latest).patch(secrets::update_latest),
        )
        .route("/secrets/{name}/versions", get(secrets::list_versions))
        .route(
            "/secrets/{name}/{version}",
            get(secrets::get_version).patch(secrets::update_version),
        )
        .fallback(secrets::not_found)
        .with_state(kv)
}

/// Which permission an operation needs (named in 403 messages).
#[derive(Clone, Copy)]
enum Op {
    Get,
    List,
    Set,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::List => "list",
            Op::Set => "set",
        }
    }
}

/// Headers Key Vault puts on every response (keyvault/recordings).
pub(crate) fn kv_headers(headers: &HeaderMap) -> Vec<(&'static str, String)> {
    let mut h = vec![
        ("cache-control", "no-cache".to_string()),
        ("pragma", "no-cache".to_string()),
        ("expires", "-1".to_string()),
        ("x-ms-keyvault-region", REGION.to_string()),
        ("x-ms-keyvault-service-version", "1.9.2164.1".to_string()),
        (
            "x-ms-keyvault-network-info",
            "conn_type=Ipv4;addr=127.0.0.1;act_addr_fam=InterNetwork;".to_string(),
        ),
        ("x-ms-request-id", http::new_id()),
        (
            "strict-transport-security",
            "max-age=31536000;includeSubDomains".to_string(),
        ),
        ("x-content-type-options", "nosniff".to_string()),
    ];
    if let Some(c) = http::header(headers, "x-ms-client-request-id") {
        h.push(("x-ms-client-request-id", c.to_string()));
    }
    h
}

/// `{"error":{"code","message","innererror"?}}` (lowercase `innererror`, which
/// real bodies fill with only a `code`), as in keyvault/recordings and the
/// spec's `KeyVaultError`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KvErrorBody {
    pub code: String,
    pub message: String,
    pub inner_code: Option<String>,
}

impl KvErrorBody {
    /// An error without `innererror`.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            inner_code: None,
        }
    }

    /// An error whose `innererror` carries only `inner` as its code.
    pub fn with_inner(code: &str, message: impl Into<String>, inner: &str) -> Self {
        Self {
            inner_code: Some(inner.into()),
            ..Self::new(code, message)
        }
    }

    /// The wire JSON.
    pub fn to_json(&self) -> serde_json::Value {
        match &self.inner_code {
            Some(inner) => serde_json::json!({
                "error": {"code": self.code, "message": self.message, "innererror": {"code": inner}}
            }),
            None => serde_json::json!({"error": {"code": self.code, "message": self.message}}),
        }
    }
}

fn error(state: &SimState, headers: &HeaderMap, status: StatusCode, body: KvErrorBody) -> Response {
    let mut extra = kv_headers(headers);
    if status == StatusCode::UNAUTHORIZED {
        // The challenge names the vault's tenant and the resource to ask for.
        extra.push((
            "www-authenticate",
            format!(
                "Bearer authorization=\"{}/{}\", resource=\"https://vault.azure.net\"",
                state.origins.login,
                vault_tenant(state)
            ),
        ));
    }
    http::json(status, &body.to_json(), &extra)
}

fn ok(headers: &HeaderMap, body: &impl Serialize) -> Response {
    http::json(StatusCode::OK, body, &kv_headers(headers))
}

/// Authenticates, authorises and reads the api-version, in the order the
/// service does: a request without a token gets the challenge first.
fn guard(
    state: &SimState,
    headers: &HeaderMap,
    uri: &Uri,
    op: Op,
) -> Result<String, Box<Response>> {
    let fail = |status, body| Err(Box::new(error(state, headers, status, body)));
    let claims = match bearer::validate(state, headers, KEY_VAULT.audiences) {
        Ok(c) => c,
        Err(e) => {
            let msg = match e {
                BearerError::Missing => "AKV10000: Request is missing a Bearer or PoP token.".to_string(),
                BearerError::WrongAudience { found } => format!(
                    "AKV10022: Invalid audience. Expected https://vault.azure.net or cfa8b339-82a2-471a-a3c9-0fc0be7a4093, found: {found}."
                ),
                BearerError::Expired { .. } => {
                    "[TokenExpired] Error validating token: 'S2S12086'.".to_string()
                }
                BearerError::Malformed
                | BearerError::BadSignature
                | BearerError::NotYetValid
                | BearerError::ClaimsChallenge { .. } => {
                    "Error validating token: the token is malformed or its signature is invalid."
                        .to_string()
                }
            };
            return fail(
                StatusCode::UNAUTHORIZED,
                KvErrorBody::new("Unauthorized", msg),
            );
        }
    };
    let vault_tenant = vault_tenant(state);
    if !claims.tid.eq_ignore_ascii_case(vault_tenant) {
        return fail(
            StatusCode::UNAUTHORIZED,
            KvErrorBody::new(
                "Unauthorized",
                format!(
                    "AKV10032: Invalid issuer. Expected one of https://sts.windows.net/{vault_tenant}/, found {}.",
                    claims.iss
                ),
            ),
        );
    }
    if !allowed(state, &claims) {
        return fail(
            StatusCode::FORBIDDEN,
            KvErrorBody::with_inner(
                "Forbidden",
                format!(
                    "The user, group or application 'appid={};oid={};iss={}' does not have secrets {} permission on key vault '{VAULT_NAME};location={REGION}'. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287",
                    claims.appid,
                    claims.oid,
                    claims.iss,
                    op.as_str()
                ),
                "AccessDenied",
            ),
        );
    }
    let q = http::query(uri);
    match first(&q, "api-version") {
        None => fail(
            StatusCode::BAD_REQUEST,
            KvErrorBody::new("BadParameter", "The api-version query parameter is missing."),
        ),
        Some(v) if API_VERSIONS.contains(&v) => Ok(v.to_string()),
        Some(v) => fail(
            StatusCode::BAD_REQUEST,
            KvErrorBody::new(
                "BadParameter",
                format!(
                    "The specified version ({v}) is not recognized. Consider using the latest supported version ({LATEST_API_VERSION})."
                ),
            ),
        ),
    }
}

/// Only the service identity has an access policy on the vault.
fn allowed(state: &SimState, claims: &AccessClaims) -> bool {
    let w = &state.world;
    claims.appid.eq_ignore_ascii_case(&w.identity_app.client_id)
        && claims.oid
            == w.service_principal_oid(&w.identity_app.client_id, &w.identity_app.home_tenant)
}

/// Key Vault under an injected fault: `Throttled` for 429
/// (learn.microsoft.com/azure/key-vault/general/overview-throttling), the
/// status's code otherwise.
pub(crate) fn fault_response(
    headers: &HeaderMap,
    status: StatusCode,
    retry_after: Option<u64>,
) -> Response {
    let body = match retry_after {
        Some(_) => KvErrorBody::new(
            "Throttled",
            "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached",
        ),
        None => KvErrorBody::new(
            server_code(status),
            "The service is temporarily unavailable. Please retry the request.",
        ),
    };
    http::json(status, &body.to_json(), &kv_headers(headers))
}
