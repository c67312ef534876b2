//! The partner's granular delegated admin (GDAP) relationships
//! (learn.microsoft.com/graph/api/resources/delegatedadminrelationship).
//!
//! Relationships are stored as created; [`Relationship::at`] gives their
//! state at a later sim time, as the service would: an active relationship
//! past its end auto-extends by 180 days when `autoExtendDuration` is
//! `P180D`, and otherwise becomes `expired`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::GdapRole;
use crate::world::{guid, stream, Tenant};

const DAY: i64 = 86_400;

/// Microsoft Entra built-in role definition ids a partner typically asks
/// for (never Global Administrator, which forbids auto-extension).
const ROLES: &[&str] = &[
    "f2ef992c-3afb-46b9-b7cf-a126ee74c451", // Global Reader
    "729827e3-9c14-49f7-bb1b-9608f156bbb8", // Helpdesk Administrator
    "fe930be7-5e62-47db-91af-98c3a49a38b1", // User Administrator
    "29232cdf-9323-42fd-ade2-1d097af3e4de", // Exchange Administrator
    "f023fd81-a637-4b56-95fd-791ac0226033", // Service Support Administrator
    "4d6ac14f-3453-41d0-bef9-a3e0c569773a", // License Administrator
    "3a2c62db-5318-420d-8d74-23affee5d9d5", // Intune Administrator
    "5d6b6bb7-de71-4623-b4af-96380a352509", // Security Reader
];

/// Days `P180D` adds each time an active relationship reaches its end.
pub(crate) const AUTO_EXTEND_DAYS: i64 = 180;

/// One relationship as created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Relationship {
    /// `{guid}-{partner tenant id}`, the shape of real ids.
    pub id: String,
    pub display_name: String,
    pub customer_id: String,
    pub customer_name: String,
    pub roles: Vec<&'static str>,
    /// `duration` in days (`P730D`).
    pub duration_days: i64,
    pub created: i64,
    pub activated: i64,
    /// `endDateTime` before any auto-extension; for a terminated
    /// relationship, when it was terminated.
    pub end: i64,
    /// `autoExtendDuration` is `P180D` (else `PT0S`).
    pub auto_extend: bool,
    /// Ended early by the customer or partner.
    pub terminated: bool,
    /// The `@odata.etag` value.
    pub etag: String,
}

/// A relationship's state at some sim time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Current {
    /// `active`, `expired` or `terminated`.
    pub status: &'static str,
    /// `endDateTime`, auto-extensions applied.
    pub end: i64,
    /// `lastModifiedDateTime`.
    pub last_modified: i64,
}

impl Relationship {
    /// The relationship as the service reports it at `now`.
    pub fn at(&self, now: i64) -> Current {
        if self.terminated {
            return Current {
                status: "terminated",
                end: self.end,
                last_modified: self.end,
            };
        }
        if self.end > now {
            return Current {
                status: "active",
                end: self.end,
                last_modified: self.activated,
            };
        }
        if self.auto_extend {
            let step = AUTO_EXTEND_DAYS * DAY;
            let periods = (now - self.end) / step + 1;
            let end = self.end + periods * step;
            return Current {
                status: "active",
                end,
                last_modified: end - step,
            };
        }
        Current {
            status: "expired",
            end: self.end,
            last_modified: self.end,
        }
    }
}

/// What to build: how long, when it ends relative to `start`, and how.
struct Spec {
    label: &'static str,
    name_suffix: &'static str,
    duration_days: i64,
    end: i64,
    auto_extend: bool,
    terminated: bool,
}

fn build(
    seed: u64,
    partner: &str,
    customer_id: &str,
    customer_name: &str,
    s: Spec,
) -> Relationship {
    let key = format!("gdap/{customer_id}/{}", s.label);
    let h = stream(seed, &key);
    let first = (h % ROLES.len() as u64) as usize;
    let roles = (0..2 + (h >> 8) as usize % 3)
        .map(|k| ROLES[(first + k) % ROLES.len()])
        .collect();
    let created = if s.terminated {
        // Terminated somewhere between one and ten months after creation.
        s.end - (30 + (h >> 16) as i64 % 270) * DAY
    } else {
        s.end - s.duration_days * DAY
    };
    let etag_inner = format!("'\"{}\"'", &guid(seed, &format!("{key}/etag"))[..36]);
    let mut display_name = format!("{customer_name} {}", s.name_suffix);
    // Graph limits displayName to 50 characters.
    display_name.truncate(50);
    Relationship {
        id: format!("{}-{partner}", guid(seed, &key)),
        display_name,
        customer_id: customer_id.to_string(),
        customer_name: customer_name.to_string(),
        roles,
        duration_days: s.duration_days,
        created,
        activated: created + 120 + (h >> 24) as i64 % 3600,
        end: s.end,
        auto_extend: s.auto_extend,
        terminated: s.terminated,
        etag: format!("W/\"{}\"", STANDARD.encode(etag_inner)),
    }
}

/// The relationships of one tenant, as of `start`.
pub(crate) fn for_customer(
    seed: u64,
    partner: &str,
    t: &Tenant,
    role: GdapRole,
    start: i64,
) -> Vec<Relationship> {
    if role.legacy_dap {
        return Vec::new();
    }
    let h = stream(seed, &format!("gdap/{}", t.id));
    let secs = (h % DAY as u64) as i64;
    let mut out = Vec::new();
    if role.extra_terminated {
        out.push(build(
            seed,
            partner,
            &t.id,
            &t.name,
            Spec {
                label: "terminated",
                name_suffix: "admin (old)",
                duration_days: 730,
                end: start - (60 + (h >> 8) as i64 % 300) * DAY - secs,
                auto_extend: false,
                terminated: true,
            },
        ));
    }
    if role.extra_expired {
        out.push(build(
            seed,
            partner,
            &t.id,
            &t.name,
            Spec {
                label: "expired",
                name_suffix: "onboarding",
                duration_days: 180,
                end: start - (10 + (h >> 20) as i64 % 200) * DAY - secs,
                auto_extend: false,
                terminated: false,
            },
        ));
    }
    let (end, auto_extend) = if role.ends_soon {
        // Twelve days and a few hours: soon enough to alert on (30 days),
        // late enough that it is a warning, not yet critical (7 days).
        (start + 12 * DAY + secs / 4, false)
    } else {
        (
            start + (60 + (h >> 40) as i64 % 600) * DAY + secs,
            (h >> 56) % 3 != 0,
        )
    };
    out.push(build(
        seed,
        partner,
        &t.id,
        &t.name,
        Spec {
            label: "main",
            name_suffix: "admin",
            duration_days: 730,
            end,
            auto_extend,
            terminated: false,
        },
    ));
    out
}

/// A relationship with a former customer, terminated long ago: its tenant
/// is nowhere else in the simulation and must never be monitored.
pub(crate) fn former_customer(seed: u64, partner: &str, start: i64) -> Relationship {
    build(
        seed,
        partner,
        &guid(seed, "tenant/former/1"),
        "Margie's Travel",
        Spec {
            label: "former",
            name_suffix: "admin",
            duration_days: 730,
            end: start - 400 * DAY,
            auto_extend: false,
            terminated: true,
        },
    )
}

/// `P730D`-style ISO 8601 duration of whole days.
pub(crate) fn days(d: i64) -> String {
    format!("P{d}D")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::World;

    const START: i64 = 1_800_000_000;

    #[test]
    fn states_at_start() {
        let w = World::generate(2, 12);
        let t = &w.customers[9]; // customer 10: ends soon and an expired one
        let role = super::super::Role::of_customer(10, 12).gdap;
        assert!(role.ends_soon && role.extra_expired);
        let rels = for_customer(2, &w.partner.id, t, role, START);
        let states: Vec<_> = rels.iter().map(|r| r.at(START).status).collect();
        assert_eq!(states, ["expired", "active"]);
        let main = rels.last().unwrap();
        assert!(!main.auto_extend);
        assert!(main.end - START < 30 * DAY && main.end > START);
        assert!(main.id.ends_with(&w.partner.id));
        assert!(main.etag.starts_with("W/\""));
        assert_eq!(main.created, main.end - 730 * DAY);
    }

    #[test]
    fn legacy_dap_has_none_and_terminated_stays_terminated() {
        let w = World::generate(2, 12);
        let legacy = super::super::Role::of_customer(2, 12).gdap;
        assert!(for_customer(2, &w.partner.id, &w.customers[1], legacy, START).is_empty());
        let f = former_customer(2, &w.partner.id, START);
        assert_eq!(f.at(START + 1000 * DAY).status, "terminated");
    }

    #[test]
    fn end_passes_auto_extend_or_expire() {
        let w = World::generate(2, 3);
        let mut r = for_customer(
            2,
            &w.partner.id,
            &w.customers[0],
            GdapRole::default(),
            START,
        )
        .pop()
        .unwrap();
        r.auto_extend = true;
        let later = r.end + 10 * DAY;
        let c = r.at(later);
        assert_eq!(c.status, "active");
        assert_eq!(c.end, r.end + AUTO_EXTEND_DAYS * DAY);
        r.auto_extend = false;
        assert_eq!(r.at(later).status, "expired");
        assert_eq!(r.at(later).end, r.end);
        assert_eq!(days(730), "P730D");
    }
}
