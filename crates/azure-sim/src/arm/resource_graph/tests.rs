//! Resource Graph: its skip tokens and quota headers, and end to end the
//! built-in query paging to the ground truth, the query subset, scopes,
//! result formats and errors.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::*;
use crate::test_support::{start, ARM_SCOPE, GRAPH_SCOPE};

#[test]
fn tokens_roundtrip_and_bind_to_the_query() {
    let scope = vec!["a".to_string()];
    let t = SkipToken {
        offset: 8,
        fingerprint: fingerprint("resources | count", &scope),
    };
    assert_eq!(decode_token(&encode_token(&t)), Some(t));
    assert_eq!(
        fingerprint("resources  |\ncount", &scope),
        fingerprint("resources | count", &scope)
    );
    assert_ne!(
        fingerprint("resources | count", &[]),
        fingerprint("resources | count", &scope)
    );
    assert_eq!(decode_token("not base64!"), None);
}

#[test]
fn quota_reset_format() {
    assert_eq!(hms(5), "00:00:05");
    assert_eq!(hms(3725), "01:02:05");
    assert!(is_path("/providers/microsoft.resourcegraph/resources"));
    assert!(!is_path("/subscriptions"));
}

#[tokio::test]
async fn resource_graph_builtin_query_pages_to_the_ground_truth() {
    let f = start(8).await;
    let truth = f.sim.ground_truth();
    assert_eq!(f.sim.resource_graph_page_size(), 4);
    let mut multi_page = 0;
    for tt in truth.tenants.iter().chain(&truth.gdap_only) {
        let token = f.access(&tt.tenant_id, ARM_SCOPE).await;
        let (rows, pages) = f.rg_all(&token, query::BUILTIN).await;
        assert_eq!(
            pages,
            f.sim.resource_graph_pages(&tt.tenant_id),
            "{}",
            tt.name
        );
        if pages >= 3 {
            multi_page += 1;
        }
        let mut resources = Vec::new();
        let mut health = Vec::new();
        let mut advisor = Vec::new();
        for r in &rows {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            let n = r["value"].as_u64().unwrap();
            match r["kind"].as_str().unwrap() {
                "resources" => resources.push((s("subscriptionId"), s("type"), s("location"), n)),
                "health" => {
                    health.push((s("subscriptionId"), s("type"), s("location"), s("state"), n))
                }
                "advisor" => advisor.push((s("category"), s("impact"), n)),
                k => panic!("kind {k}"),
            }
        }
        let want: Vec<_> = tt
            .resources
            .iter()
            .map(|r| {
                (
                    r.subscription_id.clone(),
                    r.resource_type.clone(),
                    r.location.clone(),
                    r.count,
                )
            })
            .collect();
        assert_eq!(resources, want);
        let want: Vec<_> = tt
            .health
            .iter()
            .map(|h| {
                (
                    h.subscription_id.clone(),
                    h.resource_type.clone(),
                    h.location.clone(),
                    h.state.clone(),
                    h.count,
                )
            })
            .collect();
        assert_eq!(health, want);
        let want: Vec<_> = tt
            .advisor
            .iter()
            .map(|a| (a.category.clone(), a.impact.clone(), a.count))
            .collect();
        assert_eq!(advisor, want);
        for h in &tt.health {
            assert!(["Available", "Degraded", "Unavailable", "Unknown"].contains(&h.state.as_str()));
        }
    }
    assert!(
        multi_page > truth.tenants.len() / 2,
        "most tenants page three times"
    );
}

#[tokio::test]
async fn resource_graph_subset_scope_formats_and_errors() {
    let f = start(8).await;
    let truth = f.sim.ground_truth();
    let tt = truth
        .tenants
        .iter()
        .find(|t| t.subscriptions.len() >= 2)
        .expect("a tenant with two subscriptions");
    let token = f.access(&tt.tenant_id, ARM_SCOPE).await;
    let total: u64 = tt.resources.iter().map(|r| r.count).sum();

    let r = f
        .rg(&token, "2021-03-01", json!({"query": "resources | count"}))
        .await;
    assert_eq!(r.status(), 200);
    let remaining: u32 = r.headers()["x-ms-user-quota-remaining"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(r.headers()["x-ms-user-quota-resets-after"], "00:00:05");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["data"], json!([{"Count": total}]));
    let r = f
        .rg(&token, "2022-10-01", json!({"query": "resources | count"}))
        .await;
    let next: u32 = r.headers()["x-ms-user-quota-remaining"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(next + 1, remaining, "the quota counts down");

    // Grouped by type: sums agree with the built-in query's rows.
    let (rows, _) = f
        .rg_all(&token, "resources | summarize n = count() by type")
        .await;
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for r in &tt.resources {
        *want.entry(r.resource_type.clone()).or_default() += r.count;
    }
    let got: BTreeMap<String, u64> = rows
        .iter()
        .map(|r| {
            (
                r["type"].as_str().unwrap().to_string(),
                r["n"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, want);

    // Scoped to one subscription, in the table format.
    let sub = tt.subscriptions[0].subscription_id.clone();
    let r = f
        .rg(
            &token,
            "2024-04-01",
            json!({"query": "resources | count", "subscriptions": [sub], "options": {"resultFormat": "table"}}),
        )
        .await;
    let body: Value = r.json().await.unwrap();
    let in_sub: u64 = tt
        .resources
        .iter()
        .filter(|r| r.subscription_id == sub)
        .map(|r| r.count)
        .sum();
    assert_eq!(
        body["data"]["columns"],
        json!([{"name": "Count", "type": "integer"}])
    );
    assert_eq!(body["data"]["rows"], json!([[in_sub]]));

    // $top below the page size, $skip.
    let r = f
        .rg(
            &token,
            "2024-04-01",
            json!({"query": query::BUILTIN, "options": {"$top": 2, "$skip": 1}}),
        )
        .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["count"], 2);
    assert!(body["$skipToken"].is_string());

    // A token from another query is refused.
    let t = body["$skipToken"].as_str().unwrap();
    let r = f
        .rg(
            &token,
            "2024-04-01",
            json!({"query": "resources | count", "options": {"$skipToken": t}}),
        )
        .await;
    assert_eq!(r.status(), 400);

    // Unsupported KQL: Resource Graph's error shape.
    let r = f
        .rg(
            &token,
            "2024-04-01",
            json!({"query": "resources | project id, name"}),
        )
        .await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "BadRequest");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Please provide below info when asking for support: timestamp = "));
    assert_eq!(body["error"]["details"][0]["code"], "InvalidQuery");
    assert_eq!(body["error"]["details"][1]["token"], "project");

    let r = f
        .rg(&token, "2099-01-01", json!({"query": "resources | count"}))
        .await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "NoRegisteredProviderFound");

    let graph = f.access(&tt.tenant_id, GRAPH_SCOPE).await;
    let r = f
        .rg(&graph, "2024-04-01", json!({"query": "resources | count"}))
        .await;
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "InvalidAuthenticationTokenAudience");

    // ARM paths are case-insensitive.
    let r = f
        .http
        .post(format!(
            "{}/providers/microsoft.resourcegraph/resources?api-version=2024-04-01",
            f.sim.arm_url()
        ))
        .bearer_auth(&token)
        .json(&json!({"query": "resources | count"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
