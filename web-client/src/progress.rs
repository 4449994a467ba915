//! Transfer progress as a person reads it: bytes done, speed over the last few seconds, and time
//! left. Fed with (time, bytes done) samples; no clock of its own.

use std::collections::VecDeque;

/// How far back the speed looks, in milliseconds.
const SPEED_WINDOW_MS: u64 = 3000;
/// The least time between two reports of one transfer, in milliseconds.
const REPORT_EVERY_MS: u64 = 100;

/// What a progress bar shows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    /// Bytes done.
    pub done: u64,
    /// The file size.
    pub size: u64,
    /// Bytes per second over the last few seconds, once there are two samples.
    pub bytes_per_sec: Option<f64>,
    /// Seconds left at that speed.
    pub secs_left: Option<f64>,
}

/// The samples of one transfer.
#[derive(Clone, Debug)]
pub struct ProgressMeter {
    size: u64,
    samples: VecDeque<(u64, u64)>,
}

impl ProgressMeter {
    /// Like [`ProgressMeter::update`], at most every 100 ms and always once the transfer is
    /// complete: what a page can redraw without falling behind the chunks.
    pub fn report(&mut self, now_ms: u64, done: u64) -> Option<Progress> {
        let due = self
            .samples
            .back()
            .is_none_or(|&(at, _)| now_ms >= at + REPORT_EVERY_MS);
        (due || done >= self.size).then(|| self.update(now_ms, done))
    }
}

impl ProgressMeter {
    /// A meter for `size` bytes.
    pub fn new(size: u64) -> Self {
        Self {
            size,
            samples: VecDeque::new(),
        }
    }

    /// Records that `done` bytes were done at `now_ms` and returns what to show.
    pub fn update(&mut self, now_ms: u64, done: u64) -> Progress {
        let done = done.min(self.size);
        self.samples.push_back((now_ms, done));
        while self.samples.len() > 2
            && self
                .samples
                .front()
                .is_some_and(|&(at, _)| now_ms.saturating_sub(at) > SPEED_WINDOW_MS)
        {
            self.samples.pop_front();
        }
        let bytes_per_sec = match (self.samples.front(), self.samples.back()) {
            (Some(&(t0, b0)), Some(&(t1, b1))) if t1 > t0 => {
                Some(b1.saturating_sub(b0) as f64 * 1000.0 / (t1 - t0) as f64)
            }
            _ => None,
        };
        let secs_left = bytes_per_sec
            .filter(|&speed| speed > 0.0)
            .map(|speed| self.size.saturating_sub(done) as f64 / speed);
        Progress {
            done,
            size: self.size,
            bytes_per_sec,
            secs_left,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_and_time_left_follow_the_recent_samples() {
        let mut meter = ProgressMeter::new(10_000_000);
        let first = meter.update(0, 0);
        assert_eq!(first.bytes_per_sec, None);
        assert_eq!(first.secs_left, None);
        let second = meter.update(1000, 1_000_000);
        assert_eq!(second.bytes_per_sec, Some(1_000_000.0));
        assert_eq!(second.secs_left, Some(9.0));
        // Faster later: the old samples leave the window, so the speed follows.
        meter.update(5000, 2_000_000);
        let later = meter.update(6000, 4_000_000);
        assert_eq!(later.bytes_per_sec, Some(2_000_000.0));
        assert_eq!(later.secs_left, Some(3.0));
    }

    #[test]
    fn reports_come_at_most_every_100_ms_and_always_at_the_end() {
        let mut meter = ProgressMeter::new(1000);
        assert!(meter.report(0, 100).is_some());
        assert!(meter.report(50, 200).is_none());
        assert!(meter.report(100, 300).is_some());
        assert_eq!(meter.report(120, 1000).map(|p| p.done), Some(1000));
    }

    #[test]
    fn a_stalled_transfer_has_no_time_left_and_done_never_exceeds_the_size() {
        let mut meter = ProgressMeter::new(100);
        meter.update(0, 50);
        let stalled = meter.update(1000, 50);
        assert_eq!(stalled.bytes_per_sec, Some(0.0));
        assert_eq!(stalled.secs_left, None);
        assert_eq!(meter.update(2000, 500).done, 100);
    }
}
