//! End-to-end tests of the running simulator over HTTPS, with its own CA.

use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::Value;

use super::*;

pub(super) struct Fixture {
    pub(super) sim: SimHandle,
    pub(super) http: reqwest::Client,
    _dir: tempfile::TempDir,
}

pub(super) async fn start(tenants: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(SimOptions {
        tenants,
        state_dir: dir.path().to_path_buf(),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    Fixture {
        http: client(&sim),
        sim,
        _dir: dir,
    }
}

pub(super) fn client(sim: &SimHandle) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(sim.ca_pem().as_bytes()).unwrap())
        .build()
        .unwrap()
}

impl Fixture {
    pub(super) async fn token(&self, tenant: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let r = self
            .http
            .post(format!(
                "{}/{tenant}/oauth2/v2.0/token",
                self.sim.login_url()
            ))
            .form(form)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    pub(super) async fn identity_vault_token(&self) -> String {
        let (id, secret) = (
            self.sim.identity_client_id(),
            self.sim.identity_client_secret(),
        );
        let (status, body) = self
            .token(
                &self.sim.identity_tenant_id(),
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", &id),
                    ("client_secret", &secret),
                    ("scope", "https://vault.azure.net/.default"),
                ],
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    }

    pub(super) async fn refresh(&self, tenant: &str, rt: &str, scope: &str) -> (u16, Value) {
        let (id, secret) = (
            self.sim.partner_client_id(),
            self.sim.partner_client_secret(),
        );
        self.token(
            tenant,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &id),
                ("client_secret", &secret),
                ("refresh_token", rt),
                ("scope", scope),
                ("client_info", "1"),
            ],
        )
        .await
    }

    pub(super) fn seeded_rt(&self) -> String {
        self.sim.stored_secret(&self.sim.secret_name()).unwrap()
    }

    pub(super) async fn get(&self, url: String, token: Option<&str>) -> reqwest::Response {
        let mut req = self.http.get(url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }
}

pub(super) fn claims(token: &str) -> Value {
    Value::Object(jwt::claims_unverified(token).unwrap())
}

#[tokio::test]
async fn state_files_and_distinct_origins() {
    let f = start(3).await;
    let dir = f.sim.state_dir();
    assert!(std::fs::read_to_string(f.sim.ca_file())
        .unwrap()
        .contains("BEGIN CERTIFICATE"));
    let secret = std::fs::read_to_string(dir.join("partner-client-secret")).unwrap();
    assert_eq!(secret, f.sim.partner_client_secret());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for name in ["partner-client-secret", "keyvault-client-secret"] {
            let mode = std::fs::metadata(dir.join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
    }
    let mut origins = vec![
        f.sim.login_url(),
        f.sim.keyvault_url(),
        f.sim.graph_url(),
        f.sim.arm_url(),
        f.sim.partner_center_url(),
    ];
    origins.sort();
    origins.dedup();
    assert_eq!(origins.len(), 5);
    assert!(f.sim.login_url().starts_with("https://127.0.0.1:"));
    assert_eq!(f.sim.customers().len(), 3);
    let dbg = format!("{:?}", f.sim);
    assert!(!dbg.contains(&f.sim.partner_client_secret()));
    f.sim.shutdown().await;
}

#[tokio::test]
async fn keyvault_challenge_and_errors() {
    let f = start(1).await;
    let kv = f.sim.keyvault_url();
    let r = f
        .http
        .put(format!("{kv}/secrets/x?api-version=7.3"))
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"].to_str().unwrap(),
        format!(
            "Bearer authorization=\"{}/{}\", resource=\"https://vault.azure.net\"",
            f.sim.login_url(),
            f.sim.identity_tenant_id()
        )
    );
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"error":{"code":"Unauthorized","message":"AKV10000: Request is missing a Bearer or PoP token."}}"#
    );

    let token = f.identity_vault_token().await;
    let r = f
        .get(
            format!("{kv}/secrets/{SECRET_NAME}?api-version=2025-07-01"),
            Some(&token),
        )
        .await;
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["value"].as_str(), Some(f.seeded_rt().as_str()));
    assert_eq!(b["attributes"]["recoveryLevel"], "Recoverable+Purgeable");
    assert!(b["attributes"]["created"].is_i64());

    let r = f
        .get(format!("{kv}/secrets/{SECRET_NAME}"), Some(&token))
        .await;
    assert_eq!(r.status(), 400);
    let r = f
        .get(
            format!("{kv}/secrets/{SECRET_NAME}?api-version=9.9"),
            Some(&token),
        )
        .await;
    assert_eq!(r.status(), 400);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "BadParameter");

    let r = f
        .get(
            format!("{kv}/secrets/missing/abc?api-version=7.6"),
            Some(&token),
        )
        .await;
    assert_eq!(r.status(), 404);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "SecretNotFound");

    // Set twice, read by version, list versions with paging.
    let mut versions = Vec::new();
    for v in ["a", "b", "c"] {
        let r = f
            .http
            .put(format!("{kv}/secrets/paged?api-version=2025-07-01"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"value": v}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let b: Value = r.json().await.unwrap();
        versions.push(
            b["id"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_string(),
        );
        if v == "c" {
            assert_eq!(b["previousVersion"].as_str(), Some(versions[1].as_str()));
        }
    }
    let mut url = format!("{kv}/secrets/paged/versions?api-version=7.6&maxresults=2");
    let mut listed = Vec::new();
    loop {
        let b: Value = f.get(url.clone(), Some(&token)).await.json().await.unwrap();
        for item in b["value"].as_array().unwrap() {
            assert!(item.get("value").is_none());
            listed.push(
                item["id"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_string(),
            );
        }
        match b["nextLink"].as_str() {
            Some(n) => url = n.to_string(),
            None => break,
        }
    }
    assert_eq!(listed, versions);

    // Wrong audience, and a valid token for a principal without access.
    let (id, secret) = (f.sim.partner_client_id(), f.sim.partner_client_secret());
    let (_, b) = f
        .token(
            &f.sim.partner_tenant_id(),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
                ("scope", "https://vault.azure.net/.default"),
            ],
        )
        .await;
    let r = f
        .get(
            format!("{kv}/secrets/paged?api-version=7.6"),
            b["access_token"].as_str(),
        )
        .await;
    assert_eq!(r.status(), 403);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "Forbidden");
    assert_eq!(b["error"]["innererror"]["code"], "AccessDenied");

    let (_, b) = f
        .refresh(
            &f.sim.partner_tenant_id(),
            &f.seeded_rt(),
            "https://graph.microsoft.com/.default",
        )
        .await;
    let r = f
        .get(
            format!("{kv}/secrets/paged?api-version=7.6"),
            b["access_token"].as_str(),
        )
        .await;
    assert_eq!(r.status(), 401);
    let b: Value = r.json().await.unwrap();
    assert!(b["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("AKV10022: Invalid audience."));

    assert!(f.sim.request_count(Service::KeyVault, None) >= 10);
    assert!(
        f.sim
            .request_count(Service::KeyVault, Some(&f.sim.identity_tenant_id()))
            >= 8
    );
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reach_customers() {
    let f = start(5).await;
    let rt = f.seeded_rt();
    let partner = f.sim.partner_tenant_id();
    let (status, b) = f
        .refresh(&partner, &rt, "https://api.partnercenter.microsoft.com/user_impersonation offline_access openid profile")
        .await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["token_type"], "Bearer");
    assert!(b["expires_in"].is_i64() && b["ext_expires_in"].is_i64());
    let new_rt = b["refresh_token"].as_str().unwrap();
    assert_ne!(new_rt, rt);
    assert_eq!(
        b["scope"],
        "https://api.partnercenter.microsoft.com/user_impersonation openid profile offline_access"
    );
    let id = claims(b["id_token"].as_str().unwrap());
    assert_eq!(id["aud"].as_str(), Some(f.sim.partner_client_id().as_str()));
    assert_eq!(id["iss"], format!("{}/{partner}/v2.0", f.sim.login_url()));
    let info = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(b["client_info"].as_str().unwrap())
        .unwrap();
    let info: Value = serde_json::from_slice(&info).unwrap();
    assert_eq!(info["utid"].as_str(), Some(partner.as_str()));
    let at = claims(b["access_token"].as_str().unwrap());
    assert_eq!(at["aud"], "https://api.partnercenter.microsoft.com");
    assert_eq!(at["iss"], format!("https://sts.windows.net/{partner}/"));
    assert_eq!(at["scp"], "user_impersonation");
    assert_eq!(at["ver"], "1.0");

    // Partner Center paging with the continuation header.
    let pc_token = b["access_token"].as_str().unwrap().to_string();
    let mut url = format!("{}/v1/customers?size=2", f.sim.partner_center_url());
    let mut cont: Option<String> = None;
    let mut seen = Vec::new();
    loop {
        let mut req = f
            .http
            .get(&url)
            .bearer_auth(&pc_token)
            .header("MS-CorrelationId", "c-1");
        if let Some(c) = &cont {
            req = req.header("MS-ContinuationToken", c);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["ms-correlationid"], "c-1");
        assert!(r.headers().contains_key("ms-cv"));
        let b: Value = r.json().await.unwrap();
        for i in b["items"].as_array().unwrap() {
            seen.push(
                i["companyProfile"]["tenantId"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        assert_eq!(
            b["totalCount"].as_u64(),
            Some(b["items"].as_array().unwrap().len() as u64)
        );
        match b["links"].get("next") {
            Some(n) => {
                url = format!(
                    "{}{}",
                    f.sim.partner_center_url(),
                    n["uri"].as_str().unwrap()
                );
                assert_eq!(n["headers"][0]["key"], "MS-ContinuationToken");
                cont = Some(n["headers"][0]["value"].as_str().unwrap().to_string());
            }
            None => break,
        }
    }
    let expected: Vec<String> = f.sim.customers().into_iter().map(|c| c.tenant_id).collect();
    assert_eq!(seen, expected);

    // The old refresh token still works, at a customer, by domain.
    let customer = &f.sim.customers()[2];
    let (status, b) = f
        .refresh(
            &customer.domain,
            &rt,
            "https://graph.microsoft.com/.default",
        )
        .await;
    assert_eq!(status, 200, "{b}");
    let token = b["access_token"].as_str().unwrap().to_string();
    let at = claims(&token);
    assert_eq!(at["tid"].as_str(), Some(customer.tenant_id.as_str()));
    assert_eq!(at["idp"], format!("https://sts.windows.net/{partner}/"));
    let r = f
        .get(
            format!("{}/v1.0/organization", f.sim.graph_url()),
            Some(&token),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("request-id"));
    let org: Value = r.json().await.unwrap();
    assert_eq!(
        org["value"][0]["id"].as_str(),
        Some(customer.tenant_id.as_str())
    );
    assert_eq!(
        org["value"][0]["displayName"].as_str(),
        Some(customer.name.as_str())
    );
    assert_eq!(
        f.sim
            .request_count(Service::Token, Some(&customer.tenant_id)),
        1
    );
    assert_eq!(
        f.sim
            .request_count(Service::Graph, Some(&customer.tenant_id)),
        1
    );

    // ARM with the same refresh token, then a Graph token at ARM.
    let (_, b) = f
        .refresh(
            &customer.tenant_id,
            &rt,
            "https://management.azure.com//user_impersonation",
        )
        .await;
    assert_eq!(
        b["scope"],
        "https://management.azure.com//user_impersonation"
    );
    let arm = b["access_token"].as_str().unwrap().to_string();
    let r = f
        .get(
            format!("{}/subscriptions?api-version=2022-12-01", f.sim.arm_url()),
            Some(&arm),
        )
        .await;
    assert_eq!(r.status(), 200);
    let subs: Value = r.json().await.unwrap();
    for s in subs["value"].as_array().unwrap() {
        assert_eq!(s["tenantId"].as_str(), Some(customer.tenant_id.as_str()));
        assert!(s["id"].as_str().unwrap().starts_with("/subscriptions/"));
    }
    let r = f
        .get(
            format!("{}/subscriptions?api-version=2022-12-01", f.sim.arm_url()),
            Some(&token),
        )
        .await;
    assert_eq!(r.status(), 401);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "InvalidAuthenticationTokenAudience");
    let r = f
        .get(format!("{}/subscriptions", f.sim.arm_url()), Some(&arm))
        .await;
    assert_eq!(r.status(), 400);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "MissingApiVersionParameter");
}

#[tokio::test]
async fn entra_errors_match_the_catalog() {
    let f = start(2).await;
    let rt = f.seeded_rt();
    let partner = f.sim.partner_tenant_id();
    let customer = f.sim.customers()[0].tenant_id.clone();

    let (s, b) = f
        .refresh(
            "00000000-0000-0000-0000-000000000000",
            &rt,
            "https://graph.microsoft.com/.default",
        )
        .await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_tenant")));
    assert_eq!(b["error_codes"], serde_json::json!([90002]));
    assert!(b["error_description"]
        .as_str()
        .unwrap()
        .starts_with("AADSTS90002: "));
    assert!(b["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(b["error_uri"]
        .as_str()
        .unwrap()
        .ends_with("/error?code=90002"));

    let (s, b) = f
        .refresh(
            &partner,
            &rt,
            "https://graph.microsoft.com/.default https://vault.azure.net/.default",
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(b["error_codes"], serde_json::json!([28000]));

    let (s, b) = f
        .refresh(&partner, "garbage", "https://graph.microsoft.com/.default")
        .await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_grant")));

    let (s, b) = f
        .refresh(&partner, &rt, "https://graph.microsoft.com/Mail.Send")
        .await;
    assert_eq!((s, b["suberror"].as_str()), (400, Some("consent_required")));

    let id = f.sim.identity_client_id();
    let (s, b) = f
        .token(
            &customer,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", "x"),
                ("scope", "https://vault.azure.net/.default"),
            ],
        )
        .await;
    assert_eq!((s, b["error_codes"][0].as_u64()), (400, Some(700016)));

    let (s, b) = f
        .token(
            &partner,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &f.sim.identity_client_secret()),
                (
                    "scope",
                    "https://vault.azure.net/.default https://graph.microsoft.com/.default",
                ),
            ],
        )
        .await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_scope")));
    assert_eq!(b["error_codes"][0].as_u64(), Some(70011));

    // Injected faults, per tenant.
    f.sim.inject_token_error(&customer, 700082);
    let (s, b) = f
        .refresh(&customer, &rt, "https://graph.microsoft.com/.default")
        .await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(b["error_codes"], serde_json::json!([700082]));
    let (s, _) = f
        .refresh(&partner, &rt, "https://graph.microsoft.com/.default")
        .await;
    assert_eq!(s, 200);
    f.sim.inject_token_error(&customer, 7000222);
    let (s, b) = f
        .refresh(&customer, &rt, "https://graph.microsoft.com/.default")
        .await;
    assert_eq!((s, b["error"].as_str()), (401, Some("invalid_client")));
    f.sim.clear_token_error(&customer);
    let (s, _) = f
        .refresh(&customer, &rt, "https://graph.microsoft.com/.default")
        .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn basic_auth_v1_endpoint_and_discovery() {
    let f = start(1).await;
    let partner = f.sim.partner_tenant_id();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        f.sim.partner_client_id(),
        f.sim.partner_client_secret()
    ));
    let r = f
        .http
        .post(format!("{}/{partner}/oauth2/token", f.sim.login_url()))
        .header("authorization", format!("Basic {basic}"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", f.seeded_rt().as_str()),
            ("resource", "https://api.partnercenter.microsoft.com"),
            ("scope", "openid"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    for k in ["expires_in", "ext_expires_in", "expires_on", "not_before"] {
        assert!(b[k].is_string(), "{k} must be a string on v1: {b}");
    }
    assert_eq!(b["resource"], "https://api.partnercenter.microsoft.com");
    assert_eq!(b["scope"], "user_impersonation");
    assert!(b["id_token"].is_string() && b["refresh_token"].is_string());

    let domain = &f.sim.customers()[0].domain;
    let d: Value = f
        .get(
            format!(
                "{}/{domain}/v2.0/.well-known/openid-configuration",
                f.sim.login_url()
            ),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let tid = &f.sim.customers()[0].tenant_id;
    assert_eq!(d["issuer"], format!("{}/{tid}/v2.0", f.sim.login_url()));
    assert_eq!(
        d["token_endpoint"],
        format!("{}/{tid}/oauth2/v2.0/token", f.sim.login_url())
    );
    let d: Value = f
        .get(
            format!(
                "{}/organizations/v2.0/.well-known/openid-configuration",
                f.sim.login_url()
            ),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        d["issuer"],
        format!("{}/{{tenantid}}/v2.0", f.sim.login_url())
    );
    let k: Value = f
        .get(
            format!("{}/{partner}/discovery/v2.0/keys", f.sim.login_url()),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(k["keys"][0]["kty"], "RSA");
}

#[tokio::test]
async fn clock_expires_refresh_and_access_tokens() {
    let f = start(1).await;
    let rt = f.seeded_rt();
    let partner = f.sim.partner_tenant_id();
    let (_, b) = f
        .refresh(&partner, &rt, "https://graph.microsoft.com/.default")
        .await;
    let access = b["access_token"].as_str().unwrap().to_string();
    f.sim.advance_clock(Duration::from_secs(91 * 86_400));
    let (s, b) = f
        .refresh(&partner, &rt, "https://graph.microsoft.com/.default")
        .await;
    assert_eq!((s, b["error_codes"][0].as_u64()), (400, Some(700082)));
    let r = f
        .get(
            format!("{}/v1.0/organization", f.sim.graph_url()),
            Some(&access),
        )
        .await;
    assert_eq!(r.status(), 401);
    let b: Value = r.json().await.unwrap();
    assert_eq!(
        b["error"]["message"],
        "Lifetime validation failed, the token is expired."
    );
    assert!(b["error"]["innerError"]["request-id"].is_string());
}

#[tokio::test]
async fn latency_secrets_and_survives_bad_handshakes() {
    let f = start(1).await;
    // A client that is not speaking TLS must not take the server down.
    let login = f.sim.login_url();
    let addr = login.trim_start_matches("https://").to_string();
    {
        use tokio::io::AsyncWriteExt;
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
    }
    let insecure = reqwest::Client::builder().build().unwrap();
    assert!(insecure
        .get(format!(
            "{login}/common/v2.0/.well-known/openid-configuration"
        ))
        .send()
        .await
        .is_err());

    f.sim.set_latency(Duration::from_millis(250));
    let started = Instant::now();
    let r = f
        .get(
            format!("{login}/common/v2.0/.well-known/openid-configuration"),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(250));
    f.sim.set_latency(Duration::ZERO);

    let (_, b) = f
        .refresh(
            &f.sim.partner_tenant_id(),
            &f.seeded_rt(),
            "https://graph.microsoft.com/.default",
        )
        .await;
    let secrets = f.sim.issued_secrets();
    for needle in [
        f.sim.partner_client_secret(),
        f.sim.identity_client_secret(),
        f.seeded_rt(),
        b["access_token"].as_str().unwrap().to_string(),
        b["refresh_token"].as_str().unwrap().to_string(),
    ] {
        assert!(secrets.contains(&needle));
    }
}

#[tokio::test]
async fn fixed_port_gives_consecutive_ports_and_config() {
    // Find a base with five free ports; retry on the rare collision.
    for attempt in 0..10u16 {
        let base = 20_000 + (std::process::id() as u16 % 20_000) + attempt * 97;
        let dir = tempfile::tempdir().unwrap();
        let opts = SimOptions {
            tenants: 1,
            listen: format!("127.0.0.1:{base}").parse().unwrap(),
            state_dir: dir.path().to_path_buf(),
            ..SimOptions::default()
        };
        let Ok(sim) = Sim::start(opts).await else {
            continue;
        };
        assert_eq!(sim.login_url(), format!("https://127.0.0.1:{base}"));
        assert_eq!(
            sim.keyvault_url(),
            format!("https://127.0.0.1:{}", base + 1)
        );
        assert_eq!(sim.graph_url(), format!("https://127.0.0.1:{}", base + 2));
        assert_eq!(sim.arm_url(), format!("https://127.0.0.1:{}", base + 3));
        assert_eq!(
            sim.partner_center_url(),
            format!("https://127.0.0.1:{}", base + 4)
        );
        assert_eq!(
            sim.imds_url(),
            format!(
                "http://127.0.0.1:{}/metadata/identity/oauth2/token",
                base + 5
            )
        );
        assert_eq!(sim.admin_url(), format!("http://127.0.0.1:{}", base + 6));
        let cfg = dir.path().join("tw.toml");
        sim.write_config(&cfg, Some("127.0.0.1:9100")).unwrap();
        let v: toml::Value = toml::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
        assert_eq!(
            v["store"]["keyvault"]["url"].as_str(),
            Some(sim.keyvault_url().as_str())
        );
        assert_eq!(v["server"]["listen"].as_str(), Some("127.0.0.1:9100"));
        let text = std::fs::read_to_string(&cfg).unwrap();
        assert!(!text.contains(&sim.partner_client_secret()));
        sim.shutdown().await;
        return;
    }
    panic!("no free port range found");
}
