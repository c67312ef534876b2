//! The web config in force: the file re-read when it or a certificate
//! changes, as exporter-toolkit does, so a renewed certificate needs no
//! restart, and replaced whole (or added, or removed) by a configuration
//! reload; and the layer that applies its basic auth and extra headers.
//! `server::serve` takes its TLS config for each new connection.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;

use tenantwatch_common::sync::lock;

use crate::config::web::WebConfig;
use crate::web::basic_auth::BasicAuth;

/// How often the files behind the config are looked at.
const RECHECK: Duration = Duration::from_secs(1);
/// Paths that stay open without credentials: probes carry no secrets and
/// kubelet cannot easily send them.
const OPEN_PATHS: [&str; 2] = ["/healthz", "/readyz"];

/// The web config file and the latest good version of it, or none (plain
/// HTTP, no auth). A configuration reload replaces it whole.
pub struct WebConfigSource {
    state: Mutex<Option<Loaded>>,
}

struct Loaded {
    path: PathBuf,
    config: Arc<WebConfig>,
    checked: Instant,
    last_error: Option<String>,
}

impl WebConfigSource {
    /// Starts from an already checked config loaded from its path, or none.
    pub fn new(web: Option<(PathBuf, WebConfig)>) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(web.map(Loaded::new)),
        })
    }

    /// Puts another (already checked) config in force, or none; new
    /// connections and requests get it.
    pub fn replace(&self, web: Option<(PathBuf, WebConfig)>) {
        *lock(&self.state) = web.map(Loaded::new);
    }

    /// The config to use now; a broken edit keeps the previous one in force.
    pub fn current(&self) -> Option<Arc<WebConfig>> {
        let mut guard = lock(&self.state);
        let s = guard.as_mut()?;
        if s.checked.elapsed() >= RECHECK {
            s.checked = Instant::now();
            if s.config.is_stale() {
                match WebConfig::load(&s.path) {
                    Ok(c) => {
                        tracing::info!(path = %s.path.display(), "web config reloaded");
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
        Some(s.config.clone())
    }
}

impl Loaded {
    fn new((path, config): (PathBuf, WebConfig)) -> Self {
        Self {
            path,
            config: Arc::new(config),
            checked: Instant::now(),
            last_error: None,
        }
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
    let Some(config) = g.source.current() else {
        return next.run(req).await;
    };
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
