//! Pacing: a budget per (API, the scope Microsoft's limit applies to), so
//! requests are spaced before a limit is hit instead of colliding with it.
//!
//! Each request names its scopes ([`scopes`]): for Graph the partner's app
//! across every tenant and the app in one tenant; for ARM the principal in
//! one subscription or one tenant (the principal is always the partner's
//! admin, so the subscription or tenant is the key); for Resource Graph the
//! user in one tenant; for Cost Management's query the tenant (its QPU
//! quotas are per tenant, and apart from ARM's reads, so a throttled cost
//! query never holds up another collector); for Partner Center the partner
//! (its customer and subscription resources allow 500 requests per minute
//! per partner tenant, shared by every customer). [`Pacer::reserve`]
//! returns how long to wait before sending, and books the request against
//! every scope at once, so concurrent callers queue one behind the other
//! without polling. What fills the budgets:
//!
//! - remaining-quota headers (`x-ms-user-quota-remaining` with
//!   `x-ms-user-quota-resets-after`, `x-ms-ratelimit-remaining-*-reads`,
//!   Cost Management's `x-ms-ratelimit-microsoft.costmanagement-qpu-remaining`,
//!   a list whose smallest count is the one that binds): the
//!   count left is spent by each request sent; at zero the scope waits for
//!   the reset;
//! - `Retry-After` on a 429: the whole scope (not only the refused request)
//!   waits until then; Graph's `x-ms-throttle-scope` says whether the app as
//!   a whole or one tenant was throttled;
//! - Graph's per-app limit across tenants and Partner Center's per-partner
//!   limit, which no header reports: the daemon allows itself
//!   `api_budget_share` of `graph_app_limit` per 10 s, and of
//!   `partner_center_limit` per minute, and spaces requests to stay within
//!   them (a generic cell rate algorithm: one atomic instant, no timer, no
//!   polling). Without the spacing, every `Retry-After` let the queued
//!   requests go at once into a bucket with room for a few: a 429 storm.
//!
//! Limits: Graph <https://learn.microsoft.com/graph/throttling-limits>, ARM
//! <https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling>,
//! Resource Graph <https://learn.microsoft.com/azure/governance/resource-graph/concepts/guidance-for-throttled-requests>,
//! Cost Management <https://learn.microsoft.com/azure/cost-management-billing/costs/manage-automation>,
//! Partner Center <https://learn.microsoft.com/partner-center/developer/customer-resources>.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use tenantwatch_common::sync::lock;

use crate::support::retry::RETRY_AFTER_FLOOR;

/// The period of Graph's per-app limit across tenants.
pub use crate::config::GRAPH_APP_PERIOD;

/// The period of Partner Center's per-partner limit.
pub use crate::config::PARTNER_CENTER_PERIOD;

/// How long an ARM remaining-reads count is believed. ARM refills its read
/// buckets by a tenth of their size every second (250 refilled 25 per
/// second), so an empty bucket has room again within a second.
const ARM_REFILL: Duration = Duration::from_secs(1);

/// How long a Cost Management remaining-QPU count is believed: its
/// shortest quota window (12 QPU per 10 s). A longer window running dry
/// shows up as a 429 with its own retry-after.
const COST_WINDOW: Duration = Duration::from_secs(10);

/// Cost Management's list of remaining quotas (format undocumented).
pub const COST_REMAINING: &str = "x-ms-ratelimit-microsoft.costmanagement-qpu-remaining";

/// Whose budget a request spends.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ScopeKey {
    /// The partner's app across every tenant (Graph's global limit).
    GraphApp,
    /// The app in one tenant (Graph's per app+tenant limits).
    GraphTenant(String),
    /// The principal in one subscription (ARM subscription reads): tenant, subscription.
    ArmSubscription(String, String),
    /// The principal in one tenant (ARM tenant reads).
    ArmTenant(String),
    /// The user in one tenant (Resource Graph's user quota).
    ResourceGraph(String),
    /// One tenant's Cost Management QPU quotas.
    CostManagement(String),
    /// The partner at Partner Center (its per-partner limit).
    PartnerCenter,
    /// One tenant of another API.
    Tenant(&'static str, String),
}

impl ScopeKey {
    /// The tenant the scope belongs to; `None` for the app-wide one.
    fn tenant(&self) -> Option<&str> {
        match self {
            ScopeKey::GraphApp | ScopeKey::PartnerCenter => None,
            ScopeKey::GraphTenant(t)
            | ScopeKey::ArmSubscription(t, _)
            | ScopeKey::ArmTenant(t)
            | ScopeKey::ResourceGraph(t)
            | ScopeKey::CostManagement(t)
            | ScopeKey::Tenant(_, t) => Some(t),
        }
    }
}

/// The scopes a request to `url` of `api` for `tenant` spends from, most
/// shared first.
pub fn scopes(api: &'static str, tenant: &str, url: &str) -> Vec<ScopeKey> {
    let t = tenant.to_ascii_lowercase();
    match api {
        "graph" => vec![ScopeKey::GraphApp, ScopeKey::GraphTenant(t)],
        "arm" => match subscription(url) {
            Some(sub) => vec![ScopeKey::ArmSubscription(t, sub)],
            None => vec![ScopeKey::ArmTenant(t)],
        },
        "resource_graph" => vec![ScopeKey::ResourceGraph(t)],
        "cost_management" => vec![ScopeKey::CostManagement(t)],
        "partner_center" => vec![ScopeKey::PartnerCenter],
        other => vec![ScopeKey::Tenant(other, t)],
    }
}

/// The subscription id in an ARM URL's path (`/subscriptions/{id}/…`).
fn subscription(url: &str) -> Option<String> {
    let path = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = path.split(['?', '#']).next().unwrap_or("");
    let mut segs = path.split('/').skip(1);
    while let Some(s) = segs.next() {
        if s.eq_ignore_ascii_case("subscriptions") {
            return segs
                .next()
                .filter(|id| !id.is_empty())
                .map(str::to_ascii_lowercase);
        }
    }
    None
}

/// How the daemon spends Microsoft's limits (`collection.pacing`, `api_budget_share`, `graph_app_limit`, `partner_center_limit`).
pub use crate::config::Pacing as PacingSettings;

/// What is known about one tenant-scoped budget.
#[derive(Debug, Default, Clone, Copy)]
struct Budget {
    /// Nothing is sent before this (a `Retry-After`, or the reset of a
    /// quota counted down to zero).
    blocked_until: Option<Instant>,
    /// Requests the API said are left, minus those sent since, and when
    /// that count stops being true (the window resets or ARM's bucket
    /// refills).
    remaining: Option<(u32, Instant)>,
}

/// Shards of the tenant-scoped budgets: a request locks only its tenant's.
const SHARDS: usize = 16;

/// A budget every request of an API shares (Graph's app across tenants,
/// Partner Center's partner): atomics, not a mutex, so it is never a queue
/// of its own. Instants are nanoseconds after `base`, plus one (0 is "none").
struct AppBudget {
    base: Instant,
    /// GCRA's "theoretical arrival time": the budget's next free instant.
    tat: AtomicU64,
    /// A `Retry-After` that named the whole app.
    blocked_until: AtomicU64,
}

impl AppBudget {
    fn new() -> Self {
        Self {
            base: Instant::now(),
            tat: AtomicU64::new(0),
            blocked_until: AtomicU64::new(0),
        }
    }

    fn encode(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.base).as_nanos())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }

    fn decode(&self, v: u64) -> Option<Instant> {
        (v != 0).then(|| self.base + Duration::from_nanos(v - 1))
    }

    /// Books the earliest slot at or after `not_before` (GCRA: up to the
    /// burst tolerance ahead of the schedule is allowed) and returns it.
    fn book(&self, not_before: Instant, (interval, tolerance): (Duration, Duration)) -> Instant {
        let blocked = self.decode(self.blocked_until.load(Ordering::Acquire));
        let mut current = self.tat.load(Ordering::Acquire);
        loop {
            let tat = self.decode(current);
            let mut start = blocked.map_or(not_before, |b| b.max(not_before));
            if let Some(earliest) = tat.and_then(|t| t.checked_sub(tolerance)) {
                start = start.max(earliest);
            }
            let next = tat.map_or(start, |t| t.max(start)) + interval;
            match self.tat.compare_exchange_weak(
                current,
                self.encode(next),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return start,
                Err(seen) => current = seen,
            }
        }
    }

    fn block_until(&self, until: Instant) {
        self.blocked_until
            .fetch_max(self.encode(until), Ordering::AcqRel);
    }
}

/// Every scope's budget. The tenant-scoped ones sit in shards by tenant, a
/// `std` mutex each, held only to compute and book a start time (a few map
/// lookups), never across an await; all of a request's tenant-scoped scopes
/// belong to one tenant, so it takes one shard lock. The Graph app budget is
/// [`AppBudget`]'s atomics, and so is Partner Center's.
pub struct Pacer {
    shards: Box<[Mutex<HashMap<ScopeKey, Budget>>]>,
    app: AppBudget,
    partner_center: AppBudget,
}

impl Default for Pacer {
    fn default() -> Self {
        Self::new()
    }
}

impl Pacer {
    /// A pacer with nothing known yet.
    pub fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            app: AppBudget::new(),
            partner_center: AppBudget::new(),
        }
    }

    /// The shard of a request's tenant-scoped scopes (they share a tenant).
    fn shard(&self, scopes: &[ScopeKey]) -> Option<&Mutex<HashMap<ScopeKey, Budget>>> {
        let tenant = scopes.iter().find_map(ScopeKey::tenant)?;
        debug_assert!(scopes
            .iter()
            .filter_map(ScopeKey::tenant)
            .all(|t| t == tenant));
        let mut h = std::collections::hash_map::DefaultHasher::new();
        tenant.hash(&mut h);
        self.shards.get((h.finish() % SHARDS as u64) as usize)
    }

    /// Books a request against `scopes` and returns how long to wait before
    /// sending it (zero when it can go now).
    pub fn reserve(
        &self,
        scopes: &[ScopeKey],
        settings: &PacingSettings,
        now: Instant,
    ) -> Duration {
        if !settings.enabled {
            return Duration::ZERO;
        }
        let mut map = self.shard(scopes).map(lock);
        // The latest of every scope's earliest start; then book at that instant.
        let mut start = now;
        if let Some(map) = map.as_deref_mut() {
            for key in scopes.iter().filter(|k| k.tenant().is_some()) {
                let b = map.entry(key.clone()).or_default();
                if let Some(until) = b.blocked_until {
                    start = start.max(until);
                }
                if let Some((0, resets)) = b.remaining {
                    start = start.max(resets);
                }
            }
        }
        if scopes.contains(&ScopeKey::GraphApp) {
            start = self.app.book(start, graph_rate(settings));
        }
        if scopes.contains(&ScopeKey::PartnerCenter) {
            start = self
                .partner_center
                .book(start, partner_center_rate(settings));
        }
        if let Some(map) = map.as_deref_mut() {
            for key in scopes.iter().filter(|k| k.tenant().is_some()) {
                if let Some(b) = map.get_mut(key) {
                    b.remaining = match b.remaining {
                        Some((_, resets)) if resets <= start => None,
                        Some((n, resets)) => Some((n.saturating_sub(1), resets)),
                        None => None,
                    };
                    if b.blocked_until.is_some_and(|u| u <= start) {
                        b.blocked_until = None;
                    }
                }
            }
        }
        start.saturating_duration_since(now)
    }

    /// Learns from an answer: its remaining-quota headers, and for a 429
    /// its `Retry-After` (`retry_after`, already parsed by the one retry
    /// policy), which blocks the scope it names until then.
    pub fn observe(
        &self,
        scopes: &[ScopeKey],
        status: u16,
        headers: &HeaderMap,
        retry_after: Option<Duration>,
        now: Instant,
    ) {
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u32>().ok())
        };
        let throttled_until = (status == 429).then(|| {
            now + retry_after
                .unwrap_or(RETRY_AFTER_FLOOR)
                .max(RETRY_AFTER_FLOOR)
        });
        let throttled = throttled_scopes(scopes, headers);
        if let Some(until) = throttled_until {
            if throttled.contains(&&ScopeKey::GraphApp) {
                self.app.block_until(until);
            }
            if throttled.contains(&&ScopeKey::PartnerCenter) {
                self.partner_center.block_until(until);
            }
        }
        let Some(shard) = self.shard(scopes) else {
            return;
        };
        let mut map = lock(shard);
        for key in scopes {
            let learnt = match key {
                ScopeKey::ResourceGraph(_) => number("x-ms-user-quota-remaining").map(|n| {
                    let resets = headers
                        .get("x-ms-user-quota-resets-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(parse_hms)
                        .unwrap_or(Duration::from_secs(5));
                    (n, now + resets)
                }),
                ScopeKey::ArmSubscription(..) => {
                    number("x-ms-ratelimit-remaining-subscription-reads")
                        .map(|n| (n, now + ARM_REFILL))
                }
                ScopeKey::ArmTenant(_) => {
                    number("x-ms-ratelimit-remaining-tenant-reads").map(|n| (n, now + ARM_REFILL))
                }
                ScopeKey::CostManagement(_) => headers
                    .get(COST_REMAINING)
                    .and_then(|v| v.to_str().ok())
                    .and_then(least_remaining)
                    .map(|n| (n, now + COST_WINDOW)),
                _ => None,
            };
            if let Some((n, resets)) = learnt {
                let b = map.entry(key.clone()).or_default();
                b.remaining = Some(match b.remaining {
                    // Same window: requests booked since were not counted by
                    // the answer yet, so the smaller count is the truer one.
                    Some((mine, at)) if at + Duration::from_secs(1) >= resets => {
                        (mine.min(n), at.max(resets))
                    }
                    _ => (n, resets),
                });
            }
        }
        if let Some(until) = throttled_until {
            for key in throttled.into_iter().filter(|k| k.tenant().is_some()) {
                let b = map.entry(key.clone()).or_default();
                b.blocked_until = Some(b.blocked_until.map_or(until, |u| u.max(until)));
            }
        }
    }

    /// Forgets the budgets of tenants no longer in scope (`keep` holds
    /// tenant ids; compared case-insensitively).
    pub fn retain_tenants(&self, keep: &HashSet<String>) {
        let keep: HashSet<String> = keep.iter().map(|t| t.to_ascii_lowercase()).collect();
        for shard in self.shards.iter() {
            lock(shard).retain(|k, _| k.tenant().is_none_or(|t| keep.contains(t)));
        }
    }
}

/// GCRA's emission interval and burst tolerance for the Graph app budget.
fn graph_rate(s: &PacingSettings) -> (Duration, Duration) {
    shared_rate(s, s.graph_app_limit, GRAPH_APP_PERIOD)
}

/// The same for Partner Center's per-partner budget.
fn partner_center_rate(s: &PacingSettings) -> (Duration, Duration) {
    shared_rate(s, s.partner_center_limit, PARTNER_CENTER_PERIOD)
}

/// `api_budget_share` of `limit` requests per `period`, as GCRA's emission
/// interval and burst tolerance (the whole share may go at once, then one
/// per interval).
fn shared_rate(s: &PacingSettings, limit: u32, period: Duration) -> (Duration, Duration) {
    let share = if s.budget_share.is_finite() && s.budget_share > 0.0 {
        s.budget_share.min(1.0)
    } else {
        1.0
    };
    let allowed = (f64::from(limit.max(1)) * share).max(1.0);
    let interval = period.div_f64(allowed);
    (interval, interval.mul_f64(allowed - 1.0))
}

/// Which of a request's scopes a 429 throttled: for Graph the one
/// `x-ms-throttle-scope` names (`Application/…` is the app across tenants,
/// anything else the app in this tenant); otherwise all of them.
fn throttled_scopes<'a>(scopes: &'a [ScopeKey], headers: &HeaderMap) -> Vec<&'a ScopeKey> {
    if !scopes.contains(&ScopeKey::GraphApp) {
        return scopes.iter().collect();
    }
    let app_wide = headers
        .get("x-ms-throttle-scope")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Application/"));
    scopes
        .iter()
        .filter(|k| (**k == ScopeKey::GraphApp) == app_wide)
        .collect()
}

/// The smallest count in Cost Management's "list of remaining quotas".
/// Microsoft documents no format; this reads every number in it, each the
/// value of a `name:count` / `name=count` entry or bare, separated by `,` or
/// `;`, so a single count reads too.
pub fn least_remaining(v: &str) -> Option<u32> {
    v.split([',', ';'])
        .filter_map(|entry| {
            let value = entry.rsplit([':', '=']).next().unwrap_or(entry);
            value.trim().parse::<f64>().ok()
        })
        .filter(|n| n.is_finite() && *n >= 0.0)
        .map(|n| n.min(f64::from(u32::MAX)) as u32)
        .min()
}

/// `hh:mm:ss` (Resource Graph's `x-ms-user-quota-resets-after`).
fn parse_hms(v: &str) -> Option<Duration> {
    let mut parts = v.trim().split(':');
    let (h, m, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let n = |x: &str| x.parse::<u64>().ok();
    let s_f = s
        .parse::<f64>()
        .ok()
        .filter(|f| f.is_finite() && *f >= 0.0)?;
    Some(Duration::from_secs(n(h)? * 3600 + n(m)? * 60) + Duration::from_secs_f64(s_f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn scopes_follow_what_each_limit_is_keyed_by() {
        assert_eq!(
            scopes("graph", "T1", "https://g/v1.0/organization"),
            [ScopeKey::GraphApp, ScopeKey::GraphTenant("t1".into())]
        );
        assert_eq!(
            scopes(
                "arm",
                "t1",
                "https://m/subscriptions/S1/resourceGroups?api-version=1"
            ),
            [ScopeKey::ArmSubscription("t1".into(), "s1".into())]
        );
        assert_eq!(
            scopes("arm", "t1", "https://m/subscriptions?api-version=1"),
            [ScopeKey::ArmTenant("t1".into())]
        );
        assert_eq!(
            scopes("resource_graph", "t1", "https://m/providers/x"),
            [ScopeKey::ResourceGraph("t1".into())]
        );
        assert_eq!(
            scopes("partner_center", "p", "https://pc/v1/customers"),
            [ScopeKey::PartnerCenter]
        );
        assert_eq!(parse_hms("00:01:05"), Some(Duration::from_secs(65)));
        assert_eq!(parse_hms("5"), None);
    }

    #[test]
    fn a_quota_counted_down_to_zero_waits_for_its_reset() {
        let p = Pacer::new();
        let s = PacingSettings::default();
        let rg = scopes("resource_graph", "t", "");
        let t0 = Instant::now();
        assert_eq!(p.reserve(&rg, &s, t0), Duration::ZERO, "nothing known: go");
        p.observe(
            &rg,
            200,
            &headers(&[
                ("x-ms-user-quota-remaining", "2"),
                ("x-ms-user-quota-resets-after", "00:00:04"),
            ]),
            None,
            t0,
        );
        assert_eq!(p.reserve(&rg, &s, t0), Duration::ZERO);
        assert_eq!(p.reserve(&rg, &s, t0), Duration::ZERO);
        assert_eq!(
            p.reserve(&rg, &s, t0),
            Duration::from_secs(4),
            "third waits for the reset"
        );
        // After the reset the count is unknown again, so the next goes.
        let later = t0 + Duration::from_secs(5);
        assert_eq!(p.reserve(&rg, &s, later), Duration::ZERO);
        // Other tenants are not held up.
        assert_eq!(
            p.reserve(&scopes("resource_graph", "u", ""), &s, t0),
            Duration::ZERO
        );
        // Off: never waits.
        let off = PacingSettings {
            enabled: false,
            ..s
        };
        p.observe(
            &rg,
            200,
            &headers(&[("x-ms-user-quota-remaining", "0")]),
            None,
            later,
        );
        assert_eq!(p.reserve(&rg, &off, later), Duration::ZERO);
        assert!(p.reserve(&rg, &s, later) > Duration::ZERO);
    }

    #[test]
    fn retry_after_blocks_the_scope_graph_names() {
        let p = Pacer::new();
        let s = PacingSettings::default();
        let t0 = Instant::now();
        let a = scopes("graph", "a", "");
        let b = scopes("graph", "b", "");
        let tenant_wide = headers(&[("x-ms-throttle-scope", "Tenant_Application/Read/app/a")]);
        p.observe(&a, 429, &tenant_wide, Some(Duration::from_secs(7)), t0);
        assert_eq!(p.reserve(&a, &s, t0), Duration::from_secs(7));
        assert_eq!(
            p.reserve(&b, &s, t0),
            Duration::ZERO,
            "another tenant goes on"
        );
        let app_wide = headers(&[("x-ms-throttle-scope", "Application/Read/app")]);
        p.observe(&b, 429, &app_wide, Some(Duration::from_secs(3)), t0);
        let c = scopes("graph", "c", "");
        assert_eq!(
            p.reserve(&c, &s, t0),
            Duration::from_secs(3),
            "the whole app waits"
        );
        // A 429 without Retry-After still holds the scope for the floor.
        let arm = scopes("arm", "a", "https://m/subscriptions");
        p.observe(&arm, 429, &HeaderMap::new(), None, t0);
        assert_eq!(p.reserve(&arm, &s, t0), Duration::from_secs(1));
    }

    /// Pacing on, with this share and Graph app limit.
    fn pacing(budget_share: f64, graph_app_limit: u32) -> PacingSettings {
        PacingSettings {
            enabled: true,
            budget_share,
            graph_app_limit,
            ..PacingSettings::default()
        }
    }

    #[test]
    fn the_graph_app_budget_is_the_share_of_the_published_limit() {
        let p = Pacer::new();
        // 20 per 10 s, half of it ours: a burst of 10, then one every second.
        let s = pacing(0.5, 20);
        let t0 = Instant::now();
        let waits: Vec<Duration> = (0..13)
            .map(|i| p.reserve(&scopes("graph", &format!("t{i}"), ""), &s, t0))
            .collect();
        assert!(waits[..10].iter().all(|w| w.is_zero()), "{waits:?}");
        assert_eq!(&waits[10..], [1, 2, 3].map(Duration::from_secs));
    }

    #[test]
    fn partner_center_is_spaced_to_the_share_of_its_limit_and_a_429_holds_all_of_it() {
        let p = Pacer::new();
        // 500 per minute, half of it ours: a burst of 250, then one every
        // 240 ms, whichever customer the request is about.
        let s = pacing(0.5, 20);
        let t0 = Instant::now();
        let pc = scopes(
            "partner_center",
            "partner",
            "https://pc/v1/customers/c/subscriptions",
        );
        let waits: Vec<Duration> = (0..253).map(|_| p.reserve(&pc, &s, t0)).collect();
        assert!(waits[..250].iter().all(|w| w.is_zero()), "{waits:?}");
        assert_eq!(&waits[250..], [240, 480, 720].map(Duration::from_millis));
        // Graph's budget is its own.
        assert!(p.reserve(&scopes("graph", "t", ""), &s, t0).is_zero());

        // A 429 holds every Partner Center request until its Retry-After.
        let p = Pacer::new();
        p.observe(
            &pc,
            429,
            &HeaderMap::new(),
            Some(Duration::from_secs(57)),
            t0,
        );
        assert_eq!(p.reserve(&pc, &s, t0), Duration::from_secs(57));
    }

    #[test]
    fn concurrent_bookings_of_the_app_budget_never_share_a_slot() {
        let p = std::sync::Arc::new(Pacer::new());
        // 20 per 10 s, all ours: a burst of 20, then one every half second.
        let s = pacing(1.0, 20);
        let t0 = Instant::now();
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let p = p.clone();
                std::thread::spawn(move || {
                    (0..50)
                        .map(|j| p.reserve(&scopes("graph", &format!("t{i}-{j}"), ""), &s, t0))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut waits: Vec<Duration> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        waits.sort();
        assert!(waits[..20].iter().all(Duration::is_zero));
        for (k, w) in waits.iter().enumerate().skip(20) {
            assert_eq!(*w, Duration::from_millis(500) * (k as u32 - 19), "slot {k}");
        }
    }

    #[test]
    fn cost_management_has_its_own_budget_fed_by_its_remaining_list() {
        let p = Pacer::new();
        let s = PacingSettings::default();
        let url = "https://m/subscriptions/S1/providers/Microsoft.CostManagement/query";
        let cost = scopes("cost_management", "T", url);
        assert_eq!(cost, [ScopeKey::CostManagement("t".into())]);
        let t0 = Instant::now();
        p.observe(
            &cost,
            200,
            &headers(&[(COST_REMAINING, "QueriesPer10Seconds:1,QueriesPer1Minute:7")]),
            None,
            t0,
        );
        assert_eq!(p.reserve(&cost, &s, t0), Duration::ZERO);
        assert_eq!(
            p.reserve(&cost, &s, t0),
            COST_WINDOW,
            "the 10 s quota is spent"
        );
        // A 429 blocks it for its retry-after; ARM reads of the same
        // subscription go on.
        p.observe(
            &cost,
            429,
            &HeaderMap::new(),
            Some(Duration::from_secs(30)),
            t0,
        );
        assert_eq!(p.reserve(&cost, &s, t0), Duration::from_secs(30));
        assert_eq!(p.reserve(&scopes("arm", "t", url), &s, t0), Duration::ZERO);
        assert_eq!(least_remaining("a:3, b=9 ;c:1"), Some(1));
        assert_eq!(least_remaining("5"), Some(5));
        assert_eq!(least_remaining("none"), None);
    }

    #[test]
    fn arm_remaining_reads_space_requests_until_the_bucket_refills() {
        let p = Pacer::new();
        let s = PacingSettings::default();
        let arm = scopes("arm", "a", "https://m/subscriptions");
        let t0 = Instant::now();
        p.observe(
            &arm,
            200,
            &headers(&[("x-ms-ratelimit-remaining-tenant-reads", "1")]),
            None,
            t0,
        );
        assert_eq!(p.reserve(&arm, &s, t0), Duration::ZERO);
        assert_eq!(p.reserve(&arm, &s, t0), ARM_REFILL);
        let keep: HashSet<String> = HashSet::new();
        p.retain_tenants(&keep);
        assert_eq!(
            p.reserve(&arm, &s, t0),
            Duration::ZERO,
            "forgotten with the tenant"
        );
    }
}
