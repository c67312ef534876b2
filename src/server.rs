//! The HTTP server: `/metrics`, `/healthz`, `/readyz` and a landing page at `/`.
//! Every handler reads the latest snapshot; none calls Microsoft.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
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

async fn metrics(State(s): State<AppState>, headers: HeaderMap) -> Response {
    const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
    let body = s.metrics.exposition();
    if accepts_gzip(&headers) {
        (
            [
                (header::CONTENT_TYPE, TEXT),
                (header::CONTENT_ENCODING, "gzip"),
                (header::VARY, "accept-encoding"),
            ],
            // The cached pieces themselves, not a copy per scrape.
            Body::from_stream(futures::stream::iter(
                body.gzip_parts()
                    .into_iter()
                    .map(Ok::<_, std::convert::Infallible>),
            )),
        )
            .into_response()
    } else {
        (
            [
                (header::CONTENT_TYPE, TEXT),
                (header::VARY, "accept-encoding"),
            ],
            body.plain(),
        )
            .into_response()
    }
}

/// True when `Accept-Encoding` lists gzip (or `*`) with a non-zero q-value,
/// as Prometheus sends it.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or_default();
            let q_zero = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !q_zero
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn with(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, v.parse().unwrap());
        h
    }

    #[test]
    fn gzip_only_when_accepted() {
        assert!(accepts_gzip(&with("gzip")));
        assert!(accepts_gzip(&with("identity, GZIP;q=0.5")));
        assert!(accepts_gzip(&with("*")));
        assert!(!accepts_gzip(&with("gzip;q=0, br")));
        assert!(!accepts_gzip(&with("deflate")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
