//! What the end-to-end tests share: a running simulator with a client that
//! trusts its CA, and the requests most tests start with (tokens, paging
//! through Graph and Resource Graph, a pending device code).

use serde_json::{json, Value};

use crate::jwt;
use crate::{Sim, SimHandle, SimOptions, SimPartner};

/// The Partner Center scope the daemon asks for.
pub(crate) const PC_SCOPE: &str = "https://api.partnercenter.microsoft.com/user_impersonation";
/// Microsoft Graph's `.default` scope.
pub(crate) const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
/// ARM's `.default` scope.
pub(crate) const ARM_SCOPE: &str = "https://management.azure.com/.default";

/// A running simulator, a client for it, and its state directory.
pub(crate) struct Fixture {
    pub(crate) sim: SimHandle,
    pub(crate) http: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// Starts a simulator with `tenants` customers in a fresh state directory.
pub(crate) async fn start(tenants: usize) -> Fixture {
    start_partners(tenants, 1).await
}

/// Starts a simulator with `partners` partners of `tenants` customers each
/// in a fresh state directory.
pub(crate) async fn start_partners(tenants: usize, partners: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(SimOptions {
        tenants,
        partners,
        state_dir: dir.path().to_path_buf(),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    Fixture {
        http: client(&sim),
        sim,
        _dir: dir,
    }
}

/// A client trusting the simulator's CA.
pub(crate) fn client(sim: &SimHandle) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(sim.ca_pem().as_bytes()).unwrap())
        .build()
        .unwrap()
}

impl Fixture {
    pub(crate) async fn token(&self, tenant: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let r = self
            .http
            .post(format!(
                "{}/{tenant}/oauth2/v2.0/token",
                self.sim.login_url()
            ))
            .form(form)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    pub(crate) async fn identity_vault_token(&self) -> String {
        let (id, secret) = (
            self.sim.identity_client_id(),
            self.sim.identity_client_secret(),
        );
        let (status, body) = self
            .token(
                &self.sim.identity_tenant_id(),
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", &id),
                    ("client_secret", &secret),
                    ("scope", "https://vault.azure.net/.default"),
                ],
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    }

    pub(crate) async fn refresh(&self, tenant: &str, rt: &str, scope: &str) -> (u16, Value) {
        self.refresh_as(0, tenant, rt, scope).await
    }

    /// Partner `k`.
    pub(crate) fn partner(&self, k: usize) -> SimPartner {
        self.sim.partner(k).unwrap()
    }

    /// The refresh token seeded in the vault for partner `k`.
    pub(crate) fn seeded_rt_of(&self, k: usize) -> String {
        self.sim
            .stored_secret(&self.partner(k).secret_name)
            .unwrap()
    }

    /// Redeems `rt` at `tenant` with partner `k`'s SAM app and secret.
    pub(crate) async fn refresh_as(
        &self,
        k: usize,
        tenant: &str,
        rt: &str,
        scope: &str,
    ) -> (u16, Value) {
        let p = self.partner(k);
        let (id, secret) = (p.client_id, p.client_secret);
        self.token(
            tenant,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &id),
                ("client_secret", &secret),
                ("refresh_token", rt),
                ("scope", scope),
                ("client_info", "1"),
            ],
        )
        .await
    }

    pub(crate) fn seeded_rt(&self) -> String {
        self.sim.stored_secret(&self.sim.secret_name()).unwrap()
    }

    pub(crate) async fn get(&self, url: String, token: Option<&str>) -> reqwest::Response {
        let mut req = self.http.get(url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    /// A delegated access token for `tenant` and `scope`.
    pub(crate) async fn access(&self, tenant: &str, scope: &str) -> String {
        self.access_as(0, tenant, scope).await
    }

    /// A delegated access token of partner `k`'s admin for `tenant` and
    /// `scope`, from the refresh token seeded for that partner.
    pub(crate) async fn access_as(&self, k: usize, tenant: &str, scope: &str) -> String {
        let rt = self.seeded_rt_of(k);
        let (status, body) = self.refresh_as(k, tenant, &rt, scope).await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    }

    /// Follows `@odata.nextLink` to the end; returns the items and the
    /// number of pages.
    pub(crate) async fn graph_all(&self, path: &str, token: &str) -> (Vec<Value>, usize) {
        let mut url = format!("{}{path}", self.sim.graph_url());
        let (mut items, mut pages) = (Vec::new(), 0);
        loop {
            let r = self.get(url.clone(), Some(token)).await;
            assert_eq!(r.status(), 200, "{url}");
            let body: Value = r.json().await.unwrap();
            assert!(body["@odata.context"]
                .as_str()
                .unwrap()
                .contains("$metadata#"));
            items.extend(body["value"].as_array().unwrap().iter().cloned());
            pages += 1;
            match body["@odata.nextLink"].as_str() {
                Some(next) => url = next.to_string(),
                None => return (items, pages),
            }
        }
    }

    /// One Resource Graph request.
    pub(crate) async fn rg(
        &self,
        token: &str,
        api_version: &str,
        body: Value,
    ) -> reqwest::Response {
        self.http
            .post(format!(
                "{}/providers/Microsoft.ResourceGraph/resources?api-version={api_version}",
                self.sim.arm_url()
            ))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Runs a query to the last page; returns the rows and page count.
    pub(crate) async fn rg_all(&self, token: &str, query: &str) -> (Vec<Value>, usize) {
        let (mut rows, mut pages) = (Vec::new(), 0);
        let mut skip: Option<String> = None;
        loop {
            let mut options = json!({"$top": 1000, "resultFormat": "objectArray"});
            if let Some(t) = &skip {
                options["$skipToken"] = json!(t);
            }
            let r = self
                .rg(
                    token,
                    "2024-04-01",
                    json!({"query": query, "options": options}),
                )
                .await;
            assert_eq!(r.status(), 200);
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["resultTruncated"], "false");
            assert_eq!(body["facets"], json!([]));
            let data = body["data"].as_array().unwrap();
            assert_eq!(body["count"].as_u64().unwrap() as usize, data.len());
            rows.extend(data.iter().cloned());
            pages += 1;
            match body["$skipToken"].as_str() {
                Some(t) => skip = Some(t.to_string()),
                None => {
                    assert_eq!(body["totalRecords"].as_u64().unwrap() as usize, rows.len());
                    return (rows, pages);
                }
            }
        }
    }
}

/// A token's claims, unverified.
pub(crate) fn claims(token: &str) -> Value {
    Value::Object(jwt::claims_unverified(token).unwrap())
}

/// Starts a device code flow for the SAM app; the response body.
pub(crate) async fn start_device(f: &Fixture) -> Value {
    let r = f
        .http
        .post(format!(
            "{}/{}/oauth2/v2.0/devicecode",
            f.sim.login_url(),
            f.sim.partner_tenant_id()
        ))
        .form(&[
            ("client_id", f.sim.partner_client_id().as_str()),
            (
                "scope",
                &format!("{PC_SCOPE} offline_access openid profile"),
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}
