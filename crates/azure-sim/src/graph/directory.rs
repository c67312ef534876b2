//! The directory: `GET /v1.0/organization` (graph/examples/organization-get.json,
//! as a collection) and `GET /v1.0/users/$count`
//! (learn.microsoft.com/graph/aad-advanced-queries: needs
//! `ConsistencyLevel: eventual`, answers a plain-text integer).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};
use tenantwatch_common::time::rfc3339;

use super::{begin, error, JSON};
use crate::http;
use crate::state::SimState;
use crate::world::Tenant;

/// Permissions any of which lets a caller read the organization.
const ORG_READ: &[&str] = &[
    "User.Read",
    "Organization.Read.All",
    "Organization.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

/// Permissions any of which lets a caller count users.
const USERS_READ: &[&str] = &[
    "User.ReadBasic.All",
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

/// `GET /v1.0/organization`.
pub(super) async fn organization(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
) -> Response {
    let call = match begin(&state, &headers, ORG_READ) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let is_partner = state.world.partner_by_tenant(&call.tenant.id).is_some();
    let last_sync = state
        .estate
        .tenant(&call.tenant.id)
        .and_then(|e| e.m365.last_sync);
    let body = json!({
        "@odata.context": format!("{}/v1.0/$metadata#organization", state.origins.graph),
        "value": [org(call.tenant, is_partner, last_sync)],
    });
    http::json_with_type(StatusCode::OK, JSON, &body, &call.ids.headers())
}

/// One organization resource, with the example's fields. Synced tenants
/// show `onPremisesSyncEnabled: true` and the last sync; cloud-only ones
/// null for both, as the example does.
fn org(t: &Tenant, is_partner: bool, last_sync: Option<i64>) -> Value {
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
        "onPremisesLastSyncDateTime": last_sync.map(rfc3339),
        "onPremisesSyncEnabled": last_sync.map(|_| true),
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

/// `GET /v1.0/users/$count`.
pub(super) async fn users_count(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
) -> Response {
    let call = match begin(&state, &headers, USERS_READ) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let eventual = http::header(&headers, "consistencylevel")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("eventual"));
    if !eventual {
        // The real answer without the header (microsoft-graph-docs-contrib#2716).
        return error(
            &state,
            &call.ids,
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "$count is not currently supported.",
        );
    }
    let users = state
        .estate
        .tenant(&call.tenant.id)
        .map_or(1, |e| e.m365.users);
    http::with_headers(
        StatusCode::OK,
        "text/plain; charset=utf-8",
        Body::from(users.to_string()),
        &call.ids.headers(),
    )
}
