//! `service_health`: Microsoft 365 service health as the tenant sees it.
//!
//! <https://learn.microsoft.com/graph/api/serviceannouncement-list-healthoverviews>

use std::sync::Arc;

use futures::future::BoxFuture;
use serde::Deserialize;

use super::{CollectError, Collector, Findings, TenantContext};
use crate::model::Api;
use crate::model::{Family, Signal};

/// Reads `GET /v1.0/admin/serviceAnnouncement/healthOverviews`.
pub struct ServiceHealth {
    status: Arc<Family>,
}

impl Default for ServiceHealth {
    fn default() -> Self {
        Self {
            status: Family::new(
                "tenantwatch_m365_service_status",
                "Microsoft 365 service health status (serviceOperational, serviceDegradation, …); always 1.",
                &["tenant_id", "service", "status"],
            ),
        }
    }
}

#[derive(Deserialize)]
struct Overview {
    #[serde(default)]
    service: String,
    #[serde(default)]
    status: String,
}

impl Collector for ServiceHealth {
    fn name(&self) -> &'static str {
        "service_health"
    }

    fn collect<'a>(
        &'a self,
        ctx: &'a TenantContext<'a>,
    ) -> BoxFuture<'a, Result<Findings, CollectError>> {
        Box::pin(async move {
            let tenant = &*ctx.tenant.tenant_id;
            let items: Vec<Overview> = ctx
                .list(Api::Graph, "v1.0/admin/serviceAnnouncement/healthOverviews")
                .await?;
            let mut f = Findings::default();
            for o in items {
                // Restored is over; the rest (degraded, interrupted,
                // investigating, recovering) is still affecting users.
                if !matches!(o.status.as_str(), "serviceOperational" | "serviceRestored") {
                    f.signals.push(Signal::Service {
                        service: o.service.clone(),
                        status: o.status.clone(),
                    });
                }
                f.push(
                    &self.status,
                    vec![tenant.to_string(), o.service, o.status],
                    1.0,
                );
            }
            Ok(f)
        })
    }
}
