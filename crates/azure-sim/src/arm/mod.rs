//! Azure Resource Manager: the subscriptions list of the token's tenant,
//! shaped after arm/subscriptions-2022-12-01.json and its example. Resource
//! Graph shares this origin ([`resource_graph`]).

pub(crate) mod resource_graph;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;

use crate::bearer::{self, AccessClaims, BearerError};
use crate::clock::to_datetime;
use crate::faults::server_code;
use crate::http::{self, first};
use crate::resources::ARM;
use crate::state::SimState;
use crate::world::{Subscription, Tenant};

/// api-versions of Microsoft.Resources' subscription operations.
const API_VERSIONS: &[&str] = &[
    "2014-04-01",
    "2015-11-01",
    "2016-06-01",
    "2018-06-01",
    "2019-06-01",
    "2019-11-01",
    "2020-01-01",
    "2021-01-01",
    "2022-01-01",
    "2022-09-01",
    "2022-12-01",
];

/// Deliberately small, so clients have to follow `nextLink`.
const PAGE_SIZE: usize = 2;

/// Builds the ARM origin's routes.
pub(crate) fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/subscriptions", get(list))
        .route("/subscriptions/{id}", get(one))
        .route(resource_graph::PATH, post(resource_graph::handle))
        .fallback(fallback)
        .with_state(state)
}

/// ARM paths are case-insensitive: Resource Graph under any spelling;
/// anything else is an unknown resource.
async fn fallback(
    state: State<Arc<SimState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method == Method::POST && resource_graph::is_path(uri.path()) {
        return resource_graph::handle(state, uri, headers, body).await;
    }
    error(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("The resource path '{}' was not found.", uri.path()),
        None,
    )
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Policies {
    location_placement_id: &'static str,
    quota_id: &'static str,
    spending_limit: &'static str,
}

#[derive(Serialize)]
struct ManagedBy {
    #[serde(rename = "tenantId")]
    tenant_id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SubscriptionOut {
    id: String,
    subscription_id: String,
    tenant_id: String,
    display_name: String,
    state: &'static str,
    subscription_policies: Policies,
    authorization_source: &'static str,
    managed_by_tenants: Vec<ManagedBy>,
}

#[derive(Serialize)]
struct ListResult {
    value: Vec<SubscriptionOut>,
    #[serde(rename = "nextLink", skip_serializing_if = "Option::is_none")]
    next_link: Option<String>,
}

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
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            error: ArmError {
                code: code.into(),
                message: message.into(),
            },
        }
    }
}

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
    }
}

/// Authenticates, then checks the api-version.
fn guard<'a>(
    state: &'a SimState,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<(&'a Tenant, String), Box<Response>> {
    let claims: AccessClaims = bearer::validate(state, headers, ARM.audiences)
        .map_err(|e| Box::new(unauthorized(state, e)))?;
    let tenant = state.world.tenant(&claims.tid).ok_or_else(|| {
        Box::new(error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "The access token is invalid.".into(),
            Some("The access token is invalid."),
        ))
    })?;
    let q = http::query(uri);
    match first(&q, "api-version") {
        None => Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.".into(),
            None,
        ))),
        Some(v) if API_VERSIONS.contains(&v) => Ok((tenant, v.to_string())),
        Some(v) => Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "InvalidApiVersionParameter",
            format!(
                "The api-version '{v}' is invalid. The supported versions are '{}'.",
                API_VERSIONS
                    .iter()
                    .rev()
                    .copied()
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            None,
        ))),
    }
}

fn to_wire(s: &Subscription, tenant: &Tenant, partner: &str) -> SubscriptionOut {
    let managed_by = if tenant.id == partner {
        Vec::new()
    } else {
        vec![ManagedBy {
            tenant_id: partner.to_string(),
        }]
    };
    SubscriptionOut {
        id: format!("/subscriptions/{}", s.id),
        subscription_id: s.id.clone(),
        tenant_id: tenant.id.clone(),
        display_name: s.display_name.clone(),
        state: s.state,
        subscription_policies: Policies {
            location_placement_id: "Public_2014-09-01",
            quota_id: "CSP_2015-05-01",
            spending_limit: "Off",
        },
        authorization_source: "RoleBased",
        managed_by_tenants: managed_by,
    }
}

async fn list(State(state): State<Arc<SimState>>, uri: Uri, headers: HeaderMap) -> Response {
    let (tenant, api_version) = match guard(&state, &headers, &uri) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let q = http::query(&uri);
    let offset = match first(&q, "$skiptoken") {
        None => 0,
        Some(t) => match t.parse::<usize>() {
            Ok(n) => n,
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidSkipToken",
                    format!("The provided skip token '{t}' is not valid."),
                    None,
                )
            }
        },
    };
    let partner = &state.world.partner.id;
    let value = tenant
        .subscriptions
        .iter()
        .skip(offset)
        .take(PAGE_SIZE)
        .map(|s| to_wire(s, tenant, partner))
        .collect();
    let next = offset + PAGE_SIZE;
    let next_link = (next < tenant.subscriptions.len()).then(|| {
        format!(
            "{}/subscriptions?api-version={api_version}&%24skiptoken={next}",
            state.origins.arm
        )
    });
    http::json(
        StatusCode::OK,
        &ListResult { value, next_link },
        &arm_headers(),
    )
}

async fn one(
    State(state): State<Arc<SimState>>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let (tenant, _) = match guard(&state, &headers, &uri) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    match tenant
        .subscriptions
        .iter()
        .find(|s| s.id.eq_ignore_ascii_case(&id))
    {
        Some(s) => http::json(
            StatusCode::OK,
            &to_wire(s, tenant, &state.world.partner.id),
            &arm_headers(),
        ),
        None => error(
            StatusCode::NOT_FOUND,
            "SubscriptionNotFound",
            format!("The subscription '{id}' could not be found."),
            None,
        ),
    }
}

/// The ARM origin under an injected fault: Resource Graph's own bodies on
/// its path, otherwise ARM's `SubscriptionRequestsThrottled` for 429 (with
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
