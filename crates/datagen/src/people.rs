//! Customers and addresses, regenerated on demand from (seed, id, version).
//!
//! Only a few counters per customer are kept ([`CustomerState`]); the
//! fields of any version are drawn from a random stream derived from the
//! entity and version. That keeps memory at a few bytes per customer even
//! for millions of them.

use flowline_model::{Address, Customer, Timestamp};

use crate::draw::Draw;
use crate::names::{
    CITIES, EMAIL_DOMAINS, FIRST_NAMES, LAST_NAMES, SEGMENTS, STREET_KINDS, STREETS,
};

const CUSTOMER_STREAM: u64 = 3;
const ADDRESS_STREAM: u64 = 4;

pub fn customer_id(index: u64) -> String {
    format!("C{:07}", index + 1)
}

pub fn address_id(address_no: u64) -> String {
    format!("A{:07}", address_no + 1)
}

/// What the generator remembers about a customer.
#[derive(Clone, Copy, Debug)]
pub struct CustomerState {
    pub version: u32,
    pub address_no: u32,
    pub address_version: u32,
    /// `updated_at` of the latest customer and address versions (ms); new
    /// versions are strictly later so "the latest version" is never a tie.
    pub customer_updated: i64,
    pub address_updated: i64,
}

pub fn customer_version(
    seed: u64,
    index: u64,
    state: &CustomerState,
    updated_at: Timestamp,
) -> Customer {
    let mut base = Draw::for_entity(seed, CUSTOMER_STREAM, index, 0);
    let first = *base.pick(FIRST_NAMES);
    let last = *base.pick(LAST_NAMES);
    // Details that change between versions: contact data and segment.
    let mut v = Draw::for_entity(seed, CUSTOMER_STREAM, index, u64::from(state.version) + 1);
    let domain = v.pick(EMAIL_DOMAINS);
    let email = if state.version > 0 && v.chance(0.5) {
        format!(
            "{}{}.v{}@{domain}",
            first.to_lowercase(),
            index + 1,
            state.version
        )
    } else {
        format!(
            "{}.{}{}@{domain}",
            first.to_lowercase(),
            last.to_lowercase(),
            index + 1
        )
    };
    Customer {
        customer_id: customer_id(index),
        address_id: address_id(u64::from(state.address_no)),
        first_name: first.to_string(),
        last_name: last.to_string(),
        email,
        phone: format!("+1-555-{:03}-{:04}", v.below(1000), v.below(10_000)),
        segment: v.weighted(SEGMENTS).to_string(),
        updated_at,
    }
}

pub fn address_version(seed: u64, address_no: u64, version: u32, updated_at: Timestamp) -> Address {
    let mut base = Draw::for_entity(seed, ADDRESS_STREAM, address_no, 0);
    let &(city, state, country, lat, lon, prefix) = base.pick(CITIES);
    let street = format!(
        "{} {} {}",
        base.between(1, 9999),
        base.pick(STREETS),
        base.pick(STREET_KINDS)
    );
    let lat = lat + (base.unit() - 0.5) * 0.1;
    let lon = lon + (base.unit() - 0.5) * 0.1;
    let mut postcode_suffix = base.below(100);
    if version > 0 {
        // A correction: same place, postcode fixed.
        postcode_suffix =
            Draw::for_entity(seed, ADDRESS_STREAM, address_no, u64::from(version)).below(100);
    }
    let postcode = if country == "US" {
        format!("{prefix}{postcode_suffix:02}")
    } else {
        format!("{prefix} {}", postcode_suffix + 100)
    };
    Address {
        address_id: address_id(address_no),
        street,
        city: city.to_string(),
        state: state.to_string(),
        postcode,
        country: country.to_string(),
        lat: (lat * 1e6).round() / 1e6,
        lon: (lon * 1e6).round() / 1e6,
        updated_at,
    }
}
