//! What each simulated service answers under an injected fault: its own
//! error body for a status, and its own throttling body with `Retry-After`
//! for 429, as the real ones differ (NOTES.md).

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;

use crate::arm;
use crate::arm::resource_graph;
use crate::clock::{entra_timestamp, graph_date};
use crate::entra::aadsts;
use crate::errors::{ArmErrorBody, ErrorCtx, KvErrorBody, PcErrorBody};
use crate::faults::Fault;
use crate::graph;
use crate::http;
use crate::keyvault;
use crate::partner_center;
use crate::service::Service;
use crate::state::SimState;

/// The response a service gives under `fault` (`Hang` is handled by the
/// caller: it never produces a response).
pub(crate) fn respond(
    state: &SimState,
    service: Service,
    fault: Fault,
    path: &str,
    headers: &HeaderMap,
) -> Response {
    let (status, retry_after) = match fault {
        Fault::Status(s) => (
            StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            None,
        ),
        Fault::Throttle { retry_after_secs } => {
            (StatusCode::TOO_MANY_REQUESTS, Some(retry_after_secs))
        }
        Fault::Hang => (StatusCode::SERVICE_UNAVAILABLE, None),
    };
    let mut resp = match service {
        Service::Token => token(state, status, retry_after),
        Service::KeyVault => key_vault(headers, status, retry_after),
        Service::Graph => graph_fault(state, headers, status, retry_after),
        // Resource Graph shares ARM's origin but has its own error bodies.
        Service::Arm if resource_graph::is_path(path) => {
            resource_graph::fault(state, status, retry_after)
        }
        Service::Arm => arm_fault(status, retry_after),
        Service::PartnerCenter => partner_center_fault(headers, status, retry_after),
        Service::ManagedIdentity => managed_identity(path, status, retry_after),
    };
    if let Some(secs) = retry_after {
        if let Ok(v) = secs.to_string().parse() {
            resp.headers_mut().insert("retry-after", v);
        }
    }
    resp
}

/// Entra: 429 is plain text `Too Many Requests` (catalog, MSAL.NET#2855);
/// 5xx is a JSON error with `temporarily_unavailable`.
pub(crate) fn token(state: &SimState, status: StatusCode, retry_after: Option<u64>) -> Response {
    if retry_after.is_some() || status == StatusCode::TOO_MANY_REQUESTS {
        return http::with_headers(
            StatusCode::TOO_MANY_REQUESTS,
            "text/plain; charset=utf-8",
            Body::from("Too Many Requests"),
            &[],
        );
    }
    let ctx = ErrorCtx {
        login: state.origins.login.clone(),
        trace_id: http::new_id(),
        correlation_id: http::new_id(),
        timestamp: entra_timestamp(state.clock.now()),
    };
    let e = aadsts::transient(status);
    http::json(status, &e.body(&ctx), &[])
}

fn key_vault(headers: &HeaderMap, status: StatusCode, retry_after: Option<u64>) -> Response {
    let body = match retry_after {
        // learn.microsoft.com/azure/key-vault/general/overview-throttling
        Some(_) => KvErrorBody::new(
            "Throttled",
            "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached",
        ),
        None => KvErrorBody::new(
            server_code(status),
            "The service is temporarily unavailable. Please retry the request.",
        ),
    };
    http::json(status, &body.to_json(), &keyvault::kv_headers(headers))
}

fn graph_fault(
    state: &SimState,
    headers: &HeaderMap,
    status: StatusCode,
    retry_after: Option<u64>,
) -> Response {
    let ids = graph::Ids::from(headers);
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

fn arm_fault(status: StatusCode, retry_after: Option<u64>) -> Response {
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
    let mut extra = arm::arm_headers();
    if retry_after.is_some() {
        extra.retain(|(k, _)| !k.starts_with("x-ms-ratelimit"));
        extra.push(("x-ms-ratelimit-remaining-subscription-reads", "0".into()));
    }
    http::json(status, &body, &extra)
}

fn partner_center_fault(
    headers: &HeaderMap,
    status: StatusCode,
    retry_after: Option<u64>,
) -> Response {
    let extra = partner_center::pc_headers(headers);
    match retry_after {
        // partnercenter/docs-api-throttling-guidance.md.
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

/// IMDS errors are `{error, error_description}`; App Service's are
/// `{statusCode, message, correlationId}`.
fn managed_identity(path: &str, status: StatusCode, retry_after: Option<u64>) -> Response {
    if path.starts_with("/msi/") {
        let message = match retry_after {
            Some(_) => "Too many requests.",
            None => "An unexpected error occured while fetching the AAD Token.",
        };
        return http::json(
            status,
            &json!({"statusCode": status.as_u16(), "message": message, "correlationId": http::new_id()}),
            &[("server", "Kestrel".into())],
        );
    }
    let (error, desc) = match retry_after {
        Some(_) => (
            "throttled",
            "IMDS Throttle limit reached. Retry with exponential backoff.",
        ),
        None => (
            "unknown",
            "Failed to retrieve token from the Active directory. Retry the request.",
        ),
    };
    http::json(
        status,
        &json!({"error": error, "error_description": desc}),
        &[],
    )
}

/// The `code` Azure services use for common 5xx statuses.
pub(crate) fn server_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        500 => "InternalServerError",
        502 => "BadGateway",
        503 => "ServiceUnavailable",
        504 => "GatewayTimeout",
        s if s >= 500 => "ServiceUnavailable",
        _ => "BadRequest",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_codes() {
        assert_eq!(
            server_code(StatusCode::SERVICE_UNAVAILABLE),
            "ServiceUnavailable"
        );
        assert_eq!(server_code(StatusCode::BAD_GATEWAY), "BadGateway");
    }
}
