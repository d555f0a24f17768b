//! `flowctl`: the operator CLI. The same code serves the local stack, LocalStack in Docker
//! and real AWS: endpoints and credentials come from the standard AWS environment.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bootstrap;
mod status;

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
