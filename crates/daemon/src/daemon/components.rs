//! The long-lived parts every command builds the same way from [`Settings`]:
//! the metrics, the one HTTP client, and per partner the token endpoint
//! client, the broker with its store and the API client.

use std::sync::Arc;

use tokio_cron_scheduler::JobSchedulerError;

use crate::auth::entra::TokenClient;
use crate::auth::identity::IdentitySource;
use crate::config::{Settings, StoreSettings};
use crate::exposition::Publisher;
use crate::metrics::{Metrics, MetricsError};
use crate::store::keyvault::KeyVaultClient;
use crate::store::Store;
use crate::tokens::broker::TokenBroker;

/// The daemon could not start or a vital task failed.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Metrics registration failed.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// The HTTP client could not be built.
    #[error(transparent)]
    Http(#[from] crate::outbound::client::ClientError),
    /// The scheduler refused a job.
    #[error("scheduler: {0}")]
    Scheduler(#[from] JobSchedulerError),
    /// The HTTP server stopped with an error.
    #[error("HTTP server: {0}")]
    Server(#[source] std::io::Error),
}

/// The long-lived parts every command builds the same way from [`Settings`].
pub struct Components {
    /// Live metrics.
    pub metrics: Arc<Metrics>,
    /// The latest published snapshot and the `/metrics` body.
    pub publisher: Arc<Publisher>,
    /// Shared HTTP client.
    pub http: reqwest::Client,
    /// Token endpoint client.
    pub tokens: TokenClient,
    /// Refresh-token broker (owns the store).
    pub broker: Arc<TokenBroker>,
}

impl Components {
    /// Builds the metrics, the HTTP client, the store and the broker of the
    /// partner `settings` is for.
    pub fn build(settings: &Settings) -> Result<Self, DaemonError> {
        let (publisher, http) = Self::shared(settings)?;
        Self::for_partner(settings, publisher, http)
    }

    /// What every partner shares: the publisher with the metrics it
    /// exposes, and the one HTTP client.
    pub fn shared(settings: &Settings) -> Result<(Arc<Publisher>, reqwest::Client), DaemonError> {
        let http = crate::outbound::client::build_client(
            settings.ca_file.as_deref(),
            settings.collection.request_timeout,
        )?;
        Ok((Publisher::new(Metrics::new()?), http))
    }

    /// The store and broker of the partner `settings` is for, sharing the
    /// publisher (and its metrics) and the HTTP client with the other partners.
    pub fn for_partner(
        settings: &Settings,
        publisher: Arc<Publisher>,
        http: reqwest::Client,
    ) -> Result<Self, DaemonError> {
        let metrics = publisher.metrics().clone();
        let tokens = TokenClient::new(
            http.clone(),
            settings.cloud.login.clone(),
            metrics.clone(),
            &settings.partner_name,
        )
        .with_capabilities(settings.cloud.client_capabilities.clone());
        let store = Arc::new(match &settings.store {
            StoreSettings::KeyVault {
                url,
                secret_name,
                identity,
            } => Store::KeyVault {
                client: Box::new(KeyVaultClient::new(
                    http.clone(),
                    url.clone(),
                    IdentitySource::new(identity, &tokens, metrics.clone())
                        .map_err(crate::outbound::client::ClientError::Build)?,
                    &settings.cloud.audiences.keyvault,
                )),
                name: secret_name.clone(),
            },
            StoreSettings::File { path } => Store::File { path: path.clone() },
        });
        let broker = Arc::new(TokenBroker::new(
            tokens.clone(),
            settings.partner.clone(),
            settings.cloud.audiences.clone(),
            store,
            metrics.clone(),
        ));
        Ok(Self {
            publisher,
            metrics,
            http,
            tokens,
            broker,
        })
    }

    /// An API client for this partner's requests.
    pub fn api(&self, settings: &Settings) -> crate::outbound::request::ApiClient {
        crate::outbound::request::ApiClient::new(
            self.http.clone(),
            self.metrics.clone(),
            settings.collection.limits.clone(),
            self.broker.partner().clone(),
        )
    }
}
