//! An upload that fails for good stops the service before anything past it is
//! checkpointed: a restart against a working S3 archives every record, once.

mod common;

use std::time::Duration;

use common::{Lake, eventually};

#[tokio::test]
async fn failed_upload_stops_the_service_and_a_restart_archives_everything() {
    tokio::time::timeout(Duration::from_secs(150), run())
        .await
        .expect("test finishes in time");
}

async fn run() {
    let lake = Lake::new(
        &["sales"],
        1,
        "size_hint_bytes = 8192\ninterval = \"2s\"\nwall_clock_grace = \"1s\"",
        "[lake.upload.retry]\nmax_attempts = 2\ninitial_backoff = \"50ms\"\nmax_backoff = \"100ms\"\nattempt_timeout = \"2s\"",
    )
    .await;
    let mut want: Vec<Vec<u8>> = common::raw_events("sales", 300)
        .into_iter()
        .map(|(_, d)| d)
        .collect();
    lake.put(lake.stream("sales"), &want).await;

    // S3 at a port nobody listens on: every upload fails.
    let dead = format!("http://127.0.0.1:{}", flowline_testkit::free_port());
    let mut broken = lake.spawn_with(&[("AWS_ENDPOINT_URL_S3", dead.as_str())]);
    let status = broken.wait_exit(Duration::from_secs(60)).await.unwrap();
    assert_ne!(status.code(), Some(0), "log:\n{}", broken.logs());
    assert!(
        broken.logs().contains("lake upload failed"),
        "log:\n{}",
        broken.logs()
    );

    let mut svc = lake.spawn();
    svc.wait_ready(Duration::from_secs(60)).await.unwrap();
    let lines = || async {
        let mut all: Vec<Vec<u8>> = lake
            .lines(&format!("raw/{}/", lake.stream("sales")))
            .await
            .into_values()
            .flatten()
            .collect();
        all.sort();
        all
    };
    eventually(Duration::from_secs(60), "every record in S3", || async {
        lines().await.len() >= want.len()
    })
    .await;
    want.sort();
    assert!(lines().await == want, "lines differ from the input");

    svc.signal(libc::SIGTERM);
    let status = svc.wait_exit(Duration::from_secs(30)).await.unwrap();
    assert_eq!(status.code(), Some(0), "log:\n{}", svc.logs());
}
