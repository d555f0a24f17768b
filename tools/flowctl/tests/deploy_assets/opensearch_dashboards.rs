//! deploy/opensearch-dashboards: saved objects and the import script.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

use crate::fake_http::FakeHttp;
use crate::support::{array_at, output_of, read, repo, run_ok, str_at};

/// Fields of the enriched order and the window metric (DESIGN.md section 3).
pub(crate) const ORDER_FIELDS: &[&str] = &[
    "order_id",
    "event_time",
    "customer_id",
    "customer_segment",
    "email_sha256",
    "address_id",
    "city",
    "state",
    "postcode",
    "country",
    "location",
    "item_id",
    "item_name",
    "category",
    "brand",
    "promo_id",
    "discount_pct",
    "quantity",
    "unit_price",
    "gross_amount",
    "discount_amount",
    "net_amount",
    "join_status",
    "missing",
    "enriched_at",
];
pub(crate) const METRIC_FIELDS: &[&str] = &[
    "id",
    "window_start",
    "window_end",
    "dimension",
    "key",
    "orders",
    "units",
    "gross_amount",
    "net_amount",
    "avg_order_value",
    "distinct_customers",
    "revision",
];

pub(crate) fn saved_objects() -> Vec<Value> {
    read("deploy/opensearch-dashboards/flowline.ndjson")
        .lines()
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).unwrap_or_else(|e| panic!("line {}: {e}", i + 1)))
        .collect()
}

/// Fields a visualisation's aggregations and query name.
pub(crate) fn fields_used(vis: &Value) -> BTreeSet<String> {
    let state: Value = serde_json::from_str(str_at(vis, "/attributes/visState")).expect("visState");
    let mut fields: BTreeSet<String> = array_at(&state, "/aggs")
        .iter()
        .filter_map(|a| a["params"]["field"].as_str().map(str::to_string))
        .collect();
    let source: Value = serde_json::from_str(str_at(
        vis,
        "/attributes/kibanaSavedObjectMeta/searchSourceJSON",
    ))
    .expect("searchSourceJSON");
    let query = str_at(&source, "/query/query");
    // KQL `field:value` terms.
    for term in query.split_whitespace() {
        if let Some((field, _)) = term.split_once(':') {
            fields.insert(field.to_string());
        }
    }
    fields
}

#[test]
pub(crate) fn saved_objects_cover_the_aliases_with_design_fields_only() {
    let objects = saved_objects();
    let by_id: BTreeMap<&str, &Value> = objects.iter().map(|o| (str_at(o, "/id"), o)).collect();
    assert_eq!(by_id.len(), objects.len(), "duplicate ids");

    let patterns: BTreeMap<&str, (&str, &[&str], &str)> = BTreeMap::from([
        (
            "orders",
            (
                "event_time",
                ORDER_FIELDS,
                "deploy/opensearch/templates/orders.json",
            ),
        ),
        (
            "order-metrics",
            (
                "window_start",
                METRIC_FIELDS,
                "deploy/opensearch/templates/order-metrics.json",
            ),
        ),
    ]);
    let mut fields_of: BTreeMap<&str, &[&str]> = BTreeMap::new();
    for o in objects.iter().filter(|o| o["type"] == "index-pattern") {
        let title = str_at(o, "/attributes/title");
        let (time_field, design, template) = patterns
            .get(title)
            .unwrap_or_else(|| panic!("index pattern {title} is not an alias of the design"));
        assert_eq!(str_at(o, "/attributes/timeFieldName"), *time_field);
        // The cached field list matches the index template's mapping.
        let template: Value = serde_json::from_str(&read(template)).expect("template");
        let mapping = template["template"]["mappings"]["properties"]
            .as_object()
            .expect("mapping");
        let fields: Vec<Value> =
            serde_json::from_str(str_at(o, "/attributes/fields")).expect("fields");
        for f in &fields {
            let name = str_at(f, "/name");
            if !name.starts_with('_') {
                assert!(
                    mapping.contains_key(name),
                    "{title}: field {name} not in the template"
                );
                assert_eq!(
                    f["esTypes"][0], mapping[name]["type"],
                    "{title}: type of {name}"
                );
            }
        }
        fields_of.insert(str_at(o, "/id"), design);
    }
    assert_eq!(
        fields_of.len(),
        2,
        "index patterns for orders and order-metrics"
    );

    let visualizations: Vec<&Value> = objects
        .iter()
        .filter(|o| o["type"] == "visualization")
        .collect();
    let titles: BTreeSet<&str> = visualizations
        .iter()
        .map(|v| str_at(v, "/attributes/title"))
        .collect();
    for want in [
        "Revenue per minute",
        "Orders by state",
        "Top categories by net revenue",
    ] {
        assert!(titles.contains(want), "no visualisation {want}");
    }
    for vis in &visualizations {
        let title = str_at(vis, "/attributes/title");
        let pattern = array_at(vis, "/references")
            .iter()
            .find(|r| r["type"] == "index-pattern")
            .map(|r| str_at(r, "/id"))
            .unwrap_or_else(|| panic!("{title}: no index pattern"));
        let design = fields_of
            .get(pattern)
            .unwrap_or_else(|| panic!("{title}: unknown index pattern {pattern}"));
        for field in fields_used(vis) {
            assert!(
                design.contains(&field.as_str()),
                "{title}: field {field} is not in the design's document"
            );
        }
    }

    let dashboard = objects
        .iter()
        .find(|o| o["type"] == "dashboard")
        .expect("a dashboard");
    let panels: Vec<Value> =
        serde_json::from_str(str_at(dashboard, "/attributes/panelsJSON")).expect("panelsJSON");
    let refs = array_at(dashboard, "/references");
    assert_eq!(
        panels.len(),
        visualizations.len(),
        "every visualisation is on the dashboard"
    );
    for panel in &panels {
        let name = str_at(panel, "/panelRefName");
        let r = refs
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("panel {name} has no reference"));
        assert!(
            by_id.contains_key(str_at(r, "/id")),
            "panel {name} names a missing object"
        );
    }
}

#[test]
pub(crate) fn import_script_posts_the_saved_objects_and_reports_failures() {
    let ndjson = read("deploy/opensearch-dashboards/flowline.ndjson");
    let ids: Vec<String> = saved_objects()
        .iter()
        .map(|o| str_at(o, "/id").to_string())
        .collect();
    let dashboards = FakeHttp::start(|req, _| match (req.method.as_str(), req.target.as_str()) {
        ("GET", "/_dashboards/api/status") => (200, "{}".into()),
        ("POST", "/_dashboards/api/saved_objects/_import?overwrite=true") => (
            200,
            r#"{"success":true,"successCount":6,"successResults":[]}"#.into(),
        ),
        _ => (404, "{}".into()),
    });
    let script = repo().join("deploy/opensearch-dashboards/import.sh");
    let out = run_ok(
        Command::new("sh")
            .arg(&script)
            .env(
                "DASHBOARDS_URL",
                format!("{}/_dashboards/", dashboards.url()),
            )
            .env("DASHBOARDS_USERNAME", "flowline-admin")
            .env("DASHBOARDS_PASSWORD", "s3cret"),
    );
    assert!(out.contains("6 saved objects imported"), "{out}");
    let requests = dashboards.requests();
    let post = requests
        .iter()
        .find(|r| r.method == "POST")
        .expect("an import request");
    assert_eq!(post.header("osd-xsrf"), Some("true"));
    // base64("flowline-admin:s3cret")
    assert_eq!(
        post.header("authorization"),
        Some("Basic Zmxvd2xpbmUtYWRtaW46czNjcmV0")
    );
    assert!(
        post.header("content-type")
            .is_some_and(|c| c.starts_with("multipart/form-data"))
    );
    let body = String::from_utf8_lossy(&post.body);
    assert!(
        body.contains(ndjson.trim_end()),
        "the NDJSON file is sent whole"
    );
    for id in ids {
        assert!(body.contains(&id));
    }

    let refusing = FakeHttp::start(|req, _| match req.method.as_str() {
        "GET" => (200, "{}".into()),
        _ => (
            200,
            r#"{"success":false,"errors":[{"id":"x","error":{"type":"conflict"}}]}"#.into(),
        ),
    });
    let out = output_of(
        Command::new("sh")
            .arg(&script)
            .env("DASHBOARDS_URL", refusing.url()),
    );
    assert!(!out.status.success(), "a refused import fails the script");
    assert!(String::from_utf8_lossy(&out.stderr).contains("conflict"));
}
