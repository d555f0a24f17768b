//! The correctness run while every consuming service is SIGKILLed once, at a moment drawn
//! from a seeded generator, and restarted: the final outputs are identical to the
//! recomputation, nothing is lost and nothing is duplicated (documents or Parquet rows).

use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use flowline_e2e::scenario::{TEST_BUDGET, Truth, await_correct};
use flowline_e2e::{Pipeline, PipelineOptions, Service};
use rand::{Rng as _, SeedableRng as _};

/// Seed of the kill schedule (change it to explore other moments).
const KILL_SEED: u64 = 9;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_service_restarts_without_loss_or_duplicates() {
    tokio::time::timeout(TEST_BUDGET + Duration::from_secs(15), run())
        .await
        .expect("the test finished in time")
        .unwrap();
}

async fn run() -> anyhow::Result<()> {
    let started = Instant::now();
    let p = Pipeline::new(PipelineOptions {
        seed: 77,
        ..PipelineOptions::default()
    })
    .await?;
    let (mut services, _) = p.run(1).await?;

    // One kill per consuming service, 0.5–15 s after the joiner is up: while it reads the
    // input and sales wait for the watermark, while orders are indexed and windows open and
    // update, while the archiver buffers.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(KILL_SEED);
    let mut schedule: Vec<(u64, Service)> = Service::ALL
        .into_iter()
        .map(|s| (rng.random_range(500..15_000), s))
        .collect();
    schedule.sort();
    let t0 = Instant::now();
    for (after_ms, service) in &schedule {
        tokio::time::sleep_until((t0 + Duration::from_millis(*after_ms)).into()).await;
        let copies = services.get_mut(service).context("service running")?;
        let mut victim = copies.pop().context("a copy to kill")?;
        let (health, _) = victim.get("/health").await?;
        ensure!(
            health == 200,
            "{} was not alive before the kill",
            service.name()
        );
        victim.signal(libc::SIGKILL);
        let status = victim.wait_exit(Duration::from_secs(10)).await?;
        ensure!(
            status.code().is_none(),
            "{} was not killed: {status}",
            service.name()
        );
        let restarted = Instant::now();
        copies.push(p.spawn(*service).await?);
        eprintln!(
            "e2e crash: {} killed at +{} ms, ready again after {:?}",
            service.name(),
            t0.elapsed().as_millis(),
            restarted.elapsed()
        );
    }
    let truth = Truth::read(&p).await?;
    eprintln!("e2e crash: {}", truth.describe());
    await_correct(&p, &truth, &services, started + TEST_BUDGET).await?;
    eprintln!("e2e crash: done in {:?}", started.elapsed());
    Ok(())
}
