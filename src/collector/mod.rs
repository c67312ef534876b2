//! Per-tenant collectors: one file each behind one small trait, registered in [`all`].

pub mod directory;

use futures::future::BoxFuture;
use reqwest::Client;

use crate::broker::{BrokerError, TokenBroker};
use crate::cloud::Cloud;
use crate::http::ApiError;

/// A tenant in scope, as discovery found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Directory (tenant) id.
    pub tenant_id: String,
    /// Name from discovery.
    pub name: String,
    /// Default domain from discovery.
    pub domain: String,
}

/// What a collector gets to work with for one tenant.
pub struct TenantContext<'a> {
    /// The tenant.
    pub tenant: &'a Tenant,
    /// Mints access tokens for it.
    pub broker: &'a TokenBroker,
    /// The shared HTTP client.
    pub http: &'a Client,
    /// Endpoints.
    pub cloud: &'a Cloud,
}

/// What collectors learnt about a tenant that outlives the run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Findings {
    /// Display name, if the collector reads it.
    pub name: Option<String>,
    /// Default domain, if the collector reads it.
    pub domain: Option<String>,
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

/// Runs `call` with a token for `api` in `tenant`; if the API answers 401 the
/// token is dropped from the cache and the call is made once more with a fresh one.
pub async fn with_token<T, F, Fut>(
    broker: &TokenBroker,
    tenant: &str,
    api: crate::cloud::Api,
    call: F,
) -> Result<T, CollectError>
where
    F: Fn(crate::secret::SecretString) -> Fut,
    Fut: std::future::Future<Output = Result<T, ApiError>>,
{
    let token = broker.token(tenant, api).await?;
    match call(token).await {
        Err(ApiError::Status { status: 401, .. }) => {
            broker.invalidate(tenant, api).await;
            let token = broker.token(tenant, api).await?;
            Ok(call(token).await?)
        }
        other => Ok(other?),
    }
}

impl TenantContext<'_> {
    /// [`with_token`] for this context's tenant.
    pub async fn with_token<T, F, Fut>(
        &self,
        api: crate::cloud::Api,
        call: F,
    ) -> Result<T, CollectError>
    where
        F: Fn(crate::secret::SecretString) -> Fut,
        Fut: std::future::Future<Output = Result<T, ApiError>>,
    {
        with_token(self.broker, &self.tenant.tenant_id, api, call).await
    }
}

/// One kind of data gathered from each tenant.
pub trait Collector: Send + Sync {
    /// Stable name, the `collector` label.
    fn name(&self) -> &'static str;
    /// Collects for one tenant.
    fn collect<'a>(
        &'a self,
        ctx: &'a TenantContext<'a>,
    ) -> BoxFuture<'a, Result<Findings, CollectError>>;
}

/// Every collector, in the order they run for a tenant.
pub fn all() -> Vec<Box<dyn Collector>> {
    vec![Box::new(directory::Directory)]
}
