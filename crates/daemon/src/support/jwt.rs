//! Reads one claim of an access token without verifying it: whether the
//! sign-in behind it used MFA (`amr` contains `mfa`), which Partner Center
//! requires of every App+User call since 2026-04-01
//! (<https://learn.microsoft.com/partner-center/developer/partner-center-authentication>).
//!
//! The token and its payload are secrets: nothing here logs, formats or
//! returns them, and a token that does not decode is "unknown", never an error
//! carrying its text.

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::Deserialize;

/// The one claim read. Every other claim is skipped by serde unread.
#[derive(Deserialize)]
struct Payload {
    /// Authentication methods of the sign-in, e.g. `["pwd","mfa"]`; absent
    /// means none was recorded, which Partner Center treats as no MFA.
    #[serde(default)]
    amr: Vec<String>,
}

/// Largest token payload decoded; Entra's access tokens are a few KiB.
const MAX_PAYLOAD: usize = 64 * 1024;

/// `Some(true)` when the JWT's `amr` claim contains `mfa`, `Some(false)` when
/// it does not (or has no `amr`), `None` when `token` is not a readable JWT.
pub fn amr_has_mfa(token: &str) -> Option<bool> {
    let mut parts = token.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    if payload.len() > MAX_PAYLOAD {
        return None;
    }
    // RFC 7515 says unpadded; padded base64url is tolerated.
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .or_else(|_| URL_SAFE.decode(payload))
        .ok()?;
    let p: Payload = serde_json::from_slice(&bytes).ok()?;
    Some(p.amr.iter().any(|m| m.eq_ignore_ascii_case("mfa")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        format!(
            "eyJ0eXAiOiJKV1QifQ.{}.c2ln",
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    #[test]
    fn documented_payload_has_mfa() {
        // The payload of Partner Center's MFA page (partnercenter/docs-mfa-enforcement.md).
        let p = r#"{"aud":"https://api.partnercenter.microsoft.com","amr":["pwd","mfa"],"scp":"user_impersonation","ver":"1.0"}"#;
        assert_eq!(amr_has_mfa(&jwt(p)), Some(true));
    }

    #[test]
    fn password_only_or_no_amr_is_without_mfa() {
        assert_eq!(amr_has_mfa(&jwt(r#"{"amr":["pwd"]}"#)), Some(false));
        assert_eq!(amr_has_mfa(&jwt(r#"{"aud":"x"}"#)), Some(false));
    }

    #[test]
    fn anything_else_is_unknown() {
        for t in [
            "",
            "opaque-token",
            "a.b",
            "a.!!!.c",
            "a.b.c.d",
            &jwt("not json"),
            &jwt(r#"{"amr":"mfa"}"#),
        ] {
            assert_eq!(amr_has_mfa(t), None, "{t}");
        }
    }
}
