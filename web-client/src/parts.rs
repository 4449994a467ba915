//! The pieces of a file received in chunks, as (offset, length) spans: how far the file is complete
//! from its start, and which pieces make the whole file, in order, each byte once (a resumed
//! delivery sends some bytes again).

/// The bytes from 0 that the spans cover without a gap.
pub fn contiguous_prefix(spans: &[(u64, u64)]) -> u64 {
    let mut sorted: Vec<(u64, u64)> = spans.to_vec();
    sorted.sort_unstable();
    let mut end = 0;
    for (start, len) in sorted {
        if start > end {
            break;
        }
        end = end.max(start + len);
    }
    end
}

/// The pieces that make the file: (index into `spans`, bytes to skip at its start), in file order.
/// Pieces wholly covered by earlier ones are left out.
pub fn assembly(spans: &[(u64, u64)]) -> Vec<(usize, u64)> {
    let mut order: Vec<usize> = (0..spans.len()).collect();
    order.sort_by_key(|&index| spans[index].0);
    let mut plan = Vec::new();
    let mut end = 0;
    for index in order {
        let (start, len) = spans[index];
        let stop = start + len;
        if stop <= end {
            continue;
        }
        plan.push((index, end.saturating_sub(start)));
        end = stop;
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resumed_delivery_is_assembled_once_in_order() {
        // 0..30 and 30..60 arrived, the connection dropped, and the delivery resumed at 50.
        let spans = [(0, 30), (30, 30), (50, 30), (80, 20)];
        assert_eq!(contiguous_prefix(&spans), 100);
        assert_eq!(assembly(&spans), vec![(0, 0), (1, 0), (2, 10), (3, 0)]);
    }

    #[test]
    fn a_gap_stops_the_prefix_and_covered_pieces_are_left_out() {
        assert_eq!(contiguous_prefix(&[(0, 10), (20, 10)]), 10);
        assert_eq!(contiguous_prefix(&[]), 0);
        let spans = [(10, 5), (0, 20), (20, 5)];
        assert_eq!(assembly(&spans), vec![(1, 0), (2, 0)]);
    }
}
