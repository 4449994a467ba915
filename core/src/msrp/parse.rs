//! The incremental MSRP parser (httparse style): give it what has been read so far, it answers
//! `Partial` or a complete frame and how many bytes it took.

use bytes::Bytes;
use memchr::{memchr, memmem};

use super::frame::{is_header_name, is_ident, is_utf8text};
use super::{Continuation, Frame, Headers, Method, MsrpError, Request, Response};

/// Size limits for [`parse`] and [`parse_message`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest start line plus headers (up to and including the blank line or the end-line of a
    /// bodiless frame). Default 16 KiB.
    pub max_header_bytes: usize,
    /// Largest SEND body. A larger one is [`MsrpError::BodyTooLarge`], which the caller answers
    /// with 413. Default 1 MiB. Bodies of other methods are also capped at 10240 bytes (RFC 4975
    /// section 7.1).
    pub max_body_bytes: usize,
    /// How a SEND body is checked against its Byte-Range. Default
    /// [`BodyLengthCheck::Exact`].
    pub body_length: BodyLengthCheck,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_bytes: 16 * 1024,
            max_body_bytes: 1024 * 1024,
            body_length: BodyLengthCheck::Exact,
        }
    }
}

/// How strictly [`parse`] holds a SEND body to its Byte-Range.
///
/// RFC 4975 section 7.3.1 asks receivers to measure the payload rather than trust range-end, and
/// the RFC's own examples miscount: `Hey Bob, are you there?` is 23 bytes under `1-25/25`
/// (section 4), and the bodies of sections 11.2 and 11.6 are longer than their ranges. Whatever the
/// setting, [`super::Reassembly`] places a chunk by its start and its measured length.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BodyLengthCheck {
    /// The body is exactly `range-end - range-start + 1` bytes when range-end is known, and never
    /// runs past the total: otherwise [`MsrpError::BodyLengthMismatch`] or
    /// [`MsrpError::ChunkBeyondTotal`].
    #[default]
    Exact,
    /// As `Exact`, but a body shorter than its range passes (an interrupted chunk, section 7.3.1).
    AllowShorter,
    /// The body is not compared with the Byte-Range (the range itself is still checked). For
    /// reading the RFC examples, or relaying without judging.
    Ignore,
}

/// RFC 4975 section 7.1: bodies of requests other than SEND are at most 10240 octets.
const MAX_NON_SEND_BODY: usize = 10_240;

/// What [`parse`] found.
// `Complete` is the common answer; boxing its frame would cost an allocation per frame.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// Not a whole frame yet: read more and call again with the grown buffer.
    Partial,
    /// A whole frame, which took the first `consumed` bytes of the buffer.
    Complete {
        /// The frame; a request body is a slice of the buffer.
        frame: Frame,
        /// Bytes taken from the start of the buffer.
        consumed: usize,
    },
}

/// Parses one frame from the start of `buf`, the bytes of a stream read so far.
///
/// Returns [`Status::Partial`] until the end-line `-------<transaction-id><flag>\r\n` has arrived;
/// any prefix of a valid frame is `Partial`, never an error. Errors are definite: the frame is
/// malformed whatever follows. A request body is found by scanning for CRLF + end-line (RFC 4975
/// section 7.1 makes the sender keep it out of the body) and is returned as a `Bytes` slice of
/// `buf`, not a copy.
///
/// Each call parses from the start of `buf`; a caller reading a large body in many small pieces
/// should read bigger pieces or use [`parse_message`] on whole WebSocket messages.
pub fn parse(buf: &Bytes, limits: &Limits) -> Result<Status, MsrpError> {
    let data: &[u8] = buf;
    let prefix = b"MSRP ";
    let n = data.len().min(prefix.len());
    if let Some(i) = (0..n).find(|&i| data[i] != prefix[i]) {
        return Err(MsrpError::NotMsrp { offset: i });
    }
    let head_window = &data[..data.len().min(limits.max_header_bytes)];
    let too_large = || {
        if data.len() >= limits.max_header_bytes {
            Err(MsrpError::HeaderTooLarge {
                limit: limits.max_header_bytes,
            })
        } else {
            Ok(Status::Partial)
        }
    };

    // Start line.
    let Some(start_end) = line_end(head_window, 0)? else {
        return too_large();
    };
    let start = parse_start_line(data, start_end)?;
    let tid = start.transaction_id();

    // Header lines, up to a blank line (a body follows) or the end-line (no body).
    let mut headers = Headers::default();
    let mut pos = start_end + 2;
    let mut line_no = 0;
    let head_end = loop {
        let Some(end) = line_end(head_window, pos)? else {
            return too_large();
        };
        line_no += 1;
        let line = &data[pos..end];
        if line.is_empty() {
            break HeadEnd::Body { start: end + 2 };
        }
        if line.starts_with(b"-------") {
            let flag = match_end_line(line, tid).ok_or_else(|| MsrpError::EndLineMismatch {
                expected: tid.to_owned(),
                offset: pos,
            })?;
            break HeadEnd::EndLine {
                flag,
                consumed: end + 2,
            };
        }
        let text = std::str::from_utf8(line).map_err(|e| MsrpError::NonUtf8Header {
            offset: pos + e.valid_up_to(),
        })?;
        let bad_line = || MsrpError::BadHeaderLine {
            line: line_no,
            offset: pos,
        };
        let (name, value) = text.split_once(':').ok_or_else(bad_line)?;
        if !is_header_name(name) || !is_utf8text(value) {
            return Err(bad_line());
        }
        // `hname ":" SP hval`: the value is what follows the one SP.
        headers.push_received(name, value.strip_prefix(' ').unwrap_or(value), line_no)?;
        pos = end + 2;
    };
    headers.check_path_order()?;

    let (tid, method) = match start {
        StartLine::Request { tid, method } => (tid, method),
        StartLine::Response { tid, code, comment } => {
            return match head_end {
                HeadEnd::Body { .. } => Err(MsrpError::UnexpectedBody { offset: pos }),
                HeadEnd::EndLine {
                    flag: Continuation::Complete,
                    consumed,
                } => Ok(Status::Complete {
                    frame: Frame::Response(Response {
                        transaction_id: tid.to_owned(),
                        code,
                        comment: comment.map(str::to_owned),
                        headers,
                    }),
                    consumed,
                }),
                HeadEnd::EndLine { flag, .. } => Err(MsrpError::ResponseNotFinal {
                    flag: flag.as_char(),
                }),
            };
        }
    };
    let mut request = Request {
        transaction_id: tid.to_owned(),
        method,
        headers,
        body: None,
        continuation: Continuation::Complete,
    };

    let body_start = match head_end {
        HeadEnd::Body { start } => start,
        HeadEnd::EndLine { flag, consumed } => {
            request.continuation = flag;
            return Ok(Status::Complete {
                frame: Frame::Request(request),
                consumed,
            });
        }
    };
    request.headers.check_content_type_last()?;

    let limit = if request.method == Method::Send {
        limits.max_body_bytes
    } else {
        limits.max_body_bytes.min(MAX_NON_SEND_BODY)
    };
    let too_large = |request: Request| MsrpError::BodyTooLarge {
        head: Box::new(request),
        limit,
    };
    let Some((body_end, continuation)) = find_end_line(data, body_start, tid) else {
        // Everything after the body start is body, but for a partial end-line at the very end.
        let tail_allowance = 2 + 7 + tid.len() + 3;
        if data.len() - body_start > limit.saturating_add(tail_allowance) {
            return Err(too_large(request));
        }
        return Ok(Status::Partial);
    };
    if body_end - body_start > limit {
        return Err(too_large(request));
    }
    request.body = Some(buf.slice(body_start..body_end));
    request.continuation = continuation;
    check_send_range(&request, limits)?;
    Ok(Status::Complete {
        frame: Frame::Request(request),
        consumed: body_end + 2 + 7 + tid.len() + 3,
    })
}

/// Parses one WebSocket message, which must hold exactly one complete frame (RFC 7977 section
/// 5.1: each chunk in a single message, no message with more than one chunk).
pub fn parse_message(buf: &Bytes, limits: &Limits) -> Result<Frame, MsrpError> {
    match parse(buf, limits)? {
        Status::Partial => Err(MsrpError::Incomplete { len: buf.len() }),
        Status::Complete { frame, consumed } if consumed == buf.len() => Ok(frame),
        Status::Complete { consumed, .. } => Err(MsrpError::TrailingBytes {
            consumed,
            extra: buf.len() - consumed,
        }),
    }
}

/// How the header section ended.
enum HeadEnd {
    /// A blank line: a body starts at `start`.
    Body { start: usize },
    /// The end-line of a bodiless frame, which took the first `consumed` bytes.
    EndLine { flag: Continuation, consumed: usize },
}

enum StartLine<'a> {
    Request {
        tid: &'a str,
        method: Method,
    },
    Response {
        tid: &'a str,
        code: u16,
        comment: Option<&'a str>,
    },
}

impl StartLine<'_> {
    fn transaction_id(&self) -> &str {
        match self {
            Self::Request { tid, .. } | Self::Response { tid, .. } => tid,
        }
    }
}

/// Offset of the CR of the CRLF ending the line that starts at `from`, or `None` if the line is
/// not complete in `window`. A bare LF is an error.
fn line_end(window: &[u8], from: usize) -> Result<Option<usize>, MsrpError> {
    let Some(rest) = window.get(from..) else {
        return Ok(None);
    };
    match memchr(b'\n', rest) {
        None => Ok(None),
        Some(i) if i > 0 && rest[i - 1] == b'\r' => Ok(Some(from + i - 1)),
        Some(i) => Err(MsrpError::BareLineFeed { offset: from + i }),
    }
}

fn parse_start_line(data: &[u8], end: usize) -> Result<StartLine<'_>, MsrpError> {
    let line = &data[..end];
    let text = std::str::from_utf8(line).map_err(|e| MsrpError::NonUtf8Header {
        offset: e.valid_up_to(),
    })?;
    // "MSRP " was checked by the caller.
    let rest = &text[5..];
    let Some((tid, rest)) = rest.split_once(' ') else {
        return Err(MsrpError::BadStartLine { offset: end });
    };
    if !is_ident(tid) {
        return Err(MsrpError::BadTransactionId { offset: 5 });
    }
    let at = 5 + tid.len() + 1;
    let bytes = rest.as_bytes();
    if bytes.first().is_some_and(u8::is_ascii_digit) {
        // resp-start = "MSRP" SP transact-id SP status-code [SP comment]
        let code_ok = bytes.len() >= 3
            && bytes[..3].iter().all(u8::is_ascii_digit)
            && (bytes.len() == 3 || bytes[3] == b' ');
        if !code_ok {
            return Err(MsrpError::BadStartLine { offset: at });
        }
        let code = rest[..3]
            .parse()
            .map_err(|_| MsrpError::BadStartLine { offset: at })?;
        let comment = rest.get(4..).filter(|_| bytes.len() > 3);
        if comment.is_some_and(|c| !is_utf8text(c)) {
            return Err(MsrpError::BadStartLine { offset: at + 4 });
        }
        return Ok(StartLine::Response { tid, code, comment });
    }
    let method = Method::from_token(rest).map_err(|_| MsrpError::BadMethod { offset: at })?;
    Ok(StartLine::Request { tid, method })
}

/// The flag of `line` if it is exactly `-------<tid><flag>`.
fn match_end_line(line: &[u8], tid: &str) -> Option<Continuation> {
    let rest = line
        .strip_prefix(b"-------")?
        .strip_prefix(tid.as_bytes())?;
    match rest {
        [flag] => Continuation::from_byte(*flag),
        _ => None,
    }
}

/// Finds the first CRLF + `-------<tid><flag>` CRLF at or after `body_start`; returns the body end
/// (the CRLF's offset) and the flag. `None` if it has not fully arrived.
pub(crate) fn find_end_line(
    data: &[u8],
    body_start: usize,
    tid: &str,
) -> Option<(usize, Continuation)> {
    let mut needle = Vec::with_capacity(9 + tid.len());
    needle.extend_from_slice(b"\r\n-------");
    needle.extend_from_slice(tid.as_bytes());
    let finder = memmem::Finder::new(&needle);
    let mut from = body_start;
    // Each pass moves `from` forward, so the loop ends within the input.
    while let Some(i) = finder.find(data.get(from..)?) {
        let at = from + i;
        let flag_at = at + needle.len();
        let tail = data.get(flag_at..flag_at + 3)?;
        if let Some(flag) = Continuation::from_byte(tail[0])
            && &tail[1..] == b"\r\n"
        {
            return Some((at, flag));
        }
        // The tid continued, or the flag is not one: that was body text.
        from = at + 1;
    }
    None
}

/// Byte-Range checks that need the body: a SEND body must fit its range and total.
fn check_send_range(request: &Request, limits: &Limits) -> Result<(), MsrpError> {
    let Some(range) = request.headers.byte_range() else {
        return Ok(());
    };
    range
        .check()
        .map_err(|problem| MsrpError::ContradictoryByteRange { range, problem })?;
    // A REPORT's range describes the reported bytes, not its body; an aborting sender may have cut
    // its last chunk short, and the message is dropped anyway.
    if request.method != Method::Send || request.continuation == Continuation::Aborted {
        return Ok(());
    }
    if limits.body_length == BodyLengthCheck::Ignore {
        return Ok(());
    }
    let actual = request.body.as_ref().map_or(0, |b| b.len() as u64);
    if let Some(declared) = range.declared_len() {
        let shorter_ok = limits.body_length == BodyLengthCheck::AllowShorter;
        if actual > declared || (actual < declared && !shorter_ok) {
            return Err(MsrpError::BodyLengthMismatch {
                range,
                declared,
                actual,
            });
        }
    }
    if let Some(total) = range.total {
        // `check` made start >= 1. A chunk whose end is past u64::MAX is past any total.
        match (range.start - 1).checked_add(actual) {
            Some(end) if end <= total => {}
            end => {
                return Err(MsrpError::ChunkBeyondTotal {
                    end: end.unwrap_or(u64::MAX),
                    total,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msrp::{ByteRange, FailureReport, RangeProblem};

    const SEND: &[u8] = b"MSRP a786hjs2 SEND\r\n\
To-Path: msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp\r\n\
From-Path: msrp://atlanta.example.com:7654/jshA7weztas;tcp\r\n\
Message-ID: 87652491\r\n\
Byte-Range: 1-23/23\r\n\
Success-Report: yes\r\n\
X-Unknown:  kept  as written \r\n\
Content-Type: text/plain\r\n\
\r\n\
Hey Bob, are you there?\r\n\
-------a786hjs2$\r\n";

    const OK: &[u8] = b"MSRP a786hjs2 200 OK\r\n\
To-Path: msrp://atlanta.example.com:7654/jshA7weztas;tcp\r\n\
From-Path: msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp\r\n\
-------a786hjs2$\r\n";

    fn run(input: &[u8]) -> Result<Status, MsrpError> {
        parse(&Bytes::copy_from_slice(input), &Limits::default())
    }

    fn complete(input: &[u8]) -> (Frame, usize) {
        match run(input) {
            Ok(Status::Complete { frame, consumed }) => (frame, consumed),
            other => panic!("{other:?} for {}", String::from_utf8_lossy(input)),
        }
    }

    fn request(input: &[u8]) -> Request {
        match complete(input).0 {
            Frame::Request(r) => r,
            other => panic!("{other:?}"),
        }
    }

    fn err(input: &[u8]) -> MsrpError {
        match run(input) {
            Err(e) => e,
            other => panic!(
                "expected an error, got {other:?} for {}",
                String::from_utf8_lossy(input)
            ),
        }
    }

    fn with(base: &[u8], from: &str, to: &str) -> Vec<u8> {
        String::from_utf8(base.to_vec())
            .unwrap()
            .replacen(from, to, 1)
            .into_bytes()
    }

    #[test]
    fn parses_a_send_with_typed_headers_and_a_body_slice() {
        let buf = Bytes::from_static(SEND);
        let Ok(Status::Complete {
            frame: Frame::Request(req),
            consumed,
        }) = parse(&buf, &Limits::default())
        else {
            panic!()
        };
        assert_eq!(consumed, SEND.len());
        assert_eq!(req.transaction_id, "a786hjs2");
        assert_eq!(req.method, Method::Send);
        assert_eq!(req.continuation, Continuation::Complete);
        assert_eq!(req.headers.to_path()[0].host, "biloxi.example.com");
        assert_eq!(req.headers.from_path()[0].port, Some(7654));
        assert_eq!(req.message_id(), Some("87652491"));
        assert_eq!(req.headers.byte_range(), Some(ByteRange::whole(23)));
        assert_eq!(req.headers.content_type(), Some("text/plain"));
        assert_eq!(req.headers.success_report(), Some(true));
        assert_eq!(req.failure_report(), FailureReport::Yes);
        assert_eq!(req.headers.get("x-unknown"), Some(" kept  as written "));
        let body = req.body.unwrap();
        assert_eq!(&body[..], b"Hey Bob, are you there?");
        // A slice of the input, not a copy.
        assert_eq!(body.as_ptr(), buf[SEND.len() - 43..].as_ptr());
    }

    #[test]
    fn parses_a_response() {
        let (frame, consumed) = complete(OK);
        assert_eq!(consumed, OK.len());
        let Frame::Response(resp) = frame else {
            panic!()
        };
        assert_eq!((resp.code, resp.comment.as_deref()), (200, Some("OK")));
        assert!(resp.is_success());
        let bare = with(OK, "200 OK", "481");
        let Frame::Response(resp) = complete(&bare).0 else {
            panic!()
        };
        assert_eq!((resp.code, resp.comment), (481, None));
    }

    #[test]
    fn every_prefix_of_a_valid_frame_is_partial() {
        for frame in [SEND, OK] {
            for cut in 0..frame.len() {
                assert_eq!(run(&frame[..cut]), Ok(Status::Partial), "cut at {cut}");
            }
        }
    }

    #[test]
    fn consumed_stops_at_the_frame_and_back_to_back_frames_parse() {
        let mut stream = SEND.to_vec();
        stream.extend_from_slice(OK);
        stream.extend_from_slice(b"MSRP x");
        let buf = Bytes::from(stream);
        let Ok(Status::Complete { consumed, .. }) = parse(&buf, &Limits::default()) else {
            panic!()
        };
        assert_eq!(consumed, SEND.len());
        let rest = buf.slice(consumed..);
        let Ok(Status::Complete {
            consumed: second, ..
        }) = parse(&rest, &Limits::default())
        else {
            panic!()
        };
        assert_eq!(second, OK.len());
        assert_eq!(
            parse(&rest.slice(second..), &Limits::default()),
            Ok(Status::Partial)
        );
    }

    #[test]
    fn bodies_and_bodiless_requests() {
        let bodiless = b"MSRP abcd SEND\r\nTo-Path: msrp://h/s;tcp\r\nFrom-Path: msrp://g/t;tcp\r\nMessage-ID: m123\r\n-------abcd+\r\n";
        let req = request(bodiless);
        assert_eq!((req.body, req.continuation), (None, Continuation::More));
        let empty = b"MSRP abcd SEND\r\nTo-Path: msrp://h/s;tcp\r\nFrom-Path: msrp://g/t;tcp\r\nByte-Range: 1-0/0\r\nContent-Type: text/plain\r\n\r\n\r\n-------abcd$\r\n";
        assert_eq!(request(empty).body.as_deref(), Some(&b""[..]));
        // Text that looks like the end-line but is not one stays in the body.
        let tricky = b"MSRP abcd SEND\r\nTo-Path: msrp://h/s;tcp\r\nFrom-Path: msrp://g/t;tcp\r\nContent-Type: a/b\r\n\r\nx\r\n-------abcde$\r\n-------abcd!\r\n-------abcd$x\r\n-------abcd#\r\n";
        let req = request(tricky);
        assert_eq!(
            req.body.as_deref(),
            Some(&b"x\r\n-------abcde$\r\n-------abcd!\r\n-------abcd$x"[..])
        );
        assert_eq!(req.continuation, Continuation::Aborted);
        let binary = [&b"MSRP abcd SEND\r\nTo-Path: msrp://h/s;tcp\r\nFrom-Path: msrp://g/t;tcp\r\nContent-Type: a/b\r\n\r\n"[..], &[0, 255, 13, 10, 0xc3], b"\r\n-------abcd$\r\n"].concat();
        assert_eq!(
            request(&binary).body.as_deref(),
            Some(&[0, 255, 13, 10, 0xc3][..])
        );
    }

    #[test]
    fn errors_carry_what_and_where() {
        let long_tid = format!("MSRP {} SEND\r\n", "a".repeat(33));
        let cases: Vec<(Vec<u8>, MsrpError)> = vec![
            (b"HTTP/1.1 200 OK\r\n".to_vec(), MsrpError::NotMsrp { offset: 0 }),
            (b"MSRQ".to_vec(), MsrpError::NotMsrp { offset: 3 }),
            (b"MSRP abcd\r\n".to_vec(), MsrpError::BadStartLine { offset: 9 }),
            (b"MSRP abc SEND\r\n".to_vec(), MsrpError::BadTransactionId { offset: 5 }),
            (long_tid.into_bytes(), MsrpError::BadTransactionId { offset: 5 }),
            (b"MSRP ab_c SEND\r\n".to_vec(), MsrpError::BadTransactionId { offset: 5 }),
            (b"MSRP abcd send\r\n".to_vec(), MsrpError::BadMethod { offset: 10 }),
            (b"MSRP abcd 20 OK\r\n".to_vec(), MsrpError::BadStartLine { offset: 10 }),
            (b"MSRP abcd 2000\r\n".to_vec(), MsrpError::BadStartLine { offset: 10 }),
            (b"MSRP abcd 200 O\x01K\r\n".to_vec(), MsrpError::BadStartLine { offset: 14 }),
            (b"MSRP abcd SEND\n".to_vec(), MsrpError::BareLineFeed { offset: 14 }),
            (b"MSRP abcd SEND\r\nTo-Path: msrp://h/s;tcp\n".to_vec(), MsrpError::BareLineFeed { offset: 39 }),
            (b"MSRP abcd SEND\r\nTo-Path: msrp://h/\xffs;tcp\r\n".to_vec(), MsrpError::NonUtf8Header { offset: 34 }),
            (b"MSRP \xffbcd SEND\r\n".to_vec(), MsrpError::NonUtf8Header { offset: 5 }),
            (b"MSRP abcd SEND\r\nTo-Path msrp://h/s;tcp\r\n".to_vec(), MsrpError::BadHeaderLine { line: 1, offset: 16 }),
            (b"MSRP abcd SEND\r\n-Bad: x\r\n".to_vec(), MsrpError::BadHeaderLine { line: 1, offset: 16 }),
            (b"MSRP abcd SEND\r\nX: a\x7fb\r\n".to_vec(), MsrpError::BadHeaderLine { line: 1, offset: 16 }),
            (b"MSRP abcd SEND\r\nTo-Path: msrp://h/s\r\n".to_vec(), MsrpError::BadPath { name: "To-Path".into(), line: 1, kind: crate::msrp::UriErrorKind::MissingTransport, at: 10 }),
            (b"MSRP abcd SEND\r\nTo-Path: msrp://h/s;tcp msrp://h:x/s;tcp\r\n".to_vec(), MsrpError::BadPath { name: "To-Path".into(), line: 1, kind: crate::msrp::UriErrorKind::Port, at: 24 }),
            (b"MSRP abcd SEND\r\nTo-Path: \r\n".to_vec(), MsrpError::BadHeaderValue { name: "To-Path".into(), line: 1 }),
            (b"MSRP abcd SEND\r\nMessage-ID: a\r\n".to_vec(), MsrpError::BadHeaderValue { name: "Message-ID".into(), line: 1 }),
            (b"MSRP abcd SEND\r\nByte-Range: 1-x/3\r\n".to_vec(), MsrpError::BadHeaderValue { name: "Byte-Range".into(), line: 1 }),
            (b"MSRP abcd SEND\r\nsuccess-report: maybe\r\n".to_vec(), MsrpError::BadHeaderValue { name: "success-report".into(), line: 1 }),
            (b"MSRP abcd SEND\r\nFailure-Report: often\r\n".to_vec(), MsrpError::BadHeaderValue { name: "Failure-Report".into(), line: 1 }),
            (b"MSRP abcd SEND\r\nStatus: 200 OK\r\n".to_vec(), MsrpError::BadHeaderValue { name: "Status".into(), line: 1 }),
            (b"MSRP abcd SEND\r\nContent-Type: text\r\n".to_vec(), MsrpError::BadHeaderValue { name: "Content-Type".into(), line: 1 }),
            (b"MSRP abcd SEND\r\nMessage-ID: abcd\r\nMessage-ID: abce\r\n".to_vec(), MsrpError::DuplicateHeader { name: "Message-ID".into(), line: 2 }),
            (b"MSRP abcd SEND\r\nMessage-ID: abcd\r\n-------abcd$\r\n".to_vec(), MsrpError::MissingToPath),
            (b"MSRP abcd SEND\r\nTo-Path: msrp://h/s;tcp\r\n-------abcd$\r\n".to_vec(), MsrpError::MissingFromPath),
            (b"MSRP abcd SEND\r\nFrom-Path: msrp://h/s;tcp\r\nTo-Path: msrp://h/s;tcp\r\n-------abcd$\r\n".to_vec(), MsrpError::ToPathNotFirst { line: 2 }),
            (b"MSRP abcd SEND\r\nTo-Path: msrp://h/s;tcp\r\nX: y\r\nFrom-Path: msrp://h/s;tcp\r\n-------abcd$\r\n".to_vec(), MsrpError::FromPathNotSecond { line: 3 }),
            (b"MSRP abcd SEND\r\nTo-Path: msrp://h/s;tcp\r\nFrom-Path: msrp://h/s;tcp\r\n-------abce$\r\n".to_vec(), MsrpError::EndLineMismatch { expected: "abcd".into(), offset: 68 }),
            (b"MSRP abcd SEND\r\nTo-Path: msrp://h/s;tcp\r\nFrom-Path: msrp://h/s;tcp\r\n-------abcd\r\n".to_vec(), MsrpError::EndLineMismatch { expected: "abcd".into(), offset: 68 }),
            (b"MSRP abcd SEND\r\nTo-Path: msrp://h/s;tcp\r\nFrom-Path: msrp://h/s;tcp\r\n\r\nbody".to_vec(), MsrpError::MissingContentType),
            (b"MSRP abcd SEND\r\nTo-Path: msrp://h/s;tcp\r\nFrom-Path: msrp://h/s;tcp\r\nContent-Type: a/b\r\nX: y\r\n\r\n".to_vec(), MsrpError::ContentTypeNotLast { line: 3 }),
            (b"MSRP abcd 200 OK\r\nTo-Path: msrp://h/s;tcp\r\nFrom-Path: msrp://h/s;tcp\r\n\r\n".to_vec(), MsrpError::UnexpectedBody { offset: 70 }),
            (b"MSRP abcd 200 OK\r\nTo-Path: msrp://h/s;tcp\r\nFrom-Path: msrp://h/s;tcp\r\n-------abcd+\r\n".to_vec(), MsrpError::ResponseNotFinal { flag: '+' }),
        ];
        let wrong: Vec<_> = cases
            .iter()
            .filter(|(input, expected)| &err(input) != expected)
            .map(|(input, _)| format!("{:?} -> {:?}", String::from_utf8_lossy(input), err(input)))
            .collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn byte_range_contradictions_are_typed() {
        let chunk = |range: &str, body: &str, flag: char| {
            format!(
                "MSRP abcd SEND\r\nTo-Path: msrp://h/s;tcp\r\nFrom-Path: msrp://g/t;tcp\r\nByte-Range: {range}\r\nContent-Type: a/b\r\n\r\n{body}\r\n-------abcd{flag}\r\n"
            )
            .into_bytes()
        };
        let r = |s: &str| s.parse::<ByteRange>().unwrap();
        let cases = [
            (
                "0-3/3",
                "abc",
                MsrpError::ContradictoryByteRange {
                    range: r("0-3/3"),
                    problem: RangeProblem::StartIsZero,
                },
            ),
            (
                "5-3/9",
                "",
                MsrpError::ContradictoryByteRange {
                    range: r("5-3/9"),
                    problem: RangeProblem::EndBeforeStart,
                },
            ),
            (
                "1-10/9",
                "abc",
                MsrpError::ContradictoryByteRange {
                    range: r("1-10/9"),
                    problem: RangeProblem::EndBeyondTotal,
                },
            ),
            (
                "11-*/9",
                "",
                MsrpError::ContradictoryByteRange {
                    range: r("11-*/9"),
                    problem: RangeProblem::StartBeyondTotal,
                },
            ),
            (
                "1-4/9",
                "abc",
                MsrpError::BodyLengthMismatch {
                    range: r("1-4/9"),
                    declared: 4,
                    actual: 3,
                },
            ),
            (
                "1-2/9",
                "abc",
                MsrpError::BodyLengthMismatch {
                    range: r("1-2/9"),
                    declared: 2,
                    actual: 3,
                },
            ),
            (
                "8-*/9",
                "abc",
                MsrpError::ChunkBeyondTotal { end: 10, total: 9 },
            ),
            // Ranges at the top of u64: no overflow, a typed error.
            (
                "1-18446744073709551615/*",
                "abc",
                MsrpError::BodyLengthMismatch {
                    range: r("1-18446744073709551615/*"),
                    declared: u64::MAX,
                    actual: 3,
                },
            ),
            (
                "18446744073709551615-*/18446744073709551615",
                "abc",
                MsrpError::ChunkBeyondTotal {
                    end: u64::MAX,
                    total: u64::MAX,
                },
            ),
            (
                "18446744073709551614-18446744073709551615/18446744073709551615",
                "abc",
                MsrpError::BodyLengthMismatch {
                    range: r("18446744073709551614-18446744073709551615/18446744073709551615"),
                    declared: 2,
                    actual: 3,
                },
            ),
        ];
        for (range, body, expected) in cases {
            assert_eq!(err(&chunk(range, body, '$')), expected, "{range}");
        }
        for ok in [
            ("1-3/3", "abc"),
            ("1-*/*", "abc"),
            ("4-*/6", "abc"),
            ("1-0/0", ""),
            ("7-9/*", "abc"),
            (
                "18446744073709551613-18446744073709551615/18446744073709551615",
                "abc",
            ),
            ("18446744073709551613-*/*", "abc"),
        ] {
            request(&chunk(ok.0, ok.1, '+'));
        }
        // Short bodies pass when allowed, long ones only unchecked; aborted chunks are not measured.
        let lenient = Limits {
            body_length: BodyLengthCheck::AllowShorter,
            ..Limits::default()
        };
        let short = Bytes::from(chunk("1-4/9", "abc", '$'));
        assert!(matches!(
            parse(&short, &lenient),
            Ok(Status::Complete { .. })
        ));
        let long = Bytes::from(chunk("1-2/9", "abc", '$'));
        assert!(matches!(
            parse(&long, &lenient),
            Err(MsrpError::BodyLengthMismatch { .. })
        ));
        let ignore = Limits {
            body_length: BodyLengthCheck::Ignore,
            ..Limits::default()
        };
        assert!(matches!(parse(&long, &ignore), Ok(Status::Complete { .. })));
        let beyond = Bytes::from(chunk("8-*/9", "abc", '$'));
        assert!(matches!(
            parse(&beyond, &ignore),
            Ok(Status::Complete { .. })
        ));
        let contradictory = Bytes::from(chunk("5-3/9", "", '$'));
        assert!(matches!(
            parse(&contradictory, &ignore),
            Err(MsrpError::ContradictoryByteRange { .. })
        ));
        request(&chunk("1-9/9", "abc", '#'));
        // A REPORT's range is about the reported bytes, not its (absent) body.
        request(b"MSRP abcd REPORT\r\nTo-Path: msrp://h/s;tcp\r\nFrom-Path: msrp://g/t;tcp\r\nMessage-ID: m123\r\nByte-Range: 1-106/106\r\nStatus: 000 200 OK\r\n-------abcd$\r\n");
    }

    #[test]
    fn limits_bound_headers_and_bodies() {
        let limits = Limits {
            max_header_bytes: 64,
            max_body_bytes: 8,
            ..Limits::default()
        };
        let long_header = [&b"MSRP abcd SEND\r\nX: "[..], &[b'y'; 100]].concat();
        assert_eq!(
            parse(&Bytes::from(long_header.clone()), &limits),
            Err(MsrpError::HeaderTooLarge { limit: 64 })
        );
        assert_eq!(
            parse(&Bytes::from(long_header[..63].to_vec()), &limits),
            Ok(Status::Partial)
        );

        let head = b"MSRP abcd SEND\r\nTo-Path: msrp://h/s;tcp\r\nFrom-Path: msrp://g/t;tcp\r\nContent-Type: a/b\r\n\r\n";
        let limits = Limits {
            max_body_bytes: 8,
            ..Limits::default()
        };
        let at_limit = [&head[..], b"12345678\r\n-------abcd$\r\n"].concat();
        assert!(matches!(
            parse(&Bytes::from(at_limit), &limits),
            Ok(Status::Complete { .. })
        ));
        let over = [&head[..], b"123456789\r\n-------abcd$\r\n"].concat();
        let Err(MsrpError::BodyTooLarge {
            head: partial,
            limit: 8,
        }) = parse(&Bytes::from(over), &limits)
        else {
            panic!()
        };
        assert_eq!(partial.body, None);
        assert_eq!(partial.transaction_id, "abcd");
        // Without an end-line in sight, the error comes as soon as the body cannot fit.
        let streaming = [&head[..], &[b'z'; 8 + 2 + 7 + 4 + 3]].concat();
        assert_eq!(
            parse(&Bytes::from(streaming.clone()), &limits),
            Ok(Status::Partial)
        );
        let streaming = [&streaming[..], b"z"].concat();
        assert!(matches!(
            parse(&Bytes::from(streaming), &limits),
            Err(MsrpError::BodyTooLarge { .. })
        ));
        // Non-SEND bodies are capped at 10240 bytes whatever the limit.
        let big = [&b"MSRP abcd NICKNAME\r\nTo-Path: msrp://h/s;tcp\r\nFrom-Path: msrp://g/t;tcp\r\nContent-Type: a/b\r\n\r\n"[..], &vec![b'n'; 10_241], b"\r\n-------abcd$\r\n"].concat();
        assert!(matches!(
            parse(&Bytes::from(big), &Limits::default()),
            Err(MsrpError::BodyTooLarge { limit: 10_240, .. })
        ));
    }

    #[test]
    fn parse_message_wants_exactly_one_frame() {
        let limits = Limits::default();
        assert!(parse_message(&Bytes::from_static(OK), &limits).is_ok());
        assert_eq!(
            parse_message(&Bytes::from_static(&OK[..10]), &limits),
            Err(MsrpError::Incomplete { len: 10 })
        );
        let two = Bytes::from([OK, OK].concat());
        assert_eq!(
            parse_message(&two, &limits),
            Err(MsrpError::TrailingBytes {
                consumed: OK.len(),
                extra: OK.len()
            })
        );
        assert_eq!(
            parse_message(&Bytes::from_static(b"GET /"), &limits),
            Err(MsrpError::NotMsrp { offset: 0 })
        );
    }
}
