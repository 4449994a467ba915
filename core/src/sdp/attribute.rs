//! SDP attributes (`a=` lines): the typed ones MSRP and RFC 5547 file transfer need, and
//! [`Attribute::Other`] for every attribute this module does not interpret.
//!
//! Each typed attribute parses from, and writes back to, the grammar of its RFC:
//! - RFC 4975 section 8: `path`, `accept-types`, `accept-wrapped-types`, `max-size`;
//! - RFC 4145 and RFC 6135: `setup`;
//! - RFC 4566 section 6: `sendonly`, `recvonly`, `sendrecv`, `inactive`;
//! - RFC 5547 section 6: `file-selector`, `file-transfer-id`, `file-disposition`, `file-date`,
//!   `file-icon`, `file-range`.
//!
//! Writing a typed attribute always produces its canonical form (single spaces, upper-case hash hex,
//! selectors in the order name, type, size, hash). The parser of the whole body keeps the original
//! text of any line whose canonical form differs, so odd-but-valid input still round-trips.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::{AttributeError, FileSelectorError};
use crate::lex::{self, Decimal, Expected, MediaTypeSyntax, SyntaxError, hex_byte, is_token_char};

/// One `a=` line, without the `a=` prefix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Attribute {
    /// `a=path:` the MSRP URIs of the path to the endpoint, in order (RFC 4975 section 8.2). Kept as
    /// strings: the MSRP module parses MSRP URIs.
    Path(Vec<String>),
    /// `a=accept-types:` media types the endpoint accepts (RFC 4975 section 8.6), `*` included;
    /// each entry keeps its parameters as written (`text/plain;x="a b"` is one entry).
    AcceptTypes(Vec<String>),
    /// `a=accept-wrapped-types:` media types accepted only inside a wrapper such as message/cpim.
    AcceptWrappedTypes(Vec<String>),
    /// `a=max-size:` the largest message, in octets, the endpoint accepts (RFC 4975 section 8.6).
    MaxSize(u64),
    /// `a=setup:` which side opens the connection (RFC 4145, used for MSRP by RFC 6135).
    Setup(Setup),
    /// `a=sendonly`, `a=recvonly`, `a=sendrecv` or `a=inactive` (RFC 4566 section 6).
    Direction(Direction),
    /// `a=file-selector` (RFC 5547 section 6); all selectors absent is the bare capability form.
    FileSelector(FileSelector),
    /// `a=file-transfer-id:` the unique id of one file transfer (RFC 5547 section 8.1).
    FileTransferId(String),
    /// `a=file-disposition:` the suggested disposition of the file, e.g. `render` or `attachment`.
    FileDisposition(String),
    /// `a=file-date:` creation, modification and read dates of the file.
    FileDate(FileDate),
    /// `a=file-icon:` a `cid:` URL (RFC 2392) naming a body part with a preview of the file.
    FileIcon(String),
    /// `a=file-range:` the octets of the file to transfer.
    FileRange(FileRange),
    /// Any other attribute, kept as it came. `value` is `None` for `a=name`, and `Some` (perhaps
    /// empty) for `a=name:value`.
    Other {
        /// The attribute name (before the first `:`).
        name: String,
        /// Everything after the first `:`, if there is one.
        value: Option<String>,
    },
}

/// The media direction attributes of RFC 4566 section 6.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    /// `a=sendonly`: this side only sends (a file transfer push, seen from the offerer).
    SendOnly,
    /// `a=recvonly`: this side only receives (a file transfer pull, seen from the offerer).
    RecvOnly,
    /// `a=sendrecv`: both ways; the default when no direction attribute is present.
    SendRecv,
    /// `a=inactive`: neither way.
    Inactive,
}

impl Direction {
    /// The attribute name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::SendOnly => "sendonly",
            Self::RecvOnly => "recvonly",
            Self::SendRecv => "sendrecv",
            Self::Inactive => "inactive",
        }
    }

    /// The direction named by an attribute name, if it is one.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "sendonly" => Some(Self::SendOnly),
            "recvonly" => Some(Self::RecvOnly),
            "sendrecv" => Some(Self::SendRecv),
            "inactive" => Some(Self::Inactive),
            _ => None,
        }
    }

    /// The direction an answer gives to this offered direction (RFC 3264 section 6.1): sendonly is
    /// answered by recvonly and the other way round; sendrecv and inactive answer themselves.
    pub const fn reversed(self) -> Self {
        match self {
            Self::SendOnly => Self::RecvOnly,
            Self::RecvOnly => Self::SendOnly,
            other => other,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `a=setup` roles of RFC 4145 section 4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Setup {
    /// This side opens the connection (a WebSocket client always does).
    Active,
    /// This side accepts the connection.
    Passive,
    /// Either; the answer decides.
    Actpass,
    /// No connection for now.
    Holdconn,
}

impl Setup {
    /// The attribute value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Passive => "passive",
            Self::Actpass => "actpass",
            Self::Holdconn => "holdconn",
        }
    }

    /// The role named by an attribute value, if it is one.
    pub fn from_value(value: &str) -> Option<Self> {
        match value {
            "active" => Some(Self::Active),
            "passive" => Some(Self::Passive),
            "actpass" => Some(Self::Actpass),
            "holdconn" => Some(Self::Holdconn),
            _ => None,
        }
    }

    /// Whether an answer may say `answer` to an offer that said `self` (RFC 4145 section 4.1:
    /// active is answered by passive, passive by active, actpass by either, holdconn by holdconn).
    pub const fn accepts_answer(self, answer: Setup) -> bool {
        matches!(
            (self, answer),
            (Self::Active, Self::Passive)
                | (Self::Passive, Self::Active)
                | (Self::Actpass, Self::Active | Self::Passive)
                | (Self::Holdconn, Self::Holdconn)
        )
    }

    /// The answer a side that cannot open connections itself (a server reached over WebSocket)
    /// gives: passive to active or actpass, active to passive, holdconn to holdconn.
    pub const fn default_answer(self) -> Setup {
        match self {
            Self::Active | Self::Actpass => Self::Passive,
            Self::Passive => Self::Active,
            Self::Holdconn => Self::Holdconn,
        }
    }
}

impl fmt::Display for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The RFC 5547 file selector: what identifies the file of a transfer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSelector {
    /// The file name, percent-decoded (UTF-8 per RFC 5547). Untrusted: sanitize before using it as
    /// a local path.
    pub name: Option<String>,
    /// The media type with its parameters, exactly as in the selector, e.g.
    /// `image/jpeg` or `text/plain;charset="UTF-8"`.
    pub content_type: Option<String>,
    /// The file size in octets.
    pub size: Option<u64>,
    /// The hashes of the whole file; RFC 5547 allows more than one (one per algorithm).
    pub hashes: Vec<FileHash>,
}

impl FileSelector {
    /// True for the bare `a=file-selector` of a capability indication (RFC 5547 section 8.5).
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.content_type.is_none()
            && self.size.is_none()
            && self.hashes.is_empty()
    }

    /// The hash computed with `algorithm` (compared without regard to case), if present.
    pub fn hash(&self, algorithm: &str) -> Option<&FileHash> {
        self.hashes
            .iter()
            .find(|h| h.algorithm.eq_ignore_ascii_case(algorithm))
    }

    /// Parses the value after `file-selector:`.
    pub fn parse(value: &str) -> Result<Self, FileSelectorError> {
        parse_file_selector(value)
    }
}

impl fmt::Display for FileSelector {
    /// The selectors in canonical order (name, type, size, hashes), separated by single spaces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut sep = |f: &mut fmt::Formatter<'_>| -> fmt::Result {
            if !std::mem::take(&mut first) {
                f.write_str(" ")?;
            }
            Ok(())
        };
        if let Some(name) = &self.name {
            sep(f)?;
            f.write_str("name:\"")?;
            write_percent_encoded(f, name)?;
            f.write_str("\"")?;
        }
        if let Some(content_type) = &self.content_type {
            sep(f)?;
            write!(f, "type:{content_type}")?;
        }
        if let Some(size) = self.size {
            sep(f)?;
            write!(f, "size:{size}")?;
        }
        for hash in &self.hashes {
            sep(f)?;
            write!(f, "hash:{hash}")?;
        }
        Ok(())
    }
}

/// A hash selector: algorithm name (from the IANA Hash Function Textual Names registry, e.g.
/// `sha-1`, `sha-256`) and the digest bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileHash {
    /// The algorithm name as written, e.g. `sha-256`.
    pub algorithm: String,
    /// The digest.
    pub bytes: Vec<u8>,
}

impl fmt::Display for FileHash {
    /// `algorithm:HH:HH:...` with upper-case hex, as RFC 5547 section 6 asks.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.algorithm)?;
        for byte in &self.bytes {
            write!(f, ":{byte:02X}")?;
        }
        Ok(())
    }
}

/// The dates of `a=file-date` (RFC 5547 section 6), kept as the RFC 5322 date-time text between
/// the quotes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDate {
    /// `creation:"..."`.
    pub creation: Option<String>,
    /// `modification:"..."`.
    pub modification: Option<String>,
    /// `read:"..."`.
    pub read: Option<String>,
}

impl fmt::Display for FileDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        for (label, value) in [
            ("creation", &self.creation),
            ("modification", &self.modification),
            ("read", &self.read),
        ] {
            if let Some(value) = value {
                write!(f, "{sep}{label}:\"{value}\"")?;
                sep = " ";
            }
        }
        Ok(())
    }
}

/// `a=file-range`: the octets to transfer, 1-based and inclusive (RFC 5547 section 6). A stop of
/// `None` (`*`) means up to the end of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRange {
    /// The first octet, counting from 1.
    pub start: u64,
    /// The last octet, or `None` for the end of the file.
    pub stop: Option<u64>,
}

impl fmt::Display for FileRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.stop {
            Some(stop) => write!(f, "{}-{stop}", self.start),
            None => write!(f, "{}-*", self.start),
        }
    }
}

impl Attribute {
    /// Parses the text of an `a=` line after the `a=`. Unknown names become [`Attribute::Other`];
    /// known names whose value breaks their grammar are errors.
    pub fn parse(text: &str) -> Result<Self, AttributeError> {
        let (name, value) = match text.split_once(':') {
            Some((name, value)) => (name, Some(value)),
            None => (text, None),
        };
        if name.is_empty() {
            return Err(AttributeError::EmptyName);
        }
        Ok(match name {
            "path" => Self::Path(list(need(value)?)?),
            "accept-types" => Self::AcceptTypes(media_type_list(need(value)?)?),
            "accept-wrapped-types" => Self::AcceptWrappedTypes(media_type_list(need(value)?)?),
            "max-size" => Self::MaxSize(number(need(value)?).ok_or(AttributeError::NotANumber)?),
            "setup" => {
                Self::Setup(Setup::from_value(need(value)?).ok_or(AttributeError::UnknownValue)?)
            }
            "file-selector" => match value {
                None => Self::FileSelector(FileSelector::default()),
                Some(value) => Self::FileSelector(
                    parse_file_selector(value).map_err(AttributeError::FileSelector)?,
                ),
            },
            "file-transfer-id" => Self::FileTransferId(token(need(value)?)?),
            "file-disposition" => Self::FileDisposition(token(need(value)?)?),
            "file-date" => Self::FileDate(parse_file_date(need(value)?)?),
            "file-icon" => Self::FileIcon(cid_url(need(value)?)?),
            "file-range" => Self::FileRange(parse_file_range(need(value)?)?),
            _ => match (Direction::from_name(name), value) {
                // A direction with a value is not RFC 4566's property attribute: keep it as is.
                (Some(direction), None) => Self::Direction(direction),
                _ => Self::Other {
                    name: name.to_owned(),
                    value: value.map(str::to_owned),
                },
            },
        })
    }

    /// The attribute name, e.g. `path` or `sendonly`.
    pub fn name(&self) -> &str {
        match self {
            Self::Path(_) => "path",
            Self::AcceptTypes(_) => "accept-types",
            Self::AcceptWrappedTypes(_) => "accept-wrapped-types",
            Self::MaxSize(_) => "max-size",
            Self::Setup(_) => "setup",
            Self::Direction(direction) => direction.as_str(),
            Self::FileSelector(_) => "file-selector",
            Self::FileTransferId(_) => "file-transfer-id",
            Self::FileDisposition(_) => "file-disposition",
            Self::FileDate(_) => "file-date",
            Self::FileIcon(_) => "file-icon",
            Self::FileRange(_) => "file-range",
            Self::Other { name, .. } => name,
        }
    }

    /// The canonical value text (after the `:`), or `None` for a property attribute.
    pub fn value(&self) -> Option<String> {
        match self {
            Self::Path(list) | Self::AcceptTypes(list) | Self::AcceptWrappedTypes(list) => {
                Some(list.join(" "))
            }
            Self::MaxSize(size) => Some(size.to_string()),
            Self::Setup(setup) => Some(setup.as_str().to_owned()),
            Self::Direction(_) => None,
            Self::FileSelector(selector) if selector.is_empty() => None,
            Self::FileSelector(selector) => Some(selector.to_string()),
            Self::FileTransferId(text) | Self::FileDisposition(text) | Self::FileIcon(text) => {
                Some(text.clone())
            }
            Self::FileDate(date) => Some(date.to_string()),
            Self::FileRange(range) => Some(range.to_string()),
            Self::Other { value, .. } => value.clone(),
        }
    }

    /// Whether a section may hold this attribute only once (a second one must repeat the value).
    pub(crate) fn is_single(&self) -> bool {
        !matches!(self, Self::Direction(_) | Self::Other { .. })
    }
}

impl fmt::Display for Attribute {
    /// `name` or `name:value`, without the `a=` prefix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())?;
        if let Some(value) = self.value() {
            write!(f, ":{value}")?;
        }
        Ok(())
    }
}

/// The value of an attribute that needs one.
fn need(value: Option<&str>) -> Result<&str, AttributeError> {
    match value {
        None => Err(AttributeError::MissingValue),
        Some("") => Err(AttributeError::EmptyValue),
        Some(value) => Ok(value),
    }
}

/// RFC 4975 `format-list` (`accept-types`, `accept-wrapped-types`): `*` or media types (`type/*`
/// included) with their parameters, separated by spaces (tabs are taken too). A quoted parameter
/// value may hold spaces, so the list is split by scanning each media type, not at every space.
pub(crate) fn media_type_list(value: &str) -> Result<Vec<String>, AttributeError> {
    let bytes = value.as_bytes();
    let blank = |b: Option<&u8>| matches!(b, Some(b' ' | b'\t'));
    let skip_blanks = |mut at: usize| {
        while blank(bytes.get(at)) {
            at += 1;
        }
        at
    };
    let mut items = Vec::new();
    let mut pos = skip_blanks(0);
    // Each entry takes at least one byte, so the loop ends within the value.
    while pos < bytes.len() {
        let star = bytes.get(pos) == Some(&b'*')
            && (bytes.get(pos + 1).is_none() || blank(bytes.get(pos + 1)));
        let end = if star {
            pos + 1
        } else {
            lex::scan_media_type(bytes, pos, MediaTypeSyntax::Sdp).map_err(|e| match e {
                SyntaxError {
                    offset,
                    expected: Expected::ClosingQuote,
                } => AttributeError::UnterminatedQuote { offset },
                SyntaxError { offset, .. } => AttributeError::BadMediaType { offset },
            })?
        };
        if bytes.get(end).is_some() && !blank(bytes.get(end)) {
            return Err(AttributeError::BadMediaType { offset: end });
        }
        items.push(value.get(pos..end).unwrap_or_default().to_owned());
        pos = skip_blanks(end);
    }
    if items.is_empty() {
        return Err(AttributeError::EmptyValue);
    }
    Ok(items)
}

/// A space-separated list with at least one entry (`path`: MSRP URIs hold no spaces).
fn list(value: &str) -> Result<Vec<String>, AttributeError> {
    let items: Vec<String> = value.split_ascii_whitespace().map(str::to_owned).collect();
    if items.is_empty() {
        return Err(AttributeError::EmptyValue);
    }
    Ok(items)
}

/// A decimal number that fits 64 bits (no sign, no spaces; leading zeros allowed).
pub(crate) fn number(text: &str) -> Option<u64> {
    Decimal::U64.parse(text).ok()
}

fn token(value: &str) -> Result<String, AttributeError> {
    match value.bytes().position(|b| !is_token_char(b)) {
        Some(offset) => Err(AttributeError::NotAToken { offset }),
        None => Ok(value.to_owned()),
    }
}

fn cid_url(value: &str) -> Result<String, AttributeError> {
    let scheme = value.get(..4).ok_or(AttributeError::NotCid)?;
    if !scheme.eq_ignore_ascii_case("cid:") || value.len() == 4 || value.bytes().any(|b| b == b' ')
    {
        return Err(AttributeError::NotCid);
    }
    Ok(value.to_owned())
}

fn parse_file_range(value: &str) -> Result<FileRange, AttributeError> {
    let (start, stop) = value.split_once('-').ok_or(AttributeError::NotANumber)?;
    let start = number(start).ok_or(AttributeError::NotANumber)?;
    let stop = match stop {
        "*" => None,
        stop => Some(number(stop).ok_or(AttributeError::NotANumber)?),
    };
    if start == 0 || stop.is_some_and(|stop| stop < start) {
        return Err(AttributeError::BadRange);
    }
    Ok(FileRange { start, stop })
}

fn parse_file_date(value: &str) -> Result<FileDate, AttributeError> {
    let bytes = value.as_bytes();
    let mut date = FileDate::default();
    let mut pos = 0;
    // Each iteration consumes at least the label and two quotes, so this ends within value.len().
    while pos < bytes.len() {
        let rest = value.get(pos..).unwrap_or_default();
        let (label_len, slot) = if rest.starts_with("creation:") {
            (9, &mut date.creation)
        } else if rest.starts_with("modification:") {
            (13, &mut date.modification)
        } else if rest.starts_with("read:") {
            (5, &mut date.read)
        } else {
            return Err(AttributeError::UnknownDateParameter { offset: pos });
        };
        if slot.is_some() {
            return Err(AttributeError::DuplicateDateParameter { offset: pos });
        }
        let open = pos + label_len;
        if bytes.get(open) != Some(&b'"') {
            return Err(AttributeError::ExpectedQuote { offset: open });
        }
        let close = find_byte(bytes, open + 1, b'"')
            .ok_or(AttributeError::UnterminatedQuote { offset: open })?;
        *slot = Some(value.get(open + 1..close).unwrap_or_default().to_owned());
        pos = close + 1;
        match bytes.get(pos) {
            None => break,
            Some(b' ') => {
                pos = skip_spaces(bytes, pos);
                if pos >= bytes.len() {
                    break;
                }
            }
            Some(_) => return Err(AttributeError::ExpectedSpace { offset: pos }),
        }
    }
    Ok(date)
}

fn find_byte(bytes: &[u8], from: usize, needle: u8) -> Option<usize> {
    bytes
        .get(from..)?
        .iter()
        .position(|&b| b == needle)
        .map(|i| from + i)
}

fn skip_spaces(bytes: &[u8], mut pos: usize) -> usize {
    while bytes.get(pos) == Some(&b' ') {
        pos += 1;
    }
    pos
}

/// The end of a selector value: the next space or the end of the value.
fn value_end(bytes: &[u8], from: usize) -> usize {
    find_byte(bytes, from, b' ').unwrap_or(bytes.len())
}

fn parse_file_selector(value: &str) -> Result<FileSelector, FileSelectorError> {
    let bytes = value.as_bytes();
    if bytes.is_empty() {
        return Err(FileSelectorError::Empty);
    }
    let mut selector = FileSelector::default();
    let mut pos = 0;
    // Every iteration consumes at least a five-byte selector prefix, so the loop ends.
    while pos < bytes.len() {
        let rest = value.get(pos..).unwrap_or_default();
        let start = pos;
        if rest.starts_with("name:") {
            if selector.name.is_some() {
                return Err(FileSelectorError::DuplicateSelector {
                    selector: "name",
                    offset: start,
                });
            }
            let open = pos + 5;
            if bytes.get(open) != Some(&b'"') {
                return Err(FileSelectorError::ExpectedQuote { offset: open });
            }
            let close = find_byte(bytes, open + 1, b'"')
                .ok_or(FileSelectorError::UnterminatedQuote { offset: open })?;
            let raw = bytes.get(open + 1..close).unwrap_or_default();
            selector.name = Some(percent_decode(raw, open + 1)?);
            pos = close + 1;
        } else if rest.starts_with("size:") {
            if selector.size.is_some() {
                return Err(FileSelectorError::DuplicateSelector {
                    selector: "size",
                    offset: start,
                });
            }
            let from = pos + 5;
            let end = value_end(bytes, from);
            let text = value.get(from..end).unwrap_or_default();
            selector.size =
                Some(number(text).ok_or(FileSelectorError::SizeNotANumber { offset: from })?);
            pos = end;
        } else if rest.starts_with("type:") {
            if selector.content_type.is_some() {
                return Err(FileSelectorError::DuplicateSelector {
                    selector: "type",
                    offset: start,
                });
            }
            let from = pos + 5;
            let end = scan_media_type(bytes, from)?;
            selector.content_type = Some(value.get(from..end).unwrap_or_default().to_owned());
            pos = end;
        } else if rest.starts_with("hash:") {
            let from = pos + 5;
            let end = value_end(bytes, from);
            selector.hashes.push(parse_hash(bytes, from, end)?);
            pos = end;
        } else {
            return Err(FileSelectorError::UnknownSelector { offset: pos });
        }
        match bytes.get(pos) {
            None => break,
            Some(b' ') => pos = skip_spaces(bytes, pos),
            Some(_) => return Err(FileSelectorError::ExpectedSpace { offset: pos }),
        }
    }
    Ok(selector)
}

/// Scans the media type of a `type:` selector from `from`; returns where it ends (a space or the
/// end of the value). Values may be quoted (RFC 5547's `ft-parameter`) or, leniently, bare tokens.
fn scan_media_type(bytes: &[u8], from: usize) -> Result<usize, FileSelectorError> {
    let end = lex::scan_media_type(bytes, from, MediaTypeSyntax::Sdp).map_err(|e| match e {
        SyntaxError {
            offset,
            expected: Expected::ClosingQuote,
        } => FileSelectorError::UnterminatedQuote { offset },
        SyntaxError { offset, .. } => FileSelectorError::BadType { offset },
    })?;
    match bytes.get(end) {
        None | Some(b' ') => Ok(end),
        Some(_) => Err(FileSelectorError::BadType { offset: end }),
    }
}

fn parse_hash(bytes: &[u8], from: usize, end: usize) -> Result<FileHash, FileSelectorError> {
    let field = bytes.get(from..end).unwrap_or_default();
    let colon = field
        .iter()
        .position(|&b| b == b':')
        .filter(|&i| i > 0)
        .ok_or(FileSelectorError::MissingHashAlgorithm { offset: from })?;
    let algorithm = field.get(..colon).unwrap_or_default();
    if !algorithm.iter().all(|&b| is_token_char(b)) {
        return Err(FileSelectorError::MissingHashAlgorithm { offset: from });
    }
    let hex = field.get(colon + 1..).unwrap_or_default();
    let mut digest = Vec::with_capacity(hex.len().div_ceil(3));
    let mut offset = from + colon + 1;
    for pair in hex.split(|&b| b == b':') {
        digest.push(hex_byte(pair).ok_or(FileSelectorError::BadHashHex { offset })?);
        offset += pair.len() + 1;
    }
    Ok(FileHash {
        algorithm: String::from_utf8_lossy(algorithm).into_owned(),
        bytes: digest,
    })
}

/// Decodes RFC 5547's `filename-string`; `base` is the offset of `raw` within the value, for errors.
fn percent_decode(raw: &[u8], base: usize) -> Result<String, FileSelectorError> {
    if raw.is_empty() {
        return Err(FileSelectorError::EmptyName);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        if b == b'%' {
            let decoded = raw
                .get(i + 1..i + 3)
                .and_then(hex_byte)
                .ok_or(FileSelectorError::BadPercentEncoding { offset: base + i })?;
            out.push(decoded);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| FileSelectorError::NameNotUtf8)
}

/// Writes a file name as RFC 5547's `filename-string`: the bytes the grammar forbids (NUL, CR, LF,
/// `"`, `%`), the other control characters (no SDP line may carry them), and the directory
/// separators `/` and `\` (section 6: names must not carry directory structure) are
/// percent-encoded; everything else, UTF-8 included, is written as is.
fn write_percent_encoded(f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
    let mut rest = name;
    while let Some(i) =
        rest.find(|c: char| c.is_ascii_control() || matches!(c, '"' | '%' | '/' | '\\'))
    {
        let (plain, tail) = rest.split_at(i);
        f.write_str(plain)?;
        let mut chars = tail.chars();
        if let Some(c) = chars.next() {
            write!(f, "%{:02X}", c as u32)?;
        }
        rest = chars.as_str();
    }
    f.write_str(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selector(value: &str) -> Result<FileSelector, FileSelectorError> {
        FileSelector::parse(value)
    }

    #[test]
    fn file_selector_grammar() {
        let sha1 = "72:24:5F:E8:65:3D:DA:F3:71:36:2F:86:D4:71:91:3E:E4:A2:CE:2E";
        let parsed = selector(&format!(
            "name:\"My cool picture.jpg\" type:image/jpeg size:4092 hash:sha-1:{sha1}"
        ))
        .expect("RFC 5547 selector");
        assert_eq!(parsed.name.as_deref(), Some("My cool picture.jpg"));
        assert_eq!(parsed.content_type.as_deref(), Some("image/jpeg"));
        assert_eq!(parsed.size, Some(4092));
        let hash = parsed.hash("SHA-1").expect("sha-1 hash");
        assert_eq!(hash.bytes.len(), 20);
        assert_eq!(hash.bytes.first(), Some(&0x72));
        assert_eq!(hash.bytes.last(), Some(&0x2E));
        assert_eq!(
            parsed.to_string(),
            format!("name:\"My cool picture.jpg\" type:image/jpeg size:4092 hash:sha-1:{sha1}")
        );

        let table: &[(&str, Result<FileSelector, FileSelectorError>)] = &[
            (
                "size:12",
                Ok(FileSelector {
                    size: Some(12),
                    ..FileSelector::default()
                }),
            ),
            (
                "name:\"a%22b%25c%2Fd\"",
                Ok(FileSelector {
                    name: Some("a\"b%c/d".into()),
                    ..FileSelector::default()
                }),
            ),
            (
                "name:\"caf%C3%A9.txt\"",
                Ok(FileSelector {
                    name: Some("café.txt".into()),
                    ..FileSelector::default()
                }),
            ),
            (
                "type:text/plain;charset=\"UTF-8\" size:1",
                Ok(FileSelector {
                    content_type: Some("text/plain;charset=\"UTF-8\"".into()),
                    size: Some(1),
                    ..FileSelector::default()
                }),
            ),
            (
                "type:text/plain;format=flowed",
                Ok(FileSelector {
                    content_type: Some("text/plain;format=flowed".into()),
                    ..FileSelector::default()
                }),
            ),
            (
                "hash:sha-1:0A hash:sha-256:ff:00",
                Ok(FileSelector {
                    hashes: vec![
                        FileHash {
                            algorithm: "sha-1".into(),
                            bytes: vec![0x0A],
                        },
                        FileHash {
                            algorithm: "sha-256".into(),
                            bytes: vec![0xFF, 0x00],
                        },
                    ],
                    ..FileSelector::default()
                }),
            ),
            ("", Err(FileSelectorError::Empty)),
            (
                "name:\"unterminated",
                Err(FileSelectorError::UnterminatedQuote { offset: 5 }),
            ),
            (
                "name:bare",
                Err(FileSelectorError::ExpectedQuote { offset: 5 }),
            ),
            ("name:\"\"", Err(FileSelectorError::EmptyName)),
            (
                "name:\"a%2\"",
                Err(FileSelectorError::BadPercentEncoding { offset: 7 }),
            ),
            (
                "name:\"a%zz\"",
                Err(FileSelectorError::BadPercentEncoding { offset: 7 }),
            ),
            ("name:\"%FF\"", Err(FileSelectorError::NameNotUtf8)),
            (
                "name:\"a\"size:1",
                Err(FileSelectorError::ExpectedSpace { offset: 8 }),
            ),
            (
                "size:12kB",
                Err(FileSelectorError::SizeNotANumber { offset: 5 }),
            ),
            (
                "size:",
                Err(FileSelectorError::SizeNotANumber { offset: 5 }),
            ),
            (
                "size:99999999999999999999999",
                Err(FileSelectorError::SizeNotANumber { offset: 5 }),
            ),
            (
                "size:1 size:2",
                Err(FileSelectorError::DuplicateSelector {
                    selector: "size",
                    offset: 7,
                }),
            ),
            (
                "hash:sha-1:7G",
                Err(FileSelectorError::BadHashHex { offset: 11 }),
            ),
            (
                "hash:sha-1:72:2",
                Err(FileSelectorError::BadHashHex { offset: 14 }),
            ),
            (
                "hash:sha-1:",
                Err(FileSelectorError::BadHashHex { offset: 11 }),
            ),
            (
                "hash:sha-1:72::24",
                Err(FileSelectorError::BadHashHex { offset: 14 }),
            ),
            (
                "hash:7224",
                Err(FileSelectorError::MissingHashAlgorithm { offset: 5 }),
            ),
            (
                "hash::72",
                Err(FileSelectorError::MissingHashAlgorithm { offset: 5 }),
            ),
            ("type:image", Err(FileSelectorError::BadType { offset: 10 })),
            (
                "type:image/",
                Err(FileSelectorError::BadType { offset: 11 }),
            ),
            (
                "type:a/b;c=\"open",
                Err(FileSelectorError::UnterminatedQuote { offset: 11 }),
            ),
            (
                "colour:red",
                Err(FileSelectorError::UnknownSelector { offset: 0 }),
            ),
        ];
        for (input, expected) in table {
            assert_eq!(&selector(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn file_selector_truncations_never_panic() {
        let full = "name:\"caf%C3%A9 x.jpg\" type:image/jpeg;q=\"1\" size:4092 hash:sha-1:72:24:5F";
        for end in 0..=full.len() {
            if let Some(prefix) = full.get(..end) {
                // Every prefix either parses or names its fault; none panics.
                let _ = selector(prefix);
            }
        }
        assert!(selector(full).is_ok());
    }

    #[test]
    fn names_are_percent_encoded_on_output() {
        let selector = FileSelector {
            name: Some("a\"b%c/d\\e\r\nf\tg\u{7f} h.txt".into()),
            ..FileSelector::default()
        };
        assert_eq!(
            selector.to_string(),
            "name:\"a%22b%25c%2Fd%5Ce%0D%0Af%09g%7F h.txt\""
        );
        assert_eq!(FileSelector::parse(&selector.to_string()), Ok(selector));
    }

    #[test]
    fn attributes_parse_and_print() {
        let table: &[(&str, Result<Attribute, AttributeError>, &str)] = &[
            (
                "path:msrp://a.example.com:7654/jshA7we;tcp msrps://b/x;ws",
                Ok(Attribute::Path(vec![
                    "msrp://a.example.com:7654/jshA7we;tcp".into(),
                    "msrps://b/x;ws".into(),
                ])),
                "path:msrp://a.example.com:7654/jshA7we;tcp msrps://b/x;ws",
            ),
            (
                "accept-types:message/cpim  text/plain",
                Ok(Attribute::AcceptTypes(vec![
                    "message/cpim".into(),
                    "text/plain".into(),
                ])),
                "accept-types:message/cpim text/plain",
            ),
            (
                "accept-wrapped-types:*",
                Ok(Attribute::AcceptWrappedTypes(vec!["*".into()])),
                "accept-wrapped-types:*",
            ),
            (
                "accept-types:text/plain;x=\"a b\" image/*",
                Ok(Attribute::AcceptTypes(vec![
                    "text/plain;x=\"a b\"".into(),
                    "image/*".into(),
                ])),
                "accept-types:text/plain;x=\"a b\" image/*",
            ),
            (
                "accept-wrapped-types:text/plain;charset=\"UTF 8\"\t*  */*",
                Ok(Attribute::AcceptWrappedTypes(vec![
                    "text/plain;charset=\"UTF 8\"".into(),
                    "*".into(),
                    "*/*".into(),
                ])),
                "accept-wrapped-types:text/plain;charset=\"UTF 8\" * */*",
            ),
            (
                "max-size:20000",
                Ok(Attribute::MaxSize(20000)),
                "max-size:20000",
            ),
            (
                "setup:actpass",
                Ok(Attribute::Setup(Setup::Actpass)),
                "setup:actpass",
            ),
            (
                "recvonly",
                Ok(Attribute::Direction(Direction::RecvOnly)),
                "recvonly",
            ),
            (
                "file-selector",
                Ok(Attribute::FileSelector(FileSelector::default())),
                "file-selector",
            ),
            (
                "file-transfer-id:vBnG916bdberum2fFEABR1FR3ExZMUrd",
                Ok(Attribute::FileTransferId(
                    "vBnG916bdberum2fFEABR1FR3ExZMUrd".into(),
                )),
                "file-transfer-id:vBnG916bdberum2fFEABR1FR3ExZMUrd",
            ),
            (
                "file-disposition:render",
                Ok(Attribute::FileDisposition("render".into())),
                "file-disposition:render",
            ),
            (
                "file-date:read:\"Mon, 16 May 2006 09:12:27 +0300\" creation:\"Mon, 15 May 2006 15:01:31 +0300\"",
                Ok(Attribute::FileDate(FileDate {
                    creation: Some("Mon, 15 May 2006 15:01:31 +0300".into()),
                    modification: None,
                    read: Some("Mon, 16 May 2006 09:12:27 +0300".into()),
                })),
                "file-date:creation:\"Mon, 15 May 2006 15:01:31 +0300\" read:\"Mon, 16 May 2006 09:12:27 +0300\"",
            ),
            (
                "file-icon:cid:id2@alicepc.example.com",
                Ok(Attribute::FileIcon("cid:id2@alicepc.example.com".into())),
                "file-icon:cid:id2@alicepc.example.com",
            ),
            (
                "file-range:1-*",
                Ok(Attribute::FileRange(FileRange {
                    start: 1,
                    stop: None,
                })),
                "file-range:1-*",
            ),
            (
                "file-range:10-2000",
                Ok(Attribute::FileRange(FileRange {
                    start: 10,
                    stop: Some(2000),
                })),
                "file-range:10-2000",
            ),
            (
                "rtpmap:96 H264/90000",
                Ok(Attribute::Other {
                    name: "rtpmap".into(),
                    value: Some("96 H264/90000".into()),
                }),
                "rtpmap:96 H264/90000",
            ),
            (
                "sendonly:",
                Ok(Attribute::Other {
                    name: "sendonly".into(),
                    value: Some(String::new()),
                }),
                "sendonly:",
            ),
            ("path", Err(AttributeError::MissingValue), ""),
            ("path:", Err(AttributeError::EmptyValue), ""),
            ("path:   ", Err(AttributeError::EmptyValue), ""),
            ("accept-types: ", Err(AttributeError::EmptyValue), ""),
            (
                "accept-types:text",
                Err(AttributeError::BadMediaType { offset: 4 }),
                "",
            ),
            (
                "accept-types:*x",
                Err(AttributeError::BadMediaType { offset: 2 }),
                "",
            ),
            (
                "accept-types:a/b c",
                Err(AttributeError::BadMediaType { offset: 5 }),
                "",
            ),
            (
                "accept-types:a/b;c=\"x y",
                Err(AttributeError::UnterminatedQuote { offset: 6 }),
                "",
            ),
            (
                "accept-wrapped-types:a/b\"c",
                Err(AttributeError::BadMediaType { offset: 3 }),
                "",
            ),
            (":x", Err(AttributeError::EmptyName), ""),
            ("max-size:-1", Err(AttributeError::NotANumber), ""),
            ("setup:sideways", Err(AttributeError::UnknownValue), ""),
            (
                "file-transfer-id:a b",
                Err(AttributeError::NotAToken { offset: 1 }),
                "",
            ),
            ("file-icon:http://x/y.png", Err(AttributeError::NotCid), ""),
            ("file-icon:cid:", Err(AttributeError::NotCid), ""),
            ("file-range:0-10", Err(AttributeError::BadRange), ""),
            ("file-range:10-9", Err(AttributeError::BadRange), ""),
            ("file-range:10", Err(AttributeError::NotANumber), ""),
            ("file-range:a-*", Err(AttributeError::NotANumber), ""),
            (
                "file-date:born:\"x\"",
                Err(AttributeError::UnknownDateParameter { offset: 0 }),
                "",
            ),
            (
                "file-date:read:\"x\" read:\"y\"",
                Err(AttributeError::DuplicateDateParameter { offset: 9 }),
                "",
            ),
            (
                "file-date:read:x",
                Err(AttributeError::ExpectedQuote { offset: 5 }),
                "",
            ),
            (
                "file-date:read:\"x",
                Err(AttributeError::UnterminatedQuote { offset: 5 }),
                "",
            ),
            (
                "file-date:read:\"x\"read:\"y\"",
                Err(AttributeError::ExpectedSpace { offset: 8 }),
                "",
            ),
            (
                "file-selector:size:x",
                Err(AttributeError::FileSelector(
                    FileSelectorError::SizeNotANumber { offset: 5 },
                )),
                "",
            ),
        ];
        for (input, expected, printed) in table {
            let parsed = Attribute::parse(input);
            assert_eq!(&parsed, expected, "input {input:?}");
            if let Ok(attribute) = parsed {
                assert_eq!(attribute.to_string(), *printed, "input {input:?}");
                assert_eq!(
                    Attribute::parse(printed).as_ref(),
                    Ok(&attribute),
                    "reparse of {printed:?}"
                );
            }
        }
    }

    #[test]
    fn setup_answers_follow_rfc_4145() {
        use Setup::*;
        for offer in [Active, Passive, Actpass, Holdconn] {
            assert!(offer.accepts_answer(offer.default_answer()), "{offer}");
        }
        assert!(!Active.accepts_answer(Active));
        assert!(!Passive.accepts_answer(Passive));
        assert!(!Actpass.accepts_answer(Actpass));
        assert!(!Holdconn.accepts_answer(Active));
        assert_eq!(Direction::SendOnly.reversed(), Direction::RecvOnly);
        assert_eq!(Direction::Inactive.reversed(), Direction::Inactive);
    }
}
