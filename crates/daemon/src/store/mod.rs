//! Where the partner's refresh token lives: a Key Vault secret or a local file.
//! The store is the daemon's only durable state; a restart re-reads it.
//!
//! Writes never replace the only copy: Key Vault keeps every version, and the file
//! store writes a temporary file, syncs it and renames it over the old one, so at
//! every instant the store holds either the old token or the new one, whole.

mod file;
pub mod keyvault;

use std::collections::BTreeMap;
use std::path::PathBuf;

use tenantwatch_common::time::{parse_rfc3339, rfc3339};

use crate::model::{check_refresh_token, StoredToken};
use crate::store::file::{load_file, write_file, FileDoc};
use crate::store::keyvault::{KeyVaultClient, KeyVaultError, NewSecret};
use crate::support::host::hostname;
use crate::support::secret::{ExposeSecret, SecretString};

/// `contentType` of the Key Vault secret.
pub const CONTENT_TYPE: &str = "application/vnd.tenantwatch.refresh-token";

/// Why a token was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Scheduled or forced rotation.
    Rotation,
    /// First sign-in (`tenantwatch consent`).
    Consent,
}

impl Source {
    /// Tag value.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Rotation => "rotation",
            Source::Consent => "consent",
        }
    }
}

/// A token to write.
pub struct NewToken<'a> {
    /// The refresh token.
    pub value: &'a SecretString,
    /// When Entra issued it, unix seconds.
    pub issued_at: i64,
    /// Issue time + the inactivity lifetime.
    pub expires: i64,
    /// Why it is written.
    pub source: Source,
}

/// Reading or writing the refresh token failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Key Vault failed.
    #[error("refresh token store (Key Vault secret {name:?}): {source}")]
    KeyVault {
        name: String,
        #[source]
        source: KeyVaultError,
    },
    /// Key Vault has no such secret: consent has not been run yet.
    #[error(
        "refresh token store: Key Vault has no secret {name:?}; run `tenantwatch consent` first"
    )]
    Missing { name: String },
    /// The token file could not be read or written.
    #[error("refresh token store (file {path}): {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The token file is readable by other users.
    #[error(
        "refresh token store (file {path}): mode {mode:o} lets other users read it; chmod 600"
    )]
    Permissions { path: PathBuf, mode: u32 },
    /// The token file is empty or not in a known format.
    #[error("refresh token store (file {path}): {why}; run `tenantwatch consent`")]
    BadFile { path: PathBuf, why: String },
    /// The store holds something that cannot be a refresh token; the token in use stays.
    #[error("refresh token store ({store}): version {version} is not a usable refresh token ({why}); the token in use (if any) stays: run `tenantwatch consent`, or restore the previous version")]
    Unusable {
        store: String,
        version: String,
        why: &'static str,
    },
    /// Entra answered with something that cannot be a refresh token; it was not written.
    #[error("refresh token store ({store}): the new refresh token is not usable ({why}); not written, the previous one stays")]
    UnusableNew { store: String, why: &'static str },
    /// What was read back after a write is not what was written.
    #[error("refresh token store ({store}): read-back of version {version} does not match what was written")]
    ReadBack { store: String, version: String },
}

/// The configured store.
pub enum Store {
    /// A Key Vault secret; each write is a new version.
    KeyVault {
        /// The vault client (boxed: it is much larger than the file variant).
        client: Box<KeyVaultClient>,
        /// Secret name.
        name: String,
    },
    /// A file written atomically.
    File {
        /// Path of the token file.
        path: PathBuf,
    },
}

fn tag_time(tags: &BTreeMap<String, String>, key: &str) -> Option<i64> {
    parse_rfc3339(tags.get(key)?).map(|t| t as i64)
}

impl Store {
    /// Reads the current refresh token, and refuses a value that cannot be one
    /// (empty, oversized, not printable), so it never replaces the token in use.
    pub async fn load(&self) -> Result<StoredToken, StoreError> {
        let token = self.read_current().await?;
        check_refresh_token(token.value.expose_secret()).map_err(|why| StoreError::Unusable {
            store: self.describe(),
            version: token.version.clone(),
            why,
        })?;
        crate::support::scrub::remember(token.value.expose_secret());
        Ok(token)
    }

    async fn read_current(&self) -> Result<StoredToken, StoreError> {
        match self {
            Store::KeyVault { client, name } => {
                let bundle = client
                    .get_secret(name, None)
                    .await
                    .map_err(|source| kv_error(name, source))?;
                Ok(StoredToken {
                    version: bundle.version().to_string(),
                    issued_at: tag_time(&bundle.tags, "issued-at").or(bundle.attributes.created),
                    expires: bundle.attributes.exp,
                    source: bundle.tags.get("source").cloned(),
                    server_time: bundle.server_time,
                    value: bundle.value,
                })
            }
            Store::File { path } => load_file(path).await,
        }
    }

    /// Writes a new token, reads it back and checks it, and returns what was stored.
    /// The previous token stays valid in Entra, so a failure here loses nothing.
    pub async fn save(&self, new: &NewToken<'_>) -> Result<StoredToken, StoreError> {
        check_refresh_token(new.value.expose_secret()).map_err(|why| StoreError::UnusableNew {
            store: self.describe(),
            why,
        })?;
        crate::support::scrub::remember(new.value.expose_secret());
        let written = match self {
            Store::KeyVault { client, name } => {
                let mut tags = BTreeMap::new();
                tags.insert("issued-at".to_string(), rfc3339(new.issued_at));
                tags.insert("rotated-by".to_string(), hostname());
                tags.insert("source".to_string(), new.source.as_str().to_string());
                tags.insert(
                    "tenantwatch-version".to_string(),
                    env!("CARGO_PKG_VERSION").to_string(),
                );
                let bundle = client
                    .set_secret(
                        name,
                        &NewSecret {
                            value: new.value,
                            content_type: CONTENT_TYPE,
                            expires: Some(new.expires),
                            tags,
                        },
                    )
                    .await
                    .map_err(|source| kv_error(name, source))?;
                let version = bundle.version().to_string();
                // Read back the exact version written, not "latest": another replica may have written since.
                let back = client
                    .get_secret(name, Some(&version))
                    .await
                    .map_err(|source| kv_error(name, source))?;
                if back.value.expose_secret() != new.value.expose_secret() {
                    return Err(StoreError::ReadBack {
                        store: self.describe(),
                        version,
                    });
                }
                version
            }
            Store::File { path } => {
                let version = uuid::Uuid::new_v4().simple().to_string();
                let doc = FileDoc {
                    refresh_token: new.value.clone(),
                    version: version.clone(),
                    issued_at: Some(new.issued_at),
                    expires: Some(new.expires),
                    source: Some(new.source.as_str().to_string()),
                };
                write_file(path, &doc).await?;
                let back = load_file(path).await?;
                if back.version != version
                    || back.value.expose_secret() != new.value.expose_secret()
                {
                    return Err(StoreError::ReadBack {
                        store: self.describe(),
                        version,
                    });
                }
                version
            }
        };
        Ok(StoredToken {
            value: new.value.clone(),
            version: written,
            issued_at: Some(new.issued_at),
            expires: Some(new.expires),
            source: Some(new.source.as_str().to_string()),
            server_time: Some(new.issued_at),
        })
    }

    /// Where the token lives, for log lines.
    pub fn describe(&self) -> String {
        match self {
            Store::KeyVault { name, .. } => format!("Key Vault secret {name}"),
            Store::File { path } => format!("file {}", path.display()),
        }
    }
}

fn kv_error(name: &str, source: KeyVaultError) -> StoreError {
    if source.is_not_found() {
        StoreError::Missing {
            name: name.to_string(),
        }
    } else {
        StoreError::KeyVault {
            name: name.to_string(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn file_store_checks_mode_and_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rt");
        std::fs::write(&path, "0.AAA-token\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let store = Store::File { path: path.clone() };
        let err = store.load().await.unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let t = store.load().await.unwrap();
        assert_eq!(t.value.expose_secret(), "0.AAA-token");
        std::fs::write(&path, "").unwrap();
        assert!(matches!(
            store.load().await,
            Err(StoreError::BadFile { .. })
        ));
        std::fs::write(&path, "{\"refresh_token\": \"0.AAA-tok").unwrap();
        let err = store.load().await.unwrap_err().to_string();
        assert!(!err.contains("0.AAA"), "{err}");
    }

    #[tokio::test]
    async fn a_symlinked_token_file_is_refused_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real");
        std::fs::write(&target, "0.AAA-token\n").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.path().join("rt");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let store = Store::File { path: link.clone() };
        let err = store.load().await.unwrap_err().to_string();
        assert!(
            err.contains("symbolic link") && err.contains("real"),
            "{err}"
        );
        let v = SecretString::from("0.new-token".to_string());
        let err = store
            .save(&NewToken {
                value: &v,
                issued_at: 1_700_000_000,
                expires: 1_700_000_000 + 90 * 86400,
                source: Source::Rotation,
            })
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "0.AAA-token\n");
    }

    #[tokio::test]
    async fn an_unusable_value_is_refused_on_read_and_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rt");
        let store = Store::File { path: path.clone() };
        for bad in ["tok en", "{\"refresh_token\":\" \",\"version\":\"1\"}"] {
            std::fs::write(&path, bad).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            assert!(store.load().await.is_err(), "{bad:?} accepted");
        }
        let huge = SecretString::from("a".repeat(20_000));
        let err = store
            .save(&NewToken {
                value: &huge,
                issued_at: 1,
                expires: 2,
                source: Source::Rotation,
            })
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::UnusableNew { .. }), "{err}");
    }

    #[tokio::test]
    async fn file_store_save_is_atomic_0600_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rt");
        let store = Store::File { path: path.clone() };
        let v = SecretString::from("0.new-token".to_string());
        let saved = store
            .save(&NewToken {
                value: &v,
                issued_at: 1_700_000_000,
                expires: 1_700_000_000 + 90 * 86400,
                source: Source::Consent,
            })
            .await
            .unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let back = store.load().await.unwrap();
        assert_eq!(back.version, saved.version);
        assert_eq!(back.value.expose_secret(), "0.new-token");
        assert_eq!(back.source.as_deref(), Some("consent"));
        assert_eq!(back.expires, Some(1_700_000_000 + 90 * 86400));
        // No temp files left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
