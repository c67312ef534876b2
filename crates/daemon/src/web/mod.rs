//! The HTTP side: `/metrics`, `/healthz`, `/readyz` and the status page
//! ([`server`], [`status_page`]), served by one accept loop, plain or under
//! an exporter-toolkit web config with TLS, basic auth and extra headers
//! ([`serve`], [`basic_auth`]). [`connections`] caps open connections and
//! closes slow, idle and evicted ones, so stalled clients cannot lock out
//! probes and scrapes. Every handler reads the latest published snapshot;
//! none calls Microsoft.

pub mod basic_auth;
pub mod connections;
pub mod serve;
pub mod server;
pub mod status_page;
