//! End to end on the local stack: enriched orders in, window metrics out,
//! compared with an independent recomputation; also across a SIGKILL and
//! with two copies sharing the shards.

mod common;

use std::time::Duration;

use common::*;

const ORDERS: usize = 1500;
const BAD: usize = 5;

fn assert_same(got: &Expected, expected: &Expected) {
    if got != expected {
        let missing: Vec<_> = expected
            .keys()
            .filter(|k| !got.contains_key(*k))
            .take(5)
            .collect();
        let wrong: Vec<_> = expected
            .iter()
            .filter(|(k, v)| got.get(*k).is_some_and(|g| g != *v))
            .take(5)
            .map(|(k, v)| (k, v, &got[k]))
            .collect();
        panic!(
            "final metrics differ: {} expected, {} got; missing {missing:?}; wrong (key, expected, got) {wrong:?}",
            expected.len(),
            got.len()
        );
    }
}

#[tokio::test]
async fn metrics_equal_an_independent_recomputation() {
    let env = Env::new(2, "").await;
    let (records, orders) = generate(ORDERS, BAD);
    env.put(&records).await;
    let expected = recompute(&orders);

    let mut svc = env.spawn();
    svc.wait_ready(Duration::from_secs(30)).await.unwrap();
    let got = wait_for(&env, &expected, Duration::from_secs(60)).await;
    assert_same(&got, &expected);

    let dlq = dead_letters(&env).await;
    assert_eq!(dlq.values().sum::<usize>(), BAD, "{dlq:?}");
    assert_eq!(dlq.get("late"), None, "{dlq:?}");
    let duplicates = counter(&svc, "flowline_aggregator_records_total", "duplicate").await;
    assert_eq!(duplicates as usize, ORDERS.div_ceil(37), "{}", svc.logs());

    svc.signal(libc::SIGTERM);
    let status = svc.wait_exit(Duration::from_secs(20)).await.unwrap();
    assert_eq!(status.code(), Some(0), "{}", svc.logs());
}

#[tokio::test]
async fn sigkill_and_restart_give_the_same_final_metrics() {
    // Small batches so the kill lands mid-run.
    let env = Env::new(2, "[consumer.polling]\nmax_records = 40\n").await;
    let (records, orders) = generate(ORDERS, BAD);
    env.put(&records).await;
    let expected = recompute(&orders);

    let mut first = env.spawn();
    first.wait_ready(Duration::from_secs(30)).await.unwrap();
    let started = std::time::Instant::now();
    while counter(&first, "flowline_aggregator_records_total", "counted").await < 400.0 {
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "{}",
            first.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    first.signal(libc::SIGKILL);
    first.wait_exit(Duration::from_secs(10)).await.unwrap();
    let final_before = final_metrics(&env).await;
    assert_ne!(
        final_before, expected,
        "the kill came too late to test anything"
    );

    let mut second = env.spawn();
    second.wait_ready(Duration::from_secs(30)).await.unwrap();
    let got = wait_for(&env, &expected, Duration::from_secs(60)).await;
    assert_same(&got, &expected);
    assert!(
        counter(&second, "flowline_aggregator_records_total", "skipped").await
            + counter(&second, "flowline_aggregator_records_total", "counted").await
            > 0.0,
        "{}",
        second.logs()
    );
    let dlq = dead_letters(&env).await;
    assert_eq!(dlq.get("late"), None, "{dlq:?}");
    second.signal(libc::SIGTERM);
    second.wait_exit(Duration::from_secs(20)).await.unwrap();
}

#[tokio::test]
async fn two_copies_give_the_same_final_metrics() {
    let env = Env::new(2, "[consumer.polling]\nmax_records = 40\n").await;
    let (records, orders) = generate(ORDERS, BAD);
    let expected = recompute(&orders);

    // The data first: copies started on empty shards would see them idle and
    // let the watermark follow the wall clock, making these old orders late.
    env.put(&records).await;
    let mut a = env.spawn();
    let mut b = env.spawn();
    a.wait_ready(Duration::from_secs(30)).await.unwrap();
    b.wait_ready(Duration::from_secs(30)).await.unwrap();
    let got = wait_for(&env, &expected, Duration::from_secs(60)).await;
    assert_same(&got, &expected);
    let (ca, cb) = (
        counter(&a, "flowline_aggregator_records_total", "counted").await,
        counter(&b, "flowline_aggregator_records_total", "counted").await,
    );
    // At least once each: a batch a copy counted just before its lease moved
    // is fenced off (not stored) and counted again by the new owner.
    assert!((ca + cb) as usize >= ORDERS, "a {ca}, b {cb}");
    assert!(
        ca > 0.0 && cb > 0.0,
        "each copy holds a shard: a {ca}, b {cb}"
    );
    for svc in [&a, &b] {
        svc.signal(libc::SIGTERM);
    }
    a.wait_exit(Duration::from_secs(20)).await.unwrap();
    b.wait_exit(Duration::from_secs(20)).await.unwrap();
}

#[tokio::test]
async fn late_orders_revise_the_window_or_go_to_dead_letters() {
    // Lateness long enough that the wall-clock watermark of idle shards stays
    // within it for a window three minutes old.
    let env = Env::new(2, "[windows]\nallowed_lateness = \"10m\"\n").await;
    let window = (now_ms() - 3 * 60_000) / 60_000 * 60_000;
    let on_time = orders_between("on-time", 60, window, 60_000, 1);
    env.put(&records_of(&on_time)).await;

    let mut svc = env.spawn();
    svc.wait_ready(Duration::from_secs(30)).await.unwrap();
    let first = recompute(&on_time);
    assert_same(
        &wait_for(&env, &first, Duration::from_secs(40)).await,
        &first,
    );
    let all = (window, "all".to_owned(), "all".to_owned());
    assert_eq!(revisions(&env).await[&all], 1);

    // The window was emitted; these are late but within the allowed lateness.
    let late = orders_between("late", 7, window + 1_000, 50_000, 2);
    // Far beyond it: a dead letter.
    let too_late = orders_between("too-late", 1, window - 30 * 60_000, 1, 3);
    env.put(&records_of(&late)).await;
    env.put(&records_of(&too_late)).await;

    let mut all_orders = on_time.clone();
    all_orders.extend(late);
    let expected = recompute(&all_orders);
    assert_same(
        &wait_for(&env, &expected, Duration::from_secs(40)).await,
        &expected,
    );
    assert!(revisions(&env).await[&all] >= 2);
    let started = std::time::Instant::now();
    while dead_letters(&env).await.get("late") != Some(&1) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{}",
            svc.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        counter(&svc, "flowline_aggregator_late_records_total", "").await,
        1.0
    );
    svc.signal(libc::SIGTERM);
    svc.wait_exit(Duration::from_secs(20)).await.unwrap();
}

#[tokio::test]
async fn a_restart_after_a_window_was_finished_and_deleted_resumes() {
    // The emitter deletes a window's state once its final values are out and its
    // lateness and retention have passed; a shard idle since still lists the window.
    let env = Env::new(2, "[windows]\nallowed_lateness = \"1s\"\n").await;
    let window = (now_ms() - 2 * 60_000) / 60_000 * 60_000;
    let orders = orders_between("done", 40, window, 60_000, 4);
    env.put(&records_of(&orders)).await;
    let grace = [("AGGREGATOR_STATE__RETENTION_GRACE", "1s")];

    let mut first = env.spawn_with(&grace);
    first.wait_ready(Duration::from_secs(30)).await.unwrap();
    let expected = recompute(&orders);
    assert_same(
        &wait_for(&env, &expected, Duration::from_secs(40)).await,
        &expected,
    );
    let started = std::time::Instant::now();
    while counter(&first, "flowline_aggregator_windows_open", "").await > 0.0
        || started.elapsed() < Duration::from_secs(2)
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "window not deleted: {}",
            first.logs()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    first.signal(libc::SIGTERM);
    assert_eq!(
        first
            .wait_exit(Duration::from_secs(20))
            .await
            .unwrap()
            .code(),
        Some(0)
    );

    let mut second = env.spawn_with(&grace);
    second
        .wait_ready(Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("{e}: {}", second.logs()));
    // Ready comes before the shards are taken: wait for their restore.
    let started = std::time::Instant::now();
    while !second
        .logs()
        .contains("window finished and deleted; not restored")
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{}",
            second.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Nothing was emitted again or lost.
    assert_same(&final_metrics(&env).await, &expected);
    second.signal(libc::SIGTERM);
    assert_eq!(
        second
            .wait_exit(Duration::from_secs(20))
            .await
            .unwrap()
            .code(),
        Some(0)
    );
}
