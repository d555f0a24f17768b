//! Two copies of every consuming service on two-shard streams: the copies share the shards
//! through the lease tables (both own leases at once), and the final outputs are identical
//! to the recomputation: nothing lost, nothing duplicated.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::ensure;
use flowline_e2e::live::{check_status, flowctl_status};
use flowline_e2e::scenario::{TEST_BUDGET, Truth, await_correct};
use flowline_e2e::{Pipeline, PipelineOptions, Service, poll};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_copies_of_each_service_share_the_shards_and_agree_with_one() {
    tokio::time::timeout(TEST_BUDGET + Duration::from_secs(15), run())
        .await
        .expect("the test finished in time")
        .unwrap();
}

async fn run() -> anyhow::Result<()> {
    let started = Instant::now();
    let p = Pipeline::new(PipelineOptions {
        seed: 4242,
        shards: 2,
        ..PipelineOptions::default()
    })
    .await?;
    let (services, _) = p.run(2).await?;
    eprintln!("e2e scale-out: running after {:?}", started.elapsed());

    // Both copies of each application hold leases at the same moment (lease taking and
    // balancing); polled because balancing takes a few take intervals.
    let most_owners = std::sync::Mutex::new(BTreeMap::<String, usize>::new());
    poll::until(
        "both copies of every application owning leases",
        Duration::from_secs(90),
        Duration::from_secs(2),
        || async {
            let status = check_status(&p, &flowctl_status(&p).await?);
            let mut most = most_owners.lock().unwrap();
            for (app, owners) in &status.owners {
                let n = most.entry(app.clone()).or_default();
                *n = (*n).max(owners.len());
            }
            Ok(Service::ALL
                .iter()
                .all(|s| most.get(&p.names.application(s.name())) == Some(&2)))
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e:#}; most owners at once: {most_owners:?}"))?;

    eprintln!(
        "e2e scale-out: both copies own leases after {:?}",
        started.elapsed()
    );
    let truth = Truth::read(&p).await?;
    eprintln!("e2e scale-out: {}", truth.describe());
    await_correct(&p, &truth, &services, started + TEST_BUDGET).await?;
    for (service, copies) in &services {
        ensure!(copies.len() == 2, "{}: two copies ran", service.name());
    }
    eprintln!("e2e scale-out: done in {:?}", started.elapsed());
    Ok(())
}
