//! `m365_subscriptions`: the commerce subscriptions behind a tenant's
//! Microsoft 365 licences, with when each next changes state — renews,
//! lapses, is suspended or deleted — and whether it is a trial.
//!
//! A collector of its own rather than part of `licenses`: it answers "what
//! ends, and when" rather than "how many seats are used", so it can run less
//! often and fail without marking licence counts stale.
//!
//! <https://learn.microsoft.com/graph/api/directory-list-subscriptions>,
//! <https://learn.microsoft.com/graph/api/resources/companysubscription>

use std::sync::Arc;

use futures::future::BoxFuture;
use serde::Deserialize;

use super::{parse_time, CollectError, Collector, Findings, TenantContext};
use crate::model::{Api, Family, Signal};

/// Reads `GET /v1.0/directory/subscriptions`.
pub struct M365Subscriptions {
    next_lifecycle: Arc<Family>,
    licenses: Arc<Family>,
}

/// Labels of both families.
const LABELS: &[&str] = &["tenant_id", "subscription_id", "sku", "status", "trial"];

impl Default for M365Subscriptions {
    fn default() -> Self {
        Self {
            next_lifecycle: Family::new(
                "tenantwatch_m365_subscription_next_lifecycle_timestamp_seconds",
                "When the Microsoft 365 subscription moves to its next status if not renewed (nextLifecycleDateTime).",
                LABELS,
            ),
            licenses: Family::new(
                "tenantwatch_m365_subscription_licenses",
                "Seats of the Microsoft 365 subscription (totalLicenses).",
                LABELS,
            ),
        }
    }
}

/// `companySubscription` (the fields tenantwatch uses).
#[derive(Deserialize)]
struct CompanySubscription {
    #[serde(default)]
    id: String,
    #[serde(rename = "commerceSubscriptionId", default)]
    commerce_subscription_id: Option<String>,
    #[serde(rename = "skuPartNumber", default)]
    sku_part_number: Option<String>,
    #[serde(rename = "skuId", default)]
    sku_id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(rename = "isTrial", default)]
    is_trial: Option<bool>,
    #[serde(rename = "totalLicenses", default)]
    total_licenses: Option<f64>,
    #[serde(rename = "nextLifecycleDateTime", default)]
    next_lifecycle: Option<String>,
}

impl CompanySubscription {
    /// The `subscription_id` label: the commerce subscription id (the id
    /// Partner Center uses for the same subscription), else the object id.
    fn subscription_id(&self) -> &str {
        match self.commerce_subscription_id.as_deref() {
            Some(c) if !c.is_empty() => c,
            _ => &self.id,
        }
    }
}

impl Collector for M365Subscriptions {
    fn name(&self) -> &'static str {
        "m365_subscriptions"
    }

    fn collect<'a>(
        &'a self,
        ctx: &'a TenantContext<'a>,
    ) -> BoxFuture<'a, Result<Findings, CollectError>> {
        Box::pin(async move {
            let tenant = &*ctx.tenant.tenant_id;
            let subs: Vec<CompanySubscription> =
                ctx.list(Api::Graph, "v1.0/directory/subscriptions").await?;
            let mut f = Findings::default();
            for s in subs {
                let sku = match (&s.sku_part_number, &s.sku_id) {
                    (Some(p), _) if !p.is_empty() => p.clone(),
                    (_, Some(id)) => id.clone(),
                    _ => String::new(),
                };
                let labels = vec![
                    tenant.to_string(),
                    crate::support::scrub::upstream(s.subscription_id()),
                    crate::support::scrub::upstream(&sku),
                    crate::support::scrub::upstream(s.status.as_deref().unwrap_or("")),
                    s.is_trial.unwrap_or(false).to_string(),
                ];
                if let Some(ts) = s.next_lifecycle.as_deref().and_then(parse_time) {
                    // A trial ends at its next lifecycle date; a paid one
                    // renews or not as Partner Center knows, not Graph.
                    if s.is_trial == Some(true) {
                        // Raw: the engine scrubs signals' text.
                        f.signals.push(Signal::SubscriptionEnds {
                            id: s.subscription_id().to_string(),
                            name: sku.clone(),
                            end: ts,
                            trial: true,
                        });
                    }
                    f.push(&self.next_lifecycle, labels.clone(), ts);
                }
                if let Some(n) = s.total_licenses {
                    f.push(&self.licenses, labels, n);
                }
            }
            Ok(f)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_subscriptions_parse() {
        let raw = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/graph-directory-subscriptions-list.json"
        ));
        let v: serde_json::Value = serde_json::from_str(raw).unwrap();
        let subs: Vec<CompanySubscription> = serde_json::from_value(v["value"].clone()).unwrap();
        assert_eq!(subs.len(), 1);
        let s = &subs[0];
        assert_eq!(s.subscription_id(), "f9c1ea2d-2c6e-4717-8c3b-7130812d70ba");
        assert_eq!(s.is_trial, Some(false));
        assert_eq!(s.total_licenses, Some(25.0));
        assert_eq!(
            s.next_lifecycle.as_deref().and_then(parse_time),
            Some(1_675_209_600.0)
        );
    }
}
