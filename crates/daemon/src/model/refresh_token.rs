//! The partner's refresh token as the store holds it, and its lifetime.

use secrecy::SecretString;

/// Entra's refresh-token inactivity lifetime: 90 days.
pub const REFRESH_TOKEN_LIFETIME: std::time::Duration =
    std::time::Duration::from_secs(90 * 24 * 3600);

/// A refresh token read from the store.
#[derive(Debug, Clone)]
pub struct StoredToken {
    /// The refresh token.
    pub value: SecretString,
    /// Store-specific version id (Key Vault version, or the file's version field).
    pub version: String,
    /// When Entra issued this token, unix seconds, if recorded (else when it was written).
    pub issued_at: Option<i64>,
    /// When it expires if unused (issue + 90 days), if recorded.
    pub expires: Option<i64>,
    /// Who wrote it, if recorded.
    pub source: Option<String>,
    /// The store's clock when it was read (Key Vault's `Date`; local time for a
    /// file), the frame `issued_at` is measured in.
    pub server_time: Option<i64>,
}

impl StoredToken {
    /// Seconds left before the token dies unused: issue time + 90 days, measured
    /// in the clock frame of whoever stamped the issue time.
    pub fn remaining(&self, lifetime: std::time::Duration) -> Option<f64> {
        let issued = self.issued_at? as f64;
        let now = self
            .server_time
            .map(|t| t as f64)
            .unwrap_or_else(tenantwatch_common::time::unix_now);
        Some(issued + lifetime.as_secs_f64() - now)
    }

    /// The token's age in the same frame.
    pub fn age(&self) -> Option<f64> {
        let now = self
            .server_time
            .map(|t| t as f64)
            .unwrap_or_else(tenantwatch_common::time::unix_now);
        Some(now - self.issued_at? as f64)
    }
}
