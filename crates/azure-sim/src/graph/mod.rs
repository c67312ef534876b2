//! Microsoft Graph v1.0 for the tenant in the token: the directory
//! (`organization`, `users/$count`), Microsoft 365 (`subscribedSkus`,
//! `directory/subscriptions`, service health, Secure Score), and in each partner's tenant its GDAP
//! relationships with their access assignments, and app registrations.
//! Shapes follow graph/examples/.
//!
//! This file routes, authenticates, and answers errors and faults;
//! [`odata`] pages collections; one file per area serves its endpoints.

mod directory;
mod m365;
mod odata;
mod partner;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use serde_json::json;

use crate::bearer::{self, BearerError};
use crate::clock::graph_date;
use crate::http;
use crate::resources::GRAPH;
use crate::state::SimState;
use crate::world::Tenant;

/// The content type of Graph's JSON responses.
pub(crate) const JSON: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// Builds the Graph origin's routes.
pub(crate) fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/v1.0/organization", get(directory::organization))
        .route("/v1.0/users/$count", get(directory::users_count))
        .route("/v1.0/subscribedSkus", get(m365::subscribed_skus))
        .route(
            "/v1.0/directory/subscriptions",
            get(m365::directory_subscriptions),
        )
        .route(
            "/v1.0/admin/serviceAnnouncement/healthOverviews",
            get(m365::health_overviews),
        )
        .route("/v1.0/security/secureScores", get(m365::secure_scores))
        .route(
            "/v1.0/tenantRelationships/delegatedAdminRelationships",
            get(partner::relationships),
        )
        .route(
            "/v1.0/tenantRelationships/delegatedAdminRelationships/{id}/accessAssignments",
            get(partner::access_assignments),
        )
        .route("/v1.0/applications", get(partner::applications))
        .fallback(unknown_segment)
        .with_state(state)
}

/// Per-request ids Graph echoes in headers and error bodies.
pub(crate) struct Ids {
    pub request_id: String,
    pub client_request_id: String,
}

impl Ids {
    /// A fresh request id; the client's `client-request-id`, or the same id.
    pub fn from(headers: &HeaderMap) -> Self {
        let request_id = http::new_id();
        let client_request_id = http::header(headers, "client-request-id")
            .map_or_else(|| request_id.clone(), str::to_string);
        Self {
            request_id,
            client_request_id,
        }
    }

    /// The headers Graph puts on every response.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        vec![
            ("request-id", self.request_id.clone()),
            ("client-request-id", self.client_request_id.clone()),
            (
                "x-ms-ags-diagnostic",
                r#"{"ServerInfo":{"DataCenter":"West Europe","Slice":"E","Ring":"5","ScaleUnit":"003","RoleInstance":"SIM"}}"#
                    .to_string(),
            ),
            ("odata-version", "4.0".to_string()),
            ("cache-control", "no-cache".to_string()),
            (
                "strict-transport-security",
                "max-age=31536000".to_string(),
            ),
        ]
    }
}

/// `{"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}`
/// (capital E), per NOTES.md and real 401 bodies.
#[derive(Debug, Serialize)]
pub(crate) struct GraphErrorBody {
    pub error: GraphError,
}

/// The inner part of a Graph error.
#[derive(Debug, Serialize)]
pub(crate) struct GraphError {
    pub code: String,
    pub message: String,
    #[serde(rename = "innerError")]
    pub inner_error: GraphInnerError,
}

/// Diagnostics Graph adds to every error.
#[derive(Debug, Serialize)]
pub(crate) struct GraphInnerError {
    /// `2022-03-17T16:05:41` (no zone), as real bodies show.
    pub date: String,
    #[serde(rename = "request-id")]
    pub request_id: String,
    #[serde(rename = "client-request-id")]
    pub client_request_id: String,
}

/// A Graph error body (`innerError` with date and request ids).
pub(crate) fn error(
    state: &SimState,
    ids: &Ids,
    status: StatusCode,
    code: &str,
    message: &str,
) -> Response {
    let body = GraphErrorBody {
        error: GraphError {
            code: code.into(),
            message: message.into(),
            inner_error: GraphInnerError {
                date: graph_date(state.clock.now()),
                request_id: ids.request_id.clone(),
                client_request_id: ids.client_request_id.clone(),
            },
        },
    };
    let mut extra = ids.headers();
    if status == StatusCode::UNAUTHORIZED {
        extra.push((
            "www-authenticate",
            format!(
                "Bearer realm=\"\", authorization_uri=\"{}/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
                state.origins.login
            ),
        ));
    }
    http::json(status, &body, &extra)
}

/// Graph's claims challenge for a CAE token issued before a critical event
/// at `at`: the real challenge quoted in MSAL.NET's CAE test (realm, Graph's
/// `client_id`, `errorDescription`, `error="insufficient_claims"`, `claims`).
/// Microsoft shows no body; the sim sends Graph's usual 401 body with that
/// description as its message.
fn claims_challenge(state: &SimState, ids: &Ids, at: i64) -> Response {
    const WHY: &str = "Continuous access evaluation resulted in challenge with result: InteractionRequired and code: TokenIssuedBeforeRevocationTimestamp";
    let challenge = crate::cae::challenge(&state.origins.login, at).replacen(
        "error=",
        &format!("client_id=\"00000003-0000-0000-c000-000000000000\", errorDescription=\"{WHY}\", error="),
        1,
    );
    let mut resp = error(
        state,
        ids,
        StatusCode::UNAUTHORIZED,
        "InvalidAuthenticationToken",
        WHY,
    );
    if let Ok(v) = axum::http::HeaderValue::from_str(&challenge) {
        resp.headers_mut()
            .insert(axum::http::header::WWW_AUTHENTICATE, v);
    }
    resp
}

/// An authenticated, authorised Graph request.
pub(crate) struct Call<'a> {
    pub ids: Ids,
    /// The tenant the token is for.
    pub tenant: &'a Tenant,
}

/// Authenticates the caller and checks that the token carries one of
/// `permissions` (delegated `scp` or app `roles`); Graph's 401/403 otherwise.
pub(crate) fn begin<'a>(
    state: &'a SimState,
    headers: &HeaderMap,
    permissions: &[&str],
) -> Result<Call<'a>, Box<Response>> {
    let ids = Ids::from(headers);
    let claims = match bearer::validate(state, headers, GRAPH.audiences) {
        Ok(c) => c,
        Err(e) => {
            let message = match e {
                BearerError::Missing => "Access token is empty.",
                BearerError::WrongAudience { .. } => {
                    "Access token validation failure. Invalid audience."
                }
                BearerError::Expired { .. } => "Lifetime validation failed, the token is expired.",
                BearerError::Malformed | BearerError::BadSignature | BearerError::NotYetValid => {
                    "Access token validation failure."
                }
                BearerError::ClaimsChallenge { at } => {
                    return Err(Box::new(claims_challenge(state, &ids, at)));
                }
            };
            return Err(Box::new(error(
                state,
                &ids,
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                message,
            )));
        }
    };
    let Some(tenant) = state.world.tenant(&claims.tid) else {
        return Err(Box::new(error(
            state,
            &ids,
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token validation failure. Invalid issuer.",
        )));
    };
    let granted = claims
        .scp
        .iter()
        .chain(&claims.roles)
        .any(|p| permissions.iter().any(|r| r.eq_ignore_ascii_case(p)));
    if !granted {
        return Err(Box::new(error(
            state,
            &ids,
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        )));
    }
    Ok(Call { ids, tenant })
}

async fn unknown_segment(
    State(state): State<Arc<SimState>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let ids = Ids::from(&headers);
    let segment = uri
        .path()
        .trim_start_matches('/')
        .split('/')
        .nth(1)
        .unwrap_or("")
        .to_string();
    error(
        &state,
        &ids,
        StatusCode::BAD_REQUEST,
        "BadRequest",
        &format!("Resource not found for the segment '{segment}'."),
    )
}

/// Graph under an injected fault: `TooManyRequests`, `generalException` or
/// `serviceNotAvailable`, with the request ids Graph always echoes.
pub(crate) fn fault_response(
    state: &SimState,
    headers: &HeaderMap,
    status: StatusCode,
    retry_after: Option<u64>,
) -> Response {
    let ids = Ids::from(headers);
    let (code, message) = match retry_after {
        Some(_) => (
            "TooManyRequests",
            "Too many requests. Application is over its request limit (throttle category: Default).",
        ),
        None if status == StatusCode::INTERNAL_SERVER_ERROR => {
            ("generalException", "General exception while processing.")
        }
        None => (
            "serviceNotAvailable",
            "The service is temporarily unavailable for maintenance or is overloaded. Retry the request.",
        ),
    };
    let body = json!({"error": {"code": code, "message": message, "innerError": {
        "date": graph_date(state.clock.now()),
        "request-id": ids.request_id,
        "client-request-id": ids.client_request_id,
    }}});
    http::json(status, &body, &ids.headers())
}
