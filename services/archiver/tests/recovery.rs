//! SIGKILL mid-run and restart, and two copies sharing the shards: every record ends up
//! in the lake once — none lost, and no row in two objects (a replay from the checkpoint
//! cuts the same objects again, which overwrite the ones uploaded before).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use common::{Lake, eventually};
use flowline_lake::encode::decode_orders;

/// Small objects (many cuts) and a record-time interval shorter than the run, so that
/// both deterministic triggers fire; the wall-clock flush of a quiet shard (whose cut
/// may differ on replay) comes only after the crash.
const BUFFER: &str = r#"
size_hint_bytes = 8192
interval = "2s"
wall_clock_grace = "4s"
"#;

/// Every row in the lake: raw sales lines and order ids, each with how many objects
/// hold it.
async fn rows(lake: &Lake) -> BTreeMap<Vec<u8>, usize> {
    let mut seen = BTreeMap::new();
    for (_, lines) in lake.lines(&format!("raw/{}/", lake.stream("sales"))).await {
        for line in lines {
            *seen.entry(line).or_default() += 1;
        }
    }
    for (_, body) in lake.objects("curated/orders/").await {
        for o in decode_orders(Bytes::from(body)).unwrap() {
            *seen.entry(o.order_id.into_bytes()).or_default() += 1;
        }
    }
    seen
}

#[tokio::test]
async fn sigkill_and_restart_lose_and_duplicate_nothing() {
    tokio::time::timeout(Duration::from_secs(170), run())
        .await
        .expect("test finishes in time");
}

async fn run() {
    let lake = Lake::new(&["sales", "orders_enriched"], 2, BUFFER, "").await;
    let sales: Vec<Vec<u8>> = common::raw_events("sales", 1600)
        .into_iter()
        .map(|(_, d)| d)
        .collect();
    let orders = common::orders(800);
    let order_bytes: Vec<Vec<u8>> = orders
        .iter()
        .map(|o| serde_json::to_vec(o).unwrap())
        .collect();
    let mut want: Vec<Vec<u8>> = sales.clone();
    want.extend(orders.iter().map(|o| o.order_id.clone().into_bytes()));
    want.sort();

    // First half, then a crash as soon as the first objects are uploaded.
    tokio::join!(
        lake.put(lake.stream("sales"), &sales[..1000]),
        lake.put(lake.stream("orders_enriched"), &order_bytes[..500]),
    );
    let mut svc = lake.spawn();
    eventually(Duration::from_secs(60), "the first objects", || async {
        lake.count("raw/").await >= 2
    })
    .await;
    svc.signal(libc::SIGKILL);
    svc.wait_exit(Duration::from_secs(10)).await.unwrap();
    let before = rows(&lake).await;
    eprintln!(
        "{} of 1500 first-half rows in S3 at the crash",
        before.len()
    );
    assert!(
        before.len() < 1500,
        "the crash came after everything was archived: nothing to test"
    );

    // Second half, and a new worker that takes over the dead one's leases.
    tokio::join!(
        lake.put(lake.stream("sales"), &sales[1000..]),
        lake.put(lake.stream("orders_enriched"), &order_bytes[500..]),
    );
    let mut svc = lake.spawn();
    svc.wait_ready(Duration::from_secs(60)).await.unwrap();
    eventually(Duration::from_secs(90), "every record in S3", || async {
        rows(&lake).await.len() >= want.len()
    })
    .await;

    svc.signal(libc::SIGTERM);
    let status = svc.wait_exit(Duration::from_secs(30)).await.unwrap();
    assert_eq!(status.code(), Some(0), "log:\n{}", svc.logs());

    let after = rows(&lake).await;
    let got: Vec<Vec<u8>> = after.keys().cloned().collect();
    assert!(got == want, "rows differ from the input");
    let duplicated: Vec<String> = after
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(row, n)| format!("{} x{n}", String::from_utf8_lossy(row)))
        .collect();
    assert!(
        duplicated.is_empty(),
        "{} rows in more than one object, e.g. {:?}",
        duplicated.len(),
        &duplicated[..duplicated.len().min(5)]
    );
}

#[tokio::test]
async fn two_copies_share_the_shards_and_write_each_row_once() {
    tokio::time::timeout(Duration::from_secs(170), run_two_copies())
        .await
        .expect("test finishes in time");
}

async fn run_two_copies() {
    let lake = Lake::new(&["sales", "orders_enriched"], 2, BUFFER, "").await;
    let sales: Vec<Vec<u8>> = common::raw_events("sales", 1200)
        .into_iter()
        .map(|(_, d)| d)
        .collect();
    let orders = common::orders(600);
    let order_bytes: Vec<Vec<u8>> = orders
        .iter()
        .map(|o| serde_json::to_vec(o).unwrap())
        .collect();
    let mut want: Vec<Vec<u8>> = sales.clone();
    want.extend(orders.iter().map(|o| o.order_id.clone().into_bytes()));
    want.sort();

    let mut a = lake.spawn();
    let mut b = lake.spawn();
    a.wait_ready(Duration::from_secs(60)).await.unwrap();
    b.wait_ready(Duration::from_secs(60)).await.unwrap();
    // Both hold leases before the data comes, so each copy archives part of it.
    eventually(
        Duration::from_secs(30),
        "both copies holding leases",
        || async {
            common::counter(&a, "flowline_kinesis_consumer_leases_held").await >= 1.0
                && common::counter(&b, "flowline_kinesis_consumer_leases_held").await >= 1.0
        },
    )
    .await;
    tokio::join!(
        lake.put(lake.stream("sales"), &sales),
        lake.put(lake.stream("orders_enriched"), &order_bytes),
    );
    eventually(Duration::from_secs(90), "every record in S3", || async {
        rows(&lake).await.len() >= want.len()
    })
    .await;
    for svc in [&mut a, &mut b] {
        svc.signal(libc::SIGTERM);
    }
    for svc in [&mut a, &mut b] {
        let status = svc.wait_exit(Duration::from_secs(30)).await.unwrap();
        assert_eq!(status.code(), Some(0), "log:\n{}", svc.logs());
    }

    let after = rows(&lake).await;
    let got: Vec<Vec<u8>> = after.keys().cloned().collect();
    assert!(got == want, "rows differ from the input");
    let duplicated = after.values().filter(|n| **n > 1).count();
    assert_eq!(duplicated, 0, "rows in more than one object");
}
