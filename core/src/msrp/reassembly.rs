//! Reassembly of chunked messages: which byte ranges have arrived, without holding any bytes.

use std::ops::Range;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{Continuation, Method, MsrpError, Request};

/// Default cap on the number of disjoint ranges a [`ByteRangeSet`] holds.
pub const DEFAULT_MAX_RANGES: usize = 1024;

/// A set of received byte ranges (0-based, end-exclusive), kept sorted with touching ranges merged,
/// so its size is the number of holes plus one, capped by `max_ranges`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByteRangeSet {
    ranges: Vec<Range<u64>>,
    max_ranges: usize,
}

impl Default for ByteRangeSet {
    fn default() -> Self {
        Self::new()
    }
}

impl ByteRangeSet {
    /// An empty set holding at most [`DEFAULT_MAX_RANGES`] disjoint ranges.
    pub fn new() -> Self {
        Self::with_max_ranges(DEFAULT_MAX_RANGES)
    }

    /// An empty set holding at most `max_ranges` (at least 1) disjoint ranges.
    pub fn with_max_ranges(max_ranges: usize) -> Self {
        Self {
            ranges: Vec::new(),
            max_ranges: max_ranges.max(1),
        }
    }

    /// The disjoint ranges, in order.
    pub fn ranges(&self) -> &[Range<u64>] {
        &self.ranges
    }

    /// Adds `start..end` and returns the sub-ranges it newly covers, in order (empty for a
    /// duplicate). Out-of-order, overlapping and duplicate inserts are all fine. Fails, changing
    /// nothing, with [`MsrpError::TooManyRanges`] if the set would exceed its cap.
    pub fn insert(&mut self, start: u64, end: u64) -> Result<Vec<Range<u64>>, MsrpError> {
        if start >= end {
            return Ok(Vec::new());
        }
        // Ranges that overlap or touch start..end form one contiguous run first..last.
        let first = self.ranges.partition_point(|r| r.end < start);
        let last = first + self.ranges[first..].partition_point(|r| r.start <= end);
        if first == last && self.ranges.len() >= self.max_ranges {
            return Err(MsrpError::TooManyRanges {
                limit: self.max_ranges,
            });
        }
        let mut new = Vec::new();
        let mut cursor = start;
        for r in &self.ranges[first..last] {
            if r.start > cursor {
                new.push(cursor..r.start.min(end));
            }
            cursor = cursor.max(r.end);
        }
        if cursor < end {
            new.push(cursor..end);
        }
        let merged_start = self
            .ranges
            .get(first)
            .filter(|_| first < last)
            .map_or(start, |r| r.start.min(start));
        let merged_end = if first < last {
            self.ranges[last - 1].end.max(end)
        } else {
            end
        };
        self.ranges
            .splice(first..last, std::iter::once(merged_start..merged_end));
        Ok(new)
    }

    /// The length of the received prefix: everything before it has arrived.
    pub fn contiguous_prefix(&self) -> u64 {
        self.ranges
            .first()
            .filter(|r| r.start == 0)
            .map_or(0, |r| r.end)
    }

    /// Whether all of `range` has arrived (an empty range is always covered).
    pub fn covers(&self, range: Range<u64>) -> bool {
        if range.start >= range.end {
            return true;
        }
        let i = self.ranges.partition_point(|r| r.end < range.end);
        self.ranges
            .get(i)
            .is_some_and(|r| r.start <= range.start && range.end <= r.end)
    }

    /// Whether all of `0..total` has arrived.
    pub fn is_complete(&self, total: u64) -> bool {
        self.covers(0..total)
    }

    /// The holes in `0..total`, in order.
    pub fn missing(&self, total: u64) -> Vec<Range<u64>> {
        let mut holes = Vec::new();
        let mut cursor = 0;
        for r in &self.ranges {
            if r.start >= total {
                break;
            }
            if r.start > cursor {
                holes.push(cursor..r.start);
            }
            cursor = cursor.max(r.end);
        }
        if cursor < total {
            holes.push(cursor..total);
        }
        holes
    }

    /// Number of bytes received.
    pub fn covered_bytes(&self) -> u64 {
        self.ranges
            .iter()
            .map(|r| r.end.saturating_sub(r.start))
            .sum()
    }
}

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
    received: ByteRangeSet,
    state: ReassemblyState,
}

impl Reassembly {
    /// A reassembly for `message_id` accepting messages of up to `max_total` bytes, with the
    /// default range cap.
    pub fn new(message_id: &str, max_total: u64) -> Self {
        Self::with_ranges(message_id, max_total, ByteRangeSet::new())
    }

    /// A reassembly that records ranges in `received` (pass a set with its own cap, or one
    /// restored from storage).
    pub fn with_ranges(message_id: &str, max_total: u64, received: ByteRangeSet) -> Self {
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
    pub fn received(&self) -> &ByteRangeSet {
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
        let new_ranges = self.received.insert(chunk.start, chunk.end)?;
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

    #[test]
    fn insert_reports_new_sub_ranges() {
        let mut set = ByteRangeSet::new();
        let steps: [(u64, u64, &[Range<u64>], &[Range<u64>]); 9] = [
            (10, 20, &[10..20], &[10..20]),
            (10, 20, &[], &[10..20]),
            (30, 40, &[30..40], &[10..20, 30..40]),
            (15, 35, &[20..30], &[10..40]),
            (0, 5, &[0..5], &[0..5, 10..40]),
            (5, 10, &[5..10], &[0..40]),
            (50, 60, &[50..60], &[0..40, 50..60]),
            (0, 70, &[40..50, 60..70], &[0..70]),
            (3, 3, &[], &[0..70]),
        ];
        for (start, end, new, after) in steps {
            assert_eq!(
                set.insert(start, end).unwrap(),
                new,
                "insert {start}..{end}"
            );
            assert_eq!(set.ranges(), after, "after {start}..{end}");
        }
        assert_eq!(set.contiguous_prefix(), 70);
        assert_eq!(set.covered_bytes(), 70);
    }

    #[test]
    fn adjacent_ranges_merge_and_the_cap_holds() {
        let mut set = ByteRangeSet::with_max_ranges(2);
        set.insert(0, 10).unwrap();
        set.insert(20, 30).unwrap();
        assert_eq!(
            set.insert(40, 50),
            Err(MsrpError::TooManyRanges { limit: 2 })
        );
        assert_eq!(
            set.ranges(),
            &[0..10, 20..30],
            "a failed insert changes nothing"
        );
        set.insert(10, 20).unwrap();
        assert_eq!(set.ranges(), &[0..30]);
        set.insert(40, 50).unwrap();
        set.insert(30, 40).unwrap();
        assert_eq!(set.ranges(), &[0..50]);
    }

    #[test]
    fn queries() {
        let mut set = ByteRangeSet::new();
        assert_eq!(set.contiguous_prefix(), 0);
        assert!(set.is_complete(0));
        assert!(!set.is_complete(1));
        assert_eq!(set.missing(10), vec![0..10]);
        set.insert(2, 4).unwrap();
        set.insert(6, 8).unwrap();
        assert_eq!(set.contiguous_prefix(), 0);
        assert!(set.covers(2..4) && set.covers(3..4) && set.covers(5..5));
        assert!(!set.covers(2..5) && !set.covers(1..3) && !set.covers(4..6));
        assert_eq!(set.missing(10), vec![0..2, 4..6, 8..10]);
        assert_eq!(set.missing(7), vec![0..2, 4..6]);
        set.insert(0, 2).unwrap();
        assert_eq!(set.contiguous_prefix(), 4);
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(serde_json::from_str::<ByteRangeSet>(&json).unwrap(), set);
    }

    #[test]
    fn random_inserts_match_a_bitmap() {
        // A small deterministic generator; the bitmap is the obvious model.
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..200 {
            let mut set = ByteRangeSet::new();
            let mut bits = [false; 64];
            for _ in 0..20 {
                let a = next(64);
                let b = a + next(64 - a + 1);
                let new = set.insert(a, b).unwrap();
                let expected_new: Vec<u64> = (a..b).filter(|&i| !bits[i as usize]).collect();
                let got_new: Vec<u64> = new.iter().flat_map(|r| r.clone()).collect();
                assert_eq!(got_new, expected_new);
                for i in a..b {
                    bits[i as usize] = true;
                }
                let from_set: Vec<bool> = (0..64).map(|i| set.covers(i..i + 1)).collect();
                assert_eq!(from_set, bits);
                assert!(set.ranges().windows(2).all(|w| w[0].end < w[1].start));
            }
        }
    }

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

        let mut holes = Reassembly::with_ranges("msg00001", 100, ByteRangeSet::with_max_ranges(1));
        holes
            .on_chunk(&chunk("msg00001", "1-1/10", b"a", More))
            .unwrap();
        assert_eq!(
            holes.on_chunk(&chunk("msg00001", "3-3/10", b"c", More)),
            Err(MsrpError::TooManyRanges { limit: 1 })
        );
    }
}
