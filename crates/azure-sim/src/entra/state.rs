//! What Entra remembers between requests, beside the state every service
//! shares: the credentials registered on the apps, the refresh tokens and
//! the authorization and device codes it issued, and what tests injected
//! (AADSTS errors, throttling, expired secrets, a fixed token lifetime).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tenantwatch_common::sync::lock;

use super::authorize::AuthCodes;
use super::certs::AppCertificate;
use super::device::DeviceCodes;
use super::federation::Issuer;
use super::refresh_tokens::{RefreshGrant, RefreshTokens};
use crate::state::SimState;

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

/// Entra's state: the login origin's and the managed identity endpoint's.
pub(crate) struct Entra {
    /// What every service shares (world, clock, token signer, faults…).
    pub sim: Arc<SimState>,
    /// Certificates, the federation issuer and App Service's identity header.
    pub creds: Credentials,
    /// Every refresh token issued, and the revocation point.
    pub refresh_tokens: RefreshTokens,
    /// Codes `/authorize` issued, until redeemed or long expired.
    pub auth_codes: AuthCodes,
    /// Device codes `/devicecode` issued, with their approval state.
    pub device_codes: DeviceCodes,
    /// Access-token lifetime in seconds; 0 means Entra's own (just under an hour).
    token_lifetime_secs: AtomicI64,
    /// CAE access-token lifetime in seconds; 0 means Entra's own (20–28 h).
    cae_lifetime_secs: AtomicI64,
    /// Lower-case client ids whose secret has expired.
    expired_secrets: Mutex<HashSet<String>>,
    /// Injected AADSTS codes, by lower-case tenant id.
    token_errors: Mutex<HashMap<String, u32>>,
    /// Injected `Retry-After` seconds, by lower-case tenant id.
    token_throttles: Mutex<HashMap<String, u64>>,
    /// The next interactive sign-in (authorization code or device code) skips
    /// MFA, as a user excluded from the MFA policy would.
    next_sign_in_without_mfa: AtomicBool,
}

impl Entra {
    /// Entra for the shared state, with no tokens issued yet. The
    /// credentials' secrets are remembered for the leak checks.
    pub fn new(sim: Arc<SimState>, creds: Credentials) -> Self {
        for secret in [
            &creds.identity_header,
            &creds.identity_cert.pem,
            &creds.partner_cert.pem,
        ] {
            sim.remember_secret(secret);
        }
        Self {
            sim,
            creds,
            refresh_tokens: RefreshTokens::default(),
            auth_codes: AuthCodes::default(),
            device_codes: DeviceCodes::default(),
            token_lifetime_secs: AtomicI64::new(0),
            cae_lifetime_secs: AtomicI64::new(0),
            expired_secrets: Mutex::default(),
            token_errors: Mutex::default(),
            token_throttles: Mutex::default(),
            next_sign_in_without_mfa: AtomicBool::new(false),
        }
    }

    /// Makes the next interactive sign-in complete without MFA: its tokens
    /// carry `amr: ["pwd"]`, and so does everything redeemed from them.
    pub fn next_sign_in_without_mfa(&self) {
        self.next_sign_in_without_mfa.store(true, Ordering::SeqCst);
    }

    /// Whether an interactive sign-in happening now uses MFA; consumes the
    /// switch above.
    pub fn sign_in_mfa(&self) -> bool {
        !self.next_sign_in_without_mfa.swap(false, Ordering::SeqCst)
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

    /// Lifetime of the next CAE access token (issued to a `cp1` client by a
    /// CAE-capable resource): "20 to 28 hours" (Entra's access-tokens page,
    /// reference/azure/entra/docs-claims-challenge.md), unless fixed — by
    /// [`Entra::set_cae_token_lifetime`], or else by a fixed lifetime for every
    /// token ([`Entra::set_token_lifetime`]), so runs that compress time
    /// (soak, benchmarks) compress CAE tokens too.
    pub fn cae_token_lifetime(&self) -> i64 {
        match (
            self.cae_lifetime_secs.load(Ordering::Relaxed),
            self.token_lifetime_secs.load(Ordering::Relaxed),
        ) {
            (0, 0) => rand::Rng::gen_range(&mut rand::thread_rng(), 20 * 3600..=28 * 3600),
            (0, every) => every,
            (fixed, _) => fixed,
        }
    }

    /// Fixes the CAE access-token lifetime (`None`: Entra's own).
    pub fn set_cae_token_lifetime(&self, d: Option<Duration>) {
        let secs = d.map_or(0, |d| i64::try_from(d.as_secs().max(1)).unwrap_or(i64::MAX));
        self.cae_lifetime_secs.store(secs, Ordering::Relaxed);
    }

    /// Fixes the access-token lifetime (`None`: Entra's own).
    pub fn set_token_lifetime(&self, d: Option<Duration>) {
        let secs = d.map_or(0, |d| i64::try_from(d.as_secs().max(1)).unwrap_or(i64::MAX));
        self.token_lifetime_secs.store(secs, Ordering::Relaxed);
    }

    /// Stores a new refresh token (and remembers it for the leak checks).
    pub fn insert_refresh_token(&self, token: String, grant: RefreshGrant) {
        self.sim.remember_secret(&token);
        self.refresh_tokens.insert(token, grant);
    }

    /// Revokes every refresh token issued to a partner's admin agent so
    /// far, as "Revoke sessions" (or a password reset) does by moving the
    /// user's TokensValidFrom to now. Other partners' admins keep theirs.
    pub fn revoke_refresh_tokens(&self, admin_oid: &str) {
        let now = self.sim.clock.now_unix();
        self.refresh_tokens.revoke_user(admin_oid, now);
        // A critical event for the user: CAE resources refuse the long-lived
        // tokens issued to them too (only the admins get CAE tokens).
        self.sim.cae.user_event(admin_oid, now);
    }

    /// Marks an app's client secret as expired.
    pub fn expire_secret(&self, client_id: &str) {
        lock(&self.expired_secrets).insert(client_id.to_ascii_lowercase());
    }

    /// Whether an app's client secret has expired.
    pub fn secret_expired(&self, client_id: &str) -> bool {
        lock(&self.expired_secrets).contains(&client_id.to_ascii_lowercase())
    }

    /// Makes the tenant's token requests fail with this AADSTS code.
    pub fn set_token_error(&self, tenant_id: &str, code: u32) {
        lock(&self.token_errors).insert(tenant_id.to_ascii_lowercase(), code);
    }

    /// The tenant's injected AADSTS code, if any.
    pub fn token_error(&self, tenant_id: &str) -> Option<u32> {
        lock(&self.token_errors)
            .get(&tenant_id.to_ascii_lowercase())
            .copied()
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

    /// Clears injected AADSTS errors and throttling for a tenant.
    pub fn clear_token_error(&self, tenant_id: &str) {
        lock(&self.token_errors).remove(&tenant_id.to_ascii_lowercase());
        lock(&self.token_throttles).remove(&tenant_id.to_ascii_lowercase());
    }
}
