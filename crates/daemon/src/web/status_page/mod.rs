//! The status page at `/`: the MSP's attention board, server-rendered from
//! the same snapshot and refresh-token state the metrics come from. It shows
//! what needs a person, most urgent first (partner-wide trouble, then each
//! tenant's), a 90-day timeline of everything that ends, and a tenant table
//! that a small inline script filters, sorts and reloads; the
//! [`content_security_policy`] it is served with allows that script and
//! style by hash and nothing from anywhere else. Every text from outside is
//! escaped. It shows no secret: nothing it reads holds one.
//!
//! Here: the page, its cards, the tenant table and the group links;
//! `board.rs` what needs a person and its advice, `timeline.rs` the SVG of
//! deadlines, `assets.rs` the style, the script and the policy naming them.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::metrics::RefreshState;
use tenantwatch_common::time::unix_now;

use crate::model::{Snapshot, TenantStatus};

mod assets;
mod board;
mod timeline;

pub use assets::content_security_policy;
use assets::{SCRIPT, STYLE};
use board::{board, gdap_access, gdap_end, partner_items, partner_wide_token_errors, tenant_items};
use timeline::timeline;

const DAY: f64 = 86_400.0;

/// How far ahead the timeline looks.
const HORIZON_DAYS: f64 = 90.0;

/// The board lists at most this many items; the table's "needs attention"
/// filter shows every tenant behind the rest.
const BOARD_LIMIT: usize = 200;

/// Seconds between reloads while auto-refresh is on.
const REFRESH_SECS: u32 = 30;

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

/// Renders one partner's page; `partners` names every partner, for links
/// between their pages when there are several.
pub fn render(s: &Snapshot, r: &RefreshState, partners: &[String]) -> String {
    render_at(s, r, partners, unix_now())
}

/// The page of a daemon watching several partners: each partner's tenants,
/// how many are up, and its refresh token, linking to its own page.
pub fn render_overview(all: &[(std::sync::Arc<Snapshot>, RefreshState)]) -> String {
    overview_at(all, unix_now())
}

fn overview_at(all: &[(std::sync::Arc<Snapshot>, RefreshState)], now: f64) -> String {
    let mut out = String::with_capacity(8 * 1024);
    head(&mut out, now);
    out.push_str("<h2>Partners</h2>\n<table id=\"partners\"><thead><tr><th>partner</th><th>tenants</th><th>up</th><th>down</th><th>refresh token</th><th>expires</th><th>state</th></tr></thead>\n<tbody>\n");
    for (s, r) in all {
        let up = s.tenants.iter().filter(|t| t.up).count();
        let down = s.tenants.len() - up;
        let (token, tc) = match r.valid {
            Some(true) => ("valid", "ok"),
            Some(false) => ("refused", "bad"),
            None => ("unknown", ""),
        };
        let href: String = url::form_urlencoded::byte_serialize(s.partner.as_bytes()).collect();
        let _ = writeln!(
            out,
            "<tr data-partner=\"{name}\"><td><a href=\"/?partner={href}\">{name}</a></td><td>{n}</td><td class=\"ok\">{up}</td><td class=\"{dc}\">{down}</td><td class=\"{tc}\">{token}</td><td>{expires}</td><td>{state}</td></tr>",
            name = escape(&s.partner),
            href = escape(&href),
            n = s.tenants.len(),
            dc = if down > 0 { "bad" } else { "" },
            expires = r.expiry.map(|e| relative(e, now)).unwrap_or_default(),
            state = if s.ready { "ready" } else if s.discovery.done { "first collection in progress" } else { "discovering tenants" },
        );
    }
    out.push_str("</tbody></table>\n</body></html>\n");
    out
}

/// The document head, title and the links every page starts with.
fn head(out: &mut String, now: f64) {
    let _ = write!(
        out,
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tenantwatch</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{STYLE}</style></head><body>
<h1>tenantwatch <small>{version}</small></h1>
<p><a href="/metrics">/metrics</a> · <a href="/healthz">/healthz</a> · <a href="/readyz">/readyz</a> · generated {generated}</p>
"#,
        version = env!("CARGO_PKG_VERSION"),
        generated = escape(&date(now)),
    );
}

/// Links to every partner's page, this one's in bold; none for one partner.
fn partner_links(out: &mut String, current: &str, partners: &[String]) {
    if partners.len() < 2 {
        return;
    }
    out.push_str("<p id=\"partner-links\">Partners: <a href=\"/\">all</a>");
    for p in partners {
        let href: String = url::form_urlencoded::byte_serialize(p.as_bytes()).collect();
        if p == current {
            let _ = write!(out, " · <b>{}</b>", escape(p));
        } else {
            let _ = write!(
                out,
                " · <a href=\"/?partner={}\">{}</a>",
                escape(&href),
                escape(p)
            );
        }
    }
    out.push_str("</p>\n");
}

fn render_at(s: &Snapshot, r: &RefreshState, partners: &[String], now: f64) -> String {
    let mut out = String::with_capacity(32 * 1024 + s.tenants.len() * 700);
    let up = s.tenants.iter().filter(|t| t.up).count();
    let down = s.tenants.len() - up;
    head(&mut out, now);
    partner_links(&mut out, &s.partner, partners);
    if partners.len() > 1 {
        let _ = writeln!(out, "<h2>Partner {}</h2>", escape(&s.partner));
    }
    out.push_str("<div class=\"cards\">\n");
    cards(&mut out, s, r, now, up, down);

    let gdap = gdap_end(s);
    let access = gdap_access(s);
    let mut items = Vec::new();
    partner_items(s, r, now, &mut items);
    partner_wide_token_errors(s, &mut items);
    let mut tenants: Vec<(&TenantStatus, usize)> = s
        .tenants
        .iter()
        .map(|t| {
            let n = tenant_items(
                t,
                gdap.get(&*t.tenant_id),
                access.get(&*t.tenant_id),
                now,
                &mut items,
            );
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
    out.push_str("<h2>Tenants</h2>\n");
    group_links(&mut out, s, partners);
    let _ = write!(
        out,
        "<div class=\"controls\"><input id=\"filter\" type=\"search\" placeholder=\"Filter by name, domain or tenant id\" aria-label=\"filter tenants\" autocomplete=\"off\">\
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

/// Links to the page of each `[[tenants.groups]]` group (`/?group=NAME`),
/// with how many tenants each holds; nothing when no group is configured.
fn group_links(out: &mut String, s: &Snapshot, partners: &[String]) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for g in s.groups.values() {
        *counts.entry(g.as_str()).or_default() += 1;
    }
    if counts.keys().all(|g| *g == "none") {
        return;
    }
    // On a partner's own page (several partners), the group links stay on it.
    let partner = match partners {
        [] | [_] => String::new(),
        _ => {
            let p: String = url::form_urlencoded::byte_serialize(s.partner.as_bytes()).collect();
            format!("partner={p}&")
        }
    };
    let _ = write!(
        out,
        "<p id=\"groups\">Tenant groups: <a href=\"/{}\">all</a>",
        escape(format!("?{partner}").trim_end_matches(['?', '&']))
    );
    for (g, n) in counts {
        let href: String = url::form_urlencoded::byte_serialize(g.as_bytes()).collect();
        let _ = write!(
            out,
            " · <a href=\"/?{}group={}\">{}</a> ({n})",
            escape(&partner),
            escape(&href),
            escape(g)
        );
    }
    out.push_str("</p>\n");
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
mod tests;
