//! Where the partner's refresh token lives: a Key Vault secret or a local file.
//! The store is the daemon's only durable state; a restart re-reads it.
//!
//! Writes never replace the only copy: Key Vault keeps every version, and the file
//! store writes a temporary file, syncs it and renames it over the old one, so at
//! every instant the store holds either the old token or the new one, whole.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::keyvault::{KeyVaultClient, KeyVaultError, NewSecret};
use crate::secret::{ExposeSecret, SecretString};

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

/// A refresh token read from the store.
#[derive(Debug, Clone)]
pub struct StoredToken {
    /// The refresh token.
    pub value: SecretString,
    /// Store-specific version id (Key Vault version, or the file's version field).
    pub version: String,
    /// When Entra issued this token, unix seconds, if recorded (else when it was written).
    pub issued_at: Option<i64>,
    /// When it expires if unused (issue + 90 days), if recorded.
    pub expires: Option<i64>,
    /// Who wrote it, if recorded.
    pub source: Option<String>,
    /// The store's clock when it was read (Key Vault's `Date`; local time for a
    /// file), the frame `issued_at` is measured in.
    pub server_time: Option<i64>,
}

impl StoredToken {
    /// Seconds left before the token dies unused: issue time + 90 days, measured
    /// in the clock frame of whoever stamped the issue time.
    pub fn remaining(&self, lifetime: std::time::Duration) -> Option<f64> {
        let issued = self.issued_at? as f64;
        let now = self
            .server_time
            .map(|t| t as f64)
            .unwrap_or_else(crate::snapshot::unix_now);
        Some(issued + lifetime.as_secs_f64() - now)
    }

    /// The token's age in the same frame.
    pub fn age(&self) -> Option<f64> {
        let now = self
            .server_time
            .map(|t| t as f64)
            .unwrap_or_else(crate::snapshot::unix_now);
        Some(now - self.issued_at? as f64)
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

/// The JSON document of the file store. A file holding only the bare token is read too.
#[derive(Deserialize)]
struct FileDoc {
    refresh_token: SecretString,
    version: String,
    issued_at: Option<i64>,
    expires: Option<i64>,
    source: Option<String>,
}

fn tag_time(tags: &BTreeMap<String, String>, key: &str) -> Option<i64> {
    let v = tags.get(key)?;
    chrono::DateTime::parse_from_rfc3339(v)
        .ok()
        .map(|t| t.timestamp())
}

/// This machine's name, for the `rotated-by` tag.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_string())
}

fn rfc3339(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

impl Store {
    /// Reads the current refresh token.
    pub async fn load(&self) -> Result<StoredToken, StoreError> {
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

async fn load_file(path: &Path) -> Result<StoredToken, StoreError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let err = |source| StoreError::File {
        path: path.to_path_buf(),
        source,
    };
    let meta = tokio::fs::metadata(path).await.map_err(err)?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(StoreError::Permissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    let owned = path.to_path_buf();
    let text = tokio::task::spawn_blocking(move || {
        crate::files::read_capped_string(&owned, crate::files::SECRET_LIMIT)
    })
    .await
    .map_err(|e| err(std::io::Error::other(e)))?
    .map_err(err)?;
    let bad = |why: &str| StoreError::BadFile {
        path: path.to_path_buf(),
        why: why.to_string(),
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(bad("the file is empty"));
    }
    if trimmed.starts_with('{') {
        // Never echo the parse error's context: it would quote the token.
        let doc: FileDoc = serde_json::from_str(trimmed).map_err(|e| {
            bad(&format!(
                "not a tenantwatch token file (JSON error at line {} column {})",
                e.line(),
                e.column()
            ))
        })?;
        if doc.refresh_token.expose_secret().trim().is_empty() {
            return Err(bad("refresh_token is empty"));
        }
        return Ok(StoredToken {
            value: doc.refresh_token,
            version: doc.version,
            issued_at: doc.issued_at,
            expires: doc.expires,
            source: doc.source,
            server_time: None,
        });
    }
    // A bare token pasted in by hand: versioned by modification time.
    Ok(StoredToken {
        value: SecretString::from(trimmed.to_string()),
        version: meta.mtime().to_string(),
        issued_at: Some(meta.mtime()),
        expires: None,
        source: None,
        server_time: None,
    })
}

/// Temp file in the same directory (so rename is atomic), 0600 from creation,
/// fsync, rename over the old file, fsync the directory so the rename is durable.
async fn write_file(path: &Path, doc: &FileDoc) -> Result<(), StoreError> {
    let path = path.to_path_buf();
    let text = serde_json::to_vec_pretty(&SerializeDoc(doc)).map_err(|e| StoreError::BadFile {
        path: path.clone(),
        why: format!("cannot encode: {e}"),
    })?;
    let p = path.clone();
    tokio::task::spawn_blocking(move || write_file_sync(&p, &text))
        .await
        .map_err(|e| StoreError::File {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?
        .map_err(|source| StoreError::File { path, source })
}

/// Serializes the token in clear: the one place the file store must write it.
struct SerializeDoc<'a>(&'a FileDoc);

impl Serialize for SerializeDoc<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let d = self.0;
        let mut st = s.serialize_struct("FileDoc", 5)?;
        st.serialize_field("refresh_token", d.refresh_token.expose_secret())?;
        st.serialize_field("version", &d.version)?;
        st.serialize_field("issued_at", &d.issued_at)?;
        st.serialize_field("expires", &d.expires)?;
        st.serialize_field("source", &d.source)?;
        st.end()
    }
}

fn write_file_sync(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("refresh-token");
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
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
