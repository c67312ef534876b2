//! The authorization code flow with PKCE (identity-platform/
//! v2-oauth2-auth-code-flow): `/authorize`, which signs the app's partner admin in
//! without a prompt and redirects with a code, and the code's redemption at
//! the token endpoint.
//!
//! Errors before the redirect URI is known to be registered are shown as an
//! error page (Entra never redirects to an unverified URI); later ones go to
//! the redirect URI as `error`/`error_description`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use tenantwatch_common::sync::lock;

use super::aadsts;
use super::authority::{resolve, Authority};
use super::client_auth::ClientAuth;
use super::errors::error_ctx;
use super::errors::{aad, AadError};
use super::state::Entra;
use super::token::{Flavor, Issued};
use crate::http::{self, first};
use crate::resources;
use crate::world::{random_token, App};

use super::user_tokens::{self, Requester};
use crate::state::SimState;

/// Codes are short lived: about ten minutes (auth code flow docs).
pub(crate) const CODE_LIFETIME_SECS: i64 = 600;

/// How `code_challenge` was derived (RFC 7636 4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    S256,
    Plain,
}

/// What `/authorize` remembers about a code.
#[derive(Debug, Clone)]
struct AuthCode {
    client_id: String,
    redirect_uri: String,
    challenge: Option<(String, Method)>,
    scope: String,
    nonce: Option<String>,
    /// Tenant the code is for (`organizations`/`common` resolve to the
    /// admin's home tenant).
    tenant_id: String,
    issued_at: i64,
    redeemed: bool,
}

/// Issued authorization codes.
#[derive(Debug, Default)]
pub(crate) struct AuthCodes {
    codes: Mutex<HashMap<String, AuthCode>>,
}

/// Redirect URIs registered on every partner's SAM app: loopback on any
/// port and path, as for a "Mobile and desktop applications" platform entry.
fn registered_redirect(app: &App, state: &SimState, uri: &str) -> bool {
    if !state.world.is_sam_app(&app.client_id) {
        return false;
    }
    let Ok(u) = url::Url::parse(uri) else {
        return false;
    };
    matches!(u.scheme(), "http" | "https")
        && matches!(
            u.host_str(),
            Some("localhost") | Some("127.0.0.1") | Some("[::1]")
        )
        && u.fragment().is_none()
}

/// `GET /{tenant}/oauth2/v2.0/authorize`.
pub(crate) async fn authorize(
    State(entra): State<Arc<Entra>>,
    Path(tenant): Path<String>,
    uri: Uri,
) -> Response {
    let state = &*entra.sim;
    let q = http::query(&uri);
    let failure = match validate(&entra, &tenant, &q) {
        Ok(ok) => return ok,
        Err(f) => *f,
    };
    match failure {
        Failure::Page(e) => error_page(state, &e),
        Failure::Redirect {
            to,
            mode,
            error,
            st,
        } => {
            let ctx = error_ctx(state, http::new_id(), None);
            let body = error.body(&ctx);
            let mut params = vec![
                ("error", body.error),
                ("error_description", body.error_description),
                ("error_uri", body.error_uri),
            ];
            if let Some(s) = st {
                params.push(("state", s));
            }
            respond(&to, mode, &params)
        }
    }
}

/// Why `/authorize` did not issue a code.
enum Failure {
    /// Shown to the user; nothing is sent to the app.
    Page(AadError),
    /// Sent to the (verified) redirect URI.
    Redirect {
        to: String,
        mode: ResponseMode,
        error: AadError,
        st: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResponseMode {
    Query,
    Fragment,
    FormPost,
}

fn validate(entra: &Entra, tenant: &str, q: &[(String, String)]) -> Result<Response, Box<Failure>> {
    let state = &*entra.sim;
    let authority = resolve(state, tenant).map_err(page)?;
    let client_id =
        first(q, "client_id").ok_or_else(|| page(aad::missing_parameter("client_id")))?;
    let app = state
        .world
        .app(client_id)
        .ok_or_else(|| page(aad::app_not_found(client_id, &authority.label())))?;
    let redirect_uri =
        first(q, "redirect_uri").ok_or_else(|| page(aad::missing_parameter("redirect_uri")))?;
    if !registered_redirect(app, state, redirect_uri) {
        return Err(page(reply_url_mismatch(redirect_uri, &app.client_id)));
    }
    let st = first(q, "state").map(str::to_string);
    let mode = match first(q, "response_mode") {
        None | Some("query") => ResponseMode::Query,
        Some("fragment") => ResponseMode::Fragment,
        Some("form_post") => ResponseMode::FormPost,
        Some(other) => {
            return Err(redirect(
                redirect_uri,
                ResponseMode::Query,
                unsupported_response_mode(other),
                st,
            ))
        }
    };
    let fail = |error: AadError| redirect(redirect_uri, mode, error, st.clone());
    match first(q, "response_type") {
        Some("code") => {}
        None => return Err(fail(aad::missing_parameter("response_type"))),
        Some(other) => return Err(fail(unsupported_response_type(other))),
    }
    let scope = first(q, "scope").ok_or_else(|| fail(aad::missing_parameter("scope")))?;
    if let Some(r) = resources::unknown_resource(scope) {
        return Err(fail(aad::resource_not_found(&r, &authority.label())));
    }
    let challenge = match (
        first(q, "code_challenge"),
        first(q, "code_challenge_method"),
    ) {
        (None, _) => None,
        (Some(c), m) => {
            let method = match m {
                Some("S256") => Method::S256,
                None | Some("plain") => Method::Plain,
                Some(other) => return Err(fail(bad_challenge_method(other))),
            };
            // RFC 7636 4.2: 43 to 128 characters.
            if !(43..=128).contains(&c.len()) {
                return Err(fail(challenge_size()));
            }
            Some((c.to_string(), method))
        }
    };
    let tenant_id = match &authority {
        Authority::Tenant(t) => t.id.clone(),
        // The app's own partner admin is the one who signs in.
        Authority::Multi(_) => state.world.partner_of_app(app).tenant.id.clone(),
    };
    let now = state.clock.now_unix();
    let code = format!("1.AXoA{}", random_token(320));
    state.remember_secret(&code);
    {
        let mut codes = lock(&entra.auth_codes.codes);
        // Drop codes nobody can redeem any more, so the map stays small.
        codes.retain(|_, c| now - c.issued_at <= CODE_LIFETIME_SECS * 6);
        codes.insert(
            code.clone(),
            AuthCode {
                client_id: app.client_id.clone(),
                redirect_uri: redirect_uri.to_string(),
                challenge,
                scope: scope.to_string(),
                nonce: first(q, "nonce").map(str::to_string),
                tenant_id,
                issued_at: now,
                redeemed: false,
            },
        );
    }
    let mut params = vec![("code", code)];
    if let Some(s) = st {
        params.push(("state", s));
    }
    params.push(("session_state", http::new_id()));
    Ok(respond(redirect_uri, mode, &params))
}

/// Boxed: the failure is large and rare.
fn page(e: AadError) -> Box<Failure> {
    Box::new(Failure::Page(e))
}

fn redirect(to: &str, mode: ResponseMode, error: AadError, st: Option<String>) -> Box<Failure> {
    Box::new(Failure::Redirect {
        to: to.to_string(),
        mode,
        error,
        st,
    })
}

/// Sends `params` to the app the way `response_mode` asks.
fn respond(redirect_uri: &str, mode: ResponseMode, params: &[(&str, String)]) -> Response {
    let encoded = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())))
        .finish();
    match mode {
        ResponseMode::Query => {
            let sep = if redirect_uri.contains('?') { '&' } else { '?' };
            found(&format!("{redirect_uri}{sep}{encoded}"))
        }
        ResponseMode::Fragment => found(&format!("{redirect_uri}#{encoded}")),
        ResponseMode::FormPost => {
            let inputs: String = params
                .iter()
                .map(|(k, v)| {
                    format!(
                        "<input type=\"hidden\" name=\"{}\" value=\"{}\" />",
                        html_escape(k),
                        html_escape(v)
                    )
                })
                .collect();
            let page = format!(
                "<html><head><title>Working...</title></head><body><form method=\"POST\" name=\"hiddenform\" action=\"{}\">{inputs}<noscript><p>Script is disabled. Click Submit to continue.</p><input type=\"submit\" value=\"Submit\" /></noscript></form><script language=\"javascript\">document.forms[0].submit();</script></body></html>",
                html_escape(redirect_uri)
            );
            http::with_headers(
                StatusCode::OK,
                "text/html; charset=utf-8",
                Body::from(page),
                &[],
            )
        }
    }
}

fn found(location: &str) -> Response {
    http::with_headers(
        StatusCode::FOUND,
        "text/html; charset=utf-8",
        Body::from(format!(
            "<html><head><title>Object moved</title></head><body><h2>Object moved to <a href=\"{}\">here</a>.</h2></body></html>",
            html_escape(location)
        )),
        &[("location", location.to_string())],
    )
}

/// Entra's sign-in error page, reduced to what a test or a person reads.
/// (Entra renders it with status 200; 400 here lets scripts tell it apart.)
fn error_page(state: &SimState, e: &AadError) -> Response {
    let ctx = error_ctx(state, http::new_id(), None);
    let page = format!(
        "<!DOCTYPE html><html><head><title>Sign in to your account</title></head><body><h1>Sorry, but we're having trouble signing you in.</h1><p id=\"error\">AADSTS{}: {}</p><p>Request Id: {}<br/>Correlation Id: {}<br/>Timestamp: {}</p></body></html>",
        e.code,
        html_escape(&e.message),
        ctx.trace_id,
        ctx.correlation_id,
        ctx.timestamp
    );
    http::with_headers(
        StatusCode::BAD_REQUEST,
        "text/html; charset=utf-8",
        Body::from(page),
        &[],
    )
}

/// Minimal escaping for text and attribute values in the pages above.
pub(crate) fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn reply_url_mismatch(uri: &str, client_id: &str) -> AadError {
    AadError::bad(
        50011,
        "invalid_request",
        format!("The redirect URI '{uri}' specified in the request does not match the redirect URIs configured for the application '{client_id}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more about how to fix this."),
    )
}

fn unsupported_response_type(t: &str) -> AadError {
    AadError::bad(
        70005,
        "unsupported_response_type",
        format!("The application requested an unsupported response type '{t}'. Use 'code' for the authorization code flow."),
    )
}

fn unsupported_response_mode(m: &str) -> AadError {
    AadError::bad(
        70007,
        "invalid_request",
        format!("The application returned an unsupported value of 'response_mode' ('{m}') when requesting a token."),
    )
}

fn bad_challenge_method(m: &str) -> AadError {
    AadError::bad(
        90100,
        "invalid_request",
        format!("The parameter code_challenge_method is empty or not valid: '{m}'. Supported values are 'S256' and 'plain'."),
    )
}

fn challenge_size() -> AadError {
    AadError::bad(
        501491,
        "invalid_request",
        "Invalid size of Code_Challenge parameter.".into(),
    )
}

// ------------------------------------------------------------- redemption

/// `grant_type=authorization_code`: single use, ten minutes of sim time,
/// same redirect URI and tenant, PKCE verifier matching the challenge.
pub(crate) fn redeem(
    entra: &Entra,
    app: &App,
    authority: Authority<'_>,
    form: &[(String, String)],
    flavor: Flavor,
    client: Option<ClientAuth>,
) -> Result<Issued, AadError> {
    let state = &*entra.sim;
    let code = first(form, "code").ok_or_else(|| aad::missing_parameter("code"))?;
    let redirect_uri =
        first(form, "redirect_uri").ok_or_else(|| aad::missing_parameter("redirect_uri"))?;
    let partner = state.world.partner_of_app(app);
    let target = user_tokens::target_tenant(state, &authority, partner)?;
    let now = state.clock.now_unix();
    let entry = {
        let mut codes = lock(&entra.auth_codes.codes);
        let entry = codes.get_mut(code).ok_or_else(aad::malformed_grant)?;
        if !entry.client_id.eq_ignore_ascii_case(&app.client_id) {
            return Err(aad::grant_for_other_client());
        }
        if entry.redeemed {
            return Err(aadsts::code_already_redeemed());
        }
        if now - entry.issued_at > CODE_LIFETIME_SECS {
            return Err(aadsts::expired_grant());
        }
        if entry.tenant_id != target.id {
            return Err(aadsts::code_for_other_tenant());
        }
        if entry.redirect_uri != redirect_uri {
            return Err(aadsts::redirect_mismatch(redirect_uri, &entry.redirect_uri));
        }
        if let Some((challenge, method)) = &entry.challenge {
            let verifier = first(form, "code_verifier").ok_or_else(aadsts::pkce_mismatch)?;
            let derived = match method {
                Method::S256 => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
                Method::Plain => verifier.to_string(),
            };
            if &derived != challenge {
                return Err(aadsts::pkce_mismatch());
            }
        }
        entry.redeemed = true;
        entry.clone()
    };
    user_tokens::issue_from_form(
        entra,
        form,
        Requester {
            app,
            target,
            partner,
            flavor,
            client,
            mfa: entra.sign_in_mfa(),
        },
        Some(&entry.scope),
        entry.nonce,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_redirects_append_to_existing_queries() {
        let r = respond(
            "http://localhost:1/cb?x=1",
            ResponseMode::Query,
            &[("code", "a b".into())],
        );
        assert_eq!(r.status(), StatusCode::FOUND);
        assert_eq!(
            r.headers()["location"],
            "http://localhost:1/cb?x=1&code=a+b"
        );
        let r = respond(
            "http://localhost",
            ResponseMode::Fragment,
            &[("code", "c".into())],
        );
        assert_eq!(r.headers()["location"], "http://localhost#code=c");
        let r = respond(
            "http://localhost",
            ResponseMode::FormPost,
            &[("code", "c".into())],
        );
        assert_eq!(r.status(), StatusCode::OK);
    }

    #[test]
    fn escaping() {
        assert_eq!(
            html_escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
