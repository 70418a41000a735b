"""The sharded Kubernetes overlay: shards that agree with the replicas, and the hardening every pod needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.config import GRAPH_GLOBAL_LIMIT, parse_command_line
from exporter.errors import ConfigError
from exporter.sharding import index_from_hostname
from exporter.values import parse_rate_limit
from tests.support import ROOT, config_of

OVERLAY = ROOT / "deploy" / "kubernetes" / "sharded"


def manifest(name: str) -> dict[str, Any]:
    document = yaml.safe_load((OVERLAY / name).read_text())
    assert isinstance(document, dict)
    return document


def container() -> dict[str, Any]:
    (only,) = manifest("statefulset.yaml")["spec"]["template"]["spec"]["containers"]
    assert isinstance(only, dict)
    return only


def test_the_shard_count_is_the_number_of_replicas_and_the_index_comes_from_the_pod_name() -> None:
    statefulset = manifest("statefulset.yaml")
    args = container()["args"]
    counts = [a.split("=", 1)[1] for a in args if a.startswith("--shard.count=")]
    assert counts == [str(statefulset["spec"]["replicas"])]
    assert "--shard.index-from-hostname" in args
    # The pods are named <statefulset>-<ordinal>, which is what --shard.index-from-hostname reads.
    replicas = statefulset["spec"]["replicas"]
    assert index_from_hostname(f"{statefulset['metadata']['name']}-{replicas - 1}") == replicas - 1
    flags = parse_command_line(args)
    assert int(str(flags["shard_count"])) == statefulset["spec"]["replicas"] and flags["shard_index_from_hostname"]


def test_the_replicas_together_stay_under_graphs_limit_per_app() -> None:
    args = container()["args"]
    limit = parse_rate_limit(str(parse_command_line(args)["global_rate_limit"]))
    assert limit is not None
    replicas = manifest("statefulset.yaml")["spec"]["replicas"]
    assert replicas * limit.requests / limit.period <= GRAPH_GLOBAL_LIMIT.requests / GRAPH_GLOBAL_LIMIT.period


def test_every_pod_runs_hardened_with_probes_and_resources() -> None:
    pod = manifest("statefulset.yaml")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert isinstance(pod["securityContext"]["runAsUser"], int) and pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    c = container()
    assert {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }.items() <= c["securityContext"].items()
    assert c["ports"] == [{"name": "metrics", "containerPort": 9918, "protocol": "TCP"}]
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(c["resources"][kind])
    assert all(mount["readOnly"] for mount in c["volumeMounts"])


def test_the_headless_service_and_the_servicemonitor_reach_every_shard() -> None:
    service, monitor = manifest("service.yaml"), manifest("servicemonitor.yaml")
    statefulset = manifest("statefulset.yaml")
    assert service["spec"]["clusterIP"] == "None"
    assert statefulset["spec"]["serviceName"] == service["metadata"]["name"]
    pod_labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert [port["name"] for port in service["spec"]["ports"]] == [e["port"] for e in monitor["spec"]["endpoints"]]
    kustomization = manifest("kustomization.yaml")
    assert set(kustomization["resources"]) == {
        "statefulset.yaml",
        "service.yaml",
        "servicemonitor.yaml",
        "networkpolicy.yaml",
    }


def test_the_example_tenant_file_is_valid_but_for_the_secrets_it_expects_to_be_mounted() -> None:
    with pytest.raises(ConfigError) as caught:
        config_of("--config.file", str(OVERLAY / "tenants.yaml"), env={})
    assert caught.value.problems
    for problem in caught.value.problems:
        assert "cannot read /var/run/secrets/entra/" in problem, problem
    assert Path(OVERLAY / "tenants.yaml").read_text().count("tenant_id:") == 2
