//! Configuration: a TOML file overlaid with `TENANTWATCH__SECTION__KEY` variables,
//! parsed into validated [`Settings`] before anything starts.
//!
//! Validation collects every problem it finds and names each by its key, so an
//! operator fixes the file in one pass; a config that fails never starts a daemon.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::cloud::{Audiences, Cloud, CloudName};
use crate::credential::{Certificate, ClientCredential};
use crate::secret::{read_secret_file, SecretString};

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
    /// The file exists but could not be read.
    #[error("config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file or an environment variable could not be parsed.
    #[error("config file {path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: config::ConfigError,
    },
    /// One or more values are missing or wrong; each line names the key.
    #[error("config file {path} is invalid:\n  - {}", problems.join("\n  - "))]
    Invalid {
        path: PathBuf,
        problems: Vec<String>,
    },
}

/// The validated configuration the daemon runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Endpoints and audiences.
    pub cloud: Cloud,
    /// Extra CA bundle (PEM) trusted in addition to the built-in roots.
    pub ca_file: Option<PathBuf>,
    /// The multi-tenant SAM application.
    pub partner: PartnerApp,
    /// Where the refresh token lives.
    pub store: StoreSettings,
    /// The HTTP server.
    pub server: ServerSettings,
    /// Collection schedule and limits.
    pub collection: CollectionSettings,
    /// Refresh-token rotation.
    pub rotation: RotationSettings,
    /// Which tenants to watch.
    pub tenants: crate::discovery::DiscoverySettings,
    /// Per-collector switches, schedules and timeouts, by collector name.
    pub collectors: std::collections::BTreeMap<String, CollectorSettings>,
    /// Custom Resource Graph queries.
    pub custom_queries: Vec<crate::collector::resource_graph::CustomQuery>,
    /// Log format and filter.
    pub log: LogSettings,
}

/// A confidential client: tenant, app id and its credential.
#[derive(Debug, Clone)]
pub struct PartnerApp {
    /// The app's home tenant.
    pub tenant_id: String,
    /// Application (client) id.
    pub client_id: String,
    /// Secret, certificate or federated token.
    pub credential: ClientCredential,
}

/// Who reads and writes the refresh token in Key Vault.
#[derive(Debug, Clone)]
pub enum ServiceIdentity {
    /// An app registration: client secret, certificate or workload identity federation.
    App {
        /// The app.
        app: PartnerApp,
        /// Login host for this identity when it differs from the cloud's (`AZURE_AUTHORITY_HOST`).
        authority: Option<Url>,
    },
    /// An Azure managed identity (VM/AKS IMDS, or App Service / Container Apps).
    ManagedIdentity {
        /// User-assigned identity's client id; `None` for system-assigned.
        client_id: Option<String>,
        /// Where to ask.
        endpoint: ManagedIdentityEndpoint,
    },
}

/// The managed-identity token source.
#[derive(Debug, Clone)]
pub enum ManagedIdentityEndpoint {
    /// The instance metadata service (`http://169.254.169.254`).
    Imds(Url),
    /// App Service / Container Apps: `IDENTITY_ENDPOINT` with `IDENTITY_HEADER`.
    AppService {
        /// `IDENTITY_ENDPOINT`.
        endpoint: Url,
        /// `IDENTITY_HEADER`.
        header: SecretString,
    },
}

/// The instance metadata service's token URL.
pub const IMDS_ENDPOINT: &str = "http://169.254.169.254/metadata/identity/oauth2/token";

/// Where the refresh token is stored.
#[derive(Debug, Clone)]
pub enum StoreSettings {
    /// Azure Key Vault secret.
    KeyVault {
        /// Vault URL, e.g. `https://myvault.vault.azure.net`.
        url: Url,
        /// Secret name.
        secret_name: String,
        /// Identity used to reach the vault (boxed: far larger than the file variant).
        identity: Box<ServiceIdentity>,
    },
    /// A local file (small installs).
    File {
        /// Path of the token file.
        path: PathBuf,
    },
}

/// HTTP server settings.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Address to bind.
    pub listen: SocketAddr,
    /// The web config file (TLS, basic auth) and what it held at start.
    pub web: Option<(PathBuf, crate::web_config::WebConfig)>,
    /// `/metrics` requests served at once; more get 503 (0: no limit).
    pub max_requests: usize,
}

/// node_exporter's `--web.max-requests` default: every scrape in flight holds
/// its response, so a stalled or flooding scraper must not grow memory unbounded.
pub const DEFAULT_MAX_SCRAPES: usize = 40;

/// Loads the web config file for `server.web_config_file` or `--web.config.file`.
pub fn load_web_config(
    path: &Path,
) -> Result<(PathBuf, crate::web_config::WebConfig), crate::web_config::WebConfigError> {
    crate::web_config::WebConfig::load(path).map(|c| (path.to_path_buf(), c))
}

/// How and how often tenants are collected.
#[derive(Debug, Clone)]
pub struct CollectionSettings {
    /// Cron expression with seconds (tokio-cron-scheduler syntax).
    pub schedule: String,
    /// Tenants collected at once.
    pub concurrency: usize,
    /// Default time allowed for one collector on one tenant before it counts as failed.
    pub tenant_timeout: Duration,
    /// Time allowed for one HTTP request; shorter than `tenant_timeout`, so a
    /// request that hangs is retried instead of failing the whole collector.
    pub request_timeout: Duration,
    /// API limits: concurrency, retries, paging.
    pub limits: crate::api::ApiLimits,
    /// Samples one collector may export for one tenant; more are dropped and counted.
    pub max_series: usize,
}

/// One collector's settings.
#[derive(Debug, Clone)]
pub struct CollectorSettings {
    /// Whether it runs.
    pub enabled: bool,
    /// Cron schedule (default `collection.schedule`).
    pub schedule: String,
    /// Time allowed per tenant (default `collection.tenant_timeout`).
    pub timeout: Duration,
}

/// When the refresh token is rotated.
#[derive(Debug, Clone)]
pub struct RotationSettings {
    /// False turns scheduled rotation off (another replica or a job does it).
    pub enabled: bool,
    /// Cron expression with seconds.
    pub schedule: String,
    /// A stored version younger than this is not rotated.
    pub rotate_after: Duration,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Logging settings.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// Output format.
    pub format: LogFormat,
    /// `RUST_LOG`-style filter, e.g. `info` or `tenantwatch=debug`.
    pub level: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    cloud: RawCloud,
    partner: Option<RawApp>,
    store: Option<RawStore>,
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    collection: RawCollection,
    #[serde(default)]
    rotation: RawRotation,
    #[serde(default)]
    tenants: RawTenants,
    #[serde(default)]
    collectors: std::collections::BTreeMap<String, RawCollector>,
    #[serde(default)]
    log: RawLog,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTenants {
    sources: Option<Vec<String>>,
    #[serde(rename = "static")]
    static_tenants: Option<Vec<String>>,
    include: Option<Vec<String>>,
    exclude: Option<Vec<String>>,
    shard: Option<String>,
    shard_count: Option<u32>,
    schedule: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCollector {
    enabled: Option<bool>,
    schedule: Option<String>,
    timeout: Option<String>,
    queries: Option<Vec<RawQuery>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuery {
    name: Option<String>,
    query: Option<String>,
    value_column: Option<String>,
    #[serde(default)]
    label_columns: Vec<String>,
    help: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRotation {
    enabled: Option<bool>,
    schedule: Option<String>,
    rotate_after: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCloud {
    name: Option<String>,
    login: Option<String>,
    graph: Option<String>,
    arm: Option<String>,
    partner_center: Option<String>,
    ca_file: Option<PathBuf>,
    #[serde(default)]
    audiences: RawAudiences,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudiences {
    graph: Option<String>,
    arm: Option<String>,
    partner_center: Option<String>,
    keyvault: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApp {
    kind: Option<String>,
    tenant_id: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    client_secret_file: Option<PathBuf>,
    certificate_file: Option<PathBuf>,
    federated_token_file: Option<PathBuf>,
    authority: Option<String>,
    endpoint: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    kind: Option<String>,
    keyvault: Option<RawKeyVault>,
    file: Option<RawFileStore>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeyVault {
    url: Option<String>,
    secret_name: Option<String>,
    identity: Option<RawApp>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFileStore {
    path: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<String>,
    web_config_file: Option<PathBuf>,
    max_requests: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCollection {
    schedule: Option<String>,
    concurrency: Option<usize>,
    tenant_timeout: Option<String>,
    request_timeout: Option<String>,
    max_requests: Option<usize>,
    max_requests_per_tenant: Option<usize>,
    max_pages: Option<usize>,
    max_series: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: Option<String>,
    level: Option<String>,
}

/// Default listen address: loopback, so nothing is exposed until an operator says so.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9464";
/// Default upper bound for one HTTP request (halved when `tenant_timeout` is short).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Default collection schedule: every five minutes, at second 0.
pub const DEFAULT_SCHEDULE: &str = "0 */5 * * * *";
/// Default rotation schedule: daily at 03:17:00 UTC, off the top of the hour.
pub const DEFAULT_ROTATION_SCHEDULE: &str = "0 17 3 * * *";

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
        if !path.is_file() {
            return Err(ConfigError::NotFound(path.to_path_buf()));
        }
        let text = crate::files::read_capped_string(path, crate::files::DOCUMENT_LIMIT).map_err(
            |source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            },
        )?;
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
        let (env, azure_env): (Vec<_>, Vec<_>) = env
            .into_iter()
            .filter(|(k, _)| {
                k.starts_with(&format!("{ENV_PREFIX}__"))
                    || k.starts_with("AZURE_")
                    || k.starts_with("IDENTITY_")
            })
            .partition(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}__")));
        let env: config::Map<String, String> = env.into_iter().collect();
        let azure_env: AzureEnv = azure_env.into_iter().collect();
        let parse_err = |source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        };
        let raw: RawConfig = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix(ENV_PREFIX)
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true)
                    .source(Some(env)),
            )
            .build()
            .map_err(parse_err)?
            .try_deserialize()
            .map_err(parse_err)?;
        let base = path.parent().unwrap_or(Path::new("."));
        raw.validate(base, &azure_env)
            .map_err(|problems| ConfigError::Invalid {
                path: path.to_path_buf(),
                problems,
            })
    }
}

/// Collects problems while validating so all of them are reported at once.
struct Problems(Vec<String>);

impl Problems {
    fn push(&mut self, key: &str, msg: impl std::fmt::Display) {
        self.0.push(format!("{key}: {msg}"));
    }

    fn required<'a>(&mut self, key: &str, v: &'a Option<String>) -> Option<&'a str> {
        match v.as_deref().map(str::trim) {
            Some(s) if !s.is_empty() => Some(s),
            _ => {
                let env = format!("{ENV_PREFIX}__{}", key.replace('.', "__").to_uppercase());
                self.push(key, format!("missing; set it in the file or with {env}"));
                None
            }
        }
    }

    fn https_url(&mut self, key: &str, v: &str) -> Option<Url> {
        match Url::parse(v) {
            Ok(u) if u.scheme() == "https" && u.host().is_some() => Some(u),
            Ok(_) => {
                self.push(key, format!("{v:?} must be an https:// URL"));
                None
            }
            Err(e) => {
                self.push(key, format!("{v:?} is not a URL ({e})"));
                None
            }
        }
    }
}

fn is_guid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok() && s.len() == 36
}

fn valid_tenant(s: &str) -> bool {
    is_guid(s)
        || (s.contains('.')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'))
}

impl RawConfig {
    fn validate(self, base: &Path, azure_env: &AzureEnv) -> Result<Settings, Vec<String>> {
        let mut p = Problems(Vec::new());
        let cloud = validate_cloud(&mut p, &self.cloud);
        let ca_file = self.cloud.ca_file.clone().map(|f| absolute(base, &f));
        if let Some(f) = &ca_file {
            check_ca_file(&mut p, f);
        }
        let partner = match &self.partner {
            Some(raw) => validate_app(&mut p, "partner", raw),
            None => {
                p.push("partner", "section missing; it names the multi-tenant SAM application (tenant_id, client_id, client_secret_file)");
                None
            }
        };
        let store = validate_store(&mut p, self.store.as_ref(), azure_env);
        let listen = self.server.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let listen = match listen.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                p.push(
                    "server.listen",
                    format!("{listen:?} is not IP:PORT (e.g. 127.0.0.1:9464 or [::]:9464)"),
                );
                None
            }
        };
        let web = self.server.web_config_file.as_ref().and_then(|f| {
            load_web_config(&absolute(base, f))
                .map_err(|e| p.push("server.web_config_file", e.to_string()))
                .ok()
        });
        let collection = validate_collection(&mut p, &self.collection);
        let rotation = validate_rotation(&mut p, &self.rotation);
        let tenants = validate_tenants(&mut p, &self.tenants);
        let (collectors, custom_queries) = match &collection {
            Some(c) => validate_collectors(&mut p, &self.collectors, c),
            None => Default::default(),
        };
        let log = validate_log(&mut p, &self.log);
        match (cloud, partner, store, listen, collection, rotation, log) {
            (
                Some(cloud),
                Some(partner),
                Some(store),
                Some(listen),
                Some(collection),
                Some(rotation),
                Some(log),
            ) if p.0.is_empty() => Ok(Settings {
                cloud,
                ca_file,
                partner,
                store,
                server: ServerSettings {
                    listen,
                    web,
                    max_requests: self.server.max_requests.unwrap_or(DEFAULT_MAX_SCRAPES),
                },
                collection,
                rotation,
                tenants: tenants.ok_or_else(Vec::new)?,
                collectors,
                custom_queries,
                log,
            }),
            _ => Err(p.0),
        }
    }
}

fn absolute(base: &Path, f: &Path) -> PathBuf {
    if f.is_absolute() {
        f.to_path_buf()
    } else {
        base.join(f)
    }
}

fn check_ca_file(p: &mut Problems, f: &Path) {
    // A device such as /dev/zero would be read forever.
    if !f.is_file() {
        p.push("cloud.ca_file", format!("{} is not a file", f.display()));
        return;
    }
    match crate::files::read_capped(f, crate::files::DOCUMENT_LIMIT) {
        Ok(pem) => {
            use rustls::pki_types::{pem::PemObject, CertificateDer};
            let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem).collect();
            if certs.is_empty() || certs.iter().any(|c| c.is_err()) {
                p.push(
                    "cloud.ca_file",
                    format!("{} holds no PEM certificate", f.display()),
                );
            }
        }
        Err(e) => p.push("cloud.ca_file", format!("cannot read {}: {e}", f.display())),
    }
}

fn validate_cloud(p: &mut Problems, raw: &RawCloud) -> Option<Cloud> {
    let name_s = raw.name.as_deref().unwrap_or("public");
    let Some(name) = CloudName::parse(name_s) else {
        p.push(
            "cloud.name",
            format!("unknown cloud {name_s:?}; expected public, usgov, china or custom"),
        );
        return None;
    };
    let known = name.known();
    let mut endpoint = |key: &str, v: &Option<String>, default: &str| -> Option<Url> {
        let full = format!("cloud.{key}");
        match (name, v) {
            (CloudName::Custom, None) => {
                p.push(&full, "missing; a custom cloud names every endpoint");
                None
            }
            (_, Some(v)) => p.https_url(&full, v),
            (_, None) => Url::parse(default).ok(),
        }
    };
    let login = endpoint("login", &raw.login, known.login);
    let graph = endpoint("graph", &raw.graph, known.graph);
    let arm = endpoint("arm", &raw.arm, known.arm);
    let partner_center = endpoint("partner_center", &raw.partner_center, known.partner_center);
    if let Some(l) = &login {
        if l.path() != "/" {
            p.push(
                "cloud.login",
                format!("{l} must be a bare origin (the tenant goes in the first path segment)"),
            );
        }
    }
    let a = &raw.audiences;
    let pick = |v: &Option<String>, d: &str| v.clone().unwrap_or_else(|| d.to_string());
    let audiences = Audiences {
        graph: pick(&a.graph, known.audiences[0]),
        arm: pick(&a.arm, known.audiences[1]),
        partner_center: pick(&a.partner_center, known.audiences[2]),
        keyvault: pick(&a.keyvault, known.audiences[3]),
    };
    Some(Cloud {
        name,
        login: login?,
        graph: graph?,
        arm: arm?,
        partner_center: partner_center?,
        audiences,
    })
}

/// Environment the Azure SDKs read for identities (`AZURE_CLIENT_ID` …); config wins.
type AzureEnv = std::collections::HashMap<String, String>;

fn tenant_and_client<'a>(
    p: &mut Problems,
    section: &str,
    raw: &'a RawApp,
    env: &'a AzureEnv,
) -> (Option<String>, Option<String>) {
    let tenant = raw
        .tenant_id
        .clone()
        .or_else(|| env.get("AZURE_TENANT_ID").cloned());
    let tenant_id = p
        .required(&format!("{section}.tenant_id"), &tenant)
        .map(str::to_string);
    if let Some(t) = &tenant_id {
        if !valid_tenant(t) {
            p.push(
                &format!("{section}.tenant_id"),
                format!("{t:?} is neither a GUID nor a domain name"),
            );
        }
    }
    let client = raw
        .client_id
        .clone()
        .or_else(|| env.get("AZURE_CLIENT_ID").cloned());
    let client_id = p
        .required(&format!("{section}.client_id"), &client)
        .map(str::to_string);
    if let Some(c) = &client_id {
        if !is_guid(c) {
            p.push(
                &format!("{section}.client_id"),
                format!("{c:?} is not an application (client) id GUID"),
            );
        }
    }
    (tenant_id, client_id)
}

/// Secret or certificate, exactly one.
fn secret_or_certificate(
    p: &mut Problems,
    section: &str,
    raw: &RawApp,
) -> Option<ClientCredential> {
    let given = [
        raw.client_secret_file.is_some(),
        raw.client_secret.is_some(),
        raw.certificate_file.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if given > 1 {
        p.push(
            &format!("{section}.client_secret"),
            "set exactly one of client_secret_file, client_secret or certificate_file",
        );
        return None;
    }
    if let Some(f) = &raw.certificate_file {
        return match Certificate::from_pem_file(&format!("{section}.certificate_file"), f) {
            Ok(c) => Some(ClientCredential::Certificate(std::sync::Arc::new(c))),
            Err(e) => {
                p.0.push(e.to_string());
                None
            }
        };
    }
    match (&raw.client_secret_file, &raw.client_secret) {
        (Some(f), _) => match read_secret_file(&format!("{section}.client_secret_file"), f) {
            Ok(s) => Some(ClientCredential::Secret(s)),
            Err(e) => {
                p.0.push(e.to_string());
                None
            }
        },
        (None, Some(s)) if !s.trim().is_empty() => Some(ClientCredential::Secret(
            SecretString::from(s.trim().to_string()),
        )),
        _ => {
            let env = format!(
                "{ENV_PREFIX}__{}__CLIENT_SECRET",
                section.replace('.', "__").to_uppercase()
            );
            p.push(
                &format!("{section}.client_secret_file"),
                format!("missing; point it at a file holding the client secret (or set certificate_file, or {env})"),
            );
            None
        }
    }
}

fn validate_app(p: &mut Problems, section: &str, raw: &RawApp) -> Option<PartnerApp> {
    for (key, set) in [
        ("kind", raw.kind.is_some()),
        ("federated_token_file", raw.federated_token_file.is_some()),
        ("authority", raw.authority.is_some()),
        ("endpoint", raw.endpoint.is_some()),
    ] {
        if set {
            p.push(&format!("{section}.{key}"), "not a key of this section");
        }
    }
    let none = AzureEnv::new();
    let (tenant_id, client_id) = tenant_and_client(p, section, raw, &none);
    let credential = secret_or_certificate(p, section, raw);
    Some(PartnerApp {
        tenant_id: tenant_id?,
        client_id: client_id?,
        credential: credential?,
    })
}

fn validate_identity(p: &mut Problems, raw: &RawApp, env: &AzureEnv) -> Option<ServiceIdentity> {
    let section = "store.keyvault.identity";
    let key = |k: &str| format!("{section}.{k}");
    let authority = raw
        .authority
        .clone()
        .or_else(|| env.get("AZURE_AUTHORITY_HOST").cloned())
        .and_then(|a| p.https_url(&key("authority"), &a));
    match raw.kind.as_deref().unwrap_or("client_secret") {
        kind @ ("client_secret" | "certificate") => {
            if kind == "certificate" && raw.certificate_file.is_none() {
                p.push(
                    &key("certificate_file"),
                    "missing; a PEM file with the certificate and its RSA private key",
                );
                return None;
            }
            let (tenant_id, client_id) = tenant_and_client(p, section, raw, env);
            let credential = secret_or_certificate(p, section, raw);
            Some(ServiceIdentity::App {
                app: PartnerApp {
                    tenant_id: tenant_id?,
                    client_id: client_id?,
                    credential: credential?,
                },
                authority,
            })
        }
        "workload_identity" => {
            let (tenant_id, client_id) = tenant_and_client(p, section, raw, env);
            let file = raw
                .federated_token_file
                .clone()
                .or_else(|| env.get("AZURE_FEDERATED_TOKEN_FILE").map(PathBuf::from));
            let Some(file) = file else {
                p.push(&key("federated_token_file"), "missing; set it or AZURE_FEDERATED_TOKEN_FILE (the workload identity webhook sets it)");
                return None;
            };
            Some(ServiceIdentity::App {
                app: PartnerApp {
                    tenant_id: tenant_id?,
                    client_id: client_id?,
                    credential: ClientCredential::FederatedTokenFile(file),
                },
                authority,
            })
        }
        "managed_identity" => {
            let client_id = raw
                .client_id
                .clone()
                .or_else(|| env.get("AZURE_CLIENT_ID").cloned());
            let endpoint = match (
                &raw.endpoint,
                env.get("IDENTITY_ENDPOINT"),
                env.get("IDENTITY_HEADER"),
            ) {
                (Some(e), _, _) => ManagedIdentityEndpoint::Imds(url_any(p, &key("endpoint"), e)?),
                (None, Some(e), Some(h)) => ManagedIdentityEndpoint::AppService {
                    endpoint: url_any(p, "IDENTITY_ENDPOINT", e)?,
                    header: SecretString::from(h.clone()),
                },
                _ => {
                    let imds = env
                        .get("AZURE_POD_IDENTITY_AUTHORITY_HOST")
                        .map(|h| {
                            format!("{}/metadata/identity/oauth2/token", h.trim_end_matches('/'))
                        })
                        .unwrap_or_else(|| IMDS_ENDPOINT.to_string());
                    ManagedIdentityEndpoint::Imds(url_any(p, &key("endpoint"), &imds)?)
                }
            };
            Some(ServiceIdentity::ManagedIdentity {
                client_id,
                endpoint,
            })
        }
        other => {
            p.push(
                &key("kind"),
                format!("unknown {other:?}; expected client_secret, certificate, managed_identity or workload_identity"),
            );
            None
        }
    }
}

/// Managed-identity endpoints are plain HTTP on a link-local or loopback address.
fn url_any(p: &mut Problems, key: &str, v: &str) -> Option<Url> {
    match Url::parse(v) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Some(u),
        _ => {
            p.push(key, format!("{v:?} is not an http(s) URL"));
            None
        }
    }
}

fn validate_store(
    p: &mut Problems,
    raw: Option<&RawStore>,
    env: &AzureEnv,
) -> Option<StoreSettings> {
    let Some(raw) = raw else {
        p.push(
            "store",
            "section missing; set kind = \"keyvault\" (with [store.keyvault]) or \"file\"",
        );
        return None;
    };
    match raw.kind.as_deref().unwrap_or("keyvault") {
        "keyvault" => {
            let Some(kv) = &raw.keyvault else {
                p.push(
                    "store.keyvault",
                    "section missing (url, secret_name, [store.keyvault.identity])",
                );
                return None;
            };
            let url = p
                .required("store.keyvault.url", &kv.url)
                .and_then(|u| p.https_url("store.keyvault.url", u));
            let name = p.required("store.keyvault.secret_name", &kv.secret_name);
            if let Some(n) = name {
                // Key Vault's own rule for secret names (SetSecret in the REST spec).
                if n.len() > 127 || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                    p.push(
                        "store.keyvault.secret_name",
                        format!("{n:?} must be 1-127 characters of 0-9, a-z, A-Z and -"),
                    );
                }
            }
            let identity = match &kv.identity {
                Some(id) => validate_identity(p, id, env),
                None => {
                    p.push("store.keyvault.identity", "section missing; it names who reads the vault (kind, tenant_id, client_id, client_secret_file)");
                    None
                }
            };
            Some(StoreSettings::KeyVault {
                url: url?,
                secret_name: name?.to_string(),
                identity: Box::new(identity?),
            })
        }
        "file" => {
            let path = raw.file.as_ref().and_then(|f| f.path.clone());
            match path {
                Some(path) => Some(StoreSettings::File { path }),
                None => {
                    p.push(
                        "store.file.path",
                        "missing; the file that holds the refresh token",
                    );
                    None
                }
            }
        }
        other => {
            p.push(
                "store.kind",
                format!("unknown store {other:?}; expected keyvault or file"),
            );
            None
        }
    }
}

fn valid_cron(p: &mut Problems, key: &str, schedule: &str) {
    let ok = tokio_cron_scheduler::Job::new_async(schedule, |_, _| Box::pin(async {})).is_ok();
    if !ok {
        p.push(
            key,
            format!("{schedule:?} is not a cron expression with seconds (e.g. \"0 */5 * * * *\")"),
        );
    }
}

/// Default discovery schedule: every 15 minutes (also re-reads the refresh token).
pub const DEFAULT_DISCOVERY_SCHEDULE: &str = "0 */15 * * * *";

fn validate_tenants(
    p: &mut Problems,
    raw: &RawTenants,
) -> Option<crate::discovery::DiscoverySettings> {
    use crate::discovery::{Shard, Source};
    let mut sources = Vec::new();
    for s in raw
        .sources
        .clone()
        .unwrap_or_else(|| vec!["partner_center".into()])
    {
        match Source::parse(&s) {
            Some(src) if !sources.contains(&src) => sources.push(src),
            Some(_) => {}
            None => p.push(
                "tenants.sources",
                format!("unknown source {s:?}; expected partner_center, gdap or static"),
            ),
        }
    }
    if sources.is_empty() {
        p.push("tenants.sources", "names no source");
    }
    let static_tenants = raw.static_tenants.clone().unwrap_or_default();
    for t in &static_tenants {
        if !is_guid(t) {
            p.push("tenants.static", format!("{t:?} is not a tenant id GUID"));
        }
    }
    if sources.contains(&Source::Static) && static_tenants.is_empty() {
        p.push(
            "tenants.static",
            "the static source is on but the list is empty",
        );
    }
    let shard = match raw.shard.as_deref() {
        None => None,
        Some("auto") => {
            let host = crate::store::hostname();
            match raw.shard_count {
                Some(n) => match Shard::from_hostname(&host, n) {
                    Some(s) => Some(s),
                    None => {
                        p.push(
                            "tenants.shard",
                            format!("\"auto\" needs a hostname ending in -N below shard_count {n}; this host is {host:?}"),
                        );
                        None
                    }
                },
                None => {
                    p.push(
                        "tenants.shard_count",
                        "missing; \"auto\" sharding needs the replica count",
                    );
                    None
                }
            }
        }
        Some(s) => match Shard::parse(s) {
            Some(s) => Some(s),
            None => {
                p.push(
                    "tenants.shard",
                    format!("{s:?} is not \"i/n\" with 0 <= i < n, or \"auto\""),
                );
                None
            }
        },
    };
    let schedule = raw
        .schedule
        .clone()
        .unwrap_or_else(|| DEFAULT_DISCOVERY_SCHEDULE.to_string());
    valid_cron(p, "tenants.schedule", &schedule);
    Some(crate::discovery::DiscoverySettings {
        sources,
        static_tenants,
        include: raw.include.clone().unwrap_or_default(),
        exclude: raw.exclude.clone().unwrap_or_default(),
        shard,
        schedule,
    })
}

type Collectors = (
    std::collections::BTreeMap<String, CollectorSettings>,
    Vec<crate::collector::resource_graph::CustomQuery>,
);

fn validate_collectors(
    p: &mut Problems,
    raw: &std::collections::BTreeMap<String, RawCollector>,
    defaults: &CollectionSettings,
) -> Collectors {
    let mut out = std::collections::BTreeMap::new();
    for name in raw.keys() {
        if !crate::collector::NAMES.contains(&name.as_str()) {
            p.push(
                &format!("collectors.{name}"),
                format!(
                    "unknown collector; expected one of {}",
                    crate::collector::NAMES.join(", ")
                ),
            );
        }
    }
    let mut queries = Vec::new();
    for name in crate::collector::NAMES {
        let r = raw.get(*name);
        let key = |k: &str| format!("collectors.{name}.{k}");
        let schedule = r
            .and_then(|r| r.schedule.clone())
            .unwrap_or_else(|| defaults.schedule.clone());
        valid_cron(p, &key("schedule"), &schedule);
        let timeout = match r.and_then(|r| r.timeout.as_deref()) {
            Some(t) => parse_duration(p, &key("timeout"), Some(t), "60s")
                .unwrap_or(defaults.tenant_timeout),
            None => defaults.tenant_timeout,
        };
        if let Some(qs) = r.and_then(|r| r.queries.as_ref()) {
            if *name != "resource_graph" {
                p.push(&key("queries"), "only resource_graph takes queries");
            }
            for (i, q) in qs.iter().enumerate() {
                let qk = |k: &str| format!("collectors.{name}.queries[{i}].{k}");
                let qname = p.required(&qk("name"), &q.name).map(str::to_string);
                if let Some(n) = &qname {
                    if n.is_empty() || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                        p.push(&qk("name"), format!("{n:?} must be letters, digits and _ (it becomes tenantwatch_azure_query_{n})"));
                    }
                }
                let query = p.required(&qk("query"), &q.query).map(str::to_string);
                let value_column = p
                    .required(&qk("value_column"), &q.value_column)
                    .map(str::to_string);
                for l in &q.label_columns {
                    if l.is_empty()
                        || l == "tenant_id"
                        || !l.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                        || l.starts_with(|c: char| c.is_ascii_digit())
                    {
                        p.push(
                            &qk("label_columns"),
                            format!("{l:?} is not a usable label name"),
                        );
                    }
                }
                if let (Some(name), Some(query), Some(value_column)) = (qname, query, value_column)
                {
                    queries.push(crate::collector::resource_graph::CustomQuery {
                        help: q
                            .help
                            .clone()
                            .unwrap_or_else(|| format!("Custom Resource Graph query {name}.")),
                        name,
                        query,
                        value_column,
                        label_columns: q.label_columns.clone(),
                    });
                }
            }
        }
        out.insert(
            name.to_string(),
            CollectorSettings {
                enabled: r.and_then(|r| r.enabled).unwrap_or(true),
                schedule,
                timeout,
            },
        );
    }
    (out, queries)
}

fn validate_rotation(p: &mut Problems, raw: &RawRotation) -> Option<RotationSettings> {
    let schedule = raw
        .schedule
        .clone()
        .unwrap_or_else(|| DEFAULT_ROTATION_SCHEDULE.to_string());
    valid_cron(p, "rotation.schedule", &schedule);
    let rotate_after = parse_duration(
        p,
        "rotation.rotate_after",
        raw.rotate_after.as_deref(),
        "7d",
    )?;
    if rotate_after > Duration::from_secs(60 * 24 * 3600) {
        p.push(
            "rotation.rotate_after",
            "must be well under the refresh token's 90-day lifetime (at most 60d)",
        );
    }
    Some(RotationSettings {
        enabled: raw.enabled.unwrap_or(true),
        schedule,
        rotate_after,
    })
}

fn validate_collection(p: &mut Problems, raw: &RawCollection) -> Option<CollectionSettings> {
    let schedule = raw
        .schedule
        .clone()
        .unwrap_or_else(|| DEFAULT_SCHEDULE.to_string());
    valid_cron(p, "collection.schedule", &schedule);
    let concurrency = raw.concurrency.unwrap_or(16);
    if concurrency == 0 || concurrency > 10_000 {
        p.push(
            "collection.concurrency",
            format!("{concurrency} must be between 1 and 10000"),
        );
    }
    let timeout = parse_duration(
        p,
        "collection.tenant_timeout",
        raw.tenant_timeout.as_deref(),
        "60s",
    );
    let request_timeout = match (raw.request_timeout.as_deref(), timeout) {
        // Default: room for a hung request plus a retry inside the tenant's budget.
        (None, Some(t)) => Some(DEFAULT_REQUEST_TIMEOUT.min(t / 2)),
        (None, None) => None,
        (Some(v), t) => {
            let r = parse_duration(p, "collection.request_timeout", Some(v), "20s")?;
            match t {
                Some(t) if r > t => {
                    p.push(
                        "collection.request_timeout",
                        format!("{v} is longer than collection.tenant_timeout; a hung request would fail the collector instead of being retried"),
                    );
                    None
                }
                _ if r.is_zero() => {
                    p.push("collection.request_timeout", "must be above 0");
                    None
                }
                _ => Some(r),
            }
        }
    };
    let mut limits = crate::api::ApiLimits::default();
    let mut bounded = |key: &str, v: Option<usize>, slot: &mut usize, max: usize| {
        if let Some(v) = v {
            if v == 0 || v > max {
                p.push(key, format!("{v} must be between 1 and {max}"));
            } else {
                *slot = v;
            }
        }
    };
    bounded(
        "collection.max_requests",
        raw.max_requests,
        &mut limits.global,
        10_000,
    );
    bounded(
        "collection.max_requests_per_tenant",
        raw.max_requests_per_tenant,
        &mut limits.per_tenant,
        1_000,
    );
    bounded(
        "collection.max_pages",
        raw.max_pages,
        &mut limits.max_pages,
        100_000,
    );
    let mut max_series = 10_000;
    bounded(
        "collection.max_series",
        raw.max_series,
        &mut max_series,
        10_000_000,
    );
    Some(CollectionSettings {
        schedule,
        concurrency,
        tenant_timeout: timeout?,
        request_timeout: request_timeout?,
        limits,
        max_series,
    })
}

fn parse_duration(p: &mut Problems, key: &str, v: Option<&str>, default: &str) -> Option<Duration> {
    let s = v.unwrap_or(default);
    match humantime::parse_duration(s) {
        Ok(d) if !d.is_zero() => Some(d),
        _ => {
            p.push(
                key,
                format!("{s:?} is not a duration like \"30s\" or \"5m\""),
            );
            None
        }
    }
}

fn validate_log(p: &mut Problems, raw: &RawLog) -> Option<LogSettings> {
    let format = match raw.format.as_deref().unwrap_or("text") {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        other => {
            p.push("log.format", format!("{other:?}; expected text or json"));
            return None;
        }
    };
    Some(LogSettings {
        format,
        level: raw.level.clone().unwrap_or_else(|| "info".to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUID_A: &str = "11111111-1111-1111-1111-111111111111";
    const GUID_B: &str = "22222222-2222-2222-2222-222222222222";

    fn write(dir: &Path, body: &str) -> PathBuf {
        std::fs::write(dir.join("secret"), "s3cret\n").unwrap();
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

    #[test]
    fn good_config_loads_with_public_defaults() {
        let s = load(&good(), &[]).unwrap();
        assert_eq!(s.cloud.name, CloudName::Public);
        assert_eq!(s.cloud.login.as_str(), "https://login.microsoftonline.com/");
        assert_eq!(s.server.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(s.collection.concurrency, 16);
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
    fn bad_schedule_and_listen() {
        let body = good()
            + "[collection]\nschedule = \"every minute\"\n[server]\nlisten = \"localhost\"\n";
        let err = load(&body, &[]).unwrap_err().to_string();
        assert!(err.contains("collection.schedule"), "{err}");
        assert!(err.contains("server.listen"), "{err}");
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
