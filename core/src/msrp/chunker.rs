//! Splitting a message into SEND chunks (RFC 4975 sections 5.1 and 7.1.1).

use std::ops::Range;

use bytes::Bytes;

use super::frame::is_ident;
use super::{ByteRange, Continuation, Method, MsrpError, MsrpUri, Request};

/// One chunk to send: its transaction id, its 0-based byte range in the message, and its flag.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChunkPlan {
    /// Transaction id for the SEND carrying this chunk.
    pub transaction_id: String,
    /// 0-based, end-exclusive range of the message this chunk carries.
    pub range: Range<u64>,
    /// `More` for intermediate chunks, `Complete` for the last.
    pub continuation: Continuation,
}

/// Builds the SEND requests of one message: every chunk gets the same To-Path, From-Path,
/// Message-ID, extra headers (e.g. Success-Report, Content-Disposition) and Content-Type, and its
/// own Byte-Range. The caller supplies each body as `Bytes` (read from storage), so nothing is
/// copied and nothing is held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunker {
    message_id: String,
    content_type: String,
    total: Option<u64>,
    chunk_size: u64,
    to_path: Vec<MsrpUri>,
    from_path: Vec<MsrpUri>,
    extra: Vec<(String, String)>,
    open_range_end: bool,
}

impl Chunker {
    /// A chunker for a message of `total` bytes (`None` if unknown) cut into `chunk_size`-byte
    /// chunks (at least 1).
    pub fn new(
        message_id: &str,
        content_type: &str,
        total: Option<u64>,
        chunk_size: u64,
        to_path: Vec<MsrpUri>,
        from_path: Vec<MsrpUri>,
    ) -> Result<Self, MsrpError> {
        if !is_ident(message_id) {
            return Err(MsrpError::BadHeaderValue {
                name: "Message-ID".into(),
                line: 0,
            });
        }
        let chunker = Self {
            message_id: message_id.to_owned(),
            content_type: content_type.to_owned(),
            total,
            chunk_size: chunk_size.max(1),
            to_path,
            from_path,
            extra: Vec::new(),
            open_range_end: false,
        };
        // Build one request now so that every later one is known to be valid.
        chunker.build("probe000", 0..0, Continuation::More, None)?;
        Ok(chunker)
    }

    /// Adds a header to every chunk (before Content-Type), e.g. `Success-Report: yes`.
    pub fn with_header(mut self, name: &str, value: &str) -> Result<Self, MsrpError> {
        self.extra.push((name.to_owned(), value.to_owned()));
        self.build("probe000", 0..0, Continuation::More, None)?;
        Ok(self)
    }

    /// Writes `*` as range-end, as RFC 4975 section 7.1.1 requires of a chunk over 2048 bytes
    /// that may be interrupted. Off by default: over WebSocket a chunk is one message and is never
    /// interrupted (RFC 7977 section 5.1), and an explicit end lets the receiver check the length.
    pub fn with_open_range_end(mut self) -> Self {
        self.open_range_end = true;
        self
    }

    /// The Message-ID.
    pub fn message_id(&self) -> &str {
        &self.message_id
    }

    /// The chunk size.
    pub fn chunk_size(&self) -> u64 {
        self.chunk_size
    }

    /// The chunk ranges and flags of a message of known size, in order; one empty chunk for an
    /// empty message, nothing if the size is unknown.
    pub fn ranges(&self) -> ChunkRanges {
        ChunkRanges {
            next: self.total.map(|_| 0),
            total: self.total.unwrap_or(0),
            chunk_size: self.chunk_size,
        }
    }

    /// The SEND request carrying `range` (0-based, end-exclusive) of the message, with `body`
    /// holding exactly those bytes. The last chunk of a message of known size must be
    /// `Continuation::Complete` and the others `More` (checked); with an unknown size the caller
    /// says which chunk is last.
    pub fn request(
        &self,
        transaction_id: &str,
        range: Range<u64>,
        continuation: Continuation,
        body: Bytes,
    ) -> Result<Request, MsrpError> {
        let expected = range.end.saturating_sub(range.start);
        if body.len() as u64 != expected {
            return Err(MsrpError::BodyRangeMismatch {
                expected,
                actual: body.len() as u64,
            });
        }
        let invalid = MsrpError::InvalidChunkRange {
            start: range.start,
            end: range.end,
        };
        if range.start > range.end {
            return Err(invalid);
        }
        if let Some(total) = self.total {
            let last = range.end == total;
            let flag_ok = match continuation {
                Continuation::Complete => last,
                Continuation::More => !last,
                Continuation::Aborted => true,
            };
            if range.end > total || !flag_ok {
                return Err(invalid);
            }
        }
        let request = self.build(transaction_id, range, continuation, Some(body))?;
        if request.end_line_in_body() {
            return Err(MsrpError::EndLineInBody {
                transaction_id: transaction_id.to_owned(),
            });
        }
        Ok(request)
    }

    /// The request for a [`ChunkPlan`] (e.g. from a [`super::WindowedSender`]).
    pub fn request_for(&self, plan: &ChunkPlan, body: Bytes) -> Result<Request, MsrpError> {
        self.request(
            &plan.transaction_id,
            plan.range.clone(),
            plan.continuation,
            body,
        )
    }

    /// A bodiless SEND ending with `#` that aborts the message after its first `offset` bytes
    /// (Byte-Range `offset+1 - offset / total`, the empty range there).
    pub fn abort(&self, transaction_id: &str, offset: u64) -> Result<Request, MsrpError> {
        if self.total.is_some_and(|t| offset > t) {
            return Err(MsrpError::InvalidChunkRange {
                start: offset,
                end: offset,
            });
        }
        self.build(transaction_id, offset..offset, Continuation::Aborted, None)
    }

    fn build(
        &self,
        transaction_id: &str,
        range: Range<u64>,
        continuation: Continuation,
        body: Option<Bytes>,
    ) -> Result<Request, MsrpError> {
        let mut request = Request::new(
            transaction_id,
            Method::Send,
            self.to_path.clone(),
            self.from_path.clone(),
        )?;
        request.headers.set_message_id(&self.message_id)?;
        let mut byte_range = ByteRange::from_offsets(range, self.total);
        if self.open_range_end {
            byte_range.end = None;
        }
        request.headers.set_byte_range(byte_range);
        for (name, value) in &self.extra {
            request.headers.push(name, value)?;
        }
        request.continuation = continuation;
        match body {
            Some(body) => request.with_body(&self.content_type, body),
            None => {
                // Check the content type even when this request carries none.
                let mut probe = request.headers.clone();
                probe.set_content_type(&self.content_type)?;
                Ok(request)
            }
        }
    }
}

/// Iterator over the chunk ranges of a message of known size; see [`Chunker::ranges`].
#[derive(Clone, Debug)]
pub struct ChunkRanges {
    next: Option<u64>,
    total: u64,
    chunk_size: u64,
}

impl Iterator for ChunkRanges {
    type Item = (Range<u64>, Continuation);

    fn next(&mut self) -> Option<Self::Item> {
        let start = self.next?;
        let end = start.saturating_add(self.chunk_size).min(self.total);
        if end >= self.total {
            self.next = None;
            Some((start..end, Continuation::Complete))
        } else {
            self.next = Some(end);
            Some((start..end, Continuation::More))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msrp::{Frame, Limits, Reassembly, parse_message};

    fn paths() -> (Vec<MsrpUri>, Vec<MsrpUri>) {
        (
            vec![
                "msrps://df7jal23ls0d.invalid:2855/98cjs;ws"
                    .parse()
                    .unwrap(),
            ],
            vec!["msrps://as.example.com:443/s1;ws".parse().unwrap()],
        )
    }

    fn chunker(total: Option<u64>, size: u64) -> Chunker {
        let (to, from) = paths();
        Chunker::new(
            "msg00001",
            "application/octet-stream",
            total,
            size,
            to,
            from,
        )
        .unwrap()
    }

    #[test]
    fn ranges_cover_the_message_with_the_right_flags() {
        use Continuation::*;
        let got: Vec<_> = chunker(Some(10), 4).ranges().collect();
        assert_eq!(got, vec![(0..4, More), (4..8, More), (8..10, Complete)]);
        let got: Vec<_> = chunker(Some(8), 4).ranges().collect();
        assert_eq!(got, vec![(0..4, More), (4..8, Complete)]);
        assert_eq!(
            chunker(Some(0), 4).ranges().collect::<Vec<_>>(),
            vec![(0..0, Complete)]
        );
        assert_eq!(chunker(None, 4).ranges().count(), 0);
        assert_eq!(chunker(Some(3), 0).chunk_size(), 1);
    }

    #[test]
    fn chunks_round_trip_through_the_parser_and_reassemble() {
        let data = Bytes::from_static(b"0123456789");
        let chunker = chunker(Some(10), 4)
            .with_header("Success-Report", "yes")
            .unwrap()
            .with_header("Content-Disposition", "attachment; filename=\"a.bin\"")
            .unwrap();
        let mut reassembly = Reassembly::new("msg00001", 100);
        for (i, (range, flag)) in chunker.ranges().enumerate() {
            let body = data.slice(range.start as usize..range.end as usize);
            let req = chunker
                .request(&format!("tid{i:05}"), range.clone(), flag, body)
                .unwrap();
            let names: Vec<_> = req.headers.iter().map(|h| h.name.clone()).collect();
            assert_eq!(
                names,
                [
                    "To-Path",
                    "From-Path",
                    "Message-ID",
                    "Byte-Range",
                    "Success-Report",
                    "Content-Disposition",
                    "Content-Type"
                ]
            );
            let mut wire = Vec::new();
            req.encode(&mut wire);
            let Frame::Request(parsed) =
                parse_message(&Bytes::from(wire), &Limits::default()).unwrap()
            else {
                panic!()
            };
            assert_eq!(parsed, req);
            assert_eq!(
                parsed.headers.byte_range(),
                Some(ByteRange::from_offsets(range, Some(10)))
            );
            let out = reassembly.on_chunk(&parsed).unwrap();
            assert_eq!(out.complete, flag == Continuation::Complete);
        }
        let open = chunker.clone().with_open_range_end();
        let req = open
            .request("tid00009", 0..4, Continuation::More, data.slice(0..4))
            .unwrap();
        assert_eq!(req.headers.get("Byte-Range"), Some("1-*/10"));
    }

    #[test]
    fn rejects_bad_chunks() {
        let c = chunker(Some(10), 4);
        let body = Bytes::from_static(b"abcd");
        assert_eq!(
            c.request("tid00001", 0..3, Continuation::More, body.clone()),
            Err(MsrpError::BodyRangeMismatch {
                expected: 3,
                actual: 4
            })
        );
        assert_eq!(
            c.request("tid00001", 8..12, Continuation::Complete, body.clone()),
            Err(MsrpError::InvalidChunkRange { start: 8, end: 12 })
        );
        assert_eq!(
            c.request("tid00001", 0..4, Continuation::Complete, body.clone()),
            Err(MsrpError::InvalidChunkRange { start: 0, end: 4 })
        );
        assert_eq!(
            c.request("tid00001", 6..10, Continuation::More, body.clone()),
            Err(MsrpError::InvalidChunkRange { start: 6, end: 10 })
        );
        assert_eq!(
            c.request("bad", 0..4, Continuation::More, body),
            Err(MsrpError::BadTransactionId { offset: 0 })
        );
        let evil = Bytes::from_static(b"x\r\n-------tid00001$\r\n");
        let c = chunker(None, 100);
        assert_eq!(
            c.request("tid00001", 0..evil.len() as u64, Continuation::More, evil),
            Err(MsrpError::EndLineInBody {
                transaction_id: "tid00001".into()
            })
        );
        let (to, from) = paths();
        assert!(Chunker::new("no", "a/b", None, 1, to.clone(), from.clone()).is_err());
        assert!(Chunker::new("msg00001", "nonsense", None, 1, to.clone(), from.clone()).is_err());
        assert!(Chunker::new("msg00001", "a/b", None, 1, vec![], from).is_err());
        assert!(chunker(None, 1).with_header("Bad Name", "x").is_err());
        assert!(
            chunker(None, 1)
                .with_header("Message-ID", "again1")
                .is_err()
        );
    }

    #[test]
    fn abort_chunk_is_bodiless_with_hash() {
        let c = chunker(Some(10), 4);
        let abort = c.abort("tid00007", 4).unwrap();
        assert_eq!(abort.continuation, Continuation::Aborted);
        assert_eq!(abort.body, None);
        assert_eq!(abort.headers.get("Byte-Range"), Some("5-4/10"));
        let mut wire = Vec::new();
        abort.encode(&mut wire);
        assert!(wire.ends_with(b"-------tid00007#\r\n"));
        assert_eq!(
            parse_message(&Bytes::from(wire), &Limits::default()),
            Ok(Frame::Request(abort))
        );
        assert!(c.abort("tid00007", 11).is_err());
    }
}
