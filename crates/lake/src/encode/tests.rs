use bytes::Bytes;
use flowline_model::{
    DeadLetter, Dimension, DiscountPct, EnrichedOrder, GeoPoint, JoinStatus, Missing, Money,
    RecordSource, Timestamp, WindowMetric, metric_id, order_amounts,
};
use parquet::basic::{Compression, Encoding};
use parquet::file::metadata::ParquetMetaData;
use parquet::file::reader::{FileReader, SerializedFileReader};

use super::*;

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millis(1_714_557_600_123 + ms).unwrap()
}

fn orders(n: u32) -> Vec<EnrichedOrder> {
    (0..n)
        .map(|i| {
            let partial = i % 3 == 0;
            let pct = DiscountPct::from_hundredths([0, 1250, 10_000][i as usize % 3]).unwrap();
            let price = Money::from_cents(if i == 1 {
                1_000_000_000_000_000 / 1_000
            } else {
                999 + i64::from(i)
            })
            .unwrap();
            let a = order_amounts(i % 7 + 1, price, pct).unwrap();
            EnrichedOrder {
                order_id: format!("sale-{i}"),
                event_time: ts(i64::from(i) * 1000),
                customer_id: format!("c-{}", i % 4),
                customer_segment: (!partial).then(|| "vip".to_string()),
                email_sha256: (!partial).then(|| format!("{i:064x}")),
                address_id: (!partial).then(|| format!("a-{i}")),
                city: (!partial).then(|| "Zürich \"Nord\"\n".to_string()),
                state: (!partial).then(|| ["ZH", "BE"][i as usize % 2].to_string()),
                postcode: (!partial).then(|| "8001".to_string()),
                country: (!partial).then(|| "CH".to_string()),
                location: (!partial).then(|| GeoPoint::rounded(47.3769, 8.5417 - f64::from(i))),
                item_id: format!("i-{}", i % 5),
                item_name: (i % 5 != 0).then(|| "Widget".to_string()),
                category: (i % 5 != 0).then(|| ["books", "toys"][i as usize % 2].to_string()),
                brand: None,
                promo_id: (pct != DiscountPct::ZERO).then(|| "p-1".to_string()),
                discount_pct: pct,
                quantity: i % 7 + 1,
                unit_price: price,
                gross_amount: a.gross,
                discount_amount: a.discount,
                net_amount: a.net,
                join_status: if partial {
                    JoinStatus::Partial
                } else {
                    JoinStatus::Complete
                },
                missing: if partial {
                    vec![Missing::Customer, Missing::Address]
                } else {
                    vec![]
                },
                enriched_at: ts(i64::from(i) * 1000 + 2_000),
            }
        })
        .collect()
}

fn metrics(n: u32) -> Vec<WindowMetric> {
    (0..n)
        .map(|i| {
            let (s, e) = (ts(0), ts(60_000));
            let dim = Dimension::ALL_DIMENSIONS[i as usize % 3];
            WindowMetric {
                id: metric_id(s, e, dim, &format!("k{i}")),
                window_start: s,
                window_end: e,
                dimension: dim,
                key: format!("k{i}"),
                orders: u64::from(i) + 1,
                units: u64::from(i) * 3 + 1,
                gross_amount: Money::from_cents(-5 + i64::from(i)).unwrap(),
                net_amount: Money::from_cents(1_000_000_000_000_000).unwrap(),
                avg_order_value: Money::from_cents(42).unwrap(),
                distinct_customers: 1,
                revision: u32::MAX - i,
            }
        })
        .collect()
}

fn metadata(bytes: &Bytes) -> ParquetMetaData {
    SerializedFileReader::new(bytes.clone())
        .unwrap()
        .metadata()
        .clone()
}

fn column_has_dictionary(md: &ParquetMetaData, path: &str) -> bool {
    let col = md
        .row_group(0)
        .columns()
        .iter()
        .find(|c| c.column_path().string() == path)
        .unwrap_or_else(|| panic!("no column {path}"));
    col.encodings()
        .any(|e| matches!(e, Encoding::RLE_DICTIONARY | Encoding::PLAIN_DICTIONARY))
}

#[test]
fn orders_round_trip_every_field() {
    let input = orders(1000);
    let bytes = encode_orders(&input).unwrap();
    assert_eq!(decode_orders(bytes.clone()).unwrap(), input);
    let md = metadata(&bytes);
    assert_eq!(md.num_row_groups(), 1, "one row group per file");
    assert_eq!(md.file_metadata().num_rows(), 1000);
    for c in md.row_group(0).columns() {
        assert!(
            matches!(c.compression(), Compression::SNAPPY),
            "{} is {:?}",
            c.column_path(),
            c.compression()
        );
    }
    for path in [
        "customer_segment",
        "city",
        "state",
        "category",
        "join_status",
        "missing.list.item",
    ] {
        assert!(
            column_has_dictionary(&md, path),
            "{path} is not dictionary-encoded"
        );
    }
    assert!(
        !column_has_dictionary(&md, "order_id"),
        "unique ids skip the dictionary"
    );
}

#[test]
fn parquet_types_are_the_documented_ones() {
    let bytes = encode_orders(orders(3)).unwrap();
    let md = metadata(&bytes);
    let schema = md.file_metadata().schema_descr();
    let find = |name: &str| {
        (0..schema.num_columns())
            .map(|i| schema.column(i))
            .find(|c| c.path().string() == name)
            .unwrap()
    };
    let money = find("net_amount");
    assert_eq!(money.physical_type(), parquet::basic::Type::INT64);
    assert_eq!((money.type_precision(), money.type_scale()), (18, 2));
    let time = find("event_time");
    assert_eq!(
        format!("{:?}", time.logical_type_ref()),
        "Some(Timestamp(TimestampType { is_adjusted_to_u_t_c: true, unit: MILLIS }))"
    );
    assert!(find("location.lat").max_def_level() > 0);
}

#[test]
fn empty_and_metric_files_round_trip() {
    assert_eq!(decode_orders(encode_orders(&[]).unwrap()).unwrap(), vec![]);
    let input = metrics(300);
    let bytes = encode_metrics(&input).unwrap();
    assert_eq!(decode_metrics(bytes.clone()).unwrap(), input);
    let md = metadata(&bytes);
    assert_eq!(md.num_row_groups(), 1);
    assert!(column_has_dictionary(&md, "dimension"));
    assert!(!column_has_dictionary(&md, "id"));
    assert!(
        decode_orders(bytes).is_err(),
        "a metrics file is not an orders file"
    );
}

#[test]
fn jsonl_gz_round_trip_is_byte_exact() {
    let lines: Vec<&[u8]> = vec![
        b"{\"a\":1}",
        b"",
        b"\xff\xfe not utf8 \r",
        "{\"k\":\"\u{1F600}\"}".as_bytes(),
    ];
    let mut w = JsonLinesGz::new(6, 0);
    for l in &lines {
        w.push(l).unwrap();
    }
    assert_eq!(w.lines(), 4);
    let gz = w.finish().unwrap();
    assert_eq!(&gz[..2], &[0x1f, 0x8b], "gzip magic");
    let back = decode_jsonl_gz(&gz).unwrap();
    assert_eq!(back, lines.iter().map(|l| l.to_vec()).collect::<Vec<_>>());
    let mut w = JsonLinesGz::new(6, 0);
    assert!(w.push(b"a\nb").is_err(), "a newline would split the record");
}

#[test]
fn dead_letters_are_one_line_each_and_round_trip() {
    let src = RecordSource {
        stream: "sales".into(),
        shard_id: "shardId-0".into(),
        sequence_number: "12".into(),
    };
    let letters: Vec<DeadLetter> = (0..3)
        .map(|i| {
            DeadLetter::new(
                "aggregator",
                "late",
                &format!("line\nbreak {i}"),
                &src,
                b"\n\x00raw\n",
                ts(i),
            )
        })
        .collect();
    let gz = encode_dead_letters(&letters, 1).unwrap();
    let lines = decode_jsonl_gz(&gz).unwrap();
    assert_eq!(lines.len(), 3);
    let back: Vec<DeadLetter> = lines
        .iter()
        .map(|l| flowline_model::parse::<DeadLetter>(l).unwrap())
        .collect();
    assert_eq!(back, letters);
    assert_eq!(back[0].payload().unwrap(), b"\n\x00raw\n");
}
