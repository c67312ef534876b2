//! Azure Cost Management's query on the ARM origin:
//! `POST /subscriptions/{id}/providers/Microsoft.CostManagement/query?api-version=…`
//! (costmanagement/query-limits.md: operation `Query_Usage`, `QueryDefinition`
//! in, `QueryResult` out, shaped after its 2025-03-01 examples).
//!
//! Every subscription costs a fixed amount a day ([`daily_cents`], from its
//! id), billed in its tenant's currency ([`currency`]); a query totals the
//! days of its timeframe on the simulated clock ([`period`]), so the ground
//! truth ([`month_to_date`], [`last_month`]) is the same arithmetic. Rows
//! page by `$skiptoken` in the `nextLink` (only `Daily` ever has more than
//! one row). The QPU limits are in [`crate::limits`]; their 429 body is
//! [`throttled`].

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use chrono::{Datelike, NaiveDate};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{arm_headers, error, unauthorized};
use crate::bearer::{self, AccessClaims};
use crate::http::{self, first};
use crate::resources::ARM;
use crate::state::SimState;

/// api-versions of `Query_Usage` (query-limits.md names these; 2021-10-01
/// is the one the MCA example's `nextLink` carries).
const API_VERSIONS: &[&str] = &[
    "2019-11-01",
    "2021-10-01",
    "2023-11-01",
    "2024-08-01",
    "2025-03-01",
];

/// Rows per page, small so `Daily` queries have to follow `nextLink`.
const PAGE_SIZE: usize = 10;

/// Currencies the simulated customers are billed in.
const CURRENCIES: &[&str] = &["USD", "EUR", "GBP", "AUD", "JPY"];

/// The path after `/subscriptions/{id}`, lower-cased.
const SUFFIX: &str = "/providers/microsoft.costmanagement/query";

/// The subscription id of a Cost Management query path, matched
/// case-insensitively as ARM does; `None` for any other path.
pub(crate) fn subscription_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix('/')?;
    let (first_seg, rest) = rest.split_once('/')?;
    if !first_seg.eq_ignore_ascii_case("subscriptions") {
        return None;
    }
    let (id, tail) = rest.split_once('/')?;
    (!id.is_empty()
        && tail.len() + 1 == SUFFIX.len()
        && ("/".to_string() + tail).eq_ignore_ascii_case(SUFFIX))
    .then_some(id)
}

/// Whether `path` is a Cost Management query.
pub(crate) fn is_path(path: &str) -> bool {
    subscription_of(path).is_some()
}

fn hash(key: &str) -> u64 {
    let d = Sha256::digest(key.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_le_bytes(b)
}

/// A subscription's cost per day in hundredths of its currency: 1.00 to 500.00.
pub(crate) fn daily_cents(subscription_id: &str) -> u64 {
    100 + hash(&format!("cost/{}", subscription_id.to_ascii_lowercase())) % 49_901
}

/// The currency a tenant is billed in.
pub fn currency(tenant_id: &str) -> &'static str {
    let i = hash(&format!("currency/{}", tenant_id.to_ascii_lowercase())) % CURRENCIES.len() as u64;
    CURRENCIES[i as usize]
}

/// The cost of `days` days of a subscription: cents summed, then divided,
/// so the sim and the ground truth print the same number.
fn cost(subscription_id: &str, days: i64) -> f64 {
    (daily_cents(subscription_id) * days.max(0) as u64) as f64 / 100.0
}

/// `MonthToDate` on `today`: the first of the month to today.
fn month_to_date_days(today: NaiveDate) -> i64 {
    i64::from(today.day())
}

/// The first and last day of the month before `today`'s.
fn last_month_range(today: NaiveDate) -> (NaiveDate, NaiveDate) {
    let first_this = today.with_day(1).unwrap_or(today);
    let last_prev = first_this.pred_opt().unwrap_or(first_this);
    (last_prev.with_day(1).unwrap_or(last_prev), last_prev)
}

/// Month-to-date actual cost of a subscription on the simulated clock.
pub(crate) fn month_to_date(state: &SimState, subscription_id: &str) -> f64 {
    cost(
        subscription_id,
        month_to_date_days(state.clock.now().date_naive()),
    )
}

/// Last full month's actual cost of a subscription on the simulated clock.
pub(crate) fn last_month(state: &SimState, subscription_id: &str) -> f64 {
    let (from, to) = last_month_range(state.clock.now().date_naive());
    cost(subscription_id, (to - from).num_days() + 1)
}

/// The days a timeframe covers on `today`, or why the request is refused.
fn period(def: &Value, today: NaiveDate) -> Result<(NaiveDate, NaiveDate), String> {
    let first_this = today.with_day(1).unwrap_or(today);
    match def.get("timeframe").and_then(Value::as_str) {
        None => Err("Missing required property 'timeframe'.".into()),
        // The sim bills by calendar month, so billing months are the same.
        Some("MonthToDate" | "BillingMonthToDate") => Ok((first_this, today)),
        Some("TheLastMonth" | "TheLastBillingMonth") => Ok(last_month_range(today)),
        Some("WeekToDate") => {
            let back = i64::from(today.weekday().num_days_from_sunday());
            Ok((today - chrono::Duration::days(back), today))
        }
        Some("Custom") => {
            let tp = def
                .get("timePeriod")
                .ok_or("The timePeriod is required when timeframe is Custom.")?;
            let date = |k: &str| -> Result<NaiveDate, String> {
                let s = tp
                    .get(k)
                    .and_then(Value::as_str)
                    .ok_or(format!("Missing required property 'timePeriod.{k}'."))?;
                chrono::DateTime::parse_from_rfc3339(s)
                    .map(|d| d.date_naive())
                    .or_else(|_| NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d"))
                    .map_err(|_| format!("Invalid timePeriod.{k} '{s}'."))
            };
            let (from, to) = (date("from")?, date("to")?);
            if to < from {
                return Err("timePeriod.from must be before timePeriod.to.".into());
            }
            Ok((from, to))
        }
        Some(other) => Err(format!(
            "Invalid timeframe '{other}'. Allowed values are MonthToDate, BillingMonthToDate, TheLastMonth, TheLastBillingMonth, WeekToDate, Custom."
        )),
    }
}

/// The aggregated column the query asks for (`Cost` by default for
/// ActualCost/AmortizedCost, `PreTaxCost` for Usage), or why it is refused.
fn aggregated_column(def: &Value, kind: &str) -> Result<String, String> {
    let default = if kind == "Usage" {
        "PreTaxCost"
    } else {
        "Cost"
    };
    let Some(agg) = def.pointer("/dataset/aggregation") else {
        return Ok(default.into());
    };
    let agg = agg
        .as_object()
        .ok_or("dataset.aggregation must be an object.")?;
    if agg.len() > 2 {
        return Err("The number of aggregations must not exceed 2.".into());
    }
    let mut column = None;
    for (alias, a) in agg {
        let name = a.get("name").and_then(Value::as_str).ok_or(format!(
            "Missing required property 'dataset.aggregation.{alias}.name'."
        ))?;
        match a.get("function").and_then(Value::as_str) {
            Some("Sum") => {}
            _ => {
                return Err(format!(
                "Invalid function in dataset.aggregation.{alias}; the only allowed value is Sum."
            ))
            }
        }
        if !["Cost", "CostUSD", "PreTaxCost", "PreTaxCostUSD"].contains(&name) {
            return Err(format!("Invalid aggregation column '{name}'."));
        }
        column.get_or_insert(name.to_string());
    }
    Ok(column.unwrap_or_else(|| default.into()))
}

fn bad_request(message: String) -> Response {
    error(StatusCode::BAD_REQUEST, "BadRequest", message, None)
}

/// ARM's headers without the tenant-read counter, and Cost Management's
/// own QPU headers (which the limits replace with their counts when on).
fn headers() -> Vec<(&'static str, String)> {
    let mut h = arm_headers();
    h.retain(|(k, _)| !k.starts_with("x-ms-ratelimit"));
    h.push((
        "x-ms-ratelimit-microsoft.costmanagement-qpu-consumed",
        "1".into(),
    ));
    h
}

/// The 429 Cost Management sends (Microsoft Q&A; no official example):
/// `{"error":{"code":"429","message":"Too many requests. Please retry."}}`
/// with `x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after` (the
/// caller adds `Retry-After`).
pub(crate) fn throttled(status: StatusCode, retry_after: Option<u64>) -> Response {
    let mut extra = headers();
    extra.retain(|(k, _)| !k.ends_with("-qpu-consumed"));
    let body = match retry_after {
        Some(secs) => {
            extra.push((
                "x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after",
                secs.to_string(),
            ));
            json!({"error": {"code": "429", "message": "Too many requests. Please retry."}})
        }
        None => json!({"error": {
            "code": crate::faults::server_code(status),
            "message": "The server is currently unable to receive requests. Please retry your request.",
        }}),
    };
    http::json(status, &body, &extra)
}

/// `POST …/providers/Microsoft.CostManagement/query`.
pub(crate) async fn handle(
    State(state): State<Arc<SimState>>,
    uri: Uri,
    headers_in: HeaderMap,
    body: Bytes,
) -> Response {
    let claims: AccessClaims = match bearer::validate(&state, &headers_in, ARM.audiences) {
        Ok(c) => c,
        Err(e) => return unauthorized(&state, e),
    };
    let Some(tenant) = state.world.tenant(&claims.tid) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "The access token is invalid.".into(),
            Some("The access token is invalid."),
        );
    };
    let q = http::query(&uri);
    let api_version = match super::api_version(&q, API_VERSIONS) {
        Ok(v) => v.to_string(),
        Err(r) => return *r,
    };
    let requested = subscription_of(uri.path()).unwrap_or_default();
    // Only the token's tenant's subscriptions exist for it, as in ARM.
    let Some(sub) = tenant
        .subscriptions
        .iter()
        .find(|s| s.id.eq_ignore_ascii_case(requested))
    else {
        return error(
            StatusCode::NOT_FOUND,
            "SubscriptionNotFound",
            format!("The subscription '{requested}' could not be found."),
            None,
        );
    };
    let def: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        _ => return bad_request("The request body is not a valid QueryDefinition.".into()),
    };
    let kind = match def.get("type").and_then(Value::as_str) {
        Some(k @ ("Usage" | "ActualCost" | "AmortizedCost")) => k,
        Some(other) => {
            return bad_request(format!(
                "Invalid type '{other}'. Allowed values are Usage, ActualCost, AmortizedCost."
            ))
        }
        None => return bad_request("Missing required property 'type'.".into()),
    };
    if def.get("dataset").is_none() {
        return bad_request("Missing required property 'dataset'.".into());
    }
    let today = state.clock.now().date_naive();
    let (from, to) = match period(&def, today) {
        Ok(p) => p,
        Err(m) => return bad_request(m),
    };
    let column = match aggregated_column(&def, kind) {
        Ok(c) => c,
        Err(m) => return bad_request(m),
    };
    if def.pointer("/dataset/grouping").is_some() || def.pointer("/dataset/filter").is_some() {
        // Not a Microsoft error: the sim has no resource groups or tags to
        // group or filter by (docs/simulator.md).
        return bad_request(
            "The simulator does not implement dataset.grouping or dataset.filter.".into(),
        );
    }
    let daily = match def.pointer("/dataset/granularity").and_then(Value::as_str) {
        None | Some("None") => false,
        Some("Daily") => true,
        Some(other) => {
            return bad_request(format!(
                "Invalid granularity '{other}'. Allowed values are Daily, None."
            ))
        }
    };
    let currency = currency(&tenant.id);
    let mut columns = vec![json!({"name": column, "type": "Number"})];
    let rows: Vec<Value> = if daily {
        columns.push(json!({"name": "UsageDate", "type": "Number"}));
        from.iter_days()
            .take_while(|d| *d <= to)
            .map(|d| {
                let ymd = d.year() * 10_000 + d.month() as i32 * 100 + d.day() as i32;
                json!([cost(&sub.id, 1), ymd, currency])
            })
            .collect()
    } else {
        vec![json!([cost(&sub.id, (to - from).num_days() + 1), currency])]
    };
    columns.push(json!({"name": "Currency", "type": "String"}));
    let offset = match first(&q, "$skiptoken") {
        None => 0,
        Some(t) => match t.parse::<usize>() {
            Ok(n) => n,
            Err(_) => return bad_request(format!("The provided skip token '{t}' is not valid.")),
        },
    };
    let next = offset + PAGE_SIZE;
    let next_link = (next < rows.len()).then(|| {
        format!(
            "{}/subscriptions/{}/providers/Microsoft.CostManagement/query?api-version={api_version}&%24skiptoken={next}",
            state.origins.arm, sub.id
        )
    });
    let page: Vec<Value> = rows.into_iter().skip(offset).take(PAGE_SIZE).collect();
    let query_id = crate::http::new_id();
    let out = json!({
        "id": format!("subscriptions/{}/providers/Microsoft.CostManagement/Query/{query_id}", sub.id),
        "name": query_id,
        "type": "microsoft.costmanagement/Query",
        "properties": {
            "nextLink": next_link,
            "columns": columns,
            "rows": page,
        }
    });
    http::json(StatusCode::OK, &out, &headers())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_periods() {
        assert_eq!(
            subscription_of("/subscriptions/S1/providers/Microsoft.CostManagement/query"),
            Some("S1")
        );
        assert_eq!(
            subscription_of("/SUBSCRIPTIONS/s1/PROVIDERS/microsoft.costmanagement/Query"),
            Some("s1")
        );
        assert_eq!(subscription_of("/subscriptions/s1"), None);
        assert_eq!(
            subscription_of("/subscriptions//providers/Microsoft.CostManagement/query"),
            None
        );
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert_eq!(
            last_month_range(d(2026, 3, 15)),
            (d(2026, 2, 1), d(2026, 2, 28))
        );
        assert_eq!(
            last_month_range(d(2026, 1, 1)),
            (d(2025, 12, 1), d(2025, 12, 31))
        );
        let custom = json!({"timeframe": "Custom", "timePeriod": {"from": "2026-02-01T00:00:00Z", "to": "2026-02-10T00:00:00Z"}});
        assert_eq!(
            period(&custom, d(2026, 3, 1)),
            Ok((d(2026, 2, 1), d(2026, 2, 10)))
        );
        assert!(period(&json!({"timeframe": "Custom"}), d(2026, 3, 1)).is_err());
        assert!(period(&json!({"timeframe": "Yesterday"}), d(2026, 3, 1)).is_err());
        // Cents times days, divided once: exact to the cent.
        assert_eq!(cost("x", 0), 0.0);
        assert!(cost("x", 3) >= 3.0);
    }

    async fn post(
        f: &crate::test_support::Fixture,
        token: &str,
        sub: &str,
        body: Value,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let r = f
            .http
            .post(format!(
                "{}/subscriptions/{sub}/providers/Microsoft.CostManagement/query?api-version=2025-03-01",
                f.sim.arm_url()
            ))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        (status, headers, r.json().await.unwrap_or(Value::Null))
    }

    fn total(tf: &str) -> Value {
        json!({"type": "ActualCost", "timeframe": tf, "dataset": {"granularity": "None",
            "aggregation": {"totalCost": {"name": "Cost", "function": "Sum"}}}})
    }

    #[tokio::test]
    async fn totals_equal_the_ground_truth_and_the_quota_throttles() {
        use crate::test_support::{start, ARM_SCOPE};
        let f = start(8).await;
        let truth = f.sim.ground_truth();
        let tt = truth
            .tenants
            .iter()
            .find(|t| !t.subscriptions.is_empty())
            .expect("a tenant with a subscription");
        let other = truth
            .tenants
            .iter()
            .find(|t| t.tenant_id != tt.tenant_id && !t.subscriptions.is_empty())
            .expect("another");
        let token = f.access(&tt.tenant_id, ARM_SCOPE).await;
        let s = &tt.subscriptions[0];
        let (st, _, body) = post(&f, &token, &s.subscription_id, total("MonthToDate")).await;
        assert_eq!(st, 200, "{body}");
        assert_eq!(body["type"], "microsoft.costmanagement/Query");
        assert_eq!(body["properties"]["columns"][0]["name"], "Cost");
        assert_eq!(body["properties"]["columns"][1]["name"], "Currency");
        assert_eq!(body["properties"]["nextLink"], Value::Null);
        assert_eq!(
            body["properties"]["rows"],
            json!([[s.cost_month_to_date, s.currency]])
        );
        let (_, _, body) = post(&f, &token, &s.subscription_id, total("TheLastMonth")).await;
        assert_eq!(body["properties"]["rows"][0][0], json!(s.cost_last_month));
        // Daily rows page by nextLink.
        let daily = json!({"type": "Usage", "timeframe": "Custom",
            "timePeriod": {"from": "2026-01-01T00:00:00Z", "to": "2026-01-31T00:00:00Z"},
            "dataset": {"granularity": "Daily"}});
        let (_, _, body) = post(&f, &token, &s.subscription_id, daily).await;
        assert_eq!(
            body["properties"]["rows"].as_array().map(Vec::len),
            Some(10)
        );
        assert!(body["properties"]["nextLink"]
            .as_str()
            .is_some_and(|l| l.contains("skiptoken=10")));
        // Another tenant's subscription does not exist for this token; bad bodies are 400s.
        let (st, _, body) = post(
            &f,
            &token,
            &other.subscriptions[0].subscription_id,
            total("MonthToDate"),
        )
        .await;
        assert_eq!(
            (st, body["error"]["code"].as_str()),
            (404, Some("SubscriptionNotFound"))
        );
        let (st, _, _) = post(
            &f,
            &token,
            &s.subscription_id,
            json!({"type": "ActualCost", "dataset": {}}),
        )
        .await;
        assert_eq!(st, 400);
        let (st, _, _) = post(&f, "not-a-token", &s.subscription_id, total("MonthToDate")).await;
        assert_eq!(st, 401);
        // 12 QPU per 10 s × 0.1: the second query at once is refused.
        f.sim.set_limits(true, 0.1);
        let (st, h, _) = post(&f, &token, &s.subscription_id, total("MonthToDate")).await;
        assert_eq!(st, 200);
        assert_eq!(
            h["x-ms-ratelimit-microsoft.costmanagement-qpu-remaining"],
            "QueriesPer10Seconds:0,QueriesPer1Minute:5,QueriesPer1Hour:59"
        );
        let (st, h, body) = post(&f, &token, &s.subscription_id, total("MonthToDate")).await;
        assert_eq!(st, 429);
        assert_eq!(
            body,
            json!({"error": {"code": "429", "message": "Too many requests. Please retry."}})
        );
        assert!(h.contains_key("retry-after"));
        assert_eq!(
            h["retry-after"],
            h["x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after"]
        );
    }

    #[test]
    fn aggregation_is_checked() {
        let agg =
            |v: Value| aggregated_column(&json!({"dataset": {"aggregation": v}}), "ActualCost");
        assert_eq!(
            agg(json!({"totalCost": {"name": "Cost", "function": "Sum"}})),
            Ok("Cost".into())
        );
        assert!(agg(json!({"totalCost": {"name": "Cost", "function": "Avg"}})).is_err());
        assert!(agg(json!({"a": {"name": "Cost", "function": "Sum"}, "b": {"name": "CostUSD", "function": "Sum"}, "c": {"name": "PreTaxCost", "function": "Sum"}})).is_err());
        assert_eq!(
            aggregated_column(&json!({"dataset": {}}), "Usage"),
            Ok("PreTaxCost".into())
        );
    }
}
