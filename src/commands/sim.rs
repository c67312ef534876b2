//! `tenantwatch sim`: only the simulated Microsoft cloud, until SIGTERM or SIGINT.

use std::process::ExitCode;

use tenantwatch_daemon::config::LogFormat;

use crate::commands::exit;

/// Starts the simulator as `args` say (and writes a config for it when asked).
pub async fn run(args: azure_sim::SimArgs, log: crate::commands::LogOptions) -> ExitCode {
    log.init(LogFormat::Text, "info");
    let outcome = async {
        let shutdown = crate::signals::on_signals()?;
        azure_sim::run_cli(args, shutdown).await
    }
    .await;
    exit(outcome)
}
