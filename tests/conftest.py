"""Fixtures only: what tests share otherwise is in tests/support.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakegraph import FakeGraph


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGraph]:
    graph = FakeGraph(tmp_path)
    # Both MSAL's requests session and ours read the CA bundle from the environment, as in production.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(graph.ca_path))
    yield graph
    graph.close()
