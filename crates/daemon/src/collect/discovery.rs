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
//! An active relationship grants nothing until its roles are assigned to a
//! security group, so each active one's access assignments are read too
//! (<https://learn.microsoft.com/graph/api/delegatedadminrelationship-list-accessassignments>),
//! and every tenant in scope is checked against `tenants.gdap_required_roles`.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::collect::collector::{with_token, CollectError};
use crate::config::cloud::Cloud;
use crate::model::Api;
use crate::model::{AccessAssignment, ErrorClass, GdapRelationship, RequiredRole, Source, Tenant};
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
    /// The `[[tenants.groups]]` group of each tenant in scope, by id.
    pub groups: std::sync::Arc<BTreeMap<String, String>>,
    /// Each tenant in scope × required role, for tenants whose active
    /// relationships' assignments could all be read.
    pub gdap_required_roles: std::sync::Arc<Vec<RequiredRole>>,
    /// Partner Center customers in scope with no active GDAP relationship.
    pub customers_without_gdap: Option<usize>,
    /// Active GDAP relationships in scope whose tenant Partner Center does not list.
    pub gdap_without_customer: Option<usize>,
    /// Sources that failed, with their class and why.
    pub failures: Vec<SourceFailure>,
    /// Sources whose list could not be read this time (a subset of the
    /// failures' sources: an unreadable access assignment fails GDAP but
    /// its list was read).
    pub unlisted: BTreeSet<Source>,
    /// Partner Center customers left out only because of a domain glob:
    /// while Partner Center cannot be listed their domain is unknown, and
    /// they must stay out rather than slip in through GDAP.
    pub excluded_by_domain: Vec<Tenant>,
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
    #[serde(rename = "accessDetails")]
    access_details: Option<RawAccessDetails>,
}

/// `delegatedAdminAccessDetails`.
#[derive(Deserialize, Default)]
struct RawAccessDetails {
    #[serde(rename = "unifiedRoles", default)]
    unified_roles: Vec<RawUnifiedRole>,
}

/// `unifiedRole`.
#[derive(Deserialize)]
struct RawUnifiedRole {
    #[serde(rename = "roleDefinitionId", default)]
    role_definition_id: String,
}

/// `delegatedAdminAccessAssignment` (the fields tenantwatch uses).
#[derive(Deserialize)]
struct RawAccessAssignment {
    #[serde(default)]
    status: String,
    #[serde(rename = "accessDetails")]
    access_details: Option<RawAccessDetails>,
}

/// Role definition ids, lower-case; anything that is not a GUID is dropped,
/// so outside text never becomes a `role` label.
fn role_ids(details: Option<RawAccessDetails>) -> Vec<String> {
    let mut out: Vec<String> = details
        .unwrap_or_default()
        .unified_roles
        .into_iter()
        .map(|r| r.role_definition_id.to_ascii_lowercase())
        .filter(|id| crate::model::is_tenant_id(id))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// One relationship's access assignments, or the class and text of why not.
type AccessRead = Result<Vec<RawAccessAssignment>, (ErrorClass, String)>;

/// How many relationships' access assignments are read at once. The partner
/// tenant's per-tenant request limit applies as well.
const ACCESS_READS_AT_ONCE: usize = 4;

/// Reads the access assignments of every active relationship into it.
/// Returns a GDAP source failure (class and why) per relationship that failed.
async fn read_access(
    rels: &mut [GdapRelationship],
    api: &ApiClient,
    broker: &TokenBroker,
    cloud: &Cloud,
    partner_tenant: &str,
) -> Vec<SourceFailure> {
    use futures::StreamExt;
    let wanted: Vec<(usize, String)> = rels
        .iter()
        .enumerate()
        .filter(|(_, r)| r.status == "active")
        .map(|(i, r)| (i, r.id.clone()))
        .collect();
    let results: Vec<(usize, AccessRead)> = futures::stream::iter(wanted)
        .map(|(i, id)| async move {
            // The id came from outside: it goes in as one escaped path segment.
            let url = crate::outbound::url::with_segments(
                &cloud.graph,
                &[
                    ("path", "v1.0"),
                    ("path", "tenantRelationships"),
                    ("path", "delegatedAdminRelationships"),
                    ("GDAP relationship id", &id),
                    ("path", "accessAssignments"),
                ],
            )
            .map_err(|e| (ErrorClass::Other, e.to_string()));
            let r = match url {
                Ok(url) => with_token(broker, partner_tenant, Api::Graph, |token| {
                    let url = url.to_string();
                    async move {
                        api.get_all(Request::get("graph", partner_tenant, url, &token))
                            .await
                    }
                })
                .await
                .map_err(|e: CollectError| (e.class(broker.partner_mfa()), e.to_string())),
                Err(e) => Err(e),
            };
            (i, r)
        })
        .buffered(ACCESS_READS_AT_ONCE)
        .collect()
        .await;
    let mut failures = Vec::new();
    for (i, r) in results {
        match r {
            Ok(list) => {
                rels[i].access = Some(
                    list.into_iter()
                        .map(|a| AccessAssignment {
                            status: crate::support::scrub::upstream(&a.status),
                            roles: role_ids(a.access_details),
                        })
                        .collect(),
                )
            }
            Err((class, e)) => failures.push(SourceFailure {
                source: Source::Gdap,
                class,
                message: format!(
                    "access assignments of GDAP relationship {}: {e}",
                    rels[i].id
                ),
            }),
        }
    }
    failures
}

/// For each tenant in scope and required role: whether an active
/// relationship's active assignment grants it. Tenants with an active
/// relationship whose assignments are unknown are left out rather than
/// reported as missing what they may well have.
fn required_roles(
    required: &[String],
    tenants: &[Tenant],
    rels: &[GdapRelationship],
) -> Vec<RequiredRole> {
    let mut granted: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut unknown: BTreeSet<&str> = BTreeSet::new();
    for r in rels.iter().filter(|r| r.status == "active") {
        if r.access.is_none() {
            unknown.insert(&r.tenant_id);
        }
        granted
            .entry(&r.tenant_id)
            .or_default()
            .extend(r.granted_roles());
    }
    let mut out = Vec::new();
    for t in tenants.iter().filter(|t| !unknown.contains(&*t.tenant_id)) {
        let has = granted.get(&*t.tenant_id);
        for role in required {
            out.push(RequiredRole {
                tenant_id: t.tenant_id.to_string(),
                role: crate::model::role_label(role).to_string(),
                missing: !has.is_some_and(|g| g.contains(role.as_str())),
            });
        }
    }
    out
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

/// Adds what `prev` knew from each source whose list could not be read now:
/// the tenants it listed (with their names and domains, so scope and groups
/// are decided as before). Without this one failing source (Partner Center
/// refusing a token without MFA, say) would drop the tenants only it lists,
/// whose alerts would then resolve as if fixed, and, since only Partner
/// Center knows domains, move tenants in and out of domain globs.
fn carry_over(
    prev: &Discovered,
    unlisted: &BTreeSet<Source>,
    listed: &mut BTreeMap<String, BTreeSet<Source>>,
    names: &mut BTreeMap<String, (String, String)>,
) {
    if unlisted.is_empty() {
        return;
    }
    let only_pc = BTreeSet::from([Source::PartnerCenter]);
    let known = prev
        .tenants
        .iter()
        .map(|t| (t, prev.sources.get(&*t.tenant_id)))
        .chain(prev.excluded_by_domain.iter().map(|t| (t, Some(&only_pc))));
    for (t, before) in known {
        let Some(before) = before else { continue };
        let kept: Vec<Source> = before.intersection(unlisted).copied().collect();
        if kept.is_empty() {
            continue;
        }
        let id = t.tenant_id.to_string();
        listed.entry(id.clone()).or_default().extend(kept);
        let (name, domain) = names.entry(id).or_default();
        if domain.is_empty() {
            *domain = t.domain.to_string();
        }
        if name.is_empty() {
            *name = t.name.to_string();
        }
    }
}

/// Lists every source; a failing source is reported, the others still count.
pub async fn discover(
    settings: &crate::config::DiscoverySettings,
    api: &ApiClient,
    broker: &TokenBroker,
    cloud: &Cloud,
    partner_tenant: &str,
    prev: Option<&Discovered>,
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
                        out.unlisted.insert(Source::PartnerCenter);
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
                                roles: role_ids(r.access_details),
                                access: None,
                            });
                        }
                    }
                    Err(e) => {
                        out.unlisted.insert(Source::Gdap);
                        out.failures
                            .push(SourceFailure::new(Source::Gdap, &e, broker))
                    }
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

    if let Some(prev) = prev {
        carry_over(prev, &out.unlisted, &mut listed, &mut names);
        if out.unlisted.contains(&Source::Gdap) {
            out.gdap = prev.gdap.clone();
            out.gdap_required_roles = prev.gdap_required_roles.clone();
        }
    }
    for (id, sources) in listed {
        let (name, domain) = names.remove(&id).unwrap_or_default();
        if !crate::collect::scope::in_scope(settings, &id, &domain) {
            if sources.contains(&Source::PartnerCenter)
                && !domain.is_empty()
                && crate::collect::scope::in_scope(settings, &id, "")
            {
                out.excluded_by_domain.push(Tenant {
                    tenant_id: id.as_str().into(),
                    name: name.into(),
                    domain: domain.into(),
                });
            }
            continue;
        }
        let group = crate::collect::scope::group_of(&settings.groups, &id, &domain);
        std::sync::Arc::make_mut(&mut out.groups).insert(id.clone(), group.to_string());
        out.tenants.push(Tenant {
            tenant_id: id.as_str().into(),
            name: name.into(),
            domain: domain.into(),
        });
        std::sync::Arc::make_mut(&mut out.sources).insert(id, sources);
    }
    let sources = out.sources.clone();
    std::sync::Arc::make_mut(&mut out.gdap).retain(|g| sources.contains_key(&g.tenant_id));
    let gdap_listed = settings.sources.contains(&Source::Gdap)
        && !out.failures.iter().any(|f| f.source == Source::Gdap);
    let mut access_failures = Vec::new();
    if gdap_listed {
        // Only relationships in scope are read: an excluded tenant costs no request.
        access_failures = read_access(
            std::sync::Arc::make_mut(&mut out.gdap).as_mut_slice(),
            api,
            broker,
            cloud,
            partner_tenant,
        )
        .await;
        out.gdap_required_roles = std::sync::Arc::new(required_roles(
            &settings.gdap_required_roles,
            &out.tenants,
            &out.gdap,
        ));
    }
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
    // Reported after the reconciliation above, which needs only the list:
    // one unreadable relationship must not hide the customers without GDAP.
    out.failures.extend(access_failures);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(id: &str) -> Tenant {
        Tenant {
            tenant_id: id.into(),
            name: format!("{id} Ltd").into(),
            domain: format!("{id}.example").into(),
        }
    }

    #[test]
    fn an_unlisted_source_brings_back_what_it_listed_before_with_its_domains() {
        use Source::{Gdap, PartnerCenter as Pc};
        let mut prev = Discovered::default();
        for (id, sources) in [("a", vec![Pc, Gdap]), ("b", vec![Pc]), ("c", vec![Gdap])] {
            prev.tenants.push(tenant(id));
            std::sync::Arc::make_mut(&mut prev.sources)
                .insert(id.to_string(), sources.into_iter().collect());
        }
        prev.excluded_by_domain.push(tenant("x"));

        // Partner Center failed; GDAP listed a and c (and x) without domains.
        let mut listed: BTreeMap<String, BTreeSet<Source>> = ["a", "c", "x"]
            .into_iter()
            .map(|id| (id.to_string(), BTreeSet::from([Gdap])))
            .collect();
        let mut names: BTreeMap<String, (String, String)> = listed
            .keys()
            .map(|id| (id.clone(), (format!("{id} GDAP"), String::new())))
            .collect();
        carry_over(&prev, &BTreeSet::from([Pc]), &mut listed, &mut names);
        assert_eq!(listed.keys().collect::<Vec<_>>(), ["a", "b", "c", "x"]);
        assert_eq!(listed["a"], BTreeSet::from([Pc, Gdap]));
        assert_eq!(listed["b"], BTreeSet::from([Pc]));
        assert_eq!(listed["c"], BTreeSet::from([Gdap]));
        // Domains come back (so globs decide as before); GDAP's names stay.
        assert_eq!(names["a"], ("a GDAP".to_string(), "a.example".to_string()));
        assert_eq!(names["b"], ("b Ltd".to_string(), "b.example".to_string()));
        assert_eq!(names["x"].1, "x.example");
        assert_eq!(names["c"].1, "");

        // Nothing failed: nothing is added.
        let mut listed = BTreeMap::new();
        let mut names = BTreeMap::new();
        carry_over(&prev, &BTreeSet::new(), &mut listed, &mut names);
        assert!(listed.is_empty() && names.is_empty());
    }

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
        assert_eq!(
            role_ids(rels.into_iter().nth(1).unwrap().access_details),
            [
                "29232cdf-9323-42fd-ade2-1d097af3e4de",
                "3a2c62db-5318-420d-8d74-23affee5d9d5"
            ]
        );
    }

    #[test]
    fn documented_access_assignments_parse() {
        let raw = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/graph-delegatedAdminAccessAssignments-list.json"
        ));
        let v: serde_json::Value = serde_json::from_str(raw).unwrap();
        let list: Vec<RawAccessAssignment> = serde_json::from_value(v["value"].clone()).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].status, "active");
        let first = role_ids(list.into_iter().next().unwrap().access_details);
        assert!(first.contains(&crate::model::GLOBAL_ADMINISTRATOR.to_string()));
    }

    #[test]
    fn required_roles_need_an_active_assignment_and_skip_the_unknown() {
        let reader = "f2ef992c-3afb-46b9-b7cf-a126ee74c451".to_string();
        let tenant = |id: &str| Tenant {
            tenant_id: id.into(),
            name: "".into(),
            domain: "".into(),
        };
        let rel = |t: &str, access: Option<Vec<AccessAssignment>>| GdapRelationship {
            id: format!("rel-{t}"),
            tenant_id: t.into(),
            customer_name: String::new(),
            status: "active".into(),
            end: None,
            auto_extend: false,
            roles: vec![reader.clone()],
            access,
        };
        let active = |status: &str| AccessAssignment {
            status: status.into(),
            roles: vec![reader.clone()],
        };
        let rels = [
            rel("a", Some(vec![active("active")])),
            rel("b", Some(vec![active("pending")])),
            rel("c", None),
        ];
        let tenants = [tenant("a"), tenant("b"), tenant("c"), tenant("d")];
        let got = required_roles(std::slice::from_ref(&reader), &tenants, &rels);
        let brief: Vec<(&str, &str, bool)> = got
            .iter()
            .map(|r| (r.tenant_id.as_str(), r.role.as_str(), r.missing))
            .collect();
        assert_eq!(
            brief,
            [
                ("a", "Global Reader", false),
                ("b", "Global Reader", true),
                ("d", "Global Reader", true),
            ]
        );
    }
}
