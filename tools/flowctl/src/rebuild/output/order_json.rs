//! An enriched order as JSON, written straight into a buffer: the same bytes as
//! `serde_json::to_writer` of the derived `Serialize` (the test holds the two together), at
//! a fraction of its cost, since orders are nearly all of what a rebuild writes.

use flowline_model::{EnrichedOrder, JoinStatus, Timestamp, write_hundredths};

/// Appends `o` as one compact JSON object (no newline).
pub fn write_order(out: &mut Vec<u8>, o: &EnrichedOrder) {
    out.extend_from_slice(b"{\"order_id\":");
    string(out, &o.order_id);
    out.extend_from_slice(b",\"event_time\":");
    time(out, o.event_time);
    out.extend_from_slice(b",\"customer_id\":");
    string(out, &o.customer_id);
    out.extend_from_slice(b",\"customer_segment\":");
    opt_string(out, &o.customer_segment);
    out.extend_from_slice(b",\"email_sha256\":");
    opt_string(out, &o.email_sha256);
    out.extend_from_slice(b",\"address_id\":");
    opt_string(out, &o.address_id);
    out.extend_from_slice(b",\"city\":");
    opt_string(out, &o.city);
    out.extend_from_slice(b",\"state\":");
    opt_string(out, &o.state);
    out.extend_from_slice(b",\"postcode\":");
    opt_string(out, &o.postcode);
    out.extend_from_slice(b",\"country\":");
    opt_string(out, &o.country);
    out.extend_from_slice(b",\"location\":");
    match &o.location {
        None => out.extend_from_slice(b"null"),
        Some(p) => {
            out.extend_from_slice(b"{\"lat\":");
            float(out, p.lat);
            out.extend_from_slice(b",\"lon\":");
            float(out, p.lon);
            out.push(b'}');
        }
    }
    out.extend_from_slice(b",\"item_id\":");
    string(out, &o.item_id);
    out.extend_from_slice(b",\"item_name\":");
    opt_string(out, &o.item_name);
    out.extend_from_slice(b",\"category\":");
    opt_string(out, &o.category);
    out.extend_from_slice(b",\"brand\":");
    opt_string(out, &o.brand);
    out.extend_from_slice(b",\"promo_id\":");
    opt_string(out, &o.promo_id);
    out.extend_from_slice(b",\"discount_pct\":");
    write_hundredths(out, i64::from(o.discount_pct.hundredths()), true);
    out.extend_from_slice(b",\"quantity\":");
    write_hundredths(out, i64::from(o.quantity) * 100, true);
    out.extend_from_slice(b",\"unit_price\":");
    write_hundredths(out, o.unit_price.cents(), false);
    out.extend_from_slice(b",\"gross_amount\":");
    write_hundredths(out, o.gross_amount.cents(), false);
    out.extend_from_slice(b",\"discount_amount\":");
    write_hundredths(out, o.discount_amount.cents(), false);
    out.extend_from_slice(b",\"net_amount\":");
    write_hundredths(out, o.net_amount.cents(), false);
    out.extend_from_slice(match o.join_status {
        JoinStatus::Complete => b",\"join_status\":\"complete\",\"missing\":[",
        JoinStatus::Partial => b",\"join_status\":\"partial\",\"missing\":[",
    });
    for (i, m) in o.missing.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(m.as_str().as_bytes());
        out.push(b'"');
    }
    out.extend_from_slice(b"],\"enriched_at\":");
    time(out, o.enriched_at);
    out.push(b'}');
}

fn time(out: &mut Vec<u8>, t: Timestamp) {
    let mut buf = [0u8; 24];
    t.write_canonical(&mut buf);
    out.push(b'"');
    out.extend_from_slice(&buf);
    out.push(b'"');
}

fn opt_string(out: &mut Vec<u8>, s: &Option<String>) {
    match s {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// Strings without anything to escape (all but the rarest) are copied as they are;
/// any other goes through serde_json, so escapes are spelt as it spells them.
fn string(out: &mut Vec<u8>, s: &str) {
    if s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        serde_json::to_writer(&mut *out, s).expect("writing to a Vec never fails");
    } else {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

fn float(out: &mut Vec<u8>, x: f64) {
    serde_json::to_writer(&mut *out, &x).expect("writing to a Vec never fails");
}

#[cfg(test)]
mod tests {
    use flowline_model::{DiscountPct, GeoPoint, Missing, Money};

    use super::*;

    fn order() -> EnrichedOrder {
        let t = |s: &str| Timestamp::parse_rfc3339(s).unwrap();
        EnrichedOrder {
            order_id: "S1".into(),
            event_time: t("2026-01-01T00:00:01.002Z"),
            customer_id: "C\"1\\\n\u{1}é".into(),
            customer_segment: Some("retail".into()),
            email_sha256: None,
            address_id: Some("A1".into()),
            city: Some("Köln\t".into()),
            state: None,
            postcode: Some(String::new()),
            country: Some("DE".into()),
            location: Some(GeoPoint::rounded(50.94, -6.96)),
            item_id: "I1".into(),
            item_name: Some("a \u{7f} thing".into()),
            category: None,
            brand: Some("b".into()),
            promo_id: None,
            discount_pct: DiscountPct::from_hundredths(1250).unwrap(),
            quantity: 3,
            unit_price: Money::from_cents(1999).unwrap(),
            gross_amount: Money::from_cents(5997).unwrap(),
            discount_amount: Money::from_cents(750).unwrap(),
            net_amount: Money::from_cents(5247).unwrap(),
            join_status: JoinStatus::Partial,
            missing: vec![Missing::Item, Missing::Promo],
            enriched_at: t("2026-01-01T00:00:03.000Z"),
        }
    }

    #[test]
    fn the_same_bytes_as_serde_json() {
        let mut cases = vec![order()];
        let mut o = order();
        o.location = None;
        o.missing.clear();
        o.join_status = JoinStatus::Complete;
        o.discount_pct = DiscountPct::ZERO;
        o.customer_id = "C0000001".into();
        cases.push(o);
        let mut o = order();
        o.location = Some(GeoPoint {
            lat: 0.1,
            lon: -180.0,
        });
        o.discount_pct = DiscountPct::from_hundredths(10_000).unwrap();
        o.missing = vec![Missing::Customer, Missing::Address, Missing::Promo];
        cases.push(o);
        for o in cases {
            let mut mine = Vec::new();
            write_order(&mut mine, &o);
            let theirs = serde_json::to_vec(&o).unwrap();
            assert_eq!(
                String::from_utf8(mine).unwrap(),
                String::from_utf8(theirs).unwrap()
            );
        }
    }

    #[test]
    fn numbers_are_written_as_the_model_writes_them() {
        let max = flowline_model::MAX_CENTS;
        let cents = [
            0,
            1,
            9,
            10,
            99,
            100,
            101,
            110,
            1999,
            123_456_789,
            -1,
            -10,
            -12_345,
        ];
        for c in cents.into_iter().chain([max, -max]) {
            let m = Money::from_cents(c).unwrap();
            let mut mine = Vec::new();
            write_hundredths(&mut mine, c, false);
            assert_eq!(
                String::from_utf8(mine).unwrap(),
                serde_json::to_string(&m).unwrap()
            );
        }
        for h in [0, 1, 10, 50, 99, 100, 1250, 3300, 9999, 10_000] {
            let p = DiscountPct::from_hundredths(h).unwrap();
            let mut mine = Vec::new();
            write_hundredths(&mut mine, i64::from(h), true);
            assert_eq!(
                String::from_utf8(mine).unwrap(),
                serde_json::to_string(&p).unwrap()
            );
        }
        for q in [0u32, 1, 7, 10, 1_000_000, u32::MAX] {
            let mut mine = Vec::new();
            write_hundredths(&mut mine, i64::from(q) * 100, true);
            assert_eq!(String::from_utf8(mine).unwrap(), q.to_string());
        }
    }
}
