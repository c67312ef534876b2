//! End-to-end tests of the simulator as a whole, through [`crate::SimHandle`]:
//! its state directory and origins, fixed ports and the written config, and
//! a customer's removal across every service.

use serde_json::{json, Value};

use crate::test_support::{start, GRAPH_SCOPE};
use crate::{Sim, SimOptions};

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
