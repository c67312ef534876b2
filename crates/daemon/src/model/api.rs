//! The Microsoft APIs tenantwatch asks Entra ID for tokens to.

/// The APIs tenantwatch requests tokens for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Api {
    /// Microsoft Graph.
    Graph,
    /// Azure Resource Manager.
    Arm,
    /// Partner Center REST API.
    PartnerCenter,
    /// Azure Key Vault data plane.
    KeyVault,
}

impl Api {
    /// Short name used as the `scope` label of `tenantwatch_token_requests_total`.
    pub fn label(self) -> &'static str {
        match self {
            Api::Graph => "graph",
            Api::Arm => "arm",
            Api::PartnerCenter => "partner_center",
            Api::KeyVault => "keyvault",
        }
    }
}
