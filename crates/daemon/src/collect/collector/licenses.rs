//! `licenses`: Microsoft 365 licence counts per SKU.
//!
//! <https://learn.microsoft.com/graph/api/subscribedsku-list>

use std::sync::Arc;

use futures::future::BoxFuture;
use serde::Deserialize;

use super::{CollectError, Collector, Findings, TenantContext};
use crate::model::Api;
use crate::model::{Family, Signal};

/// Reads `GET /v1.0/subscribedSkus`.
pub struct Licenses {
    enabled: Arc<Family>,
    consumed: Arc<Family>,
    suspended: Arc<Family>,
    warning: Arc<Family>,
}

impl Default for Licenses {
    fn default() -> Self {
        let f = |name: &str, help: &str| Family::new(name, help, &["tenant_id", "sku"]);
        Self {
            enabled: f(
                "tenantwatch_m365_license_enabled_units",
                "Licences purchased and active (prepaidUnits.enabled).",
            ),
            consumed: f(
                "tenantwatch_m365_license_consumed_units",
                "Licences assigned to users (consumedUnits).",
            ),
            suspended: f(
                "tenantwatch_m365_license_suspended_units",
                "Licences suspended (prepaidUnits.suspended).",
            ),
            warning: f(
                "tenantwatch_m365_license_warning_units",
                "Licences in the warning state before suspension (prepaidUnits.warning).",
            ),
        }
    }
}

#[derive(Deserialize)]
struct Sku {
    #[serde(rename = "skuPartNumber", default)]
    sku_part_number: String,
    #[serde(rename = "skuId", default)]
    sku_id: String,
    #[serde(rename = "consumedUnits", default)]
    consumed_units: f64,
    #[serde(rename = "prepaidUnits", default)]
    prepaid: Prepaid,
}

#[derive(Deserialize, Default)]
struct Prepaid {
    #[serde(default)]
    enabled: f64,
    #[serde(default)]
    suspended: f64,
    #[serde(default)]
    warning: f64,
}

impl Collector for Licenses {
    fn name(&self) -> &'static str {
        "licenses"
    }

    fn collect<'a>(
        &'a self,
        ctx: &'a TenantContext<'a>,
    ) -> BoxFuture<'a, Result<Findings, CollectError>> {
        Box::pin(async move {
            let tenant = &*ctx.tenant.tenant_id;
            let skus: Vec<Sku> = ctx.list(Api::Graph, "v1.0/subscribedSkus").await?;
            let mut f = Findings::default();
            for s in skus {
                let sku = if s.sku_part_number.is_empty() {
                    s.sku_id
                } else {
                    s.sku_part_number
                };
                let l = || vec![tenant.to_string(), sku.clone()];
                f.push(&self.enabled, l(), s.prepaid.enabled);
                f.push(&self.consumed, l(), s.consumed_units);
                f.push(&self.suspended, l(), s.prepaid.suspended);
                f.push(&self.warning, l(), s.prepaid.warning);
                // No seat left for the next user; a SKU with none bought
                // and none assigned is not one anybody uses.
                if s.consumed_units >= s.prepaid.enabled && s.consumed_units > 0.0 {
                    f.signals.push(Signal::LicencesExhausted {
                        sku: sku.clone(),
                        consumed: s.consumed_units,
                        enabled: s.prepaid.enabled,
                    });
                }
            }
            Ok(f)
        })
    }
}
