//! The state every simulated service reads: the seeded world and estate,
//! the origins, the simulated clock, the access-token signer, the request
//! log, fault registry and throttling limits the middleware uses, the CAE
//! critical events, the injected latency, the customers taken away, and every
//! secret handed out (for leak checks).
//!
//! What only one service needs lives with it (`entra::state::Entra`,
//! `keyvault::KeyVault`, `arm::resource_graph::ResourceGraph`), each beside
//! an `Arc` of this, so this module depends on no service. Locks are never
//! held across an `.await`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tenantwatch_common::sync::lock;

use crate::cae::CaeEvents;
use crate::clock::Clock;
use crate::estate::{gdap, Estate, Relationship};
use crate::faults::Faults;
use crate::jwt::Signer;
use crate::limits::Limits;
use crate::requests::{RequestLog, RequestRecord};
use crate::service::Service;
use crate::world::{Tenant, World};

/// The origin (scheme://host:port) of each simulated service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origins {
    /// Entra's login origin.
    pub login: String,
    /// Key Vault (the vault URL).
    pub keyvault: String,
    /// Microsoft Graph.
    pub graph: String,
    /// Azure Resource Manager (and Resource Graph).
    pub arm: String,
    /// Partner Center.
    pub partner_center: String,
    /// Plain-HTTP managed identity endpoint (IMDS and App Service paths).
    pub managed_identity: String,
    /// Plain-HTTP admin API.
    pub admin: String,
}

/// What every service shares.
pub(crate) struct SimState {
    /// Tenants, apps and the partner admins, fixed at start-up.
    pub world: World,
    /// Licences, resources, GDAP relationships… generated at start-up.
    pub estate: Estate,
    /// Every request received.
    pub requests: RequestLog,
    pub origins: Origins,
    /// Simulated time: token lifetimes, refresh-token inactivity, `Date`.
    pub clock: Clock,
    /// Signs the access and id tokens Entra issues; resources verify with it.
    pub signer: Signer,
    /// Faults injected per service, tenant, count or rate.
    pub faults: Faults,
    /// Microsoft's published throttling limits (off unless switched on).
    pub limits: Limits,
    /// Critical events after which CAE-capable resources refuse earlier CAE tokens.
    pub cae: CaeEvents,
    /// Delay before every response, in milliseconds.
    latency_ms: AtomicU64,
    /// Lower-case ids of tenants removed from Partner Center and GDAP.
    removed: Mutex<HashSet<String>>,
    /// Every secret, token and key handed out, in order.
    issued: Mutex<Vec<String>>,
}

impl SimState {
    /// The shared state at start-up; the apps' client secrets are the first
    /// secrets remembered.
    pub fn new(world: World, estate: Estate, origins: Origins, latency: Duration) -> Self {
        let mut sam_secrets = world.partners.iter().map(|p| p.sam_app.secret.clone());
        let issued = sam_secrets
            .next()
            .into_iter()
            .chain(std::iter::once(world.identity_app.secret.clone()))
            .chain(sam_secrets)
            .collect();
        Self {
            world,
            estate,
            requests: RequestLog::default(),
            origins,
            clock: Clock::default(),
            signer: Signer::random(),
            faults: Faults::default(),
            limits: Limits::new(false, 1.0),
            cae: CaeEvents::default(),
            latency_ms: AtomicU64::new(duration_ms(latency)),
            removed: Mutex::default(),
            issued: Mutex::new(issued),
        }
    }

    /// The delay injected before every response.
    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms.load(Ordering::Relaxed))
    }

    /// Sets the delay injected before every response.
    pub fn set_latency(&self, d: Duration) {
        self.latency_ms.store(duration_ms(d), Ordering::Relaxed);
    }

    /// Records a request.
    pub fn record(&self, r: RequestRecord) {
        self.requests.record(r);
    }

    /// Requests to `service`, for one tenant or (`None`) all.
    pub fn request_count(&self, service: Service, tenant: Option<&str>) -> u64 {
        self.requests.count(service, tenant)
    }

    /// Every (service, tenant) counter, for the admin API.
    pub fn request_counts(&self) -> Vec<(Service, Option<String>, u64)> {
        self.requests.counts()
    }

    /// Takes a tenant out of Partner Center and GDAP, for every partner that
    /// has it; they lose delegated access to it (AADSTS50020 from then on).
    pub fn remove_customer(&self, tenant_id: &str) {
        lock(&self.removed).insert(tenant_id.to_ascii_lowercase());
    }

    /// Whether [`SimState::remove_customer`] took this tenant away.
    pub fn is_removed(&self, tenant_id: &str) -> bool {
        lock(&self.removed).contains(&tenant_id.to_ascii_lowercase())
    }

    /// Whether partner `k`'s admin can act in `tenant_id` through delegated
    /// admin (one of its listed customers or its GDAP-only tenant).
    pub fn has_delegated_access(&self, k: usize, tenant_id: &str) -> bool {
        self.world.is_customer_of(k, tenant_id) && !self.is_removed(tenant_id)
    }

    /// Partner `k`'s Partner Center customer list now, in its order.
    pub fn pc_customers(&self, k: usize) -> Vec<&Tenant> {
        let removed = lock(&self.removed).clone();
        self.world
            .customers_of(k)
            .iter()
            .filter(|t| !removed.contains(&t.id.to_ascii_lowercase()))
            .collect()
    }

    /// Partner `k`'s GDAP-only tenants not removed.
    pub fn gdap_only_tenants(&self, k: usize) -> Vec<&Tenant> {
        let removed = lock(&self.removed).clone();
        self.world
            .gdap_only_of(k)
            .into_iter()
            .filter(|t| !removed.contains(&t.id.to_ascii_lowercase()))
            .collect()
    }

    /// Partner `k`'s GDAP relationships as they stand at `now`, without
    /// those of removed tenants.
    pub fn relationships_at(&self, k: usize, now: i64) -> Vec<(&Relationship, gdap::Current)> {
        let removed = lock(&self.removed).clone();
        self.estate
            .relationships
            .iter()
            .filter(|r| r.partner == k && !removed.contains(&r.customer_id.to_ascii_lowercase()))
            .map(|r| (r, r.at(now)))
            .collect()
    }

    /// Records a secret value so tests can look for leaks of it.
    pub fn remember_secret(&self, s: &str) {
        lock(&self.issued).push(s.to_string());
    }

    /// Every secret remembered so far, in the order handed out.
    pub fn issued_secrets(&self) -> Vec<String> {
        lock(&self.issued).clone()
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
