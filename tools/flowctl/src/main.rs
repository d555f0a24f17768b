//! `flowctl`: the operator CLI. The same code serves the local stack, LocalStack in Docker
//! and real AWS: endpoints and credentials come from the standard AWS environment.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench_e2e;
mod bootstrap;
mod rebuild;
mod replay;
mod status;
mod summary;
mod table;
mod wait;

#[derive(Parser)]
#[command(version, about = "Flowline operator CLI")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the streams, DynamoDB tables, S3 bucket and OpenSearch index templates of
    /// DESIGN.md. Idempotent: what exists is left as it is.
    Bootstrap(bootstrap::Args),
    /// Lease owners, checkpoints and lag of every consuming application, and the shards of
    /// every stream.
    Status(status::Args),
    /// What a run left behind, at a glance: events per stream, orders and top categories
    /// in OpenSearch, objects and rows in S3, dead letters, end-to-end latency.
    Summary(summary::Args),
    /// Wait until every consumer has processed everything on its streams.
    Wait(wait::Args),
    /// End-to-end benchmark through the five services (run by scripts/bench-e2e.sh).
    #[command(hide = true)]
    BenchE2e(bench_e2e::Args),
    /// Re-publish archived raw events from S3 into streams, in event-time order,
    /// rate-limited and resumable.
    Replay(replay::Args),
    /// Re-run the join and windows in-process over the raw archive into local files or a
    /// new OpenSearch index set, then move the aliases in one request.
    Rebuild(rebuild::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("flowctl: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Bootstrap(args) => bootstrap::run(args).await,
            Command::Status(args) => status::run(args).await,
            Command::Summary(args) => summary::run(args).await,
            Command::Wait(args) => wait::run(args).await,
            Command::BenchE2e(args) => bench_e2e::run(args).await,
            Command::Replay(args) => replay::run(args).await,
            Command::Rebuild(args) => rebuild::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flowctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}
