//! Stopping the daemon at awkward moments: SIGKILL and SIGTERM while collectors
//! are in flight against a slow cloud, and SIGTERM while a rotation waits on Entra.
//! Each restart comes back whole, and the refresh token is rotated exactly once.

use std::time::{Duration, Instant};

use azure_sim::{Fault, Service, SimHandle};

use crate::helpers::*;

/// Key Vault `PUT /secrets/{name}` requests: new versions written.
fn versions_written(sim: &SimHandle) -> usize {
    let path = format!("/secrets/{}", sim.secret_name());
    sim.requests()
        .iter()
        .filter(|r| r.service == Service::KeyVault && r.method == "PUT" && r.path == path)
        .count()
}

fn stored_token_valid(sim: &SimHandle) -> bool {
    sim.stored_secret(&sim.secret_name())
        .is_some_and(|v| sim.refresh_token_valid(&v))
}

async fn wait_metrics(d: &Daemon, within: Duration, what: &str, ok: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + within;
    loop {
        let (_, m) = get(d.addr, "/metrics").await;
        if ok(&m) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} not seen within {within:?}:\n{m}\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn all_up(m: &str, sim: &SimHandle) -> bool {
    sim.customers().iter().all(|c| {
        sample(
            m,
            &format!("tenantwatch_tenant_up{{tenant_id=\"{}\"}}", c.tenant_id),
        ) == Some(1.0)
    })
}

/// Waits until the sim has seen more Graph/ARM requests than `before`: collectors
/// are running.
async fn collectors_in_flight(sim: &SimHandle, before: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while sim.request_count(Service::Graph, None) + sim.request_count(Service::Arm, None) <= before
    {
        assert!(Instant::now() < deadline, "collectors never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_mid_cycle_resumes_without_duplicate_or_lost_rotation() {
    // Every request takes 150 ms, so a cycle over 6 tenants is well under way
    // when the signal lands.
    let t = start_sim(6, Duration::from_millis(150)).await;
    append_config(
        &t.config,
        "[rotation]\nschedule = \"*/1 * * * * *\"\nrotate_after = \"1h\"\n\
         [collection]\nschedule = \"*/2 * * * * *\"\n",
    );
    // The stored version is two hours old on the store's clock: due for rotation.
    t.sim.advance_clock(Duration::from_secs(2 * 3600));
    let graph_arm =
        |s: &SimHandle| s.request_count(Service::Graph, None) + s.request_count(Service::Arm, None);

    // 1. SIGKILL in the middle of the first cycle (and of the start-up rotation).
    let mut d = spawn_daemon(&t.config, &[]).await;
    collectors_in_flight(&t.sim, 0).await;
    d.child.start_kill().unwrap();
    d.child.wait().await.unwrap();
    assert!(stored_token_valid(&t.sim), "token lost to SIGKILL");
    let after_kill = versions_written(&t.sim);
    assert!(
        after_kill <= 1,
        "{after_kill} versions from one due rotation"
    );

    // 2. Restarted, it finishes what is due and collects every tenant. SIGTERM
    // lands in the middle of a later cycle.
    let d = spawn_daemon(&t.config, &[]).await;
    wait_metrics(
        &d,
        Duration::from_secs(60),
        "every tenant up after SIGKILL",
        |m| all_up(m, &t.sim),
    )
    .await;
    assert_eq!(
        versions_written(&t.sim),
        1,
        "exactly one rotation:\n{}",
        d.log()
    );
    collectors_in_flight(&t.sim, graph_arm(&t.sim)).await;
    let (code, _) = d.terminate().await;
    assert_eq!(code, Some(0));

    // 3. Restarted again: everything up, the young version left alone.
    let d = spawn_daemon(&t.config, &[]).await;
    wait_metrics(
        &d,
        Duration::from_secs(60),
        "every tenant up after SIGTERM",
        |m| {
            all_up(m, &t.sim)
                && sample(m, "tenantwatch_refresh_token_valid") == Some(1.0)
                && sample(m, "tenantwatch_refresh_token_store_up") == Some(1.0)
        },
    )
    .await;
    // A few more scheduled rotation runs see the version is young.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        versions_written(&t.sim),
        1,
        "no duplicate rotation:\n{}",
        d.log()
    );
    assert!(stored_token_valid(&t.sim));
    let (code, _) = d.terminate().await;
    assert_eq!(code, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_rotation_exits_cleanly_and_keeps_the_token() {
    let t = start_sim(3, Duration::ZERO).await;
    append_config(
        &t.config,
        "[rotation]\nschedule = \"*/1 * * * * *\"\nrotate_after = \"1h\"\n",
    );
    let before = t.sim.stored_secret(&t.sim.secret_name()).unwrap();
    let d = spawn_daemon(&t.config, &[]).await;
    wait_ready(d.addr, Duration::from_secs(30)).await;
    // Entra holds the rotation's redemption (at the partner tenant) open; then the
    // version becomes due and the next scheduled run starts a rotation.
    let partner = t.sim.partner_tenant_id();
    t.sim
        .inject_tenant_fault(&partner, Service::Token, Fault::Hang);
    let held = t.sim.request_count(Service::Token, Some(&partner));
    t.sim.advance_clock(Duration::from_secs(2 * 3600));
    let deadline = Instant::now() + Duration::from_secs(20);
    while t.sim.request_count(Service::Token, Some(&partner)) == held {
        assert!(
            Instant::now() < deadline,
            "no rotation started:\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (code, took) = d.terminate().await;
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
    assert_eq!(
        t.sim.stored_secret(&t.sim.secret_name()).unwrap(),
        before,
        "nothing written"
    );
    assert!(stored_token_valid(&t.sim));

    // Restarted with Entra answering, the interrupted rotation happens, once.
    t.sim.clear_tenant_faults(&partner);
    let d = spawn_daemon(&t.config, &[]).await;
    wait_metrics(&d, Duration::from_secs(30), "the rotation", |m| {
        sample(
            m,
            "tenantwatch_refresh_token_rotations_total{result=\"success\"}",
        ) == Some(1.0)
    })
    .await;
    assert_eq!(versions_written(&t.sim), 1);
    assert_ne!(t.sim.stored_secret(&t.sim.secret_name()).unwrap(), before);
    assert!(stored_token_valid(&t.sim));
}
