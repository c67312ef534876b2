//! The attention board: what needs a person, most urgent first — partner-wide
//! trouble (the refresh token, its rotation and store, the SAM app's
//! credentials, discovery), then each tenant's (token error with its advice,
//! GDAP ending or granting nothing, required roles missing, licences
//! exhausted, subscriptions failing or ending, services degraded, stale
//! collectors). Each item says what to do.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{date, escape, relative, BOARD_LIMIT, DAY};
use crate::metrics::RefreshState;
use crate::model::{ErrorClass, Signal, Snapshot, TenantStatus};

/// Earliest end of the tenant's active GDAP relationships, and whether it auto-extends.
pub(super) fn gdap_end(s: &Snapshot) -> BTreeMap<&str, (f64, bool)> {
    let mut m: BTreeMap<&str, (f64, bool)> = BTreeMap::new();
    for g in s.gdap.iter().filter(|g| g.status == "active") {
        if let Some(end) = g.end {
            let e = m
                .entry(g.tenant_id.as_str())
                .or_insert((end, g.auto_extend));
            if end < e.0 {
                *e = (end, g.auto_extend);
            }
        }
    }
    m
}

/// How urgent an attention item is; the board lists the most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Severity {
    /// Access is lost or about to be: act today.
    Critical,
    /// Something ends or fails soon: act this week.
    Warning,
    /// Worth knowing; it may fix itself.
    Notice,
}

impl Severity {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Notice => "notice",
        }
    }
}

/// One line of the board. `who`, `what` and `advice` are HTML, escaped.
pub(super) struct Item {
    severity: Severity,
    /// When it ends, if it is a deadline: the sooner, the higher.
    due: Option<f64>,
    /// "Partner" or the tenant's name.
    who: String,
    /// The tenant's id, for the `data-tenant` attribute.
    tenant: Option<String>,
    what: String,
    advice: String,
}

impl Item {
    fn partner(severity: Severity, due: Option<f64>, what: String, advice: &str) -> Self {
        Item {
            severity,
            due,
            who: "Partner".into(),
            tenant: None,
            what,
            advice: escape(advice),
        }
    }

    fn tenant(
        t: &TenantStatus,
        severity: Severity,
        due: Option<f64>,
        what: String,
        advice: &str,
    ) -> Self {
        Item {
            severity,
            due,
            who: escape(&t.name),
            tenant: Some(escape(&t.tenant_id)),
            what,
            advice: escape(advice),
        }
    }

    pub(super) fn rank(&self) -> (Severity, f64) {
        (self.severity, self.due.unwrap_or(f64::INFINITY))
    }
}

const GDAP_ADVICE: &str = "create a new GDAP relationship request in Partner Center and have the customer approve it, or turn on auto-extend (roles without Global Administrator)";
const RENEWAL_ADVICE: &str = "turn auto-renew on in Partner Center (Customers → Subscriptions), or agree with the customer that it ends";
const TRIAL_ADVICE: &str =
    "convert the trial to a paid subscription in Partner Center, or let the customer know it ends";
const GDAP_ACCESS_ADVICE: &str = "in Partner Center (Customers → Admin relationships), assign the relationship's roles to a security group of agents: a relationship grants nothing until then";
const GDAP_ROLE_ADVICE: &str = "request a GDAP relationship holding this role and assign it to a security group; collectors that need it fail with 403 until then";
const SUBSCRIPTION_ADVICE: &str =
    "check billing for the customer in Partner Center (payment, spending limit, cancelled offer)";
const LICENCE_ADVICE: &str =
    "buy more seats or unassign unused licences before the next user needs one";
const SERVICE_ADVICE: &str = "Microsoft is working on it: see Service health in the Microsoft 365 admin center and tell the customer";
const COLLECTOR_ADVICE: &str =
    "see the daemon's log for this tenant and collector; its metrics show the last known values";
const ROTATION_ADVICE: &str = "look for rotation errors in the log (Key Vault write access, the vault identity's credential); `tenantwatch rotate` retries now and prints the error";
const STORE_ADVICE: &str =
    "check the vault identity's access to Key Vault (or the token file); see the log";
const DISCOVERY_ADVICE: &str = "existing tenants are still watched, new or removed customers are not noticed: check Partner Center and GDAP access in the log";
const CREDENTIAL_SOON_ADVICE: &str = "create a new secret or certificate for the app, put it in the secret file and reload, before this one ends";

/// The partner-wide items: the refresh token, its rotation and store, the
/// SAM app's credentials, discovery.
pub(super) fn partner_items(s: &Snapshot, r: &RefreshState, now: f64, items: &mut Vec<Item>) {
    if r.valid == Some(false) {
        items.push(Item::partner(
            Severity::Critical,
            None,
            "Entra ID refuses the partner refresh token: no tenant can be reached".into(),
            ErrorClass::RefreshTokenRevoked.advice(),
        ));
    }
    if r.mfa == Some(false) {
        items.push(Item::partner(
            Severity::Critical,
            None,
            "the refresh token comes from a sign-in without MFA: Partner Center refuses it".into(),
            ErrorClass::MfaClaimMissing.advice(),
        ));
    }
    if let Some(exp) = r.expiry {
        let left = exp - now;
        let severity = if left < 3.0 * DAY {
            Some(Severity::Critical)
        } else if left < 14.0 * DAY {
            Some(Severity::Warning)
        } else {
            None
        };
        if let Some(severity) = severity {
            items.push(Item::partner(
                severity,
                Some(exp),
                format!(
                    "refresh token expires {} ({})",
                    relative(exp, now),
                    date(exp)
                ),
                ROTATION_ADVICE,
            ));
        }
    }
    if let Some(failed) = r.last_rotation_failure {
        if r.last_rotation.is_none_or(|ok| failed > ok) {
            items.push(Item::partner(
                Severity::Warning,
                None,
                format!(
                    "refresh token rotation failing (last attempt {}; last success {})",
                    relative(failed, now),
                    r.last_rotation
                        .map(|t| relative(t, now))
                        .unwrap_or_else(|| "none by this process".into())
                ),
                ROTATION_ADVICE,
            ));
        }
    }
    if r.store_up == Some(false) {
        items.push(Item::partner(
            Severity::Critical,
            None,
            "the refresh token store cannot be read".into(),
            STORE_ADVICE,
        ));
    }
    // As the alert rule does: an app is in trouble when its newest
    // credential ends, not when an old one it replaced does.
    let mut newest: BTreeMap<&str, f64> = BTreeMap::new();
    for sig in &s.partner_signals {
        if let Signal::CredentialExpiry { app_id, end, .. } = sig {
            let e = newest.entry(app_id.as_str()).or_insert(*end);
            *e = e.max(*end);
        }
    }
    for (app, end) in newest {
        let left = end - now;
        let (severity, advice) = if left <= 0.0 {
            (Severity::Critical, ErrorClass::ClientSecretExpired.advice())
        } else if left < 7.0 * DAY {
            (Severity::Critical, CREDENTIAL_SOON_ADVICE)
        } else if left < 30.0 * DAY {
            (Severity::Warning, CREDENTIAL_SOON_ADVICE)
        } else {
            continue;
        };
        items.push(Item::partner(
            severity,
            Some(end),
            format!(
                "the last credential of app <code>{}</code> {} {} ({})",
                escape(app),
                if left <= 0.0 { "ended" } else { "ends" },
                relative(end, now),
                date(end)
            ),
            advice,
        ));
    }
    if s.discovery.done && !s.discovery.ok {
        items.push(Item::partner(
            Severity::Warning,
            None,
            "tenant discovery is failing".into(),
            DISCOVERY_ADVICE,
        ));
    }
}

/// One tenant's items. A partner-wide token error is left to
/// [`partner_wide_token_errors`], once for all tenants.
pub(super) fn tenant_items(
    t: &TenantStatus,
    gdap: Option<&(f64, bool)>,
    access: Option<&GdapAccess>,
    now: f64,
    items: &mut Vec<Item>,
) -> usize {
    let before = items.len();
    if let Some(a) = access {
        if a.grants_nothing {
            items.push(Item::tenant(
                t,
                Severity::Warning,
                None,
                "GDAP relationship active but no role is assigned to anyone: the partner has no access".into(),
                GDAP_ACCESS_ADVICE,
            ));
        }
        for role in &a.missing_roles {
            items.push(Item::tenant(
                t,
                Severity::Warning,
                None,
                format!("required GDAP role not granted: {}", escape(role)),
                GDAP_ROLE_ADVICE,
            ));
        }
    }
    match t.token_error {
        Some(e) if e.is_partner_wide() => {}
        Some(e) => items.push(Item::tenant(
            t,
            if e.is_transient() {
                Severity::Notice
            } else {
                Severity::Critical
            },
            None,
            format!("no token: <code>{}</code>", e.as_str()),
            &if e.consent_push_fixes() {
                // The command with this tenant's id, ready to paste.
                format!(
                    "{}: run {}",
                    e.advice(),
                    ErrorClass::consent_command(&t.tenant_id)
                )
            } else {
                e.advice().to_string()
            },
        )),
        None => {
            let failing: Vec<String> = t
                .collectors
                .iter()
                .filter(|(_, st)| !st.ok)
                .map(|(name, st)| {
                    format!(
                        "{} (last ok {})",
                        escape(name),
                        st.last_success
                            .map(|ts| relative(ts, now))
                            .unwrap_or_else(|| "never".into())
                    )
                })
                .collect();
            if !failing.is_empty() {
                items.push(Item::tenant(
                    t,
                    Severity::Warning,
                    None,
                    format!("stale: {}", failing.join(", ")),
                    COLLECTOR_ADVICE,
                ));
            }
        }
    }
    if let Some(&(end, auto)) = gdap {
        let left = end - now;
        if !auto && left < 30.0 * DAY {
            items.push(Item::tenant(
                t,
                if left < 7.0 * DAY {
                    Severity::Critical
                } else {
                    Severity::Warning
                },
                Some(end),
                format!(
                    "GDAP relationship ends {} ({}) and does not auto-extend",
                    relative(end, now),
                    date(end)
                ),
                GDAP_ADVICE,
            ));
        }
    }
    for sig in &t.signals {
        match sig {
            Signal::LicencesExhausted {
                sku,
                consumed,
                enabled,
            } => items.push(Item::tenant(
                t,
                Severity::Warning,
                None,
                if *enabled > 0.0 {
                    format!(
                        "licences exhausted: <code>{}</code> {consumed:.0} assigned of {enabled:.0}",
                        escape(sku)
                    )
                } else {
                    format!(
                        "licences exhausted: <code>{}</code> {consumed:.0} assigned, none enabled (suspended or in the warning period)",
                        escape(sku)
                    )
                },
                if *enabled > 0.0 {
                    LICENCE_ADVICE
                } else {
                    SUBSCRIPTION_ADVICE
                },
            )),
            Signal::Subscription { name, id, state } => items.push(Item::tenant(
                t,
                if state == "Warned" {
                    Severity::Notice
                } else {
                    Severity::Warning
                },
                None,
                format!(
                    "Azure subscription {} (<code>{}</code>) is {}",
                    escape(name),
                    escape(id),
                    escape(state)
                ),
                SUBSCRIPTION_ADVICE,
            )),
            Signal::Service { service, status } => items.push(Item::tenant(
                t,
                if matches!(status.as_str(), "serviceDegradation" | "serviceInterruption") {
                    Severity::Warning
                } else {
                    Severity::Notice
                },
                None,
                format!("{}: {}", escape(service), escape(status)),
                SERVICE_ADVICE,
            )),
            Signal::SubscriptionEnds {
                id,
                name,
                end,
                trial,
            } => {
                let left = end - now;
                // As the alerts: a trial within 7 days, a subscription that
                // does not renew within 30; one that renews never shows.
                let within = if *trial { 7.0 } else { 30.0 };
                if left >= 0.0 && left < within * DAY {
                    items.push(Item::tenant(
                        t,
                        if left < 3.0 * DAY {
                            Severity::Critical
                        } else {
                            Severity::Warning
                        },
                        Some(*end),
                        format!(
                            "{} {} (<code>{}</code>) ends {} ({}){}",
                            if *trial { "trial" } else { "subscription" },
                            escape(name),
                            escape(id),
                            relative(*end, now),
                            date(*end),
                            if *trial { "" } else { " and does not auto-renew" }
                        ),
                        if *trial { TRIAL_ADVICE } else { RENEWAL_ADVICE },
                    ))
                }
            }
            Signal::CredentialExpiry { .. } => {}
        }
    }
    items.len() - before
}

/// What one tenant's GDAP relationships grant, where known.
#[derive(Debug, Default)]
pub(super) struct GdapAccess {
    /// It has active relationships whose assignments were read, and none
    /// gives any role to anyone.
    grants_nothing: bool,
    /// `tenants.gdap_required_roles` no active assignment covers.
    missing_roles: Vec<String>,
}

/// Per tenant: whether its GDAP relationships grant anything, and which
/// required roles they miss.
pub(super) fn gdap_access(s: &Snapshot) -> BTreeMap<&str, GdapAccess> {
    let mut known: BTreeMap<&str, (bool, bool)> = BTreeMap::new();
    for g in s.gdap.iter().filter(|g| g.status == "active") {
        let e = known.entry(g.tenant_id.as_str()).or_default();
        e.0 |= g.access.is_some();
        e.1 |= g.granted_roles().next().is_some();
    }
    let mut out: BTreeMap<&str, GdapAccess> = known
        .into_iter()
        .map(|(t, (read, grants))| {
            (
                t,
                GdapAccess {
                    grants_nothing: read && !grants,
                    missing_roles: Vec::new(),
                },
            )
        })
        .collect();
    for r in s.gdap_required_roles.iter().filter(|r| r.missing) {
        out.entry(r.tenant_id.as_str())
            .or_default()
            .missing_roles
            .push(r.role.clone());
    }
    out
}

/// A token error that is the partner's (every tenant fails alike), once
/// with how many tenants it takes down, not once per tenant.
pub(super) fn partner_wide_token_errors(s: &Snapshot, items: &mut Vec<Item>) {
    let mut by_class: BTreeMap<ErrorClass, usize> = BTreeMap::new();
    for t in &s.tenants {
        if let Some(e) = t.token_error.filter(|e| e.is_partner_wide()) {
            *by_class.entry(e).or_default() += 1;
        }
    }
    for (e, n) in by_class {
        items.push(Item::partner(
            Severity::Critical,
            None,
            format!(
                "<code>{}</code>: {n} tenant{} cannot be reached",
                e.as_str(),
                if n == 1 { "" } else { "s" }
            ),
            e.advice(),
        ));
    }
}

pub(super) fn board(out: &mut String, items: &[Item], ready: bool) {
    let _ = writeln!(
        out,
        "<h2>Needs attention <small id=\"attention-count\">({})</small></h2>",
        items.len()
    );
    if items.is_empty() {
        out.push_str(if ready {
            "<p id=\"all-clear\" class=\"ok\">Nothing needs attention.</p>\n"
        } else {
            "<p id=\"all-clear\">Nothing yet: the first collection is still running.</p>\n"
        });
        return;
    }
    out.push_str("<ol id=\"board\" class=\"board\">\n");
    for it in items.iter().take(BOARD_LIMIT) {
        let sev = it.severity.as_str();
        let _ = write!(out, "<li class=\"{sev}\" data-severity=\"{sev}\"");
        if let Some(id) = &it.tenant {
            let _ = write!(out, " data-tenant=\"{id}\"");
        }
        let _ = writeln!(
            out,
            "><span class=\"sev\">{sev}</span> <b class=\"who\">{}</b> <span class=\"what\">{}</span><span class=\"advice\">{}</span></li>",
            it.who, it.what, it.advice
        );
    }
    out.push_str("</ol>\n");
    if items.len() > BOARD_LIMIT {
        let _ = writeln!(
            out,
            "<p>… and {} more: choose “needs attention” in the tenant table.</p>",
            items.len() - BOARD_LIMIT
        );
    }
}
