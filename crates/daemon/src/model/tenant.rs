//! A customer tenant as discovery lists it, and what a tenant id and a
//! domain name must look like before they are used anywhere.

use std::sync::Arc;

/// A tenant in scope, as discovery found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Directory (tenant) id. Shared: results, the snapshot and every run
    /// hold it without a copy per tenant.
    pub tenant_id: Arc<str>,
    /// Name from discovery.
    pub name: Arc<str>,
    /// Default domain from discovery.
    pub domain: Arc<str>,
}

/// True for a directory (tenant) id: a GUID in its 36-character form. Every
/// customer tenant must have one; Entra's aliases (`common`, `organizations`,
/// `consumers`) are not ids and would mint a token in the partner's own tenant.
pub fn is_tenant_id(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::parse_str(s).is_ok()
}

/// True for a DNS name as a tenant's domain: at least two labels of letters,
/// digits and hyphens (not at either end), 253 characters at most.
pub fn is_domain(s: &str) -> bool {
    s.len() <= 253
        && s.contains('.')
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_guids_and_domains_dns_names() {
        assert!(is_tenant_id("0b7a8c5e-31d2-4c0e-9c3b-6f2d2f4b2a11"));
        for bad in [
            "",
            "common",
            "organizations",
            "evil tenant",
            "../0b7a8c5e-31d2-4c0e-9c3b-6f2d2f4b2a11",
            "0b7a8c5e-31d2-4c0e-9c3b-6f2d2f4b2a11/oauth2/v2.0/token?x=",
            "0b7a8c5e31d24c0e9c3b6f2d2f4b2a11",
            "{0b7a8c5e-31d2-4c0e-9c3b-6f2d2f4b2a11}",
            "0b7a8c5e-31d2-4c0e-9c3b-6f2d2f4b2a11\n",
        ] {
            assert!(!is_tenant_id(bad), "{bad:?}");
        }
        assert!(is_domain("contoso.onmicrosoft.com"));
        assert!(is_domain("xn--bcher-kva.example"));
        for bad in [
            "",
            "contoso",
            "a..b",
            "-a.b",
            "a b.com",
            "evil.com/x",
            "a.b\n",
        ] {
            assert!(!is_domain(bad), "{bad:?}");
        }
    }
}
