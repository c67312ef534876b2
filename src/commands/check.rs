//! `tenantwatch check`: try the store, the partner token, discovery and every
//! tenant × API once, print an aligned table and say what to fix.

use std::io::IsTerminal;
use std::sync::Arc;

use tokio::task::JoinSet;

use std::process::ExitCode;

use tenantwatch_daemon::collect::collector::{with_token, CollectError};
use tenantwatch_daemon::config::Settings;
use tenantwatch_daemon::daemon::Components;
use tenantwatch_daemon::model::{Api, Tenant};
use tenantwatch_daemon::outbound::request::Request;
use tenantwatch_daemon::outbound::url::join;

use crate::commands::{clean, load, report, ConfigArgs};

/// One row: a tenant and the outcome per API.
struct Row {
    tenant: Tenant,
    graph: Result<(), CollectError>,
    arm: Result<(), CollectError>,
}

fn outcome(r: &Result<(), CollectError>) -> String {
    match r {
        Ok(()) => "ok".into(),
        Err(CollectError::Token(b)) => b.class().as_str().into(),
        Err(CollectError::Api(tenantwatch_daemon::outbound::client::ApiError::Status {
            status,
            code,
            ..
        })) => {
            format!("HTTP {status} {code}")
        }
        // Still challenged after redeeming with the challenge's claims.
        Err(CollectError::Api(
            tenantwatch_daemon::outbound::client::ApiError::ClaimsChallenge { .. },
        )) => "HTTP 401 insufficient_claims".into(),
        Err(CollectError::Api(_)) => "unreachable".into(),
    }
}

fn advice(r: &Result<(), CollectError>) -> Option<String> {
    match r {
        Ok(()) => None,
        Err(CollectError::Token(b)) => Some(format!("{}: {}", b.class(), b.class().advice())),
        Err(e) => Some(e.to_string()),
    }
}

/// Runs the checks of the partner `--partner` names, else of every partner
/// in turn: exit 0 when every one passed, 1 when any failed, 2 for a bad
/// config or an unknown partner.
pub async fn run(args: ConfigArgs, log: crate::commands::LogOptions) -> ExitCode {
    let settings = match load(&args.config, log) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let partners = match settings.select_or_all(args.partner.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            crate::warn_user!("error: {e}");
            return ExitCode::from(crate::commands::EXIT_CONFIG);
        }
    };
    let several = partners.len() > 1;
    let mut failed = Vec::new();
    for (i, partner) in partners.iter().enumerate() {
        if several {
            // One partner's failure never hides the next one's results.
            crate::say!(
                "{}== partner {} ==",
                if i == 0 { "" } else { "\n" },
                partner.partner_name
            );
        }
        let ok = match check(partner).await {
            Ok(ok) => ok,
            Err(e) => {
                report(&e);
                false
            }
        };
        if !ok {
            failed.push(partner.partner_name.clone());
        }
    }
    if several {
        crate::say!(
            "\n{} partners: {} ok, {} failing{}",
            partners.len(),
            partners.len() - failed.len(),
            failed.len(),
            if failed.is_empty() {
                String::new()
            } else {
                format!(" ({})", failed.join(", "))
            }
        );
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs the checks; `Ok(false)` when something failed.
async fn check(settings: &Settings) -> anyhow::Result<bool> {
    let tty = std::io::stderr().is_terminal();
    let c = Components::build(settings)?;
    crate::say!("config        ok");
    // 1. The store, through the service identity.
    match c.broker.load_from_store().await {
        Ok(_) => {
            let t = c.broker.current_token();
            let age = t
                .as_ref()
                .and_then(|t| t.issued_at)
                .map(|ts| {
                    format!(
                        ", issued {:.0} days ago",
                        (tenantwatch_common::time::unix_now() - ts as f64) / 86400.0
                    )
                })
                .unwrap_or_default();
            crate::say!(
                "store         ok  {} version {}{age}",
                c.broker.store().describe(),
                t.map(|t| t.version).unwrap_or_default()
            );
        }
        Err(e) => {
            crate::say!("store         FAILED  {e}");
            crate::say!("\nThe refresh token could not be read: check the store settings, the service identity's credentials and its access to the vault (Key Vault Secrets User/Officer), or run `tenantwatch consent`.");
            return Ok(false);
        }
    }
    // 2. The partner token.
    let partner = settings.partner.tenant_id.clone();
    let partner_token = match c.broker.redeem(&partner, Api::PartnerCenter).await {
        Ok(r) => r,
        Err(e) => {
            crate::say!("partner token FAILED  {e}");
            crate::say!("\n{}", e.class().advice());
            return Ok(false);
        }
    };
    crate::say!("partner token ok  (tenant {partner})");
    // 2b. Whether its sign-in used MFA, which Partner Center requires.
    let mfa = tenantwatch_daemon::support::jwt::amr_has_mfa(
        tenantwatch_daemon::support::secret::ExposeSecret::expose_secret(
            &partner_token.access.secret,
        ),
    );
    drop(partner_token);
    let mfa_ok = match mfa {
        Some(true) => {
            crate::say!("partner MFA   ok  (the refresh token's sign-in used MFA)");
            true
        }
        Some(false) => {
            crate::say!(
                "partner MFA   FAILED  mfa_claim_missing: the token's amr has no mfa; {}",
                tenantwatch_daemon::model::ErrorClass::MfaClaimMissing.advice()
            );
            false
        }
        None => {
            crate::say!("partner MFA   unknown  (the access token could not be read)");
            true
        }
    };
    // 3. Discovery.
    let api = Arc::new(c.api(settings));
    let found = tenantwatch_daemon::collect::discovery::discover(
        &settings.tenants,
        &api,
        &c.broker,
        &settings.cloud,
        &partner,
        None,
    )
    .await;
    for f in &found.failures {
        crate::say!(
            "discovery     FAILED  {} [{}]: {}\n              {}",
            f.source.as_str(),
            f.class.as_str(),
            clean(&f.message),
            f.class.advice()
        );
    }
    crate::say!(
        "discovery     {}  {} tenants from {}",
        if found.failures.is_empty() {
            "ok"
        } else {
            "partial"
        },
        found.tenants.len(),
        settings
            .tenants
            .sources
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    // 4. Every tenant × API, a cheap call each.
    let total = found.tenants.len();
    let mut tasks = JoinSet::new();
    let permits = Arc::new(tokio::sync::Semaphore::new(settings.collection.concurrency));
    for tenant in found.tenants.clone() {
        let (broker, api, cloud, permits) = (
            c.broker.clone(),
            api.clone(),
            settings.cloud.clone(),
            permits.clone(),
        );
        tasks.spawn(async move {
            let _p = permits.acquire_owned().await;
            let id = tenant.tenant_id.clone();
            let graph = with_token(&broker, &id, Api::Graph, |t| {
                let (api, cloud, id) = (api.clone(), cloud.clone(), id.clone());
                async move {
                    let url = join(&cloud.graph, "v1.0/organization");
                    api.send_json::<serde_json::Value>(&Request::get("graph", &id, url, &t))
                        .await
                        .map(|_| ())
                }
            })
            .await;
            let arm = with_token(&broker, &id, Api::Arm, |t| {
                let (api, cloud, id) = (api.clone(), cloud.clone(), id.clone());
                async move {
                    let url = join(&cloud.arm, "subscriptions?api-version=2022-12-01");
                    api.send_json::<serde_json::Value>(&Request::get("arm", &id, url, &t))
                        .await
                        .map(|_| ())
                }
            })
            .await;
            Row { tenant, graph, arm }
        });
    }
    let mut rows = Vec::with_capacity(total);
    while let Some(done) = tasks.join_next().await {
        if let Ok(row) = done {
            rows.push(row);
        }
        if tty {
            eprint!("\rchecking tenants {}/{total}", rows.len());
        }
    }
    if tty {
        eprint!("\r\x1b[K");
    }
    rows.sort_by(|a, b| {
        (a.graph.is_ok() && a.arm.is_ok())
            .cmp(&(b.graph.is_ok() && b.arm.is_ok()))
            .then_with(|| a.tenant.name.cmp(&b.tenant.name))
    });
    let header = ["TENANT ID", "NAME", "DOMAIN", "GRAPH", "ARM"];
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            [
                // Names and outcomes came from outside: cleaned before the
                // columns are measured.
                clean(&r.tenant.tenant_id),
                clean(&r.tenant.name),
                clean(&r.tenant.domain),
                clean(&outcome(&r.graph)),
                clean(&outcome(&r.arm)),
            ]
        })
        .collect();
    println!();
    crate::commands::print_columns(header, &cells);
    let failing: Vec<&Row> = rows
        .iter()
        .filter(|r| r.graph.is_err() || r.arm.is_err())
        .collect();
    let mut reasons = std::collections::BTreeMap::new();
    for r in &failing {
        for a in [advice(&r.graph), advice(&r.arm)].into_iter().flatten() {
            *reasons.entry(a).or_insert(0) += 1;
        }
    }
    if !reasons.is_empty() {
        println!();
        for (why, n) in &reasons {
            crate::say!("  {n} × {why}");
        }
    }
    // Tenants a consent push would fix, named in the command that does it.
    let consent_fix = |r: &Result<(), CollectError>| matches!(r, Err(CollectError::Token(b)) if b.class().consent_push_fixes());
    let missing: Vec<String> = failing
        .iter()
        .filter(|r| consent_fix(&r.graph) || consent_fix(&r.arm))
        .map(|r| format!("--tenant {}", clean(&r.tenant.tenant_id)))
        .collect();
    if !missing.is_empty() {
        crate::say!(
            "\nThe SAM app lacks consent in {} tenant(s); push it through Partner Center (as an admin agent):\n  tenantwatch consent customers {}",
            missing.len(),
            missing.join(" ")
        );
    }
    crate::say!(
        "\n{total} tenants: {} ok, {} failing{}",
        total - failing.len(),
        failing.len(),
        if found.failures.is_empty() {
            ""
        } else {
            "; discovery incomplete"
        }
    );
    Ok(failing.is_empty() && found.failures.is_empty() && mfa_ok)
}
