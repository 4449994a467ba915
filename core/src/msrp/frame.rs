//! MSRP frames: requests and responses, their headers (raw text in order plus typed fields parsed
//! once), and the RFC 4975 section 7 rules for answering requests and building REPORTs.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{MsrpError, MsrpUri, RangeProblem};
use crate::lex::{self, Decimal, MediaTypeSyntax, is_token_char};

/// Response codes of RFC 4975 section 10 (and 423 of RFC 4976), with the comment this crate
/// writes when the caller gives none.
pub mod status {
    /// 200: the transaction succeeded.
    pub const OK: u16 = 200;
    /// 400: the request was unintelligible.
    pub const BAD_REQUEST: u16 = 400;
    /// 403: the attempted action is not allowed.
    pub const FORBIDDEN: u16 = 403;
    /// 408: the transaction did not complete in time (also what a local timeout means).
    pub const REQUEST_TIMEOUT: u16 = 408;
    /// 413: stop sending this message (too large or unwanted).
    pub const STOP_SENDING: u16 = 413;
    /// 415: the media type is not understood.
    pub const UNSUPPORTED_MEDIA_TYPE: u16 = 415;
    /// 423: a parameter is out of bounds (relay extension).
    pub const PARAMETER_OUT_OF_BOUNDS: u16 = 423;
    /// 481: the session does not exist.
    pub const NO_SUCH_SESSION: u16 = 481;
    /// 501: the request method is not understood.
    pub const NOT_IMPLEMENTED: u16 = 501;
    /// 506: the session is already bound to another connection.
    pub const SESSION_IN_USE: u16 = 506;

    /// The comment written for a known code (the meaning RFC 4975 section 10 gives it).
    pub fn comment(code: u16) -> Option<&'static str> {
        Some(match code {
            OK => "OK",
            BAD_REQUEST => "Bad Request",
            FORBIDDEN => "Forbidden",
            REQUEST_TIMEOUT => "Request Timeout",
            STOP_SENDING => "Stop Sending Message",
            UNSUPPORTED_MEDIA_TYPE => "Unsupported Media Type",
            PARAMETER_OUT_OF_BOUNDS => "Parameter Out Of Bounds",
            NO_SUCH_SESSION => "Session Does Not Exist",
            NOT_IMPLEMENTED => "Method Not Understood",
            SESSION_IN_USE => "Session Already In Use",
            _ => return None,
        })
    }
}

/// `ident` (RFC 4975 section 9): an alphanumeric, then 3 to 31 of alphanumerics and `.-+%=`.
pub(crate) fn is_ident(s: &str) -> bool {
    let b = s.as_bytes();
    (4..=32).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'+' | b'%' | b'='))
}

/// A request method.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// `SEND`: carries a message or a chunk of one.
    Send,
    /// `REPORT`: delivery status of a message; never answered.
    Report,
    /// `AUTH` (RFC 4976, used by RFC 7977 clients towards their relay).
    Auth,
    /// `NICKNAME` (RFC 7701).
    Nickname,
    /// Any other `1*UPALPHA` method, kept as written (never one of the names above).
    Other(String),
}

impl Method {
    /// The method from its wire token, which must be `1*UPALPHA`.
    pub fn from_token(token: &str) -> Result<Self, MsrpError> {
        Ok(match token {
            "SEND" => Self::Send,
            "REPORT" => Self::Report,
            "AUTH" => Self::Auth,
            "NICKNAME" => Self::Nickname,
            _ if !token.is_empty() && token.bytes().all(|b| b.is_ascii_uppercase()) => {
                Self::Other(token.to_owned())
            }
            _ => return Err(MsrpError::BadMethod { offset: 0 }),
        })
    }

    /// The wire token.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Send => "SEND",
            Self::Report => "REPORT",
            Self::Auth => "AUTH",
            Self::Nickname => "NICKNAME",
            Self::Other(token) => token,
        }
    }
}

/// The continuation flag of an end-line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Continuation {
    /// `$`: this chunk ends the message (always the flag of a response).
    Complete,
    /// `+`: more chunks of the message follow.
    More,
    /// `#`: the sender aborts the message; no more chunks follow.
    Aborted,
}

impl Continuation {
    /// The flag character.
    pub fn as_char(self) -> char {
        match self {
            Self::Complete => '$',
            Self::More => '+',
            Self::Aborted => '#',
        }
    }

    /// The flag for a wire byte, if it is one.
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            b'$' => Some(Self::Complete),
            b'+' => Some(Self::More),
            b'#' => Some(Self::Aborted),
            _ => None,
        }
    }
}

/// A Byte-Range header value as on the wire: 1-based, inclusive, `None` for `*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ByteRange {
    /// Position of the first byte of the chunk in the message, from 1.
    pub start: u64,
    /// Position of the last byte, or `None` for `*` (unknown, or the chunk is interruptible).
    pub end: Option<u64>,
    /// Total size of the message, or `None` for `*`.
    pub total: Option<u64>,
}

impl ByteRange {
    /// The range of a whole message of `total` bytes: `1-N/N` (`1-0/0` for an empty message).
    pub fn whole(total: u64) -> Self {
        Self {
            start: 1,
            end: Some(total),
            total: Some(total),
        }
    }

    /// The wire range for 0-based, end-exclusive `offsets` of a message of `total` bytes.
    pub fn from_offsets(offsets: Range<u64>, total: Option<u64>) -> Self {
        Self {
            start: offsets.start.saturating_add(1),
            end: Some(offsets.end.max(offsets.start)),
            total,
        }
    }

    /// The number of bytes the range declares, `range-end - range-start + 1`, if its end is known;
    /// 0 when the end is before the start. Never overflows: `1-18446744073709551615/*` declares
    /// `u64::MAX` bytes. A start of 0, which [`ByteRange::check`] refuses, counts as 1.
    pub fn declared_len(&self) -> Option<u64> {
        // `end - (start - 1)` rather than `end + 1 - start`: the latter overflows at `end = u64::MAX`.
        self.end
            .map(|end| end.saturating_sub(self.start.saturating_sub(1)))
    }

    /// Checks the range against itself: `start >= 1`, `end >= start - 1` (the empty chunk is
    /// `n-(n-1)`), `end <= total`, `start <= total + 1`.
    pub fn check(&self) -> Result<(), RangeProblem> {
        if self.start == 0 {
            return Err(RangeProblem::StartIsZero);
        }
        if let Some(end) = self.end
            && end < self.start - 1
        {
            return Err(RangeProblem::EndBeforeStart);
        }
        if let Some(total) = self.total {
            if self.end.is_some_and(|end| end > total) {
                return Err(RangeProblem::EndBeyondTotal);
            }
            if self.start - 1 > total {
                return Err(RangeProblem::StartBeyondTotal);
            }
        }
        Ok(())
    }
}

impl fmt::Display for ByteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-", self.start)?;
        match self.end {
            Some(end) => write!(f, "{end}/")?,
            None => f.write_str("*/")?,
        }
        match self.total {
            Some(total) => write!(f, "{total}"),
            None => f.write_str("*"),
        }
    }
}

impl FromStr for ByteRange {
    type Err = MsrpError;

    /// Parses `range-start "-" range-end "/" total` (syntax only; see [`ByteRange::check`]).
    fn from_str(s: &str) -> Result<Self, MsrpError> {
        let bad = || MsrpError::BadHeaderValue {
            name: "Byte-Range".into(),
            line: 0,
        };
        let number = |t: &str| Decimal::U64.parse(t).map_err(|_| bad());
        let star_or_number = |t: &str| {
            if t == "*" {
                Ok(None)
            } else {
                number(t).map(Some)
            }
        };
        let (start, rest) = s.split_once('-').ok_or_else(bad)?;
        let (end, total) = rest.split_once('/').ok_or_else(bad)?;
        Ok(Self {
            start: number(start)?,
            end: star_or_number(end)?,
            total: star_or_number(total)?,
        })
    }
}

/// A Failure-Report value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FailureReport {
    /// `yes` (the default): answer every request, report failures.
    Yes,
    /// `no`: send neither responses nor failure REPORTs.
    No,
    /// `partial`: answer only failures.
    Partial,
}

impl FailureReport {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Yes => "yes",
            Self::No => "no",
            Self::Partial => "partial",
        }
    }
}

/// A Status header value: `namespace SP status-code [SP comment]`, e.g. `000 200 OK`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StatusHeader {
    /// The namespace; 0 (`000`) means the code reads as an MSRP response code.
    pub namespace: u16,
    /// The status code.
    pub code: u16,
    /// The optional comment.
    pub comment: Option<String>,
}

impl fmt::Display for StatusHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:03} {:03}", self.namespace, self.code)?;
        if let Some(comment) = &self.comment {
            write!(f, " {comment}")?;
        }
        Ok(())
    }
}

impl FromStr for StatusHeader {
    type Err = MsrpError;

    fn from_str(s: &str) -> Result<Self, MsrpError> {
        let bad = || MsrpError::BadHeaderValue {
            name: "Status".into(),
            line: 0,
        };
        let digits3 = |t: &str| -> Result<u16, MsrpError> {
            if t.len() == 3 && t.bytes().all(|b| b.is_ascii_digit()) {
                t.parse().map_err(|_| bad())
            } else {
                Err(bad())
            }
        };
        let namespace = digits3(s.get(..3).ok_or_else(bad)?)?;
        let rest = s
            .get(3..)
            .and_then(|r| r.strip_prefix(' '))
            .ok_or_else(bad)?;
        let code = digits3(rest.get(..3).ok_or_else(bad)?)?;
        let comment = match rest.get(3..) {
            Some("") | None => None,
            Some(more) => Some(more.strip_prefix(' ').ok_or_else(bad)?.to_owned()),
        };
        Ok(Self {
            namespace,
            code,
            comment,
        })
    }
}

/// One header line as on the wire: `name: value` (the value is the text after `": "`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// The name as written.
    pub name: String,
    /// The value as written.
    pub value: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Known {
    ToPath,
    FromPath,
    MessageId,
    ByteRange,
    ContentType,
    SuccessReport,
    FailureReport,
    Status,
}

impl Known {
    fn of(name: &str) -> Option<Self> {
        const NAMES: [(&str, Known); 8] = [
            ("To-Path", Known::ToPath),
            ("From-Path", Known::FromPath),
            ("Message-ID", Known::MessageId),
            ("Byte-Range", Known::ByteRange),
            ("Content-Type", Known::ContentType),
            ("Success-Report", Known::SuccessReport),
            ("Failure-Report", Known::FailureReport),
            ("Status", Known::Status),
        ];
        NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, k)| *k)
    }

    fn name(self) -> &'static str {
        match self {
            Self::ToPath => "To-Path",
            Self::FromPath => "From-Path",
            Self::MessageId => "Message-ID",
            Self::ByteRange => "Byte-Range",
            Self::ContentType => "Content-Type",
            Self::SuccessReport => "Success-Report",
            Self::FailureReport => "Failure-Report",
            Self::Status => "Status",
        }
    }
}

/// `hname = ALPHA *token`.
pub(crate) fn is_header_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(|&c| is_token_char(c))
}

/// `utf8text`: HTAB, printable ASCII and non-ASCII UTF-8 (the caller has checked the UTF-8).
pub(crate) fn is_utf8text(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (0x20..0x7f).contains(&b) || b >= 0x80)
}

/// The headers of a frame: every line in order with its exact text (so a parsed frame re-serializes
/// byte for byte, unknown headers included), plus the known headers parsed once into typed fields.
///
/// The typed accessors are plain field reads. Setters keep both views in step, keep To-Path and
/// From-Path as the first two lines, and keep a Content-Type last (RFC 4975 section 7.1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers {
    list: Vec<Header>,
    to_path: Vec<MsrpUri>,
    from_path: Vec<MsrpUri>,
    message_id: Option<String>,
    byte_range: Option<ByteRange>,
    content_type: Option<String>,
    success_report: Option<bool>,
    failure_report: Option<FailureReport>,
    status: Option<StatusHeader>,
}

impl Headers {
    /// Headers with the given To-Path and From-Path (each at least one URI) and nothing else.
    pub fn new(to_path: Vec<MsrpUri>, from_path: Vec<MsrpUri>) -> Result<Self, MsrpError> {
        let mut headers = Self::default();
        headers.set_to_path(to_path)?;
        headers.set_from_path(from_path)?;
        Ok(headers)
    }

    /// To-Path: the URIs still to visit, leftmost first.
    pub fn to_path(&self) -> &[MsrpUri] {
        &self.to_path
    }

    /// From-Path: the URIs back to the sender, leftmost (previous hop) first.
    pub fn from_path(&self) -> &[MsrpUri] {
        &self.from_path
    }

    /// Message-ID.
    pub fn message_id(&self) -> Option<&str> {
        self.message_id.as_deref()
    }

    /// Byte-Range.
    pub fn byte_range(&self) -> Option<ByteRange> {
        self.byte_range
    }

    /// Content-Type (trimmed media type with its parameters).
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// Success-Report as written (`None` if absent; absent means `no`).
    pub fn success_report(&self) -> Option<bool> {
        self.success_report
    }

    /// Failure-Report as written (`None` if absent; absent means `yes`).
    pub fn failure_report(&self) -> Option<FailureReport> {
        self.failure_report
    }

    /// Status (REPORT requests).
    pub fn status(&self) -> Option<&StatusHeader> {
        self.status.as_ref()
    }

    /// Every header line in order.
    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.list.iter()
    }

    /// Number of header lines.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there are no header lines (never true for a parsed frame).
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The value of the first header with this name (case-insensitive), as written.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.list
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// Replaces To-Path (first line).
    pub fn set_to_path(&mut self, path: Vec<MsrpUri>) -> Result<(), MsrpError> {
        self.set_path(Known::ToPath, path)
    }

    /// Replaces From-Path (second line).
    pub fn set_from_path(&mut self, path: Vec<MsrpUri>) -> Result<(), MsrpError> {
        self.set_path(Known::FromPath, path)
    }

    fn set_path(&mut self, kind: Known, path: Vec<MsrpUri>) -> Result<(), MsrpError> {
        if path.is_empty() {
            return Err(if kind == Known::ToPath {
                MsrpError::MissingToPath
            } else {
                MsrpError::MissingFromPath
            });
        }
        for uri in &path {
            uri.validate()?;
        }
        let value = path
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ");
        let index = usize::from(kind == Known::FromPath);
        let header = Header {
            name: kind.name().into(),
            value,
        };
        match self.position(kind) {
            Some(at) => self.list[at] = header,
            None => self.list.insert(index.min(self.list.len()), header),
        }
        if kind == Known::ToPath {
            self.to_path = path;
        } else {
            self.from_path = path;
        }
        Ok(())
    }

    /// Sets Message-ID (must be an `ident`).
    pub fn set_message_id(&mut self, id: &str) -> Result<(), MsrpError> {
        self.set("Message-ID", id)
    }

    /// Sets Byte-Range.
    pub fn set_byte_range(&mut self, range: ByteRange) {
        self.set_known(Known::ByteRange, range.to_string());
        self.byte_range = Some(range);
    }

    /// Sets Content-Type (kept as the last header).
    pub fn set_content_type(&mut self, media_type: &str) -> Result<(), MsrpError> {
        self.set("Content-Type", media_type)
    }

    /// Sets Success-Report.
    pub fn set_success_report(&mut self, yes: bool) {
        self.set_known(Known::SuccessReport, if yes { "yes" } else { "no" }.into());
        self.success_report = Some(yes);
    }

    /// Sets Failure-Report.
    pub fn set_failure_report(&mut self, value: FailureReport) {
        self.set_known(Known::FailureReport, value.as_str().into());
        self.failure_report = Some(value);
    }

    /// Sets Status.
    pub fn set_status(&mut self, status: StatusHeader) -> Result<(), MsrpError> {
        self.set("Status", &status.to_string())
    }

    /// Sets a header by name: replaces the first header of that name in place, or adds it (before
    /// a trailing Content-Type). Known headers are parsed and checked.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), MsrpError> {
        check_line(name, value)?;
        match Known::of(name) {
            Some(kind @ (Known::ToPath | Known::FromPath)) => {
                let path = parse_path(name, value, 0)?;
                self.set_path(kind, path)
            }
            Some(kind) => {
                // `apply` checks the whole value before it assigns, so an error changes nothing.
                self.apply(kind, name, value, 0)?;
                self.set_known(kind, value.to_owned());
                Ok(())
            }
            None => {
                match self
                    .list
                    .iter()
                    .position(|h| h.name.eq_ignore_ascii_case(name))
                {
                    Some(at) => self.list[at].value = value.to_owned(),
                    None => self.insert_line(name.to_owned(), value.to_owned()),
                }
                Ok(())
            }
        }
    }

    /// Adds a header line (before a trailing Content-Type). Unknown headers may repeat; a known
    /// header that is already present is a [`MsrpError::DuplicateHeader`].
    pub fn push(&mut self, name: &str, value: &str) -> Result<(), MsrpError> {
        check_line(name, value)?;
        match Known::of(name) {
            Some(kind) if self.position(kind).is_some() => Err(MsrpError::DuplicateHeader {
                name: name.into(),
                line: 0,
            }),
            Some(_) => self.set(name, value),
            None => {
                self.insert_line(name.to_owned(), value.to_owned());
                Ok(())
            }
        }
    }

    /// Removes every header of this name; To-Path and From-Path cannot be removed. Returns whether
    /// anything was removed.
    pub fn remove(&mut self, name: &str) -> bool {
        let kind = Known::of(name);
        if matches!(kind, Some(Known::ToPath | Known::FromPath)) {
            return false;
        }
        let before = self.list.len();
        self.list.retain(|h| !h.name.eq_ignore_ascii_case(name));
        if let Some(kind) = kind {
            self.clear_typed(kind);
        }
        self.list.len() != before
    }

    /// Parser entry: appends a line as received, parsing known headers (duplicates are errors).
    pub(crate) fn push_received(
        &mut self,
        name: &str,
        value: &str,
        line: usize,
    ) -> Result<(), MsrpError> {
        match Known::of(name) {
            Some(kind) if self.position(kind).is_some() => {
                return Err(MsrpError::DuplicateHeader {
                    name: name.into(),
                    line,
                });
            }
            Some(kind) => self.apply(kind, name, value, line)?,
            None => {}
        }
        self.list.push(Header {
            name: name.to_owned(),
            value: value.to_owned(),
        });
        Ok(())
    }

    /// Parser check: To-Path first, From-Path second (RFC 4975 section 9).
    pub(crate) fn check_path_order(&self) -> Result<(), MsrpError> {
        match self.position(Known::ToPath) {
            Some(0) => {}
            Some(at) => return Err(MsrpError::ToPathNotFirst { line: at + 1 }),
            None => return Err(MsrpError::MissingToPath),
        }
        match self.position(Known::FromPath) {
            Some(1) => Ok(()),
            Some(at) => Err(MsrpError::FromPathNotSecond { line: at + 1 }),
            None => Err(MsrpError::MissingFromPath),
        }
    }

    /// Parser check for a request with a body: a Content-Type, as the last header.
    pub(crate) fn check_content_type_last(&self) -> Result<(), MsrpError> {
        match self.position(Known::ContentType) {
            None => Err(MsrpError::MissingContentType),
            Some(at) if at + 1 != self.list.len() => {
                Err(MsrpError::ContentTypeNotLast { line: at + 1 })
            }
            Some(_) => Ok(()),
        }
    }

    fn position(&self, kind: Known) -> Option<usize> {
        let name = kind.name();
        self.list
            .iter()
            .position(|h| h.name.eq_ignore_ascii_case(name))
    }

    fn set_known(&mut self, kind: Known, value: String) {
        match self.position(kind) {
            Some(at) => self.list[at].value = value,
            None if kind == Known::ContentType => self.list.push(Header {
                name: kind.name().into(),
                value,
            }),
            None => self.insert_line(kind.name().into(), value),
        }
    }

    fn insert_line(&mut self, name: String, value: String) {
        let trailing_content_type = self
            .list
            .last()
            .is_some_and(|h| h.name.eq_ignore_ascii_case("Content-Type"));
        let at = self.list.len() - usize::from(trailing_content_type);
        self.list.insert(at, Header { name, value });
    }

    fn clear_typed(&mut self, kind: Known) {
        match kind {
            Known::ToPath => self.to_path.clear(),
            Known::FromPath => self.from_path.clear(),
            Known::MessageId => self.message_id = None,
            Known::ByteRange => self.byte_range = None,
            Known::ContentType => self.content_type = None,
            Known::SuccessReport => self.success_report = None,
            Known::FailureReport => self.failure_report = None,
            Known::Status => self.status = None,
        }
    }

    /// Parses a known header's value into its typed field. Every check comes before the assignment,
    /// so on error the field keeps its old value.
    fn apply(
        &mut self,
        kind: Known,
        name: &str,
        value: &str,
        line: usize,
    ) -> Result<(), MsrpError> {
        let bad = || MsrpError::BadHeaderValue {
            name: name.into(),
            line,
        };
        let trimmed = value.trim_matches([' ', '\t']);
        match kind {
            Known::ToPath => self.to_path = parse_path(name, value, line)?,
            Known::FromPath => self.from_path = parse_path(name, value, line)?,
            Known::MessageId => {
                if !is_ident(trimmed) {
                    return Err(bad());
                }
                self.message_id = Some(trimmed.to_owned());
            }
            Known::ByteRange => self.byte_range = Some(trimmed.parse().map_err(|_| bad())?),
            Known::ContentType => {
                if !lex::is_media_type(trimmed, MediaTypeSyntax::Header) {
                    return Err(bad());
                }
                self.content_type = Some(trimmed.to_owned());
            }
            Known::SuccessReport => {
                self.success_report = Some(match trimmed.to_ascii_lowercase().as_str() {
                    "yes" => true,
                    "no" => false,
                    _ => return Err(bad()),
                });
            }
            Known::FailureReport => {
                self.failure_report = Some(match trimmed.to_ascii_lowercase().as_str() {
                    "yes" => FailureReport::Yes,
                    "no" => FailureReport::No,
                    "partial" => FailureReport::Partial,
                    _ => return Err(bad()),
                });
            }
            Known::Status => self.status = Some(trimmed.parse().map_err(|_| bad())?),
        }
        Ok(())
    }
}

fn check_line(name: &str, value: &str) -> Result<(), MsrpError> {
    if is_header_name(name) && is_utf8text(value) {
        Ok(())
    } else {
        Err(MsrpError::InvalidHeader { name: name.into() })
    }
}

fn parse_path(name: &str, value: &str, line: usize) -> Result<Vec<MsrpUri>, MsrpError> {
    let mut uris = Vec::new();
    let mut offset = 0;
    // The grammar separates URIs with one SP; runs of spaces (seen in RFC 7977's own examples) are
    // accepted, and the exact text is kept in the header line anyway.
    for part in value.split(' ') {
        if !part.is_empty() {
            let uri = part.parse::<MsrpUri>().map_err(|e| match e {
                MsrpError::BadUri { kind, at } => MsrpError::BadPath {
                    name: name.into(),
                    line,
                    kind,
                    at: offset + at,
                },
                other => other,
            })?;
            uris.push(uri);
        }
        offset += part.len() + 1;
    }
    if uris.is_empty() {
        return Err(MsrpError::BadHeaderValue {
            name: name.into(),
            line,
        });
    }
    Ok(uris)
}

/// An MSRP request.
///
/// Fields are public for reading and simple edits; constructors and [`Headers`] setters check the
/// grammar, and a frame built only through them always re-parses to itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The transaction id (an RFC 4975 `ident`), also the end-line's.
    pub transaction_id: String,
    /// The method.
    pub method: Method,
    /// The headers, To-Path and From-Path first.
    pub headers: Headers,
    /// The body, a slice of the parsed buffer. `None` is a bodiless request (no blank line, no
    /// Content-Type); `Some` of an empty `Bytes` is an empty body, which RFC 4975 section 7.1 treats
    /// as different.
    pub body: Option<Bytes>,
    /// The end-line's continuation flag.
    pub continuation: Continuation,
}

impl Request {
    /// A bodiless request ending with `$`.
    pub fn new(
        transaction_id: &str,
        method: Method,
        to_path: Vec<MsrpUri>,
        from_path: Vec<MsrpUri>,
    ) -> Result<Self, MsrpError> {
        if !is_ident(transaction_id) {
            return Err(MsrpError::BadTransactionId { offset: 0 });
        }
        Ok(Self {
            transaction_id: transaction_id.to_owned(),
            method,
            headers: Headers::new(to_path, from_path)?,
            body: None,
            continuation: Continuation::Complete,
        })
    }

    /// This request with a body of the given media type (Content-Type becomes the last header).
    pub fn with_body(mut self, content_type: &str, body: Bytes) -> Result<Self, MsrpError> {
        self.headers.set_content_type(content_type)?;
        self.body = Some(body);
        Ok(self)
    }

    /// Message-ID, if any.
    pub fn message_id(&self) -> Option<&str> {
        self.headers.message_id()
    }

    /// Whether the sender asked for a success REPORT (`Success-Report: yes`; absent means no).
    pub fn wants_success_report(&self) -> bool {
        self.headers.success_report() == Some(true)
    }

    /// The Failure-Report in force (absent means `yes`).
    pub fn failure_report(&self) -> FailureReport {
        self.headers.failure_report().unwrap_or(FailureReport::Yes)
    }

    /// The 0-based, end-exclusive offsets the body actually covers in its message: from the
    /// Byte-Range start (1 if absent) over the body's real length (RFC 4975 section 7.3.1 tells
    /// receivers to trust the payload over range-end).
    pub fn body_offsets(&self) -> Range<u64> {
        let start = self
            .headers
            .byte_range()
            .map_or(0, |r| r.start.saturating_sub(1));
        let len = self.body.as_ref().map_or(0, |b| b.len() as u64);
        start..start.saturating_add(len)
    }

    /// The Byte-Range a failure REPORT for this chunk carries: its actual range and the declared
    /// total (RFC 4975 section 7.1.4: range-end computed from the actual body).
    pub fn actual_byte_range(&self) -> ByteRange {
        ByteRange::from_offsets(
            self.body_offsets(),
            self.headers.byte_range().and_then(|r| r.total),
        )
    }

    /// The response to this request (RFC 4975 section 7.2): same transaction id; To-Path is the
    /// first From-Path URI for SEND (responses go to the previous hop) and the whole From-Path for
    /// other methods; From-Path is `local`. `comment: None` writes the usual comment of a known
    /// code (see [`status::comment`]).
    ///
    /// Returns `None` where RFC 4975 forbids a response: for REPORT requests (section 7.1.2), under
    /// `Failure-Report: no`, and for a 200 under `Failure-Report: partial` (section 7.1.4); also
    /// for a code above 999, which has no three-digit form. A comment with control characters is
    /// left out.
    pub fn response(&self, code: u16, comment: Option<&str>, local: &MsrpUri) -> Option<Response> {
        if self.method == Method::Report || code > 999 {
            return None;
        }
        match self.failure_report() {
            FailureReport::No => return None,
            FailureReport::Partial if code == status::OK => return None,
            _ => {}
        }
        let to_path = match self.method {
            Method::Send => self.headers.from_path().iter().take(1).cloned().collect(),
            _ => self.headers.from_path().to_vec(),
        };
        let mut headers = Headers::default();
        // Parsed paths are valid, so these cannot fail; an empty path leaves the header out.
        headers.set_to_path(to_path).ok()?;
        headers.set_from_path(vec![local.clone()]).ok()?;
        let comment = comment.or_else(|| status::comment(code)).map(str::to_owned);
        Some(Response {
            transaction_id: self.transaction_id.clone(),
            code,
            comment: comment.filter(|c| is_utf8text(c)),
            headers,
        })
    }

    /// A REPORT about this SEND (RFC 4975 sections 7.1.2 to 7.1.4): To-Path is this request's
    /// From-Path, From-Path is `local`, with its Message-ID, the given Byte-Range and
    /// `Status: 000 <code> <comment>` (`comment: None` writes the usual comment of a known code).
    ///
    /// For a success report on a complete message pass [`ByteRange::whole`]; for a failure report
    /// on one chunk pass [`Request::actual_byte_range`]. Whether to report at all is the caller's
    /// call: success reports only if [`Request::wants_success_report`], failure reports unless
    /// [`Request::failure_report`] is `No`.
    pub fn report(
        &self,
        transaction_id: &str,
        code: u16,
        comment: Option<&str>,
        range: ByteRange,
        local: &MsrpUri,
    ) -> Result<Request, MsrpError> {
        if self.method != Method::Send {
            return Err(MsrpError::NotASend);
        }
        let message_id = self.message_id().ok_or(MsrpError::MissingMessageId)?;
        let mut report = Request::new(
            transaction_id,
            Method::Report,
            self.headers.from_path().to_vec(),
            vec![local.clone()],
        )?;
        report.headers.set_message_id(message_id)?;
        report.headers.set_byte_range(range);
        report.headers.set_status(StatusHeader {
            namespace: 0,
            code,
            comment: comment.or_else(|| status::comment(code)).map(str::to_owned),
        })?;
        Ok(report)
    }
}

/// An MSRP response. Responses are never chunked: their end-line flag is always `$`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The transaction id of the request answered.
    pub transaction_id: String,
    /// The status code (three digits on the wire).
    pub code: u16,
    /// The comment after the code, if any.
    pub comment: Option<String>,
    /// The headers, To-Path and From-Path first.
    pub headers: Headers,
}

impl Response {
    /// A response with the given paths and nothing else.
    pub fn new(
        transaction_id: &str,
        code: u16,
        comment: Option<&str>,
        to_path: Vec<MsrpUri>,
        from_path: Vec<MsrpUri>,
    ) -> Result<Self, MsrpError> {
        if !is_ident(transaction_id) {
            return Err(MsrpError::BadTransactionId { offset: 0 });
        }
        if code > 999 || comment.is_some_and(|c| !is_utf8text(c)) {
            return Err(MsrpError::BadStartLine { offset: 0 });
        }
        Ok(Self {
            transaction_id: transaction_id.to_owned(),
            code,
            comment: comment.map(str::to_owned),
            headers: Headers::new(to_path, from_path)?,
        })
    }

    /// Whether the code is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.code)
    }
}

/// One MSRP frame: a request or a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

impl From<Request> for Frame {
    fn from(request: Request) -> Self {
        Self::Request(request)
    }
}

impl From<Response> for Frame {
    fn from(response: Response) -> Self {
        Self::Response(response)
    }
}

impl Frame {
    /// The transaction id.
    pub fn transaction_id(&self) -> &str {
        match self {
            Self::Request(r) => &r.transaction_id,
            Self::Response(r) => &r.transaction_id,
        }
    }

    /// The headers.
    pub fn headers(&self) -> &Headers {
        match self {
            Self::Request(r) => &r.headers,
            Self::Response(r) => &r.headers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> MsrpUri {
        s.parse().unwrap()
    }

    fn send() -> Request {
        let mut req = Request::new(
            "a786hjs2",
            Method::Send,
            vec![
                uri("msrp://relay.example.com:2855/r;tcp"),
                uri("msrp://bob.example.com:8888/b;tcp"),
            ],
            vec![
                uri("msrp://alice.example.com:7777/a;tcp"),
                uri("msrp://x.example.com:1/x;tcp"),
            ],
        )
        .unwrap()
        .with_body("text/plain", Bytes::from_static(b"hello"))
        .unwrap();
        req.headers.set_message_id("87652491").unwrap();
        req.headers.set_byte_range(ByteRange {
            start: 11,
            end: Some(15),
            total: Some(20),
        });
        req
    }

    #[test]
    fn idents_follow_the_grammar() {
        for good in ["a786", "49fi", "A.-+%=b", &"x".repeat(32)] {
            assert!(is_ident(good), "{good}");
        }
        for bad in ["abc", "-abc", "ab c", "abcé", &"x".repeat(33), ""] {
            assert!(!is_ident(bad), "{bad}");
        }
    }

    #[test]
    fn byte_ranges_parse_print_and_check() {
        let cases = [
            ("1-25/25", 1, Some(25), Some(25)),
            ("1-*/8", 1, None, Some(8)),
            ("1-*/*", 1, None, None),
            ("5-8/8", 5, Some(8), Some(8)),
            ("1-0/0", 1, Some(0), Some(0)),
        ];
        for (text, start, end, total) in cases {
            let range: ByteRange = text.parse().unwrap();
            assert_eq!(range, ByteRange { start, end, total });
            assert_eq!(range.to_string(), text);
            assert_eq!(range.check(), Ok(()));
        }
        for bad in [
            "",
            "1-2",
            "1/2",
            "a-2/3",
            "1-2/3/4",
            "-1-2/3",
            "1-2/99999999999999999999",
            "1- 2/3",
        ] {
            assert!(bad.parse::<ByteRange>().is_err(), "{bad}");
        }
        let problems = [
            ("0-1/1", RangeProblem::StartIsZero),
            ("5-3/9", RangeProblem::EndBeforeStart),
            ("1-10/9", RangeProblem::EndBeyondTotal),
            ("11-*/9", RangeProblem::StartBeyondTotal),
        ];
        for (text, problem) in problems {
            assert_eq!(
                text.parse::<ByteRange>().unwrap().check(),
                Err(problem),
                "{text}"
            );
        }
        assert_eq!(ByteRange::whole(0).to_string(), "1-0/0");
        assert_eq!(ByteRange::from_offsets(10..20, None).to_string(), "11-20/*");
        assert_eq!(ByteRange::whole(7).declared_len(), Some(7));
        let declared = |text: &str| text.parse::<ByteRange>().unwrap().declared_len();
        assert_eq!(declared("1-18446744073709551615/*"), Some(u64::MAX));
        assert_eq!(
            declared("18446744073709551615-18446744073709551615/*"),
            Some(1)
        );
        assert_eq!(declared("5-4/9"), Some(0));
        assert_eq!(declared("5-3/9"), Some(0));
        assert_eq!(declared("0-18446744073709551615/*"), Some(u64::MAX));
        assert_eq!(declared("5-*/9"), None);
        assert_eq!(
            "18446744073709551615-*/18446744073709551615"
                .parse::<ByteRange>()
                .unwrap()
                .check(),
            Ok(())
        );
    }

    #[test]
    fn status_header_parses_and_prints() {
        let s: StatusHeader = "000 200 OK".parse().unwrap();
        assert_eq!(
            s,
            StatusHeader {
                namespace: 0,
                code: 200,
                comment: Some("OK".into())
            }
        );
        assert_eq!(s.to_string(), "000 200 OK");
        assert_eq!("000 413".parse::<StatusHeader>().unwrap().comment, None);
        for bad in [
            "", "000", "00 200", "000 20", "000200", "000 2000", "abc 200",
        ] {
            assert!(bad.parse::<StatusHeader>().is_err(), "{bad}");
        }
    }

    #[test]
    fn setters_keep_order_and_typed_fields_in_step() {
        let mut req = send();
        req.headers.set_success_report(true);
        req.headers.push("X-Extra", "1").unwrap();
        req.headers.push("X-Extra", "2").unwrap();
        let names: Vec<_> = req.headers.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "To-Path",
                "From-Path",
                "Message-ID",
                "Byte-Range",
                "Success-Report",
                "X-Extra",
                "X-Extra",
                "Content-Type"
            ]
        );
        assert_eq!(req.headers.get("x-extra"), Some("1"));
        assert!(req.wants_success_report());
        req.headers.set("success-report", "no").unwrap();
        assert_eq!(req.headers.success_report(), Some(false));
        assert_eq!(
            req.headers.push("Message-ID", "other1"),
            Err(MsrpError::DuplicateHeader {
                name: "Message-ID".into(),
                line: 0
            })
        );
        assert!(
            req.headers.set("Message-ID", "no").is_err(),
            "ident too short"
        );
        assert_eq!(
            req.message_id(),
            Some("87652491"),
            "a failed set changes nothing"
        );
        req.headers.set_failure_report(FailureReport::Partial);
        req.headers
            .set_status("000 200 OK".parse().unwrap())
            .unwrap();
        for (name, bad) in [
            ("To-Path", "msrp://h/s"),
            ("From-Path", ""),
            ("Message-ID", "x"),
            ("Byte-Range", "1-2"),
            ("Content-Type", "text"),
            ("Success-Report", "maybe"),
            ("Failure-Report", "often"),
            ("Status", "200"),
        ] {
            let before = req.headers.clone();
            assert!(req.headers.set(name, bad).is_err(), "{name}: {bad}");
            assert_eq!(
                req.headers, before,
                "a failed set of {name} changes nothing"
            );
            assert_eq!(req.headers.iter().count(), before.iter().count());
        }
        assert_eq!(req.headers.status().map(|s| s.code), Some(200));
        assert!(req.headers.remove("Status"));
        assert_eq!(req.headers.status(), None);
        assert_eq!(req.headers.get("Status"), None);
        for (name, value) in [("X-Bad", "a\r\nb"), ("1Bad", "x"), ("Bad Name", "x")] {
            assert_eq!(
                req.headers.set(name, value),
                Err(MsrpError::InvalidHeader { name: name.into() })
            );
        }
        assert!(req.headers.remove("Success-Report"));
        assert_eq!(req.headers.success_report(), None);
        assert!(!req.headers.remove("To-Path"));
        req.headers
            .set("To-Path", "msrp://h/s;tcp msrp://g/t;ws")
            .unwrap();
        assert_eq!(req.headers.to_path().len(), 2);
        assert_eq!(
            req.headers.iter().next().unwrap().value,
            "msrp://h/s;tcp msrp://g/t;ws"
        );
        assert!(matches!(
            req.headers.set("From-Path", "msrp://h/s"),
            Err(MsrpError::BadPath {
                kind: crate::msrp::UriErrorKind::MissingTransport,
                ..
            })
        ));
    }

    #[test]
    fn content_types_follow_the_shared_media_type_rules() {
        let mut req = send();
        for good in [
            "text/plain",
            "message/cpim",
            "application/x{y}",
            "text/plain;charset=UTF-8",
            "text/plain; charset=\"a b\"; format=flowed",
            "multipart/mixed;boundary",
            "image/*",
        ] {
            req.headers.set_content_type(good).unwrap();
            assert_eq!(req.headers.content_type(), Some(good));
        }
        for bad in [
            "text",
            "text/",
            "/plain",
            "text/plain;",
            "text/plain;a=",
            "text/plain;a=\"open",
            "text/plain x",
            "te(x)t/plain",
        ] {
            assert_eq!(
                req.headers.set_content_type(bad),
                Err(MsrpError::BadHeaderValue {
                    name: "Content-Type".into(),
                    line: 0
                }),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn responses_follow_section_7_2() {
        let local = uri("msrp://bob.example.com:8888/b;tcp");
        let req = send();
        let ok = req.response(200, None, &local).unwrap();
        assert_eq!(ok.transaction_id, "a786hjs2");
        assert_eq!(ok.comment.as_deref(), Some("OK"));
        assert_eq!(
            ok.headers.to_path(),
            &[uri("msrp://alice.example.com:7777/a;tcp")]
        );
        assert_eq!(ok.headers.from_path(), std::slice::from_ref(&local));
        assert_eq!(
            req.response(413, Some("Too big"), &local)
                .unwrap()
                .comment
                .as_deref(),
            Some("Too big")
        );
        for code in [400, 403, 408, 413, 415, 481, 501, 506] {
            assert!(status::comment(code).is_some());
            assert_eq!(req.response(code, None, &local).unwrap().code, code);
        }

        let mut auth = send();
        auth.method = Method::Auth;
        assert_eq!(
            auth.response(200, None, &local)
                .unwrap()
                .headers
                .from_path()
                .len(),
            1
        );
        assert_eq!(
            auth.response(200, None, &local)
                .unwrap()
                .headers
                .to_path()
                .len(),
            2
        );

        let mut report = send();
        report.method = Method::Report;
        assert_eq!(report.response(200, None, &local), None);

        let mut no = send();
        no.headers.set_failure_report(FailureReport::No);
        assert_eq!(no.response(400, None, &local), None);
        assert_eq!(req.response(1000, None, &local), None);
        let mut partial = send();
        partial.headers.set_failure_report(FailureReport::Partial);
        assert_eq!(partial.response(200, None, &local), None);
        assert!(partial.response(415, None, &local).is_some());
    }

    #[test]
    fn reports_follow_section_7_1_3() {
        let local = uri("msrp://bob.example.com:8888/b;tcp");
        let req = send();
        let report = req
            .report("dkei38sd", 200, None, ByteRange::whole(20), &local)
            .unwrap();
        assert_eq!(report.method, Method::Report);
        assert_eq!(report.headers.to_path(), req.headers.from_path());
        assert_eq!(report.headers.from_path(), std::slice::from_ref(&local));
        assert_eq!(report.message_id(), Some("87652491"));
        assert_eq!(report.headers.get("Byte-Range"), Some("1-20/20"));
        assert_eq!(report.headers.get("Status"), Some("000 200 OK"));
        assert_eq!(report.body, None);
        let failure = req
            .report("dkei38se", 413, None, req.actual_byte_range(), &local)
            .unwrap();
        assert_eq!(failure.headers.get("Byte-Range"), Some("11-15/20"));
        assert_eq!(
            failure.headers.get("Status"),
            Some("000 413 Stop Sending Message")
        );

        let mut not_send = send();
        not_send.method = Method::Report;
        assert_eq!(
            not_send.report("dkei38sd", 200, None, ByteRange::whole(1), &local),
            Err(MsrpError::NotASend)
        );
        let mut no_id = send();
        no_id.headers.remove("Message-ID");
        assert_eq!(
            no_id.report("dkei38sd", 200, None, ByteRange::whole(1), &local),
            Err(MsrpError::MissingMessageId)
        );
        assert_eq!(
            req.report("bad", 200, None, ByteRange::whole(1), &local),
            Err(MsrpError::BadTransactionId { offset: 0 })
        );
    }

    #[test]
    fn methods_and_flags() {
        for (token, method) in [
            ("SEND", Method::Send),
            ("REPORT", Method::Report),
            ("AUTH", Method::Auth),
            ("NICKNAME", Method::Nickname),
            ("FOO", Method::Other("FOO".into())),
        ] {
            assert_eq!(Method::from_token(token).unwrap(), method);
            assert_eq!(method.as_str(), token);
        }
        for bad in ["", "send", "SEND1", "SE ND"] {
            assert!(Method::from_token(bad).is_err(), "{bad}");
        }
        for c in [
            Continuation::Complete,
            Continuation::More,
            Continuation::Aborted,
        ] {
            assert_eq!(Continuation::from_byte(c.as_char() as u8), Some(c));
        }
        assert_eq!(Continuation::from_byte(b'x'), None);
    }
}
