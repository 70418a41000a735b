#!/usr/bin/env python3
"""Write the files generated from deploy/prometheus/rules.yml and the Grafana dashboard, or --check them.

- deploy/kubernetes/components/prometheus-operator/prometheusrule.yaml, the Prometheus Operator's
  PrometheusRule: kustomize cannot place a file's content inside a custom resource's spec, so the rules are
  copied as text, indented under `spec:`, so that comments and block scalars come through unchanged;
- the Helm chart's files/rules.yml and files/entra-credential-exporter.json: Helm reads only files inside
  the chart, so it carries copies.

Run `python3 deploy/kubernetes/generate_prometheusrule.py` after every change to the rules or the dashboard;
`--check` (run by CI) fails if a checked-in file differs from what would be generated.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEPLOY = HERE.parent
RULES = DEPLOY / "prometheus" / "rules.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "entra-credential-exporter.json"
PROMETHEUSRULE = HERE / "components" / "prometheus-operator" / "prometheusrule.yaml"
CHART_FILES = DEPLOY / "helm" / "entra-credential-exporter" / "files"

HEADER = """\
# GENERATED from deploy/prometheus/rules.yml by deploy/kubernetes/generate_prometheusrule.py: do not edit.
# Add the labels your Prometheus selects PrometheusRules by (kube-prometheus-stack: release: <its name>).
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: entra-credential-exporter
spec:
"""


def render(rules: str) -> str:
    lines = rules.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("groups:"))
    body = [f"  {line}" if line.strip() else "" for line in lines[start:]]
    return HEADER + "\n".join(body) + "\n"


def outputs() -> dict[Path, str]:
    """Every generated file and the content it must have."""
    rules = RULES.read_text()
    return {
        PROMETHEUSRULE: render(rules),
        CHART_FILES / RULES.name: rules,
        CHART_FILES / DASHBOARD.name: DASHBOARD.read_text(),
    }


def main(argv: list[str]) -> int:
    if argv[1:] not in ([], ["--check"]):
        print(f"usage: {argv[0]} [--check]", file=sys.stderr)
        return 2
    stale = [path for path, text in outputs().items() if not path.exists() or path.read_text() != text]
    if argv[1:] == ["--check"]:
        for path in stale:
            print(f"{path} is out of date: run python3 {Path(__file__).relative_to(Path.cwd())}", file=sys.stderr)
        return 1 if stale else 0
    for path, text in outputs().items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
