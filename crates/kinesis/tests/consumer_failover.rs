//! Two workers share a stream's shards; one crashes (no release) and the other takes over
//! after the failover time without losing records.

mod consumer_common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use consumer_common::*;
use flowline_kinesis::consumer::compare_sequence_numbers;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_worker_leases_are_taken_over_after_failover() {
    let env = Env::start().await;
    let stream = env.create_stream("failover", 4).await;
    let app = env.application("failover");
    let log: SharedLog = Arc::new(Mutex::new(Log::default()));

    let a = Worker::start(&env, test_config(&app, &[&stream], "worker-a"), &log, true);
    let b = Worker::start(&env, test_config(&app, &[&stream], "worker-b"), &log, true);
    wait_until(Duration::from_secs(30), "2 + 2 leases", || async {
        (a.held() == 2 && b.held() == 2).then_some(())
    })
    .await;

    env.put(&stream, &records(0, 200, 40)).await;
    wait_until(Duration::from_secs(30), "first 200 records", || async {
        (log.lock().unwrap().distinct() == 200).then_some(())
    })
    .await;

    // Crash b while records keep arriving.
    let writer = {
        let kinesis = env.kinesis.clone();
        let stream = stream.clone();
        tokio::spawn(async move {
            let env2 = consumer_common::Writer { kinesis, stream };
            env2.put(&records(200, 200, 40)).await;
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let b_shards = b.held_shards();
    let killed_at = Instant::now();
    b.kill().await;
    let failover = Duration::from_secs(2);
    wait_until(
        failover + Duration::from_secs(4),
        "worker a holds all 4 leases",
        || async { (a.held() == 4).then_some(()) },
    )
    .await;
    let took = killed_at.elapsed();
    // b's last renewal was at most one renew interval before the crash; a counts the
    // failover time from when it saw that renewal.
    let renew = test_config(&app, &[&stream], "x").effective_renew_interval();
    assert!(
        took + renew >= failover,
        "leases taken {took:?} after the crash: before the failover time"
    );
    writer.await.unwrap();
    env.put(&stream, &records(400, 100, 40)).await;
    wait_until(Duration::from_secs(30), "all 500 records", || async {
        (log.lock().unwrap().distinct() == 500).then_some(())
    })
    .await;
    assert_eq!(a.metric("flowline_kinesis_consumer_leases_held"), 4.0);
    assert!(a.metric("flowline_kinesis_consumer_lease_takes_total") >= 4.0);

    {
        let log = log.lock().unwrap();
        // Nothing lost.
        let counts = log.data_counts();
        let dups = counts.values().filter(|c| **c > 1).count();
        eprintln!("leases taken over {took:?} after the crash; {dups} duplicate deliveries");
        for i in 0..500 {
            assert!(
                counts.contains_key(&format!("r-{i}")),
                "r-{i} never delivered"
            );
        }
        // A duplicate is a record b had delivered but not checkpointed when it died.
        for s in log
            .seen
            .iter()
            .filter(|s| counts[&s.data] > 1 && s.worker == "worker-b")
        {
            assert!(
                b_shards.contains(&s.shard),
                "duplicate {s:?} on a shard b did not hold at the end"
            );
            if let Some((cp, sub)) = log
                .checkpoints
                .get(&("worker-b".to_owned(), s.shard.clone()))
            {
                let after = compare_sequence_numbers(&s.sequence_number, cp)
                    .then(s.sub_sequence_number.cmp(sub))
                    .is_gt();
                assert!(
                    after,
                    "duplicate {s:?} was at or before b's checkpoint {cp}/{sub}"
                );
            }
        }
        for s in log.seen.iter().filter(|s| counts[&s.data] > 1) {
            assert_eq!(counts[&s.data], 2, "{s:?} delivered more than twice");
        }
    }
    a.stop().await;
    env.cleanup().await;
}
