//! The local stack for a test: reused from the environment or started just for it.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context as _, bail};
use aws_sdk_kinesis::config::{Credentials, Region};
use flowline_aws::{AwsClients, AwsSettings, Endpoints, ServiceEndpoints};

use crate::service::free_port;

/// Endpoints of a running local stack. When this value started the stack, dropping it
/// stops the stack.
pub struct Stack {
    kinesis_url: String,
    moto_url: String,
    opensearch_url: String,
    owned: Option<Owned>,
}

struct Owned {
    run_dir: tempfile::TempDir,
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn stack_sh() -> PathBuf {
    repo_root().join("localstack/stack.sh")
}

impl Stack {
    /// The stack named by the environment, or a new isolated one. Panics with the reason
    /// when no stack can be had (a test cannot do anything useful without it).
    pub async fn start() -> Stack {
        match Self::try_start().await {
            Ok(s) => s,
            Err(e) => panic!("local stack unavailable: {e:#}"),
        }
    }

    pub async fn try_start() -> anyhow::Result<Stack> {
        if std::env::var("FLOWLINE_TEST_REUSE_STACK").as_deref() == Ok("1") {
            let var = |k: &str| {
                std::env::var(k)
                    .with_context(|| format!("FLOWLINE_TEST_REUSE_STACK=1 but {k} is not set"))
            };
            return Ok(Stack {
                kinesis_url: var("AWS_ENDPOINT_URL_KINESIS")?,
                moto_url: var("AWS_ENDPOINT_URL")?,
                opensearch_url: var("OPENSEARCH_URL")?,
                owned: None,
            });
        }
        Self::isolated().await
    }

    /// A stack of its own on free ports, for tests that stop or restart servers.
    pub async fn isolated() -> anyhow::Result<Stack> {
        let run_dir = tempfile::Builder::new()
            .prefix("flowline-stack-")
            .tempdir()?;
        // kinesis-mock also opens port+1 (TLS), so look for two free ports in a row.
        let kinesis = (0..50)
            .map(|_| free_port())
            .find(|p| *p < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok())
            .context("no two consecutive free ports for kinesis-local")?;
        let (moto, opensearch) = (free_port(), free_port());
        let stack = Stack {
            kinesis_url: format!("http://127.0.0.1:{kinesis}"),
            moto_url: format!("http://127.0.0.1:{moto}"),
            opensearch_url: format!("http://127.0.0.1:{opensearch}"),
            owned: Some(Owned { run_dir }),
        };
        stack.control("up", &[]).await?;
        Ok(stack)
    }

    /// Starts (`up`) or stops (`down`) servers of an isolated stack: `kinesis`, `moto`,
    /// `opensearch`, or all of them when `servers` is empty.
    pub async fn control(&self, action: &str, servers: &[&str]) -> anyhow::Result<()> {
        let Some(owned) = &self.owned else {
            bail!(
                "this stack is shared (FLOWLINE_TEST_REUSE_STACK); use Stack::isolated() to control servers"
            );
        };
        let port = |url: &str| url.rsplit(':').next().unwrap_or_default().to_string();
        let out = tokio::process::Command::new("bash")
            .arg(stack_sh())
            .arg(action)
            .args(servers)
            .env("STACK_RUN", owned.run_dir.path())
            .env("KINESIS_PORT", port(&self.kinesis_url))
            .env("MOTO_PORT", port(&self.moto_url))
            .env("OPENSEARCH_PORT", port(&self.opensearch_url))
            .env("STACK_PARENT_PID", std::process::id().to_string())
            .output()
            .await
            .context("running localstack/stack.sh")?;
        if !out.status.success() {
            bail!(
                "localstack/stack.sh {action} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    pub fn kinesis_url(&self) -> String {
        self.kinesis_url.clone()
    }

    /// moto: DynamoDB, S3 and Firehose.
    pub fn moto_url(&self) -> String {
        self.moto_url.clone()
    }

    pub fn opensearch_url(&self) -> String {
        self.opensearch_url.clone()
    }

    /// Settings that point a service's `[aws]` section at this stack.
    pub fn aws_settings(&self) -> AwsSettings {
        AwsSettings {
            region: Some("us-east-1".into()),
            endpoint_url: Some(self.moto_url.clone()),
            endpoints: ServiceEndpoints {
                kinesis: Some(self.kinesis_url.clone()),
                dynamodb: Some(self.moto_url.clone()),
                s3: Some(self.moto_url.clone()),
                firehose: Some(self.moto_url.clone()),
            },
            ..AwsSettings::default()
        }
    }

    /// Clients for this stack, with test credentials, whatever the environment says.
    pub async fn aws_clients(&self) -> AwsClients {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(
                "test",
                "test",
                None,
                None,
                "flowline-testkit",
            ))
            .load()
            .await;
        let endpoints = Endpoints {
            kinesis: Some(self.kinesis_url.clone()),
            dynamodb: Some(self.moto_url.clone()),
            s3: Some(self.moto_url.clone()),
            firehose: Some(self.moto_url.clone()),
        };
        AwsClients::with_endpoints(&sdk, endpoints, Some(true))
    }

    /// Environment for a child process (a service under test) to use this stack.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_ENDPOINT_URL", self.moto_url.clone()),
            ("AWS_ENDPOINT_URL_KINESIS", self.kinesis_url.clone()),
            ("AWS_ENDPOINT_URL_DYNAMODB", self.moto_url.clone()),
            ("AWS_ENDPOINT_URL_S3", self.moto_url.clone()),
            ("AWS_ENDPOINT_URL_FIREHOSE", self.moto_url.clone()),
            ("OPENSEARCH_URL", self.opensearch_url.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(owned) = &self.owned {
            // Synchronous on purpose: Drop cannot await, and this must finish before exit.
            let _ = Command::new("bash")
                .arg(stack_sh())
                .arg("down")
                .env("STACK_RUN", owned.run_dir.path())
                .output();
        }
    }
}
