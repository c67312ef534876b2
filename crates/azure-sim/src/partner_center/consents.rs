//! Partner Center's application consents: a partner pushes its multi-tenant
//! app's consent into a customer (`POST /v1/customers/{id}/applicationconsents`)
//! or takes it back (`DELETE …/applicationconsents/{app-id}`), shaped after
//! partnercenter/docs-application-consents.md.
//!
//! Whether a customer lacks the SAM app is the token error Entra has for it:
//! AADSTS65001 (consent required), 7000229 (no service principal) or 700016
//! (app not found in the directory), as `inject_token_error` or the admin API
//! set them. Creating the consent clears that error, so the customer's next
//! token request succeeds; deleting it sets 65001.
//!
//! A partner pushes its own SAM app into its own customers only. Whether the
//! app is missing is kept per customer tenant, so a customer two partners
//! share lacks (or has) the app for both.

use std::sync::Arc;

use axum::extract::{FromRef, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{delete, post};
use axum::Router;
use serde::{Deserialize, Serialize};

use super::{error, partner_with_mfa, pc_headers, PcErrorBody};
use crate::entra::state::Entra;
use crate::http;
use crate::state::SimState;
use crate::world::Partner;

/// The AADSTS codes that mean "the app is not in this customer", which a
/// pushed consent fixes.
pub(crate) const CONSENT_MISSING_CODES: [u32; 3] = [65001, 7000229, 700016];

/// Partner Center's consent routes and what they read and change.
#[derive(Clone)]
pub(crate) struct Consents {
    pub sim: Arc<SimState>,
    /// Its token errors say which customers lack the app.
    pub entra: Arc<Entra>,
}

impl FromRef<Consents> for Arc<SimState> {
    fn from_ref(c: &Consents) -> Self {
        c.sim.clone()
    }
}

/// The routes.
pub(crate) fn router(state: Consents) -> Router {
    Router::new()
        .route("/v1/customers/{id}/applicationconsents", post(create))
        .route(
            "/v1/customers/{id}/applicationconsents/{app}",
            delete(remove),
        )
        .with_state(state)
}

/// `ApplicationGrant`: the resource app and its comma-separated scopes.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApplicationGrant {
    pub enterprise_application_id: Option<String>,
    pub scope: Option<String>,
}

/// `ApplicationConsent`, as the SDKs model it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApplicationConsent {
    pub display_name: Option<String>,
    pub application_id: Option<String>,
    #[serde(default)]
    pub application_grants: Vec<ApplicationGrant>,
}

fn bad_request(headers: &HeaderMap, why: impl Into<String>) -> Response {
    // 400 is documented ("missing or invalid input"); its body is not, so the
    // flat error with docs-error-codes.md's 3000 "Invalid property" is used.
    error(
        headers,
        StatusCode::BAD_REQUEST,
        PcErrorBody::new(3000, format!("Invalid property: {}", why.into())),
    )
}

fn is_guid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok() && s.len() == 36
}

/// The id of partner `k`'s customer as the world spells it, or Partner
/// Center's 404 (another partner's customer is not found either).
fn customer(
    state: &SimState,
    headers: &HeaderMap,
    k: usize,
    id: &str,
) -> Result<String, Box<Response>> {
    state
        .pc_customers(k)
        .into_iter()
        .find(|t| t.id.eq_ignore_ascii_case(id))
        .map(|t| t.id.clone())
        .ok_or_else(|| {
            // As for subscriptions: 60003 "Tenant not found" (docs-error-codes.md).
            Box::new(error(
                headers,
                StatusCode::NOT_FOUND,
                PcErrorBody::new(60003, "Tenant not found"),
            ))
        })
}

/// The caller is a partner (with MFA when App+User) and `id` one of its
/// customers: the partner and the customer's id, or the answer that says
/// which is not so.
fn authorised_customer<'a>(
    state: &'a SimState,
    headers: &HeaderMap,
    id: &str,
) -> Result<(&'a Partner, String), Box<Response>> {
    let partner = partner_with_mfa(state, headers)?;
    Ok((partner, customer(state, headers, partner.index, id)?))
}

fn consent_missing(entra: &Entra, tenant: &str) -> bool {
    entra
        .token_error(tenant)
        .is_some_and(|c| CONSENT_MISSING_CODES.contains(&c))
}

/// Checks the body: `applicationId` names the caller's multi-tenant app,
/// and every grant has a GUID resource and at least one scope.
fn validate(state: &SimState, partner: &Partner, body: &ApplicationConsent) -> Result<(), String> {
    let app = body
        .application_id
        .as_deref()
        .ok_or("applicationId is required.")?;
    if !is_guid(app) {
        return Err(format!("applicationId '{app}' is not a GUID."));
    }
    if !state.world.app(app).is_some_and(|a| a.multi_tenant) {
        return Err(format!(
            "applicationId '{app}' is not a multi-tenant application."
        ));
    }
    if !partner.sam_app.client_id.eq_ignore_ascii_case(app) {
        return Err(format!(
            "applicationId '{app}' is not an application of this partner."
        ));
    }
    if body.application_grants.is_empty() {
        return Err("applicationGrants must not be empty.".into());
    }
    for g in &body.application_grants {
        let resource = g.enterprise_application_id.as_deref().unwrap_or("");
        if !is_guid(resource) {
            return Err(format!(
                "enterpriseApplicationId '{resource}' is not a GUID."
            ));
        }
        if g.scope.as_deref().is_none_or(|s| s.trim().is_empty()) {
            return Err(format!("scope of '{resource}' is required."));
        }
    }
    Ok(())
}

/// `POST /v1/customers/{id}/applicationconsents`: `201 Created` with the
/// consent echoed back (the SDKs' `ApplicationConsent`; Microsoft shows no
/// body), or `409` "Permission entry already exists." when the app is
/// already in the customer (the message third-party tools match; Microsoft
/// documents neither status nor body).
async fn create(
    State(c): State<Consents>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (partner, tenant) = match authorised_customer(&c.sim, &headers, &id) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let consent: ApplicationConsent = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return bad_request(
                &headers,
                format!("the body is not an ApplicationConsent: {e}"),
            )
        }
    };
    if let Err(why) = validate(&c.sim, partner, &consent) {
        return bad_request(&headers, why);
    }
    if !consent_missing(&c.entra, &tenant) {
        return error(
            &headers,
            StatusCode::CONFLICT,
            PcErrorBody::new(409, "Permission entry already exists."),
        );
    }
    c.entra.clear_token_error(&tenant);
    let mut echoed = serde_json::to_value(&consent).unwrap_or_default();
    echoed["attributes"] = serde_json::json!({"objectType": "ApplicationConsent"});
    http::json(StatusCode::CREATED, &echoed, &pc_headers(&headers))
}

/// `DELETE /v1/customers/{id}/applicationconsents/{app}`: `200 OK`, after
/// which the customer's token requests fail with AADSTS65001; `404` when the
/// app is not in the customer (status undocumented; CIPP reports an error).
async fn remove(
    State(c): State<Consents>,
    Path((id, app)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let (partner, tenant) = match authorised_customer(&c.sim, &headers, &id) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let known = partner.sam_app.client_id.eq_ignore_ascii_case(&app);
    if !known || consent_missing(&c.entra, &tenant) {
        return error(
            &headers,
            StatusCode::NOT_FOUND,
            PcErrorBody::new(404, "There is no existing application consent."),
        );
    }
    c.entra.set_token_error(&tenant, 65001);
    http::json(
        StatusCode::OK,
        &serde_json::json!({}),
        &pc_headers(&headers),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use crate::test_support::{start, start_partners};

    const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

    /// A customer without the app gets tokens once its consent is created; a
    /// second create conflicts; unknown customers and bad bodies are refused;
    /// DELETE takes the app away again.
    #[tokio::test]
    async fn created_consent_lets_the_customer_mint_tokens() {
        let f = start(2).await;
        let (tenant, other) = (
            f.sim.customers()[0].tenant_id.clone(),
            f.sim.customers()[1].tenant_id.clone(),
        );
        f.sim.inject_token_error(&tenant, 65001);
        let rt = f.seeded_rt();
        assert_eq!(f.refresh(&tenant, &rt, GRAPH_SCOPE).await.0, 400);
        let pc = f
            .access(
                &f.sim.partner_tenant_id(),
                "https://api.partnercenter.microsoft.com/.default",
            )
            .await;
        let url = |t: &str| {
            format!(
                "{}/v1/customers/{t}/applicationconsents",
                f.sim.partner_center_url()
            )
        };
        let body = json!({
            "displayName": "tenantwatch",
            "applicationId": f.sim.partner_client_id(),
            "applicationGrants": [
                {"enterpriseApplicationId": "00000003-0000-0000-c000-000000000000", "scope": "Directory.Read.All"},
                {"enterpriseApplicationId": "797f4846-ba00-4fd7-ba43-dac1f8f63013", "scope": "user_impersonation"},
            ],
        });
        let post = |u: String, b: Value, token: Option<&str>| {
            let mut r = f.http.post(u).json(&b).header("Accept", "application/json");
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            r.send()
        };
        // No token: 401.
        assert_eq!(
            post(url(&tenant), body.clone(), None)
                .await
                .unwrap()
                .status(),
            401
        );
        // A customer's token is not the partner's.
        let customer_token = f.access(&other, GRAPH_SCOPE).await;
        let r = post(url(&tenant), body.clone(), Some(&customer_token))
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        // Unknown customer: 404 60003.
        let r = post(
            url("00000000-0000-0000-0000-0000000000ab"),
            body.clone(),
            Some(&pc),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 404);
        assert_eq!(r.json::<Value>().await.unwrap()["code"], 60003);
        // A grant without a scope: 400.
        let mut bad = body.clone();
        bad["applicationGrants"][0]["scope"] = json!("");
        assert_eq!(
            post(url(&tenant), bad, Some(&pc)).await.unwrap().status(),
            400
        );
        // Created: echoed back, and the customer's tokens work.
        let r = post(url(&tenant), body.clone(), Some(&pc)).await.unwrap();
        assert_eq!(r.status(), 201);
        let echoed: Value = r.json().await.unwrap();
        assert_eq!(echoed["applicationGrants"], body["applicationGrants"]);
        assert_eq!(echoed["attributes"]["objectType"], "ApplicationConsent");
        assert_eq!(f.refresh(&tenant, &rt, GRAPH_SCOPE).await.0, 200);
        // Again: the app is there already.
        let r = post(url(&tenant), body.clone(), Some(&pc)).await.unwrap();
        assert_eq!(r.status(), 409);
        assert_eq!(
            r.json::<Value>().await.unwrap()["description"],
            "Permission entry already exists."
        );
        // DELETE: the customer lacks the app again.
        let del = format!("{}/{}", url(&tenant), f.sim.partner_client_id());
        let r = f.http.delete(&del).bearer_auth(&pc).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(f.refresh(&tenant, &rt, GRAPH_SCOPE).await.0, 400);
        let r = f.http.delete(&del).bearer_auth(&pc).send().await.unwrap();
        assert_eq!(r.status(), 404);
    }

    /// A partner pushes its own app into its own customers only: another
    /// partner's customer is not found (60003), another partner's app is
    /// refused (400), and a consent it pushes into a shared customer fixes
    /// that tenant for both partners.
    #[tokio::test]
    async fn a_partner_consents_its_own_app_in_its_own_customers() {
        let f = start_partners(10, 2).await;
        let (p0, p1) = (f.partner(0), f.partner(1));
        let shared = p1.customers[0].tenant_id.clone();
        let only_partner_0 = p0.customers[0].tenant_id.clone();
        f.sim.inject_token_error(&shared, 65001);
        let pc = f
            .access_as(
                1,
                &p1.tenant_id,
                "https://api.partnercenter.microsoft.com/.default",
            )
            .await;
        let body = |app: &str| {
            json!({
                "applicationId": app,
                "applicationGrants": [
                    {"enterpriseApplicationId": "00000003-0000-0000-c000-000000000000", "scope": "Directory.Read.All"},
                ],
            })
        };
        let post = |t: &str, b: Value| {
            f.http
                .post(format!(
                    "{}/v1/customers/{t}/applicationconsents",
                    f.sim.partner_center_url()
                ))
                .bearer_auth(&pc)
                .json(&b)
                .send()
        };
        let r = post(&only_partner_0, body(&p1.client_id)).await.unwrap();
        assert_eq!(r.status(), 404);
        assert_eq!(r.json::<Value>().await.unwrap()["code"], 60003);
        let r = post(&shared, body(&p0.client_id)).await.unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(r.json::<Value>().await.unwrap()["code"], 3000);

        let rt0 = f.seeded_rt();
        assert_eq!(f.refresh(&shared, &rt0, GRAPH_SCOPE).await.0, 400);
        let r = post(&shared, body(&p1.client_id)).await.unwrap();
        assert_eq!(r.status(), 201);
        assert_eq!(f.refresh(&shared, &rt0, GRAPH_SCOPE).await.0, 200);
        let rt1 = f.seeded_rt_of(1);
        assert_eq!(f.refresh_as(1, &shared, &rt1, GRAPH_SCOPE).await.0, 200);
    }
}
