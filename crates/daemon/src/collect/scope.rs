//! Which discovered tenants this process watches: `[tenants] include` and
//! `exclude` globs on the tenant id or default domain, then the shard when
//! several replicas split the tenants (`tenants.shard`). Every tenant
//! discovery lists passes through [`in_scope`]; the ones it rejects are
//! neither collected nor exported. [`group_of`] names the tenant group
//! (`[[tenants.groups]]`, the same globs) alerts are routed by.

use crate::config::{DiscoverySettings, Shard, TenantGroup, NO_GROUP};

/// True when the tenant `id` (with its default `domain`, if known) is watched here.
pub fn in_scope(settings: &DiscoverySettings, id: &str, domain: &str) -> bool {
    let hit = |pats: &[String]| matches_any(pats, id, domain);
    (settings.include.is_empty() || hit(&settings.include))
        && !hit(&settings.exclude)
        && settings.shard.is_none_or(|s| owns(s, id))
}

/// True when one of `patterns` matches the tenant id or its (known) domain.
fn matches_any(patterns: &[String], id: &str, domain: &str) -> bool {
    patterns
        .iter()
        .any(|p| glob_match(p, id) || (!domain.is_empty() && glob_match(p, domain)))
}

/// The first group, in config order, whose `include` matches the tenant and
/// whose `exclude` does not; [`NO_GROUP`] when none does.
pub fn group_of<'a>(groups: &'a [TenantGroup], id: &str, domain: &str) -> &'a str {
    groups
        .iter()
        .find(|g| matches_any(&g.include, id, domain) && !matches_any(&g.exclude, id, domain))
        .map_or(NO_GROUP, |g| g.name.as_str())
}

/// True when `tenant_id` belongs to `shard`. The hash (first 8 bytes of
/// SHA-256 of the lower-case id) is stable across processes, versions and
/// platforms, so n replicas with shards 0/n … n-1/n cover every tenant once.
pub fn owns(shard: Shard, tenant_id: &str) -> bool {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(tenant_id.to_ascii_lowercase().as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    (u64::from_be_bytes(b) % shard.count as u64) as u32 == shard.index
}

/// Matches `*` and `?` globs, case-insensitively (tenant ids and domains).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let t: Vec<char> = text.to_ascii_lowercase().chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*.onmicrosoft.com", "Contoso.onmicrosoft.com"));
        assert!(glob_match("contoso*", "contoso07.onmicrosoft.com"));
        assert!(glob_match("1111????-*", "11112222-aaaa"));
        assert!(!glob_match("*.example.com", "contoso.onmicrosoft.com"));
        assert!(glob_match("*", ""));
    }

    #[test]
    fn first_matching_group_wins_and_exclude_skips_to_the_next() {
        let g = |name: &str, include: &[&str], exclude: &[&str]| TenantGroup {
            name: name.into(),
            include: include.iter().map(|s| s.to_string()).collect(),
            exclude: exclude.iter().map(|s| s.to_string()).collect(),
        };
        let groups = [
            g("gold", &["*.contoso.com", "1111*"], &["lab.contoso.com"]),
            g("silver", &["*contoso*"], &[]),
        ];
        assert_eq!(group_of(&groups, "2222", "eu.contoso.com"), "gold");
        assert_eq!(group_of(&groups, "1111-x", ""), "gold");
        assert_eq!(group_of(&groups, "2222", "lab.contoso.com"), "silver");
        assert_eq!(group_of(&groups, "2222", "fabrikam.com"), NO_GROUP);
        assert_eq!(group_of(&[], "2222", "eu.contoso.com"), NO_GROUP);
    }

    #[test]
    fn shards_cover_every_tenant_exactly_once() {
        let shards: Vec<Shard> = (0..3)
            .map(|i| Shard::parse(&format!("{i}/3")).unwrap())
            .collect();
        for n in 0..1000 {
            let id = format!("{n:08x}-0000-0000-0000-000000000000");
            assert_eq!(shards.iter().filter(|s| owns(**s, &id)).count(), 1);
        }
        assert_eq!(Shard::parse("3/3"), None);
        assert_eq!(
            Shard::from_hostname("tenantwatch-2", 3),
            Some(Shard { index: 2, count: 3 })
        );
        assert_eq!(Shard::from_hostname("tenantwatch", 3), None);
    }
}
