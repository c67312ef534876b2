//! Azure Key Vault secrets client (data plane), just what the refresh-token store needs.
//! A throttled call (429) is retried after the vault's `Retry-After`, backing
//! off exponentially as Key Vault's throttling guidance asks; a wait longer
//! than [`MAX_THROTTLE_WAIT`] fails the call instead.
//!
//! <https://learn.microsoft.com/rest/api/keyvault/secrets/get-secret/get-secret>
//! <https://learn.microsoft.com/azure/key-vault/general/overview-throttling>

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::Client;
use serde::Deserialize;
use url::Url;

use crate::auth::entra::{AccessToken, TokenError};
use crate::auth::identity::IdentitySource;
use crate::outbound::client::{self, ApiError};
use crate::support::retry::Backoff;
use crate::support::secret::{ExposeSecret, SecretString};

/// Data-plane API version sent with every request.
pub const API_VERSION: &str = "7.6";

/// Waits between retries of a throttled call: Key Vault's guidance backs off
/// 1, 2, 4, 8, 16 s; never sooner than its `Retry-After`.
const THROTTLE_RETRY: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(16));

/// Retries of one throttled call before it fails.
const THROTTLE_ATTEMPTS: u32 = 5;

/// The longest single wait for the vault inside one call; past it the call
/// fails and the caller's own schedule (rotation's retry) takes over.
pub const MAX_THROTTLE_WAIT: Duration = Duration::from_secs(30);

/// A Key Vault call failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyVaultError {
    /// The service identity could not get a token for the vault.
    #[error("Key Vault identity: {0}")]
    Token(#[from] TokenError),
    /// The vault answered with an error, or did not answer.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// A secret name or version cannot be part of the vault's URL.
    #[error("Key Vault: {0}")]
    Url(String),
}

impl KeyVaultError {
    /// True when the secret (or version) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            KeyVaultError::Api(ApiError::Status { status: 404, .. })
        )
    }
}

/// `SecretAttributes`: times are unix seconds.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SecretAttributes {
    /// Whether the version can be read.
    pub enabled: Option<bool>,
    /// Not before.
    pub nbf: Option<i64>,
    /// Expiry.
    pub exp: Option<i64>,
    /// Creation time.
    pub created: Option<i64>,
    /// Last update.
    pub updated: Option<i64>,
}

/// `SecretBundle`, the response of Get/Set Secret.
#[derive(Debug, Deserialize)]
pub struct SecretBundle {
    /// The secret value.
    pub value: SecretString,
    /// `{vault}/secrets/{name}/{version}`.
    pub id: String,
    /// Content type set by the writer.
    #[serde(rename = "contentType")]
    pub content_type: Option<String>,
    /// Attributes.
    #[serde(default)]
    pub attributes: SecretAttributes,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The vault's clock when it answered (`Date` header), unix seconds.
    #[serde(skip)]
    pub server_time: Option<i64>,
}

impl SecretBundle {
    /// The version part of the id.
    pub fn version(&self) -> &str {
        self.id.rsplit('/').next().unwrap_or_default()
    }
}

/// A new secret version to write.
pub struct NewSecret<'a> {
    /// The value.
    pub value: &'a SecretString,
    /// `contentType`.
    pub content_type: &'a str,
    /// `attributes.exp`, unix seconds.
    pub expires: Option<i64>,
    /// Tags (at most 15, per Key Vault).
    pub tags: BTreeMap<String, String>,
}

/// A vault client authenticated as the service identity.
pub struct KeyVaultClient {
    http: Client,
    vault: Url,
    identity: IdentitySource,
    audience: String,
    /// The tenant errors name: the identity's (the vault lives in it).
    tenant: String,
    /// A Tokio mutex: held across the token request so concurrent callers share one.
    token: tokio::sync::Mutex<Option<AccessToken>>,
}

impl KeyVaultClient {
    /// A client for `vault`, getting tokens for `audience` from `identity`.
    pub fn new(http: Client, vault: Url, identity: IdentitySource, audience: &str) -> Self {
        Self {
            http,
            vault,
            tenant: identity.tenant().to_string(),
            identity,
            audience: audience.to_string(),
            token: tokio::sync::Mutex::new(None),
        }
    }

    async fn bearer(&self, force: bool) -> Result<SecretString, TokenError> {
        let mut guard = self.token.lock().await;
        if let Some(t) = guard.as_ref() {
            if !force && t.expires_at > Instant::now() + Duration::from_secs(300) {
                return Ok(t.secret.clone());
            }
        }
        let t = self.identity.token(&self.audience, "keyvault").await?;
        let secret = t.secret.clone();
        *guard = Some(t);
        Ok(secret)
    }

    /// Gets the latest version of a secret, or one version.
    pub async fn get_secret(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<SecretBundle, KeyVaultError> {
        // The version comes from Key Vault's own answer (a read-back): it goes
        // in as one encoded segment, like the name.
        let mut segments = vec![("", "secrets"), ("secret name", name)];
        if let Some(v) = version {
            segments.push(("secret version", v));
        }
        let mut url = self.url(&segments)?;
        if version.is_none() {
            // `secrets/{name}/` asks for the latest version, as the SDKs do.
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        self.call(reqwest::Method::GET, url, None).await
    }

    /// Sets a secret: Key Vault stores it as a new version and returns its bundle.
    /// <https://learn.microsoft.com/rest/api/keyvault/secrets/set-secret/set-secret>
    pub async fn set_secret(
        &self,
        name: &str,
        new: &NewSecret<'_>,
    ) -> Result<SecretBundle, KeyVaultError> {
        let body = serde_json::json!({
            "value": new.value.expose_secret(),
            "contentType": new.content_type,
            "attributes": { "enabled": true, "exp": new.expires },
            "tags": new.tags,
        });
        let url = self.url(&[("", "secrets"), ("secret name", name)])?;
        self.call(reqwest::Method::PUT, url, Some(body)).await
    }

    fn url(&self, segments: &[(&'static str, &str)]) -> Result<Url, KeyVaultError> {
        crate::outbound::url::with_segments(&self.vault, segments)
            .map_err(|e| KeyVaultError::Url(e.to_string()))
    }

    async fn call(
        &self,
        method: reqwest::Method,
        mut url: Url,
        body: Option<serde_json::Value>,
    ) -> Result<SecretBundle, KeyVaultError> {
        url.query_pairs_mut()
            .append_pair("api-version", API_VERSION);
        let url = url.to_string();
        let mut force = false;
        let mut throttled = 0;
        loop {
            let bearer = self.bearer(force).await?;
            let mut req = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(bearer.expose_secret())
                .header("Accept", "application/json");
            if let Some(b) = &body {
                req = req.json(b);
            }
            let (status, headers, body) = client::send("keyvault", &self.tenant, &url, req).await?;
            match parse_secret_response(&self.tenant, &url, status, &headers, &body) {
                // A cached token can be revoked or the vault moved tenants: retry once with a fresh one.
                Err(ApiError::Status { status: 401, .. }) if !force => force = true,
                // A 429 was not processed (and not counted against the limit),
                // so even a Set Secret is safe to send again.
                Err(
                    e @ ApiError::Status {
                        status: 429,
                        retry_after,
                        ..
                    },
                ) if throttled < THROTTLE_ATTEMPTS => {
                    throttled += 1;
                    let wait = THROTTLE_RETRY.delay(throttled, retry_after);
                    if wait > MAX_THROTTLE_WAIT {
                        return Err(e.into());
                    }
                    tracing::debug!(url = %url, wait_ms = wait.as_millis() as u64, "Key Vault throttled the call; retrying");
                    tokio::time::sleep(wait).await;
                }
                other => return Ok(other?),
            }
        }
    }
}

/// Turns a Get/Set Secret response into a [`SecretBundle`] or a typed error.
/// A success body holds the secret, so a body that does not decode is reported
/// by its serde error alone, never by a snippet of its text.
pub fn parse_secret_response(
    tenant: &str,
    url: &str,
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
) -> Result<SecretBundle, ApiError> {
    let mut bundle: SecretBundle = client::parse_json(
        "keyvault", tenant, url, status, headers, body,
    )
    .map_err(|e| match e {
        ApiError::Decode {
            api,
            tenant,
            url,
            source,
            ..
        } => ApiError::Decode {
            api,
            tenant,
            url,
            source,
            snippet: "<redacted: may hold the secret>".into(),
        },
        other => other,
    })?;
    bundle.server_time = client::server_time(headers);
    Ok(bundle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_from_the_spec_example_parses() {
        let raw = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/keyvault-GetSecret-example.json"
        ));
        let ex: serde_json::Value = serde_json::from_str(raw).unwrap();
        let body = &ex["responses"]["200"]["body"];
        let b: SecretBundle = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(b.version(), "4387e9f3d6e14c459867679a90fd0f79");
        assert_eq!(b.attributes.enabled, Some(true));
        assert!(!format!("{b:?}").contains(b.value.expose_secret()));
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_vault_response_is_a_bundle_or_an_error_naming_api_and_tenant(
            status in crate::arb::status(),
            headers in crate::arb::headers(),
            body in crate::arb::body(),
        ) {
            match parse_secret_response("vault-tenant", "https://vault.test/secrets/x", status, &headers, &body) {
                Ok(_) => prop_assert!(status.is_success()),
                Err(e) => {
                    let text = e.to_string();
                    prop_assert!(text.contains("keyvault") && text.contains("vault-tenant"), "{}", text);
                }
            }
        }

        #[test]
        fn a_bundle_that_does_not_decode_never_shows_the_secret(
            secret in "[A-Za-z0-9]{24,40}",
            attributes in crate::arb::json(),
            tags in crate::arb::json(),
        ) {
            let body = serde_json::json!({
                "value": secret, "id": "https://vault.test/secrets/x/1", "attributes": attributes, "tags": tags,
            })
            .to_string();
            let r = parse_secret_response(
                "vault-tenant", "u", reqwest::StatusCode::OK, &reqwest::header::HeaderMap::new(), body.as_bytes(),
            );
            if let Err(e) = r {
                prop_assert!(!e.to_string().contains(&secret), "{}", e);
            }
        }
    }
}
