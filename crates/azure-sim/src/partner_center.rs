//! Partner Center: `GET /v1/customers` with seek-based paging, shaped after
//! partnercenter/customers-list-response.json and the continuation pattern
//! of docs-get-invoice-billed-consumption-lineitems.md.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Serialize;
use serde_json::json;

use crate::bearer::{self, BearerError};
use crate::http::{self, first};
use crate::resources::PARTNER_CENTER;
use crate::state::SimState;

/// Page size when the request gives none: the docs' example (`size=40`,
/// "read customers into chunks of 40s"); they document no other default.
const DEFAULT_PAGE_SIZE: usize = 40;

/// Builds the Partner Center origin's routes.
pub(crate) fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/v1/customers", get(customers))
        .fallback(not_found)
        .with_state(state)
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

async fn customers(State(state): State<Arc<SimState>>, uri: Uri, headers: HeaderMap) -> Response {
    let claims = match bearer::validate(&state, &headers, PARTNER_CENTER.audiences) {
        Ok(c) => c,
        Err(e) => {
            let detail = match e {
                BearerError::Missing => "Authorization header is missing.",
                BearerError::Expired { .. } => "The token is expired.",
                BearerError::WrongAudience { .. } => "The audience in the token is invalid.",
                _ => "The token is invalid.",
            };
            return error(
                &headers,
                StatusCode::UNAUTHORIZED,
                PcErrorBody::new(400, format!("Access denied. {detail}")),
            );
        }
    };
    // Since 2026-04-01 every App+User (delegated) call needs `mfa` in `amr`;
    // app-only tokens are exempt (partnercenter/docs-mfa-enforcement.md).
    if !claims.scp.is_empty() && !claims.amr.iter().any(|m| m == "mfa") {
        return mfa_required(&headers);
    }
    // Only the partner's own directory can list its customers.
    if !claims.tid.eq_ignore_ascii_case(&state.world.partner.id) {
        return error(
            &headers,
            StatusCode::UNAUTHORIZED,
            PcErrorBody::new(400, "Access denied. The token is not for a partner tenant."),
        );
    }
    let q = http::query(&uri);
    let all = state.pc_customers();
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

    #[test]
    fn continuation_token_roundtrip() {
        assert_eq!(encode_token(1), "AQAAAA==");
        assert_eq!(decode_token("AQAAAA=="), Some(1));
        assert_eq!(decode_token(&encode_token(40)), Some(40));
        assert_eq!(decode_token("nope"), None);
    }
}
