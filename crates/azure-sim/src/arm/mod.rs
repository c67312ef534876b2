//! Azure Resource Manager's origin: the subscriptions of the token's tenant
//! ([`subscriptions`]), their Cost Management query ([`cost_management`]) and
//! Azure Resource Graph ([`resource_graph`]), which Azure serves on the same
//! host. This file routes, and holds the headers,
//! error bodies and 401s both share.

pub(crate) mod cost_management;
pub(crate) mod resource_graph;
mod subscriptions;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;

use crate::bearer::BearerError;
use crate::clock::to_datetime;
use crate::faults::server_code;
use crate::http;
use crate::state::SimState;
use resource_graph::ResourceGraph;

/// The ARM origin's state: what every service shares, and Resource Graph's
/// own. Handlers take the part they need (axum's `FromRef`).
#[derive(Clone)]
pub(crate) struct Arm {
    /// What every service shares.
    pub sim: Arc<SimState>,
    /// Resource Graph's page size and quotas.
    pub resource_graph: Arc<ResourceGraph>,
}

impl FromRef<Arm> for Arc<SimState> {
    fn from_ref(arm: &Arm) -> Self {
        arm.sim.clone()
    }
}

impl FromRef<Arm> for Arc<ResourceGraph> {
    fn from_ref(arm: &Arm) -> Self {
        arm.resource_graph.clone()
    }
}

/// Builds the ARM origin's routes.
pub(crate) fn router(arm: Arm) -> Router {
    Router::new()
        .route("/subscriptions", get(subscriptions::list))
        .route("/subscriptions/{id}", get(subscriptions::one))
        .route(resource_graph::PATH, post(resource_graph::handle))
        .route(
            "/subscriptions/{id}/providers/Microsoft.CostManagement/query",
            post(cost_management::handle),
        )
        .fallback(fallback)
        .with_state(arm)
}

/// ARM paths are case-insensitive: Resource Graph and Cost Management under any spelling;
/// anything else is an unknown resource.
async fn fallback(
    state: State<Arc<SimState>>,
    rg: State<Arc<ResourceGraph>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method == Method::POST && resource_graph::is_path(uri.path()) {
        return resource_graph::handle(state, rg, uri, headers, body).await;
    }
    if method == Method::POST && cost_management::is_path(uri.path()) {
        return cost_management::handle(state, uri, headers, body).await;
    }
    error(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("The resource path '{}' was not found.", uri.path()),
        None,
    )
}

/// Headers ARM puts on every response (request and correlation ids, the
/// tenant-read counter).
pub(crate) fn arm_headers() -> Vec<(&'static str, String)> {
    let id = http::new_id();
    vec![
        ("cache-control", "no-cache".into()),
        ("pragma", "no-cache".into()),
        ("expires", "-1".into()),
        ("x-ms-request-id", id.clone()),
        ("x-ms-correlation-request-id", id.clone()),
        (
            "x-ms-routing-request-id",
            format!(
                "WESTEUROPE:{}:{id}",
                chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
            ),
        ),
        ("x-ms-ratelimit-remaining-tenant-reads", "11999".into()),
        (
            "strict-transport-security",
            "max-age=31536000; includeSubDomains".into(),
        ),
        ("x-content-type-options", "nosniff".into()),
    ]
}

/// ARM's `CloudError`: `{"error":{"code","message"}}`.
#[derive(Debug, Serialize)]
pub(crate) struct ArmErrorBody {
    pub error: ArmError,
}

/// The inner part of an ARM error.
#[derive(Debug, Serialize)]
pub(crate) struct ArmError {
    pub code: String,
    pub message: String,
}

impl ArmErrorBody {
    /// A `CloudError` body.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            error: ArmError {
                code: code.into(),
                message: message.into(),
            },
        }
    }
}

/// An ARM error response, with a bearer challenge when `www_auth` is given.
pub(crate) fn error(
    status: StatusCode,
    code: &str,
    message: String,
    www_auth: Option<&str>,
) -> Response {
    let mut extra = arm_headers();
    if let Some(desc) = www_auth {
        extra.push((
            "www-authenticate",
            format!(
                "Bearer authorization_uri=\"https://login.windows.net/\", error=\"invalid_token\", error_description=\"{desc}\""
            ),
        ));
    }
    http::json(status, &ArmErrorBody::new(code, message), &extra)
}

/// The request's `api-version` if it is one of `versions`, else ARM's 400
/// (`MissingApiVersionParameter` / `InvalidApiVersionParameter`, listing the
/// supported ones newest first).
pub(crate) fn api_version<'a>(
    query: &'a [(String, String)],
    versions: &[&str],
) -> Result<&'a str, Box<Response>> {
    match http::first(query, "api-version") {
        None => Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.".into(),
            None,
        ))),
        Some(v) if versions.contains(&v) => Ok(v),
        Some(v) => Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "InvalidApiVersionParameter",
            format!(
                "The api-version '{v}' is invalid. The supported versions are '{}'.",
                versions.iter().rev().copied().collect::<Vec<_>>().join(",")
            ),
            None,
        ))),
    }
}

/// ARM's 401 for a refused bearer token.
pub(crate) fn unauthorized(state: &SimState, e: BearerError) -> Response {
    match e {
        BearerError::Missing => error(
            StatusCode::UNAUTHORIZED,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.".into(),
            Some("The authentication failed because of missing 'Authorization' header."),
        ),
        BearerError::WrongAudience { found } => error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationTokenAudience",
            format!(
                "The access token has been obtained for wrong audience or resource '{found}'. It should exactly match with one of the allowed audiences 'https://management.core.windows.net/','https://management.core.windows.net','https://management.azure.com/','https://management.azure.com'."
            ),
            Some("The access token has been obtained for wrong audience or resource."),
        ),
        BearerError::Expired { exp } => error(
            StatusCode::UNAUTHORIZED,
            "ExpiredAuthenticationToken",
            format!(
                "The access token expiry UTC time '{}' is earlier than current UTC time '{}'.",
                to_datetime(exp).format("%-m/%-d/%Y %-I:%M:%S %p"),
                state.clock.now().format("%-m/%-d/%Y %-I:%M:%S %p")
            ),
            Some("The access token has expired."),
        ),
        BearerError::Malformed | BearerError::BadSignature | BearerError::NotYetValid => error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "The access token is invalid.".into(),
            Some("The access token is invalid."),
        ),
        // ARM answers CAE tokens revoked by a critical event with a claims
        // challenge (Azure SDK maintainers; no ARM doc shows the body: the
        // sim's code and message are its own).
        BearerError::ClaimsChallenge { at } => {
            let mut resp = error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "The access token has been revoked by a continuous access evaluation event.".into(),
                None,
            );
            if let Ok(v) = axum::http::HeaderValue::from_str(&crate::cae::challenge(
                &state.origins.login,
                at,
            )) {
                resp.headers_mut()
                    .insert(axum::http::header::WWW_AUTHENTICATE, v);
            }
            resp
        }
    }
}

/// The ARM origin under an injected fault: Resource Graph's and Cost
/// Management's own bodies on their paths, otherwise ARM's `SubscriptionRequestsThrottled` for 429 (with
/// the read quota at zero) or the status's code.
pub(crate) fn fault_response(
    state: &SimState,
    path: &str,
    status: StatusCode,
    retry_after: Option<u64>,
) -> Response {
    if resource_graph::is_path(path) {
        return resource_graph::fault_response(state, status, retry_after);
    }
    if cost_management::is_path(path) {
        return cost_management::throttled(status, retry_after);
    }
    let body = match retry_after {
        // NOTES.md: velero-io/velero#9171.
        Some(secs) => ArmErrorBody::new(
            "SubscriptionRequestsThrottled",
            format!("Number of 'read' requests for subscription actor has exceeded. Please try again after '{secs}' seconds after the additional tokens are available. Refer to https://aka.ms/arm-throttling for additional information."),
        ),
        None => ArmErrorBody::new(
            server_code(status),
            "The server is currently unable to receive requests. Please retry your request.",
        ),
    };
    let mut extra = arm_headers();
    if retry_after.is_some() {
        extra.retain(|(k, _)| !k.starts_with("x-ms-ratelimit"));
        extra.push(("x-ms-ratelimit-remaining-subscription-reads", "0".into()));
    }
    http::json(status, &body, &extra)
}
