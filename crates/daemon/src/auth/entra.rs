//! Entra ID (Azure AD) token endpoint client, v2.0 protocol.
//!
//! <https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow#refresh-the-access-token>

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Client;
use serde::Deserialize;
use url::Url;

use crate::auth::classify::classify;
use crate::model::ErrorClass;

use crate::config::PartnerApp;
use crate::metrics::Metrics;
use crate::outbound::client;
use crate::support::secret::{ExposeSecret, SecretString};

/// A token-endpoint failure, with the tenant, URL and AADSTS codes it concerns.
#[derive(Debug, Clone, thiserror::Error)]
#[error("token request for tenant {tenant} ({scope}) at {url} failed [{class}]: {detail}")]
pub struct TokenError {
    /// The tenant in the token URL.
    pub tenant: String,
    /// The scope asked for.
    pub scope: String,
    /// The token endpoint.
    pub url: String,
    /// HTTP status, when there was a response.
    pub status: Option<u16>,
    /// `error` from the body, e.g. `invalid_grant`.
    pub error: Option<String>,
    /// AADSTS codes from `error_codes`.
    pub codes: Vec<u32>,
    /// The class the codes map to.
    pub class: ErrorClass,
    /// `Retry-After`, when the endpoint sent one.
    pub retry_after: Option<Duration>,
    /// Human-readable detail: the first line of `error_description` or the transport error.
    pub detail: String,
}

/// A minted access token.
#[derive(Debug, Clone)]
pub struct AccessToken {
    /// The bearer token.
    pub secret: SecretString,
    /// When it stops being valid, on the monotonic clock.
    pub expires_at: Instant,
}

/// A token response that also carries a new refresh token.
#[derive(Debug)]
pub struct Redeemed {
    /// The access token.
    pub access: AccessToken,
    /// The new refresh token Entra returns on every redemption, if any.
    pub refresh_token: Option<SecretString>,
    /// When Entra issued it, by Entra's clock (`Date` header), unix seconds.
    pub server_time: Option<i64>,
}

/// The device authorization response.
/// <https://learn.microsoft.com/entra/identity-platform/v2-oauth2-device-code#device-authorization-response>
#[derive(Debug, Deserialize)]
pub struct DeviceCode {
    /// Secret polled with.
    pub device_code: SecretString,
    /// Code the user types.
    pub user_code: String,
    /// Where the user types it.
    pub verification_uri: String,
    /// Seconds until the codes expire.
    #[serde(deserialize_with = "expires_in")]
    pub expires_in: u64,
    /// Polling interval in seconds.
    #[serde(default = "default_interval", deserialize_with = "interval")]
    pub interval: u64,
    /// The sentence to show the user.
    #[serde(default)]
    pub message: String,
}

fn default_interval() -> u64 {
    5
}

/// v2.0 success body. `expires_in` is an integer on v2.0 but a string on v1, and
/// proxies have been seen to re-encode it, so both are accepted.
#[derive(Deserialize)]
struct TokenBody {
    access_token: SecretString,
    #[serde(deserialize_with = "expires_in")]
    expires_in: u64,
    refresh_token: Option<SecretString>,
}

#[derive(Deserialize, Default)]
struct ErrorBody {
    error: Option<String>,
    error_description: Option<String>,
    #[serde(default)]
    error_codes: Vec<u32>,
}

fn expires_in<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    d.deserialize_any(Seconds("expires_in"))
}

fn interval<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    d.deserialize_any(Seconds("interval"))
}

/// Whole seconds as a number or a numeric string, for the field it names.
/// Every refusal names the field and what it holds but never a string's
/// text: the body it sits in carries tokens.
struct Seconds(&'static str);

impl Seconds {
    fn refuse<E: serde::de::Error>(&self, got: impl std::fmt::Display) -> E {
        E::custom(format_args!(
            "{} must be whole seconds >= 0, as a number or a numeric string; got {got}",
            self.0
        ))
    }
}

impl<'de> serde::de::Visitor<'de> for Seconds {
    type Value = u64;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "{}: whole seconds >= 0, as a number or a numeric string",
            self.0
        )
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| self.refuse(v))
    }

    fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| self.refuse(v))
    }

    fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| self.refuse(v))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<u64, E> {
        // 3600.0 is whole seconds; 1.5, -1.0 and 1e30 are not.
        if v.fract() == 0.0 && (0.0..u64::MAX as f64).contains(&v) {
            Ok(v as u64)
        } else {
            Err(self.refuse(v))
        }
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<u64, E> {
        v.trim()
            .parse()
            .map_err(|_| self.refuse("a string that is not a whole number"))
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<u64, E> {
        Err(self.refuse(v))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<u64, E> {
        Err(self.refuse("null"))
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<u64, E> {
        Err(self.refuse("null"))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _: A) -> Result<u64, A::Error> {
        Err(self.refuse("a list"))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, _: A) -> Result<u64, A::Error> {
        Err(self.refuse("an object"))
    }
}

/// Talks to `{login}/{tenant}/oauth2/v2.0/token` and counts every request.
#[derive(Clone)]
pub struct TokenClient {
    http: Client,
    login: Url,
    metrics: Arc<Metrics>,
    /// The partner whose tokens these are: the `partner` label.
    partner: Arc<str>,
    /// Declared in the `claims` parameter of every refresh-token redemption
    /// (`cloud.client_capabilities`).
    capabilities: Arc<[String]>,
}

/// The `claims` form field of a token request, as MSAL builds it
/// (`_merge_claims_challenge_and_capabilities` in msal/application.py):
/// the challenge's claims request with `{"xms_cc":{"values":[…]}}` set under
/// `access_token` when capabilities are declared, the challenge alone when
/// not, nothing when neither. A challenge that is not a JSON object is
/// dropped (only the capabilities are sent): Entra would refuse the request
/// for it, and the retry it serves would fail anyway.
/// <https://learn.microsoft.com/entra/identity-platform/claims-challenge>
pub fn claims_parameter(capabilities: &[String], challenge: Option<&str>) -> Option<String> {
    let parsed = challenge
        .and_then(|c| serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(c).ok());
    if capabilities.is_empty() {
        return parsed.map(|m| serde_json::Value::Object(m).to_string());
    }
    let mut claims = parsed.unwrap_or_default();
    let access = claims
        .entry("access_token")
        .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
    if !access.is_object() {
        *access = serde_json::Value::Object(serde_json::Map::new());
    }
    if let Some(a) = access.as_object_mut() {
        a.insert(
            "xms_cc".into(),
            serde_json::json!({ "values": capabilities }),
        );
    }
    Some(serde_json::Value::Object(claims).to_string())
}

impl TokenClient {
    /// The same client for another login host (an identity with its own authority).
    pub fn with_login(&self, login: Url) -> Self {
        Self {
            login,
            ..self.clone()
        }
    }

    /// `{login}/{tenant}/oauth2/v2.0/{leaf}`, the tenant as one percent-encoded
    /// path segment. Only a tenant id (GUID) or a domain name is accepted: an
    /// alias such as `common` or `organizations` would sign in at the
    /// partner's own home tenant, and anything else is not a tenant at all.
    /// `Err` holds the reason, for [`TokenClient::refused`].
    fn endpoint(&self, tenant: &str, leaf: &str) -> Result<Url, String> {
        if !crate::model::is_tenant_id(tenant) && !crate::model::is_domain(tenant) {
            return Err(format!(
                "tenant {:?} is neither a tenant id (GUID) nor a domain name; not sent to Entra ID",
                crate::support::scrub::upstream(tenant)
            ));
        }
        crate::outbound::url::with_segments(
            &self.login,
            &[("tenant", tenant), ("", "oauth2"), ("", "v2.0"), ("", leaf)],
        )
        .map_err(|e| e.to_string())
    }

    /// The error for a request that was never sent because its tenant is not one.
    fn refused(&self, tenant: &str, scope: &str, detail: String) -> TokenError {
        TokenError {
            tenant: crate::support::scrub::upstream(tenant),
            scope: scope.to_string(),
            url: self.login.to_string(),
            status: None,
            error: None,
            codes: Vec::new(),
            class: ErrorClass::TenantNotFound,
            retry_after: None,
            detail,
        }
    }

    /// A client for one login authority host requesting partner `partner`'s
    /// tokens, declaring no client capabilities.
    pub fn new(http: Client, login: Url, metrics: Arc<Metrics>, partner: &str) -> Self {
        Self {
            http,
            login,
            metrics,
            partner: Arc::from(partner),
            capabilities: Arc::from(Vec::new()),
        }
    }

    /// The partner whose tokens these are.
    pub fn partner(&self) -> &str {
        &self.partner
    }

    /// The same client declaring `capabilities` on refresh-token redemptions.
    pub fn with_capabilities(self, capabilities: Vec<String>) -> Self {
        Self {
            capabilities: Arc::from(capabilities),
            ..self
        }
    }

    /// Redeems a refresh token in `tenant` for `scope` (delegated, on behalf of the partner's admin agent).
    pub async fn redeem_refresh_token(
        &self,
        app: &PartnerApp,
        tenant: &str,
        scope: &str,
        scope_label: &str,
        refresh_token: &SecretString,
    ) -> Result<Redeemed, TokenError> {
        self.redeem_refresh_token_with_claims(app, tenant, scope, scope_label, refresh_token, None)
            .await
    }

    /// [`TokenClient::redeem_refresh_token`] answering a claims challenge:
    /// `challenge` is the decoded claims request of a resource's
    /// `WWW-Authenticate`, sent merged with the client capabilities.
    pub async fn redeem_refresh_token_with_claims(
        &self,
        app: &PartnerApp,
        tenant: &str,
        scope: &str,
        scope_label: &str,
        refresh_token: &SecretString,
        challenge: Option<&str>,
    ) -> Result<Redeemed, TokenError> {
        let full_scope = format!("{scope} offline_access");
        let claims = claims_parameter(&self.capabilities, challenge);
        let mut form = vec![
            ("client_id", app.client_id.as_str()),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose_secret()),
            ("scope", full_scope.as_str()),
        ];
        if let Some(c) = &claims {
            form.push(("claims", c.as_str()));
        }
        self.request(app, tenant, scope, scope_label, &form).await
    }

    /// Client-credentials grant: the app's own token (used for Key Vault).
    pub async fn client_credentials(
        &self,
        app: &PartnerApp,
        scope: &str,
        scope_label: &str,
    ) -> Result<AccessToken, TokenError> {
        let form = [
            ("client_id", app.client_id.as_str()),
            ("grant_type", "client_credentials"),
            ("scope", scope),
        ];
        Ok(self
            .request(app, &app.tenant_id, scope, scope_label, &form)
            .await?
            .access)
    }

    /// Authorization-code grant with PKCE (RFC 7636): the code from the consent callback.
    pub async fn authorization_code(
        &self,
        app: &PartnerApp,
        scope: &str,
        code: &SecretString,
        redirect_uri: &str,
        verifier: &SecretString,
    ) -> Result<Redeemed, TokenError> {
        let form = [
            ("client_id", app.client_id.as_str()),
            ("grant_type", "authorization_code"),
            ("code", code.expose_secret()),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier.expose_secret()),
            ("scope", scope),
        ];
        self.request(app, &app.tenant_id, scope, "consent", &form)
            .await
    }

    /// The browser URL of the authorization-code flow.
    /// <https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow#request-an-authorization-code>
    pub fn authorize_url(
        &self,
        app: &PartnerApp,
        scope: &str,
        redirect_uri: &str,
        state: &str,
        challenge: &str,
    ) -> String {
        let mut url = match self.endpoint(&app.tenant_id, "authorize") {
            Ok(u) => u,
            Err(e) => return e,
        };
        url.query_pairs_mut()
            .append_pair("client_id", &app.client_id)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("response_mode", "query")
            .append_pair("scope", scope)
            .append_pair("state", state)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("prompt", "select_account");
        url.into()
    }

    /// Starts the device-code flow (RFC 8628) at the partner tenant.
    pub async fn device_code(
        &self,
        app: &PartnerApp,
        scope: &str,
    ) -> Result<DeviceCode, TokenError> {
        let url = match self.endpoint(&app.tenant_id, "devicecode") {
            Ok(u) => u.to_string(),
            Err(detail) => {
                return Err(self.refused(&app.tenant_id, scope, detail));
            }
        };
        let req = self
            .http
            .post(&url)
            .form(&[("client_id", app.client_id.as_str()), ("scope", scope)]);
        let fail = |status: Option<u16>, detail: String, body: ErrorBody| TokenError {
            tenant: app.tenant_id.clone(),
            scope: scope.to_string(),
            url: url.clone(),
            status,
            class: status.map_or(ErrorClass::Transient, |s| classify(s, &body.error_codes)),
            error: body.error,
            codes: body.error_codes,
            retry_after: None,
            detail,
        };
        let (status, _, body) = client::send("entra", &app.tenant_id, &url, req)
            .await
            .map_err(|e| fail(None, e.to_string(), ErrorBody::default()))?;
        if !status.is_success() {
            let parsed: ErrorBody = serde_json::from_slice(&body).unwrap_or_default();
            let detail =
                crate::support::scrub::upstream(parsed.error_description.as_deref().unwrap_or(""));
            return Err(fail(Some(status.as_u16()), detail, parsed));
        }
        serde_json::from_slice(&body).map_err(|e| {
            fail(
                Some(status.as_u16()),
                format!("unexpected devicecode response: {e}"),
                ErrorBody::default(),
            )
        })
    }

    /// One poll of the device-code flow. `authorization_pending` and `slow_down`
    /// come back as errors whose `error` field says so.
    pub async fn device_code_poll(
        &self,
        app: &PartnerApp,
        scope: &str,
        device_code: &SecretString,
    ) -> Result<Redeemed, TokenError> {
        let form = [
            ("client_id", app.client_id.as_str()),
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", device_code.expose_secret()),
        ];
        self.request(app, &app.tenant_id, scope, "consent", &form)
            .await
    }

    async fn request(
        &self,
        app: &PartnerApp,
        tenant: &str,
        scope: &str,
        scope_label: &str,
        form: &[(&str, &str)],
    ) -> Result<Redeemed, TokenError> {
        let started = Instant::now();
        let url = match self.endpoint(tenant, "token") {
            Ok(u) => u.to_string(),
            Err(detail) => {
                let e = self.refused(tenant, scope, detail);
                self.metrics
                    .token_requests
                    .with_label_values(&[&self.partner, scope_label, e.class.as_str()])
                    .inc();
                return Err(e);
            }
        };
        let result =
            match crate::auth::assertion::form_fields(&app.credential, &app.client_id, &url) {
                Ok(auth) => {
                    let mut full: Vec<(&str, &str)> = form.to_vec();
                    full.extend(auth.iter().map(|(k, v)| (*k, v.expose_secret())));
                    self.request_inner(&url, tenant, scope, &full, started)
                        .await
                }
                // A credential that cannot be produced (unreadable token file) is the client's fault.
                Err(e) => Err(TokenError {
                    tenant: tenant.to_string(),
                    scope: scope.to_string(),
                    url: url.clone(),
                    status: None,
                    error: None,
                    codes: Vec::new(),
                    class: ErrorClass::InvalidClient,
                    retry_after: None,
                    detail: e.to_string(),
                }),
            };
        let label = match &result {
            Ok(_) => "ok",
            Err(e) => e.class.as_str(),
        };
        self.metrics
            .token_requests
            .with_label_values(&[&self.partner, scope_label, label])
            .inc();
        result
    }

    async fn request_inner(
        &self,
        url: &str,
        tenant: &str,
        scope: &str,
        form: &[(&str, &str)],
        started: Instant,
    ) -> Result<Redeemed, TokenError> {
        let req = self.http.post(url).form(form);
        match client::send("entra", tenant, url, req).await {
            Ok((status, headers, body)) => {
                parse_token_response(tenant, scope, url, status, &headers, &body, started)
            }
            Err(e) => Err(token_error(
                tenant,
                scope,
                url,
                None,
                ErrorBody::default(),
                None,
                e.to_string(),
            )),
        }
    }
}

/// What the token endpoint's answer means: a [`Redeemed`] for a success body,
/// otherwise a [`TokenError`] classified by status and AADSTS codes. Pure, so
/// the fuzz targets and property tests drive the daemon's own parsing.
pub fn parse_token_response(
    tenant: &str,
    scope: &str,
    url: &str,
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
    started: Instant,
) -> Result<Redeemed, TokenError> {
    if !status.is_success() {
        let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
        let detail = parsed
            .error_description
            .as_deref()
            .and_then(|d| d.lines().next())
            // Newer bodies put the trace ids on the same line; keep only the message.
            .map(|d| d.split(" Trace ID:").next().unwrap_or(d).trim().to_string())
            .unwrap_or_else(|| format!("HTTP {status}"));
        let detail = match &parsed.error {
            Some(e) => format!("{e}: {detail}"),
            None => detail,
        };
        // Entra's text, which a hostile or buggy endpoint can fill with the
        // request it received (refresh token and client secret included).
        let detail = crate::support::scrub::upstream(&detail);
        return Err(token_error(
            tenant,
            scope,
            url,
            Some(status.as_u16()),
            parsed,
            crate::support::retry::retry_after(headers),
            detail,
        ));
    }
    let parsed: TokenBody = serde_json::from_slice(body).map_err(|e| {
        // The body holds tokens: report only the serde error, never the text.
        token_error(
            tenant,
            scope,
            url,
            Some(status.as_u16()),
            ErrorBody::default(),
            None,
            format!("unexpected token response: {e}"),
        )
    })?;
    // Access tokens are JWTs, redacted by shape; a refresh token is opaque,
    // so the scrubber has to know its value.
    if let Some(rt) = &parsed.refresh_token {
        crate::support::scrub::remember(rt.expose_secret());
    }
    Ok(Redeemed {
        access: AccessToken {
            secret: parsed.access_token,
            expires_at: expiry(started, parsed.expires_in),
        },
        refresh_token: parsed.refresh_token,
        server_time: client::server_time(headers),
    })
}

/// Longest access-token lifetime believed: a CAE token lives "20 to 28
/// hours" (<https://learn.microsoft.com/entra/identity-platform/access-tokens#token-lifetime>),
/// Entra's configurable lifetimes top out at a day, and a larger `expires_in`
/// would overflow `Instant` arithmetic.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(28 * 3600);

/// When a token issued at `started` with `expires_in` seconds stops being valid.
pub fn expiry(started: Instant, expires_in: u64) -> Instant {
    started + Duration::from_secs(expires_in).min(MAX_TOKEN_LIFETIME)
}

fn token_error(
    tenant: &str,
    scope: &str,
    url: &str,
    status: Option<u16>,
    body: ErrorBody,
    retry_after: Option<Duration>,
    detail: String,
) -> TokenError {
    let class = match status {
        Some(s) => classify(s, &body.error_codes),
        None => ErrorClass::Transient,
    };
    TokenError {
        tenant: tenant.to_string(),
        scope: scope.to_string(),
        url: url.to_string(),
        status,
        error: body.error,
        codes: body.error_codes,
        class,
        retry_after,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_in_that_is_not_whole_seconds_names_the_field() {
        for (value, got) in [
            ("-1", "got -1"),
            ("1.5", "got 1.5"),
            ("null", "got null"),
            ("\"soon\"", "got a string that is not a whole number"),
            ("true", "got true"),
        ] {
            let body = format!(r#"{{"access_token":"s3cr3t-token","expires_in":{value}}}"#);
            let e = parse(200, &body).err().unwrap();
            let text = e.to_string();
            assert!(
                text.contains(
                    "expires_in must be whole seconds >= 0, as a number or a numeric string"
                ),
                "{text}"
            );
            assert!(text.contains(got), "{value}: {text}");
            assert!(!text.contains("s3cr3t-token"), "{text}");
        }
        // Whole seconds as a float or with spaces are still seconds.
        let b: TokenBody =
            serde_json::from_str(r#"{"access_token":"a","expires_in":3600.0}"#).unwrap();
        assert_eq!(b.expires_in, 3600);
        let b: TokenBody =
            serde_json::from_str(r#"{"access_token":"a","expires_in":" 60 "}"#).unwrap();
        assert_eq!(b.expires_in, 60);
    }

    #[test]
    fn device_code_response_names_a_bad_interval_or_expiry() {
        let base = r#""device_code":"dc-secret","user_code":"U","verification_uri":"https://v""#;
        let e = serde_json::from_str::<DeviceCode>(&format!(
            r#"{{{base},"expires_in":900,"interval":-5}}"#
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("interval must be whole seconds >= 0"), "{e}");
        assert!(e.contains("got -5"), "{e}");
        let e = serde_json::from_str::<DeviceCode>(&format!(r#"{{{base},"expires_in":null}}"#))
            .unwrap_err()
            .to_string();
        assert!(e.contains("expires_in must be whole seconds >= 0"), "{e}");
        assert!(!e.contains("dc-secret"), "{e}");
        let d: DeviceCode =
            serde_json::from_str(&format!(r#"{{{base},"expires_in":"900"}}"#)).unwrap();
        assert_eq!((d.expires_in, d.interval), (900, 5));
    }

    #[test]
    fn expires_in_int_or_string() {
        let b: TokenBody = serde_json::from_str(
            r#"{"access_token":"a","expires_in":"3599","token_type":"Bearer"}"#,
        )
        .unwrap();
        assert_eq!(b.expires_in, 3599);
        let b: TokenBody =
            serde_json::from_str(r#"{"access_token":"a","expires_in":3599,"refresh_token":"r"}"#)
                .unwrap();
        assert_eq!(b.expires_in, 3599);
        assert!(b.refresh_token.is_some());
    }

    fn parse(status: u16, body: &str) -> Result<Redeemed, TokenError> {
        parse_token_response(
            "contoso",
            "https://graph.microsoft.com/.default",
            "https://login.example/contoso/oauth2/v2.0/token",
            reqwest::StatusCode::from_u16(status).unwrap(),
            &reqwest::header::HeaderMap::new(),
            body.as_bytes(),
            Instant::now(),
        )
    }

    /// `Instant + u64::MAX s` panicked before lifetimes were clamped.
    #[test]
    fn huge_expires_in_is_clamped_not_a_panic() {
        let started = Instant::now();
        let r = parse(
            200,
            r#"{"access_token":"a","expires_in":18446744073709551615}"#,
        )
        .unwrap();
        assert!(r.access.expires_at <= started + MAX_TOKEN_LIFETIME + Duration::from_secs(5));
        assert!(r.access.expires_at >= started + MAX_TOKEN_LIFETIME - Duration::from_secs(5));
    }

    #[test]
    fn wrong_typed_token_body_names_tenant_and_hides_the_token() {
        let e = parse(200, r#"{"access_token":"s3cr3t-token","expires_in":[1]}"#)
            .err()
            .unwrap();
        assert_eq!(e.tenant, "contoso");
        assert_eq!(e.status, Some(200));
        assert!(!e.to_string().contains("s3cr3t-token"), "{e}");
        assert!(e.to_string().contains("contoso"), "{e}");
    }

    #[test]
    fn claims_merge_capabilities_into_the_challenge_as_msal_does() {
        let cp1 = vec!["cp1".to_string()];
        assert_eq!(claims_parameter(&[], None), None);
        assert_eq!(
            claims_parameter(&cp1, None).as_deref(),
            Some(r#"{"access_token":{"xms_cc":{"values":["cp1"]}}}"#)
        );
        // The documented merge: the challenge's acrs request plus xms_cc.
        let merged: serde_json::Value = serde_json::from_str(
            &claims_parameter(
                &cp1,
                Some(r#"{"access_token":{"acrs":{"essential":true,"value":"c25"}}}"#),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            merged,
            serde_json::json!({"access_token":{"xms_cc":{"values":["cp1"]},"acrs":{"essential":true,"value":"c25"}}})
        );
        // No capabilities: the challenge alone; a broken one is dropped.
        let nbf = r#"{"access_token":{"nbf":{"essential":true,"value":"1604106651"}}}"#;
        assert_eq!(claims_parameter(&[], Some(nbf)).as_deref(), Some(nbf));
        assert_eq!(claims_parameter(&[], Some("not json")), None);
        assert_eq!(
            claims_parameter(&cp1, Some("[1]")).as_deref(),
            Some(r#"{"access_token":{"xms_cc":{"values":["cp1"]}}}"#)
        );
    }

    #[test]
    fn html_error_page_is_a_typed_error() {
        let e = parse(502, "<html><body>Bad gateway</body></html>")
            .err()
            .unwrap();
        assert_eq!(e.class, ErrorClass::Transient);
        assert_eq!(e.detail, "HTTP 502 Bad Gateway");
    }

    #[test]
    fn error_body_from_the_docs_parses() {
        let raw = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/entra-v2-token-error-response.json"
        ));
        let b: ErrorBody = serde_json::from_str(raw).unwrap();
        assert_eq!(b.error.as_deref(), Some("invalid_scope"));
        assert_eq!(b.error_codes, vec![70011]);
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_token_response_is_tokens_or_an_error_naming_the_tenant(
            status in crate::arb::status(),
            headers in crate::arb::headers(),
            body in crate::arb::body(),
        ) {
            let r = parse_token_response(
                "contoso-tenant", "scope", "https://login.test/t", status, &headers, &body, Instant::now(),
            );
            match r {
                Ok(_) => prop_assert!(status.is_success()),
                Err(e) => {
                    prop_assert_eq!(&e.tenant, "contoso-tenant");
                    prop_assert_eq!(e.status, Some(status.as_u16()));
                    prop_assert!(e.to_string().contains("contoso-tenant"));
                }
            }
        }

        #[test]
        fn a_token_body_that_does_not_decode_never_shows_the_token(
            token in "[A-Za-z0-9]{24,40}",
            expires_in in crate::arb::json(),
            refresh in crate::arb::json(),
        ) {
            let body = serde_json::json!({
                "access_token": token, "expires_in": expires_in, "refresh_token": refresh,
            })
            .to_string();
            if let Err(e) = parse(200, &body) {
                prop_assert!(!e.to_string().contains(&token), "{}", e);
            }
        }
    }
}
