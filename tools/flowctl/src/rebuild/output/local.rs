//! Local files: `orders/dt=…/hour=…/part-NNNNNN.{jsonl,parquet}`, the same under
//! `order_metrics/`, and error envelopes as `errors/rebuild/<type>/dt=…/part-NNNNNN.jsonl`.
//! Each file is written under a temporary name and renamed, so a file either is complete
//! or does not exist. A run first removes the `part-*` files an earlier run left (an
//! interrupted one, or one with another `--chunk-rows`), so the directory holds exactly one
//! copy of every result.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use flowline_model::{DeadLetter, EnrichedOrder, WindowMetric};

use super::{Chunked, Written, error_partition, group, metric_partition, order_partition};
use crate::rebuild::args::FileFormat;

const DATASETS: [&str; 3] = ["orders", "order_metrics", "errors/rebuild"];
const HOUR_MS: i64 = 3_600_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dataset {
    Orders,
    Metrics,
    Errors,
}

impl Dataset {
    fn dir(self) -> &'static str {
        match self {
            Dataset::Orders => "orders",
            Dataset::Metrics => "order_metrics",
            Dataset::Errors => "errors/rebuild",
        }
    }
}

pub struct LocalOutput {
    dir: PathBuf,
    format: FileFormat,
    rows: usize,
    orders: Rows<EnrichedOrder>,
    metrics: Rows<WindowMetric>,
    errors: Rows<DeadLetter>,
    written: Written,
}

/// One dataset's current chunk. JSON Lines are serialised as records arrive (a chunk then
/// costs its bytes, not its structs); Parquet needs the records of a file together.
enum Rows<T> {
    Jsonl(JsonlChunk),
    Parquet(Chunked<T>),
}

#[derive(Default)]
struct JsonlChunk {
    seq: u32,
    rows: usize,
    parts: BTreeMap<String, Vec<u8>>,
    /// The last partition computed: records come nearly in time order.
    last: Option<(i64, String)>,
}

impl JsonlChunk {
    fn buffer(&mut self, hour: i64, part: impl FnOnce() -> String) -> &mut Vec<u8> {
        let key = match &self.last {
            Some((h, p)) if *h == hour => p.clone(),
            _ => {
                let p = part();
                self.last = Some((hour, p.clone()));
                p
            }
        };
        self.parts
            .entry(key)
            .or_insert_with(|| Vec::with_capacity(1 << 20))
    }
}

impl LocalOutput {
    pub fn open(dir: &Path, format: FileFormat, rows: usize) -> anyhow::Result<LocalOutput> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for d in DATASETS {
            remove_parts(&dir.join(d))?;
        }
        let rows = rows.max(1);
        let curated = || match format {
            FileFormat::Jsonl => 0,
            FileFormat::Parquet => 1,
        };
        Ok(LocalOutput {
            dir: dir.to_path_buf(),
            format,
            rows,
            orders: if curated() == 0 {
                Rows::Jsonl(JsonlChunk::default())
            } else {
                Rows::Parquet(Chunked::new(rows))
            },
            metrics: if curated() == 0 {
                Rows::Jsonl(JsonlChunk::default())
            } else {
                Rows::Parquet(Chunked::new(rows))
            },
            // Error envelopes are always JSON Lines.
            errors: Rows::Jsonl(JsonlChunk::default()),
            written: Written::default(),
        })
    }

    pub fn orders(&mut self, orders: Vec<EnrichedOrder>) -> anyhow::Result<()> {
        self.written.orders += orders.len() as u64;
        match &mut self.orders {
            Rows::Jsonl(_) => {
                for o in &orders {
                    let hour = o.event_time.millis().div_euclid(HOUR_MS);
                    self.push_jsonl(Dataset::Orders, hour, || order_partition(o), o)?;
                }
            }
            Rows::Parquet(c) => {
                for (seq, rows) in c.extend(orders) {
                    self.write_orders(seq, rows)?;
                }
            }
        }
        Ok(())
    }

    pub fn metrics(&mut self, metrics: Vec<WindowMetric>) -> anyhow::Result<()> {
        self.written.metrics += metrics.len() as u64;
        match &mut self.metrics {
            Rows::Jsonl(_) => {
                for m in &metrics {
                    let hour = m.window_start.millis().div_euclid(HOUR_MS);
                    self.push_jsonl(Dataset::Metrics, hour, || metric_partition(m), m)?;
                }
            }
            Rows::Parquet(c) => {
                for (seq, rows) in c.extend(metrics) {
                    self.write_metrics(seq, rows)?;
                }
            }
        }
        Ok(())
    }

    pub fn error(&mut self, letter: DeadLetter) -> anyhow::Result<()> {
        self.written.errors += 1;
        // Partitioned by type and day: no cache key of an hour; compute each time (few).
        self.push_jsonl(
            Dataset::Errors,
            i64::MIN,
            || error_partition(&letter),
            &letter,
        )
    }

    pub fn finish(&mut self) -> anyhow::Result<Written> {
        for d in [Dataset::Orders, Dataset::Metrics, Dataset::Errors] {
            self.flush_jsonl(d)?;
        }
        if let Rows::Parquet(c) = &mut self.orders
            && let Some((seq, rows)) = c.rest()
        {
            self.write_orders(seq, rows)?;
        }
        if let Rows::Parquet(c) = &mut self.metrics
            && let Some((seq, rows)) = c.rest()
        {
            self.write_metrics(seq, rows)?;
        }
        Ok(self.written.clone())
    }

    fn chunk(&mut self, d: Dataset) -> Option<&mut JsonlChunk> {
        match d {
            Dataset::Orders => match &mut self.orders {
                Rows::Jsonl(c) => Some(c),
                Rows::Parquet(_) => None,
            },
            Dataset::Metrics => match &mut self.metrics {
                Rows::Jsonl(c) => Some(c),
                Rows::Parquet(_) => None,
            },
            Dataset::Errors => match &mut self.errors {
                Rows::Jsonl(c) => Some(c),
                Rows::Parquet(_) => None,
            },
        }
    }

    fn push_jsonl<T: serde::Serialize>(
        &mut self,
        d: Dataset,
        hour: i64,
        part: impl FnOnce() -> String,
        record: &T,
    ) -> anyhow::Result<()> {
        let rows = self.rows;
        let chunk = self.chunk(d).context("a JSON Lines dataset")?;
        let buf = if hour == i64::MIN {
            chunk.parts.entry(part()).or_default()
        } else {
            chunk.buffer(hour, part)
        };
        serde_json::to_writer(&mut *buf, record)?;
        buf.push(b'\n');
        chunk.rows += 1;
        if chunk.rows >= rows {
            self.flush_jsonl(d)?;
        }
        Ok(())
    }

    /// Writes the current JSON Lines chunk of `d` (one file per partition).
    fn flush_jsonl(&mut self, d: Dataset) -> anyhow::Result<()> {
        let Some(chunk) = self.chunk(d) else {
            return Ok(());
        };
        if chunk.rows == 0 {
            return Ok(());
        }
        let seq = chunk.seq;
        chunk.seq += 1;
        chunk.rows = 0;
        let parts = std::mem::take(&mut chunk.parts);
        for (part, body) in parts {
            let path = self
                .dir
                .join(format!("{}/{part}/part-{seq:06}.jsonl", d.dir()));
            self.put(&path, &body)?;
        }
        Ok(())
    }

    fn write_orders(&mut self, seq: u32, rows: Vec<EnrichedOrder>) -> anyhow::Result<()> {
        debug_assert_eq!(self.format, FileFormat::Parquet);
        for (part, rows) in group(rows, order_partition) {
            let body = flowline_lake::encode::encode_orders(&rows)?;
            let path = self
                .dir
                .join(format!("orders/{part}/part-{seq:06}.parquet"));
            self.put(&path, &body)?;
        }
        Ok(())
    }

    fn write_metrics(&mut self, seq: u32, rows: Vec<WindowMetric>) -> anyhow::Result<()> {
        for (part, rows) in group(rows, metric_partition) {
            let body = flowline_lake::encode::encode_metrics(&rows)?;
            let path = self
                .dir
                .join(format!("order_metrics/{part}/part-{seq:06}.parquet"));
            self.put(&path, &body)?;
        }
        Ok(())
    }

    /// Writes `body` to a temporary name and renames it into place.
    fn put(&mut self, path: &Path, body: &[u8]) -> anyhow::Result<()> {
        let parent = path.parent().context("output path has a parent")?;
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("part");
        let tmp = parent.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, body).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
        self.written.files += 1;
        Ok(())
    }
}

/// Removes the files a rebuild writes (`part-*` and their temporary names) below `dir`.
fn remove_parts(dir: &Path) -> anyhow::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_dir() {
            remove_parts(&path)?;
        } else if name.starts_with("part-")
            || (name.starts_with(".part-") && name.ends_with(".tmp"))
        {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(())
}
