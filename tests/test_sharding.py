"""Shard assignment: complete, disjoint, even, and the same in every process."""

from __future__ import annotations

import uuid

import pytest

from exporter.sharding import Shard, build_shard, index_from_hostname, shard_of, stable_hash
from tests.support import run_cli

# Deterministic tenant IDs shaped like Entra's (GUIDs), plus a few domain names.
TENANT_IDS = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"tenant-{i}")) for i in range(5000)] + [
    f"customer{i}.onmicrosoft.com" for i in range(200)
]


@pytest.mark.parametrize("count", range(1, 11))
def test_every_tenant_belongs_to_exactly_one_shard(count: int) -> None:
    shards = [Shard(index, count) for index in range(count)]
    owners = {tenant: [s.index for s in shards if s.owns(tenant)] for tenant in TENANT_IDS}
    assert all(len(found) == 1 for found in owners.values())
    # ... and the shards are about even: none holds more than 15 % over its fair share.
    sizes = [sum(1 for found in owners.values() if found == [s.index]) for s in shards]
    assert sum(sizes) == len(TENANT_IDS)
    assert max(sizes) <= len(TENANT_IDS) / count * 1.15


def test_the_hash_is_pinned_so_replicas_of_every_version_agree() -> None:
    # The first 8 bytes of SHA-256, big-endian: a371deac4dd63047. Changing this reshuffles every fleet.
    assert stable_hash("contoso.onmicrosoft.com") == 0xA371DEAC4DD63047
    assert shard_of("contoso.onmicrosoft.com", 7) == 0xA371DEAC4DD63047 % 7


def test_the_tenant_id_is_compared_without_case_or_surrounding_space() -> None:
    tenant = "5F1B7C8E-2A3D-4E6F-9A0B-1C2D3E4F5A6B"
    assert stable_hash(tenant) == stable_hash(f" {tenant.lower()} ")


@pytest.mark.parametrize(
    ("hostname", "index"),
    [("entra-credential-exporter-0", 0), ("exporter-12", 12), ("exporter-3.exporter.monitoring.svc", 3)],
)
def test_the_index_comes_from_a_statefulset_pod_name(hostname: str, index: int) -> None:
    assert index_from_hostname(hostname) == index


@pytest.mark.parametrize("hostname", ["exporter", "exporter-abc", "exporter-7f9c4d-x2x9z", ""])
def test_a_host_name_without_an_ordinal_is_refused(hostname: str) -> None:
    with pytest.raises(ValueError, match="StatefulSet pod name"):
        index_from_hostname(hostname)


@pytest.mark.parametrize(
    ("count", "index", "hostname", "message"),
    [
        (3, 3, None, "--shard.index: must be from 0 to 2 (--shard.count is 3)"),
        (3, -1, None, "--shard.index: must be from 0 to 2"),
        (3, None, None, "--shard.index: required with --shard.count above 1"),
        (0, None, None, "--shard.count: must be at least 1"),
        (3, 1, "exporter-1", "give either --shard.index or --shard.index-from-hostname"),
        (3, None, "exporter-5", "the host name 'exporter-5' gives index 5, which must be from 0 to 2"),
        (3, None, "laptop", "--shard.index-from-hostname: 'laptop' does not end in -<number>"),
    ],
)
def test_shard_flags_are_validated(count: int, index: int | None, hostname: str | None, message: str) -> None:
    problems: list[str] = []
    build_shard(count, index, hostname, problems)
    assert any(message in p for p in problems), problems


def test_valid_shard_flags() -> None:
    problems: list[str] = []
    assert build_shard(3, 2, None, problems) == Shard(2, 3)
    assert build_shard(4, None, "exporter-3", problems) == Shard(3, 4)
    assert build_shard(1, None, None, problems) == Shard(0, 1)
    assert problems == []


def test_bad_shard_flags_exit_2() -> None:
    env = {"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c", "AZURE_CLIENT_SECRET": "x", "HOSTNAME": "exporter-4"}
    result = run_cli("--shard.count", "3", "--shard.index-from-hostname", env=env)
    assert result.returncode == 2
    assert "--shard.index-from-hostname: the host name 'exporter-4' gives index 4" in result.stderr
