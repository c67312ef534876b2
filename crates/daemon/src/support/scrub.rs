//! The one scrubber every path out goes through: text that came from outside
//! (error bodies and messages, names, links) may quote a secret the process
//! holds — a token endpoint echoing the request form, a Graph error quoting
//! the `Authorization` header, a Key Vault error containing the secret value —
//! and is cleaned here before it is logged, printed, shown or exported.
//!
//! Two nets:
//! - **By value**: every secret the process reads or is issued that is not
//!   token-shaped on its own (client secrets, refresh tokens, federated and
//!   managed-identity credentials, device and authorization codes) is
//!   [`remember`]ed and replaced wherever it appears, also percent-encoded.
//! - **By shape**: `Bearer …`/`Basic …` credentials, JWTs (every access token
//!   and client assertion Entra deals in), secret-named form and JSON fields
//!   (`refresh_token=…`, `"client_secret":"…"`), and any long run of
//!   token characters mixing upper case, lower case and digits. Access tokens
//!   are caught this way rather than by value: thousands are cached, packed,
//!   and keeping a plain copy of each for matching would double what they cost.
//!
//! [`upstream`] also bounds the length and escapes control characters, so a
//! hostile body cannot fill a log or forge a line.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::{Arc, OnceLock, RwLock};

use regex::Regex;
use tenantwatch_common::sync::{read, write};

/// What a secret is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Upstream text kept in an error or a log line, in characters: enough for
/// any real error message, too little for a body to flood a log.
pub const MAX_UPSTREAM_CHARS: usize = 500;

/// Shorter values are not matched by value: a six-letter secret would turn
/// every occurrence of an ordinary word into `[REDACTED]`. Entra client
/// secrets are 40 characters, refresh tokens hundreds.
const MIN_REMEMBERED: usize = 8;

/// Values remembered at most; the oldest are forgotten first. Rotation adds a
/// refresh token a day and a federated token file changes hourly, so this
/// covers weeks of a process's life.
const MAX_REMEMBERED: usize = 512;

fn remembered() -> &'static RwLock<VecDeque<Arc<str>>> {
    static KNOWN: OnceLock<RwLock<VecDeque<Arc<str>>>> = OnceLock::new();
    KNOWN.get_or_init(|| RwLock::new(VecDeque::new()))
}

/// Remembers a secret the process holds, so [`scrub`] replaces it wherever it
/// appears, as it is and percent-encoded (how a form echo quotes it).
pub fn remember(secret: &str) {
    let secret = secret.trim();
    if secret.len() < MIN_REMEMBERED {
        return;
    }
    let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let mut known = write(remembered());
    for v in [secret.to_string(), encoded] {
        if known.iter().any(|k| **k == *v) {
            continue;
        }
        if known.len() >= MAX_REMEMBERED {
            known.pop_front();
        }
        known.push_back(Arc::from(v));
    }
}

struct Patterns {
    /// `Bearer eyJ…`, `Basic dXNlcjpw…` (an echoed `Authorization` header).
    scheme: Regex,
    /// `refresh_token=…` in a form or query, up to the next separator.
    form_field: Regex,
    /// `"client_secret": "…"` in JSON.
    json_field: Regex,
    /// A JWT: three base64url segments, the first starting `eyJ` (`{"`).
    jwt: Regex,
    /// A long run of token characters (no `/`, so URL paths stay readable).
    run: Regex,
}

/// Form and query fields whose values are secrets (`code` is the
/// authorization code of the consent flow).
const SECRET_FIELDS: &str = "refresh_token|access_token|id_token|client_secret|client_assertion|assertion|device_code|code_verifier|code|password|subject_token|secret";
/// JSON fields whose string values are secrets: the token response's, and
/// Key Vault's `value` (the secret itself). Not `code`: that is the error
/// code in every Microsoft error body.
const SECRET_JSON_FIELDS: &str = "refresh_token|access_token|id_token|client_secret|client_assertion|assertion|device_code|code_verifier|password|subject_token|secret|value";

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| {
        // The patterns are constants, so building them cannot fail at run time;
        // the unit tests below build them on every run.
        let re = |p: &str| Regex::new(p).unwrap_or_else(|e| panic!("scrub pattern {p}: {e}"));
        Patterns {
            scheme: re(r"(?i)\b(bearer|basic)(\s+|%20|\+)[A-Za-z0-9._~+/=%-]+"),
            form_field: re(&format!(r"(?i)\b({SECRET_FIELDS})=[^&\s\x22'<>]*")),
            json_field: re(&format!(
                r#"(?i)"({SECRET_JSON_FIELDS})"\s*:\s*"(?:[^"\\]|\\.)*""#
            )),
            jwt: re(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}(\.[A-Za-z0-9_-]*)?"),
            run: re(r"[A-Za-z0-9._~*!+=%-]{40,}"),
        }
    })
}

/// True for a run that looks generated rather than written: upper and lower
/// case letters and digits mixed (GUIDs, hex versions and host names are not).
fn token_like(run: &str) -> bool {
    run.bytes().any(|b| b.is_ascii_uppercase())
        && run.bytes().any(|b| b.is_ascii_lowercase())
        && run.bytes().any(|b| b.is_ascii_digit())
}

/// `text` with every remembered secret and every secret-shaped string replaced
/// by [`REDACTED`].
pub fn scrub(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    {
        let known = read(remembered());
        for secret in known.iter() {
            if out.contains(&**secret) {
                out = Cow::Owned(out.replace(&**secret, REDACTED));
            }
        }
    }
    let p = patterns();
    let mut apply = |re: &Regex, with: &str| {
        if re.is_match(&out) {
            out = Cow::Owned(re.replace_all(&out, with).into_owned());
        }
    };
    apply(&p.scheme, &format!("$1 {REDACTED}"));
    apply(&p.json_field, &format!("\"$1\":\"{REDACTED}\""));
    apply(&p.form_field, &format!("$1={REDACTED}"));
    apply(&p.jwt, REDACTED);
    if p.run.is_match(&out) {
        let replaced = p.run.replace_all(&out, |c: &regex::Captures<'_>| {
            let run = &c[0];
            if token_like(run) {
                REDACTED.to_string()
            } else {
                run.to_string()
            }
        });
        if let Cow::Owned(s) = replaced {
            out = Cow::Owned(s);
        }
    }
    out
}

/// Text received from outside, made fit to keep in an error or log line:
/// scrubbed, control characters escaped (so it stays one line and cannot
/// colour or forge anything), and cut to [`MAX_UPSTREAM_CHARS`].
pub fn upstream(text: &str) -> String {
    let scrubbed = scrub(text);
    let mut out = String::with_capacity(scrubbed.len().min(MAX_UPSTREAM_CHARS + 32));
    let mut chars = scrubbed.chars();
    for c in chars.by_ref().take(MAX_UPSTREAM_CHARS) {
        escape_into(&mut out, c);
    }
    let rest = chars.count();
    if rest > 0 {
        out.push_str(&format!("… ({rest} more characters)"));
    }
    out
}

/// Writes `c`, escaped as `\n`, `\t`, `\u{1b}`… if it is a control character.
pub fn escape_into(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        c => out.push(c),
    }
}

/// `text` with its control characters escaped (see [`escape_into`]).
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        escape_into(&mut out, c);
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT: &str =
        "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL2dyYXBoIn0.c2lnbmF0dXJlLWJ5dGVz";

    #[test]
    fn an_echoed_token_request_form_keeps_no_secret() {
        let rt = "0.ARoAv4j5cvGGr0GRqy180BHbR-*7g!Lk9zQxYpW3mN";
        let body = format!(
            "AADSTS900144: bad request: client_id=11111111-1111-1111-1111-111111111111&grant_type=refresh_token&refresh_token={}&client_secret=Ab8Q~short&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default",
            url::form_urlencoded::byte_serialize(rt.as_bytes()).collect::<String>()
        );
        let out = scrub(&body);
        assert!(!out.contains("0.ARoAv4j5"), "{out}");
        assert!(!out.contains("Ab8Q~short"), "{out}");
        assert!(
            out.contains("grant_type=refresh_token"),
            "field names stay: {out}"
        );
        assert!(
            out.contains("client_id=11111111-1111-1111-1111-111111111111"),
            "{out}"
        );
    }

    #[test]
    fn authorization_headers_jwts_and_json_fields_go() {
        let out = scrub(&format!("invalid header Authorization: Bearer {JWT} seen")).into_owned();
        assert_eq!(
            out,
            format!("invalid header Authorization: Bearer {REDACTED} seen")
        );
        let out = scrub(&format!("token {JWT}.")).into_owned();
        assert_eq!(out, format!("token {REDACTED}."));
        let out = scrub(r#"{"error":"x","value":"s3cr3t-refresh","refresh_token":"abc\"def"}"#);
        assert!(!out.contains("s3cr3t") && !out.contains("abc"), "{out}");
        let body = r#"{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges"}}"#;
        assert_eq!(scrub(body), body, "error codes stay");
        let out = scrub("Authorization: Basic cHJvbWV0aGV1czpodW50ZXIy");
        assert_eq!(out, format!("Authorization: Basic {REDACTED}"));
    }

    #[test]
    fn remembered_values_go_as_they_are_and_percent_encoded() {
        remember("plain secret with spaces & symbols");
        remember("short");
        let out = scrub("a plain secret with spaces & symbols b");
        assert_eq!(out, format!("a {REDACTED} b"));
        let out = scrub("x=plain+secret+with+spaces+%26+symbols");
        assert!(!out.contains("plain+secret"), "{out}");
        assert_eq!(
            scrub("short stays"),
            "short stays",
            "too short to match by value"
        );
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        for text in [
            "graph https://graph.microsoft.com/v1.0/organization (tenant 0b7a8c5e-31d2-4c0e-9c3b-6f2d2f4b2a11): HTTP 403: Authorization_RequestDenied: Insufficient privileges to complete the operation.",
            "/subscriptions/6c0a2a51-7a8e-4f1c-9d35-3b0f0c2e8f11/resourceGroups/Production-WestEurope-01/providers/Microsoft.Compute/virtualMachines/vm1",
            "Key Vault version 3f1b5d0c9e8a4b7f9d2c6e1a0b3c5d7e, contoso.onmicrosoft.com",
            "AADSTS65001: The user or administrator has not consented to use the application.",
        ] {
            assert_eq!(scrub(text), text);
        }
    }

    #[test]
    fn upstream_text_is_bounded_single_line_and_scrubbed() {
        let long = "x".repeat(5000);
        let out = upstream(&long);
        assert!(out.len() < MAX_UPSTREAM_CHARS + 40, "{}", out.len());
        assert!(out.ends_with("(4500 more characters)"), "{out}");
        let forged = "ok\n2026-01-01T00:00:00Z ERROR forged line\x1b[31m red";
        let out = upstream(forged);
        assert!(!out.contains('\n') && !out.contains('\x1b'), "{out}");
        assert!(
            out.contains("\\n2026") && out.contains("\\u{1b}[31m"),
            "{out}"
        );
        assert_eq!(
            upstream(&format!("Bearer {JWT}")),
            format!("Bearer {REDACTED}")
        );
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_remembered_secret_never_survives_whatever_surrounds_it(
            secret in "[A-Za-z0-9._~!*-]{8,60}",
            before in ".{0,40}",
            after in ".{0,40}",
        ) {
            remember(&secret);
            let out = scrub(&format!("{before}{secret}{after}")).into_owned();
            prop_assert!(!out.contains(&secret), "{}", out);
            let out = upstream(&format!("{before}{secret}{after}"));
            prop_assert!(!out.contains(&secret), "{}", out);
        }
    }
}
