//! producer: generates a deterministic synthetic data set (or replays a file) and puts the
//! events on the `customers`, `addresses` and `sales` streams; uploads the reference data
//! (items, promos) to S3 first.

use std::process::ExitCode;

use clap::Parser;
use flowline_aws::{AwsClients, AwsService};
use flowline_runtime::{Context, RuntimeArgs, Service};

mod args;
mod config;
mod metrics;
mod progress;
mod publish;
mod reference;
mod run;

use args::{Command, GenArgs};
use config::Config;

/// Admin port from DESIGN.md section 5.
const SERVICE: Service = Service::new("producer", 9101);

#[derive(Parser)]
#[command(
    version,
    about = "Generates or replays customer, address and sale events and puts them on Kinesis.",
    after_help = "Example: producer --seed 7 --customers 2000 --sales 20000 --rate 0 --start-time 2026-01-01T00:00:00Z --bad-record-ratio 0.01"
)]
struct Cli {
    #[command(flatten)]
    runtime: RuntimeArgs,
    #[command(flatten)]
    gen_args: GenArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    SERVICE.run(cli.runtime, move |ctx: Context<Config>| async move {
        let aws = AwsClients::load(&ctx.config.aws).await?;
        flowline_aws::watch_dependencies(&ctx, &aws, &[AwsService::Kinesis, AwsService::S3]);
        match cli.command {
            Some(Command::Reference) => run::reference_only(&ctx, &aws, &cli.gen_args).await,
            None => run::produce(&ctx, &aws, &cli.gen_args).await,
        }
    })
}
