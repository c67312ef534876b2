//! Partner Center REST client: the partner's customer list, and the SAM app's
//! consent pushed into a customer (application consents).
//!
//! <https://learn.microsoft.com/partner-center/developer/get-a-list-of-customers>,
//! <https://learn.microsoft.com/partner-center/developer/control-panel-vendor-apis>

use serde::Deserialize;
use url::Url;

use crate::outbound::client::ApiError;
use crate::outbound::request::{ApiClient, Request};
use crate::support::secret::SecretString;

/// Page size asked for; Partner Center's documented examples use up to 500.
pub const PAGE_SIZE: usize = 500;

/// A customer tenant as Partner Center lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    /// The customer's directory (tenant) id.
    pub tenant_id: String,
    /// Company name.
    pub name: String,
    /// Default domain.
    pub domain: String,
}

/// One page of `GET /v1/customers`, as the API client decodes it.
#[derive(Deserialize)]
pub struct Page {
    #[serde(default)]
    items: Vec<Item>,
    #[serde(default)]
    links: Links,
}

/// Where the next page is: its URL and the continuation token to send with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Next {
    /// Absolute URL of the next page.
    pub url: String,
    /// `MS-ContinuationToken`, when Partner Center sent one.
    pub continuation: Option<String>,
}

impl Page {
    /// The page's customers and the link to the next page, resolved against `base`.
    pub fn into_parts(self, base: &Url) -> (Vec<Customer>, Option<Next>) {
        let customers = self
            .items
            .into_iter()
            .map(|i| {
                let p = i.company_profile;
                let field = |f: fn(&CompanyProfile) -> Option<&String>| {
                    p.as_ref().and_then(f).cloned().unwrap_or_default()
                };
                Customer {
                    tenant_id: p.as_ref().and_then(|p| p.tenant_id.clone()).unwrap_or(i.id),
                    name: field(|p| p.company_name.as_ref()),
                    domain: field(|p| p.domain.as_ref()),
                }
            })
            .collect();
        let next = self.links.next.map(|n| Next {
            url: resolve(base, &n.uri),
            // Only the documented continuation header is forwarded.
            continuation: n
                .headers
                .into_iter()
                .find(|h| h.key.eq_ignore_ascii_case("MS-ContinuationToken"))
                .map(|h| h.value),
        });
        (customers, next)
    }
}

#[derive(Deserialize)]
struct Item {
    id: String,
    #[serde(rename = "companyProfile")]
    company_profile: Option<CompanyProfile>,
}

#[derive(Deserialize)]
struct CompanyProfile {
    #[serde(rename = "tenantId")]
    tenant_id: Option<String>,
    domain: Option<String>,
    #[serde(rename = "companyName")]
    company_name: Option<String>,
}

#[derive(Deserialize, Default)]
struct Links {
    next: Option<Link>,
}

/// A `links.next` entry: the URI to GET and the headers (`MS-ContinuationToken`) to send with it.
#[derive(Deserialize)]
struct Link {
    uri: String,
    #[serde(default)]
    headers: Vec<Header>,
}

#[derive(Deserialize)]
struct Header {
    key: String,
    value: String,
}

/// Resolves a `links.next.uri`, which Partner Center gives relative to either the
/// host (`/v1/customers?…`) or the API root (`/invoices/…`).
fn resolve(base: &Url, uri: &str) -> String {
    if uri.starts_with("https://") {
        uri.to_string()
    } else if uri.starts_with("/v1/") {
        crate::outbound::url::join(base, uri)
    } else {
        crate::outbound::url::join(base, &format!("v1/{}", uri.trim_start_matches('/')))
    }
}

/// Lists every customer, following `links.next` with its continuation header.
pub async fn list_customers(
    api: &ApiClient,
    partner_tenant: &str,
    base: &Url,
    bearer: &SecretString,
) -> Result<Vec<Customer>, ApiError> {
    let first = crate::outbound::url::join(base, &format!("v1/customers?size={PAGE_SIZE}"));
    let correlation = uuid::Uuid::new_v4().to_string();
    let mut url = first.clone();
    let mut continuation: Option<String> = None;
    let mut out = Vec::new();
    // The same bound as every other paged list (`collection.max_pages`).
    let max_pages = api.limits().max_pages;
    for _ in 0..max_pages {
        let mut req = Request::get("partner_center", partner_tenant, url.clone(), bearer)
            .header("MS-RequestId", uuid::Uuid::new_v4().to_string())
            .header("MS-CorrelationId", correlation.clone());
        if let Some(token) = &continuation {
            req = req.header("MS-ContinuationToken", token.clone());
        }
        let (page, _) = api.send_json::<Page>(&req).await?;
        let (customers, next) = page.into_parts(base);
        out.extend(customers);
        match next {
            Some(next) if !crate::outbound::client::same_origin(&first, &next.url) => {
                return Err(ApiError::ForeignNextLink {
                    api: "partner_center",
                    tenant: partner_tenant.to_string(),
                    url: first,
                    link: crate::support::scrub::upstream(&next.url),
                })
            }
            Some(next) => {
                url = next.url;
                continuation = next.continuation;
            }
            None => return Ok(out),
        }
    }
    Err(ApiError::TooManyPages {
        api: "partner_center",
        tenant: partner_tenant.to_string(),
        url: first,
        max: max_pages,
    })
}

/// Microsoft Graph's application id in every tenant: the resource of the
/// Graph grant (docs-application-consents.md).
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
/// Azure Resource Manager's application id: the resource of the ARM grant.
pub const ARM_APP_ID: &str = "797f4846-ba00-4fd7-ba43-dac1f8f63013";

/// One `ApplicationGrant`: a resource app and its scopes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationGrant {
    /// The resource app's id, e.g. [`GRAPH_APP_ID`].
    pub enterprise_application_id: String,
    /// Its permissions, comma-separated as Partner Center takes them.
    pub scope: String,
}

/// The body of `POST /v1/customers/{id}/applicationconsents`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationConsent {
    /// The app's display name.
    pub display_name: String,
    /// The SAM app's client id.
    pub application_id: String,
    /// What it may do in the customer.
    pub application_grants: Vec<ApplicationGrant>,
}

impl ApplicationConsent {
    /// The SAM app's Graph and ARM grants.
    pub fn new(client_id: &str, settings: &crate::config::ConsentSettings) -> Self {
        Self {
            display_name: settings.display_name.clone(),
            application_id: client_id.to_string(),
            application_grants: vec![
                ApplicationGrant {
                    enterprise_application_id: GRAPH_APP_ID.into(),
                    scope: settings.graph_scopes.join(","),
                },
                ApplicationGrant {
                    enterprise_application_id: ARM_APP_ID.into(),
                    scope: settings.arm_scopes.join(","),
                },
            ],
        }
    }
}

/// What creating a consent did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentOutcome {
    /// `200`/`201`: the consent is in place now.
    Created,
    /// "Permission entry already exists.": the app was consented before.
    AlreadyExists,
}

/// The message Partner Center answers a second create with (seen by
/// CIPP and Partner-Center-PowerShell users; Microsoft documents no status).
const ALREADY_EXISTS: &str = "Permission entry already exists";

/// `POST {pc}/v1/customers/{customer}/applicationconsents` with the partner's
/// (App+User, MFA) token. Retried like every request; `MS-RequestId` is
/// Partner Center's idempotency key, kept across the retries.
pub async fn create_application_consent(
    api: &ApiClient,
    partner_tenant: &str,
    base: &Url,
    bearer: &SecretString,
    customer: &str,
    consent: &ApplicationConsent,
) -> Result<ConsentOutcome, ApiError> {
    let url = crate::outbound::url::join(
        base,
        &format!("v1/customers/{customer}/applicationconsents"),
    );
    let mut req = Request::get("partner_center", partner_tenant, url, bearer)
        .header("Accept", "application/json")
        .header("MS-RequestId", uuid::Uuid::new_v4().to_string())
        .header("MS-CorrelationId", uuid::Uuid::new_v4().to_string());
    req.method = reqwest::Method::POST;
    req.body = serde_json::to_value(consent).ok();
    match api.send_json::<serde_json::Value>(&req).await {
        Ok(_) => Ok(ConsentOutcome::Created),
        // Only a success status reaches decoding, and Microsoft shows no
        // response body: a 201 without JSON is still a created consent.
        Err(ApiError::Decode { .. }) => Ok(ConsentOutcome::Created),
        Err(ApiError::Status { message, .. }) if message.contains(ALREADY_EXISTS) => {
            Ok(ConsentOutcome::AlreadyExists)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consent_body_matches_the_documented_sample() {
        let raw = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/partnercenter-applicationconsents-create-request.json"
        ));
        let sample: serde_json::Value = serde_json::from_str(raw).unwrap();
        let settings = crate::config::ConsentSettings {
            display_name: "CPV Marketplace".into(),
            graph_scopes: vec![
                "Domain.ReadWrite.All".into(),
                "User.ReadWrite.All".into(),
                "Directory.Read.All".into(),
            ],
            arm_scopes: vec!["user_impersonation".into()],
        };
        let ours = ApplicationConsent::new("{CPVApplicationId}", &settings);
        assert_eq!(serde_json::to_value(ours).unwrap(), sample);
    }

    #[test]
    fn next_links_resolve_both_ways() {
        let b = Url::parse("https://api.partnercenter.microsoft.com").unwrap();
        assert_eq!(
            resolve(&b, "/v1/customers?size=40&seekOperation=Next"),
            "https://api.partnercenter.microsoft.com/v1/customers?size=40&seekOperation=Next"
        );
        assert_eq!(
            resolve(&b, "/customers?size=40&seekOperation=Next"),
            "https://api.partnercenter.microsoft.com/v1/customers?size=40&seekOperation=Next"
        );
    }

    #[test]
    fn documented_page_parses() {
        let raw = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/partnercenter-customers-list-response.json"
        ));
        let p: Page = serde_json::from_str(raw).unwrap();
        assert_eq!(p.items.len(), 2);
        assert!(p.links.next.is_none());
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_customers_page_is_customers_or_an_error_naming_the_partner(
            status in crate::arb::status(),
            body in crate::arb::body(),
        ) {
            let base = Url::parse("https://pc.test").unwrap();
            let r = crate::outbound::client::parse_json::<Page>(
                "partner_center", "partner-tenant", "https://pc.test/v1/customers", status,
                &reqwest::header::HeaderMap::new(), &body,
            );
            match r {
                Ok(page) => {
                    let (_, next) = page.into_parts(&base);
                    if let Some(n) = next {
                        prop_assert!(n.url.starts_with("https://"), "{}", n.url);
                    }
                }
                Err(e) => prop_assert!(e.to_string().contains("partner-tenant"), "{}", e),
            }
        }
    }
}
