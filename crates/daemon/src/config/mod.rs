//! Configuration: a TOML file overlaid with `TENANTWATCH__SECTION__KEY` variables,
//! parsed into validated [`Settings`] before anything starts.
//!
//! Every problem is collected and named by its key (and by the variable, when
//! a `TENANTWATCH__…` variable set it) — values of the wrong type, unknown
//! keys, numbers out of range and failed checks in one list — so an operator
//! fixes the config in one pass; a config that fails never starts a daemon.
//!
//! The settings types of every section live here ([`sections`]), not with the
//! stages that use them, so configuration depends on no stage: the raw file
//! shape ([`raw`]), reading file and variables into it ([`tree`], with the
//! strict deserializer in [`strict`]), the checks ([`validate`]), the cloud
//! endpoints ([`cloud`]), client credentials ([`credential`]) and the
//! exporter-toolkit web config file ([`web`]).

pub mod cloud;
pub mod credential;
mod log_filter;
mod partners;
mod raw;
mod sections;
mod strict;
mod tree;
mod validate;
pub mod web;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use log_filter::{check_log_filter, LOG_ENV};
pub use partners::PartnerChoiceError;
pub use sections::*;

use validate::{AzureEnv, Problems};

/// Where `run` looks for its config when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/tenantwatch/tenantwatch.toml";

/// Prefix of environment overrides: `TENANTWATCH__SERVER__LISTEN=…`.
pub const ENV_PREFIX: &str = "TENANTWATCH";

/// Why the configuration was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file does not exist.
    #[error("config file {0} not found: pass --config FILE (see config/tenantwatch.example.toml)")]
    NotFound(PathBuf),
    /// The path names a directory, not the TOML file inside it.
    #[error("config file {0} is a directory: pass --config with the TOML file itself (e.g. {0}/tenantwatch.toml)")]
    IsDirectory(PathBuf),
    /// The file exists but could not be read.
    #[error("config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not TOML (the error names line and column).
    #[error("config file {path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// One or more values are missing or wrong; each line names the key.
    #[error("config file {path} is invalid:\n  - {}", problems.join("\n  - "))]
    Invalid {
        path: PathBuf,
        problems: Vec<String>,
    },
}

/// Default listen address: loopback, so nothing is exposed until an operator says so.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9464";
/// Default upper bound for one HTTP request (halved when `tenant_timeout` is short).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Default collection schedule: every five minutes, at second 0.
pub const DEFAULT_SCHEDULE: &str = "0 */5 * * * *";
/// Default rotation schedule: daily at 03:17:00 UTC, off the top of the hour.
pub const DEFAULT_ROTATION_SCHEDULE: &str = "0 17 3 * * *";

/// Default discovery schedule: every 15 minutes (also re-reads the refresh token).
pub const DEFAULT_DISCOVERY_SCHEDULE: &str = "0 */15 * * * *";

impl Settings {
    /// Loads `path`, applies `TENANTWATCH__…` overrides from the process environment and validates.
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        Self::load_with_env(path, std::env::vars())
    }

    /// Like [`Settings::load`] with an explicit environment, so tests need not touch the process's.
    pub fn load_with_env(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        // Only these two get their own message; read_capped reports the rest
        // (no permission, a device, a FIFO) with the OS's reason.
        match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ConfigError::NotFound(path.to_path_buf()))
            }
            Ok(m) if m.is_dir() => return Err(ConfigError::IsDirectory(path.to_path_buf())),
            _ => {}
        }
        let text =
            crate::support::files::read_capped_string(path, crate::support::files::DOCUMENT_LIMIT)
                .map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
        Self::from_toml(&text, path, env)
    }

    /// Parses and validates TOML `text` as if loaded from `path` (relative file
    /// names resolve against its directory), with `env` as the environment.
    /// [`Settings::load_with_env`] and the config fuzz target both end here.
    pub fn from_toml(
        text: &str,
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let prefix = format!("{ENV_PREFIX}__");
        let (mut prefixed, mut azure_env) = (config::Map::new(), AzureEnv::new());
        let mut rust_log = None;
        for (k, v) in env {
            if k == LOG_ENV {
                // Blank is unset, as logging::init reads it.
                rust_log = Some(v).filter(|v| !v.trim().is_empty());
            } else if k.starts_with(&prefix) {
                prefixed.insert(k, v);
            } else if k.starts_with("AZURE_")
                || k.starts_with("IDENTITY_")
                || k == "CREDENTIALS_DIRECTORY"
            {
                azure_env.insert(k, v);
            }
        }
        let parse_err = |source: Box<dyn std::error::Error + Send + Sync>| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        };
        let invalid = |problems| ConfigError::Invalid {
            path: path.to_path_buf(),
            problems,
        };
        let (file, out_of_range) = tree::parse_file(text).map_err(|e| parse_err(e.into()))?;
        let mut problems = Problems(Vec::new(), tree::Keys::from_env(prefixed.keys()));
        tree::report_file_problems(&mut problems, out_of_range);
        let merged = tree::merge(file, prefixed).map_err(|e| parse_err(e.into()))?;
        // RUST_LOG wins over log.level (logging::init), so it is checked as strictly.
        if let Some(filter) = &rust_log {
            if let Err(e) = check_log_filter(filter) {
                problems.push(LOG_ENV, e);
            }
        }
        let Some(raw) = tree::read(merged, &mut problems) else {
            return Err(invalid(problems.0));
        };
        let base = path.parent().unwrap_or(Path::new("."));
        raw.validate(problems, base, &azure_env).map_err(invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::cloud::CloudName;

    const GUID_A: &str = "11111111-1111-1111-1111-111111111111";
    const GUID_B: &str = "22222222-2222-2222-2222-222222222222";

    fn write(dir: &Path, body: &str) -> PathBuf {
        std::fs::write(dir.join("secret"), "s3cret\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("secret"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        let p = dir.join("tw.toml");
        std::fs::write(&p, body).unwrap();
        p
    }

    fn good() -> String {
        format!(
            r#"
[partner]
tenant_id = "{GUID_A}"
client_id = "{GUID_B}"
client_secret_file = "secret"
[store]
kind = "keyvault"
[store.keyvault]
url = "https://v.vault.azure.net"
secret_name = "tenantwatch-refresh-token"
[store.keyvault.identity]
kind = "client_secret"
tenant_id = "{GUID_A}"
client_id = "{GUID_B}"
client_secret_file = "secret"
"#
        )
    }

    fn load(body: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), body);
        // Relative secret paths resolve against the working directory; make them absolute.
        let body = body.replace("\"secret\"", &format!("{:?}", dir.path().join("secret")));
        std::fs::write(&p, body).unwrap();
        Settings::load_with_env(&p, env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    /// Two `[[partners]]` entries: each its own app and store; the first
    /// takes the top-level rotation and tenants, the second its own.
    fn two_partners() -> String {
        format!(
            r#"
[rotation]
schedule = "0 0 4 * * *"
[tenants]
sources = ["gdap"]
[[partners]]
name = "direct"
tenant_id = "{GUID_A}"
client_id = "{GUID_B}"
client_secret_file = "secret"
[partners.store]
kind = "file"
[partners.store.file]
path = "/var/lib/tenantwatch/direct.token"
[[partners]]
name = "indirect"
tenant_id = "{GUID_B}"
client_id = "{GUID_A}"
client_secret_file = "secret"
[partners.store]
kind = "keyvault"
[partners.store.keyvault]
url = "https://v.vault.azure.net"
secret_name = "tenantwatch-refresh-token-indirect"
[partners.store.keyvault.identity]
kind = "client_secret"
tenant_id = "{GUID_A}"
client_id = "{GUID_B}"
client_secret_file = "secret"
[partners.rotation]
enabled = false
[partners.tenants]
sources = ["static"]
static = ["{GUID_A}"]
"#
        )
    }

    #[test]
    fn each_partner_has_its_own_app_store_rotation_and_tenants() {
        let s = load(&two_partners(), &[]).unwrap();
        assert_eq!(s.partner_names(), ["direct", "indirect"]);
        let views = s.views();
        let (direct, indirect) = (&views[0], &views[1]);
        assert_eq!(direct.partner_name, "direct");
        assert_eq!(direct.partner.tenant_id, GUID_A);
        assert_eq!(direct.store.location(), "/var/lib/tenantwatch/direct.token");
        assert_eq!(direct.rotation.schedule, "0 0 4 * * *");
        assert!(direct.rotation.enabled);
        assert_eq!(direct.tenants.sources, [crate::model::Source::Gdap]);
        assert_eq!(indirect.partner_name, "indirect");
        assert_eq!(indirect.partner.tenant_id, GUID_B);
        assert_eq!(
            indirect.store.location(),
            "https://v.vault.azure.net/secrets/tenantwatch-refresh-token-indirect"
        );
        assert!(!indirect.rotation.enabled);
        assert_eq!(indirect.tenants.static_tenants, [GUID_A]);
        assert!(views.iter().all(|v| v.other_partners.is_empty()));
        // What both share comes from the one top-level section.
        assert_eq!(
            direct.collection.concurrency,
            indirect.collection.concurrency
        );
        assert_eq!(
            s.select(Some("indirect")).unwrap().partner.tenant_id,
            GUID_B
        );
        let e = s.select(None).unwrap_err().to_string();
        assert_eq!(
            e,
            "the config has 2 partners (direct, indirect); pass --partner NAME"
        );
        let e = s.select(Some("Direct")).unwrap_err().to_string();
        assert_eq!(
            e,
            "no partner named \"Direct\" in the config; its partners are direct, indirect"
        );
        assert_eq!(s.select_or_all(None).unwrap().len(), 2);
    }

    /// One token file spelled two ways (`.`, `//`, a symlinked directory) is
    /// one store: two partners rotating it would lose a token.
    #[test]
    fn one_file_spelled_two_ways_is_one_store() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(dir.path(), dir.path().join("link")).unwrap();
        let entry = |name: &str, client: &str, path: String| {
            format!(
                "[[partners]]\nname = \"{name}\"\ntenant_id = \"{GUID_A}\"\nclient_id = \"{client}\"\nclient_secret_file = \"secret\"\n\
                 [partners.store]\nkind = \"file\"\n[partners.store.file]\npath = {path:?}\n"
            )
        };
        let d = dir.path().display();
        for other in [
            format!("{d}/./t.token"),
            format!("{d}//t.token"),
            format!("{d}/link/t.token"),
        ] {
            let body = entry("a", GUID_B, format!("{d}/t.token"))
                + &entry("b", "33333333-3333-3333-3333-333333333333", other.clone());
            let err = load(&body, &[]).unwrap_err().to_string();
            assert!(
                err.contains("partners[1].store:") && err.contains("is partners[0]'s store too"),
                "{other}: {err}"
            );
        }
    }

    #[test]
    fn a_single_partner_section_is_the_partner_named_default() {
        let s = load(&good(), &[]).unwrap();
        assert_eq!(s.partner_names(), [DEFAULT_PARTNER]);
        assert_eq!(s.select(None).unwrap().partner_name, "default");
        assert_eq!(s.select(Some("default")).unwrap().partner.tenant_id, GUID_A);
        assert_eq!(s.views().len(), 1);
    }

    #[test]
    fn partner_entries_name_their_problems_by_index() {
        // Shared store, duplicate and bad names, a missing key and store, and
        // the single-partner sections beside [[partners]].
        let body = two_partners()
            .replace("tenantwatch-refresh-token-indirect", "TenantWatch-Refresh-Token")
            .replace("name = \"indirect\"", "name = \"direct\"")
            + &good()
            + &format!(
                "[[partners]]\nname = \"a b\"\ntenant_id = \"{GUID_A}\"\nclient_secret_file = \"secret\"\n\
                 [[partners]]\nname = \"x\"\ntenant_id = \"{GUID_A}\"\nclient_id = \"{GUID_B}\"\nclient_secret_file = \"secret\"\n\
                 [partners.store]\nkind = \"keyvault\"\n[partners.store.keyvault]\nurl = \"https://v.vault.azure.net/\"\nsecret_name = \"tenantwatch-refresh-token\"\n\
                 [partners.store.keyvault.identity]\ntenant_id = \"{GUID_A}\"\nclient_id = \"{GUID_B}\"\nclient_secret_file = \"secret\"\n"
            );
        let err = load(&body, &[]).unwrap_err().to_string();
        for want in [
            "partner: a config has [[partners]] entries or one [partner] section, not both",
            "store: each [[partners]] entry has its own store",
            "partners[1].name: \"direct\" is used twice",
            "partners[2].name: \"a b\" must be 1–64 letters",
            "partners[2].client_id: missing\n",
            "partners[2].store: section missing",
            "partners[3].store: https://v.vault.azure.net/secrets/tenantwatch-refresh-token is partners[1]'s store too",
            "partners[3].client_id: the same SAM app in the same partner tenant as partners[0]",
        ] {
            assert!(err.contains(want), "{want:?} not in {err}");
        }
        let err = load("partners = []\n", &[]).unwrap_err().to_string();
        assert!(err.contains("partners: is empty"), "{err}");
    }

    /// Relative secret paths are found next to the config file, whatever the
    /// working directory (they were looked up in it, so `tenantwatch consent
    /// --config /etc/tenantwatch/…` failed from anywhere else), and in
    /// `$CREDENTIALS_DIRECTORY` when systemd sets it.
    #[test]
    fn relative_secret_files_resolve_next_to_the_config_or_in_the_credentials_directory() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), &good());
        let s = Settings::load_with_env(&p, []).expect("secret found beside the config");
        assert!(s.partner.credential.is_secret());
        let creds = tempfile::tempdir().unwrap();
        std::fs::write(creds.path().join("secret"), "from-credentials\n").unwrap();
        std::fs::set_permissions(
            creds.path().join("secret"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        let env = [(
            "CREDENTIALS_DIRECTORY".to_string(),
            creds.path().display().to_string(),
        )];
        Settings::load_with_env(&p, env).expect("secret found in CREDENTIALS_DIRECTORY");
        std::fs::remove_file(creds.path().join("secret")).unwrap();
        let env = [(
            "CREDENTIALS_DIRECTORY".to_string(),
            creds.path().display().to_string(),
        )];
        let err = Settings::load_with_env(&p, env).unwrap_err().to_string();
        assert!(err.contains(&creds.path().display().to_string()), "{err}");
    }

    #[test]
    fn good_config_loads_with_public_defaults() {
        let s = load(&good(), &[]).unwrap();
        assert_eq!(s.cloud.name, CloudName::Public);
        assert_eq!(s.cloud.login.as_str(), "https://login.microsoftonline.com/");
        assert_eq!(s.server.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(s.collection.concurrency, 16);
    }

    #[test]
    fn cost_is_off_and_hourly_unless_its_section_says_otherwise() {
        let s = load(&good(), &[]).unwrap();
        let cost = &s.collectors["cost"];
        assert!(!cost.enabled);
        assert_eq!(cost.schedule, "0 7 * * * *");
        // partner_subscriptions is on, but hourly: Partner Center allows 500
        // requests a minute for the whole partner.
        assert!(s.collectors["partner_subscriptions"].enabled);
        assert_eq!(
            s.collectors["partner_subscriptions"].schedule,
            "0 37 * * * *"
        );
        // The others still follow collection.schedule and are on.
        assert!(s.collectors["arm_subscriptions"].enabled);
        assert_eq!(s.collectors["arm_subscriptions"].schedule, DEFAULT_SCHEDULE);
        let s = load(
            &(good() + "[collectors.cost]\nenabled = true\nschedule = \"0 0 */4 * * *\"\n"),
            &[],
        )
        .unwrap();
        assert!(s.collectors["cost"].enabled);
        assert_eq!(s.collectors["cost"].schedule, "0 0 */4 * * *");
    }

    #[test]
    fn pacing_keys_default_to_half_of_graphs_published_limit_and_are_checked() {
        let s = load(&good(), &[]).unwrap();
        let p = s.collection.limits.pacing;
        assert!(p.enabled);
        assert_eq!(
            (p.budget_share, p.graph_app_limit, p.partner_center_limit),
            (0.5, 130_000, 500)
        );
        let s = load(
            &(good() + "[collection]\napi_budget_share = 0.25\ngraph_app_limit = 260\npartner_center_limit = 10\n"),
            &[("TENANTWATCH__COLLECTION__PACING", "false")],
        )
        .unwrap();
        let p = s.collection.limits.pacing;
        assert_eq!(
            (
                p.enabled,
                p.budget_share,
                p.graph_app_limit,
                p.partner_center_limit
            ),
            (false, 0.25, 260, 10)
        );
        for bad in ["0", "1.5", "-0.1"] {
            let err = load(
                &(good() + &format!("[collection]\napi_budget_share = {bad}\n")),
                &[],
            )
            .unwrap_err()
            .to_string();
            assert!(
                err.contains("collection.api_budget_share")
                    && err.contains("must be above 0 and at most 1"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn env_overrides_file() {
        let s = load(
            &good(),
            &[
                ("TENANTWATCH__SERVER__LISTEN", "127.0.0.1:1234"),
                ("TENANTWATCH__COLLECTION__CONCURRENCY", "3"),
                ("TENANTWATCH__CLOUD__NAME", "usgov"),
            ],
        )
        .unwrap();
        assert_eq!(s.server.listen.port(), 1234);
        assert_eq!(s.collection.concurrency, 3);
        assert_eq!(s.cloud.graph.as_str(), "https://graph.microsoft.us/");
    }

    #[test]
    fn problems_name_their_keys() {
        let body = good().replace("url = \"https://v.vault.azure.net\"", "url = \"http://v\"")
            + "[cloud]\nname = \"mars\"\n";
        let err = load(&body, &[]).unwrap_err().to_string();
        assert!(err.contains("cloud.name: unknown cloud \"mars\""), "{err}");
        assert!(
            err.contains("store.keyvault.url: \"http://v\" must be an https:// URL"),
            "{err}"
        );
    }

    #[test]
    fn client_capabilities_default_to_cp1_and_are_checked() {
        let s = load(&good(), &[]).unwrap();
        assert_eq!(s.cloud.client_capabilities, vec!["cp1".to_string()]);
        let s = load(&(good() + "[cloud]\nclient_capabilities = []\n"), &[]).unwrap();
        assert!(s.cloud.client_capabilities.is_empty());
        let err = load(
            &(good() + "[cloud]\nclient_capabilities = [\"cp1\", \"a\\\"b\"]\n"),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("cloud.client_capabilities: \"a\\\"b\" is not a capability name"),
            "{err}"
        );
    }

    #[test]
    fn custom_cloud_needs_every_endpoint() {
        let body = good() + "[cloud]\nname = \"custom\"\nlogin = \"https://127.0.0.1:1\"\n";
        let err = load(&body, &[]).unwrap_err().to_string();
        assert!(err.contains("cloud.graph: missing"), "{err}");
        assert!(err.contains("cloud.partner_center: missing"), "{err}");
    }

    #[test]
    fn missing_secret_is_named() {
        let body = good().replacen("client_secret_file = \"secret\"\n", "", 1);
        let err = load(&body, &[]).unwrap_err().to_string();
        assert!(err.contains("partner.client_secret_file: missing"), "{err}");
        assert!(err.contains("TENANTWATCH__PARTNER__CLIENT_SECRET"), "{err}");
        let ok = load(&body, &[("TENANTWATCH__PARTNER__CLIENT_SECRET", "x")]);
        assert!(ok.is_ok());
    }

    #[test]
    fn typo_keys_are_rejected() {
        let body = good().replace("secret_name", "secretname");
        let err = load(&body, &[]).unwrap_err().to_string();
        assert!(err.contains("secretname"), "{err}");
    }

    #[test]
    fn gdap_required_roles_take_names_or_ids() {
        let body = good()
            + "[tenants]\nsources = [\"gdap\"]\ngdap_required_roles = [\"global reader\", \"DD4DB9A0-CC4A-4213-9F9F-70242232D97E\", \"Global Reader\"]\n";
        let s = load(&body, &[]).unwrap();
        assert_eq!(
            s.tenants.gdap_required_roles,
            [
                "f2ef992c-3afb-46b9-b7cf-a126ee74c451",
                "dd4db9a0-cc4a-4213-9f9f-70242232d97e"
            ]
        );
        let body =
            good() + "[tenants]\ngdap_required_roles = [\"Global Overlord\", \"Global Reader\"]\n";
        let err = load(&body, &[]).unwrap_err().to_string();
        assert!(
            err.contains("tenants.gdap_required_roles: \"Global Overlord\" is neither"),
            "{err}"
        );
        assert!(err.contains("needs the gdap source"), "{err}");
    }

    #[test]
    fn tenant_groups_keep_their_order_and_name_their_problems() {
        let body = good()
            + "[[tenants.groups]]\nname = \"gold\"\ninclude = [\"*.contoso.com\"]\nexclude = [\"lab.*\"]\n[[tenants.groups]]\nname = \"silver\"\ninclude = [\"*\"]\n";
        let s = load(&body, &[]).unwrap();
        let names: Vec<_> = s.tenants.groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["gold", "silver"]);
        assert_eq!(s.tenants.groups[0].exclude, ["lab.*"]);
        let body = good()
            + "[[tenants.groups]]\nname = \"none\"\ninclude = [\"*\"]\n[[tenants.groups]]\nname = \"a b\"\n[[tenants.groups]]\nname = \"x\"\ninclude = [\"*\"]\n[[tenants.groups]]\nname = \"x\"\ninclude = [\"*\"]\n";
        let err = load(&body, &[]).unwrap_err().to_string();
        assert!(
            err.contains("tenants.groups[0].name: \"none\" is the group"),
            "{err}"
        );
        assert!(
            err.contains("tenants.groups[1].name: \"a b\" must be"),
            "{err}"
        );
        assert!(err.contains("tenants.groups[1].include: missing"), "{err}");
        assert!(
            err.contains("tenants.groups[3].name: \"x\" is used twice"),
            "{err}"
        );
    }

    #[test]
    fn bad_schedule_and_listen() {
        let body = good()
            + "[collection]\nschedule = \"every minute\"\n[server]\nlisten = \"localhost\"\n";
        let err = load(&body, &[]).unwrap_err().to_string();
        assert!(err.contains("collection.schedule"), "{err}");
        assert!(err.contains("server.listen"), "{err}");
    }

    #[test]
    fn connection_limits_default_override_and_name_their_keys() {
        let s = load(&good(), &[]).unwrap();
        assert_eq!(s.server.header_read_timeout, DEFAULT_HEADER_READ_TIMEOUT);
        assert_eq!(s.server.idle_timeout, DEFAULT_IDLE_TIMEOUT);
        assert_eq!(s.server.max_connections, DEFAULT_MAX_CONNECTIONS);
        let s = load(
            &(good() + "[server]\nheader_read_timeout = \"2s\"\nidle_timeout = \"90s\"\n"),
            &[("TENANTWATCH__SERVER__MAX_CONNECTIONS", "20")],
        )
        .unwrap();
        assert_eq!(s.server.header_read_timeout, Duration::from_secs(2));
        assert_eq!(s.server.idle_timeout, Duration::from_secs(90));
        assert_eq!(s.server.max_connections, 20);
        let body = good()
            + "[server]\nheader_read_timeout = \"0s\"\nidle_timeout = \"soon\"\nmax_connections = 0\n";
        let err = load(&body, &[]).unwrap_err().to_string();
        assert!(
            err.contains("server.header_read_timeout: \"0s\" must be above 0"),
            "{err}"
        );
        assert!(
            err.contains("server.idle_timeout: \"soon\" is not a duration"),
            "{err}"
        );
        assert!(
            err.contains("server.max_connections: 0 must be between 1 and 100000"),
            "{err}"
        );
        let err = load(
            &good(),
            &[("TENANTWATCH__SERVER__MAX_CONNECTIONS", "100001")],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("server.max_connections: 100001"), "{err}");
    }

    #[test]
    fn a_device_named_as_secret_file_is_an_error_not_an_endless_read() {
        let body = good().replace(
            "client_secret_file = \"secret\"",
            "client_secret_file = \"/dev/zero\"",
        );
        let err = load(&body, &[]).unwrap_err().to_string();
        assert!(
            err.contains("partner.client_secret_file") && err.contains("not a regular file"),
            "{err}"
        );
    }

    #[test]
    fn type_errors_unknown_keys_and_invalid_values_come_in_one_list() {
        let body = good().replace("secret_name", "secretname")
            + "[collection]\nconcurrency = \"many\"\nmax_series = 1.5\n[cloud]\nname = \"mars\"\n";
        let err = load(
            &body,
            &[
                ("TENANTWATCH__SERVER__LISTN", "x"),
                ("TENANTWATCH__COLLECTION__MAX_PAGES", "-5"),
                ("TENANTWATCH__SERVER__LISTEN", "nowhere"),
            ],
        )
        .unwrap_err();
        let ConfigError::Invalid { problems, .. } = &err else {
            panic!("{err:?}")
        };
        let expect = [
            "collection.concurrency: expected a whole number, 0 or more, got \"many\"",
            "TENANTWATCH__COLLECTION__MAX_PAGES sets collection.max_pages: expected a whole number, 0 or more, got \"-5\"",
            "collection.max_series: expected a whole number, 0 or more, got 1.5",
            "TENANTWATCH__SERVER__LISTN sets unknown key server.listn; [server] takes listen, web_config_file, max_requests",
            "store.keyvault.secretname: unknown key; [store.keyvault] takes url, secret_name, identity",
            "cloud.name: unknown cloud \"mars\"",
            "TENANTWATCH__SERVER__LISTEN sets server.listen: \"nowhere\" is not IP:PORT",
            // The typo's value was left out, so validation finds the real key missing.
            "store.keyvault.secret_name: missing",
        ];
        for e in expect {
            assert!(
                problems.iter().any(|p| p.starts_with(e)),
                "{e:?} not in {problems:#?}"
            );
        }
        assert_eq!(problems.len(), expect.len(), "{problems:#?}");
    }

    #[test]
    fn a_refused_key_is_not_also_reported_missing() {
        let body = good().replace(
            &format!("client_id = \"{GUID_B}\"\nclient_secret_file"),
            "client_id = 7\nclient_secret_file",
        );
        let err = load(&body, &[]).unwrap_err().to_string();
        assert!(
            err.contains("partner.client_id: expected a string, got 7"),
            "{err}"
        );
        assert!(!err.contains("partner.client_id: missing"), "{err}");
    }

    #[test]
    fn a_log_level_that_is_no_level_is_refused_by_key_or_variable() {
        let err = load(&(good() + "[log]\nlevel = \"warning\"\n"), &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("log.level: \"warning\" is not a level"),
            "{err}"
        );
        let err = load(&good(), &[("RUST_LOG", "warning")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("RUST_LOG: \"warning\" is not a level"),
            "{err}"
        );
        let err = load(&good(), &[("TENANTWATCH__LOG__LEVEL", "x=loud")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("TENANTWATCH__LOG__LEVEL sets log.level: \"x=loud\" has level \"loud\""),
            "{err}"
        );
        let s = load(
            &(good() + "[log]\nlevel = \"tenantwatch_daemon=debug,info\"\n"),
            &[("RUST_LOG", "off"), ("TENANTWATCH__LOG__FORMAT", "json")],
        )
        .unwrap();
        assert_eq!(s.log.level, "tenantwatch_daemon=debug,info");
        // Blank is unset, as logging::init reads it.
        assert!(load(&good(), &[("RUST_LOG", " ")]).is_ok());
    }

    #[test]
    fn a_directory_is_named_as_one_not_as_missing() {
        let dir = tempfile::tempdir().unwrap();
        let err = Settings::load_with_env(dir.path(), []).unwrap_err();
        assert!(matches!(err, ConfigError::IsDirectory(_)), "{err:?}");
        assert!(err.to_string().contains("is a directory"), "{err}");
        let err = Settings::load_with_env(&dir.path().join("absent.toml"), []).unwrap_err();
        assert!(matches!(err, ConfigError::NotFound(_)), "{err:?}");
    }

    #[test]
    fn request_timeout_defaults_inside_the_tenant_budget() {
        let s = load(&(good() + "[collection]\ntenant_timeout = \"10s\"\n"), &[]).unwrap();
        assert_eq!(s.collection.request_timeout, Duration::from_secs(5));
        let s = load(&good(), &[]).unwrap();
        assert_eq!(s.collection.request_timeout, DEFAULT_REQUEST_TIMEOUT);
        let err = load(
            &(good() + "[collection]\ntenant_timeout = \"10s\"\nrequest_timeout = \"30s\"\n"),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("collection.request_timeout: 30s is longer than"),
            "{err}"
        );
    }

    use proptest::prelude::*;

    /// The example config shipped to operators; each property test mutates it.
    const EXAMPLE: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../config/tenantwatch.example.toml"
    ));

    fn toml_value() -> impl Strategy<Value = String> {
        prop_oneof![
            ".{0,24}".prop_map(|s| format!("{s:?}")),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|f| format!("{f:?}")),
            any::<bool>().prop_map(|b| b.to_string()),
            Just("[]".to_string()),
            Just("{ a = 1 }".to_string()),
            Just("\"/dev/zero\"".to_string()),
            "[0-9]{1,25}(ms|s|m|h|d|y)".prop_map(|s| format!("{s:?}")),
        ]
    }

    fn assert_typed(r: Result<Settings, ConfigError>) -> Result<(), TestCaseError> {
        match r {
            Ok(_) => {}
            Err(ConfigError::Parse { path, .. }) | Err(ConfigError::Invalid { path, .. }) => {
                prop_assert_eq!(path, Path::new("/nonexistent/tw.toml"))
            }
            Err(other) => prop_assert!(false, "unexpected {:?}", other),
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn any_text_is_settings_or_a_typed_error(text in ".{0,400}") {
            assert_typed(Settings::from_toml(&text, Path::new("/nonexistent/tw.toml"), []))?;
        }

        #[test]
        fn any_value_in_the_example_is_settings_or_a_typed_error(
            line in any::<prop::sample::Index>(),
            value in toml_value(),
        ) {
            let lines: Vec<&str> = EXAMPLE.lines().filter(|l| l.contains(" = ")).collect();
            let target = lines[line.index(lines.len())];
            let key = target.split(" = ").next().unwrap_or_default();
            let text = EXAMPLE.replacen(target, &format!("{key} = {value}"), 1);
            assert_typed(Settings::from_toml(&text, Path::new("/nonexistent/tw.toml"), []))?;
        }

        #[test]
        fn any_env_override_is_settings_or_a_typed_error(
            key in "(SERVER__LISTEN|COLLECTION__CONCURRENCY|COLLECTION__TENANT_TIMEOUT|COLLECTION__SCHEDULE|STORE__KIND|CLOUD__NAME|LOG__FORMAT|PARTNER__TENANT_ID|[A-Z_]{1,20})",
            value in ".{0,30}",
        ) {
            let env = [(format!("{ENV_PREFIX}__{key}"), value)];
            assert_typed(Settings::from_toml(EXAMPLE, Path::new("/nonexistent/tw.toml"), env))?;
        }
    }
}
