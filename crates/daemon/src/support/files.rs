//! Reading the small files an operator points tenantwatch at (config, secrets,
//! certificates, CA bundles, the token file) without trusting them to be small:
//! a device such as /dev/zero, a FIFO or a file named by mistake must end in an
//! error, not in reading forever or filling memory.

use std::io::Read;
use std::path::Path;

/// Upper bound for secrets, tokens and keys.
pub const SECRET_LIMIT: u64 = 64 * 1024;
/// Upper bound for certificates, CA bundles and config files.
pub const DOCUMENT_LIMIT: u64 = 16 * 1024 * 1024;

/// Reads `path` if it is a regular file of at most `limit` bytes.
pub fn read_capped(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    read_checked(path, limit, None)
}

/// Who may read a secret file besides its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Readers {
    /// Only the owner: group and others have no access (as for the token file).
    #[default]
    OwnerOnly,
    /// Anyone the file system allows (`secrets.allow_readable_by_others`, for
    /// Kubernetes secret volumes, whose files are group-readable under fsGroup).
    Anyone,
}

/// [`read_capped`] for a secret: also refused when users other than its owner
/// can read it, unless `readers` allows that.
pub fn read_private(path: &Path, limit: u64, readers: Readers) -> std::io::Result<Vec<u8>> {
    read_checked(path, limit, Some(readers))
}

fn read_checked(path: &Path, limit: u64, private: Option<Readers>) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
    // writer forever, before the regular-file check below could refuse it.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mode = meta.permissions().mode() & 0o777;
    if private == Some(Readers::OwnerOnly) && mode & 0o077 != 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("mode {mode:o} lets other users read it; chmod 600 (for a mounted Kubernetes secret, set secrets.allow_readable_by_others = true)"),
        ));
    }
    let mut buf = Vec::new();
    f.take(limit + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(std::io::Error::other(format!("larger than {limit} bytes")));
    }
    Ok(buf)
}

/// [`read_capped`] as UTF-8 text.
pub fn read_capped_string(path: &Path, limit: u64) -> std::io::Result<String> {
    String::from_utf8(read_capped(path, limit)?)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_capped(&fifo, 10).unwrap_err();
        assert_eq!(e.to_string(), "not a regular file");
    }

    #[test]
    fn secrets_others_can_read_are_refused_unless_allowed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        std::fs::write(&p, "secret").unwrap();
        for mode in [0o644, 0o640, 0o604] {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = read_private(&p, 100, Readers::OwnerOnly).unwrap_err();
            assert!(e.to_string().contains(&format!("mode {mode:o}")), "{e}");
            assert_eq!(read_private(&p, 100, Readers::Anyone).unwrap(), b"secret");
        }
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert_eq!(
            read_private(&p, 100, Readers::OwnerOnly).unwrap(),
            b"secret"
        );
    }

    #[test]
    fn devices_and_oversized_files_are_refused() {
        let e = read_capped(Path::new("/dev/zero"), 10).unwrap_err();
        assert_eq!(e.to_string(), "not a regular file");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, "0123456789A").unwrap();
        assert!(read_capped(&p, 10)
            .unwrap_err()
            .to_string()
            .contains("larger than 10"));
        assert_eq!(read_capped(&p, 11).unwrap().len(), 11);
        assert!(read_capped(dir.path(), 10).is_err());
    }
}
