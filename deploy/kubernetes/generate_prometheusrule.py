#!/usr/bin/env python3
"""Write the files generated from deploy/prometheus/rules.yml and the Grafana dashboard, or --check them.

- deploy/kubernetes/components/prometheus-operator/prometheusrule.yaml, the Prometheus Operator's
  PrometheusRule: kustomize cannot place a file's content inside a custom resource's spec, so the rules are
  copied as text, indented under `spec:`, so that comments and block scalars come through unchanged;
- the Helm chart's files/rules.yml and files/entra-credential-exporter.json: Helm reads only files inside
  the chart, so it carries copies.

Run `python3 deploy/kubernetes/generate_prometheusrule.py` after every change to the rules or the dashboard;
`--check` (run by CI) fails if a checked-in file differs from what would be generated.

For your own deployment, the kustomize PrometheusRule takes the settings the Helm chart's prometheusRule values
give: `--job REGEX` (the rules' job matcher), `--runbook-url URL` (the base of every runbook_url) and
`--admins-allowance N` (admins without MFA that EntraAdminsWithoutMFA tolerates, e.g. break-glass accounts).
They replace the defaults written in rules.yml; the chart's template replaces the same strings.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEPLOY = HERE.parent
RULES = DEPLOY / "prometheus" / "rules.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "entra-credential-exporter.json"
PROMETHEUSRULE = HERE / "components" / "prometheus-operator" / "prometheusrule.yaml"
CHART_FILES = DEPLOY / "helm" / "entra-credential-exporter" / "files"

# The defaults written in rules.yml, which the options (and the Helm chart's prometheusRule values) replace.
JOB = "entra-credential-exporter.*"
RUNBOOK_URL = "https://github.com/entra-credential-exporter/entra-credential-exporter/blob/main/docs/runbook.md"
ALLOWANCE = "tenant:credential_admins_without_mfa:count > {}"

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


def customise(rules: str, job: str, runbook_url: str, allowance: int) -> str:
    """rules.yml's text with another job matcher, runbook base URL and admins' allowance."""
    rules = rules.replace(f'job=~"{JOB}"', f"job=~{json.dumps(job)}").replace(RUNBOOK_URL, runbook_url)
    return rules.replace(ALLOWANCE.format(0), ALLOWANCE.format(allowance))


def outputs(options: argparse.Namespace) -> dict[Path, str]:
    """Every generated file and the content it must have."""
    rules = RULES.read_text()
    return {
        PROMETHEUSRULE: render(customise(rules, options.job, options.runbook_url, options.admins_allowance)),
        CHART_FILES / RULES.name: rules,
        CHART_FILES / DASHBOARD.name: DASHBOARD.read_text(),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog=argv[0], description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a generated file is out of date")
    parser.add_argument("--job", default=JOB, help="the rules' job matcher, a regex (default: %(default)s)")
    parser.add_argument("--runbook-url", default=RUNBOOK_URL, help="the runbook's URL, without #anchor")
    parser.add_argument("--admins-allowance", type=int, default=0, help="admins without MFA tolerated per tenant")
    options = parser.parse_args(argv[1:])
    wanted = outputs(options)
    stale = [path for path, text in wanted.items() if not path.exists() or path.read_text() != text]
    if options.check:
        for path in stale:
            print(f"{path} is out of date: run python3 {Path(__file__).relative_to(Path.cwd())}", file=sys.stderr)
        return 1 if stale else 0
    for path, text in wanted.items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
