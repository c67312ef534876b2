//! Access tokens as the broker caches them: the bytes their base64url text
//! stands for, with the header and payload deflated against an earlier token.
//!
//! At thousands of tenants the cached tokens (one per tenant and API, about
//! 1.4 KiB each) are the largest thing tenantwatch holds. Entra's access
//! tokens are JWTs, three base64url segments that spend four characters on
//! every three bytes; kept decoded they take a quarter less, and the text is
//! rebuilt when a collector asks for it. Packing checks that the text comes
//! back exactly, and keeps any other token (opaque, padded, non-canonical) as
//! it is.
//!
//! Tokens for one API differ from each other in a handful of claims (tenant,
//! times, a few random ids) and the signature: the rest of the header and
//! payload is the same JSON every time. [`TokenPacker`] therefore deflates
//! them with an earlier token's header and payload as preset dictionary, which
//! leaves little more than the signature, the one part that does not compress.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use tenantwatch_common::sync::lock;
use zeroize::Zeroizing;

/// Deflate window, 8 KiB: room for a dictionary plus a token of a few KiB
/// each, while the inflate state every `unpack` sets up stays small.
const WINDOW_BITS: u8 = 13;
/// Longest dictionary kept (its tail), so that it and the token packed after
/// it still fit the window matches reach back over.
const DICT_MAX: usize = 1 << (WINDOW_BITS - 1);

/// The header and payload of a token that later tokens are deflated against.
/// Its bytes (admin UPN, object ids) are kept out of `Debug` like the tokens.
struct Dict(SecretBox<[u8]>);

impl std::fmt::Debug for Dict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Dict([REDACTED])")
    }
}

/// How `PackedToken::bytes` stands for the token.
enum Form {
    /// The token's text.
    Text,
    /// The decoded segments end to end; the first two are this long.
    Decoded { header: u16, payload: u16 },
    /// The first two segments (this long once inflated) deflated against
    /// `dict` into the first `deflated` bytes, then the decoded signature.
    Deflated {
        dict: Arc<Dict>,
        header: u16,
        payload: u16,
        deflated: u16,
    },
}

/// A cached access token; `Debug` shows nothing of it.
pub struct PackedToken {
    bytes: SecretBox<[u8]>,
    form: Form,
}

impl std::fmt::Debug for PackedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PackedToken([REDACTED])")
    }
}

/// A cached token's deflated segments did not inflate back (they did when packed).
#[derive(Debug, thiserror::Error)]
#[error("a cached access token's deflated header and payload do not inflate")]
pub struct InflateError;

/// A token's three segments decoded into one buffer.
struct Segments {
    bytes: Zeroizing<Vec<u8>>,
    header: u16,
    payload: u16,
}

impl Segments {
    /// `None` unless `text` is three base64url segments (canonical or not:
    /// the round trip in `pack` catches the rest).
    fn decode(text: &str) -> Option<Self> {
        let mut parts = text.split('.');
        let (a, b, c) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let mut out = Zeroizing::new(Vec::with_capacity(text.len() / 4 * 3 + 3));
        B64.decode_vec(a, &mut out).ok()?;
        let header = u16::try_from(out.len()).ok()?;
        B64.decode_vec(b, &mut out).ok()?;
        let payload = u16::try_from(out.len()).ok()? - header;
        B64.decode_vec(c, &mut out).ok()?;
        Some(Self {
            bytes: out,
            header,
            payload,
        })
    }

    /// The header and payload, the part worth deflating.
    fn claims(&self) -> &[u8] {
        &self.bytes[..usize::from(self.header) + usize::from(self.payload)]
    }

    fn signature(&self) -> &[u8] {
        &self.bytes[self.claims().len()..]
    }
}

impl PackedToken {
    /// Packs `token` without a dictionary: decoded when it is a canonical
    /// JWS compact string, else as text.
    #[cfg(test)]
    fn pack(token: &SecretString) -> Self {
        let text = token.expose_secret();
        Segments::decode(text)
            .and_then(|s| Self::decoded(&s, text))
            .unwrap_or_else(|| Self::text(text))
    }

    fn text(text: &str) -> Self {
        Self {
            bytes: SecretBox::new(Box::from(text.as_bytes())),
            form: Form::Text,
        }
    }

    /// `s` as decoded bytes, if they come back as exactly `text`.
    fn decoded(s: &Segments, text: &str) -> Option<Self> {
        let packed = Self {
            bytes: SecretBox::new(Box::from(&s.bytes[..])),
            form: Form::Decoded {
                header: s.header,
                payload: s.payload,
            },
        };
        packed.is(text).then_some(packed)
    }

    /// `s` with its header and payload deflated against `dict`; `None` when
    /// deflate fails or the result is not smaller than the decoded form.
    fn deflated(z: &mut Compress, s: &Segments, dict: &Arc<Dict>) -> Option<Self> {
        let deflated = deflate(z, s.claims(), dict)?;
        let len = u16::try_from(deflated.len()).ok()?;
        if deflated.len() >= s.claims().len() {
            return None;
        }
        let mut bytes = Zeroizing::new(Vec::with_capacity(deflated.len() + s.signature().len()));
        bytes.extend_from_slice(&deflated);
        bytes.extend_from_slice(s.signature());
        Some(Self {
            bytes: SecretBox::new(Box::from(&bytes[..])),
            form: Form::Deflated {
                dict: Arc::clone(dict),
                header: s.header,
                payload: s.payload,
                deflated: len,
            },
        })
    }

    /// Length of the deflated header and payload (of everything, undeflated).
    fn deflated_len(&self) -> usize {
        match self.form {
            Form::Deflated { deflated, .. } => usize::from(deflated),
            _ => self.bytes.expose_secret().len(),
        }
    }

    /// True when this unpacks to exactly `text`.
    fn is(&self, text: &str) -> bool {
        self.unpack()
            .is_ok_and(|t| t.expose_secret().as_bytes() == text.as_bytes())
    }

    /// The token's text. Packing made sure it comes back; should it still not
    /// (memory exhausted inside the inflater), the caller mints a new token.
    pub fn unpack(&self) -> Result<SecretString, InflateError> {
        let bytes = self.bytes.expose_secret();
        match &self.form {
            Form::Text => Ok(SecretString::from(
                String::from_utf8_lossy(bytes).into_owned(),
            )),
            Form::Decoded { header, payload } => {
                let (a, rest) = bytes.split_at(usize::from(*header).min(bytes.len()));
                let (b, c) = rest.split_at(usize::from(*payload).min(rest.len()));
                Ok(encode(a, b, c))
            }
            Form::Deflated {
                dict,
                header,
                payload,
                deflated,
            } => {
                let (d, c) = bytes.split_at(usize::from(*deflated).min(bytes.len()));
                let claims = inflate(d, dict, usize::from(*header) + usize::from(*payload))?;
                let (a, b) = claims.split_at(usize::from(*header));
                Ok(encode(a, b, c))
            }
        }
    }
}

/// The three decoded segments as JWS compact text.
fn encode(a: &[u8], b: &[u8], c: &[u8]) -> SecretString {
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

// zlib-rs keeps copies of what it (de)compresses in state it does not
// zeroize: headers and payloads only, never a signature, so no usable token.

/// A compressor for [`deflate`].
fn new_compressor() -> Compress {
    Compress::new_with_window_bits(Compression::best(), false, WINDOW_BITS)
}

/// Raw deflate of `data` with `dict` as preset dictionary; `None` on failure.
fn deflate(z: &mut Compress, data: &[u8], dict: &Dict) -> Option<Zeroizing<Vec<u8>>> {
    z.reset();
    z.set_dictionary(dict.0.expose_secret()).ok()?;
    // Deflate never grows data by more than a few bytes per 16 KiB block;
    // sized up front because `compress_vec` only fills spare capacity.
    let mut out = Zeroizing::new(Vec::with_capacity(data.len() + data.len() / 16 + 64));
    match z.compress_vec(data, &mut out, FlushCompress::Finish) {
        Ok(Status::StreamEnd) => Some(out),
        _ => None,
    }
}

/// Inverse of [`deflate`]: exactly `len` bytes or an error.
fn inflate(data: &[u8], dict: &Dict, len: usize) -> Result<Zeroizing<Vec<u8>>, InflateError> {
    let mut z = Decompress::new_with_window_bits(false, WINDOW_BITS);
    z.set_dictionary(dict.0.expose_secret())
        .map_err(|_| InflateError)?;
    let mut out = Zeroizing::new(vec![0; len]);
    match z.decompress(data, &mut out, FlushDecompress::Finish) {
        Ok(Status::StreamEnd) if z.total_out() == len as u64 => Ok(out),
        _ => Err(InflateError),
    }
}

/// Packs tokens against one dictionary per key (the broker uses the API):
/// the first token's header and payload, replaced by a later token's when
/// that one deflates poorly against it. Tokens keep the dictionary they were
/// packed with, so they stay readable after a replacement.
pub struct TokenPacker<K>(Mutex<Packing<K>>);

/// One lock for both: packs run one at a time (tens of microseconds, once
/// per token lifetime), so a dictionary cannot change under a pack.
struct Packing<K> {
    dicts: HashMap<K, Arc<Dict>>,
    /// Reused: a compressor's state is a quarter of a megabyte, and one per
    /// token (10,000 per hour at 5,000 tenants) churned the allocator.
    compressor: Option<Compress>,
}

impl<K> std::fmt::Debug for TokenPacker<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenPacker([REDACTED])")
    }
}

impl<K: Eq + Hash> Default for TokenPacker<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Eq + Hash> TokenPacker<K> {
    /// A packer with no dictionaries yet.
    pub fn new() -> Self {
        Self(Mutex::new(Packing {
            dicts: HashMap::new(),
            compressor: None,
        }))
    }

    /// Packs `token` against `key`'s dictionary; a token that is not a JWT
    /// is kept as text, one that does not deflate as its decoded bytes.
    pub fn pack(&self, key: K, token: &SecretString) -> PackedToken {
        let text = token.expose_secret();
        let Some(s) = Segments::decode(text) else {
            return PackedToken::text(text);
        };
        let mut st = lock(&self.0);
        let Packing { dicts, compressor } = &mut *st;
        let z = compressor.get_or_insert_with(new_compressor);
        // A token keeping over half its size against the dictionary has
        // drifted from it (another app, new claims): it becomes the
        // dictionary for the tokens after it.
        if let Some(p) = dicts
            .get(&key)
            .and_then(|d| PackedToken::deflated(z, &s, d))
        {
            if p.deflated_len() * 2 <= s.claims().len() && p.is(text) {
                return p;
            }
        }
        let claims = s.claims();
        let tail = &claims[claims.len().saturating_sub(DICT_MAX)..];
        let dict = Arc::new(Dict(SecretBox::new(Box::from(tail))));
        match PackedToken::deflated(z, &s, &dict) {
            Some(p) if p.is(text) => {
                dicts.insert(key, dict);
                p
            }
            _ => PackedToken::decoded(&s, text).unwrap_or_else(|| PackedToken::text(text)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{distributions::Alphanumeric, rngs::StdRng, Rng, SeedableRng};

    fn round_trip(text: &str) -> PackedToken {
        let p = PackedToken::pack(&SecretString::from(text.to_string()));
        assert_eq!(p.unpack().unwrap().expose_secret(), text);
        p
    }

    fn packed_round_trip<K: Eq + Hash>(packer: &TokenPacker<K>, key: K, text: &str) -> PackedToken {
        let p = packer.pack(key, &SecretString::from(text.to_string()));
        assert_eq!(p.unpack().unwrap().expose_secret(), text);
        p
    }

    fn is_decoded(p: &PackedToken) -> bool {
        matches!(p.form, Form::Decoded { .. })
    }

    fn is_text(p: &PackedToken) -> bool {
        matches!(p.form, Form::Text)
    }

    fn dict_of(p: &PackedToken) -> Option<&Arc<Dict>> {
        match &p.form {
            Form::Deflated { dict, .. } => Some(dict),
            _ => None,
        }
    }

    fn random_text(rng: &mut StdRng, len: usize) -> String {
        rng.sample_iter(Alphanumeric)
            .take(len)
            .map(char::from)
            .collect()
    }

    fn guid(rng: &mut StdRng) -> String {
        let b: [u8; 16] = rng.gen();
        let h = hex::encode(b);
        format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    }

    /// What the simulator's Entra issues a partner admin for one customer
    /// tenant (`sim::user_tokens::issue`), with a 256-byte RS256 signature.
    struct Issuer {
        kid: String,
        appid: String,
        oid: String,
    }

    const GRAPH_SCP: &str = "DelegatedAdminRelationship.Read.All Directory.Read.All Organization.Read.All SecurityEvents.Read.All ServiceHealth.Read.All User.Read";

    impl Issuer {
        fn new(rng: &mut StdRng) -> Self {
            let kid = B64.encode(rng.gen::<[u8; 20]>());
            Self {
                kid,
                appid: guid(rng),
                oid: guid(rng),
            }
        }

        fn token(&self, rng: &mut StdRng, aud: &str, scp: &str, now: u64) -> String {
            let tid = guid(rng);
            let header = serde_json::json!({
                "typ": "JWT", "alg": "RS256", "x5t": self.kid, "kid": self.kid,
            });
            let claims = serde_json::json!({
                "aud": aud,
                "iss": format!("https://sts.windows.net/{tid}/"),
                "iat": now,
                "nbf": now,
                "exp": now + 3600 + rng.gen_range(0..1800),
                "acr": "1",
                "aio": random_text(rng, 40),
                "amr": ["pwd", "mfa"],
                "appid": self.appid,
                "appidacr": "1",
                "family_name": "Agent",
                "given_name": "Partner Admin",
                "idp": "https://sts.windows.net/7d3b4c53-3c1f-4b6a-9a8e-0d6c4b2f9e11/",
                "ipaddr": "127.0.0.1",
                "name": "Partner Admin Agent",
                "oid": self.oid,
                "rh": format!("0.{}.", random_text(rng, 20)),
                "scp": scp,
                "sub": B64.encode(rng.gen::<[u8; 32]>()),
                "tid": tid,
                "unique_name": "admin@contoso-partner.onmicrosoft.com",
                "upn": "admin@contoso-partner.onmicrosoft.com",
                "uti": random_text(rng, 22),
                "ver": "1.0",
            });
            let sig: Vec<u8> = (0..256).map(|_| rng.gen()).collect();
            format!(
                "{}.{}.{}",
                B64.encode(header.to_string()),
                B64.encode(claims.to_string()),
                B64.encode(sig)
            )
        }
    }

    fn graph(issuer: &Issuer, rng: &mut StdRng) -> String {
        issuer.token(rng, "https://graph.microsoft.com", GRAPH_SCP, 1_760_000_000)
    }

    #[test]
    fn a_jwt_is_kept_decoded_and_comes_back_exactly() {
        let header = B64.encode(br#"{"typ":"JWT","alg":"RS256","kid":"abc"}"#);
        let payload = B64.encode(br#"{"aud":"https://graph.microsoft.com","tid":"0142711d"}"#);
        let sig = B64.encode([7u8; 256]);
        let jwt = format!("{header}.{payload}.{sig}");
        let p = round_trip(&jwt);
        assert!(is_decoded(&p));
        assert!(p.bytes.expose_secret().len() * 4 <= jwt.len() * 3 + 8);
        assert_eq!(format!("{p:?}"), "PackedToken([REDACTED])");
        assert!(!format!("{p:?}").contains(&sig[..20]));
    }

    #[test]
    fn anything_else_is_kept_as_text() {
        let packer = TokenPacker::new();
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
            let q = packed_round_trip(&packer, 0, t);
            if t == "aGl.aGl.aGl" || t.contains('=') || t.contains('!') || t.contains('ü') {
                assert!(is_text(&p), "{t}");
                assert!(is_text(&q), "{t}");
            }
        }
    }

    #[test]
    fn opaque_tokens_are_kept_as_text_and_leave_no_dictionary() {
        let packer = TokenPacker::new();
        let opaque = "EwBwA8l6BAAUs5+HQn0N+h2FxWzLS31ZgQVuHsYAAUqeN5SprpUuUvs5M1/CCq==";
        let p = packed_round_trip(&packer, "arm", opaque);
        assert!(is_text(&p));
        assert!(lock(&packer.0).dicts.is_empty());
    }

    #[test]
    fn a_later_token_deflates_to_little_more_than_its_signature() {
        let mut rng = StdRng::seed_from_u64(1);
        let issuer = Issuer::new(&mut rng);
        let packer = TokenPacker::new();
        let first = graph(&issuer, &mut rng);
        let second = graph(&issuer, &mut rng);
        let p1 = packed_round_trip(&packer, "graph", &first);
        let p2 = packed_round_trip(&packer, "graph", &second);
        let (d1, d2) = (dict_of(&p1).unwrap(), dict_of(&p2).unwrap());
        assert!(Arc::ptr_eq(d1, d2), "the first token is the dictionary");

        let decoded = PackedToken::pack(&SecretString::from(second.clone()));
        let decoded_len = decoded.bytes.expose_secret().len();
        let packed_len = p2.bytes.expose_secret().len();
        let Form::Decoded { header, payload } = decoded.form else {
            panic!("a JWT");
        };
        let claims = usize::from(header) + usize::from(payload);
        // The signature stays; the claims shrink to the few that differ.
        assert_eq!(decoded_len - claims, 256);
        assert!(
            packed_len - 256 < claims / 4,
            "{packed_len} of {decoded_len}"
        );
        assert!(
            packed_len * 2 < decoded_len,
            "{packed_len} of {decoded_len}"
        );
        // The dictionary is the header and payload only, never the signature.
        let dict = d1.0.expose_secret();
        let first_claims = Segments::decode(&first).unwrap();
        assert_eq!(dict, first_claims.claims());
        assert_eq!(format!("{:?}", **d1), "Dict([REDACTED])");
        assert_eq!(format!("{packer:?}"), "TokenPacker([REDACTED])");
    }

    #[test]
    fn a_token_unlike_the_dictionary_replaces_it_and_old_tokens_still_unpack() {
        let mut rng = StdRng::seed_from_u64(2);
        let a = Issuer::new(&mut rng);
        let packer = TokenPacker::new();
        let arm = |i: &Issuer, rng: &mut StdRng| {
            i.token(
                rng,
                "https://management.azure.com/",
                "user_impersonation",
                1_760_000_000,
            )
        };
        let (t1, t2) = (arm(&a, &mut rng), arm(&a, &mut rng));
        let p1 = packed_round_trip(&packer, "arm", &t1);
        let p2 = packed_round_trip(&packer, "arm", &t2);
        assert!(Arc::ptr_eq(dict_of(&p1).unwrap(), dict_of(&p2).unwrap()));

        // Different header, app and user: too little in common, so it takes over.
        let header = B64.encode(br#"{"alg":"ES256","typ":"at+jwt","kid":"Zm9vYmFyYmF6"}"#);
        let claims = B64.encode(
            serde_json::json!({
                "iss": "https://login.example.org/v2.0",
                "client_id": "spa-web", "azp": "spa-web",
                "roles": ["Reader", "Writer", "Auditor"],
                "jti": random_text(&mut rng, 32), "exp": 1_760_003_600,
            })
            .to_string(),
        );
        let other = |rng: &mut StdRng| {
            let sig: Vec<u8> = (0..64).map(|_| rng.gen()).collect();
            format!("{header}.{claims}.{}", B64.encode(sig))
        };
        let t3 = other(&mut rng);
        let p3 = packed_round_trip(&packer, "arm", &t3);
        let d3 = dict_of(&p3).unwrap();
        assert!(!Arc::ptr_eq(dict_of(&p1).unwrap(), d3));
        assert!(Arc::ptr_eq(lock(&packer.0).dicts.get("arm").unwrap(), d3));

        // Tokens packed against the replaced dictionary still come back.
        assert_eq!(p1.unpack().unwrap().expose_secret(), t1);
        assert_eq!(p2.unpack().unwrap().expose_secret(), t2);
        // And the next token of the new kind is packed against the new one.
        let p4 = packed_round_trip(&packer, "arm", &other(&mut rng));
        assert!(Arc::ptr_eq(dict_of(&p4).unwrap(), d3));
        // Another key was never touched.
        assert!(!lock(&packer.0).dicts.contains_key("graph"));
    }

    #[test]
    fn keys_have_their_own_dictionaries() {
        let mut rng = StdRng::seed_from_u64(3);
        let issuer = Issuer::new(&mut rng);
        let packer = TokenPacker::new();
        let g = packed_round_trip(&packer, "graph", &graph(&issuer, &mut rng));
        let a = packed_round_trip(
            &packer,
            "arm",
            &issuer.token(
                &mut rng,
                "https://management.azure.com/",
                "user_impersonation",
                1,
            ),
        );
        assert!(!Arc::ptr_eq(dict_of(&g).unwrap(), dict_of(&a).unwrap()));
        assert_eq!(lock(&packer.0).dicts.len(), 2);
    }

    #[test]
    fn jwt_shaped_tokens_that_deflate_poorly_still_round_trip() {
        let packer = TokenPacker::new();
        // Empty segments, and a token whose claims are all random bytes.
        let mut rng = StdRng::seed_from_u64(4);
        let noise: Vec<u8> = (0..300).map(|_| rng.gen()).collect();
        for t in [
            "..".to_string(),
            format!("{0}.{0}.{0}", B64.encode(&noise)),
            format!("e30.{}.", B64.encode(&noise)),
        ] {
            let p = packed_round_trip(&packer, 1, &t);
            assert!(!is_text(&p), "{t}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn any_segments_round_trip(
            segments in proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 0..300),
                 proptest::collection::vec(any::<u8>(), 0..300),
                 proptest::collection::vec(any::<u8>(), 0..64)),
                1..4,
            )
        ) {
            let packer = TokenPacker::new();
            for (h, p, s) in segments {
                let t = format!("{}.{}.{}", B64.encode(h), B64.encode(p), B64.encode(s));
                let packed = packer.pack((), &SecretString::from(t.clone()));
                let back = packed.unpack().unwrap();
                prop_assert_eq!(back.expose_secret(), t.as_str());
                prop_assert!(!is_text(&packed));
            }
        }
    }
}
