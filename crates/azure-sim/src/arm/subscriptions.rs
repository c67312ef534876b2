//! `GET /subscriptions` and `GET /subscriptions/{id}` for the token's
//! tenant, shaped after arm/subscriptions-2022-12-01.json and its example,
//! in small pages so clients follow `nextLink`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde::Serialize;

use super::{arm_headers, error, unauthorized};
use crate::bearer::{self, AccessClaims};
use crate::http::{self, first};
use crate::resources::ARM;
use crate::state::SimState;
use crate::world::{Subscription, Tenant, World};

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
    let v = super::api_version(&q, API_VERSIONS)?;
    Ok((tenant, v.to_string()))
}

/// The wire shape; `managedByTenants` lists every partner that has the
/// tenant as a customer (none for a partner's own tenant).
fn to_wire(s: &Subscription, tenant: &Tenant, world: &World) -> SubscriptionOut {
    let managed_by = world
        .partners_of(tenant)
        .filter_map(|k| world.partner(k))
        .map(|p| ManagedBy {
            tenant_id: p.tenant.id.clone(),
        })
        .collect();
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

/// `GET /subscriptions`, two per page.
pub(super) async fn list(
    State(state): State<Arc<SimState>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
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
    let value = tenant
        .subscriptions
        .iter()
        .skip(offset)
        .take(PAGE_SIZE)
        .map(|s| to_wire(s, tenant, &state.world))
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

/// `GET /subscriptions/{id}`.
pub(super) async fn one(
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
            &to_wire(s, tenant, &state.world),
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
