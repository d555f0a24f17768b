//! Bulk-indexes enriched orders and window metrics into OpenSearch.

use std::process::ExitCode;

use clap::Parser;
use flowline_aws::{AwsClients, AwsService};
use flowline_runtime::{Context, RuntimeArgs, Service};

mod config;

use config::Config;

/// Admin port from DESIGN.md section 5.
const SERVICE: Service = Service::new("indexer", 9104);

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
    let aws = AwsClients::load(&ctx.config.aws).await?;
    flowline_aws::watch_dependencies(&ctx, &aws, &[AwsService::Kinesis, AwsService::DynamoDb]);
    let opensearch = flowline_opensearch::build_client(&ctx.config.opensearch)?;
    flowline_opensearch::watch(&ctx, &opensearch, &ctx.config.opensearch.url);
    ctx.shutdown_token().cancelled().await;
    Ok(())
}
