//! Record-level tests: round trips and the error of every kind.

use crate::*;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn money(s: &str) -> Money {
    Money::parse_decimal(s).unwrap()
}

fn sale() -> Sale {
    Sale {
        sale_id: "S1".into(),
        customer_id: "C1".into(),
        item_id: "I1".into(),
        promo_id: Some("P1".into()),
        quantity: 2,
        unit_price: money("19.99"),
        event_time: ts("2024-05-01T12:00:00.123Z"),
    }
}

fn customer() -> Customer {
    Customer {
        customer_id: "C1".into(),
        address_id: "A1".into(),
        first_name: "Ann".into(),
        last_name: "Lee".into(),
        email: "ann@example.com".into(),
        phone: "+1 555 0100".into(),
        segment: "consumer".into(),
        updated_at: ts("2024-05-01T00:00:00Z"),
    }
}

fn address() -> Address {
    Address {
        address_id: "A1".into(),
        street: "1 Main St".into(),
        city: "Springfield".into(),
        state: "IL".into(),
        postcode: "62701".into(),
        country: "US".into(),
        lat: 39.7817,
        lon: -89.6501,
        updated_at: ts("2024-05-01T00:00:00Z"),
    }
}

fn enriched() -> EnrichedOrder {
    let a = order_amounts(2, money("19.99"), DiscountPct::from_percent(15).unwrap()).unwrap();
    EnrichedOrder {
        order_id: "S1".into(),
        event_time: ts("2024-05-01T12:00:00.123Z"),
        customer_id: "C1".into(),
        customer_segment: Some("consumer".into()),
        email_sha256: Some(email_sha256("ann@example.com")),
        address_id: Some("A1".into()),
        city: Some("Springfield".into()),
        state: Some("IL".into()),
        postcode: Some("62701".into()),
        country: Some("US".into()),
        location: Some(GeoPoint::rounded(39.7817, -89.6501)),
        item_id: "I1".into(),
        item_name: Some("Lamp".into()),
        category: Some("home".into()),
        brand: Some("Acme".into()),
        promo_id: Some("P1".into()),
        discount_pct: DiscountPct::from_percent(15).unwrap(),
        quantity: 2,
        unit_price: money("19.99"),
        gross_amount: a.gross,
        discount_amount: a.discount,
        net_amount: a.net,
        join_status: JoinStatus::Complete,
        missing: vec![],
        enriched_at: ts("2024-05-01T12:00:05Z"),
    }
}

/// The JSON of `value` with `edit` applied to its object.
fn edited<T: serde::Serialize>(
    value: &T,
    edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> Vec<u8> {
    let mut v = serde_json::to_value(value).unwrap();
    edit(v.as_object_mut().unwrap());
    serde_json::to_vec(&v).unwrap()
}

fn round_trip<T: Record + PartialEq + std::fmt::Debug>(value: &T) {
    let bytes = serde_json::to_vec(value).unwrap();
    let back: T = parse(&bytes).unwrap();
    assert_eq!(&back, value);
    assert_eq!(
        serde_json::to_vec(&back).unwrap(),
        bytes,
        "serialisation is canonical"
    );
    // The wire field order is the schema order.
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let mut spec: Vec<&str> = T::FIELDS.iter().map(|f| f.name).collect();
    let mut sorted_keys = keys.clone();
    sorted_keys.sort();
    spec.sort();
    assert_eq!(sorted_keys, spec, "schema of {}", T::NAME);
}

#[test]
fn every_record_round_trips() {
    round_trip(&sale());
    round_trip(&customer());
    round_trip(&address());
    round_trip(&enriched());
    round_trip(&Item {
        item_id: "I1".into(),
        name: "Lamp".into(),
        category: "home".into(),
        brand: "Acme".into(),
        list_price: money("24.50"),
    });
    round_trip(&Promo {
        promo_id: "P1".into(),
        item_id: "I1".into(),
        discount_pct: DiscountPct::parse_decimal("12.5").unwrap(),
        starts_at: ts("2024-05-01T00:00:00Z"),
        ends_at: ts("2024-05-08T00:00:00Z"),
    });
    let s = ts("2024-05-01T12:00:00Z");
    let e = ts("2024-05-01T12:01:00Z");
    round_trip(&WindowMetric {
        id: metric_id(s, e, Dimension::All, "all"),
        window_start: s,
        window_end: e,
        dimension: Dimension::All,
        key: "all".into(),
        orders: 3,
        units: 7,
        gross_amount: money("100.00"),
        net_amount: money("90.00"),
        avg_order_value: average(money("90.00"), 3).unwrap(),
        distinct_customers: 2,
        revision: 1,
    });
    let src = RecordSource {
        stream: "sales".into(),
        shard_id: "shardId-000000000000".into(),
        sequence_number: "4959".into(),
    };
    let err = parse_sale(b"{").unwrap_err();
    let dl = DeadLetter::from_model_error("enrichment-joiner", &err, b"{", &src, s);
    round_trip(&dl);
}

#[test]
fn sale_json_is_exact() {
    let json = String::from_utf8(serde_json::to_vec(&sale()).unwrap()).unwrap();
    assert_eq!(
        json,
        r#"{"sale_id":"S1","customer_id":"C1","item_id":"I1","promo_id":"P1","quantity":2,"unit_price":19.99,"event_time":"2024-05-01T12:00:00.123Z"}"#
    );
    let mut s = sale();
    s.promo_id = None;
    s.unit_price = money("5");
    let json = String::from_utf8(serde_json::to_vec(&s).unwrap()).unwrap();
    assert!(
        json.contains(r#""promo_id":null,"quantity":2,"unit_price":5.00,"#),
        "{json}"
    );
}

#[test]
fn times_are_normalised_on_parse() {
    let bytes = edited(&sale(), |o| {
        o.insert(
            "event_time".into(),
            "2024-05-01T14:00:00.123456+02:00".into(),
        );
    });
    let s = parse_sale(&bytes).unwrap();
    assert_eq!(s.event_time.to_string(), "2024-05-01T12:00:00.123Z");
}

fn err_of(bytes: &[u8]) -> ModelError {
    parse_sale(bytes).unwrap_err()
}

#[test]
fn every_error_kind_names_its_field() {
    let e = err_of(&edited(&sale(), |o| {
        o.remove("customer_id");
    }));
    assert_eq!(
        (e.error_type(), e.to_string().as_str()),
        ("missing_field", "missing field \"customer_id\"")
    );

    let e = err_of(&edited(&sale(), |o| {
        o.insert("quantity".into(), (-1).into());
    }));
    assert_eq!(
        (e.error_type(), e.to_string().as_str()),
        ("bad_field", "field \"quantity\": must be >= 0")
    );

    let e = err_of(&edited(&sale(), |o| {
        o.insert("quantity".into(), "2".into());
    }));
    assert_eq!(
        e.to_string(),
        "field \"quantity\": expected a number, found a string"
    );

    let e = err_of(&edited(&sale(), |o| {
        o.insert("unit_price".into(), serde_json::json!(-0.01));
    }));
    assert_eq!(e.to_string(), "field \"unit_price\": must be >= 0");

    let e = err_of(&edited(&sale(), |o| {
        o.insert("unit_price".into(), serde_json::json!(1.005));
    }));
    assert_eq!(
        e.to_string(),
        "field \"unit_price\": must be a number with at most 2 decimals"
    );

    let e = err_of(&edited(&sale(), |o| {
        o.insert("event_time".into(), "yesterday".into());
    }));
    assert_eq!(e.field(), Some("event_time"));
    assert!(
        e.to_string()
            .starts_with("field \"event_time\": not RFC 3339: "),
        "{e}"
    );

    let e = err_of(&edited(&sale(), |o| {
        o.insert("sale_id".into(), "".into());
    }));
    assert_eq!(e.to_string(), "field \"sale_id\": must not be empty");

    let e = err_of(&edited(&sale(), |o| {
        o.insert("promo_id".into(), 7.into());
    }));
    assert_eq!(
        e.to_string(),
        "field \"promo_id\": expected a string, found a number"
    );

    let e = err_of(b"{\"sale_id\" 1}");
    assert_eq!(e.error_type(), "bad_json");
    assert!(
        e.to_string()
            .starts_with("invalid JSON at line 1 column 12: "),
        "{e}"
    );

    let e = err_of(br#"{"return_id":"R1","event_time":"2024-05-01T12:00:00Z"}"#);
    assert_eq!(e.error_type(), "unknown_type");

    let big = vec![b' '; DEFAULT_MAX_RECORD_BYTES + 1];
    let e = err_of(&big);
    assert_eq!(e.error_type(), "oversized");
    assert_eq!(
        e.to_string(),
        format!(
            "payload too large: {} bytes (max {})",
            big.len(),
            DEFAULT_MAX_RECORD_BYTES
        )
    );

    let cfg = ParseConfig {
        max_record_bytes: 10,
    };
    assert_eq!(
        cfg.parse::<Sale>(&serde_json::to_vec(&sale()).unwrap())
            .unwrap_err()
            .error_type(),
        "oversized"
    );
    assert!(cfg.validate().is_empty());
    assert_eq!(
        ParseConfig {
            max_record_bytes: 0
        }
        .validate()
        .len(),
        1
    );
}

#[test]
fn unknown_fields_are_tolerated_and_null_promo_accepted() {
    let bytes = edited(&sale(), |o| {
        o.insert("_bad".into(), "none".into());
        o.insert("channel".into(), "web".into());
        o.remove("promo_id");
    });
    let s = parse_sale(&bytes).unwrap();
    assert_eq!(s.promo_id, None);
}

#[test]
fn customer_and_address_validation() {
    let e = parse_customer(&edited(&customer(), |o| {
        o.insert("updated_at".into(), serde_json::Value::Null);
    }))
    .unwrap_err();
    assert_eq!(e.to_string(), "field \"updated_at\": must not be null");
    let e = parse_address(&edited(&address(), |o| {
        o.insert("lat".into(), 91.into());
    }))
    .unwrap_err();
    assert_eq!(e.to_string(), "field \"lat\": must be between -90 and 90");
    let e = parse_promo(
        br#"{"promo_id":"P","item_id":"I","discount_pct":10,"starts_at":"2024-01-02T00:00:00Z","ends_at":"2024-01-01T00:00:00Z"}"#,
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "field \"ends_at\": must be after starts_at");
    let e =
        parse_item(br#"{"item_id":"I","name":"n","category":"c","brand":"b","list_price":"9.99"}"#)
            .unwrap_err();
    assert_eq!(
        e.to_string(),
        "field \"list_price\": expected a number, found a string"
    );
}

#[test]
fn events_parse_by_stream_and_by_detection() {
    let cfg = ParseConfig::default();
    let c = serde_json::to_vec(&customer()).unwrap();
    let a = serde_json::to_vec(&address()).unwrap();
    let s = serde_json::to_vec(&sale()).unwrap();
    assert_eq!(
        cfg.parse_event(StreamKind::Customers, &c).unwrap(),
        Event::Customer(customer())
    );
    assert_eq!(cfg.parse_any_event(&a).unwrap(), Event::Address(address()));
    let e = cfg.parse_any_event(&s).unwrap();
    assert_eq!(
        (e.kind(), e.partition_key(), e.event_time()),
        (StreamKind::Sales, "C1", sale().event_time)
    );
    assert_eq!(e.to_json(), s);
    // A customer on the sales stream is reported by what it lacks.
    let err = cfg.parse_event(StreamKind::Sales, &c).unwrap_err();
    assert_eq!(err.to_string(), "missing field \"sale_id\"");
    assert_eq!(
        cfg.parse_any_event(br#"{"x":1}"#).unwrap_err().error_type(),
        error_types::UNKNOWN_TYPE
    );
}

#[test]
fn enriched_order_checks_its_arithmetic() {
    let bytes = edited(&enriched(), |o| {
        o.insert("net_amount".into(), serde_json::json!(1.00));
    });
    let e = parse::<EnrichedOrder>(&bytes).unwrap_err();
    assert_eq!(e.field(), Some("net_amount"));
    let bytes = edited(&enriched(), |o| {
        o.insert("missing".into(), serde_json::json!(["item", "customer"]));
        o.insert("join_status".into(), "partial".into());
    });
    assert_eq!(
        parse::<EnrichedOrder>(&bytes).unwrap_err().field(),
        Some("missing")
    );
    let bytes = edited(&enriched(), |o| {
        o.insert("missing".into(), serde_json::json!(["customer", "promo"]));
    });
    assert_eq!(
        parse::<EnrichedOrder>(&bytes).unwrap_err().field(),
        Some("join_status")
    );
    let bytes = edited(&enriched(), |o| {
        o.insert("location".into(), serde_json::json!({"lat": 1.0}));
    });
    assert_eq!(
        parse::<EnrichedOrder>(&bytes).unwrap_err().to_string(),
        "missing field \"location.lon\""
    );
}

#[test]
fn dead_letter_keeps_payload_and_truncates_huge_ones() {
    let src = RecordSource {
        stream: "sales".into(),
        shard_id: "shardId-000000000001".into(),
        sequence_number: "1".into(),
    };
    let raw = b"{\"sale_id\":";
    let err = parse_sale(raw).unwrap_err();
    let dl = DeadLetter::from_model_error(
        "enrichment-joiner",
        &err,
        raw,
        &src,
        ts("2024-01-01T00:00:00Z"),
    );
    assert_eq!(dl.error_type, "bad_json");
    assert_eq!(dl.payload().unwrap(), raw);
    assert!(!dl.payload_truncated);
    assert!(
        !String::from_utf8(serde_json::to_vec(&dl).unwrap())
            .unwrap()
            .contains("payload_truncated")
    );

    let huge = vec![b'x'; MAX_DEAD_LETTER_PAYLOAD_BYTES + 10];
    let dl = DeadLetter::new(
        "aggregator",
        error_types::OVERSIZED,
        "too big",
        &src,
        &huge,
        ts("2024-01-01T00:00:00Z"),
    );
    assert!(dl.payload_truncated);
    assert_eq!(dl.payload().unwrap().len(), MAX_DEAD_LETTER_PAYLOAD_BYTES);
    assert!(serde_json::to_vec(&dl).unwrap().len() < 1024 * 1024);
}

#[test]
fn promo_activity_is_half_open() {
    let p = Promo {
        promo_id: "P".into(),
        item_id: "I".into(),
        discount_pct: DiscountPct::from_percent(10).unwrap(),
        starts_at: ts("2024-01-01T00:00:00Z"),
        ends_at: ts("2024-01-02T00:00:00Z"),
    };
    assert!(p.applies_to("I", ts("2024-01-01T00:00:00Z")));
    assert!(p.applies_to("I", ts("2024-01-01T23:59:59.999Z")));
    assert!(!p.applies_to("I", ts("2024-01-02T00:00:00Z")));
    assert!(!p.applies_to("I", ts("2023-12-31T23:59:59.999Z")));
    assert!(!p.applies_to("J", ts("2024-01-01T12:00:00Z")));
}
