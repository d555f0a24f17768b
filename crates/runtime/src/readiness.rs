//! Readiness: the service is ready when every component it registered says so.
//! Components are dependencies (Kinesis, DynamoDB, OpenSearch...) or internal states
//! ("holds or is acquiring leases"); each reports for itself.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde::Serialize;

#[derive(Clone, Default)]
pub struct Readiness {
    components: Arc<RwLock<BTreeMap<String, Option<String>>>>,
}

/// One component's voice in the readiness verdict; starts not ready ("starting").
#[derive(Clone)]
pub struct ReadinessHandle {
    name: String,
    readiness: Readiness,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Report {
    pub ready: bool,
    /// Component name → "ok" or the reason it is not ready.
    pub components: BTreeMap<String, String>,
}

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register(&self, component: &str) -> ReadinessHandle {
        self.set(component, Some("starting".to_string()));
        ReadinessHandle {
            name: component.to_string(),
            readiness: self.clone(),
        }
    }

    fn set(&self, component: &str, problem: Option<String>) {
        let mut map = self.components.write().unwrap_or_else(|p| p.into_inner());
        map.insert(component.to_string(), problem);
    }

    pub fn report(&self) -> Report {
        let map = self.components.read().unwrap_or_else(|p| p.into_inner());
        // Nothing registered yet means the service has not started checking its
        // dependencies: that is "starting", not "ready".
        Report {
            ready: !map.is_empty() && map.values().all(Option::is_none),
            components: map
                .iter()
                .map(|(k, v)| (k.clone(), v.clone().unwrap_or_else(|| "ok".into())))
                .collect(),
        }
    }
}

impl ReadinessHandle {
    pub fn ready(&self) {
        self.readiness.set(&self.name, None);
    }

    pub fn not_ready(&self, reason: impl Into<String>) {
        self.readiness.set(&self.name, Some(reason.into()));
    }

    pub fn set(&self, result: Result<(), String>) {
        self.readiness.set(&self.name, result.err());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_component_is() {
        let r = Readiness::new();
        assert!(!r.report().ready, "nothing registered yet: still starting");
        let kinesis = r.register("kinesis");
        let leases = r.register("leases");
        assert!(!r.report().ready);
        kinesis.ready();
        assert!(!r.report().ready);
        leases.ready();
        assert!(r.report().ready);
        kinesis.not_ready("connection refused");
        let report = r.report();
        assert!(!report.ready);
        assert_eq!(report.components["kinesis"], "connection refused");
        assert_eq!(report.components["leases"], "ok");
    }
}
