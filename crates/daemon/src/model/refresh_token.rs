//! The partner's refresh token as the store holds it, and its lifetime.

use secrecy::SecretString;

/// The largest refresh token believed. Entra's are a few kilobytes; a larger
/// value in the store is not one, and would be posted to Entra for every tenant.
pub const MAX_REFRESH_TOKEN_BYTES: usize = 16 * 1024;

/// Why a value cannot be a refresh token, or `Ok` when it may be one: not
/// empty, at most [`MAX_REFRESH_TOKEN_BYTES`], and only printable ASCII
/// without spaces (Entra's tokens are base64url with `.`, `-`, `_`, `*`, `!`).
/// Whether Entra accepts it is only known by asking.
pub fn check_refresh_token(value: &str) -> Result<(), &'static str> {
    if value.trim().is_empty() {
        Err("it is empty")
    } else if value.len() > MAX_REFRESH_TOKEN_BYTES {
        Err("it is larger than 16 KiB")
    } else if !value.bytes().all(|b| b.is_ascii_graphic()) {
        Err("it holds spaces, control characters or non-ASCII text")
    } else {
        Ok(())
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plausible_tokens_pass() {
        assert!(check_refresh_token("0.ARoAv4j5cvGGr0GRqy180BHbR-*7g!Lk9z_Q.xY").is_ok());
        assert_eq!(check_refresh_token(""), Err("it is empty"));
        assert_eq!(check_refresh_token("  \n"), Err("it is empty"));
        assert!(check_refresh_token(&"a".repeat(16 * 1024)).is_ok());
        assert_eq!(
            check_refresh_token(&"a".repeat(16 * 1024 + 1)),
            Err("it is larger than 16 KiB")
        );
        for bad in ["tok en", "tok\nen", "tok\u{1b}en", "tökén"] {
            assert!(check_refresh_token(bad).is_err(), "{bad:?}");
        }
    }
}
