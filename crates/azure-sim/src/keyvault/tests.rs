//! Tests of the Key Vault origin: its error body, and over HTTPS the
//! challenge, the api-version rules and the secret operations.

use serde_json::Value;

use super::KvErrorBody;
use crate::service::Service;
use crate::test_support::start;
use crate::SECRET_NAME;

#[test]
fn inner_error_has_only_code() {
    let v = KvErrorBody::with_inner("Forbidden", "no", "AccessDenied").to_json();
    assert_eq!(
        v,
        serde_json::json!({"error":{"code":"Forbidden","message":"no","innererror":{"code":"AccessDenied"}}})
    );
    let v = KvErrorBody::new("Unauthorized", "AKV10000: x").to_json();
    assert!(v["error"].get("innererror").is_none());
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
