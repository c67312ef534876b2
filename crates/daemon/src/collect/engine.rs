//! The collection engine: discovery and every collector run on their own
//! schedules, write their results into one shared state, and each run publishes a
//! new immutable [`Snapshot`] for scrapes to read.
//!
//! Each tenant runs under its collector's timeout in its own task, at most
//! `collection.concurrency` at once, so a slow or failing tenant delays nobody
//! else beyond that bound and shows up as its own `tenant_up 0`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::collect::collector::{CollectError, Collector, Scope, TenantContext};
use crate::collect::discovery::Discovered;
use crate::collect::results::{About, Encoded, Pending, RunTally, State, TenantResult};
use crate::config::cloud::Cloud;
use crate::config::{CollectionSettings, CollectorSettings};
use crate::exposition::series::{FamilyLists, SeriesSet};
use crate::exposition::Chunk;
use crate::exposition::Publisher;
use crate::metrics::Metrics;
use crate::model::{CollectorRun, DiscoveryStatus, Tenant};
use crate::outbound::request::ApiClient;
use crate::tokens::broker::TokenBroker;
use tenantwatch_common::sync::lock;
use tenantwatch_common::time::unix_now;

/// Rejected discovery values remembered for "logged once".
const MAX_REJECTIONS_LOGGED: usize = 10_000;

/// Everything the jobs need; built once by the daemon.
pub struct Engine {
    /// Request path with limits and metrics.
    pub api: ApiClient,
    /// Endpoints.
    pub cloud: Cloud,
    /// Token cache.
    pub broker: Arc<TokenBroker>,
    /// Live metrics.
    pub metrics: Arc<Metrics>,
    /// Where each new snapshot is published for scrapes.
    pub publisher: Arc<Publisher>,
    /// Discovery settings.
    pub discovery: crate::config::DiscoverySettings,
    /// Concurrency, timeouts, series limit.
    pub collection: CollectionSettings,
    /// Enabled collectors with their settings.
    pub collectors: Vec<(Arc<dyn Collector>, CollectorSettings)>,
    /// The partner's own tenant.
    pub partner_tenant: String,
    /// The SAM app's client id.
    pub partner_client_id: String,
    /// Shared results. A `std` mutex: held only to copy or merge, never across `.await`.
    state: Mutex<State>,
    /// Family lists shared by the tenants' kept samples.
    families: FamilyLists,
    /// Publishes asked for so far.
    publish_requests: AtomicU64,
    /// Collector runs started so far.
    runs_started: AtomicU64,
    /// Rejected discovery values already logged, so each is logged once.
    rejections_logged: Mutex<HashSet<(crate::model::Source, String)>>,
    /// One publish at a time (each encoding holds a compressor and a body's
    /// worth of pieces); the value is the last request it covered.
    publishing: tokio::sync::Mutex<u64>,
}

impl Engine {
    /// An engine with no results yet.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        api: ApiClient,
        cloud: Cloud,
        broker: Arc<TokenBroker>,
        publisher: Arc<Publisher>,
        discovery: crate::config::DiscoverySettings,
        collection: CollectionSettings,
        collectors: Vec<(Arc<dyn Collector>, CollectorSettings)>,
        partner_tenant: String,
        partner_client_id: String,
    ) -> Self {
        Self {
            api,
            cloud,
            broker,
            metrics: publisher.metrics().clone(),
            publisher,
            discovery,
            collection,
            collectors,
            partner_tenant,
            partner_client_id,
            state: Mutex::new(State::default()),
            families: FamilyLists::default(),
            publish_requests: AtomicU64::new(0),
            runs_started: AtomicU64::new(0),
            rejections_logged: Mutex::new(HashSet::new()),
            publishing: tokio::sync::Mutex::new(0),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Re-reads the refresh token (a new consent, another replica's rotation) and
    /// lists the tenants; a failing source keeps the previous tenants it listed.
    pub async fn discover(self: &Arc<Self>) {
        self.load_refresh_token().await;
        let started = Instant::now();
        let found = crate::collect::discovery::discover(
            &self.discovery,
            &self.api,
            &self.broker,
            &self.cloud,
            &self.partner_tenant,
        )
        .await;
        for (source, why) in &found.failures {
            tracing::error!(source = source.as_str(), error = %why, "tenant discovery source failed");
        }
        self.report_rejections(&found.rejected);
        {
            let mut st = self.state();
            let ok = found.failures.is_empty();
            let found = match (&st.discovered, ok) {
                // Every source failed: keep watching the tenants we knew rather than dropping every series.
                (Some(prev), false) if found.tenants.is_empty() => {
                    let mut keep = Discovered::clone(prev);
                    keep.failures = found.failures.clone();
                    keep
                }
                _ => found,
            };
            let keep: HashSet<String> = found
                .tenants
                .iter()
                .map(|t| t.tenant_id.to_string())
                .collect();
            let st = &mut *st;
            let mut changed = vec![false; self.collectors.len()];
            st.results.retain(|t, row| {
                let stays = keep.contains(t.as_ref()) || **t == *self.partner_tenant;
                if !stays {
                    for (c, r) in changed.iter_mut().zip(row.iter()) {
                        *c |= r.is_some();
                    }
                }
                stays
            });
            for ((c, _), changed) in self.collectors.iter().zip(changed) {
                if changed {
                    *st.versions.entry(c.name()).or_default() += 1;
                }
            }
            self.broker.retain_tenants(&keep);
            self.api.retain_tenants(&{
                let mut k = keep.clone();
                k.insert(self.partner_tenant.clone());
                k
            });
            self.metrics.ratelimits.retain_tenants(&{
                let mut k = keep;
                k.insert(self.partner_tenant.clone());
                k
            });
            st.discovery = DiscoveryStatus {
                ok,
                done: true,
                last_success: if ok {
                    Some(unix_now())
                } else {
                    st.discovery.last_success
                },
            };
            tracing::info!(
                tenants = found.tenants.len(),
                seconds = format!("{:.2}", started.elapsed().as_secs_f64()),
                "tenant discovery finished"
            );
            st.discovered = Some(Arc::new(found));
        }
        self.publish().await;
    }

    /// Counts every value discovery dropped, and logs each one the first time.
    fn report_rejections(&self, rejected: &[crate::collect::discovery::Rejection]) {
        let mut seen = lock(&self.rejections_logged);
        for r in rejected {
            self.metrics
                .discovery_rejected
                .with_label_values(&[r.source.as_str(), r.reason])
                .inc();
            // Bounded: a source listing thousands of bad ids must not grow memory.
            if seen.len() < MAX_REJECTIONS_LOGGED && seen.insert((r.source, r.value.clone())) {
                tracing::warn!(
                    source = r.source.as_str(),
                    reason = r.reason,
                    value = %r.value,
                    "discovery listed a value that is not used (logged once)"
                );
            }
        }
    }

    async fn load_refresh_token(&self) {
        match self.broker.load_from_store().await {
            Ok(true) => {
                tracing::info!(
                    version = self
                        .broker
                        .current_token()
                        .map(|t| t.version)
                        .unwrap_or_default(),
                    "using the refresh token from {}",
                    self.broker.store().describe()
                );
                // Cached access tokens would keep a new refresh token untried
                // for up to an hour, and refresh_token_valid unknown with it:
                // one redemption at the partner tenant says now whether Entra
                // takes it (a dead one also opens the broker's circuit at once).
                if let Err(e) = self
                    .broker
                    .redeem(&self.partner_tenant, crate::model::Api::PartnerCenter)
                    .await
                {
                    tracing::warn!(error = %e, "the new refresh token was not accepted");
                }
            }
            Ok(false) => {}
            Err(e) if self.broker.has_refresh_token() => {
                tracing::warn!(error = %e, "cannot re-read the refresh token; keeping the one in memory")
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read the refresh token; no tenant can be collected")
            }
        }
    }

    /// Runs collector `idx` over its tenants and publishes the result.
    pub async fn run_collector(self: &Arc<Self>, idx: usize) {
        let Some((collector, settings)) = self.collectors.get(idx).cloned() else {
            return;
        };
        let name = collector.name();
        let started = Instant::now();
        let partner = Tenant {
            tenant_id: self.partner_tenant.as_str().into(),
            name: "".into(),
            domain: "".into(),
        };
        let discovered = match collector.scope() {
            Scope::Partner => None,
            Scope::Customers => self.state().discovered.clone(),
        };
        let tenants: &[Tenant] = match (collector.scope(), &discovered) {
            (Scope::Partner, _) => std::slice::from_ref(&partner),
            (Scope::Customers, Some(d)) => &d.tenants,
            (Scope::Customers, None) => &[],
        };
        let permits = Arc::new(Semaphore::new(self.collection.concurrency));
        let mut tasks = JoinSet::new();
        let mut run = RunTally {
            id: self.runs_started.fetch_add(1, Ordering::Relaxed) + 1,
            done: 0,
            ok: 0,
        };
        for tenant in tenants {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            // Only this tenant's previous result, and only while it is being
            // collected: each finished tenant replaces its own entry, so the
            // old and new results of a whole run are never held at once.
            let before = self
                .state()
                .results
                .get(&*tenant.tenant_id)
                .and_then(|row| row.get(idx)?.clone());
            let (this, collector, tenant, timeout) = (
                self.clone(),
                collector.clone(),
                tenant.clone(),
                settings.timeout,
            );
            tasks.spawn(async move {
                let _permit = permit;
                let r = this
                    .collect_one(&*collector, &tenant, before.as_ref(), timeout)
                    .await;
                (tenant.tenant_id, r)
            });
            while let Some(done) = tasks.try_join_next() {
                self.record(idx, &mut run, done);
            }
        }
        while let Some(done) = tasks.join_next().await {
            self.record(idx, &mut run, done);
        }
        let seconds = started.elapsed().as_secs_f64();
        tracing::info!(
            collector = name,
            tenants = run.done,
            ok = run.ok,
            seconds = format!("{seconds:.2}"),
            "collector run finished"
        );
        {
            let mut st = self.state();
            let st = &mut *st;
            // Tenants this run did not reach (dropped by discovery, or
            // whose task failed) leave with it.
            let in_scope: Option<HashSet<&str>> = match (collector.scope(), &st.discovered) {
                (Scope::Customers, Some(found)) => {
                    Some(found.tenants.iter().map(|t| &*t.tenant_id).collect())
                }
                _ => None,
            };
            st.results.retain(|t, row| {
                if let Some(slot) = row.get_mut(idx) {
                    let current = slot.as_ref().is_some_and(|r| r.run == run.id)
                        && in_scope.as_ref().is_none_or(|k| k.contains(t.as_ref()));
                    if !current {
                        *slot = None;
                    }
                }
                row.iter().any(Option::is_some)
            });
            *st.versions.entry(name).or_default() += 1;
            st.runs.insert(
                name,
                CollectorRun {
                    finished: unix_now(),
                    seconds,
                },
            );
        }
        self.publish().await;
    }

    /// Stores one tenant's outcome as soon as it is known.
    fn record(
        &self,
        idx: usize,
        run: &mut RunTally,
        done: Result<(Arc<str>, TenantResult), tokio::task::JoinError>,
    ) {
        match done {
            Ok((tenant, mut r)) => {
                run.ok += usize::from(r.ok);
                run.done += 1;
                r.run = run.id;
                let mut st = self.state();
                let slot = match st.results.get_mut(&*tenant) {
                    Some(row) => row.get_mut(idx),
                    None => st
                        .results
                        .entry(tenant)
                        .or_insert_with(|| (0..self.collectors.len()).map(|_| None).collect())
                        .get_mut(idx),
                };
                if let Some(slot) = slot {
                    *slot = Some(r);
                }
            }
            // A panic in one tenant's task must not take the run down; it is a bug to report.
            Err(e) if e.is_panic() => {
                tracing::error!(error = %e, "a tenant collection task panicked")
            }
            Err(_) => {}
        }
    }

    async fn collect_one(
        &self,
        collector: &dyn Collector,
        tenant: &Tenant,
        before: Option<&TenantResult>,
        timeout: std::time::Duration,
    ) -> TenantResult {
        let name = collector.name();
        let ctx = TenantContext {
            tenant,
            broker: &self.broker,
            api: &self.api,
            cloud: &self.cloud,
            partner_client_id: &self.partner_client_id,
        };
        let timer = Instant::now();
        let result = tokio::time::timeout(timeout, collector.collect(&ctx)).await;
        self.metrics
            .collector_duration
            .with_label_values(&[name])
            .observe(timer.elapsed().as_secs_f64());
        let kept = || {
            before
                .map(|b| (b.series.clone(), b.about.clone()))
                .unwrap_or_default()
        };
        let last = before.and_then(|b| b.last_success);
        let out = match result {
            Ok(Ok(mut findings)) => {
                if findings.samples.len() > self.collection.max_series {
                    let dropped = findings.samples.len() - self.collection.max_series;
                    findings.samples.truncate(self.collection.max_series);
                    self.metrics
                        .series_dropped
                        .with_label_values(&[name])
                        .inc_by(dropped as u64);
                    tracing::warn!(tenant = %tenant.tenant_id, collector = name, dropped, limit = self.collection.max_series, "series limit reached; samples dropped");
                }
                let about = (findings.name.is_some() || findings.domain.is_some()).then(|| {
                    // Graph's text: the name is cleaned, a domain that is
                    // not a DNS name is not used.
                    Arc::new(About {
                        name: findings
                            .name
                            .map(|n| Arc::from(crate::support::scrub::upstream(&n))),
                        domain: findings
                            .domain
                            .filter(|d| crate::model::is_domain(d))
                            .map(|d| Arc::from(d.to_ascii_lowercase())),
                    })
                });
                TenantResult {
                    ok: true,
                    last_success: Some(unix_now()),
                    token_error: None,
                    series: SeriesSet::new(&tenant.tenant_id, &findings.samples, &self.families),
                    about,
                    run: 0,
                }
            }
            Ok(Err(e)) => {
                let token_error = match &e {
                    CollectError::Token(b) => Some(b.class()),
                    CollectError::Api(_) => None,
                };
                match &e {
                    // The broker already said this once for every tenant.
                    CollectError::Token(b) if b.partner_wide() => {
                        tracing::debug!(tenant = %tenant.tenant_id, collector = name, error = %e, "collector skipped")
                    }
                    CollectError::Token(b) => {
                        tracing::warn!(tenant = %tenant.tenant_id, collector = name, reason = %b.class(), advice = b.class().advice(), error = %e, "collector failed")
                    }
                    CollectError::Api(_) => {
                        tracing::warn!(tenant = %tenant.tenant_id, collector = name, error = %e, "collector failed")
                    }
                }
                let (series, about) = kept();
                TenantResult {
                    ok: false,
                    last_success: last,
                    token_error,
                    series,
                    about,
                    run: 0,
                }
            }
            Err(_) => {
                tracing::warn!(tenant = %tenant.tenant_id, collector = name, timeout_secs = timeout.as_secs_f64(), "collector timed out");
                let (series, about) = kept();
                TenantResult {
                    ok: false,
                    last_success: last,
                    token_error: None,
                    series,
                    about,
                    run: 0,
                }
            }
        };
        self.metrics
            .collector_runs
            .with_label_values(&[name, if out.ok { "success" } else { "failure" }])
            .inc();
        out
    }

    /// Builds a snapshot from the current state and publishes it. Encoding
    /// thousands of tenants takes a good part of a second of CPU, so it runs on
    /// the low-priority background thread and scrapes keep the CPU; only
    /// collectors whose results changed are re-encoded. Publishes run one at a
    /// time, and one that starts after several were asked for covers them all.
    async fn publish(&self) {
        let ticket = self.publish_requests.fetch_add(1, Ordering::SeqCst) + 1;
        let mut covered = self.publishing.lock().await;
        if *covered >= ticket {
            return;
        }
        // Every request up to here changed the state before asking, so the
        // snapshot built below includes its change.
        *covered = self.publish_requests.load(Ordering::SeqCst);
        let usable = self.broker.has_refresh_token();
        let Some(pending) = self.state().snapshot(&self.collectors, usable) else {
            return;
        };
        let publisher = self.publisher.clone();
        let job = crate::exposition::encoder::run(move || {
            let Pending {
                snapshot,
                mut cached,
                stale,
            } = pending;
            let fresh: Vec<(&'static str, Encoded)> = stale
                .into_iter()
                .map(|(name, version, kept)| {
                    let sets: Vec<(&str, &SeriesSet)> =
                        kept.iter().map(|(t, s)| (t.as_ref(), s)).collect();
                    let chunks: Vec<Arc<Chunk>> = crate::exposition::series::encode(&sets)
                        .into_iter()
                        .map(Arc::new)
                        .collect();
                    (name, (version, Arc::new(chunks)))
                })
                .collect();
            for (_, (_, chunks)) in &fresh {
                cached.extend(chunks.iter().cloned());
            }
            publisher.publish(snapshot, cached);
            fresh
        });
        match job.await {
            Ok(fresh) => {
                let mut st = self.state();
                for (name, enc) in fresh {
                    if st.encoded.get(name).is_none_or(|(v, _)| *v < enc.0) {
                        st.encoded.insert(name, enc);
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "publishing the snapshot failed"),
        }
    }
}
