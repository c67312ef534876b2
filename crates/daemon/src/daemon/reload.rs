//! What a configuration reload (SIGHUP) changes: the settings read again
//! are compared with those in force, key by key. Schedules, collectors,
//! tenants, collection limits, rotation, the log level and the server's
//! request, timeout, connection and web config settings take effect without a
//! restart; the listen address, the store, the partner app, the cloud, the
//! request timeout (built into the HTTP client) and the log format keep their
//! running values, each logged as needing a restart.

use crate::config::credential::ClientCredential;
use crate::config::web::WebConfigError;
use crate::config::{
    ConfigError, ManagedIdentityEndpoint, PartnerApp, ServiceIdentity, Settings, StoreSettings,
};
use crate::support::secret::ExposeSecret;

/// How the daemon gets its settings again on SIGHUP.
pub struct Reload {
    /// One message per reload request (SIGHUP).
    pub requests: tokio::sync::mpsc::Receiver<()>,
    /// Reads the settings again as at start: file, environment, command-line overrides.
    pub load: Box<dyn Fn() -> Result<Settings, ReloadError> + Send + Sync>,
}

/// Why reloaded settings were refused; the previous ones stay in force.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The config file or the environment.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The web config file named on the command line.
    #[error("--web.config.file: {0}")]
    WebConfig(#[from] WebConfigError),
    /// `--partner` names no partner of the config, or is missing with several.
    #[error(transparent)]
    Partner(#[from] crate::config::PartnerChoiceError),
}

impl ReloadError {
    /// The error on one line, every problem included.
    pub fn one_line(&self) -> String {
        match self {
            ReloadError::Config(ConfigError::Invalid { path, problems }) => format!(
                "config file {} is invalid ({} problem{}): {}",
                path.display(),
                problems.len(),
                if problems.len() == 1 { "" } else { "s" },
                problems.join("; ")
            ),
            other => other.to_string().replace('\n', " "),
        }
    }
}

/// The keys a reload changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Put in force now.
    pub live: Vec<String>,
    /// Kept at their running values until a restart.
    pub restart: Vec<&'static str>,
}

/// Compares the settings in force with reloaded ones. Returns the changes,
/// and the settings to run with: `new`, with every key that needs a restart
/// kept as it is in `old`.
pub fn compare(old: &Settings, mut new: Settings) -> (Changes, Settings) {
    let mut c = Changes::default();
    let mut live = |changed: bool, key: &str| {
        if changed {
            c.live.push(key.to_string());
        }
    };
    let (ot, nt) = (&old.tenants, &new.tenants);
    live(ot.sources != nt.sources, "tenants.sources");
    live(ot.static_tenants != nt.static_tenants, "tenants.static");
    live(ot.include != nt.include, "tenants.include");
    live(ot.exclude != nt.exclude, "tenants.exclude");
    live(ot.shard != nt.shard, "tenants.shard");
    live(ot.schedule != nt.schedule, "tenants.schedule");
    let (oc, nc) = (&old.collection, &new.collection);
    live(oc.schedule != nc.schedule, "collection.schedule");
    live(oc.concurrency != nc.concurrency, "collection.concurrency");
    live(
        oc.tenant_timeout != nc.tenant_timeout,
        "collection.tenant_timeout",
    );
    live(
        oc.limits.global != nc.limits.global,
        "collection.max_requests",
    );
    live(
        oc.limits.per_tenant != nc.limits.per_tenant,
        "collection.max_requests_per_tenant",
    );
    live(
        oc.limits.max_pages != nc.limits.max_pages,
        "collection.max_pages",
    );
    live(oc.max_series != nc.max_series, "collection.max_series");
    for name in crate::config::COLLECTORS {
        let (o, n) = (old.collectors.get(*name), new.collectors.get(*name));
        live(
            o.map(|c| c.enabled) != n.map(|c| c.enabled),
            &format!("collectors.{name}.enabled"),
        );
        // A collector without its own schedule or timeout follows
        // collection.*: that key is named once, not once per collector.
        let schedule = |c: Option<&crate::config::CollectorSettings>, default: &String| {
            c.map(|c| &c.schedule).filter(|s| *s != default).cloned()
        };
        live(
            schedule(o, &oc.schedule) != schedule(n, &nc.schedule),
            &format!("collectors.{name}.schedule"),
        );
        let timeout = |c: Option<&crate::config::CollectorSettings>, default| {
            c.map(|c| c.timeout).filter(|t| *t != default)
        };
        live(
            timeout(o, oc.tenant_timeout) != timeout(n, nc.tenant_timeout),
            &format!("collectors.{name}.timeout"),
        );
    }
    live(
        old.custom_queries != new.custom_queries,
        "collectors.resource_graph.queries",
    );
    let (or, nr) = (&old.rotation, &new.rotation);
    live(or.enabled != nr.enabled, "rotation.enabled");
    live(or.schedule != nr.schedule, "rotation.schedule");
    live(or.rotate_after != nr.rotate_after, "rotation.rotate_after");
    let (os, ns) = (&old.server, &new.server);
    live(os.max_requests != ns.max_requests, "server.max_requests");
    live(
        os.header_read_timeout != ns.header_read_timeout,
        "server.header_read_timeout",
    );
    live(os.idle_timeout != ns.idle_timeout, "server.idle_timeout");
    live(
        os.max_connections != ns.max_connections,
        "server.max_connections",
    );
    live(
        os.web.as_ref().map(|(p, _)| p) != ns.web.as_ref().map(|(p, _)| p),
        "server.web_config_file",
    );
    live(old.log.level != new.log.level, "log.level");

    let mut restart = |changed: bool, key: &'static str| {
        if changed {
            c.restart.push(key);
        }
    };
    restart(os.listen != ns.listen, "server.listen");
    restart(!same_store(&old.store, &new.store), "store");
    restart(!same_app(&old.partner, &new.partner), "partner");
    restart(old.partner_name != new.partner_name, "partners.name");
    restart(old.cloud != new.cloud, "cloud");
    restart(old.ca_file != new.ca_file, "cloud.ca_file");
    restart(
        oc.request_timeout != nc.request_timeout,
        "collection.request_timeout",
    );
    restart(old.log.format != new.log.format, "log.format");

    new.server.listen = old.server.listen;
    new.store = old.store.clone();
    new.partner = old.partner.clone();
    new.partner_name = old.partner_name.clone();
    new.cloud = old.cloud.clone();
    new.ca_file = old.ca_file.clone();
    new.collection.request_timeout = old.collection.request_timeout;
    new.log.format = old.log.format;
    (c, new)
}

fn same_app(a: &PartnerApp, b: &PartnerApp) -> bool {
    a.tenant_id == b.tenant_id
        && a.client_id == b.client_id
        && same_credential(&a.credential, &b.credential)
}

/// The same secret value, certificate (by thumbprint and file) or token file.
fn same_credential(a: &ClientCredential, b: &ClientCredential) -> bool {
    match (a, b) {
        (ClientCredential::Secret(a), ClientCredential::Secret(b)) => {
            a.expose_secret() == b.expose_secret()
        }
        (ClientCredential::Certificate(a), ClientCredential::Certificate(b)) => {
            a.path == b.path && a.thumbprint_s256() == b.thumbprint_s256()
        }
        (ClientCredential::FederatedTokenFile(a), ClientCredential::FederatedTokenFile(b)) => {
            a == b
        }
        _ => false,
    }
}

fn same_store(a: &StoreSettings, b: &StoreSettings) -> bool {
    match (a, b) {
        (StoreSettings::File { path: a }, StoreSettings::File { path: b }) => a == b,
        (
            StoreSettings::KeyVault {
                url: ua,
                secret_name: na,
                identity: ia,
            },
            StoreSettings::KeyVault {
                url: ub,
                secret_name: nb,
                identity: ib,
            },
        ) => ua == ub && na == nb && same_identity(ia, ib),
        _ => false,
    }
}

fn same_identity(a: &ServiceIdentity, b: &ServiceIdentity) -> bool {
    match (a, b) {
        (
            ServiceIdentity::App {
                app: a,
                authority: x,
            },
            ServiceIdentity::App {
                app: b,
                authority: y,
            },
        ) => same_app(a, b) && x == y,
        (
            ServiceIdentity::ManagedIdentity {
                client_id: a,
                endpoint: x,
            },
            ServiceIdentity::ManagedIdentity {
                client_id: b,
                endpoint: y,
            },
        ) => {
            a == b
                && match (x, y) {
                    (ManagedIdentityEndpoint::Imds(x), ManagedIdentityEndpoint::Imds(y)) => x == y,
                    (
                        ManagedIdentityEndpoint::AppService {
                            endpoint: x,
                            header: hx,
                        },
                        ManagedIdentityEndpoint::AppService {
                            endpoint: y,
                            header: hy,
                        },
                    ) => x == y && hx.expose_secret() == hy.expose_secret(),
                    _ => false,
                }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const GUID_A: &str = "11111111-1111-1111-1111-111111111111";
    const GUID_B: &str = "22222222-2222-2222-2222-222222222222";

    fn settings(extra: &str, secret: &str) -> Settings {
        let text = format!(
            r#"
[partner]
tenant_id = "{GUID_A}"
client_id = "{GUID_B}"
[store]
kind = "file"
[store.file]
path = "/nonexistent/token"
{extra}
"#
        );
        Settings::from_toml(
            &text,
            Path::new("/nonexistent/tw.toml"),
            [(
                "TENANTWATCH__PARTNER__CLIENT_SECRET".to_string(),
                secret.to_string(),
            )],
        )
        .unwrap()
    }

    #[test]
    fn live_keys_apply_and_restart_keys_keep_their_running_values() {
        let old = settings("", "s1");
        let new = settings(
            "[server]\nlisten = \"127.0.0.1:1\"\nmax_requests = 3\n\
             [collectors.licenses]\nenabled = false\n\
             [tenants]\ninclude = [\"*.example.com\"]\n\
             [log]\nlevel = \"debug\"\nformat = \"json\"\n",
            "s2",
        );
        let (changes, effective) = compare(&old, new);
        assert_eq!(
            changes.live,
            [
                "tenants.include",
                "collectors.licenses.enabled",
                "server.max_requests",
                "log.level"
            ]
        );
        assert_eq!(changes.restart, ["server.listen", "partner", "log.format"]);
        assert_eq!(effective.server.listen, old.server.listen);
        assert_eq!(effective.server.max_requests, 3);
        assert_eq!(effective.log.level, "debug");
        assert!(same_app(&effective.partner, &old.partner));
        assert!(!effective.collectors["licenses"].enabled);
    }

    #[test]
    fn a_default_schedule_is_named_once_not_per_collector() {
        let old = settings("", "s");
        let new = settings(
            "[collection]\nschedule = \"*/10 * * * * *\"\n[collectors.licenses]\nschedule = \"0 0 * * * *\"\n",
            "s",
        );
        let (changes, _) = compare(&old, new);
        assert_eq!(
            changes.live,
            ["collection.schedule", "collectors.licenses.schedule"]
        );
    }

    #[test]
    fn the_same_config_changes_nothing() {
        let (changes, _) = compare(&settings("", "s"), settings("", "s"));
        assert_eq!(changes, Changes::default());
    }

    #[test]
    fn invalid_configs_name_every_problem_on_one_line() {
        let err = Settings::from_toml(
            "[collection]\nconcurrency = \"many\"\n[server]\nlisten = \"x\"\n",
            Path::new("/nonexistent/tw.toml"),
            [],
        )
        .unwrap_err();
        let line = ReloadError::from(err).one_line();
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains("collection.concurrency"), "{line}");
        assert!(line.contains("server.listen"), "{line}");
        assert!(line.contains("partner: section missing"), "{line}");
        assert!(line.contains("(4 problems)"), "{line}");
    }
}
