//! End-to-end tests of the simulator as a whole, through [`crate::SimHandle`]:
//! its state directory and origins, fixed ports and the written config, and
//! a customer's removal across every service, CAE tokens and their claims
//! challenges.

use serde_json::{json, Value};

use crate::test_support::{start, ARM_SCOPE, GRAPH_SCOPE, PC_SCOPE};
use crate::{Sim, SimOptions};

#[tokio::test]
async fn partner_and_customer_counts_out_of_range_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (partners, tenants) in [
        (0, 5),
        (crate::MAX_PARTNERS + 1, 5),
        (100, 10_000),
        (2, usize::MAX),
    ] {
        let state_dir = dir.path().join(format!("{partners}-{tenants}"));
        let opts = SimOptions {
            partners,
            tenants,
            state_dir: state_dir.clone(),
            ..SimOptions::default()
        };
        let Err(e) = Sim::start(opts).await else {
            panic!("{partners} partners of {tenants} started");
        };
        assert!(
            matches!(e, crate::SimError::InvalidOption(_)),
            "{partners}/{tenants}: {e}"
        );
        assert!(!state_dir.exists(), "nothing written before the check");
    }
}

#[tokio::test]
async fn state_files_and_distinct_origins() {
    let f = start(3).await;
    let dir = f.sim.state_dir();
    assert!(std::fs::read_to_string(f.sim.ca_file())
        .unwrap()
        .contains("BEGIN CERTIFICATE"));
    let secret = std::fs::read_to_string(dir.join("partner-client-secret")).unwrap();
    assert_eq!(secret, f.sim.partner_client_secret());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for name in ["partner-client-secret", "keyvault-client-secret"] {
            let mode = std::fs::metadata(dir.join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
    }
    let mut origins = vec![
        f.sim.login_url(),
        f.sim.keyvault_url(),
        f.sim.graph_url(),
        f.sim.arm_url(),
        f.sim.partner_center_url(),
    ];
    origins.sort();
    origins.dedup();
    assert_eq!(origins.len(), 5);
    assert!(f.sim.login_url().starts_with("https://127.0.0.1:"));
    assert_eq!(f.sim.customers().len(), 3);
    let dbg = format!("{:?}", f.sim);
    assert!(!dbg.contains(&f.sim.partner_client_secret()));
    f.sim.shutdown().await;
}

#[tokio::test]
async fn fixed_port_gives_consecutive_ports_and_config() {
    // Find a base with five free ports; retry on the rare collision.
    for attempt in 0..10u16 {
        let base = 20_000 + (std::process::id() as u16 % 20_000) + attempt * 97;
        let dir = tempfile::tempdir().unwrap();
        let opts = SimOptions {
            tenants: 1,
            listen: format!("127.0.0.1:{base}").parse().unwrap(),
            state_dir: dir.path().to_path_buf(),
            ..SimOptions::default()
        };
        let Ok(sim) = Sim::start(opts).await else {
            continue;
        };
        assert_eq!(sim.login_url(), format!("https://127.0.0.1:{base}"));
        assert_eq!(
            sim.keyvault_url(),
            format!("https://127.0.0.1:{}", base + 1)
        );
        assert_eq!(sim.graph_url(), format!("https://127.0.0.1:{}", base + 2));
        assert_eq!(sim.arm_url(), format!("https://127.0.0.1:{}", base + 3));
        assert_eq!(
            sim.partner_center_url(),
            format!("https://127.0.0.1:{}", base + 4)
        );
        assert_eq!(
            sim.imds_url(),
            format!(
                "http://127.0.0.1:{}/metadata/identity/oauth2/token",
                base + 5
            )
        );
        assert_eq!(sim.admin_url(), format!("http://127.0.0.1:{}", base + 6));
        let cfg = dir.path().join("tw.toml");
        sim.write_config(&cfg, Some("127.0.0.1:9100")).unwrap();
        let v: toml::Value = toml::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
        assert_eq!(
            v["store"]["keyvault"]["url"].as_str(),
            Some(sim.keyvault_url().as_str())
        );
        assert_eq!(v["server"]["listen"].as_str(), Some("127.0.0.1:9100"));
        let text = std::fs::read_to_string(&cfg).unwrap();
        assert!(!text.contains(&sim.partner_client_secret()));
        sim.shutdown().await;
        return;
    }
    panic!("no free port range found");
}

#[tokio::test]
async fn removed_customers_vanish_everywhere_and_lose_access() {
    let f = start(3).await;
    let gone = f.sim.customers()[0].tenant_id.clone();
    let rt = f.seeded_rt();
    f.sim.remove_customer(&gone);
    assert_eq!(f.sim.customers().len(), 2);
    let truth = f.sim.ground_truth();
    assert!(truth.tenants.iter().all(|t| t.tenant_id != gone));
    let (status, body) = f.refresh(&gone, &rt, GRAPH_SCOPE).await;
    assert_eq!(status, 400);
    assert_eq!(body["error_codes"], json!([50020]));
    let partner = f.access(&f.sim.partner_tenant_id(), GRAPH_SCOPE).await;
    let (rels, _) = f
        .graph_all(
            "/v1.0/tenantRelationships/delegatedAdminRelationships",
            &partner,
        )
        .await;
    assert!(rels
        .iter()
        .all(|r| r["customer"]["tenantId"] != gone.as_str()));
    let pc = f
        .access(
            &f.sim.partner_tenant_id(),
            "https://api.partnercenter.microsoft.com/.default",
        )
        .await;
    let r = f
        .get(
            format!("{}/v1/customers", f.sim.partner_center_url()),
            Some(&pc),
        )
        .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["items"].as_array().unwrap().len(), 2);
}

/// CAE: a `cp1` client gets a 20–28 h token for Graph and ARM (not for
/// Partner Center); a critical event makes both answer the documented claims
/// challenge; redeeming again with the challenge's claims satisfies a policy
/// event, while after "revoke sessions" the refresh token itself is refused.
#[tokio::test]
async fn cae_tokens_live_long_and_are_challenged_after_critical_events() {
    use base64::Engine;
    let f = crate::test_support::start(1).await;
    let tenant = f.sim.customers()[0].tenant_id.clone();
    let rt = f.seeded_rt();
    let cp1 = r#"{"access_token":{"xms_cc":{"values":["cp1"]}}}"#;
    let redeem = |scope: &'static str, claims: Option<String>| {
        let (rt, tenant, f) = (rt.clone(), tenant.clone(), &f);
        async move {
            let (id, secret) = (f.sim.partner_client_id(), f.sim.partner_client_secret());
            let mut form = vec![
                ("grant_type", "refresh_token".to_string()),
                ("client_id", id),
                ("client_secret", secret),
                ("refresh_token", rt),
                ("scope", scope.to_string()),
            ];
            if let Some(c) = claims {
                form.push(("claims", c));
            }
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            f.token(&tenant, &form).await
        }
    };
    let (s, b) = redeem(GRAPH_SCOPE, Some(cp1.into())).await;
    assert_eq!(s, 200, "{b}");
    let lifetime = b["expires_in"].as_i64().unwrap();
    assert!((20 * 3600..=28 * 3600).contains(&lifetime), "{lifetime}");
    let graph = b["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        crate::test_support::claims(&graph)["xms_cc"],
        json!(["cp1"])
    );
    let (_, b) = redeem(ARM_SCOPE, Some(cp1.into())).await;
    let arm = b["access_token"].as_str().unwrap().to_string();
    assert!(b["expires_in"].as_i64().unwrap() >= 20 * 3600);
    // Without the capability, and for a resource without CAE: about an hour.
    let (_, b) = redeem(GRAPH_SCOPE, None).await;
    assert!(b["expires_in"].as_i64().unwrap() < 3600);
    let plain = b["access_token"].as_str().unwrap().to_string();
    let (_, b) = f.refresh(&f.sim.partner_tenant_id(), &rt, PC_SCOPE).await;
    assert!(b["expires_in"].as_i64().unwrap() < 3600);

    let org = format!("{}/v1.0/organization", f.sim.graph_url());
    let subs = format!("{}/subscriptions?api-version=2022-12-01", f.sim.arm_url());
    assert_eq!(f.get(org.clone(), Some(&graph)).await.status(), 200);
    f.sim.advance_clock(std::time::Duration::from_secs(2));
    f.sim.cae_event(&tenant);
    let decode = |r: &reqwest::Response| {
        let h = r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            h.starts_with("Bearer realm=\"\", authorization_uri=\""),
            "{h}"
        );
        assert!(h.contains("error=\"insufficient_claims\""), "{h}");
        let b64 = h.split("claims=\"").nth(1).unwrap().trim_end_matches('"');
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap(),
        )
        .unwrap()
    };
    let r = f.get(org.clone(), Some(&graph)).await;
    assert_eq!(r.status(), 401);
    let claims = decode(&r);
    assert!(
        claims.starts_with(r#"{"access_token":{"nbf":{"essential":true"#),
        "{claims}"
    );
    let r = f.get(subs.clone(), Some(&arm)).await;
    assert_eq!(r.status(), 401);
    decode(&r);
    // A one-hour token is not re-evaluated.
    assert_eq!(f.get(org.clone(), Some(&plain)).await.status(), 200);
    // The challenge's claims, merged with cp1, get a token that passes.
    let mut merged: Value = serde_json::from_str(&claims).unwrap();
    merged["access_token"]["xms_cc"] = json!({"values": ["cp1"]});
    let (s, b) = redeem(GRAPH_SCOPE, Some(merged.to_string())).await;
    assert_eq!(s, 200, "{b}");
    let fresh = b["access_token"].as_str().unwrap().to_string();
    assert_eq!(f.get(org.clone(), Some(&fresh)).await.status(), 200);

    // Revoke sessions (or a password reset): challenged, and the refresh
    // token is refused too.
    f.sim.advance_clock(std::time::Duration::from_secs(2));
    let r = f
        .http
        .post(format!("{}/_sim/password-reset", f.sim.admin_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = f.get(org, Some(&fresh)).await;
    assert_eq!(r.status(), 401);
    decode(&r);
    let (s, b) = redeem(GRAPH_SCOPE, Some(merged.to_string())).await;
    assert_eq!((s, b["error_codes"][0].as_u64()), (400, Some(50173)), "{b}");
}

/// Several partners: partner 0 is what the single-partner accessors
/// describe; each other partner has its own secret file beside
/// `partner-client-secret` and its own vault secret holding a valid refresh
/// token, and none of their secrets shows in `Debug`.
#[tokio::test]
async fn several_partners_have_their_own_files_and_vault_secrets() {
    let f = crate::test_support::start_partners(4, 3).await;
    let dir = f.sim.state_dir().to_path_buf();
    assert_eq!(f.sim.partner_count(), 3);
    let p0 = f.partner(0);
    assert_eq!(p0.tenant_id, f.sim.partner_tenant_id());
    assert_eq!(p0.client_id, f.sim.partner_client_id());
    assert_eq!(p0.client_secret_file, dir.join("partner-client-secret"));
    assert_eq!(p0.secret_name, f.sim.secret_name());
    assert_eq!(p0.customers, f.sim.customers());
    for k in 1..3 {
        let p = f.partner(k);
        assert_eq!(p.index, k);
        assert_eq!(
            p.client_secret_file,
            dir.join(format!("partner-client-secret-{k}"))
        );
        assert_eq!(
            std::fs::read_to_string(&p.client_secret_file).unwrap(),
            p.client_secret
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p.client_secret_file)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(p.secret_name, format!("tenantwatch-refresh-token-{k}"));
        assert_eq!(p.secret_name, crate::partner_secret_name(k));
        assert!(f.sim.refresh_token_valid(&f.seeded_rt_of(k)));
        assert_ne!(f.seeded_rt_of(k), f.seeded_rt());
        assert_eq!(p.customers.len(), 4);
        assert!(f.sim.issued_secrets().contains(&p.client_secret));
        assert!(!format!("{p:?}").contains(&p.client_secret));
        assert_ne!(p.tenant_id, p0.tenant_id);
        assert_ne!(p.client_id, p0.client_id);
        assert_ne!(p.gdap_only, p0.gdap_only);
    }
    assert!(f.sim.partner(3).is_none());
    // 4 customers each, 0 shared (4/10 = 0): 12 tenants in all.
    let all: std::collections::HashSet<String> = (0..3)
        .flat_map(|k| f.partner(k).customers)
        .map(|t| t.tenant_id)
        .collect();
    assert_eq!(all.len(), 12);
}
