//! What a partner reads about itself: its GDAP relationships
//! (`tenantRelationships/delegatedAdminRelationships`,
//! graph/examples/delegatedAdminRelationships-list.json) and each one's
//! access assignments (`…/{id}/accessAssignments`,
//! graph/examples/delegatedAdminAccessAssignments-list.json), and its app
//! registrations with their credentials (`applications`,
//! learn.microsoft.com/graph/api/application-list). Each partner's tenant
//! sees its own relationships and apps; every other tenant, none.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use serde_json::{json, Value};
use tenantwatch_common::time::rfc3339;

use super::odata::{self, ListQuery, Paging, Top};
use super::{begin, Call};
use crate::estate::gdap::{self, Assignment, Current};
use crate::estate::{AppCredential, CredentialKind, Relationship};
use crate::state::SimState;
use crate::world::{guid, App, Partner};

const GDAP_READ: &[&str] = &[
    "DelegatedAdminRelationship.Read.All",
    "DelegatedAdminRelationship.ReadWrite.All",
];

const APPLICATIONS_READ: &[&str] = &[
    "Application.Read.All",
    "Application.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

/// "$top supports up to 300 objects"; the sim's default page is 5.
const GDAP_PAGING: Paging = Paging {
    page: 5,
    top: Top::PageSize { max: 300 },
};

/// Directory objects allow `$top` up to 999.
const APP_PAGING: Paging = Paging {
    page: 5,
    top: Top::PageSize { max: 999 },
};

fn unsupported(state: &SimState, call: &Call<'_>) -> Response {
    odata::refuse(
        state,
        call,
        ("Request_UnsupportedQuery", "Unsupported query.".into()),
    )
}

/// The list query of a GDAP list, and its `$filter=status eq '…'` if any
/// (the only filter these lists take); Graph's 400 otherwise.
fn status_query(
    state: &SimState,
    call: &Call<'_>,
    uri: &Uri,
) -> Result<(ListQuery, Option<String>), Box<Response>> {
    let q = ListQuery::parse(uri).map_err(|r| Box::new(odata::refuse(state, call, r)))?;
    let status = match q.filter.as_deref().map(odata::parse_eq) {
        None => None,
        Some(Some((prop, value))) if prop.eq_ignore_ascii_case("status") => Some(value),
        Some(_) => return Err(Box::new(unsupported(state, call))),
    };
    Ok((q, status))
}

fn relationship(r: &Relationship, now: &Current) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.delegatedAdminRelationship",
        "@odata.etag": r.etag,
        "id": r.id,
        "displayName": r.display_name,
        "duration": gdap::days(r.duration_days),
        "customer": {"tenantId": r.customer_id, "displayName": r.customer_name},
        "accessDetails": {
            "unifiedRoles": r.roles.iter().map(|id| json!({"roleDefinitionId": id})).collect::<Vec<_>>(),
        },
        "status": now.status,
        "autoExtendDuration": if r.auto_extend { gdap::days(gdap::AUTO_EXTEND_DAYS) } else { "PT0S".into() },
        "createdDateTime": rfc3339(r.created),
        "lastModifiedDateTime": rfc3339(now.last_modified),
        "activatedDateTime": rfc3339(r.activated),
        "endDateTime": rfc3339(now.end),
    })
}

/// `GET /v1.0/tenantRelationships/delegatedAdminRelationships`.
pub(super) async fn relationships(
    State(state): State<Arc<SimState>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let call = match begin(&state, &headers, GDAP_READ) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let (q, status_filter) = match status_query(&state, &call, &uri) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    // Only partners have relationships with customers, each its own; other
    // tenants see an empty list.
    let items = if let Some(p) = state.world.partner_by_tenant(&call.tenant.id) {
        state
            .relationships_at(p.index, state.clock.now_unix())
            .into_iter()
            .filter(|(_, c)| status_filter.as_deref().is_none_or(|s| s == c.status))
            .map(|(r, c)| relationship(r, &c))
            .collect()
    } else {
        Vec::new()
    };
    odata::page(
        &state,
        &call,
        &uri,
        &q,
        "tenantRelationships/delegatedAdminRelationships",
        items,
        GDAP_PAGING,
    )
}

fn credential(c: &AppCredential) -> Value {
    match c.kind {
        CredentialKind::Secret => json!({
            "customKeyIdentifier": null,
            "displayName": c.display_name,
            "endDateTime": rfc3339(c.end),
            "hint": c.hint,
            "keyId": c.key_id,
            "secretText": null,
            "startDateTime": rfc3339(c.start),
        }),
        CredentialKind::Certificate => json!({
            "customKeyIdentifier": c.thumbprint,
            "displayName": c.display_name,
            "endDateTime": rfc3339(c.end),
            "key": null,
            "keyId": c.key_id,
            "startDateTime": rfc3339(c.start),
            "type": "AsymmetricX509Cert",
            "usage": "Verify",
        }),
    }
}

/// An app registered in `partner`'s tenant.
fn application(state: &SimState, partner: &Partner, app: &App, creds: &[AppCredential]) -> Value {
    let (secrets, keys): (Vec<_>, Vec<_>) =
        creds.iter().partition(|c| c.kind == CredentialKind::Secret);
    json!({
        "id": guid(state.world.seed, &format!("app-object/{}", app.client_id)),
        "appId": app.client_id,
        "displayName": app.name,
        "createdDateTime": partner.tenant.created,
        "publisherDomain": partner.tenant.domain,
        "signInAudience": if app.multi_tenant { "AzureADMultipleOrgs" } else { "AzureADMyOrg" },
        "passwordCredentials": secrets.into_iter().map(credential).collect::<Vec<_>>(),
        "keyCredentials": keys.into_iter().map(credential).collect::<Vec<_>>(),
    })
}

fn assignment(a: &Assignment) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.delegatedAdminAccessAssignment",
        "@odata.etag": a.etag,
        "id": a.id,
        "status": a.status,
        "createdDateTime": rfc3339(a.created),
        "lastModifiedDateTime": rfc3339(a.last_modified),
        "accessContainer": {
            "accessContainerId": a.group_id,
            "accessContainerType": "securityGroup",
        },
        "accessDetails": {
            "unifiedRoles": a.roles.iter().map(|id| json!({"roleDefinitionId": id})).collect::<Vec<_>>(),
        },
    })
}

/// `GET /v1.0/tenantRelationships/delegatedAdminRelationships/{id}/accessAssignments`.
/// Supports `$filter=status eq '…'` and `$top` up to 300, as the list page says.
pub(super) async fn access_assignments(
    State(state): State<Arc<SimState>>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let call = match begin(&state, &headers, GDAP_READ) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let (q, status_filter) = match status_query(&state, &call, &uri) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let found = state
        .world
        .partner_by_tenant(&call.tenant.id)
        .and_then(|p| {
            state
                .relationships_at(p.index, state.clock.now_unix())
                .into_iter()
                .find(|(r, _)| r.id.eq_ignore_ascii_case(&id))
        });
    let Some((r, _)) = found else {
        // Microsoft documents no error for an unknown relationship; Graph's
        // generic 404 (invented code, see docs/simulator.md).
        return super::error(
            &state,
            &call.ids,
            axum::http::StatusCode::NOT_FOUND,
            "NotFound",
            &format!("The delegated admin relationship '{id}' was not found."),
        );
    };
    let items = r
        .assignments
        .iter()
        .filter(|a| status_filter.as_deref().is_none_or(|s| s == a.status))
        .map(assignment)
        .collect();
    odata::page(
        &state,
        &call,
        &uri,
        &q,
        &format!(
            "tenantRelationships/delegatedAdminRelationships('{}')/accessAssignments",
            r.id
        ),
        items,
        GDAP_PAGING,
    )
}

/// `GET /v1.0/applications`.
pub(super) async fn applications(
    State(state): State<Arc<SimState>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let call = match begin(&state, &headers, APPLICATIONS_READ) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let q = match ListQuery::parse(&uri) {
        Ok(q) => q,
        Err(r) => return odata::refuse(&state, &call, r),
    };
    let mut items: Vec<Value> = match state.world.partner_by_tenant(&call.tenant.id) {
        Some(p) => {
            let w = &state.world;
            let sam = state
                .estate
                .sam_credentials
                .get(p.index)
                .map_or(&[][..], Vec::as_slice);
            let mut apps = vec![application(&state, p, &p.sam_app, sam)];
            // The service identity lives in partner 0's tenant only.
            if w.identity_app.home_tenant == p.tenant.id {
                apps.push(application(
                    &state,
                    p,
                    &w.identity_app,
                    &state.estate.identity_credentials,
                ));
            }
            apps
        }
        // A SAM app is registered in its partner's tenant only.
        None => Vec::new(),
    };
    if let Some(f) = &q.filter {
        let Some((prop, value)) = odata::parse_eq(f) else {
            return unsupported(&state, &call);
        };
        let key = match prop.to_ascii_lowercase().as_str() {
            "appid" => "appId",
            "id" => "id",
            "displayname" => "displayName",
            _ => return unsupported(&state, &call),
        };
        items.retain(|a| {
            a.get(key)
                .and_then(Value::as_str)
                .is_some_and(|v| v.eq_ignore_ascii_case(&value))
        });
    }
    odata::page(&state, &call, &uri, &q, "applications", items, APP_PAGING)
}
