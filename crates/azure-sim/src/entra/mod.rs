//! Entra ID (login origin): the v2 and v1 token endpoints and their grant
//! dispatch, OpenID discovery and a JWKS. The grants themselves live in
//! `app_tokens` (client credentials), `user_tokens` (refresh token),
//! `authorize` (authorization code + PKCE) and `device` (device code);
//! client authentication in `client_auth`.

pub(crate) mod refresh_tokens;
pub(crate) mod state;

pub(crate) mod authority;
pub(crate) mod discovery;
pub(crate) mod errors;
#[cfg(test)]
mod tests;
pub(crate) mod token;

pub(crate) mod aadsts;
pub(crate) mod app_tokens;
pub(crate) mod assertion;
pub(crate) mod authorize;
pub(crate) mod certs;
pub(crate) mod client_auth;
pub(crate) mod device;
pub(crate) mod federation;
pub(crate) mod keys;
pub(crate) mod managed_identity;
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
