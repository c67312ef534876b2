//! The validated settings of each config section, as the stages receive them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use crate::config::cloud::Cloud;
use crate::config::credential::ClientCredential;
use crate::config::web::{WebConfig, WebConfigError};
use crate::model::Source;
use crate::support::secret::SecretString;

/// The validated configuration the daemon runs with, as seen by one
/// partner: `partner_name`, `partner`, `store`, `rotation` and `tenants` are
/// that partner's; `other_partners` holds the rest of a `[[partners]]`
/// config, which [`Settings::views`] turns into settings of their own.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Endpoints and audiences.
    pub cloud: Cloud,
    /// Extra CA bundle (PEM) trusted in addition to the built-in roots.
    pub ca_file: Option<PathBuf>,
    /// This partner's name: its `[[partners]]` `name`, or [`DEFAULT_PARTNER`].
    pub partner_name: String,
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
    pub tenants: DiscoverySettings,
    /// Per-collector switches, schedules and timeouts, by collector name.
    pub collectors: std::collections::BTreeMap<String, CollectorSettings>,
    /// Custom Resource Graph queries.
    pub custom_queries: Vec<CustomQuery>,
    /// Log format and filter.
    pub log: LogSettings,
    /// What `tenantwatch consent customers` grants the SAM app in a customer.
    pub consent: ConsentSettings,
    /// The other `[[partners]]` entries, in config order; empty for one partner.
    pub other_partners: Vec<PartnerProfile>,
}

pub use crate::model::DEFAULT_PARTNER;

/// What one `[[partners]]` entry sets: everything that differs between partners.
#[derive(Debug, Clone)]
pub struct PartnerProfile {
    /// Its `name`, the `partner` label value.
    pub name: String,
    /// Its SAM application.
    pub app: PartnerApp,
    /// Where its refresh token lives.
    pub store: StoreSettings,
    /// When its refresh token is rotated.
    pub rotation: RotationSettings,
    /// Which of its customers to watch.
    pub tenants: DiscoverySettings,
}

/// The SAM app's grants that `tenantwatch consent customers` pushes into a
/// customer through Partner Center's application consents
/// (<https://learn.microsoft.com/partner-center/developer/control-panel-vendor-apis>).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentSettings {
    /// The app's display name sent with the consent.
    pub display_name: String,
    /// Delegated Microsoft Graph permissions.
    pub graph_scopes: Vec<String>,
    /// Delegated Azure Resource Manager permissions.
    pub arm_scopes: Vec<String>,
}

/// The Graph permissions the collectors read with (README, "What each collector needs").
pub const DEFAULT_CONSENT_GRAPH_SCOPES: [&str; 5] = [
    "Directory.Read.All",
    "Organization.Read.All",
    "ServiceHealth.Read.All",
    "SecurityEvents.Read.All",
    "Application.Read.All",
];

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

impl StoreSettings {
    /// Where the token is, for telling two stores apart: the secret's URL
    /// (Key Vault names are case-insensitive) or the file's path.
    pub fn location(&self) -> String {
        match self {
            StoreSettings::KeyVault {
                url, secret_name, ..
            } => format!(
                "{}/secrets/{}",
                url.as_str().trim_end_matches('/'),
                secret_name.to_ascii_lowercase()
            ),
            StoreSettings::File { path } => path.display().to_string(),
        }
    }
}

/// HTTP server settings.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Address to bind.
    pub listen: SocketAddr,
    /// The web config file (TLS, basic auth) and what it held at start.
    pub web: Option<(PathBuf, WebConfig)>,
    /// `/metrics` requests served at once; more get 503 (0: no limit).
    pub max_requests: usize,
    /// Time a client has from connecting (or from the first byte of its next
    /// keep-alive request) to send complete request headers.
    pub header_read_timeout: Duration,
    /// Time a keep-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Connections open at once, before the open-file limit lowers it.
    pub max_connections: usize,
}

/// Default `server.header_read_timeout`: a scraper sends its headers in one
/// write, so only a stalled or hostile client needs more than a moment.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `server.idle_timeout`, as Prometheus' own `--web.read-timeout`;
/// longer than any usual scrape interval so a scraper's connection is reused.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Default `server.max_connections`, as Prometheus' `--web.max-connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// Upper bound of `server.max_connections`.
pub const MAX_MAX_CONNECTIONS: usize = 100_000;

/// node_exporter's `--web.max-requests` default: every scrape in flight holds
/// its response, so a stalled or flooding scraper must not grow memory unbounded.
pub const DEFAULT_MAX_SCRAPES: usize = 40;

/// Loads the web config file for `server.web_config_file` or `--web.config.file`.
pub fn load_web_config(path: &Path) -> Result<(PathBuf, WebConfig), WebConfigError> {
    WebConfig::load(path).map(|c| (path.to_path_buf(), c))
}

/// How and how often tenants are collected.
#[derive(Debug, Clone, PartialEq)]
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
    pub limits: ApiLimits,
    /// Samples one collector may export for one tenant; more are dropped and counted.
    pub max_series: usize,
}

/// One collector's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectorSettings {
    /// Whether it runs.
    pub enabled: bool,
    /// Cron schedule (default `collection.schedule`).
    pub schedule: String,
    /// Time allowed per tenant (default `collection.tenant_timeout`).
    pub timeout: Duration,
}

/// When the refresh token is rotated.
#[derive(Debug, Clone, PartialEq)]
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
#[derive(Debug, Clone, PartialEq)]
pub struct LogSettings {
    /// Output format.
    pub format: LogFormat,
    /// `RUST_LOG`-style filter, e.g. `info` or `tenantwatch_daemon=debug,info`
    /// (checked by [`crate::config::check_log_filter`]).
    pub level: String,
}

/// Limits and retry policy for API calls.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiLimits {
    /// Requests in flight across every tenant.
    pub global: usize,
    /// Requests in flight for one tenant.
    pub per_tenant: usize,
    /// Attempts per request for 429/5xx/transport failures.
    pub attempts: u32,
    /// Longest single wait for `Retry-After`; a longer one fails the request instead.
    pub max_retry_wait: Duration,
    /// Pages followed before giving up with [`ApiError::TooManyPages`].
    pub max_pages: usize,
    /// How requests are spaced to stay within Microsoft's limits.
    pub pacing: Pacing,
}

/// Graph's published per-app limit across all tenants: requests per
/// [`GRAPH_APP_PERIOD`] (<https://learn.microsoft.com/graph/throttling-limits>).
pub const GRAPH_APP_LIMIT: u32 = 130_000;

/// The period of [`GRAPH_APP_LIMIT`].
pub const GRAPH_APP_PERIOD: Duration = Duration::from_secs(10);

/// Partner Center's published limit for its customer, order and
/// subscription resources: requests per [`PARTNER_CENTER_PERIOD`] per
/// partner tenant (learn.microsoft.com/partner-center/developer/customer-resources).
pub const PARTNER_CENTER_LIMIT: u32 = 500;

/// The period of [`PARTNER_CENTER_LIMIT`].
pub const PARTNER_CENTER_PERIOD: Duration = Duration::from_secs(60);

/// How the daemon spends Microsoft's limits (`outbound::pacing`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pacing {
    /// `collection.pacing`: false sends every request at once and only
    /// retries 429s (the behaviour before pacing; for comparisons).
    pub enabled: bool,
    /// `collection.api_budget_share` (0 < x ≤ 1): the share of the partner
    /// app's Graph limit across tenants the daemon allows itself; the rest is
    /// left to the partner's other tools, which share the app's budget.
    pub budget_share: f64,
    /// `collection.graph_app_limit`: Graph requests per 10 s the partner's
    /// app may make across all tenants (Microsoft's published [`GRAPH_APP_LIMIT`]).
    pub graph_app_limit: u32,
    /// `collection.partner_center_limit`: Partner Center requests per minute
    /// the partner may make (Microsoft's published [`PARTNER_CENTER_LIMIT`]).
    pub partner_center_limit: u32,
}

impl Default for Pacing {
    fn default() -> Self {
        Self {
            enabled: true,
            budget_share: 0.5,
            graph_app_limit: GRAPH_APP_LIMIT,
            partner_center_limit: PARTNER_CENTER_LIMIT,
        }
    }
}

impl Default for ApiLimits {
    fn default() -> Self {
        Self {
            global: 64,
            per_tenant: 4,
            attempts: 4,
            max_retry_wait: Duration::from_secs(60),
            max_pages: 200,
            pacing: Pacing::default(),
        }
    }
}

/// A Resource Graph query from config turned into a gauge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomQuery {
    /// Metric suffix: `tenantwatch_azure_query_{name}`.
    pub name: String,
    /// KQL.
    pub query: String,
    /// Column holding the value.
    pub value_column: String,
    /// Columns that become labels.
    pub label_columns: Vec<String>,
    /// HELP text.
    pub help: String,
}

/// Which tenants to watch, from `[tenants]`.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscoverySettings {
    /// Sources in use.
    pub sources: Vec<Source>,
    /// Static tenant ids.
    pub static_tenants: Vec<String>,
    /// Keep only tenants whose id or domain matches one of these (empty: all).
    pub include: Vec<String>,
    /// Drop tenants whose id or domain matches one of these.
    pub exclude: Vec<String>,
    /// This replica's shard, if sharded.
    pub shard: Option<Shard>,
    /// Cron schedule of discovery (and of re-reading the refresh token).
    pub schedule: String,
    /// Entra role definition ids (lower-case) every tenant must grant the
    /// partner through an active GDAP relationship and access assignment.
    pub gdap_required_roles: Vec<String>,
    /// `[[tenants.groups]]` in config order: a tenant belongs to the first
    /// that matches, else to [`NO_GROUP`].
    pub groups: Vec<TenantGroup>,
}

/// The `group` of a tenant no `[[tenants.groups]]` entry matches.
pub const NO_GROUP: &str = "none";

/// One `[[tenants.groups]]` entry: a name for routing and silencing alerts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantGroup {
    /// The `group` label.
    pub name: String,
    /// Globs on tenant id or default domain; a tenant must match one.
    pub include: Vec<String>,
    /// Globs that take a tenant out again.
    pub exclude: Vec<String>,
}

/// `i/n`: this process takes the tenants whose hash mod n is i.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This process's index, from 0.
    pub index: u32,
    /// How many processes share the tenants.
    pub count: u32,
}

impl Shard {
    /// Parses `i/n`.
    pub fn parse(s: &str) -> Option<Shard> {
        let (i, n) = s.split_once('/')?;
        let (index, count) = (i.trim().parse().ok()?, n.trim().parse().ok()?);
        (count > 0 && index < count).then_some(Shard { index, count })
    }

    /// From a StatefulSet pod name (`tenantwatch-2` → index 2) and the replica count.
    pub fn from_hostname(hostname: &str, count: u32) -> Option<Shard> {
        let index: u32 = hostname.rsplit('-').next()?.parse().ok()?;
        (count > 0 && index < count).then_some(Shard { index, count })
    }
}

/// Names of the built-in collectors, the `[collectors.NAME]` sections.
pub const COLLECTORS: &[&str] = &[
    "directory",
    "arm_subscriptions",
    "resource_graph",
    "licenses",
    "m365_subscriptions",
    "partner_subscriptions",
    "service_health",
    "secure_score",
    "app_credentials",
    "cost",
];

/// Collectors that stay off unless their section says `enabled = true`:
/// `cost` needs a role most partners have not granted, and spends a quota
/// (Cost Management's QPUs) the partner's other tools share.
pub const OFF_BY_DEFAULT: &[&str] = &["cost"];

/// The schedule a collector runs on when its section names none, where it
/// is not `collection.schedule`. Cost Management refreshes its data about
/// every four hours, so `cost` asks hourly, at minute 7 (off the top of the
/// hour, when everyone else's jobs run). `partner_subscriptions` makes one
/// Partner Center request per customer against a limit of 500 a minute for
/// the whole partner (half of it ours by default): at 5,000 customers a run
/// takes 20 minutes, so every five minutes would never finish and would
/// leave nothing to the partner's other tools; commitment end dates change
/// at renewals, so hourly, at minute 37, is plenty.
pub fn default_schedule(collector: &str) -> Option<&'static str> {
    match collector {
        "cost" => Some("0 7 * * * *"),
        "partner_subscriptions" => Some("0 37 * * * *"),
        _ => None,
    }
}
