//! The token broker against the sim, in-process: single-flight per (tenant, API),
//! and different keys never waiting on each other.

use std::time::{Duration, Instant};

use azure_sim::Service;
use tenantwatch_daemon::daemon::Components;
use tenantwatch_daemon::model::Api;
use tenantwatch_daemon::support::secret::ExposeSecret;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_callers_share_one_token_request() {
    // Latency keeps the first request in flight while the other 99 arrive.
    let t = start_sim(2, Duration::from_millis(100)).await;
    let s = settings(&t.config, &[]);
    let c = Components::build(&s).unwrap();
    c.broker.load_from_store().await.unwrap();
    let tenant = t.sim.customers()[0].tenant_id.clone();
    let before = t.sim.request_count(Service::Token, Some(&tenant));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (b, tenant) = (c.broker.clone(), tenant.clone());
            tokio::spawn(async move { b.token(&tenant, Api::Graph).await })
        })
        .collect();
    let mut tokens = Vec::new();
    for task in tasks {
        tokens.push(
            task.await
                .unwrap()
                .expect("token")
                .expose_secret()
                .to_string(),
        );
    }
    let requests = t.sim.request_count(Service::Token, Some(&tenant)) - before;
    eprintln!("100 concurrent callers for one (tenant, scope): {requests} token request(s)");
    assert_eq!(requests, 1);
    assert!(tokens.iter().all(|x| x == &tokens[0]));
    // A later caller is served from the cache.
    c.broker.token(&tenant, Api::Graph).await.unwrap();
    assert_eq!(
        t.sim.request_count(Service::Token, Some(&tenant)) - before,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn different_tenants_are_minted_in_parallel() {
    let t = start_sim(8, Duration::from_millis(500)).await;
    let s = settings(&t.config, &[]);
    let c = Components::build(&s).unwrap();
    c.broker.load_from_store().await.unwrap();
    let started = Instant::now();
    let tasks: Vec<_> = t
        .sim
        .customers()
        .into_iter()
        .map(|cust| {
            let b = c.broker.clone();
            tokio::spawn(async move { b.token(&cust.tenant_id, Api::Graph).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().expect("token");
    }
    // Eight 500 ms requests one after another would take 4 s; a lock held across
    // HTTP calls would serialise them. The bound is loose on purpose.
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "took {took:?}");
}
