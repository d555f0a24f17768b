//! Reading the raw archive: listing `raw/<stream>/dt=…/hour=…/<object>.jsonl.gz` by
//! hour, and downloading and parsing the objects of one hour.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context as _;
use flowline_lake::encode::decode_jsonl_gz;
use flowline_lake::layout::safe_segment;
use flowline_model::ParseConfig;
use futures::{StreamExt as _, TryStreamExt as _};

use super::hour::{Hour, HourRange};
use super::options::Source;
use super::order::{GoodRecord, classify};

/// Error type of an object that cannot be read as gzip JSON Lines at all.
pub const UNREADABLE_OBJECT: &str = "unreadable_object";

/// One archive object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveObject {
    /// Index of its source in the plan.
    pub source: usize,
    pub key: String,
    pub size: u64,
}

/// A line (or object) that cannot be replayed, for `errors/replay/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadLine {
    pub source: usize,
    pub object: Arc<str>,
    /// 1-based; 0 when the whole object is unreadable.
    pub line_no: usize,
    pub error_type: &'static str,
    pub reason: String,
    pub bytes: Vec<u8>,
}

/// Everything read from one hour.
#[derive(Debug, Default)]
pub struct HourContent {
    pub good: Vec<GoodRecord>,
    pub bad: Vec<BadLine>,
}

/// The `raw/` prefix of an archived stream, as the archiver names it.
fn stream_prefix(stream: &str) -> String {
    format!("raw/{}/", safe_segment(stream))
}

/// The hour of `key` when it is an archive object under `prefix`.
fn hour_of(prefix: &str, key: &str) -> Option<Hour> {
    let rest = key.strip_prefix(prefix)?;
    let mut parts = rest.split('/');
    let (dt, hour, name) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !name.ends_with(".jsonl.gz") {
        return None;
    }
    Hour::from_segments(dt, hour)
}

/// Every archive object of the plan's sources inside `range`, grouped by hour.
/// Listing starts at the first day of the range and stops after its last.
pub async fn list(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    sources: &[Source],
    range: &HourRange,
) -> anyhow::Result<BTreeMap<Hour, Vec<ArchiveObject>>> {
    let mut hours: BTreeMap<Hour, Vec<ArchiveObject>> = BTreeMap::new();
    for (index, source) in sources.iter().enumerate() {
        let prefix = stream_prefix(&source.stream);
        // `dt=D` sorts before every key of day D, so this skips earlier days only.
        let start_after = range
            .from
            .as_ref()
            .map(|f| format!("{prefix}dt={}", f.date));
        let mut token = None;
        'pages: loop {
            let page = s3
                .list_objects_v2()
                .bucket(bucket)
                .prefix(&prefix)
                .set_start_after(start_after.clone())
                .set_continuation_token(token)
                .send()
                .await
                .with_context(|| format!("listing s3://{bucket}/{prefix}"))?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                let Some(hour) = hour_of(&prefix, key) else {
                    tracing::warn!(key, "not an archive object; ignored");
                    continue;
                };
                if range.to.as_ref().is_some_and(|to| hour.date > to.date) {
                    break 'pages;
                }
                if range.contains(&hour) {
                    hours.entry(hour).or_default().push(ArchiveObject {
                        source: index,
                        key: key.to_string(),
                        size: object.size().unwrap_or(0).max(0) as u64,
                    });
                }
            }
            token = page.next_continuation_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
    }
    Ok(hours)
}

async fn fetch(
    s3: aws_sdk_s3::Client,
    bucket: String,
    object: ArchiveObject,
) -> anyhow::Result<(ArchiveObject, Vec<u8>)> {
    let what = || format!("reading s3://{bucket}/{}", object.key);
    let body = s3
        .get_object()
        .bucket(&bucket)
        .key(&object.key)
        .send()
        .await
        .with_context(what)?
        .body
        .collect()
        .await
        .with_context(what)?;
    Ok((object, body.into_bytes().to_vec()))
}

/// Downloads the objects of `hour` (`downloads` at once) and sorts their lines into
/// good records and bad lines. Only S3 failures are errors: a broken object or line
/// is a bad line.
pub async fn read_hour(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    sources: &[Source],
    hour: &Hour,
    objects: &[ArchiveObject],
    downloads: usize,
) -> anyhow::Result<HourContent> {
    // Owned futures: borrowing the client in a buffered stream inside a spawned task
    // trips the compiler's higher-ranked lifetime inference.
    let bodies: Vec<(ArchiveObject, Vec<u8>)> = futures::stream::iter(objects.iter().cloned())
        .map(|o| fetch(s3.clone(), bucket.to_string(), o))
        .buffered(downloads)
        .try_collect()
        .await?;
    let parser = ParseConfig::default();
    let mut content = HourContent::default();
    for (object, body) in bodies {
        let source = &sources[object.source];
        let name: Arc<str> = object.key.as_str().into();
        let lines = match decode_jsonl_gz(&body) {
            Ok(lines) => lines,
            Err(e) => {
                content.bad.push(BadLine {
                    source: object.source,
                    object: name,
                    line_no: 0,
                    error_type: UNREADABLE_OBJECT,
                    reason: format!("not gzip JSON Lines: {e}"),
                    bytes: body,
                });
                continue;
            }
        };
        for (i, line) in lines.into_iter().enumerate() {
            match classify(
                &parser,
                source.kind,
                &source.stream,
                hour,
                object.source,
                &line,
            ) {
                Ok(good) => content.good.push(good),
                Err(r) => content.bad.push(BadLine {
                    source: object.source,
                    object: name.clone(),
                    line_no: i + 1,
                    error_type: r.error_type,
                    reason: r.reason,
                    bytes: line,
                }),
            }
        }
    }
    Ok(content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_archive_objects_have_an_hour() {
        let p = stream_prefix("sales");
        assert_eq!(p, "raw/sales/");
        let h = hour_of(
            &p,
            "raw/sales/dt=2026-01-01/hour=03/sales_shardId-000000000000_1_9.jsonl.gz",
        );
        assert_eq!(h.unwrap().to_string(), "dt=2026-01-01/hour=03");
        assert!(hour_of(&p, "raw/sales/dt=2026-01-01/hour=03/x.parquet").is_none());
        assert!(hour_of(&p, "raw/sales/dt=2026-01-01/x.jsonl.gz").is_none());
        assert!(hour_of(&p, "raw/sales/dt=2026-01-01/hour=03/a/b.jsonl.gz").is_none());
        assert!(hour_of(&p, "raw/salesx/dt=2026-01-01/hour=03/b.jsonl.gz").is_none());
    }
}
