//! The `TWINFEED_BENCH_*` environment settings the benchmarks read, with their defaults.

/// The number in the variable `name`, or `default` when it is unset or not a number.
pub fn number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(default)
}

/// The corpus sizes in TWINFEED_BENCH_SIZES (comma-separated), or `default`'s.
#[allow(dead_code)] // not every benchmark runs several sizes
pub fn sizes(default: &str) -> Vec<usize> {
    std::env::var("TWINFEED_BENCH_SIZES")
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|size| size.trim().parse().ok())
        .collect()
}
