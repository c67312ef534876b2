//! Command-line interface: argument types, and the dispatch `main` hands over to.
//! Each command lives in its own file under `commands/`.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

use tenantwatch_daemon::config::LogFormat;

use crate::commands;

/// The exit codes (`commands::EXIT_*`, `signals::EXIT_SECOND_SIGNAL`; clap's
/// own usage errors are 2 too), for `--help` and the man page.
const EXIT_CODES: &str = "\
Exit codes:
  0    success (check: every check passed; healthcheck: the daemon is ready)
  1    runtime failure (check: a check failed; healthcheck: not ready or unreachable)
  2    configuration or command-line error; restarting will not fix it
  130  a second SIGTERM or SIGINT cut shutdown short

Signals (run, demo): SIGTERM/SIGINT stop cleanly; SIGHUP reloads the config file.";

/// tenantwatch: keeps a CSP partner's Secure Application Model refresh token alive
/// and exports every customer tenant's health as Prometheus metrics.
#[derive(Debug, Parser)]
#[command(name = "tenantwatch", version, about, long_about = None, after_help = EXIT_CODES)]
pub struct Cli {
    /// Log format (overrides log.format in the config).
    #[arg(long, visible_alias = "log.format", global = true, value_enum)]
    pub log_format: Option<LogFormatArg>,
    /// Log level or filter, e.g. debug or tenantwatch_daemon=debug,info
    /// (overrides log.level in the config and RUST_LOG).
    #[arg(long, visible_alias = "log.level", global = true, value_name = "LEVEL", value_parser = parse_level)]
    pub log_level: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// `--log-level`: checked as strictly as `log.level`.
fn parse_level(s: &str) -> Result<String, String> {
    tenantwatch_daemon::config::check_log_filter(s).map(|()| s.to_string())
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
    /// Run the daemon (SIGHUP reloads the config).
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
    /// Ask the local daemon's /readyz whether it is ready (exit 0) or not (exit 1): a container HEALTHCHECK.
    Healthcheck(commands::healthcheck::Args),
    /// Print shell completions (bash, zsh, fish, …) to stdout.
    Completions(commands::docs::CompletionsArgs),
    /// Print the man page (roff) to stdout.
    Man,
    /// Run only the simulated Microsoft cloud (for tests, benchmarks, trying configs).
    #[cfg(feature = "sim")]
    Sim(azure_sim::SimArgs),
}

/// Runs the parsed command to completion and maps the outcome to an exit code.
pub fn main(cli: Cli) -> ExitCode {
    // One worker per available CPU, Tokio's default: jemalloc has an arena
    // for each (see `main.rs`).
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
    let log = commands::LogOptions {
        format: cli.log_format.map(LogFormat::from),
        level: cli.log_level,
    };
    match cli.command {
        Command::Run(args) => commands::run::run(args, log).await,
        Command::Check(args) => commands::check::run(args, log).await,
        Command::Consent(args) => commands::consent::run(args, log).await,
        Command::Rotate(args) => commands::rotate::run(args, log).await,
        Command::Healthcheck(args) => commands::healthcheck::run(args).await,
        Command::Completions(args) => commands::docs::completions(args, Cli::command()),
        Command::Man => commands::docs::man(Cli::command()),
        #[cfg(feature = "sim")]
        Command::Demo(args) => commands::demo::run(args, log).await,
        #[cfg(feature = "sim")]
        Command::Sim(args) => commands::sim::run(args, log).await,
    }
}
