//! The second figure: the same orders through Kinesis, as the service runs. They are put on
//! a fresh stream first (a backlog); then the service's consumer (leases in DynamoDB,
//! GetRecords polling, checkpoints in the lease table) drives the indexer's processors
//! until every order is indexed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use flowline_aws::AwsClients;
use flowline_kinesis::consumer::Consumer;
use flowline_kinesis::producer::{Producer, ProducerConfig, ProducerMetrics, Record};
use flowline_opensearch::bulk::IndexNames;
use flowline_opensearch::opensearch::indices::IndicesRefreshParts;
use flowline_opensearch::opensearch::{CountParts, OpenSearch};
use flowline_testkit::create_stream;
use indexer::config::Config;
use indexer::processor::Factory;
use tokio_util::sync::CancellationToken;

use crate::indexer_path::Wiring;

pub struct Figures {
    /// From the consumer's start until every order is indexed.
    pub total: f64,
    /// From the first record handed to a processor (lease taking and the first read
    /// left out).
    pub reading: f64,
    /// Orders indexed more than once (records Kinesis delivered twice).
    pub redelivered: u64,
}

#[allow(clippy::too_many_arguments)]
pub async fn run(
    client: &OpenSearch,
    aws: &AwsClients,
    dead_letter_stream: &str,
    names: IndexNames,
    orders: &[Bytes],
    stream: &str,
    shards: i32,
    limit: Duration,
) -> Figures {
    create_stream(&aws.kinesis, stream, shards)
        .await
        .expect("input stream");
    let producer = Producer::new(
        &aws.kinesis,
        stream,
        ProducerConfig::default(),
        &ProducerMetrics::unregistered(),
    )
    .await
    .expect("producer");
    let acks = producer
        .send_all(
            orders
                .iter()
                .enumerate()
                .map(|(i, data)| Record::new(i.to_string(), data.clone())),
        )
        .await
        .expect("records queued");
    acks.await.expect("records acknowledged");
    producer.shutdown().await.expect("producer shut down");

    let mut config = Config::default();
    config.input.orders = stream.to_owned();
    config.input.metrics = String::new();
    config.consumer.application_name = format!("{stream}-indexer");
    let pattern = format!("{}-*", names.orders);
    let wiring = Wiring::new(client, &aws.kinesis, dead_letter_stream, names, &config).await;
    let consumer_config = config.consumer();
    let lease_table = consumer_config.lease_table_name();
    let consumer = Consumer::new(
        consumer_config,
        aws.kinesis.clone(),
        aws.dynamodb.clone(),
        Arc::new(Factory(wiring.shared.clone())),
        &prometheus::Registry::new(),
    )
    .expect("consumer");
    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let consumer = tokio::spawn(consumer.run(shutdown.clone()));
    let queued = wiring
        .shared
        .metrics
        .records
        .with_label_values(&["orders", "queued"]);
    let n = orders.len() as u64;
    let mut first = None;
    while wiring.indexed() < n && started.elapsed() < limit {
        if first.is_none() && queued.get() > 0 {
            first = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Kinesis delivers at least once (a producer retry after a timeout writes a record
    // twice): acknowledgements may reach `n` before every distinct order is in. The index
    // decides (one document per order id).
    let mut distinct = 0;
    while started.elapsed() < limit {
        distinct = count(client, &pattern).await;
        if distinct >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let figures = Figures {
        total: started.elapsed().as_secs_f64(),
        reading: first.map_or(f64::NAN, |t| t.elapsed().as_secs_f64()),
        redelivered: wiring.indexed().saturating_sub(n),
    };
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(30), consumer).await;
    wiring.close().await;
    let _ = aws.kinesis.delete_stream().stream_name(stream).send().await;
    let _ = aws
        .dynamodb
        .delete_table()
        .table_name(lease_table)
        .send()
        .await;
    assert_eq!(distinct, n, "orders indexed within {limit:?}");
    figures
}

/// Documents under `pattern`, searchable now.
async fn count(client: &OpenSearch, pattern: &str) -> u64 {
    client
        .indices()
        .refresh(IndicesRefreshParts::Index(&[pattern]))
        .send()
        .await
        .expect("refresh");
    let counted: serde_json::Value = client
        .count(CountParts::Index(&[pattern]))
        .send()
        .await
        .expect("count")
        .json()
        .await
        .expect("count body");
    counted["count"].as_u64().unwrap_or(0)
}
