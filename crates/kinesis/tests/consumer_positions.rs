//! Initial positions (TRIM_HORIZON vs LATEST), resuming from a checkpoint after a restart, and
//! the checkpointer's rules (monotonic, only delivered positions, only while the lease is held).

mod consumer_common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use consumer_common::*;
use flowline_kinesis::Error;
use flowline_kinesis::consumer::{Checkpoint, KinesisClientRecord};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trim_horizon_latest_and_restart_from_checkpoint() {
    let env = Env::start().await;
    let stream = env.create_stream("positions", 2).await;
    env.put(&stream, &records(0, 50, 10)).await;

    // TRIM_HORIZON reads what is already there.
    let app_th = env.application("pos-th");
    let log_th: SharedLog = Arc::new(Mutex::new(Log::default()));
    let th = Worker::start(
        &env,
        test_config(&app_th, &[&stream], "th-1"),
        &log_th,
        true,
    );

    // LATEST only what is written after its readers started.
    let app_latest = env.application("pos-latest");
    let log_latest: SharedLog = Arc::new(Mutex::new(Log::default()));
    let latest_config = ConsumerConfig {
        initial_position: InitialPosition::Latest,
        ..test_config(&app_latest, &[&stream], "latest-1")
    };
    let latest = Worker::start(&env, latest_config, &log_latest, true);
    wait_until(
        Duration::from_secs(30),
        "LATEST readers started",
        || async {
            let s = latest.status.borrow();
            (s.shards.len() == 2 && s.shards.values().all(|s| s.millis_behind_latest.is_some()))
                .then_some(())
        },
    )
    .await;
    assert!(latest.status.borrow().is_ready());

    env.put(&stream, &records(50, 50, 10)).await;
    wait_until(
        Duration::from_secs(30),
        "TRIM_HORIZON reads 100",
        || async { (log_th.lock().unwrap().distinct() == 100).then_some(()) },
    )
    .await;
    wait_until(Duration::from_secs(30), "LATEST reads 50", || async {
        (log_latest.lock().unwrap().distinct() == 50).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    {
        let log = log_latest.lock().unwrap();
        let counts = log.data_counts();
        assert!((50..100).all(|i| counts.get(&format!("r-{i}")) == Some(&1)));
        assert_eq!(
            counts.len(),
            50,
            "LATEST read records written before it started"
        );
    }
    latest.stop().await;

    // Restart the TRIM_HORIZON application: it resumes after its checkpoints.
    th.stop().await;
    env.put(&stream, &records(100, 30, 10)).await;
    let th2 = Worker::start(
        &env,
        test_config(&app_th, &[&stream], "th-2"),
        &log_th,
        true,
    );
    wait_until(
        Duration::from_secs(30),
        "restarted worker reads the 30 new records",
        || async { (log_th.lock().unwrap().distinct() == 130).then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    {
        let log = log_th.lock().unwrap();
        let counts = log.data_counts();
        assert!(
            counts.values().all(|c| *c == 1),
            "a record was read twice after the restart"
        );
        let restarted: Vec<usize> = log
            .seen
            .iter()
            .filter(|s| s.worker == "th-2")
            .map(|s| s.data[2..].parse().unwrap())
            .collect();
        assert_eq!(restarted.len(), 30);
        assert!(
            restarted.iter().all(|i| *i >= 100),
            "restart re-read checkpointed records: {restarted:?}"
        );
    }
    th2.stop().await;
    env.cleanup().await;
}

/// Processor that exercises the checkpointer's rules on its first batch.
struct Rules {
    result: Arc<Mutex<Option<Vec<String>>>>,
}

#[async_trait::async_trait]
impl ShardRecordProcessor for Rules {
    async fn initialize(&mut self, _shard: &ShardInfo, _start: &Checkpoint) {}

    async fn process_records(&mut self, input: ProcessRecordsInput) {
        if input.records.len() < 3 || self.result.lock().unwrap().is_some() {
            return;
        }
        let cp = &input.checkpointer;
        let r: &[KinesisClientRecord] = &input.records;
        let mut out = Vec::new();
        let last = r.last().unwrap();
        // Beyond what was delivered: refused.
        let beyond = format!("{}0", last.sequence_number);
        out.push(format!(
            "beyond:{}",
            matches!(
                cp.checkpoint(&beyond, 0).await,
                Err(Error::InvalidCheckpoint(_))
            )
        ));
        // SHARD_END on an open shard: refused.
        out.push(format!(
            "shard_end:{}",
            matches!(
                cp.checkpoint_shard_end().await,
                Err(Error::InvalidCheckpoint(_))
            )
        ));
        // Forward, then an older position (a late acknowledgement): ignored, never backwards.
        cp.checkpoint(&r[2].sequence_number, 0).await.unwrap();
        cp.checkpoint(&r[0].sequence_number, 0).await.unwrap();
        out.push(format!(
            "monotonic:{}",
            cp.last_checkpoint().await == r[2].position()
        ));
        // A clone used later from another task works while the lease is held.
        let later = cp.clone();
        let seq = last.sequence_number.clone();
        tokio::spawn(async move { later.checkpoint(&seq, 0).await })
            .await
            .unwrap()
            .unwrap();
        out.push(format!(
            "async:{}",
            cp.last_checkpoint().await == last.position()
        ));
        *self.result.lock().unwrap() = Some(out);
    }

    async fn lease_lost(&mut self) {}
    async fn shard_ended(&mut self, c: Checkpointer) {
        c.checkpoint_shard_end().await.unwrap();
    }
    async fn shutdown_requested(&mut self, _c: Checkpointer) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpointer_is_monotonic_and_checks_positions() {
    let env = Env::start().await;
    let stream = env.create_stream("cp-rules", 1).await;
    env.put(&stream, &records(0, 20, 1)).await;
    let app = env.application("cp-rules");
    let result = Arc::new(Mutex::new(None));
    let r = result.clone();
    let factory = Arc::new(move |_: &ShardInfo| -> Box<dyn ShardRecordProcessor> {
        Box::new(Rules { result: r.clone() })
    });
    let consumer = Consumer::new(
        test_config(&app, &[&stream], "w"),
        env.kinesis.clone(),
        env.dynamodb.clone(),
        factory,
        &prometheus::Registry::new(),
    )
    .unwrap();
    let token = tokio_util::sync::CancellationToken::new();
    let handle = tokio::spawn(consumer.run(token.clone()));
    let out = wait_until(Duration::from_secs(30), "rules checked", || async {
        result.lock().unwrap().clone()
    })
    .await;
    assert_eq!(
        out,
        [
            "beyond:true",
            "shard_end:true",
            "monotonic:true",
            "async:true"
        ]
    );
    token.cancel();
    handle.await.unwrap().unwrap();
    // The stored checkpoint is the last one written.
    let leases =
        flowline_kinesis::consumer::LeaseTable::new(env.dynamodb.clone(), format!("{app}-leases"))
            .list()
            .await
            .unwrap();
    assert_eq!(leases.len(), 1);
    assert!(matches!(leases[0].checkpoint, Checkpoint::Sequence { .. }));
    assert_eq!(leases[0].owner, None, "released on shutdown");
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_timestamp_starts_at_the_given_time() {
    let env = Env::start().await;
    let stream = env.create_stream("at-ts", 1).await;
    env.put(&stream, &records(0, 30, 5)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let from = std::time::SystemTime::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    env.put(&stream, &records(30, 30, 5)).await;

    let app = env.application("at-ts");
    let log: SharedLog = Arc::new(Mutex::new(Log::default()));
    let config = ConsumerConfig {
        initial_position: InitialPosition::AtTimestamp,
        initial_timestamp: Some(from),
        ..test_config(&app, &[&stream], "w")
    };
    let w = Worker::start(&env, config, &log, true);
    wait_until(Duration::from_secs(30), "30 records", || async {
        (log.lock().unwrap().distinct() >= 30).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    {
        let log = log.lock().unwrap();
        let read: Vec<usize> = log
            .seen
            .iter()
            .map(|s| s.data[2..].parse().unwrap())
            .collect();
        assert_eq!(read, (30..60).collect::<Vec<_>>());
    }
    w.stop().await;
    env.cleanup().await;
}
