//! Error classes: the `reason`/`result` label values (the README's
//! troubleshooting table), from the token endpoint's AADSTS codes
//! ([`classify`]) and from a resource API's answer ([`classify_api`]).
//!
//! Classes come from codes and statuses, never from `error_description` text,
//! which Microsoft rewords. Codes: <https://learn.microsoft.com/entra/identity-platform/reference-error-codes>.

use crate::model::ErrorClass;
use crate::outbound::client::ApiError;

/// The code Partner Center's 401 carries when an App+User token has no MFA
/// claim, as partners report it since enforcement began on 2026-04-01
/// (partnercenter/docs-mfa-enforcement.md: reported by partner blogs, not
/// shown in a Microsoft body).
pub const PARTNER_CENTER_MFA_CODE: &str = "900421";

/// True when `e` is Partner Center's refusal of a token without MFA: a 401
/// with code [`PARTNER_CENTER_MFA_CODE`], or any 401 from Partner Center
/// while the partner's token is known to lack MFA (`token_mfa` is
/// `Some(false)`) — the 2019 form of the refusal has no body at all, only
/// `WWW-Authenticate: Bearer error="invalid_token"`.
pub fn is_mfa_rejection(e: &ApiError, token_mfa: Option<bool>) -> bool {
    match e {
        ApiError::Status {
            api: "partner_center",
            status: 401,
            code,
            ..
        } => code == PARTNER_CENTER_MFA_CODE || token_mfa == Some(false),
        _ => false,
    }
}

/// Classifies a failed call to a resource API (Partner Center, Graph, ARM):
/// the MFA refusal, throttling, and transient failures get their classes;
/// anything else is `other`. `token_mfa` is what the partner's access token
/// says about MFA, when known.
pub fn classify_api(e: &ApiError, token_mfa: Option<bool>) -> ErrorClass {
    if is_mfa_rejection(e, token_mfa) {
        return ErrorClass::MfaClaimMissing;
    }
    match e {
        ApiError::Status { status: 429, .. } => ErrorClass::Throttled,
        _ if e.is_transient() => ErrorClass::Transient,
        _ => ErrorClass::Other,
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

    fn status(api: &'static str, status: u16, code: &str) -> ApiError {
        ApiError::Status {
            api,
            tenant: "partner".into(),
            url: "https://pc.test/v1/customers".into(),
            status,
            code: code.into(),
            message: String::new(),
            retry_after: None,
            refused_wait: None,
        }
    }

    #[test]
    fn partner_center_mfa_refusal_is_its_own_class() {
        let e = status("partner_center", 401, "900421");
        assert_eq!(classify_api(&e, None), ErrorClass::MfaClaimMissing);
        // The body-less 2019 form counts only when the token is known to lack MFA.
        let bare = status("partner_center", 401, "Unauthorized");
        assert_eq!(
            classify_api(&bare, Some(false)),
            ErrorClass::MfaClaimMissing
        );
        assert_eq!(classify_api(&bare, Some(true)), ErrorClass::Other);
        assert_eq!(classify_api(&bare, None), ErrorClass::Other);
        // Graph never answers for Partner Center's rule.
        assert_eq!(
            classify_api(&status("graph", 401, "900421"), Some(false)),
            ErrorClass::Other
        );
        assert!(ErrorClass::MfaClaimMissing.is_partner_wide());
        assert!(ErrorClass::MfaClaimMissing
            .advice()
            .contains("re-run `tenantwatch consent` and complete MFA"));
    }

    #[test]
    fn api_failures_are_classed_by_status() {
        assert_eq!(
            classify_api(&status("graph", 429, "TooManyRequests"), None),
            ErrorClass::Throttled
        );
        assert_eq!(
            classify_api(&status("partner_center", 503, "503"), None),
            ErrorClass::Transient
        );
        assert_eq!(
            classify_api(&status("graph", 403, "Authorization_RequestDenied"), None),
            ErrorClass::Other
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
