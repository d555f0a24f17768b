//! The in-process output: a Kinesis that acknowledges every entry at once, on the shard its
//! key maps to. The joiner still writes through the real producer (batching, aggregation,
//! acknowledgements); only the network and the emulator are gone.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use flowline_kinesis::ApiError;
use flowline_kinesis::producer::{ListShardsApi, PutAck, PutEntry, PutRecordsApi};
use flowline_kinesis::shards::{HashKeyRange, ShardInfo, ShardMap, effective_hash_key};

pub struct NullKinesis {
    map: ShardMap,
    seq: AtomicU64,
}

impl NullKinesis {
    pub fn new(shards: u128) -> Self {
        let step = u128::MAX / shards;
        let map = ShardMap::new(
            (0..shards)
                .map(|i| ShardInfo {
                    shard_id: format!("shardId-{i:012}"),
                    range: HashKeyRange {
                        start: if i == 0 { 0 } else { i * step + 1 },
                        end: if i == shards - 1 {
                            u128::MAX
                        } else {
                            (i + 1) * step
                        },
                    },
                })
                .collect(),
        )
        .expect("a valid shard map");
        Self {
            map,
            seq: AtomicU64::new(0),
        }
    }
}

#[async_trait]
impl PutRecordsApi for NullKinesis {
    async fn put_records(
        &self,
        _stream: &str,
        entries: &[PutEntry],
    ) -> Result<Vec<Result<PutAck, ApiError>>, ApiError> {
        Ok(entries
            .iter()
            .map(|e| {
                let k = effective_hash_key(&e.partition_key, e.explicit_hash_key.as_deref())
                    .expect("a valid hash key");
                let shard = self.map.index_of(k).expect("the map covers every key");
                Ok(PutAck {
                    shard_id: self.map.shards()[shard].shard_id.clone(),
                    sequence_number: self.seq.fetch_add(1, Ordering::Relaxed).to_string(),
                })
            })
            .collect())
    }
}

#[async_trait]
impl ListShardsApi for NullKinesis {
    async fn list_open_shards(&self, _stream: &str) -> flowline_kinesis::Result<ShardMap> {
        Ok(self.map.clone())
    }
}
