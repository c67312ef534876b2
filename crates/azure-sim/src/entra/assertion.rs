//! Verification of JWT client assertions (RFC 7523): assertions signed with
//! a certificate registered on the app (identity-platform/
//! certificate-credentials: `x5t#S256` or `x5t`, RS256 or PS256, `aud` the
//! token endpoint, `iss` = `sub` = client id), and federated tokens from the
//! simulated Kubernetes issuer (workload identity federation: issuer,
//! subject and `api://AzureADTokenExchange` audience must match the
//! service identity's federated credential).
//!
//! Assertion times are checked against wall-clock time, not the simulator's
//! clock: clients stamp `nbf`/`exp` from their own clock, and the sim clock
//! only models Entra-side lifetimes.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{Map, Value};

use super::aadsts;
use super::authority::Authority;
use super::certs::AppCertificate;
use super::client_auth::ClientAuth;
use super::errors::AadError;
use super::federation::{Issuer, TOKEN_EXCHANGE_AUDIENCE};
use super::keys::{self, JwsAlg};
use super::state::Entra;
use crate::clock::{dotnet_round_trip, to_datetime};
use crate::jwt;
use crate::state::SimState;
use crate::world::App;

/// Clock skew tolerated on `nbf`, as token validators commonly allow.
const NBF_SKEW_SECS: i64 = 300;

/// Verifies `token` as the client assertion of `app` at this endpoint.
pub(crate) fn verify(
    entra: &Entra,
    app: &App,
    token: &str,
    tenant_seg: &str,
    authority: &Authority<'_>,
) -> Result<ClientAuth, AadError> {
    let state = &*entra.sim;
    let parsed = jwt::parse(token).ok_or_else(aadsts::malformed_jwt)?;
    let iss = claim_str(&parsed.claims, "iss").ok_or_else(|| aadsts::missing_claim("iss"))?;
    let has_thumbprint =
        parsed.header.contains_key("x5t#S256") || parsed.header.contains_key("x5t");
    let now = chrono::Utc::now().timestamp();
    // A certificate assertion is issued by the app itself; anything else
    // can only be a federated token.
    if has_thumbprint || iss.eq_ignore_ascii_case(&app.client_id) {
        let cert = registered_certificate(entra, app);
        let audiences = accepted_audiences(state, tenant_seg, authority);
        verify_certificate(
            &parsed,
            CertCheck {
                client_id: &app.client_id,
                cert,
                audiences: &audiences,
                now,
            },
        )?;
        Ok(ClientAuth::Certificate)
    } else {
        verify_federated(entra, app, token, &iss, now)?;
        Ok(ClientAuth::Federated)
    }
}

/// The one certificate registered on each app (every partner's SAM app has
/// the same one).
fn registered_certificate<'a>(entra: &'a Entra, app: &App) -> Option<&'a AppCertificate> {
    let state = &*entra.sim;
    let w = &state.world;
    if app.client_id == w.identity_app.client_id {
        Some(&entra.creds.identity_cert)
    } else if w.is_sam_app(&app.client_id) {
        Some(&entra.creds.partner_cert)
    } else {
        None
    }
}

/// Token endpoint URLs `aud` may name: v2 and v1, for the tenant as the
/// request named it, by id and by domain (msal uses the discovery
/// document's endpoint, which names the tenant by id).
fn accepted_audiences(
    state: &SimState,
    tenant_seg: &str,
    authority: &Authority<'_>,
) -> Vec<String> {
    let login = &state.origins.login;
    let mut segs = vec![tenant_seg.to_string()];
    if let Authority::Tenant(t) = authority {
        segs.push(t.id.clone());
        segs.push(t.domain.clone());
    }
    segs.iter()
        .flat_map(|s| {
            [
                format!("{login}/{s}/oauth2/v2.0/token"),
                format!("{login}/{s}/oauth2/token"),
            ]
        })
        .collect()
}

/// What a certificate assertion is checked against.
struct CertCheck<'a> {
    client_id: &'a str,
    cert: Option<&'a AppCertificate>,
    audiences: &'a [String],
    now: i64,
}

fn verify_certificate(p: &jwt::Parsed<'_>, c: CertCheck<'_>) -> Result<(), AadError> {
    let alg_name = claim_str(&p.header, "alg").unwrap_or_default();
    let alg = JwsAlg::from_name(&alg_name).ok_or_else(|| aadsts::unsupported_alg(&alg_name))?;
    // x5t#S256 is preferred; x5t (SHA-1) is what older clients send.
    let (presented, want_sha256) = match (
        claim_str(&p.header, "x5t#S256"),
        claim_str(&p.header, "x5t"),
    ) {
        (Some(t), _) => (decode_thumbprint(&t), true),
        (None, Some(t)) => (decode_thumbprint(&t), false),
        (None, None) => return Err(aadsts::no_thumbprint()),
    };
    let presented_hex = hex::encode_upper(presented.as_deref().unwrap_or_default());
    let cert = c
        .cert
        .filter(|cert| {
            let registered = if want_sha256 {
                &cert.sha256
            } else {
                &cert.sha1
            };
            presented.as_deref() == Some(registered.as_slice())
        })
        .ok_or_else(|| aadsts::key_not_found(&presented_hex, c.client_id))?;
    if !keys::verify(
        alg,
        &cert.public_key,
        p.signing_input.as_bytes(),
        &p.signature,
    ) {
        return Err(aadsts::bad_signature(&presented_hex));
    }
    let iss = claim_str(&p.claims, "iss").unwrap_or_default();
    let sub = claim_str(&p.claims, "sub").unwrap_or_default();
    if !iss.eq_ignore_ascii_case(c.client_id) || !sub.eq_ignore_ascii_case(c.client_id) {
        return Err(aadsts::app_id_mismatch());
    }
    let auds = audiences(&p.claims);
    if auds.is_empty() {
        return Err(aadsts::missing_claim("aud"));
    }
    let matches = auds.iter().any(|a| {
        let a = a.trim_end_matches('/');
        c.audiences.iter().any(|ok| ok.eq_ignore_ascii_case(a))
    });
    if !matches {
        return Err(aadsts::audience_mismatch());
    }
    check_times(&p.claims, c.now)
}

fn verify_federated(
    entra: &Entra,
    app: &App,
    token: &str,
    iss: &str,
    now: i64,
) -> Result<(), AadError> {
    let state = &*entra.sim;
    let issuer: &Issuer = &entra.creds.issuer;
    // Only the service identity has a federated credential, and it trusts
    // exactly this issuer (Entra compares issuers as exact strings).
    if app.client_id != state.world.identity_app.client_id || iss != issuer.url() {
        return Err(aadsts::fic_issuer(iss));
    }
    let claims = issuer.verify(token).map_err(|_| aadsts::fic_signature())?;
    let sub = claim_str(&claims, "sub").unwrap_or_default();
    if sub != Issuer::subject() {
        return Err(aadsts::fic_subject(&sub));
    }
    let auds = audiences(&claims);
    if !auds.iter().any(|a| a == TOKEN_EXCHANGE_AUDIENCE) {
        return Err(aadsts::fic_audience(&auds.join(",")));
    }
    check_times(&claims, now)
}

fn check_times(claims: &Map<String, Value>, now: i64) -> Result<(), AadError> {
    let exp = numeric_date(claims, "exp");
    let nbf = numeric_date(claims, "nbf");
    let Some(exp) = exp else {
        return Err(aadsts::missing_claim("exp"));
    };
    if now >= exp || nbf.is_some_and(|n| n > now + NBF_SKEW_SECS) {
        let fmt = |t: i64| dotnet_round_trip(to_datetime(t));
        return Err(aadsts::time_range(
            &fmt(now),
            &fmt(nbf.unwrap_or(0)),
            &fmt(exp),
        ));
    }
    Ok(())
}

/// A NumericDate claim (RFC 7519 2): seconds, possibly fractional (msal
/// Python sends `time.time()` floats).
fn numeric_date(claims: &Map<String, Value>, key: &str) -> Option<i64> {
    let v = claims.get(key)?;
    #[allow(clippy::cast_possible_truncation)] // a date in seconds fits i64
    v.as_i64().or_else(|| v.as_f64().map(|f| f.floor() as i64))
}

/// `aud` as a list (JWT allows a string or an array).
fn audiences(claims: &Map<String, Value>) -> Vec<String> {
    match claims.get("aud") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

fn claim_str(m: &Map<String, Value>, key: &str) -> Option<String> {
    m.get(key).and_then(Value::as_str).map(str::to_string)
}

/// Thumbprints are base64url of the digest (RFC 7515 4.1.7); some clients
/// send padded or standard base64, or hex.
fn decode_thumbprint(t: &str) -> Option<Vec<u8>> {
    let trimmed = t.trim_end_matches('=');
    URL_SAFE_NO_PAD
        .decode(trimmed)
        .ok()
        .or_else(|| STANDARD.decode(t).ok())
        .filter(|b| b.len() == 20 || b.len() == 32)
        .or_else(|| hex::decode(t).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entra::keys::key_set;
    use serde_json::json;

    fn sign(key: &crate::entra::keys::RsaKey, header: Value, claims: Value) -> String {
        let h = URL_SAFE_NO_PAD.encode(header.to_string());
        let c = URL_SAFE_NO_PAD.encode(claims.to_string());
        let input = format!("{h}.{c}");
        let sig = key.sign_rs256(input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    struct Setup {
        cert: AppCertificate,
        key: crate::entra::keys::RsaKey,
        auds: Vec<String>,
    }

    fn setup() -> Setup {
        let ks = key_set().unwrap();
        Setup {
            cert: AppCertificate::issue(&ks.identity, "t").unwrap(),
            key: ks.identity,
            auds: vec!["https://l/t/oauth2/v2.0/token".into()],
        }
    }

    fn check(s: &Setup, token: &str) -> Result<(), AadError> {
        let p = jwt::parse(token).unwrap();
        verify_certificate(
            &p,
            CertCheck {
                client_id: "app",
                cert: Some(&s.cert),
                audiences: &s.auds,
                now: 1_000,
            },
        )
    }

    fn claims(aud: &str, exp: i64) -> Value {
        json!({"aud": aud, "iss": "app", "sub": "app", "exp": exp, "nbf": 900, "jti": "x"})
    }

    #[test]
    fn accepts_sha1_and_sha256_thumbprints() {
        let s = setup();
        let x5t = URL_SAFE_NO_PAD.encode(&s.cert.sha1);
        let t = sign(
            &s.key,
            json!({"alg":"RS256","typ":"JWT","x5t":x5t}),
            claims(&s.auds[0], 2_000),
        );
        assert_eq!(check(&s, &t), Ok(()));
        let s256 = URL_SAFE_NO_PAD.encode(&s.cert.sha256);
        let t = sign(
            &s.key,
            json!({"alg":"RS256","x5t#S256":s256}),
            claims(&s.auds[0], 2_000),
        );
        assert_eq!(check(&s, &t), Ok(()));
    }

    #[test]
    fn refusals_carry_the_real_codes() {
        let s = setup();
        let x5t = URL_SAFE_NO_PAD.encode(&s.cert.sha1);
        let good_h = json!({"alg":"RS256","x5t":x5t});
        let code = |t: &str| check(&s, t).unwrap_err().code;
        // Expired, wrong audience, wrong issuer.
        assert_eq!(
            code(&sign(&s.key, good_h.clone(), claims(&s.auds[0], 999))),
            700024
        );
        assert_eq!(
            code(&sign(
                &s.key,
                good_h.clone(),
                claims("https://x/token", 2_000)
            )),
            700023
        );
        let mut c = claims(&s.auds[0], 2_000);
        c["iss"] = json!("other");
        assert_eq!(code(&sign(&s.key, good_h.clone(), c)), 700021);
        // Unknown thumbprint, no thumbprint, unsupported alg, bad signature.
        let t = sign(
            &s.key,
            json!({"alg":"RS256","x5t":"AAAAAAAAAAAAAAAAAAAAAAAAAAA"}),
            claims(&s.auds[0], 2_000),
        );
        assert_eq!(code(&t), 700027);
        assert_eq!(
            code(&sign(
                &s.key,
                json!({"alg":"RS256"}),
                claims(&s.auds[0], 2_000)
            )),
            5002723
        );
        assert_eq!(
            code(&sign(
                &s.key,
                json!({"alg":"HS256","x5t":x5t}),
                claims(&s.auds[0], 2_000)
            )),
            5002738
        );
        let other = key_set().unwrap().partner;
        assert_eq!(
            code(&sign(&other, good_h, claims(&s.auds[0], 2_000))),
            700027
        );
    }

    #[test]
    fn thumbprint_encodings() {
        let raw = vec![7u8; 20];
        assert_eq!(
            decode_thumbprint(&URL_SAFE_NO_PAD.encode(&raw)),
            Some(raw.clone())
        );
        assert_eq!(decode_thumbprint(&hex::encode_upper(&raw)), Some(raw));
    }
}
