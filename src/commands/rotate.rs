//! `tenantwatch rotate`: rotate the stored refresh token once, now.

use std::process::ExitCode;

use tenantwatch_daemon::config::Settings;
use tenantwatch_daemon::rotation::{Outcome, Rotator};

use crate::commands::{choose, exit, load, when, ConfigArgs};

/// Rotates regardless of the stored version's age and prints old and new
/// version; with several partners, `--partner` names whose token.
pub async fn run(args: ConfigArgs, log: crate::commands::LogOptions) -> ExitCode {
    let settings = load(&args.config, log).and_then(|s| choose(&s, args.partner.as_deref()));
    match settings {
        Ok(settings) => exit(rotate(settings).await),
        Err(code) => code,
    }
}

async fn rotate(settings: Settings) -> anyhow::Result<()> {
    let c = tenantwatch_daemon::daemon::Components::build(&settings)?;
    let rotator = Rotator {
        broker: c.broker.clone(),
        metrics: c.metrics.clone(),
        rotate_after: settings.rotation.rotate_after,
        source: tenantwatch_daemon::store::Source::Rotation,
    };
    match rotator.rotate(true).await? {
        Outcome::Rotated {
            old_version,
            new_version,
            expires,
        } => {
            println!(
                "rotated the refresh token in {}\n  old version  {old_version}\n  new version  {new_version}\n  expires      {} (if not used again)",
                c.broker.store().describe(),
                when(Some(expires)),
            );
        }
        Outcome::Skipped { version, .. } => println!("not rotated; version {version} kept"),
    }
    Ok(())
}
