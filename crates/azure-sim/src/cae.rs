//! Continuous Access Evaluation as the CAE-capable resources (Graph, ARM)
//! see it: the critical events after which they refuse a long-lived CAE
//! token issued earlier, answering with a claims challenge
//! (reference/azure/entra/docs-claims-challenge.md).
//!
//! Events are sim-clock seconds, as a token's `iat` is: a token issued in
//! the very second of an event is not refused.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use tenantwatch_common::sync::lock;

/// The client capability that asks for CAE tokens.
pub(crate) const CP1: &str = "cp1";

/// Critical events, for every tenant, one tenant or one user.
#[derive(Debug, Default)]
pub(crate) struct CaeEvents {
    /// Last event that concerns every tenant.
    everywhere: AtomicI64,
    /// Last event per lower-case tenant id (a policy change there).
    tenants: Mutex<HashMap<String, i64>>,
    /// Last event per lower-case user object id (revoke sessions, password
    /// reset): it follows the user into every tenant.
    users: Mutex<HashMap<String, i64>>,
}

impl CaeEvents {
    /// Records an event at `at` for every tenant, or (`Some`) one.
    pub fn event(&self, tenant: Option<&str>, at: i64) {
        match tenant {
            None => {
                self.everywhere.fetch_max(at, Ordering::SeqCst);
            }
            Some(t) => {
                let mut m = lock(&self.tenants);
                let e = m.entry(t.to_ascii_lowercase()).or_default();
                *e = (*e).max(at);
            }
        }
    }

    /// Records an event at `at` for one user (object id), wherever their
    /// tokens are for.
    pub fn user_event(&self, user: &str, at: i64) {
        let mut m = lock(&self.users);
        let e = m.entry(user.to_ascii_lowercase()).or_default();
        *e = (*e).max(at);
    }

    /// When a CAE token of `user` for `tenant` issued at `iat` stopped being
    /// honoured, if an event for either (or everywhere) came after it.
    pub fn revoked_for(&self, tenant: &str, user: &str, iat: i64) -> Option<i64> {
        let mine = lock(&self.users)
            .get(&user.to_ascii_lowercase())
            .copied()
            .unwrap_or(0);
        let at = self.revoked(tenant, iat).unwrap_or(0).max(mine);
        (at > iat).then_some(at)
    }

    /// When a CAE token for `tenant` issued at `iat` stopped being honoured,
    /// if an event came after it.
    pub fn revoked(&self, tenant: &str, iat: i64) -> Option<i64> {
        let all = self.everywhere.load(Ordering::SeqCst);
        let one = lock(&self.tenants)
            .get(&tenant.to_ascii_lowercase())
            .copied()
            .unwrap_or(0);
        let at = all.max(one);
        (at > iat).then_some(at)
    }
}

/// True when a token request's `claims` parameter declares the `cp1`
/// capability: `{"access_token":{"xms_cc":{"values":["cp1"]}}}`, merged with
/// any challenge, as MSAL sends it. Values are case-insensitive.
pub(crate) fn declares_cp1(claims: Option<&str>) -> bool {
    let Some(v) = claims.and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok()) else {
        return false;
    };
    v.pointer("/access_token/xms_cc/values")
        .and_then(serde_json::Value::as_array)
        .is_some_and(|vals| {
            vals.iter()
                .any(|x| x.as_str().is_some_and(|s| s.eq_ignore_ascii_case(CP1)))
        })
}

/// The `WWW-Authenticate` value of a claims challenge for a token issued
/// before an event at `at`: the documented parameters, with the `nbf`
/// claims request of the CAE resilience page, base64-encoded.
pub(crate) fn challenge(login: &str, at: i64) -> String {
    let claims = format!(r#"{{"access_token":{{"nbf":{{"essential":true, "value":"{at}"}}}}}}"#);
    format!(
        r#"Bearer realm="", authorization_uri="{login}/common/oauth2/authorize", error="insufficient_claims", claims="{}""#,
        STANDARD.encode(claims)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_revoke_tokens_issued_before_them() {
        let e = CaeEvents::default();
        assert_eq!(e.revoked("T", 100), None);
        e.event(Some("t"), 150);
        assert_eq!(e.revoked("T", 100), Some(150));
        assert_eq!(e.revoked("T", 150), None, "same second is not before");
        assert_eq!(e.revoked("other", 100), None);
        e.event(None, 200);
        assert_eq!(e.revoked("other", 100), Some(200));
    }

    #[test]
    fn user_events_follow_the_user_only() {
        let e = CaeEvents::default();
        e.user_event("U1", 150);
        assert_eq!(e.revoked_for("t", "u1", 100), Some(150));
        assert_eq!(e.revoked_for("t", "u2", 100), None);
        assert_eq!(e.revoked_for("t", "u1", 150), None);
        e.event(Some("t"), 300);
        assert_eq!(e.revoked_for("t", "u2", 100), Some(300));
        assert_eq!(e.revoked_for("t", "u1", 100), Some(300));
    }

    #[test]
    fn cp1_is_found_in_merged_claims() {
        assert!(declares_cp1(Some(
            r#"{"access_token":{"xms_cc":{"values":["CP1"]},"nbf":{"essential":true,"value":"1"}}}"#
        )));
        assert!(!declares_cp1(Some(
            r#"{"access_token":{"xms_cc":{"values":[]}}}"#
        )));
        assert!(!declares_cp1(Some("not json")));
        assert!(!declares_cp1(None));
    }

    #[test]
    fn challenge_decodes_to_the_documented_nbf_request() {
        let c = challenge("https://login.test", 1604106651);
        let b64 = c.split("claims=\"").nth(1).unwrap().trim_end_matches('"');
        let json = String::from_utf8(STANDARD.decode(b64).unwrap()).unwrap();
        assert_eq!(
            json,
            r#"{"access_token":{"nbf":{"essential":true, "value":"1604106651"}}}"#
        );
        assert!(c.contains(r#"error="insufficient_claims""#));
    }
}
