"""What ships under deploy/ and in the Dockerfile agrees with itself and with the exporter.

These read the files only; the real programs run them in tests/e2e/ (Prometheus, Alertmanager) and in CI
(promtool, kubectl kustomize + kubernetes-validate, hadolint, .ci/dockerfile_steps.py).
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.config.options import OPTIONS
from tests.support import FIXTURES, ROOT, rules_generator

DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes" / "base"
COMPONENT = DEPLOY / "kubernetes" / "components" / "prometheus-operator"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "entra-credential-exporter.json"
RUNBOOK_URL = "https://github.com/entra-credential-exporter/entra-credential-exporter/blob/main/docs/runbook.md"


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def readme_metrics() -> set[str]:
    """The metric names of the README's metrics table: the exporter's contract."""
    text = (ROOT / "README.md").read_text()
    table = text[text.index("## Metrics") :]
    table = table[: table.index("\n## ", 1)]
    return set(re.findall(r"^\| `([a-z_]+)` \|", table, re.MULTILINE))


def dashboard_panels() -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = []

    def walk(items: list[dict[str, Any]]) -> None:
        for panel in items:
            panels.append(panel)
            walk(panel.get("panels", []))

    walk(json.loads(DASHBOARD.read_text())["panels"])
    return panels


# --- rules --------------------------------------------------------------------------------------------


generator = rules_generator


def test_the_prometheusrule_is_generated_from_the_rules_file_and_up_to_date() -> None:
    rules_text = (DEPLOY / "prometheus" / "rules.yml").read_text()
    checked_in = (COMPONENT / "prometheusrule.yaml").read_text()
    assert checked_in == generator().render(rules_text), "run python3 deploy/kubernetes/generate_prometheusrule.py"
    resource = yaml.safe_load(checked_in)
    assert resource["kind"] == "PrometheusRule" and resource["apiVersion"] == "monitoring.coreos.com/v1"
    assert resource["spec"] == yaml.safe_load(rules_text)


def test_every_alert_has_a_severity_a_summary_a_description_and_a_runbook_section() -> None:
    rules = load(DEPLOY / "prometheus" / "rules.yml")
    alerts = [rule for group in rules["groups"] for rule in group["rules"] if "alert" in rule]
    runbook = (ROOT / "docs" / "runbook.md").read_text()
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in re.findall(r"^## (.+)$", runbook, re.M)}
    assert {a["alert"] for a in alerts} >= {
        "EntraMFACoverageDropped",
        "EntraMFACoverageBelowFloor",
        "EntraAdminsWithoutMFA",
        "EntraCredentialPollsFailing",
        "EntraCredentialDataStale",
        "EntraCredentialGraphThrottled",
        "EntraCredentialExporterAbsent",
    }
    for alert in alerts:
        assert alert["labels"]["severity"] in ("critical", "warning", "info"), alert["alert"]
        annotations = alert["annotations"]
        absent = alert["expr"].startswith("absent(")  # no series, so no labels to name
        assert "$labels.tenant" in annotations["summary"] or "$labels.instance" in annotations["summary"] or absent
        text = annotations["summary"] + annotations["description"]
        assert "$value" in text or "| query" in text or "Down" in alert["alert"] or absent, "name the values"
        # Absolute, so that the link works from Alertmanager, Slack or a pager; the base is configurable.
        page, _, anchor = annotations["runbook_url"].partition("#")
        assert page == RUNBOOK_URL and anchor == alert["alert"].lower(), alert["alert"]
        assert anchor in anchors, f"docs/runbook.md has no section for {alert['alert']}"


def test_the_job_matcher_runbook_url_and_admins_allowance_take_effect_in_prometheus(tmp_path: Path) -> None:
    from tests.e2e.stack import program

    rules = generator().customise(
        (DEPLOY / "prometheus" / "rules.yml").read_text(), "entra-prod", "https://wiki.example.com/entra", 1
    )
    (tmp_path / "rules.yml").write_text(rules)
    shutil.copy(FIXTURES / "rules" / "customised_rules_test.yml", tmp_path / "test.yml")
    result = subprocess.run([program("promtool"), "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


def test_every_selector_of_the_exporters_series_in_the_rules_carries_the_job_matcher() -> None:
    # Another exporter's tenant_total_users (or any series of the same name) must never enter the ratios.
    rules = load(DEPLOY / "prometheus" / "rules.yml")
    names = readme_metrics() | {"up"}
    for rule in (rule for group in rules["groups"] for rule in group["rules"]):
        for name, matchers in re.findall(r"\b([a-z_]+)\b(\{[^}]*\})?", rule["expr"]):
            if name in names:
                assert matchers.startswith('{job=~"entra-credential-exporter.*"'), f"{rule}: {name}{matchers}"


# --- dashboard ----------------------------------------------------------------------------------------


def test_the_dashboard_has_datasource_and_tenant_variables_and_every_panel_uses_them() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["schemaVersion"] >= 36  # Grafana 10 and later import it without migration surprises
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert variables["tenant"]["query"]["query"] == "label_values(credential_exporter_up, tenant)"
    assert variables["tenant"]["multi"] and variables["tenant"]["includeAll"]
    panels = dashboard_panels()
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            if "build_info" not in target["expr"]:  # the only series without a tenant label
                assert 'tenant=~"$tenant"' in target["expr"], (panel["title"], target["expr"])


def test_the_dashboard_imports_like_a_grafana_com_dashboard() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    (source,) = dashboard["__inputs"]
    assert source["type"] == "datasource" and source["pluginId"] == "prometheus"
    requires = {(r["type"], r["id"]) for r in dashboard["__requires"]}
    assert {("grafana", "grafana"), ("datasource", "prometheus")} <= requires
    assert {("panel", p["type"]) for p in dashboard_panels() if p["type"] != "row"} <= requires
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["current"]["value"] == "${" + source["name"] + "}"


def test_the_headline_panels_work_from_the_raw_metrics_without_the_recording_rules(tmp_path: Path) -> None:
    # Prometheus's own engine (promtool) evaluates each panel query that uses a recording rule, with no rule
    # loaded: the query's fallback on the raw metrics must give the same numbers the rules would.
    from tests.e2e.stack import program

    expected = {
        "tenant:credential_mfa_registered_users:ratio": 0.75,
        "tenant:credential_sspr_registered_users:ratio": 0.6,
        "tenant:credential_admin_mfa_registered_users:ratio": 0.8,
        "tenant:credential_admins_without_mfa:count": 2,
    }
    series = {
        'tenant_total_users{tenant="acme"}': 1000,
        'credential_registered_users{tenant="acme",status="mfaRegistered"}': 750,
        'credential_registered_users{tenant="acme",status="registered"}': 600,
        'tenant_users{tenant="acme",user_type="member",admin="true"}': 10,
        'credential_registered_segment_users{tenant="acme",user_type="member",admin="true",status="mfaRegistered"}': 8,
    }
    tests = []
    for panel in dashboard_panels():
        for target in panel.get("targets", []):
            recorded = [name for name in expected if name in target["expr"]]
            if recorded:
                (name,) = recorded
                tests.append(
                    {
                        "expr": target["expr"].replace("$tenant", ".+"),
                        "eval_time": "5m",
                        "exp_samples": [{"labels": '{tenant="acme"}', "value": expected[name]}],
                    }
                )
    assert len(tests) >= 4, "the headline stats use the recording rules"
    (tmp_path / "none.yml").write_text("groups: []\n")
    unit = {
        "rule_files": ["none.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": f"{v}x10"} for s, v in series.items()],
                "promql_expr_test": tests,
            }
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(unit))
    result = subprocess.run([program("promtool"), "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


def test_the_dashboard_shows_every_metric_of_the_readme() -> None:
    exprs = " ".join(t["expr"] for p in dashboard_panels() for t in p.get("targets", []))
    rules = (DEPLOY / "prometheus" / "rules.yml").read_text()
    metrics = readme_metrics()
    assert "credential_registered_users" in metrics and "credential_exporter_up" in metrics
    unused = [m for m in sorted(metrics) if not re.search(rf"\b{m}\b", exprs + rules)]
    assert unused == []


# --- Kubernetes ---------------------------------------------------------------------------------------


def by_kind() -> dict[str, dict[str, Any]]:
    """The base's resources and the Prometheus Operator component's, by kind."""
    resources = [load(d / name) for d in (K8S, COMPONENT) for name in load(d / "kustomization.yaml")["resources"]]
    return {r["kind"]: r for r in resources}


def kustomize(kubectl: str, directory: Path) -> list[dict[str, Any]]:
    rendered = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=True)
    return [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]


def test_the_deployment_is_locked_down_and_probed() -> None:
    deployment = by_kind()["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert security["runAsNonRoot"] is True and isinstance(security["runAsUser"], int) and security["runAsUser"] > 0
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert "memory" in container["resources"]["limits"]
    # The secret is a read-only file, named by AZURE_CLIENT_SECRET_FILE; never an environment value.
    (mount,) = container["volumeMounts"]
    assert mount["readOnly"] is True
    env = {e["name"]: e for e in container["env"]}
    assert env["AZURE_CLIENT_SECRET_FILE"]["value"].startswith(mount["mountPath"] + "/")
    assert "AZURE_CLIENT_SECRET" not in env
    (volume,) = pod["volumes"]
    assert volume["name"] == mount["name"] and "secret" in volume


def test_the_image_user_and_port_match_the_manifests() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    user = re.search(r"^USER (\d+):(\d+)$", dockerfile, re.M)
    assert user, "the image's USER must be numeric"
    container = by_kind()["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["securityContext"]["runAsUser"] == int(user.group(1))
    assert container["securityContext"]["runAsGroup"] == int(user.group(2))
    assert re.search(r"^EXPOSE 9918$", dockerfile, re.M)
    assert container["ports"][0]["containerPort"] == 9918
    assert re.search(r'^ENTRYPOINT \["entra-credential-exporter"\]$', dockerfile, re.M)


def test_the_service_servicemonitor_and_networkpolicy_select_the_exporter_pods() -> None:
    kinds = by_kind()
    pod_labels = kinds["Deployment"]["spec"]["template"]["metadata"]["labels"]
    service = kinds["Service"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert kinds["ServiceMonitor"]["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert kinds["ServiceMonitor"]["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    # The alert EntraCredentialExporterDown watches job=~"entra-credential-exporter.*": the Service's name.
    assert service["metadata"]["name"] == "entra-credential-exporter"
    policy = kinds["NetworkPolicy"]["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    egress_ports = sorted((p["port"], p["protocol"]) for rule in policy["egress"] for p in rule["ports"])
    assert egress_ports == [(53, "TCP"), (53, "UDP"), (443, "TCP")]
    assert all("to" not in rule or rule["to"] for rule in policy["egress"])


def test_the_serviceaccount_documents_workload_identity() -> None:
    account = by_kind()["ServiceAccount"]
    assert "azure.workload.identity/client-id" in account["metadata"]["annotations"]
    overlay = (DEPLOY / "kubernetes" / "workload-identity" / "kustomization.yaml").read_text()
    assert "azure.workload.identity~1use" in overlay


def test_the_base_ships_no_secret_and_the_documented_secret_generator_makes_the_one_it_mounts(
    kubetools: dict[str, str], tmp_path: Path
) -> None:
    # A Secret in the base would overwrite the real one, created out of band, at every `kubectl apply -k`.
    for variant in ("", "workload-identity", "prometheus-operator"):
        assert "Secret" not in {r["kind"] for r in kustomize(kubetools["kubectl"], DEPLOY / "kubernetes" / variant)}
    # The commented secretGenerator of deploy/kubernetes/kustomization.yaml, uncommented, feeds the Deployment.
    copy = tmp_path / "kubernetes"
    shutil.copytree(DEPLOY / "kubernetes", copy)
    text = (copy / "kustomization.yaml").read_text()
    example = text[text.index("# secretGenerator:") : text.index("# (its name")]
    text = text.replace(example, re.sub(r"^# ?", "", example, flags=re.MULTILINE))
    (copy / "kustomization.yaml").write_text(text)
    (copy / "client-secret.txt").write_text("not-a-real-secret\n")
    resources = {r["kind"]: r for r in kustomize(kubetools["kubectl"], copy)}
    secret = resources["Secret"]
    assert base64.b64decode(secret["data"]["client-secret"]) == b"not-a-real-secret\n"
    assert secret["metadata"]["namespace"] == resources["Deployment"]["metadata"]["namespace"]
    (volume,) = resources["Deployment"]["spec"]["template"]["spec"]["volumes"]
    assert volume["secret"]["secretName"] == secret["metadata"]["name"]


def test_only_the_optional_component_needs_the_prometheus_operator(kubetools: dict[str, str]) -> None:
    operator_kinds = {"ServiceMonitor", "PrometheusRule"}
    for variant in ("", "workload-identity"):
        kinds = {r["kind"] for r in kustomize(kubetools["kubectl"], DEPLOY / "kubernetes" / variant)}
        assert "Deployment" in kinds and not kinds & operator_kinds, variant
    with_operator = kustomize(kubetools["kubectl"], DEPLOY / "kubernetes" / "prometheus-operator")
    added = [r for r in with_operator if r["kind"] in operator_kinds]
    assert sorted(r["kind"] for r in added) == sorted(operator_kinds)
    assert {r["metadata"]["namespace"] for r in with_operator} == {"monitoring"}
    rule = next(r for r in added if r["kind"] == "PrometheusRule")
    assert rule["spec"] == yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text())


# --- README ------------------------------------------------------------------------------------------


def readme_commands() -> list[str]:
    """The shell commands of the README's quick start: run the demo, run the tests."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Quick start") : text.index("\n## ", text.index("## Quick start"))]
    return re.findall(r"```sh\n(.*?)\n```", section, re.DOTALL)


def test_the_quick_start_installs_into_a_virtual_environment_and_ci_runs_its_test_command() -> None:
    demo, tests = readme_commands()
    # PEP 668: a distribution's own python3 refuses `pip install`, so both commands make a venv first.
    for command in (demo, tests):
        assert command.startswith("python3 -m venv .venv && .venv/bin/pip install ")
        assert "sudo" not in command and "--break-system-packages" not in command
    assert demo.endswith(".venv/bin/entra-credential-exporter --demo")
    ci = (ROOT / ".ci" / "run").read_text().rstrip("\n").splitlines()
    assert ci[-1] == tests, "the last line of .ci/run must be the README's test command, word for word"


# --- compose ------------------------------------------------------------------------------------------


def test_the_compose_demo_runs_the_exporter_in_demo_mode_with_the_files_the_e2e_tests_load() -> None:
    compose_file = DEPLOY / "compose" / "compose.yaml"
    services = load(compose_file)["services"]
    assert services["exporter"]["command"] == ["--demo"]
    assert (compose_file.parent / services["exporter"]["build"]["context"] / "Dockerfile").resolve() == (
        ROOT / "Dockerfile"
    )
    mounts = {}
    for service in services.values():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("."):
                path = (compose_file.parent / source).resolve()
                assert path.exists(), volume
                mounts[target] = path
    from tests.e2e.stack import ALERTMANAGER_CONFIG, PROMETHEUS_CONFIG, RULES

    assert mounts["/etc/prometheus/prometheus.yml"] == PROMETHEUS_CONFIG
    assert mounts["/etc/prometheus/rules.yml"] == RULES
    assert mounts["/etc/alertmanager/alertmanager.yml"] == ALERTMANAGER_CONFIG
    assert mounts["/var/lib/grafana/dashboards"] == DASHBOARD.parent
    for name, service in services.items():
        if "image" in service and name != "exporter":
            assert re.search(r":v?\d+\.\d+\.\d+$", service["image"]), f"{name}: pin a full version"


@pytest.mark.parametrize("path", sorted((DEPLOY / "grafana" / "provisioning").rglob("*.yml")), ids=lambda p: p.name)
def test_grafana_provisioning_files_are_version_1(path: Path) -> None:
    assert load(path)["apiVersion"] == 1


def test_the_readme_configuration_table_lists_every_option_with_its_file_key() -> None:
    text = (ROOT / "README.md").read_text()
    table = text[text.index("## Configuration") :]
    rows = dict(re.findall(r"^\| `(--[a-z.-]+)` \| (—|`[a-z._]+`) \|", table[: table.index("\n## ", 1)], re.MULTILINE))
    documented = {flag: None if key == "—" else key.strip("`") for flag, key in rows.items()}
    assert documented == {option.flag: option.key for option in OPTIONS.values() if option.flag != "--version"}
