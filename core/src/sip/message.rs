//! [`SipMessage`]: one SIP request or response, its parser ([`parse`]) and writer
//! ([`SipMessage::to_bytes`]).

use bytes::Bytes;

use super::grammar::{self, Fail, is_token_str, split_list};
use super::header::{CSeq, Method, NameAddr, Via, canonical_name, same_header};
use super::uri::{SipUri, parse_uri, scheme_at};
use super::{Limits, SipError};
use crate::lex::{self, MediaTypeSyntax};

/// One header field as it appears in the message: the name as written (compact forms kept) and the
/// value with folding undone and surrounding whitespace removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    name: String,
    value: String,
}

impl Header {
    pub(crate) fn new(name: &str, value: &str) -> Self {
        Self {
            name: name.to_owned(),
            value: value.to_owned(),
        }
    }

    /// The name as written.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value.
    pub fn value(&self) -> &str {
        &self.value
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum StartLine {
    Request { method: Method, uri: SipUri },
    Response { code: u16, reason: String },
}

/// Typed views of the headers, decoded from `SipMessage::headers` whenever those change.
#[derive(Clone, Debug, PartialEq, Eq)]
struct View {
    /// A copy of `vias[0]`, so `SipMessage::via` needs no fallible lookup.
    top_via: Via,
    vias: Vec<Via>,
    from: NameAddr,
    to: NameAddr,
    call_id: String,
    cseq: CSeq,
    contacts: Vec<NameAddr>,
    contact_wildcard: bool,
    expires: Option<u32>,
    max_forwards: Option<u32>,
    routes: Vec<NameAddr>,
    record_routes: Vec<NameAddr>,
    content_type: Option<String>,
}

/// A SIP request or response.
///
/// Every value is valid: it comes from [`parse`], a builder, or a setter that re-validates. The typed
/// accessors therefore never fail; the mandatory headers (Via, From, To, Call-ID, CSeq) are always
/// there. `Content-Length` is not stored: it is the body's length, written by [`SipMessage::to_bytes`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipMessage {
    start: StartLine,
    headers: Vec<Header>,
    body: Bytes,
    view: View,
}

/// Parses one SIP message, the content of one WebSocket message (RFC 7118 section 5). The body is
/// copied; use [`parse_bytes`] to slice it out of a `Bytes` instead.
pub fn parse(bytes: &[u8], limits: &Limits) -> Result<SipMessage, SipError> {
    let (message, body_start) = parse_head(bytes, limits)?;
    let body = Bytes::copy_from_slice(bytes.get(body_start..).unwrap_or_default());
    message.with_parsed_body(body)
}

/// [`parse`] without copying: the body is a slice of `bytes`.
pub fn parse_bytes(bytes: Bytes, limits: &Limits) -> Result<SipMessage, SipError> {
    let (message, body_start) = parse_head(&bytes, limits)?;
    let body = if body_start <= bytes.len() {
        bytes.slice(body_start..)
    } else {
        Bytes::new()
    };
    message.with_parsed_body(body)
}

/// A message whose header section is parsed, with the declared Content-Length still to check.
struct Head {
    start: StartLine,
    headers: Vec<Header>,
    content_length: Option<usize>,
    limits: Limits,
}

impl Head {
    fn with_parsed_body(self, body: Bytes) -> Result<SipMessage, SipError> {
        if let Some(declared) = self.content_length.filter(|&d| d != body.len()) {
            return Err(SipError::ContentLengthMismatch {
                declared,
                actual: body.len(),
            });
        }
        // Decoded with Content-Length still in place, so error field numbers match the message.
        let view = decode(&self.start, &self.headers, self.limits.max_values, true)?;
        let headers = self
            .headers
            .into_iter()
            .filter(|h| canonical_name(&h.name) != Some("Content-Length"))
            .collect();
        Ok(SipMessage {
            start: self.start,
            headers,
            body,
            view,
        })
    }
}

fn parse_head(bytes: &[u8], limits: &Limits) -> Result<(Head, usize), SipError> {
    if bytes.len() > limits.max_message_bytes {
        return Err(SipError::MessageTooLarge {
            size: bytes.len(),
            limit: limits.max_message_bytes,
        });
    }
    // RFC 3261 section 7.5: CRLFs before the start line are ignored (keep-alives on streams).
    let mut start = 0;
    while bytes.get(start..start + 2) == Some(b"\r\n") {
        start += 2;
    }
    let rest = bytes.get(start..).unwrap_or_default();
    let head_len = rest
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or(SipError::Truncated { len: bytes.len() })?;
    let head = std::str::from_utf8(rest.get(..head_len).unwrap_or_default()).map_err(|e| {
        SipError::NotUtf8 {
            offset: start + e.valid_up_to(),
        }
    })?;
    let body_start = start + head_len + 4;

    let mut lines = head.split("\r\n").enumerate().map(|(i, l)| (i + 1, l));
    for (n, line) in head.split("\r\n").enumerate() {
        if line.contains(['\r', '\n']) {
            return Err(SipError::BadLineEnding { line: n + 1 });
        }
    }
    let (_, first) = lines.next().unwrap_or((1, ""));
    let start_line = parse_start_line(first)?;

    let mut headers: Vec<Header> = Vec::new();
    for (n, line) in lines {
        if line.starts_with([' ', '\t']) {
            // A continuation of the previous field: folding is one space (RFC 3261 section 7.3.1).
            let last = headers.last_mut().ok_or(SipError::BadHeaderLine {
                line: n,
                expected: "header name",
            })?;
            last.value.push(' ');
            last.value.push_str(line.trim_start());
            continue;
        }
        if headers.len() == limits.max_headers {
            return Err(SipError::TooManyHeaders {
                limit: limits.max_headers,
            });
        }
        let (name, value) = line.split_once(':').ok_or(SipError::BadHeaderLine {
            line: n,
            expected: "':' after the header name",
        })?;
        let name = name.trim_end_matches([' ', '\t']);
        if !is_token_str(name) {
            return Err(SipError::BadHeaderLine {
                line: n,
                expected: "header name (token)",
            });
        }
        headers.push(Header::new(name, value));
    }
    for h in &mut headers {
        let trimmed = h.value.trim_matches([' ', '\t']);
        if trimmed.len() != h.value.len() {
            h.value = trimmed.to_owned();
        }
    }

    // Content-Length is checked against the body, then dropped: the writer recomputes it.
    let mut content_length = None;
    for (i, h) in headers.iter().enumerate() {
        let field = i + 1;
        if canonical_name(&h.name) != Some("Content-Length") {
            continue;
        }
        if content_length.is_some() {
            return Err(SipError::DuplicateHeader {
                header: "Content-Length",
                field,
            });
        }
        let declared = grammar::digits(&h.value)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or(SipError::BadHeader {
                header: "Content-Length",
                field,
                column: 0,
                expected: "1*DIGIT",
            })?;
        content_length = Some(declared);
    }
    Ok((
        Head {
            start: start_line,
            headers,
            content_length,
            limits: *limits,
        },
        body_start,
    ))
}

const START_LINE_FORMS: &str =
    "Method SP Request-URI SP SIP-Version, or SIP-Version SP Status-Code SP Reason-Phrase";

fn check_version(version: &str, column: usize) -> Result<(), SipError> {
    if version.eq_ignore_ascii_case("SIP/2.0") {
        return Ok(());
    }
    let number = version
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("SIP/"))
        .and_then(|_| version.get(4..));
    let well_formed = number
        .and_then(|n| n.split_once('.'))
        .is_some_and(|(a, b)| grammar::digits(a).is_some() && grammar::digits(b).is_some());
    if well_formed {
        Err(SipError::UnsupportedVersion {
            version: version.to_owned(),
        })
    } else {
        Err(SipError::BadStartLine {
            column,
            expected: "SIP/2.0",
        })
    }
}

fn parse_start_line(line: &str) -> Result<StartLine, SipError> {
    if line
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
    {
        let (version, rest) = line.split_once(' ').unwrap_or((line, ""));
        check_version(version, 0)?;
        let code_at = version.len() + 1;
        let (code, reason) = match rest.split_once(' ') {
            Some((code, reason)) => (code, reason),
            None => (rest, ""),
        };
        let code = grammar::digits(code)
            .filter(|_| code.len() == 3)
            .and_then(|c| u16::try_from(c).ok())
            .filter(|c| (100..=699).contains(c))
            .ok_or(SipError::BadStartLine {
                column: code_at,
                expected: "status code 100-699",
            })?;
        return Ok(StartLine::Response {
            code,
            reason: reason.to_owned(),
        });
    }
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SipError::BadStartLine {
            column: 0,
            expected: START_LINE_FORMS,
        });
    };
    let method = Method::from_token(method).ok_or(SipError::BadStartLine {
        column: 0,
        expected: "method (token)",
    })?;
    let uri_at = method.as_str().len() + 1;
    check_version(version, uri_at + uri.len() + 1)?;
    let uri = parse_uri(uri).map_err(|f| {
        if f.unsupported_scheme {
            SipError::UnsupportedUriScheme {
                scheme: scheme_at(uri, 0),
            }
        } else {
            SipError::BadStartLine {
                column: uri_at + f.at,
                expected: f.expected,
            }
        }
    })?;
    Ok(StartLine::Request { method, uri })
}

/// Decodes and checks the typed headers. `max_values` bounds the values of one header;
/// `content_length_checked` says a Content-Length line was already checked by the parser (anywhere
/// else the writer computes it, so it may not be set).
fn decode(
    start: &StartLine,
    headers: &[Header],
    max_values: usize,
    content_length_checked: bool,
) -> Result<View, SipError> {
    let mut vias = Vec::new();
    let (mut from, mut to, mut call_id, mut cseq) = (None, None, None, None);
    let mut contacts = Vec::new();
    let mut contact_wildcard = false;
    let (mut expires, mut max_forwards, mut content_type) = (None, None, None);
    let (mut routes, mut record_routes) = (Vec::new(), Vec::new());

    for (i, h) in headers.iter().enumerate() {
        let field = i + 1;
        let Some(name) = canonical_name(&h.name) else {
            continue;
        };
        let value = h.value.as_str();
        let bad = |f: Fail, offset: usize, text: &str| -> SipError {
            if f.unsupported_scheme {
                SipError::UnsupportedUriScheme {
                    scheme: scheme_at(text, f.at),
                }
            } else {
                SipError::BadHeader {
                    header: name,
                    field,
                    column: offset + f.at,
                    expected: f.expected,
                }
            }
        };
        let once = |slot_taken: bool| -> Result<(), SipError> {
            if slot_taken {
                Err(SipError::DuplicateHeader {
                    header: name,
                    field,
                })
            } else {
                Ok(())
            }
        };
        let number = |expected: &'static str| {
            grammar::digits(value).ok_or(SipError::BadHeader {
                header: name,
                field,
                column: 0,
                expected,
            })
        };
        match name {
            "Via" | "Contact" | "Route" | "Record-Route" => {
                if name == "Contact" && value == "*" {
                    contact_wildcard = true;
                    continue;
                }
                let taken = match name {
                    "Via" => vias.len(),
                    "Contact" => contacts.len(),
                    "Route" => routes.len(),
                    _ => record_routes.len(),
                };
                let items = split_list(value, max_values.saturating_sub(taken)).ok_or(
                    SipError::TooManyValues {
                        header: name,
                        limit: max_values,
                    },
                )?;
                if items.is_empty() {
                    return Err(SipError::BadHeader {
                        header: name,
                        field,
                        column: 0,
                        expected: "a value",
                    });
                }
                for (offset, item) in items {
                    if name == "Via" {
                        vias.push(Via::parse(item).map_err(|f| bad(f, offset, item))?);
                        continue;
                    }
                    let na = NameAddr::parse_value(item).map_err(|f| bad(f, offset, item))?;
                    match name {
                        "Contact" => contacts.push(na),
                        "Route" => routes.push(na),
                        _ => record_routes.push(na),
                    }
                }
            }
            "From" => {
                once(from.is_some())?;
                from = Some(NameAddr::parse_value(value).map_err(|f| bad(f, 0, value))?);
            }
            "To" => {
                once(to.is_some())?;
                to = Some(NameAddr::parse_value(value).map_err(|f| bad(f, 0, value))?);
            }
            "Call-ID" => {
                once(call_id.is_some())?;
                check_call_id(value).map_err(|f| bad(f, 0, value))?;
                call_id = Some(value.to_owned());
            }
            "CSeq" => {
                once(cseq.is_some())?;
                cseq = Some(CSeq::parse(value).map_err(|f| bad(f, 0, value))?);
            }
            "Expires" => {
                once(expires.is_some())?;
                // RFC 3261 section 20.19: larger values mean 2^32 - 1.
                let n = number("delta-seconds")?;
                expires = Some(u32::try_from(n).unwrap_or(u32::MAX));
            }
            "Max-Forwards" => {
                once(max_forwards.is_some())?;
                let n = number("1*DIGIT")?;
                max_forwards = Some(u32::try_from(n).map_err(|_| SipError::BadHeader {
                    header: name,
                    field,
                    column: 0,
                    expected: "a 32-bit number",
                })?);
            }
            "Content-Type" => {
                once(content_type.is_some())?;
                check_media_type(value).map_err(|f| bad(f, 0, value))?;
                content_type = Some(value.to_owned());
            }
            "Content-Length" if !content_length_checked => {
                return Err(SipError::ComputedHeader {
                    name: "Content-Length",
                });
            }
            _ => {}
        }
    }

    let top_via = vias
        .first()
        .cloned()
        .ok_or(SipError::MissingHeader { header: "Via" })?;
    let view = View {
        top_via,
        vias,
        from: from.ok_or(SipError::MissingHeader { header: "From" })?,
        to: to.ok_or(SipError::MissingHeader { header: "To" })?,
        call_id: call_id.ok_or(SipError::MissingHeader { header: "Call-ID" })?,
        cseq: cseq.ok_or(SipError::MissingHeader { header: "CSeq" })?,
        contacts,
        contact_wildcard,
        expires,
        max_forwards,
        routes,
        record_routes,
        content_type,
    };
    if let StartLine::Request { method, .. } = start
        && *method != view.cseq.method
    {
        return Err(SipError::CSeqMethodMismatch {
            method: method.clone(),
            cseq: view.cseq.method.clone(),
        });
    }
    Ok(view)
}

/// `Call-ID = word [ "@" word ]`.
pub(crate) fn check_call_id(value: &str) -> Result<(), Fail> {
    let (a, b) = match value.split_once('@') {
        Some((a, b)) => (a, Some(b)),
        None => (value, None),
    };
    let word = |s: &str| !s.is_empty() && s.bytes().all(grammar::is_word);
    if !word(a) {
        return Err(Fail::new(0, "word (Call-ID)"));
    }
    if !b.is_none_or(word) {
        return Err(Fail::new(a.len() + 1, "word after '@' (Call-ID)"));
    }
    Ok(())
}

/// `media-type = m-type "/" m-subtype *( ";" m-parameter )`, by the media-type rules SDP and MSRP
/// share: type, subtype and parameter names are RFC 2045 tokens (RFC 3261's own `token` would refuse
/// types such as `application/x{y}` that the other layers accept).
fn check_media_type(value: &str) -> Result<(), Fail> {
    let bytes = value.as_bytes();
    let end = lex::scan_media_type(bytes, 0, MediaTypeSyntax::Header)
        .map_err(|e| Fail::new(e.offset, e.expected.as_str()))?;
    let rest = end
        + value
            .get(end..)
            .map_or(0, |r| r.len() - r.trim_start_matches([' ', '\t']).len());
    if rest < value.len() {
        return Err(Fail::new(rest, "';' or end of value"));
    }
    Ok(())
}

impl SipMessage {
    pub(crate) fn new_request(
        method: Method,
        uri: SipUri,
        headers: Vec<Header>,
        body: Bytes,
    ) -> Result<SipMessage, SipError> {
        let start = StartLine::Request { method, uri };
        let view = decode(&start, &headers, usize::MAX, false)?;
        Ok(SipMessage {
            start,
            headers,
            body,
            view,
        })
    }

    pub(crate) fn new_response(
        code: u16,
        reason: &str,
        headers: Vec<Header>,
    ) -> Result<SipMessage, SipError> {
        if !(100..=699).contains(&code) {
            return Err(SipError::InvalidInput {
                what: "status code (100-699)",
            });
        }
        if reason.contains(['\r', '\n']) {
            return Err(SipError::InvalidInput {
                what: "reason phrase",
            });
        }
        let start = StartLine::Response {
            code,
            reason: reason.to_owned(),
        };
        let view = decode(&start, &headers, usize::MAX, false)?;
        Ok(SipMessage {
            start,
            headers,
            body: Bytes::new(),
            view,
        })
    }

    /// Whether this is a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// Whether this is a response.
    pub fn is_response(&self) -> bool {
        !self.is_request()
    }

    /// The request's method; for a response, the method of the request it answers (from CSeq).
    pub fn method(&self) -> &Method {
        match &self.start {
            StartLine::Request { method, .. } => method,
            StartLine::Response { .. } => &self.view.cseq.method,
        }
    }

    /// The Request-URI of a request.
    pub fn request_uri(&self) -> Option<&SipUri> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { code, .. } => Some(*code),
            StartLine::Request { .. } => None,
        }
    }

    /// The reason phrase of a response, as written.
    pub fn reason(&self) -> Option<&str> {
        match &self.start {
            StartLine::Response { reason, .. } => Some(reason),
            StartLine::Request { .. } => None,
        }
    }

    /// The top Via (the one this hop's transaction is identified by).
    pub fn via(&self) -> &Via {
        &self.view.top_via
    }

    /// All Vias, top first, across all Via header lines.
    pub fn vias(&self) -> &[Via] {
        &self.view.vias
    }

    /// From.
    pub fn from(&self) -> &NameAddr {
        &self.view.from
    }

    /// To.
    pub fn to(&self) -> &NameAddr {
        &self.view.to
    }

    /// Call-ID.
    pub fn call_id(&self) -> &str {
        &self.view.call_id
    }

    /// CSeq.
    pub fn cseq(&self) -> &CSeq {
        &self.view.cseq
    }

    /// The first Contact, if any.
    pub fn contact(&self) -> Option<&NameAddr> {
        self.view.contacts.first()
    }

    /// All Contacts across all Contact header lines.
    pub fn contacts(&self) -> &[NameAddr] {
        &self.view.contacts
    }

    /// Whether a `Contact: *` is present (REGISTER removing every binding, RFC 3261 section 10.2.2).
    pub fn contact_is_wildcard(&self) -> bool {
        self.view.contact_wildcard
    }

    /// The Expires header, saturating at `u32::MAX`.
    pub fn expires(&self) -> Option<u32> {
        self.view.expires
    }

    /// Max-Forwards.
    pub fn max_forwards(&self) -> Option<u32> {
        self.view.max_forwards
    }

    /// Route entries in order, across all Route lines.
    pub fn routes(&self) -> &[NameAddr] {
        &self.view.routes
    }

    /// Record-Route entries in order, across all Record-Route lines.
    pub fn record_routes(&self) -> &[NameAddr] {
        &self.view.record_routes
    }

    /// The Content-Type value as written, parameters included.
    pub fn content_type(&self) -> Option<&str> {
        self.view.content_type.as_deref()
    }

    /// Whether Content-Type is `media_type` (`type/subtype`), ignoring case and parameters.
    pub fn has_content_type(&self, media_type: &str) -> bool {
        fn parts(s: &str) -> Vec<&str> {
            s.split('/').map(str::trim).collect()
        }
        self.content_type().is_some_and(|ct| {
            let (a, b) = (parts(ct.split(';').next().unwrap_or("")), parts(media_type));
            a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x.eq_ignore_ascii_case(y))
        })
    }

    /// The body length, which is what `Content-Length` says on the wire.
    pub fn content_length(&self) -> usize {
        self.body.len()
    }

    /// The first value of header `name` (case-insensitive; compact and long forms are the same
    /// header). `Content-Length` is not stored: use [`SipMessage::content_length`].
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| same_header(&h.name, name))
            .map(|h| h.value.as_str())
    }

    /// Every line's value of header `name`, in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |h| same_header(&h.name, name))
            .map(|h| h.value.as_str())
    }

    /// All header fields in order (without Content-Length).
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Appends header `name: value`. Fails if the name is not a token, the value holds CR or LF, the
    /// header is `Content-Length`, or the message would no longer be valid (e.g. a second From); the
    /// message is unchanged then.
    pub fn push_header(&mut self, name: &str, value: &str) -> Result<(), SipError> {
        let header = checked_header(name, value)?;
        let mut headers = self.headers.clone();
        headers.push(header);
        self.replace_headers(headers)
    }

    /// Replaces every line of header `name` with one line `name: value` (where the first one was, or
    /// at the end).
    pub fn set_header(&mut self, name: &str, value: &str) -> Result<(), SipError> {
        let header = checked_header(name, value)?;
        let mut headers = Vec::with_capacity(self.headers.len() + 1);
        let mut placed = false;
        for h in &self.headers {
            if same_header(&h.name, name) {
                if !placed {
                    headers.push(header.clone());
                    placed = true;
                }
            } else {
                headers.push(h.clone());
            }
        }
        if !placed {
            headers.push(header);
        }
        self.replace_headers(headers)
    }

    /// Removes every line of header `name`; returns how many there were. Fails (and changes nothing)
    /// if that would remove a mandatory header.
    pub fn remove_header(&mut self, name: &str) -> Result<usize, SipError> {
        let before = self.headers.len();
        let headers: Vec<Header> = self
            .headers
            .iter()
            .filter(|h| !same_header(&h.name, name))
            .cloned()
            .collect();
        let removed = before - headers.len();
        self.replace_headers(headers)?;
        Ok(removed)
    }

    /// Replaces the body; sets Content-Type to `content_type`, or removes it when `None`.
    pub fn set_body(&mut self, content_type: Option<&str>, body: Bytes) -> Result<(), SipError> {
        let mut copy = self.clone();
        match content_type {
            Some(ct) => copy.set_header("Content-Type", ct)?,
            None => {
                copy.remove_header("Content-Type")?;
            }
        }
        copy.body = body;
        *self = copy;
        Ok(())
    }

    fn replace_headers(&mut self, headers: Vec<Header>) -> Result<(), SipError> {
        self.view = decode(&self.start, &headers, usize::MAX, false)?;
        self.headers = headers;
        Ok(())
    }

    /// The message as it goes on the wire: CRLF line ends, `Content-Length` always written (last),
    /// then the body.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::with_capacity(
            128 + self
                .headers
                .iter()
                .map(|h| h.name.len() + h.value.len() + 4)
                .sum::<usize>()
                + self.body.len(),
        );
        match &self.start {
            StartLine::Request { method, uri } => {
                out.extend_from_slice(format!("{method} {uri} SIP/2.0\r\n").as_bytes());
            }
            StartLine::Response { code, reason } => {
                out.extend_from_slice(format!("SIP/2.0 {code} {reason}\r\n").as_bytes());
            }
        }
        for h in &self.headers {
            out.extend_from_slice(h.name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(h.value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", self.body.len()).as_bytes());
        out.extend_from_slice(&self.body);
        Bytes::from(out)
    }
}

pub(crate) fn checked_header(name: &str, value: &str) -> Result<Header, SipError> {
    if !is_token_str(name) {
        return Err(SipError::InvalidInput {
            what: "header name (token)",
        });
    }
    if canonical_name(name) == Some("Content-Length") {
        return Err(SipError::ComputedHeader {
            name: "Content-Length",
        });
    }
    if value.contains(['\r', '\n']) {
        return Err(SipError::InvalidInput {
            what: "header value (no CR or LF)",
        });
    }
    Ok(Header::new(name, value.trim_matches([' ', '\t'])))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message from header lines (start line first) and a body, with CRLF line ends.
    fn wire(lines: &[&str], body: &str) -> Vec<u8> {
        let mut s = lines.join("\r\n");
        s.push_str("\r\n\r\n");
        s.push_str(body);
        s.into_bytes()
    }

    const INVITE: &[&str] = &[
        "INVITE sip:bob@example.com SIP/2.0",
        "Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK56sdasks",
        "From: sip:alice@example.com;tag=asdyka899",
        "To: sip:bob@example.com",
        "Call-ID: asidkj3ss",
        "CSeq: 1 INVITE",
        "Max-Forwards: 70",
        "Content-Type: application/sdp",
    ];

    fn with(lines: &[&str], replace: &str, by: Option<&str>) -> Vec<String> {
        let key = replace.split(':').next().unwrap_or("");
        let mut out = Vec::new();
        let mut done = false;
        for l in lines {
            if !done && l.split(':').next() == Some(key) {
                done = true;
                if let Some(b) = by {
                    out.push(b.to_owned());
                }
            } else {
                out.push((*l).to_owned());
            }
        }
        if !done {
            out.extend(by.map(str::to_owned));
        }
        out
    }

    fn parse_lines(lines: &[String], body: &str) -> Result<SipMessage, SipError> {
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        parse(&wire(&refs, body), &Limits::default())
    }

    #[test]
    fn parses_a_request_and_writes_it_back() {
        let m = parse(&wire(INVITE, "v=0\r\n"), &Limits::default()).expect("parse");
        assert!(m.is_request() && !m.is_response());
        assert_eq!(*m.method(), Method::Invite);
        assert_eq!(
            m.request_uri().map(ToString::to_string).as_deref(),
            Some("sip:bob@example.com")
        );
        assert_eq!(m.status(), None);
        assert_eq!(m.via().branch(), Some("z9hG4bK56sdasks"));
        assert_eq!(m.from().tag(), Some("asdyka899"));
        assert_eq!(m.to().tag(), None);
        assert_eq!(m.call_id(), "asidkj3ss");
        assert_eq!(m.cseq().seq, 1);
        assert_eq!(m.max_forwards(), Some(70));
        assert!(m.has_content_type("Application/SDP"));
        assert!(!m.has_content_type("application"));
        assert_eq!(m.body().as_ref(), b"v=0\r\n");
        assert_eq!(m.content_length(), 5);
        let out = m.to_bytes();
        assert!(out.ends_with(b"Content-Length: 5\r\n\r\nv=0\r\n"));
        assert_eq!(parse(&out, &Limits::default()).expect("re-parse"), m);
    }

    #[test]
    fn content_types_follow_the_media_type_rules_sdp_and_msrp_use() {
        // RFC 2045 tokens, not RFC 3261's narrower ones: `{`, `}`, `#`, `$`, `&`, `^`, `|` are fine.
        for good in [
            "application/x{y}",
            "application/vnd.a#b$c&d^e|f",
            "text/plain ; charset = \"a b\"",
            "multipart/mixed;boundary=x;q",
        ] {
            let line = format!("Content-Type: {good}");
            let m = parse_lines(&with(INVITE, "Content-Type:", Some(&line)), "")
                .unwrap_or_else(|e| panic!("{good:?}: {e}"));
            assert_eq!(m.content_type(), Some(good));
        }
        let bad: &[(&str, usize, &str)] = &[
            ("text", 4, "'/'"),
            ("text/", 5, "media subtype"),
            ("text/plain;", 11, "parameter name"),
            ("text/plain;a=", 13, "parameter value"),
            ("a/b;c=\"open", 6, "closing '\"'"),
            ("text/plain x", 11, "';' or end of value"),
            ("text/pl@in", 7, "';' or end of value"),
        ];
        for (value, column, expected) in bad {
            let line = format!("Content-Type: {value}");
            assert_eq!(
                parse_lines(&with(INVITE, "Content-Type:", Some(&line)), ""),
                Err(SipError::BadHeader {
                    header: "Content-Type",
                    field: 7,
                    column: *column,
                    expected,
                }),
                "{value:?}"
            );
        }
    }

    #[test]
    fn every_truncation_is_an_error_and_never_a_panic() {
        let mut lines: Vec<String> = INVITE.iter().map(|s| (*s).to_owned()).collect();
        lines.push("Content-Length: 5".into());
        let full = {
            let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
            wire(&refs, "v=0\r\n")
        };
        let head_end = full.len() - 5;
        for cut in 0..full.len() {
            let result = parse(full.get(..cut).unwrap_or_default(), &Limits::default());
            let err = result.expect_err("a cut message must not parse");
            if cut < head_end {
                assert_eq!(err, SipError::Truncated { len: cut }, "cut at {cut}");
            } else {
                assert_eq!(
                    err,
                    SipError::ContentLengthMismatch {
                        declared: 5,
                        actual: cut - head_end
                    },
                    "cut at {cut}"
                );
            }
        }
        assert!(parse(&full, &Limits::default()).is_ok());
    }

    #[test]
    fn bad_messages_get_the_specific_error() {
        let l = |lines: &[&str]| lines.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let cases: Vec<(&str, Vec<String>, &str, SipError)> = vec![
            (
                "bare LF",
                l(&["INVITE sip:a@b SIP/2.0", "Via: x\ny"]),
                "",
                SipError::BadLineEnding { line: 2 },
            ),
            (
                "HTTP",
                l(&["HTTP/1.1 200 OK"]),
                "",
                SipError::BadStartLine {
                    column: 0,
                    expected: "method (token)",
                },
            ),
            (
                "two parts",
                l(&["INVITE sip:a@b"]),
                "",
                SipError::BadStartLine {
                    column: 0,
                    expected: START_LINE_FORMS,
                },
            ),
            (
                "double space",
                l(&["INVITE  sip:a@b SIP/2.0"]),
                "",
                SipError::BadStartLine {
                    column: 0,
                    expected: START_LINE_FORMS,
                },
            ),
            (
                "method",
                l(&["IN(VITE sip:a@b SIP/2.0"]),
                "",
                SipError::BadStartLine {
                    column: 0,
                    expected: "method (token)",
                },
            ),
            (
                "uri",
                l(&["INVITE sip:a@ SIP/2.0"]),
                "",
                SipError::BadStartLine {
                    column: 13,
                    expected: "host",
                },
            ),
            (
                "version text",
                l(&["INVITE sip:a@b SIP/two"]),
                "",
                SipError::BadStartLine {
                    column: 15,
                    expected: "SIP/2.0",
                },
            ),
            (
                "status 4 digits",
                l(&["SIP/2.0 2000 OK"]),
                "",
                SipError::BadStartLine {
                    column: 8,
                    expected: "status code 100-699",
                },
            ),
            (
                "status 099",
                l(&["SIP/2.0 099 Odd"]),
                "",
                SipError::BadStartLine {
                    column: 8,
                    expected: "status code 100-699",
                },
            ),
            (
                "SIP/3.0 response",
                l(&["SIP/3.0 200 OK"]),
                "",
                SipError::UnsupportedVersion {
                    version: "SIP/3.0".into(),
                },
            ),
            (
                "SIP/1.0 request",
                l(&["INVITE sip:a@b SIP/1.0"]),
                "",
                SipError::UnsupportedVersion {
                    version: "SIP/1.0".into(),
                },
            ),
            (
                "tel request URI",
                l(&["INVITE tel:+1555 SIP/2.0"]),
                "",
                SipError::UnsupportedUriScheme {
                    scheme: "tel".into(),
                },
            ),
            (
                "tel To",
                with(INVITE, "To:", Some("To: <tel:+1555>")),
                "",
                SipError::UnsupportedUriScheme {
                    scheme: "tel".into(),
                },
            ),
            (
                "no colon",
                with(INVITE, "Max-Forwards:", Some("Max-Forwards 70")),
                "",
                SipError::BadHeaderLine {
                    line: 7,
                    expected: "':' after the header name",
                },
            ),
            (
                "name with space",
                with(INVITE, "Max-Forwards:", Some("Max Forwards: 70")),
                "",
                SipError::BadHeaderLine {
                    line: 7,
                    expected: "header name (token)",
                },
            ),
            (
                "continuation first",
                l(&["INVITE sip:a@b SIP/2.0", " Via: x"]),
                "",
                SipError::BadHeaderLine {
                    line: 2,
                    expected: "header name",
                },
            ),
            (
                "bad Via",
                with(INVITE, "Via:", Some("Via: SIP/2.0/WSS")),
                "",
                SipError::BadHeader {
                    header: "Via",
                    field: 1,
                    column: 11,
                    expected: "whitespace before sent-by",
                },
            ),
            (
                "bad second Via value",
                with(INVITE, "Via:", Some("v: SIP/2.0/WS a.invalid, SIP/2.0/WS")),
                "",
                SipError::BadHeader {
                    header: "Via",
                    field: 1,
                    column: 32,
                    expected: "whitespace before sent-by",
                },
            ),
            (
                "bad From",
                with(INVITE, "From:", Some("From: <sip:alice@example.com")),
                "",
                SipError::BadHeader {
                    header: "From",
                    field: 2,
                    column: 1,
                    expected: "'>'",
                },
            ),
            (
                "bad CSeq",
                with(INVITE, "CSeq:", Some("CSeq: one INVITE")),
                "",
                SipError::BadHeader {
                    header: "CSeq",
                    field: 5,
                    column: 0,
                    expected: "sequence number below 2^31",
                },
            ),
            (
                "bad Call-ID",
                with(INVITE, "Call-ID:", Some("Call-ID: a b")),
                "",
                SipError::BadHeader {
                    header: "Call-ID",
                    field: 4,
                    column: 0,
                    expected: "word (Call-ID)",
                },
            ),
            (
                "bad Call-ID host",
                with(INVITE, "Call-ID:", Some("Call-ID: a@")),
                "",
                SipError::BadHeader {
                    header: "Call-ID",
                    field: 4,
                    column: 2,
                    expected: "word after '@' (Call-ID)",
                },
            ),
            (
                "bad Expires",
                with(INVITE, "Expires:", Some("Expires: soon")),
                "",
                SipError::BadHeader {
                    header: "Expires",
                    field: 8,
                    column: 0,
                    expected: "delta-seconds",
                },
            ),
            (
                "huge Max-Forwards",
                with(INVITE, "Max-Forwards:", Some("Max-Forwards: 99999999999")),
                "",
                SipError::BadHeader {
                    header: "Max-Forwards",
                    field: 6,
                    column: 0,
                    expected: "a 32-bit number",
                },
            ),
            (
                "bad Content-Type",
                with(INVITE, "Content-Type:", Some("c: sdp")),
                "",
                SipError::BadHeader {
                    header: "Content-Type",
                    field: 7,
                    column: 3,
                    expected: "'/'",
                },
            ),
            (
                "bad Content-Length",
                with(INVITE, "Content-Length:", Some("l: five")),
                "",
                SipError::BadHeader {
                    header: "Content-Length",
                    field: 8,
                    column: 0,
                    expected: "1*DIGIT",
                },
            ),
            (
                "bad Contact",
                with(INVITE, "Contact:", Some("m: <sip:a@b>;")),
                "",
                SipError::BadHeader {
                    header: "Contact",
                    field: 8,
                    column: 10,
                    expected: "parameter name",
                },
            ),
            (
                "field numbers count Content-Length",
                {
                    let mut v = vec!["INVITE sip:a@b SIP/2.0".to_owned(), "l: 0".to_owned()];
                    v.extend(with(INVITE, "Via:", Some("Via: x")).into_iter().skip(1));
                    v
                },
                "",
                SipError::BadHeader {
                    header: "Via",
                    field: 2,
                    column: 0,
                    expected: "SIP/2.0 protocol",
                },
            ),
            (
                "empty Route",
                with(INVITE, "Route:", Some("Route: ,")),
                "",
                SipError::BadHeader {
                    header: "Route",
                    field: 8,
                    column: 0,
                    expected: "a value",
                },
            ),
            (
                "no Via",
                with(INVITE, "Via:", None),
                "",
                SipError::MissingHeader { header: "Via" },
            ),
            (
                "no From",
                with(INVITE, "From:", None),
                "",
                SipError::MissingHeader { header: "From" },
            ),
            (
                "no To",
                with(INVITE, "To:", None),
                "",
                SipError::MissingHeader { header: "To" },
            ),
            (
                "no Call-ID",
                with(INVITE, "Call-ID:", None),
                "",
                SipError::MissingHeader { header: "Call-ID" },
            ),
            (
                "no CSeq",
                with(INVITE, "CSeq:", None),
                "",
                SipError::MissingHeader { header: "CSeq" },
            ),
            (
                "two Froms",
                with(INVITE, "X:", Some("f: <sip:x@y>")),
                "",
                SipError::DuplicateHeader {
                    header: "From",
                    field: 8,
                },
            ),
            (
                "two CSeqs",
                with(INVITE, "X:", Some("CSeq: 2 INVITE")),
                "",
                SipError::DuplicateHeader {
                    header: "CSeq",
                    field: 8,
                },
            ),
            (
                "two Content-Lengths",
                {
                    let mut v = with(INVITE, "X:", Some("l: 0"));
                    v.push("Content-Length: 0".into());
                    v
                },
                "",
                SipError::DuplicateHeader {
                    header: "Content-Length",
                    field: 9,
                },
            ),
            (
                "CSeq method",
                with(INVITE, "CSeq:", Some("CSeq: 1 BYE")),
                "",
                SipError::CSeqMethodMismatch {
                    method: Method::Invite,
                    cseq: Method::Bye,
                },
            ),
            (
                "Content-Length too big",
                with(INVITE, "Content-Length:", Some("Content-Length: 5")),
                "abc",
                SipError::ContentLengthMismatch {
                    declared: 5,
                    actual: 3,
                },
            ),
            (
                "Content-Length too small",
                with(INVITE, "Content-Length:", Some("Content-Length: 0")),
                "abc",
                SipError::ContentLengthMismatch {
                    declared: 0,
                    actual: 3,
                },
            ),
        ];
        let wrong: Vec<String> = cases
            .into_iter()
            .filter_map(|(what, lines, body, want)| {
                let got = parse_lines(&lines, body);
                (got != Err(want.clone())).then(|| format!("{what}: got {got:?}, want {want:?}"))
            })
            .collect();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn limits_and_encodings() {
        let good = wire(INVITE, "");
        let small = Limits {
            max_message_bytes: good.len() - 1,
            ..Limits::default()
        };
        assert_eq!(
            parse(&good, &small),
            Err(SipError::MessageTooLarge {
                size: good.len(),
                limit: good.len() - 1
            })
        );
        let few = Limits {
            max_headers: 3,
            ..Limits::default()
        };
        assert_eq!(
            parse(&good, &few),
            Err(SipError::TooManyHeaders { limit: 3 })
        );
        let two = Limits {
            max_values: 2,
            ..Limits::default()
        };
        let vias = with(
            INVITE,
            "Via:",
            Some("Via: SIP/2.0/WS a.invalid, SIP/2.0/WS b.invalid"),
        );
        let refs: Vec<&str> = vias.iter().map(String::as_str).collect();
        assert!(parse(&wire(&refs, ""), &two).is_ok());
        let mut three = vias.clone();
        three.insert(1, "v: SIP/2.0/WS c.invalid".into());
        let refs: Vec<&str> = three.iter().map(String::as_str).collect();
        assert_eq!(
            parse(&wire(&refs, ""), &two),
            Err(SipError::TooManyValues {
                header: "Via",
                limit: 2
            })
        );
        let mut bad = wire(INVITE, "");
        let at = bad.windows(5).position(|w| w == b"alice").expect("alice");
        bad[at] = 0xff;
        assert_eq!(
            parse(&bad, &Limits::default()),
            Err(SipError::NotUtf8 { offset: at })
        );
        // A non-UTF-8 body is fine: only the header section must be text.
        let m = parse(
            &[wire(INVITE, "").as_slice(), &[0xff, 0x00]].concat(),
            &Limits::default(),
        )
        .expect("binary body");
        assert_eq!(m.body().as_ref(), &[0xff, 0x00]);
        for empty in [&b""[..], b"\r\n", b"\r\n\r\n"] {
            assert!(parse(empty, &Limits::default()).is_err(), "{empty:?}");
        }
    }

    #[test]
    fn compact_forms_folding_and_unknown_headers() {
        let raw = wire(
            &[
                "\r\nMESSAGE sip:bob@example.com SIP/2.0",
                "v: SIP/2.0/WSS a.invalid;branch=z9hG4bK1",
                "  ;received=192.0.2.1",
                "X-Unknown :  keep   this ; as=is  ",
                "f: \"Alice\" <sip:alice@example.com>;tag=1",
                "t: <sip:bob@example.com>",
                "i: abc@def",
                "CSeq: 7 MESSAGE",
                "m: <sip:alice@a.invalid;transport=ws>;expires=60",
                "k: path",
                "c: text/plain;charset=utf-8",
                "l: 5",
            ],
            "hello",
        );
        let m = parse(&raw, &Limits::default()).expect("parse");
        assert_eq!(m.via().received(), Some("192.0.2.1"));
        assert_eq!(
            m.header("Via"),
            Some("SIP/2.0/WSS a.invalid;branch=z9hG4bK1 ;received=192.0.2.1")
        );
        assert_eq!(m.header("x-unknown"), Some("keep   this ; as=is"));
        assert_eq!(m.header("Supported"), Some("path"));
        assert_eq!(m.header("content-type"), Some("text/plain;charset=utf-8"));
        assert_eq!(m.header("Content-Length"), None);
        assert_eq!(m.from().display_name(), Some("Alice"));
        assert_eq!(m.call_id(), "abc@def");
        assert_eq!(m.contact().and_then(NameAddr::expires), Some(60));
        assert!(m.has_content_type("text/plain"));
        let names: Vec<&str> = m.headers().iter().map(Header::name).collect();
        assert_eq!(
            names,
            ["v", "X-Unknown", "f", "t", "i", "CSeq", "m", "k", "c"]
        );
        let out = m.to_bytes();
        let text = std::str::from_utf8(&out).expect("utf-8");
        assert!(text.starts_with("MESSAGE sip:bob@example.com SIP/2.0\r\nv: SIP/2.0/WSS"));
        assert!(text.contains("\r\nX-Unknown: keep   this ; as=is\r\n"));
        assert_eq!(parse(&out, &Limits::default()).expect("re-parse"), m);
    }

    #[test]
    fn responses_and_wildcards() {
        let raw = wire(
            &[
                "SIP/2.0 200 Very OK ",
                "Via: SIP/2.0/WSS a.invalid;branch=z9hG4bK1, SIP/2.0/UDP b.example.com",
                "From: <sip:alice@example.com>;tag=1",
                "To: <sip:alice@example.com>;tag=2",
                "Call-ID: x",
                "CSeq: 9 REGISTER",
                "Contact: *",
                "Expires: 4294967296",
            ],
            "",
        );
        let m = parse(&raw, &Limits::default()).expect("parse");
        assert_eq!(m.status(), Some(200));
        assert_eq!(m.reason(), Some("Very OK "));
        assert_eq!(*m.method(), Method::Register);
        assert_eq!(m.vias().len(), 2);
        assert!(m.contact_is_wildcard() && m.contacts().is_empty());
        assert_eq!(m.expires(), Some(u32::MAX));
        assert_eq!(m.request_uri(), None);
        let again = parse(&m.to_bytes(), &Limits::default()).expect("re-parse");
        assert_eq!(again, m);
        let no_reason = parse(
            &wire(
                &[
                    "SIP/2.0 180",
                    INVITE[1],
                    INVITE[2],
                    INVITE[3],
                    INVITE[4],
                    INVITE[5],
                ],
                "",
            ),
            &Limits::default(),
        )
        .expect("no reason phrase");
        assert_eq!(no_reason.reason(), Some(""));
        assert!(no_reason.to_bytes().starts_with(b"SIP/2.0 180 \r\n"));
    }

    #[test]
    fn setters_keep_the_message_valid() {
        let mut m = parse(&wire(INVITE, ""), &Limits::default()).expect("parse");
        m.push_header("X-Trace", " 1 ").expect("push");
        assert_eq!(m.header("x-trace"), Some("1"));
        m.push_header("Contact", "<sip:alice@a.invalid;transport=ws>")
            .expect("contact");
        assert_eq!(
            m.contact().map(|c| c.uri().to_string()).as_deref(),
            Some("sip:alice@a.invalid;transport=ws")
        );
        let before = m.clone();
        assert_eq!(
            m.push_header("From", "<sip:x@y>"),
            Err(SipError::DuplicateHeader {
                header: "From",
                field: 10
            })
        );
        assert_eq!(
            m.push_header("l", "3"),
            Err(SipError::ComputedHeader {
                name: "Content-Length"
            })
        );
        assert_eq!(
            m.push_header("Bad Name", "x"),
            Err(SipError::InvalidInput {
                what: "header name (token)"
            })
        );
        assert_eq!(
            m.push_header("X-A", "a\r\nInjected: 1"),
            Err(SipError::InvalidInput {
                what: "header value (no CR or LF)"
            })
        );
        assert_eq!(
            m.remove_header("i"),
            Err(SipError::MissingHeader { header: "Call-ID" })
        );
        assert_eq!(m, before, "failed setters change nothing");
        m.set_header("max-forwards", "69").expect("set");
        assert_eq!(m.max_forwards(), Some(69));
        assert_eq!(m.header_values("Max-Forwards").count(), 1);
        m.set_body(Some("text/plain"), Bytes::from_static(b"hi"))
            .expect("body");
        assert!(m.has_content_type("text/plain") && m.body().as_ref() == b"hi");
        m.set_body(None, Bytes::new()).expect("no body");
        assert_eq!(m.content_type(), None);
        assert_eq!(m.remove_header("X-Trace"), Ok(1));
        assert_eq!(
            parse(&m.to_bytes(), &Limits::default()).expect("re-parse"),
            m
        );
    }

    #[test]
    fn parse_bytes_slices_the_body() {
        let input = Bytes::from(wire(INVITE, "body"));
        let m = parse_bytes(input.clone(), &Limits::default()).expect("parse");
        assert_eq!(m.body().as_ref(), b"body");
        let offset = input.len() - 4;
        assert_eq!(m.body().as_ptr(), input[offset..].as_ptr());
    }
}
