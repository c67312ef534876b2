//! Microsoft 365: licences (`subscribedSkus`, graph/examples/subscribedSkus-list.json),
//! the subscriptions behind them (`directory/subscriptions`,
//! directory-subscriptions-list.json),
//! service health (`healthOverviews`, healthOverviews-list.json) and Secure
//! Score (`secureScores`, secureScores-list-top1.json).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use serde_json::{json, Value};
use tenantwatch_common::time::rfc3339;

use super::odata::{self, ListQuery, Paging, Top};
use super::{begin, Call};
use crate::estate::m365::{CompanySubscription, Score, Sku};
use crate::estate::M365;
use crate::state::SimState;

const LICENSES_READ: &[&str] = &[
    "LicenseAssignment.Read.All",
    "Organization.Read.All",
    "Organization.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

/// directory-list-subscriptions-permissions.md: Organization.Read.All, or
/// Directory.Read.All (and Organization.ReadWrite.All for apps).
const SUBSCRIPTIONS_READ: &[&str] = &[
    "Organization.Read.All",
    "Organization.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

const SERVICE_HEALTH_READ: &[&str] = &["ServiceHealth.Read.All"];

const SECURE_SCORE_READ: &[&str] = &["SecurityEvents.Read.All", "SecurityEvents.ReadWrite.All"];

/// `subscribedSkus` documents only `$select`; the real API returns every
/// SKU at once, the sim pages anyway so clients are ready for it.
const SKU_PAGING: Paging = Paging {
    page: 3,
    top: Top::Ignored,
};

/// Real pages hold 100 (serviceannouncement-list-healthoverviews).
const HEALTH_PAGING: Paging = Paging {
    page: 4,
    top: Top::PageSize { max: 100 },
};

const SCORE_PAGING: Paging = Paging {
    page: 3,
    top: Top::PageSize { max: usize::MAX },
};

/// Authenticates, parses the options and finds the tenant's data; the
/// error response otherwise.
fn prepare<'a>(
    state: &'a SimState,
    headers: &HeaderMap,
    uri: &Uri,
    permissions: &[&str],
) -> Result<(Call<'a>, ListQuery, &'a M365), Box<Response>> {
    let call = begin(state, headers, permissions)?;
    let q = ListQuery::parse(uri).map_err(|r| Box::new(odata::refuse(state, &call, r)))?;
    let Some(estate) = state.estate.tenant(&call.tenant.id) else {
        // Every simulated tenant has an estate; this is a bug guard.
        return Err(Box::new(odata::refuse(
            state,
            &call,
            ("BadRequest", "No data for this tenant.".into()),
        )));
    };
    if q.filter.is_some() {
        return Err(Box::new(odata::refuse(
            state,
            &call,
            ("Request_UnsupportedQuery", "Unsupported query.".into()),
        )));
    }
    Ok((call, q, &estate.m365))
}

fn sku(tenant_id: &str, account_name: &str, account_id: &str, s: &Sku) -> Value {
    let provisioning = if s.capability_status == "Suspended" {
        "Disabled"
    } else {
        "Success"
    };
    json!({
        "accountName": account_name,
        "accountId": account_id,
        "appliesTo": "User",
        "capabilityStatus": s.capability_status,
        "consumedUnits": s.consumed,
        "id": format!("{tenant_id}_{}", s.sku_id),
        "prepaidUnits": {
            "enabled": s.enabled,
            "lockedOut": 0,
            "suspended": s.suspended,
            "warning": s.warning,
        },
        "servicePlans": s.plans.iter().map(|(id, name)| json!({
            "servicePlanId": id,
            "servicePlanName": name,
            "provisioningStatus": provisioning,
            "appliesTo": "User",
        })).collect::<Vec<_>>(),
        "skuId": s.sku_id,
        "skuPartNumber": s.part_number,
        "subscriptionIds": [s.subscription_id],
    })
}

/// `GET /v1.0/subscribedSkus`.
pub(super) async fn subscribed_skus(
    State(state): State<Arc<SimState>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let (call, q, m) = match prepare(&state, &headers, &uri, LICENSES_READ) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let items = m
        .skus
        .iter()
        .map(|s| sku(&call.tenant.id, &call.tenant.name, &m.account_id, s))
        .collect();
    odata::page(&state, &call, &uri, &q, "subscribedSkus", items, SKU_PAGING)
}

fn company_subscription(s: &CompanySubscription) -> Value {
    let provisioning = if s.status == "Suspended" {
        "Disabled"
    } else {
        "Success"
    };
    json!({
        "createdDateTime": rfc3339(s.created),
        "commerceSubscriptionId": s.commerce_id,
        "id": s.id,
        "isTrial": s.trial,
        "nextLifecycleDateTime": rfc3339(s.next_lifecycle),
        "serviceStatus": s.plans.iter().map(|(id, name)| json!({
            "appliesTo": "User",
            "provisioningStatus": provisioning,
            "servicePlanId": id,
            "servicePlanName": name,
        })).collect::<Vec<_>>(),
        "skuId": s.sku_id,
        "skuPartNumber": s.part_number,
        "status": s.status,
        "totalLicenses": s.total_licenses,
        "ownerId": s.owner_id,
        "ownerTenantId": s.owner_tenant_id,
        "ownerType": "User",
    })
}

/// `GET /v1.0/directory/subscriptions`. The page documents no paging; the
/// sim pages anyway, as for `subscribedSkus`.
pub(super) async fn directory_subscriptions(
    State(state): State<Arc<SimState>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let (call, q, m) = match prepare(&state, &headers, &uri, SUBSCRIPTIONS_READ) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let items = m.subscriptions.iter().map(company_subscription).collect();
    odata::page(
        &state,
        &call,
        &uri,
        &q,
        "directory/subscriptions",
        items,
        SKU_PAGING,
    )
}

/// `GET /v1.0/admin/serviceAnnouncement/healthOverviews`.
pub(super) async fn health_overviews(
    State(state): State<Arc<SimState>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let (call, q, m) = match prepare(&state, &headers, &uri, SERVICE_HEALTH_READ) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let items = m
        .services
        .iter()
        .map(|s| json!({"service": s.service, "status": s.status, "id": s.id}))
        .collect();
    odata::page(
        &state,
        &call,
        &uri,
        &q,
        "admin/serviceAnnouncement/healthOverviews",
        items,
        HEALTH_PAGING,
    )
}

fn score(tenant_id: &str, users: u64, s: &Score) -> Value {
    let created = rfc3339(s.created);
    json!({
        "id": format!("{tenant_id}_{}", &created[..10]),
        "azureTenantId": tenant_id,
        "activeUserCount": users / 2,
        "createdDateTime": created,
        "currentScore": s.current,
        "enabledServices": ["HasExchange", "HasSharePoint", "HasInTune"],
        "licensedUserCount": users,
        "maxScore": s.max,
        "averageComparativeScores": [
            {"basis": "AllTenants", "averageScore": 37.0},
            {"basis": "TotalSeats", "averageScore": 46.0},
        ],
        "controlScores": [{
            "controlCategory": "Identity",
            "controlName": "AdminMFA",
            "description": "Requiring multi-factor authentication (MFA) for all Azure Active Directory accounts with privileged roles",
            "score": 35.0,
        }],
        "vendorInformation": {
            "provider": "SecureScore",
            "providerVersion": null,
            "subProvider": null,
            "vendor": "Microsoft",
        },
    })
}

/// `GET /v1.0/security/secureScores`.
pub(super) async fn secure_scores(
    State(state): State<Arc<SimState>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let (call, q, m) = match prepare(&state, &headers, &uri, SECURE_SCORE_READ) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    // Newest first, so `$top=1` is the current score.
    let items = m
        .scores
        .iter()
        .map(|s| score(&call.tenant.id, m.users, s))
        .collect();
    odata::page(
        &state,
        &call,
        &uri,
        &q,
        "security/secureScores",
        items,
        SCORE_PAGING,
    )
}
