//! One test's pipeline: a prefixed environment bootstrapped by `flowctl`, the reference data
//! uploaded by the producer, and the five services started as real processes.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use flowline_aws::AwsClients;
use flowline_model::Timestamp;
use flowline_testkit::{ServiceProcess, Stack, free_port, unique_name};

use crate::bins::bin;
use crate::configs::{self, Names};

/// The consuming services (the producer is run separately, see [`Pipeline::run_producer`];
/// a pipeline can also be fed by `flowctl replay`, see [`Pipeline::replay_from`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    Joiner,
    Aggregator,
    Indexer,
    Archiver,
}

impl Service {
    pub const ALL: [Service; 4] = [
        Service::Joiner,
        Service::Aggregator,
        Service::Indexer,
        Service::Archiver,
    ];

    /// Binary, application and environment-prefix name.
    pub fn name(self) -> &'static str {
        match self {
            Service::Joiner => "enrichment-joiner",
            Service::Aggregator => "aggregator",
            Service::Indexer => "indexer",
            Service::Archiver => "archiver",
        }
    }

    /// The (unprefixed) streams it consumes.
    pub fn inputs(self) -> &'static [&'static str] {
        match self {
            Service::Joiner => &["customers", "addresses", "sales"],
            Service::Aggregator => &["orders-enriched"],
            Service::Indexer => &["orders-enriched", "order-metrics"],
            Service::Archiver => &configs::RAW_AND_DERIVED,
        }
    }
}

/// The data set and the environment's shape. For a pipeline fed by replay rather than by
/// the producer, the data set its raw streams end up holding.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    pub seed: u64,
    pub customers: u32,
    pub sales: u64,
    pub bad_record_ratio: f64,
    /// Shards of every stream.
    pub shards: u32,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        PipelineOptions {
            seed: 20_261_122,
            customers: 250,
            sales: 1_000,
            bad_record_ratio: 0.02,
            shards: 2,
        }
    }
}

pub struct Pipeline {
    /// Shared by the pipelines of one test (see [`Pipeline::beside`]).
    pub stack: Arc<Stack>,
    pub names: Names,
    pub aws: AwsClients,
    pub options: PipelineOptions,
    configs: BTreeMap<Service, PathBuf>,
    /// Extra environment per service (e.g. the indexer's OpenSearch through a proxy).
    extra_env: BTreeMap<Service, Vec<(String, String)>>,
    dir: tempfile::TempDir,
}

/// Runs a tool to completion, failing with its output if it does not succeed.
async fn run_tool(
    stack: &Stack,
    program: PathBuf,
    args: &[String],
    env: &[(String, String)],
) -> anyhow::Result<String> {
    let out = tokio::process::Command::new(&program)
        .args(args)
        .envs(stack.env())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), out)
        .await
        .with_context(|| format!("{} {args:?} did not finish in 120 s", program.display()))??;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        bail!(
            "{} {args:?} failed ({}):\n{text}",
            program.display(),
            out.status
        );
    }
    Ok(text)
}

impl Pipeline {
    /// Bootstraps streams, lease and state tables and the bucket under a fresh prefix.
    pub async fn new(options: PipelineOptions) -> anyhow::Result<Pipeline> {
        Self::on(Arc::new(Stack::try_start().await?), options).await
    }

    /// A second pipeline with names of its own (streams, tables, bucket, indices) on the
    /// same stack as `other`, so one can read what the other wrote.
    pub async fn beside(other: &Pipeline, options: PipelineOptions) -> anyhow::Result<Pipeline> {
        Self::on(other.stack.clone(), options).await
    }

    async fn on(stack: Arc<Stack>, options: PipelineOptions) -> anyhow::Result<Pipeline> {
        let aws = stack.aws_clients().await;
        let names = Names {
            prefix: format!("{}-", unique_name("e2e")),
        };
        let args: Vec<String> = [
            "bootstrap",
            "--prefix",
            &names.prefix,
            "--shards",
            &options.shards.to_string(),
            // Each indexer installs the templates of its own index names; the shared
            // templates of the default names are not this test's business.
            "--no-opensearch",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        run_tool(&stack, bin("flowctl")?, &args, &[]).await?;

        let dir = tempfile::Builder::new().prefix("flowline-e2e-").tempdir()?;
        let mut configs_by_service = BTreeMap::new();
        for service in Service::ALL {
            let text = match service {
                Service::Joiner => configs::joiner(&names),
                Service::Aggregator => configs::aggregator(&names),
                Service::Indexer => configs::indexer(&names),
                Service::Archiver => configs::archiver(&names),
            };
            let path = dir.path().join(format!("{}.toml", service.name()));
            std::fs::write(&path, text)?;
            configs_by_service.insert(service, path);
        }
        Ok(Pipeline {
            stack,
            names,
            aws,
            options,
            configs: configs_by_service,
            extra_env: BTreeMap::new(),
            dir,
        })
    }

    pub fn opensearch_url(&self) -> String {
        self.stack.opensearch_url()
    }

    /// Extra environment for every later start of `service` (it wins over the stack's).
    pub fn set_env(&mut self, service: Service, key: &str, value: &str) {
        self.extra_env
            .entry(service)
            .or_default()
            .push((key.to_string(), value.to_string()));
    }

    /// Starts one copy of `service` and waits until it is ready.
    pub async fn spawn(&self, service: Service) -> anyhow::Result<ServiceProcess> {
        let config = self.configs[&service].to_string_lossy().to_string();
        let env: Vec<(&str, &str)> = self
            .extra_env
            .get(&service)
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut svc = ServiceProcess::spawn(
            bin(service.name())?,
            service.name(),
            &self.stack,
            &env,
            &["--config", &config],
        )?;
        svc.wait_ready(Duration::from_secs(60))
            .await
            .with_context(|| format!("{} did not get ready", service.name()))?;
        Ok(svc)
    }

    /// `copies` copies of each of `services`, started concurrently (each waits for its own
    /// readiness, so starting them one by one only adds up the waits).
    async fn spawn_copies(
        &self,
        services: &[Service],
        copies: usize,
    ) -> anyhow::Result<BTreeMap<Service, Vec<ServiceProcess>>> {
        let starts = services
            .iter()
            .flat_map(|s| std::iter::repeat_n(*s, copies))
            .map(|s| async move { anyhow::Ok((s, self.spawn(s).await?)) });
        let mut out: BTreeMap<Service, Vec<ServiceProcess>> = BTreeMap::new();
        for (service, svc) in futures::future::try_join_all(starts).await? {
            out.entry(service).or_default().push(svc);
        }
        Ok(out)
    }

    /// The whole pipeline with `copies` copies of each consuming service: the aggregator,
    /// indexer and archiver first, then the producer's run to its end (see
    /// [`Pipeline::run_producer`]), then the joiner(s). Returns the services and the
    /// producer's last `/metrics` scrape.
    ///
    /// Why the joiner starts last: the generator publishes some entity versions up to 5 s
    /// late, and with every input shard idle the join watermark follows the wall clock
    /// (DESIGN.md section 4), so a joiner reading while the emulator is slow could emit a
    /// sale before reading a version it needs, and the expected result would depend on
    /// timing. Started on the complete input, the joiner reads every version before its
    /// shards count as idle, so the join is deterministic. The producer also uploads the
    /// reference data for its own start time (promotions are relative to it), which the
    /// joiner loads when it starts.
    pub async fn run(
        &self,
        copies: usize,
    ) -> anyhow::Result<(BTreeMap<Service, Vec<ServiceProcess>>, String)> {
        self.run_fed(copies, self.run_producer()).await
    }

    /// [`Pipeline::run`] with another input than the producer: `feed` runs to its end
    /// (e.g. [`Pipeline::replay_from`]) after the aggregator, indexer and archiver have
    /// started and before the joiner(s) start, for the same reasons. Returns the services
    /// and what `feed` returned.
    pub async fn run_fed<T>(
        &self,
        copies: usize,
        feed: impl Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<(BTreeMap<Service, Vec<ServiceProcess>>, T)> {
        let downstream = [Service::Aggregator, Service::Indexer, Service::Archiver];
        let mut out = self.spawn_copies(&downstream, copies).await?;
        let fed = feed.await?;
        out.extend(self.spawn_copies(&[Service::Joiner], copies).await?);
        Ok((out, fed))
    }

    /// Feeds this pipeline from `archive`'s raw archive instead of the producer: copies
    /// `archive`'s reference data (`reference/`, which the joiner loads at its start)
    /// into this pipeline's bucket, then runs the real `flowctl replay` from `archive`'s
    /// bucket (`raw/<its streams>/`) into this pipeline's raw streams. Returns the
    /// replay's `--json` summary.
    pub async fn replay_from(&self, archive: &Pipeline) -> anyhow::Result<serde_json::Value> {
        self.copy_reference_from(archive).await?;
        let mut args: Vec<String> = [
            "replay",
            "--bucket",
            &archive.names.bucket(),
            "--position",
            &self
                .dir
                .path()
                .join("replay.position.json")
                .to_string_lossy(),
            "--no-progress",
            "--json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for s in crate::raw::RAW_STREAMS {
            args.push("--source".into());
            args.push(format!("{s}={}", archive.names.stream(s)));
            args.push("--target".into());
            args.push(format!("{s}={}", self.names.stream(s)));
        }
        let out = run_tool(&self.stack, bin("flowctl")?, &args, &[]).await?;
        // stdout (the one-line summary) comes before stderr in `out`.
        out.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v.get("outcome").is_some())
            .with_context(|| format!("no JSON summary in the output of flowctl replay:\n{out}"))
    }

    /// Copies every object under `reference/` of `other`'s bucket into this one's.
    async fn copy_reference_from(&self, other: &Pipeline) -> anyhow::Result<()> {
        let objects = crate::observed::objects(other, "reference/").await?;
        if objects.is_empty() {
            bail!(
                "no reference data in s3://{}/reference/",
                other.names.bucket()
            );
        }
        let bucket = self.names.bucket();
        for (key, body) in objects {
            self.aws
                .s3
                .put_object()
                .bucket(&bucket)
                .key(&key)
                .body(body.into())
                .send()
                .await
                .with_context(|| format!("copying {key} to s3://{bucket}"))?;
        }
        Ok(())
    }

    fn producer_env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = [
            ("PRODUCER_REFERENCE__BUCKET", self.names.bucket()),
            // As in `configs::KINESIS`: patience with a slow emulator on a loaded machine.
            ("PRODUCER_KINESIS__REQUEST_TIMEOUT", "30s".into()),
            ("PRODUCER_KINESIS__RECORD_TTL", "5m".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for s in ["customers", "addresses", "sales"] {
            env.push((
                format!("PRODUCER_STREAMS__{}", s.to_ascii_uppercase()),
                self.names.stream(s),
            ));
        }
        env
    }

    fn producer_args(&self) -> Vec<String> {
        let o = &self.options;
        vec![
            "--seed".into(),
            o.seed.to_string(),
            "--customers".into(),
            o.customers.to_string(),
            "--sales".into(),
            o.sales.to_string(),
        ]
    }

    /// Runs the producer on the data set to its end (exit 0) and returns its last `/metrics`
    /// scrape. As fast as possible (`--rate 0`, so the events span a second or two of event
    /// time), starting at the current time, so the idle watermark (wall clock) closes the
    /// last windows soon after.
    ///
    /// Started directly rather than as a `ServiceProcess` because the test must notice the
    /// exit while still scraping the admin port.
    async fn run_producer(&self) -> anyhow::Result<String> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
        let start = Timestamp::from_millis(now).context("start time")?;
        let mut args = self.producer_args();
        args.extend([
            "--start-time".into(),
            start.to_string(),
            "--rate".into(),
            "0".into(),
            "--bad-record-ratio".into(),
            self.options.bad_record_ratio.to_string(),
        ]);
        let port = free_port();
        let log_path = self.dir.path().join("producer.log");
        let log = std::fs::File::create(&log_path)?;
        let mut child = tokio::process::Command::new(bin("producer")?)
            .args(&args)
            .envs(self.stack.env())
            .envs(self.producer_env())
            .env("PRODUCER_ADMIN__PORT", port.to_string())
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting the producer")?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let url = format!("http://127.0.0.1:{port}/metrics");
        let mut last_scrape = String::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(r) = http.get(&url).send().await
                && r.status().is_success()
            {
                last_scrape = r.text().await.unwrap_or_default();
            }
            if let Some(status) = child.try_wait()? {
                let logs = std::fs::read_to_string(&log_path).unwrap_or_default();
                if !status.success() {
                    bail!(
                        "producer exited with {status}; log (last lines):\n{}",
                        crate::scenario::tail(&logs, 40)
                    );
                }
                return Ok(last_scrape);
            }
            if tokio::time::Instant::now() > deadline {
                let logs = std::fs::read_to_string(&log_path).unwrap_or_default();
                bail!(
                    "producer still running after 120 s; log (last lines):\n{}",
                    crate::scenario::tail(&logs, 40)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
