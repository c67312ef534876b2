//! Client authentication at the token endpoint: a client secret (form or
//! HTTP Basic) or a JWT client assertion (certificate or federated token).
//! Each grant decides whether a client with no credential may proceed.

use super::aadsts;
use super::assertion;
use super::authority::Authority;
use super::errors::{aad, AadError};
use super::state::Entra;
use crate::http::first;
use crate::world::App;

/// `client_assertion_type` of RFC 7523 client authentication.
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How the client proved its identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientAuth {
    /// A client secret.
    Secret,
    /// A client assertion signed with a registered certificate.
    Certificate,
    /// A federated (workload identity) token as client assertion.
    Federated,
}

/// Checks the credential the request carries, if any. `Ok(None)` means the
/// request carried none: the grant decides whether that is allowed.
pub(crate) fn authenticate(
    entra: &Entra,
    app: &App,
    form: &[(String, String)],
    basic_secret: Option<String>,
    tenant_seg: &str,
    authority: &Authority<'_>,
) -> Result<Option<ClientAuth>, AadError> {
    let secret = first(form, "client_secret")
        .map(str::to_string)
        .or(basic_secret);
    if let Some(secret) = secret {
        check_secret(entra, app, &secret)?;
        return Ok(Some(ClientAuth::Secret));
    }
    let assertion_type = first(form, "client_assertion_type");
    let assertion = first(form, "client_assertion");
    match (assertion_type, assertion) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(aad::missing_parameter("client_assertion_type")),
        (Some(_), None) => Err(aad::missing_parameter("client_assertion")),
        (Some(t), Some(_)) if t != JWT_BEARER => Err(aadsts::bad_assertion_type(t)),
        (Some(_), Some(jwt)) => assertion::verify(entra, app, jwt, tenant_seg, authority).map(Some),
    }
}

/// A secret must match the app's; an expired one is refused even when it
/// matches (AADSTS7000222), as Entra does once the secret's end date passes.
fn check_secret(entra: &Entra, app: &App, presented: &str) -> Result<(), AadError> {
    // Length leaks nothing useful here; the comparison still avoids early exit.
    let ok = app.secret.len() == presented.len()
        && app
            .secret
            .bytes()
            .zip(presented.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !ok {
        return Err(aad::invalid_client_secret(&app.client_id));
    }
    if entra.secret_expired(&app.client_id) {
        return Err(aad::client_secret_expired(&app.client_id));
    }
    Ok(())
}
