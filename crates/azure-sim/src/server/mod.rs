//! Serving: the TLS and plain-HTTP accept loops, and what every service's
//! answer goes through (fault bodies).

pub(crate) mod instrument;
pub(crate) mod plain;
pub(crate) mod tls;
