//! Error classes from AADSTS codes: the `reason`/`result` label values (the README's
//! troubleshooting table).
//!
//! Classes come from `error_codes`, never from `error_description` text, which
//! Microsoft rewords. Codes: <https://learn.microsoft.com/entra/identity-platform/reference-error-codes>.

use crate::model::ErrorClass;

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
