//! Microsoft Graph: `GET /v1.0/organization` for the tenant in the token,
//! shaped after graph/examples/organization-get.json.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use serde_json::{json, Value};

use super::bearer::{self, AccessClaims, BearerError};
use super::clock::graph_date;
use super::data::Tenant;
use super::errors::{GraphError, GraphErrorBody, GraphInnerError};
use super::http;
use super::resources::GRAPH;
use super::state::SimState;

/// Permissions any of which lets a caller read the organization.
const ORG_READ: &[&str] = &[
    "User.Read",
    "Organization.Read.All",
    "Organization.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

/// Builds the Graph origin's routes.
pub(crate) fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/v1.0/organization", get(organization))
        .fallback(unknown_segment)
        .with_state(state)
}

/// Per-request ids Graph echoes in headers and error bodies.
pub(crate) struct Ids {
    pub request_id: String,
    pub client_request_id: String,
}

impl Ids {
    pub fn from(headers: &HeaderMap) -> Self {
        let request_id = http::new_id();
        let client_request_id = http::header(headers, "client-request-id")
            .map_or_else(|| request_id.clone(), str::to_string);
        Self {
            request_id,
            client_request_id,
        }
    }

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

fn error(state: &SimState, ids: &Ids, status: StatusCode, code: &str, message: &str) -> Response {
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

/// The caller's token, or Graph's 401.
fn authenticate(
    state: &SimState,
    headers: &HeaderMap,
    ids: &Ids,
) -> Result<AccessClaims, Box<Response>> {
    bearer::validate(state, headers, GRAPH.audiences).map_err(|e| {
        let message = match e {
            BearerError::Missing => "Access token is empty.",
            BearerError::WrongAudience { .. } => {
                "Access token validation failure. Invalid audience."
            }
            BearerError::Expired { .. } => "Lifetime validation failed, the token is expired.",
            BearerError::Malformed | BearerError::BadSignature | BearerError::NotYetValid => {
                "Access token validation failure."
            }
        };
        Box::new(error(
            state,
            ids,
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            message,
        ))
    })
}

#[derive(Serialize)]
struct Collection {
    #[serde(rename = "@odata.context")]
    context: String,
    value: Vec<Value>,
}

async fn organization(State(state): State<Arc<SimState>>, headers: HeaderMap) -> Response {
    let ids = Ids::from(&headers);
    let claims = match authenticate(&state, &headers, &ids) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let Some(tenant) = state.world.tenant(&claims.tid) else {
        return error(
            &state,
            &ids,
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token validation failure. Invalid issuer.",
        );
    };
    let granted = claims
        .scp
        .iter()
        .chain(&claims.roles)
        .any(|p| ORG_READ.iter().any(|r| r.eq_ignore_ascii_case(p)));
    if !granted {
        return error(
            &state,
            &ids,
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        );
    }
    let is_partner = tenant.id == state.world.partner.id;
    let body = Collection {
        context: format!("{}/v1.0/$metadata#organization", state.origins.graph),
        value: vec![org(tenant, is_partner)],
    };
    http::json_with_type(
        StatusCode::OK,
        "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8",
        &body,
        &ids.headers(),
    )
}

/// One organization resource, with the example's fields.
fn org(t: &Tenant, is_partner: bool) -> Value {
    json!({
        "id": t.id,
        "deletedDateTime": null,
        "businessPhones": ["425-555-0100"],
        "city": null,
        "country": null,
        "countryLetterCode": "NL",
        "createdDateTime": t.created,
        "defaultUsageLocation": "NL",
        "displayName": t.name,
        "isMultipleDataLocationsForServicesEnabled": null,
        "marketingNotificationEmails": [],
        "onPremisesLastSyncDateTime": null,
        "onPremisesSyncEnabled": null,
        "partnerTenantType": if is_partner { json!("ResellerPartnerDelegatedAdmin") } else { Value::Null },
        "postalCode": null,
        "preferredLanguage": "en",
        "securityComplianceNotificationMails": [],
        "securityComplianceNotificationPhones": [],
        "state": null,
        "street": null,
        "technicalNotificationMails": [format!("admin@{}", t.domain)],
        "tenantType": "AAD",
        "directorySizeQuota": {"used": 698, "total": 50000},
        "assignedPlans": [{
            "assignedDateTime": t.created,
            "capabilityStatus": "Enabled",
            "service": "exchange",
            "servicePlanId": "113feb6c-3fe4-4440-bddc-54d774bf0318"
        }],
        "privacyProfile": {"contactEmail": "", "statementUrl": ""},
        "provisionedPlans": [{
            "capabilityStatus": "Enabled",
            "provisioningStatus": "Success",
            "service": "exchange"
        }],
        "verifiedDomains": [{
            "capabilities": "Email, OfficeCommunicationsOnline",
            "isDefault": true,
            "isInitial": true,
            "name": t.domain,
            "type": "Managed"
        }]
    })
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
