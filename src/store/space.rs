//! The free-space floor (`--min-free-space`): below it the store refuses new messages,
//! before SQLite would meet a full disk in the middle of a transaction, and takes them again
//! once there is room, by itself.

use std::path::Path;

use super::error::StoreError;

/// Bytes free for unprivileged writers on the filesystem holding `path` (or its folder, when
/// the file does not exist yet).
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let target = if path.exists() {
        path
    } else {
        match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        }
    };
    let name = std::ffi::CString::new(target.as_os_str().as_encoded_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `name` is a NUL-terminated path and `stats` has room for one `statvfs`, which
    // the call fills when it returns 0.
    let done = unsafe { libc::statvfs(name.as_ptr(), stats.as_mut_ptr()) };
    if done != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it wrote the whole struct.
    let stats = unsafe { stats.assume_init() };
    // The fields are 32-bit on some targets (armv7): a conversion there, none here.
    #[allow(clippy::useless_conversion)]
    let (blocks, size) = (u64::from(stats.f_bavail), u64::from(stats.f_frsize));
    Ok(blocks.saturating_mul(size))
}

/// The floor and whether the store is below it now (to log each episode once).
pub struct SpaceGuard {
    floor: u64,
    low: bool,
}

impl SpaceGuard {
    /// A floor of 0 turns the guard off.
    pub fn new(floor: u64) -> SpaceGuard {
        SpaceGuard { floor, low: false }
    }

    /// Whether `free` bytes leave room for messages; logs when that changes.
    pub fn check_free(&mut self, free: u64) -> Result<(), StoreError> {
        if free >= self.floor {
            if self.low {
                log::info!(
                    "free space is back above --min-free-space ({free} bytes free): \
                     taking messages again"
                );
                self.low = false;
            }
            return Ok(());
        }
        if !self.low {
            log::warn!(
                "only {free} bytes free on the database's filesystem, below --min-free-space \
                 {}: refusing new messages until there is room",
                self.floor
            );
            self.low = true;
        }
        Err(StoreError::LowSpace {
            free,
            floor: self.floor,
        })
    }

    /// Checks the filesystem holding `path`; one that cannot be read is let through (SQLite
    /// then says what is wrong, if anything).
    pub fn check(&mut self, path: &Path) -> Result<(), StoreError> {
        if self.floor == 0 || path == Path::new(":memory:") {
            return Ok(());
        }
        match free_bytes(path) {
            Ok(free) => self.check_free(free),
            Err(error) => {
                log::debug!("cannot read the free space of {}: {error}", path.display());
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_below_the_floor_and_recovers_by_itself() {
        let mut guard = SpaceGuard::new(1000);
        assert_eq!(guard.check_free(5000), Ok(()));
        assert_eq!(
            guard.check_free(999),
            Err(StoreError::LowSpace {
                free: 999,
                floor: 1000
            })
        );
        assert!(guard.check_free(10).is_err());
        assert_eq!(guard.check_free(1000), Ok(()));
        // This machine's temporary folder has some room, and the floor 0 is off.
        assert!(free_bytes(&std::env::temp_dir()).unwrap() > 0);
        assert_eq!(SpaceGuard::new(0).check(&std::env::temp_dir()), Ok(()));
        assert!(
            SpaceGuard::new(u64::MAX)
                .check(&std::env::temp_dir().join("nonexistent.db"))
                .is_err()
        );
    }
}
