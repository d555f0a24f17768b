//! The zero-downtime swap: once the rebuild has finished and OpenSearch holds exactly the
//! documents it produced, the aliases `orders` and `order-metrics` move from whatever
//! indices they name to the new set in ONE `_aliases` request (all remove and add actions
//! together, applied atomically), so a search through an alias sees the old set or the new
//! one, never neither and never both. Old indices stay until `--delete-old <N>`.

use anyhow::{Context as _, bail};
use flowline_opensearch::OpenSearchSettings;
use flowline_opensearch::opensearch::cat::CatIndicesParts;
use flowline_opensearch::opensearch::indices::{
    IndicesDeleteIndexTemplateParts, IndicesDeleteParts, IndicesGetAliasParts, IndicesRefreshParts,
};
use flowline_opensearch::opensearch::{CountParts, OpenSearch};
use serde_json::{Value, json};

use super::args::Args;
use super::output::ensure_rebuild_templates;
use super::summary::Summary;

/// The alias (and index base) names, with `--index-prefix`.
fn families(prefix: &str) -> [String; 2] {
    [format!("{prefix}orders"), format!("{prefix}order-metrics")]
}

/// Index pattern of a family in index set `version`.
fn pattern(family: &str, version: u32) -> String {
    format!("{family}-v{version}-*")
}

/// Whether `index` belongs to `family` in set `version` (1 = `orders-YYYY.MM.DD`).
fn in_set(index: &str, family: &str, version: u32) -> bool {
    let Some(rest) = index.strip_prefix(family).and_then(|r| r.strip_prefix('-')) else {
        return false;
    };
    if version == 1 {
        rest.starts_with(|c: char| c.is_ascii_digit())
    } else {
        rest.strip_prefix(&format!("v{version}-"))
            .is_some_and(|d| d.starts_with(|c: char| c.is_ascii_digit()))
    }
}

async fn json_of(
    r: Result<
        flowline_opensearch::opensearch::http::response::Response,
        flowline_opensearch::opensearch::Error,
    >,
    what: &str,
) -> anyhow::Result<Option<Value>> {
    let r = r.with_context(|| what.to_string())?;
    let status = r.status_code();
    if status.as_u16() == 404 {
        return Ok(None);
    }
    if !status.is_success() {
        let text = r.text().await.unwrap_or_default();
        bail!("{what} answered {status}: {text}");
    }
    Ok(Some(r.json().await.with_context(|| what.to_string())?))
}

/// Names of the indices matching `pattern`.
async fn indices(client: &OpenSearch, pattern: &str) -> anyhow::Result<Vec<String>> {
    let r = client
        .cat()
        .indices(CatIndicesParts::Index(&[pattern]))
        .format("json")
        .send()
        .await;
    let v = json_of(r, &format!("GET _cat/indices/{pattern}")).await?;
    let mut names: Vec<String> = v
        .as_ref()
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| i["index"].as_str().map(str::to_string))
        .collect();
    names.sort();
    Ok(names)
}

/// The indices each alias currently names.
async fn alias_holders(client: &OpenSearch, alias: &str) -> anyhow::Result<Vec<String>> {
    let r = client
        .indices()
        .get_alias(IndicesGetAliasParts::Name(&[alias]))
        .send()
        .await;
    let v = json_of(r, &format!("GET _alias/{alias}")).await?;
    let mut names: Vec<String> = v
        .as_ref()
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    names.sort();
    Ok(names)
}

async fn count(client: &OpenSearch, pattern: &str) -> anyhow::Result<u64> {
    let r = client.count(CountParts::Index(&[pattern])).send().await;
    let v = json_of(r, &format!("GET {pattern}/_count")).await?;
    Ok(v.and_then(|v| v["count"].as_u64()).unwrap_or(0))
}

/// Checks the new set's document counts against what the rebuild produced, then swaps.
pub async fn check_and_swap(
    args: &Args,
    version: u32,
    summary: &Summary,
    swap: bool,
) -> anyhow::Result<()> {
    let client = flowline_opensearch::build_client(&args.opensearch_settings())?;
    let families = families(&args.index_prefix);
    let patterns: Vec<String> = families.iter().map(|f| pattern(f, version)).collect();
    let refs: Vec<&str> = patterns.iter().map(String::as_str).collect();
    let r = client
        .indices()
        .refresh(IndicesRefreshParts::Index(&refs))
        .allow_no_indices(true)
        .send()
        .await;
    json_of(r, "refreshing the new indices").await?;

    let w = &summary.written;
    let expected = [w.distinct_orders, summary.counts.distinct_metrics];
    let mut problems = Vec::new();
    if w.rejected > 0 {
        problems.push(format!("{} documents were rejected", w.rejected));
    }
    for (p, want) in patterns.iter().zip(expected) {
        let got = count(&client, p).await?;
        println!("  check:   {p}: {got} documents, {want} produced");
        if got != want {
            problems.push(format!(
                "{p} holds {got} documents, the rebuild produced {want}"
            ));
        }
    }
    if !problems.is_empty() {
        bail!(
            "counts do not check out, aliases left alone: {}",
            problems.join("; ")
        );
    }
    if !swap {
        println!("  aliases: left alone (--no-swap)");
        return Ok(());
    }
    if w.distinct_orders == 0 {
        bail!("the rebuild produced no orders: nothing to move the aliases to");
    }

    let mut actions = Vec::new();
    for (family, p) in families.iter().zip(&patterns) {
        let new = indices(&client, p).await?;
        for old in alias_holders(&client, family).await? {
            if !new.contains(&old) {
                actions.push(json!({"remove": {"index": old, "alias": family}}));
            }
        }
        for index in new {
            actions.push(json!({"add": {"index": index, "alias": family}}));
        }
    }
    let r = client
        .indices()
        .update_aliases()
        .body(json!({ "actions": actions }))
        .send()
        .await;
    json_of(r, "POST _aliases").await?;
    // Indices created later in this set (an indexer writing to orders-v<N>) join the alias.
    ensure_rebuild_templates(
        &client,
        &args.index_prefix,
        version,
        args.index_shards,
        args.index_replicas,
        true,
    )
    .await?;
    println!(
        "  aliases: orders and order-metrics now name index set v{version} ({} actions in one request)",
        actions.len()
    );
    Ok(())
}

/// Deletes index set `version` and its rebuild templates, unless an alias points into it.
pub async fn delete_old(
    settings: &OpenSearchSettings,
    prefix: &str,
    version: u32,
) -> anyhow::Result<()> {
    let client = flowline_opensearch::build_client(settings)?;
    let mut doomed = Vec::new();
    let families = families(prefix);
    for family in &families {
        let held = alias_holders(&client, family).await?;
        for index in indices(&client, &format!("{family}-*")).await? {
            if !in_set(&index, family, version) {
                continue;
            }
            if held.contains(&index) {
                bail!(
                    "{index} is behind the alias {family}: swap to another index set before deleting set {version}"
                );
            }
            doomed.push(index);
        }
    }
    for chunk in doomed.chunks(50) {
        let names: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let r = client
            .indices()
            .delete(IndicesDeleteParts::Index(&names))
            .send()
            .await;
        json_of(r, "deleting indices").await?;
    }
    for family in &families {
        let name = super::output::template_name(family, version);
        let r = client
            .indices()
            .delete_index_template(IndicesDeleteIndexTemplateParts::Name(&name))
            .send()
            .await;
        json_of(r, &format!("DELETE _index_template/{name}")).await?;
    }
    println!("deleted {} indices of index set v{version}", doomed.len());
    for d in &doomed {
        println!("  {d}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_sets_are_told_apart() {
        assert!(in_set("orders-2026.01.01", "orders", 1));
        assert!(!in_set("orders-v2-2026.01.01", "orders", 1));
        assert!(in_set("orders-v2-2026.01.01", "orders", 2));
        assert!(!in_set("orders-v21-2026.01.01", "orders", 2));
        assert!(!in_set("order-metrics-2026.01.01", "orders", 1));
        assert!(in_set("order-metrics-v3-2026.01.01", "order-metrics", 3));
    }
}
