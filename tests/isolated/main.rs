//! Tests that run in a process of their own, not beside the others: a hanging
//! tenant. In full-suite runs on a 2-core machine it twice saw the daemon finish
//! its collectors in 3 s and yet not observe `/readyz` turn green for 90 s; alone
//! it always passes in ~3 s. Until that interference is understood it runs here,
//! and it prints the daemon's log when it times out.

#[allow(dead_code)]
#[path = "../it/helpers.rs"]
mod helpers;

use std::time::{Duration, Instant};

use azure_sim::{Fault, Service};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_tenant_delays_nobody_else() {
    let t = start_sim(10, Duration::ZERO).await;
    append_config(&t.config, "[collection]\ntenant_timeout = \"3s\"\n");
    let stuck = t.sim.customers()[4].tenant_id.clone();
    t.sim
        .inject_tenant_fault(&stuck, Service::Graph, Fault::Hang);
    t.sim.inject_tenant_fault(&stuck, Service::Arm, Fault::Hang);
    let started = Instant::now();
    let d = spawn_daemon(&t.config, &[]).await;
    while get(d.addr, "/readyz").await.0 != 200 {
        let tail: String = d
            .log()
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "not ready; last log lines (newest first):\n{tail}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let took = started.elapsed();
    let (_, text) = get(d.addr, "/metrics").await;
    for c in t.sim.customers() {
        let up = sample(
            &text,
            &format!("tenantwatch_tenant_up{{tenant_id=\"{}\"}}", c.tenant_id),
        );
        assert_eq!(
            up,
            Some(if c.tenant_id == stuck { 0.0 } else { 1.0 }),
            "{}",
            c.tenant_id
        );
    }
    // Every collector waited at most its 3 s timeout for the stuck tenant, in parallel with the rest.
    eprintln!("ready with one hanging tenant after {took:?}");
    // Seven collectors, each waiting at most 3 s for the stuck tenant: far below the
    // 7 × 10 tenants × 3 s a serial or unbounded wait would take. Loose for loaded CI.
    assert!(took < Duration::from_secs(60), "took {took:?}");
}
