//! Validation of the bearer tokens presented to the simulated resources:
//! signature (the sim's own key), audience and lifetime. Each resource turns
//! a [`BearerError`] into its own error body.

use axum::http::HeaderMap;
use serde_json::{Map, Value};

use crate::http;
use crate::jwt::JwtError;
use crate::state::SimState;

/// The claims the resources act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AccessClaims {
    pub aud: String,
    pub iss: String,
    pub tid: String,
    pub oid: String,
    pub appid: String,
    /// Delegated permissions (`scp`), empty for app-only tokens.
    pub scp: Vec<String>,
    /// App roles (`roles`), empty for delegated tokens.
    pub roles: Vec<String>,
    /// Authentication methods of the sign-in (`amr`), empty for app-only tokens.
    pub amr: Vec<String>,
    /// Issued to a `cp1` client (`xms_cc`): a long-lived CAE token.
    pub cae: bool,
    pub iat: i64,
    pub exp: i64,
}

/// Why a bearer token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BearerError {
    /// No `Authorization: Bearer` header.
    Missing,
    /// Not a JWT, or missing required claims.
    Malformed,
    /// Not signed by this simulator.
    BadSignature,
    /// Issued for another resource.
    WrongAudience { found: String },
    /// Past its `exp` (seconds since the epoch).
    Expired { exp: i64 },
    /// Before its `nbf`.
    NotYetValid,
    /// A CAE token issued before a critical event (revoked sessions, a
    /// password reset, a policy change) at `at`: answered with a claims challenge.
    ClaimsChallenge { at: i64 },
}

/// Allowed clock skew when checking `nbf`, as token validators commonly use.
const SKEW_SECS: i64 = 300;

/// Validates the request's bearer token for a resource that accepts `audiences`.
pub(crate) fn validate(
    state: &SimState,
    headers: &HeaderMap,
    audiences: &[&str],
) -> Result<AccessClaims, BearerError> {
    let token = http::bearer(headers).ok_or(BearerError::Missing)?;
    let claims = state.signer.verify(token).map_err(|e| match e {
        JwtError::Malformed => BearerError::Malformed,
        JwtError::BadSignature => BearerError::BadSignature,
    })?;
    let c = parse(&claims).ok_or(BearerError::Malformed)?;
    if !audiences.iter().any(|a| *a == c.aud) {
        return Err(BearerError::WrongAudience { found: c.aud });
    }
    let now = state.clock.now_unix();
    if c.exp <= now {
        return Err(BearerError::Expired { exp: c.exp });
    }
    let nbf = claims.get("nbf").and_then(Value::as_i64).unwrap_or(0);
    if nbf > now + SKEW_SECS {
        return Err(BearerError::NotYetValid);
    }
    // Only CAE tokens are re-evaluated: a one-hour token rides out its hour.
    if c.cae {
        if let Some(at) = state.cae.revoked_for(&c.tid, &c.oid, c.iat) {
            return Err(BearerError::ClaimsChallenge { at });
        }
    }
    Ok(c)
}

fn parse(m: &Map<String, Value>) -> Option<AccessClaims> {
    let s = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
    let words = |k: &str| {
        m.get(k)
            .and_then(Value::as_str)
            .map(|v| v.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    };
    let list = |k: &str| -> Vec<String> {
        m.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let roles = list("roles");
    let amr = list("amr");
    let cae = list("xms_cc")
        .iter()
        .any(|v| v.eq_ignore_ascii_case(crate::cae::CP1));
    Some(AccessClaims {
        aud: s("aud")?,
        iss: s("iss")?,
        tid: s("tid")?,
        oid: s("oid")?,
        appid: s("appid")?,
        scp: words("scp"),
        roles,
        amr,
        cae,
        iat: m.get("iat").and_then(Value::as_i64).unwrap_or(0),
        exp: m.get("exp").and_then(Value::as_i64)?,
    })
}
