//! The collection engine of one partner: discovery and every collector run
//! on their own schedules, write their results into one shared state, and
//! each run publishes a new immutable [`Snapshot`] of that partner for
//! scrapes to read. A daemon watching several partners runs one engine each.
//!
//! Each tenant runs under its collector's timeout in its own task, at most
//! `collection.concurrency` at once, so a slow or failing tenant delays nobody
//! else beyond that bound and shows up as its own `tenant_up 0`.
//!
//! What a configuration reload may change ([`EngineSettings`]: discovery,
//! collection limits, each collector's switch, schedule and timeout) is
//! swapped whole by [`Engine::apply`]; each run reads it once at its start,
//! so a run in progress finishes under the settings it began with. Every
//! built-in collector keeps its slot whether enabled or not, so results stay
//! where they are across reloads; a disabled collector's results leave
//! `/metrics` at once. Each discovery and collector run is a
//! [`crate::support::liveness`] job, so a run that stops making progress
//! stops the watchdog.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::collect::collector::{CollectError, Collector, Scope, TenantContext};
use crate::collect::results::{About, Encoded, Pending, RunTally, Signals, State, TenantResult};
use crate::config::cloud::Cloud;
use crate::config::{CollectionSettings, CollectorSettings};
use crate::exposition::series::{FamilyLists, SeriesSet};
use crate::exposition::Chunk;
use crate::exposition::Publisher;
use crate::metrics::Metrics;
use crate::model::{CollectorRun, DiscoveryStatus, Signal, Tenant};
use crate::outbound::request::ApiClient;
use crate::support::liveness::{Job, Liveness};
use crate::tokens::broker::TokenBroker;
use tenantwatch_common::sync::lock;
use tenantwatch_common::time::unix_now;

/// Rejected discovery values remembered for "logged once".
const MAX_REJECTIONS_LOGGED: usize = 10_000;

/// How much longer than its own bound a run may go without progress before
/// the watchdog counts it as stuck: room for publishing (encoding thousands
/// of tenants on the low-priority thread) and a loaded machine.
pub const STALL_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// The settings a configuration reload may change, swapped whole.
#[derive(Clone)]
pub struct EngineSettings {
    /// Discovery settings.
    pub discovery: crate::config::DiscoverySettings,
    /// Concurrency, timeouts, series limit.
    pub collection: CollectionSettings,
    /// Every built-in collector in [`crate::collect::collector::builtin`]
    /// order, with its settings (disabled ones too: each keeps its slot).
    pub collectors: Vec<(Arc<dyn Collector>, CollectorSettings)>,
}

impl EngineSettings {
    /// The collectors as `settings` configure them.
    pub fn new(settings: &crate::config::Settings) -> Self {
        let collectors = crate::collect::collector::builtin(settings.custom_queries.clone())
            .into_iter()
            .map(|c| {
                let cs = settings
                    .collectors
                    .get(c.name())
                    .cloned()
                    .unwrap_or(CollectorSettings {
                        enabled: false,
                        schedule: settings.collection.schedule.clone(),
                        timeout: settings.collection.tenant_timeout,
                    });
                (c, cs)
            })
            .collect();
        Self {
            discovery: settings.tenants.clone(),
            collection: settings.collection.clone(),
            collectors,
        }
    }

    /// The enabled collectors with their slot index.
    pub fn enabled(
        &self,
    ) -> impl Iterator<Item = (usize, &Arc<dyn Collector>, &CollectorSettings)> {
        self.collectors
            .iter()
            .enumerate()
            .filter(|(_, (_, cs))| cs.enabled)
            .map(|(i, (c, cs))| (i, c, cs))
    }

    /// How long a discovery run may go without progress: between two
    /// requests ending, at most one request and one retry wait.
    fn discovery_bound(&self) -> std::time::Duration {
        self.collection.request_timeout + self.collection.limits.max_retry_wait + STALL_GRACE
    }

    /// How long a run of a collector with `timeout` may go without a tenant
    /// finishing: every tenant's task ends within it.
    fn collector_bound(timeout: std::time::Duration) -> std::time::Duration {
        timeout + STALL_GRACE
    }
}

/// What [`Engine::apply`] found should run now rather than at the next tick.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Which tenants are in scope changed: discover again.
    pub rediscover: bool,
    /// Collectors (slot indices) newly enabled or rebuilt: run them once, as at start.
    pub run: Vec<usize>,
}

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
    /// The settings in force; a `std` mutex held only to clone the `Arc`.
    settings: Mutex<Arc<EngineSettings>>,
    /// Slots per tenant row: one per built-in collector.
    slots: usize,
    /// Progress of discovery and of each collector, for the watchdog.
    pub liveness: Arc<Liveness>,
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
    runs_started: std::sync::atomic::AtomicU32,
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
        settings: EngineSettings,
        partner_tenant: String,
        partner_client_id: String,
    ) -> Self {
        let liveness = Liveness::new();
        register_jobs(&liveness, &settings);
        Self {
            api,
            cloud,
            broker,
            metrics: publisher.metrics().clone(),
            publisher,
            slots: settings.collectors.len(),
            settings: Mutex::new(Arc::new(settings)),
            liveness,
            partner_tenant,
            partner_client_id,
            state: Mutex::new(State::default()),
            families: FamilyLists::default(),
            publish_requests: AtomicU64::new(0),
            runs_started: std::sync::atomic::AtomicU32::new(0),
            rejections_logged: Mutex::new(HashSet::new()),
            publishing: tokio::sync::Mutex::new(0),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The partner whose tenants this engine collects.
    pub fn partner_name(&self) -> crate::model::PartnerName {
        crate::model::PartnerName(self.broker.partner().name.clone())
    }

    /// The settings in force.
    pub fn settings(&self) -> Arc<EngineSettings> {
        lock(&self.settings).clone()
    }

    /// Puts reloaded settings in force for the next runs. A collector
    /// disabled now leaves `/metrics` at once; one whose custom queries
    /// changed starts afresh. Says what should run now.
    pub async fn apply(&self, new: EngineSettings) -> Applied {
        let old = self.settings();
        let mut applied = Applied {
            rediscover: DiscoveryKey::of(&old.discovery) != DiscoveryKey::of(&new.discovery),
            run: Vec::new(),
        };
        let mut cleared = Vec::new();
        let mut collectors = Vec::with_capacity(new.collectors.len());
        for (idx, ((old_c, old_s), (new_c, new_s))) in
            old.collectors.iter().zip(new.collectors).enumerate()
        {
            let rebuilt = rebuilt(old_c, &new_c);
            if new_s.enabled && (!old_s.enabled || rebuilt) {
                applied.run.push(idx);
            }
            if !new_s.enabled || rebuilt {
                cleared.push((idx, old_c.name()));
            }
            // A collector is kept unless its queries changed: its families are
            // the ones its kept results point at.
            collectors.push((if rebuilt { new_c } else { old_c.clone() }, new_s));
        }
        let new = EngineSettings { collectors, ..new };
        self.api.set_limits(new.collection.limits.clone());
        register_jobs(&self.liveness, &new);
        {
            // Swapped under the state lock: a run that records or finishes
            // checks its collector's switch under it too, so nothing it
            // stores after this point survives for a disabled collector.
            let mut st = self.state();
            *lock(&self.settings) = Arc::new(new);
            for (idx, name) in &cleared {
                self.clear_slot(&mut st, *idx, name);
            }
        }
        if !cleared.is_empty() {
            self.publish().await;
        }
        applied
    }

    /// Whether collector `idx` is switched on in the settings in force; asked
    /// under the state lock, which [`Engine::apply`] swaps the settings under.
    fn enabled(&self, idx: usize) -> bool {
        lock(&self.settings)
            .collectors
            .get(idx)
            .is_some_and(|(_, cs)| cs.enabled)
    }

    /// Drops every result of collector `idx`, as if it had never run.
    fn clear_slot(&self, st: &mut State, idx: usize, name: &'static str) {
        let mut had = false;
        st.results.retain(|_, row| {
            if let Some(slot) = row.get_mut(idx) {
                had |= slot.take().is_some();
            }
            row.iter().any(Option::is_some)
        });
        let ran = st.runs.remove(name).is_some();
        if had || ran {
            *st.versions.entry(name).or_default() += 1;
        }
    }

    /// Re-reads the refresh token (a new consent, another replica's rotation) and
    /// lists the tenants; a failing source keeps the previous tenants it listed.
    pub async fn discover(self: &Arc<Self>) {
        let plan = self.settings();
        let job = self.liveness.job(DISCOVERY_JOB, plan.discovery_bound());
        job.run(self.discover_with(&plan)).await
    }

    async fn discover_with(self: &Arc<Self>, plan: &EngineSettings) {
        self.load_refresh_token().await;
        let started = Instant::now();
        let prev = self.state().discovered.clone();
        let found = crate::collect::discovery::discover(
            &plan.discovery,
            &self.api,
            &self.broker,
            &self.cloud,
            &self.partner_tenant,
            prev.as_deref(),
        )
        .await;
        for f in &found.failures {
            // A dead refresh token's advice was said once by the broker; only
            // Partner Center's MFA refusal, which the broker never sees, and
            // per-source classes get theirs here.
            let advice = if f.class == crate::model::ErrorClass::MfaClaimMissing
                || !f.class.is_partner_wide()
            {
                f.class.advice()
            } else {
                "see the partner refresh token error above"
            };
            tracing::error!(partner = %self.partner_name().0,
                source = f.source.as_str(),
                reason = f.class.as_str(),
                error = %f.message,
                "tenant discovery source failed: {advice}"
            );
        }
        self.report_rejections(&found.rejected);
        {
            let mut st = self.state();
            let ok = found.failures.is_empty();
            let keep: HashSet<String> = found
                .tenants
                .iter()
                .map(|t| t.tenant_id.to_string())
                .collect();
            let st = &mut *st;
            let mut changed = vec![false; self.slots];
            st.results.retain(|t, row| {
                let stays = keep.contains(t.as_ref()) || **t == *self.partner_tenant;
                if !stays {
                    for (c, r) in changed.iter_mut().zip(row.iter()) {
                        *c |= r.is_some();
                    }
                }
                stays
            });
            for ((c, _), changed) in plan.collectors.iter().zip(changed) {
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
            self.broker.partner().ratelimits.retain_tenants(&{
                let mut k = keep;
                k.insert(self.partner_tenant.clone());
                k
            });
            st.discovery = DiscoveryStatus {
                ok,
                done: true,
                errors: found.failures.iter().map(|f| (f.source, f.class)).collect(),
                last_success: if ok {
                    Some(unix_now())
                } else {
                    st.discovery.last_success
                },
            };
            tracing::info!(partner = %self.partner_name().0,
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
                .with_label_values(&[&self.broker.partner().name, r.source.as_str(), r.reason])
                .inc();
            // Bounded: a source listing thousands of bad ids must not grow memory.
            if seen.len() < MAX_REJECTIONS_LOGGED && seen.insert((r.source, r.value.clone())) {
                tracing::warn!(partner = %self.partner_name().0,
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
                tracing::info!(partner = %self.partner_name().0,
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
                    tracing::warn!(partner = %self.partner_name().0, error = %e, "the new refresh token was not accepted");
                }
            }
            Ok(false) => {}
            Err(e) if self.broker.has_refresh_token() => {
                tracing::warn!(partner = %self.partner_name().0, error = %e, "cannot re-read the refresh token; keeping the one in memory")
            }
            Err(e) => {
                tracing::error!(partner = %self.partner_name().0, error = %e, "cannot read the refresh token; no tenant can be collected")
            }
        }
    }

    /// Runs collector `idx` over its tenants and publishes the result; a
    /// collector disabled by a reload does nothing.
    pub async fn run_collector(self: &Arc<Self>, idx: usize) {
        let plan = self.settings();
        let Some((collector, settings)) = plan.collectors.get(idx).cloned() else {
            return;
        };
        if !settings.enabled {
            return;
        }
        let job = self.liveness.job(
            &collector_job(collector.name()),
            EngineSettings::collector_bound(settings.timeout),
        );
        job.run(self.run_collector_with(&plan, idx, collector, settings, &job))
            .await
    }

    async fn run_collector_with(
        self: &Arc<Self>,
        plan: &EngineSettings,
        idx: usize,
        collector: Arc<dyn Collector>,
        settings: CollectorSettings,
        job: &Arc<Job>,
    ) {
        let name = collector.name();
        #[cfg(debug_assertions)]
        test_hooks::stall(name, self.publisher.snapshot_of(&self.partner_name()).ready).await;
        let started = Instant::now();
        let partner = Tenant {
            tenant_id: self.partner_tenant.as_str().into(),
            name: "".into(),
            domain: "".into(),
        };
        let discovered = match collector.scope() {
            Scope::Partner => None,
            Scope::Customers | Scope::PartnerCenterCustomers => self.state().discovered.clone(),
        };
        let listed: Vec<Tenant>;
        let tenants: &[Tenant] = match (collector.scope(), &discovered) {
            (Scope::Partner, _) => std::slice::from_ref(&partner),
            (Scope::Customers, Some(d)) => &d.tenants,
            (Scope::PartnerCenterCustomers, Some(d)) => {
                listed = d
                    .tenants
                    .iter()
                    .filter(|t| {
                        d.sources
                            .get(&*t.tenant_id)
                            .is_some_and(|s| s.contains(&crate::model::Source::PartnerCenter))
                    })
                    .cloned()
                    .collect();
                &listed
            }
            (_, None) => &[],
        };
        let permits = Arc::new(Semaphore::new(plan.collection.concurrency));
        let max_series = plan.collection.max_series;
        let mut tasks = JoinSet::new();
        let mut run = RunTally {
            id: self
                .runs_started
                .fetch_add(1, Ordering::Relaxed)
                .wrapping_add(1),
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
            let subscriptions = collector
                .uses_subscriptions()
                .then(|| self.known_subscriptions(plan, &tenant.tenant_id))
                .flatten();
            let (this, collector, tenant, timeout) = (
                self.clone(),
                collector.clone(),
                tenant.clone(),
                settings.timeout,
            );
            tasks.spawn(async move {
                let _permit = permit;
                let r = this
                    .collect_one(
                        &*collector,
                        &tenant,
                        (before.as_ref(), subscriptions.as_deref()),
                        timeout,
                        max_series,
                    )
                    .await;
                (tenant.tenant_id, r)
            });
            while let Some(done) = tasks.try_join_next() {
                self.record(idx, &mut run, done);
                job.progress();
            }
        }
        while let Some(done) = tasks.join_next().await {
            self.record(idx, &mut run, done);
            job.progress();
        }
        let seconds = started.elapsed().as_secs_f64();
        tracing::info!(partner = %self.partner_name().0,
            collector = name,
            tenants = run.done,
            ok = run.ok,
            seconds = format!("{seconds:.2}"),
            "collector run finished"
        );
        {
            let mut st = self.state();
            let st = &mut *st;
            // Disabled by a reload while it ran: its results went with the
            // reload, and this run's leave too.
            if !self.enabled(idx) {
                self.clear_slot(st, idx, name);
                return;
            }
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
                if !self.enabled(idx) {
                    return;
                }
                let slot = match st.results.get_mut(&*tenant) {
                    Some(row) => row.get_mut(idx),
                    None => st
                        .results
                        .entry(tenant)
                        .or_insert_with(|| (0..self.slots).map(|_| None).collect())
                        .get_mut(idx),
                };
                if let Some(slot) = slot {
                    *slot = Some(r);
                }
            }
            // A panic in one tenant's task must not take the run down; it is a bug to report.
            Err(e) if e.is_panic() => {
                tracing::error!(partner = %self.partner_name().0, error = %e, "a tenant collection task panicked")
            }
            Err(_) => {}
        }
    }

    /// The subscriptions (not deleted) `arm_subscriptions` found in
    /// `tenant` at its last success, if it is enabled and has one.
    fn known_subscriptions(&self, plan: &EngineSettings, tenant: &str) -> Option<Vec<String>> {
        let idx = plan
            .collectors
            .iter()
            .position(|(c, s)| c.name() == "arm_subscriptions" && s.enabled)?;
        let st = self.state();
        let result = st.results.get(tenant)?.get(idx)?.as_ref()?;
        result.last_success?;
        let mut subs = Vec::new();
        result.series.for_each_in(
            tenant,
            crate::collect::collector::arm_subscriptions::INFO,
            |labels, _| {
                // tenant_id, subscription_id, name, state
                if let (Some(id), Some(state)) = (labels.get(1), labels.get(3)) {
                    if *state != "Deleted" {
                        subs.push(id.to_string());
                    }
                }
            },
        );
        Some(subs)
    }

    async fn collect_one(
        &self,
        collector: &dyn Collector,
        tenant: &Tenant,
        (before, subscriptions): (Option<&TenantResult>, Option<&[String]>),
        timeout: std::time::Duration,
        max_series: usize,
    ) -> TenantResult {
        let name = collector.name();
        let ctx = TenantContext {
            tenant,
            broker: &self.broker,
            api: &self.api,
            cloud: &self.cloud,
            partner_client_id: &self.partner_client_id,
            partner_tenant: &self.partner_tenant,
            subscriptions,
        };
        let timer = Instant::now();
        let result = tokio::time::timeout(
            timeout,
            // Names the collector for the budget-wait metric of every request it sends.
            crate::outbound::request::COLLECTOR.scope(name, collector.collect(&ctx)),
        )
        .await;
        self.metrics
            .collector_duration
            .with_label_values(&[name])
            .observe(timer.elapsed().as_secs_f64());
        let kept = || {
            before
                .map(|b| (b.series.clone(), b.about.clone(), b.signals.clone()))
                .unwrap_or_default()
        };
        let last = before.and_then(|b| b.last_success);
        let out = match result {
            Ok(Ok(mut findings)) => {
                if findings.samples.len() > max_series {
                    let dropped = findings.samples.len() - max_series;
                    findings.samples.truncate(max_series);
                    self.metrics
                        .series_dropped
                        .with_label_values(&[name])
                        .inc_by(dropped as u64);
                    tracing::warn!(partner = %self.partner_name().0, tenant = %tenant.tenant_id, collector = name, dropped, limit = max_series, "series limit reached; samples dropped");
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
                    signals: scrubbed(findings.signals),
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
                        tracing::debug!(partner = %self.partner_name().0, tenant = %tenant.tenant_id, collector = name, error = %e, "collector skipped")
                    }
                    CollectError::Token(b) => {
                        tracing::warn!(partner = %self.partner_name().0, tenant = %tenant.tenant_id, collector = name, reason = %b.class(), advice = b.class().advice(), error = %e, "collector failed")
                    }
                    CollectError::Api(_) => {
                        tracing::warn!(partner = %self.partner_name().0, tenant = %tenant.tenant_id, collector = name, error = %e, "collector failed")
                    }
                }
                let (series, about, signals) = kept();
                TenantResult {
                    ok: false,
                    last_success: last,
                    token_error,
                    series,
                    about,
                    signals,
                    run: 0,
                }
            }
            Err(_) => {
                tracing::warn!(partner = %self.partner_name().0, tenant = %tenant.tenant_id, collector = name, timeout_secs = timeout.as_secs_f64(), "collector timed out");
                let (series, about, signals) = kept();
                TenantResult {
                    ok: false,
                    last_success: last,
                    token_error: None,
                    series,
                    about,
                    signals,
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
        let plan = self.settings();
        let Some(pending) = self.state().snapshot(
            &plan.collectors,
            usable,
            &self.partner_tenant,
            self.partner_name(),
        ) else {
            return;
        };
        let publisher = self.publisher.clone();
        let partner = self.partner_name();
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
                    let chunks: Vec<Arc<Chunk>> =
                        crate::exposition::series::encode(&partner, &sets)
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
            Err(e) => {
                tracing::error!(partner = %self.partner_name().0, error = %e, "publishing the snapshot failed")
            }
        }
    }
}

/// The liveness job of discovery.
const DISCOVERY_JOB: &str = "discovery";

/// The liveness job of a collector.
fn collector_job(name: &str) -> String {
    format!("collector {name}")
}

/// Registers (or re-bounds) the liveness job of discovery and of every enabled collector.
fn register_jobs(liveness: &Liveness, settings: &EngineSettings) {
    liveness.job(DISCOVERY_JOB, settings.discovery_bound());
    for (_, c, cs) in settings.enabled() {
        liveness.job(
            &collector_job(c.name()),
            EngineSettings::collector_bound(cs.timeout),
        );
    }
}

/// True when `new` is a different build of the collector than `old`
/// (its custom queries changed), so its kept results cannot be mixed with new ones.
fn rebuilt(old: &Arc<dyn Collector>, new: &Arc<dyn Collector>) -> bool {
    old.custom_queries() != new.custom_queries()
}

/// What decides which tenants are in scope (discovery's schedule aside).
#[derive(PartialEq)]
struct DiscoveryKey<'a> {
    sources: &'a [crate::model::Source],
    static_tenants: &'a [String],
    include: &'a [String],
    exclude: &'a [String],
    shard: Option<crate::config::Shard>,
}

impl<'a> DiscoveryKey<'a> {
    fn of(d: &'a crate::config::DiscoverySettings) -> Self {
        Self {
            sources: &d.sources,
            static_tenants: &d.static_tenants,
            include: &d.include,
            exclude: &d.exclude,
            shard: d.shard,
        }
    }
}

/// A stuck engine on demand, for the watchdog's integration test: with
/// `TENANTWATCH_TEST_STALL_COLLECTOR=NAME`, every run of that collector once
/// the daemon is ready hangs where no timeout reaches, as a deadlock would.
/// Debug builds only: a release binary has no such switch.
#[cfg(debug_assertions)]
mod test_hooks {
    pub(super) async fn stall(collector: &str, ready: bool) {
        let wanted = std::env::var("TENANTWATCH_TEST_STALL_COLLECTOR");
        if ready && wanted.as_deref() == Ok(collector) {
            tracing::warn!(collector, "test hook: this collector run hangs");
            std::future::pending::<()>().await;
        }
    }
}

/// A run's signals with Microsoft's text scrubbed, as names are; `None` when
/// there are none.
fn scrubbed(signals: Vec<Signal>) -> Option<Signals> {
    use crate::support::scrub::upstream;
    if signals.is_empty() {
        return None;
    }
    let clean = signals.into_iter().map(|s| match s {
        Signal::LicencesExhausted {
            sku,
            consumed,
            enabled,
        } => Signal::LicencesExhausted {
            sku: upstream(&sku),
            consumed,
            enabled,
        },
        Signal::Subscription { id, name, state } => Signal::Subscription {
            id: upstream(&id),
            name: upstream(&name),
            state: upstream(&state),
        },
        Signal::Service { service, status } => Signal::Service {
            service: upstream(&service),
            status: upstream(&status),
        },
        Signal::SubscriptionEnds {
            id,
            name,
            end,
            trial,
        } => Signal::SubscriptionEnds {
            id: upstream(&id),
            name: upstream(&name),
            end,
            trial,
        },
        Signal::CredentialExpiry {
            app_id,
            key_id,
            kind,
            end,
        } => Signal::CredentialExpiry {
            app_id: upstream(&app_id),
            key_id: upstream(&key_id),
            kind,
            end,
        },
    });
    Some(Arc::new(clean.collect()))
}

#[cfg(test)]
mod signal_tests {
    use super::*;

    #[test]
    fn signals_text_is_scrubbed_like_names_and_none_costs_nothing() {
        assert!(scrubbed(Vec::new()).is_none());
        let raw = "Exchange\u{1b}[31m Online\nforged line";
        let out = scrubbed(vec![
            Signal::Service {
                service: raw.into(),
                status: "serviceDegradation".into(),
            },
            Signal::LicencesExhausted {
                sku: raw.into(),
                consumed: 3.0,
                enabled: 3.0,
            },
        ])
        .unwrap();
        let Signal::Service { service, status } = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(service, &crate::support::scrub::upstream(raw));
        assert!(!service.contains('\u{1b}') && !service.contains('\n'));
        assert_eq!(status, "serviceDegradation");
        let Signal::LicencesExhausted { sku, consumed, .. } = &out[1] else {
            panic!("{out:?}")
        };
        assert!(!sku.contains('\n') && *consumed == 3.0);
    }
}
