//! What the engine keeps between runs: each tenant's latest result per
//! collector (its kept samples, name and domain, token error), the encoded
//! families of each collector's results, and how a [`Snapshot`] is built from
//! them for publishing.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::collect::collector::{Collector, Scope};
use crate::collect::discovery::Discovered;
use crate::config::CollectorSettings;
use crate::exposition::series::SeriesSet;
use crate::exposition::Chunk;
use crate::model::{
    CollectorRun, CollectorStatus, DiscoveryStatus, ErrorClass, PartnerName, Signal, Snapshot,
    TenantStatus,
};

/// One collector's latest outcome for one tenant.
///
/// Every tenant has a row of these, a slot per collector (70,000 at 10,000
/// tenants), so the fields are kept narrow: 72 bytes instead of 88.
#[derive(Debug, Clone)]
pub(super) struct TenantResult {
    pub(super) ok: bool,
    pub(super) last_success: Option<f64>,
    pub(super) token_error: Option<ErrorClass>,
    /// From the last successful run: a failed run keeps showing the last known values.
    pub(super) series: SeriesSet,
    /// Name and domain, from the collectors that read them (the last successful run).
    pub(super) about: Option<Arc<About>>,
    /// What may need a person, from the last successful run, text scrubbed;
    /// `None` when nothing (most tenants), so it costs no allocation. A thin
    /// pointer: the rare list pays one more indirection, every slot 8 bytes less.
    pub(super) signals: Option<Signals>,
    /// The run that produced it (run numbers wrap; only equality is asked).
    pub(super) run: u32,
}

/// A run's signals for one tenant, shared between its results.
pub(super) type Signals = Arc<Vec<Signal>>;

/// A tenant's name and domain as a collector read them.
#[derive(Debug)]
pub(super) struct About {
    pub(super) name: Option<Arc<str>>,
    pub(super) domain: Option<Arc<str>>,
}

/// One collector's kept samples, by tenant.
pub(super) type TenantSets = Vec<(Arc<str>, SeriesSet)>;

/// One tenant's results, a slot per collector.
pub(super) type Row = Box<[Option<TenantResult>]>;

/// A collector's families as encoded for one version of its results.
pub(super) type Encoded = (u64, Arc<Vec<Arc<Chunk>>>);

#[derive(Default)]
pub(super) struct State {
    /// Shared with collector runs, which walk it without copying every tenant.
    pub(super) discovered: Option<Arc<Discovered>>,
    pub(super) discovery: DiscoveryStatus,
    /// Per tenant, each collector's latest outcome (indexed like
    /// `EngineSettings::collectors`, a slot per built-in collector): one entry and one row per tenant rather than one
    /// per tenant and collector.
    pub(super) results: BTreeMap<Arc<str>, Row>,
    /// Bumped whenever a collector's results change, so its families are
    /// re-encoded only then rather than at every publish.
    pub(super) versions: BTreeMap<&'static str, u64>,
    pub(super) encoded: BTreeMap<&'static str, Encoded>,
    pub(super) runs: BTreeMap<&'static str, CollectorRun>,
    /// Snapshots built so far; a snapshot carries its number so an older one
    /// can never replace a newer one.
    pub(super) generation: u64,
}

/// What one collector run has done so far.
pub(super) struct RunTally {
    /// Tags this run's results (a set of tenant ids would cost a copy of each).
    pub(super) id: u32,
    pub(super) done: usize,
    pub(super) ok: usize,
}

/// A snapshot ready to publish, and the collectors whose families need encoding.
pub(super) struct Pending {
    pub(super) snapshot: Snapshot,
    pub(super) cached: Vec<Arc<Chunk>>,
    pub(super) stale: Vec<(&'static str, u64, TenantSets)>,
}

impl State {
    /// Builds a snapshot from the current results, and lists the collectors
    /// whose families changed since they were last encoded. It is ready only
    /// once discovery and every enabled collector ran and a usable refresh
    /// token is known (`has_token`): without one, no tenant can have been
    /// collected. Disabled collectors (each keeps its slot) are left out.
    pub(super) fn snapshot(
        &mut self,
        collectors: &[(Arc<dyn Collector>, CollectorSettings)],
        has_token: bool,
        partner_tenant: &str,
        partner: PartnerName,
    ) -> Option<Pending> {
        let st = self;
        st.generation += 1;
        let generation = st.generation;
        let Some(found) = &st.discovered else {
            return None;
        };
        // Collectors about customers, and whether their outcome counts
        // towards `up`: one asking Partner Center with the partner's token
        // says nothing about the tenant's own access, but its freshness
        // is the tenant's all the same.
        let customer_collectors: Vec<(usize, &'static str, bool)> = collectors
            .iter()
            .enumerate()
            .filter(|(_, (c, cs))| {
                cs.enabled && matches!(c.scope(), Scope::Customers | Scope::PartnerCenterCustomers)
            })
            .map(|(i, (c, _))| (i, c.name(), c.scope() == Scope::Customers))
            .collect();
        let mut tenants = Vec::with_capacity(found.tenants.len());
        for t in &found.tenants {
            let row = st.results.get(&*t.tenant_id);
            let mut status = TenantStatus {
                tenant_id: t.tenant_id.clone(),
                name: if t.name.is_empty() {
                    t.tenant_id.clone()
                } else {
                    t.name.clone()
                },
                domain: t.domain.clone(),
                up: true,
                token_error: None,
                collectors: Vec::with_capacity(customer_collectors.len()),
                signals: Default::default(),
            };
            let mut any = false;
            for (idx, name, counts) in &customer_collectors {
                let Some(r) = row.and_then(|row| row.get(*idx)?.as_ref()) else {
                    continue;
                };
                if *counts {
                    any = true;
                    status.up &= r.ok;
                    if status.token_error.is_none() {
                        status.token_error = r.token_error;
                    }
                }
                let about = r.about.as_deref();
                if let Some(n) = about
                    .and_then(|a| a.name.as_ref())
                    .filter(|n| !n.is_empty())
                {
                    status.name = n.clone();
                }
                if let Some(d) = about
                    .and_then(|a| a.domain.as_ref())
                    .filter(|d| !d.is_empty())
                {
                    status.domain = d.clone();
                }
                if let Some(s) = &r.signals {
                    status.signals.push_list(s.clone());
                }
                status.collectors.push((
                    name,
                    CollectorStatus {
                        ok: r.ok,
                        last_success: r.last_success,
                    },
                ));
            }
            if any {
                tenants.push(status);
            }
        }
        let partner_row = st.results.get(partner_tenant);
        let partner_signals = collectors
            .iter()
            .enumerate()
            .filter(|(_, (c, cs))| cs.enabled && c.scope() == Scope::Partner)
            .filter_map(|(i, _)| partner_row?.get(i)?.as_ref()?.signals.clone())
            .flat_map(|s| s.iter().cloned().collect::<Vec<_>>())
            .collect();
        let (mut cached, mut stale) = (Vec::new(), Vec::new());
        for (idx, (c, _)) in collectors
            .iter()
            .enumerate()
            .filter(|(_, (_, cs))| cs.enabled)
        {
            let name = c.name();
            let version = st.versions.get(name).copied().unwrap_or_default();
            match st.encoded.get(name) {
                Some((v, chunks)) if *v == version => cached.extend(chunks.iter().cloned()),
                _ => {
                    // Sized first: collected from a filter, the list grew by
                    // doubling, up to twice its size plus a copy while it
                    // moved (1.9 MB at 10,000 tenants for 0.5 MB of entries).
                    fn kept(row: &Row, idx: usize) -> Option<&TenantResult> {
                        row.get(idx)?.as_ref()
                    }
                    let mut sets = Vec::with_capacity(
                        st.results
                            .values()
                            .filter(|row| kept(row, idx).is_some())
                            .count(),
                    );
                    sets.extend(
                        st.results.iter().filter_map(|(t, row)| {
                            Some((t.clone(), kept(row, idx)?.series.clone()))
                        }),
                    );
                    stale.push((name, version, sets));
                }
            }
        }
        let ready = has_token
            && st.discovery.done
            && collectors
                .iter()
                .filter(|(_, cs)| cs.enabled)
                .all(|(c, _)| st.runs.contains_key(c.name()));
        let snapshot = Snapshot {
            partner,
            generation,
            tenants,
            discovery: st.discovery.clone(),
            discovered: found.tenants.len(),
            sources: found.sources.clone(),
            gdap: found.gdap.clone(),
            gdap_required_roles: found.gdap_required_roles.clone(),
            groups: found.groups.clone(),
            customers_without_gdap: found.customers_without_gdap,
            gdap_without_customer: found.gdap_without_customer,
            runs: st.runs.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            partner_signals,
            ready,
            usable_token: has_token,
        };
        Some(Pending {
            snapshot,
            cached,
            stale,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every tenant keeps a slot per collector, empty or not: 16 bytes a
    /// slot is 1.1 MB at 10,000 tenants.
    #[test]
    fn a_result_slot_stays_narrow() {
        assert!(
            std::mem::size_of::<Option<TenantResult>>() <= 72,
            "{}",
            std::mem::size_of::<Option<TenantResult>>()
        );
    }
}
