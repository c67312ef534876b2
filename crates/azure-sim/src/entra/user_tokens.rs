//! Delegated tokens for a partner's admin agent: the refresh-token grant,
//! and the token issuance shared with the authorization-code and device-code
//! grants (access token, rotated refresh token, optional id token). Each
//! partner's admin consented to that partner's SAM app only, and reaches
//! that partner's customers only.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::authority::Authority;
use super::client_auth::ClientAuth;
use super::errors::{aad, AadError};
use super::refresh_tokens::RefreshGrant;
use super::state::Entra;
use super::token::{Flavor, Issued};
use crate::clock::{dotnet_round_trip, to_datetime};
use crate::http::first;
use crate::resources::{ResourceRef, ScopeError, Scopes};
use crate::state::SimState;
use crate::world::{random_token, App, Partner, Tenant, User};

/// Issues a refresh token for a partner's admin and SAM app, as the
/// one-time consent would have.
pub(crate) fn issue_consent_refresh_token(entra: &Entra, partner: &Partner) -> String {
    new_refresh_token(entra, partner, false, true)
}

/// Refresh tokens lapse after this long without being redeemed.
pub(crate) const REFRESH_TOKEN_INACTIVITY_SECS: i64 = 90 * 86_400;

/// Issues a refresh token for a partner's admin and SAM app (the admin's
/// home tenant is the partner's); `mfa` says whether the sign-in it
/// descends from used MFA.
pub(crate) fn new_refresh_token(
    entra: &Entra,
    partner: &Partner,
    public: bool,
    mfa: bool,
) -> String {
    let state = &*entra.sim;
    let token = format!("1.AXoA{}", random_token(250));
    entra.insert_refresh_token(
        token.clone(),
        RefreshGrant {
            client_id: partner.sam_app.client_id.clone(),
            user_oid: partner.admin.oid.clone(),
            home_tenant: partner.tenant.id.clone(),
            issued_at: state.clock.now_unix(),
            seq: 0,
            public,
            mfa,
        },
    );
    token
}

/// The grant behind a refresh token if the token endpoint would accept it
/// now: known, not revoked (AADSTS50173), not expired (AADSTS700082).
pub(crate) fn check_refresh_token(entra: &Entra, token: &str) -> Result<RefreshGrant, AadError> {
    let state = &*entra.sim;
    let grant = entra
        .refresh_tokens
        .get(token)
        .ok_or_else(aad::malformed_grant)?;
    let fmt = |t: i64| dotnet_round_trip(to_datetime(t));
    if entra.refresh_tokens.is_revoked(&grant) {
        return Err(aad::refresh_token_revoked(
            &fmt(grant.issued_at),
            &fmt(entra.refresh_tokens.valid_from(&grant.user_oid)),
        ));
    }
    if state.clock.now_unix() - grant.issued_at > REFRESH_TOKEN_INACTIVITY_SECS {
        return Err(aad::refresh_token_expired(&fmt(grant.issued_at)));
    }
    Ok(grant)
}

/// `grant_type=refresh_token`.
pub(crate) fn refresh_token(
    entra: &Entra,
    app: &App,
    authority: Authority<'_>,
    form: &[(String, String)],
    flavor: Flavor,
    client: Option<ClientAuth>,
) -> Result<Issued, AadError> {
    let state = &*entra.sim;
    let w = &state.world;
    let presented =
        first(form, "refresh_token").ok_or_else(|| aad::missing_parameter("refresh_token"))?;
    let grant = entra
        .refresh_tokens
        .get(presented)
        .ok_or_else(aad::malformed_grant)?;
    if !grant.client_id.eq_ignore_ascii_case(&app.client_id) {
        return Err(aad::grant_for_other_client());
    }
    // Tokens from confidential flows need the client's credential again;
    // those from public-client flows (no credential then) do not.
    if client.is_none() && !grant.public {
        return Err(aad::missing_client_secret());
    }
    let grant = check_refresh_token(entra, presented)?;
    // Each partner's admin is the only user who ever consented to its app.
    let partner = w
        .partner_by_admin(&grant.user_oid)
        .filter(|p| p.tenant.id.eq_ignore_ascii_case(&grant.home_tenant))
        .ok_or_else(aad::malformed_grant)?;
    let target = target_tenant(state, &authority, partner)?;
    issue_from_form(
        entra,
        form,
        Requester {
            app,
            target,
            partner,
            flavor,
            client,
            mfa: grant.mfa,
        },
        None,
        None,
    )
}

/// The tenant the token is for: the authority's, or the user's home for
/// `organizations`/`common`. Delegated admin (GDAP) lets a partner's admin
/// act in every customer of that partner, and nowhere else: another
/// partner's customer is a tenant like any other it has no relationship
/// with (AADSTS50020).
pub(crate) fn target_tenant<'a>(
    state: &'a SimState,
    authority: &Authority<'a>,
    partner: &'a Partner,
) -> Result<&'a Tenant, AadError> {
    let home = &partner.tenant;
    let target = match authority {
        Authority::Tenant(t) => t,
        Authority::Multi(_) => home,
    };
    if target.id != home.id && !state.has_delegated_access(partner.index, &target.id) {
        return Err(aad::user_not_in_tenant(&partner.admin.upn, &target.name));
    }
    Ok(target)
}

/// The scopes (v2 `scope`) or resource (v1 `resource`) of a delegated
/// request; `fallback` is used when a v2 request omits `scope` (code and
/// device grants may, and then get what was consented).
pub(crate) fn requested_scopes(
    form: &[(String, String)],
    flavor: Flavor,
    target: &Tenant,
    fallback: Option<&str>,
) -> Result<(Scopes, ResourceRef), AadError> {
    match flavor {
        Flavor::V2 => {
            let raw = first(form, "scope")
                .or(fallback)
                .ok_or_else(|| aad::missing_parameter("scope"))?;
            let scopes = Scopes::parse(raw).map_err(|e| match e {
                ScopeError::MultipleResources => aad::multiple_resources(raw),
                ScopeError::Invalid => aad::invalid_scope(raw),
                ScopeError::UnknownResource(r) => aad::resource_not_found(&r, &target.name),
            })?;
            let resource = scopes.resource_or_graph();
            Ok((scopes, resource))
        }
        Flavor::V1 => {
            let raw = first(form, "resource").ok_or_else(|| aad::missing_parameter("resource"))?;
            let resource = ResourceRef::named(raw)
                .ok_or_else(|| aad::resource_not_found(raw, &target.name))?;
            let mut scopes = Scopes::parse(first(form, "scope").unwrap_or(""))
                .unwrap_or_else(|_| empty_scopes());
            scopes.resource = Some(resource.clone());
            scopes.permissions = vec![".default".into()];
            Ok((scopes, resource))
        }
    }
}

/// Everything a delegated token issuance needs.
pub(crate) struct UserGrant<'a> {
    pub app: &'a App,
    pub target: &'a Tenant,
    /// Whose admin signs in; their home tenant is the partner's.
    pub partner: &'a Partner,
    pub scopes: Scopes,
    pub resource: ResourceRef,
    pub flavor: Flavor,
    /// `client_info=1` was sent (MSAL always sends it).
    pub client_info: bool,
    /// OIDC `nonce` from the authorization request, echoed in the id token.
    pub nonce: Option<String>,
    /// How the client authenticated; `None` marks a public-client flow.
    pub client: Option<ClientAuth>,
    /// The sign-in behind the grant used MFA.
    pub mfa: bool,
    /// The client declared `cp1` and the resource is CAE-capable: a
    /// long-lived CAE token.
    pub cae: bool,
}

/// Who asks for a user token, and for which tenant: what every user grant
/// (refresh token, authorization code, device code) knows before its scopes.
pub(crate) struct Requester<'a> {
    pub app: &'a App,
    pub target: &'a Tenant,
    /// Whose admin signs in; their home tenant is the partner's.
    pub partner: &'a Partner,
    pub flavor: Flavor,
    /// How the client authenticated; `None` marks a public-client flow.
    pub client: Option<ClientAuth>,
    /// The sign-in behind the grant used MFA: an interactive grant asks
    /// [`Entra::sign_in_mfa`], a refresh token carries its sign-in's.
    pub mfa: bool,
}

/// Reads the scopes from the form (falling back to `granted`, the scopes
/// approved earlier in the flow) and issues the tokens: the tail every user
/// grant shares.
pub(crate) fn issue_from_form(
    entra: &Entra,
    form: &[(String, String)],
    r: Requester<'_>,
    granted: Option<&str>,
    nonce: Option<String>,
) -> Result<Issued, AadError> {
    let (scopes, resource) = requested_scopes(form, r.flavor, r.target, granted)?;
    let cae = resource.api.cae && crate::cae::declares_cp1(first(form, "claims"));
    issue(
        entra,
        UserGrant {
            app: r.app,
            target: r.target,
            partner: r.partner,
            scopes,
            resource,
            flavor: r.flavor,
            client_info: first(form, "client_info") == Some("1"),
            nonce,
            client: r.client,
            mfa: r.mfa,
            cae,
        },
    )
}

/// Access token, a fresh refresh token and (with `openid`) an id token for
/// a partner's admin.
pub(crate) fn issue(entra: &Entra, g: UserGrant<'_>) -> Result<Issued, AadError> {
    let state = &*entra.sim;
    // The admin consented to their partner's SAM app, and only to its
    // listed permissions.
    if g.app.client_id != g.partner.sam_app.client_id || !g.scopes.unconsented().is_empty() {
        return Err(aad::consent_required(&g.app.client_id, &g.app.name));
    }
    let home = &g.partner.tenant;
    let now = state.clock.now_unix();
    let scp = g.scopes.granted_short(&g.resource).join(" ");
    let expires_in = if g.cae {
        entra.cae_token_lifetime()
    } else {
        entra.token_lifetime()
    };
    let user = &g.partner.admin;
    let appidacr = match g.client {
        None => "0",
        Some(ClientAuth::Secret) => "1",
        Some(ClientAuth::Certificate | ClientAuth::Federated) => "2",
    };
    let mut claims = json!({
        "aud": g.resource.aud,
        "iss": format!("https://sts.windows.net/{}/", g.target.id),
        "iat": now,
        "nbf": now,
        "exp": now + expires_in,
        "acr": "1",
        "aio": random_token(40),
        // Partner Center checks this claim (partnercenter/docs-mfa-enforcement.md).
        "amr": if g.mfa { json!(["pwd", "mfa"]) } else { json!(["pwd"]) },
        "appid": g.app.client_id,
        "appidacr": appidacr,
        "family_name": "Agent",
        "given_name": "Partner Admin",
        "ipaddr": "127.0.0.1",
        "name": user.name,
        "oid": user.oid,
        "rh": format!("0.{}.", random_token(20)),
        "scp": scp,
        "sub": pairwise_sub(&user.oid, &g.resource.prefix),
        "tid": g.target.id,
        "unique_name": user.upn,
        "upn": user.upn,
        "uti": random_token(22),
        "ver": "1.0",
    });
    if g.cae {
        // What a resource that asked for the `xms_cc` optional claim sees.
        claims["xms_cc"] = json!([crate::cae::CP1]);
    }
    if g.target.id != home.id {
        claims["idp"] = json!(format!("https://sts.windows.net/{}/", home.id));
    }
    let access_token = state.signer.sign(&claims);
    state.remember_secret(&access_token);
    // Every redemption returns a new refresh token; the old one stays valid.
    let refresh = new_refresh_token(entra, g.partner, g.client.is_none(), g.mfa);
    let id_token = g.scopes.openid.then(|| {
        id_token(
            state,
            IdToken {
                app: g.app,
                user,
                tenant: g.target,
                now,
                expires_in,
                flavor: g.flavor,
                nonce: g.nonce.as_deref(),
            },
        )
    });
    let client_info = g
        .client_info
        .then(|| URL_SAFE_NO_PAD.encode(json!({"uid": user.oid, "utid": home.id}).to_string()));
    Ok(Issued {
        access_token,
        expires_in,
        now,
        refresh_token: Some(refresh),
        id_token,
        client_info,
        scope: Some(g.scopes.granted_scope_string(&g.resource)),
        scope_v1: Some(scp),
        resource: g.resource.prefix,
    })
}

fn empty_scopes() -> Scopes {
    Scopes {
        openid: false,
        profile: false,
        offline_access: false,
        email: false,
        resource: None,
        permissions: Vec::new(),
    }
}

struct IdToken<'a> {
    app: &'a App,
    user: &'a User,
    tenant: &'a Tenant,
    now: i64,
    expires_in: i64,
    flavor: Flavor,
    nonce: Option<&'a str>,
}

fn id_token(state: &SimState, t: IdToken<'_>) -> String {
    let user = t.user;
    let (iss, ver) = match t.flavor {
        Flavor::V2 => (
            format!("{}/{}/v2.0", state.origins.login, t.tenant.id),
            "2.0",
        ),
        Flavor::V1 => (format!("https://sts.windows.net/{}/", t.tenant.id), "1.0"),
    };
    let mut claims = json!({
        "aud": t.app.client_id,
        "iss": iss,
        "iat": t.now,
        "nbf": t.now,
        "exp": t.now + t.expires_in,
        "name": user.name,
        "oid": user.oid,
        "preferred_username": user.upn,
        "rh": format!("0.{}.", random_token(20)),
        "sub": pairwise_sub(&user.oid, &t.app.client_id),
        "tid": t.tenant.id,
        "upn": user.upn,
        "uti": random_token(22),
        "ver": ver,
    });
    if let Some(n) = t.nonce {
        claims["nonce"] = json!(n);
    }
    let token = state.signer.sign(&claims);
    state.remember_secret(&token);
    token
}

/// `sub` is pairwise: stable per user and app, different across apps.
fn pairwise_sub(oid: &str, audience: &str) -> String {
    let d = Sha256::new()
        .chain_update(oid.as_bytes())
        .chain_update(b"/")
        .chain_update(audience.as_bytes())
        .finalize();
    URL_SAFE_NO_PAD.encode(d)
}
