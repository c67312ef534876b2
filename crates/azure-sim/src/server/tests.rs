//! End-to-end tests of what every request goes through: bad TLS clients,
//! injected latency, faults in each scope with each service's own bodies,
//! and the request record.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::faults::Fault;
use crate::service::Service;
use crate::test_support::{start, ARM_SCOPE, GRAPH_SCOPE, PC_SCOPE};
use crate::SECRET_NAME;

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
async fn faults_next_and_per_tenant_with_each_services_429() {
    let f = start(2).await;
    let [a, b] = [0, 1].map(|i| f.sim.customers()[i].tenant_id.clone());
    let ga = f.access(&a, GRAPH_SCOPE).await;
    let gb = f.access(&b, GRAPH_SCOPE).await;
    let aa = f.access(&a, ARM_SCOPE).await;
    let skus = format!("{}/v1.0/subscribedSkus", f.sim.graph_url());

    f.sim.inject_fault_next(
        Service::Graph,
        Fault::Throttle {
            retry_after_secs: 7,
        },
        2,
    );
    for _ in 0..2 {
        let r = f.get(skus.clone(), Some(&ga)).await;
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "7");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "TooManyRequests");
    }
    assert_eq!(f.get(skus.clone(), Some(&ga)).await.status(), 200);

    f.sim.inject_fault_next(
        Service::Arm,
        Fault::Throttle {
            retry_after_secs: 3,
        },
        1,
    );
    let r = f
        .rg(&aa, "2024-04-01", json!({"query": "resources | count"}))
        .await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "3");
    assert_eq!(r.headers()["x-ms-user-quota-remaining"], "0");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "RateLimiting");
    assert_eq!(body["error"]["details"][0]["code"], "RateLimiting");

    f.sim
        .inject_tenant_fault(&a, Service::Graph, Fault::Status(503));
    assert_eq!(f.get(skus.clone(), Some(&ga)).await.status(), 503);
    assert_eq!(f.get(skus.clone(), Some(&gb)).await.status(), 200);
    f.sim.clear_tenant_faults(&a);
    assert_eq!(f.get(skus.clone(), Some(&ga)).await.status(), 200);

    // A hung tenant answers once its fault is cleared.
    f.sim.inject_tenant_fault(&b, Service::Graph, Fault::Hang);
    let pending = tokio::spawn({
        let (http, url, token) = (f.http.clone(), skus.clone(), gb.clone());
        async move {
            http.get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!pending.is_finished(), "held open");
    f.sim.clear_tenant_faults(&b);
    assert_eq!(pending.await.unwrap(), 200);

    // Token requests fault by the tenant in their path.
    f.sim
        .inject_tenant_fault(&a, Service::Token, Fault::Status(503));
    let (status, _) = f.refresh(&a, &f.seeded_rt(), GRAPH_SCOPE).await;
    assert_eq!(status, 503);
    let (status, _) = f.refresh(&b, &f.seeded_rt(), GRAPH_SCOPE).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn requests_are_recorded_in_order_with_their_tenant() {
    let f = start(1).await;
    let t = f.sim.customers()[0].tenant_id.clone();
    let token = f.access(&t, GRAPH_SCOPE).await;
    let before = f.sim.requests().len();
    f.get(
        format!("{}/v1.0/security/secureScores?$top=1", f.sim.graph_url()),
        Some(&token),
    )
    .await;
    let records = f.sim.requests();
    let last = records.last().unwrap();
    assert_eq!(records.len(), before + 1);
    assert_eq!(last.service, Service::Graph);
    assert_eq!(last.tenant.as_deref(), Some(t.as_str()));
    assert_eq!(last.method, "GET");
    assert_eq!(last.path, "/v1.0/security/secureScores");
    let token_requests = records
        .iter()
        .filter(|r| r.service == Service::Token && r.tenant.as_deref() == Some(t.as_str()))
        .count() as u64;
    assert_eq!(
        f.sim.request_count(Service::Token, Some(&t)),
        token_requests
    );
    for s in Service::ALL {
        assert_eq!(
            f.sim.request_count(s, None),
            records.iter().filter(|r| r.service == s).count() as u64
        );
    }
}

/// With limits on (and small), each service answers its own documented 429
/// once a limit is used up, every answer carries the remaining-quota
/// headers, and the ground truth counts the 429s per limit.
#[tokio::test]
async fn published_limits_answer_documented_429s_and_headers_on_every_response() {
    let f = start(1).await;
    let tenant = f.sim.customers()[0].tenant_id.clone();
    let graph = f.access(&tenant, GRAPH_SCOPE).await;
    let arm = f.access(&tenant, ARM_SCOPE).await;
    let pc = f.access(&f.sim.partner_tenant_id(), PC_SCOPE).await;
    // Off (the default): far past any scaled limit, never a 429.
    for _ in 0..20 {
        let r = f
            .get(
                format!("{}/v1.0/security/secureScores", f.sim.graph_url()),
                Some(&graph),
            )
            .await;
        assert_eq!(r.status(), 200);
        assert!(r.headers().get("x-ms-resource-unit").is_none());
    }
    // 0.02: secureScore 3 per minute, ARM reads a bucket of 5, Resource
    // Graph 1 query per 5 s, Partner Center 10 per minute.
    f.sim.set_limits(true, 0.02);

    let score = format!("{}/v1.0/security/secureScores?$top=1", f.sim.graph_url());
    for _ in 0..3 {
        let r = f.get(score.clone(), Some(&graph)).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-ms-resource-unit"], "1");
    }
    let r = f.get(score.clone(), Some(&graph)).await;
    assert_eq!(r.status(), 429);
    let secs: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&secs), "{secs}");
    let app = f.sim.partner_client_id();
    assert_eq!(
        r.headers()["x-ms-throttle-scope"],
        format!("Tenant_Application/Read/{app}/{tenant}").as_str()
    );
    assert_eq!(
        r.headers()["x-ms-throttle-information"],
        "ResourceUnitLimitExceeded"
    );
    assert!(r.headers().get("x-ms-resource-unit").is_some());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "TooManyRequests");
    assert!(body["error"]["innerError"]["request-id"].is_string());
    assert!(body["error"]["innerError"]["date"].is_string());
    // Another tenant-scoped limit of the same app is untouched.
    let r = f
        .get(
            format!("{}/v1.0/subscribedSkus", f.sim.graph_url()),
            Some(&graph),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-ms-resource-unit"], "3");

    let subs = format!("{}/subscriptions?api-version=2022-12-01", f.sim.arm_url());
    let mut seen = Vec::new();
    for _ in 0..6 {
        let r = f.get(subs.clone(), Some(&arm)).await;
        seen.push((
            r.status().as_u16(),
            r.headers()["x-ms-ratelimit-remaining-tenant-reads"]
                .to_str()
                .unwrap()
                .to_string(),
        ));
        if r.status() == 429 {
            assert!(r.headers().get("retry-after").is_some());
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"]["code"], "SubscriptionRequestsThrottled");
        }
    }
    let want: Vec<(u16, String)> = [
        (200, "4"),
        (200, "3"),
        (200, "2"),
        (200, "1"),
        (200, "0"),
        (429, "0"),
    ]
    .into_iter()
    .map(|(s, v)| (s, v.to_string()))
    .collect();
    assert_eq!(seen, want);

    let query = json!({"query": "resources | count"});
    let r = f.rg(&arm, "2024-04-01", query.clone()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-ms-user-quota-remaining"], "0");
    assert_eq!(r.headers()["x-ms-user-quota-resets-after"], "00:00:05");
    let r = f.rg(&arm, "2024-04-01", query).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["x-ms-user-quota-remaining"], "0");
    assert!(r.headers()["x-ms-user-quota-resets-after"]
        .to_str()
        .unwrap()
        .starts_with("00:00:0"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["details"][0]["code"], "RateLimiting");

    let customers = format!("{}/v1/customers", f.sim.partner_center_url());
    let mut statuses = Vec::new();
    for _ in 0..11 {
        let r = f.get(customers.clone(), Some(&pc)).await;
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            assert!(r.headers().get("retry-after").is_some());
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["statusCode"], 429);
            assert!(body["message"]
                .as_str()
                .unwrap()
                .starts_with("Rate limit is exceeded. Try again in "));
        }
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        1,
        "{statuses:?}"
    );

    let truth = f.sim.ground_truth();
    let counts: Vec<(&str, u64)> = truth.throttled.iter().map(|t| (t.limit, t.count)).collect();
    assert_eq!(
        counts,
        [
            ("graph_security", 1),
            ("arm_tenant_reads", 1),
            ("resource_graph_user", 1),
            ("partner_center_tenant", 1)
        ]
    );
    assert_eq!(f.sim.throttled_count(Service::Arm), 2);
}
