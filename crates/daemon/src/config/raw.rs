//! The config file's shape as serde reads it, before validation: every key
//! optional, unknown keys refused, so validation can name each missing or
//! wrong key itself.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) cloud: RawCloud,
    pub(super) partner: Option<RawApp>,
    pub(super) store: Option<RawStore>,
    pub(super) partners: Option<Vec<RawPartner>>,
    #[serde(default)]
    pub(super) server: RawServer,
    #[serde(default)]
    pub(super) collection: RawCollection,
    #[serde(default)]
    pub(super) rotation: RawRotation,
    #[serde(default)]
    pub(super) tenants: RawTenants,
    #[serde(default)]
    pub(super) collectors: std::collections::BTreeMap<String, RawCollector>,
    #[serde(default)]
    pub(super) log: RawLog,
    #[serde(default)]
    pub(super) secrets: RawSecrets,
    #[serde(default)]
    pub(super) consent: RawConsent,
}

/// One `[[partners]]` entry: the SAM app's keys of `[partner]`, plus the
/// partner's own store, and rotation and tenants when they differ from the
/// top-level sections.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPartner {
    pub(super) name: Option<String>,
    pub(super) tenant_id: Option<String>,
    pub(super) client_id: Option<String>,
    pub(super) client_secret: Option<String>,
    pub(super) client_secret_file: Option<PathBuf>,
    pub(super) certificate_file: Option<PathBuf>,
    pub(super) store: Option<RawStore>,
    pub(super) rotation: Option<RawRotation>,
    pub(super) tenants: Option<RawTenants>,
}

impl RawPartner {
    /// Its SAM app's keys, as a `[partner]` section holds them.
    pub(super) fn app(&self) -> RawApp {
        RawApp {
            tenant_id: self.tenant_id.clone(),
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            client_secret_file: self.client_secret_file.clone(),
            certificate_file: self.certificate_file.clone(),
            ..RawApp::default()
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConsent {
    pub(super) display_name: Option<String>,
    pub(super) graph_scopes: Option<Vec<String>>,
    pub(super) arm_scopes: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSecrets {
    pub(super) allow_readable_by_others: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTenants {
    pub(super) sources: Option<Vec<String>>,
    #[serde(rename = "static")]
    pub(super) static_tenants: Option<Vec<String>>,
    pub(super) include: Option<Vec<String>>,
    pub(super) exclude: Option<Vec<String>>,
    pub(super) shard: Option<String>,
    pub(super) shard_count: Option<u32>,
    pub(super) schedule: Option<String>,
    pub(super) gdap_required_roles: Option<Vec<String>>,
    pub(super) groups: Option<Vec<RawGroup>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGroup {
    pub(super) name: Option<String>,
    pub(super) include: Option<Vec<String>>,
    pub(super) exclude: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCollector {
    pub(super) enabled: Option<bool>,
    pub(super) schedule: Option<String>,
    pub(super) timeout: Option<String>,
    pub(super) queries: Option<Vec<RawQuery>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawQuery {
    pub(super) name: Option<String>,
    pub(super) query: Option<String>,
    pub(super) value_column: Option<String>,
    #[serde(default)]
    pub(super) label_columns: Vec<String>,
    pub(super) help: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRotation {
    pub(super) enabled: Option<bool>,
    pub(super) schedule: Option<String>,
    pub(super) rotate_after: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCloud {
    pub(super) name: Option<String>,
    pub(super) login: Option<String>,
    pub(super) graph: Option<String>,
    pub(super) arm: Option<String>,
    pub(super) partner_center: Option<String>,
    pub(super) ca_file: Option<PathBuf>,
    pub(super) client_capabilities: Option<Vec<String>>,
    #[serde(default)]
    pub(super) audiences: RawAudiences,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAudiences {
    pub(super) graph: Option<String>,
    pub(super) arm: Option<String>,
    pub(super) partner_center: Option<String>,
    pub(super) keyvault: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApp {
    pub(super) kind: Option<String>,
    pub(super) tenant_id: Option<String>,
    pub(super) client_id: Option<String>,
    pub(super) client_secret: Option<String>,
    pub(super) client_secret_file: Option<PathBuf>,
    pub(super) certificate_file: Option<PathBuf>,
    pub(super) federated_token_file: Option<PathBuf>,
    pub(super) authority: Option<String>,
    pub(super) endpoint: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStore {
    pub(super) kind: Option<String>,
    pub(super) keyvault: Option<RawKeyVault>,
    pub(super) file: Option<RawFileStore>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKeyVault {
    pub(super) url: Option<String>,
    pub(super) secret_name: Option<String>,
    pub(super) identity: Option<RawApp>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFileStore {
    pub(super) path: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub(super) listen: Option<String>,
    pub(super) web_config_file: Option<PathBuf>,
    pub(super) max_requests: Option<usize>,
    pub(super) header_read_timeout: Option<String>,
    pub(super) idle_timeout: Option<String>,
    pub(super) max_connections: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCollection {
    pub(super) schedule: Option<String>,
    pub(super) concurrency: Option<usize>,
    pub(super) tenant_timeout: Option<String>,
    pub(super) request_timeout: Option<String>,
    pub(super) max_requests: Option<usize>,
    pub(super) max_requests_per_tenant: Option<usize>,
    pub(super) max_pages: Option<usize>,
    pub(super) max_series: Option<usize>,
    pub(super) pacing: Option<bool>,
    pub(super) api_budget_share: Option<f64>,
    pub(super) graph_app_limit: Option<u32>,
    pub(super) partner_center_limit: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    pub(super) format: Option<String>,
    pub(super) level: Option<String>,
}
