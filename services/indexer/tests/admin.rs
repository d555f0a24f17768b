//! The indexer serves /health, /ready and /metrics and stops cleanly on SIGTERM.

mod common;

#[tokio::test]
async fn serves_admin_endpoints_and_stops_cleanly_on_sigterm() {
    let s = common::Setup::new().await;
    let env = s.env(&flowline_testkit::unique_name("indexer-admin"));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    flowline_testkit::assert_admin_contract_with(
        env!("CARGO_BIN_EXE_indexer"),
        "indexer",
        &s.stack,
        &env,
        &[],
    )
    .await;
}
