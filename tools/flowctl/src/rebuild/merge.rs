//! Reads the archive an hour partition at a time and merges every object of the hour by
//! event time (`updated_at` of versions, `event_time` of sales): a k-way merge over the
//! objects, each of which is in arrival order, so the merged order is event time up to the
//! out-of-orderness the archive already had, exactly what the services' watermarks allow
//! for. Lines that do not parse become error envelopes with their reason.
//!
//! With `--threads 2` the reading, gunzipping, parsing and merging run on a Tokio worker
//! and hand batches over a bounded channel; otherwise they run inline on the caller's
//! thread, between the engine's batches.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::BufRead;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Context as _;

use flowline_model::{
    Address, Customer, DeadLetter, Event, ParseConfig, RecordSource, Sale, Timestamp,
};
use indicatif::ProgressBar;

use super::STAGE;
use super::archive::{Listing, Loader, Object, STREAMS};
use super::engine::Engine;
use super::output::Output;

/// Items per batch handed to the engine.
const BATCH: usize = 4096;
/// Batches in flight between the reader task and the engine (bounds memory).
const CHANNEL: usize = 4;

pub enum Item {
    Customer(Customer),
    Address(Address),
    Sale(Sale, RecordSource),
    Bad(Box<DeadLetter>),
}

pub struct Batch {
    pub items: Vec<Item>,
    /// Per stream: whether any record of it may still come. A stream with none left stops
    /// holding the watermark back, as an idle, caught-up shard does in the services.
    pub active: [bool; 3],
}

struct Cursor {
    stream: usize,
    reader: Option<Box<dyn BufRead + Send>>,
    buf: Vec<u8>,
    line: u64,
    key: Arc<str>,
    shard: Arc<str>,
    head: Option<Item>,
}

/// Every object of one hour partition, merged.
struct HourMerge {
    cursors: Vec<Cursor>,
    heap: BinaryHeap<Reverse<(i64, usize, usize)>>,
    live: [usize; 3],
    later: [bool; 3],
    received_at: Timestamp,
    parse: ParseConfig,
    bad: Vec<Item>,
}

impl HourMerge {
    fn new(
        objects: Vec<(Object, Box<dyn BufRead + Send>)>,
        later: [bool; 3],
        received_at: Timestamp,
    ) -> anyhow::Result<HourMerge> {
        let mut m = HourMerge {
            cursors: Vec::with_capacity(objects.len()),
            heap: BinaryHeap::with_capacity(objects.len()),
            live: [0; 3],
            later,
            received_at,
            parse: ParseConfig::default(),
            bad: Vec::new(),
        };
        for (o, reader) in objects {
            let i = m.cursors.len();
            m.cursors.push(Cursor {
                stream: o.stream,
                reader: Some(reader),
                buf: Vec::with_capacity(512),
                line: 0,
                key: o.key.as_str().into(),
                shard: o.shard().into(),
                head: None,
            });
            m.live[o.stream] += 1;
            m.advance(i)?;
        }
        Ok(m)
    }

    /// Reads cursor `i`'s next good record into its head (bad lines go to `self.bad`).
    fn advance(&mut self, i: usize) -> anyhow::Result<()> {
        let HourMerge {
            cursors,
            heap,
            live,
            received_at,
            parse,
            bad,
            ..
        } = self;
        let c = &mut cursors[i];
        loop {
            let Some(reader) = c.reader.as_mut() else {
                return Ok(());
            };
            c.buf.clear();
            let n = reader
                .read_until(b'\n', &mut c.buf)
                .with_context(|| format!("reading {}", c.key))?;
            if n == 0 {
                c.head = None;
                c.reader = None;
                live[c.stream] -= 1;
                return Ok(());
            }
            c.line += 1;
            let mut line = &c.buf[..];
            if let [head @ .., b'\n'] = line {
                line = head;
            }
            if let [head @ .., b'\r'] = line {
                line = head;
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let kind = STREAMS[c.stream];
            let source = || RecordSource {
                stream: kind.default_stream_name().to_string(),
                shard_id: c.shard.to_string(),
                sequence_number: c.line.to_string(),
            };
            match parse.parse_event(kind, line) {
                Ok(event) => {
                    let t = event.event_time().millis();
                    c.head = Some(match event {
                        Event::Customer(x) => Item::Customer(x),
                        Event::Address(x) => Item::Address(x),
                        Event::Sale(x) => Item::Sale(x, source()),
                    });
                    heap.push(Reverse((t, c.stream, i)));
                    return Ok(());
                }
                Err(e) => {
                    let reason = format!("{} line {}: {e}", c.key, c.line);
                    bad.push(Item::Bad(Box::new(DeadLetter::new(
                        STAGE,
                        e.error_type(),
                        &reason,
                        &source(),
                        line,
                        *received_at,
                    ))));
                }
            }
        }
    }

    /// Fills `batch` with up to [`BATCH`] items; false once the hour is exhausted.
    fn fill(&mut self, batch: &mut Batch) -> anyhow::Result<bool> {
        while batch.items.len() < BATCH {
            batch.items.append(&mut self.bad);
            let Some(Reverse((_, _, i))) = self.heap.pop() else {
                batch.active = self.active();
                return Ok(false);
            };
            let item = self.cursors[i]
                .head
                .take()
                .expect("a cursor in the heap has a head");
            self.advance(i)?;
            batch.items.append(&mut self.bad);
            batch.items.push(item);
        }
        batch.active = self.active();
        Ok(true)
    }

    fn active(&self) -> [bool; 3] {
        std::array::from_fn(|s| self.live[s] > 0 || self.later[s])
    }
}

/// Produces the batches of the whole archive, hour by hour.
struct Reader {
    listing: Listing,
    loader: Loader,
    last_hours: [Option<usize>; 3],
    next_hour: usize,
}

impl Reader {
    fn new(listing: Listing, loader: Loader) -> Reader {
        Reader {
            last_hours: listing.last_hours(),
            listing,
            loader,
            next_hour: 0,
        }
    }

    /// Opens the next hour partition; `None` after the last.
    async fn next(&mut self) -> anyhow::Result<Option<HourMerge>> {
        let i = self.next_hour;
        let Some(hour) = self.listing.hours.get_mut(i) else {
            return Ok(None);
        };
        self.next_hour += 1;
        let objects = std::mem::take(&mut hour.objects);
        let start = hour.start;
        let mut opened = Vec::with_capacity(objects.len());
        for o in objects {
            let reader = self.loader.open(&o).await?;
            opened.push((o, reader));
        }
        let later = std::array::from_fn(|s| self.last_hours[s].is_some_and(|l| l > i));
        Ok(Some(HourMerge::new(opened, later, start)?))
    }
}

fn empty_batch() -> Batch {
    Batch {
        items: Vec::with_capacity(BATCH),
        active: [true; 3],
    }
}

/// Reads and applies batch by batch on the caller's thread.
pub async fn run_inline(
    listing: Listing,
    loader: Loader,
    engine: &mut Engine,
    out: &mut Output,
    progress: &ProgressBar,
) -> anyhow::Result<()> {
    let read = loader.bytes_read();
    let mut reader = Reader::new(listing, loader);
    let mut batch = empty_batch();
    while let Some(mut hour) = reader.next().await? {
        loop {
            let more = hour.fill(&mut batch)?;
            engine.apply(&mut batch, out).await?;
            progress.set_position(read.load(Ordering::Relaxed));
            if !more {
                break;
            }
        }
    }
    Ok(())
}

/// Reads on a Tokio worker, applies on the caller's thread.
pub async fn run_threaded(
    listing: Listing,
    loader: Loader,
    engine: &mut Engine,
    out: &mut Output,
    progress: &ProgressBar,
) -> anyhow::Result<()> {
    let read = loader.bytes_read();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Batch>(CHANNEL);
    let (recycle_tx, mut recycle_rx) = tokio::sync::mpsc::channel::<Batch>(CHANNEL + 2);
    let reader = tokio::spawn(async move {
        let mut reader = Reader::new(listing, loader);
        while let Some(mut hour) = reader.next().await? {
            loop {
                let mut batch = recycle_rx.try_recv().unwrap_or_else(|_| empty_batch());
                let more = hour.fill(&mut batch)?;
                if tx.send(batch).await.is_err() {
                    // The engine stopped (it reports its own error).
                    return Ok(());
                }
                if !more {
                    break;
                }
            }
        }
        anyhow::Ok(())
    });
    while let Some(mut batch) = rx.recv().await {
        engine.apply(&mut batch, out).await?;
        progress.set_position(read.load(Ordering::Relaxed));
        let _ = recycle_tx.try_send(batch);
    }
    reader.await??;
    Ok(())
}
