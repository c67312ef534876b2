//! Everything that goes out to Microsoft's APIs: the one HTTP client with its
//! size caps and error bodies ([`client`]), the request path collectors share
//! with its limits, retries and paging ([`request`]), the budgets that space
//! requests to stay within Microsoft's limits ([`pacing`]), URL building ([`url`]),
//! and the response shapes of Graph ([`graph`]) and Partner Center
//! ([`partner_center`]). Tokens come from the caller; nothing here mints one.

pub mod client;
pub mod graph;
pub mod pacing;
pub mod partner_center;
pub mod request;
pub mod url;
