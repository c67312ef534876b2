//! The refresh tokens the token endpoint issued, and their revocation:
//! "Revoke sessions" (or a password reset) cuts off every token issued to
//! that user before it, as moving the user's TokensValidFrom does. Each
//! partner has its own admin agent, so revoking one partner's tokens leaves
//! the others' working.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// One user's last revocation.
#[derive(Debug, Clone, Copy, Default)]
struct Revocation {
    /// Grants with a lower `seq` were revoked.
    below: u64,
    /// Sim time of the revocation (the user's TokensValidFrom).
    valid_from: i64,
}

/// Every refresh token issued, by token.
#[derive(Debug, Default)]
pub(crate) struct RefreshTokens {
    grants: Mutex<HashMap<String, RefreshGrant>>,
    /// Next `RefreshGrant::seq`.
    next_seq: AtomicU64,
    /// Each user's last revocation, by lower-case object id.
    revoked: Mutex<HashMap<String, Revocation>>,
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

    /// Revokes every refresh token issued to `user_oid` so far; `now`
    /// becomes the TokensValidFrom that AADSTS50173 quotes.
    pub fn revoke_user(&self, user_oid: &str, now: i64) {
        let below = self.next_seq.load(Ordering::SeqCst);
        let mut revoked = lock(&self.revoked);
        let r = revoked.entry(user_oid.to_ascii_lowercase()).or_default();
        r.below = r.below.max(below);
        r.valid_from = now;
    }

    /// Whether a revocation of its user came after this grant was issued.
    pub fn is_revoked(&self, grant: &RefreshGrant) -> bool {
        lock(&self.revoked)
            .get(&grant.user_oid.to_ascii_lowercase())
            .is_some_and(|r| grant.seq < r.below)
    }

    /// Sim time of the user's last revocation (0 if none).
    pub fn valid_from(&self, user_oid: &str) -> i64 {
        lock(&self.revoked)
            .get(&user_oid.to_ascii_lowercase())
            .map_or(0, |r| r.valid_from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(user: &str) -> RefreshGrant {
        RefreshGrant {
            client_id: "c".into(),
            user_oid: user.into(),
            home_tenant: "t".into(),
            issued_at: 0,
            seq: 0,
            public: false,
            mfa: true,
        }
    }

    #[test]
    fn revoking_one_user_leaves_the_others() {
        let t = RefreshTokens::default();
        t.insert("a".into(), grant("A"));
        t.insert("b".into(), grant("B"));
        t.revoke_user("a", 50);
        assert!(t.is_revoked(&t.get("a").unwrap()));
        assert!(!t.is_revoked(&t.get("b").unwrap()));
        assert_eq!(t.valid_from("A"), 50);
        assert_eq!(t.valid_from("B"), 0);
        // Issued after the revocation: fine again.
        t.insert("a2".into(), grant("A"));
        assert!(!t.is_revoked(&t.get("a2").unwrap()));
    }
}
