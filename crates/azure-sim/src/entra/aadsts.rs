//! AADSTS errors of the flows added after the refresh-token and
//! client-credentials grants (authorization code, device code, client
//! assertions, workload identity federation), and the table behind
//! `inject_token_error`.
//!
//! Sources: entra-docs `reference-error-codes.md` (code meanings),
//! `v2-oauth2-device-code.md` (device-flow `error` values), the catalog in
//! shared/reference/azure/entra, and real bodies quoted in public issues and
//! in MSAL's own test fixtures (MSAL.NET `MockHelpers`: 50027, 90014,
//! 5002723, 5002738, 700021, 700024). Where no real body was found the
//! choice is marked "best match"; clients must branch on `error` and
//! `error_codes`, which is what these get right first.

use super::errors::{aad, AadError};

/// Entra's pointer to the certificate-credential docs, in assertion errors.
const CERT_DOCS: &str = "Review the documentation at https://docs.microsoft.com/azure/active-directory/develop/active-directory-certificate-credentials .";

/// Federated-credential mismatch messages end with this advice.
const FIC_ADVICE: &str = "Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation";

// ------------------------------------------------------------- injectable

/// The error Entra returns for `code`: `error`, status and `suberror` per
/// the catalog and the sources above. Unknown codes get a generic 400.
pub(crate) fn injected(code: u32, client_id: &str, tenant: &str) -> AadError {
    let ts = "2024-01-01T00:00:00.0000000Z";
    match code {
        // catalog: MSAL JS surfaces subError bad_token for it.
        700082 => aad::refresh_token_expired(ts).with_suberror("bad_token"),
        70008 => expired_grant(),
        70043 => AadError::bad(
            70043,
            "invalid_grant",
            format!("The refresh token has expired or is invalid due to sign-in frequency checks by conditional access. The token was issued on {ts} and the maximum allowed lifetime for this request is 86400."),
        )
        .with_suberror("token_expired"),
        50173 => aad::refresh_token_revoked(ts, "2024-02-01T00:00:00.0000000Z"),
        50133 => AadError::bad(
            50133,
            "invalid_grant",
            "Session is invalid due to expiration or recent password change.".into(),
        ),
        700084 => AadError::bad(
            700084,
            "invalid_grant",
            format!("The refresh token was issued to a single page app (SPA), and therefore has a fixed, limited lifetime of 1.00:00:00, which cannot be extended. It is now expired and a new sign in request must be sent by the SPA to the sign in page. The token was issued on {ts}."),
        ),
        65001 => aad::consent_required(client_id, "tenantwatch"),
        // Best match: reported with `invalid_client`; 401 as for every
        // invalid_client the catalog lists.
        650051 => AadError::client(
            650051,
            format!("The service principal for application '{client_id}' is already present in the tenant '{tenant}'. Retry the request."),
        ),
        7000229 => AadError::client(
            7000229,
            format!("The client application {client_id} is missing service principal in the tenant {tenant}. See instructions here: https://go.microsoft.com/fwlink/?linkid=2225119"),
        ),
        50076 => AadError::bad(
            50076,
            "invalid_grant",
            "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '797f4846-ba00-4fd7-ba43-dac1f8f63013'.".into(),
        )
        .with_suberror("basic_action"),
        50078 => AadError::bad(
            50078,
            "interaction_required",
            "Presented multi-factor authentication has expired due to policies configured by your administrator, you must refresh your multi-factor authentication to access '797f4846-ba00-4fd7-ba43-dac1f8f63013'.".into(),
        )
        .with_suberror("basic_action"),
        50079 => {
            let mut e = AadError::bad(
                50079,
                "interaction_required",
                "Due to a configuration change made by your administrator, or because you moved to a new location, you must enroll in multi-factor authentication to access '797f4846-ba00-4fd7-ba43-dac1f8f63013'.".into(),
            )
            .with_suberror("basic_action");
            e.claims = Some(
                r#"{"access_token":{"capolids":{"essential":true,"values":["00000000-0000-0000-0000-000000000001"]}}}"#
                    .into(),
            );
            e
        }
        // invalid_grant per real bodies; message_only is MSAL's suberror for
        // Conditional Access blocks the user cannot resolve.
        53003 => AadError::bad(
            53003,
            "invalid_grant",
            "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.".into(),
        )
        .with_suberror("message_only"),
        700016 => aad::app_not_found(client_id, tenant),
        50020 => aad::user_not_in_tenant("admin", tenant),
        // Best match: the user-not-in-tenant family is invalid_grant (50020).
        50177 => AadError::bad(
            50177,
            "invalid_grant",
            format!("User account 'admin' from identity provider 'https://sts.windows.net/' does not exist in tenant '{tenant}' and cannot access the application '{client_id}' in that tenant. External challenge is not supported for passthrough users."),
        ),
        90002 => aad::tenant_not_found(tenant),
        // MSAL.NET raises MsalUiRequiredException for it, i.e. invalid_grant.
        5000224 => AadError::bad(
            5000224,
            "invalid_grant",
            "We are sorry, this resource is not available. If you are seeing this message by mistake, please contact Microsoft support.".into(),
        ),
        // Best match: as 50020.
        90072 => AadError::bad(
            90072,
            "invalid_grant",
            format!("User account 'admin' from identity provider 'https://sts.windows.net/' does not exist in tenant '{tenant}' and cannot access the application '{client_id}' in that tenant. The account needs to be added as an external user in the tenant first. Sign out and sign in again with a different Azure Active Directory user account."),
        ),
        7000215 => aad::invalid_client_secret(client_id),
        700027 => AadError::client(
            700027,
            format!("Client assertion failed signature validation. [Reason - The key was not found., Thumbprint of key used by client: '0000000000000000000000000000000000000000', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{client_id}'.]"),
        ),
        7000216 => aad::missing_client_credential_for_cc(),
        7000222 => aad::client_secret_expired(client_id),
        // reference-breaking-changes: looping clients get invalid_grant.
        50196 => AadError::bad(
            50196,
            "invalid_grant",
            "The server terminated an operation because it encountered a client request loop. Please contact your app vendor.".into(),
        ),
        70011 => aad::invalid_scope("(simulated)"),
        28000 => aad::multiple_resources("(simulated)"),
        9002313 => aad::malformed_grant(),
        500011 => aad::resource_not_found("(simulated)", tenant),
        other => AadError::bad(
            other,
            "invalid_request",
            "Simulated error injected by the tenantwatch simulator.".into(),
        ),
    }
}

/// A 5xx from the token endpoint (fault injection): `server_error` for 500,
/// `temporarily_unavailable` otherwise, with AADSTS50033 (RetryableError).
pub(crate) fn transient(status: axum::http::StatusCode) -> AadError {
    let error = if status == axum::http::StatusCode::INTERNAL_SERVER_ERROR {
        "server_error"
    } else {
        "temporarily_unavailable"
    };
    AadError::new(
        50033,
        error,
        status,
        "Indicates a transient error not related to the database operations. Retry the request."
            .into(),
    )
}

// ------------------------------------------------------------- grants

/// 70008: an authorization code or refresh token past its lifetime.
pub(crate) fn expired_grant() -> AadError {
    AadError::bad(
        70008,
        "invalid_grant",
        "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.".into(),
    )
}

/// 54005: the code was redeemed before.
pub(crate) fn code_already_redeemed() -> AadError {
    AadError::bad(
        54005,
        "invalid_grant",
        "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.".into(),
    )
}

/// 501481: PKCE verifier missing or not matching the challenge.
pub(crate) fn pkce_mismatch() -> AadError {
    AadError::bad(
        501481,
        "invalid_grant",
        "The Code_Verifier does not match the code_challenge supplied in the authorization request.".into(),
    )
}

/// 500112: `redirect_uri` differs from the one the code was issued for.
pub(crate) fn redirect_mismatch(sent: &str, original: &str) -> AadError {
    AadError::bad(
        500112,
        "invalid_grant",
        format!("The reply address '{sent}' does not match the reply address '{original}' provided when requesting Authorization code."),
    )
}

/// 700005: a code redeemed against another tenant than it was issued for.
pub(crate) fn code_for_other_tenant() -> AadError {
    AadError::bad(
        700005,
        "invalid_grant",
        "Provided Authorization Code is intended to use against other tenant, thus rejected."
            .into(),
    )
}

// ------------------------------------------------------------- device flow

/// 70016: the user has not entered the code yet (RFC 8628 3.5).
pub(crate) fn authorization_pending() -> AadError {
    AadError::bad(
        70016,
        "authorization_pending",
        "The provided request has not yet been authorized by the user. The user must input their code.".into(),
    )
}

/// `slow_down` (RFC 8628 3.5). Entra documents no code of its own for it;
/// 70016 is the pending family it belongs to.
pub(crate) fn slow_down(interval: u64) -> AadError {
    AadError::bad(
        70016,
        "slow_down",
        format!("The client is polling too frequently. Wait at least {interval} seconds between requests."),
    )
}

/// `authorization_declined`; 70000 (InvalidGrant) as Entra's generic grant
/// refusal, no real body having been found.
pub(crate) fn authorization_declined() -> AadError {
    AadError::bad(
        70000,
        "authorization_declined",
        "The end user denied the authorization request.".into(),
    )
}

/// `expired_token`, 70020, as real device-flow bodies carry it.
pub(crate) fn device_code_expired() -> AadError {
    AadError::bad(
        70020,
        "expired_token",
        "The provided value for the input parameter 'device_code' is not valid. This device code has expired.".into(),
    )
}

/// `bad_verification_code`, 70018 (BadVerificationCode).
pub(crate) fn bad_verification_code() -> AadError {
    AadError::bad(
        70018,
        "bad_verification_code",
        "The provided value for the input parameter 'device_code' is not valid.".into(),
    )
}

/// A device code that was already exchanged for tokens.
pub(crate) fn device_code_redeemed() -> AadError {
    AadError::bad(
        70000,
        "invalid_grant",
        "The provided device code was already redeemed.".into(),
    )
}

// ------------------------------------------------------------- assertions

/// 50027: not a JWT (MSAL.NET fixture: `invalid_request`).
pub(crate) fn malformed_jwt() -> AadError {
    AadError::bad(
        50027,
        "invalid_request",
        "JWT token is invalid or malformed.".into(),
    )
}

/// 90014: a required claim is absent (MSAL.NET fixture: `invalid_request`).
pub(crate) fn missing_claim(name: &str) -> AadError {
    AadError::bad(
        90014,
        "invalid_request",
        format!("The required field '{name}' is missing from the credential. Ensure that you have all the necessary parameters for the login request."),
    )
}

/// 90100 (InvalidRequestParameter): a `client_assertion_type` other than jwt-bearer.
pub(crate) fn bad_assertion_type(sent: &str) -> AadError {
    AadError::bad(
        90100,
        "invalid_request",
        format!("The parameter client_assertion_type is empty or not valid. Value '{sent}' is not supported; use 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'."),
    )
}

/// 5002738: an `alg` other than RS256/PS256.
pub(crate) fn unsupported_alg(alg: &str) -> AadError {
    AadError::client(
        5002738,
        format!("Invalid JWT token. '{alg}' is not a supported signature algorithm. Supported signing algorithms are: 'RS256,RS384,RS512,PS256'"),
    )
}

/// 5002723: neither `x5t`, `x5t#S256` nor `kid` in the header.
pub(crate) fn no_thumbprint() -> AadError {
    AadError::client(
        5002723,
        "Invalid JWT token. No certificate SHA-1 thumbprint, certificate SHA-256 thumbprint, nor keyId specified in token header.".into(),
    )
}

/// 700027: the thumbprint names no certificate registered on the app.
pub(crate) fn key_not_found(thumbprint_hex: &str, client_id: &str) -> AadError {
    AadError::client(
        700027,
        format!("Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used by client: '{thumbprint_hex}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{client_id}'. Review the documentation at https://docs.microsoft.com/en-us/graph/api/application-get?view=graph-rest-1.0 to learn more.]"),
    )
}

/// 700027: the certificate is registered but the signature does not verify.
pub(crate) fn bad_signature(thumbprint_hex: &str) -> AadError {
    AadError::client(
        700027,
        format!("Client assertion contains an invalid signature. [Reason - The provided signature value did not match the expected signature value., Thumbprint of key used by client: '{thumbprint_hex}', Found key 'Start=01/01/2024 00:00:00, End=01/01/2034 00:00:00']"),
    )
}

/// 700021: `iss`/`sub` is not the `client_id` of the request.
pub(crate) fn app_id_mismatch() -> AadError {
    AadError::client(
        700021,
        format!("Client assertion application identifier doesn't match 'client_id' parameter. {CERT_DOCS}"),
    )
}

/// 700023 (best match): `aud` is not this token endpoint.
pub(crate) fn audience_mismatch() -> AadError {
    AadError::client(
        700023,
        format!("Client assertion audience claim does not match Realm issuer. {CERT_DOCS}"),
    )
}

/// 700024: outside `nbf`..`exp` (times in .NET round-trip format).
pub(crate) fn time_range(now: &str, nbf: &str, exp: &str) -> AadError {
    AadError::client(
        700024,
        format!("Client assertion is not within its valid time range. Current time: {now}, assertion valid from {nbf}, expiry time of assertion {exp}. {CERT_DOCS}"),
    )
}

/// 700211: no federated credential trusts the assertion's issuer.
pub(crate) fn fic_issuer(iss: &str) -> AadError {
    AadError::client(
        700211,
        format!("No matching federated identity record found for presented assertion issuer '{iss}'. {FIC_ADVICE}"),
    )
}

/// 700212: the federated credential expects another audience.
pub(crate) fn fic_audience(aud: &str) -> AadError {
    AadError::client(
        700212,
        format!("No matching federated identity record found for presented assertion audience '{aud}'. {FIC_ADVICE}"),
    )
}

/// 700213: the federated credential expects another subject.
pub(crate) fn fic_subject(sub: &str) -> AadError {
    AadError::client(
        700213,
        format!("No matching federated identity record found for presented assertion subject '{sub}'. {FIC_ADVICE}"),
    )
}

/// 50013 (InvalidAssertion): a federated token the issuer did not sign.
pub(crate) fn fic_signature() -> AadError {
    AadError::client(
        50013,
        "Assertion failed signature validation. [Reason - The provided signature value did not match the expected signature value.]".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn every_listed_code_has_its_real_error_and_status() {
        let table: &[(u32, &str, u16, Option<&str>)] = &[
            (700082, "invalid_grant", 400, Some("bad_token")),
            (70008, "invalid_grant", 400, None),
            (70043, "invalid_grant", 400, Some("token_expired")),
            (50173, "invalid_grant", 400, None),
            (50133, "invalid_grant", 400, None),
            (700084, "invalid_grant", 400, None),
            (65001, "invalid_grant", 400, Some("consent_required")),
            (650051, "invalid_client", 401, None),
            (7000229, "invalid_client", 401, None),
            (50076, "invalid_grant", 400, Some("basic_action")),
            (50078, "interaction_required", 400, Some("basic_action")),
            (50079, "interaction_required", 400, Some("basic_action")),
            (53003, "invalid_grant", 400, Some("message_only")),
            (700016, "unauthorized_client", 400, None),
            (50020, "invalid_grant", 400, None),
            (50177, "invalid_grant", 400, None),
            (90002, "invalid_tenant", 400, None),
            (5000224, "invalid_grant", 400, None),
            (90072, "invalid_grant", 400, None),
            (7000215, "invalid_client", 401, None),
            (700027, "invalid_client", 401, None),
            (7000216, "invalid_client", 401, None),
            (7000222, "invalid_client", 401, None),
            (50196, "invalid_grant", 400, None),
        ];
        for (code, error, status, sub) in table {
            let e = injected(*code, "app", "tenant");
            assert_eq!(e.code, *code);
            assert_eq!(e.error, *error, "{code}");
            assert_eq!(e.status.as_u16(), *status, "{code}");
            assert_eq!(e.suberror, *sub, "{code}");
        }
        assert!(injected(50079, "a", "t").claims.is_some());
        assert_eq!(injected(12345, "a", "t").error, "invalid_request");
    }

    #[test]
    fn transient_errors() {
        assert_eq!(
            transient(StatusCode::INTERNAL_SERVER_ERROR).error,
            "server_error"
        );
        let e = transient(StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            (e.error, e.status.as_u16()),
            ("temporarily_unavailable", 503)
        );
    }
}
