//! What GDAP relationships actually grant, against the simulator's ground
//! truth: access assignments by status, the roles each relationship holds
//! (by name where known), Global Administrator, and `tenants.gdap_required_roles`.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::helpers::*;

const GLOBAL_READER: &str = "f2ef992c-3afb-46b9-b7cf-a126ee74c451";
const GLOBAL_ADMIN: &str = "62e90394-69f5-4237-9190-012177145e10";
/// A role id tenantwatch has no name for: its label is the id.
const UNNAMED: &str = "dd4db9a0-cc4a-4213-9f9f-70242232d97e";

/// The samples of family `name`, `{labels}` → value.
fn family(metrics: &str, name: &str) -> BTreeMap<String, f64> {
    one_partner(metrics)
        .lines()
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix('{'))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((format!("{{{k}"), v.parse().ok()?))
        })
        .collect()
}

fn labels(pairs: &[(&str, &str)]) -> String {
    let l: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{{{}}}", l.join(","))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gdap_access_roles_and_required_roles_match_the_ground_truth() {
    let t = start_sim(12, Duration::ZERO).await;
    append_config(
        &t.config,
        &format!(
            "[tenants]\nsources = [\"partner_center\", \"gdap\"]\ngdap_required_roles = [\"global reader\", \"{GLOBAL_ADMIN}\", \"{UNNAMED}\"]\n"
        ),
    );
    let d = spawn_daemon(&t.config, &[]).await;
    wait_ready(d.addr, Duration::from_secs(60)).await;
    let text = wait_for(d.addr, Duration::from_secs(30), "required roles", |m| {
        m.contains("tenantwatch_gdap_required_role_missing{")
    })
    .await;
    let truth = t.sim.ground_truth();
    let all: Vec<_> = truth.tenants.iter().chain(&truth.gdap_only).collect();

    let (mut access, mut roles, mut ga, mut missing) = Default::default();
    let put = |m: &mut BTreeMap<String, f64>, l: &[(&str, &str)], v: f64| {
        m.insert(labels(l), v);
    };
    let mut cases = (0, 0, 0);
    for tt in &all {
        let id = tt.tenant_id.as_str();
        let mut granted: Vec<&str> = Vec::new();
        for g in &tt.gdap {
            let rel = g.relationship_id.as_str();
            for r in &g.roles {
                let role = r.name.as_deref().unwrap_or(&r.id);
                put(
                    &mut roles,
                    &[("tenant_id", id), ("relationship_id", rel), ("role", role)],
                    1.0,
                );
            }
            put(
                &mut ga,
                &[("tenant_id", id), ("relationship_id", rel)],
                if g.global_admin { 1.0 } else { 0.0 },
            );
            cases.2 += g.global_admin as usize;
            if g.status != "active" {
                continue;
            }
            let mut by_status = BTreeMap::from([("active", 0.0)]);
            for a in &g.access_assignments {
                *by_status.entry(a.status.as_str()).or_default() += 1.0;
                if a.status == "active" {
                    granted.extend(a.roles.iter().map(String::as_str));
                }
            }
            cases.0 += (by_status["active"] == 0.0) as usize;
            cases.1 += by_status.contains_key("pending") as usize;
            for (status, n) in by_status {
                put(
                    &mut access,
                    &[
                        ("tenant_id", id),
                        ("relationship_id", rel),
                        ("status", status),
                    ],
                    n,
                );
            }
        }
        for (req, label) in [
            (GLOBAL_READER, "Global Reader"),
            (GLOBAL_ADMIN, "Global Administrator"),
            (UNNAMED, UNNAMED),
        ] {
            put(
                &mut missing,
                &[("tenant_id", id), ("role", label)],
                if granted.contains(&req) { 0.0 } else { 1.0 },
            );
        }
    }
    // The world has each case this test is about.
    assert!(cases.0 > 0 && cases.1 > 0 && cases.2 > 0, "{cases:?}");
    assert!(missing.values().any(|v| *v == 0.0) && missing.values().any(|v| *v == 1.0));
    for (name, want) in [
        ("tenantwatch_gdap_relationship_access_assignments", &access),
        ("tenantwatch_gdap_relationship_role", &roles),
        ("tenantwatch_gdap_relationship_global_admin", &ga),
        ("tenantwatch_gdap_required_role_missing", &missing),
    ] {
        assert_eq!(
            &family(&text, name),
            want,
            "{name} differs from the ground truth"
        );
    }
    // One request per active relationship, in the partner's tenant.
    let active = all
        .iter()
        .flat_map(|t| &t.gdap)
        .filter(|g| g.status == "active")
        .count();
    let reads = t
        .sim
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/accessAssignments"))
        .count();
    assert!(
        reads >= active,
        "{reads} reads for {active} active relationships"
    );
}
