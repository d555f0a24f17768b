//! The bulk sink: documents are queued (bounded, `send` waits when full), flushed as `_bulk`
//! requests by action count, byte size or interval, whichever comes first, with a bounded
//! number of requests in flight. Each document's [`Ack`] resolves once it is indexed,
//! superseded by a newer external version, or rejected with OpenSearch's reason, so a
//! caller checkpoints only what is settled. Items failing with 429 or 5xx, and requests
//! failing as a whole, are retried with exponential backoff and full jitter, in this one
//! layer, preserving the order of writes per id.
//!
//! ```no_run
//! # async fn demo(client: flowline_opensearch::opensearch::OpenSearch,
//! #               registry: &prometheus::Registry) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use flowline_opensearch::bulk::*;
//! let sink = BulkSink::start(
//!     Arc::new(OpenSearchBulkApi::new(client, None)),
//!     BulkConfig::default(),
//!     BulkMetrics::register(registry)?,
//! )?;
//! let names = IndexNames::default();
//! let order = serde_json::json!({"order_id": "s-1", "event_time": "2026-11-21T10:00:00.000Z"});
//! match sink.send(BulkDoc::order_from_json(&names, order)?).await? {
//!     Delivery::Indexed | Delivery::Superseded => {}
//!     Delivery::Rejected(r) => eprintln!("dead-letter: {} {}", r.error_type, r.reason),
//! }
//! sink.close().await;
//! # Ok(()) }
//! ```

mod api;
mod config;
mod dispatcher;
mod doc;
mod metrics;
mod naming;
mod outcome;
mod sink;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

pub use api::{
    BulkApi, BulkItem, BulkResponse, ItemError, ItemResult, OpenSearchBulkApi, TransportError,
};
pub use config::BulkConfig;
pub use doc::{BulkDoc, DocBody};
pub use metrics::BulkMetrics;
pub use naming::{IndexFamily, IndexNames, daily_index};
pub use outcome::{Ack, Delivery, FailureKind, Rejection};
pub use sink::BulkSink;

impl crate::OpenSearchError {
    /// Whether the same operation may succeed later (after a restart or when the cluster
    /// recovers), as opposed to a configuration or input error.
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            crate::OpenSearchError::Request { .. }
                | crate::OpenSearchError::RetriesExhausted { .. }
        )
    }
}
