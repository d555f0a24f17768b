//! A service binary under test: started against a stack, probed on its admin port,
//! signalled, and killed if the test ends first.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::Stack;

/// A free TCP port on 127.0.0.1 (free when asked; bind it soon).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding 127.0.0.1:0")
}

pub struct ServiceProcess {
    child: tokio::process::Child,
    pub admin_url: String,
    log_path: PathBuf,
    _log_dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl ServiceProcess {
    /// Starts `bin` (for example `env!("CARGO_BIN_EXE_indexer")`) with the stack's
    /// environment, its admin server on a free port, plus `env` and `args`.
    pub fn spawn(
        bin: impl AsRef<OsStr>,
        service: &str,
        stack: &Stack,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> anyhow::Result<Self> {
        let port = free_port();
        let prefix = format!("{}_", service.to_ascii_uppercase().replace('-', "_"));
        let log_dir = tempfile::Builder::new().prefix("flowline-svc-").tempdir()?;
        let log_path = log_dir.path().join(format!("{service}.log"));
        let log = std::fs::File::create(&log_path)?;
        let mut cmd = tokio::process::Command::new(bin.as_ref());
        cmd.args(args)
            .envs(stack.env())
            .env(format!("{prefix}ADMIN__PORT"), port.to_string())
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.as_ref().to_string_lossy()))?;
        Ok(Self {
            child,
            admin_url: format!("http://127.0.0.1:{port}"),
            log_path,
            _log_dir: log_dir,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()?,
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// `GET` an admin path: (status, body).
    pub async fn get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let r = self
            .http
            .get(format!("{}{path}", self.admin_url))
            .send()
            .await?;
        Ok((r.status().as_u16(), r.text().await?))
    }

    /// Waits until `/ready` answers 200.
    pub async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "service exited with {status} before it was ready; log:\n{}",
                    self.logs()
                );
            }
            let last = match self.get("/ready").await {
                Ok((200, _)) => return Ok(()),
                Ok((code, body)) => format!("{code} {body}"),
                Err(e) => e.to_string(),
            };
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "not ready within {timeout:?}: last /ready: {last}; log:\n{}",
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Sends a signal (`libc::SIGTERM`, `libc::SIGKILL`, ...).
    pub fn signal(&self, signal: i32) {
        if let Some(pid) = self.child.id() {
            // SAFETY: kill(2) on our own child's pid has no memory-safety requirements.
            unsafe {
                libc::kill(pid as i32, signal);
            }
        }
    }

    /// Waits for the process to exit, or fails after `timeout` (and kills it).
    pub async fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => {
                let _ = self.child.start_kill();
                bail!("did not exit within {timeout:?}; log:\n{}", self.logs())
            }
        }
    }

    /// What the service logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}
