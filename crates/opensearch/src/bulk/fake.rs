//! An in-memory [`BulkApi`] for unit tests: applies `index` actions with OpenSearch's
//! external-version rule, and fails requests or items on demand.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde_json::Value;

use super::api::{BulkApi, BulkItem, BulkResponse, TransportError};

#[derive(Default)]
pub(crate) struct FakeState {
    /// (index, id) -> (source, external version).
    pub docs: HashMap<(String, String), (Value, Option<u64>)>,
    /// Every successful write, in the order it was applied: (id, source).
    pub applied: Vec<(String, Value)>,
    /// The ids of every request received, failed ones included.
    pub requests: Vec<Vec<String>>,
    /// Fail every request as if the server did not answer.
    pub down: bool,
    /// The next requests fail with these, one each.
    pub request_faults: VecDeque<TransportError>,
    /// Per id, the failures (status, type) its next attempts get.
    pub item_faults: HashMap<String, VecDeque<(u16, &'static str)>>,
    pub in_flight: usize,
    pub max_in_flight: usize,
}

#[derive(Default)]
pub(crate) struct FakeBulk {
    pub state: Mutex<FakeState>,
    /// How long each request takes (tokio time, so paused clocks apply).
    pub latency: Duration,
}

impl FakeBulk {
    pub fn with_latency(latency: Duration) -> Self {
        Self {
            latency,
            ..Self::default()
        }
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap()
    }

    pub fn request_sizes(&self) -> Vec<usize> {
        self.state().requests.iter().map(Vec::len).collect()
    }
}

#[async_trait]
impl BulkApi for FakeBulk {
    async fn bulk(&self, body: Bytes) -> Result<BulkResponse, TransportError> {
        let actions = parse(&body);
        {
            let mut s = self.state();
            s.requests
                .push(actions.iter().map(|a| a.id.clone()).collect());
            s.in_flight += 1;
            s.max_in_flight = s.max_in_flight.max(s.in_flight);
        }
        tokio::time::sleep(self.latency).await;
        let mut s = self.state();
        s.in_flight -= 1;
        if s.down {
            return Err(TransportError::Unreachable("connection refused".into()));
        }
        if let Some(e) = s.request_faults.pop_front() {
            return Err(e);
        }
        let items = actions.into_iter().map(|a| s.apply(a)).collect();
        Ok(BulkResponse {
            errors: true,
            items,
        })
    }
}

struct Action {
    index: String,
    id: String,
    version: Option<u64>,
    source: Value,
}

fn parse(body: &[u8]) -> Vec<Action> {
    let text = std::str::from_utf8(body).expect("bulk bodies are UTF-8");
    assert!(text.ends_with('\n'), "a bulk body ends with a newline");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len() % 2, 0, "action and source lines pair up");
    lines
        .chunks(2)
        .map(|pair| {
            let action: Value = serde_json::from_str(pair[0]).expect("action line is JSON");
            let meta = &action["index"];
            let version = meta["version"].as_u64();
            if version.is_some() {
                assert_eq!(meta["version_type"], "external");
            }
            Action {
                index: meta["_index"].as_str().expect("_index").to_owned(),
                id: meta["_id"].as_str().expect("_id").to_owned(),
                version,
                source: serde_json::from_str(pair[1]).expect("source line is JSON"),
            }
        })
        .collect()
}

impl FakeState {
    fn apply(&mut self, a: Action) -> BulkItem {
        if let Some((status, error_type)) = self
            .item_faults
            .get_mut(&a.id)
            .and_then(VecDeque::pop_front)
        {
            return BulkItem::failed(status, error_type, "injected by the fake");
        }
        if let Some(field) = a.source.get("bad") {
            let reason = format!("mapping set to strict, dynamic introduction of [bad] {field}");
            return BulkItem::failed(400, "strict_dynamic_mapping_exception", &reason);
        }
        let key = (a.index, a.id.clone());
        if let (Some(new), Some((_, Some(old)))) = (a.version, self.docs.get(&key))
            && new <= *old
        {
            let reason = format!("current version [{old}] is higher or equal to [{new}]");
            return BulkItem::failed(409, "version_conflict_engine_exception", &reason);
        }
        let created = self
            .docs
            .insert(key, (a.source.clone(), a.version))
            .is_none();
        self.applied.push((a.id, a.source));
        BulkItem::ok(if created { 201 } else { 200 })
    }
}
