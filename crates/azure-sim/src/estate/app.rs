//! The credentials registered on the simulated app registrations, as the
//! Graph application resource lists them (`passwordCredentials`,
//! `keyCredentials`; learn.microsoft.com/graph/api/resources/passwordcredential,
//! …/keycredential).
//!
//! Each SAM app has two client secrets — the one the simulator hands out,
//! and an older one that expires within 30 days, the case an expiry alert
//! exists for — and its certificate (the same one on every partner's SAM
//! app: one key pair may be registered on several apps).

use crate::world::{guid, stream};

const DAY: i64 = 86_400;

/// `notBefore`/`notAfter` of the simulator's certificates (certs.rs):
/// 2024-01-01 and 2034-01-01, 00:00 UTC.
const CERT_START: i64 = 1_704_067_200;
const CERT_END: i64 = 2_019_686_400;

/// Which list a credential is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CredentialKind {
    /// A client secret (`passwordCredentials`).
    Secret,
    /// A certificate (`keyCredentials`).
    Certificate,
}

impl CredentialKind {
    /// `secret` or `certificate`, the ground truth's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Secret => "secret",
            CredentialKind::Certificate => "certificate",
        }
    }
}

/// One credential of an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AppCredential {
    pub kind: CredentialKind,
    pub key_id: String,
    pub display_name: String,
    pub start: i64,
    pub end: i64,
    /// First three characters of a secret, as Graph shows them.
    pub hint: Option<String>,
    /// Upper-case hex SHA-1 thumbprint of a certificate
    /// (`customKeyIdentifier`).
    pub thumbprint: Option<String>,
}

fn hint(secret: &str) -> Option<String> {
    Some(secret.chars().take(3).collect())
}

fn certificate(seed: u64, app: &str, common_name: &str, thumbprint: &str) -> AppCredential {
    AppCredential {
        kind: CredentialKind::Certificate,
        key_id: guid(seed, &format!("app/{app}/key/1")),
        display_name: format!("CN={common_name}"),
        start: CERT_START,
        end: CERT_END,
        hint: None,
        thumbprint: Some(thumbprint.to_string()),
    }
}

/// A SAM app's two secrets and certificate, as of `start`. `app` names it
/// in the labels ids are drawn from: `sam` for partner 0's, `sam/{k}` for
/// partner k's.
pub(crate) fn sam_credentials(
    seed: u64,
    app: &str,
    secret: &str,
    thumbprint: &str,
    start: i64,
) -> Vec<AppCredential> {
    let h = stream(seed, &format!("app/{app}/credentials"));
    let soon = start + (5 + (h % 20) as i64) * DAY + (h >> 8) as i64 % DAY;
    vec![
        AppCredential {
            kind: CredentialKind::Secret,
            key_id: guid(seed, &format!("app/{app}/password/1")),
            display_name: "tenantwatch (previous)".into(),
            start: soon - 365 * DAY,
            end: soon,
            hint: Some(format!(
                "{}Q",
                &guid(seed, &format!("app/{app}/password/1/hint"))[..2]
            )),
            thumbprint: None,
        },
        AppCredential {
            kind: CredentialKind::Secret,
            key_id: guid(seed, &format!("app/{app}/password/2")),
            display_name: "tenantwatch".into(),
            start: start - 30 * DAY,
            end: start + 700 * DAY,
            hint: hint(secret),
            thumbprint: None,
        },
        certificate(seed, app, "tenantwatch SAM", thumbprint),
    ]
}

/// The service identity's secret and certificate.
pub(crate) fn identity_credentials(
    seed: u64,
    secret: &str,
    thumbprint: &str,
    start: i64,
) -> Vec<AppCredential> {
    vec![
        AppCredential {
            kind: CredentialKind::Secret,
            key_id: guid(seed, "app/identity/password/1"),
            display_name: "vault reader".into(),
            start: start - 90 * DAY,
            end: start + 640 * DAY,
            hint: hint(secret),
            thumbprint: None,
        },
        certificate(seed, "identity", "tenantwatch vault reader", thumbprint),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_secret_expires_within_30_days() {
        let start = 1_800_000_000;
        let c = sam_credentials(1, "sam", "abc8Q~rest", "ABCD", start);
        let secrets: Vec<_> = c
            .iter()
            .filter(|c| c.kind == CredentialKind::Secret)
            .collect();
        assert_eq!(secrets.len(), 2);
        assert_eq!(
            secrets.iter().filter(|c| c.end - start < 30 * DAY).count(),
            1
        );
        assert_eq!(secrets[1].hint.as_deref(), Some("abc"));
        let certs: Vec<_> = c
            .iter()
            .filter(|c| c.kind == CredentialKind::Certificate)
            .collect();
        assert_eq!(certs.len(), 1);
        assert_eq!(certs[0].end, CERT_END);
        assert_ne!(c[0].key_id, c[1].key_id);
    }

    #[test]
    fn certificate_dates_match_the_issued_certificates() {
        assert_eq!(
            tenantwatch_common::time::rfc3339(CERT_START),
            "2024-01-01T00:00:00Z"
        );
        assert_eq!(
            tenantwatch_common::time::rfc3339(CERT_END),
            "2034-01-01T00:00:00Z"
        );
    }
}
