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
    let f = std::fs::File::open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
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
