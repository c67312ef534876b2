//! `tenantwatch consent customers` as an operator runs it: a customer without
//! the SAM app's consent turns up once the consent is pushed, a dry run and
//! an unselected customer are left alone, and a failure exits non-zero.

use std::path::Path;
use std::time::Duration;

use crate::helpers::*;

async fn push(config: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let config = config.to_string_lossy();
    let mut all = vec!["consent", "customers", "--config", &config];
    all.extend_from_slice(args);
    run_command(&all, &[]).await
}

/// Consent pushes the sim received, per customer id in the path.
fn consent_posts(sim: &azure_sim::SimHandle, tenant: &str) -> usize {
    sim.requests()
        .iter()
        .filter(|r| {
            r.method == "POST" && r.path == format!("/v1/customers/{tenant}/applicationconsents")
        })
        .count()
}

fn up(metrics: &str, tenant: &str) -> Option<f64> {
    sample(
        metrics,
        &format!("tenantwatch_tenant_up{{tenant_id=\"{tenant}\"}}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_required_tenant_turns_up_after_the_push() {
    let t = start_sim(4, Duration::ZERO).await;
    append_config(
        &t.config,
        "[rotation]\nenabled = false\n[collection]\nschedule = \"*/2 * * * * *\"\n",
    );
    let customers = t.sim.customers();
    let (bad, also_bad) = (
        customers[1].tenant_id.clone(),
        customers[2].tenant_id.clone(),
    );
    t.sim.inject_token_error(&bad, 65001);
    t.sim.inject_token_error(&also_bad, 7000229);
    let d = spawn_daemon(&t.config, &[]).await;
    wait_ready(d.addr, Duration::from_secs(30)).await;
    let (_, metrics) = get(d.addr, "/metrics").await;
    assert_eq!(up(&metrics, &bad), Some(0.0), "{metrics}");

    // A dry run says what it would do and changes nothing.
    let (code, out, err) = push(&t.config, &["--tenant", &bad, "--dry-run"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    let row = out.lines().find(|l| l.starts_with(&bad)).expect("a row");
    assert!(
        row.contains("consent_required") && row.contains("would create consent"),
        "{row}"
    );
    assert_eq!(consent_posts(&t.sim, &bad), 0);
    let (_, page) = get(d.addr, "/").await;
    assert!(
        page.contains(&format!("tenantwatch consent customers --tenant {bad}")),
        "the status page names the command"
    );

    // The push: created, and a token minted right after proves it.
    let metrics_file = t.config.with_file_name("consent.prom");
    let (code, out, err) = push(
        &t.config,
        &[
            "--tenant",
            &bad,
            "--metrics-file",
            metrics_file.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{out}{err}");
    let header = out
        .lines()
        .find(|l| l.starts_with("CUSTOMER"))
        .expect("table header");
    assert!(header.contains("BEFORE") && header.contains("ACTION") && header.contains("AFTER"));
    let row = out.lines().find(|l| l.starts_with(&bad)).expect("a row");
    assert!(row.contains("consent_required"), "{row}");
    assert!(row.contains("created consent"), "{row}");
    assert!(row.trim_end().ends_with("ok"), "after: {row}");
    assert_eq!(consent_posts(&t.sim, &bad), 1);
    // The customer not selected is untouched, and still failing.
    assert_eq!(consent_posts(&t.sim, &also_bad), 0);
    assert!(!out.contains(&also_bad), "{out}");
    let counters = std::fs::read_to_string(&metrics_file).unwrap();
    assert!(
        counters.contains("tenantwatch_consent_push_total{result=\"created\"} 1"),
        "{counters}"
    );

    // The daemon sees the tenant up at its first cycle after its one-minute
    // hold on a failed tenant's token ends.
    let m = wait_for(d.addr, Duration::from_secs(100), "tenant up", |m| {
        up(m, &bad) == Some(1.0)
    })
    .await;
    assert_eq!(up(&m, &also_bad), Some(0.0), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_missing_picks_only_the_tenants_without_consent_and_failures_exit_1() {
    let t = start_sim(4, Duration::ZERO).await;
    let customers = t.sim.customers();
    let (bad, other) = (
        customers[0].tenant_id.clone(),
        customers[3].tenant_id.clone(),
    );
    t.sim.inject_token_error(&bad, 700016);
    // A token error a consent cannot fix: not a candidate for --all-missing.
    t.sim.inject_token_error(&other, 53003);
    let (code, out, err) = push(&t.config, &["--all-missing"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    let row = out.lines().find(|l| l.starts_with(&bad)).expect("a row");
    assert!(
        row.contains("app_not_in_tenant") && row.contains("created consent"),
        "{row}"
    );
    assert!(!out.contains(&other), "{out}");
    for c in &customers[1..] {
        assert_eq!(consent_posts(&t.sim, &c.tenant_id), 0, "{}", c.tenant_id);
    }

    // Selected explicitly, the Conditional Access block is pushed a consent,
    // which Partner Center answers "already exists", and the token still
    // fails: the run fails.
    let (code, out, err) = push(&t.config, &["--tenant", &other]).await;
    assert_eq!(code, Some(1), "{out}{err}");
    let row = out.lines().find(|l| l.starts_with(&other)).expect("a row");
    assert!(row.contains("conditional_access"), "{row}");
    assert!(row.contains("already consented"), "{row}");

    // An id that is not a customer: nothing is sent, exit 1.
    let stranger = "00000000-0000-0000-0000-00000000dead";
    let (code, out, err) = push(&t.config, &["--tenant", stranger]).await;
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("not a customer"), "{err}");
    // Not a GUID: a command-line error.
    let (code, _, err) = push(&t.config, &["--tenant", "contoso.com"]).await;
    assert_eq!(code, Some(2), "{err}");
}
