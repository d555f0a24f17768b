//! A fault-injecting HTTP proxy for the Kinesis JSON API (no emulator injects faults).
//!
//! Tests point the SDK at [`FaultProxy::url`]; the proxy forwards to the emulator and, by a
//! seeded policy, instead answers throttling or 5xx errors, stalls past the client's timeout,
//! drops the connection, or fails a fraction of PutRecords entries. Every fault is applied
//! *instead of* writing: throttled, failed, stalled and dropped requests are not forwarded, and
//! failed PutRecords entries are stripped from the forwarded request before their failures are
//! spliced back into the response at their positions. So a client that retries correctly
//! writes every record exactly once.
//!
//! Tests that need one exact fault at one exact call script it with
//! [`FaultProxy::push_error`], and read the arrival times of calls with [`FaultProxy::calls`]
//! (to check pacing such as GetRecords' 5 calls/s per shard).
//!
//! The server side is a small hand-rolled HTTP/1.1 loop over tokio: hyper is not a testkit
//! dependency, axum cannot drop a connection or stall without answering on purpose, and the SDK
//! only sends `Content-Length` bodies. The upstream side uses reqwest. Loopback only: the
//! proxy listens on 127.0.0.1 and refuses non-loopback upstreams; faults are bounded by count
//! and by time.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// What to inject. Probabilities are per request (per entry for `partial_failure`) and are
/// checked in the order of the fields; their sum should stay at most 1.
#[derive(Debug, Clone)]
pub struct FaultPolicy {
    pub seed: u64,
    /// Answer 400 `ProvisionedThroughputExceededException`.
    pub throttle: f64,
    /// Answer 500 `InternalFailure` (or, every other time, 503 `ServiceUnavailable`).
    pub server_error: f64,
    /// Hold the request for `stall_for`, then close the connection without forwarding it.
    pub stall: f64,
    pub stall_for: Duration,
    /// Close the connection at once without forwarding or answering.
    pub drop_connection: f64,
    /// PutRecords only: fail each entry with this probability (ErrorCode
    /// `ProvisionedThroughputExceededException`); those entries are not written.
    pub partial_failure: f64,
    /// Only requests whose `X-Amz-Target` operation is listed get faults (empty = all).
    pub operations: Vec<String>,
    /// Stop injecting after this many faults (entry failures count one per entry).
    pub max_faults: u64,
    /// Stop injecting this long after the proxy started.
    pub active_for: Duration,
}

impl Default for FaultPolicy {
    /// Forwards everything; set probabilities to inject faults.
    fn default() -> Self {
        Self {
            seed: 1,
            throttle: 0.0,
            server_error: 0.0,
            stall: 0.0,
            stall_for: Duration::from_secs(10),
            drop_connection: 0.0,
            partial_failure: 0.0,
            operations: Vec::new(),
            max_faults: 100_000,
            active_for: Duration::from_secs(600),
        }
    }
}

/// Counts of what the proxy did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultStats {
    pub requests: u64,
    pub forwarded: u64,
    pub throttled: u64,
    pub server_errors: u64,
    pub stalled: u64,
    pub dropped: u64,
    /// PutRecords entries failed by the proxy.
    pub entries_failed: u64,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    forwarded: AtomicU64,
    throttled: AtomicU64,
    server_errors: AtomicU64,
    stalled: AtomicU64,
    dropped: AtomicU64,
    entries_failed: AtomicU64,
}

/// Seeded splitmix64: reproducible fault decisions without a rand dependency in testkit.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Shared {
    upstream: String,
    client: reqwest::Client,
    policy: Mutex<FaultPolicy>,
    rng: Mutex<Rng>,
    started: Instant,
    counters: Counters,
    /// Errors to answer, in order, to the next calls of their operation.
    scripted: Mutex<VecDeque<(String, String)>>,
    /// (operation, arrival) of every request, faulted or not.
    calls: Mutex<Vec<(String, Instant)>>,
}

enum Fault {
    Throttle,
    ServerError,
    Stall(Duration),
    Drop,
}

impl Shared {
    fn faults_allowed(&self, policy: &FaultPolicy) -> bool {
        let c = &self.counters;
        let injected = c.throttled.load(Ordering::Relaxed)
            + c.server_errors.load(Ordering::Relaxed)
            + c.stalled.load(Ordering::Relaxed)
            + c.dropped.load(Ordering::Relaxed)
            + c.entries_failed.load(Ordering::Relaxed);
        injected < policy.max_faults && self.started.elapsed() < policy.active_for
    }

    fn applies(policy: &FaultPolicy, operation: &str) -> bool {
        policy.operations.is_empty() || policy.operations.iter().any(|o| o == operation)
    }

    fn choose_fault(&self, operation: &str) -> Option<Fault> {
        let policy = self.policy.lock().unwrap().clone();
        if !Self::applies(&policy, operation) || !self.faults_allowed(&policy) {
            return None;
        }
        let roll = self.rng.lock().unwrap().next_f64();
        let mut edge = 0.0;
        for (p, fault) in [
            (policy.throttle, Fault::Throttle),
            (policy.server_error, Fault::ServerError),
            (policy.stall, Fault::Stall(policy.stall_for)),
            (policy.drop_connection, Fault::Drop),
        ] {
            edge += p;
            if roll < edge {
                return Some(fault);
            }
        }
        None
    }

    /// Positions of PutRecords entries to fail.
    fn choose_failed_entries(&self, n: usize) -> Vec<bool> {
        let policy = self.policy.lock().unwrap().clone();
        if policy.partial_failure <= 0.0 || !Self::applies(&policy, "PutRecords") {
            return vec![false; n];
        }
        let mut rng = self.rng.lock().unwrap();
        let mut budget = policy
            .max_faults
            .saturating_sub(self.counters.entries_failed.load(Ordering::Relaxed));
        if self.started.elapsed() >= policy.active_for {
            budget = 0;
        }
        (0..n)
            .map(|_| {
                let fail = budget > 0 && rng.next_f64() < policy.partial_failure;
                budget -= fail as u64;
                fail
            })
            .collect()
    }
}

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy on 127.0.0.1 (free port) forwarding to `upstream` (a loopback http URL).
    pub async fn start(upstream: &str, policy: FaultPolicy) -> anyhow::Result<Self> {
        let url =
            reqwest::Url::parse(upstream).with_context(|| format!("upstream URL {upstream}"))?;
        let loopback = matches!(
            url.host_str(),
            Some("127.0.0.1" | "localhost" | "[::1]" | "::1")
        );
        if url.scheme() != "http" || !loopback {
            bail!("fault proxy only forwards to loopback http endpoints, not {upstream}");
        }
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()?,
            rng: Mutex::new(Rng(policy.seed)),
            policy: Mutex::new(policy),
            started: Instant::now(),
            counters: Counters::default(),
            scripted: Mutex::new(VecDeque::new()),
            calls: Mutex::new(Vec::new()),
        });
        let accept_task = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(Self {
            addr,
            shared,
            accept_task,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the policy (e.g. to stop injecting); the random sequence continues.
    pub fn set_policy(&self, policy: FaultPolicy) {
        *self.shared.policy.lock().unwrap() = policy;
    }

    /// Answers the next call of `operation` (e.g. `GetRecords`) with a 400 `error_type`
    /// (e.g. `ExpiredIteratorException`) instead of forwarding it; queued in order.
    pub fn push_error(&self, operation: &str, error_type: &str) {
        let mut scripted = self.shared.scripted.lock().unwrap();
        scripted.push_back((operation.to_owned(), error_type.to_owned()));
    }

    /// Scripted errors not yet answered.
    pub fn pending_errors(&self) -> usize {
        self.shared.scripted.lock().unwrap().len()
    }

    /// Arrival times of every call of `operation`, in order.
    pub fn calls(&self, operation: &str) -> Vec<Instant> {
        let calls = self.shared.calls.lock().unwrap();
        calls
            .iter()
            .filter(|(o, _)| o == operation)
            .map(|(_, t)| *t)
            .collect()
    }

    pub fn stats(&self) -> FaultStats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        FaultStats {
            requests: get(&c.requests),
            forwarded: get(&c.forwarded),
            throttled: get(&c.throttled),
            server_errors: get(&c.server_errors),
            stalled: get(&c.stalled),
            dropped: get(&c.dropped),
            entries_failed: get(&c.entries_failed),
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection task.
        self.accept_task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(stream, shared.clone()));
                }
                Err(e) => tracing::warn!(error = %e, "fault proxy accept failed"),
            },
            // Reap finished connections so the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Reads one request; None at a clean end of the connection.
async fn read_request(reader: &mut BufReader<TcpStream>) -> anyhow::Result<Option<Request>> {
    let mut head = Vec::new();
    loop {
        let mut byte = [0u8; 1];
        if reader.read(&mut byte).await? == 0 {
            if head.is_empty() {
                return Ok(None);
            }
            bail!("connection closed inside a request head");
        }
        head.push(byte[0]);
        if head.ends_with(b"\r\n\r\n") {
            break;
        }
        if head.len() > MAX_HEAD {
            bail!("request head larger than {MAX_HEAD} bytes");
        }
    }
    let head = String::from_utf8(head).context("request head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let (method, path) = (request_line.next(), request_line.next());
    let (Some(method), Some(path)) = (method, path) else {
        bail!("malformed request line");
    };
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut req = Request {
        method: method.to_owned(),
        path: path.to_owned(),
        headers,
        body: Vec::new(),
    };
    if req
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        bail!("chunked request bodies are not supported");
    }
    let len: usize = req
        .header("content-length")
        .map(str::parse)
        .transpose()?
        .unwrap_or(0);
    if len > MAX_BODY {
        bail!("request body of {len} bytes is too large");
    }
    req.body = vec![0; len];
    reader.read_exact(&mut req.body).await?;
    Ok(Some(req))
}

async fn write_response(
    stream: &mut BufReader<TcpStream>,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let mut out = format!("HTTP/1.1 {status} {reason}\r\n");
    for (k, v) in headers {
        let skip = ["content-length", "transfer-encoding", "connection"];
        if !skip.iter().any(|s| k.eq_ignore_ascii_case(s)) {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    out.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let stream = stream.get_mut();
    stream.write_all(out.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await
}

fn error_response(code: &str, message: &str) -> (Vec<(String, String)>, Vec<u8>) {
    let headers = vec![
        (
            "content-type".to_owned(),
            "application/x-amz-json-1.1".to_owned(),
        ),
        ("x-amzn-ErrorType".to_owned(), code.to_owned()),
        ("x-amzn-RequestId".to_owned(), "fault-proxy".to_owned()),
    ];
    let body = json!({"__type": code, "message": message})
        .to_string()
        .into_bytes();
    (headers, body)
}

async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    let mut stream = BufReader::new(stream);
    let mut error_flip = false;
    loop {
        let req = match read_request(&mut stream).await {
            Ok(Some(req)) => req,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(error = %e, "fault proxy: bad request, closing");
                return;
            }
        };
        shared.counters.requests.fetch_add(1, Ordering::Relaxed);
        let operation = req
            .header("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or_default()
            .to_owned();
        shared
            .calls
            .lock()
            .unwrap()
            .push((operation.clone(), Instant::now()));
        let scripted = {
            let mut queue = shared.scripted.lock().unwrap();
            let at = queue.iter().position(|(o, _)| *o == operation);
            at.and_then(|i| queue.remove(i)).map(|(_, error)| error)
        };
        if let Some(error) = scripted {
            let (h, b) = error_response(&error, "scripted by the fault proxy");
            if write_response(&mut stream, 400, &h, &b).await.is_err() {
                return;
            }
            continue;
        }
        let c = &shared.counters;
        let result = match shared.choose_fault(&operation) {
            Some(Fault::Drop) => {
                c.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Some(Fault::Stall(d)) => {
                c.stalled.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(d).await;
                return;
            }
            Some(Fault::Throttle) => {
                c.throttled.fetch_add(1, Ordering::Relaxed);
                let (h, b) = error_response(
                    "ProvisionedThroughputExceededException",
                    "Rate exceeded for stream (injected by fault proxy)",
                );
                write_response(&mut stream, 400, &h, &b).await
            }
            Some(Fault::ServerError) => {
                c.server_errors.fetch_add(1, Ordering::Relaxed);
                error_flip = !error_flip;
                let (status, code) = if error_flip {
                    (500, "InternalFailure")
                } else {
                    (503, "ServiceUnavailable")
                };
                let (h, b) = error_response(code, "injected by fault proxy");
                write_response(&mut stream, status, &h, &b).await
            }
            None => match forward(&shared, &req, &operation).await {
                Ok((status, headers, body)) => {
                    write_response(&mut stream, status, &headers, &body).await
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "fault proxy: upstream failed");
                    let (h, b) = error_response(
                        "InternalFailure",
                        &format!("fault proxy upstream error: {e}"),
                    );
                    write_response(&mut stream, 500, &h, &b).await
                }
            },
        };
        if result.is_err()
            || req
                .header("connection")
                .is_some_and(|v| v.eq_ignore_ascii_case("close"))
        {
            return;
        }
    }
}

type Response = (u16, Vec<(String, String)>, Vec<u8>);

async fn forward(shared: &Shared, req: &Request, operation: &str) -> anyhow::Result<Response> {
    if operation == "PutRecords" {
        let failed = match serde_json::from_slice::<Value>(&req.body) {
            Ok(body) => {
                let n = body["Records"].as_array().map_or(0, Vec::len);
                shared.choose_failed_entries(n)
            }
            Err(_) => Vec::new(),
        };
        if failed.iter().any(|f| *f) {
            return forward_partial(shared, req, &failed).await;
        }
    }
    send_upstream(shared, req, req.body.clone()).await
}

async fn send_upstream(shared: &Shared, req: &Request, body: Vec<u8>) -> anyhow::Result<Response> {
    let method = reqwest::Method::from_bytes(req.method.as_bytes())?;
    let mut builder = shared
        .client
        .request(method, format!("{}{}", shared.upstream, req.path));
    for (k, v) in &req.headers {
        let skip = ["host", "content-length", "connection", "transfer-encoding"];
        if !skip.iter().any(|s| k.eq_ignore_ascii_case(s)) {
            builder = builder.header(k, v);
        }
    }
    let resp = builder.body(body).send().await?;
    shared.counters.forwarded.fetch_add(1, Ordering::Relaxed);
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let body = resp.bytes().await?.to_vec();
    Ok((status, headers, body))
}

/// Forwards PutRecords without the entries chosen to fail, then splices their failures into
/// the response at their original positions.
async fn forward_partial(
    shared: &Shared,
    req: &Request,
    failed: &[bool],
) -> anyhow::Result<Response> {
    let mut body: Value = serde_json::from_slice(&req.body)?;
    let records = body["Records"].as_array().cloned().unwrap_or_default();
    let kept: Vec<Value> = records
        .iter()
        .zip(failed)
        .filter(|(_, f)| !**f)
        .map(|(r, _)| r.clone())
        .collect();
    let injected = failed.iter().filter(|f| **f).count();
    let failure = json!({
        "ErrorCode": "ProvisionedThroughputExceededException",
        "ErrorMessage": "Rate exceeded for shard (injected by fault proxy)",
    });

    let (status, headers, upstream_records, upstream_failed, encryption) = if kept.is_empty() {
        // Nothing to write: answer as Kinesis would for an all-failed call.
        let headers = vec![(
            "content-type".to_owned(),
            "application/x-amz-json-1.1".to_owned(),
        )];
        (200, headers, Vec::new(), 0, Value::Null)
    } else {
        body["Records"] = Value::Array(kept);
        let (status, headers, resp_body) =
            send_upstream(shared, req, serde_json::to_vec(&body)?).await?;
        if status != 200 {
            // Upstream refused the (smaller) call as a whole: pass that on; nothing was written.
            return Ok((status, headers, resp_body));
        }
        let resp: Value =
            serde_json::from_slice(&resp_body).context("PutRecords response is not JSON")?;
        let recs = resp["Records"].as_array().cloned().unwrap_or_default();
        let n_failed = resp["FailedRecordCount"].as_u64().unwrap_or(0);
        (
            status,
            headers,
            recs,
            n_failed,
            resp["EncryptionType"].clone(),
        )
    };
    if upstream_records.len() != failed.len() - injected {
        bail!(
            "upstream answered {} entries for {} forwarded",
            upstream_records.len(),
            failed.len() - injected
        );
    }
    let mut upstream_records = upstream_records.into_iter();
    let merged: Vec<Value> = failed
        .iter()
        .map(|f| {
            if *f {
                failure.clone()
            } else {
                upstream_records.next().expect("counted above")
            }
        })
        .collect();
    shared
        .counters
        .entries_failed
        .fetch_add(injected as u64, Ordering::Relaxed);
    let mut out =
        json!({"FailedRecordCount": upstream_failed + injected as u64, "Records": merged});
    if !encryption.is_null() {
        out["EncryptionType"] = encryption;
    }
    Ok((status, headers, serde_json::to_vec(&out)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An upstream that answers PutRecords with every entry written (sequence number = its
    /// partition key) and remembers which keys it received.
    async fn fake_kinesis() -> (String, Arc<Mutex<Vec<String>>>, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let seen = seen2.clone();
                conns.spawn(async move {
                    let mut stream = BufReader::new(stream);
                    while let Ok(Some(req)) = read_request(&mut stream).await {
                        let body: Value = serde_json::from_slice(&req.body).unwrap();
                        let records: Vec<Value> = body["Records"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|r| {
                                let pk = r["PartitionKey"].as_str().unwrap().to_owned();
                                seen.lock().unwrap().push(pk.clone());
                                json!({"SequenceNumber": pk, "ShardId": "shardId-000000000000"})
                            })
                            .collect();
                        let out = json!({"FailedRecordCount": 0, "Records": records}).to_string();
                        let headers = [(
                            "content-type".to_owned(),
                            "application/x-amz-json-1.1".to_owned(),
                        )];
                        write_response(&mut stream, 200, &headers, out.as_bytes())
                            .await
                            .unwrap();
                    }
                });
            }
        });
        (url, seen, task)
    }

    async fn put_records(proxy: &FaultProxy, n: usize) -> reqwest::Response {
        let records: Vec<Value> = (0..n)
            .map(|i| json!({"PartitionKey": format!("k{i}"), "Data": "eA=="}))
            .collect();
        reqwest::Client::new()
            .post(proxy.url())
            .header("x-amz-target", "Kinesis_20131202.PutRecords")
            .header("content-type", "application/x-amz-json-1.1")
            .body(json!({"StreamName": "s", "Records": records}).to_string())
            .send()
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn partial_failures_are_stripped_and_spliced_back_in_place() {
        let (upstream, seen, _task) = fake_kinesis().await;
        let policy = FaultPolicy {
            seed: 3,
            partial_failure: 0.4,
            ..FaultPolicy::default()
        };
        let proxy = FaultProxy::start(&upstream, policy).await.unwrap();
        let resp: Value = put_records(&proxy, 40).await.json().await.unwrap();
        let records = resp["Records"].as_array().unwrap();
        assert_eq!(records.len(), 40);
        let mut written = Vec::new();
        let mut failed = 0;
        for (i, r) in records.iter().enumerate() {
            match r["ErrorCode"].as_str() {
                Some(code) => {
                    assert_eq!(code, "ProvisionedThroughputExceededException");
                    failed += 1;
                }
                // Successful entries stay at their position.
                None => {
                    assert_eq!(r["SequenceNumber"].as_str().unwrap(), format!("k{i}"));
                    written.push(format!("k{i}"));
                }
            }
        }
        assert!(failed > 0 && failed < 40, "{failed}");
        assert_eq!(resp["FailedRecordCount"].as_u64(), Some(failed));
        assert_eq!(
            *seen.lock().unwrap(),
            written,
            "failed entries must not be written"
        );
        assert_eq!(proxy.stats().entries_failed, failed);
    }

    #[tokio::test]
    async fn throttling_is_bounded_by_max_faults() {
        let (upstream, seen, _task) = fake_kinesis().await;
        let policy = FaultPolicy {
            throttle: 1.0,
            max_faults: 2,
            ..FaultPolicy::default()
        };
        let proxy = FaultProxy::start(&upstream, policy).await.unwrap();
        for _ in 0..2 {
            let resp = put_records(&proxy, 3).await;
            assert_eq!(resp.status().as_u16(), 400);
            assert_eq!(
                resp.headers()["x-amzn-ErrorType"].to_str().unwrap(),
                "ProvisionedThroughputExceededException"
            );
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["__type"], "ProvisionedThroughputExceededException");
        }
        assert!(seen.lock().unwrap().is_empty());
        assert_eq!(put_records(&proxy, 3).await.status().as_u16(), 200);
        assert_eq!(seen.lock().unwrap().len(), 3);
        let stats = proxy.stats();
        assert_eq!(
            (stats.requests, stats.throttled, stats.forwarded),
            (3, 2, 1)
        );
    }

    #[tokio::test]
    async fn refuses_non_loopback_upstreams() {
        assert!(
            FaultProxy::start("http://example.com:4567", FaultPolicy::default())
                .await
                .is_err()
        );
    }
}
