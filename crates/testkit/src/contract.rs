//! The admin contract every service keeps (DESIGN.md section 5), checked the same way for
//! each service binary.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{ServiceProcess, Stack};

/// Starts `bin` against the stack; checks `/health`, `/ready` (once dependencies answer),
/// that `/metrics` passes `promtool check metrics`; then SIGTERM must exit 0 within the
/// drain timeout.
pub async fn assert_admin_contract(bin: &str, service: &str) {
    let stack = Stack::start().await;
    assert_admin_contract_with(bin, service, &stack, &[], &[]).await;
}

/// [`assert_admin_contract`] with extra environment and arguments, for services that need
/// resources of their own (unique streams, a bucket) to keep running.
pub async fn assert_admin_contract_with(
    bin: &str,
    service: &str,
    stack: &Stack,
    env: &[(&str, &str)],
    args: &[&str],
) {
    let prefix = service.to_ascii_uppercase().replace('-', "_");
    let drain = format!("{prefix}_SHUTDOWN__DRAIN_TIMEOUT");
    let mut all_env = vec![(drain.as_str(), "10s")];
    all_env.extend_from_slice(env);
    let mut svc =
        ServiceProcess::spawn(bin, service, stack, &all_env, args).expect("service starts");
    svc.wait_ready(Duration::from_secs(60))
        .await
        .expect("service becomes ready");

    let (status, body) = svc.get("/health").await.expect("/health answers");
    assert_eq!(status, 200, "/health: {body}");
    let (status, body) = svc.get("/ready").await.expect("/ready answers");
    assert_eq!(status, 200, "/ready: {body}");
    let ready: serde_json::Value = serde_json::from_str(&body).expect("/ready is JSON");
    assert_eq!(ready["ready"], true, "{body}");

    let (status, metrics) = svc.get("/metrics").await.expect("/metrics answers");
    assert_eq!(status, 200);
    assert!(
        metrics.contains(&format!("flowline_build_info{{service=\"{service}\"")),
        "{metrics}"
    );
    promtool_check_metrics(&metrics);

    svc.signal(libc::SIGTERM);
    let status = svc
        .wait_exit(Duration::from_secs(15))
        .await
        .expect("service exits after SIGTERM");
    assert_eq!(
        status.code(),
        Some(0),
        "exit status {status}; log:\n{}",
        svc.logs()
    );
}

/// Fails the test unless `promtool check metrics` accepts `text`.
pub fn promtool_check_metrics(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool not found: `make deps` (localstack/stack.sh install) installs it");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(text.as_bytes())
        .expect("writing to promtool");
    let out = child.wait_with_output().expect("promtool runs");
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- metrics ---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
