//! The last remaining-quota value each API reported, per tenant and kind.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use tenantwatch_common::sync::lock;

/// Last seen `x-ms-ratelimit-remaining-*` / `x-ms-user-quota-remaining` values.
/// Kept until the tenant leaves scope, not reset by a scrape.
///
/// Values change with almost every request during a cycle, so they are kept in
/// shards by API and the tenant id's first byte (contiguous in the exported
/// order), each with a version that changes with its values: the exposition
/// re-encodes only the shards whose version moved since the last scrape.
#[derive(Default)]
pub struct RateLimits(Mutex<RateState>);

#[derive(Default)]
struct RateState {
    shards: BTreeMap<(&'static str, u8), RateShard>,
    /// Tenant ids and kinds, each stored once: at 5,000 tenants, three values
    /// per tenant with two strings each took two megabytes.
    names: HashSet<Arc<str>>,
    /// Source of shard versions; never reused, so a shard that is dropped and
    /// comes back cannot be mistaken for its old self.
    next_version: u64,
}

/// One shard's values, by (tenant id, kind), in exported order.
#[derive(Default)]
pub struct RateShard {
    /// The values.
    pub values: BTreeMap<(Arc<str>, Arc<str>), f64>,
    /// Changes whenever `values` does.
    pub version: u64,
}

fn intern(names: &mut HashSet<Arc<str>>, s: &str) -> Arc<str> {
    if let Some(a) = names.get(s) {
        return a.clone();
    }
    let a: Arc<str> = Arc::from(s);
    names.insert(a.clone());
    a
}

impl RateState {
    fn bump(&mut self) -> u64 {
        self.next_version += 1;
        self.next_version
    }
}

impl RateLimits {
    /// Records one header value.
    pub fn set(&self, api: &'static str, tenant: &str, kind: &str, v: f64) {
        let mut m = lock(&self.0);
        let m = &mut *m;
        let key = (intern(&mut m.names, tenant), intern(&mut m.names, kind));
        let version = m.next_version + 1;
        let shard = m
            .shards
            .entry((api, tenant.as_bytes().first().copied().unwrap_or(0)))
            .or_default();
        let old = shard.values.insert(key, v);
        if old.map(f64::to_bits) != Some(v.to_bits()) {
            shard.version = version;
            m.next_version = version;
        }
    }

    /// Drops tenants no longer in scope.
    pub fn retain_tenants(&self, keep: &HashSet<String>) {
        let mut m = lock(&self.0);
        let m = &mut *m;
        let mut changed = Vec::new();
        for (key, shard) in m.shards.iter_mut() {
            let before = shard.values.len();
            shard.values.retain(|(t, _), _| keep.contains(&**t));
            if shard.values.len() != before {
                changed.push(*key);
            }
        }
        for key in changed {
            let v = m.bump();
            if let Some(s) = m.shards.get_mut(&key) {
                s.version = v;
            }
        }
        m.shards.retain(|_, s| !s.values.is_empty());
        // Names only the interner still holds.
        m.names.retain(|n| Arc::strong_count(n) > 1);
    }

    /// Calls `f` with every non-empty shard in exported order (API, then the
    /// tenant id's first byte), under the lock.
    pub fn for_each_shard(&self, mut f: impl FnMut(&'static str, u8, &RateShard)) {
        let m = lock(&self.0);
        for ((api, byte), shard) in &m.shards {
            f(api, *byte, shard);
        }
    }

    /// Every interned name, sorted (tests check that names leave with their values).
    #[cfg(test)]
    pub fn interned(&self) -> Vec<String> {
        let mut n: Vec<String> = lock(&self.0).names.iter().map(|n| n.to_string()).collect();
        n.sort();
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(r: &RateLimits) -> Vec<(&'static str, u8, u64)> {
        let mut out = Vec::new();
        r.for_each_shard(|api, b, s| out.push((api, b, s.version)));
        out
    }

    #[test]
    fn a_shard_version_moves_only_when_its_values_do() {
        let r = RateLimits::default();
        r.set("arm", "a-tenant", "tenant-reads", 5.0);
        r.set("arm", "b-tenant", "tenant-reads", 5.0);
        let v1 = versions(&r);
        r.set("arm", "a-tenant", "tenant-reads", 5.0);
        assert_eq!(versions(&r), v1, "same value, same version");
        r.set("arm", "a-tenant", "tenant-reads", 4.0);
        let v2 = versions(&r);
        assert_ne!(v2[0].2, v1[0].2);
        assert_eq!(v2[1], v1[1], "the other shard is untouched");
        r.retain_tenants(&["b-tenant".to_string()].into());
        let v3 = versions(&r);
        assert_eq!(v3, vec![v1[1]]);
        assert_eq!(r.interned(), ["b-tenant", "tenant-reads"]);
    }
}
