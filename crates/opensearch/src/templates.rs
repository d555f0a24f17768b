//! The composable index templates of DESIGN.md. Their definitions are the JSON files in
//! `deploy/opensearch/templates/`, which operators can read; this module only adjusts the
//! shard and replica counts and registers them idempotently.

use opensearch::OpenSearch;
use opensearch::indices::{IndicesGetIndexTemplateParts, IndicesPutIndexTemplateParts};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::OpenSearchError;

const ORDERS: &str = include_str!("../../../deploy/opensearch/templates/orders.json");
const ORDER_METRICS: &str = include_str!("../../../deploy/opensearch/templates/order-metrics.json");

/// Where the definition's hash is kept, so "is it up to date?" does not depend on how the
/// server normalises the template it returns.
const HASH_KEY: &str = "flowline_definition_sha256";

#[derive(Debug, Clone, PartialEq)]
pub struct IndexTemplate {
    pub name: &'static str,
    pub body: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Created,
    Updated,
    Unchanged,
}

impl std::fmt::Display for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Applied::Created => "created",
            Applied::Updated => "updated",
            Applied::Unchanged => "unchanged",
        })
    }
}

/// Both templates, with the given primary shard and replica counts.
pub fn all(shards: u32, replicas: u32) -> Vec<IndexTemplate> {
    [("orders", ORDERS), ("order-metrics", ORDER_METRICS)]
        .into_iter()
        .map(|(name, text)| {
            // The files are part of this crate's source and checked by its tests.
            let mut body: Value = serde_json::from_str(text).expect("template file is valid JSON");
            let settings = &mut body["template"]["settings"];
            settings["number_of_shards"] = shards.into();
            settings["number_of_replicas"] = replicas.into();
            let hash = hex::encode(Sha256::digest(body.to_string().as_bytes()));
            body["_meta"][HASH_KEY] = hash.into();
            IndexTemplate { name, body }
        })
        .collect()
}

/// Registers `template` unless the cluster already has this exact definition.
pub async fn ensure(
    client: &OpenSearch,
    url: &str,
    template: &IndexTemplate,
) -> Result<Applied, OpenSearchError> {
    let err = |message: String| OpenSearchError::Request {
        url: url.to_string(),
        message,
    };
    let response = client
        .indices()
        .get_index_template(IndicesGetIndexTemplateParts::Name(&[template.name]))
        .send()
        .await
        .map_err(|e| err(e.to_string()))?;
    let existing = match response.status_code().as_u16() {
        404 => None,
        s if (200..300).contains(&s) => {
            let v: Value = response.json().await.map_err(|e| err(e.to_string()))?;
            v["index_templates"][0]["index_template"]["_meta"][HASH_KEY]
                .as_str()
                .map(str::to_string)
                .or(Some(String::new()))
        }
        s => {
            return Err(err(format!(
                "GET _index_template/{} answered {s}",
                template.name
            )));
        }
    };
    let wanted = template.body["_meta"][HASH_KEY]
        .as_str()
        .unwrap_or_default();
    if existing.as_deref() == Some(wanted) {
        return Ok(Applied::Unchanged);
    }
    let response = client
        .indices()
        .put_index_template(IndicesPutIndexTemplateParts::Name(template.name))
        .body(template.body.clone())
        .send()
        .await
        .map_err(|e| err(e.to_string()))?;
    let status = response.status_code();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        return Err(err(format!(
            "PUT _index_template/{} answered {status}: {text}",
            template.name
        )));
    }
    Ok(if existing.is_some() {
        Applied::Updated
    } else {
        Applied::Created
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_the_design_names_and_carry_counts_and_hash() {
        let t = all(3, 0);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].name, "orders");
        assert_eq!(t[0].body["index_patterns"][0], "orders-*");
        assert_eq!(
            t[0].body["template"]["aliases"]["orders"],
            serde_json::json!({})
        );
        assert_eq!(t[1].name, "order-metrics");
        assert_eq!(t[1].body["index_patterns"][0], "order-metrics-*");
        for tmpl in &t {
            assert_eq!(tmpl.body["template"]["settings"]["number_of_shards"], 3);
            assert_eq!(tmpl.body["template"]["settings"]["number_of_replicas"], 0);
            assert_eq!(tmpl.body["template"]["mappings"]["dynamic"], "strict");
            assert_eq!(
                tmpl.body["_meta"][HASH_KEY].as_str().map(str::len),
                Some(64)
            );
        }
        assert_ne!(
            all(1, 1)[0].body["_meta"][HASH_KEY],
            t[0].body["_meta"][HASH_KEY]
        );
    }

    #[test]
    fn orders_mapping_types_follow_the_design() {
        let orders = &all(1, 1)[0].body["template"]["mappings"]["properties"];
        assert_eq!(orders["location"]["type"], "geo_point");
        assert_eq!(orders["event_time"]["type"], "date");
        assert_eq!(orders["order_id"]["type"], "keyword");
        assert_eq!(orders["quantity"]["type"], "integer");
    }
}
