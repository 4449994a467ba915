//! The shared-store layout: how files, uploads and records live in a key-value store whose values are
//! size-limited (Spin's key-value: about 1 MB per value), and the sans-IO writer that puts an upload
//! there.
//!
//! Keys:
//! - `up/<upload-id>/<n>`: chunk `n` of an upload, `chunk_size` bytes except the last;
//! - `up/<upload-id>`: the [`UploadState`] of an upload in progress (what has been received);
//! - `file/<sha256-hex>`: the [`Manifest`] of a completed file. It is written only once the stored
//!   bytes hash to that digest, so a file is never visible half-written; its chunks stay under the
//!   upload's prefix, and a second upload of the same bytes is deleted in favour of the first;
//! - registrations, transfers and sessions of the application servers, under the prefixes in [`keys`].
//!
//! The core never calls a store. [`UploadWriter`] yields [`StoreOp`]s for the caller to apply in order
//! and takes the values it asked for back as input; [`KeyValue`] and [`apply`] let tests, benchmarks
//! and synchronous hosts run those operations directly, and [`MemoryStore`] is the in-memory store for
//! tests.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Range;

use bytes::{Bytes, BytesMut};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::digest::common::hazmat::SerializableState;
use sha2::{Digest, Sha256};

use crate::first_value::ContentDigest;
use crate::ranges::{RangeSet, TooManyRanges};
use crate::time::Timestamp;

/// The key layout of the shared store: every key the servers and the edge write is named here,
/// and [`keys::classify`] tells a sweep what a key holds.
pub mod keys {
    use crate::first_value::ContentDigest;
    use crate::service::Side;

    /// The prefix of a completed file's manifest.
    const FILE: &str = "file/";
    /// The prefix of uploads and their chunks.
    const UPLOAD: &str = "up/";
    /// The prefix of registrations.
    const REGISTRATION: &str = "reg/";
    /// The prefix of MSRP sessions (and their per-connection windows).
    const MSRP_SESSION: &str = "msrp/";
    /// The prefix of pull offers.
    const OFFER: &str = "offer/";
    /// The prefix of connection records.
    const CONNECTION: &str = "conn/";
    /// The prefix of timers.
    const TIMER: &str = "timer/";
    /// The prefix of accounts.
    const ACCOUNT: &str = "account/";
    /// The prefix of failed-attempt counters.
    const THROTTLE: &str = "throttle/";
    /// The prefix of the uses of HTTP digest nonces.
    const NONCE: &str = "nonce/";

    /// The use of an HTTP digest nonce (a nonce is hex and `.`, safe in a key).
    pub fn nonce_use(nonce: &str) -> String {
        format!("{NONCE}{nonce}")
    }

    /// The account of `user` (a validated user name, [`crate::accounts::validate_user_name`]).
    pub fn account(user: &str) -> String {
        format!("{ACCOUNT}{user}")
    }

    /// The failed sign-ins of `user`.
    pub fn user_throttle(user: &str) -> String {
        format!("{THROTTLE}user/{user}")
    }

    /// The failed sign-ins on one gateway connection.
    pub fn connection_throttle(connection: &str) -> String {
        format!("{THROTTLE}conn/{connection}")
    }

    /// The manifest of the completed file with this digest.
    pub fn file(digest: &ContentDigest) -> String {
        format!("{FILE}{}", digest.to_hex())
    }

    /// The state of an upload in progress.
    pub fn upload(upload_id: &str) -> String {
        format!("{UPLOAD}{upload_id}")
    }

    /// Chunk `index` of the chunk set `chunks` (an upload's, later its published file's).
    pub fn chunk(chunks: &str, index: u64) -> String {
        format!("{UPLOAD}{chunks}/{index}")
    }

    /// A user's registration (address of record, e.g. `sip:alice@example.com`): the bindings of
    /// all the user's devices, shared by both servers.
    pub fn registration(aor: &str) -> String {
        format!("{REGISTRATION}{aor}")
    }

    /// The state of an MSRP session, by its session id.
    pub fn msrp_session(session_id: &str) -> String {
        format!("{MSRP_SESSION}{session_id}")
    }

    /// The chunks in flight of one connection bound to the session at `session_key`.
    pub fn window(session_key: &str, connection: &str) -> String {
        format!("{session_key}/window/{connection}")
    }

    /// The pull offer of the file with this digest to `recipient`.
    pub fn offer(recipient: &str, digest: &ContentDigest) -> String {
        format!("{OFFER}{recipient}/{}", digest.to_hex())
    }

    /// What a gateway connection is (`conn/<connection id>`), so that its closing can be handled.
    pub fn connection(connection: &str) -> String {
        format!("{CONNECTION}{connection}")
    }

    /// A timer of the `side` server, by the name the server gave it; its value is the due time in
    /// Unix milliseconds. Each server's tick fires its own timers only.
    pub fn timer(side: Side, name: &str) -> String {
        format!("{TIMER}{}/{name}", side.as_str())
    }

    /// What a key holds, for a sweep.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum KeyKind<'k> {
        /// A timer, with its server and its name.
        Timer(Side, &'k str),
        /// A record that expires on its own: a manifest, an upload, a session or one of its
        /// windows, an offer, a connection, a failed-attempt counter ([`crate::server::common::sweep`] judges it).
        Expiring,
        /// A record that something else takes along or keeps: a file chunk (its manifest or
        /// upload takes it), a registration (kept, offline once expired), an account.
        Dependent,
    }

    /// What `key` holds.
    pub fn classify(key: &str) -> KeyKind<'_> {
        if let Some(rest) = key.strip_prefix(TIMER) {
            match rest.split_once('/') {
                Some(("sender", name)) => KeyKind::Timer(Side::Sender, name),
                Some(("receiver", name)) => KeyKind::Timer(Side::Receiver, name),
                // A timer of no server (an older layout) is left to the sweep's classification
                // of the unknown: kept.
                _ => KeyKind::Dependent,
            }
        } else if key.starts_with(FILE)
            || key.strip_prefix(UPLOAD).is_some_and(|id| !id.contains('/'))
            || key.starts_with(MSRP_SESSION)
            || key.starts_with(OFFER)
            || key.starts_with(CONNECTION)
            || key.starts_with(THROTTLE)
            || key.starts_with(NONCE)
        {
            KeyKind::Expiring
        } else {
            KeyKind::Dependent
        }
    }

    /// Whether `key` is a completed file's manifest.
    pub fn is_file(key: &str) -> bool {
        key.starts_with(FILE)
    }

    /// Whether `key` is an upload's state (not one of its chunks).
    pub fn is_upload(key: &str) -> bool {
        key.strip_prefix(UPLOAD).is_some_and(|id| !id.contains('/'))
    }

    /// Whether `key` is a server record with an `expires` of its own: a session or its window, an
    /// offer, a connection, a failed-attempt counter, a nonce's use.
    pub fn is_session_record(key: &str) -> bool {
        [MSRP_SESSION, OFFER, CONNECTION, THROTTLE, NONCE]
            .iter()
            .any(|prefix| key.starts_with(prefix))
    }
}

/// A key-value store operation, applied by the caller in the order it was yielded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreOp {
    /// Read a value; the caller answers with the value (or its absence).
    Get { key: String },
    /// Write a value.
    Set { key: String, value: Bytes },
    /// Delete a value (deleting a missing key is not an error).
    Delete { key: String },
    /// Write `value` (`None`: delete the key) only if the key still holds `expected` (`None`:
    /// still absent); otherwise the write conflicts. The server engine writes and deletes a record
    /// its input read this way, so that an update made meanwhile by another request is never
    /// overwritten unseen.
    Swap {
        key: String,
        expected: Option<Bytes>,
        value: Option<Bytes>,
    },
}

impl StoreOp {
    /// The key the operation is about.
    pub fn key(&self) -> &str {
        match self {
            Self::Get { key }
            | Self::Set { key, .. }
            | Self::Delete { key }
            | Self::Swap { key, .. } => key,
        }
    }
}

/// A failure of a key-value store.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KvError {
    /// The value is larger than the store accepts.
    #[error("value of {size} bytes for {key} exceeds the store's limit of {limit}")]
    ValueTooLarge {
        key: String,
        size: usize,
        limit: usize,
    },
    /// A [`StoreOp::Swap`] found another value than it expected: another request wrote first.
    #[error("{key} was changed by another request")]
    Conflict { key: String },
    /// The backend failed (network, disk, quota); the text is the backend's own.
    #[error("store backend failed: {0}")]
    Backend(String),
}

/// A synchronous key-value store with a per-value size limit: what the layout needs of Spin's
/// key-value interface.
pub trait KeyValue {
    /// The value under `key`, if any.
    fn get(&mut self, key: &str) -> Result<Option<Bytes>, KvError>;
    /// Stores `value` under `key`, replacing any previous value.
    fn set(&mut self, key: &str, value: Bytes) -> Result<(), KvError>;
    /// Removes `key`; removing a missing key succeeds.
    fn delete(&mut self, key: &str) -> Result<(), KvError>;
    /// Whether `key` holds a value.
    fn exists(&mut self, key: &str) -> Result<bool, KvError>;
    /// The largest value the store accepts, in bytes.
    fn max_value_size(&self) -> usize;
}

/// A write as it must go to the store when the writer knows the key's stored value (`known`: it
/// read it, `Some(None)` if absent): a [`StoreOp::Swap`] against that value, or nothing when the
/// write would leave the key as it is. A write of a key the writer did not read, and a `Get`,
/// stay as they are.
pub fn compare_with_known(op: StoreOp, known: Option<&Option<Bytes>>) -> Option<StoreOp> {
    let (key, value) = match op {
        StoreOp::Set { key, value } => (key, Some(value)),
        StoreOp::Delete { key } => (key, None),
        other => return Some(other),
    };
    match known {
        Some(known) if *known == value => None,
        Some(known) => Some(StoreOp::Swap {
            expected: known.clone(),
            key,
            value,
        }),
        None => Some(match value {
            Some(value) => StoreOp::Set { key, value },
            None => StoreOp::Delete { key },
        }),
    }
}

/// Applies one operation to a store; a `Get` returns the value read.
pub fn apply(store: &mut impl KeyValue, op: StoreOp) -> Result<Option<Bytes>, KvError> {
    match op {
        StoreOp::Get { key } => store.get(&key),
        StoreOp::Set { key, value } => store.set(&key, value).map(|()| None),
        StoreOp::Delete { key } => store.delete(&key).map(|()| None),
        StoreOp::Swap {
            key,
            expected,
            value,
        } => {
            if store.get(&key)? != expected {
                return Err(KvError::Conflict { key });
            }
            match value {
                Some(value) => store.set(&key, value).map(|()| None),
                None => store.delete(&key).map(|()| None),
            }
        }
    }
}

/// The largest value Spin's key-value stores accept (hosted Spin: 1 MB); chunks must fit in it.
pub const VALUE_LIMIT: usize = 1024 * 1024;

/// An in-memory [`KeyValue`] for tests, with Spin's value limit unless told otherwise.
#[derive(Clone, Debug)]
pub struct MemoryStore {
    values: BTreeMap<String, Bytes>,
    max_value_size: usize,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_value_limit(VALUE_LIMIT)
    }
}

impl MemoryStore {
    /// An empty store accepting values up to `max_value_size` bytes.
    pub fn with_value_limit(max_value_size: usize) -> Self {
        Self {
            values: BTreeMap::new(),
            max_value_size,
        }
    }

    /// The keys that start with `prefix`, in order.
    pub fn keys_with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.values
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .map(|(key, _)| key.as_str())
            .take_while(move |key| key.starts_with(prefix))
    }

    /// The total size of all values, in bytes.
    pub fn stored_bytes(&self) -> usize {
        self.values.values().map(Bytes::len).sum()
    }
}

impl KeyValue for MemoryStore {
    fn get(&mut self, key: &str) -> Result<Option<Bytes>, KvError> {
        Ok(self.values.get(key).cloned())
    }

    fn set(&mut self, key: &str, value: Bytes) -> Result<(), KvError> {
        if value.len() > self.max_value_size {
            return Err(KvError::ValueTooLarge {
                key: key.to_owned(),
                size: value.len(),
                limit: self.max_value_size,
            });
        }
        self.values.insert(key.to_owned(), value);
        Ok(())
    }

    fn delete(&mut self, key: &str) -> Result<(), KvError> {
        self.values.remove(key);
        Ok(())
    }

    fn exists(&mut self, key: &str) -> Result<bool, KvError> {
        Ok(self.values.contains_key(key))
    }

    fn max_value_size(&self) -> usize {
        self.max_value_size
    }
}

/// How the layout cuts and keeps files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayoutConfig {
    /// Bytes per stored chunk (the last chunk of a file may be shorter). Uploads whose pieces line up
    /// with chunks are written without reading anything back.
    pub chunk_size: u32,
    /// The largest file accepted, in bytes.
    pub max_file_size: u64,
    /// How long a completed file stays downloadable, in seconds.
    pub file_lifetime_secs: u64,
    /// How long an upload may sit unfinished before it is discarded, in seconds.
    pub upload_lifetime_secs: u64,
}

impl Default for LayoutConfig {
    fn default() -> Self {
        Self {
            chunk_size: 64 * 1024,
            max_file_size: 1 << 30,
            file_lifetime_secs: 7 * 24 * 3600,
            upload_lifetime_secs: 24 * 3600,
        }
    }
}

/// Errors of the store layout.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file or upload is larger than the configured maximum.
    #[error("file of {size} bytes exceeds the maximum of {max}")]
    FileTooLarge { size: u64, max: u64 },
    /// Bytes were offered beyond the declared size of the upload.
    #[error("bytes {start}..{end} lie beyond the upload's size of {size}")]
    OutOfBounds { start: u64, end: u64, size: u64 },
    /// The chunk size is zero or larger than the store's value limit.
    #[error("chunk size {chunk_size} is not within 1..={limit}")]
    BadChunkSize { chunk_size: u32, limit: usize },
    /// The bytes arrived too scattered to track.
    #[error(transparent)]
    TooManyRanges(#[from] TooManyRanges),
    /// The complete upload does not hash to the digest the sender announced.
    #[error("upload hashes to {actual}, not the announced {expected}")]
    DigestMismatch {
        expected: ContentDigest,
        actual: ContentDigest,
    },
    /// A stored record could not be decoded.
    #[error("stored record {key} is corrupt: {reason}")]
    CorruptRecord { key: String, reason: String },
    /// A stored record is in another format than the one this build reads.
    #[error("stored record {key} has format version {found:?}, not {expected}")]
    RecordVersion {
        key: String,
        found: Option<u32>,
        expected: u32,
    },
    /// A chunk the layout needs is missing from the store.
    #[error("chunk {key} is missing from the store")]
    MissingChunk { key: String },
    /// A value arrived for a key that was not asked for.
    #[error("unexpected value for {key}")]
    UnexpectedValue { key: String },
    /// The upload has already completed or failed.
    #[error("upload {upload_id} is finished")]
    Finished { upload_id: String },
    /// Other requests kept changing a record while this one tried to update it.
    #[error("{key} kept changing under the request ({attempts} attempts)")]
    Contended { key: String, attempts: u32 },
}

impl StoreError {
    /// The status code that answers a request refused for this error: the same number in SIP, MSRP
    /// and HTTP (413 too large, 400 out of bounds, 500 for what the server, not the request, got
    /// wrong).
    pub fn status(&self) -> u16 {
        match self {
            Self::FileTooLarge { .. } | Self::TooManyRanges(_) => 413,
            Self::OutOfBounds { .. } => 400,
            _ => 500,
        }
    }
}

/// A record of the shared store, stored as JSON with the version of its format beside its fields
/// (`{"version":1,…}`). A record written in another format, or not decodable at all, is an error
/// ([`StoreError::RecordVersion`], [`StoreError::CorruptRecord`]), never taken for an absent one.
pub trait Record: Serialize + DeserializeOwned {
    /// The version of the record's stored format; it changes whenever the format does.
    const VERSION: u32;

    /// The record as stored.
    fn encode(&self) -> Bytes {
        #[derive(Serialize)]
        struct Stored<'r, R> {
            version: u32,
            #[serde(flatten)]
            record: &'r R,
        }
        let stored = Stored {
            version: Self::VERSION,
            record: self,
        };
        // Serializing plain data structures to JSON cannot fail.
        Bytes::from(serde_json::to_vec(&stored).unwrap_or_default())
    }

    /// The record stored under `key`. A record this build wrote begins with its version, which is
    /// read off the front so that the JSON is parsed once; anything else has its version looked up
    /// in a parse of its own.
    fn decode(key: &str, value: &[u8]) -> Result<Self, StoreError> {
        #[derive(Deserialize)]
        struct Version {
            version: Option<u32>,
        }
        let corrupt = |error: serde_json::Error| StoreError::CorruptRecord {
            key: key.to_owned(),
            reason: error.to_string(),
        };
        let version = match leading_version(value) {
            Some(version) => Some(version),
            None => {
                let Version { version } = serde_json::from_slice(value).map_err(corrupt)?;
                version
            }
        };
        if version != Some(Self::VERSION) {
            return Err(StoreError::RecordVersion {
                key: key.to_owned(),
                found: version,
                expected: Self::VERSION,
            });
        }
        serde_json::from_slice(value).map_err(corrupt)
    }
}

/// The version of a record that begins the way [`Record::encode`] writes one (`{"version":N,` or
/// `{"version":N}`), or `None` for any other text.
fn leading_version(value: &[u8]) -> Option<u32> {
    let rest = value.strip_prefix(br#"{"version":"#)?;
    let digits = rest.iter().take_while(|byte| byte.is_ascii_digit()).count();
    if !matches!(rest.get(digits), Some(b',' | b'}')) {
        return None;
    }
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

/// The manifest of a completed file (`file/<sha256-hex>`): where its chunks are and what it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// SHA-256 of the file's bytes: the feature code of the first value.
    pub digest: ContentDigest,
    /// Size in bytes.
    pub size: u64,
    /// The file's name as the sender gave it (untrusted text).
    pub name: Option<String>,
    /// The file's MIME type.
    pub content_type: String,
    /// Bytes per chunk.
    pub chunk_size: u32,
    /// The key prefix of the file's chunks (`up/<chunks>/<n>`), fresh for every upload.
    pub chunks: String,
    /// When the file was completed, in Unix seconds.
    pub created: u64,
    /// When the file stops being downloadable, in Unix seconds.
    pub expires: u64,
}

/// One chunk to read for a byte range of a file, and the part of it that belongs to the range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkRead {
    /// The chunk's key.
    pub key: String,
    /// The chunk's index.
    pub index: u64,
    /// The bytes of the chunk's value that belong to the range.
    pub within: Range<usize>,
}

impl Manifest {
    /// The manifest's own key.
    pub fn key(&self) -> String {
        self.digest.storage_key()
    }

    /// The number of chunks.
    pub fn chunk_count(&self) -> u64 {
        self.size.div_ceil(u64::from(self.chunk_size))
    }

    /// The chunks that hold `range` (clamped to the file), in order.
    pub fn chunk_reads(&self, range: Range<u64>) -> impl Iterator<Item = ChunkRead> + '_ {
        let chunk = u64::from(self.chunk_size);
        let end = range.end.min(self.size);
        let start = range.start.min(end);
        let first = start / chunk;
        let last = if end == start {
            first
        } else {
            end.div_ceil(chunk)
        };
        (first..last).map(move |index| {
            let base = index * chunk;
            let from = start.max(base) - base;
            let to = end.min(base + chunk) - base;
            ChunkRead {
                key: keys::chunk(&self.chunks, index),
                index,
                within: from as usize..to as usize,
            }
        })
    }

    /// Whether the file is past its lifetime at `now`.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now.unix_secs() >= self.expires
    }

    /// The operations that delete the file: its chunks, then its manifest.
    pub fn deletion_ops(&self) -> Vec<StoreOp> {
        let mut ops: Vec<StoreOp> = (0..self.chunk_count())
            .map(|n| StoreOp::Delete {
                key: keys::chunk(&self.chunks, n),
            })
            .collect();
        ops.push(StoreOp::Delete { key: self.key() });
        ops
    }
}

impl Record for Manifest {
    const VERSION: u32 = 1;
}

/// What the sender announced about a file before its bytes arrive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDescription {
    /// Size in bytes.
    pub size: u64,
    /// The file's name (untrusted text).
    pub name: Option<String>,
    /// The file's MIME type.
    pub content_type: String,
    /// The SHA-256 the sender announced, if it did.
    pub sha256: Option<ContentDigest>,
}

/// The persistent state of an upload in progress (`up/<upload-id>`): what has been received and how
/// far the running digest has got.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadState {
    /// The upload's id: its state is `up/<id>`. It names the file and its sender, so that offering
    /// the same file again finds the upload and resumes it.
    pub id: String,
    /// The key prefix of the upload's chunks (`up/<chunks>/<n>`). Fresh for every upload, so that an
    /// upload of a file already published never writes where the published chunks are.
    pub chunks: String,
    /// What the sender announced.
    pub file: FileDescription,
    /// Bytes per chunk.
    pub chunk_size: u32,
    /// The byte ranges stored so far.
    pub received: RangeSet,
    /// How many leading bytes the running digest has consumed.
    hashed: u64,
    /// The running SHA-256 state after `hashed` bytes, serialized.
    #[serde(with = "hex_bytes")]
    hasher: Vec<u8>,
    /// When the upload started, in Unix seconds.
    pub created: u64,
    /// When an unfinished upload is discarded, in Unix seconds.
    pub expires: u64,
    /// The deliveries of this upload's file to its recipients while it is still arriving
    /// (cut-through delivery), so that the first value an upload that resumes sends again goes on
    /// with a recipient's delivery rather than offering the file twice.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deliveries: Vec<ArrivingDelivery>,
    /// Deliveries that have sent every byte stored so far and wait for more (cut-through).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting: Vec<Waiter>,
    /// How the upload ended, once it has, for an upload that had deliveries: its state stays
    /// (until the sweep) instead of being deleted, so that the last change to it is a
    /// compare-and-swap a delivery adding itself as a waiter at that moment meets (a delete is
    /// compared before it is made, not in one step). An ended upload is no upload to resume or to
    /// deliver from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<UploadEnd>,
}

/// How an upload that had deliveries ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UploadEnd {
    /// Its file is published (its manifest names its chunks).
    Published,
    /// It was discarded: its bytes did not hash to the announced digest, or its sender aborted.
    Failed {
        /// Why.
        reason: String,
    },
}

/// A delivery of an upload's file that started while the upload was in progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArrivingDelivery {
    /// The recipient's address of record.
    pub recipient: String,
    /// The delivery's MSRP session id at the receiver AS.
    pub session: String,
}

/// A delivery of an upload in progress that has caught up with the stored bytes: the sender AS
/// wakes it once the upload has stored `wake_at` bytes from the start, or has ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiter {
    /// The delivery's MSRP session id at the receiver AS.
    pub delivery: String,
    /// The stored prefix, in bytes, at which the delivery has enough to go on.
    pub wake_at: u64,
}

impl UploadState {
    /// A new, empty upload, checked against the configured limits.
    pub fn new(
        id: String,
        chunks: String,
        file: FileDescription,
        config: &LayoutConfig,
        value_limit: usize,
        now: Timestamp,
    ) -> Result<Self, StoreError> {
        if file.size > config.max_file_size {
            return Err(StoreError::FileTooLarge {
                size: file.size,
                max: config.max_file_size,
            });
        }
        if config.chunk_size == 0 || config.chunk_size as usize > value_limit {
            return Err(StoreError::BadChunkSize {
                chunk_size: config.chunk_size,
                limit: value_limit,
            });
        }
        Ok(Self {
            id,
            chunks,
            file,
            chunk_size: config.chunk_size,
            received: RangeSet::new(),
            hashed: 0,
            hasher: Sha256::new().serialize().to_vec(),
            created: now.unix_secs(),
            expires: now.unix_secs().saturating_add(config.upload_lifetime_secs),
            deliveries: Vec::new(),
            waiting: Vec::new(),
            ended: None,
        })
    }

    /// The manifest the file will have once it is complete, if the sender announced its digest:
    /// what a delivery of the upload in progress reads its chunks by (cut-through).
    pub fn manifest_to_be(&self) -> Option<Manifest> {
        Some(Manifest {
            digest: self.file.sha256?,
            size: self.file.size,
            name: self.file.name.clone(),
            content_type: self.file.content_type.clone(),
            chunk_size: self.chunk_size,
            chunks: self.chunks.clone(),
            created: self.created,
            expires: self.expires,
        })
    }

    /// How many leading bytes a delivery of the upload in progress may send: every stored byte but
    /// the last one, so the end of the file goes out only once the whole file has hashed to its
    /// digest and is published.
    pub fn deliverable(&self) -> u64 {
        self.resume_offset().min(self.file.size.saturating_sub(1))
    }

    /// The state's own key.
    pub fn key(&self) -> String {
        keys::upload(&self.id)
    }

    /// The number of leading bytes stored contiguously: where a resumed upload should continue.
    pub fn resume_offset(&self) -> u64 {
        self.received.contiguous_prefix()
    }

    /// Whether an unfinished upload is past its lifetime at `now`.
    pub fn is_abandoned(&self, now: Timestamp) -> bool {
        now.unix_secs() >= self.expires
    }

    /// Whether the upload goes on (it has not ended).
    pub fn is_live(&self) -> bool {
        self.ended.is_none()
    }

    /// The operations that discard the upload: every chunk it may have written, then its state;
    /// the state only, once it has ended (its chunks are the published file's, or gone).
    pub fn deletion_ops(&self) -> Vec<StoreOp> {
        if self.ended.is_some() {
            return vec![StoreOp::Delete { key: self.key() }];
        }
        let chunk = u64::from(self.chunk_size);
        let mut ops: Vec<StoreOp> = (0..self.received.end().div_ceil(chunk))
            .filter(|n| self.received.intersects(n * chunk..(n + 1) * chunk))
            .map(|n| StoreOp::Delete {
                key: keys::chunk(&self.chunks, n),
            })
            .collect();
        ops.push(StoreOp::Delete { key: self.key() });
        ops
    }

    fn chunk_range(&self, index: u64) -> Range<u64> {
        let chunk = u64::from(self.chunk_size);
        index * chunk..((index + 1) * chunk).min(self.file.size)
    }
}

impl Record for UploadState {
    const VERSION: u32 = 1;
}

/// What an [`UploadWriter`] reports besides store operations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UploadEvent {
    /// Every byte is stored and hashes to the digest in the manifest, which is now visible.
    /// `deduplicated` is true when an identical file was already stored: the new copy was deleted and
    /// the existing manifest (its lifetime extended) stands for both.
    Completed {
        manifest: Manifest,
        deduplicated: bool,
    },
    /// The complete bytes did not match the announced digest: the upload has been discarded.
    Failed(StoreError),
}

/// Drives one upload through one request of an edge function: takes pieces of the file in any order,
/// yields the store operations that put them into fixed-size chunks, keeps the running digest, and
/// once everything is there checks the digest and publishes the manifest.
///
/// Pieces that fill whole chunks are written as they are (no copy, no read); a piece that shares a
/// chunk with bytes stored earlier needs that chunk read back first ([`StoreOp::Get`], answered with
/// [`UploadWriter::on_value`]). Memory is bounded by the chunks touched in one request: a chunk is
/// dropped once the digest has consumed it.
#[derive(Debug)]
pub struct UploadWriter {
    state: UploadState,
    config: LayoutConfig,
    /// Chunk values written or read during this request, until the digest has consumed them.
    in_hand: BTreeMap<u64, Bytes>,
    /// Pieces waiting for the chunk they belong to be read back, by chunk index.
    waiting: BTreeMap<u64, Vec<(u64, Bytes)>>,
    /// Keys asked for and not answered yet.
    pending_reads: BTreeSet<String>,
    ops: VecDeque<StoreOp>,
    events: VecDeque<UploadEvent>,
    phase: Phase,
    dirty: bool,
    now: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Receiving,
    /// All bytes hashed; waiting to learn whether the manifest already exists.
    CheckingDuplicate(Manifest),
    Done,
}

impl UploadWriter {
    /// A writer for a new upload or one loaded from the store, for one request handled at `now`.
    pub fn new(state: UploadState, config: LayoutConfig, now: Timestamp) -> Self {
        let mut writer = Self {
            state,
            config,
            in_hand: BTreeMap::new(),
            waiting: BTreeMap::new(),
            pending_reads: BTreeSet::new(),
            ops: VecDeque::new(),
            events: VecDeque::new(),
            phase: Phase::Receiving,
            dirty: false,
            now,
        };
        // An empty file is complete as soon as it is announced.
        writer.advance();
        writer
    }

    /// The upload's state as it stands.
    pub fn state(&self) -> &UploadState {
        &self.state
    }

    /// Stores `data` at byte `offset` of the file. Bytes already stored are skipped (duplicates and
    /// overlaps keep the first copy).
    pub fn write(&mut self, offset: u64, data: Bytes) -> Result<(), StoreError> {
        if data.is_empty() && offset <= self.state.file.size {
            return Ok(()); // Nothing to store (an empty file's only chunk, or a bodiless SEND).
        }
        if self.phase != Phase::Receiving {
            return Err(StoreError::Finished {
                upload_id: self.state.id.clone(),
            });
        }
        let end = offset.saturating_add(data.len() as u64);
        if end > self.state.file.size {
            return Err(StoreError::OutOfBounds {
                start: offset,
                end,
                size: self.state.file.size,
            });
        }
        let mut before = self.state.received.clone();
        let fresh = before.insert(offset..end)?;
        self.state.expires = self
            .now
            .unix_secs()
            .saturating_add(self.config.upload_lifetime_secs);
        self.dirty = true;
        let chunk = u64::from(self.state.chunk_size);
        for piece in fresh {
            let mut cursor = piece.start;
            while cursor < piece.end {
                let index = cursor / chunk;
                let stop = piece.end.min((index + 1) * chunk);
                let bytes = data.slice((cursor - offset) as usize..(stop - offset) as usize);
                self.place(index, cursor, bytes);
                cursor = stop;
            }
        }
        self.state.received = before;
        self.advance();
        Ok(())
    }

    /// Answers a [`StoreOp::Get`] this writer yielded.
    pub fn on_value(&mut self, key: &str, value: Option<Bytes>) -> Result<(), StoreError> {
        if !self.pending_reads.remove(key) {
            return Err(StoreError::UnexpectedValue {
                key: key.to_owned(),
            });
        }
        if let Phase::CheckingDuplicate(manifest) = &self.phase
            && key == manifest.key()
        {
            let manifest = manifest.clone();
            return self.publish(manifest, value);
        }
        let index = key
            .rsplit('/')
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .filter(|&n| key == keys::chunk(&self.state.chunks, n))
            .ok_or_else(|| StoreError::UnexpectedValue {
                key: key.to_owned(),
            })?;
        // Only chunks that hold received bytes are ever read, so a missing one has been lost.
        let Some(value) = value else {
            let error = StoreError::MissingChunk {
                key: key.to_owned(),
            };
            self.fail(error.clone());
            return Err(error);
        };
        let pieces = self.waiting.remove(&index).unwrap_or_default();
        let value = if pieces.is_empty() {
            value
        } else {
            let mut merged = BytesMut::from(&value[..]);
            for (at, bytes) in pieces {
                overlay(
                    &mut merged,
                    (at - index * u64::from(self.state.chunk_size)) as usize,
                    &bytes,
                );
            }
            let merged = merged.freeze();
            self.ops.push_back(StoreOp::Set {
                key: keys::chunk(&self.state.chunks, index),
                value: merged.clone(),
            });
            merged
        };
        self.in_hand.insert(index, value);
        self.advance();
        Ok(())
    }

    /// The next store operation to apply, in order.
    #[must_use]
    pub fn poll_op(&mut self) -> Option<StoreOp> {
        self.ops.pop_front()
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<UploadEvent> {
        self.events.pop_front()
    }

    /// Takes the deliveries waiting for this upload that now have enough to go on: every one once
    /// the upload has ended (published, failed or discarded), otherwise those whose `wake_at` the
    /// stored prefix has reached. The state written at [`finish_request`](Self::finish_request)
    /// no longer lists them.
    pub fn take_waiters(&mut self) -> Vec<String> {
        let reached = self.state.resume_offset();
        let ended = self.phase != Phase::Receiving;
        let (woken, still): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut self.state.waiting)
            .into_iter()
            .partition(|waiter| ended || waiter.wake_at <= reached);
        self.state.waiting = still;
        if !woken.is_empty() {
            self.dirty = true;
        }
        woken.into_iter().map(|waiter| waiter.delivery).collect()
    }

    /// Discards the upload (its sender aborted it): every chunk it wrote and its state.
    pub fn discard(&mut self) {
        if self.phase != Phase::Done {
            self.drop_chunks(UploadEnd::Failed {
                reason: "the sender aborted the file".into(),
            });
        }
    }

    /// Ends this request's work: yields the write of the upload's state if it changed and the upload
    /// is still in progress. Call once every asked-for value has been answered, after the chunk writes
    /// so the state never claims bytes that are not stored.
    pub fn finish_request(&mut self) {
        if self.dirty && self.phase == Phase::Receiving {
            self.ops.push_back(StoreOp::Set {
                key: self.state.key(),
                value: self.state.encode(),
            });
        }
        self.dirty = false;
    }

    /// Places the fresh bytes `bytes` at file offset `at`, all within chunk `index`.
    fn place(&mut self, index: u64, at: u64, bytes: Bytes) {
        let chunk_start = index * u64::from(self.state.chunk_size);
        let key = keys::chunk(&self.state.chunks, index);
        if let Some(held) = self.in_hand.get(&index) {
            let mut merged = BytesMut::from(&held[..]);
            overlay(&mut merged, (at - chunk_start) as usize, &bytes);
            let merged = merged.freeze();
            self.ops.push_back(StoreOp::Set {
                key,
                value: merged.clone(),
            });
            self.in_hand.insert(index, merged);
        } else if self.waiting.contains_key(&index) {
            self.waiting.entry(index).or_default().push((at, bytes));
        } else if !self
            .state
            .received
            .intersects(self.state.chunk_range(index))
        {
            // Nothing stored in this chunk yet: write the piece, zero-filled in front if it does not
            // start the chunk (the received ranges say which bytes are real).
            let value = if at == chunk_start {
                bytes
            } else {
                let mut padded = BytesMut::zeroed((at - chunk_start) as usize);
                padded.extend_from_slice(&bytes);
                padded.freeze()
            };
            self.ops.push_back(StoreOp::Set {
                key,
                value: value.clone(),
            });
            self.in_hand.insert(index, value);
        } else {
            self.waiting.entry(index).or_default().push((at, bytes));
            self.read(key);
        }
    }

    fn read(&mut self, key: String) {
        if self.pending_reads.insert(key.clone()) {
            self.ops.push_back(StoreOp::Get { key });
        }
    }

    /// Feeds the running digest with every contiguous byte it has not consumed, reading back chunks
    /// that are not in hand; completes the upload when all bytes are consumed.
    fn advance(&mut self) {
        if self.phase != Phase::Receiving {
            return;
        }
        let chunk = u64::from(self.state.chunk_size);
        let target = self.state.received.contiguous_prefix();
        if self.state.hashed < target {
            let Some(mut hasher) = self.restore_hasher() else {
                return;
            };
            while self.state.hashed < target {
                let index = self.state.hashed / chunk;
                let Some(value) = self.in_hand.get(&index) else {
                    // Ask for every chunk the digest still needs at once, so that a filled gap is
                    // caught up in one round of reads.
                    for needed in index..target.div_ceil(chunk) {
                        if !self.in_hand.contains_key(&needed)
                            && !self.waiting.contains_key(&needed)
                        {
                            self.waiting.insert(needed, Vec::new());
                            self.read(keys::chunk(&self.state.chunks, needed));
                        }
                    }
                    break;
                };
                let from = (self.state.hashed - index * chunk) as usize;
                let to = (target.min((index + 1) * chunk) - index * chunk) as usize;
                let Some(bytes) = value.get(from..to) else {
                    let key = keys::chunk(&self.state.chunks, index);
                    self.fail(StoreError::MissingChunk { key });
                    return;
                };
                hasher.update(bytes);
                self.state.hashed += (to - from) as u64;
                if self.state.hashed == ((index + 1) * chunk).min(self.state.file.size) {
                    self.in_hand.remove(&index);
                }
            }
            self.state.hasher = hasher.serialize().to_vec();
            self.dirty = true;
        }
        if self.state.hashed == self.state.file.size && self.waiting.is_empty() {
            self.complete();
        }
    }

    fn complete(&mut self) {
        let Some(hasher) = self.restore_hasher() else {
            return;
        };
        let digest = ContentDigest::from_hasher(hasher);
        if let Some(expected) = self.state.file.sha256
            && expected != digest
        {
            self.fail(StoreError::DigestMismatch {
                expected,
                actual: digest,
            });
            return;
        }
        let manifest = Manifest {
            digest,
            size: self.state.file.size,
            name: self.state.file.name.clone(),
            content_type: self.state.file.content_type.clone(),
            chunk_size: self.state.chunk_size,
            chunks: self.state.chunks.clone(),
            created: self.now.unix_secs(),
            expires: self
                .now
                .unix_secs()
                .saturating_add(self.config.file_lifetime_secs),
        };
        self.read(manifest.key());
        self.phase = Phase::CheckingDuplicate(manifest);
    }

    fn publish(&mut self, manifest: Manifest, existing: Option<Bytes>) -> Result<(), StoreError> {
        let key = manifest.key();
        let existing = existing
            .map(|value| Manifest::decode(&key, &value))
            .transpose();
        let (published, deduplicated) = match existing {
            Ok(Some(mut existing))
                if existing.size == manifest.size && existing.chunks != manifest.chunks =>
            {
                // The same bytes are stored already: keep the first copy, drop this one.
                for n in 0..manifest.chunk_count() {
                    self.ops.push_back(StoreOp::Delete {
                        key: keys::chunk(&manifest.chunks, n),
                    });
                }
                existing.expires = existing.expires.max(manifest.expires);
                (existing, true)
            }
            // No manifest yet, or a corrupt or foreign one: this upload's chunks are verified, so its
            // manifest replaces it.
            _ => (manifest, false),
        };
        self.ops.push_back(StoreOp::Set {
            key,
            value: published.encode(),
        });
        self.retire(UploadEnd::Published);
        self.phase = Phase::Done;
        self.events.push_back(UploadEvent::Completed {
            manifest: published,
            deduplicated,
        });
        Ok(())
    }

    /// The running digest as stored, or `None` (and the upload failed) if the stored state is corrupt.
    fn restore_hasher(&mut self) -> Option<Sha256> {
        let restored = <&sha2::digest::common::hazmat::SerializedState<Sha256>>::try_from(
            self.state.hasher.as_slice(),
        )
        .ok()
        .and_then(|state| Sha256::deserialize(state).ok());
        if restored.is_none() {
            self.fail(StoreError::CorruptRecord {
                key: self.state.key(),
                reason: "bad digest state".into(),
            });
        }
        restored
    }

    fn fail(&mut self, error: StoreError) {
        self.drop_chunks(UploadEnd::Failed {
            reason: error.to_string(),
        });
        self.events.push_back(UploadEvent::Failed(error));
    }

    /// Deletes every chunk the upload wrote, and retires its state.
    fn drop_chunks(&mut self, end: UploadEnd) {
        let mut ops = self.state.deletion_ops();
        ops.pop(); // The state's own delete: retired below.
        self.ops.extend(ops);
        self.retire(end);
        self.phase = Phase::Done;
        self.in_hand.clear();
        self.waiting.clear();
    }

    /// The last write of the upload's state: its delete, or, when deliveries read the file as it
    /// arrived, the state marked ended (with no waiter: [`take_waiters`](Self::take_waiters)
    /// hands them all over), so that a delivery adding itself at that moment meets a
    /// compare-and-swap.
    fn retire(&mut self, end: UploadEnd) {
        if self.state.deliveries.is_empty() {
            self.ops.push_back(StoreOp::Delete {
                key: self.state.key(),
            });
            return;
        }
        let mut ended = self.state.clone();
        ended.ended = Some(end);
        ended.waiting.clear();
        self.ops.push_back(StoreOp::Set {
            key: ended.key(),
            value: ended.encode(),
        });
    }
}

/// What to delete, at `now`, for one record of the store: a manifest past its lifetime takes its
/// chunks with it, an upload left unfinished past its lifetime is discarded, anything else stays. The
/// edge runs this over the keys it lists under `file/` and `up/` (Spin's `get-keys`); a record that
/// does not decode is left for a person to look at rather than deleted.
pub fn sweep_files(key: &str, value: &[u8], now: Timestamp) -> Vec<StoreOp> {
    if keys::is_file(key) {
        match Manifest::decode(key, value) {
            Ok(manifest) if manifest.is_expired(now) => manifest.deletion_ops(),
            _ => Vec::new(),
        }
    } else if keys::is_upload(key) {
        match UploadState::decode(key, value) {
            Ok(upload) if upload.is_abandoned(now) => upload.deletion_ops(),
            _ => Vec::new(),
        }
    } else {
        Vec::new()
    }
}

/// Writes `bytes` into `buffer` at `at`, growing it with zeros as needed.
fn overlay(buffer: &mut BytesMut, at: usize, bytes: &[u8]) {
    let end = at + bytes.len();
    if buffer.len() < end {
        buffer.resize(end, 0);
    }
    buffer[at..end].copy_from_slice(bytes);
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        hex::decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
// Lists of pieces are lists of byte ranges, one piece long or more.
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_unix_secs(1_800_000_000);

    fn config(chunk_size: u32) -> LayoutConfig {
        LayoutConfig {
            chunk_size,
            max_file_size: 1 << 20,
            ..LayoutConfig::default()
        }
    }

    fn file_bytes(len: usize) -> Bytes {
        (0..len)
            .map(|i| (i * 7 + i / 251) as u8)
            .collect::<Vec<u8>>()
            .into()
    }

    fn describe(data: &[u8], announce_digest: bool) -> FileDescription {
        FileDescription {
            size: data.len() as u64,
            name: Some("report.pdf".into()),
            content_type: "application/pdf".into(),
            sha256: announce_digest.then(|| ContentDigest::of(data)),
        }
    }

    /// Applies every operation the writer yields, answering reads, and counts the reads.
    fn drain(writer: &mut UploadWriter, store: &mut MemoryStore) -> usize {
        let mut reads = 0;
        while let Some(op) = writer.poll_op() {
            let key = match &op {
                StoreOp::Get { key } => Some(key.clone()),
                _ => None,
            };
            let value = apply(store, op).unwrap();
            if let Some(key) = key {
                reads += 1;
                let _ = writer.on_value(&key, value);
            }
        }
        reads
    }

    /// Uploads `data` as the given pieces, one request per piece (state saved and reloaded between
    /// requests, as an edge function does), and returns the writer's events and the reads it made.
    fn upload_in_requests(
        store: &mut MemoryStore,
        data: &Bytes,
        pieces: &[Range<usize>],
        cfg: LayoutConfig,
        announce_digest: bool,
    ) -> (Vec<UploadEvent>, usize) {
        let state = UploadState::new(
            "u1".into(),
            "u1-chunks".into(),
            describe(data, announce_digest),
            &cfg,
            store.max_value_size(),
            NOW,
        )
        .unwrap();
        store.set(&state.key(), state.encode()).unwrap();
        let (mut events, mut reads) = (Vec::new(), 0);
        for piece in pieces {
            let stored = store.get(&keys::upload("u1")).unwrap();
            let Some(stored) = stored else { break };
            let state = UploadState::decode("up/u1", &stored).unwrap();
            let mut writer = UploadWriter::new(state, cfg, NOW);
            writer
                .write(piece.start as u64, data.slice(piece.clone()))
                .unwrap();
            reads += drain(&mut writer, store);
            writer.finish_request();
            reads += drain(&mut writer, store);
            events.extend(std::iter::from_fn(|| writer.poll_event()));
        }
        (events, reads)
    }

    fn read_back(store: &mut MemoryStore, manifest: &Manifest, range: Range<u64>) -> Vec<u8> {
        let mut out = Vec::new();
        for read in manifest.chunk_reads(range) {
            let value = store.get(&read.key).unwrap().expect("chunk present");
            out.extend_from_slice(&value[read.within]);
        }
        out
    }

    fn completed(events: &[UploadEvent]) -> (Manifest, bool) {
        match events {
            [
                UploadEvent::Completed {
                    manifest,
                    deduplicated,
                },
            ] => (manifest.clone(), *deduplicated),
            other => panic!("expected one completion, got {other:?}"),
        }
    }

    fn split(len: usize, piece: usize) -> Vec<Range<usize>> {
        (0..len)
            .step_by(piece)
            .map(|start| start..(start + piece).min(len))
            .collect()
    }

    #[test]
    fn aligned_pieces_are_stored_without_reads() {
        let data = file_bytes(10 * 1024 + 17);
        let mut store = MemoryStore::default();
        let (events, reads) = upload_in_requests(
            &mut store,
            &data,
            &split(data.len(), 1024),
            config(1024),
            true,
        );
        let (manifest, deduplicated) = completed(&events);
        assert_eq!(reads, 1, "only the duplicate check reads");
        assert!(!deduplicated);
        assert_eq!(manifest.digest, ContentDigest::of(&data));
        assert_eq!(manifest.chunk_count(), 11);
        assert_eq!(read_back(&mut store, &manifest, 0..manifest.size), data);
        assert!(
            store.get("up/u1").unwrap().is_none(),
            "upload state removed once complete"
        );
        let stored = store.get(&manifest.key()).unwrap().unwrap();
        assert_eq!(Manifest::decode("k", &stored).unwrap(), manifest);
    }

    #[test]
    fn unaligned_out_of_order_and_duplicate_pieces_reassemble() {
        let data = file_bytes(5000);
        let orders: [Vec<Range<usize>>; 4] = [
            split(5000, 300),
            split(5000, 300).into_iter().rev().collect(),
            vec![4000..5000, 0..100, 50..2500, 2400..4100, 0..5000],
            vec![1..2, 0..1, 3000..5000, 2..2999, 2999..3000],
        ];
        for pieces in orders {
            let mut store = MemoryStore::default();
            let (events, _) = upload_in_requests(&mut store, &data, &pieces, config(1024), true);
            let (manifest, _) = completed(&events);
            assert_eq!(
                read_back(&mut store, &manifest, 0..5000),
                data,
                "{pieces:?}"
            );
            assert_eq!(
                read_back(&mut store, &manifest, 1000..3333),
                &data[1000..3333]
            );
            assert_eq!(
                store.keys_with_prefix("up/").count(),
                5,
                "chunks only: {pieces:?}"
            );
        }
    }

    #[test]
    fn a_lost_state_write_is_repaired_by_resending() {
        // A request stores chunks but dies before saving the state: the next request, working from the
        // older state, gets the same bytes again and the result is still exact.
        let data = file_bytes(4096);
        let cfg = config(1024);
        let mut store = MemoryStore::default();
        let state = UploadState::new(
            "u1".into(),
            "u1-chunks".into(),
            describe(&data, true),
            &cfg,
            1 << 20,
            NOW,
        )
        .unwrap();
        let mut writer = UploadWriter::new(state.clone(), cfg, NOW);
        writer.write(0, data.slice(0..2048)).unwrap();
        drain(&mut writer, &mut store);
        // No finish_request: the state is lost.
        let mut writer = UploadWriter::new(state, cfg, NOW);
        writer.write(0, data.slice(0..4096)).unwrap();
        drain(&mut writer, &mut store);
        let (manifest, _) =
            completed(&std::iter::from_fn(|| writer.poll_event()).collect::<Vec<_>>());
        assert_eq!(read_back(&mut store, &manifest, 0..4096), data);
    }

    #[test]
    fn resume_offset_tracks_the_contiguous_prefix() {
        let data = file_bytes(4096);
        let cfg = config(1024);
        let mut store = MemoryStore::default();
        let (events, _) = upload_in_requests(&mut store, &data, &[0..1500, 2000..2500], cfg, false);
        assert!(events.is_empty());
        let state = UploadState::decode("up/u1", &store.get("up/u1").unwrap().unwrap()).unwrap();
        assert_eq!(state.resume_offset(), 1500);
        assert_eq!(state.received.missing(4096), vec![1500..2000, 2500..4096]);
    }

    #[test]
    fn a_digest_mismatch_discards_everything() {
        let data = file_bytes(3000);
        let cfg = config(1024);
        let mut store = MemoryStore::default();
        let mut description = describe(&data, true);
        description.sha256 = Some(ContentDigest::of(b"something else"));
        let state = UploadState::new(
            "u1".into(),
            "u1-chunks".into(),
            description,
            &cfg,
            1 << 20,
            NOW,
        )
        .unwrap();
        store.set("up/u1", state.encode()).unwrap();
        let mut writer = UploadWriter::new(state, cfg, NOW);
        writer.write(0, data.clone()).unwrap();
        drain(&mut writer, &mut store);
        assert!(matches!(
            writer.poll_event(),
            Some(UploadEvent::Failed(StoreError::DigestMismatch { .. }))
        ));
        assert_eq!(
            store.keys_with_prefix("").count(),
            0,
            "nothing left: {:?}",
            store.keys_with_prefix("").collect::<Vec<_>>()
        );
        assert_eq!(
            writer.write(0, data.slice(0..1)),
            Err(StoreError::Finished {
                upload_id: "u1".into()
            })
        );
    }

    #[test]
    fn identical_files_are_stored_once() {
        let data = file_bytes(3000);
        let cfg = config(1024);
        let mut store = MemoryStore::default();
        let (first, _) = upload_in_requests(&mut store, &data, &[0..3000], cfg, false);
        let (first, _) = completed(&first);
        let bytes_after_first = store.stored_bytes();
        let state = UploadState::new(
            "u2".into(),
            "u2-chunks".into(),
            describe(&data, false),
            &cfg,
            1 << 20,
            NOW.plus_secs(60),
        )
        .unwrap();
        let mut writer = UploadWriter::new(state, cfg, NOW.plus_secs(60));
        writer.write(0, data.clone()).unwrap();
        drain(&mut writer, &mut store);
        let (second, deduplicated) =
            completed(&std::iter::from_fn(|| writer.poll_event()).collect::<Vec<_>>());
        assert!(deduplicated);
        assert_eq!(second.chunks, first.chunks);
        assert_eq!(second.expires, first.expires + 60);
        assert_eq!(store.keys_with_prefix("up/u2").count(), 0);
        assert!(store.stored_bytes() <= bytes_after_first + 2);
    }

    #[test]
    fn limits_and_bad_input_give_typed_errors() {
        let cfg = config(1024);
        let big = FileDescription {
            size: (1 << 20) + 1,
            name: None,
            content_type: "a/b".into(),
            sha256: None,
        };
        assert_eq!(
            UploadState::new("u".into(), "u-chunks".into(), big, &cfg, 1 << 20, NOW),
            Err(StoreError::FileTooLarge {
                size: (1 << 20) + 1,
                max: 1 << 20
            })
        );
        let small = FileDescription {
            size: 10,
            name: None,
            content_type: "a/b".into(),
            sha256: None,
        };
        assert_eq!(
            UploadState::new(
                "u".into(),
                "u-chunks".into(),
                small.clone(),
                &config(0),
                1 << 20,
                NOW
            ),
            Err(StoreError::BadChunkSize {
                chunk_size: 0,
                limit: 1 << 20
            })
        );
        assert_eq!(
            UploadState::new("u".into(), "u-chunks".into(), small.clone(), &cfg, 512, NOW),
            Err(StoreError::BadChunkSize {
                chunk_size: 1024,
                limit: 512
            })
        );
        let state =
            UploadState::new("u".into(), "u-chunks".into(), small, &cfg, 1 << 20, NOW).unwrap();
        let mut writer = UploadWriter::new(state, cfg, NOW);
        assert_eq!(
            writer.write(8, Bytes::from_static(b"abc")),
            Err(StoreError::OutOfBounds {
                start: 8,
                end: 11,
                size: 10
            })
        );
        assert_eq!(
            writer.on_value("up/other/0", None),
            Err(StoreError::UnexpectedValue {
                key: "up/other/0".into()
            })
        );
        assert!(matches!(
            UploadState::decode("up/u", b"{not json"),
            Err(StoreError::CorruptRecord { .. })
        ));
        assert!(matches!(
            Manifest::decode("file/x", b"[]"),
            Err(StoreError::CorruptRecord { .. })
        ));
        let mut tiny = MemoryStore::with_value_limit(4);
        assert!(matches!(
            tiny.set("k", Bytes::from_static(b"12345")),
            Err(KvError::ValueTooLarge { .. })
        ));
    }

    #[test]
    fn a_lost_chunk_fails_the_upload_instead_of_publishing() {
        let data = file_bytes(3000);
        let cfg = config(1024);
        let mut store = MemoryStore::default();
        let (_, _) = upload_in_requests(&mut store, &data, &[1024..3000], cfg, false);
        store.delete("up/u1-chunks/1").unwrap();
        let state = UploadState::decode("up/u1", &store.get("up/u1").unwrap().unwrap()).unwrap();
        let mut writer = UploadWriter::new(state, cfg, NOW);
        writer.write(0, data.slice(0..1024)).unwrap();
        drain(&mut writer, &mut store);
        assert!(matches!(
            writer.poll_event(),
            Some(UploadEvent::Failed(StoreError::MissingChunk { .. }))
        ));
        assert_eq!(store.keys_with_prefix("file/").count(), 0);
    }

    #[test]
    fn empty_files_complete_at_once_and_expiry_is_reported() {
        let cfg = config(1024);
        let mut store = MemoryStore::default();
        let state = UploadState::new(
            "u1".into(),
            "u1-chunks".into(),
            describe(b"", true),
            &cfg,
            1 << 20,
            NOW,
        )
        .unwrap();
        let mut writer = UploadWriter::new(state, cfg, NOW);
        drain(&mut writer, &mut store);
        let (manifest, _) =
            completed(&std::iter::from_fn(|| writer.poll_event()).collect::<Vec<_>>());
        assert_eq!(manifest.digest, ContentDigest::of(b""));
        assert_eq!(manifest.chunk_reads(0..10).count(), 0);
        assert!(!manifest.is_expired(NOW));
        assert!(manifest.is_expired(NOW.plus_secs(cfg.file_lifetime_secs)));
        assert_eq!(
            manifest.deletion_ops(),
            vec![StoreOp::Delete {
                key: manifest.key()
            }]
        );
    }

    #[test]
    fn expired_files_and_abandoned_uploads_are_swept() {
        let cfg = LayoutConfig {
            upload_lifetime_secs: 100,
            file_lifetime_secs: 1000,
            ..config(1024)
        };
        let mut store = MemoryStore::default();
        let done = file_bytes(3000);
        let (events, _) = upload_in_requests(&mut store, &done, &[0..3000], cfg, false);
        let (manifest, _) = completed(&events);
        let partial = file_bytes(5000);
        let state = UploadState::new(
            "u2".into(),
            "u2-chunks".into(),
            describe(&partial, false),
            &cfg,
            1 << 20,
            NOW,
        )
        .unwrap();
        let mut writer = UploadWriter::new(state, cfg, NOW);
        writer.write(0, partial.slice(0..2048)).unwrap();
        writer.finish_request();
        drain(&mut writer, &mut store);
        let sweep = |store: &mut MemoryStore, now: Timestamp| {
            let keys: Vec<String> = store.keys_with_prefix("").map(str::to_owned).collect();
            for key in keys {
                // Keys deleted earlier in the same sweep are gone.
                let Some(value) = store.get(&key).unwrap() else {
                    continue;
                };
                for op in sweep_files(&key, &value, now) {
                    apply(store, op).unwrap();
                }
            }
        };
        sweep(&mut store, NOW.plus_secs(99));
        assert_eq!(
            store.keys_with_prefix("").count(),
            3 + 1 + 3,
            "nothing is due yet"
        );
        sweep(&mut store, NOW.plus_secs(100));
        assert_eq!(
            store.keys_with_prefix("up/u2").count(),
            0,
            "the abandoned upload is gone"
        );
        assert_eq!(store.keys_with_prefix("").count(), 4, "the file stays");
        sweep(&mut store, NOW.plus_secs(1000));
        assert_eq!(
            store.keys_with_prefix("").count(),
            0,
            "the expired file is gone: {manifest:?}"
        );
        assert!(sweep_files("file/x", b"not json", NOW.plus_secs(1 << 40)).is_empty());
        assert!(sweep_files("reg/sip:a@b", b"{}", NOW).is_empty());
    }

    #[test]
    fn records_carry_their_format_version_and_another_one_is_an_error() {
        let manifest = Manifest {
            digest: ContentDigest([0xab; 32]),
            size: 2500,
            name: Some("a.txt".into()),
            content_type: "a/b".into(),
            chunk_size: 1000,
            chunks: "u".into(),
            created: 1,
            expires: 2,
        };
        let stored = manifest.encode();
        let json: serde_json::Value = serde_json::from_slice(&stored).unwrap();
        assert_eq!(json["version"], 1);
        assert_eq!(json["expires"], 2, "the fields stay beside the version");
        assert_eq!(Manifest::decode("file/x", &stored).unwrap(), manifest);
        let text = String::from_utf8(stored.to_vec()).unwrap();
        for (value, found) in [
            (text.replace("\"version\":1", "\"version\":2"), Some(2)),
            (text.replace("\"version\":1,", ""), None),
        ] {
            assert_eq!(
                Manifest::decode("file/x", value.as_bytes()),
                Err(StoreError::RecordVersion {
                    key: "file/x".into(),
                    found,
                    expected: 1
                })
            );
        }
        // Written another way (the version last, spaces), it is read all the same.
        let reordered = format!(
            "{} , \"version\" : 1}}",
            text.replace("\"version\":1,", "").trim_end_matches('}')
        );
        assert_eq!(
            Manifest::decode("file/x", reordered.as_bytes()).unwrap(),
            manifest
        );
        assert_eq!(leading_version(b"{\"version\":12}"), Some(12));
        assert_eq!(leading_version(b"{\"version\":12x"), None);
        assert_eq!(leading_version(b"{\"version\":99999999999,"), None);
        assert_eq!(
            StoreError::RecordVersion {
                key: "k".into(),
                found: None,
                expected: 1
            }
            .status(),
            500
        );
    }

    #[test]
    fn store_errors_pick_their_status_in_one_place() {
        let too_large = StoreError::FileTooLarge { size: 2, max: 1 };
        let beyond = StoreError::OutOfBounds {
            start: 0,
            end: 2,
            size: 1,
        };
        let missing = StoreError::MissingChunk { key: "k".into() };
        assert_eq!(
            [too_large.status(), beyond.status(), missing.status()],
            [413, 400, 500]
        );
    }

    #[test]
    fn chunk_reads_cover_exactly_the_range() {
        let manifest = Manifest {
            digest: ContentDigest([0xab; 32]),
            size: 2500,
            name: None,
            content_type: "a/b".into(),
            chunk_size: 1000,
            chunks: "u".into(),
            created: 0,
            expires: 1,
        };
        let reads: Vec<(u64, Range<usize>)> = manifest
            .chunk_reads(999..2001)
            .map(|r| (r.index, r.within))
            .collect();
        assert_eq!(reads, vec![(0, 999..1000), (1, 0..1000), (2, 0..1)]);
        let tail: Vec<(u64, Range<usize>)> = manifest
            .chunk_reads(2400..9999)
            .map(|r| (r.index, r.within))
            .collect();
        assert_eq!(tail, vec![(2, 400..500)]);
        assert_eq!(manifest.chunk_reads(3000..4000).count(), 0);
    }
}
