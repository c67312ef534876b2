//! The daemon against the simulated cloud: metrics, readiness, per-tenant failure,
//! secrets kept out of logs, clean shutdown.

use std::time::Duration;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tenant_up_with_names_then_clean_sigterm() {
    let t = start_sim(25, Duration::ZERO).await;
    let d = spawn_daemon(&t.config, &[]).await;
    wait_ready(d.addr, Duration::from_secs(30)).await;
    let (status, metrics) = get(d.addr, "/metrics").await;
    assert_eq!(status, 200);
    let customers = t.sim.customers();
    assert_eq!(customers.len(), 25);
    for c in &customers {
        let up = format!("tenantwatch_tenant_up{{tenant_id=\"{}\"}}", c.tenant_id);
        assert_eq!(
            sample(&metrics, &up),
            Some(1.0),
            "{up} missing in\n{metrics}"
        );
        let info = format!(
            "tenantwatch_tenant_info{{tenant_id=\"{}\",name=\"{}\",domain=\"{}\"}}",
            c.tenant_id, c.name, c.domain
        );
        assert_eq!(sample(&metrics, &info), Some(1.0), "{info} missing");
        let fresh = format!(
            "tenantwatch_collector_last_success_timestamp_seconds{{tenant_id=\"{}\",collector=\"directory\"}}",
            c.tenant_id
        );
        assert!(sample(&metrics, &fresh).unwrap_or(0.0) > 1.7e9, "{fresh}");
    }
    // One Graph token per tenant, plus one in the partner tenant (app_credentials), all ok.
    assert_eq!(
        sample(
            &metrics,
            "tenantwatch_token_requests_total{result=\"ok\",scope=\"graph\"}"
        ),
        Some(26.0)
    );
    assert!(
        metrics.contains("tenantwatch_collector_duration_seconds_bucket{collector=\"directory\"")
    );
    assert!(metrics.contains("tenantwatch_build_info{revision=\""));
    // A scrape never calls Microsoft: the sim sees no new requests from ten scrapes.
    let before = t.sim.request_count(azure_sim::Service::Graph, None)
        + t.sim.request_count(azure_sim::Service::Token, None);
    for _ in 0..10 {
        get(d.addr, "/metrics").await;
    }
    let after = t.sim.request_count(azure_sim::Service::Graph, None)
        + t.sim.request_count(azure_sim::Service::Token, None);
    assert_eq!(before, after, "scrapes caused API calls");

    let (code, took) = d.terminate().await;
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_turns_green_only_after_the_first_cycle() {
    let t = start_sim(5, Duration::from_millis(400)).await;
    let d = spawn_daemon(&t.config, &[]).await;
    let (status, body) = get(d.addr, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(get(d.addr, "/healthz").await.0, 200);
    let (_, metrics) = get(d.addr, "/metrics").await;
    assert!(
        !metrics.contains("tenantwatch_tenant_up"),
        "no tenant series before the first cycle"
    );
    wait_ready(d.addr, Duration::from_secs(30)).await;
    let (_, metrics) = get(d.addr, "/metrics").await;
    assert_eq!(sample(&metrics, "tenantwatch_tenants"), Some(5.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenant_without_consent_is_down_with_its_reason_and_others_stay_up() {
    let t = start_sim(6, Duration::ZERO).await;
    let customers = t.sim.customers();
    let bad = &customers[2].tenant_id;
    t.sim.inject_token_error(bad, 65001);
    let d = spawn_daemon(&t.config, &[]).await;
    wait_ready(d.addr, Duration::from_secs(30)).await;
    let (_, metrics) = get(d.addr, "/metrics").await;
    for c in &customers {
        let up = sample(
            &metrics,
            &format!("tenantwatch_tenant_up{{tenant_id=\"{}\"}}", c.tenant_id),
        );
        assert_eq!(
            up,
            Some(if &c.tenant_id == bad { 0.0 } else { 1.0 }),
            "{}",
            c.tenant_id
        );
    }
    assert_eq!(
        sample(
            &metrics,
            &format!(
                "tenantwatch_tenant_token_error{{tenant_id=\"{bad}\",reason=\"consent_required\"}}"
            )
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "tenantwatch_token_requests_total{result=\"consent_required\",scope=\"graph\"}"
        ),
        Some(1.0)
    );
    let log = d.log();
    assert!(
        log.contains(bad.as_str()) && log.contains("consent_required"),
        "{log}"
    );
    let (_, page) = get(d.addr, "/").await;
    assert!(page.contains(bad.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_or_secret_appears_in_logs_metrics_or_pages() {
    let t = start_sim(4, Duration::ZERO).await;
    // Debug level and JSON: the most a log can say.
    let d = spawn_daemon(
        &t.config,
        &[("RUST_LOG", "debug"), ("TENANTWATCH__LOG__FORMAT", "json")],
    )
    .await;
    wait_ready(d.addr, Duration::from_secs(30)).await;
    let (_, metrics) = get(d.addr, "/metrics").await;
    let (_, page) = get(d.addr, "/").await;
    let log = d.log();
    assert!(log.lines().count() > 5, "expected debug logs:\n{log}");
    assert!(
        log.lines().all(|l| l.starts_with('{')),
        "json format: {log}"
    );
    let secrets = t.sim.issued_secrets();
    assert!(secrets.len() > 6, "sim issued {} secrets", secrets.len());
    for s in &secrets {
        assert!(s.len() >= 16, "secret too short to grep safely");
        for (what, text) in [("log", &log), ("metrics", &metrics), ("status page", &page)] {
            assert!(
                !text.contains(s.as_str()),
                "a secret issued by the sim appears in the {what}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool_check() {
    let Ok(out) = std::process::Command::new("promtool")
        .arg("--version")
        .output()
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "promtool must be installed in CI (.ci/run does it)"
        );
        eprintln!("promtool not installed; skipping (CI installs it)");
        return;
    };
    assert!(out.status.success());
    let t = start_sim(3, Duration::ZERO).await;
    t.sim
        .inject_token_error(&t.sim.customers()[0].tenant_id, 700016);
    let d = spawn_daemon(&t.config, &[]).await;
    wait_ready(d.addr, Duration::from_secs(30)).await;
    let (_, metrics) = get(d.addr, "/metrics").await;
    assert!(metrics.contains("tenantwatch_tenant_token_error"));
    // One scrape as a scraper asking for `encoding` gets it: the headers, the
    // length announced in them, and the body as sent.
    let client = reqwest::Client::builder().no_gzip().build().unwrap();
    let scrape = |encoding: &'static str| {
        let req = client
            .get(format!("http://{}/metrics", d.addr))
            .header("accept-encoding", encoding);
        async move {
            let r = req.send().await.unwrap();
            let headers = r.headers().clone();
            let length: usize = headers["content-length"].to_str().unwrap().parse().unwrap();
            (headers, length, r.bytes().await.unwrap())
        }
    };
    // What Prometheus asks for: gzip, sent with its length rather than chunked,
    // and the same text once inflated.
    let (headers, length, gz) = scrape("gzip").await;
    assert_eq!(headers["content-encoding"], "gzip");
    assert!(headers.get("transfer-encoding").is_none(), "{headers:?}");
    assert_eq!(gz.len(), length);
    let mut inflated = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut inflated)
        .unwrap();
    let stable = |t: &str| -> Vec<String> {
        // Counters and timestamps may move between the two scrapes; these do not.
        t.lines()
            .filter(|l| l.starts_with('#') || l.starts_with("tenantwatch_tenant_"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(stable(&inflated), stable(&metrics));
    assert!(inflated.ends_with('\n') && inflated.len() > metrics.len() / 2);
    // A scraper that takes no gzip gets the text inflated as it is sent, with
    // its length announced up front all the same.
    let (headers, length, plain) = scrape("identity").await;
    assert!(headers.get("content-encoding").is_none());
    assert!(headers.get("transfer-encoding").is_none());
    assert_eq!(plain.len(), length);
    let plain = String::from_utf8(plain.to_vec()).unwrap();
    assert_eq!(stable(&plain), stable(&metrics));
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool says:\n{said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_discovery_source_keeps_the_tenants_only_it_lists() {
    use azure_sim::{Fault, Service};
    let t = start_sim(6, Duration::ZERO).await;
    let truth = t.sim.ground_truth();
    let active = |c: &azure_sim::TenantTruth| c.gdap.iter().any(|g| g.status == "active");
    // Customers Partner Center lists that no active GDAP relationship does:
    // the ones a Partner Center failure must not drop.
    let pc_only: Vec<String> = truth
        .tenants
        .iter()
        .filter(|c| !active(c))
        .map(|c| c.tenant_id.clone())
        .collect();
    assert!(!pc_only.is_empty(), "the sim has customers without GDAP");
    // Both listed, so GDAP still lists them while Partner Center fails, but
    // without the domain their group and exclusion are decided by.
    let both: Vec<&azure_sim::TenantTruth> = truth.tenants.iter().filter(|c| active(c)).collect();
    assert!(both.len() >= 2, "the sim has customers with GDAP");
    let (gold, excluded) = (both[0], both[1]);
    append_config(
        &t.config,
        &format!(
            "[collection]\nschedule = \"*/1 * * * * *\"\n[tenants]\nsources = [\"partner_center\", \"gdap\"]\nschedule = \"*/1 * * * * *\"\nexclude = [\"{}\"]\n[[tenants.groups]]\nname = \"gold\"\ninclude = [\"{}\"]\n",
            excluded.domain, gold.domain
        ),
    );
    let all = truth.tenants.len() + truth.gdap_only.len() - 1;
    let d = spawn_daemon(&t.config, &[]).await;
    let info = |m: &str| {
        m.lines()
            .filter(|l| l.starts_with("tenantwatch_tenant_info{"))
            .count()
    };
    let gold_series = format!(
        "tenantwatch_tenant_group{{tenant_id=\"{}\",group=\"gold\"}}",
        gold.tenant_id
    );
    let check = |m: &str| {
        assert_eq!(info(m), all, "every tenant in scope listed:\n{m}");
        assert_eq!(sample(m, &gold_series), Some(1.0), "{gold_series}\n{m}");
        assert!(!m.contains(&excluded.tenant_id), "excluded by domain:\n{m}");
        for id in &pc_only {
            let up = format!("tenantwatch_tenant_up{{tenant_id=\"{id}\"}}");
            assert_eq!(sample(m, &up), Some(1.0), "{up}");
        }
    };
    let m = wait_for(d.addr, Duration::from_secs(30), "every tenant up", |m| {
        info(m) == all
            && m.contains(&gold_series)
            && m.lines()
                .filter(|l| l.starts_with("tenantwatch_tenant_up{"))
                .all(|l| l.ends_with(" 1"))
    })
    .await;
    check(&m);

    t.sim
        .inject_fault(Service::PartnerCenter, Fault::Status(500), None);
    let failing = "tenantwatch_discovery_error{source=\"partner_center\"";
    let m = wait_for(
        d.addr,
        Duration::from_secs(60),
        "Partner Center discovery failing",
        |m| m.contains(failing),
    )
    .await;
    check(&m);
    // Two more discoveries under the failure: still the same.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, m) = get(d.addr, "/metrics").await;
    assert!(m.contains(failing), "still failing");
    check(&m);

    t.sim.clear_faults(Service::PartnerCenter);
    let m = wait_for(
        d.addr,
        Duration::from_secs(60),
        "Partner Center back",
        |m| !m.contains(failing),
    )
    .await;
    check(&m);
}
