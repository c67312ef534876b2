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
    // Every collector refused answered `ok` (those refused together shared
    // the one redemption), and none was refused twice. The ARM token is
    // challenged by whichever of ARM and Resource Graph uses it first.
    let ok = |api: &str| {
        sample(
            &m,
            &format!("tenantwatch_claims_challenges_total{{api=\"{api}\",result=\"ok\"}}"),
        )
        .unwrap_or(0.0)
    };
    assert!(ok("graph") >= 1.0, "{m}");
    assert!(ok("arm") + ok("resource_graph") >= 1.0, "{m}");
    assert!(
        !m.lines()
            .any(|l| l.starts_with("tenantwatch_claims_challenges_total{")
                && !l.contains("result=\"ok\"")),
        "{m}"
    );
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
    assert!(
        m.lines()
            .any(|l| l.starts_with("tenantwatch_claims_challenges_total{")
                && l.contains("result=\"refresh_token_revoked\"")),
        "{m}"
    );
}

/// Token-endpoint requests per customer tenant per day, with and without
/// `cp1`, for docs/benchmarks.md. Time is compressed 720×: one hour is 5 s
/// (the simulator's access tokens live 5 s, Entra's ~1 h), CAE tokens 120 s
/// (24 h, the middle of Entra's 20-28 h), one day is 120 s, and the daemon
/// collects every second. The daemon's tokens age on its own clock (from
/// `expires_in`), so the run compresses lifetimes rather than advancing the
/// sim clock. Run:
/// `cargo test --test it token_requests_per_tenant_per_day -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: takes about five minutes"]
async fn token_requests_per_tenant_per_day() {
    const TENANTS: usize = 20;
    const COMPRESSION: u64 = 720;
    let day = Duration::from_secs(86_400 / COMPRESSION);
    let mut lines = Vec::new();
    for caps in [vec![], vec!["cp1"]] {
        let t = start_sim(TENANTS, Duration::ZERO).await;
        t.sim
            .set_access_token_lifetime(Some(Duration::from_secs(3600 / COMPRESSION)));
        t.sim
            .set_cae_token_lifetime(Some(Duration::from_secs(24 * 3600 / COMPRESSION)));
        every_second(&t.config);
        let list = caps.clone();
        edit_config(&t.config, move |c| {
            let cloud = c
                .get_mut("cloud")
                .and_then(|v| v.as_table_mut())
                .expect("[cloud]");
            cloud.insert(
                "client_capabilities".into(),
                toml::Value::Array(list.iter().map(|s| toml::Value::from(*s)).collect()),
            );
        });
        let d = spawn_daemon(&t.config, &[]).await;
        wait_ready(d.addr, Duration::from_secs(60)).await;
        let customers: Vec<String> = t.sim.customers().into_iter().map(|c| c.tenant_id).collect();
        let count = || -> u64 {
            customers
                .iter()
                .map(|id| t.sim.request_count(azure_sim::Service::Token, Some(id)))
                .sum()
        };
        // The first cycle's tokens are minted; measure the day after it.
        let before = count();
        tokio::time::sleep(day).await;
        let spent = count() - before;
        let per_tenant = spent as f64 / customers.len() as f64;
        let line = format!(
            "cloud.client_capabilities = {caps:?}: {per_tenant:.1} token-endpoint requests per tenant per day ({} tenants, Graph + ARM, {spent} in one compressed day of {} s)",
            customers.len(),
            day.as_secs()
        );
        eprintln!("{line}");
        lines.push(line);
        drop(d);
    }
    println!("\n{}", lines.join("\n"));
}
