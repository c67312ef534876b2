//! Command-line interface: argument types and the dispatch `main` hands over to.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::{LogFormat, Settings, DEFAULT_CONFIG_PATH};

/// tenantwatch: keeps a CSP partner's Secure Application Model refresh token alive
/// and exports every customer tenant's health as Prometheus metrics.
#[derive(Debug, Parser)]
#[command(name = "tenantwatch", version, about, long_about = None)]
pub struct Cli {
    /// Log format (overrides log.format in the config).
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormatArg>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// `--log-format` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormatArg {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl From<LogFormatArg> for LogFormat {
    fn from(v: LogFormatArg) -> Self {
        match v {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        }
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon.
    Run(RunArgs),
    /// Run the daemon against the built-in simulated Microsoft cloud (no Azure account needed).
    Demo(DemoArgs),
    /// First sign-in: get a refresh token interactively and store it.
    Consent(ConsentArgs),
    /// Validate the config, try the store, the partner token and every tenant × API once.
    Check(ConfigArgs),
    /// Rotate the stored refresh token once, now.
    Rotate(ConfigArgs),
    /// Run only the simulated Microsoft cloud (for tests, benchmarks, trying configs).
    Sim(crate::sim::SimArgs),
}

/// `tenantwatch run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
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

/// Commands that only need the config file.
#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// Config file (TOML). Every key can also be set as TENANTWATCH__SECTION__KEY.
    #[arg(long, short, default_value = DEFAULT_CONFIG_PATH, env = "TENANTWATCH_CONFIG")]
    pub config: PathBuf,
}

/// `tenantwatch consent`.
#[derive(Debug, clap::Args)]
pub struct ConsentArgs {
    /// Config file (TOML).
    #[arg(long, short, default_value = DEFAULT_CONFIG_PATH, env = "TENANTWATCH_CONFIG")]
    pub config: PathBuf,
    /// Use the device-code flow (for servers without a browser).
    #[arg(long)]
    pub device_code: bool,
    /// Callback port on 127.0.0.1 (default: the first free one in 8400-8999).
    #[arg(long)]
    pub port: Option<u16>,
    /// How long to wait for the sign-in, e.g. 10m.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
}

/// `tenantwatch demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Address for /metrics and friends.
    #[arg(long, default_value = "127.0.0.1:9464")]
    pub listen: SocketAddr,
    /// Simulated customer tenants.
    #[arg(long, default_value_t = 25)]
    pub tenants: usize,
}

/// Exit code for a configuration error, distinct from a runtime failure.
pub const EXIT_CONFIG: u8 = 2;

/// Runs the parsed command to completion and maps the outcome to an exit code.
pub fn main(cli: Cli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(dispatch(cli))
}

fn report(e: &anyhow::Error) {
    eprintln!("error: {e:#}");
}

async fn dispatch(cli: Cli) -> ExitCode {
    let log_override = cli.log_format.map(LogFormat::from);
    match cli.command {
        Command::Run(args) => {
            let mut settings = match load(&args.config, log_override) {
                Ok(s) => s,
                Err(code) => return code,
            };
            if let Some(listen) = args.listen {
                settings.server.listen = listen;
            }
            if let Some(path) = &args.web_config_file {
                match crate::config::load_web_config(path) {
                    Ok(web) => settings.server.web = Some(web),
                    Err(e) => {
                        eprintln!("error: --web.config.file: {e}");
                        return ExitCode::from(EXIT_CONFIG);
                    }
                }
            }
            result(run(settings).await)
        }
        Command::Consent(args) => {
            let settings = match load(&args.config, log_override) {
                Ok(s) => s,
                Err(code) => return code,
            };
            result(consent(settings, args).await)
        }
        Command::Check(args) => {
            let settings = match load(&args.config, log_override) {
                Ok(s) => s,
                Err(code) => return code,
            };
            match crate::check::run(&settings).await {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(e) => {
                    report(&e);
                    ExitCode::FAILURE
                }
            }
        }
        Command::Rotate(args) => {
            let settings = match load(&args.config, log_override) {
                Ok(s) => s,
                Err(code) => return code,
            };
            result(rotate(settings).await)
        }
        Command::Demo(args) => {
            crate::logging::init(log_override.unwrap_or(LogFormat::Text), "info");
            result(crate::demo::run(args).await)
        }
        Command::Sim(args) => {
            crate::logging::init(log_override.unwrap_or(LogFormat::Text), "info");
            let outcome = async {
                let shutdown = crate::shutdown::on_signals()?;
                crate::sim::run_cli(args, shutdown).await
            }
            .await;
            result(outcome)
        }
    }
}

/// Loads the config and starts logging as it says; a bad config exits with [`EXIT_CONFIG`].
fn load(path: &std::path::Path, log_override: Option<LogFormat>) -> Result<Settings, ExitCode> {
    match Settings::load(path) {
        Ok(s) => {
            crate::logging::init(log_override.unwrap_or(s.log.format), &s.log.level);
            Ok(s)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Err(ExitCode::from(EXIT_CONFIG))
        }
    }
}

fn result(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&e);
            ExitCode::FAILURE
        }
    }
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    let shutdown = crate::shutdown::on_signals()?;
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
    crate::daemon::run(settings, listener, shutdown).await?;
    Ok(())
}

async fn rotate(settings: Settings) -> anyhow::Result<()> {
    use crate::rotation::{Outcome, Rotator};
    let c = crate::daemon::Components::build(&settings)?;
    let rotator = Rotator {
        broker: c.broker.clone(),
        metrics: c.metrics.clone(),
        rotate_after: settings.rotation.rotate_after,
        source: crate::store::Source::Rotation,
    };
    match rotator.rotate(true).await? {
        Outcome::Rotated {
            old_version,
            new_version,
            expires,
        } => {
            let expires = rfc3339(Some(expires));
            println!(
                "rotated the refresh token in {}\n  old version  {old_version}\n  new version  {new_version}\n  expires      {expires} (if not used again)",
                c.broker.store().describe()
            );
        }
        Outcome::Skipped { version, .. } => println!("not rotated; version {version} kept"),
    }
    Ok(())
}

fn rfc3339(ts: Option<i64>) -> String {
    ts.and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| "unknown".into())
}

async fn consent(settings: Settings, args: ConsentArgs) -> anyhow::Result<()> {
    let shutdown = crate::shutdown::on_signals()?;
    let opts = crate::consent::ConsentOptions {
        device_code: args.device_code,
        port: args.port,
        timeout: args.timeout,
    };
    let stored = crate::consent::run(&settings, &opts, shutdown, |msg| {
        use std::io::Write;
        println!("{msg}");
        let _ = std::io::stdout().flush();
    })
    .await?;
    println!(
        "signed in; the refresh token works and is stored\n  version  {}\n  expires  {} (if not used)",
        stored.version,
        rfc3339(stored.expires)
    );
    Ok(())
}
