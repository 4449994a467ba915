//! Sets of byte ranges: which bytes of a file or message have arrived, whatever the order.
//!
//! [`RangeSet`] keeps disjoint, non-adjacent half-open ranges sorted by start, merging as ranges
//! arrive, so an in-order transfer is always a single range and memory stays bounded by the number of
//! gaps, which callers cap with [`RangeSet::MAX_GAPS`].

use std::ops::Range;

use serde::{Deserialize, Serialize};

/// Disjoint, sorted, non-adjacent half-open byte ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RangeSet {
    ranges: Vec<(u64, u64)>,
}

/// A range set refused a new range because it would hold too many disjoint ranges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("more than {limit} disjoint byte ranges")]
pub struct TooManyGaps {
    /// The limit that was reached.
    pub limit: usize,
}

impl RangeSet {
    /// The most disjoint ranges a set accepts: enough for heavy reordering, small enough that the
    /// set stays a few kilobytes when serialized.
    pub const MAX_GAPS: usize = 256;

    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `range` and returns the parts of it that were not already in the set, in order.
    /// Empty ranges change nothing.
    pub fn insert(&mut self, range: Range<u64>) -> Result<Vec<Range<u64>>, TooManyGaps> {
        if range.start >= range.end {
            return Ok(Vec::new());
        }
        // Ranges that overlap or touch the new one are merged with it.
        let first = self.ranges.partition_point(|&(_, end)| end < range.start);
        let last = self
            .ranges
            .partition_point(|&(start, _)| start <= range.end);
        if first == last && self.ranges.len() >= Self::MAX_GAPS {
            return Err(TooManyGaps {
                limit: Self::MAX_GAPS,
            });
        }
        let mut fresh = Vec::new();
        let mut cursor = range.start;
        for &(start, end) in &self.ranges[first..last] {
            if start > cursor {
                fresh.push(cursor..start.min(range.end));
            }
            cursor = cursor.max(end);
        }
        if cursor < range.end {
            fresh.push(cursor..range.end);
        }
        let merged_start = self
            .ranges
            .get(first)
            .map_or(range.start, |&(s, _)| s.min(range.start));
        let merged_end = match last.checked_sub(1).and_then(|i| self.ranges.get(i)) {
            Some(&(_, end)) if last > first => end.max(range.end),
            _ => range.end,
        };
        self.ranges
            .splice(first..last, [(merged_start, merged_end)]);
        Ok(fresh)
    }

    /// The length of the prefix `0..n` that is fully present.
    pub fn contiguous_prefix(&self) -> u64 {
        match self.ranges.first() {
            Some(&(0, end)) => end,
            _ => 0,
        }
    }

    /// Whether every byte of `range` is present.
    pub fn covers(&self, range: Range<u64>) -> bool {
        if range.start >= range.end {
            return true;
        }
        let index = self.ranges.partition_point(|&(_, end)| end <= range.start);
        self.ranges
            .get(index)
            .is_some_and(|&(start, end)| start <= range.start && range.end <= end)
    }

    /// Whether `range` shares at least one byte with the set.
    pub fn intersects(&self, range: Range<u64>) -> bool {
        let index = self.ranges.partition_point(|&(_, end)| end <= range.start);
        self.ranges
            .get(index)
            .is_some_and(|&(start, _)| start < range.end)
    }

    /// Whether the set is exactly `0..total`.
    pub fn is_complete(&self, total: u64) -> bool {
        total == 0 && self.ranges.is_empty() || self.ranges == [(0, total)]
    }

    /// The gaps in `0..total`, in order.
    pub fn missing(&self, total: u64) -> Vec<Range<u64>> {
        let mut gaps = Vec::new();
        let mut cursor = 0;
        for &(start, end) in &self.ranges {
            if start >= total {
                break;
            }
            if start > cursor {
                gaps.push(cursor..start);
            }
            cursor = end;
        }
        if cursor < total {
            gaps.push(cursor..total);
        }
        gaps
    }

    /// The number of bytes present.
    pub fn len(&self) -> u64 {
        self.ranges.iter().map(|&(start, end)| end - start).sum()
    }

    /// Whether no byte is present.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// One past the highest byte present (0 when empty).
    pub fn end(&self) -> u64 {
        self.ranges.last().map_or(0, |&(_, end)| end)
    }

    /// The disjoint ranges, in order.
    pub fn iter(&self) -> impl Iterator<Item = Range<u64>> + '_ {
        self.ranges.iter().map(|&(start, end)| start..end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(ranges: &[Range<u64>]) -> Vec<(u64, u64)> {
        ranges.iter().map(|r| (r.start, r.end)).collect()
    }

    #[test]
    fn insert_reports_only_new_bytes() {
        // (inserted range, new parts, resulting set)
        type Step = ((u64, u64), &'static [(u64, u64)], &'static [(u64, u64)]);
        let steps: [Step; 8] = [
            ((10, 20), &[(10, 20)], &[(10, 20)]),
            ((10, 20), &[], &[(10, 20)]),
            ((0, 5), &[(0, 5)], &[(0, 5), (10, 20)]),
            ((5, 10), &[(5, 10)], &[(0, 20)]),
            ((30, 40), &[(30, 40)], &[(0, 20), (30, 40)]),
            ((15, 35), &[(20, 30)], &[(0, 40)]),
            ((50, 50), &[], &[(0, 40)]),
            ((39, 45), &[(40, 45)], &[(0, 45)]),
        ];
        let mut set = RangeSet::new();
        for ((start, end), fresh, after) in steps {
            assert_eq!(
                pairs(&set.insert(start..end).unwrap()),
                fresh,
                "insert {start}..{end}"
            );
            assert_eq!(
                pairs(&set.iter().collect::<Vec<_>>()),
                after,
                "after {start}..{end}"
            );
        }
        assert_eq!(set.contiguous_prefix(), 45);
        assert!(set.is_complete(45));
    }

    #[test]
    fn gaps_coverage_and_limits() {
        let mut set = RangeSet::new();
        set.insert(10..20).unwrap();
        set.insert(30..40).unwrap();
        assert_eq!(set.missing(50), vec![0..10, 20..30, 40..50]);
        assert_eq!(set.contiguous_prefix(), 0);
        assert!(set.covers(12..18) && set.covers(30..40) && !set.covers(15..25));
        assert!(set.intersects(15..25) && !set.intersects(20..30));
        assert_eq!(set.len(), 20);
        assert_eq!(set.end(), 40);
        assert!(!set.is_complete(40));

        let mut gappy = RangeSet::new();
        for i in 0..RangeSet::MAX_GAPS as u64 {
            gappy.insert(i * 10..i * 10 + 5).unwrap();
        }
        let past = RangeSet::MAX_GAPS as u64 * 10;
        assert_eq!(
            gappy.insert(past..past + 1),
            Err(TooManyGaps {
                limit: RangeSet::MAX_GAPS
            })
        );
        // Filling a gap still works at the limit.
        assert_eq!(pairs(&gappy.insert(5..10).unwrap()), [(5, 10)]);
    }

    #[test]
    fn matches_a_bitmap_under_random_inserts() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |bound: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % bound
        };
        for _ in 0..200 {
            let mut set = RangeSet::new();
            let mut bitmap = [false; 256];
            for _ in 0..20 {
                let start = next(256);
                let end = (start + next(40)).min(256);
                let fresh = set.insert(start..end).unwrap();
                let expected_fresh = (start..end).filter(|&i| !bitmap[i as usize]).count() as u64;
                assert_eq!(
                    fresh.iter().map(|r| r.end - r.start).sum::<u64>(),
                    expected_fresh
                );
                for i in start..end {
                    bitmap[i as usize] = true;
                }
                assert_eq!(set.len(), bitmap.iter().filter(|&&b| b).count() as u64);
                let prefix = bitmap.iter().take_while(|&&b| b).count() as u64;
                assert_eq!(set.contiguous_prefix(), prefix);
            }
        }
    }
}
