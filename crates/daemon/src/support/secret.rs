//! Secret values: read from files or the environment, held in redacting types.

use std::path::{Path, PathBuf};

pub use secrecy::{ExposeSecret, SecretString};

use crate::support::files::{read_private, Readers, SECRET_LIMIT};

/// Why a secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The file named by a `*_file` key could not be read.
    #[error("{key}: cannot read secret file {path}: {source}")]
    Read {
        key: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file exists but holds nothing but whitespace.
    #[error("{key}: secret file {path} is empty")]
    Empty { key: String, path: PathBuf },
}

/// Reads a secret file (its path already resolved by config), trimming the trailing newline editors and `echo` add.
/// A file other users can read is refused unless `readers` allows it.
pub fn read_secret_file(
    key: &str,
    path: &Path,
    readers: Readers,
) -> Result<SecretString, SecretError> {
    let path = path.to_path_buf();
    let read = |source| SecretError::Read {
        key: key.to_string(),
        path: path.clone(),
        source,
    };
    let bytes = read_private(&path, SECRET_LIMIT, readers).map_err(read)?;
    let text = String::from_utf8(bytes).map_err(|_| {
        read(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not UTF-8 text",
        ))
    })?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(SecretError::Empty {
            key: key.to_string(),
            path,
        });
    }
    crate::support::scrub::remember(trimmed);
    Ok(SecretString::from(trimmed.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts() {
        let s = SecretString::from("hunter2".to_string());
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn file_is_trimmed_and_empty_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        std::fs::write(&p, "abc\n").unwrap();
        assert_eq!(
            read_secret_file("k", &p, Readers::Anyone)
                .unwrap()
                .expose_secret(),
            "abc"
        );
        std::fs::write(&p, "\n").unwrap();
        let err = read_secret_file("k", &p, Readers::Anyone)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("k: secret file") && err.contains("empty"),
            "{err}"
        );
        let err = read_secret_file(
            "partner.client_secret_file",
            &dir.path().join("nope"),
            Readers::Anyone,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("partner.client_secret_file: cannot read"),
            "{err}"
        );
    }
}
