"""Many tenants from one file, against the fake Graph: isolation, reload on SIGHUP, and shards in separate processes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
import yaml

from exporter.app import Exporter
from exporter.config import read_config
from exporter.sharding import shard_of
from tests.fakegraph import LEGACY_PATH, FakeGraph
from tests.support import (
    SECRET_ENV,
    expected_total,
    exporter_process,
    exposition,
    get,
    serve_tenants,
    tenant_entry,
    tenant_id,
    value,
    wait_for,
)


def write_config(path: Path, tenants: list[dict[str, object]]) -> Path:
    path.write_text(yaml.safe_dump({"source": "legacy", "poll": {"interval": "1m"}, "tenants": tenants}))
    return path


def env_for(fake: FakeGraph, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
    return {
        **base,
        SECRET_ENV: fake.client_secret,
        "AZURE_AUTHORITY_HOST": fake.url,
        "REQUESTS_CA_BUNDLE": str(fake.ca_path),
        **extra,
    }


def totals(text: str) -> dict[str, int]:
    return {
        m.group(1): int(float(m.group(2)))
        for m in re.finditer(r'^tenant_total_users\{tenant="([^"]+)"\} (\S+)$', text, re.M)
    }


def tenants_exporter(
    config: Path, fake: FakeGraph, log: Path, *args: str, env: dict[str, str] | None = None
) -> AbstractContextManager[tuple[str, subprocess.Popen[str]]]:
    """The exporter as a user runs it, its log written to a file that the test can read while it runs."""
    return exporter_process(
        "--config.file",
        str(config),
        "--graph.endpoint",
        fake.url,
        *args,
        env=env or env_for(fake),
        log=log,
        ready=lambda url: get(url + "/readyz")[0] == 200,
    )


def test_three_shards_serve_disjoint_tenant_sets_whose_union_is_the_whole_list(fake: FakeGraph, tmp_path: Path) -> None:
    numbers = range(15)
    serve_tenants(fake, numbers)
    config = write_config(tmp_path / "tenants.yaml", [tenant_entry(n) for n in numbers])
    served: list[dict[str, int]] = []
    shard_args = [
        ("--shard.count", "3", "--shard.index", "0"),
        ("--shard.count", "3", "--shard.index", "1"),
        ("--shard.count", "3", "--shard.index-from-hostname"),  # as in a StatefulSet
    ]
    with (
        tenants_exporter(config, fake, tmp_path / "0.log", *shard_args[0]) as (url0, _),
        tenants_exporter(config, fake, tmp_path / "1.log", *shard_args[1]) as (url1, _),
        tenants_exporter(
            config,
            fake,
            tmp_path / "2.log",
            *shard_args[2],
            env=env_for(fake, HOSTNAME="entra-credential-exporter-2"),
        ) as (url2, _),
    ):
        for url in (url0, url1, url2):
            served.append(totals(get(url + "/metrics")[1]))
    names = [set(s) for s in served]
    assert all(names), "each shard should hold some of 15 tenants"
    assert names[0].isdisjoint(names[1]) and names[1].isdisjoint(names[2]) and names[0].isdisjoint(names[2])
    assert names[0] | names[1] | names[2] == {f"tenant{n}" for n in numbers}
    for index, shard in enumerate(served):
        for name, total in shard.items():
            number = int(name.removeprefix("tenant"))
            assert total == expected_total(number)
            assert shard_of(tenant_id(number), 3) == index


def test_sighup_adds_and_removes_tenants_keeps_the_others_and_refuses_a_bad_file(
    fake: FakeGraph, tmp_path: Path
) -> None:
    serve_tenants(fake, [1, 2, 3])
    config = write_config(tmp_path / "tenants.yaml", [tenant_entry(1), tenant_entry(2)])
    log = tmp_path / "exporter.log"
    with tenants_exporter(config, fake, log) as (url, proc):
        assert totals(get(url + "/metrics")[1]) == {"tenant1": expected_total(1), "tenant2": expected_total(2)}
        assert fake.token_requests == 2

        write_config(config, [tenant_entry(2), tenant_entry(3)])
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: set(totals(get(url + "/metrics")[1])) == {"tenant2", "tenant3"})
        text = get(url + "/metrics")[1]
        assert totals(text) == {"tenant2": expected_total(2), "tenant3": expected_total(3)}
        assert 'tenant="tenant1"' not in text  # every series of the removed tenant is gone
        # tenant2 kept its job: its counter goes on, and its cached token served on (one new token, tenant3's).
        assert 'credential_exporter_graph_requests_total{code="200",tenant="tenant2"} 1.0' in text
        assert fake.token_requests == 3
        assert "configuration reloaded" in log.read_text()

        inline = {**tenant_entry(3), "client_secret": "not-a-real-inline-secret"}
        write_config(config, [tenant_entry(2), inline, tenant_entry(4)])
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "configuration reload refused" in log.read_text())
        assert set(totals(get(url + "/metrics")[1])) == {"tenant2", "tenant3"}
    lines = log.read_text().splitlines()
    (refused,) = [line for line in lines if "configuration reload refused" in line]
    assert "tenants[1] 'tenant3': client_secret: secrets are never written in the file" in refused
    assert "not-a-real-inline-secret" not in log.read_text()
    assert fake.client_secret not in log.read_text()


def load_file(path: Path, fake: FakeGraph) -> Exporter:
    given = {"config_file": str(path), "graph_endpoint": fake.url, "poll_interval": "1m", "poll_timeout": "20s"}
    env = {SECRET_ENV: fake.client_secret, "AZURE_AUTHORITY_HOST": fake.url}
    return Exporter(read_config(given, env))


def test_a_tenant_with_a_refused_secret_does_not_stop_the_others(fake: FakeGraph, tmp_path: Path) -> None:
    serve_tenants(fake, [1, 2, 3])
    wrong = tmp_path / "wrong-secret"
    wrong.write_text("not-the-secret\n")
    config = write_config(
        tmp_path / "tenants.yaml",
        [
            tenant_entry(1),
            tenant_entry(2, client_secret_file=str(wrong)),
            tenant_entry(3),
        ],
    )
    exporter = load_file(config, fake)
    statuses = {
        job.name: status for job, status in zip(exporter.poller.jobs, exporter.poller.poll_round(), strict=True)
    }
    assert statuses["tenant2"].last_reason == "auth"
    assert statuses["tenant1"].up and statuses["tenant3"].up
    assert totals(exposition(exporter)) == {"tenant1": expected_total(1), "tenant3": expected_total(3)}
    assert value(exporter, "credential_exporter_up", tenant="tenant2") == 0


def test_tenants_share_connections_but_not_tokens(fake: FakeGraph, tmp_path: Path) -> None:
    numbers = range(20)
    serve_tenants(fake, numbers)
    config = write_config(tmp_path / "tenants.yaml", [tenant_entry(n) for n in numbers])
    given = {"config_file": str(config), "graph_endpoint": fake.url, "poll_concurrency": 2}
    env = {SECRET_ENV: fake.client_secret, "AZURE_AUTHORITY_HOST": fake.url}
    exporter = Exporter(read_config(given, env))
    for _ in range(2):
        assert all(status.up for status in exporter.poller.poll_round())
    # 20 tenants, 80 requests: a pool per tenant would open 40 connections; shared pools of 2 open a few.
    assert fake.connections <= 8
    assert fake.token_requests == 20  # one token per tenant, each cached by its own MSAL object
    tokens = {r.headers["Authorization"] for r in fake.requests_to(LEGACY_PATH)}
    assert len(tokens) == 20


def test_a_changed_credential_gets_a_new_token_and_keeps_the_tenants_series(fake: FakeGraph, tmp_path: Path) -> None:
    serve_tenants(fake, [1, 2])
    secret_file = tmp_path / "secret"
    secret_file.write_text("not-the-secret\n")
    entries = [tenant_entry(1), tenant_entry(2, client_secret_file=str(secret_file))]
    config = write_config(tmp_path / "tenants.yaml", entries)
    exporter = load_file(config, fake)
    exporter.poller.poll_round()
    assert value(exporter, "credential_exporter_poll_errors_total", tenant="tenant2", reason="auth") == 1
    unchanged = exporter.poller.jobs[0]

    secret_file.write_text(fake.client_secret + "\n")  # the secret is rotated, then SIGHUP
    done = exporter.reload(load_file(config, fake).config)
    assert (done.added, done.removed, done.changed, done.restart_needed) == ((), (), ("tenant2",), ())
    assert exporter.poller.jobs[0] is unchanged
    exporter.poller.poll_round()
    assert value(exporter, "credential_exporter_up", tenant="tenant2") == 1
    assert value(exporter, "credential_exporter_poll_errors_total", tenant="tenant2", reason="auth") == 1  # kept
    assert value(exporter, "credential_exporter_graph_requests_total", tenant="tenant1", code="200") == 2
    assert len(fake.requests_to(LEGACY_PATH)) == 3


def test_a_reload_names_the_options_that_need_a_restart(fake: FakeGraph, tmp_path: Path) -> None:
    config = write_config(tmp_path / "tenants.yaml", [tenant_entry(1)])
    exporter = load_file(config, fake)
    data = yaml.safe_load(config.read_text())
    data["poll"]["concurrency"] = 3
    config.write_text(yaml.safe_dump(data))
    done = exporter.reload(load_file(config, fake).config)
    assert done.restart_needed == ("poll_concurrency",)


def test_a_reload_that_changes_only_the_interval_names_only_the_interval(fake: FakeGraph, tmp_path: Path) -> None:
    config = write_config(tmp_path / "tenants.yaml", [tenant_entry(1)])
    given = {"config_file": str(config), "graph_endpoint": fake.url}
    env = {SECRET_ENV: fake.client_secret, "AZURE_AUTHORITY_HOST": fake.url}
    exporter = Exporter(read_config(given, env))
    data = yaml.safe_load(config.read_text())
    data["poll"]["interval"] = "20m"  # the timeout, 80% of it, follows: still one setting changed
    config.write_text(yaml.safe_dump(data))
    assert exporter.reload(read_config(given, env)).restart_needed == ("poll_interval",)


@pytest.mark.parametrize("count", [2, 3])
def test_a_shard_serves_only_its_tenants_in_process(fake: FakeGraph, tmp_path: Path, count: int) -> None:
    config = write_config(tmp_path / "tenants.yaml", [tenant_entry(n) for n in range(12)])
    given = {"config_file": str(config), "graph_endpoint": fake.url, "shard_count": count, "shard_index": 1}
    loaded = read_config(given, {SECRET_ENV: "not-a-real-secret"})
    jobs = Exporter(loaded).poller.jobs
    assert [job.name for job in jobs] == [f"tenant{n}" for n in range(12) if shard_of(tenant_id(n), count) == 1]
