//! The archiver serves /health, /ready and /metrics and stops cleanly on SIGTERM.

mod common;

#[tokio::test]
async fn serves_admin_endpoints_and_stops_cleanly_on_sigterm() {
    let lake = common::Lake::new(&["sales"], 1, "", "").await;
    let config = lake.config_path();
    flowline_testkit::assert_admin_contract_with(
        env!("CARGO_BIN_EXE_archiver"),
        "archiver",
        &lake.stack,
        &[],
        &["--config", &config],
    )
    .await;
}
