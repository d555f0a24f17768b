//! Wiring: templates first, then the outputs (bulk sink, dead letters), then the consumer;
//! on shutdown the consumer lets each shard checkpoint what is settled, then the outputs
//! flush.

use std::sync::Arc;
use std::time::Duration;

use flowline_aws::AwsClients;
use flowline_kinesis::consumer::Consumer;
use flowline_kinesis::producer::ProducerMetrics;
use flowline_opensearch::OpenSearchError;
use flowline_opensearch::bulk::{BulkMetrics, BulkSink, OpenSearchBulkApi};
use flowline_opensearch::opensearch::OpenSearch;
use flowline_pipeline::{DeadLetterMetrics, DeadLetters};
use flowline_runtime::Context;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::processor::{Factory, STAGE, Shared};
use crate::templates;

/// Registers the index templates, waiting for OpenSearch to answer (it may start after the
/// indexer). `None` when shut down meanwhile. A refused definition is an error.
pub async fn register_templates(
    ctx: &Context<Config>,
    client: &OpenSearch,
) -> anyhow::Result<Option<()>> {
    let c = &ctx.config;
    let shutdown = ctx.shutdown_token();
    let mut delay = Duration::from_millis(200);
    loop {
        match templates::ensure_all(client, &c.opensearch.url, &c.indices, &c.templates).await {
            Ok(()) => return Ok(Some(())),
            Err(e) if is_unreachable(&e) => {
                tracing::warn!(error = %format!("{e:#}"), retry_in = ?delay, "OpenSearch not reachable; waiting to register templates");
            }
            Err(e) => return Err(e),
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.cancelled() => return Ok(None),
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// A connection failure or a 5xx is worth waiting out; a 4xx on a template is a bad
/// definition or missing permissions, which waiting does not fix. `templates::ensure` reports
/// both as `OpenSearchError::Request`, statuses only in the message.
fn is_unreachable(e: &anyhow::Error) -> bool {
    match e.downcast_ref::<OpenSearchError>() {
        Some(OpenSearchError::Request { message, .. }) => !message.contains(" answered 4"),
        _ => false,
    }
}

pub struct Outputs {
    sink: BulkSink,
    dead_letters: Arc<DeadLetters>,
}

impl Outputs {
    pub async fn start(
        ctx: &Context<Config>,
        aws: &AwsClients,
        client: OpenSearch,
    ) -> anyhow::Result<Self> {
        let c = &ctx.config;
        let registry = ctx.registry();
        let sink = BulkSink::start(
            Arc::new(OpenSearchBulkApi::new(client, None)),
            c.bulk.clone(),
            BulkMetrics::register(registry)?,
        )?;
        let dead_letters = DeadLetters::new(
            &aws.kinesis,
            &c.dead_letters.stream,
            c.kinesis.clone(),
            &ProducerMetrics::register(registry)?,
            DeadLetterMetrics::register(registry)?,
            STAGE,
        )
        .await?;
        Ok(Self {
            sink,
            dead_letters: Arc::new(dead_letters),
        })
    }

    pub fn processor_shared(&self, ctx: &Context<Config>) -> anyhow::Result<Shared> {
        let c = &ctx.config;
        let fail_ctx = ctx.clone();
        Ok(Shared {
            sink: self.sink.clone(),
            dead_letters: self.dead_letters.clone(),
            names: c.indices.clone(),
            parse: c.parse.clone(),
            orders_stream: c.input.orders.clone(),
            metrics_stream: c.input.metrics.clone(),
            metrics: Metrics::register(ctx.registry())?,
            max_pending_batches: c.checkpoints.max_pending_batches,
            fail: Arc::new(move |e| fail_ctx.fail("indexing", e)),
        })
    }

    /// Flushes what is queued; bounded by the drain timeout (anything unsettled was not
    /// checkpointed and is read again after a restart).
    pub async fn close(self, ctx: &Context<Config>) -> anyhow::Result<()> {
        let timeout = ctx.runtime.shutdown.drain_timeout;
        if tokio::time::timeout(timeout, self.sink.close())
            .await
            .is_err()
        {
            tracing::warn!(
                buffered = self.sink.buffered(),
                "bulk sink not drained in time"
            );
        }
        match tokio::time::timeout(timeout, self.dead_letters.shutdown()).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!("dead-letter producer not drained in time");
                Ok(())
            }
        }
    }
}

pub async fn consume(
    ctx: &Context<Config>,
    aws: &AwsClients,
    shared: Arc<Shared>,
) -> anyhow::Result<()> {
    let consumer = Consumer::new(
        ctx.config.consumer(),
        aws.kinesis.clone(),
        aws.dynamodb.clone(),
        Arc::new(Factory(shared)),
        ctx.registry(),
    )?;
    flowline_pipeline::watch_consumer(ctx, consumer.status());
    consumer.run(ctx.shutdown_token()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(message: &str) -> anyhow::Error {
        anyhow::Error::new(OpenSearchError::Request {
            url: "http://os".into(),
            message: message.into(),
        })
        .context("registering index template orders")
    }

    #[test]
    fn only_connection_failures_and_server_errors_are_waited_out() {
        assert!(is_unreachable(&request(
            "error sending request: connection refused"
        )));
        assert!(is_unreachable(&request(
            "GET _index_template/orders answered 503"
        )));
        assert!(!is_unreachable(&request(
            "PUT _index_template/orders answered 400 Bad Request: mapper_parsing_exception"
        )));
        assert!(!is_unreachable(&anyhow::anyhow!("something else")));
    }
}
