//! Unguessable ids without a random-number crate.
//!
//! std's `RandomState` keys SipHash-1-3 from the operating system's random source. SipHash is a
//! keyed pseudo-random function, so hashing a counter under secret keys yields output that
//! cannot be predicted without those keys, which is all session and private ids need.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

thread_local! {
    static KEYS: RandomState = RandomState::new();
    static COUNTER: Cell<u64> = const { Cell::new(0) };
}

/// Fills `out` with unpredictable bytes.
pub fn fill(out: &mut [u8]) {
    for chunk in out.chunks_mut(8) {
        let n = COUNTER.with(|c| {
            let n = c.get();
            c.set(n.wrapping_add(1));
            n
        });
        let word = KEYS.with(|keys| {
            let mut hasher = keys.build_hasher();
            hasher.write_u64(n);
            hasher.finish()
        });
        chunk.copy_from_slice(&word.to_le_bytes()[..chunk.len()]);
    }
}
