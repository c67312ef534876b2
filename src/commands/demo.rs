//! `tenantwatch demo`: the simulated Microsoft cloud and the daemon against it,
//! in one process, so anyone can see tenantwatch work without an Azure account.

use std::net::SocketAddr;
use std::time::Duration;

use std::process::ExitCode;

use anyhow::Context;
use azure_sim::{Sim, SimOptions};
use tenantwatch_daemon::config::{LogFormat, Settings};
use tenantwatch_daemon::daemon::{Reload, ReloadError};
use tenantwatch_daemon::model::Source;

use crate::commands::exit;

/// `tenantwatch demo`.
#[cfg(feature = "sim")]
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address for /metrics and friends.
    #[arg(
        long,
        visible_alias = "web.listen-address",
        value_name = "ADDR",
        default_value = "127.0.0.1:9464"
    )]
    pub listen: SocketAddr,
    /// Simulated customer tenants.
    #[arg(long, default_value_t = 25)]
    pub tenants: usize,
    /// An all-green estate. Without it a few tenants have trouble to show: one
    /// lost consent, one with every licence assigned, GDAP relationships ending
    /// without auto-extend, a degraded service, disabled subscriptions.
    #[arg(long)]
    pub healthy: bool,
}

/// AADSTS65001 (consent not granted): the customer that lost consent in the demo.
const LOST_CONSENT: u32 = 65001;

/// Collection schedule for the demo: every 30 s, so changes show quickly.
const DEMO_SCHEDULE: &str = "*/30 * * * * *";

/// Runs the demo until SIGINT/SIGTERM.
pub async fn run(args: Args, log: crate::commands::LogOptions) -> ExitCode {
    log.init(LogFormat::Text, "info");
    exit(demo(args).await)
}

async fn demo(args: Args) -> anyhow::Result<()> {
    let (shutdown, requests) = crate::signals::with_reload()?;
    let dir = std::env::temp_dir().join(format!("tenantwatch-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let sim = Sim::start(SimOptions {
        tenants: args.tenants,
        state_dir: dir.clone(),
        healthy: args.healthy,
        ..SimOptions::default()
    })
    .await
    .context("cannot start the simulated cloud")?;
    // The rest of the trouble is in the estate the sim generates; a lost consent
    // is a switch of its own, as in the tests that need one.
    // Customer 12 (or the last of fewer): none of the sim's other cases.
    let lost = if args.healthy {
        None
    } else {
        let customers = sim.customers();
        customers
            .len()
            .min(12)
            .checked_sub(1)
            .and_then(|i| customers.get(i).cloned())
    };
    if let Some(t) = &lost {
        sim.inject_token_error(&t.tenant_id, LOST_CONSENT);
    }
    let config = dir.join("tenantwatch.toml");
    let listen = args.listen.to_string();
    sim.write_config(&config, Some(&listen))
        .context("cannot write the demo config")?;
    let load = {
        let config = config.clone();
        move || -> Result<Settings, ReloadError> {
            let mut settings = Settings::load(&config)?;
            settings.tenants.schedule = DEMO_SCHEDULE.to_string();
            // GDAP relationships too, so their end dates (and the tenant
            // only GDAP lists) show.
            if !settings.tenants.sources.contains(&Source::Gdap) {
                settings.tenants.sources.push(Source::Gdap);
            }
            for c in settings.collectors.values_mut() {
                c.schedule = DEMO_SCHEDULE.to_string();
                c.timeout = Duration::from_secs(20);
            }
            Ok(settings)
        }
    };
    let settings = load()?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot bind {} (try --listen 127.0.0.1:0)", args.listen))?;
    let addr = listener.local_addr()?;
    let trouble = match &lost {
        Some(t) => format!(
            "a few with trouble (lost consent: {}; --healthy for none)",
            t.name
        ),
        None => "all healthy".to_string(),
    };
    println!(
        "tenantwatch demo: simulated Microsoft cloud with {} customer tenants, {trouble}\n\
         \n  status page  http://{addr}/\n  metrics      http://{addr}/metrics\n  readiness    http://{addr}/readyz\n\
         \n  simulated login {}  graph {}  partner center {}  key vault {}\n  config used  {}\n\
         \nPress Ctrl-C to stop.",
        args.tenants,
        sim.login_url(),
        sim.graph_url(),
        sim.partner_center_url(),
        sim.keyvault_url(),
        config.display(),
    );
    let reload = Reload {
        requests,
        load: Box::new(load),
    };
    let outcome = tenantwatch_daemon::daemon::run(settings, listener, shutdown, Some(reload)).await;
    sim.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(outcome?)
}
