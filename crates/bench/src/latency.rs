//! Percentiles of latency samples in microseconds.

use serde::{Deserialize, Serialize};

/// Reads an `f64` that JSON may hold as `null` (serde_json writes NaN as `null`) back as NaN.
pub fn f64_or_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// p50/p99/p99.9 and the sample count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Samples.
    pub n: usize,
    /// Median, µs.
    #[serde(deserialize_with = "crate::latency::f64_or_nan")]
    pub p50: f64,
    /// 99th percentile, µs.
    #[serde(deserialize_with = "crate::latency::f64_or_nan")]
    pub p99: f64,
    /// 99.9th percentile, µs.
    #[serde(deserialize_with = "crate::latency::f64_or_nan")]
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

    #[test]
    fn nan_survives_json() {
        let s = Summary {
            n: 0,
            p50: f64::NAN,
            p99: 1.0,
            p999: 2.0,
        };
        let back: Summary = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert!(back.p50.is_nan());
        assert_eq!((back.p99, back.p999), (1.0, 2.0));
    }
}
