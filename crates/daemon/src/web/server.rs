//! The HTTP server: `/metrics`, `/healthz`, `/readyz` and the status page at `/`,
//! and the one accept loop that serves them, plain or under a web config's
//! TLS, with every connection admitted, timed and evicted by [`Connections`].
//! Every handler reads the latest snapshot; none calls Microsoft.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::exposition::Publisher;
use crate::web::connections::{
    watch, Closed, Conn, Connections, End, Limits, TrackRequests, Tracked,
};
use crate::web::serve::WebConfigSource;

/// In-flight requests get this long after shutdown starts.
pub const DRAIN: Duration = Duration::from_secs(5);

/// State shared by the handlers.
#[derive(Clone)]
pub struct AppState {
    /// The latest snapshot and the `/metrics` body.
    pub publisher: Arc<Publisher>,
    /// Set when a background task died; `/readyz` then fails.
    pub failed: Arc<AtomicBool>,
    /// Bounds `/metrics` requests in flight (`server.max_requests`).
    pub scrapes: ScrapeLimit,
}

/// `server.max_requests` in force. A reload swaps the semaphore whole, so
/// scrapes in flight keep the permits they hold and new ones count against
/// the new bound.
#[derive(Clone, Default)]
pub struct ScrapeLimit(Arc<std::sync::Mutex<Option<Arc<tokio::sync::Semaphore>>>>);

impl ScrapeLimit {
    /// At most `max` scrapes at once; 0: no bound.
    pub fn new(max: usize) -> Self {
        let limit = Self::default();
        limit.set(max);
        limit
    }

    /// Puts a new bound in force.
    pub fn set(&self, max: usize) {
        *tenantwatch_common::sync::lock(&self.0) =
            (max > 0).then(|| Arc::new(tokio::sync::Semaphore::new(max)));
    }

    fn current(&self) -> Option<Arc<tokio::sync::Semaphore>> {
        tenantwatch_common::sync::lock(&self.0).clone()
    }
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

/// Serves until `shutdown` is cancelled, then gives in-flight requests
/// [`DRAIN`] to finish; while `web` holds a web config, under its TLS, basic
/// auth and headers. Plain or TLS, every connection is admitted, timed and
/// evicted by `connections`. `web` and `connections` may change under it (a
/// configuration reload): each new connection takes what is in force.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    web: Arc<WebConfigSource>,
    connections: Arc<Connections>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let router = crate::web::serve::protect(router(state), web.clone());
    let limits = connections.limits();
    tracing::info!(
        max_connections = limits.configured,
        open_file_limit = limits.open_file_limit,
        header_read_timeout = ?limits.header_read_timeout,
        idle_timeout = ?limits.idle_timeout,
        "HTTP connections capped at {}",
        limits.max_connections
    );
    let tasks = TaskTracker::new();
    while let Some((tcp, peer)) =
        tenantwatch_common::accept::next_connection(&listener, &shutdown).await
    {
        // At the cap with every connection busy: dropping it closes it now.
        let Some(conn) = connections.admit() else {
            continue;
        };
        // Without TCP_NODELAY the last small segment of a multi-megabyte
        // body waited for the scraper's delayed ACK (40 ms on Linux):
        // that was the tail of /metrics latency at thousands of tenants.
        let _ = tcp.set_nodelay(true);
        let tls = web.current().and_then(|w| w.tls.clone());
        tasks.spawn(connection(
            tcp,
            peer,
            tls,
            router.clone(),
            conn,
            connections.clone(),
            shutdown.clone(),
        ));
    }
    tasks.close();
    // Each connection bounds its own drain; this only waits for them to see it.
    if tokio::time::timeout(DRAIN + Duration::from_secs(1), tasks.wait())
        .await
        .is_err()
    {
        tracing::debug!("open connections did not finish within {DRAIN:?}");
    }
    Ok(())
}

/// One connection, from the TLS handshake (if any) to its end.
async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    router: Router,
    conn: Arc<Conn>,
    connections: Arc<Connections>,
    shutdown: CancellationToken,
) {
    let limits = connections.limits();
    let end = match tls {
        None => {
            http(
                Tracked::new(tcp, conn.clone()),
                router,
                &conn,
                &limits,
                &shutdown,
            )
            .await
        }
        Some(tls) => {
            // The handshake counts against the header timeout, as the
            // headers' first bytes cannot come before it; a shutdown drops it.
            let handshake = TlsAcceptor::from(tls).accept(tcp);
            match watch(handshake, &conn, &limits, &shutdown, DRAIN, |_| false).await {
                End::Finished(Ok(stream)) => {
                    http(
                        Tracked::new(stream, conn.clone()),
                        router,
                        &conn,
                        &limits,
                        &shutdown,
                    )
                    .await
                }
                End::Finished(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    None
                }
                End::Closed(why) => Some(why),
                End::Shutdown => None,
            }
        }
    };
    if let Some(why) = end {
        tracing::debug!(%peer, reason = ?why, "connection closed by the server");
    }
    connections.closed(&conn, end);
}

/// Serves HTTP/1.1 (or HTTP/2, by ALPN or prior knowledge) on `io` until it
/// ends; why the server closed it, if it did.
async fn http<S>(
    io: Tracked<S>,
    router: Router,
    conn: &Arc<Conn>,
    limits: &Limits,
    shutdown: &CancellationToken,
) -> Option<Closed>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = Builder::new(TokioExecutor::new());
    // hyper's own header timeout would also cut idle keep-alive connections
    // (see `connections`); the one in `watch` replaces it.
    builder.http1().header_read_timeout(None);
    let service = TrackRequests::new(TowerToHyperService::new(router), conn.clone());
    let served = builder.serve_connection(TokioIo::new(io), service);
    match watch(served, conn, limits, shutdown, DRAIN, |c| {
        c.graceful_shutdown();
        true
    })
    .await
    {
        End::Finished(Err(e)) => {
            tracing::debug!(error = %e, "connection ended with an error");
            None
        }
        End::Finished(Ok(())) | End::Shutdown => None,
        End::Closed(why) => Some(why),
    }
}

async fn metrics(State(s): State<AppState>, headers: HeaderMap) -> Response {
    const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
    // The permit travels with the body: a response is in flight until sent.
    let permit = match s.scrapes.current() {
        None => None,
        Some(sem) => match sem.clone().try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) => {
                tracing::warn!("too many concurrent /metrics requests; answering 503");
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Too many concurrent requests (server.max_requests)\n",
                )
                    .into_response();
            }
        },
    };
    let body = s.publisher.body();
    if accepts_gzip(&headers) {
        (
            [
                (header::CONTENT_TYPE, TEXT),
                (header::CONTENT_ENCODING, "gzip"),
                (header::VARY, "accept-encoding"),
            ],
            // The cached pieces themselves, not a copy per scrape.
            Body::new(Parts::new(body.gzip_parts(), permit)),
        )
            .into_response()
    } else {
        (
            [
                (header::CONTENT_TYPE, TEXT),
                (header::VARY, "accept-encoding"),
            ],
            // Inflated a window at a time as it is sent, never whole.
            Body::new(Parts::streamed(
                body.plain_len(),
                body.plain_windows(),
                permit,
            )),
        )
            .into_response()
    }
}

/// A body sent from pieces, with its length known: it goes out with
/// `Content-Length` rather than chunked, as one run of writes.
struct Parts {
    parts: Box<dyn Iterator<Item = bytes::Bytes> + Send>,
    remaining: u64,
    /// Released when the body is dropped (sent, or the client went away).
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Parts {
    /// Pieces already in memory.
    fn new(parts: Vec<bytes::Bytes>, permit: Option<tokio::sync::OwnedSemaphorePermit>) -> Self {
        Self {
            remaining: parts.iter().map(|p| p.len() as u64).sum(),
            parts: Box::new(parts.into_iter()),
            _permit: permit,
        }
    }

    /// Pieces made as they are sent, `len` bytes in all.
    fn streamed(
        len: u64,
        parts: impl Iterator<Item = bytes::Bytes> + Send + 'static,
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Self {
        Self {
            remaining: len,
            parts: Box::new(parts),
            _permit: permit,
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
        let next = self.parts.next();
        if let Some(p) = &next {
            self.remaining = self.remaining.saturating_sub(p.len() as u64);
        }
        std::task::Poll::Ready(next.map(|p| Ok(http_body::Frame::data(p))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
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
    if s.publisher.ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "first discovery and collector runs not finished\n",
        )
            .into_response()
    }
}

/// The status page, with a policy that lets it load and send nothing and
/// run only its own inline script and style; gzipped when the browser takes
/// it (a few MB of HTML at thousands of tenants, a tenth of that gzipped).
/// `?group=NAME` shows only that `[[tenants.groups]]` group's tenants. With
/// several partners, `/` lists them and `?partner=NAME` is one partner's page.
async fn index(
    State(s): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut all = s.publisher.partners();
    if all.is_empty() {
        // No partner set up yet: the empty page of a daemon starting.
        all.push(Default::default());
    }
    let names: Vec<String> = all.iter().map(|(s, _)| s.partner.to_string()).collect();
    // Only compared, never echoed: the value from the URL reaches no page.
    let chosen = match q.get("partner") {
        Some(p) => all.iter().position(|(s, _)| *s.partner == **p),
        None if all.len() == 1 => Some(0),
        None => None,
    };
    let Some(chosen) = chosen else {
        let gzip = accepts_gzip(&headers);
        return page(move || crate::web::status_page::render_overview(&all), gzip).await;
    };
    let (mut snapshot, refresh) = all.swap_remove(chosen);
    if let Some(group) = q.get("group") {
        // Only compared, never echoed: the value from the URL reaches no page.
        let only = Arc::make_mut(&mut snapshot);
        let groups = only.groups.clone();
        only.tenants
            .retain(|t| groups.get(&*t.tenant_id).is_some_and(|g| g == group));
    }
    let gzip = accepts_gzip(&headers);
    page(
        move || crate::web::status_page::render(&snapshot, &refresh, &names),
        gzip,
    )
    .await
}

/// A status page written by `render`, gzipped when `gzip`, with the headers
/// every page is served with.
async fn page(render: impl FnOnce() -> String + Send + 'static, gzip: bool) -> Response {
    // Thousands of rows take a while to write (and to compress): off the
    // runtime's workers, so scrapes answering meanwhile are not held up.
    let page = tokio::task::spawn_blocking(move || {
        let html = render();
        if gzip {
            gzipped(html.as_bytes()).map(Body::from)
        } else {
            Ok(Body::from(html))
        }
    })
    .await;
    let body = match page {
        Ok(Ok(body)) => body,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot compress the status page");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        Err(e) => {
            tracing::error!(error = %e, "rendering the status page failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let mut response = (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                crate::web::status_page::content_security_policy(),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-store"),
            (header::VARY, "accept-encoding"),
        ],
        body,
    )
        .into_response();
    if gzip {
        response.headers_mut().insert(
            header::CONTENT_ENCODING,
            axum::http::HeaderValue::from_static("gzip"),
        );
    }
    response
}

/// `bytes` gzipped at the fast level: the page is rendered per request.
fn gzipped(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 8),
        flate2::Compression::fast(),
    );
    gz.write_all(bytes)?;
    gz.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, v.parse().unwrap());
        h
    }

    #[tokio::test]
    async fn scrapes_beyond_the_limit_get_503_until_one_finishes() {
        let state = AppState {
            publisher: Publisher::new(crate::metrics::Metrics::new().unwrap()),
            failed: Arc::new(AtomicBool::new(false)),
            scrapes: ScrapeLimit::new(1),
        };
        let sem = state.scrapes.current().unwrap();
        let first = metrics(State(state.clone()), with("gzip")).await;
        assert_eq!(first.status(), StatusCode::OK);
        // The first response has not been sent (its body is alive): no room.
        let second = metrics(State(state.clone()), HeaderMap::new()).await;
        assert_eq!(second.status(), StatusCode::SERVICE_UNAVAILABLE);
        drop(first);
        let third = metrics(State(state.clone()), HeaderMap::new()).await;
        assert_eq!(third.status(), StatusCode::OK);
        let body = axum::body::to_bytes(third.into_body(), usize::MAX)
            .await
            .unwrap();
        assert!(String::from_utf8_lossy(&body).contains("tenantwatch_build_info"));
        assert_eq!(
            sem.available_permits(),
            1,
            "released once the body is consumed"
        );
        // A reload to "no limit" frees scrapes at once, and back to one bounds them again.
        let held = metrics(State(state.clone()), HeaderMap::new()).await;
        state.scrapes.set(0);
        let a = metrics(State(state.clone()), HeaderMap::new()).await;
        let b = metrics(State(state.clone()), HeaderMap::new()).await;
        assert_eq!((a.status(), b.status()), (StatusCode::OK, StatusCode::OK));
        state.scrapes.set(1);
        let c = metrics(State(state.clone()), HeaderMap::new()).await;
        let d = metrics(State(state.clone()), HeaderMap::new()).await;
        assert_eq!(
            (c.status(), d.status()),
            (StatusCode::OK, StatusCode::SERVICE_UNAVAILABLE)
        );
        drop(held);
    }

    /// A request for `/` without `?group=`.
    fn no_query() -> axum::extract::Query<std::collections::HashMap<String, String>> {
        axum::extract::Query(std::collections::HashMap::new())
    }

    #[tokio::test]
    async fn the_status_page_is_served_with_a_policy_that_allows_nothing_from_outside() {
        let state = AppState {
            publisher: Publisher::new(crate::metrics::Metrics::new().unwrap()),
            failed: Arc::new(AtomicBool::new(false)),
            scrapes: ScrapeLimit::new(0),
        };
        let page = index(State(state.clone()), no_query(), HeaderMap::new()).await;
        assert_eq!(page.status(), StatusCode::OK);
        assert!(page.headers().get(header::CONTENT_ENCODING).is_none());
        let zipped = index(State(state), no_query(), with("gzip")).await;
        assert_eq!(zipped.headers()[header::CONTENT_ENCODING], "gzip");
        let body = axum::body::to_bytes(zipped.into_body(), usize::MAX)
            .await
            .unwrap();
        let mut html = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body[..]), &mut html)
            .unwrap();
        assert!(html.contains("<h2>Tenants</h2>"), "{html}");
        let h = page.headers();
        assert_eq!(
            h[header::CONTENT_SECURITY_POLICY],
            crate::web::status_page::content_security_policy()
        );
        assert!(h[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
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
