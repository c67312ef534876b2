//! Refresh-token rotation: redeem the stored token at the partner tenant, write the
//! new one as a new store version, read it back, and only then switch to it.
//! [`Rotator::scheduled`] is one scheduled run, retried with the shared
//! backoff while the failure may pass; `daemon` puts it on its cron schedule.
//!
//! Entra keeps the old refresh token valid after a redemption, so every failure
//! point leaves a working token in the store: before the write the old version is
//! the latest; after it the new one is, and Entra issued it. Several replicas
//! rotating at once each write a valid token; the last writer's becomes latest.

use std::sync::Arc;
use std::time::Duration;

use tenantwatch_common::time::{rfc3339, unix_now};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::model::{Api, REFRESH_TOKEN_LIFETIME};
use crate::store::{NewToken, Source, StoreError};
use crate::support::retry::Backoff;
use crate::tokens::broker::{BrokerError, TokenBroker};

/// Waits between retries of a failed scheduled rotation: up to 30 s at
/// first, doubling to at most 30 minutes. Entra keeps the old token valid,
/// so there is no hurry, and a Key Vault outage is not helped by hammering.
pub const RETRY: Backoff = Backoff::new(Duration::from_secs(30), Duration::from_secs(1800));

/// What a rotation attempt did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The stored version is younger than `rotate_after`.
    Skipped {
        /// The stored version.
        version: String,
        /// Its age.
        age: Duration,
    },
    /// A new version was written, read back and put in use.
    Rotated {
        /// The version replaced.
        old_version: String,
        /// The version written.
        new_version: String,
        /// Unix time the new token expires if unused.
        expires: i64,
    },
}

/// A rotation failed; the previous token stays in use and in the store.
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    /// The store could not be read.
    #[error("cannot read the current refresh token: {0}")]
    Read(#[source] StoreError),
    /// Entra refused the stored refresh token.
    #[error("redeeming the refresh token failed: {0}")]
    Redeem(#[from] BrokerError),
    /// Entra answered without a new refresh token (the app lacks `offline_access`).
    #[error(
        "Entra ID returned no refresh token; does the app have the offline_access permission?"
    )]
    NoRefreshToken,
    /// Writing or reading back the new version failed.
    #[error("storing the new refresh token failed (the previous one stays in use): {0}")]
    Write(#[source] StoreError),
}

/// Rotates the partner refresh token held by a [`TokenBroker`].
pub struct Rotator {
    /// The broker holding the token in use.
    pub broker: Arc<TokenBroker>,
    /// Metrics to update.
    pub metrics: Arc<Metrics>,
    /// A stored version younger than this is left alone.
    pub rotate_after: Duration,
    /// Recorded in the store's `source` tag.
    pub source: Source,
}

impl Rotator {
    /// One rotation attempt; `force` ignores `rotate_after`. Counts the attempt.
    pub async fn rotate(&self, force: bool) -> Result<Outcome, RotationError> {
        let result = self.rotate_inner(force).await;
        let partner = self.broker.partner();
        match &result {
            Ok(Outcome::Rotated { .. }) => self
                .metrics
                .rotations
                .with_label_values(&[&partner.name, "success"])
                .inc(),
            Ok(Outcome::Skipped { .. }) => {}
            Err(_) => {
                self.metrics
                    .rotations
                    .with_label_values(&[&partner.name, "failure"])
                    .inc();
                let now = tenantwatch_common::time::unix_now();
                partner
                    .refresh
                    .update(|r| r.last_rotation_failure = Some(now));
            }
        }
        result
    }

    async fn rotate_inner(&self, force: bool) -> Result<Outcome, RotationError> {
        // Always start from the store: another replica may have rotated already.
        if let Err(e) = self.broker.load_from_store().await {
            return Err(RotationError::Read(e));
        }
        let current = self
            .broker
            .current_token()
            .ok_or(RotationError::Redeem(BrokerError::NoRefreshToken))?;
        let now = unix_now();
        // The age in the store's clock frame, as the issue time was stamped by
        // Entra: against the local clock, a store clock ahead of it (skew, or the
        // simulator's moved clock) made every version look new and rotation
        // never ran. An untagged version counts as old.
        let age = Duration::from_secs_f64(
            current
                .age()
                .unwrap_or(f64::from(u32::MAX))
                .clamp(0.0, f64::from(u32::MAX)),
        );
        if !force && age < self.rotate_after {
            return Ok(Outcome::Skipped {
                version: current.version,
                age,
            });
        }
        let partner = self.broker.app().tenant_id.clone();
        let redeemed = self.broker.redeem(&partner, Api::PartnerCenter).await?;
        let new = redeemed
            .refresh_token
            .ok_or(RotationError::NoRefreshToken)?;
        // Entra's clock stamps the issue time: the sliding 90 days run on it.
        let issued_at = redeemed.server_time.unwrap_or(now as i64);
        let expires = issued_at + REFRESH_TOKEN_LIFETIME.as_secs() as i64;
        let saved = self
            .broker
            .store()
            .save(&NewToken {
                value: &new,
                issued_at,
                expires,
                source: self.source,
            })
            .await
            .map_err(RotationError::Write)?;
        let new_version = saved.version.clone();
        self.broker.install(saved);
        // Entra issued this token seconds ago in a redemption that succeeded:
        // unlike a value found in the store, it is known to be accepted.
        self.broker.partner().refresh.update(|r| {
            r.last_rotation = Some(now);
            r.valid = Some(true);
        });
        tracing::info!(partner = &*self.broker.partner().name,
            old_version = %current.version,
            new_version = %new_version,
            expires = %rfc3339(expires),
            "refresh token rotated"
        );
        Ok(Outcome::Rotated {
            old_version: current.version,
            new_version,
            expires,
        })
    }

    /// One scheduled rotation: retried with [`RETRY`] while the failure may
    /// pass, given up (until the next schedule) when it will not, and cut
    /// short by `shutdown`.
    pub async fn scheduled(&self, shutdown: &CancellationToken) {
        let mut failures = 0;
        loop {
            match self.rotate(false).await {
                Ok(Outcome::Skipped { version, age }) => {
                    tracing::info!(partner = &*self.broker.partner().name, %version, age_days = age.as_secs() / 86400, "stored refresh token is recent; rotation not needed yet");
                    return;
                }
                Ok(Outcome::Rotated { .. }) => return,
                Err(e) => {
                    failures += 1;
                    let permanent = matches!(
                        &e,
                        RotationError::Redeem(
                            BrokerError::PartnerDown(_) | BrokerError::NoRefreshToken
                        )
                    ) || matches!(&e, RotationError::Redeem(BrokerError::Token(t)) if !t.class.is_transient());
                    if permanent {
                        tracing::error!(partner = &*self.broker.partner().name, error = %e, "refresh token rotation failed and will not be retried before the next schedule");
                        return;
                    }
                    let wait = RETRY.delay(failures, None);
                    tracing::error!(partner = &*self.broker.partner().name, error = %e, retry_in_secs = wait.as_secs(), "refresh token rotation failed; the previous token stays in use");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }
}
