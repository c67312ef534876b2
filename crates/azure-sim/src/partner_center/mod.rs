//! Partner Center: `GET /v1/customers` with seek-based paging, shaped after
//! partnercenter/customers-list-response.json and the continuation pattern
//! of docs-get-invoice-billed-consumption-lineitems.md; and a customer's
//! subscriptions, `GET /v1/customers/{id}/subscriptions`
//! (customer-subscriptions-list.json, docs-subscription-resource.md), one per
//! Microsoft 365 SKU with its commitment end and `autoRenewEnabled`; and the
//! SAM app's consent pushed into a customer, `POST` and `DELETE
//! /v1/customers/{id}/applicationconsents` (`consents.rs`,
//! docs-application-consents.md).
//!
//! Every call answers for the partner whose tenant the token is for: its
//! customers, and no other partner's.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Serialize;
use serde_json::{json, Value};
use tenantwatch_common::time::rfc3339;

use crate::bearer::{self, AccessClaims, BearerError};
use crate::http::{self, first};
use crate::resources::PARTNER_CENTER;
use crate::state::SimState;
use crate::world::Partner;

mod consents;

/// Page size when the request gives none: the docs' example (`size=40`,
/// "read customers into chunks of 40s"); they document no other default.
const DEFAULT_PAGE_SIZE: usize = 40;

/// Builds the Partner Center origin's routes; the consent routes also need
/// Entra, whose token errors say which customers lack the app.
pub(crate) fn router(state: Arc<SimState>, entra: Arc<crate::entra::state::Entra>) -> Router {
    Router::new()
        .route("/v1/customers", get(customers))
        .route("/v1/customers/{id}/subscriptions", get(subscriptions))
        .fallback(not_found)
        .with_state(state.clone())
        .merge(consents::router(consents::Consents { sim: state, entra }))
}

#[derive(Serialize)]
struct ObjectType {
    #[serde(rename = "objectType")]
    object_type: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CompanyProfile {
    tenant_id: String,
    domain: String,
    company_name: String,
    attributes: ObjectType,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Customer {
    id: String,
    company_profile: CompanyProfile,
    relationship_to_partner: &'static str,
    attributes: ObjectType,
}

#[derive(Serialize)]
struct LinkHeader {
    key: &'static str,
    value: String,
}

#[derive(Serialize)]
struct Link {
    uri: String,
    method: &'static str,
    headers: Vec<LinkHeader>,
}

#[derive(Serialize)]
struct Links {
    #[serde(rename = "self")]
    self_: Link,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<Link>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CustomerCollection {
    total_count: usize,
    items: Vec<Customer>,
    links: Links,
    attributes: ObjectType,
}

/// Echoes the caller's ids and adds the server's, as the recorded session shows.
pub(crate) fn pc_headers(headers: &HeaderMap) -> Vec<(&'static str, String)> {
    let echo = |name: &str| http::header(headers, name).map_or_else(http::new_id, str::to_string);
    vec![
        ("ms-correlationid", echo("ms-correlationid")),
        ("ms-requestid", echo("ms-requestid")),
        (
            "ms-cv",
            format!("{}.0", &http::new_id().replace('-', "")[..16]),
        ),
        ("ms-serverid", "0000112E".to_string()),
    ]
}

/// Partner Center's flat error: `{"code","description","data","source"}`
/// (partnercenter/docs-error-codes.md; real bodies carry a numeric code and
/// `source: "PartnerFD"`).
#[derive(Debug, Serialize)]
pub(crate) struct PcErrorBody {
    pub code: u32,
    pub description: String,
    pub data: Vec<String>,
    pub source: String,
}

impl PcErrorBody {
    /// A Partner Center error body from `PartnerFD`.
    pub fn new(code: u32, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
            data: Vec::new(),
            source: "PartnerFD".into(),
        }
    }
}

fn error(headers: &HeaderMap, status: StatusCode, body: PcErrorBody) -> Response {
    http::json(status, &body, &pc_headers(headers))
}

/// Partner Center's refusal of an App+User token without the MFA claim: the
/// documented `401` with `WWW-Authenticate: Bearer error="invalid_token"`
/// (2019 capture), plus the flat error body with code `900421` that partners
/// report for the 2026 enforcement. Microsoft shows no body: its
/// `description` here is the simulator's own wording.
fn mfa_required(headers: &HeaderMap) -> Response {
    let mut extra = pc_headers(headers);
    extra.push(("www-authenticate", r#"Bearer error="invalid_token""#.into()));
    http::json(
        StatusCode::UNAUTHORIZED,
        &PcErrorBody::new(
            MFA_REQUIRED_CODE,
            "MFA required: the access token has no mfa value in its amr claim.",
        ),
        &extra,
    )
}

/// The code of Partner Center's MFA refusal (partner blogs, 2026).
pub(crate) const MFA_REQUIRED_CODE: u32 = 900421;

/// Continuation tokens are an opaque base64 position, like the docs' `AQAAAA==`.
fn encode_token(offset: u32) -> String {
    STANDARD.encode(offset.to_le_bytes())
}

fn decode_token(token: &str) -> Option<usize> {
    let b = STANDARD.decode(token.trim()).ok()?;
    let arr: [u8; 4] = b.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(arr)).ok()
}

/// A valid Partner Center token's claims, or Partner Center's 401 naming
/// what is wrong with it.
fn valid_token(state: &SimState, headers: &HeaderMap) -> Result<AccessClaims, Box<Response>> {
    bearer::validate(state, headers, PARTNER_CENTER.audiences).map_err(|e| {
        let detail = match e {
            BearerError::Missing => "Authorization header is missing.",
            BearerError::Expired { .. } => "The token is expired.",
            BearerError::WrongAudience { .. } => "The audience in the token is invalid.",
            _ => "The token is invalid.",
        };
        Box::new(error(
            headers,
            StatusCode::UNAUTHORIZED,
            PcErrorBody::new(400, format!("Access denied. {detail}")),
        ))
    })
}

/// Partner Center's 401 for a token of a tenant that is no partner's.
fn not_the_partner(headers: &HeaderMap) -> Response {
    error(
        headers,
        StatusCode::UNAUTHORIZED,
        PcErrorBody::new(400, "Access denied. The token is not for a partner tenant."),
    )
}

/// The partner a token is for, or Partner Center's 401.
fn partner_only<'a>(
    state: &'a SimState,
    headers: &HeaderMap,
) -> Result<&'a Partner, Box<Response>> {
    let claims = valid_token(state, headers)?;
    state
        .world
        .partner_by_tenant(&claims.tid)
        .ok_or_else(|| Box::new(not_the_partner(headers)))
}

/// `commitmentEndDateTime` of a term ending on the day of `ts`: the day's
/// last second (the term is inclusive of its end date).
pub(crate) fn commitment_end(ts: i64) -> i64 {
    ts - ts.rem_euclid(86_400) + 86_399
}

/// A date as Partner Center writes `commitmentEndDate`: midnight UTC of the day.
fn day_of(ts: i64) -> String {
    rfc3339(ts - ts.rem_euclid(86_400))
}

fn pc_subscription(customer: &str, s: &crate::estate::m365::CompanySubscription) -> Value {
    let (status, end) = match s.status {
        "Suspended" => ("suspended", s.next_lifecycle),
        "Warning" => ("expired", s.next_lifecycle),
        _ => ("active", s.next_lifecycle),
    };
    // New-commerce offer ids are productId:skuId:availabilityId.
    let product = format!("CFQ7TTC0{}", &s.sku_id[..4].to_ascii_uppercase());
    let offer = format!("{product}:0001:{product}");
    let self_uri = format!("/customers/{customer}/subscriptions/{}", s.commerce_id);
    json!({
        "id": s.commerce_id,
        "offerId": offer,
        "offerName": s.part_number,
        "friendlyName": s.part_number,
        "productType": {"id": "OnlineServicesNCE", "displayName": "OnlineServicesNCE"},
        "quantity": s.total_licenses,
        "unitType": "Licenses",
        "hasPurchasableAddons": false,
        "creationDate": rfc3339(s.created),
        "effectiveStartDate": rfc3339(s.created),
        "commitmentEndDate": day_of(end),
        "commitmentEndDateTime": rfc3339(commitment_end(end)),
        "cancellationAllowedUntilDate": rfc3339(s.created + 7 * 86_400),
        "status": status,
        "autoRenewEnabled": s.auto_renew,
        "isTrial": s.trial,
        "billingType": "license",
        "billingCycle": if s.trial { "none" } else { "annual" },
        "termDuration": if s.trial { "P1M" } else { "P1Y" },
        "renewalTermDuration": "",
        "isMicrosoftProduct": true,
        "partnerId": "",
        "attentionNeeded": false,
        "actionTaken": false,
        "contractType": "subscription",
        "links": {
            "product": {"uri": format!("/products/{product}?country=US"), "method": "GET", "headers": []},
            "sku": {"uri": format!("/products/{product}/skus/0001?country=US"), "method": "GET", "headers": []},
            "self": {"uri": self_uri, "method": "GET", "headers": []},
        },
        "publisherName": "Microsoft Corporation",
        "orderId": format!("{}", &s.id[..8]),
        "attributes": {"objectType": "Subscription"},
    })
}

/// `GET /v1/customers/{id}/subscriptions`: the whole list in one page, as
/// the docs show (no `links.next`).
async fn subscriptions(
    State(state): State<Arc<SimState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let partner = match partner_only(&state, &headers) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    // Another partner's customer is as unknown as any other tenant.
    let customer = state
        .pc_customers(partner.index)
        .into_iter()
        .find(|t| t.id.eq_ignore_ascii_case(&id));
    let Some(estate) = customer.and_then(|t| state.estate.tenant(&t.id)) else {
        // The docs list no error for an unknown customer; 60003 "Tenant not
        // found" is docs-error-codes.md's nearest (see docs/simulator.md).
        return error(
            &headers,
            StatusCode::NOT_FOUND,
            PcErrorBody::new(60003, "Tenant not found"),
        );
    };
    let items: Vec<Value> = estate
        .m365
        .subscriptions
        .iter()
        .map(|s| pc_subscription(&id, s))
        .collect();
    let body = json!({
        "totalCount": items.len(),
        "items": items,
        "links": {"self": {"uri": format!("/customers/{id}/subscriptions"), "method": "GET", "headers": []}},
        "attributes": {"objectType": "Collection"},
    });
    http::json(StatusCode::OK, &body, &pc_headers(&headers))
}

/// The partner a token is for, with the MFA claim when it is App+User, or
/// Partner Center's 401 (what `GET /v1/customers` and the consent calls
/// require).
fn partner_with_mfa<'a>(
    state: &'a SimState,
    headers: &HeaderMap,
) -> Result<&'a Partner, Box<Response>> {
    let claims = valid_token(state, headers)?;
    // Since 2026-04-01 every App+User (delegated) call needs `mfa` in `amr`;
    // app-only tokens are exempt (partnercenter/docs-mfa-enforcement.md).
    if !claims.scp.is_empty() && !claims.amr.iter().any(|m| m == "mfa") {
        return Err(Box::new(mfa_required(headers)));
    }
    // Only a partner's own directory can act on its customers.
    state
        .world
        .partner_by_tenant(&claims.tid)
        .ok_or_else(|| Box::new(not_the_partner(headers)))
}

async fn customers(State(state): State<Arc<SimState>>, uri: Uri, headers: HeaderMap) -> Response {
    let partner = match partner_with_mfa(&state, &headers) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let q = http::query(&uri);
    let all = state.pc_customers(partner.index);
    let size = match first(&q, "size") {
        None => DEFAULT_PAGE_SIZE,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => {
                return error(
                    &headers,
                    StatusCode::BAD_REQUEST,
                    PcErrorBody::new(
                        3000,
                        format!("Invalid property: size '{s}' is not a positive integer."),
                    ),
                )
            }
        },
    };
    let seek_next = first(&q, "seekOperation").is_some_and(|v| v.eq_ignore_ascii_case("next"));
    let offset =
        if seek_next {
            match http::header(&headers, "ms-continuationtoken").and_then(decode_token) {
                Some(o) => o,
                None => return error(
                    &headers,
                    StatusCode::BAD_REQUEST,
                    PcErrorBody::new(
                        3000,
                        "Invalid property: the MS-ContinuationToken header is missing or invalid.",
                    ),
                ),
            }
        } else {
            0
        };
    let items: Vec<Customer> = all
        .iter()
        .skip(offset)
        .take(size)
        .map(|t| Customer {
            id: t.id.clone(),
            company_profile: CompanyProfile {
                tenant_id: t.id.clone(),
                domain: t.domain.clone(),
                company_name: t.name.clone(),
                attributes: ObjectType {
                    object_type: "CustomerCompanyProfile",
                },
            },
            relationship_to_partner: "reseller",
            attributes: ObjectType {
                object_type: "Customer",
            },
        })
        .collect();
    let next_offset = offset + items.len();
    let next = (next_offset < all.len()).then(|| Link {
        uri: format!("/v1/customers?size={size}&seekOperation=Next"),
        method: "GET",
        headers: vec![LinkHeader {
            key: "MS-ContinuationToken",
            value: encode_token(u32::try_from(next_offset).unwrap_or(u32::MAX)),
        }],
    });
    let self_uri = if seek_next {
        format!("/v1/customers?size={size}&seekOperation=Next")
    } else {
        format!("/v1/customers?size={size}")
    };
    let body = CustomerCollection {
        total_count: items.len(),
        items,
        links: Links {
            self_: Link {
                uri: self_uri,
                method: "GET",
                headers: Vec::new(),
            },
            next,
        },
        attributes: ObjectType {
            object_type: "Collection",
        },
    };
    http::json(StatusCode::OK, &body, &pc_headers(&headers))
}

async fn not_found(headers: HeaderMap) -> Response {
    error(
        &headers,
        StatusCode::NOT_FOUND,
        PcErrorBody::new(1000, "Not found"),
    )
}

/// Partner Center under an injected fault: its rate-limit message for 429
/// (partnercenter/docs-api-throttling-guidance.md), its flat error otherwise.
pub(crate) fn fault_response(
    headers: &HeaderMap,
    status: StatusCode,
    retry_after: Option<u64>,
) -> Response {
    let extra = pc_headers(headers);
    match retry_after {
        Some(secs) => http::json(
            status,
            &json!({"statusCode": 429, "message": format!("Rate limit is exceeded. Try again in {secs} seconds.")}),
            &extra,
        ),
        None => http::json(
            status,
            &PcErrorBody::new(
                u32::from(status.as_u16()),
                "The service is temporarily unavailable. Please try again later.",
            ),
            &extra,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{start, start_partners, Fixture, PC_SCOPE};

    #[test]
    fn continuation_token_roundtrip() {
        assert_eq!(encode_token(1), "AQAAAA==");
        assert_eq!(decode_token("AQAAAA=="), Some(1));
        assert_eq!(decode_token(&encode_token(40)), Some(40));
        assert_eq!(decode_token("nope"), None);
    }

    /// `GET /v1/customers` with `token`, every page: the tenant ids.
    async fn customer_ids(f: &Fixture, token: &str) -> Vec<String> {
        let mut ids = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let seek = if next.is_some() {
                "&seekOperation=Next"
            } else {
                ""
            };
            let mut r = f
                .http
                .get(format!(
                    "{}/v1/customers?size=4{seek}",
                    f.sim.partner_center_url()
                ))
                .bearer_auth(token);
            if let Some(t) = &next {
                r = r.header("MS-ContinuationToken", t);
            }
            let r = r.send().await.unwrap();
            assert_eq!(r.status(), 200);
            let body: Value = r.json().await.unwrap();
            for c in body["items"].as_array().unwrap() {
                ids.push(
                    c["companyProfile"]["tenantId"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                );
            }
            match body["links"]["next"]["headers"][0]["value"].as_str() {
                Some(t) => next = Some(t.to_string()),
                None => return ids,
            }
        }
    }

    /// With three partners of ten customers, each partner's token lists its
    /// own ten, neighbours share exactly one, and partner 0's list is the
    /// one a single-partner simulator (same seed) serves.
    #[tokio::test]
    async fn each_partner_lists_its_own_customers() {
        let f = start_partners(10, 3).await;
        assert_eq!(f.sim.partner_count(), 3);
        let mut lists = Vec::new();
        for k in 0..3 {
            let p = f.partner(k);
            let token = f.access_as(k, &p.tenant_id, PC_SCOPE).await;
            let ids = customer_ids(&f, &token).await;
            assert_eq!(ids.len(), 10, "partner {k}");
            let expected: Vec<String> = p.customers.iter().map(|c| c.tenant_id.clone()).collect();
            assert_eq!(ids, expected, "partner {k}");
            lists.push(ids);
        }
        let shared =
            |a: usize, b: usize| lists[a].iter().filter(|id| lists[b].contains(id)).count();
        assert_eq!((shared(0, 1), shared(1, 2), shared(0, 2)), (1, 1, 0));
        // The shared one is partner 0's last and partner 1's first.
        assert_eq!(lists[0][9], lists[1][0]);

        let single = start(10).await;
        let token = single
            .access(&single.sim.partner_tenant_id(), PC_SCOPE)
            .await;
        assert_eq!(customer_ids(&single, &token).await, lists[0]);
        assert_eq!(single.sim.partner_tenant_id(), f.sim.partner_tenant_id());

        // A customer's subscriptions: its partners only; to another partner
        // it is as unknown as any tenant (60003).
        let only_partner_0 = &lists[0][0];
        let token_1 = f.access_as(1, &f.partner(1).tenant_id, PC_SCOPE).await;
        let subs = |t: &str, token: &str| {
            f.http
                .get(format!(
                    "{}/v1/customers/{t}/subscriptions",
                    f.sim.partner_center_url()
                ))
                .bearer_auth(token.to_string())
                .send()
        };
        let r = subs(only_partner_0, &token_1).await.unwrap();
        assert_eq!(r.status(), 404);
        assert_eq!(r.json::<Value>().await.unwrap()["code"], 60003);
        assert_eq!(subs(&lists[1][0], &token_1).await.unwrap().status(), 200);
        let token_0 = f.access_as(0, &f.partner(0).tenant_id, PC_SCOPE).await;
        assert_eq!(subs(only_partner_0, &token_0).await.unwrap().status(), 200);
    }
}
