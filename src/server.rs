//! The HTTP server: `/metrics`, `/healthz`, `/readyz` and a landing page at `/`.
//! Every handler reads the latest snapshot; none calls Microsoft.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// State shared by the handlers.
#[derive(Clone)]
pub struct AppState {
    /// Metrics and the latest snapshot.
    pub metrics: Arc<Metrics>,
    /// Set when a background task died; `/readyz` then fails.
    pub failed: Arc<AtomicBool>,
}

/// The router, separate from [`serve`] so tests can drive it without a socket.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// Serves until `shutdown` is cancelled, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

async fn metrics(State(s): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(s): State<AppState>) -> Response {
    if s.failed.load(Ordering::Relaxed) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "a background task failed\n",
        )
            .into_response();
    }
    match s.metrics.snapshot().cycle_finished {
        Some(_) => (StatusCode::OK, "ready\n").into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "first collection cycle not finished\n",
        )
            .into_response(),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn index(State(s): State<AppState>) -> Html<String> {
    let snap = s.metrics.snapshot();
    let up = snap.tenants.iter().filter(|t| t.up).count();
    let mut tenants: Vec<_> = snap.tenants.iter().collect();
    // Trouble first, then by name.
    tenants.sort_by(|a, b| a.up.cmp(&b.up).then_with(|| a.name.cmp(&b.name)));
    let rows: String = tenants
        .iter()
        .map(|t| {
            format!(
                "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>\n",
                escape(&t.name),
                escape(&t.domain),
                escape(&t.tenant_id),
                if t.up { "up" } else { "<b>down</b>" },
                t.token_error.map(|r| r.as_str()).unwrap_or(""),
            )
        })
        .collect();
    let state = match snap.cycle_finished {
        Some(_) => format!("{up} of {} tenants up", snap.tenants.len()),
        None => "first collection cycle running…".to_string(),
    };
    Html(format!(
        r#"<!doctype html>
<html><head><meta charset="utf-8"><title>tenantwatch</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.2em .8em;text-align:left}}</style></head>
<body><h1>tenantwatch {version}</h1>
<p>{state}</p>
<p><a href="/metrics">/metrics</a> · <a href="/healthz">/healthz</a> · <a href="/readyz">/readyz</a></p>
<table><thead><tr><th>name</th><th>domain</th><th>tenant id</th><th>state</th><th>token error</th></tr></thead>
<tbody>
{rows}</tbody></table></body></html>
"#,
        version = env!("CARGO_PKG_VERSION"),
    ))
}
