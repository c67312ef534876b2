//! Endpoints and token audiences of the Microsoft clouds tenantwatch can talk to.
//!
//! Values come from Microsoft's own tables (go-autorest `environments.go`, MSAL's
//! `authority.py`, Partner-Center-PowerShell `EnvironmentConstants.cs`).

use url::Url;

use crate::model::Api;

/// Which Microsoft cloud the partner lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloudName {
    /// Azure public cloud.
    Public,
    /// Azure US Government.
    UsGov,
    /// Azure China (21Vianet).
    China,
    /// Every endpoint given explicitly (tests, the simulator, proxies).
    Custom,
}

impl CloudName {
    /// Parses the `cloud.name` config value.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "public" => Some(Self::Public),
            "usgov" => Some(Self::UsGov),
            "china" => Some(Self::China),
            "custom" => Some(Self::Custom),
            _ => None,
        }
    }
}

/// Resolved endpoints and audiences for one cloud.
#[derive(Debug, Clone, PartialEq)]
pub struct Cloud {
    /// Which cloud this is.
    pub name: CloudName,
    /// Login authority host, a bare origin: `{login}/{tenant}/oauth2/v2.0/token`.
    pub login: Url,
    /// Microsoft Graph base: `{graph}/v1.0/…`.
    pub graph: Url,
    /// Azure Resource Manager base.
    pub arm: Url,
    /// Partner Center base: `{partner_center}/v1/customers`.
    pub partner_center: Url,
    /// Token audiences (the part before `/.default`).
    pub audiences: Audiences,
    /// Client capabilities declared on every refresh-token redemption
    /// (`cloud.client_capabilities`, default `["cp1"]`): `cp1` tells Entra the
    /// daemon handles claims challenges, so CAE-capable resources (Graph,
    /// ARM) may issue it long-lived tokens.
    /// <https://learn.microsoft.com/entra/identity-platform/claims-challenge>
    pub client_capabilities: Vec<String>,
}

/// What `cloud.client_capabilities` defaults to.
pub const DEFAULT_CLIENT_CAPABILITIES: &[&str] = &["cp1"];

/// The resource identifiers tokens are requested for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audiences {
    /// Graph audience, e.g. `https://graph.microsoft.com`.
    pub graph: String,
    /// ARM audience, e.g. `https://management.azure.com/`.
    pub arm: String,
    /// Partner Center audience.
    pub partner_center: String,
    /// Key Vault audience, e.g. `https://vault.azure.net`.
    pub keyvault: String,
}

impl Audiences {
    /// The audience string for one API.
    pub fn of(&self, api: Api) -> &str {
        match api {
            Api::Graph => &self.graph,
            Api::Arm => &self.arm,
            Api::PartnerCenter => &self.partner_center,
            Api::KeyVault => &self.keyvault,
        }
    }

    /// The v2.0 scope for one API. Partner Center documents `user_impersonation`;
    /// `.default` would also work but is not what its docs and SDKs send.
    pub fn scope(&self, api: Api) -> String {
        let aud = self.of(api).trim_end_matches('/');
        match api {
            Api::PartnerCenter => format!("{aud}/user_impersonation"),
            _ => format!("{aud}/.default"),
        }
    }
}

/// Well-known endpoints of a named cloud; `None` for `custom`.
pub struct KnownCloud {
    /// Login authority host.
    pub login: &'static str,
    /// Graph base.
    pub graph: &'static str,
    /// ARM base.
    pub arm: &'static str,
    /// Partner Center base.
    pub partner_center: &'static str,
    /// Default audiences.
    pub audiences: [&'static str; 4],
}

/// Public-cloud endpoints; also the audience defaults of a `custom` cloud.
pub const PUBLIC: KnownCloud = KnownCloud {
    login: "https://login.microsoftonline.com",
    graph: "https://graph.microsoft.com",
    arm: "https://management.azure.com",
    partner_center: "https://api.partnercenter.microsoft.com",
    audiences: [
        "https://graph.microsoft.com",
        "https://management.azure.com/",
        "https://api.partnercenter.microsoft.com",
        "https://vault.azure.net",
    ],
};

/// Azure US Government endpoints (Partner Center shares the public host).
pub const USGOV: KnownCloud = KnownCloud {
    login: "https://login.microsoftonline.us",
    graph: "https://graph.microsoft.us",
    arm: "https://management.usgovcloudapi.net",
    partner_center: "https://api.partnercenter.microsoft.com",
    audiences: [
        "https://graph.microsoft.us",
        "https://management.usgovcloudapi.net/",
        "https://api.partnercenter.microsoft.com",
        "https://vault.usgovcloudapi.net",
    ],
};

/// Azure China (21Vianet) endpoints.
pub const CHINA: KnownCloud = KnownCloud {
    login: "https://login.chinacloudapi.cn",
    graph: "https://microsoftgraph.chinacloudapi.cn",
    arm: "https://management.chinacloudapi.cn",
    partner_center: "https://partner.partnercenterapi.microsoftonline.cn",
    audiences: [
        "https://microsoftgraph.chinacloudapi.cn",
        "https://management.chinacloudapi.cn/",
        "https://partner.partnercenterapi.microsoftonline.cn",
        "https://vault.azure.cn",
    ],
};

impl CloudName {
    /// The built-in table for a named cloud; `custom` uses public audiences.
    pub fn known(self) -> &'static KnownCloud {
        match self {
            CloudName::Public | CloudName::Custom => &PUBLIC,
            CloudName::UsGov => &USGOV,
            CloudName::China => &CHINA,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_follow_each_api_convention() {
        let a = Audiences {
            graph: PUBLIC.audiences[0].into(),
            arm: PUBLIC.audiences[1].into(),
            partner_center: PUBLIC.audiences[2].into(),
            keyvault: PUBLIC.audiences[3].into(),
        };
        assert_eq!(a.scope(Api::Graph), "https://graph.microsoft.com/.default");
        assert_eq!(a.scope(Api::Arm), "https://management.azure.com/.default");
        assert_eq!(
            a.scope(Api::PartnerCenter),
            "https://api.partnercenter.microsoft.com/user_impersonation"
        );
    }
}
