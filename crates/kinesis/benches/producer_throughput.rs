//! Producer throughput, printed as figures.
//!
//! `cargo bench -p flowline-kinesis --bench producer_throughput`
//!
//! Uses the Kinesis at `AWS_ENDPOINT_URL_KINESIS` (default http://127.0.0.1:4567), creates its
//! own stream (`BENCH_SHARDS`, default 12) and deletes it afterwards. Each phase runs
//! `BENCH_SECONDS` (default 20), 200-byte records:
//! 1. the emulator's ceiling: a bare PutRecords loop, 500 records per call;
//! 2. the producer into the emulator, with and without aggregation;
//! 3. the producer into an in-process sink that acknowledges at once, with and without
//!    aggregation: the producer's own ceiling (kinesis-local moves only about 2 MB/s).
//!
//! CPU time is this process's user+system time (getrusage); the emulator's CPU is not included.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use bytes::Bytes;
use flowline_kinesis::producer::{
    NullKinesis, PendingAck, Producer, ProducerConfig, ProducerMetrics, Record,
};
use tokio::task::JoinSet;

const RECORD_BYTES: usize = 200;

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Figures {
    name: String,
    records: u64,
    seconds: f64,
    cpu: f64,
}

impl Figures {
    fn print(&self) {
        let rate = self.records as f64 / self.seconds;
        let cpu_per_million = self.cpu / (self.records.max(1) as f64 / 1e6);
        println!(
            "{:<48} {:>9} records in {:>6.2} s = {:>8.0} records/s, {:>7.2} CPU s per million records",
            self.name, self.records, self.seconds, rate, cpu_per_million
        );
    }
}

fn payload(i: u64) -> Bytes {
    let mut s = format!("{{\"i\":{i},\"pad\":\"");
    while s.len() < RECORD_BYTES - 2 {
        s.push('x');
    }
    s.push_str("\"}");
    Bytes::from(s)
}

/// Bare PutRecords loop: `concurrency` workers each sending 500-record calls back to back.
async fn emulator_ceiling(
    client: &Client,
    stream: &str,
    seconds: u64,
    concurrency: usize,
) -> Figures {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    let mut workers = JoinSet::new();
    for w in 0..concurrency {
        let (client, stream, stop, count) = (
            client.clone(),
            stream.to_owned(),
            stop.clone(),
            count.clone(),
        );
        workers.spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let entries: Vec<_> = (0..500)
                    .map(|_| {
                        i += 1;
                        PutRecordsRequestEntry::builder()
                            .partition_key(format!("w{w}-{i}"))
                            .data(Blob::new(payload(i).to_vec()))
                            .build()
                            .unwrap()
                    })
                    .collect();
                let out = client
                    .put_records()
                    .stream_name(&stream)
                    .set_records(Some(entries))
                    .send()
                    .await;
                if let Ok(out) = out {
                    count.fetch_add(
                        500 - out.failed_record_count().unwrap_or(0) as u64,
                        Ordering::Relaxed,
                    );
                }
            }
        });
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    while workers.join_next().await.is_some() {}
    Figures {
        name: format!("bare PutRecords x500, {concurrency} in flight"),
        records: count.load(Ordering::Relaxed),
        seconds: start.elapsed().as_secs_f64(),
        cpu: cpu_seconds() - cpu0,
    }
}

/// Sends as fast as backpressure allows for `seconds`, then flushes; counts acknowledged records.
async fn through_producer(name: String, producer: Producer, seconds: u64) -> Figures {
    let acked = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    // Acks are awaited by a separate task so sending waits only on the producer's buffer.
    let (ack_tx, mut ack_rx) = tokio::sync::mpsc::channel::<PendingAck>(100_000);
    let counter = {
        let (acked, failed) = (acked.clone(), failed.clone());
        tokio::spawn(async move {
            while let Some(pending) = ack_rx.recv().await {
                match pending.await {
                    Ok(_) => {
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        if failed.fetch_add(1, Ordering::Relaxed) == 0 {
                            eprintln!("first failure: {e}");
                        }
                    }
                }
            }
        })
    };
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let mut i = 0u64;
    while Instant::now() < deadline {
        for _ in 0..1000 {
            i += 1;
            let record = Record::new(format!("customer-{}", i % 100_000), payload(i));
            ack_tx
                .send(producer.send(record).await.expect("send"))
                .await
                .unwrap();
        }
    }
    producer.flush().await.unwrap();
    drop(ack_tx);
    counter.await.unwrap();
    let seconds_taken = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    producer.shutdown().await.unwrap();
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "records failed during the benchmark"
    );
    Figures {
        name,
        records: acked.load(Ordering::Relaxed),
        seconds: seconds_taken,
        cpu,
    }
}

async fn create_stream(client: &Client, name: &str, shards: i32) {
    flowline_testkit::create_stream(client, name, shards)
        .await
        .expect("create stream");
}

async fn run_phases(client: Client, stream: String, seconds: u64) -> Vec<Figures> {
    let mut all = Vec::new();
    for concurrency in [1, 4] {
        all.push(emulator_ceiling(&client, &stream, seconds, concurrency).await);
        all.last().unwrap().print();
    }
    let metrics = ProducerMetrics::unregistered();
    for aggregation in [true, false] {
        let on = if aggregation { "on" } else { "off" };
        // The emulator takes seconds for a 5 MiB call and slows down with concurrency:
        // smaller calls, fewer in flight and a longer timeout than for real Kinesis. A smaller
        // buffer keeps the wait in it (buffer / throughput) well inside the record TTL.
        let cfg = ProducerConfig {
            aggregation,
            buffer_records: 5_000,
            max_batch_bytes: 1024 * 1024,
            max_in_flight_requests: 2,
            request_timeout: Duration::from_secs(30),
            ..ProducerConfig::default()
        };
        let producer = Producer::new(&client, &stream, cfg, &metrics)
            .await
            .expect("producer");
        let name = format!("producer -> kinesis-local, aggregation {on}");
        all.push(through_producer(name, producer, seconds).await);
        all.last().unwrap().print();
    }
    for aggregation in [true, false] {
        let on = if aggregation { "on" } else { "off" };
        let cfg = ProducerConfig {
            aggregation,
            ..ProducerConfig::default()
        };
        // 64 shards so the default per-shard budgets (1 MiB/s each) do not bind.
        let api = Arc::new(NullKinesis::new(64));
        let producer = Producer::with_api(api, "null", cfg, &metrics)
            .await
            .expect("producer");
        let name = format!("producer -> in-process sink, aggregation {on}");
        all.push(through_producer(name, producer, seconds).await);
        all.last().unwrap().print();
    }
    all
}

#[tokio::main]
async fn main() {
    let endpoint = std::env::var("AWS_ENDPOINT_URL_KINESIS")
        .unwrap_or_else(|_| "http://127.0.0.1:4567".into());
    let seconds = env_or("BENCH_SECONDS", 20u64);
    let shards = env_or("BENCH_SHARDS", 12i32);
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "bench"))
        .endpoint_url(&endpoint)
        .load()
        .await;
    let client = Client::new(&sdk);
    let stream = format!("bench-producer-{}", std::process::id());
    println!(
        "kinesis at {endpoint}, stream {stream} with {shards} shards, {RECORD_BYTES}-byte records, {seconds} s per phase"
    );
    create_stream(&client, &stream, shards).await;
    // Phases run in a task so a panic still lets us delete the stream.
    let phases = tokio::spawn(run_phases(client.clone(), stream.clone(), seconds)).await;
    let _ = client
        .delete_stream()
        .stream_name(&stream)
        .enforce_consumer_deletion(true)
        .send()
        .await;
    let all = match phases {
        Ok(all) => all,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    println!("\nsummary:");
    for f in &all {
        f.print();
    }
}
