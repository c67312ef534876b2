//! Command-line interface: argument types, and the dispatch `main` hands over to.
//! Each command lives in its own file under `commands/`.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use tenantwatch_daemon::config::LogFormat;

use crate::commands;

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
    Run(commands::run::Args),
    /// Run the daemon against the built-in simulated Microsoft cloud (no Azure account needed).
    #[cfg(feature = "sim")]
    Demo(commands::demo::Args),
    /// First sign-in: get a refresh token interactively and store it.
    Consent(commands::consent::Args),
    /// Validate the config, try the store, the partner token and every tenant × API once.
    Check(commands::ConfigArgs),
    /// Rotate the stored refresh token once, now.
    Rotate(commands::ConfigArgs),
    /// Run only the simulated Microsoft cloud (for tests, benchmarks, trying configs).
    #[cfg(feature = "sim")]
    Sim(azure_sim::SimArgs),
}

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

async fn dispatch(cli: Cli) -> ExitCode {
    let log = cli.log_format.map(LogFormat::from);
    match cli.command {
        Command::Run(args) => commands::run::run(args, log).await,
        Command::Check(args) => commands::check::run(args, log).await,
        Command::Consent(args) => commands::consent::run(args, log).await,
        Command::Rotate(args) => commands::rotate::run(args, log).await,
        #[cfg(feature = "sim")]
        Command::Demo(args) => commands::demo::run(args, log).await,
        #[cfg(feature = "sim")]
        Command::Sim(args) => commands::sim::run(args, log).await,
    }
}
