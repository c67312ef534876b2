//! Prometheus metrics: live counters and histograms owned by [`Metrics`], plus
//! gauge families rebuilt from the latest [`Snapshot`] at every scrape, so a tenant
//! that vanished leaves no stale series.

use std::sync::{Arc, RwLock};

use prometheus::proto::{Gauge, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::snapshot::Snapshot;

/// Owns the registry, every live metric family and the latest snapshot.
pub struct Metrics {
    registry: Registry,
    /// `tenantwatch_token_requests_total{scope,result}`.
    pub token_requests: IntCounterVec,
    /// `tenantwatch_collector_duration_seconds{collector}`: one observation per tenant per run.
    pub collector_duration: HistogramVec,
    /// `tenantwatch_scheduler_skipped_runs_total{job}`: cron ticks dropped because the previous run was still going.
    pub skipped_runs: IntCounterVec,
    /// `tenantwatch_collector_runs_total{collector,result}`.
    pub collector_runs: IntCounterVec,
    /// `tenantwatch_refresh_token_rotations_total{result}`.
    pub rotations: IntCounterVec,
    /// Refresh-token gauges, each absent until known (never 0 for "unknown").
    pub refresh: RefreshGauges,
    /// The latest snapshot. A `std` lock, not a Tokio one: it is held only to clone an `Arc`.
    snapshot: RwLock<Arc<Snapshot>>,
}

/// What is known about the refresh token; `None` fields are not exported.
#[derive(Debug, Clone, Default)]
pub struct RefreshState {
    /// When it expires if unused: last successful redemption + 90 days.
    pub expiry: Option<f64>,
    /// Last successful rotation.
    pub last_rotation: Option<f64>,
    /// Whether Entra accepted it at the last attempt.
    pub valid: Option<bool>,
    /// When the stored version was issued.
    pub created: Option<f64>,
    /// Whether the store could be read at the last attempt.
    pub store_up: Option<bool>,
}

/// A `std` mutex around [`RefreshState`]: updates and scrapes hold it for a copy.
#[derive(Default)]
pub struct RefreshGauges(std::sync::Mutex<RefreshState>);

impl RefreshGauges {
    /// Applies a change.
    pub fn update(&self, f: impl FnOnce(&mut RefreshState)) {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// A copy of the current state.
    pub fn get(&self) -> RefreshState {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

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
            &["scope", "result"],
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
            &["job"],
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
            &["result"],
        )?;
        for r in ["success", "failure"] {
            rotations.with_label_values(&[r]);
        }
        let build_info = IntGaugeVec::new(
            Opts::new("tenantwatch_build_info", "Build information; always 1."),
            &["version"],
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        registry.register(Box::new(token_requests.clone()))?;
        registry.register(Box::new(collector_duration.clone()))?;
        registry.register(Box::new(skipped_runs.clone()))?;
        registry.register(Box::new(collector_runs.clone()))?;
        registry.register(Box::new(build_info))?;
        registry.register(Box::new(rotations.clone()))?;
        Ok(Arc::new(Self {
            registry,
            token_requests,
            collector_duration,
            skipped_runs,
            collector_runs,
            rotations,
            refresh: RefreshGauges::default(),
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
        }))
    }

    /// Replaces the snapshot scrapes read.
    pub fn publish(&self, snapshot: Snapshot) {
        let snapshot = Arc::new(snapshot);
        match self.snapshot.write() {
            Ok(mut g) => *g = snapshot,
            Err(poisoned) => *poisoned.into_inner() = snapshot,
        }
    }

    /// The latest snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        match self.snapshot.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Records whether the store could be read.
    pub fn set_store_up(&self, up: bool) {
        self.refresh.update(|r| r.store_up = Some(up));
    }

    /// The exposition text for `/metrics`.
    pub fn render(&self) -> String {
        let mut families = self.registry.gather();
        families.extend(snapshot_families(&self.snapshot()));
        families.extend(refresh_families(&self.refresh.get()));
        families.sort_by(|a, b| a.name().cmp(b.name()));
        let mut buf = Vec::with_capacity(64 * 1024);
        if let Err(e) = TextEncoder::new().encode(&families, &mut buf) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// Builds one gauge family; `rows` are (label values, value).
struct GaugeFamily {
    family: MetricFamily,
    labels: &'static [&'static str],
}

impl GaugeFamily {
    fn new(name: &str, help: &str, labels: &'static [&'static str]) -> Self {
        let mut family = MetricFamily::default();
        family.set_name(name.to_string());
        family.set_help(help.to_string());
        family.set_field_type(MetricType::GAUGE);
        Self { family, labels }
    }

    fn add(&mut self, values: &[&str], value: f64) {
        let labels = self
            .labels
            .iter()
            .zip(values)
            .map(|(n, v)| {
                let mut l = LabelPair::default();
                l.set_name(n.to_string());
                l.set_value(v.to_string());
                l
            })
            .collect();
        let mut g = Gauge::default();
        g.set_value(value);
        let mut m = Metric::default();
        m.set_label(labels);
        m.set_gauge(g);
        self.family.mut_metric().push(m);
    }

    fn done(self) -> Option<MetricFamily> {
        // An empty family would print HELP/TYPE with no samples; omit it instead.
        (!self.family.get_metric().is_empty()).then_some(self.family)
    }
}

fn snapshot_families(s: &Snapshot) -> Vec<MetricFamily> {
    let mut up = GaugeFamily::new(
        "tenantwatch_tenant_up",
        "1 when a token could be minted for the tenant and its last collection succeeded.",
        &["tenant_id"],
    );
    let mut info = GaugeFamily::new(
        "tenantwatch_tenant_info",
        "Names of each tenant, for joins; always 1.",
        &["tenant_id", "name", "domain"],
    );
    let mut token_error = GaugeFamily::new(
        "tenantwatch_tenant_token_error",
        "1 while minting a token for the tenant fails for this reason.",
        &["tenant_id", "reason"],
    );
    let mut last_success = GaugeFamily::new(
        "tenantwatch_collector_last_success_timestamp_seconds",
        "Unix time of the collector's last successful run for the tenant.",
        &["tenant_id", "collector"],
    );
    for t in &s.tenants {
        up.add(&[&t.tenant_id], if t.up { 1.0 } else { 0.0 });
        info.add(&[&t.tenant_id, &t.name, &t.domain], 1.0);
        if let Some(reason) = t.token_error {
            token_error.add(&[&t.tenant_id, reason.as_str()], 1.0);
        }
        for (name, c) in &t.collectors {
            if let Some(ts) = c.last_success {
                last_success.add(&[&t.tenant_id, name], ts);
            }
        }
    }
    let mut tenants = GaugeFamily::new(
        "tenantwatch_tenants",
        "Tenants in scope after discovery.",
        &[],
    );
    let mut cycle = GaugeFamily::new(
        "tenantwatch_cycle_last_success_timestamp_seconds",
        "Unix time the last full collection cycle finished.",
        &[],
    );
    let mut cycle_secs = GaugeFamily::new(
        "tenantwatch_cycle_duration_seconds",
        "Wall time of the last full collection cycle.",
        &[],
    );
    let mut discovery = GaugeFamily::new(
        "tenantwatch_discovery_up",
        "1 when the last tenant discovery succeeded.",
        &[],
    );
    if let Some(finished) = s.cycle_finished {
        tenants.add(&[], s.tenants.len() as f64);
        cycle.add(&[], finished);
        discovery.add(&[], if s.discovery.ok { 1.0 } else { 0.0 });
    }
    if let Some(d) = s.cycle_seconds {
        cycle_secs.add(&[], d);
    }
    [
        up,
        info,
        token_error,
        last_success,
        tenants,
        cycle,
        cycle_secs,
        discovery,
    ]
    .into_iter()
    .filter_map(GaugeFamily::done)
    .collect()
}

fn refresh_families(r: &RefreshState) -> Vec<MetricFamily> {
    let bool_f = |b: bool| if b { 1.0 } else { 0.0 };
    [
        (
            "tenantwatch_refresh_token_expiry_timestamp_seconds",
            "When the refresh token expires if not used: last successful redemption + 90 days.",
            r.expiry,
        ),
        (
            "tenantwatch_refresh_token_last_rotation_timestamp_seconds",
            "Unix time of the last successful rotation.",
            r.last_rotation,
        ),
        (
            "tenantwatch_refresh_token_valid",
            "1 when Entra ID accepted the refresh token at the last attempt, 0 when it refused it.",
            r.valid.map(bool_f),
        ),
        (
            "tenantwatch_refresh_token_created_timestamp_seconds",
            "When the stored refresh-token version was issued.",
            r.created,
        ),
        (
            "tenantwatch_refresh_token_store_up",
            "1 when the refresh token could be read from the store at the last attempt.",
            r.store_up.map(bool_f),
        ),
    ]
    .into_iter()
    .filter_map(|(name, help, v)| {
        let mut f = GaugeFamily::new(name, help, &[]);
        f.add(&[], v?);
        f.done()
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entra::ErrorClass;
    use crate::snapshot::{CollectorStatus, TenantStatus};

    #[test]
    fn renders_snapshot_and_drops_vanished_tenants() {
        let m = Metrics::new().unwrap();
        let mut collectors = std::collections::BTreeMap::new();
        collectors.insert(
            "directory",
            CollectorStatus {
                ok: true,
                last_success: Some(1700000000.0),
            },
        );
        let t = |id: &str, up: bool| TenantStatus {
            tenant_id: id.into(),
            name: "Contoso \"Ltd\"".into(),
            domain: "contoso.onmicrosoft.com".into(),
            up,
            token_error: (!up).then_some(ErrorClass::ConsentRequired),
            collectors: collectors.clone(),
        };
        m.publish(Snapshot {
            tenants: vec![t("a", true), t("b", false)],
            cycle_finished: Some(1.0),
            ..Default::default()
        });
        let text = m.render();
        assert!(
            text.contains("tenantwatch_tenant_up{tenant_id=\"a\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("tenantwatch_tenant_up{tenant_id=\"b\"} 0"),
            "{text}"
        );
        assert!(text.contains(r#"tenantwatch_tenant_info{tenant_id="a",name="Contoso \"Ltd\"",domain="contoso.onmicrosoft.com"} 1"#), "{text}");
        assert!(text.contains(
            r#"tenantwatch_tenant_token_error{tenant_id="b",reason="consent_required"} 1"#
        ));
        assert!(text.contains("tenantwatch_build_info{version="));
        m.publish(Snapshot {
            tenants: vec![t("a", true)],
            cycle_finished: Some(2.0),
            ..Default::default()
        });
        let text = m.render();
        assert!(!text.contains("tenant_id=\"b\""), "{text}");
        assert!(!text.contains("tenantwatch_tenant_token_error"), "{text}");
    }
}
