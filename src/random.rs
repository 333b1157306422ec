//! Unguessable ids, straight from the operating system's CSPRNG.
//!
//! A session id or a recovery id (`pid`) lets whoever holds it act as its client, so every
//! byte comes from `getrandom(2)`, the kernel's cryptographic generator, not from a hasher
//! whose algorithm std leaves unspecified. One system call per id: ids are made once per
//! session, far from any hot path.

use std::io::Read;

/// Fills `out` with bytes from the kernel's CSPRNG. Early in boot this waits until the
/// generator is seeded, as it should. Panics only if the system has no random source at all
/// (neither `getrandom(2)` nor `/dev/urandom`), where no id could be safe.
pub fn fill(out: &mut [u8]) {
    let mut filled = 0;
    while filled < out.len() {
        let rest = &mut out[filled..];
        // SAFETY: the pointer and length describe `rest`, a live, writable slice that the
        // call writes at most `rest.len()` bytes into.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n > 0 {
            filled += n as usize;
            continue;
        }
        let error = std::io::Error::last_os_error();
        if error.kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        // A kernel older than 3.17 has no getrandom(2): the same generator, through its device.
        let read =
            std::fs::File::open("/dev/urandom").and_then(|mut device| device.read_exact(rest));
        if let Err(device_error) = read {
            panic!(
                "no random source for session ids: getrandom: {error}; /dev/urandom: {device_error}"
            );
        }
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_every_byte_and_differs_each_time() {
        // 64 bytes of zeros from a working generator happen with probability 2^-512.
        let mut a = [0u8; 64];
        let mut b = [0u8; 64];
        fill(&mut a);
        fill(&mut b);
        assert_ne!(a, [0u8; 64]);
        assert_ne!(a, b);
        // Odd lengths too (a 15-byte id).
        let mut odd = [0u8; 15];
        fill(&mut odd);
        assert_ne!(odd, [0u8; 15]);
    }
}
