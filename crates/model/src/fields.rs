//! The strict reader behind every parse function.
//!
//! A record is read in two steps: the whole payload is checked as one JSON
//! object whose values are kept as raw text slices (no copies), then each
//! field the type needs is looked up and converted on its own. That way every
//! error names the field it is about, and checks such as "must be >= 0" or
//! "not RFC 3339" are worded by us rather than by a generic deserializer.
//!
//! Unknown fields are tolerated: producers can add a field before every
//! consumer knows it (a rolling upgrade must not dead-letter a whole stream),
//! and the archive keeps the raw record anyway. Duplicate known fields are
//! rejected, because which of the two values "wins" would be arbitrary.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::error::ModelError;
use crate::money::{DiscountPct, Money};
use crate::time::Timestamp;

/// The JSON type a field has on the wire (also drives CSV → JSON conversion
/// in replay, see [`FieldSpec`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    String,
    NullableString,
    Integer,
    Float,
    Money,
    Percent,
    Time,
    /// Anything nested (objects, arrays); only in derived records.
    Json,
}

/// One field of a record type, in wire order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldSpec {
    pub name: &'static str,
    pub ty: FieldType,
}

pub(crate) const fn spec(name: &'static str, ty: FieldType) -> FieldSpec {
    FieldSpec { name, ty }
}

/// A parsed JSON object: field name → raw value text, in input order.
pub struct Fields<'a> {
    entries: EntryVec<'a>,
    /// Prefix for nested objects so errors read `location.lat`.
    prefix: String,
}

impl<'a> Fields<'a> {
    /// Parses `bytes` as exactly one JSON object.
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Fields<'a>, ModelError> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let entries = de
            .deserialize_map(ObjectVisitor)
            .and_then(|entries| de.end().map(|()| entries))
            .map_err(bad_json)?;
        let fields = Fields {
            entries,
            prefix: String::new(),
        };
        fields.reject_duplicates()?;
        Ok(fields)
    }

    /// Duplicate keys make a record ambiguous (which value would a reader
    /// take?), so any duplicate, known field or not, is rejected. Done once
    /// per record by sorting the key hashes.
    fn reject_duplicates(&self) -> Result<(), ModelError> {
        let mut hashes: Vec<u64> = self.entries.iter().map(|e| e.0).collect();
        hashes.sort_unstable();
        if hashes.windows(2).all(|w| w[0] != w[1]) {
            return Ok(());
        }
        for (i, (h, key, _)) in self.entries.iter().enumerate() {
            if self.entries[..i]
                .iter()
                .any(|(h2, k2, _)| h2 == h && k2 == key)
            {
                return Err(ModelError::bad_field(self.name(key), "duplicate field"));
            }
        }
        Ok(())
    }

    fn nested(raw: &'a RawValue, prefix: String) -> Result<Fields<'a>, ModelError> {
        let entries = serde_json::from_str::<Entries<'a>>(raw.get())
            .map_err(|_| ModelError::bad_field(prefix.trim_end_matches('.'), "expected an object"))?
            .0;
        let fields = Fields { entries, prefix };
        fields.reject_duplicates()?;
        Ok(fields)
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.lookup(name).is_some()
    }

    fn lookup(&self, name: &str) -> Option<&'a RawValue> {
        let h = key_hash(name);
        self.entries
            .iter()
            .find(|(h2, k, _)| *h2 == h && k == name)
            .map(|e| e.2)
    }

    fn name(&self, name: &str) -> String {
        format!("{}{}", self.prefix, name)
    }

    /// The raw value, `None` when absent.
    fn raw(&self, name: &str) -> Result<Option<&'a RawValue>, ModelError> {
        Ok(self.lookup(name))
    }

    /// Present and not null.
    fn required(&self, name: &str) -> Result<&'a RawValue, ModelError> {
        match self.raw(name)? {
            None => Err(ModelError::missing(self.name(name))),
            Some(v) if v.get() == "null" => {
                Err(ModelError::bad_field(self.name(name), "must not be null"))
            }
            Some(v) => Ok(v),
        }
    }

    /// Absent or null → `None`.
    fn optional(&self, name: &str) -> Result<Option<&'a RawValue>, ModelError> {
        Ok(self.raw(name)?.filter(|v| v.get() != "null"))
    }

    fn expect(&self, name: &str, v: &RawValue, want: JsonKind) -> Result<(), ModelError> {
        let got = JsonKind::of(v);
        if got == want {
            Ok(())
        } else {
            Err(ModelError::bad_field(
                self.name(name),
                format!("expected {}, found {}", want.article(), got.article()),
            ))
        }
    }

    /// The string's content, borrowed from the input unless it has escapes.
    fn str_of(&self, name: &str, v: &'a RawValue) -> Result<Cow<'a, str>, ModelError> {
        self.expect(name, v, JsonKind::String)?;
        let text = v.get();
        let inner = &text[1..text.len() - 1];
        if !inner.contains('\\') {
            // Validated by the object parse: without escapes the text is the value.
            return Ok(Cow::Borrowed(inner));
        }
        serde_json::from_str::<String>(text)
            .map(Cow::Owned)
            .map_err(|e| ModelError::bad_field(self.name(name), e.to_string()))
    }

    fn string_of(&self, name: &str, v: &'a RawValue) -> Result<String, ModelError> {
        self.str_of(name, v).map(Cow::into_owned)
    }

    /// A required string (may be empty).
    pub(crate) fn string(&self, name: &str) -> Result<String, ModelError> {
        let v = self.required(name)?;
        self.string_of(name, v)
    }

    /// A required, non-empty string: identifiers.
    pub(crate) fn id(&self, name: &str) -> Result<String, ModelError> {
        let s = self.string(name)?;
        if s.trim().is_empty() {
            return Err(ModelError::bad_field(self.name(name), "must not be empty"));
        }
        Ok(s)
    }

    /// A string that may be null or absent; an empty string means null.
    pub(crate) fn opt_string(&self, name: &str) -> Result<Option<String>, ModelError> {
        match self.optional(name)? {
            None => Ok(None),
            Some(v) => Ok(Some(self.string_of(name, v)?).filter(|s| !s.is_empty())),
        }
    }

    /// A required integer within `min..=max`.
    pub(crate) fn int(&self, name: &str, min: i64, max: i64) -> Result<i64, ModelError> {
        let v = self.required(name)?;
        self.expect(name, v, JsonKind::Number)?;
        let n: i64 = v
            .get()
            .parse()
            .map_err(|_| ModelError::bad_field(self.name(name), "expected an integer"))?;
        if n < min {
            return Err(ModelError::bad_field(
                self.name(name),
                format!("must be >= {min}"),
            ));
        }
        if n > max {
            return Err(ModelError::bad_field(
                self.name(name),
                format!("must be <= {max}"),
            ));
        }
        Ok(n)
    }

    pub(crate) fn u64(&self, name: &str) -> Result<u64, ModelError> {
        self.int(name, 0, i64::MAX).map(|n| n as u64)
    }

    /// A required number within `min..=max`.
    pub(crate) fn float(&self, name: &str, min: f64, max: f64) -> Result<f64, ModelError> {
        let v = self.required(name)?;
        self.expect(name, v, JsonKind::Number)?;
        let x: f64 = v
            .get()
            .parse()
            .map_err(|_| ModelError::bad_field(self.name(name), "expected a number"))?;
        if !(min..=max).contains(&x) {
            return Err(ModelError::bad_field(
                self.name(name),
                format!("must be between {min} and {max}"),
            ));
        }
        Ok(x)
    }

    /// A required, non-negative amount of money.
    pub(crate) fn money(&self, name: &str) -> Result<Money, ModelError> {
        let v = self.required(name)?;
        self.expect(name, v, JsonKind::Number)?;
        let m =
            Money::parse_decimal(v.get()).map_err(|r| ModelError::bad_field(self.name(name), r))?;
        if m < Money::ZERO {
            return Err(ModelError::bad_field(self.name(name), "must be >= 0"));
        }
        Ok(m)
    }

    pub(crate) fn percent(&self, name: &str) -> Result<DiscountPct, ModelError> {
        let v = self.required(name)?;
        self.expect(name, v, JsonKind::Number)?;
        DiscountPct::parse_decimal(v.get()).map_err(|r| ModelError::bad_field(self.name(name), r))
    }

    pub(crate) fn time(&self, name: &str) -> Result<Timestamp, ModelError> {
        let v = self.required(name)?;
        let s = self.str_of(name, v)?;
        Timestamp::parse_rfc3339(&s).map_err(|r| ModelError::bad_field(self.name(name), r))
    }

    /// A required string that must be one of a closed set of names.
    pub(crate) fn choice<T>(
        &self,
        name: &str,
        parse: impl Fn(&str) -> Option<T>,
        allowed: &str,
    ) -> Result<T, ModelError> {
        let s = self.string(name)?;
        parse(&s).ok_or_else(|| {
            ModelError::bad_field(self.name(name), format!("must be one of {allowed}"))
        })
    }

    pub(crate) fn opt_bool(&self, name: &str) -> Result<Option<bool>, ModelError> {
        match self.optional(name)? {
            None => Ok(None),
            Some(v) => {
                self.expect(name, v, JsonKind::Bool)?;
                Ok(Some(v.get() == "true"))
            }
        }
    }

    /// A nested object that may be null or absent.
    pub(crate) fn opt_object(&self, name: &str) -> Result<Option<Fields<'a>>, ModelError> {
        match self.optional(name)? {
            None => Ok(None),
            Some(v) => {
                self.expect(name, v, JsonKind::Object)?;
                Fields::nested(v, format!("{}.", self.name(name))).map(Some)
            }
        }
    }

    /// A required array of strings.
    pub(crate) fn string_array(&self, name: &str) -> Result<Vec<String>, ModelError> {
        let v = self.required(name)?;
        self.expect(name, v, JsonKind::Array)?;
        serde_json::from_str(v.get())
            .map_err(|_| ModelError::bad_field(self.name(name), "expected an array of strings"))
    }

    pub(crate) fn bad(&self, name: &str, reason: impl Into<String>) -> ModelError {
        ModelError::bad_field(self.name(name), reason)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum JsonKind {
    String,
    Number,
    Bool,
    Null,
    Object,
    Array,
}

impl JsonKind {
    fn of(v: &RawValue) -> JsonKind {
        match v.get().as_bytes().first() {
            Some(b'"') => JsonKind::String,
            Some(b't' | b'f') => JsonKind::Bool,
            Some(b'n') => JsonKind::Null,
            Some(b'{') => JsonKind::Object,
            Some(b'[') => JsonKind::Array,
            _ => JsonKind::Number,
        }
    }

    fn article(self) -> &'static str {
        match self {
            JsonKind::String => "a string",
            JsonKind::Number => "a number",
            JsonKind::Bool => "a boolean",
            JsonKind::Null => "null",
            JsonKind::Object => "an object",
            JsonKind::Array => "an array",
        }
    }
}

fn bad_json(e: serde_json::Error) -> ModelError {
    let (line, column) = (e.line(), e.column());
    let text = e.to_string();
    let suffix = format!(" at line {line} column {column}");
    let message = text.strip_suffix(&suffix).unwrap_or(&text).to_string();
    ModelError::BadJson {
        line,
        column,
        message,
    }
}

/// (hash of the key, key, raw value)
type EntryVec<'a> = Vec<(u64, Cow<'a, str>, &'a RawValue)>;

/// FNV-1a: keys are short, and the hash only speeds up lookups.
fn key_hash(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

struct Entries<'a>(EntryVec<'a>);

impl<'de> Deserialize<'de> for Entries<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ObjectVisitor).map(Entries)
    }
}

struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = EntryVec<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(16));
        while let Some(Key(key)) = map.next_key()? {
            entries.push((key_hash(&key), key, map.next_value::<&'de RawValue>()?));
        }
        Ok(entries)
    }
}

/// A key borrowed from the input when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_carry_position_once() {
        let e = Fields::parse(b"{\"a\": }").err().unwrap();
        assert_eq!(e.error_type(), "bad_json");
        assert_eq!(
            e.to_string(),
            "invalid JSON at line 1 column 7: expected value"
        );
        let e = Fields::parse(b"[1]").err().unwrap();
        assert_eq!(e.error_type(), "bad_json");
        assert!(e.to_string().contains("expected a JSON object"), "{e}");
        let e = Fields::parse(b"{} x").err().unwrap();
        assert!(e.to_string().contains("trailing characters"), "{e}");
        let e = Fields::parse(b"{\"a\": \"\xff\"}").err().unwrap();
        assert_eq!(e.error_type(), "bad_json");
    }

    #[test]
    fn escaped_keys_and_values_are_read() {
        let f = Fields::parse(br#"{"c\u0069ty": "K\u00f6ln", "n": 3}"#).unwrap();
        assert_eq!(f.string("city").unwrap(), "Köln");
        assert_eq!(f.int("n", 0, 5).unwrap(), 3);
    }

    #[test]
    fn field_errors_name_the_field() {
        let f = Fields::parse(br#"{"q": -1, "s": 5, "n": null, "x": 1.5, "e": " "}"#).unwrap();
        assert_eq!(
            f.int("q", 0, 10).unwrap_err().to_string(),
            "field \"q\": must be >= 0"
        );
        assert_eq!(
            f.string("s").unwrap_err().to_string(),
            "field \"s\": expected a string, found a number"
        );
        assert_eq!(
            f.string("n").unwrap_err().to_string(),
            "field \"n\": must not be null"
        );
        assert_eq!(
            f.string("zz").unwrap_err().to_string(),
            "missing field \"zz\""
        );
        assert_eq!(
            f.int("x", 0, 9).unwrap_err().to_string(),
            "field \"x\": expected an integer"
        );
        assert_eq!(
            f.id("e").unwrap_err().to_string(),
            "field \"e\": must not be empty"
        );
        assert_eq!(f.opt_string("n").unwrap(), None);
        assert_eq!(f.opt_string("absent").unwrap(), None);
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        let e = Fields::parse(br#"{"a": 1, "d": 1, "d\u0020": 0, "d": 2}"#)
            .err()
            .unwrap();
        assert_eq!(e.to_string(), "field \"d\": duplicate field");
        assert!(Fields::parse(br#"{"a": 1, "b": 1, "ab": 1}"#).is_ok());
    }

    #[test]
    fn nested_errors_use_a_path() {
        let f = Fields::parse(br#"{"location": {"lat": "x"}}"#).unwrap();
        let loc = f.opt_object("location").unwrap().unwrap();
        assert_eq!(
            loc.float("lat", -90.0, 90.0).unwrap_err().to_string(),
            "field \"location.lat\": expected a number, found a string"
        );
        assert_eq!(
            loc.float("lon", -1.0, 1.0).unwrap_err().to_string(),
            "missing field \"location.lon\""
        );
    }
}
