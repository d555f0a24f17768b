//! Deliberately bad records, marked so tests can count them downstream.
//!
//! Marking: every bad record carries `"_bad":"<kind>"` as the first field of
//! its object. A malformed-JSON record is not parseable, so the marker is its
//! literal prefix instead: it starts with [`MALFORMED_PREFIX`]. To count bad
//! records in raw bytes, look for `"_bad":"` near the start.
//! The model tolerates unknown fields, so the marker itself never causes the
//! rejection: each record is rejected for its actual defect.

use flowline_model::{FieldType, StreamKind, error_types};
use serde_json::{Map, Value};

use crate::config::GenConfig;
use crate::draw::Draw;

/// The marker field.
pub const BAD_MARKER_FIELD: &str = "_bad";

/// Prefix of every malformed-JSON record.
pub const MALFORMED_PREFIX: &[u8] = b"{\"_bad\":\"malformed_json\",";

/// What is wrong with a bad record (and so how the model must reject it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BadKind {
    /// Truncated JSON: `bad_json`.
    MalformedJson,
    /// A required field removed: `missing_field` naming it.
    MissingField(&'static str),
    /// A field with a value of the wrong JSON type: `bad_field` naming it.
    WrongType(&'static str),
    /// An object of no known event type: `unknown_type`.
    UnknownType,
    /// Larger than the model's default limit: `oversized`.
    Oversized,
}

impl BadKind {
    /// The marker value.
    pub fn name(self) -> &'static str {
        match self {
            BadKind::MalformedJson => "malformed_json",
            BadKind::MissingField(_) => "missing_field",
            BadKind::WrongType(_) => "wrong_type",
            BadKind::UnknownType => "unknown_type",
            BadKind::Oversized => "oversized",
        }
    }

    /// The `error_type` the model must give it.
    pub fn expected_error_type(self) -> &'static str {
        match self {
            BadKind::MalformedJson => error_types::BAD_JSON,
            BadKind::MissingField(_) => error_types::MISSING_FIELD,
            BadKind::WrongType(_) => error_types::BAD_FIELD,
            BadKind::UnknownType => error_types::UNKNOWN_TYPE,
            BadKind::Oversized => error_types::OVERSIZED,
        }
    }

    /// The field the model's error must name, if any.
    pub fn field(self) -> Option<&'static str> {
        match self {
            BadKind::MissingField(f) | BadKind::WrongType(f) => Some(f),
            _ => None,
        }
    }
}

/// Builds a bad record from a good one of `stream`; returns the kind,
/// partition key and bytes. Rare path: clarity over speed.
pub(crate) fn make_bad(
    d: &mut Draw,
    cfg: &GenConfig,
    stream: StreamKind,
    good: &[u8],
    key: &str,
) -> (BadKind, String, Vec<u8>) {
    let mut obj: Map<String, Value> =
        serde_json::from_slice(good).expect("generated JSON is valid");
    let specs = stream.fields();
    let kind = match d.below(5) {
        0 => {
            // Cut before the closing brace: always invalid (unexpected end).
            let cut = 1 + d.index(good.len() - 2);
            let mut bytes = MALFORMED_PREFIX.to_vec();
            bytes.extend_from_slice(&good[1..cut]);
            return (BadKind::MalformedJson, key.to_string(), bytes);
        }
        1 => {
            // Not the nullable promo_id (absent means null), and not an
            // address's only id (that would make it an unknown type).
            let candidates: Vec<&'static str> = specs
                .iter()
                .filter(|s| s.ty != FieldType::NullableString)
                .filter(|s| !(stream == StreamKind::Addresses && s.name == "address_id"))
                .map(|s| s.name)
                .collect();
            let field = *d.pick(&candidates);
            obj.remove(field);
            BadKind::MissingField(field)
        }
        2 => {
            let spec = d.pick(specs);
            let wrong = match spec.ty {
                FieldType::String | FieldType::NullableString => Value::from(12345),
                FieldType::Time => Value::from(1_704_067_200_000i64),
                _ => Value::from(obj[spec.name].to_string()),
            };
            obj.insert(spec.name.to_string(), wrong);
            BadKind::WrongType(spec.name)
        }
        3 => {
            let n = d.below(1_000_000_000);
            obj = Map::new();
            obj.insert("return_id".into(), format!("R{n:09}").into());
            obj.insert("reason".into(), "damaged".into());
            obj.insert("refund_amount".into(), Value::from(12.5));
            obj.insert("requested_at".into(), cfg.start_time.to_string().into());
            let mut bytes = marked(BadKind::UnknownType, obj);
            bytes.shrink_to_fit();
            return (BadKind::UnknownType, format!("R{n:09}"), bytes);
        }
        _ => {
            let pad = cfg.oversized_bytes.saturating_sub(good.len() + 40);
            obj.insert("padding".into(), "x".repeat(pad).into());
            BadKind::Oversized
        }
    };
    (kind, key.to_string(), marked(kind, obj))
}

fn marked(kind: BadKind, obj: Map<String, Value>) -> Vec<u8> {
    // The marker goes first so it is visible in a prefix of the bytes.
    let mut out = format!("{{\"{BAD_MARKER_FIELD}\":\"{}\"", kind.name()).into_bytes();
    for (k, v) in obj {
        out.push(b',');
        serde_json::to_writer(&mut out, &k).expect("string");
        out.push(b':');
        serde_json::to_writer(&mut out, &v).expect("value");
    }
    out.push(b'}');
    out
}
