//! The README's first command: `tenantwatch demo` shows every simulated tenant
//! up with `--healthy`, and by default a few with trouble to see.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::{bin, get, one_partner, sample};

/// Starts the demo; its address and what it printed before the URLs.
async fn demo(extra: &[&str]) -> (Child, std::net::SocketAddr, String) {
    let mut child = Command::new(bin())
        .args(["demo", "--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("demo starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = String::new();
    let metrics_url = loop {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("demo prints its URLs")
            .expect("stdout")
            .expect("line before EOF");
        printed.push_str(&line);
        printed.push('\n');
        if let Some(url) = line.split_whitespace().find(|w| w.ends_with("/metrics")) {
            break url.to_string();
        }
    };
    // The demo prints more later; a closed pipe would end it.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let addr = metrics_url
        .trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .parse()
        .expect("address in the printed URL");
    (child, addr, printed)
}

/// 25 Partner Center customers and the one tenant only GDAP lists.
const DEMO_TENANTS: usize = 26;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_demo_prints_urls_and_all_tenants_come_up_within_30s() {
    let started = Instant::now();
    let (mut child, addr, printed) = demo(&["--healthy"]).await;
    assert!(
        printed.contains("25 customer tenants, all healthy"),
        "{printed}"
    );
    loop {
        let (_, metrics) = get(addr, "/metrics").await;
        let up = metrics
            .lines()
            .filter(|l| l.starts_with("tenantwatch_tenant_up{") && l.ends_with(" 1"))
            .count();
        let named = metrics
            .lines()
            .filter(|l| l.starts_with("tenantwatch_tenant_info{") && l.contains("domain=\""))
            .count();
        if up == DEMO_TENANTS && named == DEMO_TENANTS {
            assert_eq!(
                sample(&metrics, "tenantwatch_tenants"),
                Some(DEMO_TENANTS as f64)
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "only {up}/{DEMO_TENANTS} up after 30 s:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Green once every collector has run once.
    loop {
        let (_, page) = get(addr, "/").await;
        if page.contains("Nothing needs attention.") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "trouble in a healthy demo:\n{page}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("demo stops on SIGINT")
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_demo_has_trouble_to_show_on_metrics_and_the_status_page() {
    let started = Instant::now();
    let (_child, addr, printed) = demo(&[]).await;
    assert!(printed.contains("lost consent: "), "{printed}");
    let lost = printed
        .split("lost consent: ")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .expect("the tenant that lost consent is named")
        .to_string();
    let (metrics, page) = loop {
        let (_, metrics) = get(addr, "/metrics").await;
        let metrics = one_partner(&metrics);
        let (_, page) = get(addr, "/").await;
        let degraded = metrics.lines().any(|l| {
            l.starts_with("tenantwatch_m365_service_status{")
                && l.contains("status=\"serviceDegradation\"")
        });
        let ready = !page.contains("first collection running");
        if metrics.contains("reason=\"consent_required\"} 1") && degraded && ready {
            break (metrics, page);
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no trouble after 30 s:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let up = |v: &str| {
        metrics
            .lines()
            .filter(|l| l.starts_with("tenantwatch_tenant_up{") && l.ends_with(v))
            .count()
    };
    assert_eq!(
        (up(" 1"), up(" 0")),
        (DEMO_TENANTS - 1, 1),
        "one lost consent"
    );
    // Every seat of some SKU assigned.
    let exhausted = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("tenantwatch_m365_license_consumed_units{"))
        .any(|rest| {
            let (labels, consumed) = rest.rsplit_once("} ").unwrap();
            let enabled = metrics.lines().find_map(|l| {
                l.strip_prefix("tenantwatch_m365_license_enabled_units{")?
                    .strip_prefix(labels)?
                    .strip_prefix("} ")
            });
            enabled.is_some_and(|e| e != "0" && consumed == e)
        });
    assert!(exhausted, "{metrics}");
    // A GDAP relationship ends within 30 days without auto-extend.
    assert!(metrics.contains("tenantwatch_gdap_relationship_auto_extend{"));
    // The board: the lost consent first, as the most urgent.
    let board = &page[page.find("<ol id=\"board\"").expect("a board")..];
    let first = board.lines().nth(1).unwrap();
    assert!(
        first.contains("critical") && first.contains(&lost) && first.contains("consent_required"),
        "{first}"
    );
    for what in [
        "licences exhausted",
        "GDAP relationship ends in 12 d",
        "Exchange Online: serviceDegradation",
        "Azure subscription ",
    ] {
        assert!(board.contains(what), "{what} not on the board");
    }
}
