//! SIP (RFC 3261) over WebSocket (RFC 7118): messages, their parser and writer, request and response
//! builders, and dialogs.
//!
//! This module owns everything the core knows about SIP. Over WebSocket every WebSocket message holds
//! exactly one SIP message (RFC 7118 section 5), so [`parse`] takes a complete message and never waits
//! for more bytes; `Content-Length` is optional there, and must match the body when present.
//!
//! ## What it keeps
//! A parsed [`SipMessage`] keeps every header line in order, name as written (compact forms too) and
//! value unfolded, so unknown headers and parameters survive a parse and [`SipMessage::to_bytes`]. The
//! headers the core relies on (Via, From, To, Call-ID, CSeq, Contact, Route, Record-Route, Expires,
//! Max-Forwards, Content-Type, Content-Length) are validated at parse time and exposed typed; a message
//! whose typed headers do not parse is refused with a [`SipError`] that says which header, where, and
//! what was expected, so the caller can answer 400 (or what [`SipError::response_code`] suggests).
//!
//! Writing differs from the input only in form: folded header lines are written on one line, `": "`
//! separates name and value, the request URI is written in its canonical form, and `Content-Length` is
//! always written last, computed from the body.
//!
//! ## Randomness
//! Builders take a [`TokenSource`](crate::ids::TokenSource) for every random value (branches, tags,
//! Call-IDs, initial CSeq numbers, the `.invalid` host of RFC 7118 clients), so tests are deterministic.
//!
//! ## Why not `rsip`'s parser
//! `rsip` 0.4 (a dependency of the crate) cannot read the RFC 7118 examples this module must accept: its
//! message tokenizer rejects folded header lines, its Contact parser rejects the quoted
//! `+sip.instance="<urn:...>"` parameter, silently cuts `gr=urn:uuid:...` to `gr=urn` and drops the
//! second value of `Via: a, b`, and it cannot parse IPv6 hosts. Silent truncation breaks the rule that
//! what is not understood is kept, so this module has its own small bounded tokenizer for the RFC 3261
//! grammar and no `rsip` type appears anywhere in it.

mod builder;
mod diagnostics;
mod dialog;
mod grammar;
mod header;
mod message;
mod uri;

/// The Contact parameter that names a device (RFC 5626 section 4.1: `+sip.instance`, a URN in
/// angle brackets and quotes).
pub const INSTANCE_PARAM: &str = "+sip.instance";

pub use builder::{
    RequestBuilder, ack_for_failure, cancel_for, is_cancel_of, random_invalid_host, reason_phrase,
    response,
};
pub use diagnostics::{MISCELLANEOUS_WARNING, Reason, Warning};
pub use dialog::{Dialog, DialogEvent, DialogRole, DialogState};
pub use header::{CSeq, MAX_CSEQ, Method, NameAddr, Transport, Via};
pub use message::{Header, SipMessage, parse, parse_bytes};
pub use uri::{Host, Param, Scheme, SipUri};

use serde::{Deserialize, Serialize};

/// Bounds on what [`parse`] accepts, so a hostile peer cannot make the core allocate without limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest whole message (start line, headers and body), in bytes.
    pub max_message_bytes: usize,
    /// Most header fields (after unfolding).
    pub max_headers: usize,
    /// Most values of one header across all its lines (e.g. Vias, Route entries, Contacts).
    pub max_values: usize,
}

impl Default for Limits {
    /// 64 KiB messages (what a Pushpin gateway passes in one message with `client_buffer_size=65536`),
    /// 128 header fields, 32 values per header.
    fn default() -> Self {
        Self {
            max_message_bytes: 64 * 1024,
            max_headers: 128,
            max_values: 32,
        }
    }
}

/// Everything that can go wrong parsing, building or applying SIP messages.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SipError {
    /// The message is longer than [`Limits::max_message_bytes`].
    #[error("message of {size} bytes exceeds the limit of {limit}")]
    MessageTooLarge {
        /// Size of the message received.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// More header fields than [`Limits::max_headers`].
    #[error("more than {limit} header fields")]
    TooManyHeaders {
        /// The limit.
        limit: usize,
    },
    /// One header holds more values than [`Limits::max_values`].
    #[error("{header} has more than {limit} values")]
    TooManyValues {
        /// Canonical name of the header.
        header: &'static str,
        /// The limit.
        limit: usize,
    },
    /// The start line or a header is not UTF-8.
    #[error("the header section is not UTF-8 (byte {offset})")]
    NotUtf8 {
        /// Offset of the first invalid byte in the message.
        offset: usize,
    },
    /// No empty line ends the header section: the message was cut short (or is not SIP).
    #[error("truncated message: no empty line after the headers in {len} bytes")]
    Truncated {
        /// Length of the input.
        len: usize,
    },
    /// A CR or LF that is not part of a CRLF line end.
    #[error("bare CR or LF in line {line}")]
    BadLineEnding {
        /// 1-based line number (the start line is line 1).
        line: usize,
    },
    /// The start line is neither `Method SP Request-URI SP SIP/2.0` nor `SIP/2.0 SP code SP reason`.
    #[error("bad start line at column {column}: expected {expected}")]
    BadStartLine {
        /// Byte offset in the start line.
        column: usize,
        /// What the parser expected there.
        expected: &'static str,
    },
    /// A well-formed `SIP/x.y` version other than 2.0 (answer 505).
    #[error("unsupported SIP version {version:?}")]
    UnsupportedVersion {
        /// The version as written.
        version: String,
    },
    /// A header line without a colon, with a name that is not a token, or a continuation line with
    /// nothing to continue.
    #[error("bad header line {line}: expected {expected}")]
    BadHeaderLine {
        /// 1-based line number (the start line is line 1).
        line: usize,
        /// What the parser expected.
        expected: &'static str,
    },
    /// A header the module types has a value that does not follow its grammar.
    #[error("bad {header} header (field {field}, column {column}): expected {expected}")]
    BadHeader {
        /// Canonical name of the header.
        header: &'static str,
        /// 1-based index of the header field among the message's header fields.
        field: usize,
        /// Byte offset in the (unfolded) value.
        column: usize,
        /// What the parser expected there.
        expected: &'static str,
    },
    /// A URI whose scheme is not `sip` or `sips` (answer 416).
    #[error("unsupported URI scheme {scheme:?}")]
    UnsupportedUriScheme {
        /// The scheme as written.
        scheme: String,
    },
    /// A URI (or name-addr) given to a constructor does not parse.
    #[error("bad URI at column {column}: expected {expected}")]
    BadUri {
        /// Byte offset in the text.
        column: usize,
        /// What the parser expected there.
        expected: &'static str,
    },
    /// A mandatory header (Via, From, To, Call-ID, CSeq) is missing, or one an operation needs.
    #[error("missing {header} header")]
    MissingHeader {
        /// Canonical name of the header.
        header: &'static str,
    },
    /// A header that may appear once appears again.
    #[error("{header} appears more than once (field {field})")]
    DuplicateHeader {
        /// Canonical name of the header.
        header: &'static str,
        /// 1-based index of the second occurrence among the header fields.
        field: usize,
    },
    /// The CSeq method of a request differs from its request method (RFC 3261 section 8.1.1.5).
    #[error("CSeq method {cseq} does not match request method {method}")]
    CSeqMethodMismatch {
        /// The method of the start line.
        method: Method,
        /// The method in CSeq.
        cseq: Method,
    },
    /// `Content-Length` contradicts the body length (over WebSocket the body is the rest of the
    /// message, so both must agree).
    #[error("Content-Length is {declared} but the body has {actual} bytes")]
    ContentLengthMismatch {
        /// The header's value.
        declared: usize,
        /// Bytes after the empty line.
        actual: usize,
    },
    /// An attempt to set a header the writer computes (`Content-Length`).
    #[error("{name} is computed when the message is written")]
    ComputedHeader {
        /// The header.
        name: &'static str,
    },
    /// A value given to a builder or setter is not valid where it goes.
    #[error("invalid {what}")]
    InvalidInput {
        /// What the value was for.
        what: &'static str,
    },
    /// An operation got a message of the wrong kind (e.g. a response where an INVITE was needed).
    #[error("expected {expected}")]
    UnexpectedMessage {
        /// What was needed.
        expected: &'static str,
    },
    /// A From or To without the tag a dialog needs.
    #[error("{header} has no tag")]
    MissingTag {
        /// `From` or `To`.
        header: &'static str,
    },
    /// The message's Call-ID and tags do not identify this dialog (answer 481).
    #[error("the message does not belong to this dialog")]
    DialogMismatch,
    /// A request arrived in a dialog that has ended (answer 481).
    #[error("the dialog has ended")]
    DialogTerminated,
    /// An in-dialog request with a CSeq lower than the last one seen (RFC 3261 section 12.2.2:
    /// answer 500).
    #[error("CSeq {received} is lower than the remote CSeq {remote}")]
    CSeqOutOfOrder {
        /// The request's CSeq number.
        received: u32,
        /// The dialog's remote CSeq.
        remote: u32,
    },
    /// Only the other side of the dialog does this (e.g. only the UAC sends ACK for a 2xx).
    #[error("only the {expected:?} of a dialog can do this")]
    WrongRole {
        /// The role that can.
        expected: DialogRole,
    },
    /// The local CSeq would pass 2^31 - 1.
    #[error("the local CSeq is exhausted")]
    CSeqExhausted,
}

impl SipError {
    /// The status code a UAS should answer a request that failed with this error (RFC 3261
    /// sections 8.2 and 12.2.2): 400 for malformed requests, 416, 481, 500, 505 or 513 where those fit.
    pub fn response_code(&self) -> u16 {
        match self {
            SipError::MessageTooLarge { .. } => 513,
            SipError::UnsupportedVersion { .. } => 505,
            SipError::UnsupportedUriScheme { .. } => 416,
            SipError::DialogMismatch | SipError::DialogTerminated => 481,
            SipError::CSeqOutOfOrder { .. } | SipError::CSeqExhausted => 500,
            _ => 400,
        }
    }
}
