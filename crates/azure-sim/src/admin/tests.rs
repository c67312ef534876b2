//! The admin API over plain HTTP, end to end.

use std::time::Duration;

use serde_json::Value;

use crate::faults::Fault;
use crate::service::Service;
use crate::test_support::{start, start_device, Fixture, GRAPH_SCOPE};
use crate::SECRET_NAME;

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

#[tokio::test]
async fn admin_api_faults_customers_requests_and_ground_truth() {
    let f = start(3).await;
    let admin = f.sim.admin_url();
    let http = reqwest::Client::new();
    let t = f.sim.customers()[1].clone();

    let truth: Value = http
        .get(format!("{admin}/_sim/ground-truth"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(truth["tenants"].as_array().unwrap().len(), 3);
    assert_eq!(truth["tenants"][1]["tenant_id"], t.tenant_id);
    assert!(
        truth["partner_app"]["credentials"]
            .as_array()
            .unwrap()
            .len()
            == 3
    );

    let r = http
        .post(format!("{admin}/_sim/faults/graph/next?count=1&status=502"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let token = f.access(&t.tenant_id, GRAPH_SCOPE).await;
    let skus = format!("{}/v1.0/subscribedSkus", f.sim.graph_url());
    assert_eq!(f.get(skus.clone(), Some(&token)).await.status(), 502);
    assert_eq!(f.get(skus.clone(), Some(&token)).await.status(), 200);

    let r = http
        .post(format!(
            "{admin}/_sim/tenants/{}/faults/graph?throttle=2",
            t.domain
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(f.get(skus.clone(), Some(&token)).await.status(), 429);
    http.delete(format!("{admin}/_sim/tenants/{}/faults", t.tenant_id))
        .send()
        .await
        .unwrap();
    assert_eq!(f.get(skus.clone(), Some(&token)).await.status(), 200);
    let bad = http
        .post(format!("{admin}/_sim/faults/graph/next?status=502"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400, "count is required");

    let requests: Value = http
        .get(format!("{admin}/_sim/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let records = requests["records"].as_array().unwrap();
    assert_eq!(
        requests["graph"]["total"].as_u64().unwrap() as usize,
        records.iter().filter(|r| r["service"] == "graph").count()
    );
    assert!(records.iter().any(|r| r["path"] == "/v1.0/subscribedSkus"));

    let r = http
        .delete(format!("{admin}/_sim/customers/{}", t.tenant_id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(f.sim.customers().len(), 2);
    let r = http
        .delete(format!(
            "{admin}/_sim/customers/{}",
            f.sim.partner_tenant_id()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "the partner is no customer");
}
