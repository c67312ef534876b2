//! Refresh-token rotation: new versions written and read back, the never-lost
//! guarantee under SIGKILL (against the throttled simulator too), a Key Vault
//! 429 waited out, concurrent rotators, and the file store alike.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::Duration;

use azure_sim::{Fault, Service};
use rand::Rng;
use tenantwatch_daemon::daemon::Components;
use tenantwatch_daemon::support::secret::ExposeSecret;

use crate::helpers::*;

fn rotate_cmd(config: &std::path::Path, env: &[(&str, &str)]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(bin());
    cmd.args(["rotate", "--config"]).arg(config);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Switches a sim config to the file store, seeded with the sim's current token (mode 0600).
fn file_store_env(t: &TestSim) -> (std::path::PathBuf, Vec<(String, String)>) {
    let path = t.config.with_file_name("refresh-token");
    let token = t
        .sim
        .stored_secret(&t.sim.secret_name())
        .expect("seeded secret");
    std::fs::write(&path, token).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let env = vec![
        ("TENANTWATCH__STORE__KIND".to_string(), "file".to_string()),
        (
            "TENANTWATCH__STORE__FILE__PATH".to_string(),
            path.display().to_string(),
        ),
    ];
    (path, env)
}

fn as_refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_command_writes_a_tagged_version_and_reads_it_back() {
    let t = start_sim(2, Duration::ZERO).await;
    let s = settings(&t.config, &[]);
    let c = Components::build(&s).unwrap();
    let before = stored_token_works(&c, &s)
        .await
        .expect("seeded token works");
    let out = rotate_cmd(&t.config, &[]).output().await.unwrap();
    crate::helpers::record_output(&String::from_utf8_lossy(&out.stdout));
    crate::helpers::record_output(&String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("old version  {}", before.version)),
        "{stdout}"
    );
    let after = stored_token_works(&c, &s)
        .await
        .expect("rotated token works");
    assert_ne!(after.version, before.version);
    assert!(
        stdout.contains(&format!("new version  {}", after.version)),
        "{stdout}"
    );
    assert_ne!(after.value.expose_secret(), before.value.expose_secret());
    assert_eq!(after.source.as_deref(), Some("rotation"));
    let issued = after.issued_at.expect("issued-at tag");
    assert_eq!(
        after.expires,
        Some(issued + 90 * 86400),
        "exp = issue + 90 days"
    );
    // The old version still works in Entra: rotation never strands a reader of it.
    let old_ok = c
        .tokens
        .redeem_refresh_token(
            &s.partner,
            &s.partner.tenant_id,
            &s.cloud
                .audiences
                .scope(tenantwatch_daemon::model::Api::PartnerCenter),
            "test",
            &before.value,
        )
        .await;
    assert!(old_ok.is_ok());
    assert!(!stdout.contains(after.value.expose_secret()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_store_rotation_keeps_0600_and_works() {
    let t = start_sim(1, Duration::ZERO).await;
    let (path, env) = file_store_env(&t);
    let env = as_refs(&env);
    let out = rotate_cmd(&t.config, &env).output().await.unwrap();
    crate::helpers::record_output(&String::from_utf8_lossy(&out.stdout));
    crate::helpers::record_output(&String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let s = settings(&t.config, &env);
    let c = Components::build(&s).unwrap();
    let stored = stored_token_works(&c, &s).await.expect("file token works");
    assert_eq!(stored.source.as_deref(), Some("rotation"));
}

/// Kills `tenantwatch rotate` with SIGKILL at random instants and checks, every
/// time, that the store's latest version is a token the sim accepts.
async fn kill_loop(t: &TestSim, env: &[(&str, &str)], iterations: usize) -> (usize, usize) {
    let s = settings(&t.config, env);
    let c = Components::build(&s).unwrap();
    let mut completed = 0;
    let mut changed = 0;
    let mut last = stored_token_works(&c, &s)
        .await
        .expect("start valid")
        .version;
    for i in 0..iterations {
        let mut child = rotate_cmd(&t.config, env)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let delay = Duration::from_millis(rand::thread_rng().gen_range(0..160));
        tokio::time::sleep(delay).await;
        let _ = child.start_kill();
        let status = child.wait().await.unwrap();
        if status.success() {
            completed += 1;
        }
        match stored_token_works(&c, &s).await {
            Ok(stored) => {
                if stored.version != last {
                    changed += 1;
                    last = stored.version;
                }
            }
            Err(e) => {
                panic!("iteration {i} (killed after {delay:?}): store holds no working token: {e}")
            }
        }
    }
    (completed, changed)
}

fn iterations() -> usize {
    std::env::var("TENANTWATCH_KILL_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_rotation_never_loses_the_token_keyvault() {
    // Latency spreads the rotation's five requests over ~100 ms, so kills land between them.
    let t = start_sim(1, Duration::from_millis(15)).await;
    let n = iterations();
    let (completed, changed) = kill_loop(&t, &[], n).await;
    eprintln!("keyvault kill test: {n} iterations, {completed} rotations completed, {changed} new versions, tokens lost 0");
    assert!(
        changed > 0,
        "no kill landed after a write; the test would prove nothing"
    );
    assert!(
        completed < n,
        "no kill landed before the end; the test would prove nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_rotation_never_loses_the_token_file_store() {
    let t = start_sim(1, Duration::from_millis(15)).await;
    let (_path, env) = file_store_env(&t);
    let env = as_refs(&env);
    let n = iterations();
    let (completed, changed) = kill_loop(&t, &env, n).await;
    eprintln!("file store kill test: {n} iterations, {completed} rotations completed, {changed} new versions, tokens lost 0");
    assert!(changed > 0 && completed < n);
}

/// Key Vault's limits at this scale admit about one rotation's reads per
/// second and one write per 10 s, so a kill loop meets their 429s on its own
/// (`TENANTWATCH_KILL_LIMIT_SCALE` overrides it).
fn kill_limit_scale() -> f64 {
    std::env::var("TENANTWATCH_KILL_LIMIT_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|f: &f64| f.is_finite() && *f > 0.0)
        .unwrap_or(0.003)
}

/// The kill test against the throttled simulator. Key Vault's published
/// limits, scaled down, refuse the rotation's reads and writes with 429 on
/// their own; Microsoft publishes no limit for the token endpoint, so every
/// third iteration Entra's 429 is injected for the partner tenant, where the
/// rotation redeems. A throttled rotation waits at least a second (the
/// `Retry-After` floor), longer than the 600 ms the kill can wait, so an
/// iteration killed after the sim sent it a 429 was killed while waiting on
/// it. After every kill the store's latest version must be a token the sim
/// accepts, read on the sim's side so the check spends none of the vault's
/// budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_rotation_never_loses_the_token_throttled() {
    let t = start_sim(1, Duration::from_millis(15)).await;
    let scale = kill_limit_scale();
    t.sim.set_limits(true, scale);
    let n = iterations();
    let partner = t.sim.partner_tenant_id();
    let name = t.sim.secret_name();
    let mut last = t.sim.stored_secret(&name).expect("seeded secret");
    let (mut killed_waiting, mut killed_other, mut completed, mut failed) = (0, 0, 0, 0);
    let (mut kv_throttled, mut token_throttled, mut changed) = (0, 0, 0);
    for i in 0..n {
        let arm_token = i % 3 == 0;
        if arm_token {
            t.sim.inject_token_throttle(&partner, 1);
        }
        let kv_before = t.sim.throttled_count(Service::KeyVault);
        let token_before = t.sim.request_count(Service::Token, Some(&partner));
        let mut child = rotate_cmd(&t.config, &[])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        // Up to 600 ms: a loaded machine needs that to reach the vault, and it
        // is still shorter than any wait on a 429 (at least 1 s).
        let delay = Duration::from_millis(rand::thread_rng().gen_range(0..600));
        tokio::time::sleep(delay).await;
        let _ = child.start_kill();
        let out = child.wait_with_output().await.unwrap();
        let status = out.status;
        if status.signal().is_none() && !status.success() && failed == 0 {
            eprintln!(
                "first failed rotation (iteration {i}): {}",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or_default()
            );
        }
        if arm_token {
            t.sim.clear_token_error(&partner);
        }
        // While armed, every token request for the partner tenant got a 429.
        let token_429 =
            arm_token && t.sim.request_count(Service::Token, Some(&partner)) > token_before;
        let kv_429 = t.sim.throttled_count(Service::KeyVault) > kv_before;
        kv_throttled += usize::from(kv_429);
        token_throttled += usize::from(token_429);
        match (status.signal(), status.success()) {
            (Some(_), _) if kv_429 || token_429 => killed_waiting += 1,
            (Some(_), _) => killed_other += 1,
            (None, true) => completed += 1,
            (None, false) => failed += 1,
        }
        let stored = t.sim.stored_secret(&name);
        match stored {
            Some(v) if t.sim.refresh_token_valid(&v) => {
                if v != last {
                    changed += 1;
                    last = v;
                }
            }
            _ => panic!(
                "iteration {i} (killed after {delay:?}, Key Vault 429: {kv_429}, token 429: {token_429}): \
                 the store's latest version is no token Entra accepts"
            ),
        }
    }
    eprintln!(
        "throttled kill test: {n} iterations (Key Vault limits at scale {scale}, Entra 429 injected every 3rd), \
         killed while waiting on a 429 {killed_waiting}, killed otherwise {killed_other}, \
         completed {completed}, failed {failed}; iterations that met a Key Vault 429 {kv_throttled} \
         (limit 429s sent {}), a token 429 {token_throttled}; {changed} new versions, tokens lost 0",
        t.sim.throttled_count(Service::KeyVault)
    );
    // The daemon's own read path finds the working token too.
    t.sim.set_limits(false, 1.0);
    let s = settings(&t.config, &[]);
    let c = Components::build(&s).unwrap();
    stored_token_works(&c, &s)
        .await
        .expect("the latest version works");
    assert!(
        kv_throttled > 0 && token_throttled > 0,
        "no 429 met; the test would prove nothing"
    );
    assert!(
        killed_waiting > 0 && killed_other > 0 && changed > 0,
        "kills must land both while waiting on a 429 and otherwise, and some after a write"
    );
}

/// Key Vault's guidance: back off and retry a 429. A rotation whose vault
/// calls are throttled waits them out instead of throwing away the token
/// Entra just issued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_command_waits_out_key_vault_429s() {
    let t = start_sim(1, Duration::ZERO).await;
    let before = t.sim.stored_secret(&t.sim.secret_name()).unwrap();
    // The next two vault calls (the read of the current version, twice).
    t.sim.inject_fault_next(
        Service::KeyVault,
        Fault::Throttle {
            retry_after_secs: 1,
        },
        2,
    );
    let kv_before = t.sim.request_count(Service::KeyVault, None);
    let out = rotate_cmd(&t.config, &[]).output().await.unwrap();
    crate::helpers::record_output(&String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = t.sim.stored_secret(&t.sim.secret_name()).unwrap();
    assert_ne!(before, after, "rotated");
    assert!(t.sim.refresh_token_valid(&after));
    assert!(
        t.sim.request_count(Service::KeyVault, None) >= kv_before + 2,
        "the throttled calls were sent again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_rotators_end_with_a_valid_token() {
    let t = start_sim(1, Duration::from_millis(5)).await;
    let s = settings(&t.config, &[]);
    let c = Components::build(&s).unwrap();
    for _round in 0..5 {
        let children: Vec<_> = (0..3)
            .map(|_| {
                rotate_cmd(&t.config, &[])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut ch in children {
            assert!(ch.wait().await.unwrap().success());
        }
        stored_token_works(&c, &s)
            .await
            .expect("last writer's token works");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_rotates_on_schedule_and_exports_rotation_metrics() {
    let t = start_sim(3, Duration::ZERO).await;
    append_config(
        &t.config,
        "[rotation]\nschedule = \"*/1 * * * * *\"\nrotate_after = \"1s\"\n",
    );
    let before = t.sim.stored_secret(&t.sim.secret_name()).unwrap();
    let d = spawn_daemon(&t.config, &[]).await;
    wait_ready(d.addr, Duration::from_secs(30)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let metrics = loop {
        let (_, m) = get(d.addr, "/metrics").await;
        if sample(
            &m,
            "tenantwatch_refresh_token_rotations_total{result=\"success\"}",
        )
        .unwrap_or(0.0)
            >= 2.0
        {
            break m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no rotations:\n{m}\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let now = tenantwatch_common::time::unix_now();
    let last = sample(
        &metrics,
        "tenantwatch_refresh_token_last_rotation_timestamp_seconds",
    )
    .unwrap();
    assert!((now - last).abs() < 30.0);
    let expiry = sample(
        &metrics,
        "tenantwatch_refresh_token_expiry_timestamp_seconds",
    )
    .unwrap();
    assert!(
        (expiry - (now + 90.0 * 86400.0)).abs() < 60.0,
        "expiry {expiry}"
    );
    assert_eq!(
        sample(&metrics, "tenantwatch_refresh_token_valid"),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &metrics,
            "tenantwatch_refresh_token_rotations_total{result=\"failure\"}"
        ),
        Some(0.0)
    );
    let after = t.sim.stored_secret(&t.sim.secret_name()).unwrap();
    assert_ne!(before, after);
    // Tenants stay up throughout.
    for c in t.sim.customers() {
        let up = format!("tenantwatch_tenant_up{{tenant_id=\"{}\"}}", c.tenant_id);
        assert_eq!(sample(&metrics, &up), Some(1.0));
    }
}

/// Regression: the stored version's age was measured against the local clock while
/// its issue time is stamped by Entra, so a store clock ahead of the host (here the
/// sim's moved clock) made every version look new and rotation never ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_measures_age_on_the_stores_clock() {
    let t = start_sim(1, Duration::ZERO).await;
    append_config(
        &t.config,
        "[rotation]\nschedule = \"*/1 * * * * *\"\nrotate_after = \"1h\"\n",
    );
    let before = t.sim.stored_secret(&t.sim.secret_name()).unwrap();
    let d = spawn_daemon(&t.config, &[]).await;
    wait_ready(d.addr, Duration::from_secs(30)).await;
    let success = "tenantwatch_refresh_token_rotations_total{result=\"success\"}";
    let (_, m) = get(d.addr, "/metrics").await;
    assert_eq!(
        sample(&m, success).unwrap_or(0.0),
        0.0,
        "a fresh token is kept"
    );
    // Two hours pass on Entra's and Key Vault's clock: the version is now older
    // than rotate_after and the next scheduled run replaces it.
    t.sim.advance_clock(Duration::from_secs(2 * 3600));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, m) = get(d.addr, "/metrics").await;
        if sample(&m, success).unwrap_or(0.0) >= 1.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no rotation after the store's clock moved 2 h:\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let after = t.sim.stored_secret(&t.sim.secret_name()).unwrap();
    assert_ne!(before, after);
    assert!(t.sim.refresh_token_valid(&after));
    // The new version is young on that clock: the next runs leave it alone.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, m) = get(d.addr, "/metrics").await;
    assert_eq!(sample(&m, success), Some(1.0), "rotated exactly once");
}
