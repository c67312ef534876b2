//! How a confidential client proves who it is at the token endpoint: the
//! client secret, a client-assertion JWT signed with its certificate, or the
//! federated token the platform issued (workload identity).
//!
//! <https://learn.microsoft.com/entra/identity-platform/certificate-credentials>

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;

use crate::config::credential::{Certificate, ClientCredential, CredentialError};
use crate::support::secret::SecretString;

/// `client_assertion_type` for JWT assertions (RFC 7523).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A signed client assertion for `client_id` at `audience` (the token endpoint URL), valid 10 minutes.
pub fn assertion(
    cert: &Certificate,
    client_id: &str,
    audience: &str,
) -> Result<SecretString, CredentialError> {
    let now = chrono::Utc::now().timestamp();
    let header =
        serde_json::json!({"alg": "RS256", "typ": "JWT", "x5t#S256": cert.thumbprint_s256()});
    let claims = serde_json::json!({
        "aud": audience, "iss": client_id, "sub": client_id,
        "jti": uuid::Uuid::new_v4().to_string(),
        "nbf": now, "iat": now, "exp": now + 600,
    });
    let signing_input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let sig = cert.sign(signing_input.as_bytes())?;
    Ok(SecretString::from(format!(
        "{signing_input}.{}",
        B64.encode(sig)
    )))
}

/// The form fields that authenticate the client at `token_url`.
pub fn form_fields(
    credential: &ClientCredential,
    client_id: &str,
    token_url: &str,
) -> Result<Vec<(&'static str, SecretString)>, CredentialError> {
    Ok(match credential {
        ClientCredential::Secret(s) => vec![("client_secret", s.clone())],
        ClientCredential::Certificate(c) => vec![
            ("client_assertion_type", SecretString::from(JWT_BEARER)),
            ("client_assertion", assertion(c, client_id, token_url)?),
        ],
        ClientCredential::FederatedTokenFile(path) => {
            let key = "store.keyvault.identity.federated_token_file";
            let text = crate::support::files::read_capped_string(
                path,
                crate::support::files::SECRET_LIMIT,
            )
            .map_err(|source| CredentialError::Read {
                key: key.into(),
                path: path.clone(),
                source,
            })?;
            let token = text.trim();
            if token.is_empty() {
                return Err(CredentialError::Bad {
                    key: key.into(),
                    path: path.clone(),
                    why: "the federated token file is empty".into(),
                });
            }
            // Kubernetes rewrites the file hourly: each new token is remembered.
            crate::support::scrub::remember(token);
            vec![
                ("client_assertion_type", SecretString::from(JWT_BEARER)),
                ("client_assertion", SecretString::from(token.to_string())),
            ]
        }
    })
}
