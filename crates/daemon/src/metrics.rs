//! Prometheus metrics: live counters and histograms owned by [`Metrics`], plus
//! gauge families rebuilt from the latest [`Snapshot`] at every scrape, so a tenant
//! that vanished leaves no stale series.

use std::sync::{Arc, RwLock};

use prometheus::{
    HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::exposition::{Chunk, Exposition, GaugeText as GaugeFamily};
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
    /// `tenantwatch_api_requests_total{api,status_class}`.
    pub api_requests: IntCounterVec,
    /// `tenantwatch_api_request_duration_seconds{api}`.
    pub api_duration: HistogramVec,
    /// `tenantwatch_series_dropped_total{collector}`: samples over the per-collector limit.
    pub series_dropped: IntCounterVec,
    /// Last seen rate-limit headers, `tenantwatch_api_ratelimit_remaining{api,tenant_id,kind}`.
    pub ratelimits: RateLimits,
    /// The latest snapshot and its encoded families. A `std` lock, not a Tokio
    /// one: it is held only to clone an `Arc`.
    snapshot: RwLock<Published>,
}

/// A snapshot with its families already encoded, so scrapes between two
/// publishes do not re-encode every tenant.
#[derive(Clone, Default)]
struct Published {
    snapshot: Arc<Snapshot>,
    chunks: Arc<Vec<Arc<Chunk>>>,
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

/// Last seen `x-ms-ratelimit-remaining-*` / `x-ms-user-quota-remaining` values.
/// Kept until the tenant leaves scope, not reset by a scrape.
///
/// Values change with almost every request during a cycle, so they are kept in
/// shards by API and the tenant id's first byte (contiguous in the exported
/// order), each with its encoded text, and a scrape re-encodes only the shards
/// touched since the last one.
#[derive(Default)]
pub struct RateLimits(std::sync::Mutex<RateState>);

#[derive(Default)]
struct RateState {
    shards: std::collections::BTreeMap<(&'static str, u8), RateShard>,
    /// Tenant ids and kinds, each stored once: at 5,000 tenants, three values
    /// per tenant with two strings each took two megabytes.
    names: std::collections::HashSet<Arc<str>>,
}

#[derive(Default)]
struct RateShard {
    values: std::collections::BTreeMap<(Arc<str>, Arc<str>), f64>,
    encoded: Option<Arc<Chunk>>,
}

fn intern(names: &mut std::collections::HashSet<Arc<str>>, s: &str) -> Arc<str> {
    if let Some(a) = names.get(s) {
        return a.clone();
    }
    let a: Arc<str> = Arc::from(s);
    names.insert(a.clone());
    a
}

const RATELIMIT_NAME: &str = "tenantwatch_api_ratelimit_remaining";
const RATELIMIT_HELP: &str = "Last seen remaining request quota from the API's rate-limit headers.";
const RATELIMIT_LABELS: [&str; 3] = ["api", "tenant_id", "kind"];

impl RateLimits {
    /// Records one header value.
    pub fn set(&self, api: &'static str, tenant: &str, kind: &str, v: f64) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let m = &mut *m;
        let key = (intern(&mut m.names, tenant), intern(&mut m.names, kind));
        let shard = m
            .shards
            .entry((api, tenant.as_bytes().first().copied().unwrap_or(0)))
            .or_default();
        let old = shard.values.insert(key, v);
        if old.map(f64::to_bits) != Some(v.to_bits()) {
            shard.encoded = None;
        }
    }

    /// Drops tenants no longer in scope.
    pub fn retain_tenants(&self, keep: &std::collections::HashSet<String>) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let m = &mut *m;
        for shard in m.shards.values_mut() {
            let before = shard.values.len();
            shard.values.retain(|(t, _), _| keep.contains(&**t));
            if shard.values.len() != before {
                shard.encoded = None;
            }
        }
        m.shards.retain(|_, s| !s.values.is_empty());
        // Names only the interner still holds.
        m.names.retain(|n| Arc::strong_count(n) > 1);
    }

    /// The family as pieces: HELP/TYPE, then each shard's samples in order.
    fn chunks(&self) -> Vec<Arc<Chunk>> {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if m.shards.is_empty() {
            return Vec::new();
        }
        let mut out = vec![Arc::new(GaugeFamily::header(
            RATELIMIT_NAME,
            RATELIMIT_HELP,
        ))];
        for ((api, _), shard) in m.shards.iter_mut() {
            let encoded = shard.encoded.get_or_insert_with(|| {
                let mut f =
                    GaugeFamily::new(RATELIMIT_NAME, RATELIMIT_HELP, &RATELIMIT_LABELS, false);
                for ((tenant, kind), v) in &shard.values {
                    f.add(&[api, tenant, kind], *v);
                }
                Arc::new(
                    f.done()
                        .unwrap_or_else(|| Chunk::new(RATELIMIT_NAME.to_string(), "")),
                )
            });
            out.push(encoded.clone());
        }
        out
    }
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
            &["result"],
        )?;
        for r in ["success", "failure"] {
            rotations.with_label_values(&[r]);
        }
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
        let series_dropped = IntCounterVec::new(
            Opts::new(
                "tenantwatch_series_dropped_total",
                "Samples dropped because a collector exceeded its series limit for a tenant.",
            ),
            &["collector"],
        )?;
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
        registry.register(Box::new(api_requests.clone()))?;
        registry.register(Box::new(api_duration.clone()))?;
        registry.register(Box::new(series_dropped.clone()))?;
        Ok(Arc::new(Self {
            registry,
            token_requests,
            collector_duration,
            skipped_runs,
            collector_runs,
            rotations,
            refresh: RefreshGauges::default(),
            api_requests,
            api_duration,
            series_dropped,
            ratelimits: RateLimits::default(),
            snapshot: RwLock::new(Published::default()),
        }))
    }

    /// Replaces the snapshot scrapes read, encoding its families once here
    /// rather than at every scrape; `collected` are the collectors' families,
    /// already encoded.
    pub fn publish(&self, snapshot: Snapshot, collected: Vec<Arc<Chunk>>) {
        let mut chunks: Vec<Arc<Chunk>> = snapshot_families(&snapshot)
            .into_iter()
            .map(Arc::new)
            .chain(collected)
            .collect();
        sort_pieces(&mut chunks);
        let published = Published {
            snapshot: Arc::new(snapshot),
            chunks: Arc::new(chunks),
        };
        let mut g = match self.snapshot.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        // The engine publishes one at a time; the check keeps any other
        // caller from replacing a newer snapshot with an older one.
        if published.snapshot.generation >= g.snapshot.generation {
            *g = published;
        }
    }

    fn published(&self) -> Published {
        match self.snapshot.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The latest snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.published().snapshot
    }

    /// Records whether the store could be read.
    pub fn set_store_up(&self, up: bool) {
        self.refresh.update(|r| r.store_up = Some(up));
    }

    /// The `/metrics` body in pieces, families in name order: the live
    /// counters and histograms encoded now, the snapshot's families as
    /// encoded when it was published.
    pub fn exposition(&self) -> Exposition {
        let encoder = TextEncoder::new();
        let mut chunks: Vec<Arc<Chunk>> = Vec::new();
        for family in self.registry.gather() {
            let mut text = String::new();
            match encoder.encode_utf8(std::slice::from_ref(&family), &mut text) {
                Ok(()) => chunks.push(Arc::new(Chunk::new(family.name().to_string(), &text))),
                Err(e) => {
                    tracing::error!(error = %e, family = family.name(), "cannot encode metrics")
                }
            }
        }
        chunks.extend(self.published().chunks.iter().cloned());
        chunks.extend(
            refresh_families(&self.refresh.get())
                .into_iter()
                .map(Arc::new),
        );
        chunks.extend(self.ratelimits.chunks());
        sort_pieces(&mut chunks);
        Exposition(chunks)
    }

    /// The exposition text for `/metrics`.
    pub fn render(&self) -> String {
        String::from_utf8(self.exposition().plain()).unwrap_or_default()
    }
}

/// Puts pieces in family-name order, each family's HELP/TYPE piece first and
/// only once. Stable: a family split into pieces keeps its pieces' order.
fn sort_pieces(chunks: &mut Vec<Arc<Chunk>>) {
    chunks.sort_by(|a, b| a.name.cmp(&b.name).then(b.header.cmp(&a.header)));
    chunks.dedup_by(|later, earlier| later.header && earlier.header && later.name == earlier.name);
}

/// A gauge family with HELP and TYPE lines.
fn gauge(name: &str, help: &str, labels: &[&str]) -> GaugeFamily {
    GaugeFamily::new(name, help, labels, true)
}

fn snapshot_families(s: &Snapshot) -> Vec<Chunk> {
    // Each family is finished before the next starts, so one compressor is
    // alive at a time.
    let mut out = Vec::new();
    let mut up = gauge(
        "tenantwatch_tenant_up",
        "1 when a token could be minted for the tenant and its last collection succeeded.",
        &["tenant_id"],
    );
    for t in &s.tenants {
        up.add(&[&t.tenant_id], if t.up { 1.0 } else { 0.0 });
    }
    out.extend(up.done());
    let mut info = gauge(
        "tenantwatch_tenant_info",
        "Names of each tenant, for joins; always 1.",
        &["tenant_id", "name", "domain"],
    );
    for t in &s.tenants {
        info.add(&[&t.tenant_id, &t.name, &t.domain], 1.0);
    }
    out.extend(info.done());
    let mut token_error = gauge(
        "tenantwatch_tenant_token_error",
        "1 while minting a token for the tenant fails for this reason.",
        &["tenant_id", "reason"],
    );
    for t in &s.tenants {
        if let Some(reason) = t.token_error {
            token_error.add(&[&t.tenant_id, reason.as_str()], 1.0);
        }
    }
    out.extend(token_error.done());
    let mut last_success = gauge(
        "tenantwatch_collector_last_success_timestamp_seconds",
        "Unix time of the collector's last successful run for the tenant.",
        &["tenant_id", "collector"],
    );
    for t in &s.tenants {
        for (name, c) in &t.collectors {
            if let Some(ts) = c.last_success {
                last_success.add(&[&t.tenant_id, name], ts);
            }
        }
    }
    out.extend(last_success.done());
    let mut sources = gauge(
        "tenantwatch_tenant_sources",
        "Which discovery sources list the tenant; always 1.",
        &["tenant_id", "source"],
    );
    for (tenant, srcs) in s.sources.iter() {
        for src in srcs {
            sources.add(&[tenant, src.as_str()], 1.0);
        }
    }
    out.extend(sources.done());
    let mut gdap_end = gauge(
        "tenantwatch_gdap_relationship_end_timestamp_seconds",
        "When a GDAP relationship ends unless extended.",
        &["tenant_id", "relationship_id", "status"],
    );
    let mut gdap_auto = gauge(
        "tenantwatch_gdap_relationship_auto_extend",
        "1 when the GDAP relationship auto-extends (autoExtendDuration is not zero).",
        &["tenant_id", "relationship_id", "status"],
    );
    for g in s.gdap.iter() {
        if let Some(end) = g.end {
            gdap_end.add(&[&g.tenant_id, &g.id, &g.status], end);
        }
        gdap_auto.add(
            &[&g.tenant_id, &g.id, &g.status],
            if g.auto_extend { 1.0 } else { 0.0 },
        );
    }
    out.extend(gdap_end.done());
    out.extend(gdap_auto.done());
    let mut scalars = Vec::new();
    let mut scalar = |name: &str, help: &str, v: Option<f64>| {
        let mut f = gauge(name, help, &[]);
        if let Some(v) = v {
            f.add(&[], v);
        }
        scalars.push(f);
    };
    let done = s.discovery.done;
    scalar(
        "tenantwatch_tenants",
        "Tenants in scope after discovery.",
        done.then_some(s.discovered as f64),
    );
    scalar(
        "tenantwatch_discovery_up",
        "1 when every discovery source worked at the last run.",
        done.then_some(if s.discovery.ok { 1.0 } else { 0.0 }),
    );
    scalar(
        "tenantwatch_discovery_last_success_timestamp_seconds",
        "Unix time of the last fully successful discovery.",
        s.discovery.last_success,
    );
    scalar(
        "tenantwatch_partner_center_customers_without_gdap",
        "Partner Center customers with no active GDAP relationship (no delegated access).",
        s.customers_without_gdap.map(|v| v as f64),
    );
    scalar(
        "tenantwatch_gdap_relationships_without_customer",
        "Tenants with an active GDAP relationship that Partner Center does not list as customers.",
        s.gdap_without_customer.map(|v| v as f64),
    );
    let mut run_ts = gauge(
        "tenantwatch_collector_last_run_timestamp_seconds",
        "Unix time the collector last finished a run over all its tenants.",
        &["collector"],
    );
    let mut run_secs = gauge(
        "tenantwatch_collector_last_run_duration_seconds",
        "Wall time of the collector's last run over all its tenants.",
        &["collector"],
    );
    for (name, r) in &s.runs {
        run_ts.add(&[name], r.finished);
        run_secs.add(&[name], r.seconds);
    }
    out.extend(
        [run_ts, run_secs]
            .into_iter()
            .chain(scalars)
            .filter_map(GaugeFamily::done),
    );
    out
}

fn refresh_families(r: &RefreshState) -> Vec<Chunk> {
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
        let mut f = gauge(name, help, &[]);
        f.add(&[], v?);
        f.done()
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_family_from_two_sources_has_one_header_first() {
        let m = Metrics::new().unwrap();
        let piece = |t: &str| {
            let mut g = GaugeFamily::new("x_fam", "X.", &["tenant_id"], false);
            g.add(&[t], 1.0);
            Arc::new(g.done().unwrap())
        };
        m.publish(
            Snapshot::default(),
            vec![
                piece("a"),
                Arc::new(GaugeFamily::header("x_fam", "X.")),
                piece("b"),
                Arc::new(GaugeFamily::header("x_fam", "X.")),
            ],
        );
        let text = m.render();
        let at = text.find("# HELP x_fam X.\n# TYPE x_fam gauge\nx_fam{tenant_id=\"a\"} 1\nx_fam{tenant_id=\"b\"} 1\n");
        assert!(at.is_some(), "{text}");
        assert_eq!(text.matches("# TYPE x_fam").count(), 1);
    }

    #[test]
    fn an_older_snapshot_never_replaces_a_newer_one() {
        let m = Metrics::new().unwrap();
        let snap = |generation, ready| Snapshot {
            generation,
            ready,
            ..Default::default()
        };
        m.publish(snap(2, true), Vec::new());
        m.publish(snap(1, false), Vec::new());
        assert!(
            m.snapshot().ready,
            "generation 1 finished encoding last but is older"
        );
        m.publish(snap(3, false), Vec::new());
        assert!(!m.snapshot().ready);
    }
    use crate::entra::ErrorClass;
    use crate::snapshot::{CollectorStatus, TenantStatus};

    #[test]
    fn renders_snapshot_and_drops_vanished_tenants() {
        let m = Metrics::new().unwrap();
        let collectors = vec![(
            "directory",
            CollectorStatus {
                ok: true,
                last_success: Some(1700000000.0),
            },
        )];
        let t = |id: &str, up: bool| TenantStatus {
            tenant_id: id.into(),
            name: "Contoso \"Ltd\"".into(),
            domain: "contoso.onmicrosoft.com".into(),
            up,
            token_error: (!up).then_some(ErrorClass::ConsentRequired),
            collectors: collectors.clone(),
        };
        m.publish(
            Snapshot {
                tenants: vec![t("a", true), t("b", false)],
                ready: true,
                ..Default::default()
            },
            Vec::new(),
        );
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
        m.publish(
            Snapshot {
                tenants: vec![t("a", true)],
                ready: true,
                ..Default::default()
            },
            Vec::new(),
        );
        let text = m.render();
        assert!(!text.contains("tenant_id=\"b\""), "{text}");
        assert!(!text.contains("tenantwatch_tenant_token_error"), "{text}");
    }

    /// The hand-written gauge text must be what the `prometheus` crate's
    /// TextEncoder printed for the same family before (names, escaping, values).
    #[test]
    fn gauge_text_matches_the_prometheus_encoder() {
        use prometheus::proto::{Gauge, LabelPair, Metric, MetricFamily, MetricType};
        let rows: &[(&[&str], f64)] = &[
            (&["a", "Contoso \"Ltd\""], 1.0),
            (&["b\\c", "line\nbreak"], 0.5),
            (&["c", "ünïcode"], -3.25e-7),
            (&["d", ""], 1.0e21),
            (&["e", "x"], f64::INFINITY),
            (&["f", "y"], f64::NEG_INFINITY),
            (&["g", "z"], f64::NAN),
            (&["h", "z"], 1795921920.123),
        ];
        let help = "Help with a \\ backslash,\na newline and \"quotes\".";
        let mut mine = GaugeFamily::new("m", help, &["tenant_id", "name"], true);
        let mut theirs = MetricFamily::default();
        theirs.set_name("m".into());
        theirs.set_help(help.into());
        theirs.set_field_type(MetricType::GAUGE);
        for (labels, v) in rows {
            mine.add(labels, *v);
            let mut m = Metric::default();
            m.set_label(
                ["tenant_id", "name"]
                    .iter()
                    .zip(labels.iter())
                    .map(|(n, v)| {
                        let mut l = LabelPair::default();
                        l.set_name(n.to_string());
                        l.set_value(v.to_string());
                        l
                    })
                    .collect(),
            );
            let mut g = Gauge::default();
            g.set_value(*v);
            m.set_gauge(g);
            theirs.mut_metric().push(m);
        }
        let mut scalar = GaugeFamily::new("s", "", &[], true);
        scalar.add(&[], 42.0);
        let mut s2 = MetricFamily::default();
        s2.set_name("s".into());
        s2.set_field_type(MetricType::GAUGE);
        let mut m = Metric::default();
        let mut g = Gauge::default();
        g.set_value(42.0);
        m.set_gauge(g);
        s2.mut_metric().push(m);
        let expected = TextEncoder::new().encode_to_string(&[theirs, s2]).unwrap();
        let got = Exposition(vec![
            Arc::new(mine.done().unwrap()),
            Arc::new(scalar.done().unwrap()),
        ])
        .plain();
        let got = String::from_utf8(got).unwrap();
        assert_eq!(got, expected);
    }

    #[test]
    fn rate_limits_follow_every_change_in_sorted_order() {
        let m = Metrics::new().unwrap();
        m.ratelimits.set("arm", "f-tenant", "tenant-reads", 11999.0);
        m.ratelimits.set("arm", "0-tenant", "tenant-reads", 5.0);
        m.ratelimits
            .set("resource_graph", "a-tenant", "user-quota", 15.0);
        let first = m.render();
        let lines: Vec<&str> = first
            .lines()
            .filter(|l| l.contains("tenantwatch_api_ratelimit_remaining"))
            .collect();
        assert_eq!(
            lines,
            [
                "# HELP tenantwatch_api_ratelimit_remaining Last seen remaining request quota from the API's rate-limit headers.",
                "# TYPE tenantwatch_api_ratelimit_remaining gauge",
                r#"tenantwatch_api_ratelimit_remaining{api="arm",tenant_id="0-tenant",kind="tenant-reads"} 5"#,
                r#"tenantwatch_api_ratelimit_remaining{api="arm",tenant_id="f-tenant",kind="tenant-reads"} 11999"#,
                r#"tenantwatch_api_ratelimit_remaining{api="resource_graph",tenant_id="a-tenant",kind="user-quota"} 15"#,
            ]
        );
        // A scrape after a change sees it, though the other shards come from the cache.
        m.ratelimits
            .set("resource_graph", "a-tenant", "user-quota", 14.0);
        let text = m.render();
        assert!(
            text.contains(r#"{api="resource_graph",tenant_id="a-tenant",kind="user-quota"} 14"#),
            "{text}"
        );
        assert!(
            text.contains(r#"tenant_id="f-tenant",kind="tenant-reads"} 11999"#),
            "{text}"
        );
        let keep: std::collections::HashSet<String> = ["a-tenant".to_string()].into();
        m.ratelimits.retain_tenants(&keep);
        let text = m.render();
        assert!(
            !text.contains("f-tenant") && !text.contains("0-tenant"),
            "{text}"
        );
        let names = |m: &Metrics| {
            let st = m.ratelimits.0.lock().unwrap();
            let mut n: Vec<String> = st.names.iter().map(|n| n.to_string()).collect();
            n.sort();
            n
        };
        // Names leave the interner with the last value using them.
        assert_eq!(names(&m), ["a-tenant", "user-quota"]);
        m.ratelimits.retain_tenants(&Default::default());
        assert!(!m.render().contains("tenantwatch_api_ratelimit_remaining"));
        assert!(names(&m).is_empty());
    }

    #[test]
    fn gzip_body_is_the_plain_body_and_families_stay_sorted() {
        use std::io::Read;
        let m = Metrics::new().unwrap();
        m.token_requests.with_label_values(&["graph", "ok"]).inc();
        m.ratelimits.set("arm", "t", "tenant-reads", 1.0);
        m.refresh.update(|r| r.valid = Some(true));
        m.publish(
            Snapshot {
                tenants: vec![TenantStatus {
                    tenant_id: "t".into(),
                    name: "n".into(),
                    domain: "d".into(),
                    up: true,
                    token_error: None,
                    collectors: Default::default(),
                }],
                ready: true,
                ..Default::default()
            },
            Vec::new(),
        );
        let e = m.exposition();
        let plain = e.plain();
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&e.gzip()[..])
            .read_to_end(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, plain);
        let text = String::from_utf8(plain).unwrap();
        let names: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        for want in [
            "tenantwatch_token_requests_total{result=\"ok\",scope=\"graph\"} 1",
            "tenantwatch_tenant_up{tenant_id=\"t\"} 1",
            "tenantwatch_refresh_token_valid 1",
            "tenantwatch_build_info{version=",
        ] {
            assert!(text.contains(want), "{want} missing from {text}");
        }
    }
}
