//! The simulator's state directory: creating it, the credential files it
//! keeps there for clients (secrets, certificates, the App Service identity
//! header, the federated token, rotated as the kubelet would), and in
//! [`config`] the tenantwatch config and the atomic writes everything uses.

pub(crate) mod config;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::entra::state::Entra;
use crate::errors::SimError;
use crate::world::random_token;

const PARTNER_SECRET_FILE: &str = "partner-client-secret";
const IDENTITY_SECRET_FILE: &str = "keyvault-client-secret";
const IDENTITY_CERT_FILE: &str = "identity-certificate.pem";
const PARTNER_CERT_FILE: &str = "partner-certificate.pem";
const FEDERATED_TOKEN_FILE: &str = "federated-token";
const IDENTITY_HEADER_FILE: &str = "identity-header";

/// Kubelet refreshes projected tokens well before they expire; so does the sim.
const FEDERATED_TOKEN_REFRESH: Duration = Duration::from_secs(600);

/// The files the simulator keeps in its state directory for clients.
pub(crate) struct StateFiles {
    /// Partner 0's SAM app secret; partner k's is
    /// [`StateFiles::partner_secret_of`].
    pub partner_secret: PathBuf,
    pub identity_secret: PathBuf,
    pub identity_cert: PathBuf,
    pub partner_cert: PathBuf,
    pub federated_token: PathBuf,
    pub identity_header: PathBuf,
}

impl StateFiles {
    /// The paths under `dir`.
    pub fn new(dir: &Path) -> Self {
        Self {
            partner_secret: dir.join(PARTNER_SECRET_FILE),
            identity_secret: dir.join(IDENTITY_SECRET_FILE),
            identity_cert: dir.join(IDENTITY_CERT_FILE),
            partner_cert: dir.join(PARTNER_CERT_FILE),
            federated_token: dir.join(FEDERATED_TOKEN_FILE),
            identity_header: dir.join(IDENTITY_HEADER_FILE),
        }
    }

    /// The file holding partner `k`'s SAM app secret: `partner-client-secret`
    /// for partner 0, `partner-client-secret-{k}` beside it for the others.
    pub fn partner_secret_of(&self, k: usize) -> PathBuf {
        match k {
            0 => self.partner_secret.clone(),
            k => self
                .partner_secret
                .with_file_name(format!("{PARTNER_SECRET_FILE}-{k}")),
        }
    }

    /// Writes every credential file, each readable by the owner only.
    pub fn write(&self, entra: &Entra) -> Result<(), SimError> {
        let c = &entra.creds;
        let w = &entra.sim.world;
        for (path, contents) in [
            (&self.identity_secret, w.identity_app.secret.as_str()),
            (&self.identity_cert, c.identity_cert.pem.as_str()),
            (&self.partner_cert, c.partner_cert.pem.as_str()),
            (&self.identity_header, c.identity_header.as_str()),
        ] {
            config::write_atomic(path, contents.as_bytes(), 0o600)?;
        }
        for p in &w.partners {
            let path = self.partner_secret_of(p.index);
            config::write_atomic(&path, p.sam_app.secret.as_bytes(), 0o600)?;
        }
        write_federated_token(entra, &self.federated_token)
    }
}

/// A fresh service-account token from the simulated Kubernetes issuer,
/// stamped with wall-clock time like a kubelet-projected token.
pub(crate) fn new_federated_token(entra: &Entra) -> Result<String, SimError> {
    let token = entra
        .creds
        .issuer
        .service_account_token(chrono::Utc::now().timestamp())?;
    entra.sim.remember_secret(&token);
    Ok(token)
}

fn write_federated_token(entra: &Entra, path: &Path) -> Result<(), SimError> {
    let token = new_federated_token(entra)?;
    config::write_atomic(path, token.as_bytes(), 0o600)
}

/// Rewrites the federated token file before the token in it expires, as
/// the kubelet rotates projected service-account tokens.
pub(crate) fn refresh_federated_token(
    entra: Arc<Entra>,
    path: PathBuf,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(FEDERATED_TOKEN_REFRESH) => {
                    if let Err(e) = write_federated_token(&entra, &path) {
                        tracing::warn!(error = %e, "sim: cannot refresh the federated token file");
                    }
                }
            }
        }
    })
}

/// The state directory: the one asked for, or a new private one under the
/// system temp dir; created if missing, returned canonical.
pub(crate) fn prepare_state_dir(requested: &Path) -> Result<PathBuf, SimError> {
    let dir = if requested.as_os_str().is_empty() {
        std::env::temp_dir().join(format!(
            "tenantwatch-sim-{}-{}",
            std::process::id(),
            random_token(8).to_ascii_lowercase()
        ))
    } else {
        requested.to_path_buf()
    };
    let io = |source| SimError::Io {
        path: dir.clone(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(io)?;
    if requested.as_os_str().is_empty() {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        }
    }
    dir.canonicalize().map_err(io)
}
