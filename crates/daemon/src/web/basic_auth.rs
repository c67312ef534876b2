//! HTTP basic authentication against the web config's bcrypt hashes.
//!
//! bcrypt is slow on purpose (~70 ms at cost 10), and Prometheus sends the
//! same credentials on every scrape, so a successful check is remembered by a
//! digest of (user, hash, password); failures are never cached, and at most
//! one uncached check runs at a time, which also slows down guessing.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use axum::http::HeaderValue;
use base64::Engine;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use tenantwatch_common::sync::lock;

use crate::support::secret::{ExposeSecret, SecretString};

/// Remembered successes before the cache starts over.
const CACHE_LIMIT: usize = 1024;

/// Checks `Authorization: Basic …` headers.
pub struct BasicAuth {
    ok: Mutex<HashSet<[u8; 32]>>,
    gate: Semaphore,
}

impl Default for BasicAuth {
    fn default() -> Self {
        Self {
            ok: Mutex::new(HashSet::new()),
            gate: Semaphore::new(1),
        }
    }
}

/// The bcrypt cost of a hash (`$2y$10$…` → 10).
fn cost_of(hash: &str) -> Option<u32> {
    hash.split('$').nth(2)?.parse().ok()
}

/// A hash no password matches, checked for unknown users so that a wrong user
/// name takes as long as a wrong password: made at the cost of the configured
/// hashes (the highest, if they differ), since bcrypt's time doubles with each
/// step of cost and a fixed cost would tell the two apart.
fn decoy(users: &BTreeMap<String, String>) -> String {
    static DECOYS: OnceLock<Mutex<BTreeMap<u32, String>>> = OnceLock::new();
    let cost = users
        .values()
        .filter_map(|h| cost_of(h))
        .max()
        .unwrap_or(bcrypt::DEFAULT_COST)
        .clamp(4, 31);
    let mut decoys = lock(DECOYS.get_or_init(Default::default));
    decoys
        .entry(cost)
        .or_insert_with(|| {
            bcrypt::hash("tenantwatch decoy", cost)
                .unwrap_or_else(|_| format!("$2b${cost:02}${}", "A".repeat(53)))
        })
        .clone()
}

impl BasicAuth {
    /// True when `header` names a user in `users` with the right password.
    pub async fn check(
        self: &Arc<Self>,
        users: &Arc<BTreeMap<String, String>>,
        header: Option<&HeaderValue>,
    ) -> bool {
        let Some((user, password)) = header.and_then(parse) else {
            return false;
        };
        let hash = users.get(&user).cloned();
        let digest = {
            let mut d = Sha256::new();
            for part in [user.as_bytes(), hash.as_deref().unwrap_or("").as_bytes()] {
                d.update((part.len() as u64).to_be_bytes());
                d.update(part);
            }
            d.update(password.expose_secret().as_bytes());
            <[u8; 32]>::from(d.finalize())
        };
        if hash.is_some() && lock(&self.ok).contains(&digest) {
            return true;
        }
        let Ok(_permit) = self.gate.acquire().await else {
            return false;
        };
        let target = hash.clone().unwrap_or_else(|| decoy(users));
        let verified = tokio::task::spawn_blocking(move || {
            bcrypt::verify(password.expose_secret(), &target).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        let ok = verified && hash.is_some();
        if ok {
            let mut cache = lock(&self.ok);
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(digest);
        }
        ok
    }
}

/// `Basic base64(user:password)` → (user, password).
fn parse(h: &HeaderValue) -> Option<(String, SecretString)> {
    let v = h.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = SecretString::from(String::from_utf8(raw).ok()?);
    let (u, p) = text.expose_secret().split_once(':')?;
    Some((u.to_string(), SecretString::from(p.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The decoy for unknown users costs what the configured hashes cost:
    /// a cost-12 decoy against cost-10 hashes took four times as long,
    /// telling an attacker which user names exist.
    #[test]
    fn the_decoy_costs_what_the_configured_hashes_cost() {
        for cost in [4, 5, 10] {
            let users: BTreeMap<String, String> =
                [("prometheus".to_string(), bcrypt::hash("pw", cost).unwrap())].into();
            assert_eq!(cost_of(&decoy(&users)), Some(cost));
        }
        assert_eq!(
            cost_of(&decoy(&BTreeMap::new())),
            Some(bcrypt::DEFAULT_COST)
        );
    }

    fn header(user: &str, password: &str) -> HeaderValue {
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {b}")).unwrap()
    }

    #[tokio::test]
    async fn right_password_passes_and_is_remembered() {
        let users = Arc::new(BTreeMap::from([(
            "prometheus".to_string(),
            bcrypt::hash("s3cret", 4).unwrap(),
        )]));
        let auth = Arc::new(BasicAuth::default());
        assert!(
            auth.check(&users, Some(&header("prometheus", "s3cret")))
                .await
        );
        assert_eq!(lock(&auth.ok).len(), 1);
        assert!(
            auth.check(&users, Some(&header("prometheus", "s3cret")))
                .await
        );
        assert!(
            !auth
                .check(&users, Some(&header("prometheus", "wrong")))
                .await
        );
        assert!(
            !auth
                .check(&users, Some(&header("Prometheus", "s3cret")))
                .await
        );
        assert!(!auth.check(&users, Some(&header("nobody", "s3cret"))).await);
        assert!(!auth.check(&users, None).await);
        let bearer = HeaderValue::from_static("Bearer abc");
        assert!(!auth.check(&users, Some(&bearer)).await);
        let garbage = HeaderValue::from_static("Basic !!!");
        assert!(!auth.check(&users, Some(&garbage)).await);
        assert_eq!(lock(&auth.ok).len(), 1, "failures are not cached");
    }

    #[tokio::test]
    async fn a_changed_hash_is_not_served_from_the_cache() {
        let auth = Arc::new(BasicAuth::default());
        let old = Arc::new(BTreeMap::from([(
            "p".to_string(),
            bcrypt::hash("one", 4).unwrap(),
        )]));
        assert!(auth.check(&old, Some(&header("p", "one"))).await);
        let new = Arc::new(BTreeMap::from([(
            "p".to_string(),
            bcrypt::hash("two", 4).unwrap(),
        )]));
        assert!(!auth.check(&new, Some(&header("p", "one"))).await);
        assert!(auth.check(&new, Some(&header("p", "two"))).await);
    }
}
