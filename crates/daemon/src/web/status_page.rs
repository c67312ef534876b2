//! The status page at `/`: server-rendered HTML from the same snapshot and
//! refresh-token state the metrics come from. It shows no secret: nothing it
//! reads holds one.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::metrics::RefreshState;
use tenantwatch_common::time::unix_now;

use crate::model::{Snapshot, TenantStatus};

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
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

/// Trouble first: down with a token error, down, then up; each by name.
fn order(a: &TenantStatus, b: &TenantStatus) -> std::cmp::Ordering {
    let rank = |t: &TenantStatus| match (t.up, t.token_error.is_some()) {
        (false, true) => 0,
        (false, false) => 1,
        _ => 2,
    };
    rank(a)
        .cmp(&rank(b))
        .then_with(|| a.name.to_lowercase().cmp(&b.name.to_lowercase()))
}

/// Renders the page.
pub fn render(s: &Snapshot, r: &RefreshState) -> String {
    let now = unix_now();
    let mut out = String::with_capacity(16 * 1024 + s.tenants.len() * 512);
    let up = s.tenants.iter().filter(|t| t.up).count();
    let down = s.tenants.len() - up;
    let _ = write!(
        out,
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tenantwatch</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{{font-family:system-ui,sans-serif;margin:1.5em;color:#222}}
table{{border-collapse:collapse}}td,th{{padding:.25em .7em;text-align:left;border-bottom:1px solid #ddd;vertical-align:top}}
th{{background:#f3f3f3}}.bad{{color:#b00020;font-weight:600}}.warn{{color:#a15c00}}.ok{{color:#1b7f3b}}
.cards{{display:flex;gap:1em;flex-wrap:wrap;margin-bottom:1em}}.card{{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;min-width:12em}}
.card b{{display:block;font-size:1.3em}}code{{font-size:.85em}}
</style></head><body>
<h1>tenantwatch <small>{version}</small></h1>
<p><a href="/metrics">/metrics</a> · <a href="/healthz">/healthz</a> · <a href="/readyz">/readyz</a></p>
<div class="cards">
"#,
        version = env!("CARGO_PKG_VERSION"),
    );
    let card = |out: &mut String, title: &str, value: String, class: &str, note: String| {
        let _ = writeln!(
            out,
            "<div class=\"card\">{title}<b class=\"{class}\">{value}</b>{note}</div>"
        );
    };
    match r.expiry {
        Some(exp) => {
            let days = (exp - now) / 86400.0;
            let class = if days < 3.0 {
                "bad"
            } else if days < 14.0 {
                "warn"
            } else {
                "ok"
            };
            card(
                &mut out,
                "Refresh token expires",
                format!("{:.0} days", days),
                class,
                escape(&date(exp)),
            );
        }
        None => card(
            &mut out,
            "Refresh token expires",
            "unknown".into(),
            "warn",
            "not redeemed yet".into(),
        ),
    }
    match r.valid {
        Some(true) => card(
            &mut out,
            "Refresh token",
            "valid".into(),
            "ok",
            String::new(),
        ),
        Some(false) => card(
            &mut out,
            "Refresh token",
            "REFUSED".into(),
            "bad",
            "run <code>tenantwatch consent</code>".into(),
        ),
        None => card(
            &mut out,
            "Refresh token",
            "not tried yet".into(),
            "warn",
            String::new(),
        ),
    }
    match r.last_rotation {
        Some(ts) => card(
            &mut out,
            "Last rotation",
            relative(ts, now),
            "ok",
            escape(&date(ts)),
        ),
        None => card(
            &mut out,
            "Last rotation",
            "none by this process".into(),
            "",
            String::new(),
        ),
    }
    if r.store_up == Some(false) {
        card(
            &mut out,
            "Token store",
            "unreadable".into(),
            "bad",
            String::new(),
        );
    }
    if r.mfa == Some(false) {
        card(
            &mut out,
            "Sign-in MFA",
            "NONE".into(),
            "bad",
            "Partner Center refuses it: re-run <code>tenantwatch consent</code> and complete MFA"
                .into(),
        );
    }
    let tenants_class = if down > 0 { "bad" } else { "ok" };
    let tenants_value = if s.ready {
        format!("{up} up, {down} down")
    } else {
        "first collection running…".into()
    };
    card(
        &mut out,
        "Tenants",
        tenants_value,
        tenants_class,
        format!("{} in scope", s.discovered),
    );
    if s.discovery.done && !s.discovery.ok {
        card(
            &mut out,
            "Discovery",
            "failing".into(),
            "bad",
            String::new(),
        );
    }
    out.push_str("</div>\n");

    // Per-tenant collectors only (partner-scope ones have no per-tenant column).
    let collectors: Vec<&'static str> = s
        .tenants
        .iter()
        .flat_map(|t| t.collectors.iter().map(|(name, _)| *name))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let gdap = gdap_end(s);
    let _ = write!(
        out,
        "<table><thead><tr><th>name</th><th>domain</th><th>tenant id</th><th>state</th><th>token error</th><th>GDAP ends</th>"
    );
    for c in &collectors {
        let _ = write!(out, "<th>{}</th>", escape(c));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    let mut tenants: Vec<&TenantStatus> = s.tenants.iter().collect();
    tenants.sort_by(|a, b| order(a, b));
    for t in tenants {
        let _ = write!(
            out,
            "<tr data-tenant=\"{id}\"><td>{name}</td><td>{domain}</td><td><code>{id}</code></td><td class=\"{sc}\">{state}</td><td class=\"bad\">{err}</td>",
            id = escape(&t.tenant_id),
            name = escape(&t.name),
            domain = escape(&t.domain),
            sc = if t.up { "ok" } else { "bad" },
            state = if t.up { "up" } else { "down" },
            err = t.token_error.map(|e| e.as_str()).unwrap_or(""),
        );
        match gdap.get(&*t.tenant_id) {
            Some((end, auto)) => {
                let soon = end - now < 30.0 * 86400.0 && !auto;
                let _ = write!(
                    out,
                    "<td class=\"{}\">{}{}</td>",
                    if soon { "bad" } else { "" },
                    relative(*end, now),
                    if *auto { " (auto-extends)" } else { "" }
                );
            }
            None => out.push_str("<td></td>"),
        }
        for c in &collectors {
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
                        "<td class=\"{}\">{}</td>",
                        if st.ok { "" } else { "bad" },
                        if st.ok {
                            when
                        } else {
                            format!("failed; last ok {when}")
                        }
                    );
                }
                None => out.push_str("<td></td>"),
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ErrorClass;

    #[test]
    fn trouble_first_and_escaped() {
        let t = |id: &str, name: &str, up: bool, err: Option<ErrorClass>| TenantStatus {
            tenant_id: id.into(),
            name: name.into(),
            domain: "d".into(),
            up,
            token_error: err,
            collectors: Default::default(),
        };
        let s = Snapshot {
            tenants: vec![
                t("1", "Alpha", true, None),
                t("2", "<script>Beta", false, None),
                t("3", "Gamma", false, Some(ErrorClass::ConsentRequired)),
            ],
            ready: true,
            ..Default::default()
        };
        let html = render(&s, &RefreshState::default());
        let (g, b, a) = (
            html.find("Gamma").unwrap(),
            html.find("Beta").unwrap(),
            html.find("Alpha").unwrap(),
        );
        assert!(g < b && b < a, "order");
        assert!(html.contains("&lt;script&gt;Beta") && !html.contains("<script>"));
        assert!(html.contains("consent_required"));
        assert_eq!(relative(100.0, 100.0 + 3600.0), "60 min ago");
        assert_eq!(relative(100.0 + 3.0 * 86400.0, 100.0), "in 3 d");
    }
}
