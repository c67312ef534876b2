//! The status page: every tenant listed with its state, no secret on it, and a
//! screenshot from headless Chromium kept as a test artifact.

use std::time::Duration;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_lists_every_tenant_trouble_first_and_renders_in_chromium() {
    let t = start_sim(8, Duration::ZERO).await;
    let bad = t.sim.customers()[5].clone();
    t.sim.inject_token_error(&bad.tenant_id, 65001);
    let d = spawn_daemon(&t.config, &[]).await;
    wait_ready(d.addr, Duration::from_secs(30)).await;
    let (status, html) = get(d.addr, "/").await;
    assert_eq!(status, 200);
    for c in t.sim.customers() {
        assert!(
            html.contains(&format!("data-tenant=\"{}\"", c.tenant_id)),
            "{} missing",
            c.tenant_id
        );
    }
    let first_row = html.find("data-tenant=").unwrap();
    assert_eq!(
        html[first_row..].split('"').nth(1),
        Some(bad.tenant_id.as_str()),
        "the tenant in trouble comes first"
    );
    assert!(html.contains("consent_required"));
    assert!(html.contains("Refresh token expires"));
    for s in t.sim.issued_secrets() {
        assert!(!html.contains(&s), "a secret is on the status page");
    }

    let chromium = ["chromium", "chromium-browser"].into_iter().find(|c| {
        std::process::Command::new(c)
            .arg("--version")
            .output()
            .is_ok()
    });
    let Some(chromium) = chromium else {
        assert!(std::env::var_os("CI").is_none(), "CI installs chromium");
        eprintln!("chromium not installed; screenshot skipped (CI installs it)");
        return;
    };
    let out_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let shot = out_dir.join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    let profile = tempfile::tempdir().unwrap();
    let status = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--window-size=1600,1000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("--screenshot={}", shot.display()))
            .arg(format!("http://{}/", d.addr))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status(),
    )
    .await
    .expect("chromium finishes")
    .expect("chromium runs");
    assert!(status.success());
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    eprintln!("status page screenshot: {}", shot.display());
}
