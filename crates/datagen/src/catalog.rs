//! Reference data (items and promos) and item popularity.

use flowline_model::{DiscountPct, Item, Money, Promo, Timestamp};

use crate::config::GenConfig;
use crate::draw::{Draw, Zipf};
use crate::names::{ADJECTIVES, BRANDS, CATEGORIES, DISCOUNTS, NOUNS};

/// Purposes of the independent random streams (see [`Draw::new`]).
pub(crate) const ITEMS_STREAM: u64 = 1;
pub(crate) const PROMOS_STREAM: u64 = 2;

pub fn item_id(n: u64) -> String {
    format!("I{n:06}")
}

pub fn promo_id(n: u64) -> String {
    format!("P{n:05}")
}

/// Items, promos and the popularity of items, all from the seed.
pub struct Catalog {
    pub items: Vec<Item>,
    pub promos: Vec<Promo>,
    zipf: Zipf,
    /// Popularity rank → index in `items`: shuffled, so the best sellers are
    /// not simply the first ids.
    by_rank: Vec<u32>,
}

impl Catalog {
    pub fn generate(cfg: &GenConfig) -> Catalog {
        let mut d = Draw::new(cfg.seed, ITEMS_STREAM);
        let items: Vec<Item> = (1..=u64::from(cfg.items))
            .map(|n| make_item(&mut d, n))
            .collect();
        let mut by_rank: Vec<u32> = (0..cfg.items).collect();
        for i in (1..by_rank.len()).rev() {
            by_rank.swap(i, d.index(i + 1));
        }
        let zipf = Zipf::new(items.len(), cfg.zipf_exponent);
        let mut catalog = Catalog {
            items,
            promos: Vec::new(),
            zipf,
            by_rank,
        };
        let mut d = Draw::new(cfg.seed, PROMOS_STREAM);
        catalog.promos = (1..=u64::from(cfg.promos))
            .map(|n| {
                let item = catalog.popular_item(&mut d);
                make_promo(&mut d, cfg, n, &catalog.items[item].item_id)
            })
            .collect();
        catalog
    }

    /// Index of an item drawn by popularity.
    pub fn popular_item(&self, d: &mut Draw) -> usize {
        self.by_rank[self.zipf.sample(d)] as usize
    }

    /// Index of the item a promo is for.
    pub fn item_index(&self, item_id: &str) -> Option<usize> {
        // Ids are `I` + 1-based number, assigned in order.
        let n: usize = item_id.strip_prefix('I')?.parse().ok()?;
        (1..=self.items.len()).contains(&n).then(|| n - 1)
    }
}

fn make_item(d: &mut Draw, n: u64) -> Item {
    let brand = *d.pick(BRANDS);
    let name = format!("{brand} {} {}", d.pick(ADJECTIVES), d.pick(NOUNS));
    // Log-uniform between 1.00 and 500.00: many cheap items, a few dear ones.
    let price = (1.0f64.ln() + d.unit() * (500.0f64.ln() - 1.0f64.ln())).exp();
    Item {
        item_id: item_id(n),
        name,
        category: d.pick(CATEGORIES).to_string(),
        brand: brand.to_string(),
        list_price: Money::from_cents((price * 100.0).round() as i64).expect("in range"),
    }
}

/// Promo windows are laid over the sales timeline so that at any time about
/// half of the promos are active: starts from a quarter span before the run
/// to 60 % into it, lengths 30..80 % of the span, whole seconds.
fn make_promo(d: &mut Draw, cfg: &GenConfig, n: u64, item_id: &str) -> Promo {
    let span = cfg.span_ms() as f64;
    let offset = ((d.unit() * 0.85 - 0.25) * span) as i64;
    let length = (((0.3 + d.unit() * 0.5) * span) as i64).max(60_000);
    let start = cfg.start_time.saturating_add_millis(offset);
    let start =
        Timestamp::from_millis(start.millis() - start.millis().rem_euclid(1000)).unwrap_or(start);
    Promo {
        promo_id: promo_id(n),
        item_id: item_id.to_string(),
        discount_pct: DiscountPct::from_percent(*d.pick(DISCOUNTS)).expect("<= 100"),
        starts_at: start,
        ends_at: start.saturating_add_millis(length),
    }
}
