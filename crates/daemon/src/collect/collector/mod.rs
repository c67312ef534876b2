//! Per-tenant collectors: one file each behind one small trait ([`Collector`]),
//! registered in [`builtin`]; what each gets to work with ([`TenantContext`])
//! and the one place a 401 turns into a fresh token ([`with_token`]).

pub mod app_credentials;
pub mod arm_subscriptions;
pub mod cost;
pub mod directory;
pub mod licenses;
pub mod m365_subscriptions;
pub mod partner_subscriptions;
pub mod resource_graph;
pub mod secure_score;
pub mod service_health;

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::model::{Family, Sample, Signal, Tenant};

use crate::config::cloud::Cloud;
use crate::outbound::client::ApiError;
use crate::outbound::request::ApiClient;
use crate::tokens::broker::{BrokerError, TokenBroker};

/// What a collector gets to work with for one tenant.
pub struct TenantContext<'a> {
    /// The tenant.
    pub tenant: &'a Tenant,
    /// Mints access tokens for it.
    pub broker: &'a TokenBroker,
    /// Sends requests with limits, retries and metrics.
    pub api: &'a ApiClient,
    /// Endpoints.
    pub cloud: &'a Cloud,
    /// The partner app's client id (for collectors about the SAM setup itself).
    pub partner_client_id: &'a str,
    /// The partner's own tenant (for collectors that ask Partner Center about a customer).
    pub partner_tenant: &'a str,
    /// The tenant's Azure subscriptions (not deleted) as `arm_subscriptions`
    /// last listed them, for collectors that ask
    /// ([`Collector::uses_subscriptions`]); `None` when it has not listed them
    /// (disabled, not run yet, or failed for this tenant).
    pub subscriptions: Option<&'a [String]>,
}

/// What a collector learnt about a tenant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Findings {
    /// Display name, if the collector reads it.
    pub name: Option<String>,
    /// Default domain, if the collector reads it.
    pub domain: Option<String>,
    /// Gauge samples. "No data" is an empty list, not an error.
    pub samples: Vec<Sample>,
    /// What may need a person (the status page's board and timeline); the
    /// engine scrubs their text.
    pub signals: Vec<Signal>,
}

impl Findings {
    /// Adds a sample.
    pub fn push(&mut self, family: &Arc<Family>, labels: Vec<String>, value: f64) {
        self.samples.push(Sample {
            family: family.clone(),
            labels,
            value,
        });
    }
}

/// Whom a collector runs for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every customer tenant.
    Customers,
    /// Only the partner's own tenant (the SAM setup itself).
    Partner,
    /// The customers Partner Center lists, asked about with the partner's
    /// token; not part of a tenant's `up`, since it is the partner's access.
    PartnerCenterCustomers,
}

/// A collector failed for one tenant.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// No token for the API.
    #[error(transparent)]
    Token(#[from] BrokerError),
    /// The API call failed.
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl CollectError {
    /// The error class: the token's, or the API answer's
    /// ([`crate::auth::classify::classify_api`]); `token_mfa` is what the
    /// partner's token says about MFA, when known.
    pub fn class(&self, token_mfa: Option<bool>) -> crate::model::ErrorClass {
        match self {
            CollectError::Token(b) => b.class(),
            CollectError::Api(e) => crate::auth::classify::classify_api(e, token_mfa),
        }
    }
}

/// Runs `call` with a token for `api` in `tenant`; if the API answers 401 the
/// token is dropped from the cache and the call is made once more with a fresh
/// one — except for Partner Center's MFA refusal while the refresh token in
/// use is not known to carry MFA: a fresh token from the same sign-in would
/// meet it again. (Once a consent with MFA is in use, a refused token is a
/// cached one from before it, and is replaced.)
///
/// A claims challenge (CAE: the token was revoked before it expired) drops
/// the token and redeems the refresh token once more with the challenge's
/// claims, then retries once; whatever the retry answers is the result, so
/// it never loops. If Entra refuses that redemption (MFA, Conditional Access,
/// revoked session), its error class is the tenant's token error.
/// <https://learn.microsoft.com/entra/identity-platform/claims-challenge>
pub async fn with_token<T, F, Fut>(
    broker: &TokenBroker,
    tenant: &str,
    api: crate::model::Api,
    call: F,
) -> Result<T, CollectError>
where
    F: Fn(crate::support::secret::SecretString) -> Fut,
    Fut: std::future::Future<Output = Result<T, ApiError>>,
{
    let token = broker.token(tenant, api).await?;
    // Kept to tell the broker which token a challenge refused.
    let used = token.clone();
    match call(token).await {
        Err(e)
            if broker.partner_mfa() != Some(true)
                && crate::auth::classify::is_mfa_rejection(&e, broker.partner_mfa()) =>
        {
            Err(e.into())
        }
        Err(ApiError::ClaimsChallenge {
            api: label, claims, ..
        }) => {
            let count = |result: &str| {
                broker
                    .metrics()
                    .claims_challenges
                    .with_label_values(&[label, result])
                    .inc()
            };
            let token = match broker
                .token_for_challenge(tenant, api, &claims, &used)
                .await
            {
                Ok(t) => t,
                Err(e) => {
                    count(e.class().as_str());
                    return Err(e.into());
                }
            };
            let r = call(token).await;
            count(match &r {
                Ok(_) => "ok",
                Err(ApiError::ClaimsChallenge { .. }) => "challenged_again",
                Err(_) => "failed",
            });
            Ok(r?)
        }
        Err(ApiError::Status { status: 401, .. }) => {
            broker.invalidate(tenant, api).await;
            let token = broker.token(tenant, api).await?;
            Ok(call(token).await?)
        }
        other => Ok(other?),
    }
}

impl TenantContext<'_> {
    /// Every item of a paged list (`value` + `nextLink`/`@odata.nextLink`) from
    /// `api` (Graph or ARM) at `path` under its base URL, for this tenant.
    pub async fn list<T: serde::de::DeserializeOwned>(
        &self,
        api: crate::model::Api,
        path: &str,
    ) -> Result<Vec<T>, CollectError> {
        let (base, label) = match api {
            crate::model::Api::Arm => (&self.cloud.arm, "arm"),
            _ => (&self.cloud.graph, "graph"),
        };
        let url = crate::outbound::url::join(base, path);
        let tenant = &*self.tenant.tenant_id;
        self.with_token(api, |token| {
            let url = url.clone();
            async move {
                self.api
                    .get_all(crate::outbound::request::Request::get(
                        label, tenant, url, &token,
                    ))
                    .await
            }
        })
        .await
    }

    /// POSTs `body` to `url` with a token for `api` in this tenant, as a
    /// request of API label `label` (its metrics and pacing budget), and
    /// decodes the answer.
    pub async fn post_json<T: serde::de::DeserializeOwned>(
        &self,
        api: crate::model::Api,
        label: &'static str,
        url: &str,
        body: &serde_json::Value,
    ) -> Result<T, CollectError> {
        let tenant = &*self.tenant.tenant_id;
        self.with_token(api, |token| async move {
            let req = crate::outbound::request::Request {
                api: label,
                tenant,
                method: reqwest::Method::POST,
                url: url.to_string(),
                bearer: &token,
                headers: Vec::new(),
                body: Some(body.clone()),
            };
            Ok(self.api.send_json(&req).await?.0)
        })
        .await
    }

    /// [`with_token`] for this context's tenant.
    pub async fn with_token<T, F, Fut>(
        &self,
        api: crate::model::Api,
        call: F,
    ) -> Result<T, CollectError>
    where
        F: Fn(crate::support::secret::SecretString) -> Fut,
        Fut: std::future::Future<Output = Result<T, ApiError>>,
    {
        with_token(self.broker, &self.tenant.tenant_id, api, call).await
    }
}

/// One kind of data gathered from each tenant.
pub trait Collector: Send + Sync {
    /// Stable name, the `collector` label and the `[collectors.NAME]` config section.
    fn name(&self) -> &'static str;
    /// Whom it runs for.
    fn scope(&self) -> Scope {
        Scope::Customers
    }
    /// The custom queries it was built with (a reload that changes them
    /// rebuilds it); none for most.
    fn custom_queries(&self) -> &[crate::config::CustomQuery] {
        &[]
    }
    /// Whether it is given the subscriptions `arm_subscriptions` found
    /// ([`TenantContext::subscriptions`]), so it need not list them again.
    fn uses_subscriptions(&self) -> bool {
        false
    }
    /// Collects for one tenant.
    fn collect<'a>(
        &'a self,
        ctx: &'a TenantContext<'a>,
    ) -> BoxFuture<'a, Result<Findings, CollectError>>;
}

/// Every built-in collector. Custom Resource Graph queries come from config.
pub fn builtin(custom_queries: Vec<crate::config::CustomQuery>) -> Vec<Arc<dyn Collector>> {
    vec![
        Arc::new(directory::Directory::default()),
        Arc::new(arm_subscriptions::ArmSubscriptions::default()),
        Arc::new(resource_graph::ResourceGraph::new(custom_queries)),
        Arc::new(licenses::Licenses::default()),
        Arc::new(m365_subscriptions::M365Subscriptions::default()),
        Arc::new(partner_subscriptions::PartnerSubscriptions::default()),
        Arc::new(service_health::ServiceHealth::default()),
        Arc::new(secure_score::SecureScore::default()),
        Arc::new(app_credentials::AppCredentials::default()),
        Arc::new(cost::Cost::default()),
    ]
}

/// `2024-01-02T03:04:05Z` → unix seconds.
pub fn parse_time(s: &str) -> Option<f64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis() as f64 / 1000.0)
}
