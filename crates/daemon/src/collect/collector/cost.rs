//! `cost`: each Azure subscription's actual cost, month to date and for the
//! previous full month, from Cost Management's query
//! (`POST /subscriptions/{id}/providers/Microsoft.CostManagement/query`).
//!
//! <https://learn.microsoft.com/rest/api/cost-management/query/usage>
//! (api-version 2025-03-01). The body asks for the total only (`granularity`
//! `None`, `aggregation.totalCost` = `Sum` of `Cost`), so the answer is one
//! row per currency, `[cost, "USD"]`; rows of every `nextLink` page are
//! summed by currency. `204 No Content` and no rows are "no data", not an
//! error. Requests go out under their own API label, `cost_management`, so
//! Cost Management's per-tenant QPU quota gets its own budget in
//! [`crate::outbound::pacing`] and never holds up the ARM reads of the other
//! collectors.
//!
//! The subscriptions are the ones `arm_subscriptions` last found
//! ([`TenantContext::subscriptions`]); only when it has none for the tenant
//! does this collector list them itself.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{CollectError, Collector, Findings, TenantContext};
use crate::model::Api;
use crate::model::Family;
use crate::outbound::client::ApiError;
use crate::outbound::url::join;

/// Cost Management api-version.
pub const API_VERSION: &str = "2025-03-01";

/// The API label of its requests (metrics, pacing budget).
pub const API: &str = "cost_management";

/// The two timeframes asked for, and which family each fills.
const TIMEFRAMES: [&str; 2] = ["MonthToDate", "TheLastMonth"];

/// Month-to-date and last month's cost per subscription and currency.
pub struct Cost {
    month_to_date: Arc<Family>,
    last_month: Arc<Family>,
}

impl Default for Cost {
    fn default() -> Self {
        let labels = ["tenant_id", "subscription_id", "currency"];
        Self {
            month_to_date: Family::new(
                "tenantwatch_azure_cost_month_to_date",
                "Actual cost of the Azure subscription this month so far (Cost Management ActualCost, MonthToDate), in the billing currency.",
                &labels,
            ),
            last_month: Family::new(
                "tenantwatch_azure_cost_last_month",
                "Actual cost of the Azure subscription in the previous calendar month (Cost Management ActualCost, TheLastMonth), in the billing currency.",
                &labels,
            ),
        }
    }
}

/// `QueryResult`; only `properties` is read.
#[derive(Debug, Deserialize)]
struct QueryResult {
    properties: QueryProperties,
}

#[derive(Debug, Deserialize)]
struct QueryProperties {
    #[serde(rename = "nextLink", default)]
    next_link: Option<String>,
    #[serde(default)]
    columns: Vec<Column>,
    #[serde(default)]
    rows: Vec<Vec<Value>>,
}

#[derive(Debug, Deserialize)]
struct Column {
    name: String,
    #[serde(rename = "type", default)]
    kind: String,
}

/// The request body: the total actual cost of `timeframe`.
fn definition(timeframe: &str) -> Value {
    json!({
        "type": "ActualCost",
        "timeframe": timeframe,
        "dataset": {
            "granularity": "None",
            "aggregation": {"totalCost": {"name": "Cost", "function": "Sum"}},
        },
    })
}

/// Adds a page's rows to `totals` by currency: the cost is the first
/// `Number` column other than `UsageDate` (its name is the aggregated
/// column's, `Cost` or `PreTaxCost`), the currency the `Currency` column.
fn add_rows(p: &QueryProperties, totals: &mut BTreeMap<String, f64>) {
    let cost = p.columns.iter().position(|c| {
        c.kind.eq_ignore_ascii_case("Number") && !c.name.eq_ignore_ascii_case("UsageDate")
    });
    let currency = p
        .columns
        .iter()
        .position(|c| c.name.eq_ignore_ascii_case("Currency"));
    let Some(cost) = cost else {
        return;
    };
    for row in &p.rows {
        let Some(v) = row.get(cost).and_then(Value::as_f64) else {
            continue;
        };
        let cur = currency
            .and_then(|i| row.get(i))
            .and_then(Value::as_str)
            .unwrap_or("");
        *totals
            .entry(crate::support::scrub::upstream(cur).to_string())
            .or_default() += v;
    }
}

/// A subscription id fit for a URL path: ARM's are GUIDs.
fn usable_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

#[derive(Deserialize)]
struct Subscription {
    #[serde(rename = "subscriptionId")]
    subscription_id: String,
    #[serde(default)]
    state: String,
}

impl Cost {
    /// The total of `timeframe` for one subscription, by currency, every page.
    async fn query(
        &self,
        ctx: &TenantContext<'_>,
        subscription: &str,
        timeframe: &str,
    ) -> Result<BTreeMap<String, f64>, CollectError> {
        let tenant = &*ctx.tenant.tenant_id;
        let first = join(
            &ctx.cloud.arm,
            &format!(
                "subscriptions/{subscription}/providers/Microsoft.CostManagement/query?api-version={API_VERSION}"
            ),
        );
        let body = definition(timeframe);
        let mut totals = BTreeMap::new();
        let mut url = first.clone();
        let max_pages = ctx.api.limits().max_pages;
        for _ in 0..max_pages {
            // 204 No Content ("resource is not available") decodes as null.
            let page: Option<QueryResult> = ctx.post_json(Api::Arm, API, &url, &body).await?;
            let Some(page) = page else {
                return Ok(totals);
            };
            add_rows(&page.properties, &mut totals);
            match page.properties.next_link.filter(|l| !l.is_empty()) {
                // The same body goes to the link, verbatim (it may carry another api-version).
                Some(next) if crate::outbound::client::same_origin(&first, &next) => url = next,
                Some(next) => {
                    return Err(ApiError::ForeignNextLink {
                        api: API,
                        tenant: tenant.to_string(),
                        url: first,
                        link: crate::support::scrub::upstream(&next),
                    }
                    .into())
                }
                None => return Ok(totals),
            }
        }
        Err(ApiError::TooManyPages {
            api: API,
            tenant: tenant.to_string(),
            url: first,
            max: max_pages,
        }
        .into())
    }

    /// The tenant's subscriptions: `arm_subscriptions`' list, or a listing
    /// of our own when it has none.
    async fn subscriptions(&self, ctx: &TenantContext<'_>) -> Result<Vec<String>, CollectError> {
        if let Some(known) = ctx.subscriptions {
            return Ok(known.to_vec());
        }
        let listed: Vec<Subscription> = ctx
            .list(
                Api::Arm,
                &format!(
                    "subscriptions?api-version={}",
                    super::arm_subscriptions::API_VERSION
                ),
            )
            .await?;
        Ok(listed
            .into_iter()
            .filter(|s| s.state != "Deleted")
            .map(|s| s.subscription_id)
            .collect())
    }
}

impl Collector for Cost {
    fn name(&self) -> &'static str {
        "cost"
    }

    fn uses_subscriptions(&self) -> bool {
        true
    }

    fn collect<'a>(
        &'a self,
        ctx: &'a TenantContext<'a>,
    ) -> BoxFuture<'a, Result<Findings, CollectError>> {
        Box::pin(async move {
            let tenant = &*ctx.tenant.tenant_id;
            let subs: Vec<String> = self
                .subscriptions(ctx)
                .await?
                .into_iter()
                .filter(|s| usable_id(s))
                .collect();
            // All at once: the per-tenant request limit and the pacing
            // budget space them; the first answers tell the budget how much
            // quota is left.
            let asks = subs
                .iter()
                .flat_map(|s| TIMEFRAMES.iter().map(move |tf| (s, *tf)));
            let answers = futures::future::join_all(
                asks.map(|(s, tf)| async move { (s, tf, self.query(ctx, s, tf).await) }),
            )
            .await;
            let mut f = Findings::default();
            for (sub, tf, totals) in answers {
                let family = if tf == "MonthToDate" {
                    &self.month_to_date
                } else {
                    &self.last_month
                };
                for (currency, value) in totals? {
                    f.push(
                        family,
                        vec![tenant.to_string(), sub.clone(), currency],
                        value,
                    );
                }
            }
            Ok(f)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(v: Value) -> QueryProperties {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn rows_sum_by_currency_whatever_the_column_order() {
        let mut t = BTreeMap::new();
        add_rows(
            &props(json!({
                "columns": [{"name": "PreTaxCost", "type": "Number"}, {"name": "UsageDate", "type": "Number"}, {"name": "Currency", "type": "String"}],
                "rows": [[1.5, 20260301, "EUR"], [2.25, 20260302, "EUR"], [4, 20260302, "USD"], ["x", 1, "USD"]]
            })),
            &mut t,
        );
        add_rows(
            &props(json!({
                "columns": [{"name": "Currency", "type": "String"}, {"name": "Cost", "type": "Number"}],
                "rows": [["EUR", 0.25]]
            })),
            &mut t,
        );
        assert_eq!(
            t,
            BTreeMap::from([("EUR".into(), 4.0), ("USD".into(), 4.0)])
        );
        // No rows: no data.
        let mut none = BTreeMap::new();
        add_rows(&props(json!({"columns": [], "rows": []})), &mut none);
        assert!(none.is_empty());
    }

    #[test]
    fn the_body_asks_for_the_total_actual_cost() {
        let b = definition("MonthToDate");
        assert_eq!(b["type"], "ActualCost");
        assert_eq!(b["timeframe"], "MonthToDate");
        assert_eq!(b["dataset"]["granularity"], "None");
        assert_eq!(b["dataset"]["aggregation"]["totalCost"]["function"], "Sum");
        assert!(usable_id("0b1f6471-1bf0-4dda-aec3-111122223333"));
        assert!(!usable_id("../x"));
        assert!(!usable_id(""));
    }
}
