//! Azure Resource Graph, served on the ARM origin as in Azure:
//! `POST /providers/Microsoft.ResourceGraph/resources?api-version=…`
//! (resourcegraph/resourcegraph-2024-04-01.json and its examples).
//!
//! Requests are scoped to the token's tenant (all its subscriptions, or
//! those listed in `subscriptions`). Results page by `$skipToken` in the
//! body — small pages by default, so clients must follow them — and every
//! answer carries the user-quota headers. The queries understood are in
//! [`query`]; evaluation is in [`table`].

mod query;
mod table;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tenantwatch_common::sync::lock;

use crate::arm;
use crate::bearer;
use crate::clock::dotnet_round_trip;
use crate::faults::server_code;
use crate::http::{self, first};
use crate::limits::hms;
use crate::resources::ARM;
use crate::state::SimState;
use crate::world::Tenant;

/// Resource Graph's documented user quota: 15 queries per 5-second window
/// (learn.microsoft.com/azure/governance/resource-graph/concepts/guidance-for-throttled-requests).
const QUOTA: u32 = 15;
/// Length of a Resource Graph quota window.
const QUOTA_WINDOW: Duration = Duration::from_secs(5);

/// Resource Graph's own state: its page size and each caller's quota.
#[derive(Debug)]
pub(crate) struct ResourceGraph {
    /// Rows per page (at least one).
    pub page_size: usize,
    /// Per caller: window start and queries in it.
    quota: Mutex<HashMap<String, (Instant, u32)>>,
}

impl ResourceGraph {
    /// Resource Graph serving `page_size` rows per page.
    pub fn new(page_size: usize) -> Self {
        Self {
            page_size: page_size.max(1),
            quota: Mutex::default(),
        }
    }

    /// Counts one query against `caller`'s quota and returns what is left
    /// in the window. The sim never throttles on its own: at zero it keeps
    /// answering (inject a fault for 429s).
    pub fn quota_take(&self, caller: &str) -> u32 {
        let now = Instant::now();
        let mut map = lock(&self.quota);
        let entry = map.entry(caller.to_string()).or_insert((now, 0));
        if now.duration_since(entry.0) >= QUOTA_WINDOW {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        QUOTA.saturating_sub(entry.1)
    }
}

/// The resource path, as Azure spells it (matched case-insensitively).
pub(crate) const PATH: &str = "/providers/Microsoft.ResourceGraph/resources";

/// api-versions accepted (objectArray is the default result format in all).
const API_VERSIONS: &[&str] = &["2021-03-01", "2022-10-01", "2024-04-01"];

/// Rows per page when the client asks for none (the documented maximum).
const MAX_TOP: i64 = 1000;

/// Whether a request path is the Resource Graph query endpoint.
pub(crate) fn is_path(path: &str) -> bool {
    path.eq_ignore_ascii_case(PATH)
}

/// The request body (`QueryRequest`).
#[derive(Debug, Deserialize)]
struct QueryRequest {
    query: Option<String>,
    subscriptions: Option<Vec<String>>,
    /// Accepted; the sim treats any management group as the whole tenant.
    #[serde(rename = "managementGroups")]
    #[allow(dead_code)]
    management_groups: Option<Vec<String>>,
    #[serde(default)]
    options: Options,
}

/// `QueryRequestOptions`.
#[derive(Debug, Default, Deserialize)]
struct Options {
    #[serde(rename = "$top")]
    top: Option<i64>,
    #[serde(rename = "$skip")]
    skip: Option<i64>,
    #[serde(rename = "$skipToken")]
    skip_token: Option<String>,
    #[serde(rename = "resultFormat")]
    result_format: Option<String>,
}

/// `QueryResponse`; `resultTruncated` is a string in the API.
#[derive(Debug, Serialize)]
struct QueryResponse {
    #[serde(rename = "totalRecords")]
    total_records: usize,
    count: usize,
    #[serde(rename = "resultTruncated")]
    result_truncated: &'static str,
    facets: Vec<Value>,
    #[serde(rename = "$skipToken", skip_serializing_if = "Option::is_none")]
    skip_token: Option<String>,
    data: Value,
}

/// ARM's headers with Resource Graph's quota headers
/// (guidance-for-throttled-requests) instead of the tenant-read counter.
fn headers(remaining: u32) -> Vec<(&'static str, String)> {
    let mut h = arm::arm_headers();
    h.retain(|(k, _)| !k.starts_with("x-ms-ratelimit"));
    h.push(("x-ms-user-quota-remaining", remaining.to_string()));
    h.push(("x-ms-user-quota-resets-after", hms(QUOTA_WINDOW.as_secs())));
    h.push((
        "x-ms-ratelimit-remaining-tenant-resource-requests",
        "149".into(),
    ));
    h
}

/// Resource Graph's error: a `BadRequest`-style top level whose message
/// names the timestamp and correlation id, and the real reasons in
/// `details` (azure-powershell#13762, aztfexport#485).
fn error(
    state: &SimState,
    status: StatusCode,
    code: &str,
    details: Vec<Value>,
    mut extra: Vec<(&'static str, String)>,
) -> Response {
    let correlation = extra
        .iter()
        .find(|(k, _)| *k == "x-ms-correlation-request-id")
        .map_or_else(http::new_id, |(_, v)| v.clone());
    let body = json!({"error": {
        "code": code,
        "message": format!(
            "Please provide below info when asking for support: timestamp = {}, correlationId = {correlation}.",
            dotnet_round_trip(state.clock.now())
        ),
        "details": details,
    }});
    if extra.is_empty() {
        extra = arm::arm_headers();
    }
    http::json(status, &body, &extra)
}

fn detail(code: &str, message: &str) -> Value {
    json!({"code": code, "message": message})
}

fn bad_request(state: &SimState, details: Vec<Value>) -> Response {
    error(
        state,
        StatusCode::BAD_REQUEST,
        "BadRequest",
        details,
        Vec::new(),
    )
}

/// The answer under an injected fault: `RateLimiting` with the quota
/// exhausted for 429, the status's code otherwise.
pub(crate) fn fault_response(
    state: &SimState,
    status: StatusCode,
    retry_after: Option<u64>,
) -> Response {
    match retry_after {
        Some(secs) => {
            let mut h = headers(0);
            h.retain(|(k, _)| *k != "x-ms-user-quota-resets-after");
            h.push(("x-ms-user-quota-resets-after", hms(secs)));
            error(
                state,
                StatusCode::TOO_MANY_REQUESTS,
                "RateLimiting",
                vec![detail(
                    "RateLimiting",
                    "Client application has been throttled and should not attempt to repeat the request until an amount of time has elapsed. Please see https://aka.ms/resourcegraph-throttling for help.",
                )],
                h,
            )
        }
        None => {
            let code = server_code(status);
            error(
                state,
                status,
                code,
                vec![detail(
                    code,
                    "An error has occurred while processing the request. Please retry.",
                )],
                Vec::new(),
            )
        }
    }
}

/// Authenticates (ARM's audiences and 401s) and checks the api-version.
fn guard<'a>(
    state: &'a SimState,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<(&'a Tenant, String), Box<Response>> {
    let claims = bearer::validate(state, headers, ARM.audiences)
        .map_err(|e| Box::new(arm::unauthorized(state, e)))?;
    let tenant = state.world.tenant(&claims.tid).ok_or_else(|| {
        Box::new(arm::error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "The access token is invalid.".into(),
            Some("The access token is invalid."),
        ))
    })?;
    match first(&http::query(uri), "api-version") {
        None => Err(Box::new(arm::error(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.".into(),
            None,
        ))),
        Some(v) if API_VERSIONS.contains(&v) => Ok((tenant, format!("{}/{}", claims.tid, claims.oid))),
        // What ARM answers for an api-version the provider lacks.
        Some(v) => Err(Box::new(arm::error(
            StatusCode::BAD_REQUEST,
            "NoRegisteredProviderFound",
            format!(
                "No registered resource provider found for location 'global' and API version '{v}' for type 'resources'. The supported api-versions are '{}'. The supported locations are ', global'.",
                API_VERSIONS.join(", ")
            ),
            None,
        ))),
    }
}

/// A `$skipToken`: where the next page starts, bound to the query and scope.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct SkipToken {
    offset: usize,
    fingerprint: String,
}

fn fingerprint(query: &str, scope: &[String]) -> String {
    let mut h = Sha256::new();
    h.update(query.split_whitespace().collect::<Vec<_>>().join(" "));
    for s in scope {
        h.update(b"\n");
        h.update(s.to_ascii_lowercase());
    }
    hex::encode(&h.finalize()[..8])
}

fn encode_token(t: &SkipToken) -> String {
    STANDARD.encode(serde_json::to_vec(t).unwrap_or_default())
}

fn decode_token(s: &str) -> Option<SkipToken> {
    serde_json::from_slice(&STANDARD.decode(s.trim()).ok()?).ok()
}

/// `POST /providers/Microsoft.ResourceGraph/resources`.
pub(crate) async fn handle(
    State(state): State<Arc<SimState>>,
    State(rg): State<Arc<ResourceGraph>>,
    uri: Uri,
    headers_in: HeaderMap,
    body: Bytes,
) -> Response {
    let (tenant, caller) = match guard(&state, &headers_in, &uri) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let req: QueryRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return arm::error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestContent",
                format!("The request content was invalid and could not be deserialized: '{e}'."),
                None,
            )
        }
    };
    let Some(kql) = req.query.as_deref().filter(|q| !q.trim().is_empty()) else {
        return bad_request(
            &state,
            vec![detail("InvalidQuery", "The query is empty or missing.")],
        );
    };
    let plan = match query::parse(kql) {
        Ok(p) => p,
        Err(e) => {
            return bad_request(
                &state,
                vec![
                    detail(
                        "InvalidQuery",
                        "Query is invalid. Please refer to the documentation for the Azure Resource Graph service and fix the error before retrying.",
                    ),
                    json!({
                        "code": "ParserFailure",
                        "message": "ParserFailure",
                        "line": e.line,
                        "characterPositionInLine": e.position,
                        "token": e.token,
                    }),
                ],
            )
        }
    };
    let o = &req.options;
    let top = o.top.unwrap_or(MAX_TOP);
    if !(1..=MAX_TOP).contains(&top) || o.skip.is_some_and(|s| s < 0) {
        return bad_request(
            &state,
            vec![detail(
                "InvalidRequestParameter",
                "Options '$top' must be between 1 and 1000 and '$skip' must not be negative.",
            )],
        );
    }
    let table_format = match o.result_format.as_deref() {
        None => false,
        Some(f) if f.eq_ignore_ascii_case("objectArray") => false,
        Some(f) if f.eq_ignore_ascii_case("table") => true,
        Some(f) => {
            return bad_request(
                &state,
                vec![detail(
                    "InvalidRequestParameter",
                    &format!("Result format '{f}' is not supported; use 'table' or 'objectArray'."),
                )],
            )
        }
    };
    // The tenant's subscriptions, narrowed to those listed; unknown ones
    // are left out rather than refused.
    let scope: Vec<String> = tenant
        .subscriptions
        .iter()
        .map(|s| s.id.clone())
        .filter(|id| {
            req.subscriptions
                .as_ref()
                .is_none_or(|want| want.iter().any(|w| w.eq_ignore_ascii_case(id)))
        })
        .collect();
    let fp = fingerprint(kql, &scope);
    let offset = match &o.skip_token {
        Some(t) => match decode_token(t) {
            Some(tok) if tok.fingerprint == fp => tok.offset,
            _ => {
                return bad_request(
                    &state,
                    vec![detail(
                        "InvalidSkipToken",
                        "The $skipToken is not valid for this query and scope.",
                    )],
                )
            }
        },
        None => usize::try_from(o.skip.unwrap_or(0)).unwrap_or(0),
    };
    let Some(estate) = state.estate.tenant(&tenant.id) else {
        return bad_request(
            &state,
            vec![detail("BadRequest", "No data for this tenant.")],
        );
    };
    let in_scope = |s: &str| scope.iter().any(|x| x.eq_ignore_ascii_case(s));
    let result = table::evaluate(&plan, &estate.azure, &in_scope);
    let size = usize::try_from(top).unwrap_or(1).min(rg.page_size);
    let rows: Vec<Vec<Value>> = result
        .rows
        .iter()
        .skip(offset)
        .take(size)
        .cloned()
        .collect();
    let next = offset + rows.len();
    let skip_token = (next < result.rows.len()).then(|| {
        encode_token(&SkipToken {
            offset: next,
            fingerprint: fp.clone(),
        })
    });
    let data = if table_format {
        result.as_table(&rows)
    } else {
        Value::Array(rows.iter().map(|r| result.object(r)).collect())
    };
    let body = QueryResponse {
        total_records: result.rows.len(),
        count: rows.len(),
        result_truncated: "false",
        facets: Vec::new(),
        skip_token,
        data,
    };
    http::json(StatusCode::OK, &body, &headers(rg.quota_take(&caller)))
}

/// Pages the built-in query takes for a tenant at `page_size` rows (the
/// daemon asks for `$top` 1000, so the sim's page size decides).
pub(crate) fn builtin_pages(state: &SimState, rg: &ResourceGraph, tenant_id: &str) -> usize {
    let rows = state
        .estate
        .tenant(tenant_id)
        .map_or(0, |e| e.azure.builtin_rows());
    let size = rg.page_size.min(MAX_TOP as usize);
    rows.div_ceil(size).max(1)
}
