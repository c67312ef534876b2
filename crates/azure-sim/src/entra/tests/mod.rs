//! End-to-end tests of Entra over HTTPS, one file per flow: the token
//! endpoint and its errors, authorization code + PKCE, device code, client
//! assertions (certificate and federated), and managed identity.

mod assertion;
mod authorize;
mod device;
mod managed_identity;
mod token;
