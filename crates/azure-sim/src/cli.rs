//! `tenantwatch sim`: run only the simulated Microsoft cloud.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::{Sim, SimOptions, DEFAULT_RESOURCE_GRAPH_PAGE_SIZE, DEFAULT_SEED};

/// Flags of `tenantwatch sim`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// Login endpoint address; the other services use the next ports
    /// (keyvault, graph, arm, partner center, then on loopback the managed
    /// identity endpoint and the admin API), or random ports when 0.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Number of simulated customer tenants of each partner.
    #[arg(long, value_name = "N", default_value_t = 25)]
    pub tenants: usize,
    /// Number of partner tenants, each with its own SAM app, admin, refresh
    /// token and customers; neighbouring partners share a tenth of theirs.
    // The bound is `crate::MAX_PARTNERS`; clap wants a literal range.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u8).range(1..=100))]
    pub partners: u8,
    /// Seed for tenant ids, names and domains.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Directory for ca.pem and the client secret files (default: a new
    /// directory under the system temp dir).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Write a tenantwatch config pointing at the simulator to FILE.
    #[arg(long, value_name = "FILE")]
    pub write_config: Option<PathBuf>,
    /// `[server] listen` to put in the written config.
    #[arg(long, value_name = "ADDR", requires = "write_config")]
    pub server_listen: Option<String>,
    /// Delay added to every response, in milliseconds.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub latency_ms: u64,
    /// Rows per Azure Resource Graph page (small, so clients must page).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_RESOURCE_GRAPH_PAGE_SIZE as u16,
          value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub resource_graph_page_size: u16,
    /// Fixed access-token lifetime in seconds, CAE tokens included (default:
    /// Entra's 3300–3599, and 20–28 h for CAE tokens),
    /// to compress time in benchmarks and soak runs.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub access_token_lifetime_secs: Option<u64>,
    /// An all-green estate: no licence, subscription, service-health, GDAP or
    /// app-credential trouble.
    #[arg(long)]
    pub healthy: bool,
    /// Enforce Microsoft's published throttling limits (429 with
    /// `Retry-After` once one is used up; docs/simulator.md lists them).
    // `Set`: a `bool` field would otherwise be a bare flag (`SetTrue`).
    #[arg(long, value_name = "on|off", default_value = "off", value_parser = on_off,
          action = clap::ArgAction::Set)]
    pub limits: bool,
    /// Multiplies every published limit (0.01 makes them small enough for
    /// a test); only with `--limits on`.
    #[arg(long, value_name = "F", default_value_t = 1.0, value_parser = positive)]
    pub limit_scale: f64,
}

fn on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("expected on or off, not {s:?}")),
    }
}

fn positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if f.is_finite() && f > 0.0 => Ok(f),
        _ => Err(format!("expected a number above 0, not {s:?}")),
    }
}

/// Starts the simulator, writes the config if asked, prints the endpoints
/// and a final `ready` line on stdout, and runs until `shutdown` is cancelled.
pub async fn run_cli(args: SimArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let opts = SimOptions {
        tenants: args.tenants,
        partners: usize::from(args.partners),
        seed: args.seed,
        listen: args.listen,
        state_dir: args.state_dir.clone().unwrap_or_default(),
        latency: Duration::from_millis(args.latency_ms),
        resource_graph_page_size: usize::from(args.resource_graph_page_size),
        access_token_lifetime: args.access_token_lifetime_secs.map(Duration::from_secs),
        healthy: args.healthy,
        limits: args.limits,
        limit_scale: args.limit_scale,
    };
    let sim = Sim::start(opts)
        .await
        .context("cannot start the simulated Microsoft cloud")?;
    if let Some(path) = &args.write_config {
        sim.write_config(path, args.server_listen.as_deref())
            .with_context(|| format!("cannot write --write-config {}", path.display()))?;
    }
    {
        let mut out = std::io::stdout().lock();
        let lines = [
            ("login", sim.login_url()),
            ("keyvault", sim.keyvault_url()),
            ("graph", sim.graph_url()),
            ("arm", sim.arm_url()),
            ("partner_center", sim.partner_center_url()),
            ("imds", sim.imds_url()),
            ("identity_endpoint", sim.app_service_identity().0),
            ("admin", sim.admin_url()),
            ("ca_file", sim.ca_file().display().to_string()),
            ("state_dir", sim.state_dir().display().to_string()),
            ("partner_tenant_id", sim.partner_tenant_id()),
            ("partner_client_id", sim.partner_client_id()),
            ("identity_client_id", sim.identity_client_id()),
            (
                "identity_cert",
                sim.identity_certificate().display().to_string(),
            ),
            (
                "partner_cert",
                sim.partner_certificate().display().to_string(),
            ),
            (
                "federated_token",
                sim.federated_token_file().display().to_string(),
            ),
            ("customers", sim.customers().len().to_string()),
        ];
        for (k, v) in lines {
            writeln!(out, "{k:<19} {v}")?;
        }
        // Partner 0 is the `partner_*` lines above; the others follow.
        for k in 1..sim.partner_count() {
            let Some(p) = sim.partner(k) else { continue };
            let lines = [
                ("tenant_id", p.tenant_id),
                ("client_id", p.client_id),
                ("secret_file", p.client_secret_file.display().to_string()),
                ("secret_name", p.secret_name),
                ("customers", p.customers.len().to_string()),
            ];
            for (what, v) in lines {
                let key = format!("partner_{k}_{what}");
                writeln!(out, "{key:<19} {v}")?;
            }
        }
        if let Some(path) = &args.write_config {
            writeln!(out, "{:<19} {}", "config", path.display())?;
        }
        writeln!(out, "ready")?;
        out.flush()?;
    }
    shutdown.cancelled().await;
    sim.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::SimArgs;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        sim: SimArgs,
    }

    #[test]
    fn limits_take_on_or_off_and_a_positive_scale() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("sim").chain(args.iter().copied())).map(|c| c.sim)
        };
        let off = parse(&[]).unwrap();
        assert!(!off.limits);
        assert_eq!(off.limit_scale, 1.0);
        let on = parse(&["--limits", "on", "--limit-scale", "0.01"]).unwrap();
        assert!(on.limits);
        assert_eq!(on.limit_scale, 0.01);
        assert!(!parse(&["--limits", "off"]).unwrap().limits);
        for bad in [
            &["--limits", "yes"][..],
            &["--limits"],
            &["--limit-scale", "0"],
            &["--limit-scale", "-1"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    fn parse(args: &[&str]) -> Result<SimArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("sim").chain(args.iter().copied())).map(|c| c.sim)
    }

    #[test]
    fn partners_default_to_one_and_stay_within_a_hundred() {
        assert_eq!(parse(&[]).unwrap().partners, 1);
        assert_eq!(parse(&["--partners", "3"]).unwrap().partners, 3);
        assert_eq!(
            usize::from(parse(&["--partners", "100"]).unwrap().partners),
            crate::MAX_PARTNERS
        );
        for bad in ["0", "101", "-1", "x"] {
            assert!(parse(&["--partners", bad]).is_err(), "{bad}");
        }
    }
}
