//! The web config file: optional TLS and basic auth for `/metrics` and the
//! status page, in the format of Prometheus' exporter-toolkit
//! (`--web.config.file`), so the file an operator already has for
//! node_exporter works here, and Prometheus' `scrape_config` TLS and
//! `basic_auth` settings match it.
//!
//! Everything is checked when the file is loaded — unknown keys, unreadable
//! certificates, keys that do not match, malformed bcrypt hashes — so a
//! mistake stops the daemon at start (exit 2) instead of at the first scrape.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use serde::Deserialize;

/// The web config file could not be used; `key` names the YAML key.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    /// The file itself could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The YAML did not match the schema (unknown key, wrong type).
    #[error("{path}: {message}")]
    Yaml { path: PathBuf, message: String },
    /// A value is wrong; `key` is its dotted YAML path.
    #[error("{path}: {key}: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    tls_server_config: Option<RawTls>,
    http_server_config: Option<RawHttp>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
    rate_limit: Option<serde_yaml_ng::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: Option<String>,
    key: Option<String>,
    client_ca: Option<String>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_auth_type: Option<String>,
    client_ca_file: Option<PathBuf>,
    client_allowed_sans: Option<Vec<String>>,
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Option<Vec<String>>,
    prefer_server_cipher_suites: Option<bool>,
    curve_preferences: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    http2: Option<bool>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// Response headers exporter-toolkit allows in `http_server_config.headers`.
const ALLOWED_HEADERS: [&str; 5] = [
    "Content-Security-Policy",
    "X-Frame-Options",
    "X-Content-Type-Options",
    "X-XSS-Protection",
    "Strict-Transport-Security",
];

/// A loaded, checked web config.
#[derive(Clone)]
pub struct WebConfig {
    /// TLS server settings; `None` serves plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Users and their bcrypt hashes; empty means no authentication.
    pub users: Arc<BTreeMap<String, String>>,
    /// Extra response headers.
    pub headers: Vec<(axum::http::HeaderName, axum::http::HeaderValue)>,
    /// Files the config was built from, with their modification times, so a
    /// changed certificate is picked up without a restart.
    stamps: Vec<(PathBuf, Option<SystemTime>)>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Hashes are not secrets, but they are not for logs either.
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field("headers", &self.headers.len())
            .finish()
    }
}

impl WebConfig {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Self, WebConfigError> {
        let text =
            crate::support::files::read_capped_string(path, crate::support::files::DOCUMENT_LIMIT)
                .map_err(|source| WebConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
        let mut cfg = Self::parse(path, &text)?;
        cfg.stamps.insert(0, (path.to_path_buf(), modified(path)));
        Ok(cfg)
    }

    /// Checks the YAML `text` of the file at `path`; relative file names in it
    /// are relative to the file's directory, as in exporter-toolkit.
    pub fn parse(path: &Path, text: &str) -> Result<Self, WebConfigError> {
        let invalid = |key: &str, message: String| WebConfigError::Invalid {
            path: path.to_path_buf(),
            key: key.to_string(),
            message,
        };
        // An empty file is a valid "nothing configured", as in exporter-toolkit.
        let raw: RawWebConfig = if text.trim().is_empty() {
            RawWebConfig::default()
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| WebConfigError::Yaml {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?
        };
        if raw.rate_limit.is_some() {
            return Err(invalid(
                "rate_limit",
                "not supported by tenantwatch; scrapes only read a prepared snapshot".into(),
            ));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let mut stamps = Vec::new();
        let tls = match raw.tls_server_config {
            Some(t) => {
                let http2 = raw
                    .http_server_config
                    .as_ref()
                    .and_then(|h| h.http2)
                    .unwrap_or(true);
                Some(Arc::new(tls_config(t, base, http2, &mut stamps, &invalid)?))
            }
            None => None,
        };
        let mut headers = Vec::new();
        for (name, value) in raw
            .http_server_config
            .map(|h| h.headers)
            .unwrap_or_default()
        {
            let key = format!("http_server_config.headers.{name}");
            let Some(canonical) = ALLOWED_HEADERS
                .iter()
                .find(|h| h.eq_ignore_ascii_case(&name))
            else {
                return Err(invalid(
                    &key,
                    format!(
                        "not an allowed header; use one of {}",
                        ALLOWED_HEADERS.join(", ")
                    ),
                ));
            };
            if value.is_empty() {
                continue;
            }
            let value = axum::http::HeaderValue::from_str(&value)
                .map_err(|e| invalid(&key, format!("not a valid header value: {e}")))?;
            // HeaderName lower-cases; the allowed names are valid, so this cannot fail.
            let name = axum::http::HeaderName::from_bytes(canonical.as_bytes())
                .map_err(|e| invalid(&key, e.to_string()))?;
            headers.push((name, value));
        }
        for (user, hash) in &raw.basic_auth_users {
            let key = format!("basic_auth_users.{user}");
            if user.is_empty() || user.contains(':') {
                return Err(invalid(
                    &key,
                    "a user name must be non-empty and without ':'".into(),
                ));
            }
            // Parsing now means a bad hash fails the start, not every request.
            if !hash.is_ascii() || hash.parse::<bcrypt::HashParts>().is_err() {
                return Err(invalid(
                    &key,
                    "not a bcrypt hash (make one with: htpasswd -nBC 10 \"\" | tr -d ':\\n')"
                        .into(),
                ));
            }
        }
        Ok(Self {
            tls,
            users: Arc::new(raw.basic_auth_users),
            headers,
            stamps,
        })
    }

    /// True when a file it was built from has changed since.
    pub fn is_stale(&self) -> bool {
        self.stamps.iter().any(|(p, t)| modified(p) != *t)
    }
}

fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Reads PEM from an inline value or a file (relative to `base`), never both.
fn pem_source(
    inline: Option<String>,
    file: Option<PathBuf>,
    key: &str,
    base: &Path,
    stamps: &mut Vec<(PathBuf, Option<SystemTime>)>,
    invalid: &dyn Fn(&str, String) -> WebConfigError,
) -> Result<Option<Vec<u8>>, WebConfigError> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(invalid(
            &format!("tls_server_config.{key}_file"),
            format!("give either {key} or {key}_file, not both"),
        )),
        (Some(pem), None) => Ok(Some(pem.into_bytes())),
        (None, Some(f)) => {
            let path = base.join(&f);
            let bytes =
                crate::support::files::read_capped(&path, crate::support::files::DOCUMENT_LIMIT)
                    .map_err(|e| {
                        invalid(
                            &format!("tls_server_config.{key}_file"),
                            format!("cannot read {}: {e}", path.display()),
                        )
                    })?;
            stamps.push((path.clone(), modified(&path)));
            Ok(Some(bytes))
        }
        (None, None) => Ok(None),
    }
}

fn tls_config(
    t: RawTls,
    base: &Path,
    http2: bool,
    stamps: &mut Vec<(PathBuf, Option<SystemTime>)>,
    invalid: &dyn Fn(&str, String) -> WebConfigError,
) -> Result<rustls::ServerConfig, WebConfigError> {
    if t.client_allowed_sans.is_some() {
        return Err(invalid(
            "tls_server_config.client_allowed_sans",
            "not supported by tenantwatch; restrict clients with client_ca_file".into(),
        ));
    }
    let cert = pem_source(t.cert, t.cert_file, "cert", base, stamps, invalid)?
        .ok_or_else(|| invalid("tls_server_config.cert_file", "missing".into()))?;
    let key = pem_source(t.key, t.key_file, "key", base, stamps, invalid)?
        .ok_or_else(|| invalid("tls_server_config.key_file", "missing".into()))?;
    let client_ca = pem_source(
        t.client_ca,
        t.client_ca_file,
        "client_ca",
        base,
        stamps,
        invalid,
    )?;

    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert)
        .collect::<Result<_, _>>()
        .map_err(|e| invalid("tls_server_config.cert_file", format!("bad PEM: {e}")))?;
    if chain.is_empty() {
        return Err(invalid(
            "tls_server_config.cert_file",
            "no CERTIFICATE in the PEM".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&key).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => invalid(
            "tls_server_config.key_file",
            "no PRIVATE KEY in the PEM".into(),
        ),
        e => invalid("tls_server_config.key_file", format!("bad PEM: {e}")),
    })?;

    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(names) = &t.cipher_suites {
        provider.cipher_suites = cipher_suites(&provider.cipher_suites, names, invalid)?;
    }
    if let Some(names) = &t.curve_preferences {
        provider.kx_groups = curves(&provider.kx_groups, names, invalid)?;
    }
    let versions = versions(t.min_version.as_deref(), t.max_version.as_deref(), invalid)?;
    let builder = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&versions)
        .map_err(|e| invalid("tls_server_config", e.to_string()))?;

    let auth_type = t.client_auth_type.as_deref().unwrap_or("NoClientCert");
    let builder = match auth_type {
        "NoClientCert" => {
            if client_ca.is_some() {
                return Err(invalid(
                    "tls_server_config.client_ca_file",
                    "set, but client_auth_type is NoClientCert: set it to RequireAndVerifyClientCert".into(),
                ));
            }
            builder.with_no_client_auth()
        }
        "RequireAndVerifyClientCert" | "VerifyClientCertIfGiven" => {
            let ca = client_ca.ok_or_else(|| {
                invalid(
                    "tls_server_config.client_ca_file",
                    format!("required with client_auth_type {auth_type}"),
                )
            })?;
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(&ca) {
                let c = c.map_err(|e| {
                    invalid("tls_server_config.client_ca_file", format!("bad PEM: {e}"))
                })?;
                roots.add(c).map_err(|e| {
                    invalid("tls_server_config.client_ca_file", format!("bad certificate: {e}"))
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                Arc::new(rustls::crypto::ring::default_provider()),
            );
            let verifier = if auth_type == "VerifyClientCertIfGiven" {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier
                .build()
                .map_err(|e| invalid("tls_server_config.client_ca_file", e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        "RequestClientCert" | "RequireAnyClientCert" => {
            return Err(invalid(
                "tls_server_config.client_auth_type",
                format!("{auth_type} accepts certificates nobody verified; use RequireAndVerifyClientCert"),
            ))
        }
        other => {
            return Err(invalid(
                "tls_server_config.client_auth_type",
                format!("unknown value {other:?}; use NoClientCert, RequireAndVerifyClientCert or VerifyClientCertIfGiven"),
            ))
        }
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        invalid(
            "tls_server_config.key_file",
            format!("does not fit the certificate: {e}"),
        )
    })?;
    config.ignore_client_order = t.prefer_server_cipher_suites.unwrap_or(true);
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(config)
}

fn versions(
    min: Option<&str>,
    max: Option<&str>,
    invalid: &dyn Fn(&str, String) -> WebConfigError,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, WebConfigError> {
    // Ordered oldest first; rustls implements no version before TLS 1.2.
    let rank = |key: &str, v: Option<&str>, default: u8| match v {
        None => Ok(default),
        Some("TLS12") => Ok(12),
        Some("TLS13") => Ok(13),
        Some(v @ ("TLS10" | "TLS11")) => Err(invalid(
            key,
            format!("{v} is not supported (rustls implements TLS12 and TLS13)"),
        )),
        Some(v) => Err(invalid(
            key,
            format!("unknown version {v:?}; use TLS12 or TLS13"),
        )),
    };
    let lo = rank("tls_server_config.min_version", min, 12)?;
    let hi = rank("tls_server_config.max_version", max, 13)?;
    if lo > hi {
        return Err(invalid(
            "tls_server_config.min_version",
            "above max_version".into(),
        ));
    }
    let mut v = Vec::new();
    if lo <= 12 {
        v.push(&rustls::version::TLS12);
    }
    if hi >= 13 {
        v.push(&rustls::version::TLS13);
    }
    Ok(v)
}

/// `cipher_suites` restricts the TLS 1.2 suites, as Go's does; TLS 1.3 suites
/// are not configurable there and stay as they are.
fn cipher_suites(
    all: &[rustls::SupportedCipherSuite],
    names: &[String],
    invalid: &dyn Fn(&str, String) -> WebConfigError,
) -> Result<Vec<rustls::SupportedCipherSuite>, WebConfigError> {
    let name_of = |s: &rustls::SupportedCipherSuite| s.suite().as_str().unwrap_or("").to_string();
    let tls12: Vec<_> = all
        .iter()
        .filter(|s| s.version() == &rustls::version::TLS12)
        .collect();
    let mut chosen: Vec<_> = all
        .iter()
        .filter(|s| s.version() == &rustls::version::TLS13)
        .copied()
        .collect();
    for n in names {
        match tls12.iter().find(|s| name_of(s) == *n) {
            Some(s) => chosen.push(**s),
            None => {
                let known: Vec<String> = tls12.iter().map(|s| name_of(s)).collect();
                return Err(invalid(
                    "tls_server_config.cipher_suites",
                    format!("{n:?} is not supported; supported: {}", known.join(", ")),
                ));
            }
        }
    }
    Ok(chosen)
}

fn curves(
    all: &[&'static dyn rustls::crypto::SupportedKxGroup],
    names: &[String],
    invalid: &dyn Fn(&str, String) -> WebConfigError,
) -> Result<Vec<&'static dyn rustls::crypto::SupportedKxGroup>, WebConfigError> {
    use rustls::NamedGroup;
    let mut chosen = Vec::new();
    for n in names {
        // Go's curve names, as exporter-toolkit documents them.
        let group = match n.as_str() {
            "X25519" => NamedGroup::X25519,
            "CurveP256" => NamedGroup::secp256r1,
            "CurveP384" => NamedGroup::secp384r1,
            "CurveP521" => NamedGroup::secp521r1,
            _ => NamedGroup::Unknown(0),
        };
        match all.iter().find(|g| g.name() == group) {
            Some(g) => chosen.push(*g),
            None => {
                return Err(invalid(
                    "tls_server_config.curve_preferences",
                    format!("{n:?} is not supported; use X25519, CurveP256 or CurveP384"),
                ))
            }
        }
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        match WebConfig::parse(Path::new("/etc/tw/web.yml"), text) {
            Ok(c) => panic!("accepted: {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    const HASH: &str = "$2y$04$Fg1Xcu6yQwOp8JthDZVheOBxX1AOfUWHtmzmYBnhk6ntYEb3O0Pcy";

    #[test]
    fn empty_file_means_plain_http_without_auth() {
        let c = WebConfig::parse(Path::new("w.yml"), "\n").unwrap();
        assert!(c.tls.is_none() && c.users.is_empty() && c.headers.is_empty());
    }

    #[test]
    fn users_and_headers_are_read() {
        let c = WebConfig::parse(
            Path::new("w.yml"),
            &format!(
                "basic_auth_users:\n  Alice: '{HASH}'\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n    Content-Security-Policy: ''\n"
            ),
        )
        .unwrap();
        // Case is kept: user names are compared exactly, as exporter-toolkit does.
        assert_eq!(c.users.get("Alice").map(String::as_str), Some(HASH));
        assert_eq!(c.headers.len(), 1);
        assert_eq!(c.headers[0].0.as_str(), "x-frame-options");
    }

    #[test]
    fn mistakes_name_the_key() {
        assert!(err("basic_auth_users:\n  bob: plaintext\n")
            .contains("basic_auth_users.bob: not a bcrypt hash"));
        assert!(
            err("tls_server_config:\n  cert_file: nope.crt\n  key_file: nope.key\n")
                .contains("tls_server_config.cert_file: cannot read /etc/tw/nope.crt")
        );
        assert!(err("tls_config:\n  cert_file: a\n").contains("unknown field `tls_config`"));
        assert!(
            err("tls_server_config:\n  cert_file: /dev/zero\n  key_file: /dev/zero\n")
                .contains("cannot read /dev/zero: not a regular file")
        );
        assert!(err("http_server_config:\n  headers:\n    Server: x\n")
            .contains("http_server_config.headers.Server: not an allowed header"));
        assert!(err("rate_limit:\n  interval: 1s\n").contains("rate_limit: not supported"));
        assert!(err(&format!("basic_auth_users:\n  'a:b': '{HASH}'\n")).contains("without ':'"));
    }

    #[test]
    fn tls_needs_both_halves_and_rejects_unverified_client_certs() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed();
        std::fs::write(dir.path().join("s.crt"), &cert).unwrap();
        std::fs::write(dir.path().join("s.key"), &key).unwrap();
        let path = dir.path().join("web.yml");
        let ok = WebConfig::parse(&path, "tls_server_config:\n  cert_file: s.crt\n  key_file: s.key\n  min_version: TLS13\n  curve_preferences: [X25519]\n").unwrap();
        assert!(ok.tls.is_some());
        let e = WebConfig::parse(&path, "tls_server_config:\n  cert_file: s.crt\n").unwrap_err();
        assert!(e.to_string().contains("key_file: missing"), "{e}");
        let e = WebConfig::parse(&path, "tls_server_config:\n  cert_file: s.crt\n  key_file: s.key\n  client_auth_type: RequireAnyClientCert\n").unwrap_err();
        assert!(
            e.to_string().contains("use RequireAndVerifyClientCert"),
            "{e}"
        );
        let e = WebConfig::parse(&path, "tls_server_config:\n  cert_file: s.crt\n  key_file: s.key\n  client_auth_type: RequireAndVerifyClientCert\n").unwrap_err();
        assert!(e.to_string().contains("client_ca_file: required"), "{e}");
        let e = WebConfig::parse(
            &path,
            "tls_server_config:\n  cert_file: s.crt\n  key_file: s.key\n  min_version: TLS11\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("TLS11 is not supported"), "{e}");
        let e = WebConfig::parse(&path, "tls_server_config:\n  cert_file: s.crt\n  key_file: s.key\n  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("cipher_suites: \"TLS_RSA_WITH_RC4_128_SHA\" is not supported"),
            "{e}"
        );
        let (_, other_key) = self_signed();
        std::fs::write(dir.path().join("o.key"), &other_key).unwrap();
        let e = WebConfig::parse(
            &path,
            "tls_server_config:\n  cert_file: s.crt\n  key_file: o.key\n",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("does not fit the certificate"),
            "{e}"
        );
    }

    #[test]
    fn a_changed_certificate_makes_the_config_stale() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed();
        std::fs::write(dir.path().join("s.crt"), &cert).unwrap();
        std::fs::write(dir.path().join("s.key"), &key).unwrap();
        let path = dir.path().join("web.yml");
        std::fs::write(
            &path,
            "tls_server_config:\n  cert_file: s.crt\n  key_file: s.key\n",
        )
        .unwrap();
        let c = WebConfig::load(&path).unwrap();
        assert!(!c.is_stale());
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        let f = std::fs::File::options()
            .write(true)
            .open(dir.path().join("s.crt"))
            .unwrap();
        f.set_modified(later).unwrap();
        assert!(c.is_stale());
    }

    fn self_signed() -> (String, String) {
        let k = rcgen::KeyPair::generate().unwrap();
        let c = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&k)
            .unwrap();
        (c.pem(), k.serialize_pem())
    }
}
