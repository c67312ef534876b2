//! The small pieces the tenantwatch daemon and the simulated Microsoft cloud
//! both need, so neither crate depends on the other.
//!
//! # Layout
//!
//! - [`accept`]: the accept step of every server (pauses on `EMFILE`, stops on cancel).
//! - [`sync`]: the one poison-tolerant lock helper.
//! - [`time`]: unix time now, and the one RFC 3339 format both crates write.

pub mod accept;
pub mod sync;
pub mod time;
