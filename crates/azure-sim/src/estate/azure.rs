//! A tenant's Azure estate as Resource Graph sees it: individual resources
//! (the `resources` table), their Resource Health availability
//! (`healthresources`) and Advisor recommendations (`advisorresources`),
//! with the aggregations the Resource Graph queries return.

use std::collections::BTreeMap;

use crate::world::{stream, Tenant};

/// Resource types (lower-case, as Resource Graph returns `type`), whether
/// Resource Health reports on them, and a name prefix (CAF abbreviations).
const TYPES: &[(&str, bool, &str)] = &[
    ("microsoft.compute/virtualmachines", true, "vm"),
    ("microsoft.compute/disks", false, "disk"),
    ("microsoft.network/networkinterfaces", false, "nic"),
    ("microsoft.network/virtualnetworks", false, "vnet"),
    ("microsoft.network/publicipaddresses", false, "pip"),
    ("microsoft.network/networksecuritygroups", false, "nsg"),
    ("microsoft.storage/storageaccounts", true, "st"),
    ("microsoft.sql/servers/databases", true, "sqldb"),
    ("microsoft.web/sites", true, "app"),
    ("microsoft.keyvault/vaults", true, "kv"),
    ("microsoft.containerservice/managedclusters", true, "aks"),
    ("microsoft.insights/components", false, "appi"),
];

const LOCATIONS: &[&str] = &[
    "westeurope",
    "northeurope",
    "uksouth",
    "eastus",
    "germanywestcentral",
];

/// Resource Graph returns `resourceGroup` lower-case.
const RESOURCE_GROUPS: &[&str] = &["rg-prod", "rg-shared", "rg-dev", "rg-network"];

/// Advisor `properties.category` values.
pub(crate) const CATEGORIES: &[&str] = &[
    "Cost",
    "Security",
    "HighAvailability",
    "Performance",
    "OperationalExcellence",
];

/// Advisor `properties.impact` values.
pub(crate) const IMPACTS: &[&str] = &["High", "Medium", "Low"];

/// One resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resource {
    pub subscription_id: String,
    pub resource_group: &'static str,
    /// Lower-case resource type.
    pub kind: &'static str,
    pub location: &'static str,
    pub name: String,
    /// Resource Health `availabilityState` (Available, Degraded,
    /// Unavailable, Unknown) for types Resource Health covers.
    pub health: Option<&'static str>,
}

/// One open Advisor recommendation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Recommendation {
    pub subscription_id: String,
    pub category: &'static str,
    pub impact: &'static str,
}

/// A tenant's Azure resources and recommendations.
#[derive(Debug, Clone, Default)]
pub(crate) struct Azure {
    pub resources: Vec<Resource>,
    pub recommendations: Vec<Recommendation>,
}

/// `(subscriptionId, type, location) → count`, sorted.
pub(crate) type ResourceCounts = Vec<((String, &'static str, &'static str), u64)>;
/// `(subscriptionId, type, location, state) → count`, sorted.
pub(crate) type HealthCounts = Vec<((String, &'static str, &'static str, &'static str), u64)>;
/// `(category, impact) → count`, sorted.
pub(crate) type AdvisorCounts = Vec<((&'static str, &'static str), u64)>;

impl Azure {
    /// The estate of `t`: a handful of resource types per subscription, a
    /// few of each, spread over resource groups; none without subscriptions.
    pub fn generate(seed: u64, t: &Tenant) -> Self {
        let mut out = Azure::default();
        for (k, sub) in t.subscriptions.iter().enumerate() {
            let n = stream(seed, &format!("azure/{}/{}", t.id, sub.id));
            let kinds = 4 + (n % 5) as usize;
            let first = (n >> 4) as usize % TYPES.len();
            for j in 0..kinds {
                // Stepping by 5 (coprime with 12) visits distinct types.
                let (kind, has_health, prefix) = TYPES[(first + j * 5) % TYPES.len()];
                let h = stream(seed, &format!("azure/{}/{}/{j}", t.id, sub.id));
                let location = LOCATIONS[(h % LOCATIONS.len() as u64) as usize];
                let count = 1 + (h >> 8) % 5;
                for r in 0..count {
                    let hr = stream(seed, &format!("azure/{}/{}/{j}/{r}", t.id, sub.id));
                    let health = has_health.then_some(match hr % 100 {
                        0..=79 => "Available",
                        80..=87 => "Degraded",
                        88..=94 => "Unavailable",
                        _ => "Unknown",
                    });
                    out.resources.push(Resource {
                        subscription_id: sub.id.clone(),
                        resource_group: RESOURCE_GROUPS
                            [((hr >> 8) % RESOURCE_GROUPS.len() as u64) as usize],
                        kind,
                        location,
                        name: format!("{prefix}-{k}{j}-{r:02}"),
                        health,
                    });
                }
            }
            for r in 0..(2 + (n >> 12) % 6) {
                let hr = stream(seed, &format!("advisor/{}/{}/{r}", t.id, sub.id));
                out.recommendations.push(Recommendation {
                    subscription_id: sub.id.clone(),
                    category: CATEGORIES[(hr % CATEGORIES.len() as u64) as usize],
                    impact: IMPACTS[((hr >> 8) % IMPACTS.len() as u64) as usize],
                });
            }
        }
        out
    }

    /// Resources in scope counted by subscription, type and location.
    pub fn resource_counts(&self, in_scope: impl Fn(&str) -> bool) -> ResourceCounts {
        let mut m: BTreeMap<(String, &'static str, &'static str), u64> = BTreeMap::new();
        for r in self
            .resources
            .iter()
            .filter(|r| in_scope(&r.subscription_id))
        {
            *m.entry((r.subscription_id.clone(), r.kind, r.location))
                .or_default() += 1;
        }
        m.into_iter().collect()
    }

    /// Resources in scope that Resource Health reports on, counted by
    /// subscription, type, location and availability state.
    pub fn health_counts(&self, in_scope: impl Fn(&str) -> bool) -> HealthCounts {
        let mut m = BTreeMap::new();
        for r in self
            .resources
            .iter()
            .filter(|r| in_scope(&r.subscription_id))
        {
            if let Some(state) = r.health {
                *m.entry((r.subscription_id.clone(), r.kind, r.location, state))
                    .or_default() += 1;
            }
        }
        m.into_iter().collect()
    }

    /// Recommendations in scope counted by category and impact.
    pub fn advisor_counts(&self, in_scope: impl Fn(&str) -> bool) -> AdvisorCounts {
        let mut m = BTreeMap::new();
        for r in self
            .recommendations
            .iter()
            .filter(|r| in_scope(&r.subscription_id))
        {
            *m.entry((r.category, r.impact)).or_default() += 1;
        }
        m.into_iter().collect()
    }

    /// Rows of the built-in query over the whole tenant.
    pub fn builtin_rows(&self) -> usize {
        let all = |_: &str| true;
        self.resource_counts(all).len()
            + self.health_counts(all).len()
            + self.advisor_counts(all).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::World;

    #[test]
    fn tenants_with_subscriptions_have_enough_rows_to_page() {
        let w = World::generate(5, 20);
        for t in &w.customers {
            let a = Azure::generate(5, t);
            if t.subscriptions.is_empty() {
                assert!(a.resources.is_empty() && a.recommendations.is_empty());
                continue;
            }
            // Page size 4: at least three pages.
            assert!(a.builtin_rows() > 8, "{} rows", a.builtin_rows());
            let total: u64 = a.resource_counts(|_| true).iter().map(|(_, n)| n).sum();
            assert_eq!(total as usize, a.resources.len());
            assert!(a
                .resources
                .iter()
                .all(|r| r.kind == r.kind.to_ascii_lowercase()));
        }
    }

    #[test]
    fn scope_filters_by_subscription() {
        let w = World::generate(5, 20);
        let t = w
            .customers
            .iter()
            .find(|t| t.subscriptions.len() >= 2)
            .expect("some tenant has two subscriptions");
        let a = Azure::generate(5, t);
        let first = t.subscriptions[0].id.clone();
        let only = a.resource_counts(|s| s == first);
        assert!(!only.is_empty());
        assert!(only.iter().all(|((s, _, _), _)| *s == first));
        assert!(only.len() < a.resource_counts(|_| true).len());
    }
}
