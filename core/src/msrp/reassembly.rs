//! Reassembly of chunked messages: which byte ranges have arrived, without holding any bytes.

use std::ops::Range;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{Continuation, Method, MsrpError, Request};
use crate::ranges::RangeSet;

/// Why a message was aborted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AbortReason {
    /// The sender sent a chunk ending with `#`.
    SenderAborted,
    /// The receiver stopped it with this status (413 for a message too large or unwanted).
    Status(u16),
}

/// Where a [`Reassembly`] stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReassemblyState {
    /// Chunks are still missing (or the total is unknown).
    InProgress,
    /// Every byte of the message has arrived.
    Complete,
    /// The message was aborted; further chunks are errors.
    Aborted {
        /// Why.
        reason: AbortReason,
    },
}

/// What one chunk changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkOutcome {
    /// The chunk's own 0-based range in the message.
    pub chunk: Range<u64>,
    /// Sub-ranges of `chunk` no earlier chunk covered: write these to storage.
    pub new_ranges: Vec<Range<u64>>,
    /// Whether the whole message has now arrived.
    pub complete: bool,
    /// Whether this chunk aborted the message (`#`).
    pub aborted: bool,
}

impl ChunkOutcome {
    /// The parts of `body` (the chunk's body) that fall in `new_ranges`, each with its 0-based
    /// offset in the message; slices of `body`, not copies.
    pub fn new_slices<'a>(&'a self, body: &'a Bytes) -> impl Iterator<Item = (u64, Bytes)> + 'a {
        self.new_ranges.iter().filter_map(move |r| {
            let from = usize::try_from(r.start - self.chunk.start).ok()?;
            let to = usize::try_from(r.end - self.chunk.start).ok()?;
            (to <= body.len()).then(|| (r.start, body.slice(from..to)))
        })
    }
}

/// Reassembly state for one Message-ID: the total size once known, which ranges have arrived, and
/// whether the message completed or was aborted. It holds no body bytes: the caller writes
/// [`ChunkOutcome::new_ranges`] to storage, so memory stays bounded by the range cap.
///
/// RFC 4975 section 7.3.1 says a later overlapping chunk should win; here the first bytes written
/// stay and only new ranges are reported, which suits write-once chunk storage. A caller that wants
/// last-wins writes all of [`ChunkOutcome::chunk`] instead.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reassembly {
    message_id: String,
    total: Option<u64>,
    max_total: u64,
    received: RangeSet,
    state: ReassemblyState,
}

impl Reassembly {
    /// A reassembly for `message_id` accepting messages of up to `max_total` bytes, with the
    /// default range cap.
    pub fn new(message_id: &str, max_total: u64) -> Self {
        Self::with_ranges(message_id, max_total, RangeSet::new())
    }

    /// A reassembly that records ranges in `received` (pass a set with its own cap, or one
    /// restored from storage).
    pub fn with_ranges(message_id: &str, max_total: u64, received: RangeSet) -> Self {
        Self {
            message_id: message_id.to_owned(),
            total: None,
            max_total,
            received,
            state: ReassemblyState::InProgress,
        }
    }

    /// The Message-ID.
    pub fn message_id(&self) -> &str {
        &self.message_id
    }

    /// The total size, once a chunk declared it or a `$` chunk ended the message.
    pub fn total(&self) -> Option<u64> {
        self.total
    }

    /// The received ranges.
    pub fn received(&self) -> &RangeSet {
        &self.received
    }

    /// The state.
    pub fn state(&self) -> &ReassemblyState {
        &self.state
    }

    /// Whether every byte has arrived.
    pub fn is_complete(&self) -> bool {
        self.state == ReassemblyState::Complete
    }

    /// Stops the message (e.g. after answering 413): later chunks get [`MsrpError::MessageAborted`].
    pub fn abort(&mut self, reason: AbortReason) {
        self.state = ReassemblyState::Aborted { reason };
    }

    /// Takes one SEND chunk of this message.
    ///
    /// The chunk covers its Byte-Range start (1 if absent) over the body's actual length (RFC 4975
    /// section 7.3.1). A chunk ending with `#` aborts the message. Errors, which leave the state as
    /// it was: not a SEND, another or no Message-ID, a total different from the known one, a chunk
    /// past the total or past `max_total` (the caller answers 413 and calls [`Reassembly::abort`]),
    /// too many holes, or a chunk after an abort. A chunk after completion is accepted if it fits
    /// and reports nothing new (a retransmission).
    pub fn on_chunk(&mut self, request: &Request) -> Result<ChunkOutcome, MsrpError> {
        if request.method != Method::Send {
            return Err(MsrpError::NotASend);
        }
        let id = request.message_id().ok_or(MsrpError::MissingMessageId)?;
        if id != self.message_id {
            return Err(MsrpError::MessageIdMismatch {
                expected: self.message_id.clone(),
                found: id.to_owned(),
            });
        }
        if matches!(self.state, ReassemblyState::Aborted { .. }) {
            return Err(MsrpError::MessageAborted);
        }
        let chunk = request.body_offsets();
        if request.continuation == Continuation::Aborted {
            self.abort(AbortReason::SenderAborted);
            return Ok(ChunkOutcome {
                chunk,
                new_ranges: Vec::new(),
                complete: false,
                aborted: true,
            });
        }
        let body_len = request.body.as_ref().map_or(0, |b| b.len() as u64);
        if chunk.end - chunk.start < body_len {
            // `body_offsets` saturated: the body would run past byte u64::MAX of the message.
            return Err(MsrpError::MessageTooLarge {
                size: u64::MAX,
                limit: self.max_total,
            });
        }
        let declared = request.headers.byte_range().and_then(|r| r.total);
        // A `$` chunk ends the message, so its end is the total when none was declared.
        let total = match (self.total, declared) {
            (Some(known), Some(found)) if known != found => {
                return Err(MsrpError::TotalMismatch { known, found });
            }
            (known, found) => known
                .or(found)
                .or((request.continuation == Continuation::Complete).then_some(chunk.end)),
        };
        if let Some(total) = total {
            if chunk.end > total {
                return Err(MsrpError::ChunkBeyondTotal {
                    end: chunk.end,
                    total,
                });
            }
            if request.continuation == Continuation::Complete && chunk.end != total {
                // The last chunk must reach the declared end.
                return Err(MsrpError::TotalMismatch {
                    known: total,
                    found: chunk.end,
                });
            }
        }
        let size = total.unwrap_or(chunk.end);
        if size > self.max_total {
            return Err(MsrpError::MessageTooLarge {
                size,
                limit: self.max_total,
            });
        }
        let new_ranges = self.received.insert(chunk.start..chunk.end)?;
        self.total = total;
        let complete = total.is_some_and(|t| self.received.is_complete(t));
        if complete {
            self.state = ReassemblyState::Complete;
        }
        Ok(ChunkOutcome {
            chunk,
            new_ranges,
            complete,
            aborted: false,
        })
    }
}

#[cfg(test)]
// Tables of ranges read best as literal slices.
#[allow(clippy::single_range_in_vec_init, clippy::type_complexity)]
mod tests {
    use super::*;
    use crate::msrp::{ByteRange, MsrpUri};

    fn chunk(id: &str, range: &str, body: &'static [u8], flag: Continuation) -> Request {
        let uri: MsrpUri = "msrp://h/s;tcp".parse().unwrap();
        let mut req = Request::new("tid12345", Method::Send, vec![uri.clone()], vec![uri])
            .unwrap()
            .with_body("a/b", Bytes::from_static(body))
            .unwrap();
        req.headers.set_message_id(id).unwrap();
        req.headers
            .set_byte_range(range.parse::<ByteRange>().unwrap());
        req.continuation = flag;
        req
    }

    #[test]
    fn reassembles_out_of_order_with_duplicates() {
        use Continuation::*;
        let mut r = Reassembly::new("msg00001", 1000);
        let out = r
            .on_chunk(&chunk("msg00001", "5-8/8", b"EFGH", Complete))
            .unwrap();
        assert_eq!(
            (out.chunk.clone(), out.new_ranges.clone(), out.complete),
            (4..8, vec![4..8], false)
        );
        assert_eq!(r.total(), Some(8));
        let dup = r
            .on_chunk(&chunk("msg00001", "5-8/8", b"EFGH", Complete))
            .unwrap();
        assert!(dup.new_ranges.is_empty());
        let body = Bytes::from_static(b"abcdEF");
        let mut first = chunk("msg00001", "1-*/8", b"", More);
        first.body = Some(body.clone());
        let out = r.on_chunk(&first).unwrap();
        assert_eq!(out.new_ranges, vec![0..4]);
        assert!(out.complete && r.is_complete());
        let slices: Vec<_> = out.new_slices(&body).collect();
        assert_eq!(slices, vec![(0, Bytes::from_static(b"abcd"))]);
        // A retransmission after completion is harmless.
        assert!(
            r.on_chunk(&chunk("msg00001", "1-4/8", b"abcd", More))
                .unwrap()
                .new_ranges
                .is_empty()
        );
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Reassembly>(&json).unwrap(), r);
    }

    #[test]
    fn unknown_total_is_set_by_the_last_chunk() {
        use Continuation::*;
        let mut r = Reassembly::new("msg00001", 1000);
        assert!(
            !r.on_chunk(&chunk("msg00001", "1-*/*", b"abcd", More))
                .unwrap()
                .complete
        );
        assert_eq!(r.total(), None);
        let out = r
            .on_chunk(&chunk("msg00001", "5-*/*", b"ef", Complete))
            .unwrap();
        assert!(out.complete);
        assert_eq!(r.total(), Some(6));
        // A complete message in one request without a Byte-Range.
        let mut single = chunk("msg00002", "1-2/2", b"hi", Complete);
        single.headers.remove("Byte-Range");
        let mut r = Reassembly::new("msg00002", 10);
        assert!(r.on_chunk(&single).unwrap().complete);
        // An empty message.
        let mut r = Reassembly::new("msg00003", 10);
        assert!(
            r.on_chunk(&chunk("msg00003", "1-0/0", b"", Complete))
                .unwrap()
                .complete
        );
    }

    #[test]
    fn rejects_inconsistent_chunks_with_typed_errors() {
        use Continuation::*;
        let mut r = Reassembly::new("msg00001", 100);
        r.on_chunk(&chunk("msg00001", "1-4/10", b"abcd", More))
            .unwrap();
        let before = r.clone();
        let cases = [
            (
                chunk("msg00002", "5-8/10", b"efgh", More),
                MsrpError::MessageIdMismatch {
                    expected: "msg00001".into(),
                    found: "msg00002".into(),
                },
            ),
            (
                chunk("msg00001", "5-8/12", b"efgh", More),
                MsrpError::TotalMismatch {
                    known: 10,
                    found: 12,
                },
            ),
            (
                chunk("msg00001", "9-*/*", b"efgh", More),
                MsrpError::ChunkBeyondTotal { end: 12, total: 10 },
            ),
            (
                chunk("msg00001", "5-8/*", b"efgh", Complete),
                MsrpError::TotalMismatch {
                    known: 10,
                    found: 8,
                },
            ),
        ];
        for (req, expected) in cases {
            assert_eq!(r.on_chunk(&req), Err(expected));
            assert_eq!(r, before, "errors change nothing");
        }
        let mut report = chunk("msg00001", "5-8/10", b"efgh", More);
        report.method = Method::Report;
        assert_eq!(r.on_chunk(&report), Err(MsrpError::NotASend));
        let mut no_id = chunk("msg00001", "5-8/10", b"efgh", More);
        no_id.headers.remove("Message-ID");
        assert_eq!(r.on_chunk(&no_id), Err(MsrpError::MissingMessageId));

        let mut big = Reassembly::new("msg00001", 100);
        assert_eq!(
            big.on_chunk(&chunk("msg00001", "1-4/101", b"abcd", More)),
            Err(MsrpError::MessageTooLarge {
                size: 101,
                limit: 100
            })
        );
        big.abort(AbortReason::Status(413));
        assert_eq!(
            big.state(),
            &ReassemblyState::Aborted {
                reason: AbortReason::Status(413)
            }
        );
        assert_eq!(
            big.on_chunk(&chunk("msg00001", "1-4/10", b"abcd", More)),
            Err(MsrpError::MessageAborted)
        );

        let mut unknown = Reassembly::new("msg00001", 3);
        assert_eq!(
            unknown.on_chunk(&chunk("msg00001", "1-*/*", b"abcd", More)),
            Err(MsrpError::MessageTooLarge { size: 4, limit: 3 })
        );

        // A chunk that would run past byte u64::MAX of the message.
        let mut top = Reassembly::new("msg00001", u64::MAX);
        assert_eq!(
            top.on_chunk(&chunk(
                "msg00001",
                "18446744073709551615-*/*",
                b"abcd",
                More
            )),
            Err(MsrpError::MessageTooLarge {
                size: u64::MAX,
                limit: u64::MAX
            })
        );
        assert_eq!(top.received().len(), 0);

        let mut aborted = Reassembly::new("msg00001", 100);
        let out = aborted
            .on_chunk(&chunk("msg00001", "1-*/10", b"ab", Aborted))
            .unwrap();
        assert!(out.aborted && out.new_ranges.is_empty());
        assert_eq!(
            aborted.state(),
            &ReassemblyState::Aborted {
                reason: AbortReason::SenderAborted
            }
        );

        let mut holes = Reassembly::with_ranges("msg00001", 100, RangeSet::with_max_ranges(1));
        holes
            .on_chunk(&chunk("msg00001", "1-1/10", b"a", More))
            .unwrap();
        assert_eq!(
            holes.on_chunk(&chunk("msg00001", "3-3/10", b"c", More)),
            Err(MsrpError::TooManyRanges(crate::ranges::TooManyRanges {
                limit: 1
            }))
        );
    }
}
