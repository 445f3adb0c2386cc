//! Log-linear latency histograms in microseconds: exact below 64 µs, then 32 buckets per power
//! of two, so a quantile read from one is within 1/64 (1.6%) of the true value.
//!
//! Bucket `i` holds: `i` itself for `i < 64`; above, with `e = i / 32 + 4` and `s = i % 32`,
//! the values `[(32 + s) << (e - 5), (33 + s) << (e - 5))`. The widest bucket is 1/32 of its
//! lower bound, and a quantile answers with the bucket's middle, so it is off by at most half a
//! width: `|answer - true| <= true / 64`. Every `u64` has a bucket (1,920 in all).
//!
//! [`Histogram`] is the sparse form that is stored and merged; [`LiveHistogram`] is the dense
//! form the router records into for the current minute (a fixed array: recording never
//! allocates).

/// Sub-buckets per power of two, as a power of two.
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
/// Buckets needed for every `u64`.
pub const BUCKETS: usize = ((64 - SUB_BITS as usize) + 1) * SUB as usize;

/// The bucket holding `value`.
pub fn bucket_of(value: u64) -> u16 {
    if value < 2 * SUB {
        return value as u16;
    }
    let exponent = 63 - value.leading_zeros();
    let shift = exponent - SUB_BITS;
    let sub = (value >> shift) - SUB;
    ((u64::from(exponent) - u64::from(SUB_BITS) + 1) * SUB + sub) as u16
}

/// The smallest value of bucket `index`, and its width.
pub fn bucket_bounds(index: u16) -> (u64, u64) {
    let index = u64::from(index);
    if index < 2 * SUB {
        return (index, 1);
    }
    let shift = index / SUB - 1;
    let sub = index % SUB;
    ((SUB + sub) << shift, 1 << shift)
}

/// What a quantile answers for a value in bucket `index`: the bucket's middle.
fn representative(index: u16) -> u64 {
    let (low, width) = bucket_bounds(index);
    low + (width - 1) / 2
}

/// A sparse histogram: the buckets that hold values, in order, with their counts, and the
/// largest value recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    /// (bucket, count), buckets strictly increasing, counts above zero.
    buckets: Vec<(u16, u64)>,
    count: u64,
    max: u64,
}

impl Histogram {
    pub fn new() -> Histogram {
        Histogram::default()
    }

    /// A histogram of `values`.
    pub fn of(values: impl IntoIterator<Item = u64>) -> Histogram {
        let mut live = LiveHistogram::new();
        for value in values {
            live.record(value);
        }
        live.take()
    }

    /// A histogram from stored parts; `None` when the buckets are not increasing, a count is
    /// zero, a bucket does not exist or the maximum is not in the last bucket.
    pub fn from_parts(buckets: Vec<(u16, u64)>, max: u64) -> Option<Histogram> {
        let increasing = buckets.windows(2).all(|pair| pair[0].0 < pair[1].0);
        let valid = buckets
            .iter()
            .all(|&(bucket, count)| usize::from(bucket) < BUCKETS && count > 0);
        if !increasing || !valid {
            return None;
        }
        let count = buckets
            .iter()
            .try_fold(0u64, |sum, &(_, count)| sum.checked_add(count))?;
        // The maximum lies in the last bucket.
        if let Some(&(last, _)) = buckets.last() {
            if bucket_of(max) != last {
                return None;
            }
        }
        Some(Histogram {
            buckets,
            count,
            max: if count == 0 { 0 } else { max },
        })
    }

    /// The non-empty buckets with their counts, in order.
    pub fn buckets(&self) -> &[(u16, u64)] {
        &self.buckets
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The largest value recorded (exact), `None` when empty.
    pub fn max(&self) -> Option<u64> {
        (self.count > 0).then_some(self.max)
    }

    /// The value at quantile `q` (0.0 to 1.0): the `ceil(q * count)`-th smallest (at least the
    /// first), within 1/64 of it, and never above the maximum (exactly the maximum for the
    /// last rank). `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = rank(q, self.count);
        if rank == self.count {
            // The largest value is known exactly.
            return Some(self.max);
        }
        let mut seen = 0u64;
        for &(bucket, count) in &self.buckets {
            seen += count;
            if seen >= rank {
                return Some(representative(bucket).min(self.max));
            }
        }
        Some(self.max)
    }

    /// Adds `other`'s values to this histogram.
    pub fn merge(&mut self, other: &Histogram) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = other.clone();
            return;
        }
        let mut merged = Vec::with_capacity(self.buckets.len() + other.buckets.len());
        let (mut a, mut b) = (
            self.buckets.iter().peekable(),
            other.buckets.iter().peekable(),
        );
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(&&(x, m)), Some(&&(y, n))) if x == y => {
                    a.next();
                    b.next();
                    (x, m + n)
                }
                (Some(&&left), Some(&&right)) => {
                    if left.0 < right.0 {
                        a.next();
                        left
                    } else {
                        b.next();
                        right
                    }
                }
                (Some(&&left), None) => {
                    a.next();
                    left
                }
                (None, Some(&&right)) => {
                    b.next();
                    right
                }
                (None, None) => break,
            };
            merged.push(next);
        }
        self.buckets = merged;
        self.count += other.count;
        self.max = self.max.max(other.max);
    }

    /// The merge of many histograms at once (one dense pass: cheaper than merging pairwise).
    pub fn merge_all<'a>(histograms: impl IntoIterator<Item = &'a Histogram>) -> Histogram {
        let mut dense = vec![0u64; BUCKETS];
        let (mut count, mut max) = (0u64, 0u64);
        for histogram in histograms {
            for &(bucket, n) in &histogram.buckets {
                dense[usize::from(bucket)] += n;
            }
            count += histogram.count;
            if histogram.count > 0 {
                max = max.max(histogram.max);
            }
        }
        let buckets = dense
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(bucket, &n)| (bucket as u16, n))
            .collect();
        Histogram {
            buckets,
            count,
            max,
        }
    }
}

/// The 1-based rank of quantile `q` among `count` values.
fn rank(q: f64, count: u64) -> u64 {
    let q = if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) };
    ((q * count as f64).ceil() as u64).clamp(1, count)
}

/// A dense histogram for recording: a fixed array of counters, so that recording a value is
/// an increment and never allocates. [`LiveHistogram::take`] hands out the sparse form.
#[derive(Clone)]
pub struct LiveHistogram {
    counts: Box<[u32; BUCKETS]>,
    count: u64,
    max: u64,
    /// The lowest and highest bucket touched since the last take (no scan of the rest).
    low: u16,
    high: u16,
}

impl Default for LiveHistogram {
    fn default() -> LiveHistogram {
        LiveHistogram::new()
    }
}

impl std::fmt::Debug for LiveHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveHistogram")
            .field("count", &self.count)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl LiveHistogram {
    pub fn new() -> LiveHistogram {
        LiveHistogram {
            counts: Box::new([0; BUCKETS]),
            count: 0,
            max: 0,
            low: u16::MAX,
            high: 0,
        }
    }

    pub fn record(&mut self, value: u64) {
        let bucket = bucket_of(value);
        let slot = &mut self.counts[usize::from(bucket)];
        // A minute cannot hold 4 billion requests of one app; saturate rather than wrap.
        *slot = slot.saturating_add(1);
        self.count += 1;
        self.max = self.max.max(value);
        self.low = self.low.min(bucket);
        self.high = self.high.max(bucket);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The same values as a sparse histogram, without emptying this one.
    pub fn snapshot(&self) -> Histogram {
        if self.count == 0 {
            return Histogram::new();
        }
        let buckets: Vec<(u16, u64)> = (self.low..=self.high)
            .filter_map(|bucket| {
                let n = self.counts[usize::from(bucket)];
                (n > 0).then_some((bucket, u64::from(n)))
            })
            .collect();
        let count = buckets.iter().map(|&(_, n)| n).sum();
        Histogram {
            buckets,
            count,
            max: self.max,
        }
    }

    /// The values recorded so far as a sparse histogram; this one starts empty again.
    pub fn take(&mut self) -> Histogram {
        let histogram = self.snapshot();
        if self.count > 0 {
            self.counts[usize::from(self.low)..=usize::from(self.high)].fill(0);
        }
        self.count = 0;
        self.max = 0;
        self.low = u16::MAX;
        self.high = 0;
        histogram
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn buckets_cover_every_value_in_order() {
        for value in (0..100_000u64).chain([u64::MAX - 1, u64::MAX, 1 << 40, (1 << 40) - 1]) {
            let bucket = bucket_of(value);
            assert!(usize::from(bucket) < BUCKETS, "{value}");
            let (low, width) = bucket_bounds(bucket);
            assert!(
                low <= value && value - low < width,
                "{value} in {bucket}: {low}+{width}"
            );
            // At most 1/32 of the bucket's lower bound wide.
            assert!(width == 1 || width * 32 <= low, "{value}");
        }
        assert_eq!(usize::from(bucket_of(u64::MAX)), BUCKETS - 1);
        for bucket in 1..BUCKETS as u16 {
            let (low, _) = bucket_bounds(bucket);
            let (previous, width) = bucket_bounds(bucket - 1);
            assert_eq!(
                previous + width,
                low,
                "bucket {bucket} follows its neighbour"
            );
        }
    }

    #[test]
    fn empty_and_single() {
        let empty = Histogram::new();
        assert_eq!(empty.quantile(0.5), None);
        assert_eq!(empty.max(), None);
        let one = Histogram::of([1234]);
        assert_eq!(one.max(), Some(1234));
        let p50 = one.quantile(0.5).expect("a value");
        assert!(p50.abs_diff(1234) * 64 <= 1234, "{p50}");
        assert_eq!(one.quantile(1.0), Some(1234));
    }

    #[test]
    fn from_parts_refuses_what_no_histogram_holds() {
        assert!(Histogram::from_parts(vec![(3, 1), (2, 1)], 3).is_none());
        assert!(Histogram::from_parts(vec![(3, 0)], 3).is_none());
        assert!(Histogram::from_parts(vec![(BUCKETS as u16, 1)], 3).is_none());
        assert!(Histogram::from_parts(vec![(2, 1), (3, 2)], 2).is_none());
        let h = Histogram::from_parts(vec![(2, 1), (3, 2)], 3).expect("valid");
        assert_eq!(h.count(), 3);
    }

    #[test]
    fn take_empties_the_live_histogram() {
        let mut live = LiveHistogram::new();
        live.record(10);
        live.record(1_000_000);
        let first = live.take();
        assert_eq!(first.count(), 2);
        assert_eq!(live.take(), Histogram::new());
        live.record(5);
        assert_eq!(live.take(), Histogram::of([5]));
    }

    /// Latencies as they come: mostly small, a long tail, some huge.
    fn latencies() -> impl Strategy<Value = Vec<u64>> {
        proptest::collection::vec(
            prop_oneof![0u64..200, 0u64..100_000, 0u64..60_000_000, any::<u64>(),],
            1..400,
        )
    }

    proptest! {
        #[test]
        fn quantiles_are_within_the_stated_error(values in latencies(), q in 0.0f64..=1.0) {
            let histogram = Histogram::of(values.iter().copied());
            let mut sorted = values.clone();
            sorted.sort_unstable();
            let truth = sorted[(rank(q, sorted.len() as u64) - 1) as usize];
            let answer = histogram.quantile(q).expect("not empty");
            // |answer - truth| <= truth / 64, in integers.
            prop_assert!(
                u128::from(answer.abs_diff(truth)) * 64 <= u128::from(truth),
                "q={q} truth={truth} answer={answer}"
            );
            prop_assert_eq!(histogram.max(), sorted.last().copied());
            prop_assert_eq!(histogram.quantile(1.0), sorted.last().copied());
            prop_assert_eq!(histogram.count(), values.len() as u64);
        }

        #[test]
        fn merging_is_the_histogram_of_the_concatenation(a in latencies(), b in latencies(), c in latencies()) {
            let mut merged = Histogram::of(a.iter().copied());
            merged.merge(&Histogram::of(b.iter().copied()));
            let all: Vec<u64> = a.iter().chain(&b).copied().collect();
            prop_assert_eq!(&merged, &Histogram::of(all.iter().copied()));
            let parts = [Histogram::of(a.iter().copied()), Histogram::of(b.iter().copied()), Histogram::of(c.iter().copied())];
            let everything: Vec<u64> = all.iter().chain(&c).copied().collect();
            prop_assert_eq!(Histogram::merge_all(&parts), Histogram::of(everything));
            let mut empty = Histogram::new();
            empty.merge(&merged);
            prop_assert_eq!(empty, merged);
        }
    }
}
