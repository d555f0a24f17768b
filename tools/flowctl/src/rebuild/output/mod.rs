//! Where results go: local files, or OpenSearch plus S3. Both cut the stream of results
//! into chunks of `--chunk-rows` records; a chunk's sequence number names its files or
//! objects (one per partition), and since the chunks are a function of the input alone,
//! a rerun writes the same names with the same contents.

mod local;
mod order_json;
mod remote;

use std::collections::BTreeMap;

use flowline_lake::Dataset;
use flowline_model::{DeadLetter, EnrichedOrder, Timestamp, WindowMetric};

use super::args::{Args, Mode};

pub use remote::{ensure_rebuild_templates, template_name};

/// What was written.
#[derive(Clone, Debug, Default)]
pub struct Written {
    pub orders: u64,
    pub metrics: u64,
    pub errors: u64,
    /// Files or objects written.
    pub files: u64,
    /// OpenSearch only: distinct order ids sent, documents settled, documents rejected.
    pub distinct_orders: u64,
    pub indexed: u64,
    pub rejected: u64,
}

pub enum Output {
    Local(local::LocalOutput),
    Remote(remote::RemoteOutput),
}

impl Output {
    pub async fn open(
        mode: &Mode,
        s3: Option<aws_sdk_s3::Client>,
        args: &Args,
    ) -> anyhow::Result<Output> {
        Ok(match mode {
            Mode::Local { dir, format } => {
                Output::Local(local::LocalOutput::open(dir, *format, args.chunk_rows)?)
            }
            Mode::OpenSearch { version, .. } => {
                Output::Remote(remote::RemoteOutput::open(*version, s3, args).await?)
            }
        })
    }

    pub async fn orders(&mut self, orders: Vec<EnrichedOrder>) -> anyhow::Result<()> {
        match self {
            Output::Local(o) => o.orders(orders),
            Output::Remote(o) => o.orders(orders).await,
        }
    }

    pub async fn metrics(&mut self, metrics: Vec<WindowMetric>) -> anyhow::Result<()> {
        match self {
            Output::Local(o) => o.metrics(metrics),
            Output::Remote(o) => o.metrics(metrics).await,
        }
    }

    pub async fn error(&mut self, letter: DeadLetter) -> anyhow::Result<()> {
        match self {
            Output::Local(o) => o.error(letter),
            Output::Remote(o) => o.error(letter).await,
        }
    }

    /// Writes what is buffered and waits for every write to settle.
    pub async fn finish(&mut self) -> anyhow::Result<Written> {
        match self {
            Output::Local(o) => o.finish(),
            Output::Remote(o) => o.finish().await,
        }
    }
}

/// A buffer cut into numbered chunks.
pub struct Chunked<T> {
    buf: Vec<T>,
    next_seq: u32,
    rows: usize,
}

impl<T> Chunked<T> {
    pub fn new(rows: usize) -> Self {
        Chunked {
            buf: Vec::new(),
            next_seq: 0,
            rows: rows.max(1),
        }
    }

    /// Adds rows; returns every chunk that filled up.
    pub fn extend(&mut self, rows: impl IntoIterator<Item = T>) -> Vec<(u32, Vec<T>)> {
        let mut full = Vec::new();
        for r in rows {
            self.buf.push(r);
            if self.buf.len() >= self.rows {
                full.push(self.take());
            }
        }
        full
    }

    /// The partly filled last chunk, if any.
    pub fn rest(&mut self) -> Option<(u32, Vec<T>)> {
        (!self.buf.is_empty()).then(|| self.take())
    }

    fn take(&mut self) -> (u32, Vec<T>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        (seq, std::mem::take(&mut self.buf))
    }
}

/// Rows grouped by partition path (`dt=…/hour=…`, or `<type>/dt=…` for errors).
pub fn group<T>(rows: Vec<T>, key: impl Fn(&T) -> String) -> BTreeMap<String, Vec<T>> {
    let mut out: BTreeMap<String, Vec<T>> = BTreeMap::new();
    for r in rows {
        out.entry(key(&r)).or_default().push(r);
    }
    out
}

pub fn order_partition(o: &EnrichedOrder) -> String {
    hour_partition(o.event_time)
}

pub fn metric_partition(m: &WindowMetric) -> String {
    hour_partition(m.window_start)
}

fn hour_partition(t: Timestamp) -> String {
    Dataset::CuratedOrders.partition(t).to_string()
}

/// `<error-type>/dt=YYYY-MM-DD`, the part below `errors/rebuild/`.
pub fn error_partition(d: &DeadLetter) -> String {
    let dataset = Dataset::errors(super::STAGE, &d.error_type);
    let Dataset::Errors { error_type, .. } = &dataset else {
        unreachable!("Dataset::errors builds an Errors dataset")
    };
    format!("{error_type}/{}", dataset.partition(d.received_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_numbered_by_content_alone() {
        let mut c = Chunked::new(3);
        let full = c.extend(0..7);
        assert_eq!(full, vec![(0, vec![0, 1, 2]), (1, vec![3, 4, 5])]);
        assert_eq!(c.rest(), Some((2, vec![6])));
        assert_eq!(c.rest(), None);
    }
}
