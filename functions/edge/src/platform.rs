//! What the handlers need from the platform, as one small async trait: key-value, the gateway's
//! publish endpoint, the other application server, the clock and randomness. The Spin adapter
//! ([`crate::spin`]) implements it over Spin's key-value and outbound HTTP; tests implement it in
//! memory, so every handler runs natively.

use bytes::Bytes;
use rcs_core::ids::Entropy;
use rcs_core::time::Timestamp;

/// A platform operation that failed; the text is the platform's own.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlatformError {
    /// The key-value store failed.
    #[error("key-value store: {0}")]
    Store(String),
    /// The platform's random source failed.
    #[error("random source: {0}")]
    Random(String),
    /// An outbound HTTP request failed or was answered with an error status.
    #[error("outbound request to {url}: {reason}")]
    Outbound {
        /// Where it went.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

/// The platform under a handler. A component serves one request at a time per instance, so the
/// futures need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait Platform {
    /// The value under `key`, if any.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, PlatformError>;
    /// Stores `value` under `key`.
    async fn set(&self, key: &str, value: Bytes) -> Result<(), PlatformError>;
    /// Removes `key` (a missing key is not an error).
    async fn delete(&self, key: &str) -> Result<(), PlatformError>;
    /// Stores every pair, all or none (Spin: `wasi:keyvalue/batch.set-many`).
    async fn set_many(&self, pairs: Vec<(String, Bytes)>) -> Result<(), PlatformError>;
    /// Removes every key (`wasi:keyvalue/batch.delete-many`).
    async fn delete_many(&self, keys: Vec<String>) -> Result<(), PlatformError>;
    /// A compare-and-swap begun on one key (`wasi:keyvalue/atomics.cas`).
    type Swap;
    /// Begins a compare-and-swap on `key`: its handle and the value stored now.
    async fn begin_swap(&self, key: &str) -> Result<(Self::Swap, Option<Bytes>), PlatformError>;
    /// Stores `value` if the key still holds what [`Platform::begin_swap`] read; `false` if
    /// another write came first.
    async fn swap(&self, swap: Self::Swap, value: Bytes) -> Result<bool, PlatformError>;
    /// The keys for which `keep` holds. Implementations filter while listing, so that the keys of
    /// file chunks, the bulk of a store, are never all held at once.
    async fn keys(&self, keep: &dyn Fn(&str) -> bool) -> Result<Vec<String>, PlatformError>;
    /// POSTs a JSON publish body to the gateway's publish endpoint at `url`.
    async fn publish(&self, url: &str, body: String) -> Result<(), PlatformError>;
    /// POSTs a SIP request (`message/sip`) to the other application server at `url` and returns
    /// its SIP answer.
    async fn peer_request(&self, url: &str, message: Bytes) -> Result<Bytes, PlatformError>;
    /// The wall clock.
    fn now(&self) -> Timestamp;
    /// Fresh randomness, for one input.
    fn entropy(&self) -> Result<Entropy, PlatformError>;
    /// Writes a line to the component's log.
    fn log(&self, line: &str);
}
