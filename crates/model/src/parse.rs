//! Entry points of the strict parser.

use serde::{Deserialize, Serialize};

use crate::error::ModelError;
use crate::events::{Address, Customer, Event, Sale, StreamKind};
use crate::fields::{FieldSpec, Fields};
use crate::reference::{Item, Promo};

/// Default record size limit: 256 KiB. Kinesis accepts up to 1 MiB, but no
/// event of this platform comes near 1 KiB; anything this large is a bug or
/// abuse and would only slow every stage down.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 256 * 1024;

/// A type the strict parser can read.
pub trait Record: Sized + Serialize {
    /// Singular name used in messages ("sale").
    const NAME: &'static str;
    /// The fields on the wire, in the order they are written.
    const FIELDS: &'static [FieldSpec];

    #[doc(hidden)]
    fn from_fields(fields: &Fields<'_>) -> Result<Self, ModelError>;

    /// Rejects records that are not of any known type (raw events only).
    #[doc(hidden)]
    fn check_type(_fields: &Fields<'_>) -> Result<(), ModelError> {
        Ok(())
    }
}

/// Parser settings; embeddable in a service's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ParseConfig {
    /// Records larger than this are rejected as `oversized`.
    pub max_record_bytes: usize,
}

impl Default for ParseConfig {
    fn default() -> Self {
        ParseConfig {
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
        }
    }
}

impl ParseConfig {
    /// Problems with the settings, each naming the setting.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.max_record_bytes == 0 || self.max_record_bytes > 1024 * 1024 {
            problems.push(format!(
                "max_record_bytes: must be between 1 and 1048576 (the Kinesis record limit), got {}",
                self.max_record_bytes
            ));
        }
        problems
    }

    fn object<'a>(&self, bytes: &'a [u8]) -> Result<Fields<'a>, ModelError> {
        if bytes.len() > self.max_record_bytes {
            return Err(ModelError::Oversized {
                size: bytes.len(),
                max: self.max_record_bytes,
            });
        }
        Fields::parse(bytes)
    }

    /// Parses and validates one record of type `T`.
    pub fn parse<T: Record>(&self, bytes: &[u8]) -> Result<T, ModelError> {
        let fields = self.object(bytes)?;
        T::check_type(&fields)?;
        T::from_fields(&fields)
    }

    /// Parses a record read from the raw stream of `kind`.
    pub fn parse_event(&self, kind: StreamKind, bytes: &[u8]) -> Result<Event, ModelError> {
        match kind {
            StreamKind::Customers => self.parse(bytes).map(Event::Customer),
            StreamKind::Addresses => self.parse(bytes).map(Event::Address),
            StreamKind::Sales => self.parse(bytes).map(Event::Sale),
        }
    }

    /// Parses a raw event of any type, detected from its fields (replay
    /// input mixing types); see [`StreamKind::detect`].
    pub fn parse_any_event(&self, bytes: &[u8]) -> Result<Event, ModelError> {
        let fields = self.object(bytes)?;
        let kind =
            StreamKind::detect(|name| fields.has(name)).ok_or_else(crate::events::unknown_type)?;
        Ok(match kind {
            StreamKind::Customers => Event::Customer(Customer::from_fields(&fields)?),
            StreamKind::Addresses => Event::Address(Address::from_fields(&fields)?),
            StreamKind::Sales => Event::Sale(Sale::from_fields(&fields)?),
        })
    }
}

/// [`ParseConfig::parse`] with the default limits.
pub fn parse<T: Record>(bytes: &[u8]) -> Result<T, ModelError> {
    ParseConfig::default().parse(bytes)
}

pub fn parse_customer(bytes: &[u8]) -> Result<Customer, ModelError> {
    parse(bytes)
}

pub fn parse_address(bytes: &[u8]) -> Result<Address, ModelError> {
    parse(bytes)
}

pub fn parse_sale(bytes: &[u8]) -> Result<Sale, ModelError> {
    parse(bytes)
}

pub fn parse_item(bytes: &[u8]) -> Result<Item, ModelError> {
    parse(bytes)
}

pub fn parse_promo(bytes: &[u8]) -> Result<Promo, ModelError> {
    parse(bytes)
}
