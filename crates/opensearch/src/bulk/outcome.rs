//! What becomes of a document: the acknowledgement a caller waits for before checkpointing,
//! and the classification of OpenSearch's per-item answers.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::oneshot;

use super::api::ItemResult;
use crate::OpenSearchError;

/// The final answer for a document. Every variant is final: the caller may checkpoint past
/// it (dead-lettering `Rejected` ones first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Written under its `_id`.
    Indexed,
    /// Not written because the stored copy has an equal or higher external version: the
    /// cluster already has this revision or a newer one.
    Superseded,
    /// Refused by OpenSearch for a reason a retry cannot fix (mapping, bad index name, ...).
    Rejected(Rejection),
}

/// OpenSearch's reason for refusing a document, as the dead-letter envelope wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    /// OpenSearch's error type, e.g. `strict_dynamic_mapping_exception`.
    pub error_type: String,
    pub reason: String,
    pub kind: FailureKind,
}

/// A small, fixed set of failure classes: the metric label for OpenSearch's error types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The document does not fit the mapping.
    Mapping,
    /// A version conflict that is not "the stored version is newer".
    VersionConflict,
    /// The index name or state is wrong (invalid name, closed, missing with auto-create off).
    Index,
    /// 429 or a cluster block: the cluster pushes back.
    Throttled,
    /// 5xx: the cluster failed.
    ServerError,
    /// Any other 4xx.
    Other,
}

impl FailureKind {
    /// Every kind, so metric series can exist (at 0) before the first failure.
    pub const ALL: [FailureKind; 6] = [
        FailureKind::Mapping,
        FailureKind::VersionConflict,
        FailureKind::Index,
        FailureKind::Throttled,
        FailureKind::ServerError,
        FailureKind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Mapping => "mapping",
            FailureKind::VersionConflict => "version_conflict",
            FailureKind::Index => "index",
            FailureKind::Throttled => "throttled",
            FailureKind::ServerError => "server_error",
            FailureKind::Other => "other",
        }
    }

    pub fn is_retriable(self) -> bool {
        matches!(self, FailureKind::Throttled | FailureKind::ServerError)
    }

    fn of(status: u16, error_type: &str) -> Self {
        match (status, error_type) {
            // A cluster block (flood-stage disk watermark, read-only index) is an operator
            // condition that clears: waiting beats dead-lettering every document.
            (429, _) | (_, "es_rejected_execution_exception" | "cluster_block_exception") => {
                FailureKind::Throttled
            }
            (500.., _) => FailureKind::ServerError,
            (
                _,
                "mapper_parsing_exception"
                | "strict_dynamic_mapping_exception"
                | "illegal_argument_exception"
                | "document_parsing_exception",
            ) => FailureKind::Mapping,
            (_, "version_conflict_engine_exception") => FailureKind::VersionConflict,
            (
                _,
                "invalid_index_name_exception"
                | "index_not_found_exception"
                | "index_closed_exception",
            ) => FailureKind::Index,
            _ => FailureKind::Other,
        }
    }
}

/// How the sink treats one item of a bulk response.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ItemVerdict {
    Done(Delivery),
    Retry(FailureKind),
}

pub(crate) fn judge(item: &ItemResult, versioned: bool) -> ItemVerdict {
    if (200..300).contains(&item.status) {
        return ItemVerdict::Done(Delivery::Indexed);
    }
    let (error_type, reason) = item.error.as_ref().map_or_else(
        || (String::from("unknown"), format!("HTTP {}", item.status)),
        |e| (e.error_type.clone(), e.full_reason()),
    );
    let kind = FailureKind::of(item.status, &error_type);
    // With external versions a conflict means the stored version is equal or higher: the
    // newer (or same) revision is already there, which is the outcome we want.
    if kind == FailureKind::VersionConflict && versioned && item.status == 409 {
        return ItemVerdict::Done(Delivery::Superseded);
    }
    if kind.is_retriable() {
        return ItemVerdict::Retry(kind);
    }
    ItemVerdict::Done(Delivery::Rejected(Rejection {
        status: item.status,
        error_type,
        reason,
        kind,
    }))
}

/// Resolves when the document is indexed, superseded or rejected (`Ok`), or when the sink
/// gave it up (`Err`: closed, retry deadline passed, request refused as a whole). After an
/// `Err` the document's fate is unknown: do not checkpoint past it.
#[must_use = "an Ack tells whether the document was indexed"]
pub struct Ack(pub(crate) oneshot::Receiver<Result<Delivery, OpenSearchError>>);

impl Future for Ack {
    type Output = Result<Delivery, OpenSearchError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(OpenSearchError::SinkClosed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bulk::api::BulkItem;

    fn verdict(item: BulkItem, versioned: bool) -> ItemVerdict {
        judge(&item.index, versioned)
    }

    #[test]
    fn items_are_classified() {
        assert_eq!(
            verdict(BulkItem::ok(201), false),
            ItemVerdict::Done(Delivery::Indexed)
        );
        let conflict = || BulkItem::failed(409, "version_conflict_engine_exception", "newer");
        assert_eq!(
            verdict(conflict(), true),
            ItemVerdict::Done(Delivery::Superseded)
        );
        assert!(matches!(
            verdict(conflict(), false),
            ItemVerdict::Done(Delivery::Rejected(Rejection {
                kind: FailureKind::VersionConflict,
                ..
            }))
        ));
        assert_eq!(
            verdict(
                BulkItem::failed(429, "es_rejected_execution_exception", "queue full"),
                false
            ),
            ItemVerdict::Retry(FailureKind::Throttled)
        );
        assert_eq!(
            verdict(
                BulkItem::failed(503, "unavailable_shards_exception", "primary"),
                false
            ),
            ItemVerdict::Retry(FailureKind::ServerError)
        );
        let ItemVerdict::Done(Delivery::Rejected(r)) = verdict(
            BulkItem::failed(400, "strict_dynamic_mapping_exception", "no [x]"),
            false,
        ) else {
            panic!("a mapping error is a rejection");
        };
        assert_eq!(
            (r.status, r.kind, r.reason.as_str()),
            (400, FailureKind::Mapping, "no [x]")
        );
        assert!(matches!(
            verdict(
                BulkItem::failed(400, "invalid_index_name_exception", "BAD"),
                false
            ),
            ItemVerdict::Done(Delivery::Rejected(Rejection {
                kind: FailureKind::Index,
                ..
            }))
        ));
    }
}
