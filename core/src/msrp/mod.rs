//! MSRP (RFC 4975) and MSRP over WebSocket (RFC 7977), sans I/O.
//!
//! This module owns everything MSRP between the bytes on a connection and the application: URIs,
//! frames, the incremental parser and the serializer, responses and REPORTs, and the three pieces of
//! state a file transfer needs (chunking a message, reassembling one, and sending one with a window
//! of chunks in flight). It reads no clock and does no I/O; the state that must outlive one edge
//! request ([`Reassembly`], [`WindowedSender`], and the [`RangeSet`](crate::ranges::RangeSet) they track bytes with) serializes with serde.
//!
//! ## Receiving
//! - Over a byte stream, call [`parse`] on the bytes read so far: it answers [`Status::Partial`]
//!   until a whole frame is there, then [`Status::Complete`] with the frame and how many bytes it
//!   took. Over WebSocket (RFC 7977 section 5.1: one chunk per message) call [`parse_message`], which
//!   also rejects trailing bytes and partial frames.
//! - A request body is a [`bytes::Bytes`] slice of the input buffer, never a copy.
//! - Answer requests with [`Request::response`] (it returns `None` where RFC 4975 forbids an
//!   answer: REPORTs, `Failure-Report: no`, a 200 under `Failure-Report: partial`).
//! - Feed each SEND chunk of a message to its [`Reassembly`]; it tells which byte ranges are new,
//!   so the caller writes only those to storage, and when the message is complete. It never holds
//!   body bytes.
//! - When a message completes and the sender asked for it (`Success-Report: yes`), send
//!   [`Request::report`] with [`ByteRange::whole`].
//!
//! ## Sending
//! - [`Chunker`] turns a message (id, content type, size, paths) into SEND requests whose bodies the
//!   caller supplies as `Bytes`; [`Request::encode_head`] + body + [`Request::encode_tail`] lets the
//!   caller send a chunk without copying its body.
//! - [`WindowedSender`] decides which chunk goes next, keeps at most `window` chunks in flight, moves
//!   on with each 200, stops on an error response or a transaction timeout (408), and remembers the
//!   acknowledged prefix so a transfer resumes after a disconnect.
//!
//! ## Example: take a chunk, store its new bytes, answer it
//! ```
//! use bytes::Bytes;
//! use rcs_core::msrp::{Frame, Limits, MsrpUri, Reassembly, parse_message};
//!
//! // One WebSocket message from the client.
//! let wire = Bytes::from_static(b"MSRP a786hjs2 SEND\r\n\
//!     To-Path: msrps://as.example.com:443/s1;ws\r\n\
//!     From-Path: msrps://df7jal23ls0d.invalid:2855/98cjs;ws\r\n\
//!     Message-ID: 87652491\r\n\
//!     Byte-Range: 1-5/10\r\n\
//!     Content-Type: application/octet-stream\r\n\
//!     \r\n\
//!     hello\r\n\
//!     -------a786hjs2+\r\n");
//! let Frame::Request(chunk) = parse_message(&wire, &Limits::default())? else {
//!     unreachable!("a request")
//! };
//! let mut reassembly = Reassembly::new("87652491", 1 << 30);
//! let outcome = reassembly.on_chunk(&chunk)?;
//! for (offset, bytes) in outcome.new_slices(chunk.body.as_ref().unwrap()) {
//!     assert_eq!((offset, &bytes[..]), (0, &b"hello"[..])); // write to storage here
//! }
//! assert!(!outcome.complete);
//! let local: MsrpUri = "msrps://as.example.com:443/s1;ws".parse()?;
//! let ok = chunk.response(200, None, &local).expect("Failure-Report allows a 200");
//! let mut out = Vec::new();
//! Frame::from(ok).encode(&mut out);
//! assert!(out.starts_with(b"MSRP a786hjs2 200 OK\r\nTo-Path: msrps://df7jal23ls0d.invalid"));
//! # Ok::<(), rcs_core::msrp::MsrpError>(())
//! ```
//!
//! ## Example: send a stored file with two chunks in flight
//! ```
//! use bytes::Bytes;
//! use rcs_core::ids::{Entropy, TokenSource};
//! use rcs_core::msrp::{Chunker, SenderEvent, WindowedSender};
//! use rcs_core::time::Timestamp;
//!
//! let file = Bytes::from(vec![7u8; 300]);
//! let to = vec!["msrps://df7jal23ls0d.invalid:2855/98cjs;ws".parse()?];
//! let from = vec!["msrps://as.example.com:443/s1;ws".parse()?];
//! let chunker = Chunker::new("f81d4fae7dec", "application/octet-stream", Some(300), 128, to, from)?;
//! let mut sender = WindowedSender::new("f81d4fae7dec", 300, 128, 2, 0);
//! let mut tids = TokenSource::new(Entropy([1; 32]));
//! let now = Timestamp::from_unix_secs(1_700_000_000);
//! let mut sent = Vec::new();
//! while let Some(plan) = sender.next_chunk(&mut tids, now) {
//!     let body = file.slice(plan.range.start as usize..plan.range.end as usize);
//!     let request = chunker.request_for(&plan, body)?;
//!     let (mut head, mut tail) = (Vec::new(), Vec::new());
//!     request.encode_head(&mut head); // send head, then request.body, then tail
//!     request.encode_tail(&mut tail);
//!     sent.push(request.transaction_id);
//! }
//! assert_eq!(sent.len(), 2); // the window is full
//! assert_eq!(sender.on_response(&sent[0], 200)?, SenderEvent::Acknowledged { range: 0..128 });
//! assert_eq!(sender.acknowledged(), 128);
//! assert!(sender.next_chunk(&mut tids, now).is_some()); // the last chunk, 256..300
//! # Ok::<(), rcs_core::msrp::MsrpError>(())
//! ```
//!
//! ## Invariants
//! - Parsing never panics; every failure is a typed [`MsrpError`] with what was being parsed and
//!   where. Header and body sizes are bounded by [`Limits`].
//! - Headers keep their received order and exact text, so a parsed frame re-serializes byte for byte;
//!   unknown headers survive. Known headers are also parsed once into typed fields.
//! - Byte offsets in [`Reassembly`] and [`WindowedSender`] are 0-based and
//!   end-exclusive (`Range<u64>`); [`ByteRange`] is the wire form, 1-based and inclusive.

mod chunker;
mod encode;
mod frame;
mod parse;
mod reassembly;
mod uri;
mod window;

pub use chunker::{ChunkPlan, ChunkRanges, Chunker};
pub use frame::{
    ByteRange, Continuation, FailureReport, Frame, Header, Headers, Method, Request, Response,
    StatusHeader, status,
};
pub use parse::{BodyLengthCheck, Limits, Status, parse, parse_message};
pub use reassembly::{AbortReason, ChunkOutcome, Reassembly, ReassemblyState};
pub use uri::{MsrpUri, UriErrorKind};
pub use window::{DEFAULT_TRANSACTION_TIMEOUT_MS, SenderEvent, WindowedSender};

/// Why a byte range on the wire contradicts itself or the chunk it describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RangeProblem {
    /// `range-start` is 0; the first byte of a message is byte 1.
    StartIsZero,
    /// `range-end` is before `range-start - 1` (`end = start - 1` is the empty chunk, as in `1-0/0`).
    EndBeforeStart,
    /// `range-end` is past `total`.
    EndBeyondTotal,
    /// `range-start` is more than one past `total`.
    StartBeyondTotal,
}

/// Everything that can go wrong in this module: parsing, building frames, reassembly, sending.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MsrpError {
    /// The input does not start with `MSRP ` (offset of the first byte that differs).
    #[error("not an MSRP frame at offset {offset}")]
    NotMsrp {
        /// Offset of the first byte that differs from `MSRP `.
        offset: usize,
    },
    /// The start line is not `MSRP <tid> <method>` or `MSRP <tid> <code>[ <comment>]`.
    #[error("malformed start line at offset {offset}")]
    BadStartLine {
        /// Offset in the input where the start line stops making sense.
        offset: usize,
    },
    /// The transaction id is not an RFC 4975 `ident` (an alphanumeric, then 3 to 31 of
    /// alphanumerics and `.-+%=`).
    #[error("bad transaction id at offset {offset}")]
    BadTransactionId {
        /// Offset of the transaction id in the input (0 when not parsing input).
        offset: usize,
    },
    /// The method is not `1*UPALPHA`.
    #[error("bad method at offset {offset}")]
    BadMethod {
        /// Offset of the method in the input.
        offset: usize,
    },
    /// A line ends with a bare LF instead of CRLF.
    #[error("bare LF at offset {offset}")]
    BareLineFeed {
        /// Offset of the LF.
        offset: usize,
    },
    /// The start line and headers (up to the blank line or the end-line) exceed the limit.
    #[error("header section larger than {limit} bytes")]
    HeaderTooLarge {
        /// The limit that was exceeded ([`Limits::max_header_bytes`]).
        limit: usize,
    },
    /// A header or start line is not valid UTF-8.
    #[error("header text is not UTF-8 at offset {offset}")]
    NonUtf8Header {
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// A header line is not `name: value` with a valid name and printable value.
    #[error("malformed header line {line} at offset {offset}")]
    BadHeaderLine {
        /// 1-based header line number (the start line is line 0).
        line: usize,
        /// Offset of the line in the input.
        offset: usize,
    },
    /// A known header has a value its grammar rejects (Message-ID, Success-Report, Failure-Report,
    /// Status, Content-Type, Byte-Range syntax).
    #[error("bad {name} value on header line {line}")]
    BadHeaderValue {
        /// The header name as written.
        name: String,
        /// 1-based header line number (0 when not parsing input).
        line: usize,
    },
    /// A To-Path or From-Path URI does not parse.
    #[error("bad URI in {name} on header line {line}: {kind:?} at {at}")]
    BadPath {
        /// The header name as written.
        name: String,
        /// 1-based header line number.
        line: usize,
        /// What is wrong with the URI.
        kind: UriErrorKind,
        /// Offset of the problem inside the URI text.
        at: usize,
    },
    /// An MSRP URI does not parse (from [`MsrpUri::from_str`](std::str::FromStr)).
    #[error("bad MSRP URI: {kind:?} at {at}")]
    BadUri {
        /// What is wrong.
        kind: UriErrorKind,
        /// Offset of the problem in the URI text.
        at: usize,
    },
    /// A header that may appear once appears twice.
    #[error("duplicate {name} header on line {line}")]
    DuplicateHeader {
        /// The header name as written.
        name: String,
        /// 1-based header line number of the second occurrence (0 when not parsing input).
        line: usize,
    },
    /// The frame has no To-Path header.
    #[error("missing To-Path")]
    MissingToPath,
    /// The frame has no From-Path header.
    #[error("missing From-Path")]
    MissingFromPath,
    /// To-Path is present but is not the first header (RFC 4975 section 9: `headers = To-Path CRLF
    /// From-Path CRLF ...`).
    #[error("To-Path is header line {line}, not the first")]
    ToPathNotFirst {
        /// 1-based header line number where To-Path was found.
        line: usize,
    },
    /// From-Path is present but is not the second header.
    #[error("From-Path is header line {line}, not the second")]
    FromPathNotSecond {
        /// 1-based header line number where From-Path was found.
        line: usize,
    },
    /// A request has a body but no Content-Type (RFC 4975 section 7.1).
    #[error("request body without Content-Type")]
    MissingContentType,
    /// Content-Type is not the last header of a request with a body (RFC 4975 section 7.1).
    #[error("Content-Type on header line {line} is not the last header")]
    ContentTypeNotLast {
        /// 1-based header line number of the Content-Type header.
        line: usize,
    },
    /// A response has a blank line after its headers: responses carry no body.
    #[error("response with a body at offset {offset}")]
    UnexpectedBody {
        /// Offset of the blank line.
        offset: usize,
    },
    /// A line starting with `-------` does not match `-------<transaction-id><flag>`.
    #[error("end-line does not match transaction {expected} at offset {offset}")]
    EndLineMismatch {
        /// The transaction id from the start line.
        expected: String,
        /// Offset of the bad end-line.
        offset: usize,
    },
    /// A response ends with `+` or `#`; responses are never chunked (RFC 4975 section 7.2).
    #[error("response ends with continuation flag {flag:?}")]
    ResponseNotFinal {
        /// The flag found.
        flag: char,
    },
    /// The body (or, for a partial frame, the bytes after the headers) exceeds the limit. The
    /// caller answers 413; `head` is the request without its body, for [`Request::response`].
    #[error("body larger than {limit} bytes")]
    BodyTooLarge {
        /// The request as parsed so far, with `body: None`.
        head: Box<Request>,
        /// The limit that was exceeded.
        limit: usize,
    },
    /// A Byte-Range contradicts itself.
    #[error("Byte-Range {range} is contradictory: {problem:?}")]
    ContradictoryByteRange {
        /// The range as parsed.
        range: ByteRange,
        /// What is wrong with it.
        problem: RangeProblem,
    },
    /// A SEND body's length differs from `range-end - range-start + 1` (see [`BodyLengthCheck`]).
    #[error("body is {actual} bytes but Byte-Range {range} says {declared}")]
    BodyLengthMismatch {
        /// The range as parsed.
        range: ByteRange,
        /// Length the range declares.
        declared: u64,
        /// Length of the body received.
        actual: u64,
    },
    /// A SEND body with an open range-end runs past the declared total.
    #[error("chunk ends at byte {end} of a {total}-byte message")]
    ChunkBeyondTotal {
        /// 0-based end (exclusive) of the chunk's bytes (`u64::MAX` if it is past that).
        end: u64,
        /// Declared total size.
        total: u64,
    },
    /// [`parse_message`]: the WebSocket message holds only part of a frame.
    #[error("incomplete frame in a {len}-byte message")]
    Incomplete {
        /// Length of the message.
        len: usize,
    },
    /// [`parse_message`]: bytes follow the frame in the WebSocket message (RFC 7977 section 5.1:
    /// one chunk per message).
    #[error("{extra} bytes after the frame")]
    TrailingBytes {
        /// Length of the frame.
        consumed: usize,
        /// Number of bytes after it.
        extra: usize,
    },
    /// A header name or value given to a setter would break the grammar (CR, LF, bad name).
    #[error("invalid header {name:?}")]
    InvalidHeader {
        /// The offending header name.
        name: String,
    },
    /// The body contains the request's own end-line, so the receiver would cut it short
    /// (RFC 4975 section 7.1: pick another transaction id).
    #[error("body contains the end-line of transaction {transaction_id}")]
    EndLineInBody {
        /// The transaction id that collides.
        transaction_id: String,
    },
    /// A SEND or REPORT operation needs a Message-ID and the request has none.
    #[error("request has no Message-ID")]
    MissingMessageId,
    /// An operation that needs a SEND request got another method.
    #[error("not a SEND request")]
    NotASend,
    /// A chunk belongs to another message.
    #[error("chunk of message {found}, expected {expected}")]
    MessageIdMismatch {
        /// Message-ID this reassembly is for.
        expected: String,
        /// Message-ID of the chunk.
        found: String,
    },
    /// A chunk declares a total size different from the one already known.
    #[error("total size {found} differs from the known {known}")]
    TotalMismatch {
        /// Total known from earlier chunks.
        known: u64,
        /// Total this chunk declares.
        found: u64,
    },
    /// The message is larger than the reassembly accepts; the caller answers 413.
    #[error("message of at least {size} bytes exceeds {limit}")]
    MessageTooLarge {
        /// Size declared or reached.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A chunk would leave more disjoint byte ranges than the message's set holds.
    #[error(transparent)]
    TooManyRanges(#[from] crate::ranges::TooManyRanges),
    /// A chunk arrived for a message that was aborted.
    #[error("message was aborted")]
    MessageAborted,
    /// A response names a transaction the sender does not have in flight.
    #[error("unknown transaction {transaction_id}")]
    UnknownTransaction {
        /// The transaction id of the response.
        transaction_id: String,
    },
    /// A chunk's body length differs from the range it is meant to carry.
    #[error("body of {actual} bytes for a range of {expected}")]
    BodyRangeMismatch {
        /// Length of the range.
        expected: u64,
        /// Length of the body supplied.
        actual: u64,
    },
    /// A chunk range is empty where it may not be, reversed, or past the message's total size.
    #[error("chunk range {start}..{end} is invalid")]
    InvalidChunkRange {
        /// 0-based start.
        start: u64,
        /// 0-based end (exclusive).
        end: u64,
    },
}
