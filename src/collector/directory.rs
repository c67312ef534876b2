//! `directory`: the tenant's organization object from Microsoft Graph, which proves
//! a delegated Graph token works there and names the tenant for `tenantwatch_tenant_info`.

use futures::future::BoxFuture;

use super::{CollectError, Collector, Findings, TenantContext};
use crate::cloud::Api;

/// Reads `GET /v1.0/organization`.
pub struct Directory;

impl Collector for Directory {
    fn name(&self) -> &'static str {
        "directory"
    }

    fn collect<'a>(
        &'a self,
        ctx: &'a TenantContext<'a>,
    ) -> BoxFuture<'a, Result<Findings, CollectError>> {
        Box::pin(async move {
            let org = ctx
                .with_token(Api::Graph, |token| async move {
                    crate::graph::organization(ctx.http, &ctx.cloud.graph, &token).await
                })
                .await?;
            Ok(match org {
                Some(o) => Findings {
                    domain: o.default_domain().map(str::to_string),
                    name: o.display_name,
                },
                // An empty collection is "no data", not a failure.
                None => Findings::default(),
            })
        })
    }
}
