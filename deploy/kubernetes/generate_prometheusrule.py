#!/usr/bin/env python3
"""Write prometheusrule.yaml, the Prometheus Operator's PrometheusRule, from deploy/prometheus/rules.yml.

kustomize cannot place a file's content inside a custom resource's spec, so the PrometheusRule is generated
and checked in: `python3 deploy/kubernetes/generate_prometheusrule.py` after every change to rules.yml, and
`--check` (run by CI) fails if the checked-in file differs from what would be generated. The rules are
copied as text, indented under `spec:`, so that comments and block scalars come through unchanged.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RULES = HERE.parent / "prometheus" / "rules.yml"
OUTPUT = HERE / "base" / "prometheusrule.yaml"

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


def main(argv: list[str]) -> int:
    wanted = render(RULES.read_text())
    if argv[1:] == ["--check"]:
        if OUTPUT.read_text() != wanted:
            print(f"{OUTPUT} is out of date: run python3 {Path(__file__).relative_to(Path.cwd())}", file=sys.stderr)
            return 1
        return 0
    if argv[1:]:
        print(f"usage: {argv[0]} [--check]", file=sys.stderr)
        return 2
    OUTPUT.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
