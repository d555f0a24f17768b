//! Generates or replays customer, address and sale events and puts them on Kinesis.

use std::process::ExitCode;

use clap::Parser;
use flowline_aws::{AwsClients, AwsService};
use flowline_runtime::{Context, RuntimeArgs, Service};

mod config;

use config::Config;

/// Admin port from DESIGN.md section 5.
const SERVICE: Service = Service::new("producer", 9101);

#[derive(Parser)]
#[command(
    version,
    about = "Generates or replays customer, address and sale events and puts them on Kinesis."
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
    flowline_aws::watch_dependencies(&ctx, &aws, &[AwsService::Kinesis, AwsService::S3]);

    ctx.shutdown_token().cancelled().await;
    Ok(())
}
