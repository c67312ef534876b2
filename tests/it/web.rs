//! The web config file: TLS, basic auth, client certificates and reloading,
//! checked the way Prometheus would reach the daemon.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

use crate::helpers::{edit_config, spawn_daemon, start_sim};

/// A CA and a function to issue certificates from it.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = p.self_signed(&key).unwrap();
        Self { cert, key }
    }

    /// (certificate PEM, key PEM) for `names`.
    fn issue(&self, names: &[&str], client: bool) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
        p.extended_key_usages = vec![if client {
            rcgen::ExtendedKeyUsagePurpose::ClientAuth
        } else {
            rcgen::ExtendedKeyUsagePurpose::ServerAuth
        }];
        let cert = p.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn client_trusting(ca: &Ca, identity: Option<(String, String)>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.cert.pem().as_bytes()).unwrap())
        .timeout(Duration::from_secs(10));
    if let Some((cert, key)) = identity {
        b = b.identity(reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap());
    }
    b.build().unwrap()
}

fn basic(user: &str, password: &str) -> String {
    let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {b}")
}

fn write_server_cert(dir: &Path, ca: &Ca) {
    let (cert, key) = ca.issue(&["127.0.0.1", "localhost"], false);
    std::fs::write(dir.join("server.crt"), cert).unwrap();
    std::fs::write(dir.join("server.key"), key).unwrap();
}

fn use_web_config(config: &Path, web: &Path) {
    let web = web.to_string_lossy().to_string();
    edit_config(config, |t| {
        let server = t
            .entry("server")
            .or_insert_with(|| toml::Value::Table(Default::default()));
        server
            .as_table_mut()
            .unwrap()
            .insert("web_config_file".into(), toml::Value::String(web));
    });
}

#[tokio::test]
async fn tls_and_basic_auth_guard_metrics_and_a_renewed_certificate_is_served_without_restart() {
    let ts = start_sim(2, Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("scrape CA");
    write_server_cert(dir.path(), &ca);
    let hash = bcrypt::hash("correct horse", 4).unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n\
             http_server_config:\n  headers:\n    X-Frame-Options: deny\n\
             basic_auth_users:\n  prometheus: '{hash}'\n"
        ),
    )
    .unwrap();
    use_web_config(&ts.config, &web);
    let d = spawn_daemon(&ts.config, &[]).await;
    assert!(
        d.log()
            .contains(&format!("serving https://{}/metrics", d.addr)),
        "{}",
        d.log()
    );
    let c = client_trusting(&ca, None);
    let url = |p: &str| format!("https://{}{p}", d.addr);

    let r = c.get(url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Basic realm=\"tenantwatch\""
    );
    assert_eq!(r.headers()["x-frame-options"], "deny");
    for (user, pw) in [
        ("prometheus", "wrong"),
        ("Prometheus", "correct horse"),
        ("", ""),
    ] {
        let r = c
            .get(url("/metrics"))
            .header("authorization", basic(user, pw))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{user}:{pw}");
    }
    let r = c.get(url("/")).send().await.unwrap();
    assert_eq!(r.status(), 401, "the status page is guarded too");
    // Probes stay open so kubelet needs no credentials.
    assert_eq!(c.get(url("/healthz")).send().await.unwrap().status(), 200);
    let r = c
        .get(url("/metrics"))
        .header("authorization", basic("prometheus", "correct horse"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("tenantwatch_build_info"));

    // Plain HTTP to the TLS port gets nothing usable.
    let plain = reqwest::Client::new()
        .get(format!("http://{}/metrics", d.addr))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.map(|r| r.status() != 200).unwrap_or(true));

    // cert-manager renews the certificate from a new CA: new connections get it.
    let new_ca = Ca::new("renewed CA");
    write_server_cert(dir.path(), &new_ca);
    let c2 = client_trusting(&new_ca, None);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = c2
            .get(url("/metrics"))
            .header("authorization", basic("prometheus", "correct horse"))
            .send()
            .await;
        if matches!(&r, Ok(r) if r.status() == 200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "renewed certificate never served: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log = d.log();
    assert!(log.contains("web config reloaded"), "{log}");
    let (code, _) = d.terminate().await;
    assert_eq!(code, Some(0));
}

#[tokio::test]
async fn client_certificates_are_required_when_configured() {
    let ts = start_sim(1, Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("mtls CA");
    write_server_cert(dir.path(), &ca);
    std::fs::write(dir.path().join("clients.pem"), ca.cert.pem()).unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  \
         client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: clients.pem\n",
    )
    .unwrap();
    use_web_config(&ts.config, &web);
    let d = spawn_daemon(&ts.config, &[]).await;
    let url = format!("https://{}/metrics", d.addr);

    let without = client_trusting(&ca, None).get(&url).send().await;
    assert!(without.is_err(), "no client certificate: {without:?}");
    let stranger = Ca::new("someone else");
    let wrong = client_trusting(&ca, Some(stranger.issue(&["prometheus"], true)))
        .get(&url)
        .send()
        .await;
    assert!(wrong.is_err(), "certificate from another CA: {wrong:?}");
    let ok = client_trusting(&ca, Some(ca.issue(&["prometheus"], true)))
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    d.terminate().await;
}

#[tokio::test]
async fn a_bad_web_config_stops_the_start_with_the_key_named() {
    let ts = start_sim(1, Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(&web, "basic_auth_users:\n  bob: plaintext-password\n").unwrap();

    let out = tokio::process::Command::new(crate::helpers::bin())
        .args(["run", "--listen", "127.0.0.1:0", "--config"])
        .arg(&ts.config)
        .arg("--web.config.file")
        .arg(&web)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--web.config.file"), "{stderr}");
    assert!(
        stderr.contains("basic_auth_users.bob: not a bcrypt hash"),
        "{stderr}"
    );
    assert!(!stderr.contains("plaintext-password"), "{stderr}");

    use_web_config(&ts.config, &dir.path().join("missing.yml"));
    let out = tokio::process::Command::new(crate::helpers::bin())
        .args(["run", "--listen", "127.0.0.1:0", "--config"])
        .arg(&ts.config)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("server.web_config_file"), "{stderr}");
    assert!(stderr.contains("missing.yml: cannot read"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_prometheus_scrapes_over_tls_with_basic_auth() {
    use crate::alerting::{free_port, installed, start, wait_http};
    if !installed("prometheus") {
        assert!(std::env::var_os("CI").is_none(), "CI installs prometheus");
        eprintln!("prometheus not installed; skipping (CI installs it)");
        return;
    }
    let ts = start_sim(2, Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("scrape CA");
    write_server_cert(dir.path(), &ca);
    std::fs::write(dir.path().join("ca.pem"), ca.cert.pem()).unwrap();
    std::fs::write(dir.path().join("password"), "scrape-pass").unwrap();
    let hash = bcrypt::hash("scrape-pass", 4).unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n\
             basic_auth_users:\n  prometheus: '{hash}'\n"
        ),
    )
    .unwrap();
    use_web_config(&ts.config, &web);
    let d = spawn_daemon(&ts.config, &[]).await;

    let prom_port = free_port();
    let p = dir.path();
    std::fs::write(
        p.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: tenantwatch\n    scheme: https\n    tls_config:\n      ca_file: {ca}\n    basic_auth:\n      username: prometheus\n      password_file: {pw}\n    static_configs:\n      - targets: ['{daemon}']\n  - job_name: no_password\n    scheme: https\n    tls_config:\n      ca_file: {ca}\n    static_configs:\n      - targets: ['{daemon}']\n",
            ca = p.join("ca.pem").display(),
            pw = p.join("password").display(),
            daemon = d.addr,
        ),
    )
    .unwrap();
    let _prom = start(
        "prometheus",
        &[
            format!("--config.file={}", p.join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", p.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{prom_port}"),
        ],
    )
    .await;
    wait_http(&format!("http://127.0.0.1:{prom_port}/-/ready")).await;

    // Prometheus' own view of both targets: up with the password, 401 without.
    let deadline = Instant::now() + Duration::from_secs(60);
    let targets = loop {
        let v: serde_json::Value = reqwest::get(format!(
            "http://127.0.0.1:{prom_port}/api/v1/targets?state=active"
        ))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        let active = v["data"]["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let health = |job: &str| {
            active.iter().find(|t| t["labels"]["job"] == job).map(|t| {
                (
                    t["health"].as_str().unwrap_or("").to_string(),
                    t["lastError"].clone(),
                )
            })
        };
        if let (Some(ok), Some(denied)) = (health("tenantwatch"), health("no_password")) {
            if ok.0 == "up" && denied.0 == "down" {
                break (ok, denied);
            }
        }
        assert!(Instant::now() < deadline, "targets never settled: {v}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        targets.1 .1.as_str().unwrap_or("").contains("401"),
        "{:?}",
        targets.1
    );
    let v: serde_json::Value = reqwest::get(format!(
        "http://127.0.0.1:{prom_port}/api/v1/query?query=count(tenantwatch_tenant_info)"
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(v["data"]["result"][0]["value"][1], "2", "{v}");
    d.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_tls_clients_are_closed_after_the_header_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ts = start_sim(1, Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("slow CA");
    write_server_cert(dir.path(), &ca);
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n",
    )
    .unwrap();
    use_web_config(&ts.config, &web);
    let d = spawn_daemon(
        &ts.config,
        &[("TENANTWATCH__SERVER__HEADER_READ_TIMEOUT", "2s")],
    )
    .await;
    let started = Instant::now();
    // One never starts its TLS handshake; one finishes it and stalls in its headers.
    let silent = tokio::net::TcpStream::connect(d.addr).await.unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(d.addr).await.unwrap();
    let mut stalled = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect("127.0.0.1".try_into().unwrap(), tcp)
        .await
        .unwrap();
    stalled
        .write_all(crate::slow_clients::PARTIAL)
        .await
        .unwrap();

    async fn closed_after(mut s: impl AsyncReadExt + Unpin, since: Instant) -> Duration {
        let mut buf = [0u8; 256];
        let read = async {
            // EOF, or an EOF without close_notify (an error to rustls): both closed.
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
            since.elapsed()
        };
        tokio::time::timeout(Duration::from_secs(30), read)
            .await
            .expect("the server closes the connection")
    }
    let (a, b) = tokio::join!(
        closed_after(silent, started),
        closed_after(stalled, started)
    );
    for (what, t) in [("no handshake", a), ("partial headers over TLS", b)] {
        assert!(
            t >= Duration::from_millis(1500) && t < Duration::from_secs(9),
            "{what}: closed after {t:?}; the header timeout is 2 s"
        );
    }
    let r = client_trusting(&ca, None)
        .get(format!("https://{}/healthz", d.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (code, _) = d.terminate().await;
    assert_eq!(code, Some(0));
}
