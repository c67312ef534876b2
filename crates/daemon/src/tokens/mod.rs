//! The partner's refresh token in use and the access tokens minted from it:
//! [`broker`] mints one per (tenant, API), caches it until shortly before it
//! expires, shares one request among concurrent callers, and stops asking
//! Entra for every tenant once the refresh token itself is dead; [`packed`]
//! keeps the cached tokens small.

pub mod broker;
pub mod packed;
