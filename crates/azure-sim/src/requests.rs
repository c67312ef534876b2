//! The record of every request the simulated services received, in order,
//! so tests can assert on call patterns (how many tokens per tenant, how
//! many Resource Graph pages per run) and not only on totals.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;
use tenantwatch_common::sync::lock;

use crate::service::Service;

/// Records kept before the oldest are dropped. A long-running `tenantwatch
/// sim` would otherwise grow without bound; counts stay exact regardless.
pub(crate) const MAX_RECORDS: usize = 200_000;

/// One request a simulated service received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestRecord {
    /// The service (origin) it was sent to.
    pub service: Service,
    /// For [`Service::Token`] the tenant in the path (domains resolved to
    /// ids); for resources the `tid` of the presented token; `None` when
    /// there is neither.
    pub tenant: Option<String>,
    /// HTTP method.
    pub method: String,
    /// Path without the query string.
    pub path: String,
}

#[derive(Default)]
struct Inner {
    records: VecDeque<RequestRecord>,
    counts: HashMap<(Service, Option<String>), u64>,
}

/// Every request in arrival order, plus exact per-(service, tenant) counts.
#[derive(Default)]
pub(crate) struct RequestLog {
    inner: Mutex<Inner>,
}

impl RequestLog {
    /// Appends a record (and counts it) under one lock, so counts and
    /// records never disagree.
    pub fn record(&self, r: RequestRecord) {
        let mut g = lock(&self.inner);
        *g.counts.entry((r.service, r.tenant.clone())).or_default() += 1;
        if g.records.len() == MAX_RECORDS {
            g.records.pop_front();
        }
        g.records.push_back(r);
    }

    /// The records, oldest first (the newest [`MAX_RECORDS`]).
    pub fn records(&self) -> Vec<RequestRecord> {
        lock(&self.inner).records.iter().cloned().collect()
    }

    /// Requests to `service`, for one tenant (any case) or all.
    pub fn count(&self, service: Service, tenant: Option<&str>) -> u64 {
        lock(&self.inner)
            .counts
            .iter()
            .filter(|((s, t), _)| {
                *s == service
                    && match tenant {
                        None => true,
                        Some(want) => t.as_deref().is_some_and(|t| t.eq_ignore_ascii_case(want)),
                    }
            })
            .map(|(_, n)| n)
            .sum()
    }

    /// Every (service, tenant) count, for the admin API.
    pub fn counts(&self) -> Vec<(Service, Option<String>, u64)> {
        lock(&self.inner)
            .counts
            .iter()
            .map(|((s, t), n)| (*s, t.clone(), *n))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(service: Service, tenant: Option<&str>) -> RequestRecord {
        RequestRecord {
            service,
            tenant: tenant.map(str::to_string),
            method: "GET".into(),
            path: "/x".into(),
        }
    }

    #[test]
    fn counts_agree_with_records() {
        let log = RequestLog::default();
        log.record(rec(Service::Graph, Some("A")));
        log.record(rec(Service::Graph, None));
        log.record(rec(Service::Arm, Some("a")));
        let records = log.records();
        assert_eq!(records.len(), 3);
        assert_eq!(records[2].service, Service::Arm);
        assert_eq!(log.count(Service::Graph, None), 2);
        assert_eq!(log.count(Service::Graph, Some("a")), 1);
        assert_eq!(log.count(Service::Arm, Some("A")), 1);
        assert_eq!(
            log.count(Service::Graph, Some("a")),
            records
                .iter()
                .filter(|r| r.service == Service::Graph
                    && r.tenant
                        .as_deref()
                        .is_some_and(|t| t.eq_ignore_ascii_case("a")))
                .count() as u64
        );
        assert_eq!(
            serde_json::to_value(&records[0]).unwrap()["service"],
            "graph"
        );
    }
}
