//! The DynamoDB lease table: every write that changes ownership or progress is conditional on
//! the lease counter (and owner) this worker last saw, as in the KCL.
//!
//! Conditional-check failures are answers, not errors: they come back as `Ok(None)`/`Ok(false)`.
//! Other failures are [`Error::LeaseTable`]; the SDK's standard retry is the only retry layer
//! here, callers retry on their next round.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ReturnValue,
    ScalarAttributeType, TableStatus,
};

use super::lease::*;
use super::position::Checkpoint;
use super::sdk_error::{code, dynamodb_error};
use crate::{Error, Result};

const CONDITIONAL_FAILED: &str = "ConditionalCheckFailedException";

#[derive(Clone, Debug)]
pub struct LeaseTable {
    client: Client,
    name: String,
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

impl LeaseTable {
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        Self {
            client,
            name: name.into(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Creates the table (on-demand capacity) if it does not exist and waits until it is ACTIVE.
    pub async fn ensure_exists(&self, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut created = false;
        loop {
            match self
                .client
                .describe_table()
                .table_name(&self.name)
                .send()
                .await
            {
                Ok(out) => {
                    if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                        return Ok(());
                    }
                }
                Err(e) if code(&e) == Some("ResourceNotFoundException") && !created => {
                    let res = self
                        .client
                        .create_table()
                        .table_name(&self.name)
                        .billing_mode(BillingMode::PayPerRequest)
                        .attribute_definitions(
                            AttributeDefinition::builder()
                                .attribute_name(LEASE_KEY)
                                .attribute_type(ScalarAttributeType::S)
                                .build()
                                .expect("complete attribute definition"),
                        )
                        .key_schema(
                            KeySchemaElement::builder()
                                .attribute_name(LEASE_KEY)
                                .key_type(KeyType::Hash)
                                .build()
                                .expect("complete key schema"),
                        )
                        .send()
                        .await;
                    match res {
                        Ok(_) => tracing::info!(table = %self.name, "created lease table"),
                        // Another worker created it first.
                        Err(e) if code(&e) == Some("ResourceInUseException") => {}
                        Err(e) => return Err(dynamodb_error("CreateTable", &e)),
                    }
                    created = true;
                }
                Err(e) if code(&e) == Some("ResourceNotFoundException") => {}
                Err(e) => return Err(dynamodb_error("DescribeTable", &e)),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::LeaseTable {
                    op: "DescribeTable",
                    message: format!("table {} not ACTIVE within {timeout:?}", self.name),
                    retriable: true,
                });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Every lease (consistent scan, all pages).
    pub async fn list(&self) -> Result<Vec<Lease>> {
        let mut leases = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.name)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| dynamodb_error("Scan", &e))?;
            for item in out.items() {
                match Lease::from_item(item) {
                    Ok(l) => leases.push(l),
                    Err(e) => {
                        tracing::warn!(table = %self.name, error = %e, "skipping unreadable lease")
                    }
                }
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(leases),
            }
        }
    }

    pub async fn get(&self, key: &str) -> Result<Option<Lease>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.name)
            .key(LEASE_KEY, s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| dynamodb_error("GetItem", &e))?;
        out.item.as_ref().map(Lease::from_item).transpose()
    }

    /// Writes a new lease unless one with the same key exists. Returns whether it was created.
    pub async fn create_if_absent(&self, lease: &Lease) -> Result<bool> {
        let res = self
            .client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(lease.to_item()))
            .condition_expression("attribute_not_exists(#k)")
            .expression_attribute_names("#k", LEASE_KEY)
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if code(&e) == Some(CONDITIONAL_FAILED) => Ok(false),
            Err(e) => Err(dynamodb_error("PutItem", &e)),
        }
    }

    /// Takes `observed` for `owner` if it is unchanged since it was observed (same counter and
    /// owner). Returns the lease as now stored, or None if someone else changed it first.
    pub async fn take(&self, observed: &Lease, owner: &str) -> Result<Option<Lease>> {
        let switched = observed.owner.as_deref() != Some(owner);
        let mut req = self
            .client
            .update_item()
            .table_name(&self.name)
            .key(LEASE_KEY, s(&observed.key))
            .expression_attribute_names("#o", LEASE_OWNER)
            .expression_attribute_names("#c", LEASE_COUNTER)
            .expression_attribute_names("#sw", OWNER_SWITCHES)
            .expression_attribute_values(":c", n(observed.counter))
            .expression_attribute_values(":me", s(owner))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":sw", n(u64::from(switched)))
            .update_expression(
                "SET #o = :me, #c = #c + :one, #sw = if_not_exists(#sw, :zero) + :sw",
            )
            .expression_attribute_values(":zero", n(0))
            .return_values(ReturnValue::AllNew);
        req = match &observed.owner {
            Some(prev) => req
                .condition_expression("#c = :c AND #o = :prev")
                .expression_attribute_values(":prev", s(prev)),
            None => req.condition_expression("#c = :c AND attribute_not_exists(#o)"),
        };
        match req.send().await {
            Ok(out) => out.attributes.as_ref().map(Lease::from_item).transpose(),
            Err(e) if code(&e) == Some(CONDITIONAL_FAILED) => Ok(None),
            Err(e) => Err(dynamodb_error("UpdateItem(take)", &e)),
        }
    }

    /// Bumps the counter of a lease still held at `counter`. Returns false if it is lost.
    pub async fn renew(&self, key: &str, owner: &str, counter: u64) -> Result<bool> {
        self.owned_update(
            "UpdateItem(renew)",
            key,
            owner,
            counter,
            "SET #c = #c + :one",
            HashMap::new(),
            HashMap::new(),
        )
        .await
    }

    /// Writes a checkpoint (and bumps the counter) on a lease still held at `counter`.
    pub async fn checkpoint(
        &self,
        key: &str,
        owner: &str,
        counter: u64,
        cp: &Checkpoint,
    ) -> Result<bool> {
        self.owned_update(
            "UpdateItem(checkpoint)",
            key,
            owner,
            counter,
            "SET #c = #c + :one, #cp = :cp, #sub = :sub, #sw = :zero",
            HashMap::from([
                ("#cp".to_owned(), CHECKPOINT.to_owned()),
                ("#sub".to_owned(), CHECKPOINT_SUB.to_owned()),
                ("#sw".to_owned(), OWNER_SWITCHES.to_owned()),
            ]),
            HashMap::from([
                (":cp".to_owned(), s(cp.as_attribute())),
                (":sub".to_owned(), n(cp.sub_sequence_number())),
                (":zero".to_owned(), n(0)),
            ]),
        )
        .await
    }

    /// Gives a held lease up (owner removed, counter bumped) so another worker takes it at once.
    pub async fn release(&self, key: &str, owner: &str, counter: u64) -> Result<bool> {
        self.owned_update(
            "UpdateItem(release)",
            key,
            owner,
            counter,
            "SET #c = #c + :one REMOVE #o",
            HashMap::new(),
            HashMap::new(),
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn owned_update(
        &self,
        op: &'static str,
        key: &str,
        owner: &str,
        counter: u64,
        update: &str,
        names: HashMap<String, String>,
        values: HashMap<String, AttributeValue>,
    ) -> Result<bool> {
        let mut all_names = HashMap::from([
            ("#o".to_owned(), LEASE_OWNER.to_owned()),
            ("#c".to_owned(), LEASE_COUNTER.to_owned()),
        ]);
        all_names.extend(names);
        let mut all_values = HashMap::from([
            (":c".to_owned(), n(counter)),
            (":me".to_owned(), s(owner)),
            (":one".to_owned(), n(1)),
        ]);
        all_values.extend(values);
        let res = self
            .client
            .update_item()
            .table_name(&self.name)
            .key(LEASE_KEY, s(key))
            .update_expression(update)
            .condition_expression("#c = :c AND #o = :me")
            .set_expression_attribute_names(Some(all_names))
            .set_expression_attribute_values(Some(all_values))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if code(&e) == Some(CONDITIONAL_FAILED) => Ok(false),
            Err(e) => Err(dynamodb_error(op, &e)),
        }
    }

    pub async fn delete(&self, key: &str) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.name)
            .key(LEASE_KEY, s(key))
            .send()
            .await
            .map_err(|e| dynamodb_error("DeleteItem", &e))?;
        Ok(())
    }
}
