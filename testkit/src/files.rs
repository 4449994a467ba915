//! File contents for tests.

use bytes::Bytes;

/// `len` pseudo-random bytes (xorshift), the same for the same seed.
pub fn file_bytes(len: usize, seed: u64) -> Bytes {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect::<Vec<u8>>()
        .into()
}
