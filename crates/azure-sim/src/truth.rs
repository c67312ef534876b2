//! The ground truth: what every simulated API would report for every
//! tenant right now, built from the same data the APIs serve, so tests can
//! compare tenantwatch's metrics value by value.
//!
//! Everything but [`GroundTruth::partners`] describes partner 0, as a
//! single-partner simulator's does; a customer's own data is the same under
//! every partner that has it.

use serde::Serialize;

use crate::state::SimState;
use crate::world::Tenant;

/// Everything the APIs report, per tenant.
#[derive(Debug, Clone, Serialize)]
pub struct GroundTruth {
    /// Partner 0's Partner Center customers, in Partner Center order.
    pub tenants: Vec<TenantTruth>,
    /// Tenants with an active GDAP relationship with partner 0 that
    /// Partner Center does not list.
    pub gdap_only: Vec<TenantTruth>,
    /// Partner 0's SAM app and its credentials.
    pub partner_app: AppTruth,
    /// The 429s the throttling limits sent so far, per limit (limits that
    /// sent none are left out; injected throttle faults are not counted).
    pub throttled: Vec<ThrottledTruth>,
    /// Every partner, partner 0 first, with who its customers are.
    pub partners: Vec<PartnerTruth>,
}

/// One partner and its customers.
#[derive(Debug, Clone, Serialize)]
pub struct PartnerTruth {
    /// Position among the partners (the admin API's `partner=` selector).
    pub index: usize,
    /// The partner's tenant id.
    pub tenant_id: String,
    /// Client id of its SAM app.
    pub client_id: String,
    /// The Key Vault secret seeded with its refresh token.
    pub secret_name: String,
    /// Its Partner Center customers now (tenant ids, in Partner Center order).
    pub customers: Vec<String>,
    /// The tenants it reaches through GDAP only (tenant ids).
    pub gdap_only: Vec<String>,
    /// Its Partner Center customers as its APIs describe them (its own GDAP
    /// relationships); empty for partner 0, whose are [`GroundTruth::tenants`].
    pub tenants: Vec<TenantTruth>,
    /// The same for its GDAP-only tenants; empty for partner 0
    /// ([`GroundTruth::gdap_only`]).
    pub gdap_only_tenants: Vec<TenantTruth>,
    /// Its SAM app and credentials; `None` for partner 0
    /// ([`GroundTruth::partner_app`]).
    pub partner_app: Option<AppTruth>,
}

/// The 429s one limit sent.
#[derive(Debug, Clone, Serialize)]
pub struct ThrottledTruth {
    /// The service that answered them.
    pub service: crate::service::Service,
    /// The limit, as [`crate::Limit::as_str`] names it.
    pub limit: &'static str,
    /// How many.
    pub count: u64,
}

/// One tenant as the APIs describe it.
#[derive(Debug, Clone, Serialize)]
pub struct TenantTruth {
    /// Directory id.
    pub tenant_id: String,
    /// `displayName` (Graph) = `companyName` (Partner Center) = GDAP
    /// `customer.displayName`.
    pub name: String,
    /// The default verified domain (= Partner Center's `domain`).
    pub domain: String,
    /// Listed by Partner Center.
    pub in_partner_center: bool,
    /// ARM `GET /subscriptions`.
    pub subscriptions: Vec<SubscriptionTruth>,
    /// The built-in Resource Graph query's `resources` rows.
    pub resources: Vec<ResourceCount>,
    /// Its `health` rows.
    pub health: Vec<HealthCount>,
    /// Its `advisor` rows.
    pub advisor: Vec<AdvisorCount>,
    /// `subscribedSkus`.
    pub licenses: Vec<LicenseTruth>,
    /// `directory/subscriptions`.
    pub directory_subscriptions: Vec<DirectorySubscriptionTruth>,
    /// `healthOverviews`.
    pub services: Vec<ServiceTruth>,
    /// `(currentScore, maxScore)` of the newest Secure Score, if any.
    pub secure_score: Option<(f64, f64)>,
    /// `users/$count`.
    pub users: u64,
    /// Unix seconds of `onPremisesLastSyncDateTime`; `None` when null.
    pub last_sync: Option<i64>,
    /// GDAP relationships with the tenant, terminated ones left out.
    pub gdap: Vec<GdapTruth>,
}

/// One subscription.
#[derive(Debug, Clone, Serialize)]
pub struct SubscriptionTruth {
    /// `subscriptionId`.
    pub subscription_id: String,
    /// `displayName`.
    pub name: String,
    /// `state` (Enabled, Warned, PastDue, Disabled).
    pub state: String,
    /// Cost Management `ActualCost`, `MonthToDate`, on the simulated clock.
    pub cost_month_to_date: f64,
    /// Cost Management `ActualCost`, `TheLastMonth`.
    pub cost_last_month: f64,
    /// The `Currency` column of both.
    pub currency: String,
}

/// Resources of one type in one location of one subscription.
#[derive(Debug, Clone, Serialize)]
pub struct ResourceCount {
    /// Subscription id.
    pub subscription_id: String,
    /// Lower-case resource type.
    pub resource_type: String,
    /// Location.
    pub location: String,
    /// How many.
    pub count: u64,
}

/// Resources in one Resource Health state.
#[derive(Debug, Clone, Serialize)]
pub struct HealthCount {
    /// Subscription id.
    pub subscription_id: String,
    /// Lower-case resource type.
    pub resource_type: String,
    /// Location.
    pub location: String,
    /// Available, Degraded, Unavailable or Unknown.
    pub state: String,
    /// How many.
    pub count: u64,
}

/// Advisor recommendations of one category and impact.
#[derive(Debug, Clone, Serialize)]
pub struct AdvisorCount {
    /// Cost, Security, HighAvailability, Performance, OperationalExcellence.
    pub category: String,
    /// High, Medium, Low.
    pub impact: String,
    /// How many.
    pub count: u64,
}

/// One SKU's units.
#[derive(Debug, Clone, Serialize)]
pub struct LicenseTruth {
    /// `skuPartNumber`.
    pub sku_part_number: String,
    /// `prepaidUnits.enabled`.
    pub enabled: u64,
    /// `consumedUnits`.
    pub consumed: u64,
    /// `prepaidUnits.suspended`.
    pub suspended: u64,
    /// `prepaidUnits.warning`.
    pub warning: u64,
}

/// One `companySubscription`.
#[derive(Debug, Clone, Serialize)]
pub struct DirectorySubscriptionTruth {
    /// `id`.
    pub id: String,
    /// `commerceSubscriptionId`.
    pub commerce_subscription_id: String,
    /// `skuPartNumber`.
    pub sku_part_number: String,
    /// `status`.
    pub status: String,
    /// `isTrial`.
    pub trial: bool,
    /// Partner Center `autoRenewEnabled` of the same subscription.
    pub auto_renew: bool,
    /// Unix seconds of its Partner Center `commitmentEndDateTime` (the last
    /// second of the `commitmentEndDate` day).
    pub commitment_end: i64,
    /// `totalLicenses`.
    pub total_licenses: u64,
    /// Unix seconds of `nextLifecycleDateTime`.
    pub next_lifecycle: i64,
}

/// One service's health.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceTruth {
    /// `service` (display name).
    pub service: String,
    /// `status`.
    pub status: String,
}

/// One GDAP relationship as listed now.
#[derive(Debug, Clone, Serialize)]
pub struct GdapTruth {
    /// Relationship `id`.
    pub relationship_id: String,
    /// `active` or `expired`.
    pub status: String,
    /// Unix seconds of `endDateTime`.
    pub end: i64,
    /// `autoExtendDuration` is not zero.
    pub auto_extend: bool,
    /// `accessDetails.unifiedRoles[].roleDefinitionId`.
    pub roles: Vec<RoleTruth>,
    /// The roles include Global Administrator.
    pub global_admin: bool,
    /// `…/accessAssignments` of the relationship.
    pub access_assignments: Vec<AccessAssignmentTruth>,
}

/// A role definition (template) id with its name, where the sim knows it.
#[derive(Debug, Clone, Serialize)]
pub struct RoleTruth {
    /// `roleDefinitionId`.
    pub id: String,
    /// The built-in role's name (entra-docs permissions-reference).
    pub name: Option<String>,
}

/// One access assignment of a relationship.
#[derive(Debug, Clone, Serialize)]
pub struct AccessAssignmentTruth {
    /// Assignment `id`.
    pub id: String,
    /// `pending`, `active`, …
    pub status: String,
    /// Role definition ids it assigns.
    pub roles: Vec<String>,
}

/// An app registration's credentials.
#[derive(Debug, Clone, Serialize)]
pub struct AppTruth {
    /// `appId` (client id).
    pub app_id: String,
    /// Secrets and certificates.
    pub credentials: Vec<CredentialTruth>,
}

/// One credential.
#[derive(Debug, Clone, Serialize)]
pub struct CredentialTruth {
    /// `keyId`.
    pub key_id: String,
    /// `secret` or `certificate`.
    pub kind: String,
    /// Unix seconds of `endDateTime`.
    pub end: i64,
}

/// The ground truth at the sim's current time.
pub(crate) fn build(state: &SimState) -> GroundTruth {
    let now = state.clock.now_unix();
    let view = partner_view(state, 0, now);
    GroundTruth {
        tenants: view.tenants,
        gdap_only: view.gdap_only,
        partner_app: view.app,
        throttled: throttled(state),
        partners: partners(state, now),
    }
}

/// What partner `k` sees: its customers, GDAP-only tenants and SAM app.
struct PartnerView {
    tenants: Vec<TenantTruth>,
    gdap_only: Vec<TenantTruth>,
    app: AppTruth,
}

/// Partner `k`'s customers as its APIs describe them (GDAP is per partner;
/// the rest of a customer's data is the same under every partner).
fn partner_view(state: &SimState, k: usize, now: i64) -> PartnerView {
    let rels = state.relationships_at(k, now);
    let tenant = |t: &Tenant, in_partner_center: bool| -> TenantTruth {
        let gdap = rels
            .iter()
            .filter(|(r, c)| r.customer_id.eq_ignore_ascii_case(&t.id) && c.status != "terminated")
            .map(|(r, c)| GdapTruth {
                relationship_id: r.id.clone(),
                status: c.status.to_string(),
                end: c.end,
                auto_extend: r.auto_extend,
                roles: r
                    .roles
                    .iter()
                    .map(|id| RoleTruth {
                        id: id.to_string(),
                        name: crate::estate::gdap::role_name(id).map(str::to_string),
                    })
                    .collect(),
                global_admin: r.has_global_admin(),
                access_assignments: r
                    .assignments
                    .iter()
                    .map(|a| AccessAssignmentTruth {
                        id: a.id.clone(),
                        status: a.status.to_string(),
                        roles: a.roles.iter().map(|r| r.to_string()).collect(),
                    })
                    .collect(),
            })
            .collect();
        let mut out = TenantTruth {
            tenant_id: t.id.clone(),
            name: t.name.clone(),
            domain: t.domain.clone(),
            in_partner_center,
            subscriptions: t
                .subscriptions
                .iter()
                .map(|s| SubscriptionTruth {
                    subscription_id: s.id.clone(),
                    name: s.display_name.clone(),
                    state: s.state.to_string(),
                    cost_month_to_date: crate::arm::cost_management::month_to_date(state, &s.id),
                    cost_last_month: crate::arm::cost_management::last_month(state, &s.id),
                    currency: crate::arm::cost_management::currency(&t.id).to_string(),
                })
                .collect(),
            resources: Vec::new(),
            health: Vec::new(),
            advisor: Vec::new(),
            licenses: Vec::new(),
            directory_subscriptions: Vec::new(),
            services: Vec::new(),
            secure_score: None,
            users: 0,
            last_sync: None,
            gdap,
        };
        if let Some(e) = state.estate.tenant(&t.id) {
            let all = |_: &str| true;
            out.resources = e
                .azure
                .resource_counts(all)
                .into_iter()
                .map(|((sub, kind, location), count)| ResourceCount {
                    subscription_id: sub,
                    resource_type: kind.to_string(),
                    location: location.to_string(),
                    count,
                })
                .collect();
            out.health = e
                .azure
                .health_counts(all)
                .into_iter()
                .map(|((sub, kind, location, st), count)| HealthCount {
                    subscription_id: sub,
                    resource_type: kind.to_string(),
                    location: location.to_string(),
                    state: st.to_string(),
                    count,
                })
                .collect();
            out.advisor = e
                .azure
                .advisor_counts(all)
                .into_iter()
                .map(|((category, impact), count)| AdvisorCount {
                    category: category.to_string(),
                    impact: impact.to_string(),
                    count,
                })
                .collect();
            out.licenses = e
                .m365
                .skus
                .iter()
                .map(|s| LicenseTruth {
                    sku_part_number: s.part_number.to_string(),
                    enabled: s.enabled,
                    consumed: s.consumed,
                    suspended: s.suspended,
                    warning: s.warning,
                })
                .collect();
            out.directory_subscriptions = e
                .m365
                .subscriptions
                .iter()
                .map(|s| DirectorySubscriptionTruth {
                    id: s.id.clone(),
                    commerce_subscription_id: s.commerce_id.clone(),
                    sku_part_number: s.part_number.to_string(),
                    status: s.status.to_string(),
                    trial: s.trial,
                    auto_renew: s.auto_renew,
                    commitment_end: crate::partner_center::commitment_end(s.next_lifecycle),
                    total_licenses: s.total_licenses,
                    next_lifecycle: s.next_lifecycle,
                })
                .collect();
            out.services = e
                .m365
                .services
                .iter()
                .map(|s| ServiceTruth {
                    service: s.service.to_string(),
                    status: s.status.to_string(),
                })
                .collect();
            out.secure_score = e.m365.scores.first().map(|s| (s.current, s.max));
            out.users = e.m365.users;
            out.last_sync = e.m365.last_sync;
        }
        out
    };
    let app_id = state
        .world
        .partner(k)
        .map(|p| p.sam_app.client_id.clone())
        .unwrap_or_default();
    PartnerView {
        tenants: state
            .pc_customers(k)
            .into_iter()
            .map(|t| tenant(t, true))
            .collect(),
        gdap_only: state
            .gdap_only_tenants(k)
            .into_iter()
            .map(|t| tenant(t, false))
            .collect(),
        app: AppTruth {
            app_id,
            credentials: state
                .estate
                .sam_credentials
                .get(k)
                .into_iter()
                .flatten()
                .map(|c| CredentialTruth {
                    key_id: c.key_id.clone(),
                    kind: c.kind.as_str().to_string(),
                    end: c.end,
                })
                .collect(),
        },
    }
}

/// [`GroundTruth::partners`].
fn partners(state: &SimState, now: i64) -> Vec<PartnerTruth> {
    let ids = |ts: Vec<&Tenant>| -> Vec<String> { ts.into_iter().map(|t| t.id.clone()).collect() };
    state
        .world
        .partners
        .iter()
        .map(|p| {
            // Partner 0's are the top-level fields already: not twice.
            let view = (p.index > 0).then(|| partner_view(state, p.index, now));
            PartnerTruth {
                index: p.index,
                tenant_id: p.tenant.id.clone(),
                client_id: p.sam_app.client_id.clone(),
                secret_name: crate::partner_secret_name(p.index),
                customers: ids(state.pc_customers(p.index)),
                gdap_only: ids(state.gdap_only_tenants(p.index)),
                tenants: view.as_ref().map(|v| v.tenants.clone()).unwrap_or_default(),
                gdap_only_tenants: view
                    .as_ref()
                    .map(|v| v.gdap_only.clone())
                    .unwrap_or_default(),
                partner_app: view.map(|v| v.app),
            }
        })
        .collect()
}

/// [`GroundTruth::throttled`], also served by `/_sim/requests`.
pub(crate) fn throttled(state: &SimState) -> Vec<ThrottledTruth> {
    state
        .limits
        .refused_counts()
        .into_iter()
        .map(|(limit, count)| ThrottledTruth {
            service: limit.service(),
            limit: limit.as_str(),
            count,
        })
        .collect()
}
