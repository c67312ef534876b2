//! The credentials a confidential client is configured with: a client secret,
//! a certificate with its RSA key (loaded and checked when the config is), or
//! a workload-identity federated token file. How they are presented at the
//! token endpoint is `auth::assertion`'s job.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

use crate::support::secret::SecretString;

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
    /// the format the Azure SDKs' certificate credentials take. It holds the
    /// private key, so read access by other users is refused unless `readers`
    /// allows it.
    pub fn from_pem_file(
        key: &str,
        path: &Path,
        readers: crate::support::files::Readers,
    ) -> Result<Self, CredentialError> {
        let path = path.to_path_buf();
        let pem = crate::support::files::read_private(
            &path,
            crate::support::files::DOCUMENT_LIMIT,
            readers,
        )
        .map_err(|source| CredentialError::Read {
            key: key.to_string(),
            path: path.clone(),
            source,
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

    /// base64url SHA-256 of the certificate's DER, the `x5t#S256` header Entra matches.
    pub fn thumbprint_s256(&self) -> &str {
        &self.thumbprint_s256
    }

    /// An RS256 (PKCS#1 v1.5, SHA-256) signature of `input`.
    pub fn sign(&self, input: &[u8]) -> Result<Vec<u8>, CredentialError> {
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), input, &mut sig)
            .map_err(|_| CredentialError::Sign(self.path.clone()))?;
        Ok(sig)
    }
}

impl ClientCredential {
    /// True for a secret; tests and `check` use it to explain failures.
    pub fn is_secret(&self) -> bool {
        matches!(self, ClientCredential::Secret(_))
    }
}
