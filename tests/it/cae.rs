//! Continuous Access Evaluation as an operator meets it: the daemon declares
//! `cp1`, so Graph and ARM give it long-lived tokens; when a critical event
//! revokes them, a claims challenge costs one redemption per API and the
//! tenant stays up, and a revoked session shows at once as
//! `refresh_token_revoked` instead of an hour later.

use std::time::Duration;

use crate::helpers::*;

fn every_second(config: &std::path::Path) {
    append_config(
        config,
        "[collection]\nschedule = \"*/1 * * * * *\"\n[tenants]\nschedule = \"*/1 * * * * *\"\n",
    );
}

fn tenant_requests(t: &TestSim, tenant: &str) -> u64 {
    t.sim.request_count(azure_sim::Service::Token, Some(tenant))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claims_challenge_costs_one_redemption_per_api_and_the_tenant_stays_up() {
    let t = start_sim(2, Duration::ZERO).await;
    every_second(&t.config);
    let d = spawn_daemon(&t.config, &[]).await;
    wait_ready(d.addr, Duration::from_secs(30)).await;
    let customers = t.sim.customers();
    let (hit, other) = (&customers[0].tenant_id, &customers[1].tenant_id);
    let up = |id: &str| format!("tenantwatch_tenant_up{{tenant_id=\"{id}\"}}");
    wait_for(d.addr, Duration::from_secs(20), "both up", |m| {
        sample(m, &up(hit)) == Some(1.0) && sample(m, &up(other)) == Some(1.0)
    })
    .await;
    // Long-lived CAE tokens: a few cycles cost no token request at all.
    let (hit_before, other_before) = (tenant_requests(&t, hit), tenant_requests(&t, other));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(tenant_requests(&t, hit), hit_before, "tokens cached");

    // A Conditional Access policy changes in one tenant: Graph and ARM
    // challenge its tokens (issued at least a second before the event).
    t.sim.advance_clock(Duration::from_secs(2));
    t.sim.cae_event(hit);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while tenant_requests(&t, hit) < hit_before + 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "no redemption after the challenge: {} token requests",
            tenant_requests(&t, hit) - hit_before
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Several more cycles: one redemption for Graph and one for ARM, no loop.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        tenant_requests(&t, hit) - hit_before,
        2,
        "one redemption per API after the challenge"
    );
    assert_eq!(
        tenant_requests(&t, other),
        other_before,
        "other tenant untouched"
    );
    let (_, m) = get(d.addr, "/metrics").await;
    assert_eq!(sample(&m, &up(hit)), Some(1.0), "{m}");
    assert!(
        !m.contains(&format!(
            "tenantwatch_tenant_token_error{{tenant_id=\"{hit}\""
        )),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_sessions_show_at_once_through_the_challenge() {
    let t = start_sim(3, Duration::ZERO).await;
    every_second(&t.config);
    let d = spawn_daemon(&t.config, &[]).await;
    wait_ready(d.addr, Duration::from_secs(30)).await;
    let up = |id: &str| format!("tenantwatch_tenant_up{{tenant_id=\"{id}\"}}");
    wait_for(d.addr, Duration::from_secs(20), "all up", |m| {
        t.sim
            .customers()
            .iter()
            .all(|c| sample(m, &up(&c.tenant_id)) == Some(1.0))
    })
    .await;
    // The admin's password is reset. The cached tokens have hours left (CAE
    // tokens 20-28 h), yet Graph and ARM refuse them with a challenge, and
    // redeeming with its claims meets the revoked refresh token.
    t.sim.advance_clock(Duration::from_secs(2));
    t.sim.revoke_refresh_tokens();
    let reason = |id: &str| {
        format!(
            "tenantwatch_tenant_token_error{{tenant_id=\"{id}\",reason=\"refresh_token_revoked\"}}"
        )
    };
    let m = wait_for(
        d.addr,
        Duration::from_secs(20),
        "every tenant down as refresh_token_revoked without waiting for expiry",
        |m| {
            t.sim.customers().iter().all(|c| {
                sample(m, &reason(&c.tenant_id)) == Some(1.0)
                    && sample(m, &up(&c.tenant_id)) == Some(0.0)
            })
        },
    )
    .await;
    assert_eq!(sample(&m, "tenantwatch_refresh_token_valid"), Some(0.0));
}
