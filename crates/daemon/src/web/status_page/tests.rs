//! The page as a person would read it: board order, escaping, timeline, table.
use super::assets::csp_hash;
use super::*;
use crate::model::{CollectorStatus, ErrorClass, GdapRelationship, Signal};
use std::sync::Arc;

const NOW: f64 = 1_800_000_000.0;

fn tenant(id: &str, name: &str, up: bool, err: Option<ErrorClass>) -> TenantStatus {
    TenantStatus {
        tenant_id: id.into(),
        name: name.into(),
        domain: format!("{}.example", id).into(),
        up,
        token_error: err,
        collectors: vec![(
            "licenses",
            CollectorStatus {
                ok: up,
                last_success: Some(NOW - 60.0),
            },
        )],
        signals: Default::default(),
    }
}

fn gdap(tenant: &str, days: f64, auto_extend: bool) -> GdapRelationship {
    GdapRelationship {
        id: format!("rel-{tenant}"),
        tenant_id: tenant.into(),
        customer_name: "from GDAP".into(),
        status: "active".into(),
        end: Some(NOW + days * DAY),
        auto_extend,
        roles: Vec::new(),
        access: None,
    }
}

#[test]
fn renewals_gdap_access_and_groups_reach_the_board_timeline_and_links() {
    use crate::model::{AccessAssignment, RequiredRole};
    let mut trial = tenant("t-trial", "Trial Co", true, None);
    let mut ending = tenant("t-ends", "Ends <Co>", true, None);
    let mut renews = tenant("t-renews", "Renews Co", true, None);
    let none = tenant("t-noaccess", "No Access Co", true, None);
    let sub = |name: &str, days: f64, trial: bool| Signal::SubscriptionEnds {
        id: format!("sub-{name}"),
        name: name.into(),
        end: NOW + days * DAY,
        trial,
    };
    trial.signals = vec![sub("M365_TRIAL", 5.0, true)].into();
    ending.signals = vec![sub("ENTERPRISE<PACK>", 20.0, false)].into();
    // Ends in 60 days: no board item, but on the timeline.
    renews.signals = vec![sub("LATER", 60.0, false)].into();
    let mut unassigned = gdap("t-noaccess", 300.0, true);
    unassigned.access = Some(vec![AccessAssignment {
        status: "pending".into(),
        roles: vec!["f2ef992c-3afb-46b9-b7cf-a126ee74c451".into()],
    }]);
    let s = Snapshot {
        tenants: vec![trial, ending, renews, none],
        gdap: Arc::new(vec![unassigned]),
        gdap_required_roles: Arc::new(vec![RequiredRole {
            tenant_id: "t-noaccess".into(),
            role: "Global Reader".into(),
            missing: true,
        }]),
        groups: Arc::new(
            [
                ("t-trial", "gold"),
                ("t-ends", "gold"),
                ("t-renews", "none"),
            ]
            .iter()
            .map(|(t, g)| (t.to_string(), g.to_string()))
            .collect(),
        ),
        ready: true,
        ..Snapshot::default()
    };
    let html = render_at(&s, &RefreshState::default(), &[], NOW);
    let board = board_items(&html).join("\n");
    assert!(board.contains("trial M365_TRIAL"), "{board}");
    assert!(board.contains("ENTERPRISE&lt;PACK&gt;"), "{board}");
    assert!(board.contains("does not auto-renew"), "{board}");
    assert!(!board.contains("LATER"), "{board}");
    assert!(board.contains("no role is assigned"), "{board}");
    assert!(
        board.contains("required GDAP role not granted: Global Reader"),
        "{board}"
    );
    assert!(!html.contains("Ends <Co>") && !html.contains("<PACK>"));
    // The trial (5 days) is the nearest deadline of all.
    assert!(
        html.contains("Next: Trial M365_TRIAL of Trial Co"),
        "{html}"
    );
    assert!(html.contains("Subscription LATER of Renews Co"));
    assert!(
        html.contains("<a href=\"/?group=gold\">gold</a> (2)"),
        "{html}"
    );
}

/// Text of the board's items, in order.
fn board_items(html: &str) -> Vec<&str> {
    let Some(start) = html.find("<ol id=\"board\"") else {
        return Vec::new();
    };
    let end = start + html[start..].find("</ol>").unwrap();
    html[start..end]
        .lines()
        .filter(|l| l.starts_with("<li"))
        .collect()
}

#[test]
fn the_board_lists_trouble_most_urgent_first_with_advice() {
    let mut licences = tenant("4", "Delta", true, None);
    licences.signals.push(Signal::LicencesExhausted {
        sku: "SPE_E3".into(),
        consumed: 25.0,
        enabled: 25.0,
    });
    licences.signals.push(Signal::Service {
        service: "Exchange Online".into(),
        status: "serviceDegradation".into(),
    });
    let mut subs = tenant("5", "Epsilon", true, None);
    subs.signals.push(Signal::Subscription {
        id: "sub-1".into(),
        name: "Production".into(),
        state: "PastDue".into(),
    });
    let s = Snapshot {
        tenants: vec![
            tenant("1", "Alpha", true, None),
            tenant("2", "Beta", false, None),
            tenant("3", "Gamma", false, Some(ErrorClass::ConsentRequired)),
            licences,
            subs,
            tenant("6", "Zeta", true, None),
        ],
        gdap: Arc::new(vec![
            gdap("6", 12.0, false),
            gdap("1", 20.0, true),
            gdap("5", 200.0, false),
        ]),
        partner_signals: vec![
            Signal::CredentialExpiry {
                app_id: "app-1".into(),
                key_id: "old".into(),
                kind: "secret",
                end: NOW + 2.0 * DAY,
            },
            Signal::CredentialExpiry {
                app_id: "app-1".into(),
                key_id: "new".into(),
                kind: "secret",
                end: NOW + 20.0 * DAY,
            },
        ],
        ready: true,
        ..Default::default()
    };
    let r = RefreshState {
        expiry: Some(NOW + 10.0 * DAY),
        valid: Some(true),
        last_rotation: Some(NOW - 5.0 * DAY),
        last_rotation_failure: Some(NOW - 3600.0),
        ..Default::default()
    };
    let html = render_at(&s, &r, &[], NOW);
    let items = board_items(&html);
    let find = |needle: &str| {
        items
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} not on the board: {items:#?}"))
    };
    let consent = find("consent_required");
    let token = find("refresh token expires in 10 d");
    let rotation = find("rotation failing");
    let credential = find("app <code>app-1</code> ends in 20 d");
    let gdap_soon = find("GDAP relationship ends in 12 d");
    let stale = find("stale: licenses");
    let licence = find("licences exhausted: <code>SPE_E3</code> 25 assigned of 25");
    let degraded = find("Exchange Online: serviceDegradation");
    let past_due = find("Production (<code>sub-1</code>) is PastDue");
    assert!(items[consent].contains("data-severity=\"critical\""));
    assert!(items[consent].contains(ErrorClass::ConsentRequired.advice()));
    // The fix, with the tenant's id ready to paste.
    assert!(
        items[consent].contains("run tenantwatch consent customers --tenant 3<"),
        "{}",
        items[consent]
    );
    // Warnings with a deadline, soonest first, then those without.
    assert!(consent < token && token < gdap_soon && gdap_soon < credential);
    assert!(credential < rotation && rotation < stale.min(licence).min(degraded));
    assert!(past_due > consent);
    // The old credential the new one replaces, an auto-extending GDAP
    // and one ending in 200 days are not trouble.
    assert!(
        !items.iter().any(|l| l.contains("ends in 2 d")),
        "{items:#?}"
    );
    assert_eq!(items.len(), 9, "{items:#?}");
    assert!(html.contains("id=\"attention-count\">(9)"));
}

#[test]
fn an_expired_refresh_token_is_one_item_not_one_per_tenant() {
    let s = Snapshot {
        tenants: (0..50)
            .map(|i| {
                tenant(
                    &i.to_string(),
                    "T",
                    false,
                    Some(ErrorClass::RefreshTokenExpired),
                )
            })
            .collect(),
        ready: true,
        ..Default::default()
    };
    let r = RefreshState {
        mfa: Some(false),
        ..Default::default()
    };
    let html = render_at(&s, &r, &[], NOW);
    let items = board_items(&html);
    assert_eq!(items.len(), 2, "{items:#?}");
    assert!(items[0].contains("sign-in without MFA"));
    assert!(items[0].contains(&escape(ErrorClass::MfaClaimMissing.advice())));
    assert!(html.contains("Sign-in MFA<b class=\"bad\">NONE</b>"));
    let items = &items[1..];
    assert!(items[0].contains("50 tenants cannot be reached"));
    assert!(items[0].contains(ErrorClass::RefreshTokenExpired.advice()));
}

#[test]
fn a_green_estate_says_so() {
    let s = Snapshot {
        tenants: vec![tenant("1", "Alpha", true, None)],
        gdap: Arc::new(vec![gdap("1", 300.0, false)]),
        ready: true,
        ..Default::default()
    };
    let html = render_at(&s, &RefreshState::default(), &[], NOW);
    assert!(html.contains("id=\"all-clear\""));
    assert!(board_items(&html).is_empty());
    assert!(html.contains("Nothing ends in the next 90 days."));
}

#[test]
fn the_timeline_marks_every_deadline_within_90_days_and_labels_the_nearest() {
    let s = Snapshot {
        tenants: vec![
            tenant("1", "Alpha", true, None),
            tenant("2", "Beta", true, None),
        ],
        gdap: Arc::new(vec![
            gdap("1", 12.0, false),
            gdap("2", 45.0, true),
            gdap("3", 120.0, true),
        ]),
        partner_signals: vec![Signal::CredentialExpiry {
            app_id: "app-1".into(),
            key_id: "k".into(),
            kind: "certificate",
            end: NOW + 60.0 * DAY,
        }],
        ..Default::default()
    };
    let r = RefreshState {
        expiry: Some(NOW + 85.0 * DAY),
        ..Default::default()
    };
    let html = render_at(&s, &r, &[], NOW);
    let svg = &html[html.find("<svg").unwrap()..html.find("</svg>").unwrap()];
    assert_eq!(svg.matches("<circle").count(), 4, "{svg}");
    assert!(svg.contains("<title>GDAP with Alpha ends in 12 d"));
    assert!(svg.contains("no auto-extend</title>"));
    assert!(svg.contains("<title>App app-1 certificate k ends in 60 d"));
    assert!(svg.contains("<title>Refresh token expires in 85 d"));
    assert!(!svg.contains("in 120 d"));
    assert_eq!(svg.matches("class=\"next\"").count(), 1);
    assert!(svg.contains("class=\"next\"") && svg.contains(">next: in 12 d</text>"));
    assert!(html.contains("<p id=\"next-deadline\">Next: GDAP with Alpha ends in 12 d"));
}

#[test]
fn hostile_text_is_escaped_everywhere_it_appears() {
    let evil = "<script>alert(\"x\")</script>' onmouseover='y";
    let mut t = tenant("<img src=x onerror=z>", evil, false, None);
    t.domain = format!("{evil}.example").into();
    t.signals = vec![
        Signal::LicencesExhausted {
            sku: evil.into(),
            consumed: 1.0,
            enabled: 1.0,
        },
        Signal::Service {
            service: evil.into(),
            status: evil.into(),
        },
        Signal::Subscription {
            id: evil.into(),
            name: evil.into(),
            state: evil.into(),
        },
    ]
    .into();
    let tid = t.tenant_id.to_string();
    let s = Snapshot {
        tenants: vec![t],
        gdap: Arc::new(vec![gdap(&tid, 5.0, false)]),
        partner_signals: vec![Signal::CredentialExpiry {
            app_id: evil.into(),
            key_id: evil.into(),
            kind: "secret",
            end: NOW + DAY,
        }],
        ready: true,
        ..Default::default()
    };
    let html = render_at(&s, &RefreshState::default(), &[], NOW);
    // The only script element is the page's own, and no attribute was broken out of.
    assert_eq!(html.matches("<script").count(), 1, "{html}");
    assert!(!html.contains("<img"));
    assert!(!html.contains("' onmouseover"));
    assert!(!html.contains("\"x\""));
    let escaped = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39; onmouseover=&#39;y";
    let board = board_items(&html).join("\n");
    let table = &html[html.find("<table").unwrap()..];
    let svg = &html[html.find("<svg").unwrap()..html.find("</svg>").unwrap()];
    assert!(board.matches(escaped).count() >= 7, "{board}");
    assert!(board.contains("data-tenant=\"&lt;img src=x onerror=z&gt;\""));
    assert!(table.contains(&format!("<td>{escaped}</td>")), "name cell");
    assert!(table.contains(&format!("data-name=\"{escaped}\"")));
    assert!(table.contains(&format!("data-domain=\"{escaped}.example\"")));
    assert!(table.contains("data-tenant=\"&lt;img src=x onerror=z&gt;\""));
    assert!(
        svg.contains(&format!("<title>GDAP with {escaped} ends")),
        "{svg}"
    );
    assert!(svg.contains(&format!("<title>App {escaped} secret {escaped}")));
}

#[test]
fn trouble_first_in_the_table() {
    let s = Snapshot {
        tenants: vec![
            tenant("1", "Alpha", true, None),
            tenant("2", "Beta", false, None),
            tenant("3", "Gamma", false, Some(ErrorClass::ConsentRequired)),
        ],
        ready: true,
        ..Default::default()
    };
    let html = render_at(&s, &RefreshState::default(), &[], NOW);
    let table = &html[html.find("<tbody>").unwrap()..];
    let (g, b, a) = (
        table.find("Gamma").unwrap(),
        table.find("Beta").unwrap(),
        table.find("Alpha").unwrap(),
    );
    assert!(g < b && b < a, "order");
    assert_eq!(relative(100.0, 100.0 + 3600.0), "60 min ago");
    assert_eq!(relative(100.0 + 3.0 * 86400.0, 100.0), "in 3 d");
}

#[test]
fn the_policy_names_the_inline_script_and_style_by_hash() {
    let html = render_at(&Snapshot::default(), &RefreshState::default(), &[], NOW);
    let csp = content_security_policy();
    assert!(html.contains(&format!("<script>{SCRIPT}</script>")));
    assert!(html.contains(&format!("<style>{STYLE}</style>")));
    assert!(csp.starts_with("default-src 'none';"));
    assert!(csp.contains(&format!("script-src '{}'", csp_hash(SCRIPT))));
    assert!(csp.contains(&format!("style-src '{}'", csp_hash(STYLE))));
    assert!(!csp.contains("unsafe") && !csp.contains("http"));
    // RFC 4648 base64 of a 32-byte digest: 44 characters.
    assert_eq!(csp_hash("").len(), "sha256-".len() + 44);
    assert_eq!(
        csp_hash("alert('Hello, world.');"),
        "sha256-qznLcsROx4GACP2dm0UCKCzCG+HiZ1guq6ZZDob/Tng=",
        "the example of the CSP Level 3 spec"
    );
}

/// With several partners `/` lists them, each linking to its own page, and a
/// partner's page names it and links to the others.
#[test]
fn several_partners_are_listed_and_each_has_its_page() {
    let snap = |name: &str, up: bool| {
        std::sync::Arc::new(Snapshot {
            partner: crate::model::PartnerName::from(name),
            ready: true,
            tenants: vec![tenant("t1", "Contoso <Ltd>", up, None)],
            ..Default::default()
        })
    };
    let refused = RefreshState {
        valid: Some(false),
        ..Default::default()
    };
    let html = overview_at(
        &[
            (snap("direct", true), RefreshState::default()),
            (snap("indirect", false), refused.clone()),
        ],
        NOW,
    );
    assert!(html.contains("<h2>Partners</h2>"), "{html}");
    assert!(
        html.contains("<a href=\"/?partner=direct\">direct</a>"),
        "{html}"
    );
    let row = html
        .lines()
        .find(|l| l.contains("data-partner=\"indirect\""))
        .unwrap();
    assert!(
        row.contains(">refused<") && row.contains("class=\"bad\">1<"),
        "{row}"
    );
    let names = ["direct".to_string(), "indirect".to_string()];
    let page = render_at(&snap("indirect", false), &refused, &names, NOW);
    assert!(page.contains("<h2>Partner indirect</h2>"), "{page}");
    assert!(
        page.contains("<a href=\"/?partner=direct\">direct</a> · <b>indirect</b>"),
        "{page}"
    );
    assert!(page.contains("Contoso &lt;Ltd&gt;"));
    // One partner: no partner links or heading, as before.
    let single = render_at(&snap("default", true), &RefreshState::default(), &[], NOW);
    assert!(!single.contains("partner-links") && !single.contains("<h2>Partner "));
}
