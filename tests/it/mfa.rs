//! Partner Center's MFA rule (App+User calls need `mfa` in the token's `amr`,
//! enforced since 2026-04-01) as an operator meets it: `consent` refuses a
//! sign-in without MFA unless told otherwise, the daemon says which token and
//! which discovery source are affected while Graph keeps working, `check`
//! names the class, and a consent with MFA clears it all.

use std::time::Duration;

use crate::helpers::*;

/// Runs `tenantwatch consent --device-code ARGS`, approves the code in the
/// sim, and returns the exit code, stdout and stderr.
async fn device_consent(t: &TestSim, args: &[&str]) -> (Option<i32>, String, String) {
    let args: Vec<&str> = ["--device-code", "--timeout", "30s"]
        .into_iter()
        .chain(args.iter().copied())
        .collect();
    let (child, mut lines) = consent(&t.config, &args);
    let mut out = String::new();
    let code = loop {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("consent prints")
            .unwrap()
            .expect("a user code before EOF");
        out.push_str(&line);
        out.push('\n');
        if let Some(rest) = line.split("enter the code ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    assert!(t.sim.approve_device_code(&code), "sim knows {code}");
    while let Some(line) = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("consent finishes")
        .unwrap()
    {
        out.push_str(&line);
        out.push('\n');
    }
    let done = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("consent finishes")
        .unwrap();
    let err = String::from_utf8_lossy(&done.stderr).into_owned();
    record_output(&out);
    record_output(&err);
    (done.status.code(), out, err)
}

async fn check(config: &std::path::Path) -> (Option<i32>, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(bin())
            .args(["check", "--config"])
            .arg(config)
            .output(),
    )
    .await
    .expect("check finishes")
    .expect("check runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    record_output(&text);
    (out.status.code(), text)
}

const MFA_MISSING: &str =
    "tenantwatch_discovery_error{source=\"partner_center\",reason=\"mfa_claim_missing\"}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_without_mfa_is_refused_reported_and_recovered_from() {
    let t = start_sim(3, Duration::ZERO).await;
    append_config(
        &t.config,
        "[collection]\nschedule = \"*/1 * * * * *\"\n[tenants]\nsources = [\"partner_center\", \"gdap\"]\nschedule = \"*/1 * * * * *\"\n",
    );
    let secret = t.sim.secret_name();
    let seeded = t.sim.stored_secret(&secret).unwrap();

    // 1. Without MFA, consent says why and stores nothing.
    t.sim.next_sign_in_without_mfa();
    let (code, out, err) = device_consent(&t, &[]).await;
    assert_ne!(code, Some(0), "{out}{err}");
    assert!(err.contains("the sign-in did not use MFA"), "{err}");
    assert!(err.contains("--allow-without-mfa"), "{err}");
    assert_eq!(
        t.sim.stored_secret(&secret).unwrap(),
        seeded,
        "nothing stored"
    );

    // 2. Told to, it stores the token and says what that means.
    t.sim.next_sign_in_without_mfa();
    let (code, out, err) = device_consent(&t, &["--allow-without-mfa"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("MFA      NO"), "{out}");
    assert_ne!(t.sim.stored_secret(&secret).unwrap(), seeded);

    // 3. The daemon: the gauge says no MFA, Partner Center discovery fails
    //    with its own class, and the tenants GDAP lists stay up.
    let d = spawn_daemon(&t.config, &[]).await;
    // Partner Center lists every customer; GDAP only those with an active
    // relationship: some tenants, all of them up.
    let up = |m: &str| {
        let rows: Vec<&str> = m
            .lines()
            .filter(|l| l.starts_with("tenantwatch_tenant_up{"))
            .collect();
        !rows.is_empty() && rows.iter().all(|l| l.ends_with(" 1"))
    };
    let m = wait_for(
        d.addr,
        Duration::from_secs(30),
        "mfa 0, partner_center failing as mfa_claim_missing, tenants up through GDAP",
        |m| {
            sample(m, "tenantwatch_refresh_token_mfa") == Some(0.0)
                && sample(m, MFA_MISSING) == Some(1.0)
                && up(m)
        },
    )
    .await;
    assert_eq!(sample(&m, "tenantwatch_discovery_up"), Some(0.0));
    assert_eq!(sample(&m, "tenantwatch_refresh_token_valid"), Some(1.0));
    assert!(
        !m.contains("tenantwatch_discovery_error{source=\"gdap\""),
        "GDAP works: {m}"
    );
    let log = d.log();
    assert!(
        log.contains("mfa_claim_missing") && log.contains("complete MFA"),
        "{log}"
    );

    // 4. `check` names the class and what to do, and fails.
    let (code, out) = check(&t.config).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("partner MFA   FAILED  mfa_claim_missing"),
        "{out}"
    );
    assert!(
        out.contains("discovery     FAILED  partner_center [mfa_claim_missing]"),
        "{out}"
    );
    assert!(
        out.contains("re-run `tenantwatch consent` and complete MFA"),
        "{out}"
    );

    // 5. A consent with MFA clears both, without a restart.
    let (code, out, err) = device_consent(&t, &[]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("MFA      yes"), "{out}");
    let m = wait_for(
        d.addr,
        Duration::from_secs(30),
        "mfa 1 and no discovery error",
        |m| {
            sample(m, "tenantwatch_refresh_token_mfa") == Some(1.0)
                && !m.contains("tenantwatch_discovery_error{")
        },
    )
    .await;
    assert_eq!(sample(&m, "tenantwatch_discovery_up"), Some(1.0));
}
