//! The admin API over plain HTTP, end to end.

use std::time::Duration;

use serde_json::Value;

use crate::faults::Fault;
use crate::service::Service;
use crate::test_support::{start, start_device, start_partners, Fixture, GRAPH_SCOPE};
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

/// `POST /_sim/revoke?partner=1` kills partner 1's refresh tokens (and CAE
/// tokens) only: partner 0's keep working, for its own tenant and for the
/// customer both share. The selector takes an index or a tenant id; an
/// unknown one is 404; without one, partner 0.
#[tokio::test]
async fn revoking_one_partner_leaves_the_others_working() {
    use reqwest::Method;
    let f = start_partners(10, 3).await;
    let (p0, p1) = (f.partner(0), f.partner(1));
    let (rt0, rt1) = (f.seeded_rt(), f.seeded_rt_of(1));
    let shared = p1.customers[0].tenant_id.clone();
    // Each partner's long-lived CAE token for the customer they share.
    let cae = |k: usize, rt: String| {
        let (p, tenant, f) = (f.partner(k), shared.clone(), &f);
        async move {
            let (s, b) = f
                .token(
                    &tenant,
                    &[
                        ("grant_type", "refresh_token"),
                        ("client_id", &p.client_id),
                        ("client_secret", &p.client_secret),
                        ("refresh_token", &rt),
                        ("scope", GRAPH_SCOPE),
                        (
                            "claims",
                            r#"{"access_token":{"xms_cc":{"values":["cp1"]}}}"#,
                        ),
                    ],
                )
                .await;
            assert_eq!(s, 200, "{b}");
            b["access_token"].as_str().unwrap().to_string()
        }
    };
    let (cae0, cae1) = (cae(0, rt0.clone()).await, cae(1, rt1.clone()).await);
    f.sim.advance_clock(Duration::from_secs(2));

    let before = f.sim.now();
    let (s, b) = admin(&f, Method::POST, "/_sim/revoke?partner=1").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["partner"], 1);
    assert_eq!(b["tenant_id"].as_str(), Some(p1.tenant_id.as_str()));
    let from = b["tokens_valid_from"].as_i64().unwrap();
    assert!((before..=f.sim.now()).contains(&from), "{from}");

    // The critical event follows partner 1's admin only.
    let org = format!("{}/v1.0/organization", f.sim.graph_url());
    assert_eq!(f.get(org.clone(), Some(&cae0)).await.status(), 200);
    let r = f.get(org, Some(&cae1)).await;
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("insufficient_claims"));

    let (s, b) = f.refresh_as(1, &shared, &rt1, GRAPH_SCOPE).await;
    assert_eq!(
        (s, b["error_codes"].clone()),
        (400, serde_json::json!([50173])),
        "{b}"
    );
    assert!(!f.sim.refresh_token_valid(&rt1));
    for t in [&p0.tenant_id, &shared] {
        let (s, b) = f.refresh_as(0, t, &rt0, GRAPH_SCOPE).await;
        assert_eq!(s, 200, "{t}: {b}");
    }
    let (s, b) = f
        .refresh_as(2, &f.partner(2).tenant_id, &f.seeded_rt_of(2), GRAPH_SCOPE)
        .await;
    assert_eq!(s, 200, "{b}");
    let (_, b) = admin(
        &f,
        Method::GET,
        &format!("/_sim/secrets/{}", p1.secret_name),
    )
    .await;
    assert_eq!(b["refresh_token_valid"], false);
    let (_, b) = admin(&f, Method::GET, &format!("/_sim/secrets/{SECRET_NAME}")).await;
    assert_eq!(b["refresh_token_valid"], true);

    // By tenant id and by domain; unknown partners are 404.
    let (s, b) = admin(
        &f,
        Method::POST,
        &format!("/_sim/password-reset?partner={}", f.partner(2).tenant_id),
    )
    .await;
    assert_eq!((s, b["partner"].as_u64()), (200, Some(2)));
    assert!(!f.sim.refresh_token_valid(&f.seeded_rt_of(2)));
    for bad in ["3", "nope", p0.customers[0].tenant_id.as_str()] {
        let (s, b) = admin(&f, Method::POST, &format!("/_sim/revoke?partner={bad}")).await;
        assert_eq!(s, 404, "{bad}: {b}");
    }
    assert!(f.sim.refresh_token_valid(&rt0));

    // No selector: partner 0, in the single-partner answer's shape.
    let (s, b) = admin(&f, Method::POST, "/_sim/revoke").await;
    assert_eq!(s, 200);
    let keys: Vec<&String> = b.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["revoked", "tokens_valid_from"]);
    assert!(!f.sim.refresh_token_valid(&rt0));

    // And through the handle.
    assert!(!f.sim.revoke_partner_refresh_tokens(3));
}

/// The ground truth lists every partner with its customers: partner 0's are
/// the `tenants`, neighbours share one, and each names its vault secret.
#[tokio::test]
async fn ground_truth_lists_the_partners() {
    let f = start_partners(10, 3).await;
    let truth: Value = reqwest::get(format!("{}/_sim/ground-truth", f.sim.admin_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let partners = truth["partners"].as_array().unwrap();
    assert_eq!(partners.len(), 3);
    let ids = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect()
    };
    for (k, p) in partners.iter().enumerate() {
        let sim = f.partner(k);
        assert_eq!(p["index"], k);
        assert_eq!(p["tenant_id"].as_str(), Some(sim.tenant_id.as_str()));
        assert_eq!(p["client_id"].as_str(), Some(sim.client_id.as_str()));
        assert_eq!(p["secret_name"].as_str(), Some(sim.secret_name.as_str()));
        assert_eq!(ids(&p["customers"]).len(), 10);
        assert_eq!(
            ids(&p["gdap_only"]),
            vec![sim.gdap_only[0].tenant_id.clone()]
        );
    }
    assert_eq!(partners[0]["secret_name"], SECRET_NAME);
    assert_eq!(partners[1]["secret_name"], format!("{SECRET_NAME}-1"));
    let tenants: Vec<String> = truth["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tenant_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids(&partners[0]["customers"]), tenants);
    assert_eq!(
        truth["partner_app"]["app_id"].as_str(),
        Some(f.sim.partner_client_id().as_str())
    );
    let c1 = ids(&partners[1]["customers"]);
    assert_eq!(c1.iter().filter(|t| tenants.contains(t)).count(), 1);
    assert_eq!(c1[0], tenants[9]);
    // Partner 0's full truth is the top level, not repeated.
    assert!(partners[0]["tenants"].as_array().unwrap().is_empty());
    assert!(partners[0]["partner_app"].is_null());
    // Partner k's customers have their full truth too: the same data as
    // partner 0 sees for the shared one, but GDAP relationships of their own.
    let t1 = partners[1]["tenants"].as_array().unwrap();
    let t1_ids: Vec<String> = t1
        .iter()
        .map(|t| t["tenant_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(t1_ids, c1);
    let shared0 = &truth["tenants"][9];
    let shared1 = &t1[0];
    assert_eq!(shared0["subscriptions"], shared1["subscriptions"]);
    assert_eq!(shared0["licenses"], shared1["licenses"]);
    let rel_ids = |t: &Value| -> Vec<String> {
        t["gdap"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["relationship_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(!rel_ids(shared1).is_empty());
    assert!(rel_ids(shared0)
        .iter()
        .all(|r| !rel_ids(shared1).contains(r)));
    assert_eq!(
        partners[1]["gdap_only_tenants"][0]["tenant_id"],
        partners[1]["gdap_only"][0]
    );
    assert_eq!(
        partners[2]["partner_app"]["app_id"].as_str(),
        Some(f.partner(2).client_id.as_str())
    );
    assert!(!partners[2]["partner_app"]["credentials"]
        .as_array()
        .unwrap()
        .is_empty());
}
