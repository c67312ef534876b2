//! A GDAP (granular delegated admin privileges) relationship with a customer.
//!
//! <https://learn.microsoft.com/graph/api/resources/delegatedadminrelationship>

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
}
