//! A dead refresh token is reported once and not hammered; `consent` (browser and
//! device code) brings it back; every service identity kind reads the vault.

use std::time::Duration;

use tenantwatch_daemon::daemon::Components;
use tokio::io::BufReader;

use crate::helpers::*;

fn every_second(config: &std::path::Path) {
    append_config(
        config,
        "[collection]\nschedule = \"*/1 * * * * *\"\n[tenants]\nschedule = \"*/1 * * * * *\"\n",
    );
}

fn all_tenants(m: &str, sim: &azure_sim::SimHandle, line: impl Fn(&str) -> String, v: f64) -> bool {
    sim.customers()
        .iter()
        .all(|c| sample(m, &line(&c.tenant_id)) == Some(v))
}

async fn line_matching(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    pred: impl Fn(&str) -> bool,
) -> String {
    loop {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("consent prints")
            .unwrap()
            .expect("line before EOF");
        if pred(&line) {
            return line;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_refresh_token_is_reported_once_bounded_and_consent_recovers() {
    let t = start_sim(25, Duration::ZERO).await;
    every_second(&t.config);
    let d = spawn_daemon(&t.config, &[]).await;
    wait_ready(d.addr, Duration::from_secs(30)).await;
    let up = |id: &str| format!("tenantwatch_tenant_up{{tenant_id=\"{id}\"}}");
    wait_for(d.addr, Duration::from_secs(10), "all up", |m| {
        all_tenants(m, &t.sim, up, 1.0)
    })
    .await;

    // The admin's password was reset: every refresh token is revoked, and
    // Graph and ARM answer the CAE tokens the daemon holds with a claims
    // challenge. The clock moves on first so every token was issued in an
    // earlier second than the reset: CAE honours a token issued in the very
    // second of the event, which made this test flake when the first cycle
    // and the reset shared a second.
    t.sim.advance_clock(Duration::from_secs(2));
    t.sim.revoke_refresh_tokens();
    let before = token_requests(&t.sim);
    let reason = |id: &str| {
        format!(
            "tenantwatch_tenant_token_error{{tenant_id=\"{id}\",reason=\"refresh_token_revoked\"}}"
        )
    };
    let m = wait_for(
        d.addr,
        Duration::from_secs(15),
        "every tenant down as refresh_token_revoked",
        |m| all_tenants(m, &t.sim, reason, 1.0) && all_tenants(m, &t.sim, up, 0.0),
    )
    .await;
    assert_eq!(sample(&m, "tenantwatch_refresh_token_valid"), Some(0.0));
    // Ten more one-second cycles with the token dead.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let spent = token_requests(&t.sim) - before;
    eprintln!(
        "dead refresh token, 25 tenants, ~12 one-second cycles: {spent} token-endpoint requests"
    );
    assert!(
        spent <= 6,
        "{spent} token requests while the refresh token was dead"
    );
    let log = d.log();
    assert_eq!(
        log.matches("run `tenantwatch consent`").count(),
        1,
        "said once:\n{log}"
    );

    // An operator runs consent in a browser; the daemon picks the new token up.
    let (mut child, mut lines) = consent(&t.config, &["--port", "0"]);
    let url = line_matching(&mut lines, |l| l.trim_start().starts_with("https://")).await;
    let browser = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(t.sim.ca_pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let page = browser
        .get(url.trim())
        .send()
        .await
        .expect("sign-in redirect reaches the callback");
    assert!(page.status().is_success());
    assert!(page.text().await.unwrap().contains("Signed in"));
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    let s = settings(&t.config, &[]);
    let c = Components::build(&s).unwrap();
    let stored = stored_token_works(&c, &s)
        .await
        .expect("consented token works");
    assert_eq!(stored.source.as_deref(), Some("consent"));
    let m = wait_for(
        d.addr,
        Duration::from_secs(20),
        "all tenants up again",
        |m| all_tenants(m, &t.sim, up, 1.0),
    )
    .await;
    assert_eq!(sample(&m, "tenantwatch_refresh_token_valid"), Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_code_consent_stores_a_working_token() {
    let t = start_sim(1, Duration::ZERO).await;
    let (mut child, mut lines) = consent(&t.config, &["--device-code"]);
    let line = line_matching(&mut lines, |l| l.contains("enter the code")).await;
    let code = line
        .split("enter the code ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("user code in the message");
    assert!(t.sim.approve_device_code(code), "sim knows the code {code}");
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    let s = settings(&t.config, &[]);
    let c = Components::build(&s).unwrap();
    let stored = stored_token_works(&c, &s)
        .await
        .expect("device-code token works");
    assert_eq!(stored.source.as_deref(), Some("consent"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_reports_a_denied_sign_in() {
    let t = start_sim(1, Duration::ZERO).await;
    let (child, mut lines) = consent(&t.config, &["--device-code", "--timeout", "20s"]);
    let line = line_matching(&mut lines, |l| l.contains("enter the code")).await;
    let code = line
        .split("enter the code ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap();
    assert!(t.sim.deny_device_code(code));
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("authorization_declined"), "{stderr}");
}

/// Builds the store from an edited config and checks it reads a working token.
async fn identity_works(config: &std::path::Path, env: &[(&str, &str)]) {
    let s = settings(config, env);
    let c = Components::build(&s).unwrap();
    stored_token_works(&c, &s)
        .await
        .expect("identity reads the vault");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_identity_and_certificate_partner_app() {
    let t = start_sim(2, Duration::ZERO).await;
    let id_cert = t.sim.identity_certificate();
    let partner_cert = t.sim.partner_certificate();
    edit_config(&t.config, |c| {
        let id = identity_table(c);
        id.remove("client_secret_file");
        id.insert("kind".into(), "certificate".into());
        id.insert(
            "certificate_file".into(),
            id_cert.display().to_string().into(),
        );
        let p = c.get_mut("partner").and_then(|p| p.as_table_mut()).unwrap();
        p.remove("client_secret_file");
        p.insert(
            "certificate_file".into(),
            partner_cert.display().to_string().into(),
        );
    });
    identity_works(&t.config, &[]).await;
    // And the whole daemon on certificates only.
    let d = spawn_daemon(&t.config, &[]).await;
    wait_ready(d.addr, Duration::from_secs(30)).await;
    let (_, m) = get(d.addr, "/metrics").await;
    for c in t.sim.customers() {
        assert_eq!(
            sample(
                &m,
                &format!("tenantwatch_tenant_up{{tenant_id=\"{}\"}}", c.tenant_id)
            ),
            Some(1.0)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_identity_imds_and_app_service() {
    let t = start_sim(1, Duration::ZERO).await;
    let client_id = t.sim.identity_client_id();
    let imds = t.sim.imds_url();
    edit_config(&t.config, |c| {
        let id = identity_table(c);
        id.clear();
        id.insert("kind".into(), "managed_identity".into());
        id.insert("client_id".into(), client_id.clone().into());
        id.insert("endpoint".into(), imds.clone().into());
    });
    identity_works(&t.config, &[]).await;
    // App Service: no endpoint in config, IDENTITY_ENDPOINT/IDENTITY_HEADER from the environment.
    edit_config(&t.config, |c| {
        identity_table(c).remove("endpoint");
    });
    let (endpoint, header) = t.sim.app_service_identity();
    identity_works(
        &t.config,
        &[
            ("IDENTITY_ENDPOINT", &endpoint),
            ("IDENTITY_HEADER", &header),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_identity_from_azure_environment_variables() {
    let t = start_sim(1, Duration::ZERO).await;
    let token_file = t.config.with_file_name("federated-token");
    std::fs::write(&token_file, t.sim.federated_token()).unwrap();
    edit_config(&t.config, |c| {
        let id = identity_table(c);
        id.clear();
        id.insert("kind".into(), "workload_identity".into());
    });
    let (tenant, client) = (t.sim.identity_tenant_id(), t.sim.identity_client_id());
    let file = token_file.display().to_string();
    identity_works(
        &t.config,
        &[
            ("AZURE_TENANT_ID", &tenant),
            ("AZURE_CLIENT_ID", &client),
            ("AZURE_FEDERATED_TOKEN_FILE", &file),
        ],
    )
    .await;
    // Explicit config wins over the environment.
    edit_config(&t.config, |c| {
        identity_table(c).insert(
            "client_id".into(),
            "00000000-0000-0000-0000-000000000001".into(),
        );
    });
    let s = settings(
        &t.config,
        &[
            ("AZURE_TENANT_ID", &tenant),
            ("AZURE_CLIENT_ID", &client),
            ("AZURE_FEDERATED_TOKEN_FILE", &file),
        ],
    );
    let c = Components::build(&s).unwrap();
    assert!(
        stored_token_works(&c, &s).await.is_err(),
        "config client_id must win over AZURE_CLIENT_ID"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyvault_outage_during_rotation_keeps_the_old_token_and_recovers() {
    use azure_sim::{Fault, Service};
    let t = start_sim(3, Duration::ZERO).await;
    append_config(
        &t.config,
        "[rotation]\nschedule = \"*/2 * * * * *\"\nrotate_after = \"1s\"\n",
    );
    let d = spawn_daemon(&t.config, &[]).await;
    wait_ready(d.addr, Duration::from_secs(30)).await;
    t.sim.inject_fault(
        Service::KeyVault,
        Fault::Status(503),
        Some(Duration::from_secs(6)),
    );
    let m = wait_for(d.addr, Duration::from_secs(15), "a failed rotation", |m| {
        sample(
            m,
            "tenantwatch_refresh_token_rotations_total{result=\"failure\"}",
        )
        .unwrap_or(0.0)
            >= 1.0
    })
    .await;
    for c in t.sim.customers() {
        assert_eq!(
            sample(
                &m,
                &format!("tenantwatch_tenant_up{{tenant_id=\"{}\"}}", c.tenant_id)
            ),
            Some(1.0),
            "tenants stay up during the outage"
        );
    }
    assert!(d.log().contains("the previous token stays in use"));
    let before = t.sim.stored_secret(&t.sim.secret_name()).unwrap();
    let successes = sample(
        &m,
        "tenantwatch_refresh_token_rotations_total{result=\"success\"}",
    )
    .unwrap_or(0.0);
    // After the outage the retry succeeds and writes a new version. Retries
    // wait a full-jitter draw of up to 30 s, then 60 s, 120 s: 150 s covers
    // even two early retries that both land inside the 6 s outage.
    wait_for(
        d.addr,
        Duration::from_secs(150),
        "a successful rotation after the outage",
        |m| {
            sample(
                m,
                "tenantwatch_refresh_token_rotations_total{result=\"success\"}",
            )
            .unwrap_or(0.0)
                > successes
        },
    )
    .await;
    assert_ne!(t.sim.stored_secret(&t.sim.secret_name()).unwrap(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_callback_ignores_requests_without_its_own_state() {
    let t = start_sim(1, Duration::ZERO).await;
    let before = t.sim.stored_secret(azure_sim::SECRET_NAME);
    let (mut child, mut lines) = consent(&t.config, &["--port", "0"]);
    let url = line_matching(&mut lines, |l| l.trim_start().starts_with("https://")).await;
    let url = reqwest::Url::parse(url.trim()).unwrap();
    let redirect = url
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.to_string())
        .expect("redirect_uri in the sign-in URL");
    let port = reqwest::Url::parse(&redirect).unwrap().port().unwrap();
    assert!(url
        .query_pairs()
        .any(|(k, v)| k == "code_challenge_method" && v == "S256"));

    // A page elsewhere in the browser tries to complete the sign-in with its own code.
    for query in [
        "?code=forged&state=guess",
        "?code=forged",
        "?error=access_denied",
    ] {
        let page = reqwest::get(format!("http://127.0.0.1:{port}/{query}"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("does not belong"), "{query}: {page}");
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "still waiting for the real sign-in"
    );
    // Only loopback listens.
    let outside = std::net::TcpStream::connect(("::1", port)).is_err();
    assert!(outside, "callback must bind 127.0.0.1 only");

    let browser = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(t.sim.ca_pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let page = browser.get(url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Signed in"), "{page}");
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    assert_ne!(
        t.sim.stored_secret(azure_sim::SECRET_NAME),
        before,
        "the real sign-in was stored"
    );
}
