//! OpenSearch for Flowline: the client factory (basic auth, TLS with verification on by
//! default and an optional CA file), the index templates of DESIGN.md, a probe, and the
//! [`bulk`] sink the indexer writes through.

pub mod bulk;
mod client;
mod settings;
pub mod templates;

pub use client::{build_client, probe, watch};
pub use opensearch;
pub use settings::OpenSearchSettings;

/// Errors of the OpenSearch crate.
#[derive(Debug, thiserror::Error)]
pub enum OpenSearchError {
    #[error("opensearch.url: {url:?} is not a valid URL: {source}")]
    BadUrl {
        url: String,
        source: url::ParseError,
    },
    #[error("opensearch.ca_file: cannot read {path}: {source}")]
    CaFile {
        path: String,
        source: std::io::Error,
    },
    #[error("opensearch.ca_file: {path} is not a PEM certificate: {source}")]
    BadCa {
        path: String,
        source: opensearch::Error,
    },
    #[error("cannot build the OpenSearch client: {0}")]
    Build(String),
    #[error("OpenSearch at {url}: {message}")]
    Request { url: String, message: String },
    #[error("invalid bulk settings: {0}")]
    InvalidConfig(String),
    #[error("document {id:?} cannot be indexed: {message}")]
    InvalidDocument { id: String, message: String },
    #[error("the bulk sink is closed")]
    SinkClosed,
    #[error(
        "document {id:?} still failing after {attempts} attempts and the retry deadline: {last_error}"
    )]
    RetriesExhausted {
        id: String,
        attempts: u32,
        last_error: String,
    },
    #[error("OpenSearch refused the bulk request with HTTP {status}: {reason}")]
    BulkRequestRejected { status: u16, reason: String },
}
