//! The request path every collector shares: concurrency limits (global and per
//! tenant), pacing (each request waits for its budget in [`pacing`] before it
//! is sent, and every answer feeds it), throttling (`Retry-After`, backoff with jitter; a `Retry-After`
//! beyond `ApiLimits::max_retry_wait` fails the request at once, and the error
//! says so), rate-limit headers, request metrics, and the paging styles of
//! Microsoft's APIs.
//!
//! Throttling guidance: ARM <https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling>,
//! Graph <https://learn.microsoft.com/graph/throttling>, Resource Graph
//! <https://learn.microsoft.com/azure/governance/resource-graph/concepts/guidance-for-throttled-requests>.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use reqwest::{Client, Method};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use tenantwatch_common::sync::lock;
use tokio::sync::Semaphore;

use crate::config::ApiLimits;
use crate::metrics::{Metrics, PartnerMetrics};
use crate::outbound::client::{self, ApiError, RefusedWait};
use crate::outbound::pacing::{self, Pacer};
use crate::support::retry::Backoff;
use crate::support::secret::{ExposeSecret, SecretString};

/// Waits between attempts of a request: up to 1 s, doubling to 32 s, or
/// `Retry-After` when the API sent one.
const RETRY: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(32));

/// One request: which API and tenant it is for (labels and limits), and what to send.
pub struct Request<'a> {
    /// API label, e.g. `arm`, `graph`, `resource_graph`.
    pub api: &'static str,
    /// The tenant the token is for.
    pub tenant: &'a str,
    /// Method.
    pub method: Method,
    /// Full URL.
    pub url: String,
    /// Bearer token.
    pub bearer: &'a SecretString,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// JSON body.
    pub body: Option<serde_json::Value>,
}

impl<'a> Request<'a> {
    /// A GET.
    pub fn get(api: &'static str, tenant: &'a str, url: String, bearer: &'a SecretString) -> Self {
        Self {
            api,
            tenant,
            method: Method::GET,
            url,
            bearer,
            headers: Vec::new(),
            body: None,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// The shared client for resource APIs.
pub struct ApiClient {
    http: Client,
    metrics: Arc<Metrics>,
    /// The partner whose requests these are: its rate-limit gauges.
    partner: Arc<PartnerMetrics>,
    /// The limits in force and the global semaphore sized by them; a reload
    /// replaces both (requests in flight keep the permits they hold).
    limits: Mutex<(Arc<ApiLimits>, Arc<Semaphore>)>,
    /// Per-tenant semaphores; `std` mutex held only to find one.
    tenants: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// The budget of every (API, limit scope), shared by all requests.
    pacer: Pacer,
}

tokio::task_local! {
    /// The collector a request is sent for, for the budget-wait metric's
    /// `collector` label; set by the engine around each collector run.
    pub static COLLECTOR: &'static str;
}

/// The collector the current task runs, or `discovery` outside one.
fn collector_label() -> &'static str {
    COLLECTOR.try_with(|c| *c).unwrap_or("discovery")
}

impl ApiClient {
    /// A client with `limits`.
    pub fn new(
        http: Client,
        metrics: Arc<Metrics>,
        limits: ApiLimits,
        partner: Arc<PartnerMetrics>,
    ) -> Self {
        Self {
            partner,
            limits: Mutex::new((
                Arc::new(limits.clone()),
                Arc::new(Semaphore::new(limits.global.max(1))),
            )),
            http,
            metrics,
            tenants: Mutex::new(HashMap::new()),
            pacer: Pacer::new(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> Arc<ApiLimits> {
        lock(&self.limits).0.clone()
    }

    /// Puts new limits in force (a configuration reload): requests from now
    /// on count against them.
    pub fn set_limits(&self, limits: ApiLimits) {
        let mut current = lock(&self.limits);
        if *current.0 == limits {
            return;
        }
        if current.0.per_tenant != limits.per_tenant {
            lock(&self.tenants).clear();
        }
        if current.0.global != limits.global {
            current.1 = Arc::new(Semaphore::new(limits.global.max(1)));
        }
        current.0 = Arc::new(limits);
    }

    fn permits(&self, tenant: &str) -> (Arc<ApiLimits>, Arc<Semaphore>, Arc<Semaphore>) {
        let (limits, global) = lock(&self.limits).clone();
        let per_tenant = lock(&self.tenants)
            .entry(tenant.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(limits.per_tenant.max(1))))
            .clone();
        (limits, global, per_tenant)
    }

    /// Forgets per-tenant state of tenants no longer in scope.
    pub fn retain_tenants(&self, keep: &std::collections::HashSet<String>) {
        let mut map = lock(&self.tenants);
        map.retain(|t, _| keep.contains(t));
        drop(map);
        self.pacer.retain_tenants(keep);
    }

    /// Sends a request with retries and decodes the JSON body.
    pub async fn send_json<T: DeserializeOwned>(
        &self,
        req: &Request<'_>,
    ) -> Result<(T, HeaderMap), ApiError> {
        let (limits, global, tenant_permits) = self.permits(req.tenant);
        let scopes = pacing::scopes(req.api, req.tenant, &req.url);
        let mut attempt = 0;
        loop {
            attempt += 1;
            // Budget first, permits after: a request waiting for its scope
            // holds no permit another tenant could use.
            let wait = self.pacer.reserve(&scopes, &limits.pacing, Instant::now());
            if !wait.is_zero() {
                self.metrics
                    .api_budget_wait
                    .with_label_values(&[req.api, collector_label()])
                    .inc_by(wait.as_secs_f64());
                tokio::time::sleep(wait).await;
            }
            let result = {
                // Both permits are held only while the request is on the wire, not while backing off.
                let _g = global.acquire().await;
                let _t = tenant_permits.acquire().await;
                let mut b = self
                    .http
                    .request(req.method.clone(), &req.url)
                    .bearer_auth(req.bearer.expose_secret())
                    .header("Accept", "application/json");
                for (k, v) in &req.headers {
                    b = b.header(*k, v);
                }
                if let Some(body) = &req.body {
                    b = b.json(body);
                }
                let started = Instant::now();
                let r = client::send(req.api, req.tenant, &req.url, b).await;
                self.metrics
                    .api_duration
                    .with_label_values(&[req.api])
                    .observe(started.elapsed().as_secs_f64());
                r
            };
            let status_class = match &result {
                Ok((s, _, _)) => status_class(s.as_u16()),
                Err(_) => "error",
            };
            self.metrics
                .api_requests
                .with_label_values(&[req.api, status_class])
                .inc();
            let err = match result {
                Ok((status, headers, body)) => {
                    self.record_ratelimits(req.api, req.tenant, &headers);
                    if status.as_u16() == 429 {
                        self.metrics
                            .api_throttled
                            .with_label_values(&[req.api])
                            .inc();
                    }
                    // A scope is held no longer than a request would wait:
                    // past that, requests fail at once and say why, as below.
                    let retry_after = crate::support::retry::retry_after(&headers)
                        .map(|d| d.min(limits.max_retry_wait));
                    self.pacer.observe(
                        &scopes,
                        status.as_u16(),
                        &headers,
                        retry_after,
                        Instant::now(),
                    );
                    match client::parse_json(req.api, req.tenant, &req.url, status, &headers, &body)
                    {
                        Ok(v) => return Ok((v, headers)),
                        Err(e) => e,
                    }
                }
                Err(e) => e,
            };
            if !err.is_transient() || attempt >= limits.attempts {
                return Err(err);
            }
            let retry_after = match &err {
                ApiError::Status { retry_after, .. } => *retry_after,
                _ => None,
            };
            let wait = RETRY.delay(attempt, retry_after);
            if wait > limits.max_retry_wait {
                return Err(refuse_wait(err, limits.max_retry_wait));
            }
            tracing::debug!(api = req.api, tenant = req.tenant, url = %req.url, wait_ms = wait.as_millis() as u64, error = %err, "retrying");
            tokio::time::sleep(wait).await;
        }
    }

    fn record_ratelimits(&self, api: &'static str, tenant: &str, headers: &HeaderMap) {
        for (name, value) in headers {
            let name = name.as_str();
            let v = value.to_str().ok();
            let (kind, v) = if let Some(k) = name.strip_prefix("x-ms-ratelimit-remaining-") {
                (k, v.and_then(|v| v.trim().parse::<f64>().ok()))
            } else if name == "x-ms-user-quota-remaining" {
                ("user-quota", v.and_then(|v| v.trim().parse::<f64>().ok()))
            } else if name == pacing::COST_REMAINING {
                // A list of quotas: the one closest to running out.
                ("qpu", v.and_then(pacing::least_remaining).map(f64::from))
            } else {
                continue;
            };
            if let Some(v) = v {
                self.partner.ratelimits.set(api, tenant, kind, v);
            }
        }
    }

    /// Follows `nextLink` (ARM, Key Vault) or `@odata.nextLink` (Graph) to the end.
    pub async fn get_all<T: DeserializeOwned>(
        &self,
        first: Request<'_>,
    ) -> Result<Vec<T>, ApiError> {
        let mut out = Vec::new();
        let mut req = first;
        let first_url = req.url.clone();
        let max_pages = self.limits().max_pages;
        for _ in 0..max_pages {
            let (page, _) = self.send_json::<Page<T>>(&req).await?;
            out.extend(page.value);
            match page.next_link.filter(|l| !l.is_empty()) {
                Some(next) if !client::same_origin(&first_url, &next) => {
                    return Err(ApiError::ForeignNextLink {
                        api: req.api,
                        tenant: req.tenant.to_string(),
                        url: first_url,
                        link: crate::support::scrub::upstream(&next),
                    })
                }
                // Links are followed verbatim: they may carry a different api-version.
                Some(next) => req.url = next,
                None => return Ok(out),
            }
        }
        Err(ApiError::TooManyPages {
            api: req.api,
            tenant: req.tenant.to_string(),
            url: first_url,
            max: max_pages,
        })
    }
}

/// `err` with the reason it was not retried: its `Retry-After` asked for more
/// than `allowed`. Without the note a throttled request that fails at once
/// reads as if retries had been tried and had run out.
fn refuse_wait(mut err: ApiError, allowed: Duration) -> ApiError {
    if let ApiError::Status {
        retry_after: Some(asked),
        refused_wait,
        ..
    } = &mut err
    {
        *refused_wait = Some(RefusedWait {
            asked: *asked,
            allowed,
        });
    }
    err
}

/// One page of a `value` + `nextLink` (ARM, Key Vault) or `@odata.nextLink`
/// (Graph) collection, as [`ApiClient::get_all`] decodes it.
#[derive(Debug, Deserialize)]
pub struct Page<T> {
    /// The items.
    #[serde(default = "Vec::new")]
    pub value: Vec<T>,
    /// The next page's URL, followed verbatim.
    #[serde(rename = "nextLink", alias = "@odata.nextLink", default)]
    pub next_link: Option<String>,
}

/// `2xx`, `4xx`, … for the `status_class` label.
fn status_class(status: u16) -> &'static str {
    match status {
        200..=299 => "2xx",
        300..=399 => "3xx",
        429 => "429",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(status_class(200), "2xx");
        assert_eq!(status_class(429), "429");
        assert_eq!(status_class(404), "4xx");
        assert_eq!(status_class(503), "5xx");
    }

    use proptest::prelude::*;

    fn page<T: DeserializeOwned>(
        api: &'static str,
        status: reqwest::StatusCode,
        body: &[u8],
    ) -> Result<Page<T>, ApiError> {
        client::parse_json(
            api,
            "contoso-tenant",
            "https://api.test/x",
            status,
            &HeaderMap::new(),
            body,
        )
    }

    proptest! {
        #[test]
        fn any_page_is_items_or_an_error_naming_api_and_tenant(
            status in crate::arb::status(),
            body in crate::arb::body(),
        ) {
            let results = [
                page::<serde_json::Value>("arm", status, &body).map(|_| ()),
                page::<crate::outbound::graph::Organization>("graph", status, &body).map(|_| ()),
            ];
            for r in results {
                if let Err(e) = r {
                    prop_assert!(e.to_string().contains("contoso-tenant"), "{}", e);
                }
            }
        }

        #[test]
        fn graph_and_arm_next_links_both_decode(link in "https://[a-z]{1,10}\\.test/[a-z?=&]{0,20}", graph in any::<bool>()) {
            let key = if graph { "@odata.nextLink" } else { "nextLink" };
            let body = serde_json::json!({ "value": [1, 2], key: link.clone() }).to_string();
            let p = page::<u8>("graph", reqwest::StatusCode::OK, body.as_bytes()).unwrap();
            prop_assert_eq!(p.value, vec![1, 2]);
            prop_assert_eq!(p.next_link, Some(link));
        }
    }

    /// Answers every connection with `response` and counts the connections.
    async fn canned(response: &'static str) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/v1.0/organization",
            listener.local_addr().unwrap()
        );
        let served = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = served.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(response.as_bytes()).await;
            }
        });
        (url, served)
    }

    #[tokio::test]
    async fn a_retry_after_beyond_the_cap_is_not_waited_for_and_the_error_says_so() {
        let (url, served) = canned(
            "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 120\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .await;
        let metrics = Metrics::new().unwrap();
        let partner = metrics.partner("default");
        let api = ApiClient::new(Client::new(), metrics, ApiLimits::default(), partner);
        let bearer = SecretString::from("t".to_string());
        let started = Instant::now();
        let e = api
            .send_json::<serde_json::Value>(&Request::get("graph", "contoso", url, &bearer))
            .await
            .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("HTTP 429"), "{text}");
        assert!(
            text.contains(
                "the server asked to wait 120 s, more than the 60 s allowed, so it was not retried"
            ),
            "{text}"
        );
        assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn no_content_is_none() {
        let h = HeaderMap::new();
        let none: Option<serde_json::Value> = client::parse_json(
            "cost_management",
            "t",
            "u",
            reqwest::StatusCode::NO_CONTENT,
            &h,
            b"",
        )
        .unwrap();
        assert_eq!(none, None);
        // Anything that needs a value still says the body was not it.
        assert!(matches!(
            page::<u8>("arm", reqwest::StatusCode::NO_CONTENT, b""),
            Err(ApiError::Decode { .. })
        ));
    }

    #[test]
    fn wrong_typed_value_is_a_decode_error_naming_api_and_tenant() {
        let e = page::<serde_json::Value>("graph", reqwest::StatusCode::OK, br#"{"value": 7}"#)
            .unwrap_err();
        assert!(matches!(e, ApiError::Decode { .. }), "{e:?}");
        assert!(
            e.to_string()
                .starts_with("graph https://api.test/x (tenant contoso-tenant)"),
            "{e}"
        );
    }
}
