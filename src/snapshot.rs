//! The immutable result of a collection cycle. Collectors write a new one; scrapes
//! and the status page only read the latest, so a scrape never waits on Microsoft.

use std::collections::BTreeMap;

use crate::entra::ErrorClass;

/// Everything the last cycle learnt.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// One entry per tenant in scope, ordered by tenant id.
    pub tenants: Vec<TenantStatus>,
    /// When the last full cycle finished (unix seconds); `None` before the first.
    pub cycle_finished: Option<f64>,
    /// How long the last full cycle took.
    pub cycle_seconds: Option<f64>,
    /// Tenant discovery outcome of the last cycle.
    pub discovery: DiscoveryStatus,
}

/// Outcome of listing tenants.
#[derive(Debug, Clone, Default)]
pub struct DiscoveryStatus {
    /// True when the last listing succeeded.
    pub ok: bool,
    /// Unix seconds of the last successful listing.
    pub last_success: Option<f64>,
}

/// One customer tenant as seen by the last cycle.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantStatus {
    /// Directory (tenant) id.
    pub tenant_id: String,
    /// Display name (from Graph, else from Partner Center).
    pub name: String,
    /// Default domain.
    pub domain: String,
    /// True when a token was minted and every collector succeeded.
    pub up: bool,
    /// Why no token could be minted, if so.
    pub token_error: Option<ErrorClass>,
    /// Per collector: unix seconds of its last success (kept across failed cycles).
    pub collectors: BTreeMap<&'static str, CollectorStatus>,
}

/// A collector's state for one tenant.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CollectorStatus {
    /// Whether the last run succeeded.
    pub ok: bool,
    /// Unix seconds of the last success, if ever.
    pub last_success: Option<f64>,
}

impl Snapshot {
    /// Finds a tenant's previous state, to carry last-success times forward.
    pub fn tenant(&self, tenant_id: &str) -> Option<&TenantStatus> {
        self.tenants
            .binary_search_by(|t| t.tenant_id.as_str().cmp(tenant_id))
            .ok()
            .map(|i| &self.tenants[i])
    }
}

/// Current wall-clock time as unix seconds.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
