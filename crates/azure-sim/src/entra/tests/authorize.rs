//! The authorization code flow with PKCE, end to end.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use crate::SimHandle;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use crate::test_support::{claims, start, Fixture, PC_SCOPE};

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
    authorize_at(f, &f.sim.partner_tenant_id(), extra).await
}

/// [`authorize`] with `tenant` as the authority.
async fn authorize_at(
    f: &Fixture,
    tenant: &str,
    extra: &[(&str, &str)],
) -> (u16, HashMap<String, String>, String) {
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
            "{}/{tenant}/oauth2/v2.0/authorize",
            f.sim.login_url()
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
    let p = f.partner(0);
    redeem_code_as(f, &p, code, verifier, redirect).await
}

/// [`redeem_code`] with partner `p`'s app at its tenant.
async fn redeem_code_as(
    f: &Fixture,
    p: &crate::SimPartner,
    code: &str,
    verifier: &str,
    redirect: &str,
) -> (u16, Value) {
    let (id, secret) = (&p.client_id, &p.client_secret);
    f.token(
        &p.tenant_id,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", id),
            ("client_secret", secret),
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

/// Partner 1's app, signed in at partner 1's tenant, gives partner 1's
/// admin a refresh token of partner 1: its customers, not partner 0's.
#[tokio::test]
async fn auth_code_with_another_partners_app_gives_that_partners_token() {
    let f = crate::test_support::start_partners(3, 2).await;
    let (p0, p1) = (f.partner(0), f.partner(1));
    let (status, q, body) =
        authorize_at(&f, &p1.tenant_id, &[("client_id", p1.client_id.as_str())]).await;
    assert_eq!(status, 302, "{body}");
    let (s, b) = redeem_code_as(&f, &p1, &q["code"], VERIFIER, "http://localhost:8400/cb").await;
    assert_eq!(s, 200, "{b}");
    let id = claims(b["id_token"].as_str().unwrap());
    assert_eq!(id["tid"].as_str(), Some(p1.tenant_id.as_str()));
    assert_eq!(
        id["preferred_username"].as_str(),
        Some("admin@southridgeitservices01.onmicrosoft.com")
    );
    let rt = b["refresh_token"].as_str().unwrap().to_string();
    let graph = "https://graph.microsoft.com/.default";
    // Partner 1's own customer (the last: not shared with partner 0).
    let own = &p1.customers[2].tenant_id;
    assert!(!p0.customers.iter().any(|c| &c.tenant_id == own));
    let (s, b) = f.refresh_as(1, own, &rt, graph).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = f
        .refresh_as(1, &p0.customers[0].tenant_id, &rt, graph)
        .await;
    assert_eq!((s, b["error_codes"].clone()), (400, json!([50020])), "{b}");
    // The same code flow with partner 0's app still yields partner 0's admin.
    let (_, q, _) = authorize(&f, &[]).await;
    let (s, b) = redeem_code(&f, &q["code"], VERIFIER, "http://localhost:8400/cb").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        claims(b["id_token"].as_str().unwrap())["tid"].as_str(),
        Some(p0.tenant_id.as_str())
    );
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
