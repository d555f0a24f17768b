//! Per-record retries of PutRecordBatch against a scripted Firehose endpoint (moto
//! never fails single records): only the failed records are sent again, and a record
//! that keeps failing is acked as failed with its error code.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_firehose::config::{BehaviorVersion, Credentials, Region};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use flowline_lake::{FirehoseConfig, FirehoseDelivery, FirehoseMetrics, RecordAck, RetryConfig};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Records sent per call, in order.
type Calls = Arc<Mutex<Vec<Vec<String>>>>;

/// Fails odd-numbered records (`r1`, `r3`, ...) the first time they are seen, and
/// `poison` always.
async fn serve(listener: TcpListener, calls: Calls) {
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        connections.spawn(connection(stream, calls.clone(), seen.clone()));
    }
}

async fn connection(stream: TcpStream, calls: Calls, seen: Arc<Mutex<HashSet<String>>>) {
    let mut stream = BufReader::new(stream);
    loop {
        let mut len = 0usize;
        loop {
            let mut line = String::new();
            if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; len];
        stream.read_exact(&mut body).await.unwrap();
        let req: Value = serde_json::from_slice(&body).unwrap();
        let records: Vec<String> = req["Records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                String::from_utf8(STANDARD.decode(r["Data"].as_str().unwrap()).unwrap()).unwrap()
            })
            .collect();
        calls.lock().unwrap().push(records.clone());
        let mut failed = 0;
        let responses: Vec<Value> = records
            .iter()
            .map(|r| {
                let n: Option<u32> = r.strip_prefix('r').and_then(|n| n.parse().ok());
                let first_time = seen.lock().unwrap().insert(r.clone());
                if r == "poison" || (n.is_some_and(|n| n % 2 == 1) && first_time) {
                    failed += 1;
                    json!({"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."})
                } else {
                    json!({"RecordId": format!("id-{r}")})
                }
            })
            .collect();
        let out =
            json!({"FailedPutCount": failed, "Encrypted": false, "RequestResponses": responses})
                .to_string();
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\n\r\n",
            out.len()
        );
        let s = stream.get_mut();
        if s.write_all(head.as_bytes()).await.is_err() || s.write_all(out.as_bytes()).await.is_err()
        {
            return;
        }
    }
}

#[tokio::test]
async fn only_failed_records_are_sent_again() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let calls = Calls::default();
    let server = tokio::spawn(serve(listener, calls.clone()));
    let client = aws_sdk_firehose::Client::from_conf(
        aws_sdk_firehose::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .endpoint_url(url)
            .build(),
    );
    let metrics = FirehoseMetrics::new(&prometheus::Registry::new()).unwrap();
    let config = FirehoseConfig {
        delivery_stream: "scripted".into(),
        max_batch_records: 6,
        retry: RetryConfig {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            attempt_timeout: Duration::from_secs(5),
        },
        ..FirehoseConfig::default()
    };
    let delivery = FirehoseDelivery::new(&client, config, metrics.clone());
    let mut records: Vec<Bytes> = (0..6).map(|i| Bytes::from(format!("r{i}"))).collect();
    records.insert(2, Bytes::from_static(b"poison"));
    let acks = delivery.deliver(&records).await.unwrap();

    let calls = calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        [
            vec!["r0", "r1", "poison", "r2", "r3", "r4"],
            vec!["r1", "poison", "r3"],
            vec!["poison"],
            vec!["r5"],
            vec!["r5"],
        ]
    );
    for (i, ack) in acks.iter().enumerate() {
        if i == 2 {
            assert!(
                matches!(ack, RecordAck::Failed { error_code, .. } if error_code == "ServiceUnavailableException"),
                "{ack:?}"
            );
        } else {
            let name = String::from_utf8(records[i].to_vec()).unwrap();
            assert_eq!(
                ack,
                &RecordAck::Delivered {
                    record_id: format!("id-{name}")
                }
            );
        }
    }
    assert_eq!(metrics.records_delivered.get(), 6);
    assert_eq!(metrics.records_failed.get(), 1);
    assert_eq!(
        metrics.record_retries.get(),
        5,
        "3, then the poison once more, then r5"
    );
    server.abort();
}
