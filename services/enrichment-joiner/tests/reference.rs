//! Reference data is reloaded when its object changes (ETag), and a bad object keeps the
//! last good copy and raises the failure counter.

mod support;

use support::metric;

use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use flowline_datagen::Catalog;
use flowline_datagen::reference::{ITEMS_CSV_KEY, items_to_csv};

async fn wait_metric(
    joiner: &flowline_testkit::ServiceProcess,
    name: &str,
    want: impl Fn(f64) -> bool,
) -> f64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, text) = joiner.get("/metrics").await.unwrap();
        let v = metric(&text, name).unwrap_or(f64::NAN);
        if want(v) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} = {v}; log:\n{}",
            joiner.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn changed_reference_objects_are_reloaded_and_bad_ones_keep_the_last_copy() {
    let mut s = support::setup(support::gen_config(5, 10, 10, 0.0)).await;
    s.env.push((
        "ENRICHMENT_JOINER_REFERENCE__REFRESH_INTERVAL".into(),
        "300ms".into(),
    ));
    let mut joiner = s.spawn();
    joiner.wait_ready(Duration::from_secs(60)).await.unwrap();
    let items = Catalog::generate(&s.data_set).items;
    let p = "flowline_enrichment_joiner_";
    let all = items.len() as f64;
    wait_metric(&joiner, &format!("{p}reference_items"), |v| v == all).await;
    wait_metric(&joiner, &format!("{p}reference_loads_total"), |v| v == 1.0).await;

    let aws = s.stack.aws_clients().await;
    let bucket = s
        .env
        .iter()
        .find(|(k, _)| k.ends_with("REFERENCE__BUCKET"))
        .map(|(_, v)| v.clone())
        .unwrap();
    let put = |body: Vec<u8>| {
        aws.s3
            .put_object()
            .bucket(&bucket)
            .key(ITEMS_CSV_KEY)
            .body(ByteStream::from(body))
            .send()
    };
    put(items_to_csv(&items[..10]).unwrap()).await.unwrap();
    wait_metric(&joiner, &format!("{p}reference_items"), |v| v == 10.0).await;
    wait_metric(&joiner, &format!("{p}reference_loads_total"), |v| v == 2.0).await;

    put(b"item_id,name\nnot,a valid catalogue".to_vec())
        .await
        .unwrap();
    wait_metric(
        &joiner,
        &format!("{p}reference_refresh_failures_total"),
        |v| v >= 1.0,
    )
    .await;
    let (_, text) = joiner.get("/metrics").await.unwrap();
    assert_eq!(metric(&text, &format!("{p}reference_items")), Some(10.0));
    assert_eq!(
        metric(&text, &format!("{p}reference_loads_total")),
        Some(2.0)
    );

    joiner.signal(libc::SIGTERM);
    let status = joiner.wait_exit(Duration::from_secs(30)).await.unwrap();
    assert_eq!(status.code(), Some(0), "{}", joiner.logs());
}
