//! The raw archive (DESIGN.md section 2): `raw/<stream>/dt=YYYY-MM-DD/hour=HH/<object>`,
//! gzip JSON Lines as the archiver writes them, or plain `.jsonl` for users who bring their
//! own history. Listed once, grouped by hour partition (the partition is the events' own
//! time, so hours in order are event time in order), and loaded an hour at a time.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context as _, bail};
use flate2::read::MultiGzDecoder;
use flowline_model::{StreamKind, Timestamp};

use super::args::Location;

/// The input streams, in the order used for tie-breaks and per-stream state.
pub const STREAMS: [StreamKind; 3] = [
    StreamKind::Customers,
    StreamKind::Addresses,
    StreamKind::Sales,
];

#[derive(Clone, Debug)]
pub struct Object {
    /// Index into [`STREAMS`].
    pub stream: usize,
    /// Key relative to the archive root, e.g. `raw/sales/dt=2026-01-01/hour=00/x.jsonl.gz`.
    pub key: String,
    pub size: u64,
}

impl Object {
    /// The file name without directories.
    pub fn name(&self) -> &str {
        self.key.rsplit('/').next().unwrap_or(&self.key)
    }

    /// The shard the archiver named the object after (`<stream>_<shard>_<first>_<last>`),
    /// or the file name for objects named otherwise. Sales of one shard share a partition
    /// of the join's pending state, so a redelivered sale replaces its first copy.
    pub fn shard(&self) -> &str {
        let name = self.name();
        let stream = STREAMS[self.stream].default_stream_name();
        name.strip_prefix(stream)
            .and_then(|r| r.strip_prefix('_'))
            .and_then(|r| r.split('_').next())
            .filter(|s| !s.is_empty())
            .unwrap_or(name)
    }
}

/// One hour partition of every stream.
#[derive(Debug)]
pub struct Hour {
    pub start: Timestamp,
    pub objects: Vec<Object>,
}

#[derive(Debug, Default)]
pub struct Listing {
    pub hours: Vec<Hour>,
}

impl Listing {
    pub fn objects(&self) -> usize {
        self.hours.iter().map(|h| h.objects.len()).sum()
    }

    pub fn bytes(&self) -> u64 {
        self.hours
            .iter()
            .flat_map(|h| &h.objects)
            .map(|o| o.size)
            .sum()
    }

    /// For each stream, the index of the last hour holding any of its objects.
    pub fn last_hours(&self) -> [Option<usize>; 3] {
        let mut last = [None; 3];
        for (i, h) in self.hours.iter().enumerate() {
            for o in &h.objects {
                last[o.stream] = Some(i);
            }
        }
        last
    }

    fn from_objects(objects: Vec<Object>) -> anyhow::Result<Listing> {
        let mut by_hour: BTreeMap<i64, Vec<Object>> = BTreeMap::new();
        for o in objects {
            let start = hour_of(&o.key)?;
            by_hour.entry(start.millis()).or_default().push(o);
        }
        let hours = by_hour
            .into_iter()
            .map(|(ms, mut objects)| {
                objects.sort_by(|a, b| (a.stream, &a.key).cmp(&(b.stream, &b.key)));
                Hour {
                    start: Timestamp::from_millis(ms).expect("parsed from a partition"),
                    objects,
                }
            })
            .collect();
        Ok(Listing { hours })
    }
}

/// The start of the `dt=YYYY-MM-DD/hour=HH` partition in `key`.
fn hour_of(key: &str) -> anyhow::Result<Timestamp> {
    let seg = |name: &str| {
        key.split('/')
            .find_map(|s| s.strip_prefix(name))
            .map(str::to_string)
    };
    let (Some(date), Some(hour)) = (seg("dt="), seg("hour=")) else {
        bail!("{key}: not under a dt=YYYY-MM-DD/hour=HH partition");
    };
    Timestamp::parse_rfc3339(&format!("{date}T{hour}:00:00.000Z"))
        .map_err(|e| anyhow::anyhow!("{key}: bad partition: {e}"))
}

fn is_jsonl(name: &str) -> bool {
    name.ends_with(".jsonl") || name.ends_with(".jsonl.gz")
}

/// Every archive object of the three streams.
pub async fn list(at: &Location, s3: Option<&aws_sdk_s3::Client>) -> anyhow::Result<Listing> {
    let mut objects = Vec::new();
    for (stream, kind) in STREAMS.iter().enumerate() {
        let dir = format!("raw/{}", kind.default_stream_name());
        match at {
            Location::Local(root) => list_local(root, &root.join(&dir), stream, &mut objects)?,
            Location::S3 { bucket, prefix } => {
                let s3 = s3.context("S3 client")?;
                let mut token = None;
                loop {
                    let out = s3
                        .list_objects_v2()
                        .bucket(bucket)
                        .prefix(format!("{prefix}{dir}/"))
                        .set_continuation_token(token.take())
                        .send()
                        .await
                        .map_err(|e| anyhow::anyhow!(flowline_aws::error_chain(&e)))
                        .with_context(|| format!("listing s3://{bucket}/{prefix}{dir}/"))?;
                    for o in out.contents() {
                        let Some(key) = o.key() else { continue };
                        if is_jsonl(key) {
                            objects.push(Object {
                                stream,
                                key: key[prefix.len()..].to_string(),
                                size: o.size().unwrap_or(0).max(0) as u64,
                            });
                        }
                    }
                    match out.next_continuation_token() {
                        Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_string()),
                        _ => break,
                    }
                }
            }
        }
    }
    Listing::from_objects(objects)
}

fn list_local(root: &Path, dir: &Path, stream: usize, out: &mut Vec<Object>) -> anyhow::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        // A stream with no history yet.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let meta = entry.metadata()?;
        if meta.is_dir() {
            list_local(root, &path, stream, out)?;
        } else if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(is_jsonl)
        {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            out.push(Object {
                stream,
                key: rel.to_string_lossy().replace('\\', "/"),
                size: meta.len(),
            });
        }
    }
    Ok(())
}

/// Counts the (compressed) bytes read through it, for the progress bar.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Opens objects (and gunzips them).
#[derive(Clone)]
pub struct Loader {
    at: Location,
    s3: Option<aws_sdk_s3::Client>,
    read: Arc<AtomicU64>,
}

impl Loader {
    pub fn new(at: Location, s3: Option<aws_sdk_s3::Client>) -> Loader {
        Loader {
            at,
            s3,
            read: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Archive bytes read so far (as stored, i.e. compressed).
    pub fn bytes_read(&self) -> Arc<AtomicU64> {
        self.read.clone()
    }

    /// A reader of the object's lines (decompressed while read): local files are streamed,
    /// S3 objects are fetched whole (compressed) and decompressed as they are read, so an
    /// hour partition costs its compressed size at most.
    pub async fn open(&self, o: &Object) -> anyhow::Result<Box<dyn BufRead + Send>> {
        let gz = o.key.ends_with(".gz");
        match &self.at {
            Location::Local(root) => {
                let path = root.join(&o.key);
                let file = std::fs::File::open(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let file = Counting {
                    inner: file,
                    read: self.read.clone(),
                };
                Ok(if gz {
                    Box::new(BufReader::with_capacity(
                        BUF,
                        MultiGzDecoder::new(BufReader::new(file)),
                    ))
                } else {
                    Box::new(BufReader::with_capacity(BUF, file))
                })
            }
            Location::S3 { bucket, prefix } => {
                let s3 = self.s3.as_ref().context("S3 client")?;
                let key = format!("{prefix}{}", o.key);
                let out = s3
                    .get_object()
                    .bucket(bucket)
                    .key(&key)
                    .send()
                    .await
                    .map_err(|e| anyhow::anyhow!(flowline_aws::error_chain(&e)))
                    .with_context(|| format!("s3://{bucket}/{key}"))?;
                let bytes = out
                    .body
                    .collect()
                    .await
                    .with_context(|| format!("reading s3://{bucket}/{key}"))?
                    .into_bytes();
                let cursor = BufReader::new(Counting {
                    inner: std::io::Cursor::new(bytes),
                    read: self.read.clone(),
                });
                Ok(if gz {
                    Box::new(BufReader::with_capacity(BUF, MultiGzDecoder::new(cursor)))
                } else {
                    Box::new(cursor)
                })
            }
        }
    }
}

/// Read buffer per open object.
const BUF: usize = 64 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_and_hours_come_from_the_archiver_names() {
        let o = Object {
            stream: 2,
            key: "raw/sales/dt=2026-01-02/hour=07/sales_shardId-000000000001_495_497.3.jsonl.gz"
                .into(),
            size: 1,
        };
        assert_eq!(o.shard(), "shardId-000000000001");
        assert_eq!(
            hour_of(&o.key).unwrap().to_string(),
            "2026-01-02T07:00:00.000Z"
        );
        let mine = Object {
            stream: 0,
            key: "raw/customers/dt=2026-01-02/hour=07/history.jsonl".into(),
            size: 1,
        };
        assert_eq!(mine.shard(), "history.jsonl");
        assert!(hour_of("raw/sales/x.jsonl").is_err());
    }
}
