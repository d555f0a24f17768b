//! The steps every end-to-end test shares: read back the input, recompute, and wait until
//! the outputs equal the recomputation.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use flowline_testkit::ServiceProcess;

use crate::expected::Expected;
use crate::live;
use crate::pipeline::{Pipeline, Service};
use crate::poll;
use crate::raw::{RawData, Reference, expected_error_type};
use crate::verify;

/// The input as it is on the streams, and what must come out of it.
pub struct Truth {
    pub raw: RawData,
    pub expected: Expected,
}

impl Truth {
    /// Reads back the raw streams and the reference data (after the producer finished) and
    /// recomputes. Also checks that the data set exercises what the tests rely on.
    pub async fn read(p: &Pipeline) -> anyhow::Result<Truth> {
        let raw = RawData::read(&p.aws.kinesis, &p.names).await?;
        let reference = Reference::read(&p.aws.s3, &p.names).await?;
        let expected = Expected::compute(&raw, &reference)?;
        let o = &p.options;
        ensure!(
            expected.orders.len() as u64 == o.sales,
            "{} good sales on the stream, the producer was asked for {}",
            expected.orders.len(),
            o.sales
        );
        let partial = expected
            .orders
            .values()
            .filter(|x| x.join_status == "partial")
            .count();
        let promos = expected
            .orders
            .values()
            .filter(|x| x.promo_id.is_some())
            .count();
        ensure!(
            partial > 0 && promos > 0,
            "data set too small: {partial} partial orders, {promos} with a promo"
        );
        if o.bad_record_ratio > 0.0 {
            let kinds: std::collections::BTreeSet<&str> = raw
                .bad()
                .iter()
                .map(|(_, _, m)| expected_error_type(m))
                .collect::<anyhow::Result<_>>()?;
            ensure!(
                kinds.len() == 5,
                "every kind of bad record should be injected, got {kinds:?}"
            );
        }
        Ok(Truth { raw, expected })
    }

    pub fn describe(&self) -> String {
        format!(
            "{} raw records ({} bad, {} repeated), {} orders, {} window metrics",
            self.raw.total(),
            self.raw.bad().len(),
            self.raw.repeats(),
            self.expected.orders.len(),
            self.expected.metrics.len()
        )
    }
}

/// The last `n` lines of a log.
pub fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Logs of every running service (for failure messages).
pub fn logs(services: &BTreeMap<Service, Vec<ServiceProcess>>) -> String {
    let mut s = String::new();
    for (service, copies) in services {
        for (i, svc) in copies.iter().enumerate() {
            s.push_str(&format!(
                "\n--- {} #{i} (last lines) ---\n{}\n",
                service.name(),
                tail(&svc.logs(), 30)
            ));
        }
    }
    s
}

/// How long an end-to-end test may take before its own timeout (nextest kills at 5 min).
pub const TEST_BUDGET: Duration = Duration::from_secs(270);

/// Polls until every output equals the recomputation, then until `flowctl status` shows
/// every lease owned, checkpointed and caught up, and checks the outputs once more (so a
/// late duplicate does not slip through).
pub async fn await_correct(
    p: &Pipeline,
    truth: &Truth,
    services: &BTreeMap<Service, Vec<ServiceProcess>>,
    deadline: Instant,
) -> anyhow::Result<()> {
    // What is left until the test's deadline, keeping `reserve` for the later steps, so a
    // failure is reported with its differences before the test's own timeout cuts it off.
    let left = |reserve: u64| {
        deadline
            .saturating_duration_since(Instant::now())
            .saturating_sub(Duration::from_secs(reserve))
    };
    // The last differences / status seen, for the failure message.
    let last = Mutex::new(Vec::new());
    let every = Duration::from_secs(2);
    let result = poll::until(
        "outputs equal to the recomputation",
        left(40),
        every,
        || async {
            let d = verify::differences(p, &truth.raw, &truth.expected).await?;
            let done = d.is_empty();
            *last.lock().unwrap() = d;
            Ok(done)
        },
    )
    .await;
    if let Err(e) = result {
        let last = last.into_inner().unwrap();
        bail!(
            "{e:#}\n{} differences:\n{}{}",
            last.len(),
            verify::summary(&last, 40),
            logs(services)
        );
    }
    eprintln!(
        "e2e: outputs equal the recomputation ({:?} before the deadline)",
        deadline.saturating_duration_since(Instant::now())
    );
    let problems = Mutex::new(Vec::new());
    poll::until("every lease caught up", left(10), every, || async {
        let status = live::check_status(p, &live::flowctl_status(p).await?);
        let done = status.problems.is_empty() && status.caught_up;
        *problems.lock().unwrap() = status.problems;
        Ok(done)
    })
    .await
    .with_context(|| format!("flowctl status: {:?}", problems.lock().unwrap()))?;
    let d = verify::differences(p, &truth.raw, &truth.expected).await?;
    ensure!(
        d.is_empty(),
        "outputs changed after they were right:\n{}",
        verify::summary(&d, 40)
    );
    Ok(())
}
