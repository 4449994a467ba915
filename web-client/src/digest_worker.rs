//! What the page's digest worker (`www/digest-worker.js`) runs: SHA-256 off the page's main thread.
//!
//! Hashing is the largest cost of receiving a file in a page (it runs at every byte), so the page
//! hands it to a worker: the client posts each Blob part of a received file as it is made, and the
//! worker feeds them to a [`PartHasher`]. A part that does not continue the hashed prefix (after a
//! resume) makes the worker read the assembled file back when the file is complete, still off the
//! main thread. A file to send is hashed there too.

use wasm_bindgen::prelude::*;

use crate::digest::ReceivedDigest;

/// The running SHA-256 of one file, fed with the parts that arrive.
#[wasm_bindgen]
#[derive(Default)]
pub struct PartHasher {
    digest: ReceivedDigest,
}

#[wasm_bindgen]
impl PartHasher {
    /// A hasher of nothing yet.
    #[wasm_bindgen(constructor)]
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the bytes of the part at `offset`.
    pub fn write(&mut self, offset: f64, bytes: &[u8]) {
        self.digest.write(offset as u64, bytes);
    }

    /// The digest in lowercase hex if every byte of a `size`-byte file came in order; otherwise
    /// `undefined`, and the file must be read back into a new hasher.
    pub fn finish(&self, size: f64) -> Option<String> {
        self.digest.finish(size as u64).map(hex::encode)
    }
}
