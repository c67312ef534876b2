//! The `cost` collector against the simulator's Cost Management query, its
//! QPU limits made small: every subscription's cost equals the ground truth
//! although some queries were answered 429, every tenant stays up, and once
//! `arm_subscriptions` has listed the subscriptions `cost` does not list
//! them again.

use std::time::Duration;

use crate::helpers::*;

/// Every published limit × 0.2: Cost Management allows 2.4 QPU per 10 s
/// per tenant, so a tenant with two subscriptions (four queries at once)
/// meets a 429 before the daemon has heard what is left.
const SCALE: f64 = 0.2;

/// One cycle at start-up and then none (once a year), except `cost`, every 20 s.
const ONCE: &str = "[collection]\nschedule = \"0 0 0 1 1 *\"\ntenant_timeout = \"60s\"\n[tenants]\nsources = [\"partner_center\", \"gdap\"]\n[collectors.cost]\nenabled = true\nschedule = \"*/20 * * * * *\"\ntimeout = \"120s\"\n";

/// `GET /subscriptions` requests the sim received.
fn subscription_lists(sim: &azure_sim::SimHandle) -> usize {
    sim.requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.eq_ignore_ascii_case("/subscriptions"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cost_matches_the_ground_truth_through_429s_and_every_tenant_stays_up() {
    let t = start_sim(8, Duration::ZERO).await;
    append_config(&t.config, ONCE);
    t.sim.set_limits(true, SCALE);
    let truth = t.sim.ground_truth();
    let all: Vec<_> = truth.tenants.iter().chain(truth.gdap_only.iter()).collect();
    assert!(
        all.iter().any(|tt| tt.subscriptions.len() >= 2),
        "some tenant has two subscriptions, so the scaled limit binds"
    );
    let expected: Vec<(String, f64)> = all
        .iter()
        .flat_map(|tt| {
            tt.subscriptions.iter().flat_map(move |s| {
                let labels = format!(
                    "{{tenant_id=\"{}\",subscription_id=\"{}\",currency=\"{}\"}}",
                    tt.tenant_id, s.subscription_id, s.currency
                );
                [
                    (
                        format!("tenantwatch_azure_cost_month_to_date{labels}"),
                        s.cost_month_to_date,
                    ),
                    (
                        format!("tenantwatch_azure_cost_last_month{labels}"),
                        s.cost_last_month,
                    ),
                ]
            })
        })
        .collect();
    assert!(!expected.is_empty());

    let d = spawn_daemon(&t.config, &[]).await;
    let m = wait_for(
        d.addr,
        Duration::from_secs(150),
        "every cost series and every tenant up",
        |m| {
            expected.iter().all(|(k, _)| sample(m, k).is_some())
                && all.iter().all(|tt| {
                    sample(
                        m,
                        &format!("tenantwatch_tenant_up{{tenant_id=\"{}\"}}", tt.tenant_id),
                    ) == Some(1.0)
                })
        },
    )
    .await;
    for (k, v) in &expected {
        assert_eq!(sample(&m, k), Some(*v), "{k}");
    }
    // One tenant's series, for whoever reads the test's output.
    if let Some(tt) = all.iter().find(|tt| !tt.subscriptions.is_empty()) {
        for l in m.lines().filter(|l| {
            l.contains(&format!("tenant_id=\"{}\"", tt.tenant_id))
                && (l.starts_with("tenantwatch_azure_cost_") || l.contains("cost_management"))
        }) {
            eprintln!("{l}");
        }
    }
    // Nothing beyond the truth: one series per subscription and timeframe.
    let cost_lines = m
        .lines()
        .filter(|l| l.starts_with("tenantwatch_azure_cost_"))
        .count();
    assert_eq!(cost_lines, expected.len(), "{m}");

    // Cost Management did throttle, the daemon counted it and exports what
    // the quota headers said is left.
    let throttled: u64 = t
        .sim
        .throttled()
        .iter()
        .filter(|x| x.limit.starts_with("cost_management"))
        .map(|x| x.count)
        .sum();
    assert!(throttled >= 1, "{:?}", t.sim.throttled());
    assert!(
        sample(
            &m,
            "tenantwatch_api_throttled_total{api=\"cost_management\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "{m}"
    );
    assert!(
        m.lines().any(|l| l
            .starts_with("tenantwatch_api_ratelimit_remaining{api=\"cost_management\",")
            && l.contains("kind=\"qpu\"")),
        "{m}"
    );

    // A later run takes the subscriptions from arm_subscriptions, which ran
    // once: no further listing, the same values.
    let last_run = "tenantwatch_collector_last_run_timestamp_seconds{collector=\"cost\"}";
    let (lists, first_run) = (subscription_lists(&t.sim), sample(&m, last_run));
    let m = wait_for(d.addr, Duration::from_secs(120), "another cost run", |m| {
        sample(m, last_run) > first_run
    })
    .await;
    assert_eq!(
        subscription_lists(&t.sim),
        lists,
        "cost listed subscriptions again"
    );
    for (k, v) in &expected {
        assert_eq!(sample(&m, k), Some(*v), "{k}");
    }
    d.terminate().await;
}
