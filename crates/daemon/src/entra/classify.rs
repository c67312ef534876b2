//! Error classes from AADSTS codes: the `reason`/`result` label values of DESIGN.md §3.
//!
//! Classes come from `error_codes`, never from `error_description` text, which
//! Microsoft rewords. Codes: <https://learn.microsoft.com/entra/identity-platform/reference-error-codes>.

/// What went wrong minting a token, at the granularity an operator acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorClass {
    /// The refresh token aged out (90 days unused, or max lifetime): run `tenantwatch consent`.
    RefreshTokenExpired,
    /// The grant was revoked (password reset, admin revoke): run `tenantwatch consent`.
    RefreshTokenRevoked,
    /// The app is not consented in that tenant.
    ConsentRequired,
    /// MFA or another interactive step is required.
    MfaRequired,
    /// A Conditional Access policy blocked the sign-in (AADSTS53003).
    ConditionalAccess,
    /// The app does not exist in that tenant.
    AppNotInTenant,
    /// The tenant does not exist (or is in another cloud).
    TenantNotFound,
    /// Client authentication failed (wrong secret, unknown app).
    InvalidClient,
    /// The client secret expired.
    ClientSecretExpired,
    /// HTTP 429 or AADSTS50196 (loop detected).
    Throttled,
    /// 5xx, timeouts, connection failures.
    Transient,
    /// Anything else.
    Other,
}

impl ErrorClass {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::RefreshTokenExpired => "refresh_token_expired",
            ErrorClass::RefreshTokenRevoked => "refresh_token_revoked",
            ErrorClass::ConsentRequired => "consent_required",
            ErrorClass::MfaRequired => "mfa_required",
            ErrorClass::ConditionalAccess => "conditional_access",
            ErrorClass::AppNotInTenant => "app_not_in_tenant",
            ErrorClass::TenantNotFound => "tenant_not_found",
            ErrorClass::InvalidClient => "invalid_client",
            ErrorClass::ClientSecretExpired => "client_secret_expired",
            ErrorClass::Throttled => "throttled",
            ErrorClass::Transient => "transient",
            ErrorClass::Other => "other",
        }
    }

    /// Every class, for tests and for documentation tables.
    pub const ALL: [ErrorClass; 12] = [
        ErrorClass::RefreshTokenExpired,
        ErrorClass::RefreshTokenRevoked,
        ErrorClass::ConsentRequired,
        ErrorClass::MfaRequired,
        ErrorClass::ConditionalAccess,
        ErrorClass::AppNotInTenant,
        ErrorClass::TenantNotFound,
        ErrorClass::InvalidClient,
        ErrorClass::ClientSecretExpired,
        ErrorClass::Throttled,
        ErrorClass::Transient,
        ErrorClass::Other,
    ];

    /// True when retrying soon may succeed.
    pub fn is_transient(self) -> bool {
        matches!(self, ErrorClass::Throttled | ErrorClass::Transient)
    }

    /// True when the partner's refresh token itself is unusable, so every tenant fails alike.
    pub fn is_partner_wide(self) -> bool {
        matches!(
            self,
            ErrorClass::RefreshTokenExpired
                | ErrorClass::RefreshTokenRevoked
                | ErrorClass::InvalidClient
                | ErrorClass::ClientSecretExpired
        )
    }

    /// What an operator should do about it, for log lines and `check`.
    pub fn advice(self) -> &'static str {
        match self {
            ErrorClass::RefreshTokenExpired | ErrorClass::RefreshTokenRevoked => {
                "the partner refresh token is no longer accepted: run `tenantwatch consent` to sign in again"
            }
            ErrorClass::ConsentRequired => {
                "the SAM app is not consented in this customer tenant: grant consent (GDAP role + app consent)"
            }
            ErrorClass::MfaRequired | ErrorClass::ConditionalAccess => {
                "sign-in needs MFA or is blocked by Conditional Access: run `tenantwatch consent` with MFA, or exclude the app from the policy"
            }
            ErrorClass::AppNotInTenant => "the SAM app is not present in this tenant: re-run consent for it",
            ErrorClass::TenantNotFound => "the tenant does not exist in this cloud: remove it or check cloud.name",
            ErrorClass::InvalidClient => "the app's client id or secret is wrong: check partner.client_id and the secret file",
            ErrorClass::ClientSecretExpired => "the app's client secret expired: create a new one and update the secret file",
            ErrorClass::Throttled => "throttled by Entra ID: will back off and retry",
            ErrorClass::Transient => "temporary failure: will retry",
            ErrorClass::Other => "unexpected error: see the message",
        }
    }
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// AADSTS code → class. The table the whole daemon agrees on.
const TABLE: &[(u32, ErrorClass)] = &[
    (700082, ErrorClass::RefreshTokenExpired),
    (70008, ErrorClass::RefreshTokenExpired),
    (70043, ErrorClass::RefreshTokenExpired),
    (50173, ErrorClass::RefreshTokenRevoked),
    (50133, ErrorClass::RefreshTokenRevoked),
    (700084, ErrorClass::RefreshTokenRevoked),
    (65001, ErrorClass::ConsentRequired),
    (650051, ErrorClass::ConsentRequired),
    (7000229, ErrorClass::ConsentRequired),
    (50076, ErrorClass::MfaRequired),
    (50078, ErrorClass::MfaRequired),
    (50079, ErrorClass::MfaRequired),
    (53003, ErrorClass::ConditionalAccess),
    (700016, ErrorClass::AppNotInTenant),
    (50020, ErrorClass::AppNotInTenant),
    (50177, ErrorClass::AppNotInTenant),
    (90002, ErrorClass::TenantNotFound),
    (5000224, ErrorClass::TenantNotFound),
    (90072, ErrorClass::TenantNotFound),
    (7000215, ErrorClass::InvalidClient),
    (700027, ErrorClass::InvalidClient),
    (7000216, ErrorClass::InvalidClient),
    (7000222, ErrorClass::ClientSecretExpired),
    (50196, ErrorClass::Throttled),
];

/// Classifies a token-endpoint failure by HTTP status and AADSTS codes.
/// The first code with a known class wins, since `error_codes` may hold several.
pub fn classify(status: u16, codes: &[u32]) -> ErrorClass {
    if status == 429 {
        return ErrorClass::Throttled;
    }
    if let Some(class) = codes
        .iter()
        .find_map(|c| TABLE.iter().find(|(code, _)| code == c).map(|(_, k)| *k))
    {
        return class;
    }
    if status >= 500 {
        ErrorClass::Transient
    } else {
        ErrorClass::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_from_the_issue() {
        let expect = [
            (700082, "refresh_token_expired"),
            (70008, "refresh_token_expired"),
            (70043, "refresh_token_expired"),
            (50173, "refresh_token_revoked"),
            (50133, "refresh_token_revoked"),
            (700084, "refresh_token_revoked"),
            (65001, "consent_required"),
            (650051, "consent_required"),
            (7000229, "consent_required"),
            (50076, "mfa_required"),
            (50078, "mfa_required"),
            (50079, "mfa_required"),
            (53003, "conditional_access"),
            (700016, "app_not_in_tenant"),
            (50020, "app_not_in_tenant"),
            (50177, "app_not_in_tenant"),
            (90002, "tenant_not_found"),
            (5000224, "tenant_not_found"),
            (90072, "tenant_not_found"),
            (7000215, "invalid_client"),
            (700027, "invalid_client"),
            (7000216, "invalid_client"),
            (7000222, "client_secret_expired"),
            (50196, "throttled"),
        ];
        for (code, class) in expect {
            assert_eq!(classify(400, &[code]).as_str(), class, "AADSTS{code}");
        }
    }

    #[test]
    fn status_fallbacks_and_multiple_codes() {
        assert_eq!(classify(429, &[]), ErrorClass::Throttled);
        assert_eq!(classify(503, &[]), ErrorClass::Transient);
        assert_eq!(classify(400, &[1]), ErrorClass::Other);
        assert_eq!(
            classify(400, &[70002, 50173]),
            ErrorClass::RefreshTokenRevoked
        );
    }

    #[test]
    fn labels_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorClass::ALL {
            assert!(seen.insert(c.as_str()));
        }
    }
}
