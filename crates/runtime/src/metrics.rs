//! The service's Prometheus registry: process metrics, build info, and whatever the
//! service's libraries register into it.

use prometheus::{Encoder, IntGaugeVec, Opts, Registry, TextEncoder};

/// A registry with `process_*` metrics and `flowline_build_info{service,version} 1`.
pub fn new_registry(service: &str) -> Registry {
    let registry = Registry::new();
    // Both registrations only fail on duplicate names, impossible on a fresh registry.
    let process = prometheus::process_collector::ProcessCollector::for_self();
    registry
        .register(Box::new(process))
        .expect("fresh registry");
    let info = IntGaugeVec::new(
        Opts::new("flowline_build_info", "Build information; always 1."),
        &["service", "version"],
    )
    .expect("valid metric definition");
    info.with_label_values(&[service, env!("CARGO_PKG_VERSION")])
        .set(1);
    registry.register(Box::new(info)).expect("fresh registry");
    registry
}

/// The registry in the Prometheus text exposition format.
pub fn encode_metrics(registry: &Registry) -> String {
    let mut out = Vec::new();
    // Encoding into a Vec cannot fail for well-formed metric families.
    if let Err(e) = TextEncoder::new().encode(&registry.gather(), &mut out) {
        tracing::warn!(error = %e, "encoding metrics failed");
    }
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_exposes_build_info_and_process_metrics() {
        let text = encode_metrics(&new_registry("indexer"));
        assert!(
            text.contains("flowline_build_info{service=\"indexer\",version=\""),
            "{text}"
        );
        assert!(text.contains("process_resident_memory_bytes"), "{text}");
    }
}
