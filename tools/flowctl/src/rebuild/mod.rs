//! `flowctl rebuild`: an in-process backfill. Reads the raw archive (S3 or a local
//! directory with the same layout), merges `customers`, `addresses` and `sales` in event-time
//! order, and runs them through the very join and window code the services run
//! (`flowline_join::JoinCore` over in-memory state, `flowline_window::WindowOperator`).
//! Results go to local files, or to a new versioned OpenSearch index set plus a curated S3
//! prefix, after which the `orders` and `order-metrics` aliases move over in one request.
//!
//! Restarting after an interruption starts again from the beginning: every output name is a
//! function of the input alone (document `_id`s, object and file names from the chunk
//! sequence, which depends only on the records), and every write replaces what is there
//! (OpenSearch index by `_id`, S3 PutObject, file rename), so a rerun loses nothing and
//! duplicates nothing. The aliases move only after a run that finished and whose counts
//! check out.

mod alias;
mod archive;
mod args;
mod engine;
mod merge;
mod output;
mod reference;
mod state;
mod summary;

use std::io::IsTerminal as _;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub use args::Args;
use args::{Location, Mode};

/// The allocator of the whole `flowctl` binary (a global allocator is per binary; it is
/// declared here because the rebuild is what needs it): a rebuild allocates and frees a
/// few small strings per record, and glibc malloc/free was about a sixth of its profile.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The stage name on the error envelopes the rebuild writes.
pub const STAGE: &str = "rebuild";

pub async fn run(args: Args) -> anyhow::Result<()> {
    if let Some(version) = args.delete_old {
        return alias::delete_old(&args.opensearch_settings(), &args.index_prefix, version).await;
    }
    let mode = args.mode()?;
    let started = std::time::Instant::now();
    let input = args
        .input
        .as_ref()
        .context("--input is required (a directory or s3://bucket[/prefix])")?;
    let aws = match (input, &mode) {
        (Location::S3 { .. }, _) | (_, Mode::OpenSearch { .. }) => Some(
            flowline_aws::AwsClients::load(&flowline_aws::AwsSettings::default())
                .await
                .context("AWS clients")?,
        ),
        _ => None,
    };
    let s3 = aws.as_ref().map(|a| a.s3.clone());
    let reference_at = args.reference.as_ref().unwrap_or(input);
    let reference = reference::load(reference_at, args.reference_format, s3.as_ref()).await?;
    let listing = archive::list(input, s3.as_ref()).await?;
    eprintln!(
        "rebuild: {} objects ({} bytes) in {} hour partitions; {} items, {} promos",
        listing.objects(),
        listing.bytes(),
        listing.hours.len(),
        reference.item_count(),
        reference.promo_count()
    );

    let progress = progress_bar(listing.bytes());
    let mut out = output::Output::open(&mode, s3.clone(), &args).await?;
    let mut engine = engine::Engine::new(&args, reference)?;
    let loader = archive::Loader::new(input.clone(), s3.clone());
    let result = if args.threads >= 2 {
        merge::run_threaded(listing, loader, &mut engine, &mut out, &progress).await
    } else {
        merge::run_inline(listing, loader, &mut engine, &mut out, &progress).await
    };
    result?;
    engine.finish(&mut out).await?;
    let written = out.finish().await?;
    progress.finish_and_clear();

    let summary = summary::Summary::new(engine.counts(), written, started.elapsed());
    summary.print();
    if let Mode::OpenSearch { version, swap } = mode {
        alias::check_and_swap(&args, version, &summary, swap).await?;
    }
    Ok(())
}

/// A byte-based progress bar on stderr, hidden when stderr is not a terminal.
fn progress_bar(total: u64) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(total), target);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({eta}) {msg}",
    ) {
        bar.set_style(style);
    }
    bar
}
