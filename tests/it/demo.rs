//! The README's first command: `tenantwatch demo` shows every simulated tenant up.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::helpers::{bin, get, sample};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_prints_urls_and_all_25_tenants_come_up_within_30s() {
    let started = Instant::now();
    let mut child = Command::new(bin())
        .args(["demo", "--listen", "127.0.0.1:0"])
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
    assert!(printed.contains("25 customer tenants"), "{printed}");
    let addr: std::net::SocketAddr = metrics_url
        .trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .parse()
        .expect("address in the printed URL");
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
        if up == 25 && named == 25 {
            assert_eq!(sample(&metrics, "tenantwatch_tenants"), Some(25.0));
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "only {up}/25 up after 30 s:\n{metrics}"
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
