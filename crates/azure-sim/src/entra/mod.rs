//! Entra ID: the login origin and the managed identity endpoint, which
//! issue every token the other services accept.
//!
//! Where things are:
//! - [`token`]: the v2 and v1 token endpoints, injected throttling and
//!   AADSTS errors, and the dispatch to a grant:
//!   [`app_tokens`] (client credentials), [`user_tokens`] (refresh token,
//!   and the issuance the code grants share), [`authorize`] (authorization
//!   code + PKCE, and `/authorize`) and [`device`] (device code, and
//!   `/devicelogin`)
//! - [`client_auth`]: client secrets and JWT assertions ([`assertion`]:
//!   certificates from [`certs`], federated tokens from the simulated
//!   Kubernetes issuer in [`federation`]; RSA keys in [`keys`])
//! - [`discovery`]: OpenID configuration and key sets; [`authority`]: the
//!   tenant segment of a login URL
//! - [`errors`] and [`aadsts`]: Entra's error body and the AADSTS catalogue
//! - [`state`]: what Entra remembers (credentials, codes, injected errors),
//!   with the refresh tokens and their revocation in [`refresh_tokens`]
//! - [`managed_identity`]: IMDS and App Service, on their own listener

mod aadsts;
mod app_tokens;
mod assertion;
mod authority;
mod authorize;
pub(crate) mod certs;
mod client_auth;
mod device;
mod discovery;
mod errors;
pub(crate) mod federation;
pub(crate) mod keys;
pub(crate) mod managed_identity;
mod refresh_tokens;
pub(crate) mod state;
#[cfg(test)]
mod tests;
pub(crate) mod token;
pub(crate) mod user_tokens;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

use federation::ISSUER_PATH;
use state::Entra;

/// Builds the login origin's routes.
pub(crate) fn router(entra: Arc<Entra>) -> Router {
    Router::new()
        .route(
            "/{tenant}/oauth2/v2.0/token",
            post(token::token_v2).get(token::token_get),
        )
        .route(
            "/{tenant}/oauth2/token",
            post(token::token_v1).get(token::token_get),
        )
        .route("/{tenant}/oauth2/v2.0/authorize", get(authorize::authorize))
        .route("/{tenant}/oauth2/v2.0/devicecode", post(device::devicecode))
        .route("/devicelogin", get(device::page).post(device::submit))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(discovery::openid_v2),
        )
        .route(
            "/{tenant}/.well-known/openid-configuration",
            get(discovery::openid_v1),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(discovery::jwks))
        .route("/{tenant}/discovery/keys", get(discovery::jwks))
        .route(
            &format!("{ISSUER_PATH}.well-known/openid-configuration"),
            get(discovery::federation_discovery),
        )
        .route(
            &format!("{ISSUER_PATH}openid/v1/jwks"),
            get(discovery::federation_jwks),
        )
        .with_state(entra)
}
