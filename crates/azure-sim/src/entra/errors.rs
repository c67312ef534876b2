//! The token endpoint's error model: an AADSTS code with its `error` value
//! and status, rendered as Entra's JSON body with trace and correlation ids.
//! [`aad`] holds the codes of the core grants; the later flows' codes and
//! the table behind `inject_token_error` are in [`super::aadsts`].
//! Shapes follow the recordings and docs in `shared/reference/azure/`.

use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use crate::clock::entra_timestamp;
use crate::http;
use crate::state::SimState;

/// One AADSTS error as the token endpoint reports it. The `error` value and
/// status come from entra/aadsts-error-catalog.md; clients must match on
/// `error` + `error_codes`, so the message text is only indicative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AadError {
    pub code: u32,
    pub error: &'static str,
    pub status: StatusCode,
    pub message: String,
    pub suberror: Option<&'static str>,
    pub claims: Option<String>,
}

impl AadError {
    /// An error with an explicit status.
    pub(crate) fn new(code: u32, error: &'static str, status: StatusCode, message: String) -> Self {
        Self {
            code,
            error,
            status,
            message,
            suberror: None,
            claims: None,
        }
    }

    /// A 400 error.
    pub(crate) fn bad(code: u32, error: &'static str, message: String) -> Self {
        Self::new(code, error, StatusCode::BAD_REQUEST, message)
    }

    /// A 401 `invalid_client` error: Entra's status for failed client authentication.
    pub(crate) fn client(code: u32, message: String) -> Self {
        Self::new(code, "invalid_client", StatusCode::UNAUTHORIZED, message)
    }

    /// Adds the `suberror` field.
    pub(crate) fn with_suberror(mut self, s: &'static str) -> Self {
        self.suberror = Some(s);
        self
    }

    /// The JSON body, with the trace/correlation ids and time filled in.
    pub fn body(&self, ctx: &ErrorCtx) -> AadErrorBody {
        AadErrorBody {
            error: self.error.to_string(),
            error_description: format!(
                "AADSTS{}: {} Trace ID: {} Correlation ID: {} Timestamp: {}",
                self.code, self.message, ctx.trace_id, ctx.correlation_id, ctx.timestamp
            ),
            error_codes: vec![self.code],
            timestamp: ctx.timestamp.clone(),
            trace_id: ctx.trace_id.clone(),
            correlation_id: ctx.correlation_id.clone(),
            error_uri: format!("{}/error?code={}", ctx.login, self.code),
            suberror: self.suberror.map(str::to_string),
            claims: self.claims.clone(),
        }
    }
}

/// Request-specific parts of an Entra error body.
#[derive(Debug, Clone)]
pub(crate) struct ErrorCtx {
    pub login: String,
    pub trace_id: String,
    pub correlation_id: String,
    /// `YYYY-MM-DD HH:MM:SSZ`, Entra's format (space, not `T`).
    pub timestamp: String,
}

/// Wire shape of an Entra token-endpoint error.
#[derive(Debug, Serialize)]
pub(crate) struct AadErrorBody {
    pub error: String,
    pub error_description: String,
    pub error_codes: Vec<u32>,
    pub timestamp: String,
    pub trace_id: String,
    pub correlation_id: String,
    pub error_uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suberror: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claims: Option<String>,
}

/// Constructors for the AADSTS codes the simulator produces on its own, plus
/// [`aad::from_code`] for injected faults.
pub(crate) mod aad {
    use super::AadError;
    use axum::http::StatusCode;

    pub fn tenant_not_found(tenant: &str) -> AadError {
        AadError::bad(
            90002,
            "invalid_tenant",
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
            ),
        )
    }

    pub fn invalid_tenant_name(tenant: &str) -> AadError {
        AadError::bad(
            900023,
            "invalid_request",
            format!("Specified tenant identifier '{tenant}' is neither a valid DNS name, nor a valid external domain."),
        )
    }

    pub fn missing_parameter(name: &str) -> AadError {
        AadError::bad(
            900144,
            "invalid_request",
            format!("The request body must contain the following parameter: '{name}'."),
        )
    }

    pub fn post_only(method: &str) -> AadError {
        AadError::bad(
            900561,
            "invalid_request",
            format!(
                "The endpoint only accepts POST, OPTIONS requests. Received a {method} request."
            ),
        )
    }

    pub fn unsupported_grant_type(grant: &str) -> AadError {
        AadError::bad(
            70003,
            "unsupported_grant_type",
            format!("The app requested an unsupported grant type '{grant}'."),
        )
    }

    pub fn app_not_found(client_id: &str, tenant_name: &str) -> AadError {
        AadError::bad(
            700016,
            "unauthorized_client",
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant_name}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
            ),
        )
    }

    pub fn not_multi_tenant(client_id: &str, app_name: &str) -> AadError {
        AadError::bad(
            50194,
            "invalid_request",
            format!(
                "Application '{client_id}'({app_name}) is not configured as a multi-tenant application. Usage of the /common endpoint is not supported for such applications created after '10/15/2018'. Use a tenant-specific endpoint or configure the application to be multi-tenant."
            ),
        )
    }

    pub fn no_tenant_info() -> AadError {
        AadError::bad(
            50059,
            "invalid_request",
            "No tenant-identifying information found in either the request or implied by any provided credentials.".into(),
        )
    }

    pub fn missing_client_secret() -> AadError {
        AadError::new(
            7000218,
            "invalid_client",
            StatusCode::UNAUTHORIZED,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.".into(),
        )
    }

    pub fn missing_client_credential_for_cc() -> AadError {
        AadError::new(
            7000216,
            "invalid_client",
            StatusCode::UNAUTHORIZED,
            "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.".into(),
        )
    }

    pub fn invalid_client_secret(client_id: &str) -> AadError {
        AadError::new(
            7000215,
            "invalid_client",
            StatusCode::UNAUTHORIZED,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
            ),
        )
    }

    pub fn client_secret_expired(client_id: &str) -> AadError {
        AadError::new(
            7000222,
            "invalid_client",
            StatusCode::UNAUTHORIZED,
            format!(
                "The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds."
            ),
        )
    }

    pub fn invalid_scope(scope: &str) -> AadError {
        AadError::bad(
            70011,
            "invalid_scope",
            format!(
                "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
            ),
        )
    }

    /// Delegated request naming scopes of two resources. The catalog has no
    /// recorded `error` value for 28000; `invalid_scope` is the best guess.
    pub fn multiple_resources(scope: &str) -> AadError {
        AadError::bad(
            28000,
            "invalid_scope",
            format!(
                "Provided value for the input parameter scope is not valid because it contains more than one resource. Scope {scope} is not valid."
            ),
        )
    }

    pub fn cc_scope_needs_default(scope: &str) -> AadError {
        AadError::bad(
            1002012,
            "invalid_scope",
            format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        )
    }

    pub fn resource_not_found(resource: &str, tenant_name: &str) -> AadError {
        AadError::bad(
            500011,
            "invalid_resource",
            format!(
                "The resource principal named {resource} was not found in the tenant named {tenant_name}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."
            ),
        )
    }

    pub fn malformed_grant() -> AadError {
        AadError::bad(
            9002313,
            "invalid_grant",
            "Invalid request. Request is malformed or invalid.".into(),
        )
    }

    pub fn grant_for_other_client() -> AadError {
        AadError::bad(
            70000,
            "invalid_grant",
            "Provided grant is invalid or malformed.".into(),
        )
    }

    pub fn refresh_token_expired(issued: &str) -> AadError {
        AadError::bad(
            700082,
            "invalid_grant",
            format!(
                "The refresh token has expired due to inactivity. The token was issued on {issued} and was inactive for 90.00:00:00."
            ),
        )
    }

    pub fn refresh_token_revoked(issued: &str, valid_from: &str) -> AadError {
        AadError::bad(
            50173,
            "invalid_grant",
            format!(
                "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '{issued}' and the TokensValidFrom date (before which tokens are not valid) for this user is '{valid_from}'."
            ),
        )
    }

    pub fn consent_required(client_id: &str, app_name: &str) -> AadError {
        AadError::bad(
            65001,
            "invalid_grant",
            format!(
                "The user or administrator has not consented to use the application with ID '{client_id}' named '{app_name}'. Send an interactive authorization request for this user and resource."
            ),
        )
        .with_suberror("consent_required")
    }

    pub fn user_not_in_tenant(upn: &str, tenant_name: &str) -> AadError {
        AadError::bad(
            50020,
            "invalid_grant",
            format!(
                "User account '{upn}' from identity provider 'live.com' does not exist in tenant '{tenant_name}' and cannot access the application in that tenant. The account needs to be added as an external user in the tenant first. Sign out and sign in again with a different Azure Active Directory user account."
            ),
        )
    }
}

/// Trace/correlation ids and time for an error body.
pub(crate) fn error_ctx(
    state: &SimState,
    trace_id: String,
    correlation_id: Option<String>,
) -> ErrorCtx {
    ErrorCtx {
        login: state.origins.login.clone(),
        trace_id,
        correlation_id: correlation_id.unwrap_or_else(http::new_id),
        timestamp: entra_timestamp(state.clock.now()),
    }
}

/// An Entra error response with fresh ids.
pub(crate) fn error_response(state: &SimState, e: &AadError) -> Response {
    http::json(
        e.status,
        &e.body(&error_ctx(state, http::new_id(), None)),
        &[],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ErrorCtx {
        ErrorCtx {
            login: "https://127.0.0.1:1".into(),
            trace_id: "t".into(),
            correlation_id: "c".into(),
            timestamp: "2024-01-02 03:04:05Z".into(),
        }
    }

    #[test]
    fn aad_body_has_every_documented_field() {
        let body = serde_json::to_value(aad::tenant_not_found("x").body(&ctx())).unwrap();
        assert_eq!(body["error"], "invalid_tenant");
        assert_eq!(body["error_codes"], serde_json::json!([90002]));
        assert_eq!(body["timestamp"], "2024-01-02 03:04:05Z");
        assert_eq!(body["error_uri"], "https://127.0.0.1:1/error?code=90002");
        let d = body["error_description"].as_str().unwrap();
        assert!(d.starts_with("AADSTS90002: "));
        assert!(d.ends_with("Trace ID: t Correlation ID: c Timestamp: 2024-01-02 03:04:05Z"));
        assert!(body.get("suberror").is_none());
    }
}
