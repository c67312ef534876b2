//! `partner_subscriptions`: each Partner Center customer's subscriptions as
//! the partner sells them — when the commitment ends and whether it renews
//! by itself. Runs only for tenants Partner Center lists, with the partner's
//! Partner Center token (the customer's own tenant has no such API).
//!
//! <https://learn.microsoft.com/partner-center/developer/get-all-of-a-customer-s-subscriptions>,
//! <https://learn.microsoft.com/partner-center/developer/subscription-resources>

use std::sync::Arc;

use futures::future::BoxFuture;
use serde::Deserialize;

use super::{parse_time, with_token, CollectError, Collector, Findings, Scope, TenantContext};
use crate::model::{Api, Family, Signal};
use crate::outbound::request::Request;

/// Reads `GET /v1/customers/{id}/subscriptions`.
pub struct PartnerSubscriptions {
    commitment_end: Arc<Family>,
}

impl Default for PartnerSubscriptions {
    fn default() -> Self {
        Self {
            commitment_end: Family::new(
                "tenantwatch_partner_subscription_commitment_end_timestamp_seconds",
                "When the Partner Center subscription's term ends (commitmentEndDateTime, else the end of commitmentEndDate's day).",
                &["tenant_id", "subscription_id", "offer", "auto_renew"],
            ),
        }
    }
}

/// The `Collection` Partner Center answers; the docs show no paging for it.
#[derive(Deserialize)]
struct Collection {
    #[serde(default)]
    items: Vec<Subscription>,
}

/// A `Subscription` (the fields tenantwatch uses).
#[derive(Deserialize)]
struct Subscription {
    #[serde(default)]
    id: String,
    #[serde(rename = "offerName", default)]
    offer_name: Option<String>,
    #[serde(rename = "offerId", default)]
    offer_id: Option<String>,
    #[serde(rename = "autoRenewEnabled", default)]
    auto_renew: Option<bool>,
    #[serde(rename = "commitmentEndDateTime", default)]
    commitment_end_date_time: Option<String>,
    #[serde(rename = "commitmentEndDate", default)]
    commitment_end_date: Option<String>,
}

/// Partner Center writes "a date far, far away" for terms that never end.
const FAR_AWAY_YEAR: f64 = 9000.0 * 365.25 * 86_400.0 - 1970.0 * 365.25 * 86_400.0;

impl Subscription {
    /// Unix seconds the term ends: `commitmentEndDateTime`, else the last
    /// second of the inclusive `commitmentEndDate`; `None` for far-away dates.
    fn end(&self) -> Option<f64> {
        let end = match self
            .commitment_end_date_time
            .as_deref()
            .and_then(parse_time)
        {
            Some(t) => t,
            None => {
                let day = self.commitment_end_date.as_deref().and_then(parse_time)?;
                day - day.rem_euclid(86_400.0) + 86_399.0
            }
        };
        (end < FAR_AWAY_YEAR).then_some(end)
    }
}

impl Collector for PartnerSubscriptions {
    fn name(&self) -> &'static str {
        "partner_subscriptions"
    }

    fn scope(&self) -> Scope {
        Scope::PartnerCenterCustomers
    }

    fn collect<'a>(
        &'a self,
        ctx: &'a TenantContext<'a>,
    ) -> BoxFuture<'a, Result<Findings, CollectError>> {
        Box::pin(async move {
            let tenant = &*ctx.tenant.tenant_id;
            let partner = ctx.partner_tenant;
            // Discovery lets only GUIDs through as Partner Center tenant ids,
            // so the id is one plain path segment.
            let url = crate::outbound::url::join(
                &ctx.cloud.partner_center,
                &format!("v1/customers/{tenant}/subscriptions"),
            );
            let (page, _) = with_token(ctx.broker, partner, Api::PartnerCenter, |token| {
                let url = url.clone();
                async move {
                    ctx.api
                        .send_json::<Collection>(
                            &Request::get("partner_center", partner, url, &token)
                                .header("Accept", "application/json"),
                        )
                        .await
                }
            })
            .await?;
            let mut f = Findings::default();
            for s in page.items {
                let Some(end) = s.end() else { continue };
                let offer = s
                    .offer_name
                    .filter(|o| !o.is_empty())
                    .or(s.offer_id)
                    .unwrap_or_default();
                let labels = vec![
                    tenant.to_string(),
                    crate::support::scrub::upstream(&s.id),
                    crate::support::scrub::upstream(&offer),
                    s.auto_renew.unwrap_or(false).to_string(),
                ];
                if s.auto_renew == Some(false) {
                    // Raw: the engine scrubs signals' text.
                    f.signals.push(Signal::SubscriptionEnds {
                        id: s.id.clone(),
                        name: offer.clone(),
                        end,
                        trial: false,
                    });
                }
                f.push(&self.commitment_end, labels, end);
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
            "/tests/fixtures/partnercenter-customer-subscriptions-list.json"
        ));
        let c: Collection = serde_json::from_str(raw).unwrap();
        assert_eq!(c.items.len(), 1);
        let s = &c.items[0];
        assert_eq!(s.auto_renew, Some(true));
        // 2024-10-14, inclusive: its last second.
        assert_eq!(s.end(), Some(1_728_950_399.0));
        let never = Subscription {
            id: "x".into(),
            offer_name: None,
            offer_id: None,
            auto_renew: Some(false),
            commitment_end_date_time: None,
            commitment_end_date: Some("9999-12-10T00:00:00Z".into()),
        };
        assert_eq!(never.end(), None);
    }
}
