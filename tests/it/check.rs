//! `tenantwatch check` as a new user meets it: a healthy setup, then the three
//! classic mistakes, each with a message that says what to do.

use std::time::Duration;

use crate::helpers::*;

async fn check(config: &std::path::Path, env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let config = config.to_string_lossy();
    run_command(&["check", "--config", &config], env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_setup_prints_an_aligned_table_and_exits_0() {
    let t = start_sim(4, Duration::ZERO).await;
    let (code, out, _) = check(&t.config, &[]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("4 tenants: 4 ok, 0 failing"), "{out}");
    let header = out
        .lines()
        .find(|l| l.starts_with("TENANT ID"))
        .expect("table header");
    let graph_col = header.find("GRAPH").unwrap();
    for c in t.sim.customers() {
        let row = out
            .lines()
            .find(|l| l.starts_with(&c.tenant_id))
            .expect("a row per tenant");
        assert_eq!(&row[graph_col..graph_col + 2], "ok", "aligned: {row}");
        assert!(row.contains(&c.name));
    }
    assert!(!out.contains('\r'), "no progress indicator when piped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_without_consent_is_named_with_what_to_do() {
    let t = start_sim(4, Duration::ZERO).await;
    let bad = t.sim.customers()[1].clone();
    t.sim.inject_token_error(&bad.tenant_id, 65001);
    let (code, out, _) = check(&t.config, &[]).await;
    assert_eq!(code, Some(1), "{out}");
    let row = out.lines().find(|l| l.starts_with(&bad.tenant_id)).unwrap();
    assert!(row.contains("consent_required"), "{row}");
    assert!(out.contains("grant consent"), "advice: {out}");
    assert!(
        out.contains(&format!(
            "tenantwatch consent customers --tenant {}",
            bad.tenant_id
        )),
        "the command that fixes it: {out}"
    );
    assert!(out.contains("4 tenants: 3 ok, 1 failing"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_client_secret_says_which_secret() {
    let t = start_sim(2, Duration::ZERO).await;
    let secret_file = t.config.with_file_name("partner-client-secret");
    std::fs::write(&secret_file, "not-the-secret\n").unwrap();
    let (code, out, err) = check(&t.config, &[]).await;
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("partner token FAILED"), "{out}");
    assert!(
        out.contains("invalid_client") && out.contains("AADSTS7000215"),
        "{out}"
    );
    assert!(
        out.contains("partner.client_id and the secret file"),
        "{out}"
    );
    assert!(!out.contains("not-the-secret") && !err.contains("not-the-secret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_vault_names_the_url() {
    let t = start_sim(2, Duration::ZERO).await;
    let (code, out, _) = check(
        &t.config,
        &[("TENANTWATCH__STORE__KEYVAULT__URL", "https://127.0.0.1:1")],
    )
    .await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("store         FAILED"), "{out}");
    assert!(
        out.contains("https://127.0.0.1:1/secrets/tenantwatch-refresh-token"),
        "{out}"
    );
    assert!(out.contains("check the store settings"), "{out}");
}
