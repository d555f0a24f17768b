//! CSV rows to JSON objects, typed by the model's field list, so that CSV
//! input is validated by exactly the same parser as JSON input.

use csv::StringRecord;
use flowline_model::{FieldSpec, FieldType};
use serde_json::value::RawValue;

/// Converts one row to a JSON object. Columns the type does not know are
/// kept as strings (tolerated like unknown JSON fields). A cell that should
/// be a number but is not one is written as a string, so the model reports
/// the type error against its field; an empty cell is null.
pub fn row_to_json(specs: &[FieldSpec], headers: &StringRecord, row: &StringRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(row.as_slice().len() + 16 * headers.len());
    out.push(b'{');
    for (i, (name, cell)) in headers.iter().zip(row.iter()).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(&mut out, name);
        out.push(b':');
        let ty = specs.iter().find(|s| s.name == name).map(|s| s.ty);
        let trimmed = cell.trim();
        match ty {
            Some(FieldType::NullableString) if cell.is_empty() => out.extend_from_slice(b"null"),
            Some(FieldType::Integer | FieldType::Float | FieldType::Money | FieldType::Percent) => {
                if trimmed.is_empty() {
                    out.extend_from_slice(b"null");
                } else if is_json_number(trimmed) {
                    out.extend_from_slice(trimmed.as_bytes());
                } else {
                    write_string(&mut out, cell);
                }
            }
            Some(FieldType::Json) => match serde_json::from_str::<&RawValue>(trimmed) {
                Ok(raw) => out.extend_from_slice(raw.get().as_bytes()),
                Err(_) => write_string(&mut out, cell),
            },
            _ => write_string(&mut out, cell),
        }
    }
    out.push(b'}');
    out
}

fn write_string(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(out, s).expect("strings always serialise");
}

fn is_json_number(s: &str) -> bool {
    matches!(s.as_bytes().first(), Some(b'-' | b'0'..=b'9'))
        && serde_json::from_str::<&RawValue>(s).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowline_model::{Record, Sale};

    #[test]
    fn typed_conversion() {
        let h = StringRecord::from(vec![
            "sale_id",
            "customer_id",
            "item_id",
            "promo_id",
            "quantity",
            "unit_price",
            "event_time",
            "note",
        ]);
        let r = StringRecord::from(vec![
            "S1",
            "C1",
            "I1",
            "",
            "2",
            "3.50",
            "2024-01-01T00:00:00Z",
            "hi \"x\"",
        ]);
        let json = String::from_utf8(row_to_json(Sale::FIELDS, &h, &r)).unwrap();
        assert_eq!(
            json,
            r#"{"sale_id":"S1","customer_id":"C1","item_id":"I1","promo_id":null,"quantity":2,"unit_price":3.50,"event_time":"2024-01-01T00:00:00Z","note":"hi \"x\""}"#
        );
        let r = StringRecord::from(vec!["S1", "C1", "I1", "P", "two", "", "x", ""]);
        let json = String::from_utf8(row_to_json(Sale::FIELDS, &h, &r)).unwrap();
        assert!(
            json.contains(r#""quantity":"two","unit_price":null"#),
            "{json}"
        );
        assert!(!is_json_number("1 2"));
        assert!(!is_json_number("NaN"));
        assert!(is_json_number("-1.5e3"));
    }
}
