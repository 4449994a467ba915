//! The **first value** of claims 4 and 13: what the sender AS hands the receiver AS instead of the file.
//!
//! This module owns the two forms the first value takes and the rules that make them safe to accept
//! from another server:
//! - the **feature code**, [`ContentDigest`]: the SHA-256 of the file's bytes, written
//!   `sha-256:<64 lowercase hex>`; it is also the file's storage key, `file/<hex>`
//!   ([`ContentDigest::storage_key`]);
//! - the **URL of the storage path**, signed: `<public base>/files/<hex>?exp=<unix>&sig=<hmac>`
//!   ([`sign`]), checked by [`verify`] (a receiver AS holding a full URL) or
//!   [`verify_path_and_query`] (the HTTP fallback, where the edge sees only a path and a query).
//!
//! ## The signature
//! `sig` is HMAC-SHA256, keyed with a [`SigningKey`], over the canonical string
//! ([`string_to_sign`]):
//!
//! ```text
//! GET\n/files/<64 lowercase hex>\n<exp in decimal, no leading zeros>
//! ```
//!
//! written as 64 lowercase hex digits. The string binds the method, the file and the expiry, and
//! deliberately **not** the host or the path prefix: the same URL stays valid behind a proxy or a
//! second public name, while the trusted origin is checked separately by [`verify`]. Nothing else in
//! the URL is signed, so [`verify`] accepts no other query parameter at all.
//!
//! ## What is accepted
//! One spelling per value: hex digits are lowercase only (in feature codes, paths and signatures),
//! `exp` has no leading zeros, and a full URL must already be in its canonical serialization (what
//! [`sign`] produces), so no percent-encoding or dot-segment trick reaches the checks. A URL is valid
//! up to and including the second `exp`: at `now` with `now.unix_secs() <= exp` it verifies, one
//! second later it is [`FirstValueError::Expired`]. The signature is checked (in constant time, by
//! every trusted key in turn, which is how keys rotate) before the expiry, so a forged or altered URL
//! is always [`FirstValueError::BadSignature`] and `Expired` is only ever said of authentic URLs.

use std::fmt;
use std::str::FromStr;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::lex::{Decimal, is_uri_unreserved};
use crate::time::Timestamp;

/// The URL type of this API (from the `url` crate), re-exported so callers need not depend on it.
pub use url::Url;

/// The prefix of a feature code: the digest algorithm, as in `sha-256:<hex>`.
pub const FEATURE_CODE_PREFIX: &str = "sha-256:";

/// The path segment under the public base where files are served: `<base>/files/<hex>`.
pub const FILES_SEGMENT: &str = "files";

/// The fewest secret bytes a [`SigningKey`] may have (256 bits, the HMAC-SHA256 output size).
pub const MIN_KEY_BYTES: usize = 32;

/// The longest URL, or path plus query, that [`verify`] and [`verify_path_and_query`] look at.
/// A URL this module signs is far shorter (a base, 72 bytes of path and about 90 of query).
pub const MAX_URL_LEN: usize = 2048;

/// Errors of the first-value layer: parsing feature codes, building keys, and verifying signed URLs.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FirstValueError {
    /// A signing key with fewer than [`MIN_KEY_BYTES`] bytes.
    #[error("signing key has {len} bytes, at least {min} are required")]
    KeyTooShort {
        /// The key's length in bytes.
        len: usize,
        /// The minimum, [`MIN_KEY_BYTES`].
        min: usize,
    },
    /// A feature code that does not start with [`FEATURE_CODE_PREFIX`] (`sha-256:`).
    #[error("feature code does not start with \"sha-256:\"")]
    UnknownDigestAlgorithm,
    /// A digest that is not exactly 64 lowercase hex digits.
    #[error(
        "digest is not 64 lowercase hex digits (length {len}, first bad character at {bad_at:?})"
    )]
    BadDigestHex {
        /// Length of the hex part, in bytes.
        len: usize,
        /// Byte offset (within the hex part) of the first character that is not lowercase hex.
        bad_at: Option<usize>,
    },
    /// No trusted keys were given to verify with (a configuration error, not the peer's).
    #[error("no trusted signing keys configured")]
    NoTrustedKeys,
    /// The URL, or path plus query, is longer than [`MAX_URL_LEN`].
    #[error("URL of {len} bytes is longer than the limit of {limit}")]
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// [`MAX_URL_LEN`].
        limit: usize,
    },
    /// The text does not parse as an absolute URL.
    #[error("not an absolute URL: {reason}")]
    NotAUrl {
        /// What the URL parser objected to.
        reason: url::ParseError,
    },
    /// The URL parses, but not to itself: it carries upper-case letters in the scheme or host, a
    /// default port, dot segments, `%2e`, characters that need percent-encoding, or whitespace.
    /// Signed URLs are always issued canonical, so any other spelling was altered.
    #[error("URL is not in canonical form (canonical: {canonical})")]
    NotCanonical {
        /// The canonical serialization of what was given.
        canonical: String,
    },
    /// Scheme, host or port differ from the trusted base's.
    #[error("URL origin {found} is not the trusted origin {expected}")]
    ForeignOrigin {
        /// The trusted base's origin (`scheme://host[:port]`).
        expected: String,
        /// The URL's origin.
        found: String,
    },
    /// The URL carries a user name or password, which a signed URL never has.
    #[error("URL carries credentials")]
    UnexpectedCredentials,
    /// The path is not `<trusted prefix>/files/<64 lowercase hex>`.
    #[error("path {path:?} is not <prefix>/files/<64 lowercase hex>")]
    BadPath {
        /// The path as given.
        path: String,
    },
    /// The URL carries a fragment (`#...`), which a signed URL never has.
    #[error("URL carries a fragment")]
    UnexpectedFragment,
    /// No `exp` query parameter.
    #[error("no exp parameter")]
    MissingExpiry,
    /// `exp` is not a decimal number of Unix seconds without leading zeros that fits in 64 bits.
    #[error("exp {value:?} is not a canonical decimal number of Unix seconds")]
    BadExpiry {
        /// The value as given.
        value: String,
    },
    /// No `sig` query parameter.
    #[error("no sig parameter")]
    MissingSignature,
    /// `sig` is not 64 lowercase hex digits.
    #[error("sig of {len} bytes is not 64 lowercase hex digits")]
    MalformedSignature {
        /// Its length in bytes.
        len: usize,
    },
    /// The signature is well formed but no trusted key produced it: the URL was forged or altered,
    /// or was signed with a key that has been retired.
    #[error("signature does not verify under any trusted key")]
    BadSignature,
    /// A query parameter other than `exp` and `sig` (including an empty one, as in `&&`).
    #[error("unexpected query parameter {name:?}")]
    UnexpectedParameter {
        /// The parameter's name as given (not percent-decoded).
        name: String,
    },
    /// `exp` or `sig` appears more than once.
    #[error("query parameter {name:?} appears more than once")]
    DuplicateParameter {
        /// `exp` or `sig`.
        name: &'static str,
    },
    /// An authentic URL whose expiry has passed: `now.unix_secs() > expired_at`.
    #[error("URL expired at {expired_at} (Unix seconds), now is {now:?}")]
    Expired {
        /// The URL's `exp`, in Unix seconds.
        expired_at: u64,
        /// The time the caller verified at.
        now: Timestamp,
    },
}

/// The SHA-256 of a file's bytes: the feature code of claim 4 and the file's storage key.
///
/// Displays and parses as the feature code `sha-256:<64 lowercase hex>`; serde uses the same text.
/// Upper-case hex is rejected on parse, so each digest has exactly one spelling and string equality
/// of feature codes, storage keys and URLs is value equality.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentDigest(pub [u8; 32]);

impl ContentDigest {
    /// The digest of `bytes` (for whole small inputs; stream large files through a [`Sha256`] and
    /// use [`ContentDigest::from_hasher`]).
    pub fn of(bytes: &[u8]) -> Self {
        Self::from_hasher(Sha256::new_with_prefix(bytes))
    }

    /// The digest a running hasher has computed so far (consumes it).
    pub fn from_hasher(hasher: Sha256) -> Self {
        Self(hasher.finalize().into())
    }

    /// The 32 digest bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The digest as 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// A digest from exactly 64 lowercase hex digits.
    pub fn from_hex(text: &str) -> Result<Self, FirstValueError> {
        let bad_at = text
            .bytes()
            .position(|b| !matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if text.len() != 64 || bad_at.is_some() {
            return Err(FirstValueError::BadDigestHex {
                len: text.len(),
                bad_at,
            });
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| FirstValueError::BadDigestHex {
            len: text.len(),
            bad_at: None,
        })?;
        Ok(Self(bytes))
    }

    /// The feature code: `sha-256:<64 lowercase hex>` (the same text as `Display`).
    pub fn feature_code(&self) -> String {
        format!("{FEATURE_CODE_PREFIX}{}", self.to_hex())
    }

    /// Parses a feature code `sha-256:<64 lowercase hex>` (the same as `FromStr`). The prefix is
    /// case-sensitive and no surrounding whitespace is allowed.
    pub fn parse_feature_code(text: &str) -> Result<Self, FirstValueError> {
        let hex = text
            .strip_prefix(FEATURE_CODE_PREFIX)
            .ok_or(FirstValueError::UnknownDigestAlgorithm)?;
        Self::from_hex(hex)
    }

    /// The key of the file's manifest in the shared store: `file/<64 lowercase hex>`.
    pub fn storage_key(&self) -> String {
        crate::store::keys::file(self)
    }

    /// The path, relative to a public base, at which the file is served: `/files/<hex>`.
    pub fn files_path(&self) -> String {
        format!("/{FILES_SEGMENT}/{}", self.to_hex())
    }
}

impl fmt::Display for ContentDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{FEATURE_CODE_PREFIX}{}", self.to_hex())
    }
}

impl fmt::Debug for ContentDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentDigest({self})")
    }
}

impl FromStr for ContentDigest {
    type Err = FirstValueError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse_feature_code(text)
    }
}

impl Serialize for ContentDigest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ContentDigest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse_feature_code(&text).map_err(serde::de::Error::custom)
    }
}

/// A secret HMAC key for signing file URLs.
///
/// Built from a Spin variable with [`SigningKey::from_variable`]: the variable's text, trimmed of
/// surrounding whitespace, **is** the key (its UTF-8 bytes; it is not hex- or base64-decoded), so
/// `openssl rand -hex 32` makes a good one (64 bytes of text carrying 256 random bits). Keys shorter
/// than [`MIN_KEY_BYTES`] are refused. `Debug` prints only the length, never the secret; the type is
/// deliberately not serializable.
#[derive(Clone)]
pub struct SigningKey {
    secret: Vec<u8>,
}

impl SigningKey {
    /// A key from raw secret bytes; at least [`MIN_KEY_BYTES`] of them.
    pub fn new(secret: impl Into<Vec<u8>>) -> Result<Self, FirstValueError> {
        let secret = secret.into();
        if secret.len() < MIN_KEY_BYTES {
            return Err(FirstValueError::KeyTooShort {
                len: secret.len(),
                min: MIN_KEY_BYTES,
            });
        }
        Ok(Self { secret })
    }

    /// A key from the text of a Spin variable (or any configuration string): surrounding whitespace,
    /// such as a trailing newline, is trimmed and the remaining UTF-8 bytes are the key.
    pub fn from_variable(value: &str) -> Result<Self, FirstValueError> {
        Self::new(value.trim().as_bytes())
    }

    /// The key's length in bytes.
    pub fn len(&self) -> usize {
        self.secret.len()
    }

    /// Always false: a key has at least [`MIN_KEY_BYTES`] bytes (here for API symmetry with `len`).
    pub fn is_empty(&self) -> bool {
        self.secret.is_empty()
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes keys of any length, so this cannot fail; the fallback is never reached but
        // keeps the function total.
        <Hmac<Sha256> as KeyInit>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| <Hmac<Sha256> as KeyInit>::new(&Default::default()))
    }

    /// HMAC-SHA256 of `message` under this key, as lowercase hex: a seal other holders of the key can
    /// check with [`SigningKey::verifies`] (the application servers seal what they send each other).
    pub fn seal(&self, message: &[u8]) -> String {
        let mut mac = self.mac();
        mac.update(message);
        hex::encode(mac.finalize().into_bytes())
    }

    /// Whether `seal` (lowercase hex) is this key's seal of `message`, compared in constant time.
    pub fn verifies(&self, message: &[u8], seal: &str) -> bool {
        let Ok(tag) = hex::decode(seal) else {
            return false;
        };
        let mut mac = self.mac();
        mac.update(message);
        mac.verify_slice(&tag).is_ok()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey(<{} secret bytes>)", self.secret.len())
    }
}

/// The canonical string a file URL's signature covers: `GET\n/files/<hex>\n<exp>`.
pub fn string_to_sign(digest: &ContentDigest, expires_unix_secs: u64) -> String {
    format!("GET\n{}\n{expires_unix_secs}", digest.files_path())
}

fn signature(digest: &ContentDigest, expires_unix_secs: u64, key: &SigningKey) -> [u8; 32] {
    let mut mac = key.mac();
    mac.update(string_to_sign(digest, expires_unix_secs).as_bytes());
    mac.finalize().into_bytes().into()
}

/// The path prefix of a public base: its path without trailing slashes (`/ft/` and `/ft` give
/// `/ft`, `/` gives the empty prefix).
fn path_prefix(base: &Url) -> &str {
    base.path().trim_end_matches('/')
}

/// Signs a URL for the file `digest`, valid up to and including the second `expires_unix_secs`:
/// `<base>/files/<hex>?exp=<unix>&sig=<64 lowercase hex>`.
///
/// `base` is the public base the files are served under, with or without a path prefix and with or
/// without trailing slashes (`https://edge.example.com`, `https://edge.example.com/ft/`). Its query,
/// fragment and credentials are dropped. It should be an `http` or `https` URL: anything else yields
/// a URL that [`verify`] rejects.
pub fn sign(base: &Url, digest: ContentDigest, expires_unix_secs: u64, key: &SigningKey) -> Url {
    let mut url = base.clone();
    let path = format!("{}{}", path_prefix(base), digest.files_path());
    url.set_path(&path);
    let sig = hex::encode(signature(&digest, expires_unix_secs, key));
    url.set_query(Some(&format!("exp={expires_unix_secs}&sig={sig}")));
    url.set_fragment(None);
    // Both fail only for URLs that cannot carry credentials, which then carry none.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url
}

/// What a verified URL names: the file and how long the URL is valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedFileRef {
    /// The file's digest (its feature code), taken from the signed path.
    pub digest: ContentDigest,
    /// The URL's expiry (`exp`), in Unix seconds; valid up to and including this second.
    pub expires_unix_secs: u64,
}

impl VerifiedFileRef {
    /// The key of the file's manifest in the shared store: `file/<hex>`.
    pub fn storage_key(&self) -> String {
        self.digest.storage_key()
    }
}

/// Verifies a signed file URL received from another server (claim 9: first value to storage path).
///
/// Accepts only a URL that: is at most [`MAX_URL_LEN`] bytes; parses as an absolute URL and is in
/// canonical form; has the trusted base's scheme, host and port and no credentials or fragment; has
/// the path `<base path prefix>/files/<64 lowercase hex>`; has exactly one `exp` and one `sig` and no
/// other query parameter; carries a signature made by one of `keys` (tried in turn, each comparison
/// in constant time); and has not expired at `now` (valid while `now.unix_secs() <= exp`).
///
/// Pass the text exactly as received, e.g. [`crate::ft_http::DataUrl::as_str`], not a [`Url`]
/// parsed from it and written back: that would canonicalize the URL before the check.
pub fn verify(
    url: &str,
    trusted_base: &Url,
    keys: &[SigningKey],
    now: Timestamp,
) -> Result<VerifiedFileRef, FirstValueError> {
    if keys.is_empty() {
        return Err(FirstValueError::NoTrustedKeys);
    }
    if url.len() > MAX_URL_LEN {
        return Err(FirstValueError::TooLong {
            len: url.len(),
            limit: MAX_URL_LEN,
        });
    }
    let parsed = Url::parse(url).map_err(|reason| FirstValueError::NotAUrl { reason })?;
    if parsed.as_str() != url {
        return Err(FirstValueError::NotCanonical {
            canonical: parsed.as_str().to_owned(),
        });
    }
    let same_origin = parsed.scheme() == trusted_base.scheme()
        && parsed.host() == trusted_base.host()
        && parsed.port_or_known_default() == trusted_base.port_or_known_default();
    if !same_origin || parsed.cannot_be_a_base() {
        return Err(FirstValueError::ForeignOrigin {
            expected: trusted_base.origin().ascii_serialization(),
            found: parsed.origin().ascii_serialization(),
        });
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(FirstValueError::UnexpectedCredentials);
    }
    if parsed.fragment().is_some() {
        return Err(FirstValueError::UnexpectedFragment);
    }
    let path = parsed.path();
    let digest = path
        .strip_prefix(path_prefix(trusted_base))
        .and_then(files_digest)
        .ok_or_else(|| FirstValueError::BadPath {
            path: path.to_owned(),
        })?;
    check_query(digest, parsed.query(), keys, now)
}

/// Verifies a file request as the edge sees it on the HTTP fallback: only a path and a query, the
/// host possibly a proxy's name.
///
/// The path must be `<prefix>/files/<64 lowercase hex>`, where the prefix (possibly empty) is made of
/// `/segment` parts of unreserved characters (`A-Z a-z 0-9 - . _ ~`) that are neither `.` nor `..`;
/// no percent-encoding anywhere. The prefix is not signed, so any such prefix is accepted: routing
/// decides which prefixes reach this check. The query rules, key rotation and expiry are those of
/// [`verify`].
pub fn verify_path_and_query(
    path: &str,
    query: Option<&str>,
    keys: &[SigningKey],
    now: Timestamp,
) -> Result<VerifiedFileRef, FirstValueError> {
    if keys.is_empty() {
        return Err(FirstValueError::NoTrustedKeys);
    }
    let len = path.len() + query.map_or(0, str::len);
    if len > MAX_URL_LEN {
        return Err(FirstValueError::TooLong {
            len,
            limit: MAX_URL_LEN,
        });
    }
    let bad_path = || FirstValueError::BadPath {
        path: path.to_owned(),
    };
    let files_at = path.rfind("/files/").ok_or_else(bad_path)?;
    let (prefix, files) = path.split_at(files_at);
    let prefix_ok = prefix.is_empty()
        || prefix.strip_prefix('/').is_some_and(|rest| {
            rest.split('/').all(|segment| {
                !segment.is_empty()
                    && segment != "."
                    && segment != ".."
                    && segment.bytes().all(is_uri_unreserved)
            })
        });
    if !prefix_ok {
        return Err(bad_path());
    }
    let digest = files_digest(files).ok_or_else(bad_path)?;
    check_query(digest, query, keys, now)
}

/// The digest in a path that must be exactly `/files/<64 lowercase hex>`.
fn files_digest(path: &str) -> Option<ContentDigest> {
    let hex = path
        .strip_prefix('/')?
        .strip_prefix(FILES_SEGMENT)?
        .strip_prefix('/')?;
    ContentDigest::from_hex(hex).ok()
}

/// Checks `exp` and `sig` for `digest`: structure, then signature, then expiry.
fn check_query(
    digest: ContentDigest,
    query: Option<&str>,
    keys: &[SigningKey],
    now: Timestamp,
) -> Result<VerifiedFileRef, FirstValueError> {
    let query = match query {
        None | Some("") => return Err(FirstValueError::MissingExpiry),
        Some(query) => query,
    };
    let mut exp = None;
    let mut sig = None;
    // Every pair is `exp`, `sig`, or an immediate error, so this loop runs at most three times.
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (slot, name) = match name {
            "exp" => (&mut exp, "exp"),
            "sig" => (&mut sig, "sig"),
            other => {
                return Err(FirstValueError::UnexpectedParameter {
                    name: other.to_owned(),
                });
            }
        };
        if slot.replace(value).is_some() {
            return Err(FirstValueError::DuplicateParameter { name });
        }
    }
    let exp = exp.ok_or(FirstValueError::MissingExpiry)?;
    let sig = sig.ok_or(FirstValueError::MissingSignature)?;
    let expires_unix_secs = parse_expiry(exp).ok_or_else(|| FirstValueError::BadExpiry {
        value: exp.to_owned(),
    })?;
    let sig_bytes =
        parse_signature(sig).ok_or(FirstValueError::MalformedSignature { len: sig.len() })?;
    let message = string_to_sign(&digest, expires_unix_secs);
    let authentic = keys.iter().any(|key| {
        let mut mac = key.mac();
        mac.update(message.as_bytes());
        mac.verify_slice(&sig_bytes).is_ok()
    });
    if !authentic {
        return Err(FirstValueError::BadSignature);
    }
    if now.unix_secs() > expires_unix_secs {
        return Err(FirstValueError::Expired {
            expired_at: expires_unix_secs,
            now,
        });
    }
    Ok(VerifiedFileRef {
        digest,
        expires_unix_secs,
    })
}

/// Unix seconds in canonical decimal: digits only, no sign, no leading zeros (except `0` itself),
/// so that each expiry has one spelling, as the signed string has.
const EXPIRY_DECIMAL: Decimal = Decimal {
    max_digits: usize::MAX,
    leading_zeros: false,
};

fn parse_expiry(text: &str) -> Option<u64> {
    EXPIRY_DECIMAL.parse(text).ok()
}

/// A signature in 64 lowercase hex digits.
fn parse_signature(text: &str) -> Option<[u8; 32]> {
    ContentDigest::from_hex(text).ok().map(|d| d.0)
}

/// A first value as the sender AS issues it: the feature code, the signed URL of the storage path,
/// and the URL's expiry. It travels as the `data url` and `until` of an FT-HTTP file-info document
/// (see [`crate::ft_http`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirstValue {
    /// The file's digest, which is also its storage key.
    pub feature_code: ContentDigest,
    /// The signed URL (`<base>/files/<hex>?exp=..&sig=..`).
    #[serde(with = "url_serde")]
    pub url: Url,
    /// The URL's expiry in Unix seconds (valid up to and including this second).
    pub expires: u64,
}

impl FirstValue {
    /// Issues the first value for `digest`: signs its URL under `base` with `key`, valid up to and
    /// including the second `expires_unix_secs`.
    pub fn issue(
        base: &Url,
        digest: ContentDigest,
        expires_unix_secs: u64,
        key: &SigningKey,
    ) -> Self {
        Self {
            feature_code: digest,
            url: sign(base, digest, expires_unix_secs, key),
            expires: expires_unix_secs,
        }
    }

    /// The expiry as a timestamp (the start of the second `expires`).
    pub fn expires_at(&self) -> Timestamp {
        Timestamp::from_unix_secs(self.expires)
    }

    /// The key of the file's manifest in the shared store: `file/<hex>`.
    pub fn storage_key(&self) -> String {
        self.feature_code.storage_key()
    }
}

/// Serde for [`Url`] as its string form (the `url` crate's own serde support is a feature this
/// workspace does not enable).
pub(crate) mod url_serde {
    use serde::{Deserialize, Deserializer, Serializer};
    use url::Url;

    pub(crate) fn serialize<S: Serializer>(url: &Url, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(url.as_str())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Url, D::Error> {
        let text = String::deserialize(deserializer)?;
        Url::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "0123456789abcdef0123456789abcdef-key-a";
    const KEY_B: &str = "fedcba9876543210fedcba9876543210-key-b";
    const EXP: u64 = 1_900_000_000;

    fn key(text: &str) -> SigningKey {
        SigningKey::from_variable(text).expect("long enough")
    }

    fn digest() -> ContentDigest {
        ContentDigest::of(b"hello, world\n")
    }

    fn base() -> Url {
        Url::parse("https://edge.example.com/ft/").expect("valid base")
    }

    fn now() -> Timestamp {
        Timestamp::from_unix_secs(EXP - 60)
    }

    fn signed() -> String {
        sign(&base(), digest(), EXP, &key(KEY_A)).to_string()
    }

    #[test]
    fn digest_matches_known_vectors() {
        // SHA-256 of the empty string and of "abc" (FIPS 180-2 examples).
        assert_eq!(
            ContentDigest::of(b"").to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let abc = ContentDigest::of(b"abc");
        assert_eq!(
            abc.to_string(),
            "sha-256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            abc.storage_key(),
            "file/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mut hasher = Sha256::new();
        hasher.update(b"a");
        hasher.update(b"bc");
        assert_eq!(ContentDigest::from_hasher(hasher), abc);
    }

    #[test]
    fn feature_codes_parse_in_one_spelling_only() {
        let code = digest().feature_code();
        assert_eq!(code.parse::<ContentDigest>(), Ok(digest()));
        let hex = digest().to_hex();
        let upper = format!("sha-256:{}", hex.to_uppercase());
        let cases: Vec<(String, FirstValueError)> = vec![
            (hex.clone(), FirstValueError::UnknownDigestAlgorithm),
            (
                format!("SHA-256:{hex}"),
                FirstValueError::UnknownDigestAlgorithm,
            ),
            (
                format!("sha-1:{hex}"),
                FirstValueError::UnknownDigestAlgorithm,
            ),
            (
                format!(" sha-256:{hex}"),
                FirstValueError::UnknownDigestAlgorithm,
            ),
            (
                upper,
                FirstValueError::BadDigestHex {
                    len: 64,
                    bad_at: hex.bytes().position(|b| b.is_ascii_alphabetic()),
                },
            ),
            (
                format!("sha-256:{}", &hex[..63]),
                FirstValueError::BadDigestHex {
                    len: 63,
                    bad_at: None,
                },
            ),
            (
                format!("sha-256:{hex}0"),
                FirstValueError::BadDigestHex {
                    len: 65,
                    bad_at: None,
                },
            ),
            (
                format!("sha-256:{hex} "),
                FirstValueError::BadDigestHex {
                    len: 65,
                    bad_at: Some(64),
                },
            ),
            (
                "sha-256:".to_owned(),
                FirstValueError::BadDigestHex {
                    len: 0,
                    bad_at: None,
                },
            ),
            (
                format!("sha-256:{}é", &hex[..62]),
                FirstValueError::BadDigestHex {
                    len: 64,
                    bad_at: Some(62),
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(
                ContentDigest::parse_feature_code(&text),
                Err(expected),
                "{text}"
            );
        }
    }

    #[test]
    fn digest_serde_uses_the_feature_code() {
        let json = serde_json::to_string(&digest()).expect("serializes");
        assert_eq!(json, format!("\"{}\"", digest().feature_code()));
        let back: ContentDigest = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, digest());
        assert!(serde_json::from_str::<ContentDigest>("\"sha-256:00\"").is_err());
    }

    #[test]
    fn keys_are_long_enough_and_never_printed() {
        assert_eq!(
            SigningKey::from_variable("  short-secret \n").map(|_| ()),
            Err(FirstValueError::KeyTooShort { len: 12, min: 32 })
        );
        assert_eq!(
            SigningKey::new(vec![7; 31]).map(|_| ()),
            Err(FirstValueError::KeyTooShort { len: 31, min: 32 })
        );
        let k = SigningKey::from_variable(&format!("{KEY_A}\n")).expect("long enough");
        assert_eq!(k.len(), KEY_A.len());
        assert!(!k.is_empty());
        let printed = format!("{k:?}");
        assert!(!printed.contains("0123456789"), "{printed}");
        assert_eq!(
            printed,
            format!("SigningKey(<{} secret bytes>)", KEY_A.len())
        );
    }

    #[test]
    fn sign_handles_prefixes_and_trailing_slashes() {
        let d = digest();
        let k = key(KEY_A);
        let hex = d.to_hex();
        for (base, path) in [
            ("https://edge.example.com", format!("/files/{hex}")),
            ("https://edge.example.com/", format!("/files/{hex}")),
            ("https://edge.example.com/ft", format!("/ft/files/{hex}")),
            ("https://edge.example.com/ft/", format!("/ft/files/{hex}")),
            ("https://edge.example.com/ft//", format!("/ft/files/{hex}")),
            (
                "https://edge.example.com/a/b/?q=1#x",
                format!("/a/b/files/{hex}"),
            ),
            (
                "https://user:pw@edge.example.com:8443/ft/",
                format!("/ft/files/{hex}"),
            ),
        ] {
            let base = Url::parse(base).expect("valid");
            let url = sign(&base, d, EXP, &k);
            assert_eq!(url.path(), path, "{base}");
            assert_eq!(url.username(), "");
            assert_eq!(url.password(), None);
            assert_eq!(url.fragment(), None);
            let query = url.query().expect("has a query");
            assert!(query.starts_with(&format!("exp={EXP}&sig=")), "{query}");
            assert_eq!(query.len(), "exp=&sig=".len() + 10 + 64);
            assert_eq!(
                verify(url.as_str(), &base, std::slice::from_ref(&k), now()),
                Ok(VerifiedFileRef {
                    digest: d,
                    expires_unix_secs: EXP
                }),
                "{url}"
            );
        }
    }

    #[test]
    fn the_canonical_string_is_documented_and_fixed() {
        let d = ContentDigest::of(b"abc");
        assert_eq!(
            string_to_sign(&d, 1_700_000_000),
            "GET\n/files/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n1700000000"
        );
        // A fixed vector, so a change of canonical string or encoding cannot pass unnoticed.
        let url = sign(
            &Url::parse("https://edge.example.com/").expect("valid"),
            d,
            1_700_000_000,
            &key(KEY_A),
        );
        let mut mac = key(KEY_A).mac();
        mac.update(string_to_sign(&d, 1_700_000_000).as_bytes());
        let expected = hex::encode(mac.finalize().into_bytes());
        assert_eq!(
            url.query(),
            Some(format!("exp=1700000000&sig={expected}").as_str())
        );
    }

    #[test]
    fn verify_rejects_forged_urls() {
        let good = signed();
        let d = digest();
        let hex = d.to_hex();
        let other_hex = ContentDigest::of(b"other file").to_hex();
        let sig = good.split("sig=").nth(1).expect("has sig").to_owned();
        let other_path_sig = {
            let u = sign(&base(), ContentDigest::of(b"other file"), EXP, &key(KEY_A));
            u.query()
                .and_then(|q| q.split("sig=").nth(1))
                .expect("sig")
                .to_owned()
        };
        let flipped_sig = {
            let mut s = sig.clone().into_bytes();
            s[0] = if s[0] == b'0' { b'1' } else { b'0' };
            String::from_utf8(s).expect("ascii")
        };
        let prefix = "https://edge.example.com/ft/files";
        use FirstValueError as E;
        let cases: Vec<(&str, String, E)> = vec![
            (
                "changed digest",
                good.replace(&hex, &other_hex),
                E::BadSignature,
            ),
            (
                "changed exp",
                good.replace(&format!("exp={EXP}"), &format!("exp={}", EXP + 1)),
                E::BadSignature,
            ),
            (
                "changed sig",
                good.replace(&sig, &flipped_sig),
                E::BadSignature,
            ),
            (
                "sig from another path",
                good.replace(&sig, &other_path_sig),
                E::BadSignature,
            ),
            (
                "wrong key",
                sign(&base(), d, EXP, &key(KEY_B)).to_string(),
                E::BadSignature,
            ),
            (
                "foreign host",
                good.replace("edge.example.com", "evil.example.com"),
                E::ForeignOrigin {
                    expected: "https://edge.example.com".into(),
                    found: "https://evil.example.com".into(),
                },
            ),
            (
                "http instead of https",
                good.replace("https://", "http://"),
                E::ForeignOrigin {
                    expected: "https://edge.example.com".into(),
                    found: "http://edge.example.com".into(),
                },
            ),
            (
                "other port",
                good.replace("edge.example.com", "edge.example.com:8443"),
                E::ForeignOrigin {
                    expected: "https://edge.example.com".into(),
                    found: "https://edge.example.com:8443".into(),
                },
            ),
            (
                "credentials",
                good.replace("https://", "https://alice@"),
                E::UnexpectedCredentials,
            ),
            (
                "explicit default port",
                good.replace("edge.example.com", "edge.example.com:443"),
                E::NotCanonical {
                    canonical: good.clone(),
                },
            ),
            (
                "upper-case host",
                good.replace("edge.example.com", "EDGE.example.com"),
                E::NotCanonical {
                    canonical: good.clone(),
                },
            ),
            (
                "%2e%2e segment",
                good.replace("/ft/files/", "/ft/x/%2e%2e/files/"),
                E::NotCanonical {
                    canonical: good.clone(),
                },
            ),
            (
                "dot segment",
                good.replace("/ft/files/", "/ft/./files/"),
                E::NotCanonical {
                    canonical: good.clone(),
                },
            ),
            (
                "encoded slash",
                good.replace("/ft/files/", "/ft%2Ffiles/"),
                E::BadPath {
                    path: format!("/ft%2Ffiles/{hex}"),
                },
            ),
            (
                "encoded digest character",
                good.replace(
                    &format!("/{}", &hex[..1]),
                    &format!("/%{:02x}", hex.as_bytes()[0]),
                ),
                E::BadPath {
                    path: format!("/ft/files/%{:02x}{}", hex.as_bytes()[0], &hex[1..]),
                },
            ),
            (
                "upper-case digest",
                good.replace(&hex, &hex.to_uppercase()),
                E::BadPath {
                    path: format!("/ft/files/{}", hex.to_uppercase()),
                },
            ),
            (
                "upper-case sig",
                good.replace(&sig, &sig.to_uppercase()),
                E::MalformedSignature { len: 64 },
            ),
            (
                "short sig",
                good.replace(&sig, &sig[..63]),
                E::MalformedSignature { len: 63 },
            ),
            (
                "missing prefix",
                good.replace("/ft/files/", "/files/"),
                E::BadPath {
                    path: format!("/files/{hex}"),
                },
            ),
            (
                "extra segment",
                good.replace("/ft/files/", "/ft/files/x/"),
                E::BadPath {
                    path: format!("/ft/files/x/{hex}"),
                },
            ),
            (
                "trailing slash",
                good.replace("?exp", "/?exp"),
                E::BadPath {
                    path: format!("/ft/files/{hex}/"),
                },
            ),
            (
                "extra param",
                format!("{good}&x=1"),
                E::UnexpectedParameter { name: "x".into() },
            ),
            (
                "empty param",
                format!("{good}&"),
                E::UnexpectedParameter { name: "".into() },
            ),
            (
                "encoded param name",
                good.replace("exp=", "%65xp="),
                E::UnexpectedParameter {
                    name: "%65xp".into(),
                },
            ),
            (
                "duplicate exp",
                format!("{good}&exp={EXP}"),
                E::DuplicateParameter { name: "exp" },
            ),
            (
                "duplicate sig",
                format!("{good}&sig={sig}"),
                E::DuplicateParameter { name: "sig" },
            ),
            ("no query", format!("{prefix}/{hex}"), E::MissingExpiry),
            ("empty query", format!("{prefix}/{hex}?"), E::MissingExpiry),
            (
                "no exp",
                format!("{prefix}/{hex}?sig={sig}"),
                E::MissingExpiry,
            ),
            (
                "no sig",
                format!("{prefix}/{hex}?exp={EXP}"),
                E::MissingSignature,
            ),
            (
                "leading zero exp",
                good.replace("exp=", "exp=0"),
                E::BadExpiry {
                    value: format!("0{EXP}"),
                },
            ),
            (
                "signed exp",
                good.replace("exp=", "exp=+"),
                E::BadExpiry {
                    value: format!("+{EXP}"),
                },
            ),
            (
                "encoded exp",
                good.replace("exp=1", "exp=%31"),
                E::BadExpiry {
                    value: format!("%31{}", &EXP.to_string()[1..]),
                },
            ),
            (
                "exp overflow",
                good.replace(&format!("exp={EXP}"), "exp=18446744073709551616"),
                E::BadExpiry {
                    value: "18446744073709551616".into(),
                },
            ),
            ("fragment", format!("{good}#x"), E::UnexpectedFragment),
            (
                "not a url",
                "edge.example.com/ft/files".into(),
                E::NotAUrl {
                    reason: url::ParseError::RelativeUrlWithoutBase,
                },
            ),
            (
                "leading space",
                format!(" {good}"),
                E::NotCanonical {
                    canonical: good.clone(),
                },
            ),
            (
                "too long",
                format!("{good}&{}", "x".repeat(MAX_URL_LEN)),
                E::TooLong {
                    len: good.len() + 1 + MAX_URL_LEN,
                    limit: MAX_URL_LEN,
                },
            ),
        ];
        let keys = [key(KEY_A)];
        for (name, url, expected) in cases {
            assert_eq!(
                verify(&url, &base(), &keys, now()),
                Err(expected),
                "{name}: {url}"
            );
        }
        assert_eq!(verify(&good, &base(), &[], now()), Err(E::NoTrustedKeys));
    }

    #[test]
    fn parameters_in_either_order_and_rotated_keys_verify() {
        let good = signed();
        let (head, query) = good.split_once('?').expect("has a query");
        let (exp, sig) = query.split_once('&').expect("two params");
        let swapped = format!("{head}?{sig}&{exp}");
        let expected = Ok(VerifiedFileRef {
            digest: digest(),
            expires_unix_secs: EXP,
        });
        assert_eq!(verify(&swapped, &base(), &[key(KEY_A)], now()), expected);
        // Rotation: the new key signs, the old one is still trusted; order does not matter.
        assert_eq!(
            verify(&good, &base(), &[key(KEY_B), key(KEY_A)], now()),
            expected
        );
        assert_eq!(
            verify(&good, &base(), &[key(KEY_B)], now()),
            Err(FirstValueError::BadSignature)
        );
        // The base may be written with or without its trailing slash on either side.
        let bare = Url::parse("https://edge.example.com/ft").expect("valid");
        assert_eq!(verify(&good, &bare, &[key(KEY_A)], now()), expected);
    }

    #[test]
    fn expiry_boundary_is_inclusive_of_the_exp_second() {
        let good = signed();
        let keys = [key(KEY_A)];
        let at = |millis: u64| verify(&good, &base(), &keys, Timestamp::from_unix_millis(millis));
        let exp_ms = EXP * 1000;
        assert!(at(exp_ms - 1).is_ok(), "one millisecond before exp");
        assert!(at(exp_ms).is_ok(), "at exp exactly");
        assert!(
            at(exp_ms + 999).is_ok(),
            "last millisecond of the exp second"
        );
        assert_eq!(
            at(exp_ms + 1000),
            Err(FirstValueError::Expired {
                expired_at: EXP,
                now: Timestamp::from_unix_millis(exp_ms + 1000)
            }),
            "expired by one second"
        );
        // An altered URL is a bad signature even when its real expiry has passed.
        let altered = good.replace(&format!("exp={EXP}"), &format!("exp={}", EXP + 3600));
        assert_eq!(
            verify(
                &altered,
                &base(),
                &keys,
                Timestamp::from_unix_secs(EXP + 10)
            ),
            Err(FirstValueError::BadSignature)
        );
    }

    #[test]
    fn path_and_query_verify_behind_any_clean_prefix() {
        let url = Url::parse(&signed()).expect("valid");
        let hex = digest().to_hex();
        let query = url.query();
        let keys = [key(KEY_A)];
        let ok = Ok(VerifiedFileRef {
            digest: digest(),
            expires_unix_secs: EXP,
        });
        for path in [
            format!("/files/{hex}"),
            format!("/ft/files/{hex}"),
            format!("/a.b/c-d_e~f/files/{hex}"),
            format!("/files/files/{hex}"),
        ] {
            assert_eq!(
                verify_path_and_query(&path, query, &keys, now()),
                ok,
                "{path}"
            );
        }
        for path in [
            format!("files/{hex}"),
            format!("//files/{hex}"),
            format!("/../files/{hex}"),
            format!("/./files/{hex}"),
            format!("/%2e%2e/files/{hex}"),
            format!("/ft/files/{hex}/"),
            format!("/ft/files/{}", hex.to_uppercase()),
            format!("/ft/files/{}", &hex[..63]),
            format!("/ft/file/{hex}"),
            format!("/ft\\x/files/{hex}"),
            String::new(),
            "/".to_owned(),
        ] {
            assert_eq!(
                verify_path_and_query(&path, query, &keys, now()),
                Err(FirstValueError::BadPath { path: path.clone() }),
                "{path}"
            );
        }
        let path = format!("/files/{hex}");
        assert_eq!(
            verify_path_and_query(&path, None, &keys, now()),
            Err(FirstValueError::MissingExpiry)
        );
        assert_eq!(
            verify_path_and_query(&path, Some(""), &keys, now()),
            Err(FirstValueError::MissingExpiry)
        );
        let extra = format!("{}&a=b", query.unwrap_or_default());
        assert_eq!(
            verify_path_and_query(&path, Some(&extra), &keys, now()),
            Err(FirstValueError::UnexpectedParameter { name: "a".into() })
        );
        assert_eq!(
            verify_path_and_query(&path, query, &keys, Timestamp::from_unix_secs(EXP + 1)),
            Err(FirstValueError::Expired {
                expired_at: EXP,
                now: Timestamp::from_unix_secs(EXP + 1)
            })
        );
        assert_eq!(
            verify_path_and_query(&"/x".repeat(MAX_URL_LEN), query, &keys, now()),
            Err(FirstValueError::TooLong {
                len: 2 * MAX_URL_LEN + query.map_or(0, str::len),
                limit: MAX_URL_LEN
            })
        );
    }

    #[test]
    fn truncated_urls_never_verify() {
        let good = signed();
        let keys = [key(KEY_A)];
        for end in 0..good.len() {
            let cut = &good[..end];
            assert!(verify(cut, &base(), &keys, now()).is_err(), "{cut}");
        }
    }

    #[test]
    fn first_value_round_trips_through_serde() {
        let value = FirstValue::issue(&base(), digest(), EXP, &key(KEY_A));
        assert_eq!(value.storage_key(), digest().storage_key());
        assert_eq!(value.expires_at(), Timestamp::from_unix_secs(EXP));
        let json = serde_json::to_string(&value).expect("serializes");
        let back: FirstValue = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, value);
        let verified = verify(back.url.as_str(), &base(), &[key(KEY_A)], now()).expect("verifies");
        assert_eq!(verified.digest, value.feature_code);
        assert_eq!(verified.storage_key(), value.storage_key());
    }
}
