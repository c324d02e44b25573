//! Byte-level scans of UTF-8 text for the per-file hot path. Each scan is a count of
//! positions where a predicate on three consecutive bytes holds, written so the
//! compiler can vectorise it: no early exit, no call, no bounds check in the loop.

/// Counts the positions `i` of `bytes` where `predicate([bytes[i], bytes[i + 1],
/// bytes[i + 2]])` holds, reading 0 past the end (0 never continues a UTF-8 sequence).
#[inline]
pub fn count_triples(bytes: &[u8], predicate: impl Fn([u8; 3]) -> bool) -> usize {
    // Counts accumulate in a u8 per chunk of at most 255 positions (so they cannot
    // overflow): byte-wide sums are what the vectoriser turns into SIMD.
    let n_body = bytes.len().saturating_sub(2);
    let mut body = 0usize;
    let mut start = 0;
    while start < n_body {
        let end = (start + 255).min(n_body);
        let (first, second, third) = (
            &bytes[start..end],
            &bytes[start + 1..end + 1],
            &bytes[start + 2..end + 2],
        );
        let chunk = first
            .iter()
            .zip(second)
            .zip(third)
            .fold(0u8, |sum, ((&a, &b), &c)| {
                sum + u8::from(predicate([a, b, c]))
            });
        body += usize::from(chunk);
        start = end;
    }
    let tail = match *bytes {
        [] => 0,
        [only] => usize::from(predicate([only, 0, 0])),
        [.., second_last, last] => {
            usize::from(predicate([second_last, last, 0])) + usize::from(predicate([last, 0, 0]))
        }
    };
    body + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_position_including_the_last_two() {
        assert_eq!(count_triples(b"", |_| true), 0);
        assert_eq!(count_triples(b"a", |_| true), 1);
        assert_eq!(count_triples(b"abcd", |_| true), 4);
        assert_eq!(
            count_triples(b"abab", |[a, b, _]| a == b'a' && b == b'b'),
            2
        );
        assert_eq!(
            count_triples(b"xab", |[a, b, c]| a == b'b' && b == 0 && c == 0),
            1
        );
    }
}
