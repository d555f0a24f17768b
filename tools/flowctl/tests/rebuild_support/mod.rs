//! Shared by the rebuild tests and the rebuild benchmark: writes a raw archive the way the
//! archiver lays it out, from the deterministic generator, and reads rebuild output back.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use flowline_datagen::reference::{ITEMS_CSV_KEY, PROMOS_CSV_KEY, items_to_csv, promos_to_csv};
use flowline_datagen::{GenConfig, Generator};
use flowline_model::{ParseConfig, StreamKind, Timestamp};

/// Shards per stream the archive pretends to have (records go by partition key).
pub const SHARDS: u64 = 2;

pub struct Written {
    /// Every line that parses, with its stream, in arrival order.
    pub good: Vec<(StreamKind, Vec<u8>)>,
    /// Lines that do not parse.
    pub bad: Vec<Vec<u8>>,
    pub sales: u64,
    pub objects: usize,
}

struct Open {
    path_tmp: PathBuf,
    dir: PathBuf,
    stream: &'static str,
    shard: u64,
    first: u64,
    last: u64,
    gz: GzEncoder<std::io::BufWriter<std::fs::File>>,
}

/// Writes `raw/<stream>/dt=…/hour=…/<stream>_shardId-…_<first>_<last>.jsonl.gz` (one object
/// per stream, shard and hour, cut every `lines_per_object` lines) and the reference CSVs
/// below `root`. `keep_good` keeps the good lines in memory for an oracle.
pub fn write_archive(
    root: &Path,
    cfg: GenConfig,
    lines_per_object: u64,
    keep_good: bool,
) -> Written {
    let generator = Generator::new(cfg).expect("generator config");
    let catalog = generator.catalog();
    for (key, body) in [
        (ITEMS_CSV_KEY, items_to_csv(&catalog.items).unwrap()),
        (PROMOS_CSV_KEY, promos_to_csv(&catalog.promos).unwrap()),
    ] {
        let path = root.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
    let parse = ParseConfig::default();
    let mut open: HashMap<(StreamKind, u64, i64), Open> = HashMap::new();
    let mut seq: HashMap<(StreamKind, u64), u64> = HashMap::new();
    let mut out = Written {
        good: Vec::new(),
        bad: Vec::new(),
        sales: 0,
        objects: 0,
    };
    let mut last_time = Timestamp::UNIX_EPOCH;
    for r in generator {
        // The archiver cannot frame a record holding a newline; it never reaches raw/.
        if r.data.contains(&b'\n') {
            continue;
        }
        let time = match parse.parse_event(r.stream, &r.data) {
            Ok(e) => {
                if r.stream == StreamKind::Sales {
                    out.sales += 1;
                }
                if keep_good {
                    out.good.push((r.stream, r.data.clone()));
                }
                last_time = e.event_time();
                e.event_time()
            }
            Err(_) => {
                out.bad.push(r.data.clone());
                // The archiver files records without a time by their arrival time.
                last_time
            }
        };
        let shard = fnv(r.partition_key.as_bytes()) % SHARDS;
        let hour = time.millis().div_euclid(3_600_000);
        let s = seq.entry((r.stream, shard)).or_insert(0);
        *s += 1;
        let n = *s;
        let key = (r.stream, shard, hour);
        let o = open.entry(key).or_insert_with(|| {
            let stream = r.stream.default_stream_name();
            let t = Timestamp::from_millis(hour * 3_600_000).unwrap();
            let dir = root.join(format!(
                "raw/{stream}/dt={}/hour={:02}",
                t.date_string(),
                t.hour()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let path_tmp = dir.join(format!(".{stream}-{shard}-{n}.tmp"));
            let file = std::fs::File::create(&path_tmp).unwrap();
            Open {
                path_tmp,
                dir,
                stream,
                shard,
                first: n,
                last: n,
                gz: GzEncoder::new(std::io::BufWriter::new(file), Compression::fast()),
            }
        });
        o.gz.write_all(&r.data).unwrap();
        o.gz.write_all(b"\n").unwrap();
        o.last = n;
        if o.last - o.first + 1 >= lines_per_object {
            let o = open.remove(&key).unwrap();
            close(o);
            out.objects += 1;
        }
    }
    for (_, o) in open.drain() {
        close(o);
        out.objects += 1;
    }
    out
}

fn close(o: Open) {
    o.gz.finish().unwrap().flush().unwrap();
    let name = format!(
        "{}_shardId-{:012}_{}_{}.jsonl.gz",
        o.stream, o.shard, o.first, o.last
    );
    std::fs::rename(&o.path_tmp, o.dir.join(name)).unwrap();
}

fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf29ce484222325, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x100000001b3)
    })
}

/// Every JSON line of every `part-*.jsonl` file below `dir`, in path order.
pub fn read_jsonl(dir: &Path) -> Vec<serde_json::Value> {
    let mut files = Vec::new();
    collect(dir, &mut files);
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for line in text.lines() {
            out.push(serde_json::from_str(line).unwrap());
        }
    }
    out
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            collect(&p, out);
        } else if p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("part-") && n.ends_with(".jsonl"))
        {
            out.push(p);
        }
    }
}
