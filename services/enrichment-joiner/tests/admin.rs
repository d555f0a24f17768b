//! The enrichment-joiner serves /health, /ready and /metrics and stops cleanly on SIGTERM.

mod support;

#[tokio::test]
async fn serves_admin_endpoints_and_stops_cleanly_on_sigterm() {
    // Its own streams, bucket (with reference data) and tables: passes on a fresh stack.
    let s = support::setup(support::gen_config(1, 10, 10, 0.0)).await;
    let env: Vec<(&str, &str)> = s
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    flowline_testkit::assert_admin_contract_with(
        support::BIN,
        "enrichment-joiner",
        &s.stack,
        &env,
        &[],
    )
    .await;
}
