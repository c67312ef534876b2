//! The refresh tokens the token endpoint issued, and their revocation:
//! "Revoke sessions" (or a password reset) cuts off every token issued
//! before it, as moving the user's TokensValidFrom does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use tenantwatch_common::sync::lock;

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
    /// The interactive sign-in it descends from used MFA: every access token
    /// redeemed from it carries `mfa` in `amr`, as Entra carries the claim
    /// from the original sign-in.
    pub mfa: bool,
}

/// Every refresh token issued, by token.
#[derive(Debug, Default)]
pub(crate) struct RefreshTokens {
    grants: Mutex<HashMap<String, RefreshGrant>>,
    /// Next `RefreshGrant::seq`.
    next_seq: AtomicU64,
    /// Grants with a lower `seq` were revoked.
    revoked_below: AtomicU64,
    /// Sim time of the last revocation (the user's TokensValidFrom).
    valid_from: AtomicI64,
}

impl RefreshTokens {
    /// Stores a new refresh token; its `seq` is assigned here.
    pub fn insert(&self, token: String, mut grant: RefreshGrant) {
        grant.seq = self.next_seq.fetch_add(1, Ordering::SeqCst);
        lock(&self.grants).insert(token, grant);
    }

    /// The grant behind a token, revoked or not.
    pub fn get(&self, token: &str) -> Option<RefreshGrant> {
        lock(&self.grants).get(token).cloned()
    }

    /// Revokes every refresh token issued so far; `now` becomes the
    /// TokensValidFrom that AADSTS50173 quotes.
    pub fn revoke_all(&self, now: i64) {
        let below = self.next_seq.load(Ordering::SeqCst);
        self.revoked_below.fetch_max(below, Ordering::SeqCst);
        self.valid_from.store(now, Ordering::SeqCst);
    }

    /// Whether a revocation came after this grant was issued.
    pub fn is_revoked(&self, grant: &RefreshGrant) -> bool {
        grant.seq < self.revoked_below.load(Ordering::SeqCst)
    }

    /// Sim time of the last revocation (0 if none).
    pub fn valid_from(&self) -> i64 {
        self.valid_from.load(Ordering::SeqCst)
    }
}
