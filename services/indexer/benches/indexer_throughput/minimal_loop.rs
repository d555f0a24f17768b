//! The server's ceiling: the same documents the indexer sends (same index, id and body,
//! `indexed_at` included), framed into bulk requests of the same size and sent with the
//! same concurrency, with no parsing, no bookkeeping and no checkpoints.

use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use flowline_model::ParseConfig;
use flowline_opensearch::bulk::{BulkApi, BulkConfig, IndexNames, OpenSearchBulkApi};
use flowline_opensearch::opensearch::OpenSearch;
use indexer::documents::{self, Input};
use serde_json::json;

/// The bulk request bodies for `orders` into the indices named `names`, `max_actions`
/// documents each (built before the clock starts).
pub fn bodies(orders: &[Bytes], names: &IndexNames, config: &BulkConfig) -> Vec<Bytes> {
    let parse = ParseConfig::default();
    let now = flowline_pipeline::now();
    orders
        .chunks(config.max_actions)
        .map(|chunk| {
            let mut body = BytesMut::new();
            for data in chunk {
                let p = documents::prepare(Input::Orders, data, &parse, names, now)
                    .expect("a valid order");
                let meta = json!({"index": {"_index": p.doc.index, "_id": p.doc.id}});
                body.extend_from_slice(meta.to_string().as_bytes());
                body.extend_from_slice(b"\n");
                body.extend_from_slice(&p.body);
                body.extend_from_slice(b"\n");
            }
            body.freeze()
        })
        .collect()
}

/// Sends `bodies` back to back, `max_in_flight` at a time; documents per second.
pub async fn run(client: &OpenSearch, bodies: Vec<Bytes>, docs: usize, config: &BulkConfig) -> f64 {
    let api = Arc::new(OpenSearchBulkApi::new(client.clone(), None));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut failed = 0;
    for body in bodies {
        if tasks.len() >= config.max_in_flight {
            failed += tasks.join_next().await.expect("a task").expect("joins");
        }
        let api = api.clone();
        tasks.spawn(async move {
            let r = api.bulk(body).await.expect("bulk request");
            r.items
                .iter()
                .filter(|i| !(200..300).contains(&i.index.status))
                .count()
        });
    }
    while let Some(r) = tasks.join_next().await {
        failed += r.expect("joins");
    }
    assert_eq!(failed, 0, "the minimal loop had failed items");
    docs as f64 / started.elapsed().as_secs_f64()
}
