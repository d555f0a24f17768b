//! Generator settings. The producer's flags map onto the first six.

use std::time::Duration;

use flowline_model::{DEFAULT_MAX_RECORD_BYTES, Timestamp};
use serde::{Deserialize, Serialize};

/// Everything that shapes the data set. The same value always yields the
/// same records, byte for byte.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GenConfig {
    pub seed: u64,
    /// Number of distinct customers (each with at least one address).
    pub customers: u32,
    /// Number of sales.
    pub sales: u64,
    /// Sales per second of event time. 0 means "as fast as possible" for the
    /// producer; event time then advances by `nominal_step` per sale.
    pub rate: f64,
    /// Event time of the first event.
    pub start_time: Timestamp,
    /// Share of all emitted records that are bad, 0..=0.5. Bad records are
    /// added next to the good ones, so the good data set does not depend on it.
    pub bad_record_ratio: f64,
    /// Sales arrive up to this much out of event-time order.
    #[serde(with = "humantime_serde")]
    pub max_out_of_order: Duration,
    /// Share of sales whose event time is pulled back (within the bound).
    pub out_of_order_share: f64,
    /// Event-time step per sale when `rate` is 0.
    #[serde(with = "humantime_serde")]
    pub nominal_step: Duration,
    /// Size of the item catalogue.
    pub items: u32,
    /// Number of promotions.
    pub promos: u32,
    /// Zipf exponent of item popularity (1.0 is classic Zipf).
    pub zipf_exponent: f64,
    /// Share of sales carrying a promo that is active for their item.
    pub promo_share: f64,
    /// Share of sales carrying a promo that does not apply (inactive at the
    /// sale time, for another item, or unknown).
    pub stale_promo_share: f64,
    /// Share of customers present before the first sale; the rest sign up
    /// during the run.
    pub initial_customer_share: f64,
    /// Per sale, the probability that some customer changes (moves, or
    /// changes details, or has an address corrected).
    pub change_rate: f64,
    /// Share of entity versions published late, after sales that need them.
    pub late_version_share: f64,
    /// A late version is published at most this much event time late.
    #[serde(with = "humantime_serde")]
    pub max_version_delay: Duration,
    /// Share of sales naming a customer that never exists.
    pub orphan_sale_share: f64,
    /// Share of sales naming an item outside the catalogue.
    pub unknown_item_share: f64,
    /// Size of an `oversized` bad record: above the model's default limit,
    /// below the 1 MiB Kinesis limit so it can still be sent.
    pub oversized_bytes: usize,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            seed: 42,
            customers: 1_000,
            sales: 10_000,
            rate: 100.0,
            start_time: Timestamp::from_millis(1_704_067_200_000).expect("2024-01-01"),
            bad_record_ratio: 0.0,
            max_out_of_order: Duration::from_secs(1),
            out_of_order_share: 0.1,
            nominal_step: Duration::from_millis(1),
            items: 500,
            promos: 100,
            zipf_exponent: 1.1,
            promo_share: 0.2,
            stale_promo_share: 0.03,
            initial_customer_share: 0.7,
            change_rate: 0.02,
            late_version_share: 0.05,
            max_version_delay: Duration::from_secs(5),
            orphan_sale_share: 0.001,
            unknown_item_share: 0.001,
            oversized_bytes: DEFAULT_MAX_RECORD_BYTES + 4096,
        }
    }
}

impl GenConfig {
    /// Problems with the settings, each naming the setting.
    pub fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        let share = |name: &str, v: f64, max: f64, p: &mut Vec<String>| {
            if !(0.0..=max).contains(&v) {
                p.push(format!("{name}: must be between 0 and {max}, got {v}"));
            }
        };
        if self.customers == 0 {
            p.push("customers: must be at least 1".into());
        }
        if !(self.rate.is_finite() && self.rate >= 0.0) {
            p.push(format!(
                "rate: must be >= 0 (0 = as fast as possible), got {}",
                self.rate
            ));
        }
        if self.rate == 0.0 && self.nominal_step.is_zero() {
            p.push("nominal_step: must be > 0".into());
        }
        if self.items == 0 {
            p.push("items: must be at least 1".into());
        }
        if !(self.zipf_exponent.is_finite() && self.zipf_exponent >= 0.0) {
            p.push(format!(
                "zipf_exponent: must be >= 0, got {}",
                self.zipf_exponent
            ));
        }
        share("bad_record_ratio", self.bad_record_ratio, 0.5, &mut p);
        share("out_of_order_share", self.out_of_order_share, 1.0, &mut p);
        share("promo_share", self.promo_share, 1.0, &mut p);
        share("stale_promo_share", self.stale_promo_share, 1.0, &mut p);
        share(
            "initial_customer_share",
            self.initial_customer_share,
            1.0,
            &mut p,
        );
        share("change_rate", self.change_rate, 1.0, &mut p);
        share("late_version_share", self.late_version_share, 1.0, &mut p);
        share("orphan_sale_share", self.orphan_sale_share, 1.0, &mut p);
        share("unknown_item_share", self.unknown_item_share, 1.0, &mut p);
        if self.promo_share + self.stale_promo_share > 1.0 {
            p.push("promo_share + stale_promo_share: must be <= 1".into());
        }
        if self.max_out_of_order > Duration::from_secs(3600) {
            p.push("max_out_of_order: must be at most 1h".into());
        }
        if self.max_version_delay > Duration::from_secs(3600) {
            p.push("max_version_delay: must be at most 1h".into());
        }
        if self.oversized_bytes < DEFAULT_MAX_RECORD_BYTES + 1024
            || self.oversized_bytes >= 1024 * 1024
        {
            p.push(format!(
                "oversized_bytes: must be at least {} and below 1048576, got {}",
                DEFAULT_MAX_RECORD_BYTES + 1024,
                self.oversized_bytes
            ));
        }
        // The timeline must stay in the representable range.
        let span_ms = self.sales as f64 * self.step_ms() + 86_400_000.0;
        if self.start_time.millis() as f64 + span_ms
            > flowline_model::Timestamp::MAX.millis() as f64
        {
            p.push("start_time: the run would end after year 9999".into());
        }
        p
    }

    /// Event-time milliseconds between consecutive sales (fractional).
    pub fn step_ms(&self) -> f64 {
        if self.rate > 0.0 {
            1000.0 / self.rate
        } else {
            self.nominal_step.as_secs_f64() * 1000.0
        }
    }

    /// Event-time span of the sales, in milliseconds (at least 1 minute, so
    /// promo windows have room even for tiny runs).
    pub fn span_ms(&self) -> i64 {
        ((self.sales as f64 * self.step_ms()) as i64).max(60_000)
    }
}
