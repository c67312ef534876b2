//! tenantwatch keeps a CSP partner's Secure Application Model refresh token alive
//! and exports the health of every customer tenant as Prometheus metrics.
//!
//! # Layout
//!
//! Data flows one way: schedule → collect → immutable snapshot → scrape.
//!
//! - [`config`] reads the TOML file and `TENANTWATCH__…` variables into validated
//!   [`config::Settings`]; [`cloud`] knows the endpoints and token audiences of each cloud.
//! - [`http`] builds the one HTTP client (rustls, the cloud's extra CA, size caps).
//! - [`entra`] talks to the Entra ID token endpoint and classifies its AADSTS errors.
//! - [`keyvault`] and [`store`] keep the refresh token; [`broker`] mints and caches
//!   one access token per (tenant, API) from it.
//! - [`api`] is the request path (limits, retries, paging, rate-limit headers);
//!   [`partner_center`] and [`graph`] hold API shapes; [`discovery`] lists the
//!   tenants; [`collector`] holds one module per collector; [`engine`] runs
//!   discovery and collectors on their schedules and produces [`snapshot::Snapshot`]s.
//! - [`rotation`] and [`consent`] write new refresh tokens; [`identity`] and
//!   [`credential`] authenticate the service identity and the partner app.
//! - [`metrics`] turns the latest snapshot into Prometheus text at scrape time;
//!   [`server`] serves `/metrics`, `/healthz`, `/readyz` and `/`.
//! - [`daemon`] wires it together under a scheduler and a cancellation token;
//!   [`demo`] runs it against [`sim`], the simulated Microsoft cloud.

pub mod api;
#[cfg(test)]
mod arb;
pub mod background;
pub mod broker;
pub mod cloud;
pub mod collector;
pub mod config;
pub mod credential;
pub mod daemon;
pub mod discovery;
pub mod engine;
pub mod entra;
pub mod exposition;
pub mod files;
pub mod graph;
pub mod http;
pub mod identity;
pub mod keyvault;
pub mod logging;
pub mod metrics;
pub mod packed_token;
pub mod partner_center;
pub mod rotation;
pub mod secret;
pub mod series;
pub mod server;
pub mod snapshot;
pub mod status_page;
pub mod store;
pub mod web_auth;
pub mod web_config;
pub mod web_serve;
