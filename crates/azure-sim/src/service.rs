//! The simulated services as the request log, the fault registry and the
//! admin API name them. A leaf: everything that counts or faults requests
//! by service depends on it, and it on nothing.

/// One of the simulated services, for request counting and faults.
/// Serialises as [`Service::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    /// The Entra ID login origin: token, authorize, device code, discovery.
    Token,
    /// Key Vault secrets.
    #[serde(rename = "keyvault")]
    KeyVault,
    /// Microsoft Graph.
    Graph,
    /// Azure Resource Manager.
    Arm,
    /// Partner Center.
    PartnerCenter,
    /// The managed identity endpoint (IMDS and App Service paths).
    ManagedIdentity,
}

impl Service {
    /// Every service, in a stable order.
    pub const ALL: [Service; 6] = [
        Service::Token,
        Service::KeyVault,
        Service::Graph,
        Service::Arm,
        Service::PartnerCenter,
        Service::ManagedIdentity,
    ];

    /// The name the admin API and its JSON use (`token`, `keyvault`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Token => "token",
            Service::KeyVault => "keyvault",
            Service::Graph => "graph",
            Service::Arm => "arm",
            Service::PartnerCenter => "partner_center",
            Service::ManagedIdentity => "managed_identity",
        }
    }

    /// The service a name (or a common alias such as `login`) stands for.
    pub fn from_name(name: &str) -> Option<Service> {
        match name.to_ascii_lowercase().replace('-', "_").as_str() {
            "token" | "login" | "entra" => Some(Service::Token),
            "keyvault" | "key_vault" | "vault" => Some(Service::KeyVault),
            "graph" => Some(Service::Graph),
            "arm" => Some(Service::Arm),
            "partner_center" | "partnercenter" => Some(Service::PartnerCenter),
            "managed_identity" | "imds" | "msi" => Some(Service::ManagedIdentity),
            _ => None,
        }
    }
}
