//! Tenant discovery: Partner Center customers, GDAP relationships and a static
//! list, reconciled into one tenant list, filtered and sharded.
//!
//! GDAP: <https://learn.microsoft.com/graph/api/tenantrelationship-list-delegatedadminrelationships>.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::collect::collector::{with_token, CollectError};
use crate::config::cloud::Cloud;
use crate::model::Api;
use crate::model::{GdapRelationship, Source, Tenant};
use crate::outbound::request::{ApiClient, Request};
use crate::outbound::url::join;
use crate::tokens::broker::TokenBroker;

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
    settings: &crate::config::DiscoverySettings,
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
                        crate::outbound::partner_center::list_customers(
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
                                end: r
                                    .end
                                    .as_deref()
                                    .and_then(crate::collect::collector::parse_time),
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

    for (id, sources) in listed {
        let (name, domain) = names.remove(&id).unwrap_or_default();
        if !crate::collect::scope::in_scope(settings, &id, &domain) {
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
    fn zero_durations() {
        assert!(is_zero_duration("PT0S"));
        assert!(is_zero_duration("P0D"));
        assert!(!is_zero_duration("P180D"));
    }

    #[test]
    fn documented_relationships_parse() {
        let raw = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/graph-delegatedAdminRelationships-list.json"
        ));
        let v: serde_json::Value = serde_json::from_str(raw).unwrap();
        let rels: Vec<RawRelationship> = serde_json::from_value(v["value"].clone()).unwrap();
        assert!(rels.len() >= 2);
        assert_eq!(rels[1].auto_extend.as_deref(), Some("PT0S"));
    }
}
