//! `flowctl bootstrap` creates everything DESIGN.md names, and a second run changes nothing.

use std::process::Command;

use flowline_testkit::{Stack, unique_name};

fn bootstrap(stack: &Stack, prefix: &str) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_flowctl"))
        .args([
            "bootstrap",
            "--prefix",
            prefix,
            "--shards",
            "1",
            "--index-replicas",
            "0",
        ])
        .args(["--stream-shards", "sales=2"])
        .envs(stack.env())
        .output()
        .expect("flowctl runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn bootstrap_is_idempotent_and_creates_the_design_names() {
    let stack = Stack::start().await;
    let prefix = format!("{}-", unique_name("boot"));

    let (ok, first) = bootstrap(&stack, &prefix);
    assert!(ok, "{first}");
    for stream in [
        "customers",
        "addresses",
        "sales",
        "orders-enriched",
        "order-metrics",
        "dead-letters",
    ] {
        assert!(
            first.contains(&format!("stream {prefix}{stream}")),
            "{first}"
        );
    }
    // Templates are shared by the whole cluster, so only the prefixed resources are new.
    let created = first
        .lines()
        .filter(|l| !l.starts_with("index template") && l.ends_with(" created"))
        .count();
    assert_eq!(created, 13, "6 streams, 6 tables, 1 bucket:\n{first}");

    let (ok, second) = bootstrap(&stack, &prefix);
    assert!(ok, "{second}");
    assert!(
        !second.contains("created") && !second.contains("updated"),
        "{second}"
    );
    assert_eq!(second.matches(" exists").count(), 13, "{second}");
    assert_eq!(
        second.matches(" unchanged").count(),
        2,
        "two index templates:\n{second}"
    );

    let aws = stack.aws_clients().await;
    let sales = aws
        .kinesis
        .list_shards()
        .stream_name(format!("{prefix}sales"))
        .send()
        .await
        .unwrap();
    assert_eq!(sales.shards().len(), 2, "--stream-shards applies");
    let leases = aws
        .dynamodb
        .describe_table()
        .table_name(format!("{prefix}indexer-leases"))
        .send()
        .await
        .unwrap();
    let key = &leases.table().unwrap().key_schema()[0];
    assert_eq!(key.attribute_name(), "leaseKey", "KCL lease table schema");
    aws.s3
        .head_bucket()
        .bucket(format!("{prefix}analytics-lake"))
        .send()
        .await
        .expect("bucket exists");
}

#[tokio::test]
async fn an_unreachable_endpoint_fails_with_a_message_naming_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_flowctl"))
        .args(["bootstrap", "--no-opensearch", "--wait", "5s"])
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_ENDPOINT_URL_KINESIS", "http://127.0.0.1:9")
        .output()
        .expect("flowctl runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("creating stream customers"), "{err}");
    assert!(
        err.contains("127.0.0.1:9") || err.contains("onnection refused"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}
