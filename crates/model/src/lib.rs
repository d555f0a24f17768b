//! The event model of Flowline: every record that crosses a stream, typed,
//! with one strict parser and the shared arithmetic (DESIGN.md sections 3–4).
//!
//! - Parse untrusted bytes with [`ParseConfig::parse`] (or `parse_sale` and
//!   friends with the default limits). Errors name the field and carry a
//!   bounded [`ModelError::error_type`] for dead-letter routing.
//! - Serialise with serde as usual: times are always
//!   `YYYY-MM-DDTHH:MM:SS.mmmZ`, money always two decimals.
//! - Amounts come from [`order_amounts`] and [`average`] only, so the joiner,
//!   the aggregator, rebuilds and tests agree to the cent.
//! - Unknown extra fields are tolerated (see `fields.rs` for why); a raw
//!   record with no known entity id is an `unknown_type`.

mod dead_letter;
mod enriched;
mod error;
mod events;
mod fields;
mod mask;
mod metric;
mod money;
mod parse;
mod reference;
mod time;

pub use dead_letter::{DeadLetter, MAX_DEAD_LETTER_PAYLOAD_BYTES, MAX_REASON_CHARS, RecordSource};
pub use enriched::{EnrichedOrder, GeoPoint, JoinStatus, Missing};
pub use error::{ModelError, error_types};
pub use events::{Address, Customer, Event, MAX_QUANTITY, Sale, StreamKind};
pub use fields::{FieldSpec, FieldType, Fields};
pub use mask::{email_sha256, round_coord};
pub use metric::{Dimension, UNKNOWN_KEY, WindowMetric, metric_id};
pub use money::{
    DiscountPct, MAX_CENTS, Money, OrderAmounts, average, order_amounts, round_div,
    write_hundredths,
};
pub use parse::{
    DEFAULT_MAX_RECORD_BYTES, ParseConfig, Record, parse, parse_address, parse_customer,
    parse_item, parse_promo, parse_sale,
};
pub use reference::{Item, Promo};
pub use time::Timestamp;

#[cfg(test)]
mod tests;
