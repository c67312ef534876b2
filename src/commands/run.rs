//! `tenantwatch run`: the daemon, until SIGTERM or SIGINT; SIGHUP reloads
//! the config file (and the web config file).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use tenantwatch_daemon::config::{Settings, DEFAULT_CONFIG_PATH};
use tenantwatch_daemon::daemon::{Reload, ReloadError};

use crate::commands::{exit, LogOptions, EXIT_CONFIG};

/// `tenantwatch run`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Config file (TOML). Every key can also be set as TENANTWATCH__SECTION__KEY.
    #[arg(long, short, default_value = DEFAULT_CONFIG_PATH, env = "TENANTWATCH_CONFIG")]
    pub config: PathBuf,
    /// Address for /metrics and friends (overrides server.listen).
    #[arg(long, visible_alias = "web.listen-address", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Web config file for TLS and basic auth, in Prometheus exporter-toolkit
    /// format (overrides server.web_config_file).
    #[arg(long = "web.config.file", value_name = "FILE")]
    pub web_config_file: Option<PathBuf>,
    /// Serve only this [[partners]] entry, by name (default: every partner).
    /// No variable sets it: one left in a service's environment would
    /// quietly leave the other partners unwatched.
    #[arg(long, value_name = "NAME")]
    pub partner: Option<String>,
}

impl Args {
    /// The settings as the config file, the environment and these arguments
    /// say; at start and again at every reload.
    pub fn settings(&self) -> Result<Settings, ReloadError> {
        let mut settings = Settings::load(&self.config)?;
        if let Some(name) = &self.partner {
            settings = settings.select(Some(name))?;
        }
        if let Some(listen) = self.listen {
            settings.server.listen = listen;
        }
        if let Some(path) = &self.web_config_file {
            settings.server.web = Some(tenantwatch_daemon::config::load_web_config(path)?);
        }
        Ok(settings)
    }
}

/// Loads the config, applies the command-line overrides and runs the daemon.
pub async fn run(args: Args, log: LogOptions) -> ExitCode {
    let settings = match args.settings() {
        Ok(s) => s,
        Err(e) => {
            crate::warn_user!("error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    log.init(settings.log.format, &settings.log.level);
    exit(serve(settings, args).await)
}

async fn serve(settings: Settings, args: Args) -> anyhow::Result<()> {
    let (shutdown, requests) = crate::signals::with_reload()?;
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
    let reload = Reload {
        requests,
        load: Box::new(move || args.settings()),
    };
    tenantwatch_daemon::daemon::run(settings, listener, shutdown, Some(reload)).await?;
    Ok(())
}
