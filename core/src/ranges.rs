//! Sets of byte ranges: which bytes of a file or message have arrived, whatever the order.
//!
//! [`RangeSet`] keeps disjoint, non-touching, 0-based end-exclusive ranges sorted by start, merging as
//! ranges arrive, so an in-order transfer is always a single range and the set's size is the number
//! of holes plus one, capped so that a hostile sender cannot make it grow without limit. It holds no
//! bytes: MSRP reassembly, the windowed sender and the store's uploads all use it to know what is
//! there while the bytes themselves go straight to their destination.

use std::ops::Range;

use serde::{Deserialize, Serialize};

/// Default cap on the number of disjoint ranges a [`RangeSet`] holds.
pub const DEFAULT_MAX_RANGES: usize = 1024;

/// A range set refused a new range because it would hold too many disjoint ranges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("more than {limit} disjoint byte ranges")]
pub struct TooManyRanges {
    /// The cap that was reached.
    pub limit: usize,
}

/// A set of byte ranges (0-based, end-exclusive), sorted, with touching ranges merged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeSet {
    ranges: Vec<Range<u64>>,
    max_ranges: usize,
}

impl Default for RangeSet {
    fn default() -> Self {
        Self::new()
    }
}

impl RangeSet {
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

    /// Adds `range` and returns the sub-ranges it newly covers, in order (empty for a duplicate).
    /// Out-of-order, overlapping and duplicate inserts are all fine. Fails, changing nothing, if the
    /// set would exceed its cap.
    pub fn insert(&mut self, range: Range<u64>) -> Result<Vec<Range<u64>>, TooManyRanges> {
        let Range { start, end } = range;
        if start >= end {
            return Ok(Vec::new());
        }
        // Ranges that overlap or touch start..end form one contiguous run first..last.
        let first = self.ranges.partition_point(|r| r.end < start);
        let last = first + self.ranges[first..].partition_point(|r| r.start <= end);
        if first == last && self.ranges.len() >= self.max_ranges {
            return Err(TooManyRanges {
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
        let (merged_start, merged_end) = if first < last {
            (
                self.ranges[first].start.min(start),
                self.ranges[last - 1].end.max(end),
            )
        } else {
            (start, end)
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

    /// Whether `range` shares at least one byte with the set.
    pub fn intersects(&self, range: Range<u64>) -> bool {
        let i = self.ranges.partition_point(|r| r.end <= range.start);
        self.ranges.get(i).is_some_and(|r| r.start < range.end)
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

    /// The number of bytes present.
    pub fn len(&self) -> u64 {
        self.ranges.iter().map(|r| r.end - r.start).sum()
    }

    /// Whether no byte is present.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// One past the highest byte present (0 when empty).
    pub fn end(&self) -> u64 {
        self.ranges.last().map_or(0, |r| r.end)
    }
}

#[cfg(test)]
// Tables of ranges read best as literal slices.
#[allow(clippy::single_range_in_vec_init, clippy::type_complexity)]
mod tests {
    use super::*;

    #[test]
    fn insert_reports_new_sub_ranges() {
        let mut set = RangeSet::new();
        let steps: [(Range<u64>, &[Range<u64>], &[Range<u64>]); 9] = [
            (10..20, &[10..20], &[10..20]),
            (10..20, &[], &[10..20]),
            (30..40, &[30..40], &[10..20, 30..40]),
            (15..35, &[20..30], &[10..40]),
            (0..5, &[0..5], &[0..5, 10..40]),
            (5..10, &[5..10], &[0..40]),
            (50..60, &[50..60], &[0..40, 50..60]),
            (0..70, &[40..50, 60..70], &[0..70]),
            (3..3, &[], &[0..70]),
        ];
        for (range, new, after) in steps {
            assert_eq!(set.insert(range.clone()).unwrap(), new, "insert {range:?}");
            assert_eq!(set.ranges(), after, "after {range:?}");
        }
        assert_eq!(set.contiguous_prefix(), 70);
        assert_eq!(set.len(), 70);
        assert_eq!(set.end(), 70);
    }

    #[test]
    fn adjacent_ranges_merge_and_the_cap_holds() {
        let mut set = RangeSet::with_max_ranges(2);
        set.insert(0..10).unwrap();
        set.insert(20..30).unwrap();
        assert_eq!(set.insert(40..50), Err(TooManyRanges { limit: 2 }));
        assert_eq!(
            set.ranges(),
            &[0..10, 20..30],
            "a failed insert changes nothing"
        );
        set.insert(10..20).unwrap();
        assert_eq!(set.ranges(), &[0..30]);
        set.insert(40..50).unwrap();
        set.insert(30..40).unwrap();
        assert_eq!(set.ranges(), &[0..50]);
    }

    #[test]
    fn queries() {
        let mut set = RangeSet::new();
        assert_eq!(set.contiguous_prefix(), 0);
        assert!(set.is_complete(0) && set.is_empty());
        assert!(!set.is_complete(1));
        assert_eq!(set.missing(10), vec![0..10]);
        set.insert(2..4).unwrap();
        set.insert(6..8).unwrap();
        assert_eq!(set.contiguous_prefix(), 0);
        assert!(set.covers(2..4) && set.covers(3..4) && set.covers(5..5));
        assert!(!set.covers(2..5) && !set.covers(1..3) && !set.covers(4..6));
        assert!(
            set.intersects(3..7)
                && set.intersects(7..20)
                && !set.intersects(4..6)
                && !set.intersects(8..9)
        );
        assert_eq!(set.missing(10), vec![0..2, 4..6, 8..10]);
        assert_eq!(set.missing(7), vec![0..2, 4..6]);
        set.insert(0..2).unwrap();
        assert_eq!(set.contiguous_prefix(), 4);
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(serde_json::from_str::<RangeSet>(&json).unwrap(), set);
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
            let mut set = RangeSet::new();
            let mut bits = [false; 64];
            for _ in 0..20 {
                let a = next(64);
                let b = a + next(64 - a + 1);
                let new = set.insert(a..b).unwrap();
                let expected_new: Vec<u64> = (a..b).filter(|&i| !bits[i as usize]).collect();
                let got_new: Vec<u64> = new.iter().flat_map(|r| r.clone()).collect();
                assert_eq!(got_new, expected_new);
                for i in a..b {
                    bits[i as usize] = true;
                }
                let from_set: Vec<bool> = (0..64).map(|i| set.covers(i..i + 1)).collect();
                assert_eq!(from_set, bits);
                assert_eq!(set.len(), bits.iter().filter(|&&b| b).count() as u64);
                assert_eq!(
                    set.contiguous_prefix(),
                    bits.iter().take_while(|&&b| b).count() as u64
                );
                assert!(set.ranges().windows(2).all(|w| w[0].end < w[1].start));
            }
        }
    }
}
