//! End-to-end tests of the consent flows, client assertions, managed
//! identity, faults and the admin API, over real HTTP(S).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::*;
use crate::tests::{claims, start, Fixture};

const PC_SCOPE: &str = "https://api.partnercenter.microsoft.com/user_impersonation";
const VAULT_SCOPE: &str = "https://vault.azure.net/.default";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

fn no_redirects(sim: &SimHandle) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(sim.ca_pem().as_bytes()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Runs `/authorize` for the partner app and returns the redirect's query.
async fn authorize(f: &Fixture, extra: &[(&str, &str)]) -> (u16, HashMap<String, String>, String) {
    let mut q: Vec<(&str, String)> = vec![
        ("client_id", f.sim.partner_client_id()),
        ("response_type", "code".into()),
        ("redirect_uri", "http://localhost:8400/cb".into()),
        ("scope", format!("{PC_SCOPE} offline_access openid profile")),
        ("state", "st-1".into()),
        ("nonce", "n-1".into()),
        ("code_challenge", challenge(VERIFIER)),
        ("code_challenge_method", "S256".into()),
    ];
    for (k, v) in extra {
        q.retain(|(key, _)| key != k);
        q.push((k, v.to_string()));
    }
    let r = no_redirects(&f.sim)
        .get(format!(
            "{}/{}/oauth2/v2.0/authorize",
            f.sim.login_url(),
            f.sim.partner_tenant_id()
        ))
        .query(&q)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let params = url::Url::parse(&location)
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default();
    (status, params, r.text().await.unwrap())
}

async fn redeem_code(f: &Fixture, code: &str, verifier: &str, redirect: &str) -> (u16, Value) {
    let (id, secret) = (f.sim.partner_client_id(), f.sim.partner_client_secret());
    f.token(
        &f.sim.partner_tenant_id(),
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &id),
            ("client_secret", &secret),
            ("code", code),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
            ("scope", &format!("{PC_SCOPE} offline_access openid")),
        ],
    )
    .await
}

#[tokio::test]
async fn auth_code_pkce_issues_a_fresh_lineage_that_survives_revocation() {
    let f = start(2).await;
    let (status, q, _) = authorize(&f, &[]).await;
    assert_eq!(status, 302);
    assert_eq!(q["state"], "st-1");
    assert!(q.contains_key("session_state"));
    let code = q["code"].clone();

    // Revoke first: everything issued so far dies, the new consent does not.
    let seeded = f.seeded_rt();
    assert!(f.sim.refresh_token_valid(&seeded));
    f.sim.revoke_refresh_tokens();
    assert!(!f.sim.refresh_token_valid(&seeded));
    let (s, b) = f
        .refresh(&f.sim.partner_tenant_id(), &seeded, PC_SCOPE)
        .await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(b["error_codes"], json!([50173]));

    let (s, b) = redeem_code(&f, &code, VERIFIER, "http://localhost:8400/cb").await;
    assert_eq!(s, 200, "{b}");
    let rt = b["refresh_token"].as_str().unwrap().to_string();
    assert!(f.sim.refresh_token_valid(&rt));
    assert_eq!(claims(b["id_token"].as_str().unwrap())["nonce"], "n-1");
    assert_eq!(claims(b["access_token"].as_str().unwrap())["appidacr"], "1");
    let customer = f.sim.customers()[0].tenant_id.clone();
    let (s, b) = f
        .refresh(&customer, &rt, "https://graph.microsoft.com/.default")
        .await;
    assert_eq!(s, 200, "{b}");

    // Single use.
    let (s, b) = redeem_code(&f, &code, VERIFIER, "http://localhost:8400/cb").await;
    assert_eq!((s, b["error_codes"][0].as_u64()), (400, Some(54005)));
}

#[tokio::test]
async fn auth_code_refusals() {
    let f = start(1).await;
    let cb = "http://localhost:8400/cb";
    // Wrong verifier, wrong redirect URI, expiry after ten minutes of sim time.
    let (_, q, _) = authorize(&f, &[]).await;
    let (s, b) = redeem_code(&f, &q["code"], "x".repeat(43).as_str(), cb).await;
    assert_eq!((s, b["error_codes"][0].as_u64()), (400, Some(501481)));
    assert_eq!(b["error"], "invalid_grant");
    let (s, b) = redeem_code(&f, &q["code"], VERIFIER, "http://localhost:9/other").await;
    assert_eq!((s, b["error_codes"][0].as_u64()), (400, Some(500112)));
    f.sim.advance_clock(Duration::from_secs(601));
    let (s, b) = redeem_code(&f, &q["code"], VERIFIER, cb).await;
    assert_eq!((s, b["error_codes"][0].as_u64()), (400, Some(70008)));

    // Errors before the redirect URI is trusted are a page, not a redirect.
    let (s, _, page) = authorize(&f, &[("redirect_uri", "https://evil.example/")]).await;
    assert_eq!(s, 400);
    assert!(page.contains("AADSTS50011"), "{page}");
    let (s, _, page) =
        authorize(&f, &[("client_id", "00000000-0000-0000-0000-000000000009")]).await;
    assert_eq!(s, 400);
    assert!(page.contains("AADSTS700016"), "{page}");
    // Later ones go back to the app.
    let (s, q, _) = authorize(&f, &[("scope", "https://nope.example/.default")]).await;
    assert_eq!(s, 302);
    assert_eq!(q["error"], "invalid_resource");
    assert!(q["error_description"].starts_with("AADSTS500011"));
    assert_eq!(q["state"], "st-1");
    let (s, q, _) = authorize(&f, &[("response_type", "token")]).await;
    assert_eq!((s, q["error"].as_str()), (302, "unsupported_response_type"));

    // 127.0.0.1 on any port is registered too; plain PKCE works.
    let (s, q, _) = authorize(
        &f,
        &[
            ("redirect_uri", "http://127.0.0.1:5555"),
            ("code_challenge", VERIFIER),
            ("code_challenge_method", "plain"),
        ],
    )
    .await;
    assert_eq!(s, 302);
    let (s, b) = redeem_code(&f, &q["code"], VERIFIER, "http://127.0.0.1:5555").await;
    assert_eq!(s, 200, "{b}");
}

async fn start_device(f: &Fixture) -> Value {
    let r = f
        .http
        .post(format!(
            "{}/{}/oauth2/v2.0/devicecode",
            f.sim.login_url(),
            f.sim.partner_tenant_id()
        ))
        .form(&[
            ("client_id", f.sim.partner_client_id().as_str()),
            (
                "scope",
                &format!("{PC_SCOPE} offline_access openid profile"),
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn poll(f: &Fixture, device_code: &str) -> (u16, Value) {
    f.token(
        &f.sim.partner_tenant_id(),
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", &f.sim.partner_client_id()),
            ("device_code", device_code),
        ],
    )
    .await
}

#[tokio::test]
async fn device_code_flow_end_to_end() {
    let f = start(1).await;
    let d = start_device(&f).await;
    let (user_code, device_code) = (
        d["user_code"].as_str().unwrap().to_string(),
        d["device_code"].as_str().unwrap().to_string(),
    );
    assert_eq!(
        d["verification_uri"],
        format!("{}/devicelogin", f.sim.login_url())
    );
    assert_eq!(
        (d["expires_in"].as_i64(), d["interval"].as_i64()),
        (Some(900), Some(1))
    );
    assert!(d["message"]
        .as_str()
        .unwrap()
        .starts_with("To sign in, use a web browser to open the page "));

    let (s, b) = poll(&f, &device_code).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("authorization_pending"))
    );
    assert_eq!(b["error_codes"], json!([70016]));

    // The admin enters the code at the verification page.
    let r = f
        .http
        .post(d["verification_uri"].as_str().unwrap())
        .form(&[("otc", user_code.to_lowercase())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (s, b) = poll(&f, &device_code).await;
    assert_eq!(s, 200, "{b}");
    let rt = b["refresh_token"].as_str().unwrap();
    assert_eq!(claims(b["access_token"].as_str().unwrap())["appidacr"], "0");
    // A public-client refresh token needs no secret to redeem.
    let (s, b) = f
        .token(
            &f.sim.partner_tenant_id(),
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &f.sim.partner_client_id()),
                ("refresh_token", rt),
                ("scope", PC_SCOPE),
            ],
        )
        .await;
    assert_eq!(s, 200, "{b}");
    // But the seeded (confidential) one does.
    let (s, b) = f
        .token(
            &f.sim.partner_tenant_id(),
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &f.sim.partner_client_id()),
                ("refresh_token", &f.seeded_rt()),
                ("scope", PC_SCOPE),
            ],
        )
        .await;
    assert_eq!((s, b["error_codes"][0].as_u64()), (401, Some(7000218)));
}

#[tokio::test]
async fn device_code_declined_expired_and_unknown() {
    let f = start(1).await;
    // Polled twice at once: slow down (and the interval grows).
    let d = start_device(&f).await;
    assert_eq!(
        poll(&f, d["device_code"].as_str().unwrap()).await.1["error"],
        "authorization_pending"
    );
    let (s, b) = poll(&f, d["device_code"].as_str().unwrap()).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("slow_down")));
    assert!(b["error_description"]
        .as_str()
        .unwrap()
        .contains("6 seconds"));

    let d = start_device(&f).await;
    assert!(f.sim.deny_device_code(d["user_code"].as_str().unwrap()));
    assert!(!f.sim.approve_device_code(d["user_code"].as_str().unwrap()));
    let (s, b) = poll(&f, d["device_code"].as_str().unwrap()).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("authorization_declined"))
    );

    let d = start_device(&f).await;
    f.sim.advance_clock(Duration::from_secs(901));
    assert!(!f.sim.approve_device_code(d["user_code"].as_str().unwrap()));
    let (s, b) = poll(&f, d["device_code"].as_str().unwrap()).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("expired_token")));
    assert_eq!(b["error_codes"], json!([70020]));

    let (s, b) = poll(&f, "DAQABnot-a-code").await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("bad_verification_code"))
    );

    // Approved through the handle, redeemed once.
    let d = start_device(&f).await;
    assert!(f.sim.approve_device_code(d["user_code"].as_str().unwrap()));
    let (s, _) = poll(&f, d["device_code"].as_str().unwrap()).await;
    assert_eq!(s, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s, b) = poll(&f, d["device_code"].as_str().unwrap()).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_grant")));
}

/// A client assertion signed with the process's identity or partner key.
fn assertion(key: &entra::keys::RsaKey, header: Value, claims: Value, pss: bool) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut sig = vec![0u8; key.pair.public().modulus_len()];
    let pad: &'static dyn ring::signature::RsaEncoding = if pss {
        &ring::signature::RSA_PSS_SHA256
    } else {
        &ring::signature::RSA_PKCS1_SHA256
    };
    key.pair
        .sign(
            pad,
            &ring::rand::SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        )
        .unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

async fn assert_cc(f: &Fixture, client_id: &str, jwt: &str) -> (u16, Value) {
    f.token(
        &f.sim.identity_tenant_id(),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", jwt),
            ("scope", VAULT_SCOPE),
        ],
    )
    .await
}

#[tokio::test]
async fn certificate_and_federated_assertions() {
    let f = start(1).await;
    let ks = entra::keys::key_set().unwrap();
    let st = &f.sim.inner.entra;
    let id = f.sim.identity_client_id();
    let now = chrono::Utc::now().timestamp();
    let aud = format!(
        "{}/{}/oauth2/v2.0/token",
        f.sim.login_url(),
        f.sim.identity_tenant_id()
    );
    let body = |aud: &str, exp: i64| json!({"aud": aud, "iss": id, "sub": id, "jti": "j", "nbf": now - 10, "exp": exp});
    let x5t = URL_SAFE_NO_PAD.encode(&st.creds.identity_cert.sha1);
    let s256 = URL_SAFE_NO_PAD.encode(&st.creds.identity_cert.sha256);

    let rs = assertion(
        &ks.identity,
        json!({"alg":"RS256","typ":"JWT","x5t":x5t}),
        body(&aud, now + 600),
        false,
    );
    let (s, b) = assert_cc(&f, &id, &rs).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(claims(b["access_token"].as_str().unwrap())["appidacr"], "2");
    let ps = assertion(
        &ks.identity,
        json!({"alg":"PS256","typ":"JWT","x5t#S256":s256}),
        body(&aud, now + 600),
        true,
    );
    let (s, b) = assert_cc(&f, &id, &ps).await;
    assert_eq!(s, 200, "{b}");
    // The v1 endpoint URL is an accepted audience too.
    let v1 = aud.replace("/oauth2/v2.0/token", "/oauth2/token");
    let t = assertion(
        &ks.identity,
        json!({"alg":"RS256","x5t":x5t}),
        body(&v1, now + 600),
        false,
    );
    assert_eq!(assert_cc(&f, &id, &t).await.0, 200);

    let code = |b: &Value| b["error_codes"][0].as_u64();
    let t = assertion(
        &ks.identity,
        json!({"alg":"RS256","x5t":x5t}),
        body("https://x/token", now + 600),
        false,
    );
    let (s, b) = assert_cc(&f, &id, &t).await;
    assert_eq!(
        (s, b["error"].as_str(), code(&b)),
        (401, Some("invalid_client"), Some(700023))
    );
    let t = assertion(
        &ks.identity,
        json!({"alg":"RS256","x5t":x5t}),
        body(&aud, now - 1),
        false,
    );
    assert_eq!(code(&assert_cc(&f, &id, &t).await.1), Some(700024));
    // The partner's certificate is not registered on the identity app.
    let px5t = URL_SAFE_NO_PAD.encode(&st.creds.partner_cert.sha1);
    let t = assertion(
        &ks.partner,
        json!({"alg":"RS256","x5t":px5t}),
        body(&aud, now + 600),
        false,
    );
    assert_eq!(code(&assert_cc(&f, &id, &t).await.1), Some(700027));
    // Right thumbprint, wrong key.
    let t = assertion(
        &ks.partner,
        json!({"alg":"RS256","x5t":x5t}),
        body(&aud, now + 600),
        false,
    );
    assert_eq!(code(&assert_cc(&f, &id, &t).await.1), Some(700027));

    // Workload identity: the sim's federated token is the assertion.
    let (s, b) = assert_cc(&f, &id, &f.sim.federated_token()).await;
    assert_eq!(s, 200, "{b}");
    let kv = f
        .get(
            format!(
                "{}/secrets/{SECRET_NAME}?api-version=7.6",
                f.sim.keyvault_url()
            ),
            b["access_token"].as_str(),
        )
        .await;
    assert_eq!(kv.status(), 200);
    let issuer = &st.creds.issuer;
    let fed = |aud: Value, sub: &str| {
        issuer
            .sign(&json!({"iss": issuer.url(), "sub": sub, "aud": aud, "exp": now + 600, "nbf": now, "iat": now}))
            .unwrap()
    };
    let subject = entra::federation::Issuer::subject();
    let (s, b) = assert_cc(&f, &id, &fed(json!("api://other"), &subject)).await;
    assert_eq!((s, code(&b)), (401, Some(700212)));
    let (_, b) = assert_cc(
        &f,
        &id,
        &fed(
            json!(["api://AzureADTokenExchange"]),
            "system:serviceaccount:x:y",
        ),
    )
    .await;
    assert_eq!(code(&b), Some(700213));
    // Only the service identity trusts the issuer.
    let (_, b) = f
        .token(
            &f.sim.partner_tenant_id(),
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &f.sim.partner_client_id()),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &f.sim.federated_token()),
                ("refresh_token", &f.seeded_rt()),
                ("scope", PC_SCOPE),
            ],
        )
        .await;
    assert_eq!(code(&b), Some(700211));

    // The certificate file holds the registered certificate and key.
    let pem = std::fs::read_to_string(f.sim.identity_certificate()).unwrap();
    assert!(pem.contains("BEGIN CERTIFICATE") && pem.contains("BEGIN PRIVATE KEY"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(f.sim.partner_certificate())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_eq!(
        f.sim.identity_certificate_thumbprint(),
        hex::encode_upper(&st.creds.identity_cert.sha1)
    );
}

#[tokio::test]
async fn managed_identity_endpoints() {
    let f = start(1).await;
    let http = reqwest::Client::new();
    let imds = f.sim.imds_url();
    assert!(imds.starts_with("http://127.0.0.1:"));
    let q = [
        ("api-version", "2018-02-01"),
        ("resource", "https://vault.azure.net"),
    ];
    let r = http.get(&imds).query(&q).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "bad_request_102", "error_description": "Required metadata header not specified"})
    );
    let b: Value = http
        .get(&imds)
        .query(&q)
        .header("Metadata", "true")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for k in ["expires_in", "expires_on", "ext_expires_in", "not_before"] {
        assert!(b[k].is_string(), "{k} is a string");
    }
    assert_eq!(b["client_id"], f.sim.identity_client_id());
    let token = b["access_token"].as_str().unwrap();
    assert_eq!(claims(token)["tid"], f.sim.identity_tenant_id());
    let kv = f
        .get(
            format!(
                "{}/secrets/{SECRET_NAME}?api-version=7.6",
                f.sim.keyvault_url()
            ),
            Some(token),
        )
        .await;
    assert_eq!(kv.status(), 200);
    let r = http
        .get(&imds)
        .query(&[
            ("api-version", "2018-02-01"),
            ("resource", "https://vault.azure.net"),
            ("client_id", "nope"),
        ])
        .header("Metadata", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error_description"],
        "Identity not found"
    );
    let r = http
        .get(&imds)
        .query(&[
            ("api-version", "2018-02-01"),
            ("resource", "https://nope.example"),
        ])
        .header("Metadata", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "invalid_resource"
    );

    let (endpoint, header) = f.sim.app_service_identity();
    let q = [
        ("api-version", "2019-08-01"),
        ("resource", "https://vault.azure.net/"),
    ];
    let r = http
        .get(&endpoint)
        .query(&q)
        .header("X-IDENTITY-HEADER", &header)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["resource"], "https://vault.azure.net/");
    assert!(b["expires_on"].as_str().unwrap().parse::<i64>().is_ok());
    assert_eq!(b["token_type"], "Bearer");
    let r = http.get(&endpoint).query(&q).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = http
        .get(&endpoint)
        .query(&q)
        .header("X-IDENTITY-HEADER", "x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["statusCode"], 401);
    assert_eq!(f.sim.request_count(Service::ManagedIdentity, None), 7);
}

#[tokio::test]
async fn faults_per_service_with_their_bodies() {
    let f = start(1).await;
    let kv = format!(
        "{}/secrets/{SECRET_NAME}?api-version=7.6",
        f.sim.keyvault_url()
    );
    f.sim
        .inject_fault(Service::KeyVault, Fault::Status(503), None);
    let r = f.get(kv.clone(), None).await;
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "ServiceUnavailable"
    );
    f.sim.inject_fault(
        Service::KeyVault,
        Fault::Throttle {
            retry_after_secs: 7,
        },
        None,
    );
    let r = f.get(kv.clone(), None).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "Throttled"
    );
    f.sim.clear_faults(Service::KeyVault);
    assert_eq!(
        f.get(kv.clone(), None).await.status(),
        401,
        "back to the challenge"
    );
    assert_eq!(f.sim.request_count(Service::KeyVault, None), 3);

    f.sim.inject_fault(
        Service::Graph,
        Fault::Throttle {
            retry_after_secs: 3,
        },
        None,
    );
    let r = f
        .get(format!("{}/v1.0/organization", f.sim.graph_url()), None)
        .await;
    assert_eq!(r.status(), 429);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "TooManyRequests");
    assert!(b["error"]["innerError"]["request-id"].is_string());

    f.sim.inject_fault(
        Service::PartnerCenter,
        Fault::Throttle {
            retry_after_secs: 57,
        },
        None,
    );
    let r = f
        .get(format!("{}/v1/customers", f.sim.partner_center_url()), None)
        .await;
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"statusCode": 429, "message": "Rate limit is exceeded. Try again in 57 seconds."})
    );
    f.sim.inject_fault(
        Service::Arm,
        Fault::Throttle {
            retry_after_secs: 9,
        },
        None,
    );
    let r = f
        .get(
            format!("{}/subscriptions?api-version=2022-12-01", f.sim.arm_url()),
            None,
        )
        .await;
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "SubscriptionRequestsThrottled");

    // Entra: 5xx is temporarily_unavailable; the window ends on its own.
    f.sim.inject_fault(
        Service::Token,
        Fault::Status(503),
        Some(Duration::from_millis(300)),
    );
    let (s, b) = f
        .refresh(&f.sim.partner_tenant_id(), &f.seeded_rt(), PC_SCOPE)
        .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (503, Some("temporarily_unavailable"))
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (s, _) = f
        .refresh(&f.sim.partner_tenant_id(), &f.seeded_rt(), PC_SCOPE)
        .await;
    assert_eq!(s, 200);

    // Hang: the client times out; after clearing, service resumes.
    f.sim.inject_fault(Service::Graph, Fault::Hang, None);
    let started = Instant::now();
    let r = f
        .http
        .get(format!("{}/v1.0/organization", f.sim.graph_url()))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(r.is_err() && started.elapsed() >= Duration::from_millis(300));
    f.sim.clear_faults(Service::Graph);
    assert_eq!(
        f.get(format!("{}/v1.0/organization", f.sim.graph_url()), None)
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn token_throttle_secret_expiry_and_injected_codes() {
    let f = start(1).await;
    let partner = f.sim.partner_tenant_id();
    f.sim.inject_token_throttle(&partner, 60);
    let r = f
        .http
        .post(format!("{}/{partner}/oauth2/v2.0/token", f.sim.login_url()))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "60");
    assert_eq!(r.text().await.unwrap(), "Too Many Requests");
    f.sim.clear_token_error(&partner);

    f.sim.expire_client_secret(&f.sim.partner_client_id());
    let (s, b) = f.refresh(&partner, &f.seeded_rt(), PC_SCOPE).await;
    assert_eq!(
        (s, b["error"].as_str(), b["error_codes"][0].as_u64()),
        (401, Some("invalid_client"), Some(7000222))
    );

    f.sim.inject_token_error(&partner, 53003);
    let (s, b) = f.refresh(&partner, &f.seeded_rt(), PC_SCOPE).await;
    assert_eq!(
        (s, b["error"].as_str(), b["suberror"].as_str()),
        (400, Some("invalid_grant"), Some("message_only"))
    );
}

async fn admin(f: &Fixture, method: reqwest::Method, path: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .request(method, format!("{}{path}", f.sim.admin_url()))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn admin_api() {
    use reqwest::Method;
    let f = start(1).await;
    assert!(f.sim.admin_url().starts_with("http://127.0.0.1:"));
    let (s, b) = admin(&f, Method::GET, "/_sim/clock").await;
    assert_eq!(s, 200);
    let before = b["now"].as_i64().unwrap();
    let (_, b) = admin(&f, Method::POST, "/_sim/clock/advance?seconds=86400").await;
    assert!(b["now"].as_i64().unwrap() >= before + 86_400);
    assert!(f.sim.now() >= before + 86_400);
    assert_eq!(
        admin(&f, Method::POST, "/_sim/clock/advance?seconds=x")
            .await
            .0,
        400
    );

    let (s, b) = admin(&f, Method::GET, &format!("/_sim/secrets/{SECRET_NAME}")).await;
    assert_eq!((s, b["refresh_token_valid"].as_bool()), (200, Some(true)));
    assert!(!b.to_string().contains(&f.seeded_rt()));
    assert_eq!(admin(&f, Method::POST, "/_sim/revoke").await.0, 200);
    let (_, b) = admin(&f, Method::GET, &format!("/_sim/secrets/{SECRET_NAME}")).await;
    assert_eq!(b["refresh_token_valid"], false);
    assert_eq!(admin(&f, Method::GET, "/_sim/secrets/nope").await.0, 404);

    let customer = f.sim.customers()[0].domain.clone();
    let (s, b) = admin(
        &f,
        Method::POST,
        &format!("/_sim/tenants/{customer}/token-error?code=65001"),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let id = b["tenant_id"].as_str().unwrap().to_string();
    assert_eq!(f.sim.inner.entra.token_error(&id), Some(65001));
    admin(
        &f,
        Method::DELETE,
        &format!("/_sim/tenants/{id}/token-error"),
    )
    .await;
    assert_eq!(f.sim.inner.entra.token_error(&id), None);
    assert_eq!(
        admin(
            &f,
            Method::POST,
            "/_sim/tenants/nope.example/token-error?code=1"
        )
        .await
        .0,
        404
    );

    let (s, _) = admin(&f, Method::POST, "/_sim/faults/graph?status=503&seconds=60").await;
    assert_eq!(s, 200);
    assert_eq!(
        f.sim.inner.state.faults.current(Service::Graph),
        Some(Fault::Status(503))
    );
    admin(&f, Method::POST, "/_sim/faults/partner_center?throttle=5").await;
    assert_eq!(
        f.sim.inner.state.faults.current(Service::PartnerCenter),
        Some(Fault::Throttle {
            retry_after_secs: 5
        })
    );
    admin(&f, Method::POST, "/_sim/faults/arm?hang=1").await;
    assert_eq!(
        f.sim.inner.state.faults.current(Service::Arm),
        Some(Fault::Hang)
    );
    admin(&f, Method::DELETE, "/_sim/faults/arm").await;
    assert_eq!(f.sim.inner.state.faults.current(Service::Arm), None);
    assert_eq!(
        admin(&f, Method::POST, "/_sim/faults/graph?status=503&hang=1")
            .await
            .0,
        400
    );
    assert_eq!(
        admin(&f, Method::POST, "/_sim/faults/nope?hang=1").await.0,
        404
    );

    let d = start_device(&f).await;
    let code = d["user_code"].as_str().unwrap();
    assert_eq!(
        admin(
            &f,
            Method::POST,
            &format!("/_sim/device/approve?user_code={code}")
        )
        .await
        .0,
        200
    );
    assert_eq!(
        admin(
            &f,
            Method::POST,
            &format!("/_sim/device/approve?user_code={code}")
        )
        .await
        .0,
        404
    );

    let client = f.sim.identity_client_id();
    assert_eq!(
        admin(
            &f,
            Method::POST,
            &format!("/_sim/clients/{client}/expire-secret")
        )
        .await
        .0,
        200
    );
    assert!(f.sim.inner.entra.secret_expired(&client));

    let (_, b) = admin(&f, Method::GET, "/_sim/requests").await;
    assert_eq!(b["token"]["total"], 1, "the devicecode request");
    assert_eq!(b["graph"]["total"], 0);
    assert!(b["managed_identity"].is_object());
    assert_eq!(admin(&f, Method::GET, "/_sim/nope").await.0, 404);
    let (_, b) = admin(&f, Method::GET, "/_sim").await;
    assert_eq!(b["imds"], f.sim.imds_url());
}

#[tokio::test]
async fn rate_faults_through_the_admin_api() {
    use reqwest::Method;
    let f = start(1).await;
    let kv = format!(
        "{}/secrets/{SECRET_NAME}?api-version=7.6",
        f.sim.keyvault_url()
    );
    let (s, b) = admin(
        &f,
        Method::POST,
        "/_sim/faults/keyvault/rate?fraction=0.25&status=503",
    )
    .await;
    assert_eq!((s, b["fraction"].as_f64()), (200, Some(0.25)), "{b}");
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(f.get(kv.clone(), None).await.status().as_u16());
    }
    // Unauthenticated requests answer the 401 challenge; every 4th is the fault.
    assert_eq!(statuses, [401, 401, 401, 503, 401, 401, 401, 503]);

    // A rate hang holds the request until the client gives up, then the
    // service answers the next one normally.
    admin(
        &f,
        Method::POST,
        "/_sim/faults/keyvault/rate?fraction=0&status=503",
    )
    .await;
    admin(
        &f,
        Method::POST,
        "/_sim/faults/keyvault/rate?fraction=0.5&hang=1",
    )
    .await;
    assert_eq!(f.get(kv.clone(), None).await.status(), 401);
    let gave_up = f
        .http
        .get(kv.clone())
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(gave_up.is_err_and(|e| e.is_timeout()));
    assert_eq!(f.get(kv.clone(), None).await.status(), 401);
    assert_eq!(
        admin(&f, Method::DELETE, "/_sim/faults/keyvault").await.0,
        200
    );
    for _ in 0..4 {
        assert_eq!(f.get(kv.clone(), None).await.status(), 401, "cleared");
    }
    for bad in [
        "fraction=2&status=503",
        "fraction=x&status=503",
        "status=503",
    ] {
        assert_eq!(
            admin(
                &f,
                Method::POST,
                &format!("/_sim/faults/keyvault/rate?{bad}")
            )
            .await
            .0,
            400,
            "{bad}"
        );
    }
}
