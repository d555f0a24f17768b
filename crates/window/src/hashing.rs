//! Hashers for keys that are already well-mixed integers: the std SipHash
//! would hash them a second time on the hot path.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// For `u64` keys that are themselves SipHash outputs (random per process).
#[derive(Default)]
pub(crate) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn write(&mut self, bytes: &[u8]) {
        // Only integer keys use this hasher; fold anything else in anyway.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
    fn write_u32(&mut self, n: u32) {
        // Dense interned ids: spread them over all 64 bits (Fibonacci
        // hashing) so the table's control bytes, taken from the top bits,
        // differ between neighbours.
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type FastBuild = BuildHasherDefault<PassThrough>;
pub(crate) type U64Map<V> = HashMap<u64, V, FastBuild>;
pub(crate) type IdSet = HashSet<u32, FastBuild>;
