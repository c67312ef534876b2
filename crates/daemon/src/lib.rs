//! The tenantwatch daemon as a library: it keeps a CSP partner's Secure
//! Application Model refresh token alive and exports the health of every
//! customer tenant as Prometheus metrics. The `tenantwatch` binary parses the
//! command line and calls into it.
//!
//! # Layout
//!
//! Data flows one way: schedule → collect → immutable snapshot → scrape.
//! Modules are listed from the bottom up; each uses only modules above it in
//! this list (`.ci/layers` checks that no two import each other).
//!
//! - [`model`]: value types several stages share (tenant, error class, GDAP
//!   relationship, discovery source, sample, snapshot, stored refresh token).
//! - [`support`]: capped file reads, redacting secrets, the one retry policy,
//!   whether long-running jobs make progress (for the watchdog).
//! - [`metrics`]: the live counters and histograms every stage feeds, the
//!   `process_*` families and build info.
//! - [`config`]: the TOML file and `TENANTWATCH__…` variables as validated
//!   [`config::Settings`], with the settings type of every section.
//! - [`outbound`]: the one HTTP client, and the request path collectors
//!   share (limits, pacing under Microsoft's throttling limits, retries,
//!   paging, rate-limit headers, API shapes).
//! - [`auth`]: Entra ID's token endpoint, AADSTS error classes, client
//!   credentials and the service identity that reads Key Vault.
//! - [`store`]: where the refresh token lives (Key Vault or a file), written
//!   and read back.
//! - [`tokens`]: the refresh token in use and one cached access token per
//!   (tenant, API) minted from it.
//! - [`rotation`]: replacing the stored refresh token on a schedule.
//! - [`exposition`]: from collected samples and snapshots to `/metrics` text.
//! - [`collect`]: discovery (with GDAP access and tenant groups), the
//!   collectors and the engine that runs them.
//! - [`web`]: the HTTP server, the status page (attention board, timeline,
//!   tenant table), TLS and basic auth.
//! - [`logging`]: the log subscriber (scrubbing, escaped text), whose level
//!   a reload can change.
//! - [`daemon`]: builds every part from the settings (an engine per
//!   partner) and runs them under a scheduler until cancelled; reloads the settings on request and speaks
//!   the service manager's notification protocol (readiness, watchdog).

#[cfg(test)]
mod arb;
pub mod auth;
pub mod collect;
pub mod config;
pub mod daemon;
pub mod exposition;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod outbound;
pub mod rotation;
pub mod store;
pub mod support;
pub mod tokens;
pub mod web;
