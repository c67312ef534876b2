//! `app_credentials`: expiry of the SAM app's own secrets and certificates, read in
//! the partner tenant. An expired partner app secret breaks every customer at once.
//!
//! <https://learn.microsoft.com/graph/api/application-list> (`passwordCredentials`, `keyCredentials`).

use std::sync::Arc;

use futures::future::BoxFuture;
use serde::Deserialize;

use super::{parse_time, CollectError, Collector, Findings, Scope, TenantContext};
use crate::model::Api;
use crate::model::{Family, Signal};

/// Reads the partner application's credentials.
pub struct AppCredentials {
    expiry: Arc<Family>,
}

impl Default for AppCredentials {
    fn default() -> Self {
        Self {
            expiry: Family::new(
                "tenantwatch_app_credential_expiry_timestamp_seconds",
                "When a credential (client secret or certificate) of the partner SAM app expires.",
                &["app_id", "key_id", "kind"],
            ),
        }
    }
}

#[derive(Deserialize)]
struct Application {
    #[serde(rename = "appId", default)]
    app_id: String,
    #[serde(rename = "passwordCredentials", default)]
    passwords: Vec<Credential>,
    #[serde(rename = "keyCredentials", default)]
    keys: Vec<Credential>,
}

#[derive(Deserialize)]
struct Credential {
    #[serde(rename = "keyId", default)]
    key_id: String,
    #[serde(rename = "endDateTime")]
    end: Option<String>,
}

impl Collector for AppCredentials {
    fn name(&self) -> &'static str {
        "app_credentials"
    }

    fn scope(&self) -> Scope {
        Scope::Partner
    }

    fn collect<'a>(
        &'a self,
        ctx: &'a TenantContext<'a>,
    ) -> BoxFuture<'a, Result<Findings, CollectError>> {
        Box::pin(async move {
            let client_id = ctx.partner_client_id;
            let apps: Vec<Application> = ctx.list(Api::Graph, &format!(
                        "v1.0/applications?$filter=appId%20eq%20'{client_id}'&$select=appId,passwordCredentials,keyCredentials"
                    )).await?;
            let mut f = Findings::default();
            for app in apps {
                for (kind, creds) in [("secret", &app.passwords), ("certificate", &app.keys)] {
                    for c in creds {
                        if let Some(ts) = c.end.as_deref().and_then(parse_time) {
                            f.signals.push(Signal::CredentialExpiry {
                                app_id: app.app_id.clone(),
                                key_id: c.key_id.clone(),
                                kind,
                                end: ts,
                            });
                            f.push(
                                &self.expiry,
                                vec![app.app_id.clone(), c.key_id.clone(), kind.to_string()],
                                ts,
                            );
                        }
                    }
                }
            }
            Ok(f)
        })
    }
}
