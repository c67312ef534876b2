//! The device authorization grant as Entra implements RFC 8628
//! (identity-platform/v2-oauth2-device-code): `/devicecode`, the
//! `/devicelogin` page where the admin enters the user code, and the
//! polling at the token endpoint (`authorization_pending`, `slow_down`,
//! `authorization_declined`, `expired_token`, `bad_verification_code`).
//!
//! Code expiry runs on the simulator's clock; the polling interval on real
//! time, since clients really sleep between polls.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use rand::Rng;
use serde::Serialize;
use tenantwatch_common::sync::lock;

use super::aadsts;
use super::authority::{resolve, Authority};
use super::authorize::html_escape;
use super::client_auth::ClientAuth;
use super::errors::error_response;
use super::errors::{aad, AadError};
use super::state::Entra;
use super::token::{Flavor, Issued};
use crate::http::{self, first};
use crate::resources;
use crate::world::{random_token, App};

use super::user_tokens::{self, Requester};

/// Entra's default: the user has 15 minutes to sign in.
pub(crate) const EXPIRES_IN_SECS: i64 = 900;

/// Entra says 5; the simulator says 1 so tests poll quickly.
pub(crate) const INTERVAL_SECS: u64 = 1;

/// RFC 8628 3.5: after `slow_down` the interval grows by five seconds.
const SLOW_DOWN_STEP_SECS: u64 = 5;

/// Network and timer jitter tolerated before a poll counts as too fast.
const POLL_SLACK: Duration = Duration::from_millis(100);

/// Characters of user codes: upper-case letters and digits, as Entra's.
const USER_CODE_CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Pending,
    Approved,
    Denied,
    Redeemed,
}

#[derive(Debug, Clone)]
struct DeviceGrant {
    user_code: String,
    client_id: String,
    /// The authority the code was requested at; polls must use the same.
    authority_key: String,
    scope: String,
    /// Sim time after which the code is dead.
    expires_at: i64,
    interval: u64,
    last_poll: Option<Instant>,
    status: Status,
}

/// Outstanding device codes, by device code.
#[derive(Debug, Default)]
pub(crate) struct DeviceCodes {
    grants: Mutex<HashMap<String, DeviceGrant>>,
}

impl DeviceCodes {
    /// Marks the pending, unexpired code with this user code as approved
    /// (`true`) or declined (`false`); `false` result if there is none.
    pub fn decide(&self, user_code: &str, approve: bool, now: i64) -> bool {
        self.decide_for(user_code, approve, now).is_some()
    }

    /// [`DeviceCodes::decide`], answering the client id the code was for.
    fn decide_for(&self, user_code: &str, approve: bool, now: i64) -> Option<String> {
        let wanted = normalise(user_code);
        let mut grants = lock(&self.grants);
        let g = grants.values_mut().find(|g| {
            g.user_code == wanted && g.status == Status::Pending && now <= g.expires_at
        })?;
        g.status = if approve {
            Status::Approved
        } else {
            Status::Denied
        };
        Some(g.client_id.clone())
    }
}

/// Users type codes in any case, sometimes with spaces or dashes.
fn normalise(user_code: &str) -> String {
    user_code
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn new_user_code() -> String {
    let mut rng = rand::thread_rng();
    (0..9)
        .map(|_| char::from(USER_CODE_CHARS[rng.gen_range(0..USER_CODE_CHARS.len())]))
        .collect()
}

/// The device authorization response, in the field order Entra sends.
#[derive(Serialize)]
struct DeviceCodeResponse {
    user_code: String,
    device_code: String,
    verification_uri: String,
    expires_in: i64,
    interval: u64,
    message: String,
}

/// `POST /{tenant}/oauth2/v2.0/devicecode`.
pub(crate) async fn devicecode(
    State(entra): State<Arc<Entra>>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    let state = &*entra.sim;
    match start(&entra, &tenant, &http::pairs(&body)) {
        Ok(r) => http::json(
            StatusCode::OK,
            &r,
            &[("cache-control", "no-store, no-cache".to_string())],
        ),
        Err(e) => error_response(state, &e),
    }
}

fn start(
    entra: &Entra,
    tenant: &str,
    form: &[(String, String)],
) -> Result<DeviceCodeResponse, AadError> {
    let state = &*entra.sim;
    let authority = resolve(state, tenant)?;
    let client_id = first(form, "client_id").ok_or_else(|| aad::missing_parameter("client_id"))?;
    let app = state
        .world
        .app(client_id)
        .ok_or_else(|| aad::app_not_found(client_id, &authority.label()))?;
    let scope = first(form, "scope").ok_or_else(|| aad::missing_parameter("scope"))?;
    if let Some(r) = resources::unknown_resource(scope) {
        return Err(aad::resource_not_found(&r, &authority.label()));
    }
    let now = state.clock.now_unix();
    let user_code = new_user_code();
    let device_code = format!("DAQABIQEAAAB{}", random_token(180));
    state.remember_secret(&device_code);
    {
        let mut grants = lock(&entra.device_codes.grants);
        // Forget codes long dead, so the map stays small.
        grants.retain(|_, g| now <= g.expires_at + EXPIRES_IN_SECS);
        grants.insert(
            device_code.clone(),
            DeviceGrant {
                user_code: user_code.clone(),
                client_id: app.client_id.clone(),
                authority_key: authority.key(),
                scope: scope.to_string(),
                expires_at: now + EXPIRES_IN_SECS,
                interval: INTERVAL_SECS,
                last_poll: None,
                status: Status::Pending,
            },
        );
    }
    let verification_uri = format!("{}/devicelogin", state.origins.login);
    Ok(DeviceCodeResponse {
        message: format!(
            "To sign in, use a web browser to open the page {verification_uri} and enter the code {user_code} to authenticate."
        ),
        user_code,
        device_code,
        verification_uri,
        expires_in: EXPIRES_IN_SECS,
        interval: INTERVAL_SECS,
    })
}

/// `grant_type=urn:ietf:params:oauth:grant-type:device_code`. The app may
/// poll with or without its credential (public client flows are allowed).
pub(crate) fn redeem(
    entra: &Entra,
    app: &App,
    authority: Authority<'_>,
    form: &[(String, String)],
    flavor: Flavor,
    client: Option<ClientAuth>,
) -> Result<Issued, AadError> {
    let state = &*entra.sim;
    let device_code = first(form, "device_code")
        .or_else(|| first(form, "code"))
        .ok_or_else(|| aad::missing_parameter("device_code"))?;
    let now = state.clock.now_unix();
    let scope = {
        let mut grants = lock(&entra.device_codes.grants);
        let g = grants
            .get_mut(device_code)
            .ok_or_else(aadsts::bad_verification_code)?;
        if !g.client_id.eq_ignore_ascii_case(&app.client_id) {
            return Err(aad::grant_for_other_client());
        }
        if g.authority_key != authority.key() {
            return Err(aadsts::bad_verification_code());
        }
        if now > g.expires_at && g.status != Status::Redeemed {
            return Err(aadsts::device_code_expired());
        }
        let polled_at = Instant::now();
        let too_fast = g.last_poll.is_some_and(|last| {
            polled_at.duration_since(last) + POLL_SLACK < Duration::from_secs(g.interval)
        });
        g.last_poll = Some(polled_at);
        if too_fast {
            g.interval += SLOW_DOWN_STEP_SECS;
            return Err(aadsts::slow_down(g.interval));
        }
        match g.status {
            Status::Pending => return Err(aadsts::authorization_pending()),
            Status::Denied => return Err(aadsts::authorization_declined()),
            Status::Redeemed => return Err(aadsts::device_code_redeemed()),
            Status::Approved => g.status = Status::Redeemed,
        }
        g.scope.clone()
    };
    let partner = state.world.partner_of_app(app);
    let target = user_tokens::target_tenant(state, &authority, partner)?;
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
        Some(&scope),
        None,
    )
}

// ------------------------------------------------------------- the page

/// `GET /devicelogin`: the code entry form.
pub(crate) async fn page() -> Response {
    html(
        StatusCode::OK,
        "Enter code",
        "<p>Enter the code displayed on your app or device.</p>\
         <form method=\"post\" action=\"/devicelogin\">\
         <input type=\"text\" name=\"otc\" placeholder=\"Code\" maxlength=\"12\" autofocus />\
         <button type=\"submit\" name=\"action\" value=\"approve\">Next</button>\
         <button type=\"submit\" name=\"action\" value=\"deny\">Cancel</button>\
         </form>",
    )
}

/// `POST /devicelogin` with `otc=<user code>`: signs in the admin of the
/// partner whose app asked, and approves the request (`action=deny`
/// declines it instead).
pub(crate) async fn submit(State(entra): State<Arc<Entra>>, body: Bytes) -> Response {
    let state = &*entra.sim;
    let form = http::pairs(&body);
    let Some(code) = first(&form, "otc") else {
        return html(
            StatusCode::BAD_REQUEST,
            "Enter code",
            "<p id=\"error\">Enter the code displayed on your app or device.</p>",
        );
    };
    let approve = first(&form, "action") != Some("deny");
    let now = state.clock.now_unix();
    let Some(client_id) = entra.device_codes.decide_for(code, approve, now) else {
        return html(
            StatusCode::BAD_REQUEST,
            "Enter code",
            "<p id=\"error\">That code didn't work. Check the code and try again.</p>",
        );
    };
    let w = &state.world;
    let partner = w
        .app(&client_id)
        .map_or_else(|| w.default_partner(), |a| w.partner_of_app(a));
    let admin = html_escape(&partner.admin.upn);
    let text = if approve {
        format!("<p id=\"result\">{admin} signed in. You have signed in to the application on your device. You may now close this window.</p>")
    } else {
        "<p id=\"result\">You declined the sign-in request. You may now close this window.</p>"
            .to_string()
    };
    html(StatusCode::OK, "Signed in", &text)
}

fn html(status: StatusCode, title: &str, body: &str) -> Response {
    http::with_headers(
        status,
        "text/html; charset=utf-8",
        Body::from(format!(
            "<!DOCTYPE html><html><head><title>{title}</title></head><body><h1>{title}</h1>{body}</body></html>"
        )),
        &[],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_and_decisions() {
        let c = new_user_code();
        assert_eq!(c.len(), 9);
        assert!(c.bytes().all(|b| USER_CODE_CHARS.contains(&b)));
        assert_eq!(normalise(" abc-def "), "ABCDEF");

        let codes = DeviceCodes::default();
        lock(&codes.grants).insert(
            "d".into(),
            DeviceGrant {
                user_code: "ABCDEFGHJ".into(),
                client_id: "c".into(),
                authority_key: "t".into(),
                scope: "openid".into(),
                expires_at: 100,
                interval: 1,
                last_poll: None,
                status: Status::Pending,
            },
        );
        assert!(!codes.decide("abcdefghj", true, 101), "expired");
        assert!(codes.decide("abcd-efghj", true, 50));
        assert!(!codes.decide("ABCDEFGHJ", false, 50), "no longer pending");
    }
}
