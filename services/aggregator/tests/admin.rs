//! The aggregator serves /health, /ready and /metrics and stops cleanly on SIGTERM.

mod common;

#[tokio::test]
async fn serves_admin_endpoints_and_stops_cleanly_on_sigterm() {
    let env = common::Env::new(1, "").await;
    let path = env.config.path().to_str().unwrap().to_owned();
    flowline_testkit::assert_admin_contract_with(
        common::BIN,
        "aggregator",
        &env.stack,
        &[],
        &["--config", &path],
    )
    .await;
}
