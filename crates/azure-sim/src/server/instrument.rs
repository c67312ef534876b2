//! What every request to a simulated service goes through before its
//! handler: it is recorded (with the tenant it is for), delayed by the
//! injected latency, and given the fault the registry in [`crate::faults`]
//! decides on, answered in the service's own error shape; with limits on,
//! it is then charged against Microsoft's published limits
//! ([`crate::limits`]) and refused with the service's 429 when one is used
//! up. Every response carries a `Date` on the simulated clock and, with
//! limits on, the service's remaining-quota headers.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;

use crate::faults::Fault;
use crate::http;
use crate::jwt;
use crate::limits::{self, Caller, Limit, Verdict};
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
    let claims = match service {
        Service::Token | Service::ManagedIdentity => None,
        _ => http::bearer(req.headers()).and_then(jwt::claims_unverified),
    };
    let claim = |name: &str| {
        claims
            .as_ref()
            .and_then(|c| c.get(name))
            .and_then(|v| v.as_str())
    };
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
        _ => claim("tid").map(str::to_string),
    };
    let fault = state.faults.decide(service, tenant.as_deref());
    state.record(RequestRecord {
        service,
        tenant: tenant.clone(),
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
    });
    let latency = state.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let verdict = match fault {
        Some(_) => Verdict::default(),
        None if !state.limits.enabled() => Verdict::default(),
        None => {
            let who = Caller {
                app: claim("appid").or_else(|| claim("azp")),
                tenant: tenant.as_deref(),
                principal: claim("oid"),
                users: tenant
                    .as_deref()
                    .and_then(|t| state.estate.tenant(t))
                    .map_or(1, |e| e.m365.users),
            };
            let charges = limits::charges(
                service,
                req.method().as_str(),
                req.uri().path(),
                req.uri().query().unwrap_or(""),
                &who,
            );
            state.limits.admit(&charges, Instant::now())
        }
    };
    let mut resp = match (fault, verdict.refused) {
        (None, Some((limit, secs))) => throttled_response(
            &state,
            service,
            (limit, secs, verdict.refused_key.as_deref()),
            req.uri().path(),
            req.headers(),
        ),
        (None, None) => next.run(req).await,
        // Held until the fault is lifted; dropped if the client gives up first.
        (Some((Fault::Hang, lift)), _) => {
            state.faults.hang(&lift).await;
            next.run(req).await
        }
        (Some((fault, _)), _) => {
            fault_response(&state, service, fault, req.uri().path(), req.headers())
        }
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
    // The limits' counters replace the fixed values the handlers write.
    for (name, value) in &verdict.headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            resp.headers_mut().insert(*name, v);
        }
    }
    resp
}

/// The 429 a service sends when one of its limits is used up: its own
/// throttling body and `Retry-After` (as for an injected throttle), and for
/// Graph the `x-ms-throttle-scope` and `x-ms-throttle-information` headers
/// G2 documents.
fn throttled_response(
    state: &SimState,
    service: Service,
    (limit, secs, key): (Limit, u64, Option<&str>),
    path: &str,
    headers: &HeaderMap,
) -> Response {
    let mut resp = fault_response(
        state,
        service,
        Fault::Throttle {
            retry_after_secs: secs,
        },
        path,
        headers,
    );
    if service == Service::Graph {
        // `<Scope>/<Limit>/<ApplicationId>/<TenantId>`; the key is `app` or `app/tenant`.
        let scope = match limit {
            Limit::GraphApp | Limit::GraphIdentityApp => "Application",
            _ => "Tenant_Application",
        };
        let scope = format!("{scope}/Read/{}", key.unwrap_or("-"));
        for (name, value) in [
            ("x-ms-throttle-scope", scope.as_str()),
            ("x-ms-throttle-information", "ResourceUnitLimitExceeded"),
        ] {
            if let Ok(v) = HeaderValue::from_str(value) {
                resp.headers_mut().insert(name, v);
            }
        }
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
