//! The aggregator serves /health, /ready and /metrics and stops cleanly on SIGTERM.

#[tokio::test]
async fn serves_admin_endpoints_and_stops_cleanly_on_sigterm() {
    flowline_testkit::assert_admin_contract(env!("CARGO_BIN_EXE_aggregator"), "aggregator").await;
}
