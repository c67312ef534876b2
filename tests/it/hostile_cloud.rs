//! The real daemon against a hostile fake of Microsoft's cloud (not the
//! simulator): one HTTPS origin answering the token endpoint, Key Vault,
//! Partner Center and Graph the way an attacker or a broken proxy might —
//! echoing the secrets it was sent, listing tenant ids that are not ids,
//! storing values that are not refresh tokens, and sending text meant to forge
//! log lines. Each test checks what an operator would see: the log, `/metrics`,
//! `/readyz`, and what the daemon sent.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request as HttpRequest, State};
use axum::http::{header, Method, StatusCode};
use axum::response::Response;
use axum::Router;
use base64::Engine as _;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::task::JoinHandle;

use crate::helpers::*;

const PARTNER: &str = "5a1b2c3d-0000-4000-8000-00000000a001";
const APP: &str = "5a1b2c3d-0000-4000-8000-00000000c001";
const IDENTITY_APP: &str = "5a1b2c3d-0000-4000-8000-00000000c002";
const GOOD_A: &str = "6b000000-0000-4000-8000-000000000001";
const GOOD_B: &str = "6b000000-0000-4000-8000-000000000002";
const PARTNER_SECRET: &str = "pX8Q~partner-client-secret-0123456789abcd";
const IDENTITY_SECRET: &str = "iX8Q~identity-client-secret-0123456789abc";
const SECRET_NAME: &str = "tenantwatch-refresh-token";
/// A line an attacker wants in the log: a fake timestamped ERROR, coloured red.
const FORGED: &str = "\n2026-01-01T00:00:00.000000Z ERROR forged: refresh token leaked\u{1b}[31m";

/// How the fake misbehaves; tests switch these while the daemon runs.
#[derive(Default)]
struct Script {
    /// Token requests for these tenants get a 400 whose description repeats the request form.
    echo_form_for: Vec<String>,
    /// Graph answers these tenants' requests with a 400 quoting the `Authorization` header.
    quote_auth_for: Vec<String>,
    /// Key Vault answers GET with a 500 whose message contains the stored value.
    vault_500_with_value: bool,
    /// Partner Center's customers: (tenant id, company name, domain).
    customers: Vec<(String, String, String)>,
}

/// What the fake saw and issued.
#[derive(Default)]
struct Seen {
    /// The first path segment of every token request.
    token_tenants: Vec<String>,
    /// Length of every refresh token the daemon posted.
    refresh_token_lengths: Vec<usize>,
    /// Every secret the fake issued or holds, to grep the log for.
    secrets: Vec<String>,
    /// Refresh tokens it accepts.
    valid_refresh_tokens: Vec<String>,
}

#[derive(Default)]
struct Fake {
    script: Mutex<Script>,
    seen: Mutex<Seen>,
    /// Key Vault versions, oldest first: (version, value).
    vault: Mutex<Vec<(String, String)>>,
}

fn random_b64(n: usize) -> String {
    let bytes: Vec<u8> = (0..n).map(|_| rand::random::<u8>()).collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Fake {
    fn issue_refresh_token(&self) -> String {
        let rt = format!("0.AR{}*{}!x", random_b64(90), random_b64(30));
        let mut seen = self.seen.lock().unwrap();
        seen.secrets.push(rt.clone());
        seen.valid_refresh_tokens.push(rt.clone());
        rt
    }

    fn issue_access_token(&self, tenant: &str) -> String {
        let b = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let at = format!(
            "{}.{}.{}",
            b(serde_json::json!({"typ": "JWT", "alg": "RS256", "kid": random_b64(8)})),
            b(serde_json::json!({"tid": tenant, "amr": ["pwd", "mfa"], "jti": random_b64(12)})),
            random_b64(64)
        );
        self.seen.lock().unwrap().secrets.push(at.clone());
        at
    }

    fn put_version(&self, value: &str) -> String {
        let version = format!("{:032x}", rand::random::<u128>());
        self.vault
            .lock()
            .unwrap()
            .push((version.clone(), value.to_string()));
        if !value.trim().is_empty() && value.len() < 1000 {
            self.seen.lock().unwrap().secrets.push(value.to_string());
        }
        version
    }

    fn secrets(&self) -> Vec<String> {
        let mut s = self.seen.lock().unwrap().secrets.clone();
        s.push(PARTNER_SECRET.to_string());
        s.push(IDENTITY_SECRET.to_string());
        s
    }
}

fn json(status: StatusCode, v: serde_json::Value) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(
            header::DATE,
            httpdate::fmt_http_date(std::time::SystemTime::now()),
        )
        .body(Body::from(v.to_string()))
        .unwrap()
}

async fn handle(State(fake): State<Arc<Fake>>, req: HttpRequest) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = axum::body::to_bytes(req.into_body(), 32 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, segs.as_slice()) {
        (Method::POST, [tenant, "oauth2", "v2.0", "token"]) => token(&fake, tenant, &body),
        (_, ["secrets", name, rest @ ..]) if *name == SECRET_NAME => vault(&fake, rest, &body),
        (Method::GET, ["pc", "v1", "customers"]) => {
            let items: Vec<serde_json::Value> = fake
                .script
                .lock()
                .unwrap()
                .customers
                .iter()
                .map(|(id, name, domain)| {
                    serde_json::json!({"id": id, "companyProfile": {
                        "tenantId": id, "companyName": name, "domain": domain}})
                })
                .collect();
            json(
                StatusCode::OK,
                serde_json::json!({"totalCount": items.len(), "items": items, "links": {},
                    "attributes": {"objectType": "Collection"}}),
            )
        }
        (Method::GET, ["graph", "v1.0", rest @ ..]) => {
            let tid = access_token_tenant(&auth);
            if fake.script.lock().unwrap().quote_auth_for.contains(&tid) {
                return json(
                    StatusCode::BAD_REQUEST,
                    serde_json::json!({"error": {"code": "BadRequest",
                        "message": format!("Invalid header {auth} in request{FORGED}")}}),
                );
            }
            match rest {
                ["organization"] => json(
                    StatusCode::OK,
                    serde_json::json!({"value": [{"id": tid, "displayName": format!("Tenant {tid}"),
                        "verifiedDomains": [{"name": "hostile.onmicrosoft.com", "isDefault": true}]}]}),
                ),
                ["users", "$count"] => json(StatusCode::OK, serde_json::json!(3)),
                _ => json(StatusCode::OK, serde_json::json!({"value": []})),
            }
        }
        _ => json(
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": {"code": "NotFound", "message": path}}),
        ),
    }
}

/// The `tid` claim of a bearer token the fake issued.
fn access_token_tenant(auth: &str) -> String {
    let token = auth.strip_prefix("Bearer ").unwrap_or_default();
    let payload = token.split('.').nth(1).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["tid"].as_str().map(str::to_string))
        .unwrap_or_default()
}

fn token(fake: &Fake, tenant: &str, body: &[u8]) -> Response {
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let raw_form = String::from_utf8_lossy(body).to_string();
    {
        let mut seen = fake.seen.lock().unwrap();
        seen.token_tenants.push(tenant.to_string());
        if let Some(rt) = form.get("refresh_token") {
            seen.refresh_token_lengths.push(rt.len());
        }
    }
    if fake
        .script
        .lock()
        .unwrap()
        .echo_form_for
        .iter()
        .any(|t| t == tenant)
    {
        return json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"error": "invalid_request",
                "error_description": format!("AADSTS9002313: Invalid request. Request is malformed or invalid. Received: {raw_form}{FORGED}"),
                "error_codes": [9002313]}),
        );
    }
    match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => json(
            StatusCode::OK,
            serde_json::json!({"token_type": "Bearer", "expires_in": 3599,
                "access_token": fake.issue_access_token(tenant)}),
        ),
        Some("refresh_token") => {
            let rt = form.get("refresh_token").cloned().unwrap_or_default();
            if !fake.seen.lock().unwrap().valid_refresh_tokens.contains(&rt) {
                return json(
                    StatusCode::BAD_REQUEST,
                    serde_json::json!({"error": "invalid_grant",
                        "error_description": "AADSTS70008: The refresh token has expired.",
                        "error_codes": [70008]}),
                );
            }
            json(
                StatusCode::OK,
                serde_json::json!({"token_type": "Bearer", "expires_in": 3599,
                    "access_token": fake.issue_access_token(tenant),
                    "refresh_token": fake.issue_refresh_token()}),
            )
        }
        _ => json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"error": "unsupported_grant_type", "error_codes": [70003]}),
        ),
    }
}

fn vault(fake: &Fake, rest: &[&str], body: &[u8]) -> Response {
    let bundle = |version: &str, value: &str| {
        serde_json::json!({"value": value, "id": format!("https://vault/secrets/{SECRET_NAME}/{version}"),
            "attributes": {"enabled": true, "created": 1_700_000_000, "updated": 1_700_000_000},
            "tags": {}})
    };
    if !body.is_empty() {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let value = v["value"].as_str().unwrap_or_default();
        let version = fake.put_version(value);
        return json(StatusCode::OK, bundle(&version, value));
    }
    let versions = fake.vault.lock().unwrap().clone();
    let wanted = rest.first().copied().filter(|v| !v.is_empty());
    let found = match wanted {
        Some(v) => versions.iter().find(|(ver, _)| ver == v),
        None => versions.last(),
    };
    let Some((version, value)) = found else {
        return json(
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": {"code": "SecretNotFound", "message": "not found"}}),
        );
    };
    if fake.script.lock().unwrap().vault_500_with_value {
        return json(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({"error": {"code": "InternalError",
                "message": format!("could not serialize secret value {value}")}}),
        );
    }
    json(StatusCode::OK, bundle(version, value))
}

/// The fake cloud on one HTTPS origin, and a daemon config pointing at it.
struct Cloud {
    fake: Arc<Fake>,
    config: PathBuf,
    task: JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for Cloud {
    fn drop(&mut self) {
        record_secrets(&self.fake.secrets());
        self.task.abort();
    }
}

fn secret_file(dir: &Path, name: &str, value: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, value).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

impl Cloud {
    async fn start(customers: Vec<(String, String, String)>, first_value: Option<&str>) -> Cloud {
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
        let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
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
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));

        let fake = Arc::new(Fake::default());
        fake.script.lock().unwrap().customers = customers;
        let value = match first_value {
            Some(v) => v.to_string(),
            None => fake.issue_refresh_token(),
        };
        fake.put_version(&value);

        let router = Router::new().fallback(handle).with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("https://{}", listener.local_addr().unwrap());
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
        let partner_secret = secret_file(dir.path(), "partner-secret", PARTNER_SECRET);
        let identity_secret = secret_file(dir.path(), "identity-secret", IDENTITY_SECRET);
        let disabled = only_collectors(&["directory"]);
        let config = dir.path().join("tenantwatch.toml");
        std::fs::write(
            &config,
            format!(
                r#"[cloud]
name = "custom"
login = "{origin}"
graph = "{origin}/graph"
arm = "{origin}/arm"
partner_center = "{origin}/pc"
ca_file = {ca_file:?}
[partner]
tenant_id = "{PARTNER}"
client_id = "{APP}"
client_secret_file = {partner_secret:?}
[store]
kind = "keyvault"
[store.keyvault]
url = "{origin}"
secret_name = "{SECRET_NAME}"
[store.keyvault.identity]
kind = "client_secret"
tenant_id = "{PARTNER}"
client_id = "{IDENTITY_APP}"
client_secret_file = {identity_secret:?}
[server]
listen = "127.0.0.1:0"
[tenants]
sources = ["partner_center"]
schedule = "*/2 * * * * *"
[collection]
schedule = "*/2 * * * * *"
tenant_timeout = "20s"
[rotation]
enabled = false
{disabled}"#
            ),
        )
        .unwrap();
        Cloud {
            fake,
            config,
            task,
            _dir: dir,
        }
    }
}

fn good(id: &str) -> (String, String, String) {
    (
        id.to_string(),
        format!("Customer {id}"),
        "customer.onmicrosoft.com".to_string(),
    )
}

fn up(m: &str, id: &str) -> Option<f64> {
    sample(m, &format!("tenantwatch_tenant_up{{tenant_id=\"{id}\"}}"))
}

/// Every secret the fake issued or holds, and every line forged from outside,
/// must be absent from `log`; at least one redaction must have happened.
fn assert_clean(log: &str, fake: &Fake, what: &str) {
    for s in fake.secrets() {
        assert!(
            !log.contains(&s),
            "{what}: a secret appears in the log:\n{log}"
        );
        let encoded: String = url::form_urlencoded::byte_serialize(s.as_bytes()).collect();
        assert!(
            !log.contains(&encoded),
            "{what}: a secret appears percent-encoded:\n{log}"
        );
    }
    assert!(
        !log.contains('\u{1b}'),
        "{what}: an escape sequence reached the log"
    );
    for line in log.lines() {
        assert!(
            !line.starts_with("2026-01-01T00:00:00"),
            "{what}: a forged line: {line:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_echoed_by_upstream_never_reach_the_log_in_either_format() {
    for format in ["text", "json"] {
        let cloud = Cloud::start(vec![good(GOOD_A), good(GOOD_B)], None).await;
        {
            let mut s = cloud.fake.script.lock().unwrap();
            // GOOD_A's token requests are echoed with the form (refresh token,
            // client secret); Graph quotes GOOD_B's bearer token back.
            s.echo_form_for = vec![GOOD_A.to_string()];
            s.quote_auth_for = vec![GOOD_B.to_string()];
        }
        let d = spawn_daemon(&cloud.config, &[("TENANTWATCH__LOG__FORMAT", format)]).await;
        wait_for(d.addr, Duration::from_secs(60), "both failures seen", |m| {
            up(m, GOOD_A) == Some(0.0) && up(m, GOOD_B) == Some(0.0)
        })
        .await;
        // Now Key Vault fails with the stored value in its message.
        cloud.fake.script.lock().unwrap().vault_500_with_value = true;
        wait_for(d.addr, Duration::from_secs(30), "store unreadable", |m| {
            sample(m, "tenantwatch_refresh_token_store_up") == Some(0.0)
        })
        .await;
        let log = d.log();
        // The failures were logged (so the test exercised the paths)…
        assert!(
            log.contains("AADSTS9002313"),
            "{format}: echo not logged:\n{log}"
        );
        assert!(
            log.contains("Invalid header"),
            "{format}: quote not logged:\n{log}"
        );
        assert!(
            log.contains("could not serialize secret value"),
            "{format}:\n{log}"
        );
        assert!(
            log.contains("[REDACTED]"),
            "{format}: nothing redacted:\n{log}"
        );
        // …and none of what they carried came through.
        assert_clean(&log, &cloud.fake, format);
        let (_, page) = get(d.addr, "/").await;
        let (_, metrics) = get(d.addr, "/metrics").await;
        for s in cloud.fake.secrets() {
            assert!(
                !page.contains(&s) && !metrics.contains(&s),
                "{format}: secret on / or /metrics"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_ids_that_are_not_ids_are_dropped_counted_and_logged_once() {
    let partner_escape = format!("../{PARTNER}");
    let url_escape = format!("{GOOD_A}/oauth2/v2.0/token?x=");
    let mut customers = vec![good(GOOD_A), good(GOOD_B)];
    for bad in [
        partner_escape.as_str(),
        url_escape.as_str(),
        "common",
        "organizations",
        "",
        "evil tenant",
        "6b000000-0000-4000-8000-000000000009\nERROR forged-id",
    ] {
        customers.push((bad.to_string(), "Bad".into(), "bad.example".into()));
    }
    // The partner's own tenant listed as a customer, and a customer whose
    // name and domain are hostile text.
    customers.push((PARTNER.to_string(), "Us".into(), "partner.example".into()));
    customers.push((
        "6b000000-0000-4000-8000-000000000003".into(),
        format!("Contoso{FORGED}"),
        "not a domain\n".into(),
    ));
    let cloud = Cloud::start(customers, None).await;
    let d = spawn_daemon(&cloud.config, &[]).await;
    let m = wait_for(
        d.addr,
        Duration::from_secs(60),
        "the good tenants up",
        |m| up(m, GOOD_A) == Some(1.0) && up(m, GOOD_B) == Some(1.0),
    )
    .await;
    let rejected = |reason: &str| {
        sample(
            &m,
            &format!("tenantwatch_discovery_rejected_total{{reason=\"{reason}\",source=\"partner_center\"}}"),
        )
    };
    // Discovery runs every 2 s: each run counts its rejections again.
    assert!(rejected("not_a_tenant_id").unwrap_or(0.0) >= 7.0, "{m}");
    assert!(rejected("partner_tenant").unwrap_or(0.0) >= 1.0, "{m}");
    assert!(rejected("invalid_domain").unwrap_or(0.0) >= 1.0, "{m}");
    // Only real ids were sent to Entra: the partner's (its own tokens) and the customers'.
    let sent: std::collections::BTreeSet<String> = cloud
        .fake
        .seen
        .lock()
        .unwrap()
        .token_tenants
        .iter()
        .cloned()
        .collect();
    let allowed: std::collections::BTreeSet<String> = [
        PARTNER,
        GOOD_A,
        GOOD_B,
        "6b000000-0000-4000-8000-000000000003",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert!(
        sent.is_subset(&allowed),
        "sent to the token endpoint: {sent:?}"
    );
    // Only the real customers are exported; the hostile name is cleaned.
    for t in m
        .lines()
        .filter(|l| l.starts_with("tenantwatch_tenant_up{"))
    {
        assert!(
            t.contains(GOOD_A)
                || t.contains(GOOD_B)
                || t.contains("6b000000-0000-4000-8000-000000000003"),
            "{t}"
        );
    }
    assert!(!m.contains("\u{1b}"), "escape in /metrics");
    // Wait for a few more discoveries: each bad value is still logged once.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let log = d.log();
    assert_eq!(
        log.matches("discovery listed a value that is not used")
            .count(),
        9,
        "7 bad ids, the partner's own, one bad domain, each once:\n{log}"
    );
    assert!(
        log.contains("evil tenant") && log.contains("forged-id"),
        "{log}"
    );
    assert_clean(&log, &cloud.fake, "ids");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_vault_value_at_start_is_not_ready_until_a_usable_one_appears() {
    let cloud = Cloud::start(vec![good(GOOD_A)], Some("")).await;
    let d = spawn_daemon(&cloud.config, &[]).await;
    wait_for(d.addr, Duration::from_secs(30), "store_up 0", |m| {
        sample(m, "tenantwatch_refresh_token_store_up") == Some(0.0)
    })
    .await;
    // Several discoveries later it is still not ready, and nothing was redeemed.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(get(d.addr, "/readyz").await.0, 503);
    assert!(cloud
        .fake
        .seen
        .lock()
        .unwrap()
        .refresh_token_lengths
        .is_empty());
    assert!(
        d.log()
            .contains("is not a usable refresh token (it is empty)"),
        "{}",
        d.log()
    );
    // A usable token appears (a new consent): the next discovery picks it up.
    let rt = cloud.fake.issue_refresh_token();
    cloud.fake.put_version(&rt);
    wait_ready(d.addr, Duration::from_secs(60)).await;
    let m = wait_for(d.addr, Duration::from_secs(30), "tenant up", |m| {
        up(m, GOOD_A) == Some(1.0)
    })
    .await;
    assert_eq!(sample(&m, "tenantwatch_refresh_token_store_up"), Some(1.0));
    assert_clean(&d.log(), &cloud.fake, "empty at start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_vault_versions_never_replace_the_token_in_use() {
    let cloud = Cloud::start(vec![good(GOOD_A)], None).await;
    let d = spawn_daemon(&cloud.config, &[]).await;
    wait_for(d.addr, Duration::from_secs(60), "tenant up", |m| {
        up(m, GOOD_A) == Some(1.0) && sample(m, "tenantwatch_refresh_token_valid") == Some(1.0)
    })
    .await;
    let huge = "A".repeat(10 * 1024 * 1024);
    for bad in ["", "not a token\n", huge.as_str()] {
        cloud.fake.put_version(bad);
        let m = wait_for(d.addr, Duration::from_secs(30), "store_up 0", |m| {
            sample(m, "tenantwatch_refresh_token_store_up") == Some(0.0)
        })
        .await;
        // The token in use goes on working, and is still the one reported valid.
        assert_eq!(sample(&m, "tenantwatch_refresh_token_valid"), Some(1.0));
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (_, m) = get(d.addr, "/metrics").await;
        assert_eq!(up(&m, GOOD_A), Some(1.0), "{m}");
        assert_eq!(get(d.addr, "/readyz").await.0, 200);
        // Back to a good latest version before the next value.
        let rt = cloud.fake.issue_refresh_token();
        cloud.fake.put_version(&rt);
        wait_for(d.addr, Duration::from_secs(30), "store_up 1", |m| {
            sample(m, "tenantwatch_refresh_token_store_up") == Some(1.0)
        })
        .await;
    }
    let lengths = cloud
        .fake
        .seen
        .lock()
        .unwrap()
        .refresh_token_lengths
        .clone();
    assert!(!lengths.is_empty());
    assert!(
        lengths.iter().all(|l| *l > 0 && *l <= 16 * 1024),
        "refresh tokens posted to Entra: {lengths:?}"
    );
    let log = d.log();
    assert!(log.contains("it is larger than 16 KiB"), "{log}");
    assert!(log.contains("it holds spaces, control characters"), "{log}");
    assert_clean(&log, &cloud.fake, "garbage versions");
}
