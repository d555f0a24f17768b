//! The producer serves /health, /ready and /metrics while it produces, and stops cleanly
//! on SIGTERM.

use flowline_model::StreamKind;
use flowline_testkit::{Stack, create_bucket, create_stream, unique_name};

#[tokio::test]
async fn serves_admin_endpoints_and_stops_cleanly_on_sigterm() {
    let stack = Stack::start().await;
    let aws = stack.aws_clients().await;
    let mut env = Vec::new();
    for kind in StreamKind::ALL {
        let name = unique_name(kind.default_stream_name());
        create_stream(&aws.kinesis, &name, 1).await.unwrap();
        env.push((
            format!(
                "PRODUCER_STREAMS__{}",
                kind.default_stream_name().to_uppercase()
            ),
            name,
        ));
    }
    let bucket = unique_name("lake");
    create_bucket(&aws.s3, &bucket).await.unwrap();
    env.push(("PRODUCER_REFERENCE__BUCKET".into(), bucket));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // A slow, long run: still producing while the endpoints are checked.
    let args = ["--rate", "20", "--sales", "100000", "--customers", "50"];
    flowline_testkit::assert_admin_contract_with(
        env!("CARGO_BIN_EXE_producer"),
        "producer",
        &stack,
        &env,
        &args,
    )
    .await;
}
