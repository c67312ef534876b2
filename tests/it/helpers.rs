//! Starting the simulated cloud in-process and the real daemon as a child process.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use azure_sim::{Sim, SimHandle, SimOptions};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Path of the binary under test: this build's, or `TENANTWATCH_TEST_BIN`
/// (to show that a test fails against an older build).
pub fn bin() -> String {
    std::env::var("TENANTWATCH_TEST_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_tenantwatch").to_string())
}

/// Where the suite keeps everything the binary wrote and every secret the
/// fake clouds issued, so `tests/secrets-grep` can look for every secret in
/// everything written, across the whole run.
pub fn suite_output_dir() -> PathBuf {
    let dir = std::env::var_os("TENANTWATCH_SUITE_OUTPUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("suite-output"));
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// Appends what the binary wrote (a daemon's log, a command's output) to the suite's record.
pub fn record_output(text: &str) {
    use std::io::Write;
    let path = suite_output_dir().join(format!("output-{}.log", std::process::id()));
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = f.write_all(text.as_bytes());
    }
}

/// Records secrets a fake cloud issued, one per line, for `tests/secrets-grep`.
pub fn record_secrets(secrets: &[String]) {
    use std::io::Write;
    let path = suite_output_dir().join(format!("secrets-{}.txt", std::process::id()));
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        for s in secrets.iter().filter(|s| !s.contains('\n')) {
            let _ = writeln!(f, "{s}");
        }
    }
}

impl Drop for TestSim {
    fn drop(&mut self) {
        record_secrets(&self.sim.issued_secrets());
    }
}

/// A running simulator with a config written for it.
pub struct TestSim {
    pub sim: SimHandle,
    pub config: PathBuf,
    /// Holds the CA, config and secret files; removed on drop.
    pub _dir: tempfile::TempDir,
}

/// Starts the simulator with `tenants` customers and writes `tenantwatch.toml` for it.
pub async fn start_sim(tenants: usize, latency: Duration) -> TestSim {
    start_sim_with(tenants, 1, latency).await
}

/// Starts the simulator with `partners` partners of `tenants` customers
/// each, and writes `tenantwatch.toml` for it: `[[partners]]` entries named
/// `partner-0`, `partner-1`, … when there are several.
pub async fn start_sim_partners(tenants: usize, partners: usize) -> TestSim {
    start_sim_with(tenants, partners, Duration::ZERO).await
}

async fn start_sim_with(tenants: usize, partners: usize, latency: Duration) -> TestSim {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = Sim::start(SimOptions {
        tenants,
        partners,
        latency,
        state_dir: dir.path().to_path_buf(),
        ..SimOptions::default()
    })
    .await
    .expect("sim starts");
    let config = dir.path().join("tenantwatch.toml");
    sim.write_config(&config, Some("127.0.0.1:0"))
        .expect("config written");
    TestSim {
        sim,
        config,
        _dir: dir,
    }
}

/// A daemon child process with its stderr captured.
pub struct Daemon {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<String>>,
}

/// Finds `http://ADDR/metrics` (or `https://`) in a log line (text or JSON format).
fn served_addr(line: &str) -> Option<SocketAddr> {
    let start = line.find("serving http")? + "serving http".len();
    let start = start + line[start..].find("://")? + "://".len();
    let rest = &line[start..];
    rest[..rest.find("/metrics")?].parse().ok()
}

/// Starts `tenantwatch run --config FILE --listen 127.0.0.1:0` and waits until it serves.
pub async fn spawn_daemon(config: &Path, env: &[(&str, &str)]) -> Daemon {
    spawn_daemon_args(config, &["--listen", "127.0.0.1:0"], env).await
}

/// Starts `tenantwatch run --config FILE ARGS…` and waits until it serves.
pub async fn spawn_daemon_args(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Daemon {
    let mut cmd = Command::new(bin());
    cmd.args(["run", "--config"])
        .arg(config)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("daemon spawns");
    let stderr = child.stderr.take().expect("stderr piped");
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = tokio::sync::oneshot::channel();
    {
        let log = log.clone();
        tokio::spawn(async move {
            let mut tx = Some(tx);
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if std::env::var_os("TEST_LOG").is_some() {
                    eprintln!("daemon: {line}");
                }
                if let Some(addr) = served_addr(&line) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr);
                    }
                }
                record_output(&format!("{line}\n"));
                log.lock().unwrap().push_str(&line);
                log.lock().unwrap().push('\n');
            }
        });
    }
    let addr = match tokio::time::timeout(Duration::from_secs(20), rx).await {
        Ok(Ok(addr)) => addr,
        _ => panic!(
            "daemon did not start serving; log:\n{}",
            log.lock().unwrap()
        ),
    };
    Daemon { child, addr, log }
}

/// A client for the daemon's own plain-HTTP endpoints.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// GET a daemon URL, returning status and body.
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let resp = client()
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .expect("daemon answers");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

/// Polls `/metrics` until `ok` holds for it, and returns that scrape; fails
/// the test with the last scrape after `within`. The scrape is read as
/// [`one_partner`] gives it: the `default` partner's series without their
/// `partner` label, other partners' in full.
pub async fn wait_for(
    addr: std::net::SocketAddr,
    within: Duration,
    what: &str,
    ok: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + within;
    loop {
        let (_, m) = get(addr, "/metrics").await;
        let m = one_partner(&m);
        if ok(&m) {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "{what} not seen within {within:?}:\n{m}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls `/readyz` until 200 or the deadline.
pub async fn wait_ready(addr: SocketAddr, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        if get(addr, "/readyz").await.0 == 200 {
            return;
        }
        assert!(Instant::now() < deadline, "not ready within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Daemon {
    /// The captured log so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends a signal (`HUP`, `TERM`, …) with the `kill` utility.
    pub fn signal(&self, sig: &str) {
        let pid = self.child.id().expect("running");
        let ok = std::process::Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .expect("kill runs")
            .success();
        assert!(ok, "kill -{sig} {pid}");
    }

    /// Waits until the log has `n` lines containing `needle`; fails with the log after `within`.
    pub async fn wait_log(&self, within: Duration, needle: &str, n: usize) -> String {
        let deadline = Instant::now() + within;
        loop {
            let log = self.log();
            if log.lines().filter(|l| l.contains(needle)).count() >= n {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "{n}× {needle:?} not logged within {within:?}:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// True while the process has not exited.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM and returns the exit code and how long the exit took.
    pub async fn terminate(mut self) -> (Option<i32>, Duration) {
        let pid = self.child.id().expect("running") as i32;
        let started = Instant::now();
        // SAFETY-free: plain kill(2) through the `kill` utility keeps the test dependency-free.
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill runs")
            .success();
        assert!(ok);
        let status = tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .expect("daemon exits after SIGTERM")
            .expect("wait");
        (status.code(), started.elapsed())
    }
}

/// Runs `tenantwatch ARGS…` to completion (within a minute) with extra
/// environment, records what it printed, and returns its exit code, stdout
/// and stderr.
pub async fn run_command(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(bin());
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("tenantwatch {args:?} finishes within a minute"))
        .expect("tenantwatch runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    record_output(&stdout);
    record_output(&stderr);
    (out.status.code(), stdout, stderr)
}

/// The value of a sample line `name{labels} value`, if present. Series of
/// the partner named `default` (a single `[partner]` config) are matched
/// without their `partner` label, so tests of one partner name them as
/// before; other partners' series are named in full, and
/// `partners::every_series_of_a_single_partner_carries_partner_default`
/// checks the label is served.
pub fn sample(metrics: &str, name_and_labels: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        without_default_partner(l)
            .strip_prefix(name_and_labels)?
            .strip_prefix(' ')?
            .parse()
            .ok()
    })
}

/// The `/metrics` text as a test of one partner reads it: every line with
/// its `partner="default"` label left out (see [`sample`]).
pub fn one_partner(metrics: &str) -> String {
    metrics
        .lines()
        .map(without_default_partner)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A sample line with its `partner="default"` label left out.
pub fn without_default_partner(line: &str) -> std::borrow::Cow<'_, str> {
    const LABEL: &str = "partner=\"default\"";
    if !line.contains(LABEL) {
        return std::borrow::Cow::Borrowed(line);
    }
    let (series, value) = line.rsplit_once(' ').unwrap_or((line, ""));
    let series = if series.contains(&format!(",{LABEL}")) {
        series.replacen(&format!(",{LABEL}"), "", 1)
    } else if series.contains(&format!("{{{LABEL},")) {
        series.replacen(&format!("{{{LABEL},"), "{", 1)
    } else {
        series.replacen(&format!("{{{LABEL}}}"), "", 1)
    };
    std::borrow::Cow::Owned(format!("{series} {value}"))
}

/// Loads the test config with extra `TENANTWATCH__…` overrides, as the binary would.
pub fn settings(config: &Path, env: &[(&str, &str)]) -> tenantwatch_daemon::config::Settings {
    tenantwatch_daemon::config::Settings::load_with_env(
        config,
        env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
    )
    .expect("test config is valid")
}

/// Reads the store's current token and asks the sim's token endpoint to redeem it,
/// exactly as the daemon would. `Err` says why it is not usable.
pub async fn stored_token_works(
    c: &tenantwatch_daemon::daemon::Components,
    settings: &tenantwatch_daemon::config::Settings,
) -> Result<tenantwatch_daemon::model::StoredToken, String> {
    use tenantwatch_daemon::model::Api;
    let stored = c.broker.store().load().await.map_err(|e| e.to_string())?;
    c.tokens
        .redeem_refresh_token(
            &settings.partner,
            &settings.partner.tenant_id,
            &settings.cloud.audiences.scope(Api::PartnerCenter),
            "test",
            &stored.value,
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(stored)
}

/// Appends TOML to the test config (sections the sim does not write).
pub fn append_config(config: &Path, toml: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(config)
        .expect("config");
    writeln!(f, "\n{toml}").expect("append");
}

/// Rewrites the test config through a TOML tree (for changes env overrides cannot make,
/// such as removing a key).
pub fn edit_config(config: &Path, edit: impl FnOnce(&mut toml::Table)) {
    let text = std::fs::read_to_string(config).expect("config");
    let mut table: toml::Table = text.parse().expect("config is TOML");
    edit(&mut table);
    std::fs::write(config, toml::to_string(&table).expect("serialise")).expect("write config");
}

/// The `[store.keyvault.identity]` table of a config tree.
pub fn identity_table(t: &mut toml::Table) -> &mut toml::Table {
    t.get_mut("store")
        .and_then(|s| s.get_mut("keyvault"))
        .and_then(|k| k.get_mut("identity"))
        .and_then(|i| i.as_table_mut())
        .expect("[store.keyvault.identity]")
}

/// Total token-endpoint requests the sim has seen.
pub fn token_requests(sim: &azure_sim::SimHandle) -> u64 {
    sim.request_count(azure_sim::Service::Token, None)
}

/// Starts `tenantwatch consent` and returns the child and a line reader on its stdout.
pub fn consent(
    config: &Path,
    args: &[&str],
) -> (
    Child,
    tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
) {
    let mut child = Command::new(bin())
        .args(["consent", "--config"])
        .arg(config)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("consent spawns");
    let lines = BufReader::new(child.stdout.take().expect("stdout piped")).lines();
    (child, lines)
}

/// Config sections that switch off every collector but `keep`.
pub fn only_collectors(keep: &[&str]) -> String {
    tenantwatch_daemon::config::COLLECTORS
        .iter()
        .filter(|c| !keep.contains(c))
        .map(|c| format!("[collectors.{c}]\nenabled = false\n"))
        .collect()
}
