//! Percentiles of latency samples in microseconds.

use serde::{Deserialize, Serialize};

/// p50/p99/p99.9 and the sample count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Samples.
    pub n: usize,
    /// Median, µs.
    pub p50: f64,
    /// 99th percentile, µs.
    pub p99: f64,
    /// 99.9th percentile, µs.
    pub p999: f64,
}

/// The value at quantile `q` (nearest rank) of sorted samples.
pub fn quantile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Summarises samples (sorts them in place).
pub fn summarize(samples: &mut [u32]) -> Summary {
    samples.sort_unstable();
    Summary {
        n: samples.len(),
        p50: quantile(samples, 0.5),
        p99: quantile(samples, 0.99),
        p999: quantile(samples, 0.999),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let mut v: Vec<u32> = (1..=1000).rev().collect();
        let s = summarize(&mut v);
        assert_eq!((s.n, s.p50, s.p99, s.p999), (1000, 500.0, 990.0, 999.0));
        assert!(quantile(&[], 0.5).is_nan());
        assert_eq!(quantile(&[7], 0.999), 7.0);
    }
}
