//! Issue #11: replaying an archived run into fresh streams, through the live pipeline,
//! gives the same OpenSearch results as the original run.
//!
//! Run A is the correctness test's (fixed seed, ~2% bad records): its outputs equal the
//! recomputation and its raw streams are archived to S3 (`await_correct` checks that the
//! raw archive equals the streams). Pipeline B has names of its own (streams, tables,
//! bucket, indices) and no producer: the real `flowctl replay` re-publishes A's raw
//! archive into B's raw streams (bad lines go to `errors/replay/` instead), A's reference
//! data is copied into B's bucket, and B's services run on that. Then:
//! - B's raw streams hold exactly A's good records, and the replay reports A's bad records
//!   as bad lines with the error types the joiner gave them;
//! - B's outputs equal the independent recomputation from B's own streams;
//! - B's OpenSearch documents equal A's: the same ids in the same daily indices of
//!   `orders` and `order-metrics`, with the same fields and values except when each was
//!   processed (`indexed_at`; a window's `revision` counts how its late updates happened
//!   to be batched).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::ensure;
use flowline_e2e::raw::{RAW_STREAMS, RawData, bad_marker, expected_error_type};
use flowline_e2e::scenario::{TEST_BUDGET, Truth, await_correct};
use flowline_e2e::verify::{document_differences, summary};
use flowline_e2e::{Pipeline, PipelineOptions};

/// Until when run A may take to be correct; B has the rest of [`TEST_BUDGET`].
const A_BUDGET: Duration = Duration::from_secs(140);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_the_archive_through_a_fresh_pipeline_gives_the_same_documents() {
    tokio::time::timeout(TEST_BUDGET + Duration::from_secs(15), run())
        .await
        .expect("the test finished in time")
        .unwrap();
}

/// The distinct good records of each raw stream, as bytes.
fn good_records(raw: &RawData) -> BTreeMap<&'static str, BTreeSet<Vec<u8>>> {
    RAW_STREAMS
        .into_iter()
        .map(|s| {
            let good = raw.streams[s]
                .iter()
                .filter(|r| bad_marker(&r.data).is_none())
                .map(|r| r.data.clone())
                .collect();
            (s, good)
        })
        .collect()
}

async fn run() -> anyhow::Result<()> {
    let started = Instant::now();

    // A: the original run, archived.
    let a = Pipeline::new(PipelineOptions::default()).await?;
    let (services_a, _) = a.run(1).await?;
    let truth_a = Truth::read(&a).await?;
    eprintln!("e2e replay: run A: {}", truth_a.describe());
    await_correct(&a, &truth_a, &services_a, started + A_BUDGET).await?;
    // A's outputs stay where they are; its services have nothing more to do.
    drop(services_a);
    eprintln!(
        "e2e replay: run A correct and archived after {:?}",
        started.elapsed()
    );

    // B: fresh names, fed by `flowctl replay` from A's archive. The replay leaves A's bad
    // records out, so B's streams hold the same data set without bad records.
    let b = Pipeline::beside(
        &a,
        PipelineOptions {
            bad_record_ratio: 0.0,
            ..a.options.clone()
        },
    )
    .await?;
    let replay_started = Instant::now();
    let (services_b, replay) = b.run_fed(1, b.replay_from(&a)).await?;
    eprintln!(
        "e2e replay: replayed A's archive in {:?}: {replay}",
        replay_started.elapsed()
    );

    let good_a = good_records(&truth_a.raw);
    let good_count: usize = good_a.values().map(BTreeSet::len).sum();
    ensure!(
        replay["outcome"] == "finished" && replay["acknowledged"] == good_count,
        "replay: want every one of A's {good_count} distinct good records acknowledged: {replay}"
    );
    let mut bad_a: BTreeMap<String, u64> = BTreeMap::new();
    for (_, _, marker) in truth_a.raw.bad() {
        *bad_a
            .entry(expected_error_type(&marker)?.to_string())
            .or_default() += 1;
    }
    let bad_replay: BTreeMap<String, u64> = serde_json::from_value(replay["bad_lines"].clone())?;
    ensure!(
        bad_replay == bad_a,
        "replay: bad lines by error type {bad_replay:?}, A's bad records were dead-lettered as \
         {bad_a:?}"
    );

    let truth_b = Truth::read(&b).await?;
    eprintln!("e2e replay: run B: {}", truth_b.describe());
    ensure!(
        truth_b.raw.bad().is_empty() && good_records(&truth_b.raw) == good_a,
        "B's raw streams should hold exactly A's good records: {} (A: {})",
        truth_b.describe(),
        truth_a.describe()
    );
    await_correct(&b, &truth_b, &services_b, started + TEST_BUDGET).await?;

    let d = document_differences(&a, &b).await?;
    ensure!(
        d.is_empty(),
        "B's OpenSearch documents differ from A's ({} differences):\n{}",
        d.len(),
        summary(&d, 40)
    );
    eprintln!(
        "e2e replay: {} orders and {} window metrics identical in both runs; done in {:?}",
        truth_a.expected.orders.len(),
        truth_a.expected.metrics.len(),
        started.elapsed()
    );
    Ok(())
}
