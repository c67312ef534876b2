//! Several partners in one config (`[[partners]]`, as `tenantwatch sim
//! --partners N --write-config` writes it): one daemon watches them all, a
//! customer of two partners has its series under each, and one partner's
//! dead refresh token leaves every tenant of the others up; `check` covers
//! each partner; `rotate` and `run --partner` act on the one named.

use std::time::Duration;

use crate::helpers::*;

fn up(metrics: &str, tenant: &str, partner: &str) -> Option<f64> {
    sample(
        metrics,
        &format!("tenantwatch_tenant_up{{tenant_id=\"{tenant}\",partner=\"{partner}\"}}"),
    )
}

/// The partner-level gauge `name` of `partner`.
fn of(metrics: &str, name: &str, partner: &str) -> Option<f64> {
    sample(metrics, &format!("{name}{{partner=\"{partner}\"}}"))
}

/// Sample lines that occur more than once: Prometheus refuses a scrape
/// with the same series twice.
fn duplicate_series(metrics: &str) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.rsplit_once(' ').map(|(series, _)| series.to_string()))
        .filter(|series| !seen.insert(series.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_daemon_watches_every_partner_and_a_dead_token_stalls_no_other() {
    let t = start_sim_partners(10, 2).await;
    let (p0, p1) = (t.sim.partner(0).unwrap(), t.sim.partner(1).unwrap());
    let shared: Vec<_> = p0
        .customers
        .iter()
        .filter(|c| p1.customers.iter().any(|o| o.tenant_id == c.tenant_id))
        .collect();
    assert_eq!(shared.len(), 1, "neighbours share a tenth");
    let shared = &shared[0].tenant_id;

    // Both healthy: the shared customer is collected once per partner.
    let d = spawn_daemon(&t.config, &[]).await;
    wait_ready(d.addr, Duration::from_secs(60)).await;
    let (_, m) = get(d.addr, "/metrics").await;
    for (p, name) in [(&p0, "partner-0"), (&p1, "partner-1")] {
        for c in &p.customers {
            assert_eq!(
                up(&m, &c.tenant_id, name),
                Some(1.0),
                "{name} {}",
                c.tenant_id
            );
        }
        assert_eq!(of(&m, "tenantwatch_refresh_token_valid", name), Some(1.0));
        assert_eq!(of(&m, "tenantwatch_tenants", name), Some(10.0));
    }
    for name in ["partner-0", "partner-1"] {
        let info = format!("tenantwatch_tenant_info{{tenant_id=\"{shared}\",");
        let end = format!("partner=\"{name}\"}} 1");
        assert!(
            m.lines().any(|l| l.starts_with(&info) && l.ends_with(&end)),
            "{name}'s tenant_info for {shared}"
        );
    }
    assert_eq!(duplicate_series(&m), Vec::<String>::new());
    // The status page lists both partners, and each partner's page its own tenants.
    let (status, page) = get(d.addr, "/").await;
    assert_eq!(status, 200);
    assert!(page.contains("<h2>Partners</h2>"), "{page}");
    assert!(page.contains("href=\"/?partner=partner-1\""), "{page}");
    let (_, page) = get(d.addr, "/?partner=partner-1").await;
    assert!(page.contains("<h2>Partner partner-1</h2>"), "{page}");
    assert!(p1.customers.iter().all(|c| page.contains(&c.tenant_id)));
    let only_p0 = p0
        .customers
        .iter()
        .find(|c| c.tenant_id != *shared)
        .unwrap();
    assert!(
        !page.contains(&only_p0.tenant_id),
        "partner-0's customers stay on its page"
    );
    let (code, _) = d.terminate().await;
    assert_eq!(code, Some(0));

    // Partner 1's admin is revoked: its token is refused, and every
    // tenant of partner 0 stays up, the shared customer included.
    assert!(t.sim.revoke_partner_refresh_tokens(1));
    let d = spawn_daemon(&t.config, &[]).await;
    wait_ready(d.addr, Duration::from_secs(60)).await;
    let m = wait_for(
        d.addr,
        Duration::from_secs(30),
        "partner-1's refresh token refused",
        |m| of(m, "tenantwatch_refresh_token_valid", "partner-1") == Some(0.0),
    )
    .await;
    assert_eq!(
        of(&m, "tenantwatch_refresh_token_valid", "partner-0"),
        Some(1.0)
    );
    for c in &p0.customers {
        assert_eq!(
            up(&m, &c.tenant_id, "partner-0"),
            Some(1.0),
            "{}",
            c.tenant_id
        );
    }
    assert_eq!(of(&m, "tenantwatch_discovery_up", "partner-1"), Some(0.0));
    assert_eq!(of(&m, "tenantwatch_discovery_up", "partner-0"), Some(1.0));
    assert_eq!(duplicate_series(&m), Vec::<String>::new());
    let (code, _) = d.terminate().await;
    assert_eq!(code, Some(0));
}

/// A single `[partner]` config is the partner named `default`, and every
/// tenantwatch series about it says so (tests elsewhere match them without
/// the label, see `helpers::sample`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_series_of_a_single_partner_carries_partner_default() {
    let t = start_sim(3, Duration::ZERO).await;
    let d = spawn_daemon(&t.config, &[]).await;
    wait_ready(d.addr, Duration::from_secs(60)).await;
    let (_, m) = get(d.addr, "/metrics").await;
    let c = &t.sim.customers()[0];
    assert!(
        m.contains(&format!(
            "tenantwatch_tenant_up{{tenant_id=\"{}\",partner=\"default\"}} 1\n",
            c.tenant_id
        )),
        "{m}"
    );
    assert!(m.contains("tenantwatch_refresh_token_valid{partner=\"default\"} 1\n"));
    let per_tenant: Vec<&str> = m
        .lines()
        .filter(|l| l.starts_with("tenantwatch_") && l.contains("tenant_id=\""))
        .collect();
    assert!(per_tenant.len() > 20, "{m}");
    for l in per_tenant {
        assert!(l.contains("partner=\"default\""), "{l}");
    }
    d.terminate().await;
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

    // --partner serves the one named.
    let d = spawn_daemon_args(
        &t.config,
        &["--listen", "127.0.0.1:0", "--partner", "partner-1"],
        &[],
    )
    .await;
    wait_ready(d.addr, Duration::from_secs(60)).await;
    let (_, m) = get(d.addr, "/metrics").await;
    for c in &p1.customers {
        assert_eq!(
            up(&m, &c.tenant_id, "partner-1"),
            Some(1.0),
            "{}",
            c.tenant_id
        );
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
    assert_eq!(
        of(&m, "tenantwatch_refresh_token_valid", "partner-1"),
        Some(1.0)
    );
    assert!(
        !m.contains("partner=\"partner-0\""),
        "only partner-1 is served"
    );
    let (code, _) = d.terminate().await;
    assert_eq!(code, Some(0));
}
