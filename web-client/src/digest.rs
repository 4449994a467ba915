//! The SHA-256 of a file received in chunks, computed as the chunks arrive when they come in order,
//! so the file never has to be read back. A chunk that does not continue the hashed prefix (a
//! resumed delivery sending bytes again) is stored but not hashed; the digest is then computed by
//! reading the assembled file back.

use sha2::{Digest, Sha256};

/// The running digest of one received file.
#[derive(Clone, Debug)]
pub struct ReceivedDigest {
    hasher: Sha256,
    hashed: u64,
    in_order: bool,
}

impl Default for ReceivedDigest {
    fn default() -> Self {
        Self::new()
    }
}

impl ReceivedDigest {
    /// A digest of nothing yet.
    pub fn new() -> Self {
        Self {
            hasher: Sha256::new(),
            hashed: 0,
            in_order: true,
        }
    }

    /// Takes the bytes written at `offset`.
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        if !self.in_order {
            return;
        }
        let end = offset + data.len() as u64;
        if offset > self.hashed {
            self.in_order = false;
        } else if end > self.hashed {
            // Bytes sent again after a resume overlap what is hashed: hash only the new part.
            let skip = usize::try_from(self.hashed - offset).unwrap_or(usize::MAX);
            self.hasher.update(&data[skip.min(data.len())..]);
            self.hashed = end;
        }
    }

    /// The digest if every byte of a `size`-byte file was hashed in order; `None` if the file
    /// must be read back.
    pub fn finish(&self, size: u64) -> Option<[u8; 32]> {
        (self.in_order && self.hashed == size).then(|| self.hasher.clone().finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha256(data: &[u8]) -> [u8; 32] {
        Sha256::digest(data).into()
    }

    #[test]
    fn chunks_in_order_and_resent_overlaps_give_the_file_digest() {
        let file: Vec<u8> = (0..100_000u32).map(|n| (n * 7 % 251) as u8).collect();
        let mut digest = ReceivedDigest::new();
        digest.write(0, &file[..30_000]);
        digest.write(30_000, &file[30_000..60_000]);
        // A resumed delivery starts again from an earlier byte.
        digest.write(50_000, &file[50_000..80_000]);
        assert_eq!(digest.finish(100_000), None, "not complete yet");
        digest.write(80_000, &file[80_000..]);
        assert_eq!(digest.finish(100_000), Some(sha256(&file)));
    }

    #[test]
    fn a_gap_means_reading_the_file_back() {
        let mut digest = ReceivedDigest::new();
        digest.write(0, &[1; 10]);
        digest.write(20, &[2; 10]);
        digest.write(10, &[3; 10]);
        assert_eq!(digest.finish(30), None);
    }

    #[test]
    fn an_empty_file_hashes_to_the_empty_digest() {
        assert_eq!(ReceivedDigest::new().finish(0), Some(sha256(b"")));
        assert_eq!(ReceivedDigest::default().finish(0), Some(sha256(b"")));
    }
}
