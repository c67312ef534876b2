//! The daemon under a service manager: SIGHUP reloads the config (and never
//! kills the daemon), the sd_notify messages a `Type=notify` unit expects
//! arrive in order, the watchdog stops being fed when the engine is stuck,
//! and the operator-facing CLI around it: `healthcheck`, completions, the
//! man page, exporter-style flags, `process_*` and build info metrics.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::helpers::*;

/// Every cycle each second, so a reload shows within a few seconds.
fn every_second(t: &TestSim) {
    edit_config(&t.config, |c| {
        let every = toml::Value::String("*/1 * * * * *".into());
        let mut collection = toml::Table::new();
        collection.insert("schedule".into(), every.clone());
        c.insert("collection".into(), collection.into());
        let mut tenants = toml::Table::new();
        tenants.insert("schedule".into(), every);
        c.insert("tenants".into(), tenants.into());
    });
}

fn set(c: &mut toml::Table, path: &[&str], value: toml::Value) {
    let (last, tables) = path.split_last().unwrap();
    let mut t = c;
    for k in tables {
        t = t
            .entry(k.to_string())
            .or_insert_with(|| toml::Table::new().into())
            .as_table_mut()
            .unwrap();
    }
    t.insert(last.to_string(), value);
}

fn licenses(m: &str) -> bool {
    m.lines()
        .any(|l| l.starts_with("tenantwatch_m365_license_enabled_units{"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_config_and_the_daemon_keeps_serving() {
    let t = start_sim(4, Duration::ZERO).await;
    every_second(&t);
    // Blank is unset: log.level decides, so a reload can change it.
    let mut d = spawn_daemon(&t.config, &[("RUST_LOG", "")]).await;
    wait_ready(d.addr, Duration::from_secs(30)).await;
    let kept = t.sim.customers()[1].tenant_id.clone();
    let m = wait_for(
        d.addr,
        Duration::from_secs(30),
        "licences of every tenant",
        |m| licenses(m) && sample(m, "tenantwatch_tenants") == Some(4.0),
    )
    .await;
    assert!(m.contains("tenantwatch_collector_last_run_timestamp_seconds{collector=\"licenses\"}"));

    // Before the fix SIGHUP's default action ended the process here.
    d.signal("HUP");
    d.wait_log(Duration::from_secs(20), "configuration reloaded", 1)
        .await;
    assert!(d.alive(), "SIGHUP ended the daemon:\n{}", d.log());
    let log = d.log();
    assert!(log.contains("SIGHUP received"), "{log}");
    assert!(log.contains("reloading configuration"), "{log}");
    assert!(
        log.contains("configuration reloaded changed=nothing"),
        "{log}"
    );

    // Licences off, one tenant in scope, a shorter timeout, and one key
    // that needs a restart.
    edit_config(&t.config, |c| {
        set(c, &["collectors", "licenses", "enabled"], false.into());
        set(c, &["collectors", "directory", "timeout"], "30s".into());
        set(
            c,
            &["tenants", "include"],
            toml::Value::Array(vec![kept.clone().into()]),
        );
        set(c, &["collection", "request_timeout"], "7s".into());
        set(c, &["log", "level"], "debug".into());
    });
    assert!(!d.log().contains(" DEBUG "), "debug before the reload");
    d.signal("HUP");
    let log = d
        .wait_log(Duration::from_secs(20), "configuration reloaded", 2)
        .await;
    let line = log
        .lines()
        .filter(|l| l.contains("configuration reloaded"))
        .nth(1)
        .unwrap();
    for key in [
        "tenants.include",
        "collectors.licenses.enabled",
        "collectors.directory.timeout",
        "log.level",
    ] {
        assert!(line.contains(key), "{key} not in {line}");
    }
    assert!(
        log.contains("collection.request_timeout changed; restart to apply"),
        "{log}"
    );
    let m = wait_for(
        d.addr,
        Duration::from_secs(30),
        "licences gone and one tenant left",
        |m| !licenses(m) && sample(m, "tenantwatch_tenants") == Some(1.0),
    )
    .await;
    assert!(
        !m.contains("tenantwatch_collector_last_run_timestamp_seconds{collector=\"licenses\"}"),
        "{m}"
    );
    // What was collected for the tenant that stays, and the refresh token, stay.
    let up = format!("tenantwatch_tenant_up{{tenant_id=\"{kept}\"}}");
    assert_eq!(sample(&m, &up), Some(1.0), "{m}");
    assert_eq!(sample(&m, "tenantwatch_refresh_token_valid"), Some(1.0));
    assert_eq!(get(d.addr, "/readyz").await.0, 200);
    d.wait_log(Duration::from_secs(20), " DEBUG ", 1).await;

    // Switched back on: it runs at once and reappears.
    edit_config(&t.config, |c| {
        set(c, &["collectors", "licenses", "enabled"], true.into());
    });
    d.signal("HUP");
    wait_for(d.addr, Duration::from_secs(30), "licences back", licenses).await;
    let (code, _) = d.terminate().await;
    assert_eq!(code, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_reload_names_every_problem_and_keeps_the_old_config() {
    let t = start_sim(2, Duration::ZERO).await;
    every_second(&t);
    let good = std::fs::read_to_string(&t.config).unwrap();
    let mut d = spawn_daemon(&t.config, &[]).await;
    wait_ready(d.addr, Duration::from_secs(30)).await;
    wait_for(d.addr, Duration::from_secs(30), "licences", licenses).await;

    edit_config(&t.config, |c| {
        set(c, &["collectors", "licenses", "enabled"], false.into());
        set(c, &["collection", "concurrency"], "many".into());
        set(c, &["server", "max_connections"], 0.into());
        set(c, &["tenants", "shardd"], "1/2".into());
    });
    d.signal("HUP");
    let log = d
        .wait_log(Duration::from_secs(20), "configuration not reloaded", 1)
        .await;
    let line = log
        .lines()
        .find(|l| l.contains("configuration not reloaded"))
        .unwrap();
    for problem in [
        "collection.concurrency",
        "server.max_connections",
        "tenants.shardd",
        "(3 problems)",
        "the previous configuration stays in force",
    ] {
        assert!(line.contains(problem), "{problem} not in {line}");
    }
    // The old config is in force: licences keep being collected.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(d.alive());
    let (status, m) = get(d.addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(licenses(&m), "the refused config's change was applied");

    // Fixed, it loads.
    std::fs::write(&t.config, good).unwrap();
    d.signal("HUP");
    d.wait_log(Duration::from_secs(20), "configuration reloaded", 1)
        .await;
    assert!(!d
        .log()
        .contains("configuration reloaded changed=collectors"));
}

/// Messages a fake service manager received, with when.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(Instant, String)>>>);

impl Received {
    fn listen(socket: UnixDatagram) -> Self {
        let r = Received::default();
        let out = r.clone();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends when the test's process does.
            loop {
                if let Ok(n) = socket.recv(&mut buf) {
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    out.0.lock().unwrap().push((Instant::now(), text));
                }
            }
        });
        r
    }

    fn all(&self) -> Vec<(Instant, String)> {
        self.0.lock().unwrap().clone()
    }

    /// The messages other than WATCHDOG=1, in order.
    fn states(&self) -> Vec<String> {
        self.all()
            .into_iter()
            .map(|(_, m)| m)
            .filter(|m| m != "WATCHDOG=1")
            .collect()
    }

    async fn wait(&self, within: Duration, what: &str, ok: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + within;
        while !ok(&self.states()) {
            assert!(
                Instant::now() < deadline,
                "{what} not received within {within:?}: {:#?}",
                self.states()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn watchdogs_after(&self, t: Instant) -> usize {
        self.all()
            .iter()
            .filter(|(at, m)| *at > t && m == "WATCHDOG=1")
            .count()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_socket_gets_ready_reloading_ready_and_stopping_in_order() {
    let t = start_sim(3, Duration::ZERO).await;
    // An abstract-namespace socket, as systemd uses for user services.
    let name = format!("tenantwatch-it-{}", uuid::Uuid::new_v4());
    let socket =
        UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
    let got = Received::listen(socket);
    let notify = format!("@{name}");
    let d = spawn_daemon(
        &t.config,
        &[("NOTIFY_SOCKET", &notify), ("WATCHDOG_USEC", "1000000")],
    )
    .await;
    got.wait(Duration::from_secs(30), "READY=1", |s| {
        s.iter().any(|m| m.starts_with("READY=1"))
    })
    .await;
    let ready = got.states();
    assert!(
        ready[0].starts_with("READY=1\nSTATUS=3 tenants"),
        "READY=1 first, once discovery knows the tenants: {ready:#?}"
    );
    // Discovery has finished: the tenants are known.
    let (_, m) = get(d.addr, "/metrics").await;
    assert_eq!(sample(&m, "tenantwatch_tenants"), Some(3.0), "{m}");
    wait_ready(d.addr, Duration::from_secs(30)).await;
    got.wait(Duration::from_secs(30), "STATUS ready", |s| {
        s.iter().any(|m| m == "STATUS=3 tenants, 3 up; ready")
    })
    .await;

    d.signal("HUP");
    got.wait(Duration::from_secs(20), "RELOADING=1 then READY=1", |s| {
        s.iter()
            .skip_while(|m| !m.starts_with("RELOADING=1"))
            .any(|m| m.starts_with("READY=1"))
    })
    .await;
    assert!(got.watchdogs_after(Instant::now() - Duration::from_secs(30)) >= 2);
    let (code, _) = d.terminate().await;
    assert_eq!(code, Some(0));
    got.wait(Duration::from_secs(5), "STOPPING=1", |s| {
        s.iter().any(|m| m.starts_with("STOPPING=1"))
    })
    .await;

    let states = got.states();
    let kinds: Vec<&str> = states
        .iter()
        .map(|m| m.lines().next().unwrap_or_default())
        .filter(|first| !first.starts_with("STATUS="))
        .collect();
    assert_eq!(
        kinds,
        ["READY=1", "RELOADING=1", "READY=1", "STOPPING=1"],
        "{states:#?}"
    );
    let reloading = states
        .iter()
        .find(|m| m.starts_with("RELOADING=1"))
        .unwrap();
    let usec: u64 = reloading
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .expect("MONOTONIC_USEC= with RELOADING=1")
        .parse()
        .unwrap();
    // On this machine's monotonic clock, as systemd compares it.
    assert!(usec > 0 && usec <= boottime_usec() + 1_000_000, "{usec}");
}

/// Microseconds since boot (`CLOCK_BOOTTIME`, via /proc/uptime), never less
/// than `CLOCK_MONOTONIC`, which `MONOTONIC_USEC=` is on.
fn boottime_usec() -> u64 {
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    (uptime * 1e6) as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watchdog_starves_while_the_engine_is_stuck_and_the_process_lives() {
    let t = start_sim(2, Duration::ZERO).await;
    every_second(&t);
    edit_config(&t.config, |c| {
        set(c, &["collectors", "directory", "timeout"], "1s".into());
    });
    let name = format!("tenantwatch-it-{}", uuid::Uuid::new_v4());
    let socket =
        UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
    let got = Received::listen(socket);
    let notify = format!("@{name}");
    // From the first run after the daemon is ready, the directory collector
    // hangs where no timeout reaches (a test-only hook of debug builds).
    let mut d = spawn_daemon(
        &t.config,
        &[
            ("NOTIFY_SOCKET", &notify),
            ("WATCHDOG_USEC", "1000000"),
            ("TENANTWATCH_TEST_STALL_COLLECTOR", "directory"),
        ],
    )
    .await;
    wait_ready(d.addr, Duration::from_secs(30)).await;
    let fed = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        got.watchdogs_after(fed) >= 3,
        "fed every half second while healthy: {:?}",
        got.all()
    );
    d.wait_log(
        Duration::from_secs(20),
        "test hook: this collector run hangs",
        1,
    )
    .await;
    // The directory run's bound is its 1 s timeout plus 30 s of grace.
    let log = d
        .wait_log(
            Duration::from_secs(60),
            "engine not making progress: collector directory has shown no progress",
            1,
        )
        .await;
    assert!(log.contains("watchdog is no longer fed"), "{log}");
    let starved = Instant::now();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        got.watchdogs_after(starved),
        0,
        "WATCHDOG=1 sent while stuck: {:?}",
        got.all()
    );
    // Alive and serving: only a service manager's watchdog would restart it.
    assert!(d.alive());
    assert_eq!(get(d.addr, "/healthz").await.0, 200);
    got.wait(Duration::from_secs(10), "STATUS says stuck", |s| {
        s.iter().any(|m| m.contains("stuck: collector directory"))
    })
    .await;
}

/// Runs the binary with `args` and returns exit code, stdout and stderr.
async fn tenantwatch(args: &[&str]) -> (Option<i32>, String, String) {
    let out = tokio::process::Command::new(bin())
        .args(args)
        .output()
        .await
        .expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_exits_0_when_ready_1_when_not_and_2_for_a_bad_config() {
    let t = start_sim(3, Duration::from_millis(400)).await;
    let d = spawn_daemon(&t.config, &[]).await;
    let listen = d.addr.to_string();
    let (code, _, err) = tenantwatch(&["healthcheck", "--web.listen-address", &listen]).await;
    assert_eq!(code, Some(1), "not ready yet: {err}");
    assert!(
        err.contains("unhealthy") && err.contains("HTTP 503"),
        "{err}"
    );
    wait_ready(d.addr, Duration::from_secs(30)).await;
    let (code, out, err) = tenantwatch(&["healthcheck", "--listen", &listen]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.starts_with("ready: http://") && out.contains("ready"),
        "{out}"
    );
    let url = format!("http://{listen}/readyz");
    assert_eq!(
        tenantwatch(&["healthcheck", "--url", &url]).await.0,
        Some(0)
    );

    // Nothing listening.
    let (code, _, err) = tenantwatch(&["healthcheck", "--listen", "127.0.0.1:1"]).await;
    assert_eq!(code, Some(1));
    assert!(
        err.contains("unhealthy") && err.contains("refused"),
        "{err}"
    );
    // Its address from the config file: 127.0.0.1:0 there, so unreachable.
    let cfg = t.config.to_str().unwrap();
    assert_eq!(
        tenantwatch(&["healthcheck", "--config", cfg]).await.0,
        Some(1)
    );
    // A config that does not load.
    let bad = t._dir.path().join("bad.toml");
    std::fs::write(&bad, "[server]\nlisten = \"nowhere\"\n").unwrap();
    let (code, _, err) = tenantwatch(&["healthcheck", "--config", bad.to_str().unwrap()]).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("server.listen"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_man_page_and_help_list_commands_and_exit_codes() {
    let (code, bash, _) = tenantwatch(&["completions", "bash"]).await;
    assert_eq!(code, Some(0));
    assert!(
        bash.contains("_tenantwatch()") && bash.contains("healthcheck"),
        "{bash}"
    );
    assert!(
        bash.contains("--web.listen-address"),
        "aliases complete too"
    );
    let (_, zsh, _) = tenantwatch(&["completions", "zsh"]).await;
    assert!(zsh.starts_with("#compdef tenantwatch"), "{zsh}");
    let (_, fish, _) = tenantwatch(&["completions", "fish"]).await;
    assert!(fish.contains("complete -c tenantwatch"), "{fish}");
    let (code, _, err) = tenantwatch(&["completions", "tcsh"]).await;
    assert_eq!(code, Some(2), "{err}");

    let (code, man, _) = tenantwatch(&["man"]).await;
    assert_eq!(code, Some(0));
    assert!(man.contains(".TH tenantwatch 1"), "{man}");
    for word in ["healthcheck", "completions", "Exit codes", "SIGHUP"] {
        assert!(man.contains(word), "{word} not in the man page");
    }
    let (code, help, _) = tenantwatch(&["--help"]).await;
    assert_eq!(code, Some(0));
    assert!(help.contains("Exit codes:"), "{help}");
    assert!(
        help.contains("2    configuration or command-line error"),
        "{help}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exporter_style_flags_work_as_aliases() {
    let t = start_sim(2, Duration::ZERO).await;
    let d = spawn_daemon_args(
        &t.config,
        &[
            "--web.listen-address",
            "127.0.0.1:0",
            "--log.format",
            "json",
            "--log.level",
            "debug",
        ],
        // The flag wins over RUST_LOG.
        &[("RUST_LOG", "warn")],
    )
    .await;
    wait_ready(d.addr, Duration::from_secs(30)).await;
    let log = d.log();
    assert!(
        log.lines().all(|l| l.starts_with('{')),
        "--log.format json: {log}"
    );
    assert!(
        log.contains("\"level\":\"DEBUG\""),
        "--log.level debug: {log}"
    );
    // Today's flags keep working, and a level that is no level is exit 2.
    let (code, _, err) = tenantwatch(&[
        "--log-format",
        "text",
        "--log-level",
        "warning",
        "run",
        "--config",
        t.config.to_str().unwrap(),
    ])
    .await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("\"warning\" is not a level"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_metrics_and_build_info_as_prometheus_clients_export_them() {
    let t = start_sim(2, Duration::ZERO).await;
    let d = spawn_daemon(&t.config, &[]).await;
    wait_ready(d.addr, Duration::from_secs(30)).await;
    let (_, m) = get(d.addr, "/metrics").await;
    let pid = d.child.id().unwrap();
    let value = |name: &str| sample(&m, name).unwrap_or_else(|| panic!("{name} missing:\n{m}"));
    assert!(m.contains("# TYPE process_cpu_seconds_total counter"));
    assert!(value("process_cpu_seconds_total") > 0.0);
    let rss = value("process_resident_memory_bytes");
    assert!(rss > 1e6 && rss < 4e9, "{rss}");
    assert!(value("process_virtual_memory_bytes") > rss);
    let open = value("process_open_fds");
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as f64;
    assert!((open - fds).abs() < 20.0, "{open} open, /proc says {fds}");
    assert!(value("process_max_fds") >= open);
    let started = value("process_start_time_seconds");
    let now = tenantwatch_common::time::unix_now();
    assert!(started < now && started > now - 120.0, "{started}");
    assert!(value("process_threads") >= 2.0);

    let git = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let rustc = String::from_utf8(
        std::process::Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
            .arg("--version")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let rustc = rustc.split_whitespace().nth(1).unwrap();
    let info = m
        .lines()
        .find(|l| l.starts_with("tenantwatch_build_info{"))
        .expect("build info");
    assert!(info.ends_with("} 1"), "{info}");
    assert!(
        info.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))),
        "{info}"
    );
    assert!(info.contains(&format!("rustc=\"{rustc}\"")), "{info}");
    match git {
        // The test and the binary were built from the same commit.
        Some(rev) => assert!(
            info.contains(&format!("revision=\"{rev}\"")),
            "{info} vs {rev}"
        ),
        None => assert!(info.contains("revision=\""), "{info}"),
    }
}
