//! The tenant part of a login URL (`/{tenant}/oauth2/…`), resolved the way
//! Entra does: `organizations` and `common`, tenant ids and verified domains.

use super::errors::{aad, AadError};
use crate::state::SimState;
use crate::world::Tenant;

/// The tenant part of the path.
pub(crate) enum Authority<'a> {
    /// A tenant id or verified domain.
    Tenant(&'a Tenant),
    /// `organizations` or `common`: the user's home tenant decides.
    Multi(String),
}

impl Authority<'_> {
    /// How error messages name it.
    pub fn label(&self) -> String {
        match self {
            Authority::Tenant(t) => t.name.clone(),
            Authority::Multi(m) => m.clone(),
        }
    }

    /// A stable key: the tenant id, or the alias.
    pub fn key(&self) -> String {
        match self {
            Authority::Tenant(t) => t.id.clone(),
            Authority::Multi(m) => m.clone(),
        }
    }
}

/// Resolves a path segment the way Entra does: aliases, ids and domains.
pub(crate) fn resolve<'a>(state: &'a SimState, seg: &str) -> Result<Authority<'a>, AadError> {
    let lower = seg.to_ascii_lowercase();
    if lower == "organizations" || lower == "common" {
        return Ok(Authority::Multi(lower));
    }
    if seg.is_empty()
        || !seg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        return Err(aad::invalid_tenant_name(seg));
    }
    state
        .world
        .tenant(seg)
        .map(Authority::Tenant)
        .ok_or_else(|| aad::tenant_not_found(seg))
}
