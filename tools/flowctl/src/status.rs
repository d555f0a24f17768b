//! `flowctl status`: who owns which shard of which application, where its checkpoint is,
//! and how far behind the newest record that is; and the shards of every stream.

use anyhow::Context as _;
use aws_sdk_kinesis::types::ShardIteratorType;
use flowline_aws::{AwsClients, AwsSettings, error_chain};
use flowline_kinesis::consumer::{Checkpoint, LeaseTable};
use serde::Serialize;

use crate::bootstrap::{APPLICATIONS, STREAMS};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Prefix of stream and table names (as given to `bootstrap --prefix`).
    #[arg(long, default_value = "")]
    prefix: String,
}

#[derive(Debug, Serialize)]
struct Report {
    applications: Vec<Application>,
    streams: Vec<Stream>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Application {
    name: String,
    lease_table: String,
    /// Why the table could not be read (absent before the application first ran).
    error: Option<String>,
    leases: Vec<LeaseRow>,
}

#[derive(Debug, Serialize)]
struct LeaseRow {
    stream: String,
    shard_id: String,
    owner: Option<String>,
    checkpoint: String,
    /// Milliseconds between the checkpoint and the newest record of the shard; 0 when
    /// caught up or finished; None when it could not be measured.
    millis_behind_latest: Option<i64>,
}

#[derive(Debug, Serialize)]
struct Stream {
    name: String,
    error: Option<String>,
    shards: Vec<ShardRow>,
}

#[derive(Debug, Serialize)]
struct ShardRow {
    shard_id: String,
    state: &'static str,
    parent_shard_id: Option<String>,
    starting_hash_key: String,
    ending_hash_key: String,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let aws = AwsClients::load(&AwsSettings::default()).await?;
    let mut report = Report {
        applications: Vec::new(),
        streams: Vec::new(),
    };
    for app in APPLICATIONS {
        report
            .applications
            .push(application(&aws, &format!("{}{app}", args.prefix)).await);
    }
    for stream in STREAMS {
        report
            .streams
            .push(stream_shards(&aws, &format!("{}{stream}", args.prefix)).await);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}

pub(crate) async fn application(aws: &AwsClients, name: &str) -> Application {
    let table_name = format!("{name}-leases");
    let table = LeaseTable::new(aws.dynamodb.clone(), &table_name);
    let mut app = Application {
        name: name.to_string(),
        lease_table: table_name,
        error: None,
        leases: Vec::new(),
    };
    let leases = match table.list().await {
        Ok(l) => l,
        Err(e) => {
            app.error = Some(e.to_string());
            return app;
        }
    };
    for lease in leases {
        let behind = behind_latest(aws, &lease.stream, &lease.shard_id, &lease.checkpoint).await;
        app.leases.push(LeaseRow {
            stream: lease.stream,
            shard_id: lease.shard_id,
            owner: lease.owner,
            checkpoint: describe(&lease.checkpoint),
            millis_behind_latest: behind.ok(),
        });
    }
    app.leases
        .sort_by(|a, b| (&a.stream, &a.shard_id).cmp(&(&b.stream, &b.shard_id)));
    app
}

fn describe(c: &Checkpoint) -> String {
    match c {
        Checkpoint::Sequence {
            sequence_number,
            sub_sequence_number: 0,
        } => sequence_number.clone(),
        Checkpoint::Sequence {
            sequence_number,
            sub_sequence_number,
        } => {
            format!("{sequence_number}.{sub_sequence_number}")
        }
        other => other.as_attribute().to_string(),
    }
}

/// Reads one record after the checkpoint: Kinesis says how far that is from the tip.
async fn behind_latest(
    aws: &AwsClients,
    stream: &str,
    shard: &str,
    checkpoint: &Checkpoint,
) -> anyhow::Result<i64> {
    let request = aws
        .kinesis
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(shard);
    let request = match checkpoint {
        Checkpoint::ShardEnd | Checkpoint::Latest => return Ok(0),
        Checkpoint::Sequence {
            sequence_number, ..
        } => request
            .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
            .starting_sequence_number(sequence_number),
        Checkpoint::TrimHorizon | Checkpoint::AtTimestamp => {
            request.shard_iterator_type(ShardIteratorType::TrimHorizon)
        }
    };
    let iterator = request
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(error_chain(&e)))?
        .shard_iterator
        .context("no shard iterator")?;
    let page = aws
        .kinesis
        .get_records()
        .shard_iterator(iterator)
        .limit(1)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(error_chain(&e)))?;
    // No record after the checkpoint means caught up, whatever the tip's age.
    if page.records().is_empty() {
        return Ok(0);
    }
    Ok(page.millis_behind_latest().unwrap_or(0))
}

async fn stream_shards(aws: &AwsClients, name: &str) -> Stream {
    let mut stream = Stream {
        name: name.to_string(),
        error: None,
        shards: Vec::new(),
    };
    let mut next: Option<String> = None;
    loop {
        let request = match &next {
            Some(token) => aws.kinesis.list_shards().next_token(token),
            None => aws.kinesis.list_shards().stream_name(name),
        };
        let page = match request.send().await {
            Ok(p) => p,
            Err(e) => {
                stream.error = Some(error_chain(&e));
                return stream;
            }
        };
        for shard in page.shards() {
            let closed = shard
                .sequence_number_range()
                .and_then(|r| r.ending_sequence_number())
                .is_some();
            let range = shard.hash_key_range();
            stream.shards.push(ShardRow {
                shard_id: shard.shard_id().to_string(),
                state: if closed { "CLOSED" } else { "OPEN" },
                parent_shard_id: shard.parent_shard_id().map(str::to_string),
                starting_hash_key: range
                    .map(|r| r.starting_hash_key().to_string())
                    .unwrap_or_default(),
                ending_hash_key: range
                    .map(|r| r.ending_hash_key().to_string())
                    .unwrap_or_default(),
            });
        }
        next = page.next_token().map(str::to_string);
        if next.is_none() {
            return stream;
        }
    }
}

fn render(report: &Report) -> String {
    let mut rows = vec![[
        "APPLICATION".to_string(),
        "STREAM".into(),
        "SHARD".into(),
        "OWNER".into(),
        "CHECKPOINT".into(),
        "BEHIND".into(),
    ]];
    let mut notes = Vec::new();
    for app in &report.applications {
        if let Some(e) = &app.error {
            notes.push(format!("{}: no leases ({e})", app.name));
        }
        for l in &app.leases {
            rows.push([
                app.name.clone(),
                l.stream.clone(),
                l.shard_id.clone(),
                l.owner.clone().unwrap_or_else(|| "-".into()),
                abbreviate(&l.checkpoint),
                l.millis_behind_latest
                    .map(|ms| format!("{:.1}s", ms as f64 / 1000.0))
                    .unwrap_or_else(|| "?".into()),
            ]);
        }
    }
    let mut out = table(&rows);
    out.push('\n');
    let mut rows = vec![[
        "STREAM".to_string(),
        "SHARD".into(),
        "STATE".into(),
        "PARENT".into(),
    ]];
    for s in &report.streams {
        if let Some(e) = &s.error {
            notes.push(format!("stream {}: {e}", s.name));
        }
        for shard in &s.shards {
            rows.push([
                s.name.clone(),
                shard.shard_id.clone(),
                shard.state.to_string(),
                shard.parent_shard_id.clone().unwrap_or_else(|| "-".into()),
            ]);
        }
    }
    out.push_str(&table(&rows));
    for note in notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out
}

/// Long sequence numbers are shown by their last digits, which is where they differ.
fn abbreviate(checkpoint: &str) -> String {
    if checkpoint.len() > 16
        && checkpoint
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    {
        format!("…{}", &checkpoint[checkpoint.len() - 12..])
    } else {
        checkpoint.to_string()
    }
}

fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let widths: Vec<usize> = (0..N)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
