//! Noticing the database file being removed or replaced under the gateway.

use std::path::Path;

use super::error::StoreError;

/// The database file's identity on disk (device and inode), to notice it being removed or
/// replaced under the gateway: SQLite would go on writing to the open, deleted file, and
/// everything acked from then on would vanish at the next start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileIdentity {
    device: u64,
    inode: u64,
}

impl FileIdentity {
    pub fn of(path: &Path) -> std::io::Result<FileIdentity> {
        use std::os::unix::fs::MetadataExt;
        let metadata = std::fs::metadata(path)?;
        Ok(FileIdentity {
            device: metadata.dev(),
            inode: metadata.ino(),
        })
    }

    /// Fails unless `path` is still the file that was opened.
    pub fn check(self, path: &Path) -> Result<(), StoreError> {
        match FileIdentity::of(path) {
            Ok(now) if now == self => Ok(()),
            Ok(_) => Err(StoreError::FileReplaced {
                path: path.to_owned(),
            }),
            Err(error) => Err(StoreError::FileGone {
                path: path.to_owned(),
                reason: error.to_string(),
            }),
        }
    }
}
