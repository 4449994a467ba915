//! The errors of the SDP layer: parse errors that say which line and which field broke and why, and
//! the reasons an offer cannot be answered as an MSRP file transfer.

use thiserror::Error;

use super::attribute::{Direction, Setup};

/// Everything that can go wrong while parsing an SDP body or answering an offer.
///
/// Line numbers are 1-based and count every line of the body, including the `v=` line.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SdpError {
    /// The body is larger than [`Limits::max_bytes`](super::Limits::max_bytes).
    #[error("SDP body of {size} bytes is over the limit of {limit} bytes")]
    TooLarge {
        /// Size of the body in bytes.
        size: usize,
        /// The limit it broke.
        limit: usize,
    },
    /// The body has more lines than [`Limits::max_lines`](super::Limits::max_lines).
    #[error("SDP body has more than {limit} lines")]
    TooManyLines {
        /// The limit it broke.
        limit: usize,
    },
    /// The body is not UTF-8; `line` is the line holding the first invalid byte.
    #[error("line {line}: SDP body is not UTF-8")]
    NotUtf8 {
        /// Line of the first invalid byte.
        line: usize,
    },
    /// A line is not of the form `<letter>=<value>`.
    #[error("line {line}: {reason}")]
    BadLine {
        /// The broken line.
        line: usize,
        /// What is wrong with it.
        reason: LineError,
    },
    /// A mandatory line (`v=`, `o=`, `s=` at the top of the body) is missing or out of place.
    #[error("line {line}: expected the {expected}= line")]
    MissingLine {
        /// Where the line was expected (one past the end if the body stopped short).
        line: usize,
        /// The type letter that was expected.
        expected: char,
    },
    /// A line whose type is not allowed where it stands (a second `v=`, `o=` or `s=`, or a `t=`
    /// inside a media section).
    #[error("line {line}: {kind}= line is not allowed here")]
    UnexpectedLine {
        /// The line.
        line: usize,
        /// Its type letter.
        kind: char,
    },
    /// A second `c=` line in the same section.
    #[error("line {line}: second {kind}= line in the same section")]
    DuplicateLine {
        /// The second line.
        line: usize,
        /// Its type letter.
        kind: char,
    },
    /// A field of a structured line (`v=`, `o=`, `c=`, `t=`, `b=`, `m=`) is missing or malformed.
    #[error("line {line}: bad {field}: {reason}")]
    BadField {
        /// The line.
        line: usize,
        /// The field that is wrong.
        field: Field,
        /// Why.
        reason: FieldError,
    },
    /// A known attribute has a value that does not follow its grammar.
    #[error("line {line}: bad a={name} attribute: {reason}")]
    BadAttribute {
        /// The line.
        line: usize,
        /// The attribute name.
        name: String,
        /// Why the value is wrong.
        reason: AttributeError,
    },
    /// Two direction attributes in one section say different things.
    #[error("line {line}: a={second} contradicts a={first} earlier in the same section")]
    ContradictoryDirection {
        /// The line of the second attribute.
        line: usize,
        /// The direction given first.
        first: Direction,
        /// The direction that contradicts it.
        second: Direction,
    },
    /// An attribute that may appear once per section appears again with a different value.
    #[error("line {line}: second a={name} attribute with a different value")]
    ConflictingAttribute {
        /// The line of the second attribute.
        line: usize,
        /// The attribute name.
        name: String,
    },
    /// The offer parsed, but it is not an MSRP file transfer this module can answer.
    #[error("offer cannot be answered: {0}")]
    Rejected(#[from] OfferRejection),
    /// A field given to [`FileTransferOffer::build`](super::FileTransferOffer::build) or
    /// [`answer`](super::answer) holds text its SDP line cannot carry.
    #[error("cannot write {field}: {problem}")]
    InvalidInput {
        /// The field.
        field: InputField,
        /// What is wrong with it.
        problem: InputProblem,
    },
}

/// The fields of a [`FileTransferOffer`](super::FileTransferOffer) or
/// [`AnswerParams`](super::AnswerParams) that are written as text. List entries carry their index
/// (0 with [`InputProblem::Empty`] when the list itself is empty).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum InputField {
    /// `username` (`o=`).
    #[error("username")]
    Username,
    /// `connection.net_type` (`c=` and `o=`).
    #[error("connection network type")]
    NetType,
    /// `connection.addr_type` (`c=` and `o=`).
    #[error("connection address type")]
    AddrType,
    /// `connection.address` (`c=` and `o=`).
    #[error("connection address")]
    Address,
    /// `proto` (`m=`).
    #[error("media protocol")]
    Proto,
    /// An entry of `path` (`a=path`).
    #[error("path entry {index}")]
    Path {
        /// Index in the list.
        index: usize,
    },
    /// An entry of `accept_types` (`a=accept-types`).
    #[error("accept-types entry {index}")]
    AcceptType {
        /// Index in the list.
        index: usize,
    },
    /// An entry of `accept_wrapped_types` (`a=accept-wrapped-types`).
    #[error("accept-wrapped-types entry {index}")]
    AcceptWrappedType {
        /// Index in the list.
        index: usize,
    },
    /// `file_selector` as a whole (it needs at least one selector).
    #[error("file-selector")]
    FileSelector,
    /// `file_selector.name`.
    #[error("file-selector name")]
    FileName,
    /// `file_selector.content_type`.
    #[error("file-selector type")]
    FileType,
    /// The algorithm of an entry of `file_selector.hashes`.
    #[error("file-selector hash {index} algorithm")]
    HashAlgorithm {
        /// Index in the list.
        index: usize,
    },
    /// The digest of an entry of `file_selector.hashes`.
    #[error("file-selector hash {index} value")]
    HashValue {
        /// Index in the list.
        index: usize,
    },
    /// `file_transfer_id`.
    #[error("file-transfer-id")]
    FileTransferId,
    /// `file_disposition`.
    #[error("file-disposition")]
    FileDisposition,
    /// `file_date.creation`.
    #[error("file-date creation")]
    FileDateCreation,
    /// `file_date.modification`.
    #[error("file-date modification")]
    FileDateModification,
    /// `file_date.read`.
    #[error("file-date read")]
    FileDateRead,
    /// `file_icon`.
    #[error("file-icon")]
    FileIcon,
    /// `file_range`.
    #[error("file-range")]
    FileRange,
}

/// Why a field cannot be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum InputProblem {
    /// The field, or the list, is empty where its line needs a value.
    #[error("empty")]
    Empty,
    /// A control character (CR, LF, HTAB, NUL, DEL...) at this byte offset: it would end the line
    /// or break it.
    #[error("control character at offset {offset}")]
    ControlCharacter {
        /// Byte offset within the field.
        offset: usize,
    },
    /// A space at this byte offset where the grammar separates fields or entries with spaces.
    #[error("space at offset {offset}")]
    Space {
        /// Byte offset within the field.
        offset: usize,
    },
    /// Something else the field's grammar forbids at this byte offset (a non-token character, a
    /// malformed media type, a `"` inside a quoted date, a file-icon that is not `cid:`...).
    #[error("breaks its grammar at offset {offset}")]
    Grammar {
        /// Byte offset within the field.
        offset: usize,
    },
    /// A file-range whose start is 0 or whose stop is before its start.
    #[error("empty or inverted range")]
    BadRange,
}

/// Why a line is not of the form `<letter>=<value>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LineError {
    /// An empty line in the middle of the body.
    #[error("empty line")]
    Empty,
    /// The first character is not an ASCII letter.
    #[error("the line type is not a letter")]
    BadType,
    /// The type letter is not followed by `=`.
    #[error("no '=' after the line type")]
    NoEquals,
    /// A control character (NUL, a bare CR, DEL, ...) at this byte offset within the line.
    #[error("control character at offset {offset}")]
    ControlCharacter {
        /// Byte offset within the line.
        offset: usize,
    },
}

/// The fields of the structured SDP lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Field {
    /// `v=` protocol version.
    #[error("protocol version")]
    Version,
    /// `o=` as a whole (wrong number of fields).
    #[error("origin")]
    Origin,
    /// `o=` session id.
    #[error("origin session id")]
    SessionId,
    /// `o=` session version.
    #[error("origin session version")]
    SessionVersion,
    /// `c=` as a whole (wrong number of fields).
    #[error("connection")]
    Connection,
    /// `t=` as a whole (wrong number of fields).
    #[error("timing")]
    Timing,
    /// `t=` start time.
    #[error("start time")]
    StartTime,
    /// `t=` stop time.
    #[error("stop time")]
    StopTime,
    /// `b=` as a whole (no `:`).
    #[error("bandwidth")]
    Bandwidth,
    /// `b=` bandwidth value.
    #[error("bandwidth value")]
    BandwidthValue,
    /// `m=` as a whole (fewer than four fields).
    #[error("media line")]
    Media,
    /// `m=` port.
    #[error("media port")]
    Port,
    /// `m=` number of ports after the `/`.
    #[error("media port count")]
    PortCount,
}

/// Why a field is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FieldError {
    /// The line has this many space-separated fields, not the number its grammar needs.
    #[error("{found} fields where {expected} are needed")]
    FieldCount {
        /// Fields found.
        found: usize,
        /// Fields the grammar needs (at least, for `m=`).
        expected: usize,
    },
    /// A field is empty (two spaces in a row, or a space at the end).
    #[error("empty field")]
    Empty,
    /// Not a decimal number.
    #[error("not a number")]
    NotANumber,
    /// A number too large for its field.
    #[error("number out of range")]
    OutOfRange,
    /// A valid value this implementation does not support (a `v=` other than 0).
    #[error("unsupported value")]
    Unsupported,
}

/// Why the value of a known attribute is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AttributeError {
    /// The attribute needs a value and has none (`a=path`).
    #[error("missing value")]
    MissingValue,
    /// The value is empty (`a=path:`).
    #[error("empty value")]
    EmptyValue,
    /// The attribute name is empty (`a=:x`).
    #[error("empty attribute name")]
    EmptyName,
    /// Not a decimal number that fits 64 bits.
    #[error("not a number")]
    NotANumber,
    /// Not one of the values the attribute's grammar lists (`a=setup:sideways`).
    #[error("unknown value")]
    UnknownValue,
    /// A character outside the token grammar at this byte offset of the value.
    #[error("not a token (offset {offset})")]
    NotAToken {
        /// Byte offset within the value.
        offset: usize,
    },
    /// An `a=accept-types` or `a=accept-wrapped-types` entry that is neither `*` nor a media type
    /// (RFC 4975 `format-entry`); the problem is at this byte offset of the value.
    #[error("not a media type (offset {offset})")]
    BadMediaType {
        /// Byte offset within the value.
        offset: usize,
    },
    /// An `a=file-range` whose start is 0 or whose stop is before its start.
    #[error("empty or inverted range")]
    BadRange,
    /// An `a=file-icon` that is not a `cid:` URL.
    #[error("not a cid: URL")]
    NotCid,
    /// An `a=file-date` parameter other than creation, modification and read, at this offset.
    #[error("unknown date parameter at offset {offset}")]
    UnknownDateParameter {
        /// Byte offset within the value.
        offset: usize,
    },
    /// An `a=file-date` parameter given twice, the second at this offset.
    #[error("date parameter repeated at offset {offset}")]
    DuplicateDateParameter {
        /// Byte offset within the value.
        offset: usize,
    },
    /// An `a=file-selector` value that does not follow RFC 5547's grammar.
    #[error("{0}")]
    FileSelector(FileSelectorError),
    /// A quoted string (a file-date) that does not open with `"` at this offset.
    #[error("expected '\"' at offset {offset}")]
    ExpectedQuote {
        /// Byte offset within the value.
        offset: usize,
    },
    /// A quoted string opened at this offset and never closed.
    #[error("unterminated quoted string opened at offset {offset}")]
    UnterminatedQuote {
        /// Byte offset of the opening quote within the value.
        offset: usize,
    },
    /// Parameters are not separated by a single space at this offset.
    #[error("expected a space at offset {offset}")]
    ExpectedSpace {
        /// Byte offset within the value.
        offset: usize,
    },
}

/// Why an `a=file-selector` value does not follow RFC 5547 section 6. Offsets are bytes within the
/// attribute value (after `file-selector:`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FileSelectorError {
    /// `a=file-selector:` with nothing after the colon.
    #[error("no selector after the colon")]
    Empty,
    /// Something other than `name:`, `size:`, `type:` or `hash:` at this offset.
    #[error("unknown selector at offset {offset}")]
    UnknownSelector {
        /// Byte offset within the value.
        offset: usize,
    },
    /// The same selector twice (hash excepted: RFC 5547 allows several).
    #[error("{selector} selector repeated at offset {offset}")]
    DuplicateSelector {
        /// `name`, `size` or `type`.
        selector: &'static str,
        /// Byte offset of the repetition.
        offset: usize,
    },
    /// Selectors not separated by a space at this offset.
    #[error("expected a space at offset {offset}")]
    ExpectedSpace {
        /// Byte offset within the value.
        offset: usize,
    },
    /// `name:` not followed by `"`.
    #[error("expected '\"' at offset {offset}")]
    ExpectedQuote {
        /// Byte offset within the value.
        offset: usize,
    },
    /// A quoted name or type parameter opened at this offset and never closed.
    #[error("unterminated quoted string opened at offset {offset}")]
    UnterminatedQuote {
        /// Byte offset of the opening quote.
        offset: usize,
    },
    /// `name:""`.
    #[error("empty file name")]
    EmptyName,
    /// A `%` not followed by two hex digits, at this offset.
    #[error("bad percent-encoding at offset {offset}")]
    BadPercentEncoding {
        /// Byte offset of the `%`.
        offset: usize,
    },
    /// The percent-decoded name is not UTF-8.
    #[error("file name is not UTF-8 once percent-decoded")]
    NameNotUtf8,
    /// `size:` not followed by a decimal number that fits 64 bits.
    #[error("size at offset {offset} is not a number")]
    SizeNotANumber {
        /// Byte offset of the size value.
        offset: usize,
    },
    /// `type:` not followed by `type/subtype *(;attribute="value")`.
    #[error("bad media type at offset {offset}")]
    BadType {
        /// Byte offset of the problem.
        offset: usize,
    },
    /// `hash:` without an algorithm and a colon, at this offset.
    #[error("hash without an algorithm at offset {offset}")]
    MissingHashAlgorithm {
        /// Byte offset of the hash selector value.
        offset: usize,
    },
    /// The hash value is not colon-separated pairs of hex digits; the bad pair starts here.
    #[error("bad hash hex at offset {offset}")]
    BadHashHex {
        /// Byte offset of the bad pair.
        offset: usize,
    },
}

/// Why an offer is not an MSRP file transfer that [`answer`](super::answer) can answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum OfferRejection {
    /// No `m=message` section with an MSRP protocol and a non-zero port.
    #[error("no MSRP media")]
    NoMsrpMedia,
    /// The MSRP media has no `a=file-selector` with at least one selector.
    #[error("no file selector: not a file transfer")]
    NoFileSelector,
    /// The MSRP media has no `a=file-transfer-id`.
    #[error("no file-transfer-id")]
    NoFileTransferId,
    /// The MSRP media has no `a=path`.
    #[error("no MSRP path")]
    NoPath,
    /// The direction is neither sendonly (push) nor recvonly (pull).
    #[error("direction {0} is not a file transfer direction")]
    Direction(Direction),
    /// The `a=setup` asked for does not fit the one offered (RFC 4145 section 4.1).
    #[error("a=setup:{answer} cannot answer a=setup:{offer}")]
    IncompatibleSetup {
        /// What the offer said.
        offer: Setup,
        /// What the answer was asked to say.
        answer: Setup,
    },
}
