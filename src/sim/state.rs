//! Shared, mutable simulator state: counters, issued refresh tokens, injected
//! faults, the vault's contents. Locks are never held across an `.await`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::clock::Clock;
use super::data::World;
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
}

/// What the token endpoint remembers about a refresh token it issued.
#[derive(Debug, Clone)]
pub(crate) struct RefreshGrant {
    pub client_id: String,
    pub user_oid: String,
    pub home_tenant: String,
    pub issued_at: i64,
}

/// Everything the request handlers share.
pub(crate) struct SimState {
    pub world: World,
    pub origins: Origins,
    pub clock: Clock,
    pub signer: Signer,
    pub vault: Mutex<Vault>,
    latency_ms: AtomicU64,
    counters: Mutex<HashMap<(Service, Option<String>), u64>>,
    refresh_tokens: Mutex<HashMap<String, RefreshGrant>>,
    token_errors: Mutex<HashMap<String, u32>>,
    issued: Mutex<Vec<String>>,
}

/// Locks a mutex, carrying on with the data if a handler panicked while
/// holding it: every critical section leaves the data consistent.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SimState {
    pub fn new(world: World, origins: Origins, vault: Vault, latency: Duration) -> Self {
        let issued = vec![
            world.sam_app.secret.clone(),
            world.identity_app.secret.clone(),
        ];
        Self {
            world,
            origins,
            clock: Clock::default(),
            signer: Signer::random(),
            vault: Mutex::new(vault),
            latency_ms: AtomicU64::new(duration_ms(latency)),
            counters: Mutex::default(),
            refresh_tokens: Mutex::default(),
            token_errors: Mutex::default(),
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

    /// Records a secret value so tests can look for leaks of it.
    pub fn remember_secret(&self, s: &str) {
        lock(&self.issued).push(s.to_string());
    }

    pub fn issued_secrets(&self) -> Vec<String> {
        lock(&self.issued).clone()
    }

    pub fn insert_refresh_token(&self, token: String, grant: RefreshGrant) {
        self.remember_secret(&token);
        lock(&self.refresh_tokens).insert(token, grant);
    }

    pub fn refresh_grant(&self, token: &str) -> Option<RefreshGrant> {
        lock(&self.refresh_tokens).get(token).cloned()
    }

    pub fn set_token_error(&self, tenant_id: &str, code: u32) {
        lock(&self.token_errors).insert(tenant_id.to_ascii_lowercase(), code);
    }

    pub fn clear_token_error(&self, tenant_id: &str) {
        lock(&self.token_errors).remove(&tenant_id.to_ascii_lowercase());
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
