//! The ground truth: what every simulated API would report for every
//! tenant right now, built from the same data the APIs serve, so tests can
//! compare tenantwatch's metrics value by value.

use serde::Serialize;

use crate::state::SimState;
use crate::world::Tenant;

/// Everything the APIs report, per tenant.
#[derive(Debug, Clone, Serialize)]
pub struct GroundTruth {
    /// Partner Center customers, in Partner Center order.
    pub tenants: Vec<TenantTruth>,
    /// Tenants with an active GDAP relationship that Partner Center does
    /// not list.
    pub gdap_only: Vec<TenantTruth>,
    /// The partner's SAM app and its credentials.
    pub partner_app: AppTruth,
    /// The 429s the throttling limits sent so far, per limit (limits that
    /// sent none are left out; injected throttle faults are not counted).
    pub throttled: Vec<ThrottledTruth>,
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
    let rels = state.relationships_at(now);
    let tenant = |t: &Tenant, in_partner_center: bool| -> TenantTruth {
        let gdap = rels
            .iter()
            .filter(|(r, c)| r.customer_id.eq_ignore_ascii_case(&t.id) && c.status != "terminated")
            .map(|(r, c)| GdapTruth {
                relationship_id: r.id.clone(),
                status: c.status.to_string(),
                end: c.end,
                auto_extend: r.auto_extend,
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
                })
                .collect(),
            resources: Vec::new(),
            health: Vec::new(),
            advisor: Vec::new(),
            licenses: Vec::new(),
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
    GroundTruth {
        tenants: state
            .pc_customers()
            .into_iter()
            .map(|t| tenant(t, true))
            .collect(),
        gdap_only: state
            .gdap_only_tenants()
            .into_iter()
            .map(|t| tenant(t, false))
            .collect(),
        partner_app: AppTruth {
            app_id: state.world.sam_app.client_id.clone(),
            credentials: state
                .estate
                .sam_credentials
                .iter()
                .map(|c| CredentialTruth {
                    key_id: c.key_id.clone(),
                    kind: c.kind.as_str().to_string(),
                    end: c.end,
                })
                .collect(),
        },
        throttled: throttled(state),
    }
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
