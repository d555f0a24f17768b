//! The one call the sink makes, behind a narrow trait so the retry logic is tested with a
//! fake: send one `_bulk` body, get the per-item results.
//!
//! The implementation does not retry: the sink is the single retry layer (the `opensearch`
//! transport with a single-node pool does not retry either).

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use opensearch::OpenSearch;
use opensearch::http::Method;
use opensearch::http::headers::{CONTENT_TYPE, HeaderMap, HeaderValue};
use serde::Deserialize;

/// Only what the sink reads; keeps large responses cheap to parse.
const FILTER_PATH: &str = "errors,items.*.status,items.*.error";

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct BulkResponse {
    #[serde(default)]
    pub errors: bool,
    #[serde(default)]
    pub items: Vec<BulkItem>,
}

/// One item of the response, whatever its action (`index`, `create`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BulkItem {
    #[serde(alias = "create", alias = "update", alias = "delete")]
    pub index: ItemResult,
}

impl BulkItem {
    pub fn ok(status: u16) -> Self {
        Self {
            index: ItemResult {
                status,
                error: None,
            },
        }
    }

    pub fn failed(status: u16, error_type: &str, reason: &str) -> Self {
        Self {
            index: ItemResult {
                status,
                error: Some(ItemError {
                    error_type: error_type.into(),
                    reason: Some(reason.into()),
                    caused_by: None,
                }),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ItemResult {
    pub status: u16,
    #[serde(default)]
    pub error: Option<ItemError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ItemError {
    #[serde(rename = "type")]
    pub error_type: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub caused_by: Option<Box<ItemError>>,
}

impl ItemError {
    /// The reason with its causes, as OpenSearch nests them.
    pub fn full_reason(&self) -> String {
        let mut out = self.reason.clone().unwrap_or_default();
        let mut cause = self.caused_by.as_deref();
        while let Some(c) = cause {
            out.push_str(&format!(
                " (caused by {}: {})",
                c.error_type,
                c.reason.as_deref().unwrap_or("")
            ));
            cause = c.caused_by.as_deref();
        }
        out
    }
}

/// A bulk request that failed as a whole: nothing in it was applied, or nothing is known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// No usable answer: connection refused or reset, timeout, body cut short.
    #[error("no answer: {0}")]
    Unreachable(String),
    /// An HTTP error status for the whole request.
    #[error("HTTP {status}: {reason}")]
    Status { status: u16, reason: String },
    /// A success status with a body that is not a bulk response.
    #[error("unreadable bulk response: {0}")]
    BadResponse(String),
}

#[async_trait]
pub trait BulkApi: Send + Sync + 'static {
    /// Sends one NDJSON `_bulk` body.
    async fn bulk(&self, body: Bytes) -> Result<BulkResponse, TransportError>;
}

/// [`BulkApi`] over the `opensearch` client of [`crate::build_client`].
#[derive(Clone)]
pub struct OpenSearchBulkApi {
    client: OpenSearch,
    timeout: Option<Duration>,
}

impl OpenSearchBulkApi {
    /// `timeout` overrides the client's request timeout for bulk calls.
    pub fn new(client: OpenSearch, timeout: Option<Duration>) -> Self {
        Self { client, timeout }
    }
}

#[async_trait]
impl BulkApi for OpenSearchBulkApi {
    async fn bulk(&self, body: Bytes) -> Result<BulkResponse, TransportError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        );
        let response = self
            .client
            .send(
                Method::Post,
                "/_bulk",
                headers,
                Some(&[("filter_path", FILTER_PATH)]),
                Some(body),
                self.timeout,
            )
            .await
            .map_err(|e| TransportError::Unreachable(e.to_string()))?;
        let status = response.status_code().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| TransportError::Unreachable(format!("reading the response: {e}")))?;
        if !(200..300).contains(&status) {
            return Err(TransportError::Status {
                status,
                reason: error_reason(&bytes),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| TransportError::BadResponse(e.to_string()))
    }
}

/// `type: reason` of an OpenSearch error body, or the start of whatever came back.
fn error_reason(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorBody {
        error: ItemError,
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => format!("{}: {}", e.error.error_type, e.error.full_reason()),
        Err(_) => String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_items_of_any_action_with_nested_causes() {
        let text = r#"{"errors":true,"items":[
            {"index":{"status":201}},
            {"create":{"status":400,"error":{"type":"mapper_parsing_exception",
              "reason":"failed to parse","caused_by":{"type":"json_parse_exception","reason":"eof"}}}}]}"#;
        let r: BulkResponse = serde_json::from_str(text).unwrap();
        assert!(r.errors);
        assert_eq!(r.items[0], BulkItem::ok(201));
        let e = r.items[1].index.error.as_ref().unwrap();
        assert_eq!(e.error_type, "mapper_parsing_exception");
        assert_eq!(
            e.full_reason(),
            "failed to parse (caused by json_parse_exception: eof)"
        );
    }

    #[test]
    fn error_bodies_become_reasons() {
        let body =
            br#"{"error":{"type":"security_exception","reason":"no permissions"},"status":403}"#;
        assert_eq!(error_reason(body), "security_exception: no permissions");
        assert_eq!(error_reason(b"Bad Gateway"), "Bad Gateway");
    }
}
