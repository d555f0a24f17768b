//! Random draws on top of the raw ChaCha8 stream.
//!
//! Only `next_u64` of `rand_chacha` is used, with our own mapping to ranges,
//! so the data set depends on the ChaCha8 stream alone (fixed by its
//! specification) and not on how a `rand` version maps bits to ranges.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub struct Draw(ChaCha8Rng);

impl Draw {
    /// An independent stream for one purpose (catalogue, people, sales...):
    /// each purpose has its own stream so that, for example, changing the
    /// number of sales does not change the item catalogue.
    pub fn new(seed: u64, purpose: u64) -> Draw {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(purpose);
        Draw(rng)
    }

    /// A stream for one entity version, so it can be regenerated on demand
    /// without keeping its fields in memory.
    pub fn for_entity(seed: u64, purpose: u64, index: u64, version: u64) -> Draw {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        rng.set_stream(purpose << 32 | version);
        Draw(rng)
    }

    pub fn u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in 0..n (multiply-shift; the bias is below 2^-32 for the
    /// sizes used here). `n` must be > 0.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.0.next_u64()) * u128::from(n)) >> 64) as u64
    }

    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }

    /// Uniform in lo..=hi.
    pub fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }

    /// Picks from `(value, weight)` pairs.
    pub fn weighted<'a, T>(&mut self, items: &'a [(T, u32)]) -> &'a T {
        let total: u32 = items.iter().map(|(_, w)| w).sum();
        let mut x = self.below(u64::from(total)) as u32;
        for (v, w) in items {
            if x < *w {
                return v;
            }
            x -= w;
        }
        &items[items.len() - 1].0
    }
}

/// Zipf-like sampler over ranks 0..n: P(rank k) ∝ 1 / (k + 1)^s, by binary
/// search in a cumulative table (n is a catalogue size, so the table is small).
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    pub fn new(n: usize, s: f64) -> Zipf {
        let mut acc = 0.0;
        let mut cdf: Vec<f64> = (0..n)
            .map(|k| {
                acc += 1.0 / ((k + 1) as f64).powf(s);
                acc
            })
            .collect();
        for c in &mut cdf {
            *c /= acc;
        }
        Zipf { cdf }
    }

    pub fn sample(&self, d: &mut Draw) -> usize {
        let u = d.unit();
        self.cdf
            .partition_point(|&c| c <= u)
            .min(self.cdf.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_deterministic_and_independent() {
        let a: Vec<u64> = (0..5).map(|_| Draw::new(1, 1).u64()).collect();
        let mut d = Draw::new(1, 1);
        let b: Vec<u64> = (0..5).map(|_| d.u64()).collect();
        assert!(a.iter().all(|x| *x == a[0]));
        assert_eq!(b[0], a[0]);
        assert_ne!(Draw::new(1, 2).u64(), a[0]);
        assert_ne!(Draw::new(2, 1).u64(), a[0]);
        assert_ne!(
            Draw::for_entity(1, 1, 5, 0).u64(),
            Draw::for_entity(1, 1, 5, 1).u64()
        );
    }

    #[test]
    fn ranges_stay_in_bounds() {
        let mut d = Draw::new(7, 0);
        for _ in 0..10_000 {
            assert!(d.below(3) < 3);
            let x = d.between(-2, 2);
            assert!((-2..=2).contains(&x));
            let u = d.unit();
            assert!((0.0..1.0).contains(&u));
        }
    }

    #[test]
    fn zipf_is_skewed_towards_low_ranks() {
        let z = Zipf::new(100, 1.0);
        let mut d = Draw::new(3, 0);
        let mut counts = [0u32; 100];
        for _ in 0..100_000 {
            counts[z.sample(&mut d)] += 1;
        }
        assert!(counts[0] > counts[1] && counts[1] > counts[5] && counts[5] > counts[50]);
        // Rank 1 has probability 1 / H(100) ≈ 0.193.
        assert!((17_000..21_500).contains(&counts[0]), "{}", counts[0]);
    }
}
