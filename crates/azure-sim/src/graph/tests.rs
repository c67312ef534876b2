//! Microsoft Graph end to end: paging every collection to the end gives
//! the ground truth; `$count`, `$top`, `$filter` and `$select` rules; GDAP
//! against Partner Center; the SAM app's credentials.

use std::collections::BTreeMap;

use serde_json::Value;
use tenantwatch_common::time::rfc3339;

use crate::test_support::{start, ARM_SCOPE, GRAPH_SCOPE};
use crate::truth::TenantTruth;

#[tokio::test]
async fn graph_m365_endpoints_page_to_the_ground_truth() {
    let f = start(6).await;
    let truth = f.sim.ground_truth();
    assert_eq!(truth.tenants.len(), 6);
    assert_eq!(truth.gdap_only.len(), 1);
    let mut synced = 0;
    for tt in truth.tenants.iter().chain(&truth.gdap_only) {
        let token = f.access(&tt.tenant_id, GRAPH_SCOPE).await;
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

        let (subs, _) = f.graph_all("/v1.0/directory/subscriptions", &token).await;
        let got: Vec<(String, String, String, bool, u64, String)> = subs
            .iter()
            .map(|s| {
                (
                    s["id"].as_str().unwrap().into(),
                    s["skuPartNumber"].as_str().unwrap().into(),
                    s["status"].as_str().unwrap().into(),
                    s["isTrial"].as_bool().unwrap(),
                    s["totalLicenses"].as_u64().unwrap(),
                    s["nextLifecycleDateTime"].as_str().unwrap().into(),
                )
            })
            .collect();
        let want: Vec<_> = tt
            .directory_subscriptions
            .iter()
            .map(|d| {
                (
                    d.id.clone(),
                    d.sku_part_number.clone(),
                    d.status.clone(),
                    d.trial,
                    d.total_licenses,
                    rfc3339(d.next_lifecycle),
                )
            })
            .collect();
        assert_eq!(got, want);
        // The commerce id is the SKU's subscription id; the owner is the partner.
        for (s, k) in subs.iter().zip(&skus) {
            assert_eq!(s["commerceSubscriptionId"], k["subscriptionIds"][0]);
            assert_eq!(s["ownerTenantId"], f.sim.partner_tenant_id());
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
                assert_eq!(o["onPremisesLastSyncDateTime"], rfc3339(ts));
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
    let token = f.access(&tenant, GRAPH_SCOPE).await;
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

    let partner = f.access(&f.sim.partner_tenant_id(), GRAPH_SCOPE).await;
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
    let arm = f.access(&tenant, ARM_SCOPE).await;
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
    let partner = f.access(&f.sim.partner_tenant_id(), GRAPH_SCOPE).await;
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
            assert_eq!(r["endDateTime"], rfc3339(g.end));
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
    f.access(&legacy.tenant_id, ARM_SCOPE).await;
    f.access(&truth.gdap_only[0].tenant_id, ARM_SCOPE).await;

    // A customer's own token lists no relationships.
    let customer = f.access(&truth.tenants[0].tenant_id, GRAPH_SCOPE).await;
    let (none, _) = f.graph_all(path, &customer).await;
    assert!(none.is_empty());
}

#[tokio::test]
async fn gdap_access_assignments_match_the_ground_truth() {
    let f = start(12).await;
    let truth = f.sim.ground_truth();
    let partner = f.access(&f.sim.partner_tenant_id(), GRAPH_SCOPE).await;
    let base = "/v1.0/tenantRelationships/delegatedAdminRelationships";
    let mut seen = (0, 0, 0);
    for g in truth
        .tenants
        .iter()
        .chain(&truth.gdap_only)
        .flat_map(|t| &t.gdap)
    {
        let path = format!("{base}/{}/accessAssignments", g.relationship_id);
        let (got, _) = f.graph_all(&path, &partner).await;
        assert_eq!(got.len(), g.access_assignments.len(), "{path}");
        for (a, t) in got.iter().zip(&g.access_assignments) {
            assert_eq!(
                a["@odata.type"],
                "#microsoft.graph.delegatedAdminAccessAssignment"
            );
            assert!(a["@odata.etag"].as_str().unwrap().starts_with("W/\""));
            assert_eq!(a["id"], t.id);
            assert_eq!(a["status"], t.status);
            assert_eq!(a["accessContainer"]["accessContainerType"], "securityGroup");
            let roles: Vec<&str> = a["accessDetails"]["unifiedRoles"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["roleDefinitionId"].as_str().unwrap())
                .collect();
            assert_eq!(roles, t.roles);
            // Only roles the relationship holds can be assigned.
            assert!(roles.iter().all(|r| g.roles.iter().any(|x| x.id == *r)));
        }
        if g.status == "active" && g.access_assignments.is_empty() {
            seen.0 += 1;
        }
        if g.access_assignments.iter().any(|a| a.status == "pending") {
            seen.1 += 1;
        }
        if g.global_admin {
            assert!(!g.auto_extend, "Global Administrator never auto-extends");
            seen.2 += 1;
        }
    }
    assert!(seen.0 > 0 && seen.1 > 0 && seen.2 > 0, "{seen:?}");
    // $filter on status, as documented.
    let active = truth
        .tenants
        .iter()
        .flat_map(|t| &t.gdap)
        .find(|g| g.access_assignments.len() == 2)
        .unwrap();
    let (only, _) = f
        .graph_all(
            &format!(
                "{base}/{}/accessAssignments?$filter=status%20eq%20'pending'",
                active.relationship_id
            ),
            &partner,
        )
        .await;
    assert!(only.is_empty());
    // An unknown relationship is a Graph 404 error body.
    let r = f
        .get(
            format!("{}{base}/nope/accessAssignments", f.sim.graph_url()),
            Some(&partner),
        )
        .await;
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "NotFound");
    // A customer's own token finds no relationship of the partner.
    let customer = f.access(&truth.tenants[0].tenant_id, GRAPH_SCOPE).await;
    let r = f
        .get(
            format!(
                "{}{base}/{}/accessAssignments",
                f.sim.graph_url(),
                active.relationship_id
            ),
            Some(&customer),
        )
        .await;
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn applications_filter_and_select_give_the_sam_app_credentials() {
    let f = start(1).await;
    let truth = f.sim.ground_truth();
    let partner = f.access(&f.sim.partner_tenant_id(), GRAPH_SCOPE).await;
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
        .map(|c| (c.key_id.clone(), c.kind.as_str(), rfc3339(c.end)))
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
    let customer = f.access(&f.sim.customers()[0].tenant_id, GRAPH_SCOPE).await;
    let (none, _) = f.graph_all(&path, &customer).await;
    assert!(none.is_empty());
}

/// Each partner's tenant lists its own GDAP relationships (ids ending in
/// its tenant id, with its customers, its GDAP-only tenant and its former
/// customer) and its own SAM app; a customer two partners share has a
/// relationship with each, and its `organization` is the same to both.
#[tokio::test]
async fn each_partner_sees_its_own_relationships_and_app() {
    let f = crate::test_support::start_partners(10, 2).await;
    let path = "/v1.0/tenantRelationships/delegatedAdminRelationships?$top=300";
    let mut shared_rels = Vec::new();
    for k in 0..2 {
        let p = f.partner(k);
        let token = f.access_as(k, &p.tenant_id, GRAPH_SCOPE).await;
        let (rels, _) = f.graph_all(path, &token).await;
        assert!(!rels.is_empty());
        let mine: Vec<&str> = p
            .customers
            .iter()
            .chain(&p.gdap_only)
            .map(|t| t.tenant_id.as_str())
            .collect();
        let other = f.partner(1 - k);
        let theirs: Vec<&str> = other
            .customers
            .iter()
            .chain(&other.gdap_only)
            .map(|t| t.tenant_id.as_str())
            .filter(|id| !mine.contains(id))
            .collect();
        for r in &rels {
            assert!(r["id"].as_str().unwrap().ends_with(&p.tenant_id), "{r}");
            let customer = r["customer"]["tenantId"].as_str().unwrap();
            // Besides its own customers only its former customer, terminated;
            // never the other partner's.
            assert!(
                mine.contains(&customer) || r["status"] == "terminated",
                "partner {k}: {r}"
            );
            assert!(!theirs.contains(&customer), "partner {k}: {r}");
        }
        assert!(rels
            .iter()
            .any(|r| r["customer"]["tenantId"] == p.gdap_only[0].tenant_id.as_str()));
        let shared = &f.partner(1).customers[0].tenant_id;
        shared_rels.extend(
            rels.iter()
                .filter(|r| r["customer"]["tenantId"] == shared.as_str() && r["status"] == "active")
                .map(|r| r["id"].as_str().unwrap().to_string()),
        );

        let (apps, _) = f.graph_all("/v1.0/applications", &token).await;
        let ids: Vec<&str> = apps.iter().map(|a| a["appId"].as_str().unwrap()).collect();
        assert!(ids.contains(&p.client_id.as_str()), "{ids:?}");
        // The vault reader lives in partner 0's tenant only.
        assert_eq!(ids.len(), if k == 0 { 2 } else { 1 });
        let org = f
            .get(
                format!("{}/v1.0/organization", f.sim.graph_url()),
                Some(&token),
            )
            .await;
        let org: Value = org.json().await.unwrap();
        assert_eq!(
            org["value"][0]["partnerTenantType"],
            "ResellerPartnerDelegatedAdmin"
        );
    }
    assert_eq!(
        shared_rels.len(),
        2,
        "one active relationship with each partner"
    );
    assert_ne!(shared_rels[0], shared_rels[1]);

    let shared = f.partner(1).customers[0].tenant_id.clone();
    let mut orgs = Vec::new();
    for k in 0..2 {
        let token = f.access_as(k, &shared, GRAPH_SCOPE).await;
        let r = f
            .get(
                format!("{}/v1.0/organization", f.sim.graph_url()),
                Some(&token),
            )
            .await;
        orgs.push(r.json::<Value>().await.unwrap()["value"].clone());
    }
    assert_eq!(orgs[0], orgs[1]);
}
