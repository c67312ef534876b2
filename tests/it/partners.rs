//! Several partners in one config (`[[partners]]`, as `tenantwatch sim
//! --partners N --write-config` writes it): `check` covers each partner and
//! one partner's dead refresh token fails only that partner's section;
//! `rotate` and `run` act on the partner `--partner` names and no other.

use std::time::Duration;

use crate::helpers::*;

fn up(metrics: &str, tenant: &str) -> Option<f64> {
    sample(
        metrics,
        &format!("tenantwatch_tenant_up{{tenant_id=\"{tenant}\"}}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_covers_every_partner_and_a_dead_token_fails_only_its_own() {
    let t = start_sim_partners(10, 2).await;
    let (p0, p1) = (t.sim.partner(0).unwrap(), t.sim.partner(1).unwrap());
    assert!(t.sim.revoke_partner_refresh_tokens(1));
    let config = t.config.to_string_lossy();

    let (code, out, err) = run_command(&["check", "--config", &config], &[]).await;
    assert_eq!(code, Some(1), "{out}{err}");
    let (first, second) = out
        .split_once("== partner partner-1 ==")
        .expect("a section for partner-1");
    assert!(first.starts_with("== partner partner-0 =="), "{out}");
    assert!(first.contains("10 tenants: 10 ok, 0 failing"), "{first}");
    for c in &p0.customers {
        let row = first
            .lines()
            .find(|l| l.starts_with(&c.tenant_id))
            .unwrap_or_else(|| panic!("partner-0's customer {} listed: {first}", c.tenant_id));
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells[cells.len() - 2..], ["ok", "ok"], "{row}");
    }
    assert!(
        second.contains("partner token FAILED") && second.contains("AADSTS50173"),
        "{second}"
    );
    assert!(
        !p1.customers.iter().any(|c| second.contains(&c.tenant_id)),
        "no tenant of the dead partner was tried: {second}"
    );
    assert!(
        out.trim_end()
            .ends_with("2 partners: 1 ok, 1 failing (partner-1)"),
        "{out}"
    );

    // --partner picks one; the healthy one alone passes.
    let (code, out, _) = run_command(
        &["check", "--config", &config, "--partner", "partner-0"],
        &[],
    )
    .await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        !out.contains("partner-1") && !out.contains("== partner"),
        "{out}"
    );
    assert!(out.contains("10 tenants: 10 ok, 0 failing"), "{out}");

    let (code, out, err) = run_command(
        &["check", "--config", &config, "--partner", "partner-9"],
        &[],
    )
    .await;
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        err.contains(
            "no partner named \"partner-9\" in the config; its partners are partner-0, partner-1"
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_and_run_act_on_the_named_partner_only() {
    let t = start_sim_partners(10, 2).await;
    let (p0, p1) = (t.sim.partner(0).unwrap(), t.sim.partner(1).unwrap());
    let config = t.config.to_string_lossy();
    let stored = |name: &str| t.sim.stored_secret(name).expect("seeded secret");
    let (before0, before1) = (stored(&p0.secret_name), stored(&p1.secret_name));

    // Which token to rotate is never guessed.
    let (code, out, err) = run_command(&["rotate", "--config", &config], &[]).await;
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        err.contains("the config has 2 partners (partner-0, partner-1); pass --partner NAME"),
        "{err}"
    );
    assert_eq!(stored(&p0.secret_name), before0);
    assert_eq!(stored(&p1.secret_name), before1);

    let (code, out, err) = run_command(
        &["rotate", "--config", &config, "--partner", "partner-1"],
        &[],
    )
    .await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("rotated the refresh token"), "{out}");
    assert!(out.contains(&p1.secret_name), "{out}");
    assert_eq!(
        stored(&p0.secret_name),
        before0,
        "partner-0's token untouched"
    );
    let after1 = stored(&p1.secret_name);
    assert_ne!(after1, before1);
    assert!(t.sim.refresh_token_valid(&after1));

    // The daemon serves one partner per process, the one named.
    let (code, out, err) = run_command(
        &["run", "--config", &config, "--listen", "127.0.0.1:0"],
        &[],
    )
    .await;
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(err.contains("pass --partner NAME"), "{err}");
    assert!(err.contains("one partner per process"), "{err}");

    let d = spawn_daemon_args(
        &t.config,
        &["--listen", "127.0.0.1:0", "--partner", "partner-1"],
        &[],
    )
    .await;
    wait_ready(d.addr, Duration::from_secs(60)).await;
    let (_, m) = get(d.addr, "/metrics").await;
    for c in &p1.customers {
        assert_eq!(up(&m, &c.tenant_id), Some(1.0), "{}", c.tenant_id);
    }
    let only_p0: Vec<_> = p0
        .customers
        .iter()
        .filter(|c| !p1.customers.iter().any(|o| o.tenant_id == c.tenant_id))
        .collect();
    assert_eq!(only_p0.len(), 9, "neighbours share a tenth");
    for c in only_p0 {
        assert!(!m.contains(&c.tenant_id), "partner-0's {}", c.tenant_id);
    }
    assert_eq!(sample(&m, "tenantwatch_refresh_token_valid"), Some(1.0));
    let (code, _) = d.terminate().await;
    assert_eq!(code, Some(0));
}
