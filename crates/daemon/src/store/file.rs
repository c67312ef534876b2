//! The file store: one JSON document (or a bare token pasted by hand), mode
//! 0600, replaced atomically: a temporary file in the same directory, synced,
//! renamed over the old one, and the directory synced, so at every instant
//! the file holds either the old token or the new one, whole.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::model::StoredToken;
use crate::store::StoreError;
use crate::support::secret::{ExposeSecret, SecretString};

/// The JSON document of the file store. A file holding only the bare token is read too.
#[derive(Deserialize)]
pub(super) struct FileDoc {
    pub(super) refresh_token: SecretString,
    pub(super) version: String,
    pub(super) issued_at: Option<i64>,
    pub(super) expires: Option<i64>,
    pub(super) source: Option<String>,
}

/// A token file that is a symbolic link is refused, on read and on write:
/// rotation renames a new file over the path, which would replace the link
/// and leave its target holding the old token. Refusing at start, rather
/// than at the first rotation days later, lets the operator fix it at once.
async fn refuse_symlink(path: &Path) -> Result<(), StoreError> {
    match tokio::fs::symlink_metadata(path).await {
        Ok(m) if m.file_type().is_symlink() => {
            let target = tokio::fs::read_link(path)
                .await
                .map(|t| format!(" (to {})", t.display()))
                .unwrap_or_default();
            Err(StoreError::BadFile {
                path: path.to_path_buf(),
                why: format!("it is a symbolic link{target}, which rotation would replace instead of its target; point store.file.path at the file itself"),
            })
        }
        // A missing file is reported by the read (or created by the write).
        _ => Ok(()),
    }
}

pub(super) async fn load_file(path: &Path) -> Result<StoredToken, StoreError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let err = |source| StoreError::File {
        path: path.to_path_buf(),
        source,
    };
    refuse_symlink(path).await?;
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
        crate::support::files::read_capped_string(&owned, crate::support::files::SECRET_LIMIT)
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
pub(super) async fn write_file(path: &Path, doc: &FileDoc) -> Result<(), StoreError> {
    refuse_symlink(path).await?;
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
