//! The IMDS and App Service managed identity endpoints.

use serde_json::{json, Value};

use crate::service::Service;
use crate::test_support::{claims, start};
use crate::SECRET_NAME;

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
