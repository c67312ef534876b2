//! `[[tenants.groups]]`: every tenant in exactly one group, the first that
//! matches in config order, else `none`.

use std::time::Duration;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tenant_gets_the_first_matching_group_or_none() {
    let t = start_sim(6, Duration::ZERO).await;
    let truth = t.sim.ground_truth();
    let (first, second) = (&truth.tenants[0], &truth.tenants[1]);
    // gold: the first customer by domain, and the second by id, which
    // silver would also match; silver: every Partner Center domain but
    // the third customer's, excluded.
    let third = &truth.tenants[2];
    append_config(
        &t.config,
        &format!(
            "[tenants]\nsources = [\"partner_center\", \"gdap\"]\n\
             [[tenants.groups]]\nname = \"gold\"\ninclude = [\"{}\", \"{}\"]\n\
             [[tenants.groups]]\nname = \"silver\"\ninclude = [\"*.*\"]\nexclude = [\"{}\"]\n",
            first.domain.to_uppercase(),
            second.tenant_id,
            third.domain
        ),
    );
    let d = spawn_daemon(&t.config, &[]).await;
    wait_ready(d.addr, Duration::from_secs(60)).await;
    let (_, text) = get(d.addr, "/metrics").await;
    let text = one_partner(&text);
    let groups: Vec<(&str, &str)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("tenantwatch_tenant_group{tenant_id=\""))
        .filter_map(|l| {
            let (id, rest) = l.split_once("\",group=\"")?;
            let (group, value) = rest.split_once("\"} ")?;
            assert_eq!(value, "1");
            Some((id, group))
        })
        .collect();
    let all: Vec<_> = truth.tenants.iter().chain(&truth.gdap_only).collect();
    assert_eq!(groups.len(), all.len(), "one series per tenant:\n{text}");
    for tt in &all {
        let want = if tt.tenant_id == first.tenant_id || tt.tenant_id == second.tenant_id {
            "gold"
        } else if tt.tenant_id == third.tenant_id || !tt.in_partner_center {
            // Excluded from silver; the GDAP-only tenant has no domain from discovery.
            "none"
        } else {
            "silver"
        };
        assert!(
            groups.contains(&(tt.tenant_id.as_str(), want)),
            "{} should be {want}: {groups:?}",
            tt.name
        );
    }
    // The status page filters by group.
    let (status, page) = get(d.addr, "/?group=gold").await;
    assert_eq!(status, 200);
    let rows: Vec<&str> = page
        .split("<tr data-tenant=\"")
        .skip(1)
        .filter_map(|r| r.split('"').next())
        .collect();
    let mut want = vec![first.tenant_id.as_str(), second.tenant_id.as_str()];
    want.sort();
    let mut rows_sorted = rows.clone();
    rows_sorted.sort();
    assert_eq!(rows_sorted, want, "{page}");
    let (_, all_rows) = get(d.addr, "/").await;
    assert!(all_rows.matches("<tr data-tenant=").count() > 2);
}
