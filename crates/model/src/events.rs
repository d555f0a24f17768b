//! The raw events: customer and address versions, and sales.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ModelError;
use crate::fields::{FieldSpec, FieldType as T, Fields, spec};
use crate::money::{DiscountPct, Money, order_amounts};
use crate::parse::Record;
use crate::time::Timestamp;

/// Sanity bound on a sale's quantity.
pub const MAX_QUANTITY: i64 = 1_000_000;

/// A new version of a customer, valid from `updated_at`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub customer_id: String,
    pub address_id: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub phone: String,
    pub segment: String,
    pub updated_at: Timestamp,
}

/// A new version of an address, valid from `updated_at`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Address {
    pub address_id: String,
    pub street: String,
    pub city: String,
    pub state: String,
    pub postcode: String,
    pub country: String,
    pub lat: f64,
    pub lon: f64,
    pub updated_at: Timestamp,
}

/// One sale of `quantity` units of an item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sale {
    pub sale_id: String,
    pub customer_id: String,
    pub item_id: String,
    pub promo_id: Option<String>,
    pub quantity: u32,
    pub unit_price: Money,
    pub event_time: Timestamp,
}

impl Record for Customer {
    const NAME: &'static str = "customer";
    const FIELDS: &'static [FieldSpec] = &[
        spec("customer_id", T::String),
        spec("address_id", T::String),
        spec("first_name", T::String),
        spec("last_name", T::String),
        spec("email", T::String),
        spec("phone", T::String),
        spec("segment", T::String),
        spec("updated_at", T::Time),
    ];

    fn from_fields(f: &Fields<'_>) -> Result<Self, ModelError> {
        Ok(Customer {
            customer_id: f.id("customer_id")?,
            address_id: f.id("address_id")?,
            first_name: f.string("first_name")?,
            last_name: f.string("last_name")?,
            email: f.string("email")?,
            phone: f.string("phone")?,
            segment: f.id("segment")?,
            updated_at: f.time("updated_at")?,
        })
    }

    fn check_type(f: &Fields<'_>) -> Result<(), ModelError> {
        check_known_type(f)
    }
}

impl Record for Address {
    const NAME: &'static str = "address";
    const FIELDS: &'static [FieldSpec] = &[
        spec("address_id", T::String),
        spec("street", T::String),
        spec("city", T::String),
        spec("state", T::String),
        spec("postcode", T::String),
        spec("country", T::String),
        spec("lat", T::Float),
        spec("lon", T::Float),
        spec("updated_at", T::Time),
    ];

    fn from_fields(f: &Fields<'_>) -> Result<Self, ModelError> {
        Ok(Address {
            address_id: f.id("address_id")?,
            street: f.string("street")?,
            city: f.string("city")?,
            state: f.string("state")?,
            postcode: f.string("postcode")?,
            country: f.string("country")?,
            lat: f.float("lat", -90.0, 90.0)?,
            lon: f.float("lon", -180.0, 180.0)?,
            updated_at: f.time("updated_at")?,
        })
    }

    fn check_type(f: &Fields<'_>) -> Result<(), ModelError> {
        check_known_type(f)
    }
}

impl Record for Sale {
    const NAME: &'static str = "sale";
    const FIELDS: &'static [FieldSpec] = &[
        spec("sale_id", T::String),
        spec("customer_id", T::String),
        spec("item_id", T::String),
        spec("promo_id", T::NullableString),
        spec("quantity", T::Integer),
        spec("unit_price", T::Money),
        spec("event_time", T::Time),
    ];

    fn from_fields(f: &Fields<'_>) -> Result<Self, ModelError> {
        let sale = Sale {
            sale_id: f.id("sale_id")?,
            customer_id: f.id("customer_id")?,
            item_id: f.id("item_id")?,
            promo_id: f.opt_string("promo_id")?,
            quantity: f.int("quantity", 0, MAX_QUANTITY)? as u32,
            unit_price: f.money("unit_price")?,
            event_time: f.time("event_time")?,
        };
        // The joiner computes amounts without a failure path: refuse here.
        if order_amounts(sale.quantity, sale.unit_price, DiscountPct::ZERO).is_none() {
            return Err(f.bad("unit_price", "quantity × unit_price is out of range"));
        }
        Ok(sale)
    }

    fn check_type(f: &Fields<'_>) -> Result<(), ModelError> {
        check_known_type(f)
    }
}

/// A raw stream; each carries one entity type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamKind {
    Customers,
    Addresses,
    Sales,
}

impl StreamKind {
    pub const ALL: [StreamKind; 3] = [
        StreamKind::Customers,
        StreamKind::Addresses,
        StreamKind::Sales,
    ];

    /// Default stream name (DESIGN.md section 2); names are configurable.
    pub fn default_stream_name(self) -> &'static str {
        match self {
            StreamKind::Customers => "customers",
            StreamKind::Addresses => "addresses",
            StreamKind::Sales => "sales",
        }
    }

    /// The field whose value is the partition key.
    pub fn partition_key_field(self) -> &'static str {
        match self {
            StreamKind::Customers | StreamKind::Sales => "customer_id",
            StreamKind::Addresses => "address_id",
        }
    }

    pub fn fields(self) -> &'static [FieldSpec] {
        match self {
            StreamKind::Customers => Customer::FIELDS,
            StreamKind::Addresses => Address::FIELDS,
            StreamKind::Sales => Sale::FIELDS,
        }
    }

    /// The type of a raw event from the names of its fields: `sale_id` →
    /// sale, else `customer_id` → customer, else `address_id` → address (a
    /// sale also names a customer, a customer also names an address). `None`
    /// is an unknown event type.
    pub fn detect(has: impl Fn(&str) -> bool) -> Option<StreamKind> {
        if has("sale_id") {
            Some(StreamKind::Sales)
        } else if has("customer_id") {
            Some(StreamKind::Customers)
        } else if has("address_id") {
            Some(StreamKind::Addresses)
        } else {
            None
        }
    }
}

impl fmt::Display for StreamKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.default_stream_name())
    }
}

impl FromStr for StreamKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "customers" | "customer" => Ok(StreamKind::Customers),
            "addresses" | "address" => Ok(StreamKind::Addresses),
            "sales" | "sale" => Ok(StreamKind::Sales),
            other => Err(format!(
                "unknown stream kind {other:?} (customers, addresses, sales)"
            )),
        }
    }
}

/// A record of a raw stream that carries no identifier of any known event
/// type is an unknown type (rather than, say, a sale missing `sale_id`).
/// Otherwise it is parsed as the stream's type and its own errors reported.
fn check_known_type(f: &Fields<'_>) -> Result<(), ModelError> {
    match StreamKind::detect(|name| f.has(name)) {
        Some(_) => Ok(()),
        None => Err(unknown_type()),
    }
}

pub(crate) fn unknown_type() -> ModelError {
    ModelError::UnknownType {
        detail: "no \"sale_id\", \"customer_id\" or \"address_id\" field".to_string(),
    }
}

/// Any raw event.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Customer(Customer),
    Address(Address),
    Sale(Sale),
}

impl Event {
    pub fn kind(&self) -> StreamKind {
        match self {
            Event::Customer(_) => StreamKind::Customers,
            Event::Address(_) => StreamKind::Addresses,
            Event::Sale(_) => StreamKind::Sales,
        }
    }

    /// The entity id used as the Kinesis partition key (DESIGN.md section 2).
    pub fn partition_key(&self) -> &str {
        match self {
            Event::Customer(c) => &c.customer_id,
            Event::Address(a) => &a.address_id,
            Event::Sale(s) => &s.customer_id,
        }
    }

    /// `updated_at` of a version, `event_time` of a sale.
    pub fn event_time(&self) -> Timestamp {
        match self {
            Event::Customer(c) => c.updated_at,
            Event::Address(a) => a.updated_at,
            Event::Sale(s) => s.event_time,
        }
    }

    /// The canonical JSON of the event.
    pub fn to_json(&self) -> Vec<u8> {
        let r = match self {
            Event::Customer(c) => serde_json::to_vec(c),
            Event::Address(a) => serde_json::to_vec(a),
            Event::Sale(s) => serde_json::to_vec(s),
        };
        r.expect("events always serialise")
    }
}
