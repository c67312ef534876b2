//! One file per subcommand. Each turns its arguments into library calls and
//! its outcome into an exit code; the work itself is the daemon library's.

pub mod check;
pub mod consent;
pub mod consent_customers;
#[cfg(feature = "sim")]
pub mod demo;
pub mod docs;
pub mod healthcheck;
pub mod rotate;
pub mod run;
#[cfg(feature = "sim")]
pub mod sim;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tenantwatch_daemon::config::{LogFormat, Settings, DEFAULT_CONFIG_PATH};

/// Arguments of the commands that only need the config file (`check`, `rotate`).
#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// Config file (TOML). Every key can also be set as TENANTWATCH__SECTION__KEY.
    #[arg(long, short, default_value = DEFAULT_CONFIG_PATH, env = "TENANTWATCH_CONFIG")]
    pub config: PathBuf,
    /// The [[partners]] entry to act on, by name (check: every partner without it).
    #[arg(long, value_name = "NAME", env = "TENANTWATCH_PARTNER")]
    pub partner: Option<String>,
}

/// The partner `name` picks from `settings` (the only one without a name);
/// a name the config lacks, or no name with several partners, is a
/// command-line error.
pub fn choose(settings: &Settings, name: Option<&str>) -> Result<Settings, ExitCode> {
    settings.select(name).map_err(|e| {
        crate::warn_user!("error: {e}");
        ExitCode::from(EXIT_CONFIG)
    })
}

/// `println!` for text that holds anything from outside (error chains, tenant
/// names, upstream messages): scrubbed of secrets and control characters.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        println!("{}", $crate::commands::clean(&format!($($arg)*)))
    };
}

/// `eprintln!` likewise.
#[macro_export]
macro_rules! warn_user {
    ($($arg:tt)*) => {
        eprintln!("{}", $crate::commands::clean(&format!($($arg)*)))
    };
}

/// Text fit for a terminal: scrubbed of every secret the process holds and of
/// secret-shaped strings, control characters escaped line by line.
pub fn clean(text: &str) -> String {
    let scrubbed = tenantwatch_daemon::support::scrub::scrub(text);
    scrubbed
        .split('\n')
        .map(|l| tenantwatch_daemon::support::scrub::escape_controls(l).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Prints a header and rows as left-aligned columns, two spaces apart; the
/// cells are already cleaned (they are measured as printed).
pub fn print_columns<const N: usize>(header: [&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cols: &mut dyn Iterator<Item = &str>| {
        cols.zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    crate::say!("{}", line(&mut header.iter().copied()));
    for row in rows {
        crate::say!("{}", line(&mut row.iter().map(String::as_str)));
    }
}

/// Exit code of a runtime failure (and of a `check` or `healthcheck` that found trouble).
pub const EXIT_FAILURE: u8 = 1;
/// Exit code of a configuration or command-line error, distinct from a
/// runtime failure: restarting will not fix it (the systemd unit's
/// `RestartPreventExitStatus=2`; clap's usage errors are 2 as well).
pub const EXIT_CONFIG: u8 = 2;

/// The command line's logging flags (`--log-format`, `--log-level`), which
/// win over the config.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// `--log-format`.
    pub format: Option<LogFormat>,
    /// `--log-level`, already checked.
    pub level: Option<String>,
}

impl LogOptions {
    /// Starts logging: the flags, else `format` and `level` (a config's, or a command's defaults).
    pub fn init(&self, format: LogFormat, level: &str) {
        tenantwatch_daemon::logging::init(
            self.format.unwrap_or(format),
            level,
            self.level.as_deref(),
        );
    }
}

/// Loads the config and starts logging as it says; a bad config exits with [`EXIT_CONFIG`].
pub fn load(path: &Path, log: LogOptions) -> Result<Settings, ExitCode> {
    match Settings::load(path) {
        Ok(s) => {
            log.init(s.log.format, &s.log.level);
            Ok(s)
        }
        Err(e) => {
            crate::warn_user!("error: {e}");
            Err(ExitCode::from(EXIT_CONFIG))
        }
    }
}

/// Reports an error with its whole cause chain, once.
pub fn report(e: &anyhow::Error) {
    crate::warn_user!(
        "error: {}",
        tenantwatch_daemon::support::error_text::chain(e.as_ref())
    );
}

/// Success, or the error reported and exit code 1.
pub fn exit(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&e);
            ExitCode::FAILURE
        }
    }
}

/// A stored time for people: RFC 3339, or "unknown".
pub fn when(ts: Option<i64>) -> String {
    ts.map(tenantwatch_common::time::rfc3339)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use anyhow::Context;

    /// What `report` prints: anyhow's contexts joined, a context that
    /// already quotes its cause (as the daemon's errors do) not repeated.
    #[test]
    fn a_reported_chain_names_each_cause_once() {
        let e = Err::<(), _>(std::io::Error::other("HTTP 429 Too Many Requests"))
            .context("Key Vault identity: HTTP 429 Too Many Requests")
            .context("cannot read the current refresh token")
            .unwrap_err();
        assert_eq!(
            tenantwatch_daemon::support::error_text::chain(e.as_ref()),
            "cannot read the current refresh token: Key Vault identity: HTTP 429 Too Many Requests"
        );
    }
}
