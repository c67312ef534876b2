//! The resource APIs Entra can issue tokens for, their identifiers and
//! audiences (clouds/endpoints.md, public cloud), the permissions the SAM app
//! was consented for, and parsing of v2 `scope` values.

/// A resource API (the `aud` side of a token).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ResourceApi {
    pub name: &'static str,
    /// Identifiers clients may name it by (lowercase, no trailing slash),
    /// each with the `aud` a token requested that way carries.
    pub identifiers: &'static [(&'static str, &'static str)],
    /// Audiences the resource accepts.
    pub audiences: &'static [&'static str],
    /// Delegated permissions consented for the SAM app (the `.default` set).
    pub delegated: &'static [&'static str],
    /// App roles granted to the SAM app for app-only tokens.
    pub sam_app_roles: &'static [&'static str],
    /// CAE-capable: issues long-lived tokens to `cp1` clients and answers a
    /// revoked one with a claims challenge (Graph per the Entra CAE docs, ARM
    /// per Azure SDK maintainers; reference/azure/entra/docs-claims-challenge.md).
    pub cae: bool,
}

pub(crate) const GRAPH: ResourceApi = ResourceApi {
    name: "Microsoft Graph",
    identifiers: &[
        ("https://graph.microsoft.com", "https://graph.microsoft.com"),
        (
            "00000003-0000-0000-c000-000000000000",
            "https://graph.microsoft.com",
        ),
    ],
    audiences: &[
        "https://graph.microsoft.com",
        "https://graph.microsoft.com/",
        "00000003-0000-0000-c000-000000000000",
    ],
    delegated: &[
        "DelegatedAdminRelationship.Read.All",
        "Directory.Read.All",
        "Organization.Read.All",
        "SecurityEvents.Read.All",
        "ServiceHealth.Read.All",
        "User.Read",
    ],
    sam_app_roles: &["Organization.Read.All"],
    cae: true,
};

/// ARM accepts the four audiences its 401 message lists.
pub(crate) const ARM: ResourceApi = ResourceApi {
    name: "Windows Azure Service Management API",
    identifiers: &[
        (
            "https://management.azure.com",
            "https://management.azure.com/",
        ),
        (
            "https://management.core.windows.net",
            "https://management.core.windows.net/",
        ),
        (
            "797f4846-ba00-4fd7-ba43-dac1f8f63013",
            "https://management.azure.com/",
        ),
    ],
    audiences: &[
        "https://management.core.windows.net/",
        "https://management.core.windows.net",
        "https://management.azure.com/",
        "https://management.azure.com",
    ],
    delegated: &["user_impersonation"],
    sam_app_roles: &[],
    cae: true,
};

/// Key Vault's 401 names exactly these two audiences (AKV10022 bodies).
pub(crate) const KEY_VAULT: ResourceApi = ResourceApi {
    name: "Azure Key Vault",
    identifiers: &[
        ("https://vault.azure.net", "https://vault.azure.net"),
        (
            "cfa8b339-82a2-471a-a3c9-0fc0be7a4093",
            "https://vault.azure.net",
        ),
    ],
    audiences: &[
        "https://vault.azure.net",
        "cfa8b339-82a2-471a-a3c9-0fc0be7a4093",
    ],
    delegated: &["user_impersonation"],
    sam_app_roles: &[],
    cae: false,
};

pub(crate) const PARTNER_CENTER: ResourceApi = ResourceApi {
    name: "Microsoft Partner Center",
    identifiers: &[
        (
            "https://api.partnercenter.microsoft.com",
            "https://api.partnercenter.microsoft.com",
        ),
        (
            "fa3d9a0c-3fb0-42cc-9193-47c7ecd2edbd",
            "https://api.partnercenter.microsoft.com",
        ),
    ],
    audiences: &[
        "https://api.partnercenter.microsoft.com",
        "fa3d9a0c-3fb0-42cc-9193-47c7ecd2edbd",
    ],
    delegated: &["user_impersonation"],
    sam_app_roles: &[],
    cae: false,
};

const ALL: [&ResourceApi; 4] = [&GRAPH, &ARM, &KEY_VAULT, &PARTNER_CENTER];

/// The API a resource identifier names, and the audience to put in tokens.
pub(crate) fn find(identifier: &str) -> Option<(&'static ResourceApi, &'static str)> {
    let key = identifier.trim_end_matches('/').to_ascii_lowercase();
    ALL.iter().find_map(|api| {
        api.identifiers
            .iter()
            .find(|(id, _)| *id == key)
            .map(|(_, aud)| (*api, *aud))
    })
}

/// A resource as a request named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResourceRef {
    pub api: &'static ResourceApi,
    pub aud: &'static str,
    /// The identifier exactly as sent, which Entra echoes in `scope`.
    pub prefix: String,
}

impl ResourceRef {
    /// A resource named by identifier, e.g. a v1 `resource=` value.
    pub fn named(identifier: &str) -> Option<Self> {
        find(identifier).map(|(api, aud)| Self {
            api,
            aud,
            prefix: identifier.to_string(),
        })
    }

    fn graph() -> Self {
        Self {
            api: &GRAPH,
            aud: "https://graph.microsoft.com",
            prefix: "https://graph.microsoft.com".into(),
        }
    }
}

/// The first resource a space-separated scope list names that this cloud
/// does not have. `/authorize` and `/devicecode` may name several resources
/// (consent for all of them at once), so this checks each on its own.
pub(crate) fn unknown_resource(raw: &str) -> Option<String> {
    raw.split_whitespace()
        .filter(|s| {
            !matches!(
                s.to_ascii_lowercase().as_str(),
                "openid" | "profile" | "offline_access" | "email"
            )
        })
        .filter_map(|s| s.rsplit_once('/').map(|(res, _)| res))
        .find(|res| find(res).is_none())
        .map(str::to_string)
}

/// A parsed v2 `scope` parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scopes {
    pub openid: bool,
    pub profile: bool,
    pub offline_access: bool,
    pub email: bool,
    /// The single resource the scopes name, if any.
    pub resource: Option<ResourceRef>,
    /// Permission names (`.default` included) on that resource.
    pub permissions: Vec<String>,
}

/// Why a `scope` value was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ScopeError {
    /// Names more than one resource.
    MultipleResources,
    /// Names a resource this cloud does not have.
    UnknownResource(String),
    /// Not a scope at all (e.g. `https://graph.microsoft.com/`).
    Invalid,
}

impl Scopes {
    /// Parses a space-separated scope list as the v2 endpoint does.
    pub fn parse(raw: &str) -> Result<Self, ScopeError> {
        let mut s = Scopes {
            openid: false,
            profile: false,
            offline_access: false,
            email: false,
            resource: None,
            permissions: Vec::new(),
        };
        for scope in raw.split_whitespace() {
            match scope.to_ascii_lowercase().as_str() {
                "openid" => s.openid = true,
                "profile" => s.profile = true,
                "offline_access" => s.offline_access = true,
                "email" => s.email = true,
                _ => {
                    let (res, perm) = match scope.rsplit_once('/') {
                        Some((res, perm)) => {
                            let r = ResourceRef::named(res)
                                .ok_or_else(|| ScopeError::UnknownResource(res.to_string()))?;
                            (r, perm)
                        }
                        // Bare permission names are Microsoft Graph's.
                        None => (ResourceRef::graph(), scope),
                    };
                    if perm.is_empty() {
                        return Err(ScopeError::Invalid);
                    }
                    match &s.resource {
                        Some(existing) if existing.api != res.api => {
                            return Err(ScopeError::MultipleResources)
                        }
                        Some(_) => {}
                        None => s.resource = Some(res),
                    }
                    s.permissions.push(perm.to_string());
                }
            }
        }
        Ok(s)
    }

    /// Whether the request asked for the app's consented set.
    pub fn is_default(&self) -> bool {
        self.permissions.iter().any(|p| p == ".default")
    }

    /// Requested permissions the app has no consent for.
    pub fn unconsented(&self) -> Vec<String> {
        let Some(r) = &self.resource else {
            return Vec::new();
        };
        self.permissions
            .iter()
            .filter(|p| *p != ".default")
            .filter(|p| !r.api.delegated.iter().any(|d| d.eq_ignore_ascii_case(p)))
            .cloned()
            .collect()
    }

    /// Short permission names for the `scp` claim, in the API's spelling.
    pub fn granted_short(&self, resource: &ResourceRef) -> Vec<&'static str> {
        if self.resource.is_none() || self.is_default() {
            return resource.api.delegated.to_vec();
        }
        resource
            .api
            .delegated
            .iter()
            .filter(|d| self.permissions.iter().any(|p| p.eq_ignore_ascii_case(d)))
            .copied()
            .collect()
    }

    /// The `scope` string of a v2 response: the granted permissions as full
    /// URIs, then the OpenID scopes that were asked for.
    pub fn granted_scope_string(&self, resource: &ResourceRef) -> String {
        let mut out: Vec<String> = self
            .granted_short(resource)
            .iter()
            .map(|p| format!("{}/{}", resource.prefix, p))
            .collect();
        for (on, name) in [
            (self.openid, "openid"),
            (self.profile, "profile"),
            (self.email, "email"),
            (self.offline_access, "offline_access"),
        ] {
            if on {
                out.push(name.to_string());
            }
        }
        out.join(" ")
    }

    /// The resource the token is for: the one named, or Microsoft Graph when
    /// only OpenID scopes were asked for (as Entra does).
    pub fn resource_or_graph(&self) -> ResourceRef {
        self.resource.clone().unwrap_or_else(ResourceRef::graph)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_scope_forms_real_clients_send() {
        let s = Scopes::parse(
            "https://api.partnercenter.microsoft.com/user_impersonation offline_access openid profile",
        )
        .unwrap();
        let r = s.resource.clone().unwrap();
        assert_eq!(r.api, &PARTNER_CENTER);
        assert!(s.openid && s.profile && s.offline_access);
        assert_eq!(
            s.granted_scope_string(&r),
            "https://api.partnercenter.microsoft.com/user_impersonation openid profile offline_access"
        );

        let s = Scopes::parse("https://graph.microsoft.com/.default").unwrap();
        let r = s.resource.clone().unwrap();
        assert!(s.is_default());
        assert!(s
            .granted_scope_string(&r)
            .contains("https://graph.microsoft.com/Organization.Read.All"));
        assert_eq!(r.aud, "https://graph.microsoft.com");
    }

    #[test]
    fn arm_trailing_slash_forms() {
        let s = Scopes::parse("https://management.azure.com//.default").unwrap();
        let r = s.resource.unwrap();
        assert_eq!(r.api, &ARM);
        assert_eq!(r.aud, "https://management.azure.com/");
        assert_eq!(r.prefix, "https://management.azure.com/");
        let s = Scopes::parse("https://management.core.windows.net/.default").unwrap();
        assert_eq!(
            s.resource.unwrap().aud,
            "https://management.core.windows.net/"
        );
    }

    #[test]
    fn refusals() {
        assert_eq!(
            Scopes::parse("https://graph.microsoft.com/.default https://vault.azure.net/.default"),
            Err(ScopeError::MultipleResources)
        );
        assert_eq!(
            Scopes::parse("https://foo.example/.default"),
            Err(ScopeError::UnknownResource("https://foo.example".into()))
        );
        assert_eq!(
            Scopes::parse("https://graph.microsoft.com/"),
            Err(ScopeError::Invalid)
        );
        let s = Scopes::parse("User.Read Mail.Send").unwrap();
        assert_eq!(s.unconsented(), vec!["Mail.Send".to_string()]);
    }

    #[test]
    fn unknown_resources_in_multi_resource_lists() {
        assert_eq!(
            unknown_resource("openid https://graph.microsoft.com/.default https://vault.azure.net/user_impersonation"),
            None
        );
        assert_eq!(
            unknown_resource("User.Read https://foo.example/x offline_access"),
            Some("https://foo.example".into())
        );
    }

    #[test]
    fn openid_only_means_graph() {
        let s = Scopes::parse("openid profile offline_access").unwrap();
        assert!(s.resource.is_none());
        assert_eq!(s.resource_or_graph().api, &GRAPH);
    }
}
