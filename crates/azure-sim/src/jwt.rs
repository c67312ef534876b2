//! JWT-shaped tokens. The header claims RS256 like Entra's, but the signature
//! is HMAC-SHA256 under a key only this simulator knows: clients never
//! verify access tokens, and the simulated resources only need to tell the
//! sim's own tokens from forged or altered ones. It is stretched to the 256
//! bytes of an RS256 signature with a 2048-bit key, so tokens have Entra's
//! size: the daemon caches thousands and its memory benchmark counts them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Why a presented token was rejected before its claims were looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum JwtError {
    /// Not three base64url JSON parts.
    #[error("token is not a well-formed JWT")]
    Malformed,
    /// Signed with another key, or altered.
    #[error("token signature is invalid")]
    BadSignature,
}

#[derive(Serialize)]
struct Header<'a> {
    typ: &'a str,
    alg: &'a str,
    x5t: &'a str,
    kid: &'a str,
}

/// Bytes in an RS256 signature under a 2048-bit key.
const RS256_LEN: usize = 256;

/// Signs and verifies the simulator's tokens.
pub(crate) struct Signer {
    key: [u8; 32],
    kid: String,
}

impl Signer {
    /// A signer with a fresh random key.
    pub fn random() -> Self {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        let kid = URL_SAFE_NO_PAD.encode(&Sha256::digest(key)[..20]);
        Self { key, kid }
    }

    /// The key id advertised in token headers and the JWKS.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// A compact JWT carrying `claims`.
    pub fn sign(&self, claims: &Value) -> String {
        let header = Header {
            typ: "JWT",
            alg: "RS256",
            x5t: &self.kid,
            kid: &self.kid,
        };
        // Serialising these two in-memory values cannot fail.
        let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap_or_default());
        let p = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
        let input = format!("{h}.{p}");
        let sig = URL_SAFE_NO_PAD.encode(self.signature(input.as_bytes()));
        format!("{input}.{sig}")
    }

    /// 256 bytes: the HMAC of the input with each of eight block numbers.
    fn signature(&self, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(RS256_LEN);
        for block in 0..(RS256_LEN / 32) as u8 {
            let mut msg = Vec::with_capacity(input.len() + 1);
            msg.extend_from_slice(input);
            msg.push(block);
            out.extend_from_slice(&hmac_sha256(&self.key, &msg));
        }
        out
    }

    /// The claims of a token this signer issued.
    pub fn verify(&self, token: &str) -> Result<Map<String, Value>, JwtError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };
        let claims = decode_part(p).ok_or(JwtError::Malformed)?;
        decode_part(h).ok_or(JwtError::Malformed)?;
        let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| JwtError::Malformed)?;
        let expected = self.signature(format!("{h}.{p}").as_bytes());
        if !constant_time_eq(&sig, &expected) {
            return Err(JwtError::BadSignature);
        }
        Ok(claims)
    }
}

/// The parts of a compact JWT, decoded but not verified.
pub(crate) struct Parsed<'a> {
    /// The JOSE header.
    pub header: Map<String, Value>,
    /// The claims.
    pub claims: Map<String, Value>,
    /// `header.payload` as sent: the bytes the signature covers.
    pub signing_input: &'a str,
    /// The raw signature.
    pub signature: Vec<u8>,
}

/// Splits and decodes a compact JWT; `None` unless it has three parts whose
/// first two are base64url JSON objects.
pub(crate) fn parse(token: &str) -> Option<Parsed<'_>> {
    let (signing_input, s) = token.rsplit_once('.')?;
    let (h, p) = signing_input.split_once('.')?;
    if p.contains('.') {
        return None;
    }
    Some(Parsed {
        header: decode_part(h)?,
        claims: decode_part(p)?,
        signing_input,
        signature: URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()?,
    })
}

/// The payload of a JWT without checking its signature (for request counting).
pub(crate) fn claims_unverified(token: &str) -> Option<Map<String, Value>> {
    decode_part(token.split('.').nth(1)?)
}

fn decode_part(part: &str) -> Option<Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// RFC 2104 HMAC over SHA-256.
pub(crate) fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn sign_verify_roundtrip_and_tamper() {
        let s = Signer::random();
        let t = s.sign(&serde_json::json!({"tid": "x", "exp": 1}));
        let c = s.verify(&t).unwrap();
        assert_eq!(c["tid"], "x");
        let header: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(t.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["kid"], s.kid());

        let other = Signer::random();
        assert_eq!(other.verify(&t), Err(JwtError::BadSignature));
        assert_eq!(s.verify("abc"), Err(JwtError::Malformed));
        assert_eq!(s.verify("a.b.c"), Err(JwtError::Malformed));
        assert_eq!(claims_unverified(&t).unwrap()["tid"], "x");
        let p = parse(&t).unwrap();
        assert_eq!(p.header["alg"], "RS256");
        assert_eq!(p.claims["tid"], "x");
        assert_eq!(p.signature.len(), RS256_LEN);
        assert!(t.starts_with(p.signing_input));
        assert!(parse("a.b").is_none());
        assert!(parse("a.b.c.d").is_none());
    }
}
