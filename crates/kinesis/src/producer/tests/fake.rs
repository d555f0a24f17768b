//! In-memory stand-in for Kinesis with scripted failures.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Semaphore;

use crate::error::ApiError;
use crate::producer::{ListShardsApi, PutAck, PutEntry, PutRecordsApi};
use crate::shards::{HashKeyRange, ShardInfo, ShardMap, effective_hash_key};

/// What the next PutRecords call does.
#[derive(Debug, Clone)]
pub enum Behavior {
    /// Fail these entry positions with this error code; store the rest.
    FailEntries(Vec<usize>, &'static str),
    /// Fail the whole call.
    FailCall(ApiError),
    /// Never answer (until the producer's request timeout).
    Hang,
}

#[derive(Clone)]
pub struct Stored {
    pub shard_id: String,
    pub sequence_number: String,
    pub entry: PutEntry,
}

pub struct Fake {
    map: Mutex<ShardMap>,
    script: Mutex<VecDeque<Behavior>>,
    /// Applied when the script is empty.
    default: Mutex<Option<Behavior>>,
    pub calls: Mutex<Vec<Vec<PutEntry>>>,
    pub stored: Mutex<Vec<Stored>>,
    seq: AtomicU64,
    pub list_calls: AtomicUsize,
    /// Each call takes a permit first; tests start it closed to hold calls.
    pub gate: Semaphore,
    /// Land every record on this shard id instead of the one its key maps to.
    pub land_on: Mutex<Option<String>>,
}

/// `n` shards splitting the hash key space evenly, named shardId-00000000000i.
pub fn even_shards(n: u128) -> ShardMap {
    let step = u128::MAX / n;
    ShardMap::new(
        (0..n)
            .map(|i| ShardInfo {
                shard_id: format!("shardId-{i:012}"),
                range: HashKeyRange {
                    start: if i == 0 { 0 } else { i * step + 1 },
                    end: if i == n - 1 {
                        u128::MAX
                    } else {
                        (i + 1) * step
                    },
                },
            })
            .collect(),
    )
    .unwrap()
}

impl Fake {
    pub fn new(map: ShardMap) -> Self {
        Self {
            map: Mutex::new(map),
            script: Mutex::new(VecDeque::new()),
            default: Mutex::new(None),
            calls: Mutex::new(Vec::new()),
            stored: Mutex::new(Vec::new()),
            seq: AtomicU64::new(0),
            list_calls: AtomicUsize::new(0),
            gate: Semaphore::new(Semaphore::MAX_PERMITS),
            land_on: Mutex::new(None),
        }
    }

    /// Reshards: the fake routes by (and lists) this map from now on.
    pub fn set_map(&self, map: ShardMap) {
        *self.map.lock().unwrap() = map;
    }

    pub fn script(&self, b: Behavior) {
        self.script.lock().unwrap().push_back(b);
    }

    pub fn always(&self, b: Behavior) {
        *self.default.lock().unwrap() = Some(b);
    }

    pub fn stored(&self) -> Vec<Stored> {
        self.stored.lock().unwrap().clone()
    }

    pub fn calls(&self) -> Vec<Vec<PutEntry>> {
        self.calls.lock().unwrap().clone()
    }

    fn shard_of(&self, e: &PutEntry) -> String {
        if let Some(s) = self.land_on.lock().unwrap().clone() {
            return s;
        }
        let k = effective_hash_key(&e.partition_key, e.explicit_hash_key.as_deref()).unwrap();
        let map = self.map.lock().unwrap();
        map.shards()[map.index_of(k).unwrap()].shard_id.clone()
    }
}

#[async_trait]
impl PutRecordsApi for Fake {
    async fn put_records(
        &self,
        _stream: &str,
        entries: &[PutEntry],
    ) -> Result<Vec<Result<PutAck, ApiError>>, ApiError> {
        let _permit = self.gate.acquire().await.unwrap();
        self.calls.lock().unwrap().push(entries.to_vec());
        let behavior = self
            .script
            .lock()
            .unwrap()
            .pop_front()
            .or_else(|| self.default.lock().unwrap().clone());
        let (failed, code): (Vec<usize>, &str) = match behavior {
            Some(Behavior::FailCall(e)) => return Err(e),
            Some(Behavior::Hang) => {
                tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
                unreachable!("the producer times out first")
            }
            Some(Behavior::FailEntries(positions, code)) => (positions, code),
            None => (Vec::new(), ""),
        };
        Ok(entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                if failed.contains(&i) {
                    return Err(ApiError::from_code(code, "injected", None));
                }
                let shard_id = self.shard_of(e);
                let sequence_number = format!("{:030}", self.seq.fetch_add(1, Ordering::SeqCst));
                self.stored.lock().unwrap().push(Stored {
                    shard_id: shard_id.clone(),
                    sequence_number: sequence_number.clone(),
                    entry: e.clone(),
                });
                Ok(PutAck {
                    shard_id,
                    sequence_number,
                })
            })
            .collect())
    }
}

#[async_trait]
impl ListShardsApi for Fake {
    async fn list_open_shards(&self, _stream: &str) -> crate::Result<ShardMap> {
        self.list_calls.fetch_add(1, Ordering::SeqCst);
        Ok(self.map.lock().unwrap().clone())
    }
}
