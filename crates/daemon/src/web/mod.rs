//! The HTTP side: `/metrics`, `/healthz`, `/readyz` and the status page
//! ([`server`], [`status_page`]), served plain or under an exporter-toolkit
//! web config with TLS, basic auth and extra headers ([`serve`],
//! [`basic_auth`]). Every handler reads the latest published snapshot; none
//! calls Microsoft.

pub mod basic_auth;
pub mod serve;
pub mod server;
pub mod status_page;
