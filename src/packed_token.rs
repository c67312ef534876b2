//! Access tokens as the broker caches them: the bytes their base64url text
//! stands for.
//!
//! At thousands of tenants the cached tokens (one per tenant and API, about
//! 1.4 KiB each) are the largest thing tenantwatch holds. Entra's access
//! tokens are JWTs, three base64url segments that spend four characters on
//! every three bytes; kept decoded they take a quarter less, and the text is
//! rebuilt when a collector asks for it. Packing checks that the text comes
//! back exactly, and keeps any other token (opaque, padded, non-canonical) as
//! it is.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use zeroize::Zeroizing;

/// A cached access token; `Debug` shows nothing of it.
pub struct PackedToken {
    /// Decoded segments end to end, or the token's text.
    bytes: SecretBox<[u8]>,
    /// Decoded lengths of the first two segments; `None` when `bytes` is the text.
    split: Option<(u16, u16)>,
}

impl std::fmt::Debug for PackedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PackedToken([REDACTED])")
    }
}

impl PackedToken {
    /// Packs `token`, decoded when it is a canonical JWS compact string.
    pub fn pack(token: &SecretString) -> Self {
        let text = token.expose_secret();
        Self::decoded(text).unwrap_or_else(|| Self {
            bytes: SecretBox::new(Box::from(text.as_bytes())),
            split: None,
        })
    }

    fn decoded(text: &str) -> Option<Self> {
        let mut parts = text.split('.');
        let (a, b, c) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let mut out = Zeroizing::new(Vec::with_capacity(text.len() / 4 * 3 + 3));
        B64.decode_vec(a, &mut out).ok()?;
        let first = u16::try_from(out.len()).ok()?;
        B64.decode_vec(b, &mut out).ok()?;
        let second = u16::try_from(out.len()).ok()? - first;
        B64.decode_vec(c, &mut out).ok()?;
        let packed = Self {
            bytes: SecretBox::new(Box::from(&out[..])),
            split: Some((first, second)),
        };
        (packed.unpack().expose_secret() == text).then_some(packed)
    }

    /// The token's text.
    pub fn unpack(&self) -> SecretString {
        let bytes = self.bytes.expose_secret();
        let Some((first, second)) = self.split else {
            return SecretString::from(String::from_utf8_lossy(bytes).into_owned());
        };
        let (a, rest) = bytes.split_at(usize::from(first).min(bytes.len()));
        let (b, c) = rest.split_at(usize::from(second).min(rest.len()));
        let len = |s: &[u8]| base64::encoded_len(s.len(), false).unwrap_or(0);
        // Sized up front: a growing String would leave copies of the token behind.
        let mut text = String::with_capacity(len(a) + len(b) + len(c) + 2);
        for (i, part) in [a, b, c].into_iter().enumerate() {
            if i > 0 {
                text.push('.');
            }
            B64.encode_string(part, &mut text);
        }
        SecretString::from(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(text: &str) -> PackedToken {
        let p = PackedToken::pack(&SecretString::from(text.to_string()));
        assert_eq!(p.unpack().expose_secret(), text);
        p
    }

    #[test]
    fn a_jwt_is_kept_decoded_and_comes_back_exactly() {
        let header = B64.encode(br#"{"typ":"JWT","alg":"RS256","kid":"abc"}"#);
        let payload = B64.encode(br#"{"aud":"https://graph.microsoft.com","tid":"0142711d"}"#);
        let sig = B64.encode([7u8; 256]);
        let jwt = format!("{header}.{payload}.{sig}");
        let p = round_trip(&jwt);
        assert!(p.split.is_some());
        assert!(p.bytes.expose_secret().len() * 4 <= jwt.len() * 3 + 8);
        assert_eq!(format!("{p:?}"), "PackedToken([REDACTED])");
        assert!(!format!("{p:?}").contains(&sig[..20]));
    }

    #[test]
    fn anything_else_is_kept_as_text() {
        for t in [
            "opaque-token",
            "",
            "a.b",
            "a.b.c.d",
            "aGk=.aGk=.aGk=",  // padded
            "aGl.aGl.aGl",     // non-canonical trailing bits
            "not base64!.x.y", // not base64url
            "ü.ö.ä",
        ] {
            let p = round_trip(t);
            if t == "aGl.aGl.aGl" || t.contains('=') || t.contains('!') || t.contains('ü') {
                assert!(p.split.is_none(), "{t}");
            }
        }
    }
}
