//! The `Range` request header (RFC 9110 section 14.2) for one file of known size.
//!
//! One range is served as asked (`206`); a header this module cannot use is ignored and the whole
//! file served (`200`), as RFC 9110 allows for an unknown unit or a malformed set; several ranges are
//! also answered with the whole file rather than `multipart/byteranges`: the clients of this system
//! resume one download at a time, and the whole file is always a correct answer to a range request.

use std::ops::Range;

/// What a `Range` header asks of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// Serve the whole file (no header, an unusable header, or several ranges).
    Whole,
    /// Serve these bytes (non-empty, within the file).
    Partial(Range<u64>),
    /// No byte of the file is in the asked range: `416` with `Content-Range: bytes */<size>`.
    Unsatisfiable,
}

/// Reads a `Range` header value for a file of `size` bytes.
///
/// `bytes=a-b`, `bytes=a-` and `bytes=-n` (the last `n` bytes) are understood; the unit is matched
/// without regard to case, whitespace around the list's elements is allowed, and numbers too large
/// for 64 bits are read as "beyond any file".
pub fn parse(header: &str, size: u64) -> RangeRequest {
    let header = header.trim();
    let Some((unit, set)) = header.split_once('=') else {
        return RangeRequest::Whole;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return RangeRequest::Whole;
    }
    let mut specs = set.split(',').map(str::trim).filter(|s| !s.is_empty());
    let (Some(spec), None) = (specs.next(), specs.next()) else {
        return RangeRequest::Whole;
    };
    let Some((first, last)) = spec.split_once('-') else {
        return RangeRequest::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // A suffix: the last `n` bytes.
        let Some(n) = number(last) else {
            return RangeRequest::Whole;
        };
        if n == 0 || size == 0 {
            return RangeRequest::Unsatisfiable;
        }
        return RangeRequest::Partial(size - n.min(size)..size);
    }
    let Some(start) = number(first) else {
        return RangeRequest::Whole;
    };
    let end = if last.is_empty() {
        u64::MAX
    } else {
        match number(last) {
            Some(last) if last >= start => last.saturating_add(1),
            // `first > last` makes the range-spec invalid, and with it the header.
            _ => return RangeRequest::Whole,
        }
    };
    if start >= size {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Partial(start..end.min(size))
}

/// Digits only (no sign, no space); a value past `u64::MAX` saturates.
fn number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.bytes().fold(0u64, |acc, b| {
        acc.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

/// `Content-Range: bytes <first>-<last>/<size>` for the served range (non-empty).
pub fn content_range(range: &Range<u64>, size: u64) -> String {
    format!(
        "bytes {}-{}/{size}",
        range.start,
        range.end.saturating_sub(1)
    )
}

/// `Content-Range: bytes */<size>` of a `416` answer.
pub fn unsatisfied_range(size: u64) -> String {
    format!("bytes */{size}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangeRequest::{Partial, Unsatisfiable, Whole};

    #[test]
    fn range_headers_read_as_rfc_9110_says() {
        let size = 1000;
        let cases: &[(&str, RangeRequest)] = &[
            ("bytes=0-499", Partial(0..500)),
            ("bytes=500-999", Partial(500..1000)),
            ("bytes=500-", Partial(500..1000)),
            ("bytes=500-5000", Partial(500..1000)),
            ("bytes=-200", Partial(800..1000)),
            ("bytes=-5000", Partial(0..1000)),
            ("bytes=0-0", Partial(0..1)),
            ("bytes=999-999", Partial(999..1000)),
            ("BYTES=1-2", Partial(1..3)),
            (" bytes = 1 - 2 ", Partial(1..3)),
            ("bytes=, 1-2 ,", Partial(1..3)),
            ("bytes=1-18446744073709551616", Partial(1..1000)),
            ("bytes=1000-", Unsatisfiable),
            ("bytes=1000-2000", Unsatisfiable),
            ("bytes=18446744073709551616-", Unsatisfiable),
            ("bytes=-0", Unsatisfiable),
            // Several ranges: the whole file.
            ("bytes=0-1,5-6", Whole),
            // Unusable headers are ignored.
            ("", Whole),
            ("bytes", Whole),
            ("bytes=", Whole),
            ("items=0-1", Whole),
            ("bytes=2-1", Whole),
            ("bytes=a-b", Whole),
            ("bytes=+1-2", Whole),
            ("bytes=1", Whole),
            ("bytes=-", Whole),
            ("bytes=--1", Whole),
            ("bytes=0x10-", Whole),
        ];
        for (header, expected) in cases {
            assert_eq!(&parse(header, size), expected, "{header:?}");
        }
    }

    #[test]
    fn an_empty_file_satisfies_no_range() {
        assert_eq!(parse("bytes=0-", 0), Unsatisfiable);
        assert_eq!(parse("bytes=-1", 0), Unsatisfiable);
        assert_eq!(parse("bytes=0-0", 0), Unsatisfiable);
    }

    #[test]
    fn content_range_values() {
        assert_eq!(content_range(&(0..500), 1000), "bytes 0-499/1000");
        assert_eq!(content_range(&(999..1000), 1000), "bytes 999-999/1000");
        assert_eq!(unsatisfied_range(1000), "bytes */1000");
    }
}
