//! `arm_subscriptions`: the customer's Azure subscriptions and their state.
//!
//! <https://learn.microsoft.com/rest/api/resources/subscriptions/list> (api-version 2022-12-01).

use std::sync::Arc;

use futures::future::BoxFuture;
use serde::Deserialize;

use super::{CollectError, Collector, Findings, TenantContext};
use crate::model::Api;
use crate::model::{Family, Signal};

/// ARM api-version for the subscriptions list.
pub const API_VERSION: &str = "2022-12-01";

/// The info family's name; `cost` reads the subscriptions back from it.
pub const INFO: &str = "tenantwatch_azure_subscription_info";

/// Lists `GET /subscriptions`, following `nextLink`.
pub struct ArmSubscriptions {
    info: Arc<Family>,
}

impl Default for ArmSubscriptions {
    fn default() -> Self {
        Self {
            info: Family::new(
                INFO,
                "Azure subscriptions of the tenant with their state (Enabled, Warned, PastDue, Disabled, Deleted); always 1.",
                &["tenant_id", "subscription_id", "name", "state"],
            ),
        }
    }
}

#[derive(Deserialize)]
struct Subscription {
    #[serde(rename = "subscriptionId")]
    subscription_id: String,
    #[serde(rename = "displayName", default)]
    display_name: String,
    #[serde(default)]
    state: String,
}

impl Collector for ArmSubscriptions {
    fn name(&self) -> &'static str {
        "arm_subscriptions"
    }

    fn collect<'a>(
        &'a self,
        ctx: &'a TenantContext<'a>,
    ) -> BoxFuture<'a, Result<Findings, CollectError>> {
        Box::pin(async move {
            let tenant = &*ctx.tenant.tenant_id;
            let subs: Vec<Subscription> = ctx
                .list(
                    Api::Arm,
                    &format!("subscriptions?api-version={API_VERSION}"),
                )
                .await?;
            let mut f = Findings::default();
            for s in subs {
                // Disabled, PastDue and Warned need someone to look at
                // billing; Deleted was someone's decision.
                if !matches!(s.state.as_str(), "Enabled" | "Deleted") {
                    f.signals.push(Signal::Subscription {
                        id: s.subscription_id.clone(),
                        name: s.display_name.clone(),
                        state: s.state.clone(),
                    });
                }
                f.push(
                    &self.info,
                    vec![
                        tenant.to_string(),
                        s.subscription_id,
                        s.display_name,
                        s.state,
                    ],
                    1.0,
                );
            }
            Ok(f)
        })
    }
}
