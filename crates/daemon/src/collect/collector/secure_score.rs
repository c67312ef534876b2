//! `secure_score`: the tenant's latest Microsoft Secure Score.
//!
//! <https://learn.microsoft.com/graph/api/security-list-securescores>

use std::sync::Arc;

use futures::future::BoxFuture;
use serde::Deserialize;

use super::{CollectError, Collector, Findings, TenantContext};
use crate::model::Api;
use crate::model::Family;
use crate::outbound::request::Request;
use crate::outbound::url::join;

/// Reads `GET /v1.0/security/secureScores?$top=1`.
pub struct SecureScore {
    current: Arc<Family>,
    max: Arc<Family>,
}

impl Default for SecureScore {
    fn default() -> Self {
        Self {
            current: Family::new(
                "tenantwatch_m365_secure_score",
                "Current Microsoft Secure Score.",
                &["tenant_id"],
            ),
            max: Family::new(
                "tenantwatch_m365_secure_score_max",
                "Highest Secure Score attainable.",
                &["tenant_id"],
            ),
        }
    }
}

#[derive(Deserialize)]
struct Score {
    #[serde(rename = "currentScore")]
    current: Option<f64>,
    #[serde(rename = "maxScore")]
    max: Option<f64>,
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    value: Vec<Score>,
}

impl Collector for SecureScore {
    fn name(&self) -> &'static str {
        "secure_score"
    }

    fn collect<'a>(
        &'a self,
        ctx: &'a TenantContext<'a>,
    ) -> BoxFuture<'a, Result<Findings, CollectError>> {
        Box::pin(async move {
            let tenant = &*ctx.tenant.tenant_id;
            // One page of one item: the newest score. Not paged on purpose.
            let page: Page = ctx
                .with_token(Api::Graph, |token| async move {
                    let url = join(&ctx.cloud.graph, "v1.0/security/secureScores?$top=1");
                    Ok(ctx
                        .api
                        .send_json(&Request::get("graph", tenant, url, &token))
                        .await?
                        .0)
                })
                .await?;
            let mut f = Findings::default();
            if let Some(s) = page.value.into_iter().next() {
                if let Some(c) = s.current {
                    f.push(&self.current, vec![tenant.to_string()], c);
                }
                if let Some(m) = s.max {
                    f.push(&self.max, vec![tenant.to_string()], m);
                }
            }
            Ok(f)
        })
    }
}
