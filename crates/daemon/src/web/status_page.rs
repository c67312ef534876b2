//! The status page at `/`: the MSP's attention board, server-rendered from
//! the same snapshot and refresh-token state the metrics come from. It shows
//! what needs a person, most urgent first (partner-wide trouble, then each
//! tenant's), a 90-day timeline of everything that ends, and a tenant table
//! that a small inline script filters, sorts and reloads; the
//! [`content_security_policy`] it is served with allows that script and
//! style by hash and nothing from anywhere else. Every text from outside is
//! escaped. It shows no secret: nothing it reads holds one.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::OnceLock;

use crate::metrics::RefreshState;
use tenantwatch_common::time::unix_now;

use crate::model::{ErrorClass, Signal, Snapshot, TenantStatus};

const DAY: f64 = 86_400.0;

/// How far ahead the timeline looks.
const HORIZON_DAYS: f64 = 90.0;

/// The board lists at most this many items; the table's "needs attention"
/// filter shows every tenant behind the rest.
const BOARD_LIMIT: usize = 200;

/// Seconds between reloads while auto-refresh is on.
const REFRESH_SECS: u32 = 30;

/// The page's only style sheet, allowed by its hash.
const STYLE: &str = "
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
h2{margin:1.2em 0 .4em;font-size:1.2em}
table{border-collapse:collapse}#tenants td{white-space:nowrap}td,th{padding:.25em .7em;text-align:left;border-bottom:1px solid #ddd;vertical-align:top}
th{background:#f3f3f3;cursor:pointer;user-select:none;white-space:nowrap}
th[aria-sort=ascending]::after{content:' \\25B2'}th[aria-sort=descending]::after{content:' \\25BC'}
.bad{color:#b00020;font-weight:600}.warn{color:#a15c00}.ok{color:#1b7f3b}
.cards{display:flex;gap:1em;flex-wrap:wrap;margin-bottom:1em}.card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;min-width:12em}
.card b{display:block;font-size:1.3em}code{font-size:.85em}
.board{list-style:none;padding:0;margin:0;max-width:75em}
.board li{border-left:.35em solid #999;padding:.3em .7em;margin:.25em 0;background:#fafafa}
.board li.critical{border-color:#b00020}.board li.warning{border-color:#d98e04}.board li.notice{border-color:#6b7c93}
.sev{display:inline-block;min-width:5.5em;font-size:.8em;text-transform:uppercase;font-weight:700}
.critical .sev{color:#b00020}.warning .sev{color:#a15c00}.notice .sev{color:#6b7c93}
.advice{display:block;color:#555;font-size:.9em}
.controls{display:flex;gap:1em;align-items:center;flex-wrap:wrap;margin:.5em 0}
#filter{min-width:22em;padding:.3em}
svg text{font-size:11px;fill:#444}svg .axis{stroke:#999}svg .tick{stroke:#e3e3e3}
svg .mark{fill:#1b7f3b}svg .mark.warning{fill:#d98e04}svg .mark.critical{fill:#b00020}
svg .next{font-weight:700;fill:#222}
";

/// The page's only script, allowed by its hash: filter, sort and
/// auto-refresh, in plain JavaScript.
const SCRIPT: &str = r#"
(function () {
  "use strict";
  var table = document.getElementById("tenants");
  if (!table) return;
  var tbody = table.tBodies[0];
  var rows = Array.prototype.slice.call(tbody.rows);
  var filter = document.getElementById("filter");
  var state = document.getElementById("state");
  var shown = document.getElementById("shown");
  var auto = document.getElementById("autorefresh");
  function store(k, v) { try { window.sessionStorage.setItem(k, v); } catch (e) {} }
  function stored(k) { try { return window.sessionStorage.getItem(k); } catch (e) { return null; } }
  function apply() {
    var q = filter.value.trim().toLowerCase(), s = state.value, n = 0;
    for (var i = 0; i < rows.length; i++) {
      var d = rows[i].dataset;
      var ok = (!q || d.name.indexOf(q) >= 0 || d.domain.indexOf(q) >= 0 || d.tenant.indexOf(q) >= 0) &&
        (!s || (s === "attention" ? d.attention !== "0" : d.state === s));
      if (rows[i].hidden === ok) rows[i].hidden = !ok;
      if (ok) n++;
    }
    shown.textContent = n + " of " + rows.length + " tenants";
    store("tenantwatch.filter", filter.value);
    store("tenantwatch.state", s);
  }
  function key(row, col) {
    var td = row.cells[col];
    if (!td) return "";
    var v = td.getAttribute("data-v");
    if (v === null) return td.textContent.toLowerCase();
    return v === "" ? Infinity : Number(v);
  }
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
  heads.forEach(function (th, col) {
    th.tabIndex = 0;
    function sort() {
      var asc = th.getAttribute("aria-sort") !== "ascending";
      heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var keyed = rows.map(function (r, i) { return [key(r, col), i, r]; });
      keyed.sort(function (a, b) {
        var c = a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
        // Equal keys keep their order (a stable sort either way).
        return (asc ? c : -c) || a[1] - b[1];
      });
      var frag = document.createDocumentFragment();
      rows = keyed.map(function (k) { frag.appendChild(k[2]); return k[2]; });
      tbody.appendChild(frag);
    }
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); } });
  });
  var timer = null;
  function arm() {
    if (timer !== null) { window.clearTimeout(timer); timer = null; }
    if (auto.checked) timer = window.setTimeout(function () { window.location.reload(); }, Number(auto.value) * 1000);
    try { window.localStorage.setItem("tenantwatch.autorefresh", auto.checked ? "1" : "0"); } catch (e) {}
  }
  try { auto.checked = window.localStorage.getItem("tenantwatch.autorefresh") === "1"; } catch (e) {}
  var f = stored("tenantwatch.filter"), s = stored("tenantwatch.state");
  if (f !== null) filter.value = f;
  if (s !== null) state.value = s;
  filter.addEventListener("input", apply);
  state.addEventListener("change", apply);
  auto.addEventListener("change", arm);
  apply();
  arm();
})();
"#;

/// The `Content-Security-Policy` the page is served with: nothing may be
/// loaded or sent anywhere, and only the page's own inline style and
/// script run, each named by its SHA-256 (no `'unsafe-inline'`).
pub fn content_security_policy() -> &'static str {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| {
        format!(
            "default-src 'none'; script-src '{}'; style-src '{}'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            csp_hash(SCRIPT),
            csp_hash(STYLE)
        )
    })
}

/// A CSP source expression for an inline element's exact text (CSP Level 3, "hash-source").
fn csp_hash(text: &str) -> String {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
    )
}

/// Text made safe for HTML element content and quoted attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// "3 min ago", "in 12 d".
fn relative(ts: f64, now: f64) -> String {
    let d = ts - now;
    let (a, future) = (d.abs(), d > 0.0);
    let text = if a < 90.0 {
        format!("{:.0} s", a)
    } else if a < 5400.0 {
        format!("{:.0} min", a / 60.0)
    } else if a < 172_800.0 {
        format!("{:.0} h", a / 3600.0)
    } else {
        format!("{:.0} d", a / 86400.0)
    };
    if future {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

fn date(ts: f64) -> String {
    chrono::DateTime::from_timestamp(ts as i64, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// Earliest end of the tenant's active GDAP relationships, and whether it auto-extends.
fn gdap_end(s: &Snapshot) -> BTreeMap<&str, (f64, bool)> {
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
enum Severity {
    /// Access is lost or about to be: act today.
    Critical,
    /// Something ends or fails soon: act this week.
    Warning,
    /// Worth knowing; it may fix itself.
    Notice,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Notice => "notice",
        }
    }
}

/// One line of the board. `who`, `what` and `advice` are HTML, escaped.
struct Item {
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

    fn rank(&self) -> (Severity, f64) {
        (self.severity, self.due.unwrap_or(f64::INFINITY))
    }
}

const GDAP_ADVICE: &str = "create a new GDAP relationship request in Partner Center and have the customer approve it, or turn on auto-extend (roles without Global Administrator)";
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
fn partner_items(s: &Snapshot, r: &RefreshState, now: f64, items: &mut Vec<Item>) {
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
fn tenant_items(
    t: &TenantStatus,
    gdap: Option<&(f64, bool)>,
    now: f64,
    items: &mut Vec<Item>,
) -> usize {
    let before = items.len();
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
            e.advice(),
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
            Signal::CredentialExpiry { .. } => {}
        }
    }
    items.len() - before
}

/// A token error that is the partner's (every tenant fails alike), once
/// with how many tenants it takes down, not once per tenant.
fn partner_wide_token_errors(s: &Snapshot, items: &mut Vec<Item>) {
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

/// A deadline on the timeline. `label` is plain text (escaped when written).
struct Deadline {
    row: usize,
    when: f64,
    label: String,
    severity: Option<Severity>,
}

/// Rows of the timeline, top to bottom.
const TIMELINE_ROWS: [&str; 4] = [
    "Refresh token",
    "App credentials",
    "GDAP relationships",
    "Subscriptions",
];

fn deadlines(s: &Snapshot, r: &RefreshState, now: f64) -> Vec<Deadline> {
    let end = now + HORIZON_DAYS * DAY;
    let mut out = Vec::new();
    if let Some(exp) = r.expiry {
        out.push(Deadline {
            row: 0,
            when: exp,
            label: format!(
                "Refresh token expires {} ({}) unless rotated",
                relative(exp, now),
                date(exp)
            ),
            severity: (exp - now < 14.0 * DAY).then_some(Severity::Warning),
        });
    }
    for sig in &s.partner_signals {
        if let Signal::CredentialExpiry {
            app_id,
            key_id,
            kind,
            end,
        } = sig
        {
            out.push(Deadline {
                row: 1,
                when: *end,
                label: format!(
                    "App {app_id} {kind} {key_id} ends {} ({})",
                    relative(*end, now),
                    date(*end)
                ),
                severity: (*end - now < 30.0 * DAY).then_some(Severity::Warning),
            });
        }
    }
    let names: BTreeMap<&str, &str> = s
        .tenants
        .iter()
        .map(|t| (&*t.tenant_id, &*t.name))
        .collect();
    for g in s.gdap.iter().filter(|g| g.status == "active") {
        let Some(when) = g.end else { continue };
        let name = names
            .get(g.tenant_id.as_str())
            .copied()
            .unwrap_or(g.customer_name.as_str());
        let severity =
            (!g.auto_extend && when - now < 30.0 * DAY).then_some(if when - now < 7.0 * DAY {
                Severity::Critical
            } else {
                Severity::Warning
            });
        out.push(Deadline {
            row: 2,
            when,
            label: format!(
                "GDAP with {name} ends {} ({}){}",
                relative(when, now),
                date(when),
                if g.auto_extend {
                    ", auto-extends"
                } else {
                    ", no auto-extend"
                }
            ),
            severity,
        });
    }
    out.retain(|d| d.when >= now && d.when <= end);
    out.sort_by(|a, b| a.when.total_cmp(&b.when));
    out
}

/// The timeline: inline SVG, one mark per deadline with a `<title>`
/// tooltip, the nearest labelled.
fn timeline(out: &mut String, s: &Snapshot, r: &RefreshState, now: f64) {
    const W: f64 = 960.0;
    const LEFT: f64 = 150.0;
    const RIGHT: f64 = 20.0;
    const ROW: f64 = 26.0;
    const TOP: f64 = 34.0;
    let list = deadlines(s, r, now);
    let x = |t: f64| LEFT + (t - now) / (HORIZON_DAYS * DAY) * (W - LEFT - RIGHT);
    let height = TOP + ROW * TIMELINE_ROWS.len() as f64 + 22.0;
    let _ = write!(
        out,
        "<h2>Ending in the next {HORIZON_DAYS:.0} days</h2>\n<p id=\"next-deadline\">"
    );
    match list.first() {
        Some(d) => {
            let _ = write!(out, "Next: {}", escape(&d.label));
        }
        None => out.push_str("Nothing ends in the next 90 days."),
    }
    let _ = write!(
        out,
        "</p>\n<svg id=\"timeline\" role=\"img\" aria-label=\"deadlines in the next {HORIZON_DAYS:.0} days\" width=\"{W}\" height=\"{height}\" viewBox=\"0 0 {W} {height}\" xmlns=\"http://www.w3.org/2000/svg\">\n"
    );
    let bottom = TOP + ROW * TIMELINE_ROWS.len() as f64 - ROW / 2.0;
    for k in (0..=HORIZON_DAYS as u32).step_by(15) {
        let t = now + f64::from(k) * DAY;
        let label = chrono::DateTime::from_timestamp(t as i64, 0)
            .map(|d| d.format("%d %b").to_string())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "<line class=\"tick\" x1=\"{0:.1}\" y1=\"{1:.1}\" x2=\"{0:.1}\" y2=\"{bottom:.1}\"/><text x=\"{0:.1}\" y=\"{2:.1}\" text-anchor=\"middle\">{3}</text>",
            x(t),
            TOP - ROW / 2.0,
            bottom + 16.0,
            if k == 0 { "today".to_string() } else { label }
        );
    }
    for (i, name) in TIMELINE_ROWS.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        let _ = writeln!(
            out,
            "<text x=\"4\" y=\"{:.1}\">{name}{}</text><line class=\"axis\" x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\"/>",
            y + 4.0,
            if i == 3 { " *" } else { "" },
            W - RIGHT
        );
    }
    for d in &list {
        let _ = writeln!(
            out,
            "<circle class=\"mark {}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"5\"><title>{}</title></circle>",
            d.severity.map(Severity::as_str).unwrap_or(""),
            x(d.when),
            TOP + ROW * d.row as f64,
            escape(&d.label)
        );
    }
    if let Some(d) = list.first() {
        let (cx, cy) = (x(d.when), TOP + ROW * d.row as f64);
        // Past the middle, the label goes on the left of its mark.
        let (tx, anchor) = if cx > W / 2.0 {
            (cx - 8.0, "end")
        } else {
            (cx + 8.0, "start")
        };
        let _ = writeln!(
            out,
            "<text class=\"next\" x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">next: {}</text>",
            cy - 7.0,
            escape(&relative(d.when, now))
        );
    }
    out.push_str("</svg>\n<p><small>* Subscription end and renewal dates are not collected yet: ARM's subscription list carries none.</small></p>\n");
}

/// Trouble first: down with a token error, down, needing attention, then
/// the rest; each by name.
fn rank(t: &TenantStatus, attention: usize) -> u8 {
    match (t.up, t.token_error.is_some(), attention > 0) {
        (false, true, _) => 0,
        (false, false, _) => 1,
        (true, _, true) => 2,
        _ => 3,
    }
}

/// Renders the page.
pub fn render(s: &Snapshot, r: &RefreshState) -> String {
    render_at(s, r, unix_now())
}

fn render_at(s: &Snapshot, r: &RefreshState, now: f64) -> String {
    let mut out = String::with_capacity(32 * 1024 + s.tenants.len() * 700);
    let up = s.tenants.iter().filter(|t| t.up).count();
    let down = s.tenants.len() - up;
    let _ = write!(
        out,
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tenantwatch</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{STYLE}</style></head><body>
<h1>tenantwatch <small>{version}</small></h1>
<p><a href="/metrics">/metrics</a> · <a href="/healthz">/healthz</a> · <a href="/readyz">/readyz</a> · generated {generated}</p>
<div class="cards">
"#,
        version = env!("CARGO_PKG_VERSION"),
        generated = escape(&date(now)),
    );
    cards(&mut out, s, r, now, up, down);

    let gdap = gdap_end(s);
    let mut items = Vec::new();
    partner_items(s, r, now, &mut items);
    partner_wide_token_errors(s, &mut items);
    let mut tenants: Vec<(&TenantStatus, usize)> = s
        .tenants
        .iter()
        .map(|t| {
            let n = tenant_items(t, gdap.get(&*t.tenant_id), now, &mut items);
            (t, n)
        })
        .collect();
    // Stable: partner-wide before tenants at equal urgency.
    items.sort_by(|a, b| {
        let (sa, da) = a.rank();
        let (sb, db) = b.rank();
        sa.cmp(&sb).then(da.total_cmp(&db))
    });
    board(&mut out, &items, s.ready);
    timeline(&mut out, s, r, now);

    // Per-tenant collectors only (partner-scope ones have no per-tenant column).
    let collectors: Vec<&'static str> = s
        .tenants
        .iter()
        .flat_map(|t| t.collectors.iter().map(|(name, _)| *name))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let _ = write!(
        out,
        "<h2>Tenants</h2>\n<div class=\"controls\"><input id=\"filter\" type=\"search\" placeholder=\"Filter by name, domain or tenant id\" aria-label=\"filter tenants\" autocomplete=\"off\">\
<select id=\"state\" aria-label=\"state\"><option value=\"\">all states</option><option value=\"attention\">needs attention</option><option value=\"down\">down</option><option value=\"up\">up</option></select>\
<span id=\"shown\">{n} of {n} tenants</span>\
<label><input type=\"checkbox\" id=\"autorefresh\" value=\"{REFRESH_SECS}\"> auto-refresh every {REFRESH_SECS} s</label></div>\n\
<table id=\"tenants\"><thead><tr><th>name</th><th>domain</th><th>tenant id</th><th>state</th><th>attention</th><th>token error</th><th>GDAP ends</th>",
        n = s.tenants.len()
    );
    for c in &collectors {
        let _ = write!(out, "<th>{}</th>", escape(c));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    tenants.sort_by(|(a, na), (b, nb)| {
        rank(a, *na)
            .cmp(&rank(b, *nb))
            .then_with(|| a.name.to_lowercase().cmp(&b.name.to_lowercase()))
    });
    for (t, attention) in tenants {
        row(
            &mut out,
            t,
            attention,
            gdap.get(&*t.tenant_id),
            &collectors,
            now,
        );
    }
    let _ = write!(
        out,
        "</tbody></table>\n<script>{SCRIPT}</script>\n</body></html>\n"
    );
    out
}

fn cards(out: &mut String, s: &Snapshot, r: &RefreshState, now: f64, up: usize, down: usize) {
    let card = |out: &mut String, title: &str, value: String, class: &str, note: String| {
        let _ = writeln!(
            out,
            "<div class=\"card\">{title}<b class=\"{class}\">{value}</b>{note}</div>"
        );
    };
    match r.expiry {
        Some(exp) => {
            let days = (exp - now) / DAY;
            let class = if days < 3.0 {
                "bad"
            } else if days < 14.0 {
                "warn"
            } else {
                "ok"
            };
            card(
                out,
                "Refresh token expires",
                format!("{:.0} days", days),
                class,
                escape(&date(exp)),
            );
        }
        None => card(
            out,
            "Refresh token expires",
            "unknown".into(),
            "warn",
            "not redeemed yet".into(),
        ),
    }
    match r.valid {
        Some(true) => card(out, "Refresh token", "valid".into(), "ok", String::new()),
        Some(false) => card(
            out,
            "Refresh token",
            "REFUSED".into(),
            "bad",
            "run <code>tenantwatch consent</code>".into(),
        ),
        None => card(
            out,
            "Refresh token",
            "not tried yet".into(),
            "warn",
            String::new(),
        ),
    }
    match r.last_rotation {
        Some(ts) => card(
            out,
            "Last rotation",
            relative(ts, now),
            "ok",
            escape(&date(ts)),
        ),
        None => card(
            out,
            "Last rotation",
            "none by this process".into(),
            "",
            String::new(),
        ),
    }
    if r.mfa == Some(false) {
        card(
            out,
            "Sign-in MFA",
            "NONE".into(),
            "bad",
            "Partner Center refuses it: re-run <code>tenantwatch consent</code> and complete MFA"
                .into(),
        );
    }
    let tenants_value = if s.ready {
        format!("{up} up, {down} down")
    } else {
        "first collection running…".into()
    };
    card(
        out,
        "Tenants",
        tenants_value,
        if down > 0 { "bad" } else { "ok" },
        format!("{} in scope", s.discovered),
    );
    out.push_str("</div>\n");
}

fn board(out: &mut String, items: &[Item], ready: bool) {
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

fn row(
    out: &mut String,
    t: &TenantStatus,
    attention: usize,
    gdap: Option<&(f64, bool)>,
    collectors: &[&'static str],
    now: f64,
) {
    let id = escape(&t.tenant_id);
    let name = escape(&t.name);
    let domain = escape(&t.domain);
    let _ = write!(
        out,
        "<tr data-tenant=\"{lid}\" data-name=\"{lname}\" data-domain=\"{ldomain}\" data-state=\"{state}\" data-attention=\"{attention}\"><td>{name}</td><td>{domain}</td><td><code>{id}</code></td><td class=\"{sc}\">{state}</td><td data-v=\"{attention}\">{attention}</td><td class=\"bad\">{err}</td>",
        lid = id.to_lowercase(),
        lname = escape(&t.name.to_lowercase()),
        ldomain = escape(&t.domain.to_lowercase()),
        sc = if t.up { "ok" } else { "bad" },
        state = if t.up { "up" } else { "down" },
        err = t.token_error.map(|e| e.as_str()).unwrap_or(""),
    );
    match gdap {
        Some((end, auto)) => {
            let soon = end - now < 30.0 * DAY && !auto;
            let _ = write!(
                out,
                "<td class=\"{}\" data-v=\"{end:.0}\">{}{}</td>",
                if soon { "bad" } else { "" },
                relative(*end, now),
                if *auto { " (auto-extends)" } else { "" }
            );
        }
        None => out.push_str("<td data-v=\"\"></td>"),
    }
    for c in collectors {
        match t
            .collectors
            .iter()
            .find(|(name, _)| name == c)
            .map(|(_, s)| s)
        {
            Some(st) => {
                let when = st
                    .last_success
                    .map(|ts| relative(ts, now))
                    .unwrap_or_else(|| "never".into());
                let _ = write!(
                    out,
                    "<td class=\"{}\" data-v=\"{}\">{}</td>",
                    if st.ok { "" } else { "bad" },
                    st.last_success
                        .map(|ts| format!("{:.0}", now - ts))
                        .unwrap_or_default(),
                    if st.ok {
                        when
                    } else {
                        format!("failed; last ok {when}")
                    }
                );
            }
            None => out.push_str("<td data-v=\"\"></td>"),
        }
    }
    out.push_str("</tr>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CollectorStatus, GdapRelationship};
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
            signals: Vec::new(),
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
        let html = render_at(&s, &r, NOW);
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
        let html = render_at(&s, &r, NOW);
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
        let html = render_at(&s, &RefreshState::default(), NOW);
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
        let html = render_at(&s, &r, NOW);
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
        ];
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
        let html = render_at(&s, &RefreshState::default(), NOW);
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
        let html = render_at(&s, &RefreshState::default(), NOW);
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
        let html = render_at(&Snapshot::default(), &RefreshState::default(), NOW);
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
}
