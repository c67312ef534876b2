//! The gauge families the daemon exports about itself, written from what they
//! describe: the published [`Snapshot`] (tenants, discovery, GDAP, collector
//! runs), the refresh-token state and the last rate-limit headers. The live
//! counters and histograms are encoded by `text::registry_families`;
//! collectors' own families are born in their files under
//! `collect/collector/` and encoded by [`crate::exposition::series`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tenantwatch_common::sync::lock;

use crate::exposition::text::{Chunk, GaugeText};
use crate::metrics::{RateLimits, RefreshState};
use crate::model::Snapshot;

/// Puts pieces in family-name order, each family's HELP/TYPE piece first and
/// only once. Stable: a family split into pieces keeps its pieces' order.
pub fn sort_pieces(chunks: &mut Vec<Arc<Chunk>>) {
    chunks.sort_by(|a, b| a.name.cmp(&b.name).then(b.header.cmp(&a.header)));
    chunks.dedup_by(|later, earlier| later.header && earlier.header && later.name == earlier.name);
}

/// One partner's samples of a gauge family: every partner's engine adds its
/// own, each sample labelled with its `partner`.
fn gauge(partner: &str, name: &str, help: &str, labels: &[&str]) -> GaugeText {
    GaugeText::shared(name, help, labels).with_label("partner", partner)
}

/// What GDAP relationships actually grant: access assignments by status,
/// roles held, Global Administrator, and `tenants.gdap_required_roles`.
fn gdap_access_families(s: &Snapshot, out: &mut Vec<Chunk>) {
    let mut assignments = gauge(
        &s.partner,
        "tenantwatch_gdap_relationship_access_assignments",
        "Access assignments of an active GDAP relationship by status; status=\"active\" is always present, 0 when the relationship grants nothing.",
        &["tenant_id", "relationship_id", "status"],
    );
    for g in s.gdap.iter() {
        let Some(access) = &g.access else { continue };
        let mut by_status: BTreeMap<&str, usize> = BTreeMap::from([("active", 0)]);
        for a in access {
            *by_status.entry(a.status.as_str()).or_default() += 1;
        }
        for (status, n) in by_status {
            assignments.add(&[&g.tenant_id, &g.id, status], n as f64);
        }
    }
    out.extend(assignments.split());
    let mut roles = gauge(
        &s.partner,
        "tenantwatch_gdap_relationship_role",
        "Roles a GDAP relationship holds (its accessDetails), by name where known, else role definition id; always 1.",
        &["tenant_id", "relationship_id", "role"],
    );
    for g in s.gdap.iter() {
        for r in &g.roles {
            roles.add(&[&g.tenant_id, &g.id, crate::model::role_label(r)], 1.0);
        }
    }
    out.extend(roles.split());
    let mut global_admin = gauge(
        &s.partner,
        "tenantwatch_gdap_relationship_global_admin",
        "1 when the GDAP relationship holds Global Administrator, which Microsoft never auto-extends.",
        &["tenant_id", "relationship_id"],
    );
    for g in s.gdap.iter() {
        global_admin.add(
            &[&g.tenant_id, &g.id],
            if g.global_admin() { 1.0 } else { 0.0 },
        );
    }
    out.extend(global_admin.split());
    let mut missing = gauge(
        &s.partner,
        "tenantwatch_gdap_required_role_missing",
        "1 when no active GDAP relationship with an active access assignment gives the partner this role of tenants.gdap_required_roles.",
        &["tenant_id", "role"],
    );
    for r in s.gdap_required_roles.iter() {
        missing.add(&[&r.tenant_id, &r.role], if r.missing { 1.0 } else { 0.0 });
    }
    out.extend(missing.split());
}

/// The families written from the published snapshot.
pub fn snapshot_families(s: &Snapshot) -> Vec<Chunk> {
    // Each family is finished before the next starts, so one compressor is
    // alive at a time.
    let mut out = Vec::new();
    let mut up = gauge(
        &s.partner,
        "tenantwatch_tenant_up",
        "1 when a token could be minted for the tenant and its last collection succeeded.",
        &["tenant_id"],
    );
    for t in &s.tenants {
        up.add(&[&t.tenant_id], if t.up { 1.0 } else { 0.0 });
    }
    out.extend(up.split());
    let mut info = gauge(
        &s.partner,
        "tenantwatch_tenant_info",
        "Names of each tenant, for joins; always 1.",
        &["tenant_id", "name", "domain"],
    );
    for t in &s.tenants {
        info.add(&[&t.tenant_id, &t.name, &t.domain], 1.0);
    }
    out.extend(info.split());
    let mut group = gauge(
        &s.partner,
        "tenantwatch_tenant_group",
        "The [[tenants.groups]] group of each tenant (\"none\" when no group matches); always 1, one series per tenant, for joins.",
        &["tenant_id", "group"],
    );
    for (tenant, g) in s.groups.iter() {
        group.add(&[tenant, g], 1.0);
    }
    out.extend(group.split());
    let mut token_error = gauge(
        &s.partner,
        "tenantwatch_tenant_token_error",
        "1 while minting a token for the tenant fails for this reason.",
        &["tenant_id", "reason"],
    );
    for t in &s.tenants {
        if let Some(reason) = t.token_error {
            token_error.add(&[&t.tenant_id, reason.as_str()], 1.0);
        }
    }
    out.extend(token_error.split());
    let mut last_success = gauge(
        &s.partner,
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
    out.extend(last_success.split());
    let mut sources = gauge(
        &s.partner,
        "tenantwatch_tenant_sources",
        "Which discovery sources list the tenant; always 1.",
        &["tenant_id", "source"],
    );
    for (tenant, srcs) in s.sources.iter() {
        for src in srcs {
            sources.add(&[tenant, src.as_str()], 1.0);
        }
    }
    out.extend(sources.split());
    let mut gdap_end = gauge(
        &s.partner,
        "tenantwatch_gdap_relationship_end_timestamp_seconds",
        "When a GDAP relationship ends unless extended.",
        &["tenant_id", "relationship_id", "status"],
    );
    let mut gdap_auto = gauge(
        &s.partner,
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
    out.extend(gdap_end.split());
    out.extend(gdap_auto.split());
    let mut discovery_error = gauge(
        &s.partner,
        "tenantwatch_discovery_error",
        "1 while a discovery source fails, by source and error class.",
        &["source", "reason"],
    );
    for (source, class) in &s.discovery.errors {
        discovery_error.add(&[source.as_str(), class.as_str()], 1.0);
    }
    out.extend(discovery_error.split());
    gdap_access_families(s, &mut out);
    let mut scalars = Vec::new();
    let mut scalar = |name: &str, help: &str, v: Option<f64>| {
        let mut f = gauge(&s.partner, name, help, &[]);
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
        &s.partner,
        "tenantwatch_collector_last_run_timestamp_seconds",
        "Unix time the collector last finished a run over all its tenants.",
        &["collector"],
    );
    let mut run_secs = gauge(
        &s.partner,
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
            .flat_map(GaugeText::split),
    );
    out
}

/// Partner `partner`'s refresh-token gauges, each left out while unknown.
pub fn refresh_families(partner: &str, r: &RefreshState) -> Vec<Chunk> {
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
        (
            "tenantwatch_refresh_token_mfa",
            "1 when the partner's access token says the refresh token's sign-in used MFA (amr contains mfa), 0 when not; Partner Center refuses App+User calls without it.",
            r.mfa.map(bool_f),
        ),
    ]
    .into_iter()
    .flat_map(|(name, help, v)| {
        let mut f = gauge(partner, name, help, &[]);
        if let Some(v) = v {
            f.add(&[], v);
        }
        f.split()
    })
    .collect()
}

const RATELIMIT_NAME: &str = "tenantwatch_api_ratelimit_remaining";
const RATELIMIT_HELP: &str = "Last seen remaining request quota from the API's rate-limit headers.";
const RATELIMIT_LABELS: [&str; 3] = ["api", "tenant_id", "kind"];

/// The encoded text of each rate-limit shard, by shard and the version it was
/// encoded from: values change with almost every request during a cycle, and
/// a scrape re-encodes only the shards touched since the last one.
#[derive(Default)]
pub struct RateLimitText(Mutex<BTreeMap<Shard, (u64, Arc<Chunk>)>>);

/// A rate-limit shard: the API and the first byte of its tenants' ids.
type Shard = (&'static str, u8);

impl RateLimitText {
    /// `tenantwatch_api_ratelimit_remaining` as pieces: HELP/TYPE, then each
    /// shard's samples in order.
    pub fn chunks(&self, partner: &str, limits: &RateLimits) -> Vec<Arc<Chunk>> {
        let mut cache = lock(&self.0);
        let mut out = Vec::new();
        let mut seen = Vec::new();
        limits.for_each_shard(|api, byte, shard| {
            seen.push((api, byte));
            let fresh = cache
                .get(&(api, byte))
                .filter(|(v, _)| *v == shard.version)
                .map(|(_, c)| c.clone());
            let chunk = fresh.unwrap_or_else(|| {
                let mut f =
                    GaugeText::new(RATELIMIT_NAME, RATELIMIT_HELP, &RATELIMIT_LABELS, false)
                        .with_label("partner", partner);
                for ((tenant, kind), v) in &shard.values {
                    f.add(&[api, tenant, kind], *v);
                }
                let c = Arc::new(
                    f.done()
                        .unwrap_or_else(|| Chunk::new(RATELIMIT_NAME.to_string(), "")),
                );
                cache.insert((api, byte), (shard.version, c.clone()));
                c
            });
            out.push(chunk);
        });
        cache.retain(|k, _| seen.contains(k));
        if out.is_empty() {
            return out;
        }
        out.insert(
            0,
            Arc::new(GaugeText::header(RATELIMIT_NAME, RATELIMIT_HELP)),
        );
        out
    }
}
