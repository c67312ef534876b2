//! A customer tenant as discovery lists it.

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
