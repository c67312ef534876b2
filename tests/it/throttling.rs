//! Microsoft's published limits, made small in the simulator: without pacing
//! the daemon collides with them; with pacing (the default) at most 1 % of its
//! requests are answered 429 and every tenant still comes up.

use std::time::Duration;

use azure_sim::Service;

use crate::helpers::*;

/// Every published limit × 0.2: Resource Graph allows 3 queries per 5 s per
/// user and tenant, which a tenant of more than three pages (most, at the
/// simulator's default page size) exceeds; the others stay out of the way.
const SCALE: f64 = 0.2;

const TENANTS: usize = 12;

/// One cycle at start-up and then none (once a year), so the counts are one cycle's.
const ONCE: &str = "[collection]\nschedule = \"0 0 0 1 1 *\"\ntenant_timeout = \"60s\"\n[tenants]\nsources = [\"partner_center\", \"gdap\"]\n";

/// Requests to the resource APIs the limits apply to.
fn api_requests(sim: &azure_sim::SimHandle) -> u64 {
    [Service::Graph, Service::Arm, Service::PartnerCenter]
        .into_iter()
        .map(|s| sim.request_count(s, None))
        .sum()
}

fn throttled(sim: &azure_sim::SimHandle) -> u64 {
    sim.throttled().iter().map(|t| t.count).sum()
}

/// Starts the daemon with `env`, waits until every tenant's Resource Graph
/// collector has succeeded once, and returns (429s the sim sent, API
/// requests it received, the scrape) for that run.
async fn one_cycle(t: &TestSim, env: &[(&str, &str)]) -> (u64, u64, String) {
    // Buckets start full for each run.
    t.sim.set_limits(true, SCALE);
    let (throttled0, requests0) = (throttled(&t.sim), api_requests(&t.sim));
    let d = spawn_daemon(&t.config, env).await;
    let tenants = t.sim.customers();
    let metrics = wait_for(
        d.addr,
        Duration::from_secs(120),
        "every tenant up with Resource Graph collected",
        |m| {
            tenants.iter().all(|c| {
                sample(m, &format!("tenantwatch_tenant_up{{tenant_id=\"{}\"}}", c.tenant_id))
                    == Some(1.0)
                    && m.contains(&format!(
                        "tenantwatch_collector_last_success_timestamp_seconds{{tenant_id=\"{}\",collector=\"resource_graph\"}}",
                        c.tenant_id
                    ))
            })
        },
    )
    .await;
    d.terminate().await;
    (
        throttled(&t.sim) - throttled0,
        api_requests(&t.sim) - requests0,
        metrics,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pacing_stays_under_the_limits_that_unpaced_requests_collide_with() {
    let t = start_sim(TENANTS, Duration::ZERO).await;
    append_config(&t.config, ONCE);
    // The limits force collisions on anyone who does not pace: more than
    // three Resource Graph pages in a row for some tenants.
    let over: usize = t
        .sim
        .customers()
        .iter()
        .filter(|c| t.sim.resource_graph_pages(&c.tenant_id) > 3)
        .count();
    assert!(over >= 3, "the scaled limit binds for {over} tenants");

    let (unpaced_429, unpaced_requests, m) =
        one_cycle(&t, &[("TENANTWATCH__COLLECTION__PACING", "false")]).await;
    let ceiling = unpaced_requests / 100;
    assert!(
        unpaced_429 > ceiling,
        "without pacing {unpaced_429} 429s in {unpaced_requests} requests, expected more than 1 %"
    );
    // The daemon counted the 429s it received.
    assert_eq!(
        sample(
            &m,
            "tenantwatch_api_throttled_total{api=\"resource_graph\"}"
        ),
        Some(unpaced_429 as f64),
        "{m}"
    );

    let (paced_429, paced_requests, m) = one_cycle(&t, &[]).await;
    eprintln!(
        "unpaced: {unpaced_429} 429s / {unpaced_requests}; paced: {paced_429} / {paced_requests}"
    );
    assert!(
        paced_429 * 100 <= paced_requests,
        "with pacing {paced_429} 429s in {paced_requests} requests, more than 1 %"
    );
    assert!(paced_429 < unpaced_429);
    let waited = sample(
        &m,
        "tenantwatch_api_budget_wait_seconds_total{api=\"resource_graph\",collector=\"resource_graph\"}",
    )
    .unwrap_or(0.0);
    assert!(
        waited > 0.0,
        "Resource Graph requests waited for their budget:\n{m}"
    );
}

/// Partner Center allows 500 requests a minute for the whole partner, which
/// `partner_subscriptions` (one request per customer) meets first: scaled to
/// 10 a minute, 20 customers are twice the bucket. Unpaced, the requests
/// collide and each `Retry-After` lets the queued ones collide again; paced
/// at the same limit (told through `collection.partner_center_limit`, as an
/// operator would for a different published number), none is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_center_is_paced_to_its_per_partner_limit() {
    const SCALE: f64 = 0.02; // 500 a minute -> 10
    let t = start_sim(20, Duration::ZERO).await;
    let only_pc = only_collectors(&["partner_subscriptions"]);
    append_config(
        &t.config,
        &format!(
            "[collection]\nschedule = \"0 0 0 1 1 *\"\ntenant_timeout = \"120s\"\napi_budget_share = 0.9\npartner_center_limit = 10\n{only_pc}"
        ),
    );
    let customers = t.sim.customers();
    let run = |env: Vec<(&'static str, &'static str)>| {
        let t = &t;
        let customers = &customers;
        async move {
            t.sim.set_limits(true, SCALE);
            let before = t.sim.throttled_count(Service::PartnerCenter);
            let d = spawn_daemon(&t.config, &env).await;
            let done = format!(
                "tenantwatch_collector_duration_seconds_count{{collector=\"partner_subscriptions\"}} {}",
                customers.len()
            );
            let m = wait_for(
                d.addr,
                Duration::from_secs(150),
                "partner_subscriptions run for every customer",
                |m| m.contains(&done),
            )
            .await;
            d.terminate().await;
            (t.sim.throttled_count(Service::PartnerCenter) - before, m)
        }
    };
    let (unpaced, _) = run(vec![("TENANTWATCH__COLLECTION__PACING", "false")]).await;
    assert!(
        unpaced > 0,
        "unpaced requests collide with the scaled limit"
    );
    let (paced, m) = run(vec![]).await;
    eprintln!("Partner Center 429s: unpaced {unpaced}, paced {paced}");
    assert_eq!(paced, 0, "{m}");
    assert_eq!(
        sample(
            &m,
            "tenantwatch_collector_runs_total{collector=\"partner_subscriptions\",result=\"success\"}"
        ),
        Some(customers.len() as f64),
        "every customer's subscriptions read:\n{m}"
    );
    assert!(
        sample(
            &m,
            "tenantwatch_api_budget_wait_seconds_total{api=\"partner_center\",collector=\"partner_subscriptions\"}"
        )
        .unwrap_or(0.0)
            > 0.0,
        "it waited for its budget:\n{m}"
    );
}
