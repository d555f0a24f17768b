//! `flowctl replay` on the local stack. The archive is written by the archiver's own lake
//! writer (`flowline_lake::LakeWriter` into S3, the code the archiver service runs) from
//! the generator's events with bad records mixed in; the replay goes into fresh streams
//! that are read back. Checked: every good event exactly once, event-time order per
//! partition key, bad lines under `errors/replay/` with their reason, and that stopping
//! (`--max-records`, SIGINT, or SIGKILL) and starting again loses and duplicates nothing
//! that was acknowledged.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use flowline_datagen::{GenConfig, Generator};
use flowline_lake::encode::decode_jsonl_gz;
use flowline_lake::{
    Dataset, LakeConfig, LakeMetrics, LakeRecord, Position, RecordMeta, S3Uploader, UploadConfig,
};
use flowline_model::{DeadLetter, StreamKind, Timestamp};
use flowline_testkit::{Stack, create_bucket, create_stream, read_stream, unique_name};
use serde_json::Value;

/// The streams in the replay's tie-break order (versions before sales).
const KINDS: [StreamKind; 3] = [
    StreamKind::Customers,
    StreamKind::Addresses,
    StreamKind::Sales,
];

/// A good archived event: its order in the replay, its bytes and its entity key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Event {
    time: Timestamp,
    kind: StreamKind,
    line: Vec<u8>,
    partition_key: String,
}

/// An archive in a fresh bucket, and what it holds.
struct Archive {
    stack: Stack,
    aws: flowline_aws::AwsClients,
    bucket: String,
    /// Good events in replay order (event time, then kind, then bytes), each once.
    good: Vec<Event>,
    /// Bad lines as archived, each once.
    bad: Vec<Vec<u8>>,
}

fn event_of(kind: StreamKind, line: &[u8]) -> Event {
    let v: Value = serde_json::from_slice(line).unwrap();
    let time = v
        .get("event_time")
        .or_else(|| v.get("updated_at"))
        .and_then(Value::as_str)
        .unwrap();
    Event {
        time: Timestamp::parse_rfc3339(time).unwrap(),
        kind,
        line: line.to_vec(),
        partition_key: v[kind.partition_key_field()].as_str().unwrap().to_string(),
    }
}

impl Archive {
    /// Generator events from 00:58:30 for about 3.5 minutes (two hour partitions), 3 %
    /// bad, plus a line that is not JSON, one of the wrong shape, and one good line
    /// archived twice (as a re-cut object would hold it), written through the lake writer
    /// with small objects over two shards per stream.
    async fn write() -> Archive {
        let stack = Stack::start().await;
        let aws = stack.aws_clients().await;
        let bucket = unique_name("replay-lake");
        create_bucket(&aws.s3, &bucket).await.unwrap();

        let config = GenConfig {
            seed: 11,
            customers: 40,
            sales: 400,
            rate: 2.0,
            start_time: "2026-01-01T00:58:30Z".parse().unwrap(),
            bad_record_ratio: 0.03,
            ..GenConfig::default()
        };
        let mut lines: Vec<(StreamKind, Vec<u8>, bool)> = Generator::new(config)
            .unwrap()
            .map(|r| (r.stream, r.data, r.bad.is_some()))
            .collect();
        lines.push((StreamKind::Sales, b"not json at all".to_vec(), true));
        lines.push((
            StreamKind::Customers,
            br#"{"customer_id":"c-x","updated_at":"2026-01-01T00:59:00Z"}"#.to_vec(),
            true,
        ));
        let twice = lines
            .iter()
            .find(|(k, _, bad)| *k == StreamKind::Sales && !bad)
            .unwrap()
            .clone();
        lines.push(twice);

        let lake = LakeConfig {
            bucket: bucket.clone(),
            buffer: flowline_lake::BufferConfig {
                size_hint_bytes: 16 * 1024,
                ..Default::default()
            },
            ..LakeConfig::default()
        };
        let metrics = LakeMetrics::new(&prometheus::Registry::new()).unwrap();
        let sink = S3Uploader::new(&aws.s3, &bucket, UploadConfig::default(), metrics.clone());
        let writer = flowline_lake::LakeWriter::new(lake, sink, metrics);
        let arrival: Timestamp = "2026-01-01T01:00:30Z".parse().unwrap();
        let mut sequence = BTreeMap::new();
        let (mut good, mut bad) = (Vec::new(), Vec::new());
        for (i, (kind, data, is_bad)) in lines.into_iter().enumerate() {
            let shard = format!("shardId-00000000000{}", i % 2);
            let seq = sequence.entry((kind, i % 2)).or_insert(1000u64);
            *seq += 1;
            let meta = RecordMeta {
                stream: kind.default_stream_name().to_string(),
                shard_id: shard,
                position: Position::new(seq.to_string(), 0),
                arrival,
            };
            let record = LakeRecord::raw(&meta, Bytes::from(data.clone()));
            // A line with a newline cannot be archived raw (the archiver files it under
            // errors/archiver/): not part of the replay's input.
            if !matches!(record.dataset, Dataset::Raw { .. }) {
                continue;
            }
            writer.add(&meta, record).await.unwrap();
            if is_bad {
                bad.push(data);
            } else {
                good.push(event_of(kind, &data));
            }
        }
        writer.shutdown().await.unwrap();
        good.sort();
        good.dedup();
        bad.sort();
        bad.dedup();
        Archive {
            stack,
            aws,
            bucket,
            good,
            bad,
        }
    }

    /// Fresh target streams (two shards each), one per kind, named `<prefix><kind>`.
    async fn targets(&self) -> String {
        let prefix = format!("{}-", unique_name("rp"));
        for kind in KINDS {
            let name = format!("{prefix}{}", kind.default_stream_name());
            create_stream(&self.aws.kinesis, &name, 2).await.unwrap();
        }
        prefix
    }

    fn command(&self, prefix: &str, position: &Path, extra: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_flowctl"));
        cmd.args([
            "replay",
            "--bucket",
            &self.bucket,
            "--stream-prefix",
            prefix,
        ])
        .arg("--position")
        .arg(position)
        .args(["--json", "--linger", "20ms"])
        .args(extra)
        .envs(self.stack.env())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
        cmd
    }

    /// Runs a replay to its end; its summary.
    async fn replay(&self, prefix: &str, position: &Path, extra: &[&str]) -> Value {
        let out = self
            .command(prefix, position, extra)
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "replay failed: {stderr}");
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("summary is not JSON ({e}): {stderr}"))
    }

    /// What the target streams hold: events in the order read (shard by shard, in
    /// sequence order), with their partition keys.
    async fn read_back(&self, prefix: &str) -> Vec<(String, Event)> {
        let mut out = Vec::new();
        for kind in KINDS {
            let name = format!("{prefix}{}", kind.default_stream_name());
            for r in read_stream(&self.aws.kinesis, &name).await.unwrap() {
                out.push((r.partition_key, event_of(kind, &r.data)));
            }
        }
        out
    }

    /// Every envelope under `errors/replay/`, with the error type its key names.
    async fn errors(&self) -> Vec<(String, DeadLetter)> {
        let listed = self
            .aws
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix("errors/replay/")
            .send()
            .await
            .unwrap();
        let mut out = Vec::new();
        for o in listed.contents() {
            let key = o.key().unwrap();
            let body = self
                .aws
                .s3
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await
                .unwrap()
                .body
                .collect()
                .await
                .unwrap()
                .into_bytes();
            let dir = key.split('/').nth(2).unwrap().to_string();
            for line in decode_jsonl_gz(&body).unwrap() {
                out.push((dir.clone(), serde_json::from_slice(&line).unwrap()));
            }
        }
        out
    }
}

/// How often each good event was read back; panics on anything that is not one.
fn counts(archive: &Archive, read: &[(String, Event)]) -> BTreeMap<Event, usize> {
    let mut n = BTreeMap::new();
    for (pk, e) in read {
        assert_eq!(pk, &e.partition_key, "partition key is the entity id");
        assert!(
            archive.good.binary_search(e).is_ok(),
            "not a good archived event: {e:?}"
        );
        *n.entry(e.clone()).or_insert(0) += 1;
    }
    n
}

fn position_acked(path: &Path) -> u64 {
    let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    v["acked_records"].as_u64().unwrap()
}

#[tokio::test]
async fn replay_sends_every_good_event_once_in_event_time_order_and_files_bad_lines() {
    tokio::time::timeout(Duration::from_secs(240), async {
        let archive = Archive::write().await;
        assert!(archive.good.len() > 400 && archive.bad.len() > 5);
        let prefix = archive.targets().await;
        let dir = tempfile::tempdir().unwrap();
        let position = dir.path().join("position.json");

        let summary = archive.replay(&prefix, &position, &[]).await;
        assert_eq!(summary["outcome"], "finished", "{summary}");
        assert_eq!(summary["hours"], 2, "{summary}");
        assert_eq!(summary["sent"], archive.good.len() as u64, "{summary}");
        assert_eq!(summary["acknowledged"], archive.good.len() as u64);
        assert_eq!(
            summary["duplicates"], 1,
            "the line archived twice is sent once"
        );
        let bad_total: u64 = summary["bad_lines"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(bad_total, archive.bad.len() as u64, "{summary}");

        // Every good event exactly once, on the stream of its kind, keyed by its entity.
        let read = archive.read_back(&prefix).await;
        let n = counts(&archive, &read);
        assert_eq!(n.len(), archive.good.len(), "every good event arrived");
        assert!(n.values().all(|&c| c == 1), "no event twice");

        // Event-time order per partition key (one key lives on one shard, read in order).
        let mut last: BTreeMap<(StreamKind, &str), Timestamp> = BTreeMap::new();
        for (pk, e) in &read {
            if let Some(prev) = last.insert((e.kind, pk), e.time) {
                assert!(prev <= e.time, "{pk}: {} after {}", e.time, prev);
            }
        }

        // Bad lines under errors/replay/<error-type>/ with a reason and their exact bytes.
        let errors = archive.errors().await;
        let mut payloads: Vec<Vec<u8>> = errors.iter().map(|(_, d)| d.payload().unwrap()).collect();
        payloads.sort();
        assert_eq!(payloads, archive.bad);
        for (dir, d) in &errors {
            assert_eq!(&d.error_type, dir);
            assert_eq!(d.stage, "replay");
            assert!(
                d.reason.contains("line "),
                "reason names the line: {}",
                d.reason
            );
            assert!(
                d.source_stream == "sales"
                    || d.source_stream == "customers"
                    || d.source_stream == "addresses"
            );
        }
        assert!(errors.iter().any(|(t, _)| t == "bad_json"));
        assert!(errors.iter().any(|(t, _)| t == "missing_field"));

        // A finished replay run again sends nothing (it re-reads only the last hour).
        let again = archive.replay(&prefix, &position, &[]).await;
        assert_eq!(again["outcome"], "finished", "{again}");
        assert_eq!(again["sent"], 0, "{again}");
        assert_eq!(again["hours"], 1, "{again}");
        assert_eq!(again["already_acknowledged"], archive.good.len() as u64);
        assert_eq!(archive.read_back(&prefix).await.len(), read.len());
    })
    .await
    .expect("test finishes in time");
}

#[tokio::test]
async fn a_replay_stopped_by_max_records_continues_without_loss_or_duplicates() {
    tokio::time::timeout(Duration::from_secs(240), async {
        let archive = Archive::write().await;
        let prefix = archive.targets().await;
        let dir = tempfile::tempdir().unwrap();
        let position = dir.path().join("position.json");

        let first = archive
            .replay(&prefix, &position, &["--max-records", "150"])
            .await;
        assert_eq!(first["outcome"], "max_records", "{first}");
        assert_eq!(first["sent"], 150);
        assert_eq!(position_acked(&position), 150);
        // Exactly the first 150 events of the replay order are on the streams.
        let read = archive.read_back(&prefix).await;
        let n = counts(&archive, &read);
        let expected: BTreeMap<Event, usize> =
            archive.good[..150].iter().map(|e| (e.clone(), 1)).collect();
        assert_eq!(n, expected);

        // Another plan must not pick this position up.
        let other = archive
            .command(&prefix, &position, &["--streams", "sales"])
            .output()
            .await
            .unwrap();
        assert!(!other.status.success());
        assert!(String::from_utf8_lossy(&other.stderr).contains("another replay"));

        let rest = archive.replay(&prefix, &position, &[]).await;
        assert_eq!(rest["outcome"], "finished", "{rest}");
        assert_eq!(rest["already_acknowledged"], 150, "{rest}");
        assert_eq!(rest["sent"], archive.good.len() as u64 - 150);
        assert_eq!(rest["acknowledged_total"], archive.good.len() as u64);
        let n = counts(&archive, &archive.read_back(&prefix).await);
        assert_eq!(n.len(), archive.good.len(), "nothing lost");
        assert!(n.values().all(|&c| c == 1), "nothing duplicated");
    })
    .await
    .expect("test finishes in time");
}

#[tokio::test]
async fn a_killed_replay_resumes_without_resending_what_its_position_covers() {
    tokio::time::timeout(Duration::from_secs(240), async {
        let archive = Archive::write().await;
        let prefix = archive.targets().await;
        let dir = tempfile::tempdir().unwrap();
        let position = dir.path().join("position.json");

        // Slow enough (100 records/s) to be killed half-way.
        let mut child = archive
            .command(
                &prefix,
                &position,
                &["--rate", "100", "--save-every", "100ms"],
            )
            .spawn()
            .unwrap();
        loop {
            assert!(
                child.try_wait().unwrap().is_none(),
                "the replay ended before it was killed"
            );
            if position.exists() && position_acked(&position) >= 100 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        child.kill().await.unwrap(); // SIGKILL: no chance to flush or save
        let covered = position_acked(&position) as usize;
        assert!(covered >= 100 && covered < archive.good.len(), "{covered}");

        let rest = archive.replay(&prefix, &position, &[]).await;
        assert_eq!(rest["outcome"], "finished", "{rest}");
        assert_eq!(rest["already_acknowledged"], covered as u64, "{rest}");
        let n = counts(&archive, &archive.read_back(&prefix).await);
        assert_eq!(n.len(), archive.good.len(), "nothing lost");
        for (i, e) in archive.good.iter().enumerate() {
            if i < covered {
                assert_eq!(n[e], 1, "event {i} is covered by the position: sent once");
            } else {
                // Sent (maybe acknowledged) after the last save before the kill: may
                // be there twice, never more.
                assert!(n[e] <= 2, "event {i} arrived {} times", n[e]);
            }
        }
    })
    .await
    .expect("test finishes in time");
}

#[tokio::test]
async fn an_interrupted_replay_delivers_and_records_what_it_sent_then_resumes() {
    tokio::time::timeout(Duration::from_secs(240), async {
        let archive = Archive::write().await;
        let prefix = archive.targets().await;
        let dir = tempfile::tempdir().unwrap();
        let position = dir.path().join("position.json");

        let child = archive
            .command(
                &prefix,
                &position,
                &["--rate", "100", "--save-every", "100ms"],
            )
            .spawn()
            .unwrap();
        let pid = child.id().unwrap().to_string();
        while !(position.exists() && position_acked(&position) >= 50) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let kill = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap();
        assert!(kill.success());
        let out = child.wait_with_output().await.unwrap();
        let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            !out.status.success(),
            "an interrupted replay exits non-zero"
        );
        assert_eq!(summary["outcome"], "interrupted", "{summary}");
        // Everything sent before the signal was delivered and is covered by the position.
        let sent = summary["sent"].as_u64().unwrap();
        assert!(sent >= 50 && sent < archive.good.len() as u64, "{summary}");
        assert_eq!(summary["acknowledged"], sent, "{summary}");
        assert_eq!(position_acked(&position), sent);
        let n = counts(&archive, &archive.read_back(&prefix).await);
        let expected: BTreeMap<Event, usize> = archive.good[..sent as usize]
            .iter()
            .map(|e| (e.clone(), 1))
            .collect();
        assert_eq!(n, expected, "exactly the first records of the replay order");

        let rest = archive.replay(&prefix, &position, &[]).await;
        assert_eq!(rest["outcome"], "finished", "{rest}");
        let n = counts(&archive, &archive.read_back(&prefix).await);
        assert_eq!(n.len(), archive.good.len(), "nothing lost");
        assert!(n.values().all(|&c| c == 1), "nothing duplicated");
    })
    .await
    .expect("test finishes in time");
}
