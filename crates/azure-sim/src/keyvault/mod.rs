//! Key Vault secrets data plane at an origin root, with the 401 bearer
//! challenge the Azure SDKs depend on. Shapes follow
//! keyvault/secrets-2025-07-01.json, its examples and the recorded session.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use tenantwatch_common::sync::lock;

use crate::bearer::{self, AccessClaims, BearerError};
use crate::faults::server_code;
use crate::http::{self, first};
use crate::resources::KEY_VAULT;

use crate::state::SimState;

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
/// Versions whose SecretBundle carries `previousVersion`.
const WITH_PREVIOUS_VERSION: &[&str] = &["2025-07-01", "2026-04-01"];
const MAX_RESULTS: usize = 25;
const RECOVERY_LEVEL: &str = "Recoverable+Purgeable";
const RECOVERABLE_DAYS: u32 = 90;
const REGION: &str = "westeurope";
/// The simulated vault's name, as it appears in 403 messages.
const VAULT_NAME: &str = "tenantwatch-sim";

/// The vault belongs to the service identity's tenant.
fn vault_tenant(state: &SimState) -> &str {
    &state.world.identity_app.home_tenant
}

/// One version of a secret.
#[derive(Debug, Clone)]
struct SecretVersion {
    version: String,
    value: String,
    content_type: Option<String>,
    tags: Option<BTreeMap<String, String>>,
    enabled: bool,
    nbf: Option<i64>,
    exp: Option<i64>,
    created: i64,
    updated: i64,
}

#[derive(Debug, Clone)]
struct SecretEntry {
    name: String,
    versions: Vec<SecretVersion>,
}

/// The vault's contents. Names are case-insensitive, as in Key Vault.
#[derive(Debug, Default)]
pub(crate) struct Vault {
    secrets: BTreeMap<String, SecretEntry>,
}

/// Attributes a caller may set.
#[derive(Debug, Default, Clone, Deserialize)]
struct AttributesIn {
    enabled: Option<bool>,
    nbf: Option<i64>,
    exp: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct SetParams {
    value: Option<String>,
    #[serde(rename = "contentType")]
    content_type: Option<String>,
    tags: Option<BTreeMap<String, String>>,
    attributes: Option<AttributesIn>,
}

#[derive(Debug, Deserialize)]
struct UpdateParams {
    #[serde(rename = "contentType")]
    content_type: Option<String>,
    tags: Option<BTreeMap<String, String>>,
    attributes: Option<AttributesIn>,
}

impl Vault {
    /// Adds a new version of a secret; returns its version id.
    pub fn set(&mut self, name: &str, value: &str, content_type: Option<&str>, now: i64) -> String {
        self.set_full(
            name,
            SetParams {
                value: Some(value.into()),
                content_type: content_type.map(str::to_string),
                tags: None,
                attributes: None,
            },
            now,
        )
        .version
        .clone()
    }

    fn set_full(&mut self, name: &str, p: SetParams, now: i64) -> &SecretVersion {
        let attrs = p.attributes.unwrap_or_default();
        let entry = self
            .secrets
            .entry(name.to_ascii_lowercase())
            .or_insert_with(|| SecretEntry {
                name: name.into(),
                versions: Vec::new(),
            });
        entry.versions.push(SecretVersion {
            version: uuid::Uuid::new_v4().simple().to_string(),
            value: p.value.unwrap_or_default(),
            content_type: p.content_type,
            tags: p.tags,
            enabled: attrs.enabled.unwrap_or(true),
            nbf: attrs.nbf,
            exp: attrs.exp,
            created: now,
            updated: now,
        });
        let last = entry.versions.len() - 1;
        &entry.versions[last]
    }

    /// The value of the newest version of a secret.
    pub fn latest_value(&self, name: &str) -> Option<String> {
        self.entry(name)
            .and_then(|e| e.versions.last())
            .map(|v| v.value.clone())
    }

    /// The newest version of a secret: (name as created, version id, value, updated).
    pub fn latest_version(&self, name: &str) -> Option<(String, String, String, i64)> {
        let e = self.entry(name)?;
        let v = e.versions.last()?;
        Some((
            e.name.clone(),
            v.version.clone(),
            v.value.clone(),
            v.updated,
        ))
    }

    fn entry(&self, name: &str) -> Option<&SecretEntry> {
        self.secrets.get(&name.to_ascii_lowercase())
    }

    fn entry_mut(&mut self, name: &str) -> Option<&mut SecretEntry> {
        self.secrets.get_mut(&name.to_ascii_lowercase())
    }
}

impl SecretEntry {
    fn find(&self, version: Option<&str>) -> Option<(usize, &SecretVersion)> {
        match version {
            None => self
                .versions
                .len()
                .checked_sub(1)
                .map(|i| (i, &self.versions[i])),
            Some(v) => self
                .versions
                .iter()
                .enumerate()
                .find(|(_, x)| x.version.eq_ignore_ascii_case(v)),
        }
    }
}

// ------------------------------------------------------------- wire shapes

#[derive(Serialize)]
struct AttributesOut {
    enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    nbf: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    created: i64,
    updated: i64,
    #[serde(rename = "recoveryLevel")]
    recovery_level: &'static str,
    #[serde(rename = "recoverableDays")]
    recoverable_days: u32,
}

#[derive(Serialize)]
struct SecretBundle {
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    id: String,
    #[serde(rename = "contentType", skip_serializing_if = "Option::is_none")]
    content_type: Option<String>,
    attributes: AttributesOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<BTreeMap<String, String>>,
    #[serde(rename = "previousVersion", skip_serializing_if = "Option::is_none")]
    previous_version: Option<String>,
}

#[derive(Serialize)]
struct SecretItem {
    id: String,
    attributes: AttributesOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<BTreeMap<String, String>>,
    #[serde(rename = "contentType", skip_serializing_if = "Option::is_none")]
    content_type: Option<String>,
}

#[derive(Serialize)]
struct SecretListResult {
    value: Vec<SecretItem>,
    #[serde(rename = "nextLink")]
    next_link: Option<String>,
}

fn attributes(v: &SecretVersion) -> AttributesOut {
    AttributesOut {
        enabled: v.enabled,
        nbf: v.nbf,
        exp: v.exp,
        created: v.created,
        updated: v.updated,
        recovery_level: RECOVERY_LEVEL,
        recoverable_days: RECOVERABLE_DAYS,
    }
}

// ------------------------------------------------------------- routes

/// Builds the Key Vault origin's routes.
pub(crate) fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/secrets", get(list_secrets))
        .route("/secrets/{name}", get(get_latest).put(set_secret))
        .route("/secrets/{name}/", get(get_latest).patch(update_latest))
        .route("/secrets/{name}/versions", get(list_versions))
        .route(
            "/secrets/{name}/{version}",
            get(get_version).patch(update_version),
        )
        .fallback(not_found)
        .with_state(state)
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
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            inner_code: None,
        }
    }

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
                BearerError::Malformed | BearerError::BadSignature | BearerError::NotYetValid => {
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

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 127
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn bad_name(state: &SimState, headers: &HeaderMap, name: &str) -> Response {
    error(
        state,
        headers,
        StatusCode::BAD_REQUEST,
        KvErrorBody::new(
            "BadParameter",
            format!("The request URI contains an invalid name: {name}"),
        ),
    )
}

fn secret_not_found(
    state: &SimState,
    headers: &HeaderMap,
    name: &str,
    version: Option<&str>,
) -> Response {
    let what = version.map_or_else(|| name.to_string(), |v| format!("{name}/{v}"));
    error(
        state,
        headers,
        StatusCode::NOT_FOUND,
        KvErrorBody::new(
            "SecretNotFound",
            format!(
                "A secret with (name/id) {what} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
            ),
        ),
    )
}

fn bundle(
    state: &SimState,
    entry: &SecretEntry,
    idx: usize,
    api_version: &str,
    with_value: bool,
) -> SecretBundle {
    let v = &entry.versions[idx];
    let previous_version = if WITH_PREVIOUS_VERSION.contains(&api_version) {
        idx.checked_sub(1)
            .map(|p| entry.versions[p].version.clone())
    } else {
        None
    };
    SecretBundle {
        value: with_value.then(|| v.value.clone()),
        id: format!(
            "{}/secrets/{}/{}",
            state.origins.keyvault, entry.name, v.version
        ),
        content_type: v.content_type.clone(),
        attributes: attributes(v),
        tags: v.tags.clone(),
        previous_version,
    }
}

async fn set_secret(
    State(state): State<Arc<SimState>>,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let api_version = match guard(&state, &headers, &uri, Op::Set) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    if !valid_name(&name) {
        return bad_name(&state, &headers, &name);
    }
    let params: SetParams = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(_) => {
            return error(
                &state,
                &headers,
                StatusCode::BAD_REQUEST,
                KvErrorBody::new("BadParameter", "The request body is not valid JSON."),
            )
        }
    };
    if params.value.is_none() {
        return error(
            &state,
            &headers,
            StatusCode::BAD_REQUEST,
            KvErrorBody::new("BadParameter", "Property 'value' is required."),
        );
    }
    let now = state.clock.now_unix();
    let body = {
        let mut vault = lock(&state.vault);
        vault.set_full(&name, params, now);
        let Some(entry) = vault.entry(&name) else {
            return secret_not_found(&state, &headers, &name, None);
        };
        let idx = entry.versions.len() - 1;
        bundle(&state, entry, idx, &api_version, true)
    };
    if let Some(v) = &body.value {
        state.remember_secret(v);
    }
    ok(&headers, &body)
}

async fn get_latest(
    State(state): State<Arc<SimState>>,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    read_secret(&state, &name, None, &uri, &headers)
}

async fn get_version(
    State(state): State<Arc<SimState>>,
    Path((name, version)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    read_secret(&state, &name, Some(&version), &uri, &headers)
}

fn read_secret(
    state: &SimState,
    name: &str,
    version: Option<&str>,
    uri: &Uri,
    headers: &HeaderMap,
) -> Response {
    let api_version = match guard(state, headers, uri, Op::Get) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    if !valid_name(name) {
        return bad_name(state, headers, name);
    }
    let vault = lock(&state.vault);
    let Some(entry) = vault.entry(name) else {
        return secret_not_found(state, headers, name, version);
    };
    let Some((idx, v)) = entry.find(version) else {
        return secret_not_found(state, headers, name, version);
    };
    if !v.enabled {
        return error(
            state,
            headers,
            StatusCode::FORBIDDEN,
            KvErrorBody::with_inner(
                "Forbidden",
                "Operation get is not allowed on a disabled secret.",
                "SecretDisabled",
            ),
        );
    }
    let body = bundle(state, entry, idx, &api_version, true);
    drop(vault);
    ok(headers, &body)
}

async fn update_latest(
    State(state): State<Arc<SimState>>,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    update(&state, &name, None, &uri, &headers, &body)
}

async fn update_version(
    State(state): State<Arc<SimState>>,
    Path((name, version)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    update(&state, &name, Some(&version), &uri, &headers, &body)
}

fn update(
    state: &SimState,
    name: &str,
    version: Option<&str>,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let api_version = match guard(state, headers, uri, Op::Set) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let params: UpdateParams = match serde_json::from_slice(body) {
        Ok(p) => p,
        Err(_) => {
            return error(
                state,
                headers,
                StatusCode::BAD_REQUEST,
                KvErrorBody::new("BadParameter", "The request body is not valid JSON."),
            )
        }
    };
    let now = state.clock.now_unix();
    let mut vault = lock(&state.vault);
    let Some(entry) = vault.entry_mut(name) else {
        return secret_not_found(state, headers, name, version);
    };
    let Some((idx, _)) = entry.find(version) else {
        return secret_not_found(state, headers, name, version);
    };
    let v = &mut entry.versions[idx];
    if let Some(ct) = params.content_type {
        v.content_type = Some(ct);
    }
    if let Some(t) = params.tags {
        v.tags = Some(t);
    }
    if let Some(a) = params.attributes {
        v.enabled = a.enabled.unwrap_or(v.enabled);
        v.nbf = a.nbf.or(v.nbf);
        v.exp = a.exp.or(v.exp);
    }
    v.updated = now;
    // The update response carries everything but the value (recording).
    let out = bundle(state, entry, idx, &api_version, false);
    drop(vault);
    ok(headers, &out)
}

/// Page position carried in `$skiptoken`.
#[derive(Serialize, Deserialize)]
struct SkipToken {
    #[serde(rename = "NextMarker")]
    next: usize,
}

fn page_params(q: &[(String, String)]) -> Result<(usize, usize), KvErrorBody> {
    let size = match first(q, "maxresults") {
        None => MAX_RESULTS,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_RESULTS).contains(&n) => n,
            _ => {
                return Err(KvErrorBody::new(
                    "BadParameter",
                    format!(
                    "Invalid maxresults value: {s}. The value must be between 1 and {MAX_RESULTS}."
                ),
                ))
            }
        },
    };
    let offset = match first(q, "$skiptoken") {
        None => 0,
        Some(t) => URL_SAFE_NO_PAD
            .decode(t)
            .ok()
            .and_then(|b| serde_json::from_slice::<SkipToken>(&b).ok())
            .map(|s| s.next)
            .ok_or_else(|| KvErrorBody::new("BadParameter", "The skiptoken is not valid."))?,
    };
    Ok((offset, size))
}

fn next_link(path: &str, api_version: &str, next: usize, size: usize) -> String {
    let token = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&SkipToken { next }).unwrap_or_default());
    format!("{path}?api-version={api_version}&$skiptoken={token}&maxresults={size}")
}

async fn list_versions(
    State(state): State<Arc<SimState>>,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let api_version = match guard(&state, &headers, &uri, Op::List) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let (offset, size) = match page_params(&http::query(&uri)) {
        Ok(p) => p,
        Err(b) => return error(&state, &headers, StatusCode::BAD_REQUEST, b),
    };
    let vault = lock(&state.vault);
    let Some(entry) = vault.entry(&name) else {
        return secret_not_found(&state, &headers, &name, None);
    };
    let value = entry
        .versions
        .iter()
        .skip(offset)
        .take(size)
        .map(|v| SecretItem {
            id: format!(
                "{}/secrets/{}/{}",
                state.origins.keyvault, entry.name, v.version
            ),
            attributes: attributes(v),
            tags: v.tags.clone(),
            content_type: v.content_type.clone(),
        })
        .collect();
    let next = offset + size;
    let next_link = (next < entry.versions.len()).then(|| {
        next_link(
            &format!("{}/secrets/{}/versions", state.origins.keyvault, entry.name),
            &api_version,
            next,
            size,
        )
    });
    drop(vault);
    ok(&headers, &SecretListResult { value, next_link })
}

async fn list_secrets(
    State(state): State<Arc<SimState>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let api_version = match guard(&state, &headers, &uri, Op::List) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let (offset, size) = match page_params(&http::query(&uri)) {
        Ok(p) => p,
        Err(b) => return error(&state, &headers, StatusCode::BAD_REQUEST, b),
    };
    let vault = lock(&state.vault);
    let value = vault
        .secrets
        .values()
        .skip(offset)
        .take(size)
        .filter_map(|e| {
            e.versions.last().map(|v| SecretItem {
                id: format!("{}/secrets/{}", state.origins.keyvault, e.name),
                attributes: attributes(v),
                tags: v.tags.clone(),
                content_type: v.content_type.clone(),
            })
        })
        .collect();
    let next = offset + size;
    let next_link = (next < vault.secrets.len()).then(|| {
        next_link(
            &format!("{}/secrets", state.origins.keyvault),
            &api_version,
            next,
            size,
        )
    });
    drop(vault);
    ok(&headers, &SecretListResult { value, next_link })
}

async fn not_found(State(state): State<Arc<SimState>>, headers: HeaderMap) -> Response {
    // Unknown paths still get the challenge first when no token is sent.
    if bearer::validate(&state, &headers, KEY_VAULT.audiences) == Err(BearerError::Missing) {
        return error(
            &state,
            &headers,
            StatusCode::UNAUTHORIZED,
            KvErrorBody::new(
                "Unauthorized",
                "AKV10000: Request is missing a Bearer or PoP token.",
            ),
        );
    }
    error(
        &state,
        &headers,
        StatusCode::NOT_FOUND,
        KvErrorBody::new("NotFound", "The requested resource was not found."),
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inner_error_has_only_code() {
        let v = KvErrorBody::with_inner("Forbidden", "no", "AccessDenied").to_json();
        assert_eq!(
            v,
            serde_json::json!({"error":{"code":"Forbidden","message":"no","innererror":{"code":"AccessDenied"}}})
        );
        let v = KvErrorBody::new("Unauthorized", "AKV10000: x").to_json();
        assert!(v["error"].get("innererror").is_none());
    }

    #[test]
    fn names_follow_the_spec_pattern() {
        assert!(valid_name("tenantwatch-refresh-token"));
        assert!(valid_name("A1"));
        assert!(!valid_name("bad_name"));
        assert!(!valid_name(""));
        assert!(!valid_name(&"a".repeat(128)));
    }

    #[test]
    fn versions_are_32_hex_and_names_case_insensitive() {
        let mut v = Vault::default();
        let a = v.set("My-Secret", "1", None, 10);
        let b = v.set("my-secret", "2", None, 11);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_eq!(v.latest_value("MY-SECRET").as_deref(), Some("2"));
        let e = v.entry("my-secret").unwrap();
        assert_eq!(e.name, "My-Secret");
        assert_eq!(e.find(Some(&a)).unwrap().1.value, "1");
        assert!(e.find(Some("0000")).is_none());
    }

    #[test]
    fn paging_parameters() {
        let q = http::pairs(b"maxresults=2");
        assert_eq!(page_params(&q).unwrap(), (0, 2));
        assert!(page_params(&http::pairs(b"maxresults=26")).is_err());
        assert!(page_params(&http::pairs(b"maxresults=0")).is_err());
        let link = next_link("https://h/secrets/x/versions", "7.6", 4, 2);
        let u = url::Url::parse(&link).unwrap();
        let q: Vec<(String, String)> = u.query_pairs().into_owned().collect();
        assert_eq!(page_params(&q).unwrap(), (4, 2));
        assert_eq!(first(&q, "api-version"), Some("7.6"));
    }
}
