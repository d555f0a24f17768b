//! The `[opensearch]` section of a service's configuration.

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct OpenSearchSettings {
    /// Cluster URL; the `OPENSEARCH_URL` variable sets it too.
    pub url: String,
    /// Basic auth (fine-grained access control's internal users), with `password`.
    pub username: Option<String>,
    pub password: Option<String>,
    /// PEM CA bundle for clusters with a private CA.
    pub ca_file: Option<String>,
    /// Certificate verification; turning it off is for diagnosis only.
    pub verify_tls: bool,
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

impl Default for OpenSearchSettings {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:9200".into(),
            username: None,
            password: None,
            ca_file: None,
            verify_tls: true,
            request_timeout: Duration::from_secs(30),
        }
    }
}

impl OpenSearchSettings {
    /// Environment variables users know, mapped onto settings under `section`.
    pub const ENV_ALIASES: [(&'static str, &'static str); 3] = [
        ("OPENSEARCH_URL", "opensearch.url"),
        ("OPENSEARCH_USERNAME", "opensearch.username"),
        ("OPENSEARCH_PASSWORD", "opensearch.password"),
    ];

    /// Problems as `(setting, message)` under `section`.
    pub fn problems(&self, section: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        match url::Url::parse(&self.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            Ok(u) => out.push((
                format!("{section}.url"),
                format!("unsupported scheme {:?}", u.scheme()),
            )),
            Err(e) => out.push((
                format!("{section}.url"),
                format!("{:?} is not a URL: {e}", self.url),
            )),
        }
        if self.username.is_some() != self.password.is_some() {
            out.push((
                format!("{section}.password"),
                "username and password go together".into(),
            ));
        }
        if self.request_timeout.is_zero() {
            out.push((
                format!("{section}.request_timeout"),
                "must be greater than 0".into(),
            ));
        }
        out
    }
}
