//! deploy/k8s: kustomize overlays, schemas, and what the schemas cannot say.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

use crate::cloudformation::cloudformation;
use crate::support::{
    array_at, output_of, repo, run_ok, str_at, system_tool, temp_dir, venv_bin, yaml_docs,
    yaml_file,
};
use crate::{CONSUMERS, KUBERNETES_VERSION, SERVICES};

pub(crate) fn kustomize(overlay: &str) -> (String, Vec<Value>) {
    let kubectl = system_tool(
        "kubectl",
        "kubectl (with its built-in kustomize) is part of the project's machine image; \
         elsewhere install it from the Kubernetes apt repository",
    );
    let rendered = run_ok(
        Command::new(kubectl)
            .arg("kustomize")
            .arg(repo().join("deploy/k8s/overlays").join(overlay)),
    );
    let docs = yaml_docs(&rendered);
    (rendered, docs)
}

pub(crate) fn validate_schemas(overlay: &str, rendered: &str) {
    let dir = temp_dir("k8s");
    let file = dir.path().join(format!("{overlay}.yaml"));
    std::fs::write(&file, rendered).expect("write rendered manifests");
    let out = output_of(
        Command::new(venv_bin("kubernetes-validate"))
            .args(["--strict", "-k", KUBERNETES_VERSION])
            .arg(&file),
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "overlay {overlay} fails schema validation:\n{text}"
    );
    let crd_kinds = ["ServiceMonitor", "PrometheusRule"];
    for line in text.lines() {
        let allowed = line.starts_with("INFO ")
            || (line.starts_with("WARN ")
                && crd_kinds.iter().any(|k| {
                    line.contains(&format!(
                    "Couldn't find schema for kind {k} with api version monitoring.coreos.com/v1"
                ))
                }));
        assert!(
            allowed,
            "overlay {overlay}: unexpected validator output: {line}"
        );
    }
}

pub(crate) fn objects<'a>(docs: &'a [Value], kind: &str) -> BTreeMap<String, &'a Value> {
    docs.iter()
        .filter(|d| d["kind"] == kind)
        .map(|d| (str_at(d, "/metadata/name").to_string(), d))
        .collect()
}

pub(crate) fn labels_match(selector: &Value, labels: &Value) -> bool {
    selector
        .as_object()
        .expect("matchLabels")
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v))
}

pub(crate) fn check_flowline_objects(overlay: &str, docs: &[Value]) {
    let deployments = objects(docs, "Deployment");
    let services = objects(docs, "Service");
    let pdbs = objects(docs, "PodDisruptionBudget");
    let hpas = objects(docs, "HorizontalPodAutoscaler");
    let accounts = objects(docs, "ServiceAccount");
    for doc in docs.iter().filter(|d| d["kind"] != "Namespace") {
        assert_eq!(
            doc.pointer("/metadata/namespace"),
            Some(&Value::from("flowline")),
            "{overlay}: {} {} has no namespace",
            doc["kind"],
            doc["metadata"]["name"]
        );
    }

    for (name, port) in SERVICES {
        let ctx = format!("{overlay}/{name}");
        let dep = deployments
            .get(name)
            .unwrap_or_else(|| panic!("{ctx}: no Deployment"));
        assert_eq!(
            dep["metadata"]["labels"]["app.kubernetes.io/part-of"],
            "flowline"
        );
        let pod = &dep["spec"]["template"]["spec"];
        assert_eq!(pod["serviceAccountName"], name, "{ctx}");
        assert!(accounts.contains_key(name), "{ctx}: no ServiceAccount");
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{ctx}");
        let c = &pod["containers"][0];
        assert_eq!(c["args"][0], name, "{ctx}: the entrypoint argument");
        assert_eq!(c["ports"][0]["containerPort"], port, "{ctx}");
        assert_eq!(c["ports"][0]["name"], "admin", "{ctx}");
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/health", "{ctx}");
        assert_eq!(c["livenessProbe"]["httpGet"]["port"], "admin", "{ctx}");
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/ready", "{ctx}");
        assert_eq!(c["readinessProbe"]["httpGet"]["port"], "admin", "{ctx}");
        for key in ["requests", "limits"] {
            for res in ["cpu", "memory"] {
                assert!(
                    c["resources"][key][res].is_string(),
                    "{ctx}: no {key}.{res}"
                );
            }
        }
        assert_eq!(
            c["securityContext"]["readOnlyRootFilesystem"], true,
            "{ctx}"
        );
        let config_map = str_at(c, "/envFrom/0/configMapRef/name");
        assert!(
            docs.iter()
                .any(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == config_map),
            "{ctx}: envFrom names a missing ConfigMap {config_map}"
        );
        let env = c["env"].as_array().expect("env");
        let bind_var = format!("{}_ADMIN__BIND", name.to_uppercase().replace('-', "_"));
        assert!(
            env.iter()
                .any(|e| e["name"] == bind_var.as_str() && e["value"] == "0.0.0.0"),
            "{ctx}: {bind_var}=0.0.0.0 so probes reach the admin port"
        );

        let svc = services
            .get(name)
            .unwrap_or_else(|| panic!("{ctx}: no Service"));
        assert!(labels_match(
            &svc["spec"]["selector"],
            &dep["spec"]["template"]["metadata"]["labels"]
        ));
        assert_eq!(svc["spec"]["ports"][0]["name"], "admin", "{ctx}");
        assert_eq!(svc["spec"]["ports"][0]["port"], port, "{ctx}");
    }

    for name in CONSUMERS {
        let ctx = format!("{overlay}/{name}");
        let pdb = pdbs
            .get(name)
            .unwrap_or_else(|| panic!("{ctx}: no PodDisruptionBudget"));
        assert!(labels_match(
            &pdb["spec"]["selector"]["matchLabels"],
            &deployments[name]["spec"]["template"]["metadata"]["labels"]
        ));
        let hpa = hpas
            .get(name)
            .unwrap_or_else(|| panic!("{ctx}: no HorizontalPodAutoscaler"));
        assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], name, "{ctx}");
        let metrics = array_at(hpa, "/spec/metrics");
        assert!(
            metrics
                .iter()
                .any(|m| m["type"] == "Resource" && m["resource"]["name"] == "cpu"),
            "{ctx}: scales on CPU"
        );
    }
    // The lag examples: a Pods metric and an External metric from the Prometheus adapter.
    let adapter = yaml_file("deploy/k8s/prometheus-adapter/values.yaml");
    let served: BTreeSet<&str> = ["custom", "external"]
        .iter()
        .flat_map(|kind| array_at(&adapter, &format!("/rules/{kind}")))
        .map(|r| str_at(r, "/name/as"))
        .collect();
    let lag_metrics: Vec<(&str, &str)> = hpas
        .values()
        .flat_map(|h| array_at(h, "/spec/metrics"))
        .filter_map(|m| match m["type"].as_str()? {
            "Pods" => Some(("Pods", m.pointer("/pods/metric/name")?.as_str()?)),
            "External" => Some(("External", m.pointer("/external/metric/name")?.as_str()?)),
            _ => None,
        })
        .collect();
    for kind in ["Pods", "External"] {
        assert!(
            lag_metrics.iter().any(|(k, _)| *k == kind),
            "{overlay}: no HPA example with a {kind} metric"
        );
    }
    for (_, metric) in &lag_metrics {
        assert!(
            served.contains(metric),
            "HPA metric {metric} is not served by the adapter rules"
        );
    }

    // The ServiceMonitor scrapes the admin port of all five Services.
    let monitors = objects(docs, "ServiceMonitor");
    let monitor = monitors.get("flowline").expect("ServiceMonitor flowline");
    let selected: BTreeSet<&str> = services
        .iter()
        .filter(|(_, s)| {
            labels_match(
                &monitor["spec"]["selector"]["matchLabels"],
                &s["metadata"]["labels"],
            )
        })
        .map(|(n, _)| n.as_str())
        .collect();
    let five: BTreeSet<&str> = SERVICES.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        selected, five,
        "{overlay}: Services the ServiceMonitor selects"
    );
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "admin");
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    assert_eq!(
        monitor["spec"]["jobLabel"], "app.kubernetes.io/name",
        "job must be the service name, as the rules and dashboards expect"
    );

    let rules = objects(docs, "PrometheusRule");
    let rule = rules.get("flowline").expect("PrometheusRule flowline");
    let source = yaml_file("deploy/prometheus/rules/flowline.yml");
    assert_eq!(
        rule["spec"]["groups"], source["groups"],
        "PrometheusRule differs from deploy/prometheus/rules/flowline.yml: run \
         deploy/k8s/components/prometheus-operator/generate.py"
    );
}

#[test]
pub(crate) fn kubernetes_overlays_build_and_validate() {
    for overlay in ["local", "aws"] {
        let (rendered, docs) = kustomize(overlay);
        validate_schemas(overlay, &rendered);
        check_flowline_objects(overlay, &docs);
    }
}

#[test]
pub(crate) fn aws_overlay_gives_each_service_its_irsa_role() {
    let (_, docs) = kustomize("aws");
    let accounts = objects(&docs, "ServiceAccount");
    let template = cloudformation();
    let role_prefix = str_at(&template, "/Parameters/RolePrefix/Default");
    for (name, _) in SERVICES {
        let arn = accounts[name]["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no IRSA annotation"));
        assert!(
            arn.ends_with(&format!(":role/{role_prefix}{name}")),
            "{name}: {arn} is not the stack's role {role_prefix}{name}"
        );
    }
    let indexer = &objects(&docs, "Deployment")["indexer"];
    let env = array_at(indexer, "/spec/template/spec/containers/0/env");
    for var in ["OPENSEARCH_USERNAME", "OPENSEARCH_PASSWORD"] {
        assert!(
            env.iter()
                .any(|e| e["name"] == var && e["valueFrom"]["secretKeyRef"].is_object()),
            "indexer: {var} from a Secret"
        );
    }
}
