//! Refresh-token rotation: redeem the stored token at the partner tenant, write the
//! new one as a new store version, read it back, and only then switch to it.
//!
//! Entra keeps the old refresh token valid after a redemption, so every failure
//! point leaves a working token in the store: before the write the old version is
//! the latest; after it the new one is, and Entra issued it. Several replicas
//! rotating at once each write a valid token; the last writer's becomes latest.

use std::sync::Arc;
use std::time::Duration;

use crate::broker::{BrokerError, TokenBroker, REFRESH_TOKEN_LIFETIME};
use crate::cloud::Api;
use crate::metrics::Metrics;
use crate::snapshot::unix_now;
use crate::store::{NewToken, Source, StoreError};

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
        match &result {
            Ok(Outcome::Rotated { .. }) => {
                self.metrics.rotations.with_label_values(&["success"]).inc()
            }
            Ok(Outcome::Skipped { .. }) => {}
            Err(_) => self.metrics.rotations.with_label_values(&["failure"]).inc(),
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
        self.metrics.refresh.update(|r| r.last_rotation = Some(now));
        tracing::info!(
            old_version = %current.version,
            new_version = %new_version,
            expires = %chrono::DateTime::from_timestamp(expires, 0).map(|t| t.to_rfc3339()).unwrap_or_default(),
            "refresh token rotated"
        );
        Ok(Outcome::Rotated {
            old_version: current.version,
            new_version,
            expires,
        })
    }
}

/// Retry delays after a failed scheduled rotation: 30 s doubling to 30 min, jittered.
pub fn retry_delay(failures: u32) -> Duration {
    use rand::Rng;
    let secs = (30u64 << failures.min(6).saturating_sub(1)).min(1800);
    Duration::from_secs(secs).mul_f64(rand::thread_rng().gen_range(0.8..1.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_grow_and_cap() {
        assert!(retry_delay(1) < Duration::from_secs(40));
        assert!(retry_delay(3) > Duration::from_secs(90));
        assert!(retry_delay(30) <= Duration::from_secs(2160));
    }
}
