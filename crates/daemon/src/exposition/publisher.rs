//! The latest published snapshot of each partner and the `/metrics` body
//! built from them.
//!
//! Each publish encodes the snapshot's families once, so scrapes between two
//! publishes copy `Arc`s instead of re-encoding every tenant; a scrape adds
//! only what changes without a publish (the live counters, the refresh-token
//! gauges, rate-limit shards touched since the last scrape). Every partner's
//! engine publishes its own snapshot; a family's pieces from several
//! partners are served under one HELP/TYPE header, each sample carrying its
//! `partner` label.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use tenantwatch_common::sync::{lock, read, write};

use crate::exposition::families::{
    refresh_families, snapshot_families, sort_pieces, RateLimitText,
};
use crate::exposition::text::{registry_families, Body, Chunk};
use crate::metrics::{Metrics, RefreshState};
use crate::model::{PartnerName, Snapshot};

/// A snapshot with its families already encoded.
#[derive(Clone, Default)]
struct Published {
    snapshot: Arc<Snapshot>,
    chunks: Arc<Vec<Arc<Chunk>>>,
}

/// What scrapes and the status page read: the live metrics and each
/// partner's latest published snapshot.
pub struct Publisher {
    metrics: Arc<Metrics>,
    /// By partner. A `std` lock, not a Tokio one: held only to clone or swap `Arc`s.
    published: RwLock<BTreeMap<PartnerName, Published>>,
    /// Each partner's encoded rate-limit shards.
    ratelimits: Mutex<BTreeMap<Arc<str>, Arc<RateLimitText>>>,
}

impl Publisher {
    /// Nothing published yet: every partner's snapshot empty and not ready.
    pub fn new(metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            metrics,
            published: RwLock::new(BTreeMap::new()),
            ratelimits: Mutex::new(BTreeMap::new()),
        })
    }

    /// The live metrics this publisher exposes.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Replaces the snapshot of `snapshot.partner` that scrapes read;
    /// `collected` are that partner's collector families, already encoded.
    /// An older snapshot (lower generation) never replaces a newer one.
    pub fn publish(&self, snapshot: Snapshot, collected: Vec<Arc<Chunk>>) {
        let mut chunks: Vec<Arc<Chunk>> = snapshot_families(&snapshot)
            .into_iter()
            .map(Arc::new)
            .chain(collected)
            .collect();
        sort_pieces(&mut chunks);
        let partner = snapshot.partner.clone();
        let published = Published {
            snapshot: Arc::new(snapshot),
            chunks: Arc::new(chunks),
        };
        let mut g = write(&self.published);
        let slot = g.entry(partner).or_default();
        if published.snapshot.generation >= slot.snapshot.generation {
            *slot = published;
        }
    }

    /// Partner `partner`'s latest snapshot (empty before its first publish).
    pub fn snapshot_of(&self, partner: &str) -> Arc<Snapshot> {
        read(&self.published)
            .get(&PartnerName::from(partner))
            .map(|p| p.snapshot.clone())
            .unwrap_or_else(|| Self::empty(partner))
    }

    fn empty(partner: &str) -> Arc<Snapshot> {
        Arc::new(Snapshot {
            partner: PartnerName::from(partner),
            ..Default::default()
        })
    }

    /// Every partner's latest snapshot: the partners the metrics know, in
    /// the order they were set up (config order), then any other that
    /// published.
    pub fn snapshots(&self) -> Vec<Arc<Snapshot>> {
        let published = read(&self.published);
        let mut out: Vec<Arc<Snapshot>> = self
            .metrics
            .partners()
            .iter()
            .map(|p| match published.get(&PartnerName(p.name.clone())) {
                Some(s) => s.snapshot.clone(),
                None => Self::empty(&p.name),
            })
            .collect();
        for (name, p) in published.iter() {
            if !out.iter().any(|s| s.partner == *name) {
                out.push(p.snapshot.clone());
            }
        }
        out
    }

    /// True once the first collection is done: with one partner, once its
    /// snapshot is ready (never without a usable refresh token); with
    /// several, once each has settled (ready, or its first discovery done
    /// without a usable token) and at least one is ready, so a partner not
    /// yet consented never holds the others' daemon out of service.
    pub fn ready(&self) -> bool {
        match self.snapshots().as_slice() {
            [] => false,
            [one] => one.ready,
            all => {
                all.iter().any(|s| s.ready)
                    && all
                        .iter()
                        .all(|s| s.ready || (s.discovery.done && !s.usable_token))
            }
        }
    }

    /// What is known about each partner's refresh token now.
    pub fn refresh(&self) -> Vec<(Arc<str>, RefreshState)> {
        self.metrics
            .partners()
            .iter()
            .map(|p| (p.name.clone(), p.refresh.get()))
            .collect()
    }

    /// Every partner's latest snapshot with what is known about its refresh token.
    pub fn partners(&self) -> Vec<(Arc<Snapshot>, RefreshState)> {
        let refresh = self.refresh();
        self.snapshots()
            .into_iter()
            .map(|s| {
                let r = refresh
                    .iter()
                    .find(|(name, _)| **name == *s.partner)
                    .map(|(_, r)| r.clone())
                    .unwrap_or_default();
                (s, r)
            })
            .collect()
    }

    /// The `/metrics` body in pieces, families in name order.
    pub fn body(&self) -> Body {
        let mut chunks = registry_families(self.metrics.registry());
        for p in read(&self.published).values() {
            chunks.extend(p.chunks.iter().cloned());
        }
        for p in self.metrics.partners() {
            chunks.extend(
                refresh_families(&p.name, &p.refresh.get())
                    .into_iter()
                    .map(Arc::new),
            );
            let text = lock(&self.ratelimits)
                .entry(p.name.clone())
                .or_default()
                .clone();
            chunks.extend(text.chunks(&p.name, &p.ratelimits));
        }
        sort_pieces(&mut chunks);
        Body(chunks)
    }

    /// The `/metrics` text, uncompressed.
    pub fn render(&self) -> String {
        String::from_utf8(self.body().plain()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::text::GaugeText;
    use prometheus::TextEncoder;

    #[test]
    fn a_family_from_two_sources_has_one_header_first() {
        let m = Publisher::new(Metrics::new().unwrap());
        let piece = |t: &str| {
            let mut g = GaugeText::new("x_fam", "X.", &["tenant_id"], false);
            g.add(&[t], 1.0);
            Arc::new(g.done().unwrap())
        };
        m.publish(
            Snapshot::default(),
            vec![
                piece("a"),
                Arc::new(GaugeText::header("x_fam", "X.")),
                piece("b"),
                Arc::new(GaugeText::header("x_fam", "X.")),
            ],
        );
        let text = m.render();
        let at = text.find("# HELP x_fam X.\n# TYPE x_fam gauge\nx_fam{tenant_id=\"a\"} 1\nx_fam{tenant_id=\"b\"} 1\n");
        assert!(at.is_some(), "{text}");
        assert_eq!(text.matches("# TYPE x_fam").count(), 1);
    }

    /// Each family once (one TYPE line), families in name order.
    fn assert_families_in_order(text: &str) {
        let names: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(names, sorted);
    }

    /// Two partners watching one customer: each family's header once, the
    /// customer's series once per partner, each partner's refresh gauges and
    /// readiness its own.
    #[test]
    fn two_partners_share_each_family_and_keep_their_own_series() {
        let m = Publisher::new(Metrics::new().unwrap());
        let (a, b) = (m.metrics().partner("a"), m.metrics().partner("b"));
        a.refresh.update(|r| r.valid = Some(true));
        b.refresh.update(|r| r.valid = Some(false));
        let tenant = |up| TenantStatus {
            tenant_id: "t".into(),
            name: "Contoso".into(),
            domain: "contoso.onmicrosoft.com".into(),
            up,
            token_error: None,
            collectors: Default::default(),
            signals: Default::default(),
        };
        let snap = |partner: &str, up, ready| Snapshot {
            partner: PartnerName::from(partner),
            tenants: vec![tenant(up)],
            generation: 1,
            ready,
            ..Default::default()
        };
        m.publish(snap("b", false, true), Vec::new());
        assert!(!m.ready(), "a has published nothing yet");
        m.publish(snap("a", true, true), Vec::new());
        assert!(m.ready());
        let text = m.render();
        for want in [
            "tenantwatch_tenant_up{tenant_id=\"t\",partner=\"a\"} 1\n",
            "tenantwatch_tenant_up{tenant_id=\"t\",partner=\"b\"} 0\n",
            "tenantwatch_refresh_token_valid{partner=\"a\"} 1\n",
            "tenantwatch_refresh_token_valid{partner=\"b\"} 0\n",
        ] {
            assert!(text.contains(want), "{want} missing from {text}");
        }
        for family in ["tenantwatch_tenant_up", "tenantwatch_refresh_token_valid"] {
            assert_eq!(
                text.matches(&format!("# TYPE {family} ")).count(),
                1,
                "{text}"
            );
        }
        assert_families_in_order(&text);
        let partners: Vec<String> = m
            .snapshots()
            .iter()
            .map(|s| s.partner.to_string())
            .collect();
        assert_eq!(partners, ["a", "b"], "in the order they were set up");
        assert!(!m.snapshot_of("b").tenants[0].up);
        // A partner without a usable refresh token (not consented yet) holds
        // no one back once its discovery is done; one still discovering does.
        let unusable = |done| Snapshot {
            partner: PartnerName::from("b"),
            generation: 2,
            discovery: crate::model::DiscoveryStatus {
                done,
                ..Default::default()
            },
            usable_token: false,
            ..Default::default()
        };
        m.publish(unusable(false), Vec::new());
        assert!(!m.ready());
        m.publish(unusable(true), Vec::new());
        assert!(m.ready());
    }

    #[test]
    fn an_older_snapshot_never_replaces_a_newer_one() {
        let m = Publisher::new(Metrics::new().unwrap());
        let snap = |generation, ready| Snapshot {
            generation,
            ready,
            ..Default::default()
        };
        m.publish(snap(2, true), Vec::new());
        m.publish(snap(1, false), Vec::new());
        assert!(
            m.snapshot_of("default").ready,
            "generation 1 finished encoding last but is older"
        );
        m.publish(snap(3, false), Vec::new());
        assert!(!m.snapshot_of("default").ready);
    }
    use crate::model::{CollectorStatus, ErrorClass, TenantStatus};

    #[test]
    fn renders_snapshot_and_drops_vanished_tenants() {
        let m = Publisher::new(Metrics::new().unwrap());
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
            signals: Default::default(),
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
            text.contains("tenantwatch_tenant_up{tenant_id=\"a\",partner=\"default\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("tenantwatch_tenant_up{tenant_id=\"b\",partner=\"default\"} 0"),
            "{text}"
        );
        assert!(text.contains(r#"tenantwatch_tenant_info{tenant_id="a",name="Contoso \"Ltd\"",domain="contoso.onmicrosoft.com",partner="default"} 1"#), "{text}");
        assert!(text.contains(
            r#"tenantwatch_tenant_token_error{tenant_id="b",reason="consent_required",partner="default"} 1"#
        ));
        assert!(text.contains("tenantwatch_build_info{revision=\""));
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
        let mut mine = GaugeText::new("m", help, &["tenant_id", "name"], true);
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
        let mut scalar = GaugeText::new("s", "", &[], true);
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
        let got = Body(vec![
            Arc::new(mine.done().unwrap()),
            Arc::new(scalar.done().unwrap()),
        ])
        .plain();
        let got = String::from_utf8(got).unwrap();
        assert_eq!(got, expected);
    }

    #[test]
    fn rate_limits_follow_every_change_in_sorted_order() {
        let m = Publisher::new(Metrics::new().unwrap());
        m.metrics()
            .partner("default")
            .ratelimits
            .set("arm", "f-tenant", "tenant-reads", 11999.0);
        m.metrics()
            .partner("default")
            .ratelimits
            .set("arm", "0-tenant", "tenant-reads", 5.0);
        m.metrics().partner("default").ratelimits.set(
            "resource_graph",
            "a-tenant",
            "user-quota",
            15.0,
        );
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
                r#"tenantwatch_api_ratelimit_remaining{api="arm",tenant_id="0-tenant",kind="tenant-reads",partner="default"} 5"#,
                r#"tenantwatch_api_ratelimit_remaining{api="arm",tenant_id="f-tenant",kind="tenant-reads",partner="default"} 11999"#,
                r#"tenantwatch_api_ratelimit_remaining{api="resource_graph",tenant_id="a-tenant",kind="user-quota",partner="default"} 15"#,
            ]
        );
        // A scrape after a change sees it, though the other shards come from the cache.
        m.metrics().partner("default").ratelimits.set(
            "resource_graph",
            "a-tenant",
            "user-quota",
            14.0,
        );
        let text = m.render();
        assert!(
            text.contains(r#"{api="resource_graph",tenant_id="a-tenant",kind="user-quota",partner="default"} 14"#),
            "{text}"
        );
        assert!(
            text.contains(r#"tenant_id="f-tenant",kind="tenant-reads",partner="default"} 11999"#),
            "{text}"
        );
        let keep: std::collections::HashSet<String> = ["a-tenant".to_string()].into();
        m.metrics()
            .partner("default")
            .ratelimits
            .retain_tenants(&keep);
        let text = m.render();
        assert!(
            !text.contains("f-tenant") && !text.contains("0-tenant"),
            "{text}"
        );
        let names = |m: &Publisher| m.metrics().partner("default").ratelimits.interned();
        // Names leave the interner with the last value using them.
        assert_eq!(names(&m), ["a-tenant", "user-quota"]);
        m.metrics()
            .partner("default")
            .ratelimits
            .retain_tenants(&Default::default());
        assert!(!m.render().contains("tenantwatch_api_ratelimit_remaining"));
        assert!(names(&m).is_empty());
    }

    #[test]
    fn gzip_body_is_the_plain_body_and_families_stay_sorted() {
        use std::io::Read;
        let m = Publisher::new(Metrics::new().unwrap());
        m.metrics()
            .token_requests
            .with_label_values(&["default", "graph", "ok"])
            .inc();
        m.metrics()
            .partner("default")
            .ratelimits
            .set("arm", "t", "tenant-reads", 1.0);
        m.metrics()
            .partner("default")
            .refresh
            .update(|r| r.valid = Some(true));
        m.publish(
            Snapshot {
                tenants: vec![TenantStatus {
                    tenant_id: "t".into(),
                    name: "n".into(),
                    domain: "d".into(),
                    up: true,
                    token_error: None,
                    collectors: Default::default(),
                    signals: Default::default(),
                }],
                ready: true,
                ..Default::default()
            },
            Vec::new(),
        );
        let e = m.body();
        let plain = Body(e.0.clone()).plain();
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&e.gzip()[..])
            .read_to_end(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, plain);
        let text = String::from_utf8(plain).unwrap();
        assert_families_in_order(&text);
        for want in [
            "tenantwatch_token_requests_total{partner=\"default\",result=\"ok\",scope=\"graph\"} 1",
            "tenantwatch_tenant_up{tenant_id=\"t\",partner=\"default\"} 1",
            "tenantwatch_refresh_token_valid{partner=\"default\"} 1",
            "tenantwatch_build_info{revision=\"",
        ] {
            assert!(text.contains(want), "{want} missing from {text}");
        }
    }
}
