//! The token broker: the partner's refresh token, and one cached access token per
//! (tenant, API) minted from it.
//!
//! Concurrent callers for one key share a single token request (a per-key Tokio
//! mutex held across it), while different keys never wait on each other: the map
//! of keys is behind a `std` mutex held only long enough to clone an `Arc`.
//!
//! When the refresh token itself is dead (expired, revoked, wrong client secret)
//! every tenant would fail alike, so the broker opens a circuit: it says so once,
//! fails every caller at once without calling Entra, and lets one probe through per
//! [`PROBE_INTERVAL`] — or at once, when the store hands it a different token.
//!
//! A resource's claims challenge (CAE) replaces one cached token by a
//! redemption carrying the challenge's claims ([`TokenBroker::token_for_challenge`]);
//! a token's lifetime is honoured as Entra states it, up to the 28 h of a CAE
//! token. Each partner-tenant redemption also says whether the refresh token's
//! sign-in used MFA (`tenantwatch_refresh_token_mfa`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rand::Rng;
use tenantwatch_common::sync::{lock, read, write};

use crate::auth::entra::{Redeemed, TokenClient, TokenError};
use crate::config::cloud::Audiences;
use crate::config::PartnerApp;
use crate::metrics::{Metrics, PartnerMetrics};
use crate::model::Api;
use crate::model::ErrorClass;
use crate::model::{StoredToken, REFRESH_TOKEN_LIFETIME};
use crate::store::{Store, StoreError};
use crate::support::retry::Backoff;
use crate::support::secret::{ExposeSecret, SecretString};
use tenantwatch_common::time::unix_now;

/// Tokens are refreshed this long before they expire: twice the default tenant
/// timeout, so a token outlives the collection that fetched it. Longer wastes
/// tokens: with 5-minute cycles and ~1 h tokens a 5-minute margin costs a whole
/// extra cycle's refresh (benchmarked in docs/benchmarks.md)…
const REFRESH_AHEAD: Duration = Duration::from_secs(120);
/// …plus up to this much random jitter, so thousands of tenants do not refresh in one burst.
const REFRESH_JITTER_SECS: u64 = 60;
/// The lifetime the margin above is meant for (Entra's default is 60–90 min);
/// shorter-lived tokens get the same fraction of their lifetime as margin.
const NOMINAL_LIFETIME: Duration = Duration::from_secs(3600);
/// A permanent failure (consent missing, tenant gone) is not retried for this long,
/// so one cycle's collectors do not each hammer the token endpoint for a dead tenant.
const NEGATIVE_TTL: Duration = Duration::from_secs(60);
/// While the refresh token is dead, one probe request per this interval.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(300);
/// Redemptions run in parallel only within this long of a success.
const CANARY_AFTER: Duration = Duration::from_secs(60);
/// Attempts per call for `transient`/`throttled` failures.
const ATTEMPTS: u32 = 3;
/// Waits between those attempts: up to 0.5 s, then 1 s (or `Retry-After`).
const RETRY: Backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(8));
/// Longest wait inside one call; a longer `Retry-After` defers to a later cycle.
const MAX_IN_CALL_WAIT: Duration = Duration::from_secs(20);

/// Minting failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BrokerError {
    /// No refresh token has been loaded from the store yet.
    #[error("no refresh token loaded (the store has not been read successfully)")]
    NoRefreshToken,
    /// The token endpoint refused for this tenant (boxed: errors stay small to move).
    #[error(transparent)]
    Token(Box<TokenError>),
    /// The partner's refresh token is dead; no request was made (circuit open).
    #[error("partner refresh token unusable ({}); not asking Entra until the next probe", .0.class)]
    PartnerDown(Box<TokenError>),
}

impl BrokerError {
    /// True when the broker has already reported this once for every tenant
    /// (the refresh token or the partner app itself is unusable).
    pub fn partner_wide(&self) -> bool {
        match self {
            BrokerError::PartnerDown(_) => true,
            BrokerError::Token(t) => t.class.is_partner_wide(),
            BrokerError::NoRefreshToken => false,
        }
    }

    /// The error class for metrics: a missing refresh token counts as `other`.
    pub fn class(&self) -> ErrorClass {
        match self {
            BrokerError::NoRefreshToken => ErrorClass::Other,
            BrokerError::Token(t) | BrokerError::PartnerDown(t) => t.class,
        }
    }
}

enum Entry {
    Valid {
        secret: crate::tokens::packed::PackedToken,
        refresh_at: Instant,
        expires_at: Instant,
    },
    Failed {
        /// Boxed: every tenant and API has an entry, almost all of them valid.
        error: Box<TokenError>,
        until: Instant,
        /// The refresh-token generation that failed; a new token voids the entry.
        generation: u64,
    },
}

type Slot = Arc<tokio::sync::Mutex<Option<Entry>>>;

/// A tenant's slots, one per API it has asked for (indexed like [`Api`]).
/// One map entry and one copy of the tenant id per tenant rather than per
/// tenant and API: at 10,000 tenants with Graph and ARM tokens that is
/// 10,000 fewer keys (about 80 bytes each with their hash-table room).
type Slots = [Option<Slot>; API_COUNT];

/// How many variants [`Api`] has.
const API_COUNT: usize = 4;

/// Where `api`'s slot sits in a tenant's [`Slots`].
fn slot_index(api: Api) -> usize {
    match api {
        Api::Graph => 0,
        Api::Arm => 1,
        Api::PartnerCenter => 2,
        Api::KeyVault => 3,
    }
}

/// The refresh token in use.
struct Current {
    token: StoredToken,
}

/// Circuit state for a dead refresh token.
struct Circuit {
    error: TokenError,
    next_probe: Instant,
}

/// Mints and caches delegated access tokens for customer tenants.
pub struct TokenBroker {
    tokens: TokenClient,
    app: PartnerApp,
    audiences: Audiences,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    /// The partner's refresh-token gauges.
    partner: Arc<PartnerMetrics>,
    /// `std` lock: only cloned out or swapped, never held across `.await`.
    current: RwLock<Option<Current>>,
    /// Open while the refresh token is known dead.
    circuit: Mutex<Option<Circuit>>,
    /// Bumped whenever a different refresh token is installed.
    generation: AtomicU64,
    /// When a redemption last succeeded. Without a recent success, one caller
    /// (the canary) redeems alone first, so a token that died meanwhile costs one
    /// refused request instead of one per tenant in flight.
    last_success: Mutex<Option<Instant>>,
    /// Held by the canary.
    canary: tokio::sync::Mutex<()>,
    /// Serialises store reloads triggered by `invalid_grant`.
    reload: tokio::sync::Mutex<()>,
    /// Per-tenant slots; `std` mutex held only to find or insert a slot.
    slots: Mutex<HashMap<Box<str>, Slots>>,
    /// Packs cached tokens against an earlier token of the same API.
    packer: crate::tokens::packed::TokenPacker<Api>,
}

impl TokenBroker {
    /// A broker for the partner app, reading its refresh token from `store`.
    pub fn new(
        tokens: TokenClient,
        app: PartnerApp,
        audiences: Audiences,
        store: Arc<Store>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            partner: metrics.partner(tokens.partner()),
            tokens,
            app,
            audiences,
            store,
            metrics,
            current: RwLock::new(None),
            circuit: Mutex::new(None),
            generation: AtomicU64::new(0),
            last_success: Mutex::new(None),
            canary: tokio::sync::Mutex::new(()),
            reload: tokio::sync::Mutex::new(()),
            slots: Mutex::new(HashMap::new()),
            packer: crate::tokens::packed::TokenPacker::new(),
        }
    }

    /// The store this broker reads.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The live metrics it feeds.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The partner's gauges (its name is the `partner` label).
    pub fn partner(&self) -> &Arc<PartnerMetrics> {
        &self.partner
    }

    /// The partner app.
    pub fn app(&self) -> &PartnerApp {
        &self.app
    }

    /// Reads the store and installs what it holds. Returns true when that is a
    /// different token than the one in use (a new consent, another replica's rotation).
    pub async fn load_from_store(&self) -> Result<bool, StoreError> {
        let stored = self.store.load().await;
        self.partner.set_store_up(stored.is_ok());
        Ok(self.install(stored?))
    }

    /// Switches to `token` (read from, or just written to, the store).
    /// Returns true when it differs from the token in use.
    pub fn install(&self, token: StoredToken) -> bool {
        let mut cur = write(&self.current);
        let changed = cur
            .as_ref()
            .is_none_or(|c| c.token.value.expose_secret() != token.value.expose_secret());
        // Issue time + 90 days in the store's clock, moved into the local frame, so
        // a skewed host clock (or the simulator's moved clock) cannot hide it.
        let expiry = token
            .remaining(REFRESH_TOKEN_LIFETIME)
            .map(|left| unix_now() + left);
        let created = token.age().map(|age| unix_now() - age);
        self.partner.refresh.update(|r| {
            r.expiry = expiry;
            r.created = created;
        });
        // Kept even when the value is the same: the fresh read carries the store's
        // current time, which the token's age is measured by.
        *cur = Some(Current { token });
        drop(cur);
        if changed {
            self.generation.fetch_add(1, Ordering::Relaxed);
            // Whether Entra accepts this token, and whether its sign-in used
            // MFA, is unknown until it is used: the gauges describe the token
            // in use, not the one before it.
            self.partner.refresh.update(|r| {
                r.valid = None;
                r.mfa = None;
            });
            // A different token deserves an immediate try, not the next probe slot.
            if let Some(c) = lock(&self.circuit).as_mut() {
                c.next_probe = Instant::now();
            }
        }
        changed
    }

    /// Whether the partner's access token says the refresh token in use came
    /// from a sign-in with MFA; `None` until known.
    pub fn partner_mfa(&self) -> Option<bool> {
        self.partner.refresh.get().mfa
    }

    /// True once a refresh token is loaded.
    pub fn has_refresh_token(&self) -> bool {
        self.current_token().is_some()
    }

    /// The token in use.
    pub fn current_token(&self) -> Option<StoredToken> {
        let cur = read(&self.current);
        cur.as_ref().map(|c| c.token.clone())
    }

    fn slot(&self, tenant: &str, api: Api) -> Slot {
        let mut slots = lock(&self.slots);
        let row = match slots.get_mut(tenant) {
            Some(row) => row,
            None => slots.entry(tenant.into()).or_default(),
        };
        row[slot_index(api)]
            .get_or_insert_with(|| Arc::new(tokio::sync::Mutex::new(None)))
            .clone()
    }

    /// Drops cached tokens of tenants no longer in scope, so the cache tracks discovery.
    pub fn retain_tenants(&self, keep: &HashSet<String>) {
        let partner = self.app.tenant_id.clone();
        lock(&self.slots).retain(|tenant, _| keep.contains(&**tenant) || **tenant == *partner);
    }

    /// True when `class` at `tenant` means the refresh token itself is unusable.
    fn partner_wide(&self, tenant: &str, class: ErrorClass) -> bool {
        class.is_partner_wide()
            || (tenant == self.app.tenant_id
                && matches!(
                    class,
                    ErrorClass::MfaRequired | ErrorClass::ConditionalAccess
                ))
    }

    /// Called with the circuit state before a request: `Err` when it is open and
    /// this caller is not the probe.
    fn check_circuit(&self) -> Result<(), BrokerError> {
        let mut c = lock(&self.circuit);
        match c.as_mut() {
            Some(open) if Instant::now() < open.next_probe => {
                Err(BrokerError::PartnerDown(Box::new(open.error.clone())))
            }
            Some(open) => {
                // This caller is the probe; the rest keep failing fast meanwhile.
                open.next_probe = Instant::now() + PROBE_INTERVAL;
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn needs_canary(&self) -> bool {
        lock(&self.last_success).is_none_or(|t| t.elapsed() > CANARY_AFTER)
    }

    /// True when `used` is still the token in use: only then does its
    /// outcome say anything about `tenantwatch_refresh_token_valid`.
    fn in_use(&self, used: &StoredToken) -> bool {
        read(&self.current)
            .as_ref()
            .is_some_and(|c| c.token.value.expose_secret() == used.value.expose_secret())
    }

    fn on_success(&self, used: &StoredToken, tenant: &str, access: &SecretString) {
        *lock(&self.last_success) = Some(Instant::now());
        if self.in_use(used) {
            // Only the partner's own token is read for MFA: it is the one
            // Partner Center sees. The payload is read, never kept or logged.
            let partner = tenant == self.app.tenant_id;
            let mfa = partner.then(|| crate::support::jwt::amr_has_mfa(access.expose_secret()));
            self.partner.refresh.update(|r| {
                r.valid = Some(true);
                if let Some(mfa) = mfa {
                    r.mfa = mfa;
                }
            });
        }
        if lock(&self.circuit).take().is_some() {
            tracing::info!(
                partner = &*self.partner.name,
                "the partner refresh token works again; resuming every tenant"
            );
        }
    }

    fn on_partner_failure(&self, used: &StoredToken, error: &TokenError) {
        if self.in_use(used) {
            self.partner.refresh.update(|r| r.valid = Some(false));
        }
        let mut c = lock(&self.circuit);
        if c.is_none() {
            tracing::error!(partner = &*self.partner.name,
                reason = %error.class,
                error = %error,
                "the partner refresh token is unusable, so every tenant is down: {}. Probing every {} s.",
                error.class.advice(),
                PROBE_INTERVAL.as_secs()
            );
        }
        *c = Some(Circuit {
            error: error.clone(),
            next_probe: Instant::now() + PROBE_INTERVAL,
        });
    }

    /// Redeems the refresh token in use at `tenant` for `api`, retrying transient
    /// failures with jittered backoff and re-reading the store once on `invalid_grant`.
    pub async fn redeem(&self, tenant: &str, api: Api) -> Result<Redeemed, BrokerError> {
        self.redeem_with(tenant, api, None).await
    }

    /// [`TokenBroker::redeem`] with a claims challenge's claims request.
    async fn redeem_with(
        &self,
        tenant: &str,
        api: Api,
        challenge: Option<&str>,
    ) -> Result<Redeemed, BrokerError> {
        let _canary = if self.needs_canary() {
            let guard = self.canary.lock().await;
            // Whoever held it before may have succeeded: then go on in parallel.
            self.needs_canary().then_some(guard)
        } else {
            None
        };
        // After the canary: whoever held it may have opened the circuit meanwhile.
        self.check_circuit()?;
        let scope = self.audiences.scope(api);
        let mut reloaded = false;
        let mut attempt = 0;
        loop {
            let token = self.current_token().ok_or(BrokerError::NoRefreshToken)?;
            let result = self
                .tokens
                .redeem_refresh_token_with_claims(
                    &self.app,
                    tenant,
                    &scope,
                    api.label(),
                    &token.value,
                    challenge,
                )
                .await;
            let error = match result {
                Ok(r) => {
                    self.on_success(&token, tenant, &r.access.secret);
                    return Ok(r);
                }
                Err(e) => e,
            };
            attempt += 1;
            if error.class.is_transient() && attempt < ATTEMPTS {
                let wait = RETRY.delay(attempt, error.retry_after);
                if wait <= MAX_IN_CALL_WAIT {
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            if self.partner_wide(tenant, error.class) {
                // Another replica or a new consent may have stored a newer token.
                if !reloaded && self.reload_if_changed(&token).await {
                    reloaded = true;
                    continue;
                }
                self.on_partner_failure(&token, &error);
            }
            return Err(BrokerError::Token(Box::new(error)));
        }
    }

    async fn reload_if_changed(&self, used: &StoredToken) -> bool {
        let _one_at_a_time = self.reload.lock().await;
        if let Some(cur) = self.current_token() {
            if cur.value.expose_secret() != used.value.expose_secret() {
                return true; // someone else already reloaded
            }
        }
        match self.load_from_store().await {
            Ok(changed) => {
                if changed {
                    tracing::info!(
                        partner = &*self.partner.name,
                        "found a newer refresh token in the store; retrying with it"
                    );
                }
                changed
            }
            Err(e) => {
                tracing::warn!(partner = &*self.partner.name, error = %e, "cannot re-read the refresh token store");
                false
            }
        }
    }

    /// Forgets the cached token for (tenant, API) after a resource rejected it (401):
    /// it may have been revoked, or clocks disagree. The next call mints a new one.
    pub async fn invalidate(&self, tenant: &str, api: Api) {
        // A rejected token may mean the grant itself is gone: the next redemption
        // goes first and alone, so a dead refresh token costs one request, not N.
        *lock(&self.last_success) = None;
        let slot = self.slot(tenant, api);
        let mut entry = slot.lock().await;
        if matches!(&*entry, Some(Entry::Valid { .. })) {
            *entry = None;
        }
    }

    /// A valid access token for `api` in `tenant`, from cache or freshly minted.
    pub async fn token(&self, tenant: &str, api: Api) -> Result<SecretString, BrokerError> {
        self.token_with(tenant, api, None).await
    }

    /// A new access token for `api` in `tenant` after a resource answered a
    /// claims challenge to `refused`: that token is dropped (it was revoked
    /// before its expiry, and using it again would loop), and the refresh
    /// token is redeemed with the challenge's `claims`. The new token is
    /// cached. Collectors that were refused the same token at the same time
    /// share one redemption: whoever comes second finds it replaced.
    pub async fn token_for_challenge(
        &self,
        tenant: &str,
        api: Api,
        claims: &str,
        refused: &SecretString,
    ) -> Result<SecretString, BrokerError> {
        // A revoked token may mean a revoked session: as after any 401, the
        // next redemption goes first and alone, so a dead refresh token costs
        // one request, not one per tenant in flight.
        *lock(&self.last_success) = None;
        self.token_with(tenant, api, Some((claims, refused))).await
    }

    async fn token_with(
        &self,
        tenant: &str,
        api: Api,
        challenge: Option<(&str, &SecretString)>,
    ) -> Result<SecretString, BrokerError> {
        let slot = self.slot(tenant, api);
        let mut entry = slot.lock().await;
        let now = Instant::now();
        if let Some((_, refused)) = challenge {
            if let Some(Entry::Valid { secret, .. }) = &*entry {
                if let Ok(t) = secret.unpack() {
                    if t.expose_secret() != refused.expose_secret() {
                        return Ok(t);
                    }
                }
            }
            // Neither the revoked token nor a cached failure may answer.
            *entry = None;
        }
        match &*entry {
            Some(Entry::Valid {
                secret, refresh_at, ..
            }) if *refresh_at > now => match secret.unpack() {
                Ok(t) => return Ok(t),
                Err(e) => {
                    tracing::error!(partner = &*self.partner.name, tenant, api = api.label(), error = %e, "minting a new access token")
                }
            },
            Some(Entry::Failed {
                error,
                until,
                generation,
            }) if *until > now && *generation == self.generation.load(Ordering::Relaxed) => {
                return Err(BrokerError::Token(error.clone()))
            }
            _ => {}
        }
        // Read before the request: a token installed meanwhile must void this failure.
        let generation = self.generation.load(Ordering::Relaxed);
        match self
            .redeem_with(tenant, api, challenge.map(|(claims, _)| claims))
            .await
        {
            Ok(r) => {
                let expires_at = r.access.expires_at;
                let jitter =
                    Duration::from_secs(rand::thread_rng().gen_range(0..=REFRESH_JITTER_SECS));
                let scale = (expires_at.saturating_duration_since(now).as_secs_f64()
                    / NOMINAL_LIFETIME.as_secs_f64())
                .min(1.0);
                let refresh_at = expires_at
                    .checked_sub((REFRESH_AHEAD + jitter).mul_f64(scale))
                    .filter(|t| *t > now)
                    // A token shorter-lived than the margin is used for half its life.
                    .unwrap_or_else(|| now + (expires_at.saturating_duration_since(now) / 2));
                let secret = r.access.secret;
                *entry = Some(Entry::Valid {
                    secret: self.packer.pack(api, &secret),
                    refresh_at,
                    expires_at,
                });
                Ok(secret)
            }
            Err(error) => {
                // A still-valid token outlives a failed refresh-ahead attempt.
                if let Some(Entry::Valid {
                    secret, expires_at, ..
                }) = &*entry
                {
                    if *expires_at > now + Duration::from_secs(30) {
                        if let Ok(t) = secret.unpack() {
                            tracing::warn!(partner = &*self.partner.name, tenant, api = api.label(), error = %error, "token refresh failed; using the cached token until it expires");
                            return Ok(t);
                        }
                    }
                }
                if let BrokerError::Token(t) = &error {
                    let until = match t.retry_after {
                        Some(wait) if t.class.is_transient() => Some(now + wait),
                        _ if !t.class.is_transient() => Some(now + NEGATIVE_TTL),
                        _ => None,
                    };
                    if let Some(until) = until {
                        *entry = Some(Entry::Failed {
                            error: t.clone(),
                            until,
                            generation,
                        });
                    }
                }
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_has_its_own_slot_in_a_tenant_row() {
        let all = [Api::Graph, Api::Arm, Api::PartnerCenter, Api::KeyVault];
        let mut seen: Vec<usize> = all.iter().map(|a| slot_index(*a)).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), all.len());
        assert!(seen.iter().all(|i| *i < API_COUNT));
    }
}
