//! Tenant discovery: Partner Center customers, GDAP relationships and a static
//! list, reconciled into one tenant list, filtered and sharded.
//!
//! GDAP: <https://learn.microsoft.com/graph/api/tenantrelationship-list-delegatedadminrelationships>.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::api::{ApiClient, Request};
use crate::broker::TokenBroker;
use crate::cloud::{join, Api, Cloud};
use crate::collector::{with_token, CollectError, Tenant};

/// A discovery source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// Partner Center `/v1/customers`.
    PartnerCenter,
    /// GDAP `delegatedAdminRelationships` (active ones).
    Gdap,
    /// The `[tenants] static` list.
    Static,
}

impl Source {
    /// Label value and config name.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::PartnerCenter => "partner_center",
            Source::Gdap => "gdap",
            Source::Static => "static",
        }
    }

    /// Parses a config name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "partner_center" => Some(Source::PartnerCenter),
            "gdap" => Some(Source::Gdap),
            "static" => Some(Source::Static),
            _ => None,
        }
    }
}

/// `i/n`: this process takes the tenants whose hash mod n is i.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This process's index, from 0.
    pub index: u32,
    /// How many processes share the tenants.
    pub count: u32,
}

impl Shard {
    /// Parses `i/n`.
    pub fn parse(s: &str) -> Option<Shard> {
        let (i, n) = s.split_once('/')?;
        let (index, count) = (i.trim().parse().ok()?, n.trim().parse().ok()?);
        (count > 0 && index < count).then_some(Shard { index, count })
    }

    /// From a StatefulSet pod name (`tenantwatch-2` → index 2) and the replica count.
    pub fn from_hostname(hostname: &str, count: u32) -> Option<Shard> {
        let index: u32 = hostname.rsplit('-').next()?.parse().ok()?;
        (count > 0 && index < count).then_some(Shard { index, count })
    }

    /// True when `tenant_id` belongs to this shard. The hash (first 8 bytes of
    /// SHA-256 of the lower-case id) is stable across processes, versions and platforms.
    pub fn owns(&self, tenant_id: &str) -> bool {
        use sha2::{Digest, Sha256};
        let d = Sha256::digest(tenant_id.to_ascii_lowercase().as_bytes());
        let mut b = [0u8; 8];
        b.copy_from_slice(&d[..8]);
        (u64::from_be_bytes(b) % self.count as u64) as u32 == self.index
    }
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

/// Which tenants to watch, from `[tenants]`.
#[derive(Debug, Clone)]
pub struct DiscoverySettings {
    /// Sources in use.
    pub sources: Vec<Source>,
    /// Static tenant ids.
    pub static_tenants: Vec<String>,
    /// Keep only tenants whose id or domain matches one of these (empty: all).
    pub include: Vec<String>,
    /// Drop tenants whose id or domain matches one of these.
    pub exclude: Vec<String>,
    /// This replica's shard, if sharded.
    pub shard: Option<Shard>,
    /// Cron schedule of discovery (and of re-reading the refresh token).
    pub schedule: String,
}

/// One GDAP relationship.
#[derive(Debug, Clone, PartialEq)]
pub struct GdapRelationship {
    /// Relationship id.
    pub id: String,
    /// Customer tenant.
    pub tenant_id: String,
    /// Customer name.
    pub customer_name: String,
    /// `active`, `approvalPending`, `expired`, …
    pub status: String,
    /// Unix seconds of `endDateTime`.
    pub end: Option<f64>,
    /// `autoExtendDuration` is not zero.
    pub auto_extend: bool,
}

/// What discovery found.
#[derive(Debug, Clone, Default)]
pub struct Discovered {
    /// Tenants in scope (filtered and sharded), sorted by id.
    pub tenants: Vec<Tenant>,
    /// Which sources listed each tenant in scope (shared with every snapshot).
    pub sources: std::sync::Arc<BTreeMap<String, BTreeSet<Source>>>,
    /// GDAP relationships of the tenants in scope (all statuses but terminated).
    pub gdap: std::sync::Arc<Vec<GdapRelationship>>,
    /// Partner Center customers in scope with no active GDAP relationship.
    pub customers_without_gdap: Option<usize>,
    /// Active GDAP relationships in scope whose tenant Partner Center does not list.
    pub gdap_without_customer: Option<usize>,
    /// Sources that failed, with why.
    pub failures: Vec<(Source, String)>,
}

#[derive(Deserialize)]
struct RawRelationship {
    id: String,
    #[serde(default)]
    status: String,
    customer: Option<RawCustomer>,
    #[serde(rename = "endDateTime")]
    end: Option<String>,
    #[serde(rename = "autoExtendDuration")]
    auto_extend: Option<String>,
}

#[derive(Deserialize)]
struct RawCustomer {
    #[serde(rename = "tenantId")]
    tenant_id: Option<String>,
    #[serde(rename = "displayName", default)]
    display_name: String,
}

/// ISO 8601 durations of zero: `PT0S`, `P0D`, …
fn is_zero_duration(d: &str) -> bool {
    d.trim().is_empty() || !d.chars().any(|c| c.is_ascii_digit() && c != '0')
}

/// Lists every source; a failing source is reported, the others still count.
pub async fn discover(
    settings: &DiscoverySettings,
    api: &ApiClient,
    broker: &TokenBroker,
    cloud: &Cloud,
    partner_tenant: &str,
) -> Discovered {
    let mut out = Discovered::default();
    let mut names: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut listed: BTreeMap<String, BTreeSet<Source>> = BTreeMap::new();
    let mut active_gdap: BTreeSet<String> = BTreeSet::new();
    let mut pc_customers: Option<BTreeSet<String>> = None;

    for source in &settings.sources {
        match source {
            Source::PartnerCenter => {
                let r = with_token(
                    broker,
                    partner_tenant,
                    Api::PartnerCenter,
                    |token| async move {
                        crate::partner_center::list_customers(
                            api,
                            partner_tenant,
                            &cloud.partner_center,
                            &token,
                        )
                        .await
                    },
                )
                .await;
                match r {
                    Ok(customers) => {
                        let mut ids = BTreeSet::new();
                        for c in customers {
                            let id = c.tenant_id.to_ascii_lowercase();
                            ids.insert(id.clone());
                            names.entry(id.clone()).or_insert((c.name, c.domain));
                            listed.entry(id).or_default().insert(Source::PartnerCenter);
                        }
                        pc_customers = Some(ids);
                    }
                    Err(e) => out.failures.push((Source::PartnerCenter, e.to_string())),
                }
            }
            Source::Gdap => {
                let r: Result<Vec<RawRelationship>, CollectError> =
                    with_token(broker, partner_tenant, Api::Graph, |token| async move {
                        let url = join(
                            &cloud.graph,
                            "v1.0/tenantRelationships/delegatedAdminRelationships",
                        );
                        api.get_all(Request::get("graph", partner_tenant, url, &token))
                            .await
                    })
                    .await;
                match r {
                    Ok(rels) => {
                        for r in rels {
                            let Some(c) = r.customer else { continue };
                            let Some(id) = c.tenant_id.map(|t| t.to_ascii_lowercase()) else {
                                continue;
                            };
                            if r.status == "terminated" {
                                continue;
                            }
                            if r.status == "active" {
                                active_gdap.insert(id.clone());
                                listed.entry(id.clone()).or_default().insert(Source::Gdap);
                                names
                                    .entry(id.clone())
                                    .or_insert((c.display_name.clone(), String::new()));
                            }
                            std::sync::Arc::make_mut(&mut out.gdap).push(GdapRelationship {
                                id: r.id,
                                tenant_id: id,
                                customer_name: c.display_name,
                                status: r.status,
                                end: r.end.as_deref().and_then(crate::collector::parse_time),
                                auto_extend: !r.auto_extend.as_deref().is_none_or(is_zero_duration),
                            });
                        }
                    }
                    Err(e) => out.failures.push((Source::Gdap, e.to_string())),
                }
            }
            Source::Static => {
                for id in &settings.static_tenants {
                    let id = id.to_ascii_lowercase();
                    names
                        .entry(id.clone())
                        .or_insert((String::new(), String::new()));
                    listed.entry(id).or_default().insert(Source::Static);
                }
            }
        }
    }

    let in_scope = |id: &str, domain: &str| {
        let hit = |pats: &[String]| {
            pats.iter()
                .any(|p| glob_match(p, id) || (!domain.is_empty() && glob_match(p, domain)))
        };
        (settings.include.is_empty() || hit(&settings.include))
            && !hit(&settings.exclude)
            && settings.shard.is_none_or(|s| s.owns(id))
    };
    for (id, sources) in listed {
        let (name, domain) = names.remove(&id).unwrap_or_default();
        if !in_scope(&id, &domain) {
            continue;
        }
        out.tenants.push(Tenant {
            tenant_id: id.as_str().into(),
            name: name.into(),
            domain: domain.into(),
        });
        std::sync::Arc::make_mut(&mut out.sources).insert(id, sources);
    }
    let sources = out.sources.clone();
    std::sync::Arc::make_mut(&mut out.gdap).retain(|g| sources.contains_key(&g.tenant_id));
    if let Some(pc) = &pc_customers {
        if settings.sources.contains(&Source::Gdap)
            && !out.failures.iter().any(|(s, _)| *s == Source::Gdap)
        {
            let scope: BTreeSet<&String> = out.sources.keys().collect();
            out.customers_without_gdap = Some(
                pc.iter()
                    .filter(|id| scope.contains(id) && !active_gdap.contains(*id))
                    .count(),
            );
            out.gdap_without_customer = Some(
                active_gdap
                    .iter()
                    .filter(|id| scope.contains(id) && !pc.contains(*id))
                    .count(),
            );
        }
    }
    out
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
    fn shards_cover_every_tenant_exactly_once() {
        let shards: Vec<Shard> = (0..3)
            .map(|i| Shard::parse(&format!("{i}/3")).unwrap())
            .collect();
        for n in 0..1000 {
            let id = format!("{n:08x}-0000-0000-0000-000000000000");
            assert_eq!(shards.iter().filter(|s| s.owns(&id)).count(), 1);
        }
        assert_eq!(Shard::parse("3/3"), None);
        assert_eq!(
            Shard::from_hostname("tenantwatch-2", 3),
            Some(Shard { index: 2, count: 3 })
        );
        assert_eq!(Shard::from_hostname("tenantwatch", 3), None);
    }

    #[test]
    fn zero_durations() {
        assert!(is_zero_duration("PT0S"));
        assert!(is_zero_duration("P0D"));
        assert!(!is_zero_duration("P180D"));
    }

    #[test]
    fn documented_relationships_parse() {
        let raw = include_str!("../tests/fixtures/graph-delegatedAdminRelationships-list.json");
        let v: serde_json::Value = serde_json::from_str(raw).unwrap();
        let rels: Vec<RawRelationship> = serde_json::from_value(v["value"].clone()).unwrap();
        assert!(rels.len() >= 2);
        assert_eq!(rels[1].auto_extend.as_deref(), Some("PT0S"));
    }
}
