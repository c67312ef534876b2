//! A GDAP (granular delegated admin privileges) relationship with a customer,
//! its access assignments, and the names of the Entra roles it can hold.
//!
//! <https://learn.microsoft.com/graph/api/resources/delegatedadminrelationship>,
//! <https://learn.microsoft.com/graph/api/resources/delegatedadminaccessassignment>

/// One GDAP relationship.
#[derive(Debug, Clone, PartialEq)]
pub struct GdapRelationship {
    /// Relationship id.
    pub id: String,
    /// Customer tenant.
    pub tenant_id: String,
    /// Customer name.
    pub customer_name: String,
    /// `active`, `approvalPending`, `expired`, …
    pub status: String,
    /// Unix seconds of `endDateTime`.
    pub end: Option<f64>,
    /// `autoExtendDuration` is not zero.
    pub auto_extend: bool,
    /// `accessDetails.unifiedRoles[].roleDefinitionId`, lower-case: the
    /// roles the relationship holds (granted to nobody until assigned).
    pub roles: Vec<String>,
    /// Its access assignments; `None` when not read (the relationship is
    /// not active, or reading them failed).
    pub access: Option<Vec<AccessAssignment>>,
}

/// One access assignment: some of the relationship's roles given to a
/// security group of the partner's tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessAssignment {
    /// `pending`, `active`, `deleting`, `deleted`, `error`, …
    pub status: String,
    /// Role definition ids, lower-case.
    pub roles: Vec<String>,
}

impl GdapRelationship {
    /// True when the relationship holds Global Administrator, which
    /// Microsoft never auto-extends.
    pub fn global_admin(&self) -> bool {
        self.roles.iter().any(|r| r == GLOBAL_ADMINISTRATOR)
    }

    /// Roles that actually reach the customer: held by the relationship and
    /// given to a group by an `active` assignment, while the relationship is
    /// `active`. Empty when the assignments are unknown.
    pub fn granted_roles(&self) -> impl Iterator<Item = &str> {
        let live = self.status == "active";
        self.access
            .iter()
            .flatten()
            .filter(move |a| live && a.status == "active")
            .flat_map(|a| a.roles.iter())
            .filter(|r| self.roles.contains(r))
            .map(String::as_str)
    }
}

/// Whether one tenant grants one of `tenants.gdap_required_roles`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequiredRole {
    /// Customer tenant.
    pub tenant_id: String,
    /// The `role` label: its name where known, else the id.
    pub role: String,
    /// No active relationship with an active access assignment covers it.
    pub missing: bool,
}

/// The Global Administrator role template id.
pub const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";

/// Built-in Microsoft Entra roles a partner commonly holds through GDAP:
/// template id and name, from the "All roles" table of
/// <https://learn.microsoft.com/entra/identity/role-based-access-control/permissions-reference>
/// (MicrosoftDocs/entra-docs `permissions-reference.md` @ 00fe95d6). Ids not
/// listed here are shown as the id itself.
pub const WELL_KNOWN_ROLES: &[(&str, &str)] = &[
    (
        "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
        "Application Administrator",
    ),
    (
        "c4e39bd9-1100-46d3-8c65-fb160da0071f",
        "Authentication Administrator",
    ),
    (
        "b0f54661-2d74-4c50-afa3-1ec803f12efe",
        "Billing Administrator",
    ),
    (
        "158c047a-c907-4556-b7ef-446551a6b5f7",
        "Cloud Application Administrator",
    ),
    (
        "17315797-102d-40b4-93e0-432062caca18",
        "Compliance Administrator",
    ),
    (
        "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9",
        "Conditional Access Administrator",
    ),
    ("88d8e3e3-8f55-4a1e-953a-9b9898b8876b", "Directory Readers"),
    ("9360feb5-f418-4baa-8175-e2a00bac4301", "Directory Writers"),
    (
        "44367163-eba1-44c3-98af-f5787879f96a",
        "Dynamics 365 Administrator",
    ),
    (
        "29232cdf-9323-42fd-ade2-1d097af3e4de",
        "Exchange Administrator",
    ),
    (GLOBAL_ADMINISTRATOR, "Global Administrator"),
    ("f2ef992c-3afb-46b9-b7cf-a126ee74c451", "Global Reader"),
    (
        "fdd7a751-b60b-444a-984c-02652fe8fa1c",
        "Groups Administrator",
    ),
    (
        "729827e3-9c14-49f7-bb1b-9608f156bbb8",
        "Helpdesk Administrator",
    ),
    (
        "3a2c62db-5318-420d-8d74-23affee5d9d5",
        "Intune Administrator",
    ),
    (
        "4d6ac14f-3453-41d0-bef9-a3e0c569773a",
        "License Administrator",
    ),
    (
        "966707d0-3269-4727-9be2-8c3a10f19b9d",
        "Password Administrator",
    ),
    (
        "11648597-926c-4cf3-9c36-bcebb0ba8dcc",
        "Power Platform Administrator",
    ),
    (
        "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",
        "Privileged Authentication Administrator",
    ),
    (
        "e8611ab8-c189-46e8-94e1-60213ab1f814",
        "Privileged Role Administrator",
    ),
    ("4a5d8f65-41da-4de4-8968-e035b65339cf", "Reports Reader"),
    (
        "194ae4cb-b126-40b2-bd5b-6091b380977d",
        "Security Administrator",
    ),
    ("5f2222b1-57c3-48ba-8ad5-d4759f1fde6f", "Security Operator"),
    ("5d6b6bb7-de71-4623-b4af-96380a352509", "Security Reader"),
    (
        "f023fd81-a637-4b56-95fd-791ac0226033",
        "Service Support Administrator",
    ),
    (
        "f28a1f50-f6e7-4571-818b-6a12f2af6b6c",
        "SharePoint Administrator",
    ),
    (
        "69091246-20e8-4a56-aa4d-066075b2a7a8",
        "Teams Administrator",
    ),
    ("fe930be7-5e62-47db-91af-98c3a49a38b1", "User Administrator"),
    (
        "11451d60-acb2-45eb-a7d6-43d0f0125c13",
        "Windows 365 Administrator",
    ),
];

/// The `role` label of a role definition id: its name where known, else the id.
pub fn role_label(id: &str) -> &str {
    WELL_KNOWN_ROLES
        .iter()
        .find(|(i, _)| i.eq_ignore_ascii_case(id))
        .map_or(id, |(_, name)| name)
}

/// The role definition id (lower-case) of a well-known role name (any case)
/// or of a GUID given as is; `None` for anything else.
pub fn role_id(name_or_id: &str) -> Option<String> {
    let s = name_or_id.trim();
    if let Some((id, _)) = WELL_KNOWN_ROLES
        .iter()
        .find(|(_, name)| name.eq_ignore_ascii_case(s))
    {
        return Some((*id).to_string());
    }
    crate::model::is_tenant_id(&s.to_ascii_lowercase()).then(|| s.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids_both_ways() {
        assert_eq!(role_label(GLOBAL_ADMINISTRATOR), "Global Administrator");
        assert_eq!(
            role_label("F2EF992C-3AFB-46B9-B7CF-A126EE74C451"),
            "Global Reader"
        );
        let unknown = "dd4db9a0-cc4a-4213-9f9f-70242232d97e";
        assert_eq!(role_label(unknown), unknown);
        assert_eq!(
            role_id("global reader").as_deref(),
            Some("f2ef992c-3afb-46b9-b7cf-a126ee74c451")
        );
        assert_eq!(role_id(&unknown.to_uppercase()).as_deref(), Some(unknown));
        assert_eq!(role_id("Global Overlord"), None);
        let mut ids: Vec<_> = WELL_KNOWN_ROLES.iter().map(|(i, _)| *i).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), WELL_KNOWN_ROLES.len(), "no id twice");
    }

    #[test]
    fn only_active_assignments_of_held_roles_in_active_relationships_grant() {
        let reader = "f2ef992c-3afb-46b9-b7cf-a126ee74c451".to_string();
        let helpdesk = "729827e3-9c14-49f7-bb1b-9608f156bbb8".to_string();
        let mut r = GdapRelationship {
            id: "r".into(),
            tenant_id: "t".into(),
            customer_name: String::new(),
            status: "active".into(),
            end: None,
            auto_extend: false,
            roles: vec![reader.clone()],
            access: Some(vec![
                AccessAssignment {
                    status: "active".into(),
                    roles: vec![reader.clone(), helpdesk.clone()],
                },
                AccessAssignment {
                    status: "pending".into(),
                    roles: vec![reader.clone()],
                },
            ]),
        };
        assert_eq!(r.granted_roles().collect::<Vec<_>>(), [reader.as_str()]);
        assert!(!r.global_admin());
        r.status = "expired".into();
        assert_eq!(r.granted_roles().count(), 0);
        r.status = "active".into();
        r.access = None;
        assert_eq!(r.granted_roles().count(), 0);
        r.roles.push(GLOBAL_ADMINISTRATOR.into());
        assert!(r.global_admin());
    }
}
