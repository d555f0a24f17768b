//! The service life cycle as an operator sees it: exit codes, signals, drain.
//!
//! Each test re-runs this test binary as a child process (`child` below) in a mode chosen
//! by an environment variable, so the real `Service::run` handles real signals.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flowline_runtime::{Context, RuntimeArgs, Service, ServiceConfig};
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct Empty {}

impl ServiceConfig for Empty {}

const MODE: &str = "FLOWLINE_LIFECYCLE_CHILD";

/// The child: not a real test unless `MODE` is set.
#[test]
fn child() {
    let Ok(mode) = std::env::var(MODE) else {
        return;
    };
    let service = Service::new("lifecycle-test", 0);
    let code = service.run(
        RuntimeArgs::default(),
        move |ctx: Context<Empty>| async move {
            match mode.as_str() {
                // Work that needs a moment to finish after the shutdown signal.
                "drains" => {
                    ctx.spawn("worker", {
                        let token = ctx.shutdown_token();
                        async move {
                            token.cancelled().await;
                            tokio::time::sleep(Duration::from_millis(300)).await;
                            println!("worker drained");
                            Ok(())
                        }
                    });
                    ctx.shutdown_token().cancelled().await;
                }
                // Work that ignores shutdown: the drain timeout must end it.
                "stuck" => {
                    ctx.spawn("stuck", async {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        Ok(())
                    });
                    ctx.shutdown_token().cancelled().await;
                }
                "fails" => {
                    ctx.spawn("flaky", async {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        anyhow::bail!("downstream refused the batch")
                    });
                    ctx.shutdown_token().cancelled().await;
                }
                "panics" => {
                    ctx.spawn("buggy", async { panic!("index out of range") });
                    ctx.shutdown_token().cancelled().await;
                }
                "finishes" => {}
                other => panic!("unknown mode {other}"),
            }
            Ok(())
        },
    );
    // ExitCode has no accessor; map through the process exit.
    std::process::exit(if code == std::process::ExitCode::SUCCESS {
        0
    } else {
        exit_code(code)
    });
}

fn exit_code(code: std::process::ExitCode) -> i32 {
    // `ExitCode` is opaque; its Debug form is `ExitCode(unix_exit_status(N))`.
    let text = format!("{code:?}");
    text.chars()
        .filter(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or(1)
}

fn spawn(mode: &str, env: &[(&str, &str)]) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env(MODE, mode)
        .env("LIFECYCLE_TEST_ADMIN__PORT", "0")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn signal(child: &std::process::Child, sig: i32) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, sig) };
}

fn wait(child: std::process::Child, limit: Duration) -> (i32, String) {
    let start = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(start.elapsed() < limit, "took {:?}", start.elapsed());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Waits until the child has installed its signal handlers (it logs "starting" after).
fn started() {
    std::thread::sleep(Duration::from_millis(700));
}

#[test]
fn sigterm_drains_running_work_and_exits_zero() {
    let child = spawn("drains", &[]);
    started();
    signal(&child, libc::SIGTERM);
    let (code, out) = wait(child, Duration::from_secs(10));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("worker drained"), "{out}");
    assert!(out.contains("stopped cleanly"), "{out}");
}

#[test]
fn sigint_is_a_shutdown_request_too() {
    let child = spawn("drains", &[]);
    started();
    signal(&child, libc::SIGINT);
    let (code, out) = wait(child, Duration::from_secs(10));
    assert_eq!(code, 0, "{out}");
}

#[test]
fn work_that_ignores_shutdown_is_cut_at_the_drain_timeout() {
    let child = spawn(
        "stuck",
        &[("LIFECYCLE_TEST_SHUTDOWN__DRAIN_TIMEOUT", "500ms")],
    );
    started();
    signal(&child, libc::SIGTERM);
    let (code, out) = wait(child, Duration::from_secs(10));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("drain_timeout"), "{out}");
}

#[test]
fn a_second_signal_exits_at_once() {
    let child = spawn("stuck", &[("LIFECYCLE_TEST_SHUTDOWN__DRAIN_TIMEOUT", "1h")]);
    started();
    signal(&child, libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(200));
    signal(&child, libc::SIGTERM);
    let (code, out) = wait(child, Duration::from_secs(10));
    assert_eq!(code, 130, "{out}");
}

#[test]
fn a_failed_task_stops_the_service_with_its_reason() {
    let (code, out) = wait(spawn("fails", &[]), Duration::from_secs(10));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("downstream refused the batch"), "{out}");
    assert!(out.contains("flaky"), "{out}");
}

#[test]
fn a_panicking_task_stops_the_service() {
    let (code, out) = wait(spawn("panics", &[]), Duration::from_secs(10));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("index out of range"), "{out}");
}

#[test]
fn main_returning_ends_the_service_cleanly() {
    let (code, out) = wait(spawn("finishes", &[]), Duration::from_secs(10));
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_bad_setting_exits_two_with_one_clear_message() {
    let child = spawn(
        "finishes",
        &[
            ("LIFECYCLE_TEST_ADMIN__PORT", "seventy"),
            ("LIFECYCLE_TEST_SHUTDOWN__DRAIN_TIMEOUT", "0s"),
        ],
    );
    let (code, out) = wait(child, Duration::from_secs(10));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("admin.port"), "{out}");
    assert!(out.contains("shutdown.drain_timeout"), "{out}");
    assert!(!out.contains("panicked"), "{out}");
}
