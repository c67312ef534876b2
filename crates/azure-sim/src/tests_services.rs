//! End-to-end tests of the Microsoft 365, GDAP, app-credential and Resource
//! Graph endpoints over HTTPS: paging to the end equals the ground truth,
//! the query subset, faults per scope, and the request record.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::*;
use crate::tests::{start, Fixture};

const GRAPH: &str = "https://graph.microsoft.com/.default";
const ARM: &str = "https://management.azure.com/.default";

impl Fixture {
    /// A delegated access token for `tenant` and `scope`.
    async fn access(&self, tenant: &str, scope: &str) -> String {
        let rt = self.seeded_rt();
        let (status, body) = self.refresh(tenant, &rt, scope).await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    }

    /// Follows `@odata.nextLink` to the end; returns the items and the
    /// number of pages.
    async fn graph_all(&self, path: &str, token: &str) -> (Vec<Value>, usize) {
        let mut url = format!("{}{path}", self.sim.graph_url());
        let (mut items, mut pages) = (Vec::new(), 0);
        loop {
            let r = self.get(url.clone(), Some(token)).await;
            assert_eq!(r.status(), 200, "{url}");
            let body: Value = r.json().await.unwrap();
            assert!(body["@odata.context"]
                .as_str()
                .unwrap()
                .contains("$metadata#"));
            items.extend(body["value"].as_array().unwrap().iter().cloned());
            pages += 1;
            match body["@odata.nextLink"].as_str() {
                Some(next) => url = next.to_string(),
                None => return (items, pages),
            }
        }
    }

    /// One Resource Graph request.
    async fn rg(&self, token: &str, api_version: &str, body: Value) -> reqwest::Response {
        self.http
            .post(format!(
                "{}/providers/Microsoft.ResourceGraph/resources?api-version={api_version}",
                self.sim.arm_url()
            ))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Runs a query to the last page; returns the rows and page count.
    async fn rg_all(&self, token: &str, query: &str) -> (Vec<Value>, usize) {
        let (mut rows, mut pages) = (Vec::new(), 0);
        let mut skip: Option<String> = None;
        loop {
            let mut options = json!({"$top": 1000, "resultFormat": "objectArray"});
            if let Some(t) = &skip {
                options["$skipToken"] = json!(t);
            }
            let r = self
                .rg(
                    token,
                    "2024-04-01",
                    json!({"query": query, "options": options}),
                )
                .await;
            assert_eq!(r.status(), 200);
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["resultTruncated"], "false");
            assert_eq!(body["facets"], json!([]));
            let data = body["data"].as_array().unwrap();
            assert_eq!(body["count"].as_u64().unwrap() as usize, data.len());
            rows.extend(data.iter().cloned());
            pages += 1;
            match body["$skipToken"].as_str() {
                Some(t) => skip = Some(t.to_string()),
                None => {
                    assert_eq!(body["totalRecords"].as_u64().unwrap() as usize, rows.len());
                    return (rows, pages);
                }
            }
        }
    }
}

#[tokio::test]
async fn graph_m365_endpoints_page_to_the_ground_truth() {
    let f = start(6).await;
    let truth = f.sim.ground_truth();
    assert_eq!(truth.tenants.len(), 6);
    assert_eq!(truth.gdap_only.len(), 1);
    let mut synced = 0;
    for tt in truth.tenants.iter().chain(&truth.gdap_only) {
        let token = f.access(&tt.tenant_id, GRAPH).await;
        let (skus, _) = f.graph_all("/v1.0/subscribedSkus", &token).await;
        let got: Vec<(String, u64, u64, u64, u64)> = skus
            .iter()
            .map(|s| {
                let p = &s["prepaidUnits"];
                (
                    s["skuPartNumber"].as_str().unwrap().to_string(),
                    p["enabled"].as_u64().unwrap(),
                    s["consumedUnits"].as_u64().unwrap(),
                    p["suspended"].as_u64().unwrap(),
                    p["warning"].as_u64().unwrap(),
                )
            })
            .collect();
        let want: Vec<_> = tt
            .licenses
            .iter()
            .map(|l| {
                (
                    l.sku_part_number.clone(),
                    l.enabled,
                    l.consumed,
                    l.suspended,
                    l.warning,
                )
            })
            .collect();
        assert_eq!(got, want);
        if let Some(s) = skus.first() {
            assert_eq!(
                s["id"],
                format!("{}_{}", tt.tenant_id, s["skuId"].as_str().unwrap())
            );
            assert_eq!(s["accountName"], tt.name);
        }

        let (services, pages) = f
            .graph_all("/v1.0/admin/serviceAnnouncement/healthOverviews", &token)
            .await;
        assert!(pages >= 3, "4 per page");
        let got: Vec<(String, String)> = services
            .iter()
            .map(|s| {
                (
                    s["service"].as_str().unwrap().into(),
                    s["status"].as_str().unwrap().into(),
                )
            })
            .collect();
        let want: Vec<_> = tt
            .services
            .iter()
            .map(|s| (s.service.clone(), s.status.clone()))
            .collect();
        assert_eq!(got, want);

        let r = f
            .get(
                format!("{}/v1.0/security/secureScores?$top=1", f.sim.graph_url()),
                Some(&token),
            )
            .await;
        let body: Value = r.json().await.unwrap();
        let value = body["value"].as_array().unwrap();
        match tt.secure_score {
            None => assert!(value.is_empty()),
            Some((cur, max)) => {
                assert_eq!(value.len(), 1);
                assert_eq!(value[0]["currentScore"].as_f64(), Some(cur));
                assert_eq!(value[0]["maxScore"].as_f64(), Some(max));
                assert!(body["@odata.nextLink"].as_str().unwrap().contains("$top=1"));
            }
        }

        let r = f
            .http
            .get(format!("{}/v1.0/users/$count", f.sim.graph_url()))
            .bearer_auth(&token)
            .header("ConsistencyLevel", "eventual")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"));
        assert_eq!(r.text().await.unwrap(), tt.users.to_string());

        let (orgs, _) = f.graph_all("/v1.0/organization", &token).await;
        let o = &orgs[0];
        assert_eq!(o["displayName"], tt.name);
        assert_eq!(o["verifiedDomains"][0]["name"], tt.domain);
        match tt.last_sync {
            Some(ts) => {
                synced += 1;
                assert_eq!(o["onPremisesSyncEnabled"], true);
                assert_eq!(
                    o["onPremisesLastSyncDateTime"],
                    tenantwatch_common::time::rfc3339(ts)
                );
            }
            None => {
                assert_eq!(o["onPremisesSyncEnabled"], Value::Null);
                assert_eq!(o["onPremisesLastSyncDateTime"], Value::Null);
            }
        }
    }
    assert!(synced > 0);
    assert_eq!(
        truth
            .tenants
            .iter()
            .filter(|t| t.licenses.is_empty())
            .count(),
        1
    );
    assert_eq!(
        truth
            .tenants
            .iter()
            .filter(|t| t.secure_score.is_none())
            .count(),
        1
    );
}

#[tokio::test]
async fn users_count_needs_consistency_level_and_top_has_its_limits() {
    let f = start(1).await;
    let tenant = f.sim.customers()[0].tenant_id.clone();
    let token = f.access(&tenant, GRAPH).await;
    let r = f
        .get(
            format!("{}/v1.0/users/$count", f.sim.graph_url()),
            Some(&token),
        )
        .await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "Request_BadRequest");
    assert_eq!(
        body["error"]["message"],
        "$count is not currently supported."
    );
    assert!(body["error"]["innerError"]["request-id"].is_string());

    let partner = f.access(&f.sim.partner_tenant_id(), GRAPH).await;
    let gdap = "/v1.0/tenantRelationships/delegatedAdminRelationships";
    let r = f
        .get(
            format!("{}{gdap}?$top=301", f.sim.graph_url()),
            Some(&partner),
        )
        .await;
    assert_eq!(r.status(), 400);
    let r = f
        .get(
            format!("{}{gdap}?$skiptoken=bogus", f.sim.graph_url()),
            Some(&partner),
        )
        .await;
    assert_eq!(r.status(), 400);
    let r = f
        .get(
            format!("{}{gdap}?$filter=startswith(id,'a')", f.sim.graph_url()),
            Some(&partner),
        )
        .await;
    assert_eq!(r.status(), 400);
    // Another resource's token is refused with Graph's 401.
    let arm = f.access(&tenant, ARM).await;
    let r = f
        .get(
            format!("{}/v1.0/subscribedSkus", f.sim.graph_url()),
            Some(&arm),
        )
        .await;
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn gdap_relationships_reconcile_with_partner_center() {
    let f = start(12).await;
    let truth = f.sim.ground_truth();
    let partner = f.access(&f.sim.partner_tenant_id(), GRAPH).await;
    let path = "/v1.0/tenantRelationships/delegatedAdminRelationships";
    let (rels, pages) = f.graph_all(path, &partner).await;
    assert!(pages >= 3, "pages of 5");
    let (_, big_pages) = f.graph_all(&format!("{path}?$top=300"), &partner).await;
    assert_eq!(big_pages, 1);
    let (active, _) = f
        .graph_all(&format!("{path}?$filter=status%20eq%20'active'"), &partner)
        .await;
    assert!(active.iter().all(|r| r["status"] == "active"));

    let mut by_tenant: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for r in &rels {
        assert_eq!(
            r["@odata.type"],
            "#microsoft.graph.delegatedAdminRelationship"
        );
        assert!(r["@odata.etag"].as_str().unwrap().starts_with("W/\""));
        assert!(r["accessDetails"]["unifiedRoles"].as_array().unwrap().len() >= 2);
        let t = r["customer"]["tenantId"].as_str().unwrap().to_string();
        by_tenant.entry(t).or_default().push(r);
    }
    assert!(rels.iter().any(|r| r["status"] == "terminated"));
    let now = f.sim.now();
    for tt in truth.tenants.iter().chain(&truth.gdap_only) {
        let listed: Vec<&&Value> = by_tenant
            .get(&tt.tenant_id)
            .map(|v| v.iter().filter(|r| r["status"] != "terminated").collect())
            .unwrap_or_default();
        assert_eq!(listed.len(), tt.gdap.len(), "{}", tt.name);
        for (r, g) in listed.iter().zip(&tt.gdap) {
            assert_eq!(r["id"], g.relationship_id);
            assert_eq!(r["status"], g.status);
            assert_eq!(r["customer"]["displayName"], tt.name);
            assert_eq!(r["endDateTime"], tenantwatch_common::time::rfc3339(g.end));
            assert_eq!(
                r["autoExtendDuration"],
                if g.auto_extend { "P180D" } else { "PT0S" }
            );
        }
    }
    let active_of = |t: &TenantTruth| t.gdap.iter().filter(|g| g.status == "active").count();
    assert_eq!(
        truth.tenants.iter().filter(|t| t.gdap.is_empty()).count(),
        2,
        "legacy DAP"
    );
    assert!(truth
        .tenants
        .iter()
        .any(|t| t.gdap.iter().any(|g| g.status == "expired")));
    assert!(truth.tenants.iter().any(|t| t
        .gdap
        .iter()
        .any(|g| g.status == "active" && !g.auto_extend && g.end - now < 30 * 86_400)));
    assert_eq!(active_of(&truth.gdap_only[0]), 1);
    assert!(!truth.gdap_only[0].in_partner_center);

    // Legacy DAP customers still get tokens; so does the GDAP-only tenant.
    let legacy = truth.tenants.iter().find(|t| t.gdap.is_empty()).unwrap();
    f.access(&legacy.tenant_id, ARM).await;
    f.access(&truth.gdap_only[0].tenant_id, ARM).await;

    // A customer's own token lists no relationships.
    let customer = f.access(&truth.tenants[0].tenant_id, GRAPH).await;
    let (none, _) = f.graph_all(path, &customer).await;
    assert!(none.is_empty());
}

#[tokio::test]
async fn removed_customers_vanish_everywhere_and_lose_access() {
    let f = start(3).await;
    let gone = f.sim.customers()[0].tenant_id.clone();
    let rt = f.seeded_rt();
    f.sim.remove_customer(&gone);
    assert_eq!(f.sim.customers().len(), 2);
    let truth = f.sim.ground_truth();
    assert!(truth.tenants.iter().all(|t| t.tenant_id != gone));
    let (status, body) = f.refresh(&gone, &rt, GRAPH).await;
    assert_eq!(status, 400);
    assert_eq!(body["error_codes"], json!([50020]));
    let partner = f.access(&f.sim.partner_tenant_id(), GRAPH).await;
    let (rels, _) = f
        .graph_all(
            "/v1.0/tenantRelationships/delegatedAdminRelationships",
            &partner,
        )
        .await;
    assert!(rels
        .iter()
        .all(|r| r["customer"]["tenantId"] != gone.as_str()));
    let pc = f
        .access(
            &f.sim.partner_tenant_id(),
            "https://api.partnercenter.microsoft.com/.default",
        )
        .await;
    let r = f
        .get(
            format!("{}/v1/customers", f.sim.partner_center_url()),
            Some(&pc),
        )
        .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn applications_filter_and_select_give_the_sam_app_credentials() {
    let f = start(1).await;
    let truth = f.sim.ground_truth();
    let partner = f.access(&f.sim.partner_tenant_id(), GRAPH).await;
    let app_id = f.sim.partner_client_id();
    let path = format!(
        "/v1.0/applications?$filter=appId%20eq%20%27{app_id}%27&$select=appId,passwordCredentials,keyCredentials"
    );
    let r = f
        .get(format!("{}{path}", f.sim.graph_url()), Some(&partner))
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert!(body["@odata.context"]
        .as_str()
        .unwrap()
        .ends_with("$metadata#applications(appId,passwordCredentials,keyCredentials)"));
    let apps = body["value"].as_array().unwrap();
    assert_eq!(apps.len(), 1);
    let app = apps[0].as_object().unwrap();
    let mut keys: Vec<&String> = app.keys().collect();
    keys.sort();
    assert_eq!(keys, ["appId", "keyCredentials", "passwordCredentials"]);
    let mut got: Vec<(String, &str, String)> = Vec::new();
    for (kind, list) in [
        ("secret", "passwordCredentials"),
        ("certificate", "keyCredentials"),
    ] {
        for c in app[list].as_array().unwrap() {
            got.push((
                c["keyId"].as_str().unwrap().into(),
                kind,
                c["endDateTime"].as_str().unwrap().into(),
            ));
        }
    }
    let want: Vec<(String, &str, String)> = truth
        .partner_app
        .credentials
        .iter()
        .map(|c| {
            (
                c.key_id.clone(),
                c.kind.as_str(),
                tenantwatch_common::time::rfc3339(c.end),
            )
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(truth.partner_app.app_id, app_id);
    let soon = truth
        .partner_app
        .credentials
        .iter()
        .filter(|c| c.kind == "secret" && c.end - f.sim.now() < 30 * 86_400)
        .count();
    assert_eq!(soon, 1);
    // No secret values, only hints.
    assert!(!body.to_string().contains(&f.sim.partner_client_secret()));
    // In a customer tenant the app is not registered.
    let customer = f.access(&f.sim.customers()[0].tenant_id, GRAPH).await;
    let (none, _) = f.graph_all(&path, &customer).await;
    assert!(none.is_empty());
}

#[tokio::test]
async fn resource_graph_builtin_query_pages_to_the_ground_truth() {
    let f = start(8).await;
    let truth = f.sim.ground_truth();
    assert_eq!(f.sim.resource_graph_page_size(), 4);
    let mut multi_page = 0;
    for tt in truth.tenants.iter().chain(&truth.gdap_only) {
        let token = f.access(&tt.tenant_id, ARM).await;
        let (rows, pages) = f.rg_all(&token, arm::resource_graph::query::BUILTIN).await;
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
    let token = f.access(&tt.tenant_id, ARM).await;
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
            json!({"query": arm::resource_graph::query::BUILTIN, "options": {"$top": 2, "$skip": 1}}),
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

    let graph = f.access(&tt.tenant_id, GRAPH).await;
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

#[tokio::test]
async fn faults_next_and_per_tenant_with_each_services_429() {
    let f = start(2).await;
    let [a, b] = [0, 1].map(|i| f.sim.customers()[i].tenant_id.clone());
    let ga = f.access(&a, GRAPH).await;
    let gb = f.access(&b, GRAPH).await;
    let aa = f.access(&a, ARM).await;
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
    let (status, _) = f.refresh(&a, &f.seeded_rt(), GRAPH).await;
    assert_eq!(status, 503);
    let (status, _) = f.refresh(&b, &f.seeded_rt(), GRAPH).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn requests_are_recorded_in_order_with_their_tenant() {
    let f = start(1).await;
    let t = f.sim.customers()[0].tenant_id.clone();
    let token = f.access(&t, GRAPH).await;
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
    let token = f.access(&t.tenant_id, GRAPH).await;
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
