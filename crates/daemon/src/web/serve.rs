//! Serving the router under a web config: TLS (when configured), basic auth
//! and extra headers, with the file re-read when it or a certificate changes,
//! as exporter-toolkit does, so a renewed certificate needs no restart.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use tenantwatch_common::sync::lock;

use crate::config::web::WebConfig;
use crate::web::basic_auth::BasicAuth;

/// How often the files behind the config are looked at.
const RECHECK: Duration = Duration::from_secs(1);
/// A client that neither completes a handshake nor leaves must not pin a task.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// In-flight requests get this long after shutdown starts.
const DRAIN: Duration = Duration::from_secs(5);
/// Paths that stay open without credentials: probes carry no secrets and
/// kubelet cannot easily send them.
const OPEN_PATHS: [&str; 2] = ["/healthz", "/readyz"];

/// The web config file and the latest good version of it.
pub struct WebConfigSource {
    path: PathBuf,
    state: Mutex<Loaded>,
}

struct Loaded {
    config: Arc<WebConfig>,
    checked: Instant,
    last_error: Option<String>,
}

impl WebConfigSource {
    /// Starts from an already checked config loaded from `path`.
    pub fn new(path: PathBuf, config: WebConfig) -> Arc<Self> {
        Arc::new(Self {
            path,
            state: Mutex::new(Loaded {
                config: Arc::new(config),
                checked: Instant::now(),
                last_error: None,
            }),
        })
    }

    /// The config to use now; a broken edit keeps the previous one in force.
    pub fn current(&self) -> Arc<WebConfig> {
        let mut s = lock(&self.state);
        if s.checked.elapsed() >= RECHECK {
            s.checked = Instant::now();
            if s.config.is_stale() {
                match WebConfig::load(&self.path) {
                    Ok(c) => {
                        tracing::info!(path = %self.path.display(), "web config reloaded");
                        s.config = Arc::new(c);
                        s.last_error = None;
                    }
                    Err(e) => {
                        let msg = e.to_string();
                        if s.last_error.as_deref() != Some(msg.as_str()) {
                            tracing::warn!(error = %msg, "web config not reloaded; the previous one stays in force");
                            s.last_error = Some(msg);
                        }
                    }
                }
            }
        }
        s.config.clone()
    }
}

#[derive(Clone)]
struct Guard {
    source: Arc<WebConfigSource>,
    auth: Arc<BasicAuth>,
}

/// Wraps `router` with basic auth and the configured headers.
pub fn protect(router: Router, source: Arc<WebConfigSource>) -> Router {
    let guard = Guard {
        source,
        auth: Arc::new(BasicAuth::default()),
    };
    router.layer(axum::middleware::from_fn_with_state(guard, gate))
}

async fn gate(State(g): State<Guard>, req: Request, next: Next) -> Response {
    let config = g.source.current();
    let open = OPEN_PATHS.contains(&req.uri().path());
    let mut resp = if open
        || config.users.is_empty()
        || g.auth
            .check(&config.users, req.headers().get(header::AUTHORIZATION))
            .await
    {
        next.run(req).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"tenantwatch\"")],
            Body::from("Unauthorized\n"),
        )
            .into_response()
    };
    for (name, value) in &config.headers {
        resp.headers_mut().insert(name.clone(), value.clone());
    }
    resp
}

/// Serves `router` on `listener` with TLS when the config has it, until
/// `shutdown` is cancelled; then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    source: Arc<WebConfigSource>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    loop {
        let Some((tcp, peer)) =
            tenantwatch_common::accept::next_connection(&listener, &shutdown).await
        else {
            break;
        };
        let _ = tcp.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let tls = source.current().tls.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let builder = Builder::new(TokioExecutor::new());
            let result = match tls {
                None => {
                    let conn = builder.serve_connection(TokioIo::new(tcp), service);
                    watcher.watch(conn.into_owned()).await
                }
                Some(tls) => {
                    let acceptor = TlsAcceptor::from(tls);
                    let stream =
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        };
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(conn.into_owned()).await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!("open connections did not finish within {DRAIN:?}");
    }
    Ok(())
}
