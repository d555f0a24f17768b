//! The whole pipeline on a fixed-seed data set with ~2% bad records: every order and window
//! metric in OpenSearch and S3 equals an independent recomputation from the raw streams,
//! every bad record is dead-lettered and archived under `errors/` with its reason, and the
//! raw archive equals the streams. While the pipeline runs, its live `/metrics` carry every
//! metric the alert rules and dashboards reference, and `flowctl status` shows every shard's
//! lease with its owner and checkpoint (issue #10).

use std::time::{Duration, Instant};

use anyhow::ensure;
use flowline_e2e::live;
use flowline_e2e::scenario::{TEST_BUDGET, Truth, await_correct};
use flowline_e2e::{Pipeline, PipelineOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_equal_an_independent_recomputation_and_bad_records_are_dead_lettered() {
    tokio::time::timeout(TEST_BUDGET + Duration::from_secs(15), run())
        .await
        .expect("the test finished in time")
        .unwrap();
}

async fn run() -> anyhow::Result<()> {
    let started = Instant::now();
    let p = Pipeline::new(PipelineOptions::default()).await?;
    let (services, producer_scrape) = p.run(1).await?;
    let truth = Truth::read(&p).await?;
    eprintln!("e2e correctness: {}", truth.describe());
    await_correct(&p, &truth, &services, started + TEST_BUDGET).await?;
    eprintln!(
        "e2e correctness: outputs equal the recomputation after {:?}",
        started.elapsed()
    );

    // Issue #10: live scrapes against the names the deploy assets reference.
    let referenced = std::fs::read_to_string(live::referenced_metrics_path())?;
    let expected = live::exported_by_service(&referenced)?;
    let mut missing = live::missing_metrics(&expected, "producer", &producer_scrape);
    for (service, copies) in &services {
        let (status, scrape) = copies[0].get("/metrics").await?;
        ensure!(
            status == 200,
            "{}: /metrics answered {status}",
            service.name()
        );
        missing.extend(live::missing_metrics(&expected, service.name(), &scrape));
    }
    ensure!(
        missing.is_empty(),
        "referenced metrics absent from the live scrape of a healthy run (a labelled family \
         has no series until its first increment, so alert rules and dashboards see no data \
         instead of 0; pre-initialise its known label sets):\n{}",
        missing.join("\n")
    );

    // `flowctl status --json` on the running pipeline: checked inside `await_correct` (every
    // shard of every input stream owned, checkpointed, caught up); here the owners must be
    // the one copy of each application that runs.
    let status = live::check_status(&p, &live::flowctl_status(&p).await?);
    ensure!(status.problems.is_empty(), "{:?}", status.problems);
    for service in flowline_e2e::Service::ALL {
        let app = p.names.application(service.name());
        let owners = status.owners.get(&app).map_or(0, |o| o.len());
        ensure!(owners == 1, "{app}: {owners} lease owners, one copy runs");
    }
    eprintln!("e2e correctness: done in {:?}", started.elapsed());
    Ok(())
}
