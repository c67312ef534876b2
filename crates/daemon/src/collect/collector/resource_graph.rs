//! `resource_graph`: one Azure Resource Graph query per tenant for resource counts,
//! resource health and Advisor recommendations, plus custom queries from config.
//!
//! <https://learn.microsoft.com/rest/api/azureresourcegraph/resourcegraph/resources/resources>
//! (api-version 2024-04-01). Paging is by `$skipToken` in the body, sent back in
//! `options.$skipToken` with the same query; `resultTruncated` is a string.

use std::sync::Arc;

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{CollectError, Collector, Findings, TenantContext};
use crate::model::Api;
use crate::model::Family;
use crate::outbound::client::ApiError;
use crate::outbound::url::join;

/// Resource Graph api-version.
pub const API_VERSION: &str = "2024-04-01";

/// The built-in query: three summaries in one request, told apart by `kind`.
pub const BUILTIN_QUERY: &str = "resources \
| summarize value = count() by subscriptionId, type = tolower(type), location \
| extend kind = 'resources' \
| union (healthresources \
| where type =~ 'microsoft.resourcehealth/availabilitystatuses' \
| extend state = tostring(properties.availabilityState), resourceType = tolower(tostring(properties.targetResourceType)) \
| summarize value = count() by subscriptionId, type = resourceType, location, state \
| extend kind = 'health') \
| union (advisorresources \
| where type =~ 'microsoft.advisor/recommendations' \
| summarize value = count() by category = tostring(properties.category), impact = tostring(properties.impact) \
| extend kind = 'advisor')";

use crate::config::CustomQuery;

/// Runs [`BUILTIN_QUERY`] and every custom query for each tenant.
pub struct ResourceGraph {
    resources: Arc<Family>,
    health: Arc<Family>,
    advisor: Arc<Family>,
    custom: Vec<(CustomQuery, Arc<Family>)>,
    /// The queries as configured.
    queries: Vec<CustomQuery>,
}

impl ResourceGraph {
    /// The collector with `custom` queries.
    pub fn new(custom: Vec<CustomQuery>) -> Self {
        let queries = custom.clone();
        let custom = custom
            .into_iter()
            .map(|q| {
                let mut labels = vec!["tenant_id"];
                labels.extend(q.label_columns.iter().map(String::as_str));
                let fam = Family::new(
                    &format!("tenantwatch_azure_query_{}", q.name),
                    &q.help,
                    &labels,
                );
                (q, fam)
            })
            .collect();
        Self {
            resources: Family::new(
                "tenantwatch_azure_resources",
                "Azure resources by subscription, type and location.",
                &["tenant_id", "subscription_id", "resource_type", "location"],
            ),
            health: Family::new(
                "tenantwatch_azure_resource_availability",
                "Azure resources by Resource Health availability state (Available, Degraded, Unavailable, Unknown).",
                &["tenant_id", "subscription_id", "resource_type", "location", "state"],
            ),
            advisor: Family::new(
                "tenantwatch_azure_advisor_recommendations",
                "Open Azure Advisor recommendations by category and impact.",
                &["tenant_id", "category", "impact"],
            ),
            custom,
            queries,
        }
    }
}

/// One page of a Resource Graph query (`resultFormat: objectArray`).
#[derive(Debug, Deserialize)]
pub struct Response {
    /// The rows.
    #[serde(default)]
    pub data: Vec<Map<String, Value>>,
    /// Sent back to get the next page.
    #[serde(rename = "$skipToken", default)]
    pub skip_token: Option<String>,
    /// `"true"`/`"false"` (a string in the documented examples) or a bool.
    #[serde(rename = "resultTruncated", default)]
    pub result_truncated: Option<Value>,
}

/// A cell as a label value: strings as they are, numbers printed, null empty.
fn cell(row: &Map<String, Value>, col: &str) -> String {
    match row.get(col) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

fn number(row: &Map<String, Value>, col: &str) -> Option<f64> {
    match row.get(col)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        _ => None,
    }
}

impl ResourceGraph {
    /// Turns the rows of [`BUILTIN_QUERY`] into samples; rows of an unknown
    /// kind or without a numeric `value` are skipped.
    pub fn builtin_findings(&self, tenant: &str, rows: Vec<Map<String, Value>>) -> Findings {
        let tenant = tenant.to_string();
        let mut f = Findings::default();
        for row in rows {
            let Some(v) = number(&row, "value") else {
                continue;
            };
            let sub = cell(&row, "subscriptionId");
            match cell(&row, "kind").as_str() {
                "resources" => f.push(
                    &self.resources,
                    vec![
                        tenant.clone(),
                        sub,
                        cell(&row, "type"),
                        cell(&row, "location"),
                    ],
                    v,
                ),
                "health" => f.push(
                    &self.health,
                    vec![
                        tenant.clone(),
                        sub,
                        cell(&row, "type"),
                        cell(&row, "location"),
                        cell(&row, "state"),
                    ],
                    v,
                ),
                "advisor" => f.push(
                    &self.advisor,
                    vec![tenant.clone(), cell(&row, "category"), cell(&row, "impact")],
                    v,
                ),
                _ => {}
            }
        }
        f
    }

    /// Runs one query to the last page.
    async fn query(
        &self,
        ctx: &TenantContext<'_>,
        kql: &str,
    ) -> Result<Vec<Map<String, Value>>, CollectError> {
        let tenant = &*ctx.tenant.tenant_id;
        let url = join(
            &ctx.cloud.arm,
            &format!("providers/Microsoft.ResourceGraph/resources?api-version={API_VERSION}"),
        );
        let mut rows = Vec::new();
        let mut skip: Option<String> = None;
        for _ in 0..ctx.api.limits().max_pages {
            let mut options = json!({"resultFormat": "objectArray", "$top": 1000});
            if let Some(t) = &skip {
                options["$skipToken"] = json!(t);
            }
            let body = json!({"query": kql, "options": options});
            let page: Response = ctx
                .post_json(Api::Arm, "resource_graph", &url, &body)
                .await?;
            rows.extend(page.data);
            let truncated = matches!(&page.result_truncated, Some(Value::String(s)) if s == "true")
                || matches!(&page.result_truncated, Some(Value::Bool(true)));
            match page.skip_token.filter(|t| !t.is_empty()) {
                Some(t) => skip = Some(t),
                None if truncated => {
                    return Err(ApiError::Status {
                        api: "resource_graph",
                        tenant: tenant.to_string(),
                        url,
                        status: 200,
                        code: "ResultTruncated".into(),
                        message: "resultTruncated is true and no $skipToken came back; project `id` or summarize".into(),
                        retry_after: None,
                        refused_wait: None,
                    }
                    .into())
                }
                None => return Ok(rows),
            }
        }
        Err(ApiError::TooManyPages {
            api: "resource_graph",
            tenant: tenant.to_string(),
            url,
            max: ctx.api.limits().max_pages,
        }
        .into())
    }
}

impl Collector for ResourceGraph {
    fn name(&self) -> &'static str {
        "resource_graph"
    }

    fn custom_queries(&self) -> &[CustomQuery] {
        self.queries.as_slice()
    }

    fn collect<'a>(
        &'a self,
        ctx: &'a TenantContext<'a>,
    ) -> BoxFuture<'a, Result<Findings, CollectError>> {
        Box::pin(async move {
            let tenant = ctx.tenant.tenant_id.to_string();
            let mut f = self.builtin_findings(&tenant, self.query(ctx, BUILTIN_QUERY).await?);
            for (q, fam) in &self.custom {
                for row in self.query(ctx, &q.query).await? {
                    let Some(v) = number(&row, &q.value_column) else {
                        continue;
                    };
                    let mut labels = vec![tenant.clone()];
                    labels.extend(q.label_columns.iter().map(|c| cell(&row, c)));
                    f.push(fam, labels, v);
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
    fn documented_page_shapes_parse() {
        let first: Value = serde_json::from_str(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/resourcegraph-ResourcesFirstPageQuery.json"
        )))
        .unwrap();
        let r: Response =
            serde_json::from_value(first["responses"]["200"]["body"].clone()).unwrap();
        assert!(r.skip_token.is_some());
        assert!(!r.data.is_empty());
    }

    #[test]
    fn cells_and_numbers() {
        let row: Map<String, Value> =
            serde_json::from_str(r#"{"a":"x","n":3,"s":"4.5","z":null}"#).unwrap();
        assert_eq!(cell(&row, "a"), "x");
        assert_eq!(cell(&row, "n"), "3");
        assert_eq!(cell(&row, "z"), "");
        assert_eq!(number(&row, "s"), Some(4.5));
        assert_eq!(number(&row, "a"), None);
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_query_page_is_rows_or_an_error_naming_api_and_tenant(
            status in crate::arb::status(),
            body in crate::arb::body(),
        ) {
            let r = crate::outbound::client::parse_json::<Response>(
                "resource_graph", "contoso-tenant", "https://arm.test/rg", status,
                &reqwest::header::HeaderMap::new(), &body,
            );
            match r {
                Ok(page) => {
                    let f = ResourceGraph::new(Vec::new()).builtin_findings("contoso-tenant", page.data);
                    prop_assert!(f.samples.iter().all(|s| s.labels[0] == "contoso-tenant"));
                }
                Err(e) => {
                    let text = e.to_string();
                    prop_assert!(text.contains("resource_graph") && text.contains("contoso-tenant"), "{}", text);
                }
            }
        }
    }
}
