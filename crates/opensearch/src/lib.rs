//! OpenSearch for Flowline: the client factory (basic auth, TLS with verification on by
//! default and an optional CA file), the index templates of DESIGN.md, and a probe.

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
}
