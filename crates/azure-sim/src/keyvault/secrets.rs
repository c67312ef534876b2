//! The secret operations: set (a new version), get (latest or a version),
//! update attributes, and list secrets or a secret's versions with
//! `$skiptoken` paging.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use tenantwatch_common::sync::lock;

use super::store::{SecretEntry, SecretVersion, SetParams, UpdateParams};
use super::{error, guard, ok, KeyVault, KvErrorBody, Op};
use crate::bearer::{self, BearerError};
use crate::http::{self, first};
use crate::resources::KEY_VAULT;
use crate::state::SimState;

/// Versions whose SecretBundle carries `previousVersion`.
const WITH_PREVIOUS_VERSION: &[&str] = &["2025-07-01", "2026-04-01"];
const MAX_RESULTS: usize = 25;
const RECOVERY_LEVEL: &str = "Recoverable+Purgeable";
const RECOVERABLE_DAYS: u32 = 90;

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

/// `PUT /secrets/{name}`: a new version.
pub(super) async fn set_secret(
    State(kv): State<Arc<KeyVault>>,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let state = &*kv.sim;
    let api_version = match guard(state, &headers, &uri, Op::Set) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    if !valid_name(&name) {
        return bad_name(state, &headers, &name);
    }
    let params: SetParams = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(_) => {
            return error(
                state,
                &headers,
                StatusCode::BAD_REQUEST,
                KvErrorBody::new("BadParameter", "The request body is not valid JSON."),
            )
        }
    };
    if params.value.is_none() {
        return error(
            state,
            &headers,
            StatusCode::BAD_REQUEST,
            KvErrorBody::new("BadParameter", "Property 'value' is required."),
        );
    }
    let now = state.clock.now_unix();
    let body = {
        let mut vault = lock(&kv.vault);
        vault.set_full(&name, params, now);
        let Some(entry) = vault.entry(&name) else {
            return secret_not_found(state, &headers, &name, None);
        };
        let idx = entry.versions.len() - 1;
        bundle(state, entry, idx, &api_version, true)
    };
    if let Some(v) = &body.value {
        state.remember_secret(v);
    }
    ok(&headers, &body)
}

/// `GET /secrets/{name}`: the newest version.
pub(super) async fn get_latest(
    State(kv): State<Arc<KeyVault>>,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    read_secret(&kv, &name, None, &uri, &headers)
}

/// `GET /secrets/{name}/{version}`.
pub(super) async fn get_version(
    State(kv): State<Arc<KeyVault>>,
    Path((name, version)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    read_secret(&kv, &name, Some(&version), &uri, &headers)
}

fn read_secret(
    kv: &KeyVault,
    name: &str,
    version: Option<&str>,
    uri: &Uri,
    headers: &HeaderMap,
) -> Response {
    let state = &*kv.sim;
    let api_version = match guard(state, headers, uri, Op::Get) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    if !valid_name(name) {
        return bad_name(state, headers, name);
    }
    let vault = lock(&kv.vault);
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

/// `PATCH /secrets/{name}/`: the newest version's attributes.
pub(super) async fn update_latest(
    State(kv): State<Arc<KeyVault>>,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    update(&kv, &name, None, &uri, &headers, &body)
}

/// `PATCH /secrets/{name}/{version}`: that version's attributes.
pub(super) async fn update_version(
    State(kv): State<Arc<KeyVault>>,
    Path((name, version)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    update(&kv, &name, Some(&version), &uri, &headers, &body)
}

fn update(
    kv: &KeyVault,
    name: &str,
    version: Option<&str>,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let state = &*kv.sim;
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
    let mut vault = lock(&kv.vault);
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

/// `GET /secrets/{name}/versions`, paged.
pub(super) async fn list_versions(
    State(kv): State<Arc<KeyVault>>,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let state = &*kv.sim;
    let api_version = match guard(state, &headers, &uri, Op::List) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let (offset, size) = match page_params(&http::query(&uri)) {
        Ok(p) => p,
        Err(b) => return error(state, &headers, StatusCode::BAD_REQUEST, b),
    };
    let vault = lock(&kv.vault);
    let Some(entry) = vault.entry(&name) else {
        return secret_not_found(state, &headers, &name, None);
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

/// `GET /secrets`: the newest version of each, paged.
pub(super) async fn list_secrets(
    State(kv): State<Arc<KeyVault>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let state = &*kv.sim;
    let api_version = match guard(state, &headers, &uri, Op::List) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let (offset, size) = match page_params(&http::query(&uri)) {
        Ok(p) => p,
        Err(b) => return error(state, &headers, StatusCode::BAD_REQUEST, b),
    };
    let vault = lock(&kv.vault);
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

/// Any other path.
pub(super) async fn not_found(State(kv): State<Arc<KeyVault>>, headers: HeaderMap) -> Response {
    let state = &*kv.sim;
    // Unknown paths still get the challenge first when no token is sent.
    if bearer::validate(state, &headers, KEY_VAULT.audiences) == Err(BearerError::Missing) {
        return error(
            state,
            &headers,
            StatusCode::UNAUTHORIZED,
            KvErrorBody::new(
                "Unauthorized",
                "AKV10000: Request is missing a Bearer or PoP token.",
            ),
        );
    }
    error(
        state,
        &headers,
        StatusCode::NOT_FOUND,
        KvErrorBody::new("NotFound", "The requested resource was not found."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_spec_pattern() {
        assert!(valid_name("tenantwatch-refresh-token"));
        assert!(valid_name("A1"));
        assert!(!valid_name("bad_name"));
        assert!(!valid_name(""));
        assert!(!valid_name(&"a".repeat(128)));
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
