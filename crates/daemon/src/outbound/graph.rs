//! Microsoft Graph shapes the collectors share.
//!
//! <https://learn.microsoft.com/graph/api/organization-get>

use serde::Deserialize;

/// The tenant's organization object (the fields tenantwatch uses).
#[derive(Debug, Clone, Deserialize)]
pub struct Organization {
    /// Tenant id.
    pub id: String,
    /// Display name.
    #[serde(rename = "displayName", default)]
    pub display_name: Option<String>,
    /// Verified domains; the default one names the tenant.
    #[serde(rename = "verifiedDomains", default)]
    pub verified_domains: Vec<VerifiedDomain>,
    /// Last directory sync, when Entra Connect is used.
    #[serde(rename = "onPremisesLastSyncDateTime", default)]
    pub on_premises_last_sync: Option<String>,
}

/// One verified domain.
#[derive(Debug, Clone, Deserialize)]
pub struct VerifiedDomain {
    /// Domain name.
    pub name: String,
    /// True for the tenant's default domain.
    #[serde(rename = "isDefault", default)]
    pub is_default: bool,
}

impl Organization {
    /// The default verified domain, if any.
    pub fn default_domain(&self) -> Option<&str> {
        self.verified_domains
            .iter()
            .find(|d| d.is_default)
            .map(|d| d.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_organization_parses() {
        let raw = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/graph-organization-get.json"
        ));
        let o: Organization = serde_json::from_str(raw).unwrap();
        assert!(o.display_name.is_some());
        assert!(o.default_domain().is_some());
    }
}
