//! Shared, mutable simulator state: counters, issued refresh tokens, injected
//! faults, the vault's contents. Locks are never held across an `.await`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tenantwatch_common::sync::lock;

use crate::clock::Clock;
use crate::entra::authorize::AuthCodes;
use crate::entra::certs::AppCertificate;
use crate::entra::device::DeviceCodes;
use crate::entra::federation::Issuer;
use crate::estate::{gdap, Estate, Relationship};
use crate::faults::Faults;
use crate::jwt::Signer;
use crate::requests::{RequestLog, RequestRecord};
use crate::service::Service;
use crate::world::{Tenant, World};

/// Resource Graph's documented user quota: 15 queries per 5-second window
/// (learn.microsoft.com/azure/governance/resource-graph/concepts/guidance-for-throttled-requests).
pub(crate) const RG_QUOTA: u32 = 15;
/// Length of a Resource Graph quota window.
pub(crate) const RG_QUOTA_WINDOW: Duration = Duration::from_secs(5);

/// The origin (scheme://host:port) of each simulated service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origins {
    pub login: String,
    pub keyvault: String,
    pub graph: String,
    pub arm: String,
    pub partner_center: String,
    /// Plain-HTTP managed identity endpoint (IMDS and App Service paths).
    pub managed_identity: String,
    /// Plain-HTTP admin API.
    pub admin: String,
}

/// What the token endpoint remembers about a refresh token it issued.
#[derive(Debug, Clone)]
pub(crate) struct RefreshGrant {
    pub client_id: String,
    pub user_oid: String,
    pub home_tenant: String,
    pub issued_at: i64,
    /// Issue order, so a revocation can cut off everything issued before it.
    pub seq: u64,
    /// Issued to a public-client flow (device code or auth code without a
    /// client credential), so it may be redeemed without one.
    pub public: bool,
}

/// The credentials registered on the apps besides their secrets.
pub(crate) struct Credentials {
    /// Certificate of the single-tenant service identity.
    pub identity_cert: AppCertificate,
    /// Certificate of the multi-tenant SAM (partner) app.
    pub partner_cert: AppCertificate,
    /// The Kubernetes OIDC issuer the identity's federated credential trusts.
    pub issuer: Issuer,
    /// App Service's `IDENTITY_HEADER` value.
    pub identity_header: String,
}

/// Everything the request handlers share.
pub(crate) struct SimState {
    pub world: World,
    /// Licences, resources, GDAP relationships… generated at start-up.
    pub estate: Estate,
    /// Rows per Resource Graph page.
    pub rg_page_size: usize,
    /// Every request received.
    pub requests: RequestLog,
    pub origins: Origins,
    pub clock: Clock,
    pub signer: Signer,
    pub creds: Credentials,
    pub faults: Faults,
    pub auth_codes: AuthCodes,
    pub device_codes: DeviceCodes,
    latency_ms: AtomicU64,
    /// Access-token lifetime in seconds; 0 means Entra's own (just under an hour).
    token_lifetime_secs: AtomicI64,
    /// Lower-case ids of tenants removed from Partner Center and GDAP.
    removed: Mutex<HashSet<String>>,
    /// Resource Graph quota per caller: window start and queries in it.
    rg_quota: Mutex<HashMap<String, (Instant, u32)>>,
    refresh_tokens: Mutex<HashMap<String, RefreshGrant>>,
    /// Next `RefreshGrant::seq`.
    rt_seq: AtomicU64,
    /// Grants with a lower `seq` were revoked.
    revoked_below: AtomicU64,
    /// Sim time of the last revocation (the user's TokensValidFrom).
    tokens_valid_from: AtomicI64,
    /// Lower-case client ids whose secret has expired.
    expired_secrets: Mutex<HashSet<String>>,
    token_errors: Mutex<HashMap<String, u32>>,
    token_throttles: Mutex<HashMap<String, u64>>,
    issued: Mutex<Vec<String>>,
}

impl SimState {
    pub fn new(
        world: World,
        estate: Estate,
        rg_page_size: usize,
        origins: Origins,
        latency: Duration,
        creds: Credentials,
    ) -> Self {
        let issued = vec![
            world.sam_app.secret.clone(),
            world.identity_app.secret.clone(),
            creds.identity_header.clone(),
            creds.identity_cert.pem.clone(),
            creds.partner_cert.pem.clone(),
        ];
        Self {
            world,
            estate,
            rg_page_size: rg_page_size.max(1),
            requests: RequestLog::default(),
            origins,
            clock: Clock::default(),
            signer: Signer::random(),
            creds,
            faults: Faults::default(),
            auth_codes: AuthCodes::default(),
            device_codes: DeviceCodes::default(),
            latency_ms: AtomicU64::new(duration_ms(latency)),
            token_lifetime_secs: AtomicI64::new(0),
            removed: Mutex::default(),
            rg_quota: Mutex::default(),
            refresh_tokens: Mutex::default(),
            rt_seq: AtomicU64::new(0),
            revoked_below: AtomicU64::new(0),
            tokens_valid_from: AtomicI64::new(0),
            expired_secrets: Mutex::default(),
            token_errors: Mutex::default(),
            token_throttles: Mutex::default(),
            issued: Mutex::new(issued),
        }
    }

    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms.load(Ordering::Relaxed))
    }

    pub fn set_latency(&self, d: Duration) {
        self.latency_ms.store(duration_ms(d), Ordering::Relaxed);
    }

    /// Lifetime for the next access token: Entra trims a little off the hour,
    /// differently per token, unless a fixed lifetime was set (benchmarks and
    /// the soak compress time this way).
    pub fn token_lifetime(&self) -> i64 {
        match self.token_lifetime_secs.load(Ordering::Relaxed) {
            0 => rand::Rng::gen_range(&mut rand::thread_rng(), 3300..=3599),
            fixed => fixed,
        }
    }

    /// Fixes the access-token lifetime (`None`: Entra's own).
    pub fn set_token_lifetime(&self, d: Option<Duration>) {
        let secs = d.map_or(0, |d| i64::try_from(d.as_secs().max(1)).unwrap_or(i64::MAX));
        self.token_lifetime_secs.store(secs, Ordering::Relaxed);
    }

    /// Records a request.
    pub fn record(&self, r: RequestRecord) {
        self.requests.record(r);
    }

    pub fn request_count(&self, service: Service, tenant: Option<&str>) -> u64 {
        self.requests.count(service, tenant)
    }

    /// Every (service, tenant) counter, for the admin API.
    pub fn request_counts(&self) -> Vec<(Service, Option<String>, u64)> {
        self.requests.counts()
    }

    /// Takes a tenant out of Partner Center and GDAP; the partner loses
    /// delegated access to it (AADSTS50020 from then on).
    pub fn remove_customer(&self, tenant_id: &str) {
        lock(&self.removed).insert(tenant_id.to_ascii_lowercase());
    }

    /// Whether [`SimState::remove_customer`] took this tenant away.
    pub fn is_removed(&self, tenant_id: &str) -> bool {
        lock(&self.removed).contains(&tenant_id.to_ascii_lowercase())
    }

    /// Whether the partner's admin can act in `tenant_id` through
    /// delegated admin (a listed customer or a GDAP-only tenant).
    pub fn has_delegated_access(&self, tenant_id: &str) -> bool {
        self.world.is_customer(tenant_id) && !self.is_removed(tenant_id)
    }

    /// Partner Center's customer list now, in its order.
    pub fn pc_customers(&self) -> Vec<&Tenant> {
        let removed = lock(&self.removed).clone();
        self.world
            .customers
            .iter()
            .filter(|t| !removed.contains(&t.id.to_ascii_lowercase()))
            .collect()
    }

    /// GDAP-only tenants not removed.
    pub fn gdap_only_tenants(&self) -> Vec<&Tenant> {
        let removed = lock(&self.removed).clone();
        self.world
            .gdap_only
            .iter()
            .filter(|t| !removed.contains(&t.id.to_ascii_lowercase()))
            .collect()
    }

    /// The partner's GDAP relationships as they stand at `now`, without
    /// those of removed tenants.
    pub fn relationships_at(&self, now: i64) -> Vec<(&Relationship, gdap::Current)> {
        let removed = lock(&self.removed).clone();
        self.estate
            .relationships
            .iter()
            .filter(|r| !removed.contains(&r.customer_id.to_ascii_lowercase()))
            .map(|r| (r, r.at(now)))
            .collect()
    }

    /// Counts one Resource Graph query against `caller`'s quota and returns
    /// what is left in the window. The sim never throttles on its own: at
    /// zero it keeps answering (inject a fault for 429s).
    pub fn rg_quota_take(&self, caller: &str) -> u32 {
        let now = Instant::now();
        let mut map = lock(&self.rg_quota);
        let entry = map.entry(caller.to_string()).or_insert((now, 0));
        if now.duration_since(entry.0) >= RG_QUOTA_WINDOW {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        RG_QUOTA.saturating_sub(entry.1)
    }

    /// Records a secret value so tests can look for leaks of it.
    pub fn remember_secret(&self, s: &str) {
        lock(&self.issued).push(s.to_string());
    }

    pub fn issued_secrets(&self) -> Vec<String> {
        lock(&self.issued).clone()
    }

    /// Stores a new refresh token; its `seq` is assigned here.
    pub fn insert_refresh_token(&self, token: String, mut grant: RefreshGrant) {
        grant.seq = self.rt_seq.fetch_add(1, Ordering::SeqCst);
        self.remember_secret(&token);
        lock(&self.refresh_tokens).insert(token, grant);
    }

    /// Revokes every refresh token issued so far, as "Revoke sessions" (or a
    /// password reset) does by moving the user's TokensValidFrom to now.
    pub fn revoke_refresh_tokens(&self) {
        let below = self.rt_seq.load(Ordering::SeqCst);
        self.revoked_below.fetch_max(below, Ordering::SeqCst);
        self.tokens_valid_from
            .store(self.clock.now_unix(), Ordering::SeqCst);
    }

    /// Whether a revocation came after this grant was issued.
    pub fn is_revoked(&self, grant: &RefreshGrant) -> bool {
        grant.seq < self.revoked_below.load(Ordering::SeqCst)
    }

    /// Sim time of the last revocation (0 if none).
    pub fn tokens_valid_from(&self) -> i64 {
        self.tokens_valid_from.load(Ordering::SeqCst)
    }

    /// Marks an app's client secret as expired.
    pub fn expire_secret(&self, client_id: &str) {
        lock(&self.expired_secrets).insert(client_id.to_ascii_lowercase());
    }

    /// Whether an app's client secret has expired.
    pub fn secret_expired(&self, client_id: &str) -> bool {
        lock(&self.expired_secrets).contains(&client_id.to_ascii_lowercase())
    }

    pub fn refresh_grant(&self, token: &str) -> Option<RefreshGrant> {
        lock(&self.refresh_tokens).get(token).cloned()
    }

    pub fn set_token_error(&self, tenant_id: &str, code: u32) {
        lock(&self.token_errors).insert(tenant_id.to_ascii_lowercase(), code);
    }

    /// Clears injected AADSTS errors and throttling for a tenant.
    pub fn clear_token_error(&self, tenant_id: &str) {
        lock(&self.token_errors).remove(&tenant_id.to_ascii_lowercase());
        lock(&self.token_throttles).remove(&tenant_id.to_ascii_lowercase());
    }

    /// Makes the tenant's token requests answer 429 with this `Retry-After`.
    pub fn set_token_throttle(&self, tenant_id: &str, retry_after_secs: u64) {
        lock(&self.token_throttles).insert(tenant_id.to_ascii_lowercase(), retry_after_secs);
    }

    /// The tenant's injected throttling, if any.
    pub fn token_throttle(&self, tenant_id: &str) -> Option<u64> {
        lock(&self.token_throttles)
            .get(&tenant_id.to_ascii_lowercase())
            .copied()
    }

    pub fn token_error(&self, tenant_id: &str) -> Option<u32> {
        lock(&self.token_errors)
            .get(&tenant_id.to_ascii_lowercase())
            .copied()
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
