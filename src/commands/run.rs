//! `tenantwatch run`: the daemon, until SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use tenantwatch_daemon::config::{LogFormat, Settings, DEFAULT_CONFIG_PATH};

use crate::commands::{exit, load, EXIT_CONFIG};

/// `tenantwatch run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Config file (TOML). Every key can also be set as TENANTWATCH__SECTION__KEY.
    #[arg(long, short, default_value = DEFAULT_CONFIG_PATH, env = "TENANTWATCH_CONFIG")]
    pub config: PathBuf,
    /// Address for /metrics and friends (overrides server.listen).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Web config file for TLS and basic auth, in Prometheus exporter-toolkit
    /// format (overrides server.web_config_file).
    #[arg(long = "web.config.file", value_name = "FILE")]
    pub web_config_file: Option<PathBuf>,
}

/// Loads the config, applies the command-line overrides and runs the daemon.
pub async fn run(args: Args, log: Option<LogFormat>) -> ExitCode {
    let mut settings = match load(&args.config, log) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if let Some(listen) = args.listen {
        settings.server.listen = listen;
    }
    if let Some(path) = &args.web_config_file {
        match tenantwatch_daemon::config::load_web_config(path) {
            Ok(web) => settings.server.web = Some(web),
            Err(e) => {
                eprintln!("error: --web.config.file: {e}");
                return ExitCode::from(EXIT_CONFIG);
            }
        }
    }
    exit(serve(settings).await)
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let shutdown = crate::signals::on_signals()?;
    let listener = tokio::net::TcpListener::bind(settings.server.listen)
        .await
        .map_err(|e| {
            anyhow::anyhow!("server.listen: cannot bind {}: {e}", settings.server.listen)
        })?;
    let addr = listener.local_addr()?;
    let scheme = match &settings.server.web {
        Some((_, w)) if w.tls.is_some() => "https",
        _ => "http",
    };
    if let Some((path, w)) = &settings.server.web {
        if w.tls.is_none() && !w.users.is_empty() {
            tracing::warn!(path = %path.display(), "basic auth without TLS: passwords cross the network in the clear");
        }
    }
    tracing::info!(%addr, "serving {scheme}://{addr}/metrics");
    tenantwatch_daemon::daemon::run(settings, listener, shutdown).await?;
    Ok(())
}
