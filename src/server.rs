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
use crate::web_serve::WebConfigSource;

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

/// Serves until `shutdown` is cancelled, then finishes in-flight requests;
/// with a web config, under its TLS, basic auth and headers.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    web: Option<Arc<WebConfigSource>>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    match web {
        None => {
            axum::serve(listener, router(state))
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await
        }
        Some(source) => {
            let router = crate::web_serve::protect(router(state), source.clone());
            crate::web_serve::serve(listener, router, source, shutdown).await
        }
    }
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
    if s.metrics.snapshot().ready {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "first discovery and collector runs not finished\n",
        )
            .into_response()
    }
}

async fn index(State(s): State<AppState>) -> Html<String> {
    Html(crate::status_page::render(
        &s.metrics.snapshot(),
        &s.metrics.refresh.get(),
    ))
}
