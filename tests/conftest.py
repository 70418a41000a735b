from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from exporter.app import Exporter
from exporter.config import Flags, build_config
from tests.fakegraph import FakeGraph

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGraph]:
    graph = FakeGraph(tmp_path)
    # Both MSAL's requests session and ours read the CA bundle from the environment, as in production.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(graph.ca_path))
    yield graph
    graph.close()


@pytest.fixture
def stranger(tmp_path: Path, fake: FakeGraph, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGraph]:
    """A second fake on another port (another origin), trusted like the first: a host that must see nothing."""
    directory = tmp_path / "stranger"
    directory.mkdir()
    other = FakeGraph(directory)
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(fake.ca_path.read_bytes() + other.ca_path.read_bytes())
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    yield other
    other.close()


def make_exporter(fake: FakeGraph, env: dict[str, str] | None = None, **flags: object) -> Exporter:
    """An exporter configured the way a user would configure it, pointed at the fake."""
    options: dict[str, object] = {"graph_endpoint": fake.url, "poll_interval": "1m", "poll_timeout": "20s"}
    options.update(flags)
    return Exporter(build_config(Flags(**options), fake.env() if env is None else env))  # type: ignore[arg-type]


def exposition(exporter: Exporter) -> str:
    return generate_latest(exporter.registry).decode()


def value(exporter: Exporter, name: str, **labels: str) -> float | None:
    return exporter.registry.get_sample_value(name, labels)


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the installed exporter as a user would, in a clean environment plus `env`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
