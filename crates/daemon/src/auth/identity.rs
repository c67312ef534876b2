//! The service identity that reads Key Vault: an app registration (secret,
//! certificate, workload identity federation) or an Azure managed identity.
//!
//! Managed identity: <https://learn.microsoft.com/entra/identity/managed-identities-azure-resources/how-to-use-vm-token>
//! and <https://learn.microsoft.com/azure/app-service/overview-managed-identity#rest-endpoint-reference>.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Client;
use serde::Deserialize;

use crate::auth::classify::classify;
use crate::auth::entra::{AccessToken, TokenClient, TokenError};
use crate::config::{ManagedIdentityEndpoint, PartnerApp, ServiceIdentity};
use crate::metrics::Metrics;
use crate::model::ErrorClass;
use crate::outbound::client;
use crate::support::secret::{ExposeSecret, SecretString};

/// Where the service identity's tokens come from.
#[derive(Clone)]
pub enum IdentitySource {
    /// Client credentials at the token endpoint.
    App {
        /// Token endpoint client (with the identity's authority).
        tokens: TokenClient,
        /// The app.
        app: PartnerApp,
    },
    /// A managed identity endpoint.
    Managed {
        /// A client allowed to use plain HTTP and never a proxy: IMDS is link-local.
        http: Client,
        /// User-assigned identity, if any.
        client_id: Option<String>,
        /// IMDS or App Service.
        endpoint: ManagedIdentityEndpoint,
        /// Counts requests.
        metrics: Arc<Metrics>,
        /// The partner whose store this identity reads: the `partner` label.
        partner: Arc<str>,
    },
}

#[derive(Deserialize)]
struct MiBody {
    access_token: SecretString,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    expires_on: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
struct MiError {
    error: Option<String>,
    error_description: Option<String>,
}

fn as_u64(v: &serde_json::Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_str()?.trim().parse().ok())
}

impl IdentitySource {
    /// Builds the source for a configured identity.
    pub fn new(
        identity: &ServiceIdentity,
        tokens: &TokenClient,
        metrics: Arc<Metrics>,
    ) -> Result<Self, reqwest::Error> {
        Ok(match identity {
            ServiceIdentity::App { app, authority } => IdentitySource::App {
                tokens: match authority {
                    Some(a) => tokens.with_login(a.clone()),
                    None => tokens.clone(),
                },
                app: app.clone(),
            },
            ServiceIdentity::ManagedIdentity {
                client_id,
                endpoint,
            } => IdentitySource::Managed {
                http: Client::builder()
                    .no_proxy()
                    .connect_timeout(Duration::from_secs(5))
                    .timeout(Duration::from_secs(30))
                    .build()?,
                client_id: client_id.clone(),
                endpoint: endpoint.clone(),
                metrics,
                partner: Arc::from(tokens.partner()),
            },
        })
    }

    /// The tenant the identity signs in to, for error messages; managed
    /// identities do not say, so they are named as such.
    pub fn tenant(&self) -> &str {
        match self {
            IdentitySource::App { app, .. } => &app.tenant_id,
            IdentitySource::Managed { .. } => "managed-identity",
        }
    }

    /// A token for `audience` (e.g. `https://vault.azure.net`).
    pub async fn token(&self, audience: &str, label: &str) -> Result<AccessToken, TokenError> {
        match self {
            IdentitySource::App { tokens, app } => {
                let scope = format!("{}/.default", audience.trim_end_matches('/'));
                tokens.client_credentials(app, &scope, label).await
            }
            IdentitySource::Managed {
                http,
                client_id,
                endpoint,
                metrics,
                partner,
            } => {
                let result = managed(http, client_id.as_deref(), endpoint, audience).await;
                let outcome = match &result {
                    Ok(_) => "ok",
                    Err(e) => e.class.as_str(),
                };
                metrics
                    .token_requests
                    .with_label_values(&[partner, label, outcome])
                    .inc();
                result
            }
        }
    }
}

async fn managed(
    http: &Client,
    client_id: Option<&str>,
    endpoint: &ManagedIdentityEndpoint,
    audience: &str,
) -> Result<AccessToken, TokenError> {
    let (base, api_version) = match endpoint {
        ManagedIdentityEndpoint::Imds(u) => (u, "2018-02-01"),
        ManagedIdentityEndpoint::AppService { endpoint, .. } => (endpoint, "2019-08-01"),
    };
    let mut url = base.clone();
    url.query_pairs_mut()
        .append_pair("api-version", api_version)
        .append_pair("resource", audience);
    if let Some(c) = client_id {
        url.query_pairs_mut().append_pair("client_id", c);
    }
    let url_s = url.to_string();
    let mut req = http.get(url.as_str());
    req = match endpoint {
        ManagedIdentityEndpoint::Imds(_) => req.header("Metadata", "true"),
        ManagedIdentityEndpoint::AppService { header, .. } => {
            req.header("X-IDENTITY-HEADER", header.expose_secret())
        }
    };
    let fail = |status: Option<u16>, class, detail: String| TokenError {
        tenant: "managed-identity".into(),
        scope: audience.to_string(),
        url: url_s.clone(),
        status,
        error: None,
        codes: Vec::new(),
        class,
        retry_after: None,
        detail,
    };
    let started = Instant::now();
    let (status, headers, body) = client::send("managed_identity", "managed-identity", &url_s, req)
        .await
        .map_err(|e| fail(None, ErrorClass::Transient, e.to_string()))?;
    if !status.is_success() {
        let e: MiError = serde_json::from_slice(&body).unwrap_or_default();
        // IMDS answers 410 while the host updates and 429 when throttled: both pass.
        let class = if status.as_u16() == 410 {
            ErrorClass::Transient
        } else {
            classify(status.as_u16(), &[])
        };
        let mut err = fail(
            Some(status.as_u16()),
            class,
            crate::support::scrub::upstream(&format!(
                "{}: {}",
                e.error.unwrap_or_else(|| status.to_string()),
                e.error_description.unwrap_or_default()
            )),
        );
        err.retry_after = crate::support::retry::retry_after(&headers);
        return Err(err);
    }
    let b: MiBody = serde_json::from_slice(&body).map_err(|e| {
        fail(
            Some(status.as_u16()),
            ErrorClass::Other,
            format!("unexpected managed identity response: {e}"),
        )
    })?;
    let lifetime = b
        .expires_in
        .as_ref()
        .and_then(as_u64)
        .or_else(|| {
            let on = b.expires_on.as_ref().and_then(as_u64)?;
            let now = chrono::Utc::now().timestamp().max(0) as u64;
            Some(on.saturating_sub(now))
        })
        .unwrap_or(300);
    Ok(AccessToken {
        secret: b.access_token,
        expires_at: crate::auth::entra::expiry(started, lifetime),
    })
}
