//! The enriched order: a sale joined with its customer, address, item and
//! promo (`orders-enriched` stream, `orders` index).

use serde::{Deserialize, Serialize};

use crate::error::ModelError;
use crate::events::MAX_QUANTITY;
use crate::fields::{FieldSpec, FieldType as T, Fields, spec};
use crate::mask::round_coord;
use crate::money::{DiscountPct, Money, order_amounts};
use crate::parse::Record;
use crate::time::Timestamp;

/// Coordinates rounded to 2 decimals (masking).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    pub lat: f64,
    pub lon: f64,
}

impl GeoPoint {
    pub fn rounded(lat: f64, lon: f64) -> GeoPoint {
        GeoPoint {
            lat: round_coord(lat),
            lon: round_coord(lon),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JoinStatus {
    Complete,
    Partial,
}

impl JoinStatus {
    /// The name on the wire (`complete`, `partial`), also a bounded metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            JoinStatus::Complete => "complete",
            JoinStatus::Partial => "partial",
        }
    }
}

/// What a sale referenced but could not be joined, in the order DESIGN.md
/// lists them (the derived `Ord` is that order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Missing {
    Customer,
    Address,
    Item,
    Promo,
}

impl Missing {
    pub fn as_str(self) -> &'static str {
        match self {
            Missing::Customer => "customer",
            Missing::Address => "address",
            Missing::Item => "item",
            Missing::Promo => "promo",
        }
    }

    fn parse(s: &str) -> Option<Missing> {
        [
            Missing::Customer,
            Missing::Address,
            Missing::Item,
            Missing::Promo,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnrichedOrder {
    pub order_id: String,
    pub event_time: Timestamp,
    pub customer_id: String,
    pub customer_segment: Option<String>,
    pub email_sha256: Option<String>,
    pub address_id: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postcode: Option<String>,
    pub country: Option<String>,
    pub location: Option<GeoPoint>,
    pub item_id: String,
    pub item_name: Option<String>,
    pub category: Option<String>,
    pub brand: Option<String>,
    pub promo_id: Option<String>,
    pub discount_pct: DiscountPct,
    pub quantity: u32,
    pub unit_price: Money,
    pub gross_amount: Money,
    pub discount_amount: Money,
    pub net_amount: Money,
    pub join_status: JoinStatus,
    pub missing: Vec<Missing>,
    pub enriched_at: Timestamp,
}

impl Record for EnrichedOrder {
    const NAME: &'static str = "enriched order";
    const FIELDS: &'static [FieldSpec] = &[
        spec("order_id", T::String),
        spec("event_time", T::Time),
        spec("customer_id", T::String),
        spec("customer_segment", T::NullableString),
        spec("email_sha256", T::NullableString),
        spec("address_id", T::NullableString),
        spec("city", T::NullableString),
        spec("state", T::NullableString),
        spec("postcode", T::NullableString),
        spec("country", T::NullableString),
        spec("location", T::Json),
        spec("item_id", T::String),
        spec("item_name", T::NullableString),
        spec("category", T::NullableString),
        spec("brand", T::NullableString),
        spec("promo_id", T::NullableString),
        spec("discount_pct", T::Percent),
        spec("quantity", T::Integer),
        spec("unit_price", T::Money),
        spec("gross_amount", T::Money),
        spec("discount_amount", T::Money),
        spec("net_amount", T::Money),
        spec("join_status", T::String),
        spec("missing", T::Json),
        spec("enriched_at", T::Time),
    ];

    fn from_fields(f: &Fields<'_>) -> Result<Self, ModelError> {
        let location = match f.opt_object("location")? {
            None => None,
            Some(loc) => Some(GeoPoint {
                lat: loc.float("lat", -90.0, 90.0)?,
                lon: loc.float("lon", -180.0, 180.0)?,
            }),
        };
        let mut missing = Vec::new();
        for name in f.string_array("missing")? {
            let m = Missing::parse(&name).ok_or_else(|| {
                f.bad(
                    "missing",
                    "entries must be customer, address, item or promo",
                )
            })?;
            if missing.last().is_some_and(|last| *last >= m) {
                return Err(f.bad(
                    "missing",
                    "entries must be unique and in the order customer, address, item, promo",
                ));
            }
            missing.push(m);
        }
        let order = EnrichedOrder {
            order_id: f.id("order_id")?,
            event_time: f.time("event_time")?,
            customer_id: f.id("customer_id")?,
            customer_segment: f.opt_string("customer_segment")?,
            email_sha256: f.opt_string("email_sha256")?,
            address_id: f.opt_string("address_id")?,
            city: f.opt_string("city")?,
            state: f.opt_string("state")?,
            postcode: f.opt_string("postcode")?,
            country: f.opt_string("country")?,
            location,
            item_id: f.id("item_id")?,
            item_name: f.opt_string("item_name")?,
            category: f.opt_string("category")?,
            brand: f.opt_string("brand")?,
            promo_id: f.opt_string("promo_id")?,
            discount_pct: f.percent("discount_pct")?,
            quantity: f.int("quantity", 0, MAX_QUANTITY)? as u32,
            unit_price: f.money("unit_price")?,
            gross_amount: f.money("gross_amount")?,
            discount_amount: f.money("discount_amount")?,
            net_amount: f.money("net_amount")?,
            join_status: f.choice(
                "join_status",
                |s| match s {
                    "complete" => Some(JoinStatus::Complete),
                    "partial" => Some(JoinStatus::Partial),
                    _ => None,
                },
                "complete, partial",
            )?,
            missing,
            enriched_at: f.time("enriched_at")?,
        };
        // Downstream sums these amounts: insist they are the joiner's.
        let expected = order_amounts(order.quantity, order.unit_price, order.discount_pct);
        match expected {
            Some(a) if a.gross != order.gross_amount => {
                return Err(f.bad("gross_amount", "does not equal quantity × unit_price"));
            }
            Some(a) if a.discount != order.discount_amount => {
                return Err(f.bad(
                    "discount_amount",
                    "does not equal gross_amount × discount_pct / 100",
                ));
            }
            Some(a) if a.net != order.net_amount => {
                return Err(f.bad(
                    "net_amount",
                    "does not equal gross_amount − discount_amount",
                ));
            }
            None => return Err(f.bad("gross_amount", "out of range")),
            Some(_) => {}
        }
        let complete = order.missing.is_empty();
        if complete != (order.join_status == JoinStatus::Complete) {
            return Err(f.bad(
                "join_status",
                "must be complete exactly when missing is empty",
            ));
        }
        Ok(order)
    }
}
