//! Shared, mutable simulator state: counters, issued refresh tokens, injected
//! faults, the vault's contents. Locks are never held across an `.await`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::authorize::AuthCodes;
use super::certs::AppCertificate;
use super::clock::Clock;
use super::data::World;
use super::device::DeviceCodes;
use super::faults::Faults;
use super::federation::Issuer;
use super::jwt::Signer;
use super::keyvault::Vault;
use super::Service;

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
    pub origins: Origins,
    pub clock: Clock,
    pub signer: Signer,
    pub vault: Mutex<Vault>,
    pub creds: Credentials,
    pub faults: Faults,
    pub auth_codes: AuthCodes,
    pub device_codes: DeviceCodes,
    latency_ms: AtomicU64,
    counters: Mutex<HashMap<(Service, Option<String>), u64>>,
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

/// Locks a mutex, carrying on with the data if a handler panicked while
/// holding it: every critical section leaves the data consistent.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SimState {
    pub fn new(
        world: World,
        origins: Origins,
        vault: Vault,
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
            origins,
            clock: Clock::default(),
            signer: Signer::random(),
            vault: Mutex::new(vault),
            creds,
            faults: Faults::default(),
            auth_codes: AuthCodes::default(),
            device_codes: DeviceCodes::default(),
            latency_ms: AtomicU64::new(duration_ms(latency)),
            counters: Mutex::default(),
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

    pub fn count(&self, service: Service, tenant: Option<String>) {
        *lock(&self.counters).entry((service, tenant)).or_default() += 1;
    }

    pub fn request_count(&self, service: Service, tenant: Option<&str>) -> u64 {
        lock(&self.counters)
            .iter()
            .filter(|((s, t), _)| {
                *s == service
                    && match tenant {
                        None => true,
                        Some(want) => t.as_deref().is_some_and(|t| t.eq_ignore_ascii_case(want)),
                    }
            })
            .map(|(_, n)| n)
            .sum()
    }

    /// Every (service, tenant) counter, for the admin API.
    pub fn request_counts(&self) -> Vec<(Service, Option<String>, u64)> {
        lock(&self.counters)
            .iter()
            .map(|((s, t), n)| (*s, t.clone(), *n))
            .collect()
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
