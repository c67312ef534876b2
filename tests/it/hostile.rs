//! Hostile responses over real HTTPS: a local server answers Graph, ARM,
//! Partner Center, token and Key Vault requests with a 50 MiB body (with and
//! without `Content-Length`), truncated JSON, wrong-typed JSON and HTML error
//! pages. The library clients the daemon uses must return a typed error naming
//! the API and the tenant, and must stop reading at the body cap while the
//! body is still streaming.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request as HttpRequest, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::Router;
use futures::StreamExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tenantwatch_daemon::auth::entra::TokenClient;
use tenantwatch_daemon::auth::identity::IdentitySource;
use tenantwatch_daemon::config::credential::ClientCredential;
use tenantwatch_daemon::config::ApiLimits;
use tenantwatch_daemon::config::PartnerApp;
use tenantwatch_daemon::metrics::Metrics;
use tenantwatch_daemon::outbound::client::{ApiError, MAX_BODY_BYTES};
use tenantwatch_daemon::outbound::request::{ApiClient, Request};
use tenantwatch_daemon::store::keyvault::{KeyVaultClient, KeyVaultError};
use tenantwatch_daemon::support::secret::SecretString;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use url::Url;

/// The tenant every request is made for; every error must name it.
/// (A GUID: the token client sends nothing for a tenant that is not one.)
const TENANT: &str = "7f3a0c1e-5b2d-4e8f-9a6c-1d2e3f4a5b6c";
const HUGE: u64 = 50 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;

/// What the server answers; the first path segment of the request picks it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    HugeWithLength,
    HugeChunked,
    Truncated,
    WrongType,
    Html502,
    Html200,
}

impl Kind {
    const ALL: [Kind; 6] = [
        Kind::HugeWithLength,
        Kind::HugeChunked,
        Kind::Truncated,
        Kind::WrongType,
        Kind::Html502,
        Kind::Html200,
    ];

    fn path(self) -> &'static str {
        match self {
            Kind::HugeWithLength => "huge-length",
            Kind::HugeChunked => "huge-chunked",
            Kind::Truncated => "truncated",
            Kind::WrongType => "wrong-type",
            Kind::Html502 => "html-502",
            Kind::Html200 => "html-200",
        }
    }

    fn huge(self) -> bool {
        matches!(self, Kind::HugeWithLength | Kind::HugeChunked)
    }
}

/// Reports how many body bytes a huge response produced once hyper drops it.
struct Sent {
    bytes: Arc<AtomicU64>,
    tx: mpsc::UnboundedSender<u64>,
}

impl Drop for Sent {
    fn drop(&mut self) {
        let _ = self.tx.send(self.bytes.load(Ordering::SeqCst));
    }
}

async fn respond(State(tx): State<mpsc::UnboundedSender<u64>>, req: HttpRequest) -> Response {
    let first = req.uri().path().trim_start_matches('/');
    let first = first.split('/').next().unwrap_or_default();
    if first == "token-ok" {
        return json(
            StatusCode::OK,
            r#"{"token_type":"Bearer","expires_in":3599,"access_token":"kv-token"}"#,
        );
    }
    if first == "endless" {
        // A Partner Center page whose next link is itself, for ever.
        return json(
            StatusCode::OK,
            r#"{"items":[],"links":{"next":{"uri":"/endless/v1/customers?seekOperation=Next","headers":[{"key":"MS-ContinuationToken","value":"again"}]}}}"#,
        );
    }
    if first == "foreign-next" {
        // Next-page links to another host, in Graph's and Partner Center's shapes.
        return json(
            StatusCode::OK,
            r#"{"value":[],"@odata.nextLink":"https://collector.invalid/steal",
                "items":[],"links":{"next":{"uri":"https://collector.invalid/v1/customers"}}}"#,
        );
    }
    let kind = Kind::ALL.into_iter().find(|k| k.path() == first);
    match kind {
        Some(k) if k.huge() => {
            let sent = Sent {
                bytes: Arc::new(AtomicU64::new(0)),
                tx,
            };
            // Whitespace is a valid JSON prefix: only the cap can stop the client.
            let chunk = Bytes::from(vec![b' '; CHUNK]);
            let stream = futures::stream::iter(0..HUGE / CHUNK as u64).map(move |_| {
                sent.bytes.fetch_add(CHUNK as u64, Ordering::SeqCst);
                Ok::<_, Infallible>(chunk.clone())
            });
            let mut b = Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/json");
            if k == Kind::HugeWithLength {
                b = b.header(header::CONTENT_LENGTH, HUGE);
            }
            b.body(Body::from_stream(stream)).unwrap()
        }
        Some(Kind::Truncated) => json(
            StatusCode::OK,
            r#"{"value":[{"id":"a","displayName":"x"},{"id":"b","displ"#,
        ),
        // One body wrong for every parser: `value` is a number, `id` an array,
        // `access_token` a number, `expires_in` not a number.
        Some(Kind::WrongType) => json(
            StatusCode::OK,
            r#"{"value":7,"id":[],"access_token":7,"expires_in":"soon","items":{},"data":"x"}"#,
        ),
        Some(Kind::Html502) => html(StatusCode::BAD_GATEWAY),
        Some(Kind::Html200) => html(StatusCode::OK),
        _ => json(StatusCode::NOT_FOUND, r#"{"error":{"code":"NotFound"}}"#),
    }
}

fn json(status: StatusCode, body: &'static str) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap()
}

fn html(status: StatusCode) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html")
        .body(Body::from(
            "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>\
             <body><h1>Bad Gateway</h1><p>The proxy received an invalid response.</p></body></html>",
        ))
        .unwrap()
}

/// The server, the CA file clients trust, and the byte counts of huge bodies.
struct Server {
    base: String,
    ca_file: PathBuf,
    sent: mpsc::UnboundedReceiver<u64>,
    task: JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    async fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca_cert.pem()).unwrap();

        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(leaf_cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

        let (tx, sent) = mpsc::unbounded_channel();
        let router = Router::new().fallback(respond).with_state(tx);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("https://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, router) = (acceptor.clone(), router.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), TowerToHyperService::new(router))
                        .await;
                });
            }
        });
        Server {
            base,
            ca_file,
            sent,
            task,
            _dir: dir,
        }
    }

    fn url(&self, kind: &str, rest: &str) -> String {
        format!("{}/{kind}/{rest}", self.base)
    }

    /// Bytes the last huge body produced before the client hung up. If the
    /// client read the whole body before checking the cap, this would be 50 MiB.
    async fn sent_bytes(&mut self) -> u64 {
        tokio::time::timeout(Duration::from_secs(60), self.sent.recv())
            .await
            .expect("the server drops a huge body once the client hangs up")
            .expect("server running")
    }

    fn http(&self) -> reqwest::Client {
        tenantwatch_daemon::outbound::client::build_client(
            Some(&self.ca_file),
            std::time::Duration::from_secs(60),
        )
        .unwrap()
    }
}

fn app() -> PartnerApp {
    PartnerApp {
        tenant_id: TENANT.to_string(),
        client_id: "00000000-0000-0000-0000-0000000000c1".to_string(),
        credential: ClientCredential::Secret(SecretString::from("client-secret".to_string())),
    }
}

/// Checks the error a hostile body of `kind` must give, then (for huge bodies)
/// that the client stopped reading near the cap rather than at the end.
async fn check_api_error(server: &mut Server, kind: Kind, api: &str, e: &ApiError) {
    let text = e.to_string();
    assert!(
        text.starts_with(api) && text.contains(&format!("(tenant {TENANT})")),
        "{kind:?}: error does not name {api} and the tenant: {text}"
    );
    match kind {
        Kind::HugeWithLength | Kind::HugeChunked => {
            assert!(
                matches!(e, ApiError::TooLarge { limit, .. } if *limit == MAX_BODY_BYTES),
                "{kind:?}: {e:?}"
            );
            let sent = server.sent_bytes().await;
            assert!(
                sent < HUGE - HUGE / 4,
                "{kind:?}: the server streamed {sent} bytes before the client hung up; the cap is {MAX_BODY_BYTES}"
            );
        }
        Kind::Truncated | Kind::WrongType | Kind::Html200 => {
            assert!(matches!(e, ApiError::Decode { .. }), "{kind:?}: {e:?}")
        }
        Kind::Html502 => assert!(
            matches!(e, ApiError::Status { status: 502, .. }),
            "{kind:?}: {e:?}"
        ),
    }
}

fn api_client(server: &Server) -> ApiClient {
    let limits = ApiLimits {
        // One attempt: a 502 would otherwise be retried with backoff.
        attempts: 1,
        ..ApiLimits::default()
    };
    let metrics = Metrics::new().unwrap();
    let partner = metrics.partner("default");
    ApiClient::new(server.http(), metrics, limits, partner)
}

#[tokio::test]
async fn graph_and_arm_pages_give_typed_errors_and_stop_at_the_cap() {
    let mut server = Server::start().await;
    let api = api_client(&server);
    let bearer = SecretString::from("bearer".to_string());
    for kind in Kind::ALL {
        for (label, path) in [
            ("graph", "v1.0/organization"),
            ("arm", "subscriptions?api-version=2022-12-01"),
        ] {
            let req = Request::get(label, TENANT, server.url(kind.path(), path), &bearer);
            let e = api
                .get_all::<serde_json::Value>(req)
                .await
                .expect_err("a hostile page is an error");
            check_api_error(&mut server, kind, label, &e).await;
        }
    }
}

#[tokio::test]
async fn partner_center_customers_give_typed_errors_and_stop_at_the_cap() {
    let mut server = Server::start().await;
    let api = api_client(&server);
    let bearer = SecretString::from("bearer".to_string());
    for kind in Kind::ALL {
        let base = Url::parse(&server.url(kind.path(), "")).unwrap();
        let e = tenantwatch_daemon::outbound::partner_center::list_customers(
            &api, TENANT, &base, &bearer,
        )
        .await
        .expect_err("a hostile page is an error");
        // `items: {}` in the wrong-typed body is what fails here.
        check_api_error(&mut server, kind, "partner_center", &e).await;
    }
}

#[tokio::test]
async fn key_vault_gives_typed_errors_and_stops_at_the_cap() {
    let mut server = Server::start().await;
    let http = server.http();
    let metrics = Metrics::new().unwrap();
    let tokens = TokenClient::new(
        http.clone(),
        Url::parse(&server.url("token-ok", "")).unwrap(),
        metrics,
        "default",
    );
    for kind in Kind::ALL {
        let vault = KeyVaultClient::new(
            http.clone(),
            Url::parse(&server.url(kind.path(), "")).unwrap(),
            IdentitySource::App {
                tokens: tokens.clone(),
                app: app(),
            },
            "https://vault.azure.net",
        );
        match vault.get_secret("refresh-token", None).await {
            Err(KeyVaultError::Api(e)) => check_api_error(&mut server, kind, "keyvault", &e).await,
            other => panic!("{kind:?}: expected a Key Vault API error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn token_endpoint_gives_typed_errors_and_stops_at_the_cap() {
    let mut server = Server::start().await;
    let http = server.http();
    let refresh = SecretString::from("refresh-token".to_string());
    for kind in Kind::ALL {
        let tokens = TokenClient::new(
            http.clone(),
            Url::parse(&server.url(kind.path(), "")).unwrap(),
            Metrics::new().unwrap(),
            "default",
        );
        let e = tokens
            .redeem_refresh_token(
                &app(),
                TENANT,
                "https://graph.microsoft.com/.default",
                "graph",
                &refresh,
            )
            .await
            .expect_err("a hostile token response is an error");
        assert_eq!(e.tenant, TENANT, "{kind:?}");
        assert!(e.to_string().contains(TENANT), "{kind:?}: {e}");
        match kind {
            Kind::HugeWithLength | Kind::HugeChunked => {
                assert!(e.detail.contains("larger than"), "{kind:?}: {e}");
                let sent = server.sent_bytes().await;
                assert!(sent < HUGE - HUGE / 4, "{kind:?}: streamed {sent} bytes");
            }
            Kind::Truncated | Kind::WrongType | Kind::Html200 => {
                assert_eq!(e.status, Some(200), "{kind:?}");
                assert!(
                    e.detail.starts_with("unexpected token response"),
                    "{kind:?}: {e}"
                );
            }
            Kind::Html502 => {
                assert_eq!(e.status, Some(502), "{kind:?}");
                assert_eq!(e.class.as_str(), "transient", "{kind:?}");
            }
        }
    }
}

/// Partner Center paging stops at `collection.max_pages` like every other list
/// (it used to follow up to a fixed 1,000 pages whatever the setting).
#[tokio::test]
async fn partner_center_paging_stops_at_max_pages() {
    let server = Server::start().await;
    let metrics = Metrics::new().unwrap();
    let api = ApiClient::new(
        server.http(),
        metrics.clone(),
        ApiLimits {
            max_pages: 3,
            ..ApiLimits::default()
        },
        metrics.partner("default"),
    );
    let bearer = SecretString::from("bearer".to_string());
    let base = Url::parse(&server.url("endless", "")).unwrap();
    let e =
        tenantwatch_daemon::outbound::partner_center::list_customers(&api, TENANT, &base, &bearer)
            .await
            .unwrap_err();
    assert!(matches!(e, ApiError::TooManyPages { max: 3, .. }), "{e:?}");
}

#[tokio::test]
async fn next_links_to_another_host_are_not_followed() {
    let server = Server::start().await;
    let api = api_client(&server);
    let bearer = SecretString::from("bearer".to_string());
    let req = Request::get(
        "graph",
        TENANT,
        server.url("foreign-next", "v1.0/organization"),
        &bearer,
    );
    let e = api.get_all::<serde_json::Value>(req).await.unwrap_err();
    assert!(
        matches!(e, ApiError::ForeignNextLink { ref link, .. } if link == "https://collector.invalid/steal"),
        "{e:?}"
    );
    assert!(e.to_string().contains(TENANT), "{e}");

    let base = Url::parse(&server.url("foreign-next", "")).unwrap();
    let e =
        tenantwatch_daemon::outbound::partner_center::list_customers(&api, TENANT, &base, &bearer)
            .await
            .unwrap_err();
    assert!(matches!(e, ApiError::ForeignNextLink { .. }), "{e:?}");
    assert!(e.to_string().starts_with("partner_center"), "{e}");
}
