//! Client assertions: certificates (RS256 and PS256, both thumbprints) and
//! federated tokens from the simulated Kubernetes issuer.

use crate::entra;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use crate::test_support::{claims, start, Fixture, PC_SCOPE};
use crate::SECRET_NAME;

const VAULT_SCOPE: &str = "https://vault.azure.net/.default";

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
