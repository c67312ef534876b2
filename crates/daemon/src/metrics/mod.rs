//! The live metrics every stage feeds as it works: counters, gauges and
//! histograms in a `prometheus` registry ([`Metrics`]), and per partner
//! ([`PartnerMetrics`]) what is known about its refresh token
//! ([`RefreshGauges`]) and the last rate-limit headers its requests saw
//! ([`RateLimits`]); the `process_*` families every Prometheus client exports
//! ([`process`]) and `tenantwatch_build_info`. Nothing here writes exposition text: `exposition` reads
//! these and the published snapshot when it builds the `/metrics` body.

pub mod process;
mod ratelimits;
mod refresh;

use std::sync::{Arc, Mutex};

use tenantwatch_common::sync::lock;

use prometheus::{
    CounterVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

pub use ratelimits::{RateLimits, RateShard};
pub use refresh::{RefreshGauges, RefreshState};

/// Owns the registry and every live metric family.
pub struct Metrics {
    registry: Registry,
    /// `tenantwatch_token_requests_total{partner,scope,result}`.
    pub token_requests: IntCounterVec,
    /// `tenantwatch_collector_duration_seconds{collector}`: one observation per tenant per run.
    pub collector_duration: HistogramVec,
    /// `tenantwatch_scheduler_skipped_runs_total{job}`: cron ticks dropped because the previous run was still going.
    pub skipped_runs: IntCounterVec,
    /// `tenantwatch_collector_runs_total{collector,result}`.
    pub collector_runs: IntCounterVec,
    /// `tenantwatch_refresh_token_rotations_total{partner,result}`.
    pub rotations: IntCounterVec,
    /// `tenantwatch_api_requests_total{api,status_class}`.
    pub api_requests: IntCounterVec,
    /// `tenantwatch_api_request_duration_seconds{api}`.
    pub api_duration: HistogramVec,
    /// `tenantwatch_api_throttled_total{api}`: 429s received.
    pub api_throttled: IntCounterVec,
    /// `tenantwatch_api_budget_wait_seconds_total{api,collector}`: time requests waited for budget before being sent.
    pub api_budget_wait: CounterVec,
    /// `tenantwatch_series_dropped_total{collector}`: samples over the per-collector limit.
    pub series_dropped: IntCounterVec,
    /// `tenantwatch_discovery_rejected_total{partner,source,reason}`: ids and domains discovery dropped.
    pub discovery_rejected: IntCounterVec,
    /// `tenantwatch_claims_challenges_total{api,result}`: CAE claims challenges answered.
    pub claims_challenges: IntCounterVec,
    /// `tenantwatch_http_connections`: connections to the daemon's HTTP server open now.
    pub http_connections: IntGauge,
    /// `tenantwatch_http_connections_closed_total{reason}`: connections the server closed itself.
    pub http_connections_closed: IntCounterVec,
    /// Each partner's gauges, in the order they were first asked for.
    partners: Mutex<Vec<Arc<PartnerMetrics>>>,
}

/// What is kept per partner besides its labelled counters.
pub struct PartnerMetrics {
    /// The partner's name, the `partner` label value.
    pub name: Arc<str>,
    /// Refresh-token gauges, each absent until known (never 0 for "unknown").
    pub refresh: RefreshGauges,
    /// Last seen rate-limit headers, `tenantwatch_api_ratelimit_remaining{api,tenant_id,kind,partner}`.
    pub ratelimits: RateLimits,
}

impl PartnerMetrics {
    /// Records whether the store could be read.
    pub fn set_store_up(&self, up: bool) {
        self.refresh.update(|r| r.store_up = Some(up));
    }
}

/// `tenantwatch_build_info`'s labels: version, git revision and rustc
/// version, captured by `build.rs` (`unknown` when it could not tell).
pub const BUILD: [&str; 3] = [
    env!("CARGO_PKG_VERSION"),
    env!("TENANTWATCH_REVISION"),
    env!("TENANTWATCH_RUSTC"),
];

/// Why the HTTP server closed a connection itself (the `reason` label).
pub const HTTP_CLOSE_REASONS: [&str; 4] =
    ["header_timeout", "idle_timeout", "evicted", "over_capacity"];

/// Why a metric could not be registered (a programming error surfaced at start-up).
#[derive(Debug, thiserror::Error)]
#[error("metrics registry: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

impl Metrics {
    /// Registers every live family.
    pub fn new() -> Result<Arc<Self>, MetricsError> {
        let registry = Registry::new();
        let token_requests = IntCounterVec::new(
            Opts::new(
                "tenantwatch_token_requests_total",
                "Requests to the Entra ID token endpoint, by API scope and result (ok or an error class).",
            ),
            &["partner", "scope", "result"],
        )?;
        let collector_duration = HistogramVec::new(
            HistogramOpts::new(
                "tenantwatch_collector_duration_seconds",
                "Time one collector took for one tenant, token included.",
            )
            .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]),
            &["collector"],
        )?;
        let skipped_runs = IntCounterVec::new(
            Opts::new(
                "tenantwatch_scheduler_skipped_runs_total",
                "Scheduled runs skipped because the previous run of the same job was still going.",
            ),
            &["task"],
        )?;
        let collector_runs = IntCounterVec::new(
            Opts::new(
                "tenantwatch_collector_runs_total",
                "Collector runs per tenant, by collector and result (success or failure).",
            ),
            &["collector", "result"],
        )?;
        let rotations = IntCounterVec::new(
            Opts::new(
                "tenantwatch_refresh_token_rotations_total",
                "Refresh-token rotation attempts, by result (success or failure).",
            ),
            &["partner", "result"],
        )?;
        let api_requests = IntCounterVec::new(
            Opts::new(
                "tenantwatch_api_requests_total",
                "Requests to Microsoft APIs (token endpoint excluded), by API and status class.",
            ),
            &["api", "status_class"],
        )?;
        let api_duration = HistogramVec::new(
            HistogramOpts::new(
                "tenantwatch_api_request_duration_seconds",
                "Latency of requests to Microsoft APIs, by API.",
            )
            .buckets(vec![0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            &["api"],
        )?;
        let api_throttled = IntCounterVec::new(
            Opts::new(
                "tenantwatch_api_throttled_total",
                "Answers 429 Too Many Requests from Microsoft APIs (token endpoint excluded), by API.",
            ),
            &["api"],
        )?;
        // Present at 0 from the start, so `increase()` sees the first 429.
        for api in [
            "graph",
            "arm",
            "resource_graph",
            "cost_management",
            "partner_center",
        ] {
            api_throttled.with_label_values(&[api]);
        }
        let api_budget_wait = CounterVec::new(
            Opts::new(
                "tenantwatch_api_budget_wait_seconds_total",
                "Time requests waited for their API budget before being sent (pacing), by API and collector (discovery for tenant discovery).",
            ),
            &["api", "collector"],
        )?;
        let series_dropped = IntCounterVec::new(
            Opts::new(
                "tenantwatch_series_dropped_total",
                "Samples dropped because a collector exceeded its series limit for a tenant.",
            ),
            &["collector"],
        )?;
        let discovery_rejected = IntCounterVec::new(
            Opts::new(
                "tenantwatch_discovery_rejected_total",
                "Values a discovery source listed that were dropped, by source and reason (not_a_tenant_id, partner_tenant, invalid_domain).",
            ),
            &["partner", "source", "reason"],
        )?;
        let claims_challenges = IntCounterVec::new(
            Opts::new(
                "tenantwatch_claims_challenges_total",
                "Claims challenges (Continuous Access Evaluation) answered by redeeming the refresh token with their claims and retrying once, by API and result: ok, challenged_again, failed, or the error class of the refused redemption.",
            ),
            &["api", "result"],
        )?;
        let http_connections = IntGauge::new(
            "tenantwatch_http_connections",
            "Connections to the daemon's HTTP server open now.",
        )?;
        let http_connections_closed = IntCounterVec::new(
            Opts::new(
                "tenantwatch_http_connections_closed_total",
                "Connections the HTTP server closed itself: header_timeout, idle_timeout, evicted (to make room for a new one) or over_capacity (refused: every slot had a request in flight).",
            ),
            &["reason"],
        )?;
        for r in HTTP_CLOSE_REASONS {
            http_connections_closed.with_label_values(&[r]);
        }
        let build_info = IntGaugeVec::new(
            Opts::new(
                "tenantwatch_build_info",
                "Version, git revision and rustc version tenantwatch was built from; always 1.",
            ),
            &["version", "revision", "rustc"],
        )?;
        build_info.with_label_values(&BUILD).set(1);
        registry.register(Box::new(token_requests.clone()))?;
        registry.register(Box::new(collector_duration.clone()))?;
        registry.register(Box::new(skipped_runs.clone()))?;
        registry.register(Box::new(collector_runs.clone()))?;
        registry.register(Box::new(build_info))?;
        registry.register(Box::new(rotations.clone()))?;
        registry.register(Box::new(api_requests.clone()))?;
        registry.register(Box::new(api_duration.clone()))?;
        registry.register(Box::new(api_throttled.clone()))?;
        registry.register(Box::new(api_budget_wait.clone()))?;
        registry.register(Box::new(series_dropped.clone()))?;
        registry.register(Box::new(discovery_rejected.clone()))?;
        registry.register(Box::new(claims_challenges.clone()))?;
        registry.register(Box::new(http_connections.clone()))?;
        registry.register(Box::new(http_connections_closed.clone()))?;
        registry.register(Box::new(process::ProcessCollector::new()?))?;
        Ok(Arc::new(Self {
            registry,
            token_requests,
            collector_duration,
            skipped_runs,
            collector_runs,
            rotations,
            api_requests,
            api_duration,
            api_throttled,
            api_budget_wait,
            series_dropped,
            discovery_rejected,
            claims_challenges,
            http_connections,
            http_connections_closed,
            partners: Mutex::new(Vec::new()),
        }))
    }

    /// Partner `name`'s gauges, made at the first call; its rotation
    /// counters start at 0 so `increase()` sees the first failure.
    pub fn partner(&self, name: &str) -> Arc<PartnerMetrics> {
        let mut partners = lock(&self.partners);
        if let Some(p) = partners.iter().find(|p| &*p.name == name) {
            return p.clone();
        }
        for r in ["success", "failure"] {
            self.rotations.with_label_values(&[name, r]);
        }
        let p = Arc::new(PartnerMetrics {
            name: Arc::from(name),
            refresh: RefreshGauges::default(),
            ratelimits: RateLimits::default(),
        });
        partners.push(p.clone());
        p
    }

    /// Every partner's gauges, in the order they were first asked for.
    pub fn partners(&self) -> Vec<Arc<PartnerMetrics>> {
        lock(&self.partners).clone()
    }

    /// The registry of the live counters and histograms.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}
