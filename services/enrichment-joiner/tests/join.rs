//! The joiner on the local stack against an independent recomputation of the data set:
//! one copy, one copy killed with SIGKILL mid-run and restarted, and two copies at once.

mod support;

use std::time::Duration;

use support::{Setup, assert_matches, expected, gen_config, metric, setup};

const DEADLINE: Duration = Duration::from_secs(90);

/// Checks the final output and dead letters, stops the joiners; returns their logs.
async fn finish(s: &Setup, mut joiners: Vec<flowline_testkit::ServiceProcess>) -> Vec<String> {
    let want = expected(&s.data_set);
    let orders = s.wait_for_orders(want.orders.len(), DEADLINE).await;
    let logs: String = joiners.iter().map(|j| j.logs()).collect();
    assert_eq!(
        orders.len(),
        want.orders.len(),
        "distinct orders emitted; logs:\n{}",
        &logs[logs.len().saturating_sub(4000)..]
    );
    assert_matches(&want, &orders);
    let partial = want
        .orders
        .values()
        .filter(|o| !o.missing.is_empty())
        .count();
    assert!(partial > 0, "the data set has orphan or unknown references");
    assert!(partial < want.orders.len() / 5, "{partial} partial");

    // Every bad record is a dead letter with the model's error type.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let got = s.dead_letter_types().await;
        if got == want.bad || tokio::time::Instant::now() >= deadline {
            assert_eq!(got, want.bad, "dead letters by error type");
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for j in &mut joiners {
        j.signal(libc::SIGTERM);
    }
    for j in &mut joiners {
        let status = j.wait_exit(Duration::from_secs(40)).await.unwrap();
        assert_eq!(status.code(), Some(0), "{}", j.logs());
    }
    joiners.iter().map(|j| j.logs()).collect()
}

#[tokio::test]
async fn one_copy_emits_every_sale_once_with_the_recomputed_values() {
    let s = setup(gen_config(21, 150, 1500, 0.01)).await;
    s.put_data_set().await;
    let mut joiner = s.spawn();
    joiner.wait_ready(Duration::from_secs(60)).await.unwrap();
    let expected = expected(&s.data_set);
    let want = expected.orders.len();
    let orders = s.wait_for_orders(want, DEADLINE).await;
    // Without failures each order is written exactly once.
    let repeated = orders.values().filter(|c| c.len() > 1).count();
    assert_eq!(repeated, 0, "orders written more than once");
    let (_, metrics) = joiner.get("/metrics").await.unwrap();
    for name in [
        "flowline_enrichment_joiner_orders_out_total{join_status=\"complete\"}",
        "flowline_enrichment_joiner_records_in_total",
        "flowline_enrichment_joiner_shard_watermark_seconds",
        "flowline_enrichment_joiner_stream_watermark_seconds",
        "flowline_join_cache_lookups_total",
        "flowline_dead_letters_total",
        "flowline_join_pending_sales",
        "flowline_enrichment_joiner_watermark_lag_seconds",
        "flowline_enrichment_joiner_dynamodb_request_seconds_count",
    ] {
        assert!(metrics.contains(name), "{name} in /metrics");
    }
    // The only copy reads every customer and address shard, so it reads each entity from
    // the state table about once instead of once per sale (a sale older than an entity's
    // newest versions may take one more exact read).
    let exclusive = metric(
        &metrics,
        "flowline_enrichment_joiner_exclusive_entity_reader",
    );
    assert_eq!(exclusive, Some(1.0), "the only copy reads exclusively");
    let reads = metric(&metrics, "flowline_join_store_reads_total").unwrap();
    let bound = 2 * expected.entities;
    assert!(
        reads <= bound as f64,
        "{reads} state reads for {} entities and {want} sales",
        expected.entities
    );
    finish(&s, vec![joiner]).await;
}

#[tokio::test]
async fn a_copy_killed_mid_run_loses_nothing_after_a_restart() {
    let s = setup(gen_config(22, 150, 1500, 0.01)).await;
    s.put_data_set().await;
    let want = expected(&s.data_set).orders.len();
    let mut first = s.spawn();
    first.wait_ready(Duration::from_secs(60)).await.unwrap();
    // Killed as soon as orders flow: reading, joining and emitting are under way.
    let some = s.wait_for_orders(1, DEADLINE).await.len();
    assert!(some >= 1 && some < want, "{some} of {want} before the kill");
    first.signal(libc::SIGKILL);
    first.wait_exit(Duration::from_secs(10)).await.unwrap();
    let mut second = s.spawn();
    second.wait_ready(Duration::from_secs(60)).await.unwrap();
    finish(&s, vec![second]).await;
}

#[tokio::test]
async fn two_copies_share_the_shards_and_emit_the_same_set() {
    let s = setup(gen_config(23, 150, 1500, 0.01)).await;
    // The data set is in the streams first: its event times are far behind the wall clock,
    // so records arriving after every shard went idle (watermark = wall clock) would be late
    // and their joins would depend on timing, as DESIGN.md section 4 allows.
    s.put_data_set().await;
    let mut a = s.spawn();
    let mut b = s.spawn();
    a.wait_ready(Duration::from_secs(60)).await.unwrap();
    b.wait_ready(Duration::from_secs(60)).await.unwrap();
    let logs = finish(&s, vec![a, b]).await;
    for log in logs {
        assert!(
            log.contains("shard lease taken"),
            "each copy read shards:\n{log}"
        );
    }
}
