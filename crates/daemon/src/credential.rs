//! How a confidential client proves who it is at the token endpoint: a client
//! secret, a certificate (a signed client-assertion JWT), or a ready-made assertion
//! (a workload-identity federated token).
//!
//! <https://learn.microsoft.com/entra/identity-platform/certificate-credentials>

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

use crate::secret::SecretString;

/// `client_assertion_type` for JWT assertions (RFC 7523).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A confidential client's credential.
#[derive(Clone)]
pub enum ClientCredential {
    /// A client secret.
    Secret(SecretString),
    /// A certificate with its RSA private key.
    Certificate(Arc<Certificate>),
    /// A federated token file, re-read at every use because Kubernetes rotates it.
    FederatedTokenFile(PathBuf),
}

impl std::fmt::Debug for ClientCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientCredential::Secret(_) => f.write_str("Secret([REDACTED])"),
            ClientCredential::Certificate(c) => write!(f, "Certificate({})", c.path.display()),
            ClientCredential::FederatedTokenFile(p) => {
                write!(f, "FederatedTokenFile({})", p.display())
            }
        }
    }
}

/// Why a credential could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The file could not be read.
    #[error("{key}: cannot read {path}: {source}")]
    Read {
        key: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The PEM file lacks a certificate or key, or the key is not RSA.
    #[error("{key}: {path}: {why}")]
    Bad {
        key: String,
        path: PathBuf,
        why: String,
    },
    /// Signing failed.
    #[error("cannot sign a client assertion with {0}")]
    Sign(PathBuf),
}

/// A certificate credential: the RSA key that signs assertions and the thumbprint Entra matches.
pub struct Certificate {
    key: RsaKeyPair,
    /// base64url SHA-256 of the certificate's DER (`x5t#S256`).
    thumbprint_s256: String,
    /// Where it was loaded from, for messages.
    pub path: PathBuf,
}

impl Certificate {
    /// Loads a PEM file holding the certificate and its private key (PKCS#8 or PKCS#1 RSA),
    /// the format the Azure SDKs' certificate credentials take.
    pub fn from_pem_file(key: &str, path: &Path) -> Result<Self, CredentialError> {
        let path = crate::secret::resolve_secret_path(path);
        let pem =
            crate::files::read_capped(&path, crate::files::DOCUMENT_LIMIT).map_err(|source| {
                CredentialError::Read {
                    key: key.to_string(),
                    path: path.clone(),
                    source,
                }
            })?;
        let bad = |why: &str| CredentialError::Bad {
            key: key.to_string(),
            path: path.clone(),
            why: why.to_string(),
        };
        let cert = match CertificateDer::pem_slice_iter(&pem).next() {
            Some(Ok(c)) => c,
            Some(Err(_)) => return Err(bad("not a PEM file")),
            None => return Err(bad("no CERTIFICATE block")),
        };
        let key = match PrivateKeyDer::from_pem_slice(&pem) {
            Ok(PrivateKeyDer::Pkcs8(k)) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der())
                .map_err(|_| bad("the private key is not an RSA key (Entra requires RSA)"))?,
            Ok(PrivateKeyDer::Pkcs1(k)) => RsaKeyPair::from_der(k.secret_pkcs1_der())
                .map_err(|_| bad("the RSA private key cannot be read"))?,
            Ok(_) => {
                return Err(bad(
                    "the private key is not an RSA key (Entra requires RSA)",
                ))
            }
            Err(rustls::pki_types::pem::Error::NoItemsFound) => {
                return Err(bad("no RSA PRIVATE KEY block"))
            }
            Err(_) => return Err(bad("not a PEM file")),
        };
        Ok(Self {
            key,
            thumbprint_s256: B64.encode(Sha256::digest(cert.as_ref())),
            path,
        })
    }

    /// A signed client assertion for `client_id` at `audience` (the token endpoint URL), valid 10 minutes.
    pub fn assertion(
        &self,
        client_id: &str,
        audience: &str,
    ) -> Result<SecretString, CredentialError> {
        let now = chrono::Utc::now().timestamp();
        let header =
            serde_json::json!({"alg": "RS256", "typ": "JWT", "x5t#S256": self.thumbprint_s256});
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
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut sig,
            )
            .map_err(|_| CredentialError::Sign(self.path.clone()))?;
        Ok(SecretString::from(format!(
            "{signing_input}.{}",
            B64.encode(sig)
        )))
    }
}

impl ClientCredential {
    /// The form fields that authenticate the client at `token_url`.
    pub fn form_fields(
        &self,
        client_id: &str,
        token_url: &str,
    ) -> Result<Vec<(&'static str, SecretString)>, CredentialError> {
        Ok(match self {
            ClientCredential::Secret(s) => vec![("client_secret", s.clone())],
            ClientCredential::Certificate(c) => vec![
                ("client_assertion_type", SecretString::from(JWT_BEARER)),
                ("client_assertion", c.assertion(client_id, token_url)?),
            ],
            ClientCredential::FederatedTokenFile(path) => {
                let key = "store.keyvault.identity.federated_token_file";
                let text = crate::files::read_capped_string(path, crate::files::SECRET_LIMIT)
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
                vec![
                    ("client_assertion_type", SecretString::from(JWT_BEARER)),
                    ("client_assertion", SecretString::from(token.to_string())),
                ]
            }
        })
    }

    /// True for a secret; tests and `check` use it to explain failures.
    pub fn is_secret(&self) -> bool {
        matches!(self, ClientCredential::Secret(_))
    }
}
