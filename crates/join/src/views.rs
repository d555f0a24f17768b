//! What the join keeps of a customer or address version: only the fields
//! that reach the output, already masked. Names, email, phone and street are
//! dropped at the door, so they never sit in the cache, and the email hash
//! is computed once per version instead of once per sale.
//!
//! The kept strings share one allocation: a cached view is read for every
//! sale, and with many entities each separate string is one more cache miss.

use flowline_model::{Address, Customer, GeoPoint, Timestamp, email_sha256};

/// A version held by the cache, ordered by `updated_at`.
pub trait Versioned {
    fn updated_at(&self) -> Timestamp;
}

/// `N` strings in one buffer.
#[derive(Clone, Debug, PartialEq)]
struct Packed<const N: usize> {
    text: Box<str>,
    ends: [usize; N],
}

impl<const N: usize> Packed<N> {
    fn new(parts: [&str; N]) -> Self {
        let mut text = String::with_capacity(parts.iter().map(|p| p.len()).sum());
        let mut ends = [0; N];
        for (end, part) in ends.iter_mut().zip(parts) {
            text.push_str(part);
            *end = text.len();
        }
        Packed {
            text: text.into_boxed_str(),
            ends,
        }
    }

    fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct CustomerView {
    /// address_id, segment, email_sha256.
    parts: Packed<3>,
    pub updated_at: Timestamp,
}

impl CustomerView {
    pub fn address_id(&self) -> &str {
        self.parts.get(0)
    }

    pub fn segment(&self) -> &str {
        self.parts.get(1)
    }

    /// Of the normalised email (see [`flowline_model::email_sha256`]).
    pub fn email_sha256(&self) -> &str {
        self.parts.get(2)
    }
}

impl From<&Customer> for CustomerView {
    fn from(c: &Customer) -> Self {
        let hash = email_sha256(&c.email);
        CustomerView {
            parts: Packed::new([&c.address_id, &c.segment, &hash]),
            updated_at: c.updated_at,
        }
    }
}

impl Versioned for CustomerView {
    fn updated_at(&self) -> Timestamp {
        self.updated_at
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct AddressView {
    /// city, state, postcode, country.
    parts: Packed<4>,
    /// Rounded to 2 decimals.
    pub location: GeoPoint,
    pub updated_at: Timestamp,
}

impl AddressView {
    pub fn city(&self) -> &str {
        self.parts.get(0)
    }

    pub fn state(&self) -> &str {
        self.parts.get(1)
    }

    pub fn postcode(&self) -> &str {
        self.parts.get(2)
    }

    pub fn country(&self) -> &str {
        self.parts.get(3)
    }
}

impl From<&Address> for AddressView {
    fn from(a: &Address) -> Self {
        AddressView {
            parts: Packed::new([&a.city, &a.state, &a.postcode, &a.country]),
            location: GeoPoint::rounded(a.lat, a.lon),
            updated_at: a.updated_at,
        }
    }
}

impl Versioned for AddressView {
    fn updated_at(&self) -> Timestamp {
        self.updated_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_parts_read_back_including_empty_ones() {
        let p = Packed::new(["ab", "", "cde"]);
        assert_eq!((p.get(0), p.get(1), p.get(2)), ("ab", "", "cde"));
        let p = Packed::new(["", ""]);
        assert_eq!((p.get(0), p.get(1)), ("", ""));
    }
}
