//! The serializer: frames into a caller-owned `Vec<u8>`, and a chunk's head and tail separately so
//! its body can be sent without a copy.

use super::parse::find_end_line;
use super::{Frame, Headers, Request, Response};

const DASHES: &[u8] = b"-------";

impl Frame {
    /// Appends the wire form of this frame to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Request(r) => r.encode(out),
            Self::Response(r) => r.encode(out),
        }
    }

    /// The exact number of bytes [`Frame::encode`] appends.
    pub fn encoded_len(&self) -> usize {
        match self {
            Self::Request(r) => r.encoded_len(),
            Self::Response(r) => r.encoded_len(),
        }
    }
}

fn headers_len(headers: &Headers) -> usize {
    headers
        .iter()
        .map(|h| h.name.len() + 2 + h.value.len() + 2)
        .sum()
}

fn encode_headers(headers: &Headers, out: &mut Vec<u8>) {
    for h in headers.iter() {
        out.extend_from_slice(h.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

impl Request {
    /// Appends the whole request to `out`: [`Request::encode_head`], the body,
    /// [`Request::encode_tail`].
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        self.encode_head(out);
        if let Some(body) = &self.body {
            out.extend_from_slice(body);
        }
        self.encode_tail(out);
    }

    /// The exact number of bytes [`Request::encode`] appends.
    pub fn encoded_len(&self) -> usize {
        self.head_len() + self.body.as_ref().map_or(0, |b| b.len()) + self.tail_len()
    }

    /// Appends the start line and headers, plus the blank line if there is a body. Send this, then
    /// the body bytes, then [`Request::encode_tail`], to write a chunk without copying its body.
    pub fn encode_head(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"MSRP ");
        out.extend_from_slice(self.transaction_id.as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.method.as_str().as_bytes());
        out.extend_from_slice(b"\r\n");
        encode_headers(&self.headers, out);
        if self.body.is_some() {
            out.extend_from_slice(b"\r\n");
        }
    }

    /// The number of bytes [`Request::encode_head`] appends.
    pub fn head_len(&self) -> usize {
        5 + self.transaction_id.len()
            + 1
            + self.method.as_str().len()
            + 2
            + headers_len(&self.headers)
            + if self.body.is_some() { 2 } else { 0 }
    }

    /// Appends what follows the body: the CRLF that ends a body (if there is one) and the
    /// end-line, `-------<transaction-id><flag>\r\n`.
    pub fn encode_tail(&self, out: &mut Vec<u8>) {
        if self.body.is_some() {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(DASHES);
        out.extend_from_slice(self.transaction_id.as_bytes());
        out.push(self.continuation.as_char() as u8);
        out.extend_from_slice(b"\r\n");
    }

    fn tail_len(&self) -> usize {
        (if self.body.is_some() { 2 } else { 0 }) + DASHES.len() + self.transaction_id.len() + 3
    }

    /// Whether a receiver would end the body early: the body holds CRLF + `-------<tid>` + a flag +
    /// CRLF, or ends so that the real end-line completes such a sequence. The sender must then use
    /// another transaction id (RFC 4975 section 7.1).
    pub fn end_line_in_body(&self) -> bool {
        let Some(body) = &self.body else {
            return false;
        };
        let tid = &self.transaction_id;
        if find_end_line(body, 0, tid).is_some() {
            return true;
        }
        // A match that starts in the body and ends in the tail: scan the body's last bytes (fewer
        // than one end-line) followed by the tail.
        let keep = body.len().min(2 + DASHES.len() + tid.len() + 2);
        let mut window = body[body.len() - keep..].to_vec();
        self.encode_tail(&mut window);
        find_end_line(&window, 0, tid).is_some_and(|(at, _)| at < keep)
    }
}

impl Response {
    /// Appends the whole response to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        out.extend_from_slice(b"MSRP ");
        out.extend_from_slice(self.transaction_id.as_bytes());
        out.extend_from_slice(format!(" {:03}", self.code).as_bytes());
        if let Some(comment) = &self.comment {
            out.push(b' ');
            out.extend_from_slice(comment.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        encode_headers(&self.headers, out);
        out.extend_from_slice(DASHES);
        out.extend_from_slice(self.transaction_id.as_bytes());
        out.extend_from_slice(b"$\r\n");
    }

    /// The exact number of bytes [`Response::encode`] appends.
    pub fn encoded_len(&self) -> usize {
        let code_len = format!("{:03}", self.code).len();
        5 + self.transaction_id.len()
            + 1
            + code_len
            + self.comment.as_ref().map_or(0, |c| 1 + c.len())
            + 2
            + headers_len(&self.headers)
            + 7
            + self.transaction_id.len()
            + 3
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use crate::msrp::{Continuation, Limits, Method, MsrpUri, parse_message};

    use super::*;

    fn uri(s: &str) -> MsrpUri {
        s.parse().unwrap()
    }

    fn request(body: Option<&'static [u8]>) -> Request {
        let mut req = Request::new(
            "tid12345",
            Method::Send,
            vec![uri("msrp://h/s;tcp")],
            vec![uri("msrp://g/t;ws")],
        )
        .unwrap();
        req.headers.set_message_id("msg12345").unwrap();
        if let Some(body) = body {
            req = req
                .with_body("application/octet-stream", Bytes::from_static(body))
                .unwrap();
        }
        req
    }

    #[test]
    fn encodes_what_parses_back_and_lengths_are_exact() {
        for body in [None, Some(&b""[..]), Some(&b"hello\r\n"[..])] {
            for continuation in [
                Continuation::Complete,
                Continuation::More,
                Continuation::Aborted,
            ] {
                let mut req = request(body);
                req.continuation = continuation;
                let frame = Frame::Request(req);
                let mut out = Vec::new();
                frame.encode(&mut out);
                assert_eq!(out.len(), frame.encoded_len());
                assert_eq!(
                    parse_message(&Bytes::from(out), &Limits::default()),
                    Ok(frame)
                );
            }
        }
        let resp = request(None)
            .response(413, None, &uri("msrp://me/x;ws"))
            .unwrap();
        let frame = Frame::Response(resp);
        let mut out = Vec::new();
        frame.encode(&mut out);
        assert_eq!(out.len(), frame.encoded_len());
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "MSRP tid12345 413 Stop Sending Message\r\nTo-Path: msrp://g/t;ws\r\nFrom-Path: msrp://me/x;ws\r\n-------tid12345$\r\n"
        );
        assert_eq!(
            parse_message(&Bytes::from(out), &Limits::default()),
            Ok(frame)
        );
    }

    #[test]
    fn head_body_tail_is_the_whole_frame() {
        let req = request(Some(b"payload"));
        let mut whole = Vec::new();
        req.encode(&mut whole);
        let mut parts = Vec::new();
        req.encode_head(&mut parts);
        assert_eq!(parts.len(), req.head_len());
        parts.extend_from_slice(req.body.as_deref().unwrap());
        req.encode_tail(&mut parts);
        assert_eq!(parts, whole);
        assert!(whole.ends_with(b"payload\r\n-------tid12345$\r\n"));
    }

    #[test]
    fn detects_the_end_line_inside_a_body() {
        let cases: [(&'static [u8], bool); 7] = [
            (b"plain", false),
            (b"a\r\n-------tid12345$\r\nb", true),
            (b"a\r\n-------tid12345+\r\n", true),
            (b"a\r\n-------tid12345#", true),
            (b"a\r\n-------tid12345$x", false),
            (b"a\r\n-------tid123456$\r\n", false),
            (b"-------tid12345$\r\n", false),
        ];
        for (body, expected) in cases {
            let req = request(Some(body));
            assert_eq!(
                req.end_line_in_body(),
                expected,
                "{}",
                String::from_utf8_lossy(body)
            );
            // When no end-line is found, the frame parses back with the same body.
            if !expected {
                let mut out = Vec::new();
                req.encode(&mut out);
                let parsed = parse_message(&Bytes::from(out), &Limits::default()).unwrap();
                assert_eq!(parsed, Frame::Request(req));
            }
        }
        assert!(!request(None).end_line_in_body());
    }
}
