//! Managed identity token endpoints on a plain-HTTP listener, as a VM or an
//! App Service sees them: IMDS (`GET /metadata/identity/oauth2/token`,
//! identity/managed-identities-azure-resources/how-to-use-vm-token) and the
//! App Service / Container Apps endpoint (`GET /msi/token`, api-version
//! 2019-08-01, `X-IDENTITY-HEADER`). Both issue tokens for the service
//! identity's principal, so Key Vault accepts them.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use serde_json::json;

use super::app_tokens::{self, AppTokenRequest};
use super::errors::{aad, error_response, AadError};
use super::state::Entra;
use crate::http::{self, first};
use crate::resources::ResourceRef;
use crate::state::SimState;

/// Managed identity tokens live about a day (IMDS caches them that long).
const MI_TOKEN_LIFETIME_SECS: i64 = 86_399;

/// The only App Service api-version with `X-IDENTITY-HEADER`.
const APP_SERVICE_API_VERSION: &str = "2019-08-01";

/// Builds the managed identity listener's routes.
pub(crate) fn router(entra: Arc<Entra>) -> Router {
    Router::new()
        .route("/metadata/identity/oauth2/token", get(imds))
        .route("/msi/token", get(app_service))
        .with_state(entra)
}

/// Azure resource id of the (user-assigned) identity, for `msi_res_id`,
/// `mi_res_id` and the token's `xms_mirid`.
pub(crate) fn resource_id(state: &SimState) -> String {
    let w = &state.world;
    // The identity lives in partner 0's tenant, with its subscription.
    let sub = w
        .default_partner()
        .tenant
        .subscriptions
        .first()
        .map_or("00000000-0000-0000-0000-000000000000", |s| s.id.as_str());
    format!("/subscriptions/{sub}/resourcegroups/tenantwatch/providers/Microsoft.ManagedIdentity/userAssignedIdentities/tenantwatch-identity")
}

/// Whether the optional identity selector (by client id, object id or
/// resource id) names the service identity; no selector means the default.
fn selects_identity(state: &SimState, q: &[(String, String)], names: [&str; 3]) -> bool {
    let w = &state.world;
    let app = &w.identity_app;
    let oid = w.service_principal_oid(&app.client_id, &app.home_tenant);
    let [client, object, resource] = names;
    let ok = |key: &str, want: &str| first(q, key).is_none_or(|v| v.eq_ignore_ascii_case(want));
    ok(client, &app.client_id) && ok(object, &oid) && ok(resource, &resource_id(state))
}

/// A token for the service identity, or Entra's error for the resource.
fn mint(state: &SimState, resource: &str) -> Result<(String, i64, i64), AadError> {
    let w = &state.world;
    let app = &w.identity_app;
    let tenant = w
        .tenant(&app.home_tenant)
        .ok_or_else(|| aad::tenant_not_found(&app.home_tenant))?;
    let r = ResourceRef::named(resource)
        .ok_or_else(|| aad::resource_not_found(resource, &tenant.name))?;
    let rid = resource_id(state);
    let t = app_tokens::mint(
        state,
        AppTokenRequest {
            app,
            tenant,
            resource: &r,
            appidacr: "2",
            expires_in: MI_TOKEN_LIFETIME_SECS,
            mi_resource_id: Some(&rid),
        },
    );
    Ok((t.access_token, t.now, t.expires_in))
}

/// IMDS's success body: every number is a string.
#[derive(Serialize)]
struct ImdsToken {
    access_token: String,
    client_id: String,
    expires_in: String,
    expires_on: String,
    ext_expires_in: String,
    not_before: String,
    resource: String,
    token_type: &'static str,
}

fn imds_error(status: StatusCode, error: &str, description: &str) -> Response {
    http::json(
        status,
        &json!({"error": error, "error_description": description}),
        &[],
    )
}

async fn imds(State(entra): State<Arc<Entra>>, headers: HeaderMap, uri: Uri) -> Response {
    let state = &*entra.sim;
    // The SSRF guard: exactly `Metadata: true`.
    if http::header(&headers, "metadata") != Some("true") {
        return imds_error(
            StatusCode::BAD_REQUEST,
            "bad_request_102",
            "Required metadata header not specified",
        );
    }
    let q = http::query(&uri);
    if first(&q, "api-version").is_none() {
        return imds_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required query variable 'api-version' is missing",
        );
    }
    let Some(resource) = first(&q, "resource") else {
        return imds_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required query variable 'resource' is missing",
        );
    };
    if !selects_identity(state, &q, ["client_id", "object_id", "msi_res_id"]) {
        return imds_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Identity not found",
        );
    }
    match mint(state, resource) {
        Ok((token, now, expires_in)) => http::json(
            StatusCode::OK,
            &ImdsToken {
                access_token: token,
                client_id: state.world.identity_app.client_id.clone(),
                expires_in: expires_in.to_string(),
                expires_on: (now + expires_in).to_string(),
                ext_expires_in: expires_in.to_string(),
                not_before: now.to_string(),
                resource: resource.to_string(),
                token_type: "Bearer",
            },
            &[("server", "IMDS/150.870.65.1854".to_string())],
        ),
        // IMDS passes Entra's error through (how-to-use-vm-token, 400 invalid_resource).
        Err(e) => error_response(state, &e),
    }
}

/// App Service 2019-08-01 success body (`expires_on` as unix seconds, a string).
#[derive(Serialize)]
struct AppServiceToken {
    access_token: String,
    expires_on: String,
    resource: String,
    token_type: &'static str,
    client_id: String,
}

fn app_service_error(status: StatusCode, message: &str) -> Response {
    let correlation = http::new_id();
    http::json(
        status,
        &json!({"statusCode": status.as_u16(), "message": message, "correlationId": correlation}),
        &[
            ("server", "Kestrel".to_string()),
            ("x-correlation-id", correlation.clone()),
        ],
    )
}

async fn app_service(State(entra): State<Arc<Entra>>, headers: HeaderMap, uri: Uri) -> Response {
    let state = &*entra.sim;
    match http::header(&headers, "x-identity-header") {
        None => {
            return app_service_error(
                StatusCode::BAD_REQUEST,
                "The X-IDENTITY-HEADER header is missing from the request.",
            )
        }
        Some(v) if v != entra.creds.identity_header => {
            return app_service_error(
                StatusCode::UNAUTHORIZED,
                "The X-IDENTITY-HEADER header value is not valid.",
            )
        }
        Some(_) => {}
    }
    let q = http::query(&uri);
    if first(&q, "api-version") != Some(APP_SERVICE_API_VERSION) {
        return app_service_error(
            StatusCode::BAD_REQUEST,
            "The api-version is missing or not supported. Use 2019-08-01.",
        );
    }
    let Some(resource) = first(&q, "resource") else {
        return app_service_error(
            StatusCode::BAD_REQUEST,
            "The resource parameter is missing.",
        );
    };
    let principal_ok = first(&q, "principal_id").is_none_or(|p| {
        let app = &state.world.identity_app;
        p.eq_ignore_ascii_case(
            &state
                .world
                .service_principal_oid(&app.client_id, &app.home_tenant),
        )
    });
    if !principal_ok || !selects_identity(state, &q, ["client_id", "object_id", "mi_res_id"]) {
        return app_service_error(
            StatusCode::BAD_REQUEST,
            "Unable to load the proper Managed Identity.",
        );
    }
    match mint(state, resource) {
        Ok((token, now, expires_in)) => {
            let correlation = http::new_id();
            http::json(
                StatusCode::OK,
                &AppServiceToken {
                    access_token: token,
                    expires_on: (now + expires_in).to_string(),
                    resource: resource.to_string(),
                    token_type: "Bearer",
                    client_id: state.world.identity_app.client_id.clone(),
                },
                &[
                    ("server", "Kestrel".to_string()),
                    ("x-correlation-id", correlation),
                ],
            )
        }
        // msal: "wrong resource ends up with a vague statusCode=500".
        Err(_) => app_service_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "An unexpected error occured while fetching the AAD Token.",
        ),
    }
}

/// The managed identity endpoint under an injected fault: IMDS errors are
/// `{error, error_description}`; App Service's are `{statusCode, message,
/// correlationId}`.
pub(crate) fn fault_response(path: &str, status: StatusCode, retry_after: Option<u64>) -> Response {
    if path.starts_with("/msi/") {
        let message = match retry_after {
            Some(_) => "Too many requests.",
            None => "An unexpected error occured while fetching the AAD Token.",
        };
        return http::json(
            status,
            &json!({"statusCode": status.as_u16(), "message": message, "correlationId": http::new_id()}),
            &[("server", "Kestrel".into())],
        );
    }
    let (error, desc) = match retry_after {
        Some(_) => (
            "throttled",
            "IMDS Throttle limit reached. Retry with exponential backoff.",
        ),
        None => (
            "unknown",
            "Failed to retrieve token from the Active directory. Retry the request.",
        ),
    };
    http::json(
        status,
        &json!({"error": error, "error_description": desc}),
        &[],
    )
}
