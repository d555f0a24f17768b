//! Builds the `opensearch` client from settings.

use opensearch::OpenSearch;
use opensearch::auth::Credentials;
use opensearch::cert::{Certificate, CertificateValidation};
use opensearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};

use crate::{OpenSearchError, OpenSearchSettings};

pub fn build_client(settings: &OpenSearchSettings) -> Result<OpenSearch, OpenSearchError> {
    let url = url::Url::parse(&settings.url).map_err(|source| OpenSearchError::BadUrl {
        url: settings.url.clone(),
        source,
    })?;
    let mut builder = TransportBuilder::new(SingleNodeConnectionPool::new(url))
        .timeout(settings.request_timeout)
        // Loopback and cluster endpoints are reached directly, never through HTTP(S)_PROXY.
        .disable_proxy();
    if let (Some(user), Some(password)) = (&settings.username, &settings.password) {
        builder = builder.auth(Credentials::Basic(user.clone(), password.clone()));
    }
    let validation = match (&settings.ca_file, settings.verify_tls) {
        (_, false) => {
            tracing::warn!("opensearch.verify_tls is off: certificates are not checked");
            CertificateValidation::None
        }
        (Some(path), true) => {
            let pem = std::fs::read(path).map_err(|source| OpenSearchError::CaFile {
                path: path.clone(),
                source,
            })?;
            let cert = Certificate::from_pem(&pem).map_err(|source| OpenSearchError::BadCa {
                path: path.clone(),
                source,
            })?;
            CertificateValidation::Full(cert)
        }
        (None, true) => CertificateValidation::Default,
    };
    builder = builder.cert_validation(validation);
    let transport = builder
        .build()
        .map_err(|e| OpenSearchError::Build(e.to_string()))?;
    Ok(OpenSearch::new(transport))
}

/// Ready when the cluster answers its root endpoint with a success status.
pub async fn probe(client: &OpenSearch, url: &str) -> Result<(), String> {
    match client.info().send().await {
        Ok(r) if r.status_code().is_success() => Ok(()),
        Ok(r) => Err(format!("OpenSearch at {url} answered {}", r.status_code())),
        Err(e) => Err(format!("OpenSearch at {url} does not answer: {e}")),
    }
}

/// Makes OpenSearch a readiness component of the service in `ctx`.
pub fn watch<T>(ctx: &flowline_runtime::Context<T>, client: &OpenSearch, url: &str) {
    let (client, url) = (client.clone(), url.to_string());
    ctx.watch_dependency("opensearch", std::time::Duration::from_secs(5), move || {
        let (client, url) = (client.clone(), url.clone());
        async move { probe(&client, &url).await }
    });
}
