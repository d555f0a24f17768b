//! Reference data: items and promotions (loaded from S3, not streamed).

use serde::{Deserialize, Serialize};

use crate::error::ModelError;
use crate::fields::{FieldSpec, FieldType as T, Fields, spec};
use crate::money::{DiscountPct, Money};
use crate::parse::Record;
use crate::time::Timestamp;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub item_id: String,
    pub name: String,
    pub category: String,
    pub brand: String,
    pub list_price: Money,
}

/// A discount on one item during `[starts_at, ends_at)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promo {
    pub promo_id: String,
    pub item_id: String,
    pub discount_pct: DiscountPct,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
}

impl Promo {
    /// The join rule of DESIGN.md section 4: this promo applies to a sale of
    /// `item_id` at `t` when it is for that item and `starts_at <= t < ends_at`.
    pub fn applies_to(&self, item_id: &str, t: Timestamp) -> bool {
        self.item_id == item_id && self.starts_at <= t && t < self.ends_at
    }
}

impl Record for Item {
    const NAME: &'static str = "item";
    const FIELDS: &'static [FieldSpec] = &[
        spec("item_id", T::String),
        spec("name", T::String),
        spec("category", T::String),
        spec("brand", T::String),
        spec("list_price", T::Money),
    ];

    fn from_fields(f: &Fields<'_>) -> Result<Self, ModelError> {
        Ok(Item {
            item_id: f.id("item_id")?,
            name: f.string("name")?,
            category: f.id("category")?,
            brand: f.string("brand")?,
            list_price: f.money("list_price")?,
        })
    }
}

impl Record for Promo {
    const NAME: &'static str = "promo";
    const FIELDS: &'static [FieldSpec] = &[
        spec("promo_id", T::String),
        spec("item_id", T::String),
        spec("discount_pct", T::Percent),
        spec("starts_at", T::Time),
        spec("ends_at", T::Time),
    ];

    fn from_fields(f: &Fields<'_>) -> Result<Self, ModelError> {
        let promo = Promo {
            promo_id: f.id("promo_id")?,
            item_id: f.id("item_id")?,
            discount_pct: f.percent("discount_pct")?,
            starts_at: f.time("starts_at")?,
            ends_at: f.time("ends_at")?,
        };
        if promo.ends_at <= promo.starts_at {
            return Err(f.bad("ends_at", "must be after starts_at"));
        }
        Ok(promo)
    }
}
