//! The partner's granular delegated admin (GDAP) relationships
//! (learn.microsoft.com/graph/api/resources/delegatedadminrelationship).
//!
//! Relationships are stored as created; [`Relationship::at`] gives their
//! state at a later sim time, as the service would: an active relationship
//! past its end auto-extends by 180 days when `autoExtendDuration` is
//! `P180D`, and otherwise becomes `expired`.
//!
//! An active relationship grants nothing by itself: the partner assigns its
//! roles to security groups of its own tenant in access assignments
//! (learn.microsoft.com/graph/api/resources/delegatedadminaccessassignment,
//! graph/gdap-access-assignments.md). Each active relationship here has
//! some, except the cases [`super::GdapRole`] picks out. A relationship
//! holding Global Administrator never auto-extends (Partner Center: "Don't
//! autoextend GDAP with Global Administrator").

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::GdapRole;
use crate::world::{guid, stream, Partner, Tenant};

const DAY: i64 = 86_400;

/// Microsoft Entra built-in role template ids a partner typically asks for,
/// with their names (entra-docs `permissions-reference.md`).
const ROLES: &[(&str, &str)] = &[
    ("f2ef992c-3afb-46b9-b7cf-a126ee74c451", "Global Reader"),
    (
        "729827e3-9c14-49f7-bb1b-9608f156bbb8",
        "Helpdesk Administrator",
    ),
    ("fe930be7-5e62-47db-91af-98c3a49a38b1", "User Administrator"),
    (
        "29232cdf-9323-42fd-ade2-1d097af3e4de",
        "Exchange Administrator",
    ),
    (
        "f023fd81-a637-4b56-95fd-791ac0226033",
        "Service Support Administrator",
    ),
    (
        "4d6ac14f-3453-41d0-bef9-a3e0c569773a",
        "License Administrator",
    ),
    (
        "3a2c62db-5318-420d-8d74-23affee5d9d5",
        "Intune Administrator",
    ),
    ("5d6b6bb7-de71-4623-b4af-96380a352509", "Security Reader"),
];

/// The Global Administrator role template id.
pub(crate) const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";

/// The name of a role template id the sim hands out, if it is one of them.
pub(crate) fn role_name(id: &str) -> Option<&'static str> {
    if id == GLOBAL_ADMINISTRATOR {
        return Some("Global Administrator");
    }
    ROLES.iter().find(|(i, _)| *i == id).map(|(_, n)| *n)
}

/// Days `P180D` adds each time an active relationship reaches its end.
pub(crate) const AUTO_EXTEND_DAYS: i64 = 180;

/// One relationship as created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Relationship {
    /// `{guid}-{partner tenant id}`, the shape of real ids.
    pub id: String,
    /// Index of the partner it is with (the id names its tenant too).
    pub partner: usize,
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
    /// Its access assignments (only active relationships have any).
    pub assignments: Vec<Assignment>,
}

/// One access assignment: roles of the relationship given to a security
/// group of the partner's tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Assignment {
    /// A plain GUID.
    pub id: String,
    /// `accessContainer.accessContainerId`: the security group.
    pub group_id: String,
    /// `accessDetails.unifiedRoles[].roleDefinitionId`, a subset of the
    /// relationship's roles.
    pub roles: Vec<&'static str>,
    /// `pending` or `active`.
    pub status: &'static str,
    pub created: i64,
    pub last_modified: i64,
    /// The `@odata.etag` value.
    pub etag: String,
}

impl Relationship {
    /// True when its roles include Global Administrator.
    pub fn has_global_admin(&self) -> bool {
        self.roles.contains(&GLOBAL_ADMINISTRATOR)
    }

    /// Makes it one that needs nobody (`--healthy`): no Global
    /// Administrator, so it auto-extends, and every role assigned.
    pub fn heal(&mut self) {
        self.roles.retain(|r| *r != GLOBAL_ADMINISTRATOR);
        self.auto_extend = true;
        for a in &mut self.assignments {
            a.roles.retain(|r| *r != GLOBAL_ADMINISTRATOR);
            a.status = "active";
        }
        self.assignments.retain(|a| !a.roles.is_empty());
        if self.assignments.is_empty() {
            self.assignments =
                assignments(0, &self.id, &self.roles, Access::Active, self.activated);
        }
    }
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
        // Microsoft does not auto-extend a relationship with Global
        // Administrator, whatever autoExtendDuration says.
        if self.auto_extend && !self.has_global_admin() {
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
    /// Add Global Administrator to the roles.
    global_admin: bool,
    /// What access assignments to make.
    access: Access,
}

/// The access assignments a relationship gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// None at all.
    None,
    /// One assignment of every role, still `pending`.
    Pending,
    /// The roles split over two security groups, both `active`.
    Active,
}

/// An etag of the shape Graph sends, from `key`.
fn etag(seed: u64, key: &str) -> String {
    let inner = format!("'\"{}\"'", &guid(seed, &format!("{key}/etag"))[..36]);
    format!("W/\"{}\"", STANDARD.encode(inner))
}

fn assignments(
    seed: u64,
    key: &str,
    roles: &[&'static str],
    access: Access,
    activated: i64,
) -> Vec<Assignment> {
    let make = |n: usize, roles: &[&'static str], status: &'static str| {
        let key = format!("{key}/access/{n}");
        let h = stream(seed, &key);
        let created = activated + 600 + (h % 86_400) as i64;
        Assignment {
            id: guid(seed, &key),
            group_id: guid(seed, &format!("{key}/group")),
            roles: roles.to_vec(),
            status,
            created,
            last_modified: if status == "active" {
                created + 60
            } else {
                created
            },
            etag: etag(seed, &key),
        }
    };
    match access {
        Access::None => Vec::new(),
        Access::Pending => vec![make(0, roles, "pending")],
        Access::Active => {
            let half = roles.len().div_ceil(2);
            let (a, b) = roles.split_at(half);
            let mut out = vec![make(0, a, "active")];
            if !b.is_empty() {
                out.push(make(1, b, "active"));
            }
            out
        }
    }
}

/// The label a relationship's ids and dates are drawn from: partner 0 keeps
/// the labels of a single-partner simulator, the others add their index so
/// two partners' relationships with a shared customer differ.
fn label(partner: &Partner, rest: &str) -> String {
    match partner.index {
        0 => format!("gdap/{rest}"),
        k => format!("gdap/{k}/{rest}"),
    }
}

fn build(
    seed: u64,
    partner: &Partner,
    customer_id: &str,
    customer_name: &str,
    s: Spec,
) -> Relationship {
    let key = label(partner, &format!("{customer_id}/{}", s.label));
    let h = stream(seed, &key);
    let first = (h % ROLES.len() as u64) as usize;
    let mut roles: Vec<&'static str> = (0..2 + (h >> 8) as usize % 3)
        .map(|k| ROLES[(first + k) % ROLES.len()].0)
        .collect();
    if s.global_admin {
        roles.push(GLOBAL_ADMINISTRATOR);
    }
    let created = if s.terminated {
        // Terminated somewhere between one and ten months after creation.
        s.end - (30 + (h >> 16) as i64 % 270) * DAY
    } else {
        s.end - s.duration_days * DAY
    };
    let mut display_name = format!("{customer_name} {}", s.name_suffix);
    // Graph limits displayName to 50 characters.
    display_name.truncate(50);
    let activated = created + 120 + (h >> 24) as i64 % 3600;
    Relationship {
        id: format!("{}-{}", guid(seed, &key), partner.tenant.id),
        partner: partner.index,
        display_name,
        customer_id: customer_id.to_string(),
        customer_name: customer_name.to_string(),
        duration_days: s.duration_days,
        created,
        activated,
        end: s.end,
        auto_extend: s.auto_extend,
        terminated: s.terminated,
        etag: etag(seed, &key),
        assignments: assignments(seed, &key, &roles, s.access, activated),
        roles,
    }
}

/// The relationships of one tenant, as of `start`.
pub(crate) fn for_customer(
    seed: u64,
    partner: &Partner,
    t: &Tenant,
    role: GdapRole,
    start: i64,
) -> Vec<Relationship> {
    if role.legacy_dap {
        return Vec::new();
    }
    let h = stream(seed, &label(partner, &t.id));
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
                global_admin: false,
                access: Access::None,
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
                global_admin: false,
                access: Access::None,
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
            // Global Administrator cannot be auto-extended, so such a
            // relationship never asks for it.
            !role.global_admin && (h >> 56) % 3 != 0,
        )
    };
    let access = if role.no_access {
        Access::None
    } else if role.pending_access {
        Access::Pending
    } else {
        Access::Active
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
            global_admin: role.global_admin,
            access,
        },
    ));
    out
}

/// A relationship with a former customer, terminated long ago: its tenant
/// is nowhere else in the simulation and must never be monitored.
pub(crate) fn former_customer(seed: u64, partner: &Partner, start: i64) -> Relationship {
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
            global_admin: false,
            access: Access::None,
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
        let rels = for_customer(2, w.default_partner(), t, role, START);
        let states: Vec<_> = rels.iter().map(|r| r.at(START).status).collect();
        assert_eq!(states, ["expired", "active"]);
        let main = rels.last().unwrap();
        assert!(!main.auto_extend);
        assert!(main.end - START < 30 * DAY && main.end > START);
        assert!(main.id.ends_with(&w.default_partner().tenant.id));
        assert!(main.etag.starts_with("W/\""));
        assert_eq!(main.created, main.end - 730 * DAY);
    }

    #[test]
    fn legacy_dap_has_none_and_terminated_stays_terminated() {
        let w = World::generate(2, 12);
        let legacy = super::super::Role::of_customer(2, 12).gdap;
        assert!(for_customer(2, w.default_partner(), &w.customers[1], legacy, START).is_empty());
        let f = former_customer(2, w.default_partner(), START);
        assert_eq!(f.at(START + 1000 * DAY).status, "terminated");
    }

    #[test]
    fn end_passes_auto_extend_or_expire() {
        let w = World::generate(2, 3);
        let mut r = for_customer(
            2,
            w.default_partner(),
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
        // Global Administrator never auto-extends, even when asked.
        r.auto_extend = true;
        r.roles.push(GLOBAL_ADMINISTRATOR);
        assert_eq!(r.at(later).status, "expired");
    }

    #[test]
    fn access_assignments_by_role() {
        let w = World::generate(2, 3);
        let t = &w.customers[0];
        let main = |role: GdapRole| {
            for_customer(2, w.default_partner(), t, role, START)
                .pop()
                .unwrap()
        };
        let normal = main(GdapRole::default());
        assert!(!normal.assignments.is_empty());
        assert!(normal.assignments.iter().all(|a| a.status == "active"));
        let granted: Vec<_> = normal
            .assignments
            .iter()
            .flat_map(|a| a.roles.clone())
            .collect();
        assert_eq!(granted, normal.roles, "every role assigned once, in order");
        assert!(main(GdapRole {
            no_access: true,
            ..Default::default()
        })
        .assignments
        .is_empty());
        let pending = main(GdapRole {
            pending_access: true,
            ..Default::default()
        });
        assert_eq!(pending.assignments.len(), 1);
        assert_eq!(pending.assignments[0].status, "pending");
        let ga = main(GdapRole {
            global_admin: true,
            ..Default::default()
        });
        assert!(ga.has_global_admin() && !ga.auto_extend);
        assert_eq!(
            role_name(GLOBAL_ADMINISTRATOR),
            Some("Global Administrator")
        );
        assert!(ga.roles.iter().all(|r| role_name(r).is_some()));
    }
}
