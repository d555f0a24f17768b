//! indexer: reads `orders-enriched` and `order-metrics` (KCL-style leases, any number of
//! copies), bulk-indexes them into daily OpenSearch indices under deterministic ids, and
//! checkpoints a shard only after every document before the checkpoint is indexed or
//! dead-lettered.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use flowline_aws::{AwsClients, AwsService};
use flowline_runtime::{Context, RuntimeArgs, Service};
use indexer::config::{self, Config};
use indexer::run;

/// Admin port from DESIGN.md section 5.
const SERVICE: Service = Service::new(config::SERVICE_NAME, 9104);

#[derive(Parser)]
#[command(
    version,
    about = "Bulk-indexes enriched orders and window metrics into OpenSearch."
)]
struct Cli {
    #[command(flatten)]
    runtime: RuntimeArgs,
}

fn main() -> ExitCode {
    SERVICE.run(Cli::parse().runtime, run)
}

async fn run(ctx: Context<Config>) -> anyhow::Result<()> {
    // First thing: with no component registered the runtime reports ready. The consumer
    // takes this component over once it runs.
    let leases = ctx.readiness().register("leases");
    leases.not_ready("registering index templates");
    let config = ctx.config.clone();
    let aws = AwsClients::load(&config.aws).await?;
    flowline_aws::watch_dependencies(&ctx, &aws, &[AwsService::Kinesis, AwsService::DynamoDb]);
    let opensearch = flowline_opensearch::build_client(&config.opensearch)?;
    flowline_opensearch::watch(&ctx, &opensearch, &config.opensearch.url);

    let Some(()) = run::register_templates(&ctx, &opensearch).await? else {
        return Ok(()); // shut down while waiting for OpenSearch
    };
    let outputs = run::Outputs::start(&ctx, &aws, opensearch).await?;
    let shared = Arc::new(outputs.processor_shared(&ctx)?);
    run::consume(&ctx, &aws, shared).await?;
    outputs.close(&ctx).await
}
