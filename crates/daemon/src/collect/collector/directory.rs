//! `directory`: the tenant's organization object and user count from Microsoft Graph.
//! It proves a delegated Graph token works there and names the tenant for
//! `tenantwatch_tenant_info`.
//!
//! <https://learn.microsoft.com/graph/api/organization-get>,
//! <https://learn.microsoft.com/graph/aad-advanced-queries> (`$count` needs `ConsistencyLevel: eventual`).

use std::sync::Arc;

use futures::future::BoxFuture;

use super::{parse_time, CollectError, Collector, Findings, TenantContext};
use crate::model::Api;
use crate::model::Family;
use crate::outbound::graph::Organization;
use crate::outbound::request::Request;
use crate::outbound::url::join;

/// Reads `/v1.0/organization` and `/v1.0/users/$count`.
pub struct Directory {
    sync: Arc<Family>,
    users: Arc<Family>,
}

impl Default for Directory {
    fn default() -> Self {
        Self {
            sync: Family::new(
                "tenantwatch_entra_directory_sync_last_timestamp_seconds",
                "Last Entra Connect directory sync; absent when the tenant does not sync.",
                &["tenant_id"],
            ),
            users: Family::new(
                "tenantwatch_entra_users",
                "Users in the tenant's directory.",
                &["tenant_id"],
            ),
        }
    }
}

impl Collector for Directory {
    fn name(&self) -> &'static str {
        "directory"
    }

    fn collect<'a>(
        &'a self,
        ctx: &'a TenantContext<'a>,
    ) -> BoxFuture<'a, Result<Findings, CollectError>> {
        Box::pin(async move {
            let tenant = &*ctx.tenant.tenant_id;
            let orgs: Vec<Organization> = ctx.list(Api::Graph, "v1.0/organization").await?;
            let users: u64 = ctx
                .with_token(Api::Graph, |token| async move {
                    let url = join(&ctx.cloud.graph, "v1.0/users/$count");
                    let req = Request::get("graph", tenant, url, &token)
                        .header("ConsistencyLevel", "eventual");
                    Ok(ctx.api.send_json::<u64>(&req).await?.0)
                })
                .await?;
            let mut f = Findings::default();
            // An empty collection is "no data", not a failure.
            if let Some(o) = orgs.into_iter().next() {
                f.domain = o.default_domain().map(str::to_string);
                if let Some(ts) = o.on_premises_last_sync.as_deref().and_then(parse_time) {
                    f.push(&self.sync, vec![tenant.to_string()], ts);
                }
                f.name = o.display_name;
            }
            f.push(&self.users, vec![tenant.to_string()], users as f64);
            Ok(f)
        })
    }
}
