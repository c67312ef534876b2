//! RSA key material: the keys behind the apps' certificate credentials and
//! the workload-identity issuer. `ring` signs and verifies but cannot
//! generate RSA keys, so the `rsa` crate generates them, once per process:
//! a 2048-bit key takes a noticeable fraction of a second, and every
//! simulator started in a test binary would otherwise pay it again.

use std::sync::OnceLock;

use ring::rand::SystemRandom;
use ring::signature::{self, KeyPair, RsaKeyPair, UnparsedPublicKey};
use rsa::pkcs8::EncodePrivateKey;
use rsa::traits::PublicKeyParts;

use crate::errors::SimError;

/// Bits per generated key; Entra refuses certificate keys under 2048.
const KEY_BITS: usize = 2048;

/// One RSA key as the rest of the simulator uses it.
pub(crate) struct RsaKey {
    /// PKCS#8 DER of the private key (what rcgen and PEM files want).
    pub pkcs8_der: Vec<u8>,
    /// ring's signing key, parsed once.
    pub pair: RsaKeyPair,
    /// Big-endian modulus, for JWKS documents.
    pub n: Vec<u8>,
    /// Big-endian public exponent, for JWKS documents.
    pub e: Vec<u8>,
}

impl RsaKey {
    /// DER `RSAPublicKey`, the form ring's verifiers take.
    pub fn public_der(&self) -> Vec<u8> {
        self.pair.public_key().as_ref().to_vec()
    }

    /// An RS256 (PKCS#1 v1.5, SHA-256) signature over `input`.
    pub fn sign_rs256(&self, input: &[u8]) -> Result<Vec<u8>, SimError> {
        let mut sig = vec![0u8; self.pair.public().modulus_len()];
        self.pair
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input,
                &mut sig,
            )
            .map_err(|e| SimError::Crypto(e.to_string()))?;
        Ok(sig)
    }
}

/// JWS algorithms the simulator verifies (RFC 7518 3.3 and 3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JwsAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PSS with SHA-256 and MGF1, salt as long as the hash.
    Ps256,
}

impl JwsAlg {
    /// The algorithm a JOSE `alg` names, if supported.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "RS256" => Some(Self::Rs256),
            "PS256" => Some(Self::Ps256),
            _ => None,
        }
    }
}

/// Whether `sig` is a valid `alg` signature over `input` by `public_der`.
pub(crate) fn verify(alg: JwsAlg, public_der: &[u8], input: &[u8], sig: &[u8]) -> bool {
    let params: &dyn signature::VerificationAlgorithm = match alg {
        JwsAlg::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        JwsAlg::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
    };
    UnparsedPublicKey::new(params, public_der)
        .verify(input, sig)
        .is_ok()
}

/// The three keys a simulator needs.
pub(crate) struct KeySet {
    /// Certificate credential of the single-tenant service identity.
    pub identity: RsaKey,
    /// Certificate credential of the multi-tenant SAM (partner) app.
    pub partner: RsaKey,
    /// Signing key of the simulated Kubernetes OIDC issuer.
    pub federation: RsaKey,
}

/// Generated keys in PKCS#8 form; shared by every simulator in the process.
static POOL: OnceLock<Result<[Vec<u8>; 3], String>> = OnceLock::new();

/// The process's key set, generating it on first use. Blocking: call it
/// from `spawn_blocking` in async code.
pub(crate) fn key_set() -> Result<KeySet, SimError> {
    let ders = POOL
        .get_or_init(|| Ok([generate()?, generate()?, generate()?]))
        .as_ref()
        .map_err(|e| SimError::Crypto(e.clone()))?;
    Ok(KeySet {
        identity: parse(&ders[0])?,
        partner: parse(&ders[1])?,
        federation: parse(&ders[2])?,
    })
}

fn generate() -> Result<Vec<u8>, String> {
    let mut rng = rand::thread_rng();
    let key = rsa::RsaPrivateKey::new(&mut rng, KEY_BITS).map_err(|e| e.to_string())?;
    let der = key.to_pkcs8_der().map_err(|e| e.to_string())?;
    Ok(der.as_bytes().to_vec())
}

/// Parses a PKCS#8 key into the forms ring and JWKS need.
pub(crate) fn parse(pkcs8_der: &[u8]) -> Result<RsaKey, SimError> {
    use rsa::pkcs8::DecodePrivateKey;
    let pair = RsaKeyPair::from_pkcs8(pkcs8_der).map_err(|e| SimError::Crypto(e.to_string()))?;
    let key = rsa::RsaPrivateKey::from_pkcs8_der(pkcs8_der)
        .map_err(|e| SimError::Crypto(e.to_string()))?;
    Ok(RsaKey {
        pkcs8_der: pkcs8_der.to_vec(),
        pair,
        n: key.n().to_bytes_be(),
        e: key.e().to_bytes_be(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_distinct_rsa_2048_and_reused_per_process() {
        let a = key_set().unwrap();
        let b = key_set().unwrap();
        assert_eq!(a.identity.pkcs8_der, b.identity.pkcs8_der);
        assert_ne!(a.identity.pkcs8_der, a.partner.pkcs8_der);
        assert_ne!(a.partner.pkcs8_der, a.federation.pkcs8_der);
        assert_eq!(a.identity.n.len(), 256);
        assert_eq!(a.identity.e, vec![1, 0, 1]);
        assert_eq!(a.identity.pair.public().modulus_len(), 256);
    }

    #[test]
    fn rs256_round_trip_and_tamper() {
        let ks = key_set().unwrap();
        let sig = ks.federation.sign_rs256(b"hello").unwrap();
        let public = ks.federation.public_der();
        assert!(verify(JwsAlg::Rs256, &public, b"hello", &sig));
        assert!(!verify(JwsAlg::Rs256, &public, b"hellO", &sig));
        assert!(!verify(JwsAlg::Ps256, &public, b"hello", &sig));
        assert!(!verify(
            JwsAlg::Rs256,
            &ks.identity.public_der(),
            b"hello",
            &sig
        ));
        assert_eq!(JwsAlg::from_name("PS256"), Some(JwsAlg::Ps256));
        assert_eq!(JwsAlg::from_name("HS256"), None);
    }
}
