//! A tenant's Microsoft 365 side: licences (`subscribedSkus`) and the
//! commerce subscriptions behind them (`directory/subscriptions`,
//! graph/companySubscription.md), service health (`healthOverviews`),
//! Secure Score history, user count and Entra Connect directory sync.

use super::Role;
use crate::world::{guid, stream, Tenant};

/// A product SKU as Microsoft publishes it: id, part number and some of
/// its service plans (`servicePlanId`, `servicePlanName`).
struct Product {
    part_number: &'static str,
    sku_id: &'static str,
    plans: &'static [(&'static str, &'static str)],
}

const EXCHANGE_E: (&str, &str) = (
    "efb87545-963c-4e0d-99df-69c6916d9eb0",
    "EXCHANGE_S_ENTERPRISE",
);
const EXCHANGE_S: (&str, &str) = (
    "9aaf7827-d63c-4b61-89c3-182f06f82e5c",
    "EXCHANGE_S_STANDARD",
);
const SHAREPOINT: (&str, &str) = (
    "5dbe027f-2339-4123-9542-606e4d348a72",
    "SHAREPOINTENTERPRISE",
);
const TEAMS: (&str, &str) = ("57ff2da0-773e-42df-b2af-ffb7a2317929", "TEAMS1");
const INTUNE: (&str, &str) = ("c1ec4a95-1f05-45b3-a911-aa3fa01094f5", "INTUNE_A");
const AAD_P1: (&str, &str) = ("41781fb2-bc02-4b7c-bd55-b576c07bb09d", "AAD_PREMIUM");
const AAD_P2: (&str, &str) = ("eec0eb4f-6444-4f95-aba0-50c24d67f998", "AAD_PREMIUM_P2");
const MCAS: (&str, &str) = ("8c098270-9dd4-4350-9b30-ba4703f3b36b", "ADALLOM_S_O365");
const SKYPE: (&str, &str) = ("0feaeb32-d00e-4d66-bd5a-43b5b83db82c", "MCOSTANDARD");
const POWER_BI: (&str, &str) = ("70d33638-9c74-4d01-bfd3-562de28bd4ba", "BI_AZURE_P2");
const FLOW: (&str, &str) = ("50e68c76-46c6-4674-81f9-75456511b170", "FLOW_P2_VIRAL");

const PRODUCTS: &[Product] = &[
    Product {
        part_number: "SPE_E3",
        sku_id: "05e9a617-0261-4cee-bb44-138d3ef5d965",
        plans: &[EXCHANGE_E, SHAREPOINT, TEAMS, INTUNE, AAD_P1],
    },
    Product {
        part_number: "SPB",
        sku_id: "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46",
        plans: &[EXCHANGE_S, TEAMS, INTUNE, AAD_P1],
    },
    Product {
        part_number: "ENTERPRISEPACK",
        sku_id: "6fd2c87f-b296-42f0-b197-1e91e994b900",
        plans: &[EXCHANGE_E, SHAREPOINT, TEAMS, SKYPE],
    },
    Product {
        part_number: "O365_BUSINESS_PREMIUM",
        sku_id: "f245ecc8-75af-4f8e-b61f-27d8114de5f3",
        plans: &[EXCHANGE_S, TEAMS, SKYPE],
    },
    Product {
        part_number: "SPE_E5",
        sku_id: "06ebc4ee-1bb5-47dd-8120-11324bc54e06",
        plans: &[EXCHANGE_E, TEAMS, AAD_P2, MCAS],
    },
    Product {
        part_number: "EXCHANGESTANDARD",
        sku_id: "4b9405b0-7788-4568-add1-99614e613b69",
        plans: &[EXCHANGE_S],
    },
    Product {
        part_number: "POWER_BI_PRO",
        sku_id: "f8a1db68-be16-40ed-86d5-cb42ce701560",
        plans: &[POWER_BI],
    },
    Product {
        part_number: "EMS",
        sku_id: "efccb6f7-5641-4e0e-bd10-b4976e1bf68e",
        plans: &[AAD_P1, INTUNE],
    },
    Product {
        part_number: "AAD_PREMIUM_P2",
        sku_id: "84a661c4-e949-4bd2-a560-ed7766fcaf2b",
        plans: &[AAD_P2],
    },
    Product {
        part_number: "FLOW_FREE",
        sku_id: "f30db892-07e9-47e9-837c-80727f46fd3d",
        plans: &[FLOW],
    },
];

/// Microsoft 365 services as `healthOverviews` names them (`id`, `service`).
pub(crate) const SERVICES: &[(&str, &str)] = &[
    ("Exchange", "Exchange Online"),
    ("OrgLiveID", "Identity Service"),
    ("OSDPPlatform", "Microsoft 365 suite"),
    ("SharePoint", "SharePoint Online"),
    ("microsoftteams", "Microsoft Teams"),
    ("Intune", "Microsoft Intune"),
    ("OneDriveForBusiness", "OneDrive for Business"),
    ("PowerBIcom", "Power BI"),
    ("Forms", "Microsoft Forms"),
    ("Planner", "Planner"),
    ("DynamicsCRM", "Dynamics 365 Apps"),
];

/// One `subscribedSku`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sku {
    pub sku_id: &'static str,
    pub part_number: &'static str,
    pub plans: &'static [(&'static str, &'static str)],
    /// `Enabled`, `Warning` or `Suspended`, matching the units below.
    pub capability_status: &'static str,
    pub consumed: u64,
    pub enabled: u64,
    pub suspended: u64,
    pub warning: u64,
    /// The commerce subscription behind the SKU (`subscriptionIds`).
    pub subscription_id: String,
}

/// One `companySubscription`: the subscription behind a SKU, with when it
/// next changes state (renews, lapses to `Warning`, is suspended, deleted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CompanySubscription {
    pub id: String,
    /// Same as the SKU's `subscriptionIds` entry.
    pub commerce_id: String,
    pub sku_id: &'static str,
    pub part_number: &'static str,
    pub plans: &'static [(&'static str, &'static str)],
    /// `Enabled`, `Warning` or `Suspended` (as the SKU's capability status).
    pub status: &'static str,
    pub trial: bool,
    /// Partner Center `autoRenewEnabled`: never for a trial.
    pub auto_renew: bool,
    pub total_licenses: u64,
    pub created: i64,
    /// `nextLifecycleDateTime`.
    pub next_lifecycle: i64,
    /// `ownerId`: the partner admin who bought it.
    pub owner_id: String,
    /// `ownerTenantId`: the partner tenant that created it.
    pub owner_tenant_id: String,
}

/// One daily Secure Score.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Score {
    /// Unix seconds of `createdDateTime`.
    pub created: i64,
    pub current: f64,
    pub max: f64,
}

/// One service's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServiceStatus {
    pub id: &'static str,
    pub service: &'static str,
    /// A `serviceHealthStatus` enum value.
    pub status: &'static str,
}

/// A tenant's Microsoft 365 data.
#[derive(Debug, Clone)]
pub(crate) struct M365 {
    /// Billing account the SKUs belong to (`accountId`).
    pub account_id: String,
    pub skus: Vec<Sku>,
    /// One per SKU, in the same order.
    pub subscriptions: Vec<CompanySubscription>,
    pub services: Vec<ServiceStatus>,
    /// Newest first, as `secureScores` lists them.
    pub scores: Vec<Score>,
    pub users: u64,
    /// Unix seconds of the last Entra Connect sync; `None` when the
    /// tenant is cloud-only.
    pub last_sync: Option<i64>,
}

/// Statuses a service can be in besides `serviceOperational`
/// (`serviceHealthStatus`, learn.microsoft.com/graph/api/resources/servicehealth).
const TROUBLE: &[&str] = &[
    "serviceDegradation",
    "investigating",
    "serviceInterruption",
    "restoringService",
    "extendedRecovery",
    "serviceRestored",
    "verifyingService",
];

/// Days of Secure Score history kept.
const SCORE_DAYS: i64 = 5;

impl M365 {
    /// The Microsoft 365 data of `t` as of `start`.
    pub fn generate(seed: u64, t: &Tenant, role: Role, start: i64, partner: &str) -> Self {
        let n = stream(seed, &format!("m365/{}", t.id));
        let skus = if role.no_licenses {
            Vec::new()
        } else {
            skus(seed, t, role, n)
        };
        let services = SERVICES
            .iter()
            .map(|(id, service)| {
                let h = stream(seed, &format!("health/{}/{id}", t.id));
                // About one tenant in five has a service not fully
                // operational: trouble to see, not a wall of it.
                let status = match TROUBLE.get((h % 300) as usize) {
                    _ if role.service_degraded && *id == "Exchange" => "serviceDegradation",
                    Some(s) => *s,
                    None => "serviceOperational",
                };
                ServiceStatus {
                    id,
                    service,
                    status,
                }
            })
            .collect();
        let scores = if role.no_secure_score {
            Vec::new()
        } else {
            scores(n, start)
        };
        let subscriptions = skus
            .iter()
            .enumerate()
            .map(|(k, s)| {
                let mut sub = subscription(seed, t, s, k == 0 && role.trial_ending, start, partner);
                if k == 0 && role.renewal_off && !sub.trial {
                    // Ends within 30 days and nobody renews it.
                    sub.auto_renew = false;
                    sub.next_lifecycle = start + (5 + (n >> 40) as i64 % 20) * DAY;
                }
                sub
            })
            .collect();
        // Entra Connect syncs every 30 minutes; the last one was recent.
        let last_sync = (n % 3 == 0).then(|| start - 60 - (n >> 8) as i64 % 1800);
        Self {
            account_id: guid(seed, &format!("account/{}", t.id)),
            skus,
            subscriptions,
            services,
            scores,
            users: 5 + (n >> 16) % 480,
            last_sync,
        }
    }
}

fn skus(seed: u64, t: &Tenant, role: Role, n: u64) -> Vec<Sku> {
    let count = 1 + (n >> 24) as usize % 4;
    let first = (n >> 28) as usize % PRODUCTS.len();
    (0..count)
        .map(|k| {
            let p = &PRODUCTS[(first + k * 3) % PRODUCTS.len()];
            let h = stream(seed, &format!("sku/{}/{}", t.id, p.part_number));
            let units = if p.part_number == "FLOW_FREE" {
                10_000
            } else {
                5 + h % 300
            };
            // Normally 30–90 % assigned.
            let mut sku = Sku {
                sku_id: p.sku_id,
                part_number: p.part_number,
                plans: p.plans,
                capability_status: "Enabled",
                consumed: units * (30 + (h >> 12) % 61) / 100,
                enabled: units,
                suspended: 0,
                warning: 0,
                subscription_id: guid(seed, &format!("commerce/{}/{}", t.id, p.part_number)),
            };
            if k == 0 && role.license_near_exhaustion {
                // At least 95 % assigned: a "buy more seats" alert.
                sku.consumed = units - (h >> 20) % (units / 20 + 1);
            }
            if k == 0 && role.license_exhausted {
                // Every seat assigned: the next new user gets no licence.
                sku.consumed = units;
            }
            if k == 0 && role.license_warning {
                // The subscription lapsed: its units are in the grace period.
                sku.capability_status = "Warning";
                sku.warning = units;
                sku.enabled = 0;
                sku.consumed = sku.consumed.min(units);
            }
            if k + 1 == count && k > 0 && role.license_suspended {
                sku.capability_status = "Suspended";
                sku.suspended = units;
                sku.enabled = 0;
            }
            sku
        })
        .chain(
            // A single-SKU tenant still gets its suspended case.
            (count == 1 && role.license_suspended).then(|| {
                let p = &PRODUCTS[(first + 5) % PRODUCTS.len()];
                Sku {
                    sku_id: p.sku_id,
                    part_number: p.part_number,
                    plans: p.plans,
                    capability_status: "Suspended",
                    consumed: 3,
                    enabled: 0,
                    suspended: 10,
                    warning: 0,
                    subscription_id: guid(seed, &format!("commerce/{}/{}", t.id, p.part_number)),
                }
            }),
        )
        .collect()
}

const DAY: i64 = 86_400;

/// The subscription behind `sku`: a trial ends in 2–6 days; a paid one renews
/// 30–395 days out, a `Warning` one is suspended within 30 days, a
/// `Suspended` one deleted within 30–90.
fn subscription(
    seed: u64,
    t: &Tenant,
    sku: &Sku,
    trial: bool,
    start: i64,
    partner: &str,
) -> CompanySubscription {
    let key = format!("company-subscription/{}/{}", t.id, sku.part_number);
    let h = stream(seed, &key);
    let secs = (h % DAY as u64) as i64;
    let next = match (trial, sku.capability_status) {
        (true, _) => start + (2 + (h >> 8) as i64 % 5) * DAY + secs,
        (false, "Warning") => start + (1 + (h >> 8) as i64 % 29) * DAY + secs,
        (false, "Suspended") => start + (30 + (h >> 8) as i64 % 60) * DAY + secs,
        _ => start + (30 + (h >> 8) as i64 % 365) * DAY + secs,
    };
    CompanySubscription {
        id: guid(seed, &key),
        commerce_id: sku.subscription_id.clone(),
        sku_id: sku.sku_id,
        part_number: sku.part_number,
        plans: sku.plans,
        status: sku.capability_status,
        trial,
        auto_renew: !trial,
        total_licenses: sku.enabled + sku.warning + sku.suspended,
        created: start - (30 + (h >> 20) as i64 % 700) * DAY,
        next_lifecycle: next,
        owner_id: guid(seed, &format!("{key}/owner")),
        owner_tenant_id: partner.to_string(),
    }
}

/// Daily scores at midnight UTC, newest first, improving slowly.
fn scores(n: u64, start: i64) -> Vec<Score> {
    let today = start - start.rem_euclid(86_400);
    // Halves only, so the values print and parse back exactly.
    let current = 150.0 + ((n >> 32) % 800) as f64 / 2.0;
    let max = current + 100.0 + ((n >> 44) % 300) as f64;
    (0..SCORE_DAYS)
        .map(|k| Score {
            created: today - k * 86_400,
            current: current - 2.0 * k as f64,
            max,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::World;

    fn all(n: usize) -> Vec<(Role, M365)> {
        let w = World::generate(11, n);
        w.customers
            .iter()
            .enumerate()
            .map(|(k, t)| {
                let role = Role::of_customer(k + 1, n);
                (
                    role,
                    M365::generate(11, t, role, 1_800_000_000, &w.default_partner().tenant.id),
                )
            })
            .collect()
    }

    #[test]
    fn licence_cases_show_in_the_units() {
        for (role, m) in all(14) {
            if role.no_licenses {
                assert!(m.skus.is_empty());
                continue;
            }
            assert!(!m.skus.is_empty());
            let first = &m.skus[0];
            if role.license_warning {
                assert_eq!(first.capability_status, "Warning");
                assert!(first.warning > 0 && first.enabled == 0);
            } else if role.license_near_exhaustion {
                assert!(first.consumed * 100 >= first.enabled * 95, "{first:?}");
            }
            if role.license_suspended {
                assert!(m
                    .skus
                    .iter()
                    .any(|s| s.capability_status == "Suspended" && s.suspended > 0));
            }
            let mut ids: Vec<_> = m.skus.iter().map(|s| s.sku_id).collect();
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), m.skus.len(), "SKUs are distinct");
        }
    }

    #[test]
    fn one_subscription_per_sku_and_trials_end_within_a_week() {
        let start = 1_800_000_000;
        let mut trials = 0;
        for (role, m) in all(14) {
            assert_eq!(m.subscriptions.len(), m.skus.len());
            for (s, sku) in m.subscriptions.iter().zip(&m.skus) {
                assert_eq!(s.commerce_id, sku.subscription_id);
                assert_eq!(s.status, sku.capability_status);
                assert!(s.next_lifecycle > start);
                if s.trial {
                    assert!(s.next_lifecycle - start < 7 * DAY);
                    trials += 1;
                }
            }
            assert_eq!(
                m.subscriptions.iter().any(|s| s.trial),
                role.trial_ending && !role.no_licenses
            );
            if let Some(first) = m.subscriptions.first().filter(|_| role.renewal_off) {
                assert!(!first.auto_renew && first.next_lifecycle - start < 30 * DAY);
            }
        }
        assert!(trials > 0);
    }

    #[test]
    fn scores_newest_first_and_some_services_degraded() {
        let all = all(12);
        let mut degraded = 0;
        for (role, m) in &all {
            assert_eq!(m.scores.is_empty(), role.no_secure_score);
            assert!(m.scores.windows(2).all(|w| w[0].created > w[1].created));
            assert!(m.scores.iter().all(|s| s.current <= s.max));
            assert_eq!(m.services.len(), SERVICES.len());
            degraded += m
                .services
                .iter()
                .filter(|s| s.status != "serviceOperational")
                .count();
        }
        assert!(degraded > 0);
        assert!(all.iter().any(|(_, m)| m.last_sync.is_some()));
        assert!(all.iter().any(|(_, m)| m.last_sync.is_none()));
    }
}
