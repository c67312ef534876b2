//! Small helpers every stage uses: reading files an operator names without
//! trusting their size, secrets in redacting types, the one retry policy, the
//! host name and open-file limit, the one claim read from an access token
//! (`amr`), whether long-running jobs make progress (for the watchdog), and
//! an error's causes on one line.
//! Imports nothing else of the crate.

pub mod error_text;
pub mod files;
pub mod host;
pub mod jwt;
pub mod liveness;
pub mod retry;
pub mod scrub;
pub mod secret;
