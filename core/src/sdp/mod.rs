//! SDP (RFC 4566) session descriptions with MSRP media (RFC 4975 section 8, RFC 7977) and RFC 5547
//! file transfer attributes: parsing, writing, and the offers and answers of a file transfer.
//!
//! This module owns the SDP bodies of the project's INVITEs and 200 OKs. It parses untrusted bodies
//! into a [`SessionDescription`], gives typed access to what MSRP file transfer needs (the MSRP
//! `path`, `accept-types`, `setup`, the direction, the RFC 5547 `file-selector` and friends), builds
//! file transfer offers ([`FileTransferOffer`]) and answers them ([`answer`]). MSRP URIs inside
//! `a=path` stay strings; the MSRP module parses them.
//!
//! ## Parsing
//! [`SessionDescription::parse`] takes the body as bytes. It enforces [`Limits`] (size and line
//! count), requires UTF-8, `v=0`, `o=` and `s=` as the first three lines, and a well-formed value
//! for every line it types (`o=`, `c=`, `t=`, `b=`, `m=`, and the attributes of
//! [`attribute`]). Everything else is kept: `i=`, `u=`, `e=`, `p=`, `r=`, `z=`, `k=`, lines with
//! letters SDP does not define, and unknown attributes ([`Attribute::Other`]). Errors name the line
//! and the field ([`SdpError`]). Lenient on purpose, as RFC 4566 section 5 allows: lines may end
//! with LF alone, the last line may lack its line ending, empty lines at the very end are ignored,
//! `t=` may be missing, and `s=` may be empty (RFC 5547's examples have `s=` with nothing after it).
//!
//! ## Writing, and what round-trips
//! [`SessionDescription`] implements `Display`, which writes CRLF line endings. A parsed body is
//! written back **byte for byte** when its lines end with CRLF (LF-only input comes back with CRLF,
//! and trailing empty lines are dropped): every line stays in its place, because each section
//! records its line order, and a typed line whose canonical form would differ (extra spaces,
//! lower-case hash hex, selectors in another order, leading zeros) keeps its original text as long
//! as its typed value is not changed (see [`Formatting`]). A description built in code is written
//! in the canonical order of RFC 4566 section 5 with canonical attribute values.
//!
//! Writing never lets field text break a line. The builders ([`FileTransferOffer::build`],
//! [`answer`]) refuse a field holding a control character, or a space where the line's grammar
//! separates fields with spaces, with [`SdpError::InvalidInput`] naming the field. A description
//! built or edited by hand is not checked, but `Display` writes each control character other than
//! HTAB in its lines as U+FFFD, so an `s=` or an [`Attribute::Other`] value holding CR LF stays one
//! line (which then fails to parse or reads differently, rather than adding lines). Escaping was
//! chosen over refusing because `Display` cannot return an error without `to_string` panicking.
//!
//! ## Example
//! ```
//! use rcs_core::sdp::{Direction, SessionDescription};
//!
//! let body = "v=0\r\no=bob 2890844656 2890844656 IN IP4 bobpc.example.com\r\ns=\r\n\
//!             c=IN IP4 bobpc.example.com\r\nt=0 0\r\nm=message 8888 TCP/MSRP *\r\na=recvonly\r\n\
//!             a=path:msrp://bobpc.example.com:8888/9di4ea;tcp\r\n\
//!             a=file-selector:name:\"My cool picture.jpg\" type:image/jpeg size:4092\r\n";
//! let sdp = SessionDescription::parse(body.as_bytes())?;
//! let media = sdp.msrp_media().expect("an m=message line");
//! assert_eq!(media.direction(), Direction::RecvOnly);
//! assert_eq!(media.file_selector().and_then(|s| s.size), Some(4092));
//! assert_eq!(sdp.to_string(), body);
//! # Ok::<(), rcs_core::sdp::SdpError>(())
//! ```

pub mod attribute;
mod error;
mod format;
mod offer;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use attribute::{Attribute, Direction, FileDate, FileHash, FileRange, FileSelector, Setup};
pub use error::{
    AttributeError, Field, FieldError, FileSelectorError, InputField, InputProblem, LineError,
    OfferRejection, SdpError,
};
pub use format::Formatting;
pub use offer::{
    AnswerParams, FileTransferOffer, Operation, PROTO_TCP, PROTO_TLS, PROTO_WS, PROTO_WSS, answer,
};

use crate::lex::{Decimal, DecimalError};
use attribute::number;
use format::{Item, LineKind, MediaLine, Typed, push_line, write_section};

/// The default [`Limits::max_bytes`]: 32 KiB, far above any file transfer offer.
pub const DEFAULT_MAX_BYTES: usize = 32 * 1024;
/// The default [`Limits::max_lines`].
pub const DEFAULT_MAX_LINES: usize = 512;

/// Bounds on an untrusted body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest body accepted, in bytes.
    pub max_bytes: usize,
    /// Most lines accepted.
    pub max_lines: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_MAX_BYTES,
            max_lines: DEFAULT_MAX_LINES,
        }
    }
}

/// A whole SDP body: the session part and its media sections.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionDescription {
    /// `v=`: always 0 (the parser rejects anything else).
    pub version: u32,
    /// `o=`.
    pub origin: Origin,
    /// `s=`: the text after `s=`, as it came (may be empty or ` -`).
    pub session_name: String,
    /// Session-level `c=`.
    pub connection: Option<Connection>,
    /// Session-level `b=` lines.
    pub bandwidths: Vec<Bandwidth>,
    /// `t=` lines, in order (`r=` lines stay in [`other_lines`](Self::other_lines)).
    pub times: Vec<Timing>,
    /// Session-level `a=` lines, in order.
    pub attributes: Vec<Attribute>,
    /// Session-level lines of every other type (`i=`, `u=`, `e=`, `p=`, `r=`, `z=`, `k=`, unknown
    /// letters), in order.
    pub other_lines: Vec<OtherLine>,
    /// The media sections, in order.
    pub media: Vec<MediaDescription>,
    /// Line order and original spellings of the session part (see [`Formatting`]).
    pub formatting: Formatting,
}

/// The `o=` line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// User name (`-` when there is none).
    pub username: String,
    /// Session id.
    pub session_id: u64,
    /// Session version, increased on every new offer of the session.
    pub session_version: u64,
    /// Network type, `IN`.
    pub net_type: String,
    /// Address type, `IP4` or `IP6`.
    pub addr_type: String,
    /// Address or host name.
    pub address: String,
}

impl Origin {
    /// An origin whose network type, address type and address are those of `connection`.
    pub fn new(
        username: &str,
        session_id: u64,
        session_version: u64,
        connection: &Connection,
    ) -> Self {
        Self {
            username: username.to_owned(),
            session_id,
            session_version,
            net_type: connection.net_type.clone(),
            addr_type: connection.addr_type.clone(),
            address: connection.address.clone(),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {} {}",
            self.username,
            self.session_id,
            self.session_version,
            self.net_type,
            self.addr_type,
            self.address
        )
    }
}

/// A `c=` line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    /// Network type, `IN`.
    pub net_type: String,
    /// Address type, `IP4` or `IP6`.
    pub addr_type: String,
    /// Address or host name, e.g. the `df7jal23ls0d.invalid` a WebSocket client uses (RFC 7977
    /// appendix A).
    pub address: String,
}

impl Connection {
    /// `IN IP4 <address>`.
    pub fn ip4(address: &str) -> Self {
        Self {
            net_type: "IN".into(),
            addr_type: "IP4".into(),
            address: address.to_owned(),
        }
    }

    /// `IN IP6 <address>`.
    pub fn ip6(address: &str) -> Self {
        Self {
            net_type: "IN".into(),
            addr_type: "IP6".into(),
            address: address.to_owned(),
        }
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.net_type, self.addr_type, self.address)
    }
}

/// A `t=` line: NTP start and stop times, `0 0` for an unbounded session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    /// Start time (NTP seconds), 0 for now.
    pub start: u64,
    /// Stop time (NTP seconds), 0 for unbounded.
    pub stop: u64,
}

impl fmt::Display for Timing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.start, self.stop)
    }
}

/// A `b=` line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bandwidth {
    /// Bandwidth type, e.g. `AS` or `CT`.
    pub bwtype: String,
    /// Bandwidth in kilobits per second.
    pub bandwidth: u64,
}

impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.bwtype, self.bandwidth)
    }
}

/// A line this module keeps without interpreting: its type letter and the text after `=`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtherLine {
    /// The type letter.
    pub kind: char,
    /// The text after `=`.
    pub value: String,
}

/// One media section: the `m=` line and the lines after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaDescription {
    /// Media type, `message` for MSRP.
    pub media: String,
    /// Port; 0 rejects the stream in an answer. MSRP ignores it in favour of `a=path`.
    pub port: u16,
    /// The number after `port/`, if any.
    pub port_count: Option<u16>,
    /// Transport protocol: `TCP/MSRP`, `TCP/TLS/MSRP` (what RFC 7977 section 5.2.2 prescribes for
    /// WebSocket clients), `TCP/WS/MSRP` or `TCP/WSS/MSRP` as some WebSocket clients write, or any
    /// other kept as is.
    pub proto: String,
    /// Formats; `*` for MSRP.
    pub formats: Vec<String>,
    /// Media-level `c=`.
    pub connection: Option<Connection>,
    /// Media-level `b=` lines.
    pub bandwidths: Vec<Bandwidth>,
    /// Media-level `a=` lines, in order.
    pub attributes: Vec<Attribute>,
    /// Media-level lines of every other type (`i=`, `k=`, unknown letters), in order.
    pub other_lines: Vec<OtherLine>,
    /// Line order and original spellings of this section (see [`Formatting`]).
    pub formatting: Formatting,
}

impl SessionDescription {
    /// A description with this origin, `s=-` and `t=0 0`, and nothing else.
    pub fn new(origin: Origin) -> Self {
        Self {
            version: 0,
            origin,
            session_name: "-".into(),
            connection: None,
            bandwidths: Vec::new(),
            times: vec![Timing::default()],
            attributes: Vec::new(),
            other_lines: Vec::new(),
            media: Vec::new(),
            formatting: Formatting::default(),
        }
    }

    /// Parses an untrusted body with the default [`Limits`].
    pub fn parse(input: &[u8]) -> Result<Self, SdpError> {
        Self::parse_with(input, &Limits::default())
    }

    /// Parses an untrusted body within `limits`.
    pub fn parse_with(input: &[u8], limits: &Limits) -> Result<Self, SdpError> {
        if input.len() > limits.max_bytes {
            return Err(SdpError::TooLarge {
                size: input.len(),
                limit: limits.max_bytes,
            });
        }
        let text = std::str::from_utf8(input).map_err(|e| SdpError::NotUtf8 {
            line: 1 + input
                .get(..e.valid_up_to())
                .map_or(0, |valid| valid.iter().filter(|&&b| b == b'\n').count()),
        })?;
        let mut raw_lines: Vec<&str> = text
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .collect();
        while raw_lines.last().is_some_and(|l| l.is_empty()) {
            raw_lines.pop();
        }
        if raw_lines.len() > limits.max_lines {
            return Err(SdpError::TooManyLines {
                limit: limits.max_lines,
            });
        }
        let lines = raw_lines
            .iter()
            .enumerate()
            .map(|(i, line)| split_line(line, i + 1))
            .collect::<Result<Vec<_>, _>>()?;
        Parser { lines, next: 0 }.session()
    }

    /// The body as bytes (CRLF line endings).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }

    /// The first `m=message` section, whatever its protocol.
    pub fn msrp_media(&self) -> Option<&MediaDescription> {
        self.media.iter().find(|m| m.media == "message")
    }

    /// The first `m=message` section, to edit.
    pub fn msrp_media_mut(&mut self) -> Option<&mut MediaDescription> {
        self.media.iter_mut().find(|m| m.media == "message")
    }

    /// The session-level direction attribute, if any.
    pub fn direction_attribute(&self) -> Option<Direction> {
        direction_in(&self.attributes)
    }

    /// The direction in force for `media`: its own direction attribute, else the session-level one,
    /// else sendrecv (RFC 4566 section 6).
    pub fn direction_of(&self, media: &MediaDescription) -> Direction {
        media
            .direction_attribute()
            .or_else(|| self.direction_attribute())
            .unwrap_or(Direction::SendRecv)
    }
}

impl FromStr for SessionDescription {
    type Err = SdpError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s.as_bytes())
    }
}

impl fmt::Display for SessionDescription {
    /// The body with CRLF line endings.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        push_line(&mut out, &format!("v={}", self.version));
        let origin = self.formatting.text_for(
            |t| matches!(t, Typed::Origin(o) if *o == self.origin),
            || self.origin.to_string(),
        );
        push_line(&mut out, &format!("o={origin}"));
        push_line(&mut out, &format!("s={}", self.session_name));
        let mut items = common_items(
            &self.formatting,
            self.connection.as_ref(),
            &self.bandwidths,
            &self.attributes,
            &self.other_lines,
            session_rank,
        );
        for (i, time) in self.times.iter().enumerate() {
            let text = self.formatting.text_for(
                |t| matches!(t, Typed::Time(j, v) if *j == i && v == time),
                || time.to_string(),
            );
            items.push(Item {
                kind: LineKind::Time,
                rank: session_rank('t'),
                line: format!("t={text}"),
            });
        }
        write_section(&mut out, &self.formatting.order, items);
        for media in &self.media {
            media.write(&mut out);
        }
        f.write_str(&out)
    }
}

impl MediaDescription {
    /// A media section with no lines after its `m=` line.
    pub fn new(media: &str, port: u16, proto: &str, formats: &[&str]) -> Self {
        Self {
            media: media.to_owned(),
            port,
            port_count: None,
            proto: proto.to_owned(),
            formats: formats.iter().map(|f| (*f).to_owned()).collect(),
            connection: None,
            bandwidths: Vec::new(),
            attributes: Vec::new(),
            other_lines: Vec::new(),
            formatting: Formatting::default(),
        }
    }

    /// Whether this is MSRP media: `m=message` over a protocol ending in `/MSRP`.
    pub fn is_msrp(&self) -> bool {
        self.media == "message"
            && self
                .proto
                .len()
                .checked_sub(5)
                .and_then(|i| self.proto.get(i..))
                .is_some_and(|tail| tail.eq_ignore_ascii_case("/MSRP"))
    }

    /// The first attribute with this name.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name() == name)
    }

    /// `a=path`: the MSRP URIs, first hop first.
    pub fn path(&self) -> Option<&[String]> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Path(uris) => Some(uris.as_slice()),
            _ => None,
        })
    }

    /// `a=accept-types`.
    pub fn accept_types(&self) -> Option<&[String]> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::AcceptTypes(types) => Some(types.as_slice()),
            _ => None,
        })
    }

    /// `a=accept-wrapped-types`.
    pub fn accept_wrapped_types(&self) -> Option<&[String]> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::AcceptWrappedTypes(types) => Some(types.as_slice()),
            _ => None,
        })
    }

    /// `a=max-size`.
    pub fn max_size(&self) -> Option<u64> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::MaxSize(size) => Some(*size),
            _ => None,
        })
    }

    /// `a=setup`.
    pub fn setup(&self) -> Option<Setup> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Setup(setup) => Some(*setup),
            _ => None,
        })
    }

    /// The media-level direction attribute, if any.
    pub fn direction_attribute(&self) -> Option<Direction> {
        direction_in(&self.attributes)
    }

    /// The media-level direction, sendrecv if none is given. A session-level direction also
    /// applies when the media has none: see [`SessionDescription::direction_of`].
    pub fn direction(&self) -> Direction {
        self.direction_attribute().unwrap_or(Direction::SendRecv)
    }

    /// Replaces every direction attribute of the section by `direction`, where the first one stood
    /// (or at the end).
    pub fn set_direction(&mut self, direction: Direction) {
        match self
            .attributes
            .iter()
            .position(|a| matches!(a, Attribute::Direction(_)))
        {
            Some(first) => {
                if let Some(slot) = self.attributes.get_mut(first) {
                    *slot = Attribute::Direction(direction);
                }
                let mut index = 0;
                self.attributes.retain(|a| {
                    let keep = index <= first || !matches!(a, Attribute::Direction(_));
                    index += 1;
                    keep
                });
            }
            None => self.attributes.push(Attribute::Direction(direction)),
        }
    }

    /// `a=file-selector`.
    pub fn file_selector(&self) -> Option<&FileSelector> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::FileSelector(selector) => Some(selector),
            _ => None,
        })
    }

    /// `a=file-transfer-id`.
    pub fn file_transfer_id(&self) -> Option<&str> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::FileTransferId(id) => Some(id.as_str()),
            _ => None,
        })
    }

    /// `a=file-disposition`.
    pub fn file_disposition(&self) -> Option<&str> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::FileDisposition(disposition) => Some(disposition.as_str()),
            _ => None,
        })
    }

    /// `a=file-date`.
    pub fn file_date(&self) -> Option<&FileDate> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::FileDate(date) => Some(date),
            _ => None,
        })
    }

    /// `a=file-icon`: the `cid:` URL.
    pub fn file_icon(&self) -> Option<&str> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::FileIcon(url) => Some(url.as_str()),
            _ => None,
        })
    }

    /// `a=file-range`.
    pub fn file_range(&self) -> Option<FileRange> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::FileRange(range) => Some(*range),
            _ => None,
        })
    }

    fn line(&self) -> MediaLine {
        MediaLine {
            media: self.media.clone(),
            port: self.port,
            port_count: self.port_count,
            proto: self.proto.clone(),
            formats: self.formats.clone(),
        }
    }

    fn write(&self, out: &mut String) {
        let media_line = self.formatting.text_for(
            |t| matches!(t, Typed::MediaLine(l) if *l == self.line()),
            || media_line_text(&self.line()),
        );
        push_line(out, &format!("m={media_line}"));
        let items = common_items(
            &self.formatting,
            self.connection.as_ref(),
            &self.bandwidths,
            &self.attributes,
            &self.other_lines,
            media_rank,
        );
        write_section(out, &self.formatting.order, items);
    }
}

fn direction_in(attributes: &[Attribute]) -> Option<Direction> {
    attributes.iter().find_map(|a| match a {
        Attribute::Direction(direction) => Some(*direction),
        _ => None,
    })
}

fn media_line_text(line: &MediaLine) -> String {
    let mut text = format!("{} {}", line.media, line.port);
    if let Some(count) = line.port_count {
        text.push_str(&format!("/{count}"));
    }
    text.push(' ');
    text.push_str(&line.proto);
    for format in &line.formats {
        text.push(' ');
        text.push_str(format);
    }
    text
}

/// Canonical position of a session-level line (RFC 4566 section 5 order).
fn session_rank(kind: char) -> u8 {
    match kind {
        'i' => 1,
        'u' => 2,
        'e' => 3,
        'p' => 4,
        'c' => 5,
        'b' => 6,
        't' => 7,
        'r' => 8,
        'z' => 9,
        'k' => 10,
        'a' => 11,
        _ => 12,
    }
}

/// Canonical position of a media-level line.
fn media_rank(kind: char) -> u8 {
    match kind {
        'i' => 1,
        'c' => 2,
        'b' => 3,
        'k' => 4,
        'a' => 5,
        _ => 6,
    }
}

/// The lines both kinds of section share, ready for [`write_section`].
fn common_items(
    formatting: &Formatting,
    connection: Option<&Connection>,
    bandwidths: &[Bandwidth],
    attributes: &[Attribute],
    other_lines: &[OtherLine],
    rank: fn(char) -> u8,
) -> Vec<Item> {
    let mut items = Vec::with_capacity(1 + bandwidths.len() + attributes.len() + other_lines.len());
    if let Some(connection) = connection {
        let text = formatting.text_for(
            |t| matches!(t, Typed::Connection(c) if c == connection),
            || connection.to_string(),
        );
        items.push(Item {
            kind: LineKind::Connection,
            rank: rank('c'),
            line: format!("c={text}"),
        });
    }
    for (i, bandwidth) in bandwidths.iter().enumerate() {
        let text = formatting.text_for(
            |t| matches!(t, Typed::Bandwidth(j, b) if *j == i && b == bandwidth),
            || bandwidth.to_string(),
        );
        items.push(Item {
            kind: LineKind::Bandwidth,
            rank: rank('b'),
            line: format!("b={text}"),
        });
    }
    for (i, attribute) in attributes.iter().enumerate() {
        let text = formatting.text_for(
            |t| matches!(t, Typed::Attribute(j, a) if *j == i && a == attribute),
            || attribute.to_string(),
        );
        items.push(Item {
            kind: LineKind::Attribute,
            rank: rank('a'),
            line: format!("a={text}"),
        });
    }
    for other in other_lines {
        items.push(Item {
            kind: LineKind::Other,
            rank: rank(other.kind),
            line: format!("{}={}", other.kind, other.value),
        });
    }
    items
}

/// One line of the body: its number, type letter and value.
struct Line<'a> {
    number: usize,
    kind: char,
    value: &'a str,
}

fn split_line(line: &str, number: usize) -> Result<Line<'_>, SdpError> {
    let bad = |reason| SdpError::BadLine {
        line: number,
        reason,
    };
    let bytes = line.as_bytes();
    if let Some(offset) = bytes
        .iter()
        .position(|&b| (b < 0x20 && b != b'\t') || b == 0x7F)
    {
        return Err(bad(LineError::ControlCharacter { offset }));
    }
    let kind = match bytes.first() {
        None => return Err(bad(LineError::Empty)),
        Some(b) if b.is_ascii_alphabetic() => char::from(*b),
        Some(_) => return Err(bad(LineError::BadType)),
    };
    if bytes.get(1) != Some(&b'=') {
        return Err(bad(LineError::NoEquals));
    }
    Ok(Line {
        number,
        kind,
        value: line.get(2..).unwrap_or_default(),
    })
}

/// A section being parsed: its attributes so far, for the duplicate checks.
struct Section {
    connection: Option<Connection>,
    bandwidths: Vec<Bandwidth>,
    attributes: Vec<Attribute>,
    other_lines: Vec<OtherLine>,
    formatting: Formatting,
}

impl Section {
    fn new() -> Self {
        Self {
            connection: None,
            bandwidths: Vec::new(),
            attributes: Vec::new(),
            other_lines: Vec::new(),
            formatting: Formatting::default(),
        }
    }

    /// Handles the line kinds both sections share; returns false for a kind it does not handle.
    fn take(&mut self, line: &Line<'_>) -> Result<bool, SdpError> {
        match line.kind {
            'c' => {
                if self.connection.is_some() {
                    return Err(SdpError::DuplicateLine {
                        line: line.number,
                        kind: 'c',
                    });
                }
                let connection = parse_connection(line)?;
                let canonical = connection.to_string();
                self.formatting.remember(
                    Typed::Connection(connection.clone()),
                    line.value,
                    &canonical,
                );
                self.connection = Some(connection);
                self.formatting.order.push(LineKind::Connection);
            }
            'b' => {
                let bandwidth = parse_bandwidth(line)?;
                let canonical = bandwidth.to_string();
                self.formatting.remember(
                    Typed::Bandwidth(self.bandwidths.len(), bandwidth.clone()),
                    line.value,
                    &canonical,
                );
                self.bandwidths.push(bandwidth);
                self.formatting.order.push(LineKind::Bandwidth);
            }
            'a' => {
                let attribute =
                    Attribute::parse(line.value).map_err(|reason| SdpError::BadAttribute {
                        line: line.number,
                        name: line.value.split(':').next().unwrap_or_default().to_owned(),
                        reason,
                    })?;
                self.check_conflicts(&attribute, line.number)?;
                let canonical = attribute.to_string();
                self.formatting.remember(
                    Typed::Attribute(self.attributes.len(), attribute.clone()),
                    line.value,
                    &canonical,
                );
                self.attributes.push(attribute);
                self.formatting.order.push(LineKind::Attribute);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn keep_other(&mut self, line: &Line<'_>) {
        self.other_lines.push(OtherLine {
            kind: line.kind,
            value: line.value.to_owned(),
        });
        self.formatting.order.push(LineKind::Other);
    }

    fn check_conflicts(&self, attribute: &Attribute, number: usize) -> Result<(), SdpError> {
        if let Attribute::Direction(second) = attribute {
            if let Some(first) = direction_in(&self.attributes).filter(|first| first != second) {
                return Err(SdpError::ContradictoryDirection {
                    line: number,
                    first,
                    second: *second,
                });
            }
        } else if attribute.is_single() {
            let kind = std::mem::discriminant(attribute);
            if self
                .attributes
                .iter()
                .any(|a| std::mem::discriminant(a) == kind && a != attribute)
            {
                return Err(SdpError::ConflictingAttribute {
                    line: number,
                    name: attribute.name().to_owned(),
                });
            }
        }
        Ok(())
    }
}

struct Parser<'a> {
    lines: Vec<Line<'a>>,
    next: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&Line<'a>> {
        self.lines.get(self.next)
    }

    /// The next line, which must be of type `kind`.
    fn expect(&mut self, kind: char) -> Result<&Line<'a>, SdpError> {
        let at = self.next;
        match self.lines.get(at) {
            Some(line) if line.kind == kind => {
                self.next += 1;
                Ok(line)
            }
            _ => Err(SdpError::MissingLine {
                line: at + 1,
                expected: kind,
            }),
        }
    }

    fn session(mut self) -> Result<SessionDescription, SdpError> {
        let version = self.expect('v')?;
        if version.value != "0" {
            let reason = if number(version.value).is_some() {
                FieldError::Unsupported
            } else {
                FieldError::NotANumber
            };
            return Err(SdpError::BadField {
                line: version.number,
                field: Field::Version,
                reason,
            });
        }
        let origin_line = self.expect('o')?;
        let origin = parse_origin(origin_line)?;
        let mut section = Section::new();
        let canonical = origin.to_string();
        section
            .formatting
            .remember(Typed::Origin(origin.clone()), origin_line.value, &canonical);
        let session_name = self.expect('s')?.value.to_owned();
        let mut times = Vec::new();
        while let Some(line) = self.peek() {
            match line.kind {
                'm' => break,
                'v' | 'o' | 's' => {
                    return Err(SdpError::UnexpectedLine {
                        line: line.number,
                        kind: line.kind,
                    });
                }
                't' => {
                    let time = parse_timing(line)?;
                    section.formatting.remember(
                        Typed::Time(times.len(), time),
                        line.value,
                        &time.to_string(),
                    );
                    times.push(time);
                    section.formatting.order.push(LineKind::Time);
                }
                _ => {
                    if !section.take(line)? {
                        section.keep_other(line);
                    }
                }
            }
            self.next += 1;
        }
        let mut media = Vec::new();
        while self.peek().is_some() {
            media.push(self.media()?);
        }
        Ok(SessionDescription {
            version: 0,
            origin,
            session_name,
            connection: section.connection,
            bandwidths: section.bandwidths,
            times,
            attributes: section.attributes,
            other_lines: section.other_lines,
            media,
            formatting: section.formatting,
        })
    }

    fn media(&mut self) -> Result<MediaDescription, SdpError> {
        let m = self.expect('m')?;
        let line = parse_media_line(m)?;
        let mut section = Section::new();
        let canonical = media_line_text(&line);
        section
            .formatting
            .remember(Typed::MediaLine(line.clone()), m.value, &canonical);
        while let Some(line) = self.peek() {
            match line.kind {
                'm' => break,
                'v' | 'o' | 's' | 't' => {
                    return Err(SdpError::UnexpectedLine {
                        line: line.number,
                        kind: line.kind,
                    });
                }
                _ => {
                    if !section.take(line)? {
                        section.keep_other(line);
                    }
                }
            }
            self.next += 1;
        }
        Ok(MediaDescription {
            media: line.media,
            port: line.port,
            port_count: line.port_count,
            proto: line.proto,
            formats: line.formats,
            connection: section.connection,
            bandwidths: section.bandwidths,
            attributes: section.attributes,
            other_lines: section.other_lines,
            formatting: section.formatting,
        })
    }
}

/// Splits a structured line into exactly `expected` space-separated fields (at least `expected`
/// when `at_least`).
fn fields<'a>(
    line: &Line<'a>,
    field: Field,
    expected: usize,
    at_least: bool,
) -> Result<Vec<&'a str>, SdpError> {
    let parts: Vec<&str> = line.value.split(' ').collect();
    let bad = |reason| SdpError::BadField {
        line: line.number,
        field,
        reason,
    };
    if parts.iter().any(|p| p.is_empty()) {
        return Err(bad(FieldError::Empty));
    }
    if parts.len() < expected || (!at_least && parts.len() != expected) {
        return Err(bad(FieldError::FieldCount {
            found: parts.len(),
            expected,
        }));
    }
    Ok(parts)
}

fn numeric<T: TryFrom<u64>>(text: &str, line: &Line<'_>, field: Field) -> Result<T, SdpError> {
    let bad = |reason| SdpError::BadField {
        line: line.number,
        field,
        reason,
    };
    let value = Decimal::U64.parse(text).map_err(|e| {
        bad(match e {
            DecimalError::NotDigits => FieldError::NotANumber,
            DecimalError::LeadingZero | DecimalError::TooLarge => FieldError::OutOfRange,
        })
    })?;
    T::try_from(value).map_err(|_| bad(FieldError::OutOfRange))
}

fn parse_origin(line: &Line<'_>) -> Result<Origin, SdpError> {
    match fields(line, Field::Origin, 6, false)?.as_slice() {
        [username, id, version, net_type, addr_type, address] => Ok(Origin {
            username: (*username).to_owned(),
            session_id: numeric(id, line, Field::SessionId)?,
            session_version: numeric(version, line, Field::SessionVersion)?,
            net_type: (*net_type).to_owned(),
            addr_type: (*addr_type).to_owned(),
            address: (*address).to_owned(),
        }),
        _ => Err(SdpError::BadField {
            line: line.number,
            field: Field::Origin,
            reason: FieldError::Empty,
        }),
    }
}

fn parse_connection(line: &Line<'_>) -> Result<Connection, SdpError> {
    match fields(line, Field::Connection, 3, false)?.as_slice() {
        [net_type, addr_type, address] => Ok(Connection {
            net_type: (*net_type).to_owned(),
            addr_type: (*addr_type).to_owned(),
            address: (*address).to_owned(),
        }),
        _ => Err(SdpError::BadField {
            line: line.number,
            field: Field::Connection,
            reason: FieldError::Empty,
        }),
    }
}

fn parse_timing(line: &Line<'_>) -> Result<Timing, SdpError> {
    match fields(line, Field::Timing, 2, false)?.as_slice() {
        [start, stop] => Ok(Timing {
            start: numeric(start, line, Field::StartTime)?,
            stop: numeric(stop, line, Field::StopTime)?,
        }),
        _ => Err(SdpError::BadField {
            line: line.number,
            field: Field::Timing,
            reason: FieldError::Empty,
        }),
    }
}

fn parse_bandwidth(line: &Line<'_>) -> Result<Bandwidth, SdpError> {
    let (bwtype, value) = line.value.split_once(':').ok_or(SdpError::BadField {
        line: line.number,
        field: Field::Bandwidth,
        reason: FieldError::FieldCount {
            found: 1,
            expected: 2,
        },
    })?;
    if bwtype.is_empty() || bwtype.contains(' ') {
        return Err(SdpError::BadField {
            line: line.number,
            field: Field::Bandwidth,
            reason: FieldError::Empty,
        });
    }
    Ok(Bandwidth {
        bwtype: bwtype.to_owned(),
        bandwidth: numeric(value, line, Field::BandwidthValue)?,
    })
}

fn parse_media_line(line: &Line<'_>) -> Result<MediaLine, SdpError> {
    let parts = fields(line, Field::Media, 4, true)?;
    let (media, port, proto, formats) = match parts.as_slice() {
        [media, port, proto, formats @ ..] => (*media, *port, *proto, formats),
        _ => {
            return Err(SdpError::BadField {
                line: line.number,
                field: Field::Media,
                reason: FieldError::FieldCount {
                    found: parts.len(),
                    expected: 4,
                },
            });
        }
    };
    let (port, port_count) = match port.split_once('/') {
        Some((port, count)) => (port, Some(numeric(count, line, Field::PortCount)?)),
        None => (port, None),
    };
    Ok(MediaLine {
        media: media.to_owned(),
        port: numeric(port, line, Field::Port)?,
        port_count,
        proto: proto.to_owned(),
        formats: formats.iter().map(|f| (*f).to_owned()).collect(),
    })
}

#[cfg(test)]
mod tests;
