//! Tenant discovery: Partner Center customers, GDAP relationships and a static
//! list, reconciled into one tenant list, filtered and sharded.
//!
//! Every id and name a source lists is outside data: a tenant id that is not
//! a GUID (or is the partner's own) is dropped and reported as a
//! [`Rejection`]; a default domain that is not a DNS name is dropped (the
//! tenant stays); names are scrubbed, escaped and bounded before they can
//! reach a label, a log line or the status page.
//!
//! GDAP: <https://learn.microsoft.com/graph/api/tenantrelationship-list-delegatedadminrelationships>.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::collect::collector::{with_token, CollectError};
use crate::config::cloud::Cloud;
use crate::model::Api;
use crate::model::{ErrorClass, GdapRelationship, Source, Tenant};
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
    /// Sources that failed, with their class and why.
    pub failures: Vec<SourceFailure>,
    /// Values a source listed that were not used, with why.
    pub rejected: Vec<Rejection>,
}

/// A discovery source that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFailure {
    /// Which source.
    pub source: Source,
    /// The `reason` label of `tenantwatch_discovery_error`.
    pub class: ErrorClass,
    /// The error, for the log and `check`.
    pub message: String,
}

impl SourceFailure {
    fn new(source: Source, e: &CollectError, broker: &TokenBroker) -> Self {
        Self {
            source,
            class: e.class(broker.partner_mfa()),
            message: e.to_string(),
        }
    }
}

/// An id or domain a source listed that was dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Which source listed it.
    pub source: Source,
    /// The `reason` label: `not_a_tenant_id`, `partner_tenant` or `invalid_domain`.
    pub reason: &'static str,
    /// The value, scrubbed and escaped, for the log.
    pub value: String,
}

/// The tenant id a source listed, lower-cased, if it is a customer tenant id.
fn vet_id(
    raw: &str,
    source: Source,
    partner_tenant: &str,
    rejected: &mut Vec<Rejection>,
) -> Option<String> {
    let id = raw.to_ascii_lowercase();
    let reason = if !crate::model::is_tenant_id(&id) {
        "not_a_tenant_id"
    } else if id.eq_ignore_ascii_case(partner_tenant) {
        // The partner's own tenant listed as a customer would have its data
        // reported as a customer's.
        "partner_tenant"
    } else {
        return Some(id);
    };
    rejected.push(Rejection {
        source,
        reason,
        value: crate::support::scrub::upstream(raw),
    });
    None
}

/// The default domain a source listed, if it is a DNS name (else empty).
fn vet_domain(raw: String, source: Source, rejected: &mut Vec<Rejection>) -> String {
    if raw.is_empty() || crate::model::is_domain(&raw) {
        return raw.to_ascii_lowercase();
    }
    rejected.push(Rejection {
        source,
        reason: "invalid_domain",
        value: crate::support::scrub::upstream(&raw),
    });
    String::new()
}

/// A display name from outside: scrubbed, control characters escaped, bounded.
fn clean_name(raw: &str) -> String {
    crate::support::scrub::upstream(raw)
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
                            let src = Source::PartnerCenter;
                            let Some(id) =
                                vet_id(&c.tenant_id, src, partner_tenant, &mut out.rejected)
                            else {
                                continue;
                            };
                            let domain = vet_domain(c.domain, src, &mut out.rejected);
                            ids.insert(id.clone());
                            names
                                .entry(id.clone())
                                .or_insert((clean_name(&c.name), domain));
                            listed.entry(id).or_default().insert(src);
                        }
                        pc_customers = Some(ids);
                    }
                    Err(e) => {
                        out.failures
                            .push(SourceFailure::new(Source::PartnerCenter, &e, broker))
                    }
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
                            let Some(id) = vet_id(
                                c.tenant_id.as_deref().unwrap_or(""),
                                Source::Gdap,
                                partner_tenant,
                                &mut out.rejected,
                            ) else {
                                continue;
                            };
                            let display_name = clean_name(&c.display_name);
                            if r.status == "terminated" {
                                continue;
                            }
                            if r.status == "active" {
                                active_gdap.insert(id.clone());
                                listed.entry(id.clone()).or_default().insert(Source::Gdap);
                                names
                                    .entry(id.clone())
                                    .or_insert((display_name.clone(), String::new()));
                            }
                            std::sync::Arc::make_mut(&mut out.gdap).push(GdapRelationship {
                                id: crate::support::scrub::upstream(&r.id),
                                tenant_id: id,
                                customer_name: display_name,
                                status: crate::support::scrub::upstream(&r.status),
                                end: r
                                    .end
                                    .as_deref()
                                    .and_then(crate::collect::collector::parse_time),
                                auto_extend: !r.auto_extend.as_deref().is_none_or(is_zero_duration),
                            });
                        }
                    }
                    Err(e) => out
                        .failures
                        .push(SourceFailure::new(Source::Gdap, &e, broker)),
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
            && !out.failures.iter().any(|f| f.source == Source::Gdap)
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
