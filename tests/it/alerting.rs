//! End to end with the real Prometheus and Alertmanager (Debian packages): the
//! shipped alert rules, evaluated on the daemon's metrics, reach a webhook with the
//! right labels when the refresh token nears expiry and when a tenant loses consent.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::Router;

use crate::helpers::*;

/// Alert names in `deploy/prometheus/alerts.yml` this test expects to fire.
const EXPIRING_WARNING: &str = "TenantwatchRefreshTokenExpiringSoon";
const TOKEN_ERROR: &str = "TenantwatchTenantTokenError";

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The shipped rules with every `for:` shortened, so the test need not wait an hour.
fn rules_for_test(dir: &std::path::Path) -> std::path::PathBuf {
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/prometheus/alerts.yml"
    ))
    .expect("deploy/prometheus/alerts.yml");
    let fast: String = shipped
        .lines()
        .map(|l| match l.trim_start().strip_prefix("for:") {
            Some(_) => format!("{}for: 0s", &l[..l.len() - l.trim_start().len()]),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let p = dir.join("alerts.yml");
    std::fs::write(&p, fast).unwrap();
    p
}

/// A child process killed when the test ends.
pub(crate) struct Proc(#[allow(dead_code)] tokio::process::Child);

pub(crate) async fn start(cmd: &str, args: &[String]) -> Proc {
    Proc(
        tokio::process::Command::new(cmd)
            .args(args)
            .stdout(Stdio::null())
            .stderr(if std::env::var_os("TEST_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{cmd}: {e}")),
    )
}

pub(crate) async fn wait_http(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while client()
        .get(url)
        .send()
        .await
        .map(|r| !r.status().is_success())
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "{url} never came up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub(crate) fn installed(cmd: &str) -> bool {
    std::process::Command::new(cmd)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_alertmanager_for_expiry_and_lost_consent() {
    if !installed("prometheus") || !installed("prometheus-alertmanager") {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI installs prometheus and prometheus-alertmanager"
        );
        eprintln!("prometheus/alertmanager not installed; skipping (CI installs them)");
        return;
    }
    let t = start_sim(3, Duration::ZERO).await;
    append_config(
        &t.config,
        "[rotation]\nenabled = false\n[collection]\nschedule = \"*/2 * * * * *\"\n[tenants]\nschedule = \"*/2 * * * * *\"\n",
    );
    let d = spawn_daemon(&t.config, &[]).await;
    wait_ready(d.addr, Duration::from_secs(30)).await;

    let stack = AlertStack::start(d.addr).await;
    let received = stack.received.clone();

    // Neither fires while the token is fresh and consent is in place. (The sim's
    // data makes others fire: a GDAP relationship ending soon, an app secret expiring.)
    tokio::time::sleep(Duration::from_secs(6)).await;
    let early: Vec<_> = received
        .lock()
        .unwrap()
        .iter()
        .flat_map(|n| n["alerts"].as_array().cloned().unwrap_or_default())
        .filter(|a| {
            a["labels"]["alertname"] == EXPIRING_WARNING || a["labels"]["alertname"] == TOKEN_ERROR
        })
        .collect();
    assert!(early.is_empty(), "fired before the trigger: {early:?}");

    // 80 days pass without a rotation: the stored token has 10 days left.
    t.sim.advance_clock(Duration::from_secs(80 * 86400));
    let expiring = wait_alert(&received, EXPIRING_WARNING, Duration::from_secs(60)).await;
    assert_eq!(expiring["labels"]["severity"], "warning", "{expiring}");
    eprintln!("received: {}", expiring["labels"]);

    // One customer withdraws consent.
    let lost = t.sim.customers()[1].tenant_id.clone();
    t.sim.inject_token_error(&lost, 65001);
    // 29 hours on, the access tokens the daemon holds have run out (CAE
    // tokens, which the daemon gets by declaring cp1, live 20-28 h) and it
    // must ask again.
    t.sim.advance_clock(Duration::from_secs(29 * 3600));
    let alert = wait_alert_where(&received, TOKEN_ERROR, Duration::from_secs(60), |a| {
        a["labels"]["tenant_id"] == lost.as_str()
    })
    .await;
    assert_eq!(alert["labels"]["reason"], "consent_required", "{alert}");
    eprintln!("received: {}", alert["labels"]);
    let others: Vec<_> = received
        .lock()
        .unwrap()
        .iter()
        .flat_map(|n| n["alerts"].as_array().cloned().unwrap_or_default())
        .filter(|a| {
            a["labels"]["alertname"] == TOKEN_ERROR && a["labels"]["tenant_id"] != lost.as_str()
        })
        .collect();
    assert!(
        others.is_empty(),
        "only the tenant without consent alerts: {others:?}"
    );
}

/// Prometheus scraping one daemon with the shipped rules (`for:` shortened) and
/// Alertmanager posting to a webhook that collects the notifications.
pub(crate) struct AlertStack {
    /// Every notification body the webhook received.
    pub received: Arc<Mutex<Vec<serde_json::Value>>>,
    _am: Proc,
    _prom: Proc,
    _dir: tempfile::TempDir,
}

impl AlertStack {
    pub(crate) async fn start(daemon: std::net::SocketAddr) -> Self {
        // The webhook receiver: a tiny listener collecting Alertmanager's posts.
        let received: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
        let hook = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hook_addr = hook.local_addr().unwrap();
        {
            let received = received.clone();
            let app = Router::new().route(
                "/",
                post(move |body: axum::Json<serde_json::Value>| {
                    let received = received.clone();
                    async move {
                        received.lock().unwrap().push(body.0);
                        "ok"
                    }
                }),
            );
            tokio::spawn(async move { axum::serve(hook, app).await });
        }

        let dir = tempfile::tempdir().unwrap();
        let rules = rules_for_test(dir.path());
        let am_port = free_port();
        std::fs::write(
            dir.path().join("am.yml"),
            format!(
                "route:\n  receiver: hook\n  group_by: [alertname, tenant_id]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: http://{hook_addr}/\n        send_resolved: false\n"
            ),
        )
        .unwrap();
        let _am = start(
            "prometheus-alertmanager",
            &[
                format!("--config.file={}", dir.path().join("am.yml").display()),
                format!("--storage.path={}", dir.path().join("am-data").display()),
                format!("--web.listen-address=127.0.0.1:{am_port}"),
                "--cluster.listen-address=".into(),
            ],
        )
        .await;
        wait_http(&format!("http://127.0.0.1:{am_port}/-/ready")).await;
        let prom_port = free_port();
        std::fs::write(
            dir.path().join("prometheus.yml"),
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [{rules}]\nalerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am_port}']\nscrape_configs:\n  - job_name: tenantwatch\n    static_configs:\n      - targets: ['{daemon}']\n",
                rules = rules.display(),
                daemon = daemon,
            ),
        )
        .unwrap();
        let _prom = start(
            "prometheus",
            &[
                format!(
                    "--config.file={}",
                    dir.path().join("prometheus.yml").display()
                ),
                format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("prom-data").display()
                ),
                format!("--web.listen-address=127.0.0.1:{prom_port}"),
            ],
        )
        .await;
        wait_http(&format!("http://127.0.0.1:{prom_port}/-/ready")).await;

        Self {
            received,
            _am,
            _prom,
            _dir: dir,
        }
    }

    /// Every alert of every notification so far.
    pub(crate) fn alerts(&self) -> Vec<serde_json::Value> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .flat_map(|n| n["alerts"].as_array().cloned().unwrap_or_default())
            .collect()
    }
}

async fn wait_alert(
    received: &Arc<Mutex<Vec<serde_json::Value>>>,
    name: &str,
    within: Duration,
) -> serde_json::Value {
    wait_alert_where(received, name, within, |_| true).await
}

pub(crate) async fn wait_alert_where(
    received: &Arc<Mutex<Vec<serde_json::Value>>>,
    name: &str,
    within: Duration,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let found = received
            .lock()
            .unwrap()
            .iter()
            .flat_map(|n| n["alerts"].as_array().cloned().unwrap_or_default())
            .find(|a| a["labels"]["alertname"] == name && a["status"] == "firing" && pred(a));
        if let Some(a) = found {
            return a;
        }
        assert!(
            Instant::now() < deadline,
            "alert {name} did not arrive; got {:?}",
            received.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
