#!/usr/bin/env python3
"""Writes prometheusrule.yaml from deploy/prometheus/rules/flowline.yml, the one place the
rules are edited (and unit-tested with promtool). Needs PyYAML (in the stack's venv)."""
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
RULES = HERE.parents[2] / "prometheus" / "rules" / "flowline.yml"
HEADER = """\
# GENERATED from deploy/prometheus/rules/flowline.yml (the single source of the rules; a
# test checks that both hold the same groups). Regenerate after editing the rules:
#   python3 deploy/k8s/components/prometheus-operator/generate.py
"""

rules = yaml.safe_load(RULES.read_text())
doc = {
    "apiVersion": "monitoring.coreos.com/v1",
    "kind": "PrometheusRule",
    "metadata": {"name": "flowline", "labels": {"release": "kube-prometheus-stack"}},
    "spec": {"groups": rules["groups"]},
}
(HERE / "prometheusrule.yaml").write_text(HEADER + yaml.safe_dump(doc, sort_keys=False, width=100))
