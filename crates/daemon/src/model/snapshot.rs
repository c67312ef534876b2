//! The immutable result of collection. Jobs publish a new one after every run;
//! scrapes and the status page only read the latest, so a scrape never waits on
//! Microsoft.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::model::{ErrorClass, GdapRelationship, RequiredRole, Signal, Source};

/// The partner name of a config with a single `[partner]` section.
pub const DEFAULT_PARTNER: &str = "default";

/// A partner's name: the `partner` label of everything about it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartnerName(pub Arc<str>);

/// The partner of a single-partner config.
impl Default for PartnerName {
    fn default() -> Self {
        Self(Arc::from(DEFAULT_PARTNER))
    }
}

impl std::ops::Deref for PartnerName {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for PartnerName {
    fn from(s: &str) -> Self {
        Self(Arc::from(s))
    }
}

/// Everything known after the latest run of any job, for one partner.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The partner whose tenants these are.
    pub partner: PartnerName,
    /// Build order: an older snapshot never replaces a newer one.
    pub generation: u64,
    /// Tenants with at least one collector result, ordered by tenant id.
    pub tenants: Vec<TenantStatus>,
    /// Discovery outcome.
    pub discovery: DiscoveryStatus,
    /// Tenants in scope after discovery.
    pub discovered: usize,
    /// Which sources listed each tenant.
    pub sources: std::sync::Arc<BTreeMap<String, BTreeSet<Source>>>,
    /// GDAP relationships of tenants in scope.
    pub gdap: std::sync::Arc<Vec<GdapRelationship>>,
    /// The `[[tenants.groups]]` group of each tenant in scope, by id.
    pub groups: std::sync::Arc<BTreeMap<String, String>>,
    /// Each tenant in scope × `tenants.gdap_required_roles`, where known.
    pub gdap_required_roles: std::sync::Arc<Vec<RequiredRole>>,
    /// Partner Center customers without an active GDAP relationship.
    pub customers_without_gdap: Option<usize>,
    /// Active GDAP relationships without a Partner Center customer.
    pub gdap_without_customer: Option<usize>,
    /// Last run of each collector.
    pub runs: BTreeMap<String, CollectorRun>,
    /// What the partner-scope collectors saw (app credential expiry).
    pub partner_signals: Vec<Signal>,
    /// True once discovery and every enabled collector have run once.
    pub ready: bool,
    /// Whether a refresh token that could be used was known at build time.
    pub usable_token: bool,
}

/// Outcome of listing tenants.
#[derive(Debug, Clone, Default)]
pub struct DiscoveryStatus {
    /// True when every source worked at the last run.
    pub ok: bool,
    /// True once discovery has run.
    pub done: bool,
    /// Unix seconds of the last fully successful run.
    pub last_success: Option<f64>,
    /// Each source that failed at the last run, with its error class.
    pub errors: Vec<(Source, ErrorClass)>,
}

/// When a collector last ran over all its tenants.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CollectorRun {
    /// Unix seconds it finished.
    pub finished: f64,
    /// Wall time of the run.
    pub seconds: f64,
}

/// One customer tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantStatus {
    /// Directory (tenant) id.
    pub tenant_id: Arc<str>,
    /// Display name (from Graph, else from discovery).
    pub name: Arc<str>,
    /// Default domain.
    pub domain: Arc<str>,
    /// True when every collector's last run for it succeeded.
    pub up: bool,
    /// Why no token could be minted, if so.
    pub token_error: Option<ErrorClass>,
    /// Per collector: outcome of its last run.
    /// A list, not a map: thousands of tenants each with a few entries.
    pub collectors: Vec<(&'static str, CollectorStatus)>,
    /// What its collectors saw that may need a person, from each one's last
    /// successful run. Usually empty, which costs no allocation.
    pub signals: SignalLists,
}

/// A tenant's signals: each collector's list as the engine keeps it, shared
/// rather than copied into every snapshot. Two snapshots are alive while one
/// is built (the published one is still served), and deep copies of every
/// tenant's signals were 1.8 MB of the heap at 5,000 tenants.
#[derive(Debug, Clone, Default)]
pub struct SignalLists(Vec<Arc<Vec<Signal>>>);

/// Equal when the signals are, however they are split into lists.
impl PartialEq for SignalLists {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl SignalLists {
    /// Adds one collector's list, shared.
    pub fn push_list(&mut self, list: Arc<Vec<Signal>>) {
        if !list.is_empty() {
            self.0.push(list);
        }
    }

    /// Adds one signal (tests, and lists made outside the engine).
    pub fn push(&mut self, signal: Signal) {
        match self.0.last_mut() {
            Some(last) => Arc::make_mut(last).push(signal),
            None => self.0.push(Arc::new(vec![signal])),
        }
    }

    /// Every signal, list by list.
    pub fn iter(&self) -> impl Iterator<Item = &Signal> {
        self.0.iter().flat_map(|l| l.iter())
    }

    /// True when there is none.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|l| l.is_empty())
    }
}

impl From<Vec<Signal>> for SignalLists {
    fn from(list: Vec<Signal>) -> Self {
        let mut lists = Self::default();
        lists.push_list(Arc::new(list));
        lists
    }
}

impl<'a> IntoIterator for &'a SignalLists {
    type Item = &'a Signal;
    type IntoIter = std::iter::FlatMap<
        std::slice::Iter<'a, Arc<Vec<Signal>>>,
        std::slice::Iter<'a, Signal>,
        fn(&'a Arc<Vec<Signal>>) -> std::slice::Iter<'a, Signal>,
    >;

    fn into_iter(self) -> Self::IntoIter {
        fn each(l: &Arc<Vec<Signal>>) -> std::slice::Iter<'_, Signal> {
            l.iter()
        }
        self.0
            .iter()
            .flat_map(each as fn(&'a Arc<Vec<Signal>>) -> _)
    }
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
    /// Finds a tenant.
    pub fn tenant(&self, tenant_id: &str) -> Option<&TenantStatus> {
        self.tenants
            .binary_search_by(|t| (*t.tenant_id).cmp(tenant_id))
            .ok()
            .map(|i| &self.tenants[i])
    }
}
