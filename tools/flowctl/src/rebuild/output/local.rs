//! Local files: `orders/dt=…/hour=…/part-NNNNNN.{jsonl,parquet}`, the same under
//! `order_metrics/`, and error envelopes as `errors/rebuild/<type>/dt=…/part-NNNNNN.jsonl`.
//! Each file is written under a temporary name and renamed, so a file either is complete
//! or does not exist. A run first removes the `part-*` files an earlier run left (an
//! interrupted one, or one with another `--chunk-rows`), so the directory holds exactly one
//! copy of every result.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use flowline_model::{DeadLetter, EnrichedOrder, WindowMetric};

use super::order_json::write_order;
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

/// One dataset's current chunk. JSON Lines are serialised as records arrive, into a buffer
/// per partition that is appended to the chunk's temporary file whenever it fills (a chunk
/// then costs a bounded buffer per partition, neither its structs nor all its bytes; files
/// are open only while written, however many partitions a chunk spans); Parquet needs the
/// records of a file together.
enum Rows<T> {
    Jsonl(JsonlChunk),
    Parquet(Chunked<T>),
}

#[derive(Default)]
struct JsonlChunk {
    seq: u32,
    rows: usize,
    /// Partition path → its file of this chunk.
    parts: HashMap<String, usize>,
    files: Vec<PartFile>,
    /// The last partition computed (hour, index into `files`): records come nearly in
    /// time order.
    last: Option<(i64, usize)>,
    /// Buffers of closed files, reused: a fresh one per file would grow anew each chunk,
    /// page faults and copies included.
    spare: Vec<Vec<u8>>,
    /// One record's serialisation, reused.
    line: Vec<u8>,
}

/// A chunk's file of one partition: written under its temporary name, renamed when done.
struct PartFile {
    tmp: PathBuf,
    path: PathBuf,
    buf: Vec<u8>,
    /// Whether `tmp` was created (by the first spill) in this run.
    created: bool,
}

/// Bytes a partition's buffer holds before they are appended to its file.
const SPILL: usize = 256 * 1024;

impl JsonlChunk {
    /// The index in `files` of the partition `part()` (computed only when `hour` is not the
    /// last one).
    fn file(
        &mut self,
        root: &Path,
        d: Dataset,
        hour: i64,
        part: impl FnOnce() -> String,
    ) -> anyhow::Result<usize> {
        let i = match self.last {
            Some((h, i)) if h == hour && hour != i64::MIN => i,
            _ => {
                let p = part();
                let i = match self.parts.get(&p) {
                    Some(&i) => i,
                    None => {
                        let path = root.join(format!("{}/{p}/part-{:06}.jsonl", d.dir(), self.seq));
                        let buf = self.spare.pop().unwrap_or_default();
                        self.files.push(PartFile::new(path, buf)?);
                        self.parts.insert(p, self.files.len() - 1);
                        self.files.len() - 1
                    }
                };
                self.last = Some((hour, i));
                i
            }
        };
        Ok(i)
    }
}

impl PartFile {
    fn new(path: PathBuf, buf: Vec<u8>) -> anyhow::Result<PartFile> {
        let parent = path.parent().context("output path has a parent")?;
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("part");
        let tmp = parent.join(format!(".{name}.tmp"));
        Ok(PartFile {
            tmp,
            path,
            buf,
            created: false,
        })
    }

    /// Appends the buffer to the temporary file (created, or emptied, on the first call).
    fn spill(&mut self) -> anyhow::Result<()> {
        if !self.created {
            let parent = self.tmp.parent().context("output path has a parent")?;
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(self.created)
            .truncate(!self.created)
            .open(&self.tmp)
            .with_context(|| format!("writing {}", self.tmp.display()))?;
        file.write_all(&self.buf)
            .with_context(|| format!("writing {}", self.tmp.display()))?;
        self.created = true;
        self.buf.clear();
        Ok(())
    }

    /// Writes what is buffered and renames the file into place; returns the buffer.
    fn finish(mut self) -> anyhow::Result<Vec<u8>> {
        self.spill()?;
        std::fs::rename(&self.tmp, &self.path)
            .with_context(|| format!("renaming to {}", self.path.display()))?;
        Ok(self.buf)
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
                    self.push_jsonl(
                        Dataset::Orders,
                        hour,
                        || order_partition(o),
                        |b| {
                            write_order(b, o);
                            Ok(())
                        },
                    )?;
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
                    self.push_jsonl(
                        Dataset::Metrics,
                        hour,
                        || metric_partition(m),
                        |b| serde_json::to_writer(b, m),
                    )?;
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
            |b| serde_json::to_writer(b, &letter),
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
            Dataset::Orders => jsonl(&mut self.orders),
            Dataset::Metrics => jsonl(&mut self.metrics),
            Dataset::Errors => jsonl(&mut self.errors),
        }
    }

    /// Appends one record, serialised by `write`, to the file of its partition.
    fn push_jsonl(
        &mut self,
        d: Dataset,
        hour: i64,
        part: impl FnOnce() -> String,
        write: impl FnOnce(&mut Vec<u8>) -> serde_json::Result<()>,
    ) -> anyhow::Result<()> {
        let rows = self.rows;
        let chunk = match d {
            Dataset::Orders => jsonl(&mut self.orders),
            Dataset::Metrics => jsonl(&mut self.metrics),
            Dataset::Errors => jsonl(&mut self.errors),
        }
        .context("a JSON Lines dataset")?;
        // Serialised into a small buffer that stays in cache, then copied once.
        let mut line = std::mem::take(&mut chunk.line);
        line.clear();
        write(&mut line)?;
        line.push(b'\n');
        let i = chunk.file(&self.dir, d, hour, part)?;
        let file = &mut chunk.files[i];
        file.buf.extend_from_slice(&line);
        chunk.line = line;
        if file.buf.len() >= SPILL {
            file.spill()?;
        }
        chunk.rows += 1;
        if chunk.rows >= rows {
            self.flush_jsonl(d)?;
        }
        Ok(())
    }

    /// Closes the current JSON Lines chunk of `d` (one file per partition).
    fn flush_jsonl(&mut self, d: Dataset) -> anyhow::Result<()> {
        let Some(chunk) = self.chunk(d) else {
            return Ok(());
        };
        if chunk.rows == 0 {
            return Ok(());
        }
        chunk.seq += 1;
        chunk.rows = 0;
        chunk.parts.clear();
        chunk.last = None;
        let files = std::mem::take(&mut chunk.files);
        let n = files.len() as u64;
        for f in files {
            let buf = f.finish()?;
            chunk.spare.push(buf);
        }
        self.written.files += n;
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

fn jsonl<T>(rows: &mut Rows<T>) -> Option<&mut JsonlChunk> {
    match rows {
        Rows::Jsonl(c) => Some(c),
        Rows::Parquet(_) => None,
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
