//! Registers the index templates for the configured base names: template `<base>` on
//! `<base>-*` with alias `<base>`. With the default names these are exactly the definitions
//! in `deploy/opensearch/templates/`; other names let several deployments (or tests) share
//! one cluster without their templates overlapping.

use anyhow::Context as _;
use flowline_opensearch::bulk::IndexNames;
use flowline_opensearch::opensearch::OpenSearch;
use flowline_opensearch::templates::{self, IndexTemplate};
use serde_json::json;

use crate::config::Templates;

/// The two templates of DESIGN.md, renamed after `names`.
pub fn for_names(names: &IndexNames, settings: &Templates) -> Vec<IndexTemplate> {
    templates::all(settings.shards, settings.replicas)
        .into_iter()
        .map(|mut t| {
            let base = match t.name {
                "orders" => &names.orders,
                _ => &names.order_metrics,
            };
            if t.name != base {
                // `IndexTemplate::name` is `&'static str`; these two strings are made once
                // at startup. The definition hash needs no update: name, pattern and alias
                // all follow from the template's name.
                t.name = Box::leak(base.clone().into_boxed_str());
                t.body["index_patterns"] = json!([format!("{base}-*")]);
                t.body["template"]["aliases"] = json!({ base.as_str(): {} });
            }
            t
        })
        .collect()
}

/// Registers (or updates) both templates; an error stops the start: indexing into daily
/// indices without them would map documents by guesswork and create no alias.
pub async fn ensure_all(
    client: &OpenSearch,
    url: &str,
    names: &IndexNames,
    settings: &Templates,
) -> anyhow::Result<()> {
    for template in for_names(names, settings) {
        let applied = templates::ensure(client, url, &template)
            .await
            .with_context(|| format!("registering index template {}", template.name))?;
        tracing::info!(template = template.name, %applied, "index template");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_keep_the_design_definitions() {
        let settings = Templates::default();
        assert_eq!(
            for_names(&IndexNames::default(), &settings),
            templates::all(settings.shards, settings.replicas)
        );
    }

    #[test]
    fn custom_names_rename_template_pattern_and_alias() {
        let names = IndexNames {
            orders: "t1-orders".into(),
            order_metrics: "t1-metrics".into(),
        };
        let t = for_names(&names, &Templates::default());
        assert_eq!(t[0].name, "t1-orders");
        assert_eq!(t[0].body["index_patterns"], json!(["t1-orders-*"]));
        assert_eq!(t[0].body["template"]["aliases"], json!({"t1-orders": {}}));
        assert_eq!(t[1].name, "t1-metrics");
        assert_eq!(t[1].body["index_patterns"], json!(["t1-metrics-*"]));
        assert_eq!(t[1].body["template"]["aliases"], json!({"t1-metrics": {}}));
        assert_eq!(
            t[0].body["template"]["mappings"],
            templates::all(1, 1)[0].body["template"]["mappings"]
        );
    }
}
