//! Graceful shutdown hands leases over at once (no failover wait) and without duplicates.

mod consumer_common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use consumer_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_hands_leases_over_without_duplicates() {
    let env = Env::start().await;
    let stream = env.create_stream("handoff", 4).await;
    let app = env.application("handoff");
    let log: SharedLog = Arc::new(Mutex::new(Log::default()));
    // A long failover time: a hand-over that waited for expiry would fail the timing check.
    let failover = Duration::from_secs(20);
    let config = |worker: &str| consumer_common::ConsumerConfig {
        failover_time: failover,
        ..test_config(&app, &[&stream], worker)
    };

    let a = Worker::start(&env, config("worker-a"), &log, true);
    wait_until(Duration::from_secs(30), "a holds 4 leases", || async {
        (a.held() == 4).then_some(())
    })
    .await;
    let b = Worker::start(&env, config("worker-b"), &log, true);
    // b steals one lease per take round until both hold their fair share.
    wait_until(Duration::from_secs(30), "2 + 2 leases", || async {
        (a.held() == 2 && b.held() == 2).then_some(())
    })
    .await;
    assert!(b.metric("flowline_kinesis_consumer_lease_steals_total") >= 2.0);
    env.put(&stream, &records(0, 200, 40)).await;
    wait_until(Duration::from_secs(30), "first 200 records", || async {
        (log.lock().unwrap().distinct() == 200).then_some(())
    })
    .await;

    let stopped = Instant::now();
    let b_shards = b.held_shards();
    b.stop().await;
    wait_until(Duration::from_secs(10), "a holds all 4 leases", || async {
        (a.held() == 4).then_some(())
    })
    .await;
    let took = stopped.elapsed();
    assert!(
        took < failover / 2,
        "hand-over took {took:?}: it waited for expiry"
    );

    env.put(&stream, &records(200, 200, 40)).await;
    wait_until(Duration::from_secs(30), "all 400 records", || async {
        (log.lock().unwrap().distinct() == 400).then_some(())
    })
    .await;
    // Give a duplicate the chance to show up before checking there is none.
    tokio::time::sleep(Duration::from_millis(500)).await;
    {
        let log = log.lock().unwrap();
        let counts = log.data_counts();
        let dups: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).collect();
        assert!(
            dups.is_empty(),
            "duplicates after a graceful hand-over: {dups:?}"
        );
        for shard in &b_shards {
            assert!(log.events.contains(&(
                "worker-b".into(),
                shard.clone(),
                "shutdown_requested".into()
            )));
        }
        eprintln!("hand-over took {took:?}");
    }
    a.stop().await;
    env.cleanup().await;
}
