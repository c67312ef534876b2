//! Talking to Entra ID: the token endpoint client for every grant tenantwatch
//! uses ([`entra`]), which AADSTS code means which error class
//! ([`classify`]), how a confidential client proves who it is there
//! ([`assertion`]), and the service identity that reads Key Vault
//! ([`identity`]). Caching tokens per tenant is `tokens`' job.

pub mod assertion;
pub mod classify;
pub mod entra;
pub mod identity;
