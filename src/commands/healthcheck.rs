//! `tenantwatch healthcheck`: GET `/readyz` of the local daemon and exit 0
//! when it is ready, 1 otherwise with a short reason. The container image is
//! `FROM scratch` (no shell, no curl), so the binary itself is the probe of
//! its `HEALTHCHECK` and of the compose service.
//!
//! The address is `--url`, else `--web.listen-address`, else the config's
//! `server.listen` (without a config file, `TENANTWATCH__SERVER__LISTEN` or
//! the default; an unspecified address such as `0.0.0.0` is asked on
//! loopback). A config that does not load is exit 2. When the config's web config serves TLS the probe speaks
//! HTTPS without checking the certificate: it talks to this host's own
//! daemon by IP, which no certificate names, and reads only "ready".

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use tenantwatch_daemon::config::{
    ConfigError, Settings, DEFAULT_CONFIG_PATH, DEFAULT_LISTEN, ENV_PREFIX,
};

/// `tenantwatch healthcheck`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// URL to ask (default: /readyz at server.listen of the config).
    #[arg(long, value_name = "URL")]
    pub url: Option<url::Url>,
    /// The daemon's address (overrides server.listen; the same flag as `run`'s).
    #[arg(long, visible_alias = "web.listen-address", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Config file to take server.listen and TLS from, when neither --url nor --listen is given.
    #[arg(long, short, default_value = DEFAULT_CONFIG_PATH, env = "TENANTWATCH_CONFIG")]
    pub config: PathBuf,
    /// How long to wait for the answer.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// Asks `/readyz`; exit 0 when ready, 1 when not (or unreachable), 2 for a bad config.
pub async fn run(args: Args) -> ExitCode {
    let url = match target(&args) {
        Ok(u) => u,
        Err(e) => {
            crate::warn_user!("unhealthy: {e}");
            return ExitCode::from(crate::commands::EXIT_CONFIG);
        }
    };
    match probe(&url, args.timeout).await {
        Ok(body) => {
            crate::say!("ready: {url} {}", body.trim());
            ExitCode::SUCCESS
        }
        Err(why) => {
            crate::warn_user!("unhealthy: {url}: {why}");
            ExitCode::from(crate::commands::EXIT_FAILURE)
        }
    }
}

/// The URL to probe, as the arguments (or the config) say.
fn target(args: &Args) -> anyhow::Result<url::Url> {
    if let Some(url) = &args.url {
        return Ok(url.clone());
    }
    let (listen, tls) = match args.listen {
        Some(addr) => (addr, false),
        None => match Settings::load(&args.config) {
            Ok(s) => {
                let tls = s.server.web.as_ref().is_some_and(|(_, w)| w.tls.is_some());
                (s.server.listen, tls)
            }
            // No config file (`demo` in a container): the address as the
            // daemon would take it without one.
            Err(ConfigError::NotFound(_)) => (default_listen()?, false),
            Err(e) => return Err(e.into()),
        },
    };
    Ok(readyz_url(listen, tls)?)
}

/// `TENANTWATCH__SERVER__LISTEN`, else the default listen address.
fn default_listen() -> anyhow::Result<SocketAddr> {
    let var = format!("{ENV_PREFIX}__SERVER__LISTEN");
    let text = std::env::var(&var).unwrap_or_else(|_| DEFAULT_LISTEN.to_string());
    text.parse()
        .map_err(|_| anyhow::anyhow!("{var}: {text:?} is not IP:PORT"))
}

/// `/readyz` at `listen`, an unspecified address replaced by loopback.
fn readyz_url(listen: SocketAddr, tls: bool) -> Result<url::Url, url::ParseError> {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let scheme = if tls { "https" } else { "http" };
    url::Url::parse(&format!(
        "{scheme}://{}/readyz",
        SocketAddr::new(ip, listen.port())
    ))
}

/// The body of a 200, or why not.
async fn probe(url: &url::Url, timeout: Duration) -> Result<String, String> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .no_proxy()
        // The daemon's own certificate names it, not the IP asked here.
        .danger_accept_invalid_certs(true)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let resp = client
        .get(url.clone())
        .send()
        .await
        // reqwest's own text is only "error sending request"; the reason
        // (connection refused) is a cause.
        .map_err(|e| {
            format!(
                "no answer: {}",
                tenantwatch_daemon::support::error_text::chain(&e)
            )
        })?;
    let status = resp.status();
    // "ready" or the reason: a line, not a page.
    let body: String = resp
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    if status.is_success() {
        Ok(body)
    } else {
        Err(format!("HTTP {}: {}", status.as_u16(), body.trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_addresses_are_asked_on_loopback() {
        let u = readyz_url("0.0.0.0:9464".parse().unwrap(), false).unwrap();
        assert_eq!(u.as_str(), "http://127.0.0.1:9464/readyz");
        let u = readyz_url("[::]:9464".parse().unwrap(), true).unwrap();
        assert_eq!(u.as_str(), "https://[::1]:9464/readyz");
        let u = readyz_url("10.0.0.5:1".parse().unwrap(), false).unwrap();
        assert_eq!(u.as_str(), "http://10.0.0.5:1/readyz");
    }
}
