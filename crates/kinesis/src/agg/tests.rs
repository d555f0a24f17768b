use bytes::Bytes;
use md5::{Digest, Md5};
use prost::Message;

use super::*;

fn envelope(message: &proto::AggregatedRecord) -> Bytes {
    let body = message.encode_to_vec();
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&body);
    out.extend_from_slice(&Md5::digest(&body));
    out.into()
}

#[test]
fn round_trips_records_with_shared_keys() {
    let mut b = AggregateBuilder::new(DEFAULT_MAX_AGGREGATE_BYTES, usize::MAX);
    let inputs = [
        ("k1", None, "a"),
        ("k2", Some("42"), "bb"),
        ("k1", Some("42"), ""),
        ("k3", None, "dddd"),
    ];
    for (pk, ehk, data) in inputs {
        assert!(b.try_add(pk, ehk, Bytes::from(data)));
    }
    let expected_size = b.size_bytes();
    let agg = b.finish().unwrap();
    assert!(b.is_empty() && b.finish().is_none());
    assert_eq!(agg.data.len(), expected_size);
    assert_eq!(
        (agg.partition_key.as_str(), agg.explicit_hash_key.as_deref()),
        ("k1", None)
    );
    assert_eq!(agg.user_records, 4);
    assert!(is_aggregated(&agg.data));

    let out = deaggregate(&agg.partition_key, None, agg.data.clone()).unwrap();
    let got: Vec<_> = out
        .iter()
        .map(|r| {
            (
                r.partition_key.as_str(),
                r.explicit_hash_key.as_deref(),
                &r.data[..],
                r.sub_sequence_number,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("k1", None, &b"a"[..], 0),
            ("k2", Some("42"), &b"bb"[..], 1),
            ("k1", Some("42"), &b""[..], 2),
            ("k3", None, &b"dddd"[..], 3)
        ]
    );
    // Key tables are deduplicated.
    let body = &agg.data[MAGIC.len()..agg.data.len() - DIGEST_LEN];
    let decoded = proto::AggregatedRecord::decode(body).unwrap();
    assert_eq!(decoded.partition_key_table, vec!["k1", "k2", "k3"]);
    assert_eq!(decoded.explicit_hash_key_table, vec!["42"]);
}

#[test]
fn respects_size_and_count_limits_exactly() {
    let max = 1000;
    let mut b = AggregateBuilder::new(max, usize::MAX);
    let mut n = 0;
    while b.try_add(&format!("key-{n}"), None, Bytes::from(vec![7u8; 37])) {
        n += 1;
    }
    assert!(n > 5);
    let size = b.size_bytes();
    assert!(size <= max);
    let agg = b.finish().unwrap();
    assert_eq!(agg.data.len(), size);
    assert_eq!(agg.user_records, n);

    let mut b = AggregateBuilder::new(usize::MAX, 3);
    assert!((0..3).all(|_| b.try_add("k", None, Bytes::from_static(b"x"))));
    assert!(!b.try_add("k", None, Bytes::from_static(b"x")));
    assert_eq!(b.len(), 3);
}

#[test]
fn empty_builder_accepts_an_oversized_record() {
    let mut b = AggregateBuilder::new(10, usize::MAX);
    let size = AggregateBuilder::single_record_size("k", None, 100);
    assert!(size > 10);
    assert!(b.try_add("k", None, Bytes::from(vec![0; 100])));
    assert_eq!(b.size_bytes(), size);
    assert!(!b.try_add("k", None, Bytes::from_static(b"x")));
}

#[test]
fn plain_records_pass_through() {
    for data in [
        &b""[..],
        b"hello",
        &MAGIC[..],
        b"\xF3\x89\x9A\xC2not-an-aggregate-at-all-really",
    ] {
        assert!(!is_aggregated(data));
        let out = deaggregate("pk", Some("7"), Bytes::copy_from_slice(data)).unwrap();
        assert_eq!(
            out,
            vec![UserRecord {
                partition_key: "pk".into(),
                explicit_hash_key: Some("7".into()),
                data: Bytes::copy_from_slice(data),
                sub_sequence_number: 0
            }]
        );
    }
}

#[test]
fn digest_mismatch_means_plain_record() {
    let mut b = AggregateBuilder::new(DEFAULT_MAX_AGGREGATE_BYTES, usize::MAX);
    b.try_add("k", None, Bytes::from_static(b"payload"));
    b.try_add("j", None, Bytes::from_static(b"payload2"));
    let mut data = b.finish().unwrap().data.to_vec();
    let last = data.len() - 1;
    data[last] ^= 1;
    assert!(!is_aggregated(&data));
    let out = deaggregate("k", None, data.clone().into()).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0].data[..], &data[..]);
}

#[test]
fn corrupt_aggregates_are_errors() {
    // Valid digest over bytes that are not a protobuf message.
    let body = [0xFFu8, 0xFF, 0xFF];
    let mut data = MAGIC.to_vec();
    data.extend_from_slice(&body);
    data.extend_from_slice(&Md5::digest(body));
    assert!(matches!(
        deaggregate("k", None, data.into()),
        Err(Error::Aggregation(_))
    ));

    // Partition key index outside the table.
    let msg = proto::AggregatedRecord {
        partition_key_table: vec!["a".into()],
        explicit_hash_key_table: vec![],
        records: vec![proto::Record {
            partition_key_index: 3,
            explicit_hash_key_index: None,
            data: Bytes::from_static(b"x"),
            tags: vec![],
        }],
    };
    let err = deaggregate("a", None, envelope(&msg)).unwrap_err();
    assert!(err.to_string().contains("partition key index 3"), "{err}");
}

#[test]
fn zero_index_fields_are_encoded() {
    // Strict proto2 parsers need the required `partition_key_index` even when it is 0.
    let msg = proto::AggregatedRecord {
        partition_key_table: vec!["a".into()],
        explicit_hash_key_table: vec![],
        records: vec![proto::Record {
            partition_key_index: 0,
            explicit_hash_key_index: None,
            data: Bytes::new(),
            tags: vec![],
        }],
    };
    let bytes = msg.encode_to_vec();
    // field 3 (records) containing field 1 varint 0 and field 3 empty bytes.
    assert!(
        bytes.ends_with(&[0x1A, 0x04, 0x08, 0x00, 0x1A, 0x00]),
        "{bytes:02X?}"
    );
}
