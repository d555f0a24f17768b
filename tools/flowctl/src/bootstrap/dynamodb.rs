use std::time::Duration;

use anyhow::{Context as _, bail};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
};
use aws_smithy_types::error::display::DisplayErrorContext;
use flowline_aws::AwsClients;

use super::Outcome;

#[derive(Debug, Clone, Copy)]
pub enum Schema {
    /// KCL lease table: hash key `leaseKey`.
    Leases,
    /// Service state: hash key `pk`, range key `sk` (entity versions by time, windows...).
    State,
}

fn key(name: &str, kind: KeyType) -> anyhow::Result<(AttributeDefinition, KeySchemaElement)> {
    Ok((
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()?,
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()?,
    ))
}

/// Creates the table (on-demand billing) unless it exists, then waits until ACTIVE.
pub async fn ensure_table(
    aws: &AwsClients,
    name: &str,
    schema: Schema,
    wait: Duration,
) -> anyhow::Result<Outcome> {
    let keys = match schema {
        Schema::Leases => vec![key("leaseKey", KeyType::Hash)?],
        Schema::State => vec![key("pk", KeyType::Hash)?, key("sk", KeyType::Range)?],
    };
    let (defs, schema): (Vec<_>, Vec<_>) = keys.into_iter().unzip();
    let outcome = match aws
        .dynamodb
        .create_table()
        .table_name(name)
        .set_attribute_definitions(Some(defs))
        .set_key_schema(Some(schema))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
    {
        Ok(_) => Outcome::Created,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) =>
        {
            Outcome::Exists
        }
        Err(e) => bail!("creating table {name}: {}", DisplayErrorContext(e)),
    };
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let table = aws
            .dynamodb
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", DisplayErrorContext(e)))
            .with_context(|| format!("describing table {name}"))?;
        let status = table.table().and_then(|t| t.table_status().cloned());
        if status == Some(TableStatus::Active) {
            return Ok(outcome);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("table {name} is not ACTIVE after {wait:?} (status {status:?})");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
