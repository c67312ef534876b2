//! Small helpers every stage uses: reading files an operator names without
//! trusting their size, secrets in redacting types, the one retry policy, the
//! host name. Imports nothing else of the crate.

pub mod files;
pub mod host;
pub mod retry;
pub mod scrub;
pub mod secret;
