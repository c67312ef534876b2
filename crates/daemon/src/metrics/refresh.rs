//! What is known about the refresh token, for its gauges and the status page.

use tenantwatch_common::sync::lock;

/// What is known about the refresh token; `None` fields are not exported.
#[derive(Debug, Clone, Default)]
pub struct RefreshState {
    /// When it expires if unused: last successful redemption + 90 days.
    pub expiry: Option<f64>,
    /// Last successful rotation.
    pub last_rotation: Option<f64>,
    /// Whether Entra accepted it at the last attempt.
    pub valid: Option<bool>,
    /// When the stored version was issued.
    pub created: Option<f64>,
    /// Whether the store could be read at the last attempt.
    pub store_up: Option<bool>,
    /// Last failed rotation attempt; after `last_rotation` means rotation
    /// is failing now (the status page says so; alerts use the counter).
    pub last_rotation_failure: Option<f64>,
    /// Whether the partner's access token minted from the refresh token in use
    /// says the sign-in used MFA (`amr` contains `mfa`); `None` until one was
    /// minted, or when it could not be read.
    pub mfa: Option<bool>,
}

/// A `std` mutex around [`RefreshState`]: updates and scrapes hold it for a copy.
#[derive(Default)]
pub struct RefreshGauges(std::sync::Mutex<RefreshState>);

impl RefreshGauges {
    /// Applies a change.
    pub fn update(&self, f: impl FnOnce(&mut RefreshState)) {
        f(&mut lock(&self.0));
    }

    /// A copy of the current state.
    pub fn get(&self) -> RefreshState {
        lock(&self.0).clone()
    }
}
