//! The error classes: the `reason`/`result` label values every stage agrees
//! on, and a contract dashboards and alert rules rely on. Which AADSTS code maps to which class is decided in
//! `auth::classify`; what each class means for an operator is here.

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
    /// Partner Center refused an App+User call because the access token's
    /// `amr` lacks `mfa` (enforced since 2026-04-01): the refresh token comes
    /// from a sign-in without MFA. Graph and ARM still accept it.
    MfaClaimMissing,
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
            ErrorClass::MfaClaimMissing => "mfa_claim_missing",
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
    pub const ALL: [ErrorClass; 13] = [
        ErrorClass::RefreshTokenExpired,
        ErrorClass::RefreshTokenRevoked,
        ErrorClass::ConsentRequired,
        ErrorClass::MfaRequired,
        ErrorClass::ConditionalAccess,
        ErrorClass::MfaClaimMissing,
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

    /// True when the partner's refresh token itself is the problem, so it is
    /// reported once for the partner rather than per tenant. `mfa_claim_missing`
    /// only ever comes from Partner Center, never from the token endpoint, so it
    /// never opens the broker's circuit: Graph and ARM keep working.
    pub fn is_partner_wide(self) -> bool {
        matches!(
            self,
            ErrorClass::RefreshTokenExpired
                | ErrorClass::RefreshTokenRevoked
                | ErrorClass::InvalidClient
                | ErrorClass::ClientSecretExpired
                | ErrorClass::MfaClaimMissing
        )
    }

    /// True when pushing the SAM app's consent into the tenant
    /// (`tenantwatch consent customers`) is the fix.
    pub fn consent_push_fixes(self) -> bool {
        matches!(
            self,
            ErrorClass::ConsentRequired | ErrorClass::AppNotInTenant
        )
    }

    /// The command that pushes the consent into `tenant_id`, for the
    /// classes [`ErrorClass::consent_push_fixes`] names.
    pub fn consent_command(tenant_id: &str) -> String {
        format!("tenantwatch consent customers --tenant {tenant_id}")
    }

    /// What an operator should do about it, for log lines and `check`.
    pub fn advice(self) -> &'static str {
        match self {
            ErrorClass::RefreshTokenExpired | ErrorClass::RefreshTokenRevoked => {
                "the partner refresh token is no longer accepted: run `tenantwatch consent` to sign in again"
            }
            ErrorClass::ConsentRequired => {
                "the SAM app is not consented in this customer tenant: grant consent with `tenantwatch consent customers --tenant ID` (and a GDAP role)"
            }
            ErrorClass::MfaRequired | ErrorClass::ConditionalAccess => {
                "sign-in needs MFA or is blocked by Conditional Access: run `tenantwatch consent` with MFA, or exclude the app from the policy"
            }
            ErrorClass::MfaClaimMissing => {
                "Partner Center requires MFA and the stored refresh token comes from a sign-in without it: re-run `tenantwatch consent` and complete MFA"
            }
            ErrorClass::AppNotInTenant => "the SAM app is not present in this tenant: push its consent with `tenantwatch consent customers --tenant ID`",
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
