//! What each simulated tenant owns besides its directory entry: Microsoft
//! 365 licences, service health, Secure Scores, users and directory sync
//! ([`m365`]); Azure resources, their health and Advisor recommendations
//! ([`azure`]); each partner's GDAP relationships ([`gdap`]) and the SAM
//! app's credentials ([`app`]).
//!
//! Everything is derived from the seed and fixed at start-up, so the APIs
//! and the ground truth tests compare against always agree. Timestamps are
//! relative to the start time (GDAP end dates must fall "within 30 days of
//! now"), so only they differ between runs with the same seed.

pub(crate) mod app;
pub(crate) mod azure;
pub(crate) mod gdap;
pub(crate) mod m365;

use std::collections::HashMap;

use crate::world::{Tenant, World};

pub(crate) use app::{AppCredential, CredentialKind};
pub(crate) use azure::Azure;
pub(crate) use gdap::Relationship;
pub(crate) use m365::M365;

/// The special cases a customer is given by its position in Partner
/// Center, so every run (of more than a handful of tenants) has each case
/// alerting rules and tests look for, and exactly one of the "no data" ones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Role {
    /// `subscribedSkus` is empty.
    pub no_licenses: bool,
    /// `secureScores` is empty.
    pub no_secure_score: bool,
    /// The first SKU is ≥ 95 % consumed.
    pub license_near_exhaustion: bool,
    /// The first SKU has units in the warning state.
    pub license_warning: bool,
    /// The last SKU is suspended.
    pub license_suspended: bool,
    /// The first SKU is a trial that ends within 7 days.
    pub trial_ending: bool,
    /// The first SKU's subscription ends within 30 days and does not
    /// auto-renew (Partner Center `autoRenewEnabled: false`).
    pub renewal_off: bool,
    /// The first SKU is fully assigned (consumed = enabled): no seat left.
    pub license_exhausted: bool,
    /// Exchange Online is degraded.
    pub service_degraded: bool,
    /// How the partner reaches the tenant.
    pub gdap: GdapRole,
}

/// The tenant's GDAP relationships.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct GdapRole {
    /// No relationship at all: legacy DAP still gives access.
    pub legacy_dap: bool,
    /// The active relationship ends in 12 days and does not auto-extend.
    pub ends_soon: bool,
    /// An older relationship that ended without renewal (`expired`).
    pub extra_expired: bool,
    /// An older relationship the customer ended (`terminated`).
    pub extra_terminated: bool,
    /// The active relationship holds Global Administrator (so it cannot
    /// auto-extend).
    pub global_admin: bool,
    /// The active relationship has no access assignment: it grants nothing.
    pub no_access: bool,
    /// The active relationship's only access assignment is still `pending`.
    pub pending_access: bool,
}

impl Role {
    /// The role of Partner Center customer `i` (1-based) of `n`.
    pub fn of_customer(i: usize, n: usize) -> Self {
        let legacy_dap = i == 2 || i == 9;
        Self {
            no_licenses: i == 3.min(n),
            no_secure_score: i == 5.min(n),
            license_near_exhaustion: i == 1 || i % 7 == 0,
            license_warning: i == 4.min(n) || i % 11 == 0,
            license_suspended: i == 6.min(n) || i % 13 == 0,
            trial_ending: i % 9 == 6,
            renewal_off: i % 7 == 2,
            license_exhausted: i == 8,
            service_degraded: i == 16,
            gdap: GdapRole {
                legacy_dap,
                ends_soon: !legacy_dap && (i == 10 || i % 20 == 0),
                extra_expired: !legacy_dap && i % 6 == 4,
                extra_terminated: !legacy_dap && i % 4 == 3,
                global_admin: !legacy_dap && i % 8 == 1,
                no_access: !legacy_dap && i % 6 == 2,
                pending_access: !legacy_dap && i % 10 == 7,
            },
        }
    }
}

/// One tenant's Microsoft 365 and Azure data.
#[derive(Debug, Clone)]
pub(crate) struct TenantEstate {
    pub m365: M365,
    pub azure: Azure,
}

/// Every tenant's data plus the partner-level objects.
#[derive(Debug, Clone)]
pub(crate) struct Estate {
    /// By lower-case tenant id; a customer shared by several partners has
    /// one entry, so it looks the same to each.
    tenants: HashMap<String, TenantEstate>,
    /// Every GDAP relationship of every partner, terminated ones included
    /// ([`Relationship::partner`] says whose).
    pub relationships: Vec<Relationship>,
    /// Password and key credentials of each partner's SAM app, by partner
    /// index.
    pub sam_credentials: Vec<Vec<AppCredential>>,
    /// The same for the service identity.
    pub identity_credentials: Vec<AppCredential>,
}

impl Estate {
    /// Generates the data for every tenant of `world` as of `start`.
    /// `sam_thumbprint`/`identity_thumbprint` name the registered
    /// certificates, which the apps' key credentials describe.
    pub fn generate(
        world: &World,
        start: i64,
        sam_thumbprint: &str,
        identity_thumbprint: &str,
    ) -> Self {
        let seed = world.seed;
        // Each partner's own count: the special cases (`3.min(n)`, …) go by a
        // customer's number within partner 0's list, whatever the partners.
        let n = world.customers_of(0).len();
        let mut tenants = HashMap::new();
        let mut relationships = Vec::new();
        // Subscriptions a customer bought name the partner that sold them:
        // its first partner, so a shared customer shows one seller to all.
        let add =
            |t: &Tenant, role: Role, seller: &str, tenants: &mut HashMap<String, TenantEstate>| {
                tenants.insert(
                    t.id.to_ascii_lowercase(),
                    TenantEstate {
                        m365: M365::generate(seed, t, role, start, seller),
                        azure: Azure::generate(seed, t),
                    },
                );
            };
        let seller = |t: &Tenant| {
            world
                .partner(world.partners_of(t).start)
                .unwrap_or_else(|| world.default_partner())
        };
        for p in &world.partners {
            add(&p.tenant, Role::default(), &p.tenant.id, &mut tenants);
        }
        for (k, t) in world.customers.iter().enumerate() {
            let role = Role::of_customer(k + 1, n);
            add(t, role, &seller(t).tenant.id, &mut tenants);
            for p in world.partners_of(t).filter_map(|i| world.partner(i)) {
                relationships.extend(gdap::for_customer(seed, p, t, role.gdap, start));
            }
        }
        for t in &world.gdap_only {
            let p = seller(t);
            add(t, Role::default(), &p.tenant.id, &mut tenants);
            relationships.extend(gdap::for_customer(seed, p, t, GdapRole::default(), start));
        }
        for p in &world.partners {
            relationships.push(gdap::former_customer(seed, p, start));
        }
        let sam_credentials = world
            .partners
            .iter()
            .map(|p| {
                let app = match p.index {
                    0 => "sam".to_string(),
                    k => format!("sam/{k}"),
                };
                app::sam_credentials(seed, &app, &p.sam_app.secret, sam_thumbprint, start)
            })
            .collect();
        Self {
            tenants,
            relationships,
            sam_credentials,
            identity_credentials: app::identity_credentials(
                seed,
                &world.identity_app.secret,
                identity_thumbprint,
                start,
            ),
        }
    }

    /// Takes the trouble out, for an all-green estate
    /// ([`crate::SimOptions::healthy`]): every service operational, every
    /// SKU enabled with room to spare, every subscription renewing by itself
    /// (no trial) and not due within a year, every active GDAP relationship
    /// auto-extending without Global Administrator and with all its roles
    /// assigned, and no app credential ending within 90 days of `start` (the
    /// expiring previous SAM secret is gone, as after a clean-up).
    pub fn heal(&mut self, start: i64) {
        for t in self.tenants.values_mut() {
            for s in &mut t.m365.services {
                s.status = "serviceOperational";
            }
            for sku in &mut t.m365.skus {
                let units = sku.enabled.max(sku.warning).max(sku.suspended).max(1);
                sku.capability_status = "Enabled";
                sku.enabled = units;
                sku.warning = 0;
                sku.suspended = 0;
                sku.consumed = sku.consumed.min(units * 9 / 10);
            }
            for sub in &mut t.m365.subscriptions {
                sub.status = "Enabled";
                sub.trial = false;
                sub.auto_renew = true;
                sub.next_lifecycle = sub.next_lifecycle.max(start + 365 * 86_400);
            }
        }
        for r in self.relationships.iter_mut().filter(|r| !r.terminated) {
            if r.end > start {
                r.heal();
            }
        }
        let lasting = |c: &AppCredential| c.end > start + 90 * 86_400;
        for creds in &mut self.sam_credentials {
            creds.retain(lasting);
        }
        self.identity_credentials.retain(lasting);
    }

    /// A tenant's data, by id (any case).
    pub fn tenant(&self, tenant_id: &str) -> Option<&TenantEstate> {
        self.tenants.get(&tenant_id.to_ascii_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_case_appears_in_a_dozen_tenants() {
        let roles: Vec<Role> = (1..=12).map(|i| Role::of_customer(i, 12)).collect();
        assert_eq!(roles.iter().filter(|r| r.no_licenses).count(), 1);
        assert_eq!(roles.iter().filter(|r| r.no_secure_score).count(), 1);
        assert_eq!(roles.iter().filter(|r| r.gdap.legacy_dap).count(), 2);
        assert!(roles.iter().any(|r| r.gdap.ends_soon));
        assert!(roles.iter().any(|r| r.gdap.extra_expired));
        assert!(roles.iter().any(|r| r.gdap.extra_terminated));
        assert!(roles.iter().any(|r| r.gdap.global_admin));
        assert!(roles.iter().any(|r| r.gdap.no_access));
        assert!(roles.iter().any(|r| r.gdap.pending_access));
        assert!(roles.iter().any(|r| r.license_near_exhaustion));
        assert!(roles.iter().any(|r| r.license_warning));
        assert!(roles.iter().any(|r| r.license_suspended));
        assert!(roles.iter().any(|r| r.trial_ending));
        assert!(roles.iter().any(|r| r.renewal_off));
    }

    #[test]
    fn a_healed_estate_has_no_trouble() {
        let w = World::generate(3, 30);
        let start = 1_800_000_000;
        let mut e = Estate::generate(&w, start, "AB", "CD");
        let troubled = |e: &Estate| {
            w.customers.iter().any(|t| {
                let m = &e.tenant(&t.id).unwrap().m365;
                m.services.iter().any(|s| s.status != "serviceOperational")
                    || m.skus.iter().any(|s| s.consumed >= s.enabled)
            })
        };
        assert!(troubled(&e), "the default estate has trouble to show");
        e.heal(start);
        assert!(!troubled(&e));
        let live = || {
            e.relationships
                .iter()
                .filter(|r| !r.terminated && r.end > start)
        };
        assert!(live().all(|r| r.auto_extend && !r.has_global_admin()));
        assert!(live().all(|r| {
            !r.assignments.is_empty() && r.assignments.iter().all(|a| a.status == "active")
        }));
        assert!(w.customers.iter().all(|t| {
            e.tenant(&t.id)
                .unwrap()
                .m365
                .subscriptions
                .iter()
                .all(|s| !s.trial && s.auto_renew && s.next_lifecycle > start + 30 * 86_400)
        }));
        assert!(e.sam_credentials[0]
            .iter()
            .all(|c| c.end > start + 90 * 86_400));
        assert!(!e.sam_credentials[0].is_empty());
    }

    #[test]
    fn a_single_tenant_still_has_no_data_cases() {
        let r = Role::of_customer(1, 1);
        assert!(r.no_licenses && r.no_secure_score && !r.gdap.legacy_dap);
    }

    #[test]
    fn generation_is_deterministic_for_a_seed_and_start() {
        let w = World::generate(3, 6);
        let a = Estate::generate(&w, 1_800_000_000, "AB", "CD");
        let b = Estate::generate(&w, 1_800_000_000, "AB", "CD");
        for t in &w.customers {
            let (x, y) = (a.tenant(&t.id).unwrap(), b.tenant(&t.id).unwrap());
            assert_eq!(x.azure.resources, y.azure.resources);
            assert_eq!(x.m365.skus, y.m365.skus);
        }
        assert_eq!(a.relationships, b.relationships);
        assert!(a.tenant(&w.gdap_only[0].id).is_some());
        assert!(a
            .tenant(&w.default_partner().tenant.id.to_uppercase())
            .is_some());
    }
}
