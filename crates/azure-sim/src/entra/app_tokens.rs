//! App-only access tokens: the client-credentials grant and the tokens the
//! managed identity endpoint hands out for the service identity.

use serde_json::json;

use super::client_auth::ClientAuth;
use super::errors::{aad, AadError};
use super::state::Entra;
use super::token::{Flavor, Issued};
use crate::http::first;
use crate::resources::{ResourceRef, ScopeError, Scopes};
use crate::state::SimState;
use crate::world::{random_token, App, Tenant};

/// A minted app-only token.
pub(crate) struct AppToken {
    pub access_token: String,
    pub now: i64,
    pub expires_in: i64,
}

/// What an app-only token says about its holder.
pub(crate) struct AppTokenRequest<'a> {
    pub app: &'a App,
    pub tenant: &'a Tenant,
    pub resource: &'a ResourceRef,
    /// `appidacr`: "1" for a secret, "2" for a certificate or managed identity.
    pub appidacr: &'static str,
    /// Lifetime in seconds.
    pub expires_in: i64,
    /// `xms_mirid` for managed identity tokens.
    pub mi_resource_id: Option<&'a str>,
}

/// Signs an app-only access token (v1 claims, as Entra issues for these APIs).
pub(crate) fn mint(state: &SimState, r: AppTokenRequest<'_>) -> AppToken {
    let roles: Vec<&str> = if state.world.is_sam_app(&r.app.client_id) {
        r.resource.api.sam_app_roles.to_vec()
    } else {
        Vec::new()
    };
    let now = state.clock.now_unix();
    let oid = state
        .world
        .service_principal_oid(&r.app.client_id, &r.tenant.id);
    let iss = format!("https://sts.windows.net/{}/", r.tenant.id);
    let mut claims = json!({
        "aud": r.resource.aud,
        "iss": iss,
        "iat": now,
        "nbf": now,
        "exp": now + r.expires_in,
        "aio": random_token(40),
        "appid": r.app.client_id,
        "appidacr": r.appidacr,
        "idp": iss,
        "idtyp": "app",
        "oid": oid,
        "rh": format!("0.{}.", random_token(20)),
        "sub": oid,
        "tid": r.tenant.id,
        "uti": random_token(22),
        "ver": "1.0",
    });
    if !roles.is_empty() {
        claims["roles"] = json!(roles);
    }
    if let Some(id) = r.mi_resource_id {
        claims["xms_mirid"] = json!(id);
    }
    let access_token = state.signer.sign(&claims);
    state.remember_secret(&access_token);
    AppToken {
        access_token,
        now,
        expires_in: r.expires_in,
    }
}

/// `grant_type=client_credentials` (the caller checked a credential exists).
pub(crate) fn client_credentials(
    entra: &Entra,
    app: &App,
    tenant: &Tenant,
    form: &[(String, String)],
    flavor: Flavor,
    auth: ClientAuth,
) -> Result<Issued, AadError> {
    let state = &*entra.sim;
    let resource = match flavor {
        Flavor::V2 => {
            let raw = first(form, "scope").ok_or_else(|| aad::missing_parameter("scope"))?;
            if raw.split_whitespace().any(|s| !s.ends_with("/.default")) {
                return Err(aad::cc_scope_needs_default(raw));
            }
            let scopes = Scopes::parse(raw).map_err(|e| match e {
                ScopeError::MultipleResources | ScopeError::Invalid => aad::invalid_scope(raw),
                ScopeError::UnknownResource(r) => aad::resource_not_found(&r, &tenant.name),
            })?;
            scopes.resource.ok_or_else(|| aad::invalid_scope(raw))?
        }
        Flavor::V1 => {
            let raw = first(form, "resource").ok_or_else(|| aad::missing_parameter("resource"))?;
            ResourceRef::named(raw).ok_or_else(|| aad::resource_not_found(raw, &tenant.name))?
        }
    };
    // The SAM app is granted app-only access in the partner tenant only;
    // elsewhere it has no app role assignments to act on.
    if tenant.id != app.home_tenant {
        return Err(aad::app_not_found(&app.client_id, &tenant.name));
    }
    let appidacr = match auth {
        ClientAuth::Secret => "1",
        ClientAuth::Certificate | ClientAuth::Federated => "2",
    };
    let t = mint(
        state,
        AppTokenRequest {
            app,
            tenant,
            resource: &resource,
            appidacr,
            expires_in: entra.token_lifetime(),
            mi_resource_id: None,
        },
    );
    Ok(Issued {
        access_token: t.access_token,
        expires_in: t.expires_in,
        now: t.now,
        refresh_token: None,
        id_token: None,
        client_info: None,
        scope: None,
        scope_v1: None,
        resource: resource.prefix,
    })
}
