//! The writer with an in-memory sink: flush triggers, memory bound and backpressure.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use flowline_model::Timestamp;
use tokio::sync::watch;

use crate::encode::decode_jsonl_gz;
use crate::{
    LakeConfig, LakeError, LakeMetrics, LakeRecord, LakeWriter, ObjectSink, Position, PrefixKind,
    RecordMeta,
};

/// Stores objects in memory; uploads wait while the gate is closed.
#[derive(Clone)]
struct MemorySink {
    objects: Arc<Mutex<BTreeMap<String, Bytes>>>,
    gate: watch::Receiver<bool>,
}

impl MemorySink {
    fn new(open: bool) -> (Self, watch::Sender<bool>) {
        let (tx, rx) = watch::channel(open);
        (
            MemorySink {
                objects: Arc::default(),
                gate: rx,
            },
            tx,
        )
    }

    fn keys(&self) -> Vec<String> {
        self.objects.lock().unwrap().keys().cloned().collect()
    }

    fn raw_lines(&self) -> usize {
        self.objects
            .lock()
            .unwrap()
            .values()
            .map(|b| decode_jsonl_gz(b).unwrap().len())
            .sum()
    }
}

impl ObjectSink for MemorySink {
    async fn put(
        &self,
        key: &str,
        body: Bytes,
        _: &'static str,
        _: PrefixKind,
    ) -> Result<(), LakeError> {
        let mut gate = self.gate.clone();
        gate.wait_for(|open| *open)
            .await
            .map_err(|_| LakeError::Closed)?;
        self.objects.lock().unwrap().insert(key.to_string(), body);
        Ok(())
    }
}

fn meta(shard: &str, seq: u64) -> RecordMeta {
    RecordMeta {
        stream: "sales".into(),
        shard_id: shard.into(),
        position: Position::new((1000 + seq).to_string(), 0),
        arrival: Timestamp::from_millis(1_700_000_000_000).unwrap(),
    }
}

fn record(m: &RecordMeta, size: usize) -> LakeRecord {
    LakeRecord::raw(
        m,
        Bytes::from(format!("{{\"pad\":\"{}\"}}", "x".repeat(size - 10))),
    )
}

fn config(budget: u64, size_hint: u64, interval_ms: u64) -> LakeConfig {
    let mut c = LakeConfig::default();
    c.buffer.memory_budget_bytes = budget;
    c.buffer.size_hint_bytes = size_hint;
    c.buffer.interval = Duration::from_millis(interval_ms);
    c.buffer.wall_clock_grace = Duration::from_millis(100);
    c
}

fn metrics_of(w: &LakeWriter<MemorySink>) -> i64 {
    w.metrics().buffered_bytes.get()
}

fn metrics() -> LakeMetrics {
    LakeMetrics::new(&prometheus::Registry::new()).unwrap()
}

#[tokio::test]
async fn size_hint_flushes_and_positions_become_safe() {
    let (sink, _gate) = MemorySink::new(true);
    let w = LakeWriter::new(config(1 << 20, 3000, 60_000), sink.clone(), metrics());
    for seq in 0..10 {
        let m = meta("shard-a", seq);
        w.add(&m, record(&m, 1000)).await.unwrap();
    }
    // Cut after records 2, 5 and 8 (3000 bytes each); 9 is still open.
    let safe = w.flush_shard_and_wait("sales", "shard-a").await.unwrap();
    assert_eq!(safe, Some(Position::new("1009", 0)));
    let names: Vec<String> = sink
        .keys()
        .iter()
        .map(|k| k.rsplit('/').next().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "sales_shard-a_1000_1002.jsonl.gz",
            "sales_shard-a_1003_1005.jsonl.gz",
            "sales_shard-a_1006_1008.jsonl.gz",
            "sales_shard-a_1009_1009.jsonl.gz",
        ]
    );
    w.shutdown().await.unwrap();
}

#[tokio::test]
async fn quiet_shards_flush_by_the_wall_clock() {
    let (sink, _gate) = MemorySink::new(true);
    let m = metrics();
    let w = LakeWriter::new(config(1 << 20, 1 << 20, 200), sink.clone(), m.clone());
    let r = meta("shard-a", 1);
    w.add(&r, record(&r, 100)).await.unwrap();
    let mut waited = Duration::ZERO;
    while w.safe_position("sales", "shard-a").is_none() {
        assert!(waited < Duration::from_secs(10), "no idle flush");
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    }
    assert_eq!(m.flushes.with_label_values(&["idle"]).get(), 1);
    assert_eq!(sink.raw_lines(), 1);
    w.shutdown().await.unwrap();
}

#[tokio::test]
async fn memory_budget_bounds_buffers_and_add_waits_for_uploads() {
    let (sink, gate) = MemorySink::new(false);
    let m = metrics();
    // Room for about ten 1 KiB records; the size hint is never reached.
    let budget = 10 * (1000 + 64) + 10;
    let w = Arc::new(LakeWriter::new(
        config(budget, 1 << 20, 60_000),
        sink.clone(),
        m.clone(),
    ));
    for seq in 0..10 {
        let r = meta(if seq % 2 == 0 { "shard-a" } else { "shard-b" }, seq);
        w.add(&r, record(&r, 1000)).await.unwrap();
    }
    // The next add cannot fit: it cuts the largest shard and waits for its upload.
    let writer = w.clone();
    let blocked = tokio::spawn(async move {
        for seq in 10..40 {
            let r = meta(if seq % 2 == 0 { "shard-a" } else { "shard-b" }, seq);
            writer.add(&r, record(&r, 1000)).await.unwrap();
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !blocked.is_finished(),
        "add must wait while uploads cannot proceed"
    );
    assert!(m.buffered_bytes.get() as u64 <= budget);
    assert!(m.flushes.with_label_values(&["memory"]).get() >= 1);
    assert!(m.backpressure_waits.get() >= 1);
    gate.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), blocked)
        .await
        .unwrap()
        .unwrap();
    assert!(m.buffered_bytes.get() as u64 <= budget);
    let w = Arc::into_inner(w).expect("task finished");
    w.shutdown().await.unwrap();
    assert_eq!(sink.raw_lines(), 40, "every record written exactly once");
    assert_eq!(m.buffered_bytes.get(), 0);
}

#[tokio::test]
async fn oversized_and_out_of_order_records_are_refused() {
    let (sink, _gate) = MemorySink::new(true);
    let w = LakeWriter::new(config(2000, 1000, 60_000), sink, metrics());
    let r = meta("shard-a", 5);
    assert!(matches!(
        w.add(&r, record(&r, 5000)).await,
        Err(LakeError::TooLarge { .. })
    ));
    w.add(&r, record(&r, 100)).await.unwrap();
    assert!(matches!(
        w.add(&r, record(&r, 100)).await,
        Err(LakeError::OutOfOrder { .. })
    ));
    let m = metrics_of(&w);
    assert!(m > 0);
    w.drop_shard("sales", "shard-a");
    assert_eq!(metrics_of(&w), 0, "dropped buffers give their budget back");
    w.add(&r, record(&r, 100)).await.unwrap();
    w.shutdown().await.unwrap();
}

/// A replay from a checkpoint (a cut) after a crash cuts at the same records, so it
/// writes objects of the same names: overwrites, not duplicates.
#[tokio::test]
async fn a_replay_from_the_checkpoint_rewrites_the_same_objects() {
    // Records of varied size over two partitions: cuts by
    // size (5000 bytes) and by record time (60 s).
    let records: Vec<(RecordMeta, LakeRecord)> = (0..120u64)
        .map(|seq| {
            let mut m = meta("shard-a", seq);
            // A busy minute (size cuts), then a slow stretch (record-time cuts).
            let offset = if seq < 60 {
                seq * 1_000
            } else {
                60_000 + (seq - 60) * 10_000
            };
            m.arrival = Timestamp::from_millis(1_700_000_000_000 + offset as i64).unwrap();
            let hour = if seq % 7 == 0 { "09" } else { "10" };
            let pad = "x".repeat(100 + (seq as usize * 37) % 400);
            let data = format!(
                r#"{{"sale_id":"{seq}","event_time":"2024-05-01T{hour}:00:00Z","pad":"{pad}"}}"#
            );
            let r = LakeRecord::raw(&m, Bytes::from(data));
            (m, r)
        })
        .collect();
    // Runs from record `from` on; returns the checkpoints it offered.
    let run = |from: usize, sink: MemorySink| {
        let records = records[from..].to_vec();
        async move {
            let m = metrics();
            let w = LakeWriter::new(config(1 << 20, 5000, 60_000), sink.clone(), m.clone());
            let mut checkpoints = Vec::new();
            for (m, r) in records {
                w.add(&m, r).await.unwrap();
                if let Some(p) = w.wait_uploaded("sales", "shard-a").await.unwrap()
                    && checkpoints.last() != Some(&p)
                {
                    checkpoints.push(p);
                }
            }
            w.shutdown().await.unwrap();
            (checkpoints, m)
        }
    };
    let (first, _g1) = MemorySink::new(true);
    let (checkpoints, m) = run(0, first.clone()).await;
    let keys = first.keys();
    assert!(checkpoints.len() >= 5, "several cuts: {checkpoints:?}");
    for reason in ["size", "age"] {
        assert!(
            m.flushes.with_label_values(&[reason]).get() > 0,
            "no {reason} cut"
        );
    }

    // A crash after any checkpoint: the replay starts at the next record.
    for cp in checkpoints {
        let from = cp.sequence_number.parse::<usize>().unwrap() - 1000 + 1;
        let (replay, _g2) = MemorySink::new(true);
        run(from, replay.clone()).await;
        for k in replay.keys() {
            assert!(
                keys.contains(&k),
                "replay after {cp} wrote a new object {k}"
            );
            assert_eq!(
                replay.objects.lock().unwrap()[&k],
                first.objects.lock().unwrap()[&k]
            );
        }
    }
}
