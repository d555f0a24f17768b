//! OpenSearch unavailable to the indexer for a while in the middle of the run (every
//! request answered 500/503 by the test kit's fault proxy; the shared server itself keeps
//! running): the indexer is not ready during the outage, retries, and afterwards catches up
//! with nothing lost and nothing duplicated.

use std::time::{Duration, Instant};

use anyhow::ensure;
use flowline_e2e::live::metric_sum;
use flowline_e2e::observed::documents;
use flowline_e2e::scenario::{TEST_BUDGET, Truth, await_correct};
use flowline_e2e::{Pipeline, PipelineOptions, Service, poll};
use flowline_testkit::fault_proxy::{FaultPolicy, FaultProxy};

const OUTAGE: Duration = Duration::from_secs(15);

fn down() -> FaultPolicy {
    FaultPolicy {
        server_error: 1.0,
        max_faults: u64::MAX,
        active_for: Duration::from_secs(3600),
        ..FaultPolicy::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_indexer_catches_up_after_an_opensearch_outage() {
    tokio::time::timeout(TEST_BUDGET + Duration::from_secs(15), run())
        .await
        .expect("the test finished in time")
        .unwrap();
}

async fn run() -> anyhow::Result<()> {
    let started = Instant::now();
    let mut p = Pipeline::new(PipelineOptions {
        seed: 515,
        ..PipelineOptions::default()
    })
    .await?;
    let proxy = FaultProxy::start(&p.opensearch_url(), FaultPolicy::default()).await?;
    // The standard variable wins over the file, so both name the proxy.
    p.set_env(Service::Indexer, "OPENSEARCH_URL", &proxy.url());
    p.set_env(Service::Indexer, "INDEXER_OPENSEARCH__URL", &proxy.url());
    let (services, _) = p.run(1).await?;
    let indexer = &services[&Service::Indexer][0];
    let orders_alias = p.names.orders_index();
    let metrics_alias = p.names.metrics_index();

    // The outage begins once the first orders are indexed (so it is mid-run: the rest of the
    // orders and every window metric are still to come) and lasts OUTAGE.
    let outage = async {
        poll::until(
            "the first orders indexed",
            Duration::from_secs(120),
            Duration::from_millis(200),
            || async {
                Ok(!documents(&p.opensearch_url(), &orders_alias)
                    .await?
                    .is_empty())
            },
        )
        .await?;
        proxy.set_policy(down());
        let began = Instant::now();
        let mut not_ready = 0;
        while began.elapsed() < OUTAGE {
            if let Ok((503, _)) = indexer.get("/ready").await {
                not_ready += 1;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        // Read straight from OpenSearch, not through the proxy.
        let indexed = documents(&p.opensearch_url(), &orders_alias).await?.len()
            + documents(&p.opensearch_url(), &metrics_alias).await?.len();
        proxy.set_policy(FaultPolicy::default());
        anyhow::Ok((not_ready, indexed))
    };
    let (not_ready, indexed_during_outage) = outage.await?;

    let truth = Truth::read(&p).await?;
    eprintln!("e2e outage: {}", truth.describe());
    ensure!(
        not_ready > 0,
        "the indexer stayed ready while OpenSearch failed every request"
    );
    // Window metrics only come once windows close, seconds after the first orders: an
    // outage that began with the first orders cannot have seen everything indexed.
    let total = truth.expected.orders.len() + truth.expected.metrics.len();
    ensure!(
        indexed_during_outage < total,
        "all {total} documents were indexed when the outage ended: it was not mid-run"
    );
    await_correct(&p, &truth, &services, started + TEST_BUDGET).await?;
    let (_, scrape) = indexer.get("/metrics").await?;
    let retries = metric_sum(&scrape, "flowline_opensearch_bulk_retries_total");
    let stats = proxy.stats();
    ensure!(
        stats.server_errors > 0 && retries > 0.0,
        "the outage hit no bulk request: {stats:?}, {retries} retries"
    );
    eprintln!(
        "e2e outage: {} requests failed, {retries} bulk retries, {indexed_during_outage} \
         documents indexed when it ended; done in {:?}",
        stats.server_errors,
        started.elapsed()
    );
    Ok(())
}
