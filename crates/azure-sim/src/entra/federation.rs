//! A simulated Kubernetes service-account token issuer, the "external IdP"
//! of workload identity federation: the service identity's federated
//! credential trusts this issuer and subject, and azure-identity's
//! `WorkloadIdentityCredential` presents its tokens as `client_assertion`
//! (workload-id/workload-identity-federation). The issuer publishes its
//! OIDC discovery document and JWKS on the login origin, as an AKS OIDC
//! issuer does on its own host.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::keys::{self, JwsAlg, RsaKey};
use crate::errors::SimError;
use crate::jwt;

/// The audience Entra requires of federated tokens.
pub(crate) const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

/// Namespace and service account the federated credential names.
pub(crate) const SERVICE_ACCOUNT_NAMESPACE: &str = "tenantwatch";
/// Service account name in the federated credential's subject.
pub(crate) const SERVICE_ACCOUNT_NAME: &str = "tenantwatch";

/// Projected service-account tokens default to one hour.
pub(crate) const TOKEN_LIFETIME_SECS: i64 = 3600;

/// Path of the issuer on the login origin (two segments, so it cannot be
/// mistaken for a tenant's discovery path).
pub(crate) const ISSUER_PATH: &str = "/k8s-oidc/sim/";

/// Why a token did not come from this issuer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FederationError {
    /// Not a JWT.
    #[error("not a well-formed JWT")]
    Malformed,
    /// Signed with another key or algorithm, or altered.
    #[error("signature does not verify against the issuer's key")]
    BadSignature,
}

/// The issuer and its signing key.
pub(crate) struct Issuer {
    url: String,
    kid: String,
    key: RsaKey,
}

impl Issuer {
    /// An issuer at `{login}/k8s-oidc/sim/` signing with `key`.
    pub fn new(login_origin: &str, key: RsaKey) -> Self {
        let kid = URL_SAFE_NO_PAD.encode(&Sha256::digest(key.public_der())[..16]);
        Self {
            url: format!("{login_origin}{ISSUER_PATH}"),
            kid,
            key,
        }
    }

    /// The `iss` value, with its trailing slash (AKS issuers have one, and
    /// Entra compares issuers exactly).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `system:serviceaccount:{namespace}:{name}`.
    pub fn subject() -> String {
        format!("system:serviceaccount:{SERVICE_ACCOUNT_NAMESPACE}:{SERVICE_ACCOUNT_NAME}")
    }

    /// A projected service-account token for the trusted subject, valid from
    /// `now` (unix seconds) for an hour.
    pub fn service_account_token(&self, now: i64) -> Result<String, SimError> {
        let claims = json!({
            "aud": [TOKEN_EXCHANGE_AUDIENCE],
            "exp": now + TOKEN_LIFETIME_SECS,
            "iat": now,
            "iss": self.url,
            "jti": uuid::Uuid::new_v4().to_string(),
            "kubernetes.io": {
                "namespace": SERVICE_ACCOUNT_NAMESPACE,
                "serviceaccount": {
                    "name": SERVICE_ACCOUNT_NAME,
                    "uid": uuid::Uuid::new_v4().to_string(),
                },
            },
            "nbf": now,
            "sub": Self::subject(),
        });
        self.sign(&claims)
    }

    /// Signs arbitrary claims with the issuer key (tests forge bad tokens
    /// with it: wrong audience, wrong subject, expired).
    pub fn sign(&self, claims: &Value) -> Result<String, SimError> {
        let header = json!({"alg": "RS256", "kid": self.kid});
        let h = URL_SAFE_NO_PAD.encode(header.to_string());
        let p = URL_SAFE_NO_PAD.encode(claims.to_string());
        let input = format!("{h}.{p}");
        let sig = self.key.sign_rs256(input.as_bytes())?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }

    /// The claims of a token this issuer signed (RS256 only, like the
    /// Kubernetes API server's default).
    pub fn verify(&self, token: &str) -> Result<Map<String, Value>, FederationError> {
        let p = jwt::parse(token).ok_or(FederationError::Malformed)?;
        let alg = p.header.get("alg").and_then(Value::as_str);
        if alg != Some("RS256")
            || !keys::verify(
                JwsAlg::Rs256,
                &self.key.public_der(),
                p.signing_input.as_bytes(),
                &p.signature,
            )
        {
            return Err(FederationError::BadSignature);
        }
        Ok(p.claims)
    }

    /// The issuer's OpenID discovery document.
    pub fn discovery(&self) -> Value {
        json!({
            "issuer": self.url,
            "jwks_uri": format!("{}openid/v1/jwks", self.url),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        })
    }

    /// The issuer's key set.
    pub fn jwks(&self) -> Value {
        json!({
            "keys": [{
                "use": "sig",
                "kty": "RSA",
                "kid": self.kid,
                "alg": "RS256",
                "n": URL_SAFE_NO_PAD.encode(&self.key.n),
                "e": URL_SAFE_NO_PAD.encode(&self.key.e),
            }]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entra::keys::key_set;

    fn issuer() -> Issuer {
        Issuer::new("https://127.0.0.1:1", key_set().unwrap().federation)
    }

    #[test]
    fn tokens_round_trip_with_the_documented_claims() {
        let i = issuer();
        assert_eq!(i.url(), "https://127.0.0.1:1/k8s-oidc/sim/");
        let t = i.service_account_token(1_700_000_000).unwrap();
        let c = i.verify(&t).unwrap();
        assert_eq!(c["aud"], json!(["api://AzureADTokenExchange"]));
        assert_eq!(c["sub"], "system:serviceaccount:tenantwatch:tenantwatch");
        assert_eq!(c["iss"], i.url());
        assert_eq!(c["exp"], 1_700_003_600);
    }

    #[test]
    fn foreign_or_altered_tokens_are_refused() {
        let i = issuer();
        let t = i.service_account_token(1).unwrap();
        let mut parts: Vec<&str> = t.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(r#"{"sub":"x"}"#);
        parts[1] = &forged;
        assert_eq!(
            i.verify(&parts.join(".")),
            Err(FederationError::BadSignature)
        );
        assert_eq!(i.verify("nope"), Err(FederationError::Malformed));
        let other = Issuer::new("https://x", key_set().unwrap().identity);
        let t = other.service_account_token(1).unwrap();
        assert_eq!(i.verify(&t), Err(FederationError::BadSignature));
        assert_eq!(i.jwks()["keys"][0]["e"], "AQAB");
    }
}
