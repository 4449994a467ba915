//! An incremental `multipart/form-data` parser (RFC 7578 over RFC 2046's multipart syntax), in the
//! manner of httparse: the caller pushes body bytes as they arrive and polls [`Event`]s; part data
//! comes out as slices of what was pushed, as soon as it cannot be the start of a delimiter.
//!
//! Memory is bounded whatever the input: the boundary is at most [`MAX_BOUNDARY`] bytes, a part's
//! header block at most [`Limits::max_header_bytes`], the preamble at most
//! [`Limits::max_preamble_bytes`], and the parser holds back at most one delimiter's length of part
//! data. The epilogue is discarded unread. Header field folding and transfer encodings other than
//! `binary`, `8bit` and `7bit` are refused (RFC 7578 section 4.7 deprecates them).

use bytes::{Bytes, BytesMut};
use memchr::memmem;
use thiserror::Error;

/// The longest boundary RFC 2046 allows.
pub const MAX_BOUNDARY: usize = 70;

/// How much the parser accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of one part's header block.
    pub max_header_bytes: usize,
    /// Header fields of one part.
    pub max_headers: usize,
    /// Bytes before the first boundary.
    pub max_preamble_bytes: usize,
    /// Parts in the body.
    pub max_parts: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_bytes: 8 * 1024,
            max_headers: 16,
            max_preamble_bytes: 8 * 1024,
            max_parts: 16,
        }
    }
}

/// Why a multipart body was refused; offsets count bytes of the body.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MultipartError {
    /// The Content-Type is not `multipart/form-data` with a usable `boundary` parameter.
    #[error(
        "Content-Type is not multipart/form-data with a boundary of 1 to 70 characters: {reason}"
    )]
    BadContentType {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No boundary within the allowed preamble.
    #[error("no boundary within the first {limit} bytes")]
    PreambleTooLong {
        /// [`Limits::max_preamble_bytes`].
        limit: usize,
    },
    /// A boundary line has something other than whitespace after the boundary.
    #[error("text after the boundary at offset {offset}")]
    BadDelimiterLine {
        /// Where the boundary line starts.
        offset: u64,
    },
    /// A part's header block is too long or has too many fields.
    #[error("header block of the part at offset {offset} exceeds {limit} {what}")]
    HeadersTooLarge {
        /// Where the header block starts.
        offset: u64,
        /// The limit exceeded.
        limit: usize,
        /// `bytes` or `fields`.
        what: &'static str,
    },
    /// More parts than [`Limits::max_parts`].
    #[error("more than {limit} parts")]
    TooManyParts {
        /// [`Limits::max_parts`].
        limit: usize,
    },
    /// A header line of a part that does not parse.
    #[error("malformed part header at offset {offset}: {reason}")]
    BadHeader {
        /// Where the header block starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The body ended before the closing boundary.
    #[error("body ends at offset {offset} before the closing boundary")]
    Truncated {
        /// The body's length.
        offset: u64,
    },
}

/// The headers of one part that matter here, and the others as written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartHeaders {
    /// The `name` of its `Content-Disposition: form-data`.
    pub name: String,
    /// The `filename` (or `filename*`, decoded), exactly as sent: untrusted.
    pub filename: Option<String>,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Content-Length`, where the client sent one.
    pub content_length: Option<u64>,
    /// `Content-Range`, as written.
    pub content_range: Option<String>,
    /// Every other field, as written.
    pub other: Vec<(String, String)>,
}

/// What the parser found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A part begins.
    Part(PartHeaders),
    /// Bytes of the current part, in order.
    Data(Bytes),
    /// The current part ended.
    PartEnd,
    /// The closing boundary: the body is complete (anything after it is ignored).
    End,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Preamble,
    AfterBoundary,
    Headers,
    Body,
    Epilogue,
}

/// The parser; see the module documentation.
#[derive(Debug)]
pub struct MultipartParser {
    /// `\r\n--<boundary>`.
    delimiter: Vec<u8>,
    buf: BytesMut,
    /// Body offset of `buf[0]`, counting the CRLF the parser puts before the body.
    offset: u64,
    state: State,
    limits: Limits,
    parts: usize,
    finished: bool,
}

impl MultipartParser {
    /// A parser for a body of this `Content-Type`.
    pub fn new(content_type: &str, limits: Limits) -> Result<Self, MultipartError> {
        let boundary = boundary(content_type)?;
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(boundary.as_bytes());
        // A CRLF in front lets the first boundary be found like the others.
        let mut buf = BytesMut::with_capacity(16 * 1024);
        buf.extend_from_slice(b"\r\n");
        Ok(Self {
            delimiter,
            buf,
            offset: 0,
            state: State::Preamble,
            limits,
            parts: 0,
            finished: false,
        })
    }

    /// Appends body bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.state == State::Epilogue {
            self.offset += bytes.len() as u64;
        } else {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Says the body has ended.
    pub fn finish(&mut self) {
        self.finished = true;
    }

    /// How many body bytes come before the next byte [`MultipartParser::poll`] looks at: right after
    /// an [`Event::Part`], where the part's data starts.
    pub fn position(&self) -> u64 {
        // The CRLF put in front of the body is not the caller's.
        self.offset.saturating_sub(2)
    }

    /// The length of the closing boundary line, `\r\n--<boundary>--`: the least that follows the
    /// last part's data.
    pub fn closing_len(&self) -> u64 {
        self.delimiter.len() as u64 + 2
    }

    /// Whether the closing boundary has been seen.
    pub fn is_complete(&self) -> bool {
        self.state == State::Epilogue
    }

    /// The next event, or `None` when more bytes are needed (or, after [`Event::End`],
    /// never again).
    pub fn poll(&mut self) -> Result<Option<Event>, MultipartError> {
        loop {
            match self.state {
                State::Preamble => {
                    if let Some(at) = memmem::find(&self.buf, &self.delimiter) {
                        self.consume(at + self.delimiter.len());
                        self.state = State::AfterBoundary;
                        continue;
                    }
                    // Keep what could be the start of the delimiter; the rest is preamble.
                    let keep = self.delimiter.len() - 1;
                    let drop = self.buf.len().saturating_sub(keep);
                    self.consume(drop);
                    if self.offset > self.limits.max_preamble_bytes as u64 + 2 {
                        return Err(MultipartError::PreambleTooLong {
                            limit: self.limits.max_preamble_bytes,
                        });
                    }
                    return self.need_more();
                }
                State::AfterBoundary => {
                    if self.buf.len() < 2 {
                        return self.need_more();
                    }
                    if self.buf.starts_with(b"--") {
                        self.consume(self.buf.len());
                        self.state = State::Epilogue;
                        return Ok(Some(Event::End));
                    }
                    let Some(end) = memmem::find(&self.buf, b"\r\n") else {
                        if self.buf.len() > 256 {
                            return Err(self.bad_delimiter_line());
                        }
                        return self.need_more();
                    };
                    // Transport padding (RFC 2046 section 5.1.1) may follow the boundary.
                    if !self.buf[..end].iter().all(|&b| b == b' ' || b == b'\t') {
                        return Err(self.bad_delimiter_line());
                    }
                    self.consume(end + 2);
                    self.parts += 1;
                    if self.parts > self.limits.max_parts {
                        return Err(MultipartError::TooManyParts {
                            limit: self.limits.max_parts,
                        });
                    }
                    self.state = State::Headers;
                }
                State::Headers => {
                    let block_end = if self.buf.starts_with(b"\r\n") {
                        Some(0)
                    } else {
                        memmem::find(&self.buf, b"\r\n\r\n").map(|at| at + 2)
                    };
                    let Some(block_end) = block_end else {
                        if self.buf.len() > self.limits.max_header_bytes {
                            return Err(MultipartError::HeadersTooLarge {
                                offset: self.offset,
                                limit: self.limits.max_header_bytes,
                                what: "bytes",
                            });
                        }
                        return self.need_more();
                    };
                    if block_end > self.limits.max_header_bytes {
                        return Err(MultipartError::HeadersTooLarge {
                            offset: self.offset,
                            limit: self.limits.max_header_bytes,
                            what: "bytes",
                        });
                    }
                    let headers = parse_headers(&self.buf[..block_end], self.offset, &self.limits)?;
                    self.consume(block_end + 2);
                    self.state = State::Body;
                    return Ok(Some(Event::Part(headers)));
                }
                State::Body => {
                    if let Some(at) = memmem::find(&self.buf, &self.delimiter) {
                        if at > 0 {
                            return Ok(Some(Event::Data(self.take(at))));
                        }
                        self.consume(self.delimiter.len());
                        self.state = State::AfterBoundary;
                        return Ok(Some(Event::PartEnd));
                    }
                    let safe = self.safe_prefix();
                    if safe > 0 {
                        return Ok(Some(Event::Data(self.take(safe))));
                    }
                    return self.need_more();
                }
                State::Epilogue => return Ok(None),
            }
        }
    }

    /// How many leading bytes of part data cannot belong to a delimiter: all but the longest tail
    /// that is a prefix of it.
    fn safe_prefix(&self) -> usize {
        let len = self.buf.len();
        let longest = (1..self.delimiter.len().min(len + 1))
            .rev()
            .find(|&n| self.buf[len - n..] == self.delimiter[..n])
            .unwrap_or(0);
        len - longest
    }

    fn need_more(&self) -> Result<Option<Event>, MultipartError> {
        if self.finished {
            Err(MultipartError::Truncated {
                offset: (self.offset + self.buf.len() as u64).saturating_sub(2),
            })
        } else {
            Ok(None)
        }
    }

    fn bad_delimiter_line(&self) -> MultipartError {
        MultipartError::BadDelimiterLine {
            offset: self.offset.saturating_sub(self.delimiter.len() as u64),
        }
    }

    fn consume(&mut self, n: usize) {
        let _ = self.buf.split_to(n);
        self.offset += n as u64;
    }

    fn take(&mut self, n: usize) -> Bytes {
        self.offset += n as u64;
        self.buf.split_to(n).freeze()
    }
}

/// The `boundary` of a `multipart/form-data` Content-Type.
fn boundary(content_type: &str) -> Result<String, MultipartError> {
    let bad = |reason| MultipartError::BadContentType { reason };
    let mut params = split_params(content_type);
    let media = params.next().unwrap_or_default();
    if !media.trim().eq_ignore_ascii_case("multipart/form-data") {
        return Err(bad("not multipart/form-data"));
    }
    let mut found = None;
    for param in params {
        let (name, value) = param_value(param).ok_or(bad("malformed parameter"))?;
        if name.eq_ignore_ascii_case("boundary") {
            if found.is_some() {
                return Err(bad("two boundary parameters"));
            }
            found = Some(value);
        }
    }
    let boundary = found.ok_or(bad("no boundary parameter"))?;
    let valid = (1..=MAX_BOUNDARY).contains(&boundary.len())
        && !boundary.ends_with(' ')
        && boundary
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&b));
    if valid {
        Ok(boundary)
    } else {
        Err(bad("boundary of characters RFC 2046 does not allow"))
    }
}

/// Splits `value; p1=...; p2="...;..."` at the semicolons outside quoted strings.
fn split_params(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let text = rest?;
        let mut quoted = false;
        let mut escaped = false;
        for (i, c) in text.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' if quoted => escaped = true,
                '"' => quoted = !quoted,
                ';' if !quoted => {
                    rest = Some(&text[i + 1..]);
                    return Some(&text[..i]);
                }
                _ => {}
            }
        }
        rest = None;
        Some(text)
    })
}

/// `name=value` or `name="quoted value"` (unescaped), trimmed.
fn param_value(param: &str) -> Option<(&str, String)> {
    let (name, value) = param.split_once('=')?;
    let name = name.trim();
    let value = value.trim();
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b'"') {
        return None;
    }
    let Some(inner) = value.strip_prefix('"') else {
        return (!value.contains(['"', ' '])).then(|| (name, value.to_owned()));
    };
    let mut out = String::new();
    let mut chars = inner.chars();
    loop {
        match chars.next()? {
            '\\' => out.push(chars.next()?),
            '"' => break,
            c => out.push(c),
        }
    }
    chars.as_str().trim().is_empty().then_some((name, out))
}

/// RFC 8187 `UTF-8''percent-encoded` (other charsets are not accepted).
fn ext_value(value: &str) -> Option<String> {
    let (charset, rest) = value.split_once('\'')?;
    let (_language, encoded) = rest.split_once('\'')?;
    if !charset.eq_ignore_ascii_case("utf-8") {
        return None;
    }
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(crate::lex::hex_byte(bytes.get(i + 1..i + 3)?)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn parse_headers(
    block: &[u8],
    offset: u64,
    limits: &Limits,
) -> Result<PartHeaders, MultipartError> {
    let bad = |reason: String| MultipartError::BadHeader { offset, reason };
    let text =
        std::str::from_utf8(block).map_err(|e| bad(format!("not UTF-8 at {}", e.valid_up_to())))?;
    let mut headers = PartHeaders::default();
    let mut disposition = None;
    for (count, line) in text.split_terminator("\r\n").enumerate() {
        if count >= limits.max_headers {
            return Err(MultipartError::HeadersTooLarge {
                offset,
                limit: limits.max_headers,
                what: "fields",
            });
        }
        if line.starts_with([' ', '\t']) {
            return Err(bad("folded header line".into()));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| bad(format!("no colon in {line:?}")))?;
        if name.is_empty() || !name.bytes().all(crate::lex::is_token_char) {
            return Err(bad(format!("bad field name {name:?}")));
        }
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-disposition" => disposition = Some(value),
            "content-type" => headers.content_type = Some(value.to_owned()),
            "content-range" => headers.content_range = Some(value.to_owned()),
            "content-length" => {
                let length = crate::lex::Decimal::U64
                    .parse(value)
                    .map_err(|_| bad(format!("Content-Length {value:?}")))?;
                headers.content_length = Some(length);
            }
            "content-transfer-encoding" => {
                if !["binary", "8bit", "7bit"]
                    .iter()
                    .any(|e| value.eq_ignore_ascii_case(e))
                {
                    return Err(bad(format!(
                        "Content-Transfer-Encoding {value:?} is not supported"
                    )));
                }
            }
            _ => headers.other.push((name.to_owned(), value.to_owned())),
        }
    }
    let disposition = disposition.ok_or_else(|| bad("no Content-Disposition".into()))?;
    let mut params = split_params(disposition);
    if !params
        .next()
        .is_some_and(|kind| kind.trim().eq_ignore_ascii_case("form-data"))
    {
        return Err(bad("Content-Disposition is not form-data".into()));
    }
    let mut name = None;
    let mut filename_ext = None;
    for param in params.filter(|p| !p.trim().is_empty()) {
        let (key, value) = param_value(param)
            .ok_or_else(|| bad(format!("Content-Disposition parameter {param:?}")))?;
        match key.to_ascii_lowercase().as_str() {
            "name" => name = Some(value),
            "filename" => headers.filename = Some(value),
            "filename*" => {
                filename_ext =
                    Some(ext_value(&value).ok_or_else(|| bad(format!("filename* {value:?}")))?)
            }
            _ => {}
        }
    }
    headers.name = name.ok_or_else(|| bad("Content-Disposition has no name".into()))?;
    if filename_ext.is_some() {
        headers.filename = filename_ext;
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: &str = "multipart/form-data; boundary=\"----b0und:ary\"";

    fn body(file: &[u8]) -> Vec<u8> {
        let mut body = b"preamble\r\n------b0und:ary\r\nContent-Disposition: form-data; name=\"tid\"\r\nContent-Type: text/plain\r\n\r\nf81d4fae-7dec\r\n------b0und:ary  \r\nContent-Disposition: form-data; name=\"File\"; filename=\"a \\\"b\\\".bin\"\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes 0-9/10\r\nX-Kept: yes\r\n\r\n".to_vec();
        body.extend_from_slice(file);
        body.extend_from_slice(b"\r\n------b0und:ary--\r\nepilogue ------b0und:ary");
        body
    }

    /// Parses `input` pushed in the given pieces, joining consecutive data of a part.
    fn run(input: &[u8], cuts: &[usize]) -> Result<Vec<Event>, MultipartError> {
        let mut parser = MultipartParser::new(CT, Limits::default())?;
        let mut events: Vec<Event> = Vec::new();
        let mut start = 0;
        for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
            parser.push(&input[start..cut]);
            start = cut;
            if cut == input.len() {
                parser.finish();
            }
            while let Some(event) = parser.poll()? {
                match (events.last_mut(), event) {
                    (Some(Event::Data(held)), Event::Data(more)) => {
                        let mut joined = held.to_vec();
                        joined.extend_from_slice(&more);
                        *held = Bytes::from(joined);
                    }
                    (_, event) => events.push(event),
                }
            }
        }
        Ok(events)
    }

    fn expected(file: &[u8]) -> Vec<Event> {
        vec![
            Event::Part(PartHeaders {
                name: "tid".into(),
                content_type: Some("text/plain".into()),
                ..PartHeaders::default()
            }),
            Event::Data(Bytes::from_static(b"f81d4fae-7dec")),
            Event::PartEnd,
            Event::Part(PartHeaders {
                name: "File".into(),
                filename: Some("a \"b\".bin".into()),
                content_type: Some("application/octet-stream".into()),
                content_range: Some("bytes 0-9/10".into()),
                other: vec![("X-Kept".into(), "yes".into())],
                ..PartHeaders::default()
            }),
            Event::Data(Bytes::copy_from_slice(file)),
            Event::PartEnd,
            Event::End,
        ]
    }

    #[test]
    fn a_form_parses_the_same_split_at_every_byte() {
        // File bytes that look like the start of a delimiter must come through as data.
        let file = b"\r\n----b\r\n";
        let input = body(file);
        let whole = run(&input, &[]).unwrap();
        assert_eq!(whole, expected(file));
        for cut in 0..=input.len() {
            assert_eq!(run(&input, &[cut]).unwrap(), whole, "cut at {cut}");
        }
        let every_byte: Vec<usize> = (1..input.len()).collect();
        assert_eq!(run(&input, &every_byte).unwrap(), whole);
    }

    #[test]
    fn part_data_is_released_before_the_part_ends() {
        let mut parser = MultipartParser::new(CT, Limits::default()).unwrap();
        let input = body(&[7u8; 4096]);
        let head = input.len() - 4096 - 44;
        parser.push(&input[..head + 1000]);
        let mut data = 0;
        while let Some(event) = parser.poll().unwrap() {
            if let Event::Data(bytes) = event {
                data += bytes.len();
            }
        }
        // Only a delimiter's length minus one may be held back.
        assert!(data >= 1000 - 16 - 13, "{data}");
    }

    #[test]
    fn bad_bodies_are_refused_with_the_reason() {
        let file = b"0123456789";
        let input = body(file);
        for end in 0..input.len() - b"\r\nepilogue ------b0und:ary".len() - 2 {
            assert!(
                matches!(
                    run(&input[..end], &[]),
                    Err(MultipartError::Truncated { .. })
                ),
                "truncated at {end}"
            );
        }
        type IsExpected = fn(&MultipartError) -> bool;
        let cases: &[(&[u8], IsExpected)] = &[
            (b"------b0und:ary x\r\n", |e| matches!(e, MultipartError::BadDelimiterLine { .. })),
            (b"------b0und:ary\r\nContent-Type: a\r\n\r\n", |e| matches!(e, MultipartError::BadHeader { .. })),
            (b"------b0und:ary\r\nContent-Disposition: form-data\r\n\r\n", |e| matches!(e, MultipartError::BadHeader { .. })),
            (b"------b0und:ary\r\nContent-Disposition: attachment; name=a\r\n\r\n", |e| matches!(e, MultipartError::BadHeader { .. })),
            (b"------b0und:ary\r\nContent-Disposition: form-data; name=a\r\n folded\r\n\r\n", |e| matches!(e, MultipartError::BadHeader { .. })),
            (b"------b0und:ary\r\nContent-Disposition: form-data; name=a\r\nContent-Transfer-Encoding: base64\r\n\r\n", |e| matches!(e, MultipartError::BadHeader { .. })),
            (b"------b0und:ary\r\nContent-Disposition: form-data; name=a\r\nContent-Length: -1\r\n\r\n", |e| matches!(e, MultipartError::BadHeader { .. })),
            (b"------b0und:ary\r\nBad Name: x\r\n\r\n", |e| matches!(e, MultipartError::BadHeader { .. })),
        ];
        for (input, is_expected) in cases {
            let error = run(input, &[]).expect_err("refused");
            assert!(
                is_expected(&error),
                "{error:?} for {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn sizes_are_bounded() {
        let long_preamble = vec![b'x'; 9000];
        assert!(matches!(
            run(&long_preamble, &[]),
            Err(MultipartError::PreambleTooLong { .. })
        ));
        let mut big_header =
            b"------b0und:ary\r\nContent-Disposition: form-data; name=a\r\nX: ".to_vec();
        big_header.extend(vec![b'y'; 9000]);
        assert!(matches!(
            run(&big_header, &[]),
            Err(MultipartError::HeadersTooLarge { what: "bytes", .. })
        ));
        let mut many = b"------b0und:ary\r\nContent-Disposition: form-data; name=a\r\n".to_vec();
        for _ in 0..16 {
            many.extend_from_slice(b"X: y\r\n");
        }
        many.extend_from_slice(b"\r\n");
        assert!(matches!(
            run(&many, &[]),
            Err(MultipartError::HeadersTooLarge { what: "fields", .. })
        ));
        let mut parts = Vec::new();
        for _ in 0..17 {
            parts.extend_from_slice(
                b"------b0und:ary\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n",
            );
        }
        assert!(matches!(
            run(&parts, &[]),
            Err(MultipartError::TooManyParts { limit: 16 })
        ));
    }

    #[test]
    fn content_types_give_their_boundary() {
        assert_eq!(
            boundary("multipart/form-data; boundary=abc").unwrap(),
            "abc"
        );
        assert_eq!(
            boundary("Multipart/Form-Data;charset=x; BOUNDARY=\"a b\"").unwrap(),
            "a b"
        );
        for bad in [
            "multipart/mixed; boundary=abc",
            "multipart/form-data",
            "multipart/form-data; boundary=",
            "multipart/form-data; boundary=\"a b \"",
            "multipart/form-data; boundary=a\u{e9}",
            "multipart/form-data; boundary=a; boundary=b",
        ] {
            assert!(boundary(bad).is_err(), "{bad}");
        }
        assert!(boundary(&format!("multipart/form-data; boundary={}", "x".repeat(71))).is_err());
    }

    #[test]
    fn filename_star_wins_and_is_decoded() {
        let input = b"--b\r\nContent-Disposition: form-data; name=\"File\"; filename=\"x\"; filename*=UTF-8''%E2%82%AC%20rates.txt\r\n\r\nz\r\n--b--";
        let mut parser =
            MultipartParser::new("multipart/form-data; boundary=b", Limits::default()).unwrap();
        parser.push(input);
        parser.finish();
        let Some(Event::Part(headers)) = parser.poll().unwrap() else {
            panic!("a part")
        };
        assert_eq!(headers.filename.as_deref(), Some("\u{20ac} rates.txt"));
    }
}
