//! The token endpoint: refresh tokens across tenants and services, the
//! AADSTS catalogue, HTTP Basic and v1, discovery, the clock, and what
//! tests inject (throttling, expired secrets, codes).

use std::time::Duration;

use base64::Engine;
use serde_json::Value;

use crate::service::Service;
use crate::test_support::{claims, start, PC_SCOPE};

#[tokio::test]
async fn refresh_tokens_rotate_and_reach_customers() {
    let f = start(5).await;
    let rt = f.seeded_rt();
    let partner = f.sim.partner_tenant_id();
    let (status, b) = f
        .refresh(&partner, &rt, "https://api.partnercenter.microsoft.com/user_impersonation offline_access openid profile")
        .await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["token_type"], "Bearer");
    assert!(b["expires_in"].is_i64() && b["ext_expires_in"].is_i64());
    let new_rt = b["refresh_token"].as_str().unwrap();
    assert_ne!(new_rt, rt);
    assert_eq!(
        b["scope"],
        "https://api.partnercenter.microsoft.com/user_impersonation openid profile offline_access"
    );
    let id = claims(b["id_token"].as_str().unwrap());
    assert_eq!(id["aud"].as_str(), Some(f.sim.partner_client_id().as_str()));
    assert_eq!(id["iss"], format!("{}/{partner}/v2.0", f.sim.login_url()));
    let info = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(b["client_info"].as_str().unwrap())
        .unwrap();
    let info: Value = serde_json::from_slice(&info).unwrap();
    assert_eq!(info["utid"].as_str(), Some(partner.as_str()));
    let at = claims(b["access_token"].as_str().unwrap());
    assert_eq!(at["aud"], "https://api.partnercenter.microsoft.com");
    assert_eq!(at["iss"], format!("https://sts.windows.net/{partner}/"));
    assert_eq!(at["scp"], "user_impersonation");
    assert_eq!(at["ver"], "1.0");

    // Partner Center paging with the continuation header.
    let pc_token = b["access_token"].as_str().unwrap().to_string();
    let mut url = format!("{}/v1/customers?size=2", f.sim.partner_center_url());
    let mut cont: Option<String> = None;
    let mut seen = Vec::new();
    loop {
        let mut req = f
            .http
            .get(&url)
            .bearer_auth(&pc_token)
            .header("MS-CorrelationId", "c-1");
        if let Some(c) = &cont {
            req = req.header("MS-ContinuationToken", c);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["ms-correlationid"], "c-1");
        assert!(r.headers().contains_key("ms-cv"));
        let b: Value = r.json().await.unwrap();
        for i in b["items"].as_array().unwrap() {
            seen.push(
                i["companyProfile"]["tenantId"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        assert_eq!(
            b["totalCount"].as_u64(),
            Some(b["items"].as_array().unwrap().len() as u64)
        );
        match b["links"].get("next") {
            Some(n) => {
                url = format!(
                    "{}{}",
                    f.sim.partner_center_url(),
                    n["uri"].as_str().unwrap()
                );
                assert_eq!(n["headers"][0]["key"], "MS-ContinuationToken");
                cont = Some(n["headers"][0]["value"].as_str().unwrap().to_string());
            }
            None => break,
        }
    }
    let expected: Vec<String> = f.sim.customers().into_iter().map(|c| c.tenant_id).collect();
    assert_eq!(seen, expected);

    // The old refresh token still works, at a customer, by domain.
    let customer = &f.sim.customers()[2];
    let (status, b) = f
        .refresh(
            &customer.domain,
            &rt,
            "https://graph.microsoft.com/.default",
        )
        .await;
    assert_eq!(status, 200, "{b}");
    let token = b["access_token"].as_str().unwrap().to_string();
    let at = claims(&token);
    assert_eq!(at["tid"].as_str(), Some(customer.tenant_id.as_str()));
    assert_eq!(at["idp"], format!("https://sts.windows.net/{partner}/"));
    let r = f
        .get(
            format!("{}/v1.0/organization", f.sim.graph_url()),
            Some(&token),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("request-id"));
    let org: Value = r.json().await.unwrap();
    assert_eq!(
        org["value"][0]["id"].as_str(),
        Some(customer.tenant_id.as_str())
    );
    assert_eq!(
        org["value"][0]["displayName"].as_str(),
        Some(customer.name.as_str())
    );
    assert_eq!(
        f.sim
            .request_count(Service::Token, Some(&customer.tenant_id)),
        1
    );
    assert_eq!(
        f.sim
            .request_count(Service::Graph, Some(&customer.tenant_id)),
        1
    );

    // ARM with the same refresh token, then a Graph token at ARM.
    let (_, b) = f
        .refresh(
            &customer.tenant_id,
            &rt,
            "https://management.azure.com//user_impersonation",
        )
        .await;
    assert_eq!(
        b["scope"],
        "https://management.azure.com//user_impersonation"
    );
    let arm = b["access_token"].as_str().unwrap().to_string();
    let r = f
        .get(
            format!("{}/subscriptions?api-version=2022-12-01", f.sim.arm_url()),
            Some(&arm),
        )
        .await;
    assert_eq!(r.status(), 200);
    let subs: Value = r.json().await.unwrap();
    for s in subs["value"].as_array().unwrap() {
        assert_eq!(s["tenantId"].as_str(), Some(customer.tenant_id.as_str()));
        assert!(s["id"].as_str().unwrap().starts_with("/subscriptions/"));
    }
    let r = f
        .get(
            format!("{}/subscriptions?api-version=2022-12-01", f.sim.arm_url()),
            Some(&token),
        )
        .await;
    assert_eq!(r.status(), 401);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "InvalidAuthenticationTokenAudience");
    let r = f
        .get(format!("{}/subscriptions", f.sim.arm_url()), Some(&arm))
        .await;
    assert_eq!(r.status(), 400);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "MissingApiVersionParameter");
}

#[tokio::test]
async fn entra_errors_match_the_catalog() {
    let f = start(2).await;
    let rt = f.seeded_rt();
    let partner = f.sim.partner_tenant_id();
    let customer = f.sim.customers()[0].tenant_id.clone();

    let (s, b) = f
        .refresh(
            "00000000-0000-0000-0000-000000000000",
            &rt,
            "https://graph.microsoft.com/.default",
        )
        .await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_tenant")));
    assert_eq!(b["error_codes"], serde_json::json!([90002]));
    assert!(b["error_description"]
        .as_str()
        .unwrap()
        .starts_with("AADSTS90002: "));
    assert!(b["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(b["error_uri"]
        .as_str()
        .unwrap()
        .ends_with("/error?code=90002"));

    let (s, b) = f
        .refresh(
            &partner,
            &rt,
            "https://graph.microsoft.com/.default https://vault.azure.net/.default",
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(b["error_codes"], serde_json::json!([28000]));

    let (s, b) = f
        .refresh(&partner, "garbage", "https://graph.microsoft.com/.default")
        .await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_grant")));

    let (s, b) = f
        .refresh(&partner, &rt, "https://graph.microsoft.com/Mail.Send")
        .await;
    assert_eq!((s, b["suberror"].as_str()), (400, Some("consent_required")));

    let id = f.sim.identity_client_id();
    let (s, b) = f
        .token(
            &customer,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", "x"),
                ("scope", "https://vault.azure.net/.default"),
            ],
        )
        .await;
    assert_eq!((s, b["error_codes"][0].as_u64()), (400, Some(700016)));

    let (s, b) = f
        .token(
            &partner,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &f.sim.identity_client_secret()),
                (
                    "scope",
                    "https://vault.azure.net/.default https://graph.microsoft.com/.default",
                ),
            ],
        )
        .await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_scope")));
    assert_eq!(b["error_codes"][0].as_u64(), Some(70011));

    // Injected faults, per tenant.
    f.sim.inject_token_error(&customer, 700082);
    let (s, b) = f
        .refresh(&customer, &rt, "https://graph.microsoft.com/.default")
        .await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(b["error_codes"], serde_json::json!([700082]));
    let (s, _) = f
        .refresh(&partner, &rt, "https://graph.microsoft.com/.default")
        .await;
    assert_eq!(s, 200);
    f.sim.inject_token_error(&customer, 7000222);
    let (s, b) = f
        .refresh(&customer, &rt, "https://graph.microsoft.com/.default")
        .await;
    assert_eq!((s, b["error"].as_str()), (401, Some("invalid_client")));
    f.sim.clear_token_error(&customer);
    let (s, _) = f
        .refresh(&customer, &rt, "https://graph.microsoft.com/.default")
        .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn basic_auth_v1_endpoint_and_discovery() {
    let f = start(1).await;
    let partner = f.sim.partner_tenant_id();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        f.sim.partner_client_id(),
        f.sim.partner_client_secret()
    ));
    let r = f
        .http
        .post(format!("{}/{partner}/oauth2/token", f.sim.login_url()))
        .header("authorization", format!("Basic {basic}"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", f.seeded_rt().as_str()),
            ("resource", "https://api.partnercenter.microsoft.com"),
            ("scope", "openid"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    for k in ["expires_in", "ext_expires_in", "expires_on", "not_before"] {
        assert!(b[k].is_string(), "{k} must be a string on v1: {b}");
    }
    assert_eq!(b["resource"], "https://api.partnercenter.microsoft.com");
    assert_eq!(b["scope"], "user_impersonation");
    assert!(b["id_token"].is_string() && b["refresh_token"].is_string());

    let domain = &f.sim.customers()[0].domain;
    let d: Value = f
        .get(
            format!(
                "{}/{domain}/v2.0/.well-known/openid-configuration",
                f.sim.login_url()
            ),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let tid = &f.sim.customers()[0].tenant_id;
    assert_eq!(d["issuer"], format!("{}/{tid}/v2.0", f.sim.login_url()));
    assert_eq!(
        d["token_endpoint"],
        format!("{}/{tid}/oauth2/v2.0/token", f.sim.login_url())
    );
    let d: Value = f
        .get(
            format!(
                "{}/organizations/v2.0/.well-known/openid-configuration",
                f.sim.login_url()
            ),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        d["issuer"],
        format!("{}/{{tenantid}}/v2.0", f.sim.login_url())
    );
    let k: Value = f
        .get(
            format!("{}/{partner}/discovery/v2.0/keys", f.sim.login_url()),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(k["keys"][0]["kty"], "RSA");
}

#[tokio::test]
async fn clock_expires_refresh_and_access_tokens() {
    let f = start(1).await;
    let rt = f.seeded_rt();
    let partner = f.sim.partner_tenant_id();
    let (_, b) = f
        .refresh(&partner, &rt, "https://graph.microsoft.com/.default")
        .await;
    let access = b["access_token"].as_str().unwrap().to_string();
    f.sim.advance_clock(Duration::from_secs(91 * 86_400));
    let (s, b) = f
        .refresh(&partner, &rt, "https://graph.microsoft.com/.default")
        .await;
    assert_eq!((s, b["error_codes"][0].as_u64()), (400, Some(700082)));
    let r = f
        .get(
            format!("{}/v1.0/organization", f.sim.graph_url()),
            Some(&access),
        )
        .await;
    assert_eq!(r.status(), 401);
    let b: Value = r.json().await.unwrap();
    assert_eq!(
        b["error"]["message"],
        "Lifetime validation failed, the token is expired."
    );
    assert!(b["error"]["innerError"]["request-id"].is_string());
}

#[tokio::test]
async fn token_throttle_secret_expiry_and_injected_codes() {
    let f = start(1).await;
    let partner = f.sim.partner_tenant_id();
    f.sim.inject_token_throttle(&partner, 60);
    let r = f
        .http
        .post(format!("{}/{partner}/oauth2/v2.0/token", f.sim.login_url()))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "60");
    assert_eq!(r.text().await.unwrap(), "Too Many Requests");
    f.sim.clear_token_error(&partner);

    f.sim.expire_client_secret(&f.sim.partner_client_id());
    let (s, b) = f.refresh(&partner, &f.seeded_rt(), PC_SCOPE).await;
    assert_eq!(
        (s, b["error"].as_str(), b["error_codes"][0].as_u64()),
        (401, Some("invalid_client"), Some(7000222))
    );

    f.sim.inject_token_error(&partner, 53003);
    let (s, b) = f.refresh(&partner, &f.seeded_rt(), PC_SCOPE).await;
    assert_eq!(
        (s, b["error"].as_str(), b["suberror"].as_str()),
        (400, Some("invalid_grant"), Some("message_only"))
    );
}

/// With three partners of ten customers: partner 1's refresh token mints
/// tokens for its own customers (shared or not) and its GDAP-only tenant,
/// as partner 1's admin and app; for a customer only partner 0 has, or
/// partner 0's own tenant, it fails exactly as partner 0's does for a
/// customer it lost (AADSTS50020), while partner 0's token still works
/// there. Rotation stays within the partner.
#[tokio::test]
async fn a_partner_reaches_its_own_customers_only() {
    let f = crate::test_support::start_partners(10, 3).await;
    let (p0, p1) = (f.partner(0), f.partner(1));
    let rt1 = f.seeded_rt_of(1);
    let graph = "https://graph.microsoft.com/.default";
    let own = &p1.customers[5].tenant_id;
    let shared = &p1.customers[0].tenant_id;
    assert_eq!(shared, &p0.customers[9].tenant_id);
    let only_partner_0 = &p0.customers[0].tenant_id;

    let upn_0 = claims(&f.access(shared, graph).await)["upn"].clone();
    for t in [own, shared, &p1.gdap_only[0].tenant_id] {
        let (s, b) = f.refresh_as(1, t, &rt1, graph).await;
        assert_eq!(s, 200, "{t}: {b}");
        let at = claims(b["access_token"].as_str().unwrap());
        assert_eq!(at["tid"].as_str(), Some(t.as_str()));
        assert_eq!(at["appid"].as_str(), Some(p1.client_id.as_str()));
        assert_eq!(
            at["idp"],
            format!("https://sts.windows.net/{}/", p1.tenant_id)
        );
        assert!(at["upn"].as_str().unwrap().starts_with("admin@"));
        assert_ne!(at["upn"], upn_0);
    }

    // The existing no-relationship answer: partner 0 and a customer it lost.
    let lost = p0.customers[1].tenant_id.clone();
    f.sim.remove_customer(&lost);
    let (s0, b0) = f.refresh(&lost, &f.seeded_rt(), graph).await;
    assert_eq!(
        (s0, b0["error_codes"].clone()),
        (400, serde_json::json!([50020]))
    );
    for t in [only_partner_0, &p0.tenant_id] {
        let (s, b) = f.refresh_as(1, t, &rt1, graph).await;
        assert_eq!(s, s0, "{t}: {b}");
        assert_eq!(b["error"], b0["error"]);
        assert_eq!(b["error_codes"], b0["error_codes"]);
        assert!(b["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS50020: User account 'admin@"));
    }
    let (s, b) = f.refresh(only_partner_0, &f.seeded_rt(), graph).await;
    assert_eq!(s, 200, "{b}");

    // Partner 1's token with partner 0's app: not its client.
    let (s, b) = f.refresh_as(0, own, &rt1, graph).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("invalid_grant")),
        "{b}"
    );
    assert_eq!(b["error_codes"], serde_json::json!([70000]));

    // Rotation: the new refresh token is partner 1's too.
    let (s, b) = f.refresh_as(1, &p1.tenant_id, &rt1, PC_SCOPE).await;
    assert_eq!(s, 200, "{b}");
    let rotated = b["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rotated, rt1);
    assert_eq!(f.refresh_as(1, own, &rotated, graph).await.0, 200);
    assert_eq!(
        f.refresh_as(1, only_partner_0, &rotated, graph).await.0,
        400
    );
}
