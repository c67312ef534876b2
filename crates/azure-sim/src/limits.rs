//! Microsoft's published throttling limits, enforced when switched on
//! ([`crate::SimOptions::limits`], `tenantwatch sim --limits on`).
//!
//! Each limit is a bucket per scope key (an app, an app and a tenant, a
//! principal and a subscription, a user in a tenant, a partner tenant). A
//! request takes what it costs from every bucket that applies to it, or from
//! none: when one is short the request is refused with that service's 429 and
//! a `Retry-After` of the time until the bucket holds enough again. Every
//! answer, refused or not, carries the remaining-quota headers the service
//! documents. The numbers and their sources are in
//! `/work/shared/reference/azure/throttling-limits.md` (Key Vault's in
//! docs/simulator.md, from Key Vault's service-limits page) and docs/simulator.md;
//! `scale` multiplies every one of them, so a test can make them small.
//!
//! Buckets run on real monotonic time ([`Instant`]), not on the simulated
//! clock: a client paces itself by real time, and moving the simulated clock
//! ninety days ahead must not refill (or drain) anybody's quota.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use tenantwatch_common::sync::lock;

use crate::service::Service;

/// One published limit the simulator enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// Graph: 130,000 requests per 10 s per app across all tenants.
    GraphApp,
    /// Graph identity and access: 150,000 resource units per 20 s per app.
    GraphIdentityApp,
    /// Graph identity and access: 3,500 / 5,000 / 8,000 resource units per
    /// 10 s per app and tenant (under 50, 50–500, over 500 users).
    GraphIdentityTenant,
    /// Graph Service Communications: 240 requests per 60 s per app and tenant.
    GraphServiceCommunications,
    /// Graph Service Communications: 800 requests per hour per app and tenant.
    GraphServiceCommunicationsHourly,
    /// Graph security (`alerts`, `securityActions`, `secureScores`): 150
    /// requests per minute per app and tenant.
    GraphSecurity,
    /// ARM: subscription reads, bucket 250 refilled 25 per second, per
    /// principal and subscription.
    ArmSubscriptionReads,
    /// ARM: tenant reads, bucket 250 refilled 25 per second, per principal
    /// and tenant.
    ArmTenantReads,
    /// Resource Graph: 15 queries per 5-second window per user.
    ResourceGraphUser,
    /// Partner Center customer resources: 500 requests per minute per tenant.
    PartnerCenterTenant,
    /// Cost Management query: 12 QPU per 10 s per tenant.
    CostManagementQpu10s,
    /// Cost Management query: 60 QPU per minute per tenant.
    CostManagementQpuMinute,
    /// Cost Management query: 600 QPU per hour per tenant.
    CostManagementQpuHour,
    /// Key Vault: 300 CREATE secret (with IMPORT certificate and IMPORT key)
    /// per 10 s per vault per region
    /// (<https://learn.microsoft.com/azure/key-vault/general/service-limits>).
    KeyVaultSecretCreate,
    /// Key Vault: 4,000 of all other transactions per 10 s per vault per
    /// region (same page).
    KeyVaultTransactions,
}

impl Limit {
    /// Every limit, in a stable order.
    pub const ALL: [Limit; 15] = [
        Limit::GraphApp,
        Limit::GraphIdentityApp,
        Limit::GraphIdentityTenant,
        Limit::GraphServiceCommunications,
        Limit::GraphServiceCommunicationsHourly,
        Limit::GraphSecurity,
        Limit::ArmSubscriptionReads,
        Limit::ArmTenantReads,
        Limit::ResourceGraphUser,
        Limit::PartnerCenterTenant,
        Limit::CostManagementQpu10s,
        Limit::CostManagementQpuMinute,
        Limit::CostManagementQpuHour,
        Limit::KeyVaultSecretCreate,
        Limit::KeyVaultTransactions,
    ];

    /// The name the admin API and ground truth use.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::GraphApp => "graph_app",
            Limit::GraphIdentityApp => "graph_identity_app",
            Limit::GraphIdentityTenant => "graph_identity_tenant",
            Limit::GraphServiceCommunications => "graph_service_communications",
            Limit::GraphServiceCommunicationsHourly => "graph_service_communications_hourly",
            Limit::GraphSecurity => "graph_security",
            Limit::ArmSubscriptionReads => "arm_subscription_reads",
            Limit::ArmTenantReads => "arm_tenant_reads",
            Limit::ResourceGraphUser => "resource_graph_user",
            Limit::PartnerCenterTenant => "partner_center_tenant",
            Limit::CostManagementQpu10s => "cost_management_qpu_10s",
            Limit::CostManagementQpuMinute => "cost_management_qpu_minute",
            Limit::CostManagementQpuHour => "cost_management_qpu_hour",
            Limit::KeyVaultSecretCreate => "keyvault_secret_create",
            Limit::KeyVaultTransactions => "keyvault_transactions",
        }
    }

    /// The service whose requests this limit counts.
    pub fn service(self) -> Service {
        match self {
            Limit::GraphApp
            | Limit::GraphIdentityApp
            | Limit::GraphIdentityTenant
            | Limit::GraphServiceCommunications
            | Limit::GraphServiceCommunicationsHourly
            | Limit::GraphSecurity => Service::Graph,
            Limit::ArmSubscriptionReads
            | Limit::ArmTenantReads
            | Limit::ResourceGraphUser
            | Limit::CostManagementQpu10s
            | Limit::CostManagementQpuMinute
            | Limit::CostManagementQpuHour => Service::Arm,
            Limit::PartnerCenterTenant => Service::PartnerCenter,
            Limit::KeyVaultSecretCreate | Limit::KeyVaultTransactions => Service::KeyVault,
        }
    }

    /// The published size (requests or resource units) and the period in
    /// which that many are allowed, before scaling. `size` is the identity
    /// tier for [`Limit::GraphIdentityTenant`] and ignored otherwise.
    pub fn published(self, size: Size) -> Rate {
        let r = |amount: f64, secs: u64| Rate {
            amount,
            per: Duration::from_secs(secs),
        };
        match self {
            Limit::GraphApp => r(130_000.0, 10),
            Limit::GraphIdentityApp => r(150_000.0, 20),
            Limit::GraphIdentityTenant => match size {
                Size::Small => r(3_500.0, 10),
                Size::Medium => r(5_000.0, 10),
                Size::Large => r(8_000.0, 10),
            },
            Limit::GraphServiceCommunications => r(240.0, 60),
            Limit::GraphServiceCommunicationsHourly => r(800.0, 3600),
            Limit::GraphSecurity => r(150.0, 60),
            // 250 tokens refilled at 25 per second: 250 per 10 s at the
            // refill rate, with the whole 250 available as a burst.
            Limit::ArmSubscriptionReads | Limit::ArmTenantReads => r(250.0, 10),
            Limit::ResourceGraphUser => r(15.0, 5),
            Limit::PartnerCenterTenant => r(500.0, 60),
            // costmanagement/query-limits.md (manage-automation.md): QPU
            // quotas per tenant, 1 QPU per month of data queried.
            Limit::CostManagementQpu10s => r(12.0, 10),
            Limit::CostManagementQpuMinute => r(60.0, 60),
            Limit::CostManagementQpuHour => r(600.0, 3600),
            Limit::KeyVaultSecretCreate => r(300.0, 10),
            Limit::KeyVaultTransactions => r(4_000.0, 10),
        }
    }

    /// Resource Graph documents a window that resets; the others are
    /// token buckets (ARM's and Graph identity's documented as such, the
    /// rest "N per period", which a bucket of N refilled over the period
    /// enforces without a burst at each period's edge).
    fn is_window(self) -> bool {
        self == Limit::ResourceGraphUser
    }
}

/// Graph identity-and-access tenant size (G2: S under 50 users, M 50–500,
/// L above 500).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// Under 50 users.
    Small,
    /// 50 to 500 users.
    Medium,
    /// Above 500 users.
    Large,
}

impl Size {
    /// The tier a tenant of `users` users falls in.
    pub fn of_users(users: u64) -> Self {
        match users {
            0..=49 => Size::Small,
            50..=500 => Size::Medium,
            _ => Size::Large,
        }
    }
}

/// `amount` allowed per `per`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Requests (or resource units) allowed in `per`; also the burst.
    pub amount: f64,
    /// The period.
    pub per: Duration,
}

/// One bucket's state.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Tokens left (bucket) or used (window).
    level: f64,
    /// Last refill (bucket) or window start (window).
    at: Instant,
    /// Cost admitted since the bucket was made: what the time the limit
    /// imposes is computed from ([`Limits::imposed`]).
    admitted: f64,
    /// The tier the bucket was sized for (Graph identity).
    size: Size,
}

/// What a request asks of one limit.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Charge {
    /// The limit.
    pub limit: Limit,
    /// Scope key (app, app+tenant, principal+subscription, …).
    pub key: String,
    /// Cost in the limit's units (resource units for Graph identity).
    pub cost: f64,
    /// The tier, for [`Limit::GraphIdentityTenant`].
    pub size: Size,
}

/// What the limits say about one request.
#[derive(Debug, Default)]
pub(crate) struct Verdict {
    /// Headers for the answer, refused or not.
    pub headers: Vec<(&'static str, String)>,
    /// The limit that refused it and how long to wait, when one did.
    pub refused: Option<(Limit, u64)>,
    /// The charge that refused it (for `x-ms-throttle-scope`).
    pub refused_key: Option<String>,
}

/// Every bucket, the settings and the count of 429s sent per limit.
pub(crate) struct Limits {
    enabled: AtomicBool,
    /// `f64` bits of the scale factor.
    scale: AtomicU64,
    buckets: Mutex<HashMap<(Limit, String), Bucket>>,
    refused: Mutex<HashMap<Limit, u64>>,
}

impl Limits {
    /// Limits `enabled` or not, every published number times `scale`.
    pub fn new(enabled: bool, scale: f64) -> Self {
        Self {
            enabled: AtomicBool::new(enabled),
            scale: AtomicU64::new(sane_scale(scale).to_bits()),
            buckets: Mutex::default(),
            refused: Mutex::default(),
        }
    }

    /// Whether limits are enforced.
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// The scale factor.
    pub fn scale(&self) -> f64 {
        f64::from_bits(self.scale.load(Ordering::Relaxed))
    }

    /// Switches enforcement and sets the scale; every bucket starts full
    /// again.
    pub fn configure(&self, enabled: bool, scale: f64) {
        self.enabled.store(enabled, Ordering::Relaxed);
        self.scale
            .store(sane_scale(scale).to_bits(), Ordering::Relaxed);
        lock(&self.buckets).clear();
    }

    /// The rate a limit allows after scaling; never below one request per
    /// period, so a tiny scale still lets requests through.
    pub fn rate(&self, limit: Limit, size: Size) -> Rate {
        let p = limit.published(size);
        Rate {
            amount: (p.amount * self.scale()).max(1.0),
            per: p.per,
        }
    }

    /// 429s sent per limit.
    pub fn refused_counts(&self) -> Vec<(Limit, u64)> {
        let mut v: Vec<(Limit, u64)> = lock(&self.refused).iter().map(|(l, n)| (*l, *n)).collect();
        v.sort();
        v
    }

    /// Per limit, the most time it imposes on any one scope for what it
    /// admitted since the limits were last configured ([`imposed`]); the
    /// benchmark compares a cycle's length with the largest.
    pub fn imposed(&self) -> Vec<(Limit, Duration)> {
        let mut out: HashMap<Limit, Duration> = HashMap::new();
        for ((limit, _), b) in lock(&self.buckets).iter() {
            let d = imposed(*limit, self.rate(*limit, b.size), b.admitted);
            let e = out.entry(*limit).or_default();
            *e = (*e).max(d);
        }
        let mut v: Vec<(Limit, Duration)> = out.into_iter().collect();
        v.sort();
        v
    }

    /// Takes `charges` from their buckets, all or none, at `now`.
    pub fn admit(&self, charges: &[Charge], now: Instant) -> Verdict {
        let mut verdict = Verdict::default();
        if !self.enabled() || charges.is_empty() {
            return verdict;
        }
        let rates: Vec<Rate> = charges.iter().map(|c| self.rate(c.limit, c.size)).collect();
        let mut buckets = lock(&self.buckets);
        // First look, refilling as of now; take only if every bucket has room.
        let mut short: Option<(usize, Duration)> = None;
        for (i, (c, rate)) in charges.iter().zip(&rates).enumerate() {
            let b = buckets
                .entry((c.limit, c.key.clone()))
                .or_insert_with(|| fresh(c.limit, *rate, c.size, now));
            refill(c.limit, *rate, b, now);
            if let Some(wait) = shortfall(c.limit, *rate, b, c.cost, now) {
                if short.is_none_or(|(_, w)| wait > w) {
                    short = Some((i, wait));
                }
            }
        }
        if short.is_none() {
            for (c, rate) in charges.iter().zip(&rates) {
                if let Some(b) = buckets.get_mut(&(c.limit, c.key.clone())) {
                    take(c.limit, *rate, b, c.cost);
                }
            }
        }
        for (c, rate) in charges.iter().zip(&rates) {
            if let Some(b) = buckets.get(&(c.limit, c.key.clone())) {
                headers_for(c, *rate, b, now, &mut verdict.headers);
            }
        }
        drop(buckets);
        if let Some((i, wait)) = short {
            let c = &charges[i];
            // Whole seconds, rounded up and at least one, as the services send.
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            verdict.refused = Some((c.limit, secs.max(1)));
            verdict.refused_key = Some(c.key.clone());
            *lock(&self.refused).entry(c.limit).or_default() += 1;
        }
        verdict
    }
}

fn sane_scale(scale: f64) -> f64 {
    if scale.is_finite() && scale > 0.0 {
        scale
    } else {
        1.0
    }
}

fn fresh(limit: Limit, rate: Rate, size: Size, now: Instant) -> Bucket {
    Bucket {
        level: if limit.is_window() { 0.0 } else { rate.amount },
        at: now,
        admitted: 0.0,
        size,
    }
}

/// The least time any client needs to have `admitted` accepted by one
/// scope of a limit starting full: nothing up to the burst, then the rest
/// at the refill rate (bucket), or one period per further window (window).
pub(crate) fn imposed(limit: Limit, rate: Rate, admitted: f64) -> Duration {
    if limit.is_window() {
        let windows = (admitted / rate.amount.floor().max(1.0)).ceil();
        return rate.per.mul_f64((windows - 1.0).max(0.0));
    }
    let per_sec = rate.amount / rate.per.as_secs_f64();
    Duration::from_secs_f64(((admitted - rate.amount) / per_sec).max(0.0))
}

fn refill(limit: Limit, rate: Rate, b: &mut Bucket, now: Instant) {
    let elapsed = now.saturating_duration_since(b.at);
    if limit.is_window() {
        if elapsed >= rate.per {
            *b = Bucket {
                admitted: b.admitted,
                ..fresh(limit, rate, b.size, now)
            };
        }
        return;
    }
    let per_sec = rate.amount / rate.per.as_secs_f64();
    b.level = (b.level + elapsed.as_secs_f64() * per_sec).min(rate.amount);
    b.at = now;
}

/// How long until `cost` fits, or `None` when it fits now.
fn shortfall(limit: Limit, rate: Rate, b: &Bucket, cost: f64, now: Instant) -> Option<Duration> {
    if limit.is_window() {
        if b.level + cost <= rate.amount {
            return None;
        }
        return Some((b.at + rate.per).saturating_duration_since(now));
    }
    // A request costing more than the whole bucket waits for a full one.
    let need = cost.min(rate.amount);
    if b.level >= need {
        return None;
    }
    let per_sec = rate.amount / rate.per.as_secs_f64();
    Some(Duration::from_secs_f64((need - b.level) / per_sec))
}

fn take(limit: Limit, rate: Rate, b: &mut Bucket, cost: f64) {
    b.admitted += cost;
    if limit.is_window() {
        b.level += cost;
    } else {
        b.level = (b.level - cost.min(rate.amount)).max(0.0);
    }
}

/// The documented remaining-quota headers for one charge.
fn headers_for(
    c: &Charge,
    rate: Rate,
    b: &Bucket,
    now: Instant,
    out: &mut Vec<(&'static str, String)>,
) {
    match c.limit {
        Limit::ArmSubscriptionReads => out.push((
            "x-ms-ratelimit-remaining-subscription-reads",
            (b.level.floor() as u64).to_string(),
        )),
        Limit::ArmTenantReads => out.push((
            "x-ms-ratelimit-remaining-tenant-reads",
            (b.level.floor() as u64).to_string(),
        )),
        Limit::ResourceGraphUser => {
            let left = (rate.amount.floor() - b.level).max(0.0) as u64;
            let resets = (b.at + rate.per).saturating_duration_since(now);
            let secs = resets.as_secs() + u64::from(resets.subsec_nanos() > 0);
            out.push(("x-ms-user-quota-remaining", left.to_string()));
            out.push(("x-ms-user-quota-resets-after", hms(secs)));
        }
        // The format of the "list of remaining quotas" is not documented:
        // the sim's is `name:count` pairs, comma-separated (docs/simulator.md).
        Limit::CostManagementQpu10s
        | Limit::CostManagementQpuMinute
        | Limit::CostManagementQpuHour => {
            let name = match c.limit {
                Limit::CostManagementQpu10s => "QueriesPer10Seconds",
                Limit::CostManagementQpuMinute => "QueriesPer1Minute",
                _ => "QueriesPer1Hour",
            };
            let entry = format!("{name}:{}", b.level.floor() as u64);
            const REMAINING: &str = "x-ms-ratelimit-microsoft.costmanagement-qpu-remaining";
            match out.iter_mut().find(|(k, _)| *k == REMAINING) {
                Some((_, v)) => {
                    v.push(',');
                    v.push_str(&entry);
                }
                None => {
                    out.push((REMAINING, entry));
                    out.push((
                        "x-ms-ratelimit-microsoft.costmanagement-qpu-consumed",
                        (c.cost as u64).to_string(),
                    ));
                }
            }
        }
        // Every Graph answer says what it cost; an identity charge, later
        // in the list, replaces this 1 with its resource units.
        Limit::GraphApp => out.push(("x-ms-resource-unit", "1".to_string())),
        Limit::GraphIdentityTenant => {
            out.push(("x-ms-resource-unit", (c.cost as u64).to_string()));
            // G2: sent only once more than 80 % of the limit is used.
            let used = 1.0 - b.level / rate.amount;
            if used > 0.8 {
                out.push(("x-ms-throttle-limit-percentage", format!("{used:.1}")));
            }
        }
        _ => {}
    }
}

/// `hh:mm:ss`, Resource Graph's `x-ms-user-quota-resets-after`.
pub(crate) fn hms(secs: u64) -> String {
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Who sent a request and to where, as the limits key it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Caller<'a> {
    /// `appid` of the token.
    pub app: Option<&'a str>,
    /// `tid` of the token.
    pub tenant: Option<&'a str>,
    /// `oid` of the token (the signed-in user, or the app's principal).
    pub principal: Option<&'a str>,
    /// Users in `tenant`, for Graph's identity tier.
    pub users: u64,
}

/// The charges a request makes, from its service, method, path and query.
pub(crate) fn charges(
    service: Service,
    method: &str,
    path: &str,
    query: &str,
    who: &Caller<'_>,
) -> Vec<Charge> {
    let charge = |limit, key: String, cost| Charge {
        limit,
        key,
        cost,
        size: Size::of_users(who.users),
    };
    let app = who.app.unwrap_or("-");
    let tenant = who.tenant.unwrap_or("-");
    let principal = who.principal.or(who.app).unwrap_or("-");
    let lower = path.to_ascii_lowercase();
    let mut out = Vec::new();
    match service {
        Service::Graph => {
            out.push(charge(Limit::GraphApp, app.to_string(), 1.0));
            let rel = lower
                .trim_start_matches('/')
                .split_once('/')
                .map_or("", |(_, rest)| rest);
            let app_tenant = format!("{app}/{tenant}");
            if rel.starts_with("admin/serviceannouncement/") {
                out.push(charge(
                    Limit::GraphServiceCommunications,
                    app_tenant.clone(),
                    1.0,
                ));
                out.push(charge(
                    Limit::GraphServiceCommunicationsHourly,
                    app_tenant,
                    1.0,
                ));
            } else if [
                "alerts",
                "securityactions",
                "securescores",
                "securescorecontrolprofiles",
            ]
            .iter()
            .any(|r| {
                rel.strip_prefix("security/")
                    .is_some_and(|s| s.starts_with(r))
            }) {
                out.push(charge(Limit::GraphSecurity, app_tenant, 1.0));
            } else if let Some(cost) = identity_cost(method, rel, query) {
                out.push(charge(Limit::GraphIdentityApp, app.to_string(), cost));
                out.push(charge(Limit::GraphIdentityTenant, app_tenant, cost));
            }
        }
        Service::Arm
            if method.eq_ignore_ascii_case("POST")
                && lower.contains("/providers/microsoft.resourcegraph/") =>
        {
            // Resource Graph keeps a quota per user; the user of a
            // delegated token is a principal in the customer tenant, so the
            // key is (tenant, user): see docs/simulator.md.
            out.push(charge(
                Limit::ResourceGraphUser,
                format!("{tenant}/{principal}"),
                1.0,
            ));
        }
        Service::Arm
            if method.eq_ignore_ascii_case("POST")
                && lower.starts_with("/subscriptions/")
                && lower.ends_with("/providers/microsoft.costmanagement/query") =>
        {
            // Per tenant, 1 QPU for each query: the daemon's (and most)
            // ask for at most one month; longer custom ranges are not
            // priced higher here (docs/simulator.md).
            for limit in [
                Limit::CostManagementQpu10s,
                Limit::CostManagementQpuMinute,
                Limit::CostManagementQpuHour,
            ] {
                out.push(charge(limit, tenant.to_string(), 1.0));
            }
        }
        Service::Arm if method.eq_ignore_ascii_case("GET") => {
            let mut segs = lower.trim_start_matches('/').split('/');
            match (segs.next(), segs.next()) {
                (Some("subscriptions"), Some(sub)) if !sub.is_empty() => out.push(charge(
                    Limit::ArmSubscriptionReads,
                    format!("{principal}/{sub}"),
                    1.0,
                )),
                _ => out.push(charge(
                    Limit::ArmTenantReads,
                    format!("{principal}/{tenant}"),
                    1.0,
                )),
            }
        }
        Service::PartnerCenter if lower.starts_with("/v1/customers") => {
            out.push(charge(Limit::PartnerCenterTenant, tenant.to_string(), 1.0));
        }
        // Per vault per region; the simulator has one vault. Set Secret (a
        // PUT, which creates a version) is a CREATE secret; everything else
        // is one of "all other transactions".
        Service::KeyVault
            if method.eq_ignore_ascii_case("PUT") && lower.starts_with("/secrets/") =>
        {
            out.push(charge(Limit::KeyVaultSecretCreate, "vault".into(), 1.0));
        }
        Service::KeyVault => out.push(charge(Limit::KeyVaultTransactions, "vault".into(), 1.0)),
        _ => {}
    }
    out
}

/// Resources the identity-and-access limit covers (G2's list), by the
/// first segment after the version.
const IDENTITY: &[&str] = &[
    "applications",
    "devices",
    "directoryobjects",
    "directoryroles",
    "directoryroletemplates",
    "domains",
    "groups",
    "me",
    "oauth2permissiongrants",
    "organization",
    "serviceprincipals",
    "subscribedskus",
    "users",
];

/// G2's resource-unit cost of a read of an identity resource: the base
/// cost of the path, `$select` −1, `$expand` +1, `$top` under 20 −1, at
/// least 1. Writes count against the write limits, which the simulator
/// does not enforce (the daemon only reads).
fn identity_cost(method: &str, rel: &str, query: &str) -> Option<f64> {
    if !method.eq_ignore_ascii_case("GET") {
        return None;
    }
    let segs: Vec<&str> = rel.split('/').filter(|s| !s.is_empty()).collect();
    let first = *segs.first()?;
    if !IDENTITY.contains(&first) {
        return None;
    }
    let base: i64 = match segs.as_slice() {
        ["users"] | ["users", "$count"] | ["applications"] | ["oauth2permissiongrants"] => 2,
        ["me", "memberof"] => 2,
        ["subscribedskus"] => 3,
        ["groups", _, "members"] => 3,
        ["groups", _, "transitivemembers"] => 5,
        _ => 1,
    };
    let mut cost = base;
    let query = query.to_ascii_lowercase();
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k.replace("%24", "$").as_str() {
            "$select" => cost -= 1,
            "$expand" => cost += 1,
            "$top" if v.parse::<u32>().is_ok_and(|n| n < 20) => cost -= 1,
            _ => {}
        }
    }
    Some(cost.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(limit: Limit, cost: f64) -> Vec<Charge> {
        vec![Charge {
            limit,
            key: "k".into(),
            cost,
            size: Size::Small,
        }]
    }

    #[test]
    fn a_bucket_empties_and_refills_at_its_rate() {
        // ARM at 0.01: a bucket of 2.5 refilled 0.25 per second.
        let l = Limits::new(true, 0.01);
        let t0 = Instant::now();
        let c = one(Limit::ArmSubscriptionReads, 1.0);
        assert!(l.admit(&c, t0).refused.is_none());
        assert!(l.admit(&c, t0).refused.is_none());
        let v = l.admit(&c, t0);
        assert_eq!(
            v.refused,
            Some((Limit::ArmSubscriptionReads, 2)),
            "0.5 short at 0.25/s"
        );
        assert_eq!(
            v.headers,
            [(
                "x-ms-ratelimit-remaining-subscription-reads",
                "0".to_string()
            )]
        );
        // A refused request takes nothing: two seconds later one fits.
        assert!(l.admit(&c, t0 + Duration::from_secs(2)).refused.is_none());
        assert!(l.admit(&c, t0 + Duration::from_secs(2)).refused.is_some());
        // Full again after ten seconds, never more than full.
        let later = t0 + Duration::from_secs(60);
        assert!(l.admit(&c, later).refused.is_none());
        assert!(l.admit(&c, later).refused.is_none());
        assert!(l.admit(&c, later).refused.is_some());
        assert_eq!(l.refused_counts(), [(Limit::ArmSubscriptionReads, 3)]);
    }

    #[test]
    fn resource_graph_counts_a_window_and_says_when_it_resets() {
        let l = Limits::new(true, 0.2);
        let t0 = Instant::now();
        let c = one(Limit::ResourceGraphUser, 1.0);
        let v = l.admit(&c, t0);
        assert_eq!(
            v.headers,
            [
                ("x-ms-user-quota-remaining", "2".to_string()),
                ("x-ms-user-quota-resets-after", "00:00:05".to_string())
            ]
        );
        l.admit(&c, t0);
        l.admit(&c, t0 + Duration::from_secs(1));
        let v = l.admit(&c, t0 + Duration::from_millis(1500));
        assert_eq!(v.refused, Some((Limit::ResourceGraphUser, 4)));
        assert_eq!(v.headers[0].1, "0");
        assert_eq!(v.headers[1].1, "00:00:04");
        let v = l.admit(&c, t0 + Duration::from_secs(5));
        assert!(v.refused.is_none());
        assert_eq!(v.headers[0].1, "2", "a new window");
    }

    #[test]
    fn all_or_nothing_across_buckets() {
        let l = Limits::new(true, 1.0);
        let t0 = Instant::now();
        let mut both = one(Limit::GraphApp, 1.0);
        both.extend(one(Limit::GraphSecurity, 1.0));
        for _ in 0..150 {
            assert!(l.admit(&both, t0).refused.is_none());
        }
        assert_eq!(
            l.admit(&both, t0).refused.map(|r| r.0),
            Some(Limit::GraphSecurity)
        );
        // The refused request took nothing from the app-wide bucket.
        let app = one(Limit::GraphApp, 1.0);
        let mut n = 0;
        while l.admit(&app, t0).refused.is_none() {
            n += 1;
        }
        assert_eq!(n, 130_000 - 150);
    }

    #[test]
    fn off_admits_everything_and_sends_nothing() {
        let l = Limits::new(false, 0.0001);
        let c = one(Limit::PartnerCenterTenant, 1.0);
        for _ in 0..10 {
            let v = l.admit(&c, Instant::now());
            assert!(v.refused.is_none() && v.headers.is_empty());
        }
    }

    #[test]
    fn requests_are_charged_as_microsoft_documents() {
        let who = Caller {
            app: Some("app"),
            tenant: Some("t1"),
            principal: Some("user"),
            users: 120,
        };
        let c = charges(Service::Graph, "GET", "/v1.0/subscribedSkus", "", &who);
        let limits: Vec<(Limit, &str, f64)> = c
            .iter()
            .map(|c| (c.limit, c.key.as_str(), c.cost))
            .collect();
        assert_eq!(
            limits,
            [
                (Limit::GraphApp, "app", 1.0),
                (Limit::GraphIdentityApp, "app", 3.0),
                (Limit::GraphIdentityTenant, "app/t1", 3.0)
            ]
        );
        assert_eq!(c[2].size, Size::Medium);
        let cost = |path: &str, q: &str| {
            charges(Service::Graph, "GET", path, q, &who)
                .iter()
                .find(|c| c.limit == Limit::GraphIdentityTenant)
                .map(|c| c.cost)
        };
        assert_eq!(cost("/v1.0/users/$count", ""), Some(2.0));
        assert_eq!(
            cost("/v1.0/applications", "$filter=x&$select=appId"),
            Some(1.0)
        );
        assert_eq!(
            cost("/v1.0/groups/g/transitiveMembers", "$top=5&%24expand=x"),
            Some(5.0)
        );
        assert_eq!(
            cost("/v1.0/organization", "$select=id"),
            Some(1.0),
            "at least one"
        );
        assert_eq!(
            cost("/v1.0/admin/serviceAnnouncement/healthOverviews", ""),
            None
        );
        let kinds = |svc, method, path: &str| -> Vec<(Limit, String)> {
            charges(svc, method, path, "", &who)
                .into_iter()
                .map(|c| (c.limit, c.key))
                .collect()
        };
        assert_eq!(
            kinds(Service::Graph, "GET", "/v1.0/security/secureScores"),
            [
                (Limit::GraphApp, "app".into()),
                (Limit::GraphSecurity, "app/t1".into())
            ]
        );
        assert_eq!(
            kinds(Service::Arm, "GET", "/subscriptions"),
            [(Limit::ArmTenantReads, "user/t1".into())]
        );
        assert_eq!(
            kinds(Service::Arm, "GET", "/subscriptions/S1/resourceGroups"),
            [(Limit::ArmSubscriptionReads, "user/s1".into())]
        );
        assert_eq!(
            kinds(
                Service::Arm,
                "POST",
                "/providers/Microsoft.ResourceGraph/resources"
            ),
            [(Limit::ResourceGraphUser, "t1/user".into())]
        );
        assert_eq!(
            kinds(Service::PartnerCenter, "GET", "/v1/customers"),
            [(Limit::PartnerCenterTenant, "t1".into())]
        );
        assert!(kinds(Service::Token, "POST", "/t1/oauth2/v2.0/token").is_empty());
        assert_eq!(
            kinds(Service::KeyVault, "GET", "/secrets/x/"),
            [(Limit::KeyVaultTransactions, "vault".into())]
        );
        assert_eq!(
            kinds(Service::KeyVault, "PUT", "/secrets/x"),
            [(Limit::KeyVaultSecretCreate, "vault".into())],
            "a write is a CREATE secret, not one of the other transactions"
        );
    }

    #[test]
    fn the_time_a_limit_imposes_is_the_burst_then_the_refill_rate() {
        let arm = Rate {
            amount: 250.0,
            per: Duration::from_secs(10),
        };
        assert_eq!(imposed(Limit::ArmTenantReads, arm, 250.0), Duration::ZERO);
        assert_eq!(
            imposed(Limit::ArmTenantReads, arm, 300.0),
            Duration::from_secs(2)
        );
        let rg = Rate {
            amount: 15.0,
            per: Duration::from_secs(5),
        };
        assert_eq!(imposed(Limit::ResourceGraphUser, rg, 15.0), Duration::ZERO);
        assert_eq!(
            imposed(Limit::ResourceGraphUser, rg, 16.0),
            Duration::from_secs(5)
        );
        assert_eq!(
            imposed(Limit::ResourceGraphUser, rg, 45.0),
            Duration::from_secs(10)
        );
        let l = Limits::new(true, 0.2);
        let t0 = Instant::now();
        for i in 0..7 {
            l.admit(
                &one(Limit::ResourceGraphUser, 1.0),
                t0 + Duration::from_secs(5 * i),
            );
        }
        assert_eq!(
            l.imposed(),
            [(Limit::ResourceGraphUser, Duration::from_secs(10))],
            "7 queries at 3 per window need three windows"
        );
    }

    #[test]
    fn key_vault_limits_are_the_published_ones_per_ten_seconds() {
        let l = Limits::new(true, 1.0);
        let create = l.rate(Limit::KeyVaultSecretCreate, Size::Small);
        assert_eq!(
            (create.amount, create.per),
            (300.0, Duration::from_secs(10))
        );
        let other = l.rate(Limit::KeyVaultTransactions, Size::Small);
        assert_eq!(
            (other.amount, other.per),
            (4_000.0, Duration::from_secs(10))
        );
        // At 0.001 one create per 10 s: the second waits 10 s, and Key Vault
        // sends no remaining-quota header.
        let l = Limits::new(true, 0.001);
        let t0 = Instant::now();
        let c = one(Limit::KeyVaultSecretCreate, 1.0);
        assert!(l.admit(&c, t0).refused.is_none());
        let v = l.admit(&c, t0);
        assert_eq!(v.refused, Some((Limit::KeyVaultSecretCreate, 10)));
        assert!(v.headers.is_empty());
    }

    #[test]
    fn identity_tiers_follow_the_user_count() {
        assert_eq!(Size::of_users(49), Size::Small);
        assert_eq!(Size::of_users(50), Size::Medium);
        assert_eq!(Size::of_users(500), Size::Medium);
        assert_eq!(Size::of_users(501), Size::Large);
        let l = Limits::new(true, 1.0);
        assert_eq!(
            l.rate(Limit::GraphIdentityTenant, Size::Large).amount,
            8_000.0
        );
        assert_eq!(
            Limits::new(true, 1e-9)
                .rate(Limit::GraphApp, Size::Small)
                .amount,
            1.0,
            "never below one per period"
        );
    }
}
