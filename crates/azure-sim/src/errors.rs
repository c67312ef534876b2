//! Why the simulator could not start: its one public error type. The error
//! bodies the simulated services answer with live with each service.

use std::path::PathBuf;

/// Why the simulator could not start or write its files.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A file or directory under the state dir could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address that failed.
        addr: std::net::SocketAddr,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Generating the CA or server certificate failed.
    #[error("cannot generate the simulator's certificates: {0}")]
    Cert(#[from] rcgen::Error),
    /// rustls refused the generated certificate.
    #[error("cannot build the TLS server configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The config file could not be serialised.
    #[error("cannot serialise the tenantwatch config: {0}")]
    Config(#[from] toml::ser::Error),
    /// An option was out of range.
    #[error("invalid simulator option: {0}")]
    InvalidOption(String),
    /// An RSA key could not be generated or parsed.
    #[error("cannot prepare the simulator's RSA keys: {0}")]
    Crypto(String),
}
