//! Properties of the generated data set.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use flowline_model::{Event, ParseConfig, StreamKind, Timestamp};

use crate::reference::*;
use crate::*;

fn cfg(seed: u64, customers: u32, sales: u64) -> GenConfig {
    GenConfig {
        seed,
        customers,
        sales,
        ..GenConfig::default()
    }
}

fn run(c: GenConfig) -> Vec<GeneratedRecord> {
    Generator::new(c).unwrap().collect()
}

fn events(records: &[GeneratedRecord]) -> Vec<(usize, Event)> {
    let p = ParseConfig::default();
    records
        .iter()
        .enumerate()
        .filter(|(_, r)| r.bad.is_none())
        .map(|(i, r)| (i, p.parse_event(r.stream, &r.data).unwrap()))
        .collect()
}

#[test]
fn same_config_same_bytes_other_seed_other_bytes() {
    let c = GenConfig {
        bad_record_ratio: 0.05,
        ..cfg(11, 300, 3000)
    };
    let a = run(c.clone());
    assert_eq!(a, run(c.clone()));
    let b = run(GenConfig { seed: 12, ..c });
    assert_ne!(a, b);
    assert_ne!(a[0].data, b[0].data);
}

#[test]
fn good_records_are_canonical_and_keyed_by_entity() {
    let records = run(cfg(1, 200, 2000));
    let p = ParseConfig::default();
    for r in &records {
        let e = p.parse_event(r.stream, &r.data).unwrap();
        assert_eq!(e.kind(), r.stream);
        assert_eq!(e.partition_key(), r.partition_key);
        assert_eq!(
            e.to_json(),
            r.data,
            "serialisation is the model's canonical form"
        );
    }
    let sales = records
        .iter()
        .filter(|r| r.stream == StreamKind::Sales)
        .count();
    assert_eq!(sales, 2000);
}

#[test]
fn good_data_does_not_depend_on_the_bad_ratio() {
    let good = run(cfg(5, 100, 1000));
    let mixed = run(GenConfig {
        bad_record_ratio: 0.3,
        ..cfg(5, 100, 1000)
    });
    let filtered: Vec<_> = mixed.into_iter().filter(|r| r.bad.is_none()).collect();
    assert_eq!(good, filtered);
}

#[test]
fn timeline_starts_at_start_time_and_follows_the_rate() {
    let c = GenConfig {
        rate: 10.0,
        out_of_order_share: 0.0,
        ..cfg(2, 50, 101)
    };
    let start = c.start_time;
    let ev = events(&run(c));
    assert_eq!(ev[0].1.event_time(), start, "first event");
    let sales: Vec<Timestamp> = ev
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Sale(s) => Some(s.event_time),
            _ => None,
        })
        .collect();
    assert_eq!(sales[0], start);
    assert_eq!(
        sales[100].millis() - start.millis(),
        10_000,
        "100 steps of 100 ms"
    );
    // Rate 0: the nominal step.
    let c = GenConfig {
        rate: 0.0,
        nominal_step: Duration::from_millis(3),
        out_of_order_share: 0.0,
        ..cfg(2, 50, 11)
    };
    let last = events(&run(c.clone()))
        .iter()
        .rev()
        .find_map(|(_, e)| match e {
            Event::Sale(s) => Some(s.event_time),
            _ => None,
        })
        .unwrap();
    assert_eq!(last.millis() - c.start_time.millis(), 30);
}

#[test]
fn item_popularity_is_zipf_skewed() {
    let c = cfg(3, 500, 50_000);
    let records = run(c.clone());
    let mut per_item: BTreeMap<String, u64> = BTreeMap::new();
    let mut total = 0u64;
    for (_, e) in events(&records) {
        if let Event::Sale(s) = e {
            *per_item.entry(s.item_id).or_default() += 1;
            total += 1;
        }
    }
    let mut counts: Vec<u64> = per_item.values().copied().collect();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    let top: u64 = counts.iter().take(c.items as usize / 10).sum();
    let share = top as f64 / total as f64;
    eprintln!(
        "zipf: top 10 % of items take {share:.3} of sales, {} items sold",
        per_item.len()
    );
    assert!(share > 0.45, "top 10 % of items take {share:.3} of sales");
    assert!(share < 0.9, "but not everything: {share:.3}");
    assert!(
        per_item.len() > 300,
        "the long tail is sold too: {}",
        per_item.len()
    );
}

#[test]
fn promo_shares_match_the_config() {
    let c = cfg(4, 500, 20_000);
    let records = run(c.clone());
    let catalog = Generator::new(c.clone()).unwrap().catalog().promos.clone();
    let promos: BTreeMap<&str, &flowline_model::Promo> =
        catalog.iter().map(|p| (p.promo_id.as_str(), p)).collect();
    let (mut applies, mut named_not_applying, mut sales) = (0u32, 0u32, 0u32);
    for (_, e) in events(&records) {
        if let Event::Sale(s) = e {
            sales += 1;
            match s.promo_id.as_deref() {
                Some(id)
                    if promos
                        .get(id)
                        .is_some_and(|p| p.applies_to(&s.item_id, s.event_time)) =>
                {
                    applies += 1
                }
                Some(_) => named_not_applying += 1,
                None => {}
            }
        }
    }
    let applies = f64::from(applies) / f64::from(sales);
    let stale = f64::from(named_not_applying) / f64::from(sales);
    eprintln!("promos: active {applies:.3}, not applying {stale:.3}");
    assert!(
        (0.16..=0.21).contains(&applies),
        "active promo share {applies:.3}"
    );
    assert!(
        (0.02..=0.045).contains(&stale),
        "non-applying promo share {stale:.3}"
    );
}

#[test]
fn out_of_order_is_bounded_and_present() {
    let c = GenConfig {
        rate: 1000.0,
        max_out_of_order: Duration::from_millis(500),
        ..cfg(6, 100, 10_000)
    };
    let (mut max_seen, mut worst, mut disordered) = (i64::MIN, 0i64, 0u32);
    for (_, e) in events(&run(c)) {
        if let Event::Sale(s) = e {
            let t = s.event_time.millis();
            if t < max_seen {
                disordered += 1;
                worst = worst.max(max_seen - t);
            }
            max_seen = max_seen.max(t);
        }
    }
    eprintln!("out of order: {disordered} sales, worst {worst} ms");
    assert!(worst <= 500, "worst lateness {worst} ms");
    assert!(worst > 250, "the bound is used: {worst} ms");
    assert!(disordered > 500, "{disordered} sales out of order");
}

/// Versions of customers and addresses that are published after a sale that
/// joins them: a small, non-zero share.
#[test]
fn a_few_versions_arrive_after_the_sales_that_need_them() {
    let c = GenConfig {
        rate: 200.0,
        change_rate: 0.05,
        ..cfg(8, 500, 20_000)
    };
    let max_delay = c.max_version_delay.as_millis() as i64;
    let ev = events(&run(c));
    // entity id → [(updated_at, publication index, address_id of a customer version)]
    let mut customers: BTreeMap<String, Vec<(Timestamp, usize, String)>> = BTreeMap::new();
    let mut addresses: BTreeMap<String, Vec<(Timestamp, usize)>> = BTreeMap::new();
    for (i, e) in &ev {
        match e {
            Event::Customer(c) => customers.entry(c.customer_id.clone()).or_default().push((
                c.updated_at,
                *i,
                c.address_id.clone(),
            )),
            Event::Address(a) => addresses
                .entry(a.address_id.clone())
                .or_default()
                .push((a.updated_at, *i)),
            Event::Sale(_) => {}
        }
    }
    let mut late: BTreeSet<(String, Timestamp)> = BTreeSet::new();
    let (mut joined, mut orphans) = (0u32, 0u32);
    for (i, e) in &ev {
        let Event::Sale(s) = e else { continue };
        let Some(versions) = customers.get(&s.customer_id) else {
            orphans += 1;
            continue;
        };
        let Some(cv) = versions
            .iter()
            .filter(|v| v.0 <= s.event_time)
            .max_by_key(|v| v.0)
        else {
            continue;
        };
        joined += 1;
        if cv.1 > *i {
            late.insert((s.customer_id.clone(), cv.0));
        }
        let av = addresses[&cv.2]
            .iter()
            .filter(|v| v.0 <= s.event_time)
            .max_by_key(|v| v.0);
        if let Some(av) = av
            && av.1 > *i
        {
            late.insert((cv.2.clone(), av.0));
            // Bounded delay: released within max_version_delay of event time.
            assert!(s.event_time.millis() - av.0.millis() <= max_delay + 1000);
        }
    }
    let versions: usize = customers.values().map(Vec::len).sum::<usize>()
        + addresses.values().map(Vec::len).sum::<usize>();
    let share = late.len() as f64 / versions as f64;
    eprintln!(
        "late versions {} of {versions}, orphan sales {orphans}",
        late.len()
    );
    assert!(
        share > 0.0 && share < 0.05,
        "late versions {} of {versions}",
        late.len()
    );
    assert!(orphans > 0 && orphans < 100, "orphan sales {orphans}");
    assert!(joined > 19_000);
    // Customers move (a later version names another address) and
    // addresses get corrected (several versions of one address).
    let moved = customers
        .values()
        .filter(|v| v.iter().map(|x| &x.2).collect::<BTreeSet<_>>().len() > 1)
        .count();
    let corrected = addresses.values().filter(|v| v.len() > 1).count();
    assert!(
        moved > 50 && corrected > 10,
        "moved {moved}, corrected {corrected}"
    );
    // Versions of one entity have strictly increasing updated_at.
    for v in customers.values() {
        let mut times: Vec<_> = v.iter().map(|x| x.0).collect();
        times.sort();
        times.dedup();
        assert_eq!(times.len(), v.len());
    }
}

#[test]
fn bad_records_are_marked_counted_and_rejected_precisely() {
    let c = GenConfig {
        bad_record_ratio: 0.2,
        ..cfg(9, 200, 3000)
    };
    let records = run(c);
    let parser = ParseConfig::default();
    let mut kinds: BTreeMap<&str, u32> = BTreeMap::new();
    let mut bad = 0u32;
    for r in &records {
        let marked = r.data.starts_with(b"{\"_bad\":\"");
        assert_eq!(marked, r.bad.is_some(), "marker iff bad");
        let Some(kind) = r.bad else {
            continue;
        };
        bad += 1;
        *kinds.entry(kind.name()).or_default() += 1;
        if kind == BadKind::MalformedJson {
            assert!(r.data.starts_with(MALFORMED_PREFIX));
        }
        let err = parser.parse_event(r.stream, &r.data).unwrap_err();
        assert_eq!(
            err.error_type(),
            kind.expected_error_type(),
            "{kind:?}: {err}"
        );
        assert_eq!(err.field(), kind.field(), "{kind:?}: {err}");
        if let Some(f) = kind.field() {
            assert!(err.to_string().contains(&format!("\"{f}\"")), "{err}");
        }
        if kind == BadKind::Oversized {
            assert!(
                r.data.len() > flowline_model::DEFAULT_MAX_RECORD_BYTES
                    && r.data.len() < 1024 * 1024
            );
        }
    }
    eprintln!("bad kinds {kinds:?}, {bad} of {}", records.len());
    assert_eq!(kinds.len(), 5, "every kind appears: {kinds:?}");
    let share = f64::from(bad) / records.len() as f64;
    assert!((0.17..0.23).contains(&share), "bad share {share:.3}");
}

#[test]
fn invalid_config_is_refused_naming_the_setting() {
    let c = GenConfig {
        customers: 0,
        bad_record_ratio: 0.7,
        ..GenConfig::default()
    };
    let Err(DatagenError::Config(problems)) = Generator::new(c) else {
        panic!("expected a config error");
    };
    assert!(problems.iter().any(|p| p.starts_with("customers:")));
    assert!(problems.iter().any(|p| p.starts_with("bad_record_ratio:")));
    assert!(GenConfig::default().validate().is_empty());
}

#[test]
fn reference_files_decode_back_to_the_same_rows() {
    let g = Generator::new(cfg(10, 10, 100)).unwrap();
    let (items, promos) = (&g.catalog().items, &g.catalog().promos);
    assert_eq!(items.len(), 500);
    assert_eq!(promos.len(), 100);

    let csv = items_to_csv(items).unwrap();
    assert!(csv.starts_with(b"item_id,name,category,brand,list_price\n"));
    assert_eq!(&items_from_csv(&csv).unwrap(), items);
    let csv = promos_to_csv(promos).unwrap();
    assert!(csv.starts_with(b"promo_id,item_id,discount_pct,starts_at,ends_at\n"));
    assert_eq!(&promos_from_csv(&csv).unwrap(), promos);
    // The csv crate reads them too, as plain rows.
    let mut r = csv::Reader::from_reader(csv.as_slice());
    assert_eq!(r.records().count(), promos.len());

    let pq = items_to_parquet(items).unwrap();
    assert_eq!(&items_from_parquet(&pq).unwrap(), items);
    let pq2 = promos_to_parquet(promos).unwrap();
    assert_eq!(&promos_from_parquet(&pq2).unwrap(), promos);
    // Snappy and typed columns.
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let reader = SerializedFileReader::new(bytes::Bytes::from(pq)).unwrap();
    let col = reader.metadata().row_group(0).column(4);
    assert_eq!(col.compression(), parquet::basic::Compression::SNAPPY);
    let schema = parquet::arrow::parquet_to_arrow_schema(
        reader.metadata().file_metadata().schema_descr(),
        None,
    )
    .unwrap();
    assert_eq!(
        schema.field_with_name("list_price").unwrap().data_type(),
        &arrow::datatypes::DataType::Decimal128(18, 2)
    );

    // Invalid rows are refused with their line.
    let bad = b"item_id,name,category,brand,list_price\nI1,a,b,c,1.00\nI2,a,b,c,-1\n";
    let err = items_from_csv(bad).unwrap_err().to_string();
    assert!(
        err.contains("line 3") && err.contains("list_price"),
        "{err}"
    );
    assert_eq!(ITEMS_PARQUET_KEY, "reference/clean/items/items.parquet");
}

#[test]
fn replay_json_lines_reports_bad_lines_and_goes_on() {
    let records = run(cfg(12, 5, 5));
    let mut input = Vec::new();
    for r in &records {
        input.extend_from_slice(&r.data);
        input.push(b'\n');
    }
    let good = records.len() as u64;
    input.extend_from_slice(b"\n{\"sale_id\":\"S1\"}\n{not json\n");
    input.extend_from_slice(b"{\"customer_id\":\"C1\",\"address_id\":\"A1\",\"first_name\":\"a\",\"last_name\":\"b\",\"email\":\"e\",\"phone\":\"p\",\"segment\":\"s\",\"updated_at\":\"2024-01-01T02:00:00+02:00\"}\r\n");
    input.extend_from_slice(&vec![b'x'; 300 * 1024]);
    input.extend_from_slice(b"\n{\"x\":1}");
    let out: Vec<ReplayItem> = replay(
        std::io::Cursor::new(input),
        ReplayFormat::JsonLines,
        ParseConfig::default(),
    )
    .unwrap()
    .collect();
    assert_eq!(out.len() as u64, good + 5, "blank line skipped");
    for (i, (line, r)) in out.iter().take(good as usize).enumerate() {
        assert_eq!(*line, i as u64 + 1);
        assert_eq!(r.as_ref().unwrap().data, records[i].data);
    }
    let tail: Vec<(u64, String)> = out[good as usize..]
        .iter()
        .map(|(l, r)| {
            (
                *l,
                r.as_ref()
                    .map(|_| "ok".to_string())
                    .unwrap_or_else(|e| e.error_type().to_string()),
            )
        })
        .collect();
    let g = good;
    assert_eq!(
        tail,
        vec![
            (g + 2, "missing_field".to_string()),
            (g + 3, "bad_json".to_string()),
            (g + 4, "ok".to_string()),
            (g + 5, "oversized".to_string()),
            (g + 6, "unknown_type".to_string()),
        ]
    );
    let normalised = out[good as usize + 2].1.as_ref().unwrap();
    assert!(
        String::from_utf8_lossy(&normalised.data)
            .contains("\"updated_at\":\"2024-01-01T00:00:00.000Z\"")
    );
}

#[test]
fn replay_csv_validates_each_row() {
    let csv = "sale_id,customer_id,item_id,promo_id,quantity,unit_price,event_time\n\
               S1,C1,I1,,2,3.50,2024-01-01T00:00:00Z\n\
               S2,C1,I1,P1,two,3.50,2024-01-01T00:00:01Z\n\
               S3,C1,I1\n\
               S4,C2,I2,,1,1,2024-01-01T00:00:02.5+00:00\n";
    let out: Vec<ReplayItem> = replay(
        std::io::Cursor::new(csv.as_bytes().to_vec()),
        ReplayFormat::Csv,
        ParseConfig::default(),
    )
    .unwrap()
    .collect();
    let summary: Vec<(u64, String)> = out
        .iter()
        .map(|(l, r)| {
            (
                *l,
                r.as_ref()
                    .map(|r| r.partition_key().to_string())
                    .unwrap_or_else(|e| e.to_string()),
            )
        })
        .collect();
    assert_eq!(summary[0], (2, "C1".to_string()));
    assert_eq!(
        summary[1],
        (
            3,
            "field \"quantity\": expected a number, found a string".to_string()
        )
    );
    assert_eq!(summary[2].0, 4);
    assert_eq!(out[2].1.as_ref().unwrap_err().error_type(), "bad_csv");
    assert_eq!(summary[3], (5, "C2".to_string()));
    let err = replay(
        std::io::Cursor::new(b"a,b\n1,2\n".to_vec()),
        ReplayFormat::Csv,
        ParseConfig::default(),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("no known event type"));
    assert_eq!(
        ReplayFormat::from_path(std::path::Path::new("x/sales.CSV")),
        Some(ReplayFormat::Csv)
    );
    assert_eq!(
        ReplayFormat::from_path(std::path::Path::new("a.jsonl")),
        Some(ReplayFormat::JsonLines)
    );
}
