//! Sending one message with a window of chunks in flight, driven by responses and time.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::{ChunkPlan, Continuation, MsrpError, status};
use crate::ids::TokenSource;
use crate::ranges::RangeSet;
use crate::time::Timestamp;

/// RFC 4975 section 7.1.1: a sender waits 30 seconds for the response to a transaction.
pub const DEFAULT_TRANSACTION_TIMEOUT_MS: u64 = 30_000;

/// What a response or a timeout did to a [`WindowedSender`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SenderEvent {
    /// A 200 acknowledged this chunk; a window slot is free (call `next_chunk`).
    Acknowledged {
        /// The chunk's 0-based range.
        range: Range<u64>,
    },
    /// The 200 for the last outstanding chunk: every byte is acknowledged.
    Finished,
    /// The message stopped: an error response (413 means the receiver wants no more of it), or 408
    /// for a transaction timeout. No further chunks are planned.
    Aborted {
        /// The status that stopped it.
        code: u16,
    },
    /// A response for a chunk sent before the message stopped; nothing changes.
    Ignored,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct InFlight {
    transaction_id: String,
    range: Range<u64>,
    deadline: Timestamp,
}

/// Sends one message of known size in chunks, at most `window` of them unanswered at a time.
///
/// Drive it like this: call [`next_chunk`](Self::next_chunk) until it returns `None` and send each
/// planned chunk (build it with [`Chunker::request_for`](super::Chunker::request_for)); feed every
/// response to [`on_response`](Self::on_response) and call `next_chunk` again; at
/// [`next_deadline`](Self::next_deadline) call [`on_timeout`](Self::on_timeout). It serializes,
/// so a stateless edge function keeps it between events; after a disconnect start a new sender
/// with `resume_from` = [`acknowledged`](Self::acknowledged).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowedSender {
    message_id: String,
    total: u64,
    chunk_size: u64,
    window: usize,
    timeout_ms: u64,
    next_offset: u64,
    sent_empty: bool,
    acked: RangeSet,
    in_flight: Vec<InFlight>,
    stopped: Option<u16>,
}

impl WindowedSender {
    /// A sender for `total_size` bytes in `chunk_size`-byte chunks (at least 1) with at most
    /// `window` (at least 1) in flight, treating `0..resume_from` as already acknowledged.
    pub fn new(
        message_id: &str,
        total_size: u64,
        chunk_size: u64,
        window: usize,
        resume_from: u64,
    ) -> Self {
        let resume_from = resume_from.min(total_size);
        let mut acked = RangeSet::new();
        // A fresh set takes one range.
        let _ = acked.insert(0..resume_from);
        Self {
            message_id: message_id.to_owned(),
            total: total_size,
            chunk_size: chunk_size.max(1),
            window: window.max(1),
            timeout_ms: DEFAULT_TRANSACTION_TIMEOUT_MS,
            next_offset: resume_from,
            sent_empty: false,
            acked,
            in_flight: Vec::new(),
            stopped: None,
        }
    }

    /// The same sender with another transaction timeout.
    #[must_use]
    pub fn with_timeout_ms(mut self, timeout_ms: u64) -> Self {
        self.timeout_ms = timeout_ms;
        self
    }

    /// The Message-ID.
    pub fn message_id(&self) -> &str {
        &self.message_id
    }

    /// The message size.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The acknowledged prefix: every byte before it got a 200. Resume from here.
    pub fn acknowledged(&self) -> u64 {
        self.acked.contiguous_prefix()
    }

    /// Number of chunks sent and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Whether every byte is acknowledged.
    pub fn is_finished(&self) -> bool {
        self.stopped.is_none()
            && self.acked.is_complete(self.total)
            && self.in_flight.is_empty()
            && (self.total > 0 || self.sent_empty)
    }

    /// The status that stopped the message, if it was stopped.
    pub fn aborted(&self) -> Option<u16> {
        self.stopped
    }

    /// The next chunk to send, if the window has room and bytes remain. Draws the transaction id
    /// from `tids` and starts its timeout at `now`.
    #[must_use]
    pub fn next_chunk(&mut self, tids: &mut TokenSource, now: Timestamp) -> Option<ChunkPlan> {
        self.next_chunk_within(tids, now, self.total)
    }

    /// The next chunk to send when only the first `available` bytes of the message can be had
    /// yet (a file still arriving): as [`next_chunk`](Self::next_chunk), but never a chunk that
    /// ends past `available` (so the chunks keep their size and the last waits for the end).
    #[must_use]
    pub fn next_chunk_within(
        &mut self,
        tids: &mut TokenSource,
        now: Timestamp,
        available: u64,
    ) -> Option<ChunkPlan> {
        if self.stopped.is_some() || self.in_flight.len() >= self.window {
            return None;
        }
        let end = self
            .next_offset
            .saturating_add(self.chunk_size)
            .min(self.total);
        if end > available {
            return None;
        }
        // An empty message still takes one (empty) chunk.
        let empty_message = self.total == 0 && !self.sent_empty;
        if self.next_offset >= self.total && !empty_message {
            return None;
        }
        self.sent_empty |= empty_message;
        let start = self.next_offset;
        let end = start.saturating_add(self.chunk_size).min(self.total);
        self.next_offset = end;
        let plan = ChunkPlan {
            transaction_id: tids.msrp_id(),
            range: start..end,
            continuation: if end == self.total {
                Continuation::Complete
            } else {
                Continuation::More
            },
        };
        self.in_flight.push(InFlight {
            transaction_id: plan.transaction_id.clone(),
            range: plan.range.clone(),
            deadline: now.plus_millis(self.timeout_ms),
        });
        Some(plan)
    }

    /// Takes the response to one of the chunks in flight. 200 acknowledges it; any other code stops
    /// the message. An unknown transaction id is [`MsrpError::UnknownTransaction`].
    pub fn on_response(
        &mut self,
        transaction_id: &str,
        status_code: u16,
    ) -> Result<SenderEvent, MsrpError> {
        let at = self
            .in_flight
            .iter()
            .position(|f| f.transaction_id == transaction_id)
            .ok_or_else(|| MsrpError::UnknownTransaction {
                transaction_id: transaction_id.to_owned(),
            })?;
        let chunk = self.in_flight.remove(at);
        if self.stopped.is_some() {
            return Ok(SenderEvent::Ignored);
        }
        if status_code != status::OK {
            self.stopped = Some(status_code);
            return Ok(SenderEvent::Aborted { code: status_code });
        }
        self.acked.insert(chunk.range.clone())?;
        if self.is_finished() {
            Ok(SenderEvent::Finished)
        } else {
            Ok(SenderEvent::Acknowledged { range: chunk.range })
        }
    }

    /// The earliest deadline of the chunks in flight, while the message is still going.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        if self.stopped.is_some() {
            return None;
        }
        self.in_flight.iter().map(|f| f.deadline).min()
    }

    /// The first byte not sent yet.
    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }

    /// The bytes of one chunk.
    pub fn chunk_size(&self) -> u64 {
        self.chunk_size
    }

    /// How many chunks may be in flight at once.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Stops the message with 408 if a chunk's response is overdue at `now` (RFC 4975 section
    /// 10.4: a local timeout is treated as a 408).
    pub fn on_timeout(&mut self, now: Timestamp) -> Option<SenderEvent> {
        let overdue = self.next_deadline().is_some_and(|d| d <= now);
        if !overdue {
            return None;
        }
        self.stopped = Some(status::REQUEST_TIMEOUT);
        Some(SenderEvent::Aborted {
            code: status::REQUEST_TIMEOUT,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Entropy;

    fn tids() -> TokenSource {
        TokenSource::new(Entropy([3; 32]))
    }

    fn t(ms: u64) -> Timestamp {
        Timestamp::from_unix_millis(ms)
    }

    fn drain(s: &mut WindowedSender, tids: &mut TokenSource, now: Timestamp) -> Vec<ChunkPlan> {
        std::iter::from_fn(|| s.next_chunk(tids, now)).collect()
    }

    #[test]
    fn a_chunk_waits_until_its_bytes_are_available() {
        let mut tids = tids();
        let mut s = WindowedSender::new("msg00001", 10, 3, 4, 0);
        assert!(s.next_chunk_within(&mut tids, t(0), 2).is_none());
        let first = s.next_chunk_within(&mut tids, t(0), 7).expect("0..3");
        let second = s.next_chunk_within(&mut tids, t(0), 7).expect("3..6");
        assert_eq!((first.range, second.range), (0..3, 3..6));
        // 6..9 needs byte 8: it waits, and so does the last chunk for byte 9.
        assert!(s.next_chunk_within(&mut tids, t(0), 7).is_none());
        assert_eq!(s.next_offset(), 6);
        let third = s.next_chunk_within(&mut tids, t(0), 9).expect("6..9");
        assert!(s.next_chunk_within(&mut tids, t(0), 9).is_none());
        let last = s.next_chunk_within(&mut tids, t(0), 10).expect("9..10");
        assert_eq!((third.range, last.range), (6..9, 9..10));
        assert_eq!(last.continuation, Continuation::Complete);
    }

    #[test]
    fn keeps_the_window_full_and_finishes() {
        let mut tids = tids();
        let mut s = WindowedSender::new("msg00001", 10, 3, 2, 0);
        let first = drain(&mut s, &mut tids, t(0));
        assert_eq!(
            first.iter().map(|p| p.range.clone()).collect::<Vec<_>>(),
            vec![0..3, 3..6]
        );
        assert!(first.iter().all(|p| p.continuation == Continuation::More));
        assert_eq!(s.next_deadline(), Some(t(30_000)));
        // Out-of-order acknowledgement: the prefix waits for the first chunk.
        assert_eq!(
            s.on_response(&first[1].transaction_id, 200),
            Ok(SenderEvent::Acknowledged { range: 3..6 })
        );
        assert_eq!(s.acknowledged(), 0);
        let more = drain(&mut s, &mut tids, t(10));
        assert_eq!(
            more.iter().map(|p| p.range.clone()).collect::<Vec<_>>(),
            vec![6..9]
        );
        assert_eq!(
            s.on_response(&first[0].transaction_id, 200),
            Ok(SenderEvent::Acknowledged { range: 0..3 })
        );
        assert_eq!(s.acknowledged(), 6);
        let last = drain(&mut s, &mut tids, t(12));
        assert_eq!(last.len(), 1);
        assert_eq!(
            (last[0].range.clone(), last[0].continuation),
            (9..10, Continuation::Complete)
        );
        assert!(drain(&mut s, &mut tids, t(13)).is_empty());
        assert_eq!(
            s.on_response(&more[0].transaction_id, 200),
            Ok(SenderEvent::Acknowledged { range: 6..9 })
        );
        assert!(!s.is_finished());
        assert_eq!(
            s.on_response(&last[0].transaction_id, 200),
            Ok(SenderEvent::Finished)
        );
        assert!(s.is_finished());
        assert_eq!(s.acknowledged(), 10);
        assert_eq!(s.next_deadline(), None);
        assert_eq!(
            s.on_response("nothere1", 200),
            Err(MsrpError::UnknownTransaction {
                transaction_id: "nothere1".into()
            })
        );
    }

    #[test]
    fn error_response_stops_and_late_answers_are_ignored() {
        let mut tids = tids();
        let mut s = WindowedSender::new("msg00001", 100, 10, 3, 0);
        let plans = drain(&mut s, &mut tids, t(0));
        assert_eq!(
            s.on_response(&plans[0].transaction_id, 413),
            Ok(SenderEvent::Aborted { code: 413 })
        );
        assert_eq!(s.aborted(), Some(413));
        assert!(drain(&mut s, &mut tids, t(2)).is_empty());
        assert_eq!(
            s.on_response(&plans[1].transaction_id, 200),
            Ok(SenderEvent::Ignored)
        );
        assert_eq!(s.next_deadline(), None);
        assert_eq!(s.on_timeout(t(1_000_000)), None);
        assert!(!s.is_finished());
    }

    #[test]
    fn timeout_gives_408() {
        let mut tids = tids();
        let mut s = WindowedSender::new("msg00001", 100, 10, 2, 0).with_timeout_ms(1000);
        let plans = drain(&mut s, &mut tids, t(0));
        let _ = s.on_response(&plans[0].transaction_id, 200);
        let _ = drain(&mut s, &mut tids, t(600));
        assert_eq!(s.next_deadline(), Some(t(1000)));
        assert_eq!(s.on_timeout(t(999)), None);
        assert_eq!(
            s.on_timeout(t(1000)),
            Some(SenderEvent::Aborted { code: 408 })
        );
        assert_eq!(s.aborted(), Some(408));
        assert_eq!(s.acknowledged(), 10);
    }

    #[test]
    fn resumes_and_serializes() {
        let mut tids = tids();
        let mut s = WindowedSender::new("msg00001", 25, 10, 4, 12);
        assert_eq!(s.acknowledged(), 12);
        let plans = drain(&mut s, &mut tids, t(0));
        assert_eq!(
            plans.iter().map(|p| p.range.clone()).collect::<Vec<_>>(),
            vec![12..22, 22..25]
        );
        let json = serde_json::to_string(&s).unwrap();
        let mut restored: WindowedSender = serde_json::from_str(&json).unwrap();
        assert_eq!(restored, s);
        let _ = restored.on_response(&plans[0].transaction_id, 200);
        assert_eq!(
            restored.on_response(&plans[1].transaction_id, 200),
            Ok(SenderEvent::Finished)
        );
        // Resuming past the end clamps; an empty message takes one empty chunk.
        let mut done = WindowedSender::new("msg00001", 5, 10, 1, 9);
        assert_eq!(done.acknowledged(), 5);
        assert!(drain(&mut done, &mut tids, t(0)).is_empty());
        let mut empty = WindowedSender::new("msg00001", 0, 10, 1, 0);
        assert!(!empty.is_finished());
        let plans = drain(&mut empty, &mut tids, t(0));
        assert_eq!(
            (plans.len(), plans[0].range.clone(), plans[0].continuation),
            (1, 0..0, Continuation::Complete)
        );
        assert_eq!(
            empty.on_response(&plans[0].transaction_id, 200),
            Ok(SenderEvent::Finished)
        );
        let zero = WindowedSender::new("msg00001", 3, 0, 0, 0);
        assert_eq!((zero.chunk_size, zero.window), (1, 1));
    }
}
