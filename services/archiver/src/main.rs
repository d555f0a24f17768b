//! Firehose-style buffered delivery of every stream to S3 as Parquet and JSON Lines.

use std::process::ExitCode;

use clap::Parser;
use flowline_aws::{AwsClients, AwsService};
use flowline_runtime::{Context, RuntimeArgs, Service};

mod config;

use config::Config;

/// Admin port from DESIGN.md section 5.
const SERVICE: Service = Service::new("archiver", 9105);

#[derive(Parser)]
#[command(
    version,
    about = "Firehose-style buffered delivery of every stream to S3 as Parquet and JSON Lines."
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
    flowline_aws::watch_dependencies(
        &ctx,
        &aws,
        &[AwsService::Kinesis, AwsService::DynamoDb, AwsService::S3],
    );

    ctx.shutdown_token().cancelled().await;
    Ok(())
}
