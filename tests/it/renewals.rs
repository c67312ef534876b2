//! What ends, and whether it renews by itself: the `m365_subscriptions` and
//! `partner_subscriptions` collectors' families compared with the
//! simulator's ground truth.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_subscriptions_match_the_ground_truth() {
    let t = start_sim(12, Duration::ZERO).await;
    append_config(
        &t.config,
        "[tenants]\nsources = [\"partner_center\", \"gdap\"]\n",
    );
    let d = spawn_daemon(&t.config, &[]).await;
    wait_ready(d.addr, Duration::from_secs(60)).await;
    let truth = t.sim.ground_truth();
    let all: Vec<_> = truth.tenants.iter().chain(&truth.gdap_only).collect();
    let mut lifecycle = BTreeMap::new();
    let mut seats = BTreeMap::new();
    let mut commitments = BTreeMap::new();
    for tt in &all {
        for s in &tt.directory_subscriptions {
            let labels = format!(
                "{{tenant_id=\"{}\",subscription_id=\"{}\",sku=\"{}\",status=\"{}\",trial=\"{}\"}}",
                tt.tenant_id, s.commerce_subscription_id, s.sku_part_number, s.status, s.trial
            );
            lifecycle.insert(labels.clone(), s.next_lifecycle as f64);
            seats.insert(labels, s.total_licenses as f64);
            // Partner Center sells only its own customers' subscriptions.
            if tt.in_partner_center {
                commitments.insert(
                    format!(
                        "{{tenant_id=\"{}\",subscription_id=\"{}\",offer=\"{}\",auto_renew=\"{}\"}}",
                        tt.tenant_id, s.commerce_subscription_id, s.sku_part_number, s.auto_renew
                    ),
                    s.commitment_end as f64,
                );
            }
        }
    }
    assert!(lifecycle.keys().any(|k| k.contains("trial=\"true\"")));
    assert!(commitments
        .keys()
        .any(|k| k.contains("auto_renew=\"false\"")));
    let family = |m: &str, name: &str| -> BTreeMap<String, f64> {
        one_partner(m)
            .lines()
            .filter_map(|l| l.strip_prefix(name))
            .filter(|l| l.starts_with('{'))
            .filter_map(|l| {
                let (k, v) = l.rsplit_once(' ')?;
                Some((k.to_string(), v.parse().ok()?))
            })
            .collect()
    };
    let text = wait_for(d.addr, Duration::from_secs(60), "every subscription", |m| {
        family(
            m,
            "tenantwatch_m365_subscription_next_lifecycle_timestamp_seconds",
        )
        .len()
            == lifecycle.len()
            && family(
                m,
                "tenantwatch_partner_subscription_commitment_end_timestamp_seconds",
            )
            .len()
                == commitments.len()
    })
    .await;
    assert_eq!(
        family(
            &text,
            "tenantwatch_m365_subscription_next_lifecycle_timestamp_seconds"
        ),
        lifecycle
    );
    assert_eq!(
        family(&text, "tenantwatch_m365_subscription_licenses"),
        seats
    );
    assert_eq!(
        family(
            &text,
            "tenantwatch_partner_subscription_commitment_end_timestamp_seconds"
        ),
        commitments
    );
    for c in ["m365_subscriptions", "partner_subscriptions"] {
        assert!(
            !text.lines().any(|l| l.starts_with(&format!(
                "tenantwatch_collector_runs_total{{collector=\"{c}\",result=\"failure\"}}"
            ))),
            "{}",
            d.log()
        );
    }
    // Its freshness is each Partner Center customer's, like any collector's.
    for tt in &truth.tenants {
        assert!(
            sample(
                &text,
                &format!(
                    "tenantwatch_collector_last_success_timestamp_seconds{{tenant_id=\"{}\",collector=\"partner_subscriptions\"}}",
                    tt.tenant_id
                )
            )
            .is_some(),
            "{}",
            tt.name
        );
    }
    // One Partner Center request per Partner Center customer per run, none
    // for the GDAP-only tenant.
    let gdap_only = &truth.gdap_only[0].tenant_id;
    assert!(!t.sim.requests().iter().any(|r| r
        .path
        .contains(&format!("/customers/{gdap_only}/subscriptions"))));
}
