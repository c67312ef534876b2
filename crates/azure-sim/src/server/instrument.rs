//! What every request to a simulated service goes through before its
//! handler: it is recorded (with the tenant it is for), delayed by the
//! injected latency, and given the fault the registry in [`crate::faults`]
//! decides on, answered in the service's own error shape. Every response
//! carries a `Date` on the simulated clock.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;

use crate::faults::Fault;
use crate::http;
use crate::jwt;
use crate::requests::RequestRecord;
use crate::service::Service;
use crate::state::SimState;
use crate::{arm, entra, graph, keyvault, partner_center};

/// Wraps a service's router with request recording, latency and fault
/// injection (in that order: faulted requests are recorded too).
pub(crate) fn instrument(router: Router, state: Arc<SimState>, service: Service) -> Router {
    router.layer(axum::middleware::from_fn_with_state(
        (state, service),
        track,
    ))
}

async fn track(
    State((state, service)): State<(Arc<SimState>, Service)>,
    req: Request,
    next: Next,
) -> Response {
    let tenant = match service {
        // The token endpoint is counted by the tenant in its path, resolved
        // to an id when it is a known domain.
        Service::Token => req
            .uri()
            .path()
            .trim_start_matches('/')
            .split('/')
            .next()
            // The device-login page and the federation issuer name no tenant.
            .filter(|s| !s.is_empty() && *s != "devicelogin" && *s != "k8s-oidc")
            .map(|seg| {
                state
                    .world
                    .tenant(seg)
                    .map_or_else(|| seg.to_ascii_lowercase(), |t| t.id.clone())
            }),
        // Resources are counted by the tenant the presented token is for.
        _ => http::bearer(req.headers())
            .and_then(jwt::claims_unverified)
            .and_then(|c| c.get("tid").and_then(|v| v.as_str()).map(str::to_string)),
    };
    let fault = state.faults.decide(service, tenant.as_deref());
    state.record(RequestRecord {
        service,
        tenant,
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
    });
    let latency = state.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut resp = match fault {
        None => next.run(req).await,
        // Held until the fault is lifted; dropped if the client gives up first.
        Some((Fault::Hang, lift)) => {
            state.faults.hang(&lift).await;
            next.run(req).await
        }
        Some((fault, _)) => fault_response(&state, service, fault, req.uri().path(), req.headers()),
    };
    // `Date` on the simulated clock, as the real services stamp theirs: clients that
    // measure lifetimes in the server's frame see the moved clock. (hyper only adds
    // its own `Date` when the response has none.)
    let date = state
        .clock
        .now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    if let Ok(v) = HeaderValue::from_str(&date) {
        resp.headers_mut().insert(axum::http::header::DATE, v);
    }
    resp
}

/// The response a service gives under `fault`, in that service's own error
/// and throttling shapes, as the real ones differ (NOTES.md). `Hang` is
/// handled by the caller: it never produces a response.
fn fault_response(
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
        Service::Token => entra::token::fault_response(state, status, retry_after),
        Service::KeyVault => keyvault::fault_response(headers, status, retry_after),
        Service::Graph => graph::fault_response(state, headers, status, retry_after),
        Service::Arm => arm::fault_response(state, path, status, retry_after),
        Service::PartnerCenter => partner_center::fault_response(headers, status, retry_after),
        Service::ManagedIdentity => {
            entra::managed_identity::fault_response(path, status, retry_after)
        }
    };
    if let Some(secs) = retry_after {
        if let Ok(v) = secs.to_string().parse() {
            resp.headers_mut().insert("retry-after", v);
        }
    }
    resp
}
