"""The Helm chart, rendered by the real `helm`: defaults and every toggle do what values.yaml says.

`helm` comes from PATH, or from the PyPI wheel CI already uses for kubectl (the kubetools fixture).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import ROOT, rules_generator

CHART = ROOT / "deploy" / "helm" / "entra-credential-exporter"
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "entra-credential-exporter.json"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))


@pytest.fixture(scope="session")
def helm(kubetools: dict[str, str]) -> str:
    return kubetools["helm"]


def render(helm: str, values: dict[str, Any] | None = None, *files: Path) -> dict[str, list[dict[str, Any]]]:
    """The chart's manifests for `values`, by kind."""
    command = [helm, "template", "rel", str(CHART), "--namespace", "monitoring"]
    for file in files:
        command += ["-f", str(file)]
    result = subprocess.run(
        [*command, "-f", "-"], input=json.dumps(values or {}), capture_output=True, text=True, check=True
    )
    kinds: dict[str, list[dict[str, Any]]] = {}
    for doc in yaml.safe_load_all(result.stdout):
        if doc:
            kinds.setdefault(doc["kind"], []).append(doc)
    return kinds


def only(kinds: dict[str, list[dict[str, Any]]], kind: str) -> dict[str, Any]:
    (resource,) = kinds[kind]
    return resource


def pod(kinds: dict[str, list[dict[str, Any]]], kind: str = "Deployment") -> dict[str, Any]:
    spec: dict[str, Any] = only(kinds, kind)["spec"]["template"]
    return spec


def container(kinds: dict[str, list[dict[str, Any]]], kind: str = "Deployment") -> dict[str, Any]:
    (exporter,) = pod(kinds, kind)["spec"]["containers"]
    return dict(exporter)


@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=lambda p: p.name if p else "defaults")
def test_helm_lint_strict_passes(helm: str, values: Path | None) -> None:
    extra = ["-f", str(values)] if values else []
    result = subprocess.run([helm, "lint", "--strict", str(CHART), *extra], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_defaults_install_a_hardened_exporter_without_the_operator_or_any_secret(helm: str) -> None:
    kinds = render(helm)
    assert set(kinds) == {"Deployment", "Service", "ServiceAccount", "NetworkPolicy"}
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    exporter = container(kinds)
    assert exporter["image"] == f"ghcr.io/entra-credential-exporter/entra-credential-exporter:{chart['appVersion']}"
    assert exporter["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    spec = pod(kinds)["spec"]
    assert spec["securityContext"]["runAsNonRoot"] and spec["automountServiceAccountToken"] is False
    assert exporter["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert exporter["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert exporter["resources"]["limits"] and exporter["resources"]["requests"]
    policy = only(kinds, "NetworkPolicy")["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= pod(kinds)["metadata"]["labels"].items()
    assert only(kinds, "Service")["spec"]["selector"] == policy["podSelector"]["matchLabels"]


def test_an_existing_client_secret_is_mounted_as_a_file_and_no_secret_is_rendered(helm: str) -> None:
    kinds = render(helm, {"existingSecret": "mine", "tenant": {"name": "contoso", "tenantId": "t", "clientId": "c"}})
    assert "Secret" not in kinds
    exporter = container(kinds)
    env = {e["name"]: e["value"] for e in exporter["env"]}
    assert env == {
        "AZURE_TENANT_ID": "t",
        "AZURE_CLIENT_ID": "c",
        "AZURE_CLIENT_SECRET_FILE": "/var/run/secrets/entra/AZURE_CLIENT_SECRET",
    }
    assert "--tenant.name=contoso" in exporter["args"]
    (volume,) = pod(kinds)["spec"]["volumes"]
    assert volume["secret"] == {"secretName": "mine", "defaultMode": 0o440}
    assert exporter["volumeMounts"] == [
        {"name": volume["name"], "mountPath": "/var/run/secrets/entra", "readOnly": True}
    ]


def test_an_existing_certificate_is_read_through_the_certificate_path(helm: str) -> None:
    kinds = render(helm, {"existingSecret": "mine", "existingSecretKind": "certificate"})
    env = {e["name"]: e["value"] for e in container(kinds)["env"]}
    assert env == {"AZURE_CLIENT_CERTIFICATE_PATH": "/var/run/secrets/entra/certificate.pem"}


def test_workload_identity_annotates_the_serviceaccount_and_labels_the_pod(helm: str) -> None:
    values = {"workloadIdentity": {"enabled": True}, "tenant": {"tenantId": "t-id", "clientId": "c-id"}}
    kinds = render(helm, values)
    annotations = only(kinds, "ServiceAccount")["metadata"]["annotations"]
    assert annotations == {"azure.workload.identity/client-id": "c-id", "azure.workload.identity/tenant-id": "t-id"}
    assert pod(kinds)["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    assert pod(kinds)["spec"]["serviceAccountName"] == only(kinds, "ServiceAccount")["metadata"]["name"]
    assert "volumes" not in pod(kinds)["spec"] or not pod(kinds)["spec"]["volumes"]


def test_the_configuration_file_comes_from_a_configmap(helm: str) -> None:
    config = {"tenants": [{"name": "a", "tenant_id": "t", "client_id": "c", "client_secret_file": "/x"}]}
    kinds = render(helm, {"config": config, "existingSecret": "tenants"})
    configmap = only(kinds, "ConfigMap")
    assert yaml.safe_load(configmap["data"]["config.yaml"]) == config
    exporter = container(kinds)
    assert "--config.file=/etc/entra-credential-exporter/config/config.yaml" in exporter["args"]
    assert "env" not in exporter  # the file names each tenant's secret file
    volumes = {v["name"]: v for v in pod(kinds)["spec"]["volumes"]}
    assert volumes["config"]["configMap"]["name"] == configmap["metadata"]["name"]
    assert volumes["credentials"]["secret"]["secretName"] == "tenants"


def test_the_web_config_is_a_secret_and_the_probes_adapt_to_tls_and_basic_auth(helm: str) -> None:
    tls = {"cert_file": "/etc/entra-credential-exporter/tls/tls.crt", "key_file": "/etc/x/tls.key"}
    kinds = render(helm, {"webConfig": {"tls_server_config": tls}, "webTLSSecret": "cert"})
    (secret,) = kinds["Secret"]
    assert yaml.safe_load(secret["stringData"]["web-config.yml"]) == {"tls_server_config": tls}
    exporter = container(kinds)
    assert "--web.config.file=/etc/entra-credential-exporter/web/web-config.yml" in exporter["args"]
    assert exporter["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    mounts = {m["mountPath"] for m in exporter["volumeMounts"]}
    assert mounts == {"/etc/entra-credential-exporter/web", "/etc/entra-credential-exporter/tls"}
    # The kubelet has no credentials: with basic auth on, the probes can only connect.
    kinds = render(helm, {"webConfig": {"tls_server_config": tls, "basic_auth_users": {"p": "$2b$10$x"}}})
    assert container(kinds)["livenessProbe"]["tcpSocket"] == {"port": "metrics"}


def test_shards_make_a_statefulset_behind_a_headless_service(helm: str) -> None:
    kinds = render(helm, {"shards": 3, "config": {"tenants": []}})
    assert "Deployment" not in kinds
    statefulset = only(kinds, "StatefulSet")
    service = only(kinds, "Service")
    assert statefulset["spec"]["replicas"] == 3
    assert statefulset["spec"]["serviceName"] == service["metadata"]["name"]
    assert service["spec"]["clusterIP"] == "None"
    args = container(kinds, "StatefulSet")["args"]
    assert "--shard.count=3" in args and "--shard.index-from-hostname" in args


def test_shards_without_a_configuration_file_are_refused(helm: str) -> None:
    with pytest.raises(subprocess.CalledProcessError) as failure:
        render(helm, {"shards": 2})
    assert "set config" in failure.value.stderr


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"serviceMonitor": {"enable": True}}, "enable"),  # a misspelt toggle must not silently do nothing
        ({"shards": 0}, "shards"),
        ({"existingSecretKind": "password"}, "existingSecretKind"),
        ({"prometheusRule": {"runbookUrl": "docs/runbook.md"}}, "runbookUrl"),
    ],
)
def test_values_the_chart_does_not_know_or_cannot_use_are_refused(
    helm: str, values: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(subprocess.CalledProcessError) as failure:
        render(helm, values)
    assert complaint in failure.value.stderr


def test_servicemonitor_carries_the_release_label_kube_prometheus_stack_selects(helm: str) -> None:
    values = {"serviceMonitor": {"enabled": True, "labels": {"release": "kps"}, "interval": "30s"}}
    kinds = render(helm, values)
    monitor = only(kinds, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kps"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "metrics" and endpoint["interval"] == "30s"
    assert monitor["spec"]["selector"]["matchLabels"] == only(kinds, "Service")["spec"]["selector"]
    # The job is the Service's app.kubernetes.io/name, which the rules' default job matcher expects.
    assert only(kinds, "Service")["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "entra-credential-exporter"


def test_the_prometheusrule_holds_the_rules_of_rules_yml(helm: str) -> None:
    kinds = render(helm, {"prometheusRule": {"enabled": True, "labels": {"release": "kps"}}})
    rule = only(kinds, "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kps"
    assert rule["spec"] == yaml.safe_load(RULES.read_text())


def test_the_rules_job_runbook_url_and_allowance_values_match_the_kustomize_generator(helm: str) -> None:
    generator = rules_generator()
    settings = {"job": "entra-prod|entra-dr", "runbookUrl": "https://wiki.example.com/entra", "allowance": 2}
    settings["phishable"] = 9
    values = {
        "prometheusRule": {
            "enabled": True,
            "job": settings["job"],
            "runbookUrl": settings["runbookUrl"],
            "adminsWithoutMFAAllowance": settings["allowance"],
            "adminsWithoutPhishingResistantMFAAllowance": settings["phishable"],
        }
    }
    spec = only(render(helm, values), "PrometheusRule")["spec"]
    customised = generator.customise(
        RULES.read_text(), settings["job"], settings["runbookUrl"], settings["allowance"], settings["phishable"]
    )
    assert spec == yaml.safe_load(customised)
    text = json.dumps(spec)
    assert 'job=~\\"entra-prod|entra-dr\\"' in text and "entra-credential-exporter.*" not in text
    assert "tenant:credential_admins_without_mfa:count > 2" in text
    assert "tenant:credential_admins_without_phishing_resistant_mfa:count > 9" in text
    alerts = [r for group in spec["groups"] for r in group["rules"] if "alert" in r]
    assert all(a["annotations"]["runbook_url"].startswith("https://wiki.example.com/entra#") for a in alerts)


def test_the_grafana_dashboard_configmap_is_labelled_for_the_sidecar(helm: str) -> None:
    kinds = render(helm, {"grafanaDashboard": {"enabled": True, "annotations": {"grafana_folder": "Security"}}})
    configmap = only(kinds, "ConfigMap")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["annotations"] == {"grafana_folder": "Security"}
    assert json.loads(configmap["data"]["entra-credential-exporter.json"]) == json.loads(DASHBOARD.read_text())


def test_scheduling_image_and_extra_values_reach_the_pod(helm: str) -> None:
    values = {
        "image": {"repository": "r.example/e", "tag": "1.2.3", "pullPolicy": "Always"},
        "extraArgs": ["--demo"],
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "k", "operator": "Exists"}],
        "affinity": {"podAntiAffinity": {}},
        "podAnnotations": {"a": "b"},
        "resources": {"limits": {"memory": "1Gi"}},
    }
    kinds = render(helm, values)
    spec, exporter = pod(kinds), container(kinds)
    assert exporter["image"] == "r.example/e:1.2.3" and exporter["imagePullPolicy"] == "Always"
    assert exporter["args"][-1] == "--demo"
    assert spec["spec"]["nodeSelector"] == values["nodeSelector"]
    assert spec["spec"]["tolerations"] == values["tolerations"]
    assert spec["spec"]["affinity"] == values["affinity"]
    assert spec["metadata"]["annotations"]["a"] == "b"
    assert exporter["resources"]["limits"]["memory"] == "1Gi"  # merged over the defaults, as Helm does
