//! The timeline: inline SVG of everything that ends in the next 90 days —
//! the refresh token, the SAM app's credentials, GDAP relationships,
//! subscriptions that end rather than renew — so the next deadline is seen.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::board::Severity;
use super::{date, escape, relative, DAY, HORIZON_DAYS};
use crate::metrics::RefreshState;
use crate::model::{Signal, Snapshot};

/// A deadline on the timeline. `label` is plain text (escaped when written).
pub(super) struct Deadline {
    row: usize,
    when: f64,
    label: String,
    severity: Option<Severity>,
}

/// Rows of the timeline, top to bottom.
pub(super) const TIMELINE_ROWS: [&str; 4] = [
    "Refresh token",
    "App credentials",
    "GDAP relationships",
    "Subscriptions",
];

pub(super) fn deadlines(s: &Snapshot, r: &RefreshState, now: f64) -> Vec<Deadline> {
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
    for t in &s.tenants {
        for sig in &t.signals {
            if let Signal::SubscriptionEnds {
                name,
                end: when,
                trial,
                ..
            } = sig
            {
                let left = when - now;
                out.push(Deadline {
                    row: 3,
                    when: *when,
                    label: format!(
                        "{} {name} of {} ends {} ({})",
                        if *trial { "Trial" } else { "Subscription" },
                        t.name,
                        relative(*when, now),
                        date(*when)
                    ),
                    severity: (left < if *trial { 7.0 } else { 30.0 } * DAY)
                        .then_some(Severity::Warning),
                });
            }
        }
    }
    out.retain(|d| d.when >= now && d.when <= end);
    out.sort_by(|a, b| a.when.total_cmp(&b.when));
    out
}

/// The timeline: inline SVG, one mark per deadline with a `<title>`
/// tooltip, the nearest labelled.
pub(super) fn timeline(out: &mut String, s: &Snapshot, r: &RefreshState, now: f64) {
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
    out.push_str("</svg>\n<p><small>Subscriptions: Microsoft 365 trials, and Partner Center subscriptions that do not auto-renew (one that renews does not end).</small></p>\n");
}
