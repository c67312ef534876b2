//! Partner Center REST client: the partner's customer list.
//!
//! <https://learn.microsoft.com/partner-center/developer/get-a-list-of-customers>

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

#[cfg(test)]
mod tests {
    use super::*;

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
