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
            use axum::serve::ListenerExt as _;
            // Without TCP_NODELAY the last small segment of a multi-megabyte
            // body waited for the scraper's delayed ACK (40 ms on Linux):
            // that was the tail of /metrics latency at thousands of tenants.
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
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
            Body::new(Parts::new(body.gzip_parts())),
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

/// A body sent from pieces already in memory, with its length known: it goes
/// out with `Content-Length` rather than chunked, as one run of writes.
struct Parts {
    parts: std::collections::VecDeque<bytes::Bytes>,
    remaining: u64,
}

impl Parts {
    fn new(parts: Vec<bytes::Bytes>) -> Self {
        Self {
            remaining: parts.iter().map(|p| p.len() as u64).sum(),
            parts: parts.into(),
        }
    }
}

impl http_body::Body for Parts {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        let next = self.parts.pop_front();
        if let Some(p) = &next {
            self.remaining -= p.len() as u64;
        }
        std::task::Poll::Ready(next.map(|p| Ok(http_body::Frame::data(p))))
    }

    fn is_end_stream(&self) -> bool {
        self.parts.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.remaining)
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
