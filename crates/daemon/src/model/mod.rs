//! Value types several stages share, so no stage reaches up to another for
//! them: what discovery finds (tenants, sources, GDAP relationships), what a
//! collector produces (samples, and signals for a person to act on), what a collection cycle publishes (the
//! snapshot), the refresh token as stored, the APIs tokens are for, and the
//! error classes every failure is counted by. The module imports nothing else
//! of the crate.

mod api;
mod error_class;
mod gdap;
mod refresh_token;
mod sample;
mod signal;
mod snapshot;
mod source;
mod tenant;

pub use api::Api;
pub use error_class::ErrorClass;
pub use gdap::{
    role_id, role_label, AccessAssignment, GdapRelationship, RequiredRole, GLOBAL_ADMINISTRATOR,
    WELL_KNOWN_ROLES,
};
pub use refresh_token::{
    check_refresh_token, StoredToken, MAX_REFRESH_TOKEN_BYTES, REFRESH_TOKEN_LIFETIME,
};
pub use sample::{Family, Sample};
pub use signal::Signal;
pub use snapshot::{
    CollectorRun, CollectorStatus, DiscoveryStatus, PartnerName, SignalLists, Snapshot,
    TenantStatus, DEFAULT_PARTNER,
};
pub use source::Source;
pub use tenant::{is_domain, is_tenant_id, Tenant};
