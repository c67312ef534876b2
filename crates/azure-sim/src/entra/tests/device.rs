//! The device code flow: approval, polling, decline, expiry.

use std::time::Duration;

use serde_json::{json, Value};

use crate::test_support::{claims, start, start_device, Fixture, PC_SCOPE};

async fn poll(f: &Fixture, device_code: &str) -> (u16, Value) {
    f.token(
        &f.sim.partner_tenant_id(),
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", &f.sim.partner_client_id()),
            ("device_code", device_code),
        ],
    )
    .await
}

#[tokio::test]
async fn device_code_flow_end_to_end() {
    let f = start(1).await;
    let d = start_device(&f).await;
    let (user_code, device_code) = (
        d["user_code"].as_str().unwrap().to_string(),
        d["device_code"].as_str().unwrap().to_string(),
    );
    assert_eq!(
        d["verification_uri"],
        format!("{}/devicelogin", f.sim.login_url())
    );
    assert_eq!(
        (d["expires_in"].as_i64(), d["interval"].as_i64()),
        (Some(900), Some(1))
    );
    assert!(d["message"]
        .as_str()
        .unwrap()
        .starts_with("To sign in, use a web browser to open the page "));

    let (s, b) = poll(&f, &device_code).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("authorization_pending"))
    );
    assert_eq!(b["error_codes"], json!([70016]));

    // The admin enters the code at the verification page.
    let r = f
        .http
        .post(d["verification_uri"].as_str().unwrap())
        .form(&[("otc", user_code.to_lowercase())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (s, b) = poll(&f, &device_code).await;
    assert_eq!(s, 200, "{b}");
    let rt = b["refresh_token"].as_str().unwrap();
    assert_eq!(claims(b["access_token"].as_str().unwrap())["appidacr"], "0");
    // A public-client refresh token needs no secret to redeem.
    let (s, b) = f
        .token(
            &f.sim.partner_tenant_id(),
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &f.sim.partner_client_id()),
                ("refresh_token", rt),
                ("scope", PC_SCOPE),
            ],
        )
        .await;
    assert_eq!(s, 200, "{b}");
    // But the seeded (confidential) one does.
    let (s, b) = f
        .token(
            &f.sim.partner_tenant_id(),
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &f.sim.partner_client_id()),
                ("refresh_token", &f.seeded_rt()),
                ("scope", PC_SCOPE),
            ],
        )
        .await;
    assert_eq!((s, b["error_codes"][0].as_u64()), (401, Some(7000218)));
}

#[tokio::test]
async fn device_code_declined_expired_and_unknown() {
    let f = start(1).await;
    // Polled twice at once: slow down (and the interval grows).
    let d = start_device(&f).await;
    assert_eq!(
        poll(&f, d["device_code"].as_str().unwrap()).await.1["error"],
        "authorization_pending"
    );
    let (s, b) = poll(&f, d["device_code"].as_str().unwrap()).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("slow_down")));
    assert!(b["error_description"]
        .as_str()
        .unwrap()
        .contains("6 seconds"));

    let d = start_device(&f).await;
    assert!(f.sim.deny_device_code(d["user_code"].as_str().unwrap()));
    assert!(!f.sim.approve_device_code(d["user_code"].as_str().unwrap()));
    let (s, b) = poll(&f, d["device_code"].as_str().unwrap()).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("authorization_declined"))
    );

    let d = start_device(&f).await;
    f.sim.advance_clock(Duration::from_secs(901));
    assert!(!f.sim.approve_device_code(d["user_code"].as_str().unwrap()));
    let (s, b) = poll(&f, d["device_code"].as_str().unwrap()).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("expired_token")));
    assert_eq!(b["error_codes"], json!([70020]));

    let (s, b) = poll(&f, "DAQABnot-a-code").await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("bad_verification_code"))
    );

    // Approved through the handle, redeemed once.
    let d = start_device(&f).await;
    assert!(f.sim.approve_device_code(d["user_code"].as_str().unwrap()));
    let (s, _) = poll(&f, d["device_code"].as_str().unwrap()).await;
    assert_eq!(s, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s, b) = poll(&f, d["device_code"].as_str().unwrap()).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_grant")));
}

/// A device-code sign-in the admin approves: the token response.
async fn approved_sign_in(f: &Fixture) -> Value {
    let d = start_device(f).await;
    assert!(f.sim.approve_device_code(d["user_code"].as_str().unwrap()));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (s, b) = poll(f, d["device_code"].as_str().unwrap()).await;
    assert_eq!(s, 200, "{b}");
    b
}

/// A sign-in without MFA (the admin switch) yields `amr: ["pwd"]` on every
/// token descending from it; Partner Center refuses such a token as
/// documented (401, `WWW-Authenticate: Bearer error="invalid_token"`, code
/// 900421) while Graph accepts it, and the next sign-in uses MFA again.
#[tokio::test]
async fn sign_in_without_mfa_is_refused_by_partner_center_only() {
    let f = start(1).await;
    let partner = f.sim.partner_tenant_id();
    // The seeded consent used MFA.
    let pc = f.access(&partner, PC_SCOPE).await;
    assert_eq!(claims(&pc)["amr"], json!(["pwd", "mfa"]));
    let customers = format!("{}/v1/customers", f.sim.partner_center_url());
    assert_eq!(f.get(customers.clone(), Some(&pc)).await.status(), 200);

    let r = f
        .http
        .post(format!(
            "{}/_sim/next-sign-in-without-mfa",
            f.sim.admin_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let b = approved_sign_in(&f).await;
    assert_eq!(
        claims(b["access_token"].as_str().unwrap())["amr"],
        json!(["pwd"])
    );
    let rt = b["refresh_token"].as_str().unwrap().to_string();
    // Redeemed later, the refresh token still carries the sign-in's methods.
    let redeem = |scope: &'static str| {
        let rt = rt.clone();
        let partner = partner.clone();
        let f = &f;
        async move {
            let (s, b) = f
                .token(
                    &partner,
                    &[
                        ("grant_type", "refresh_token"),
                        ("client_id", &f.sim.partner_client_id()),
                        ("refresh_token", &rt),
                        ("scope", scope),
                    ],
                )
                .await;
            assert_eq!(s, 200, "{b}");
            b["access_token"].as_str().unwrap().to_string()
        }
    };
    let pc = redeem(PC_SCOPE).await;
    assert_eq!(claims(&pc)["amr"], json!(["pwd"]));
    let r = f.get(customers, Some(&pc)).await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        r#"Bearer error="invalid_token""#
    );
    assert!(r.headers().contains_key("ms-correlationid"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], 900421, "{body}");
    assert_eq!(body["source"], "PartnerFD");
    let graph = redeem(crate::test_support::GRAPH_SCOPE).await;
    let r = f
        .get(
            format!("{}/v1.0/organization", f.sim.graph_url()),
            Some(&graph),
        )
        .await;
    assert_eq!(r.status(), 200);

    // The switch covers one sign-in only.
    let b = approved_sign_in(&f).await;
    assert_eq!(
        claims(b["access_token"].as_str().unwrap())["amr"],
        json!(["pwd", "mfa"])
    );
}

/// A device-code sign-in with partner 1's app signs partner 1's admin in
/// (the page names them) and yields partner 1's refresh token: it reaches
/// partner 1's customers and not partner 0's.
#[tokio::test]
async fn device_code_with_another_partners_app_gives_that_partners_token() {
    let f = crate::test_support::start_partners(3, 2).await;
    let (p0, p1) = (f.partner(0), f.partner(1));
    let r = f
        .http
        .post(format!(
            "{}/organizations/oauth2/v2.0/devicecode",
            f.sim.login_url()
        ))
        .form(&[
            ("client_id", p1.client_id.as_str()),
            ("scope", &format!("{PC_SCOPE} offline_access openid")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let d: Value = r.json().await.unwrap();
    let page = f
        .http
        .post(d["verification_uri"].as_str().unwrap())
        .form(&[("otc", d["user_code"].as_str().unwrap())])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("admin@southridgeitservices01.onmicrosoft.com signed in"),
        "{page}"
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (s, b) = f
        .token(
            "organizations",
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("client_id", &p1.client_id),
                ("device_code", d["device_code"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        claims(b["id_token"].as_str().unwrap())["tid"].as_str(),
        Some(p1.tenant_id.as_str())
    );
    let rt = b["refresh_token"].as_str().unwrap();
    let redeem = |tenant: String| {
        let (client, rt, f) = (p1.client_id.clone(), rt.to_string(), &f);
        async move {
            f.token(
                &tenant,
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", &client),
                    ("refresh_token", &rt),
                    ("scope", "https://graph.microsoft.com/.default"),
                ],
            )
            .await
        }
    };
    let (s, b) = redeem(p1.customers[2].tenant_id.clone()).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = redeem(p0.customers[0].tenant_id.clone()).await;
    assert_eq!((s, b["error_codes"].clone()), (400, json!([50020])), "{b}");
}
