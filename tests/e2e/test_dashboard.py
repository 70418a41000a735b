"""Every query of every panel of the shipped Grafana dashboard, run against a real Prometheus that scrapes the
exporter (in demo mode, which simulates the modern report, and polling the fake Graph) and evaluates the
shipped recording rules."""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.stack import DASHBOARD, AlwaysFailingGraph, Stack, monitoring, wait_until
from tests.support import exporter_process

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

# What Grafana puts in place of the dashboard's variables when "All" tenants are selected.
VARIABLES = {"$tenant": ".+", "${tenant}": ".+"}


def panel_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) for every target of every panel, rows' nested panels included."""
    dashboard = json.loads(DASHBOARD.read_text())
    queries = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            walk(panel.get("panels", []))
            for target in panel.get("targets", []):
                queries.append((panel["title"], target["expr"]))

    walk(dashboard["panels"])
    return queries


def tenant_variable_metric() -> str:
    """The series the tenant variable reads its values from: label_values(<this>, tenant)."""
    (variable,) = [v for v in json.loads(DASHBOARD.read_text())["templating"]["list"] if v["name"] == "tenant"]
    match = re.fullmatch(r"label_values\((.+), tenant\)", variable["query"]["query"])
    assert match, variable["query"]
    return match.group(1)


def substitute(expr: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"a variable the test does not know: {expr}"
    return expr


def test_every_panel_query_returns_data(tmp_path: Path) -> None:
    queries = panel_queries()
    assert len(queries) >= 15
    graph = AlwaysFailingGraph(tmp_path)
    # No pacing: at 5 requests per 10 s and a poll every 2 s, the retry after the 401 below would have no turn
    # within its poll's budget, and only retries actually sent are counted.
    polling = (
        "--graph.endpoint", graph.url, "--poll.interval", "2s", "--tenant.name", "contoso", "--graph.rate-limit", "off",
    )  # fmt: skip
    try:
        with (
            exporter_process("--demo", "--poll.interval", "2s") as (demo, _demo_proc),
            exporter_process(*polling, env=graph.env()) as (exporter, _proc),
            monitoring(tmp_path, [demo.removeprefix("http://"), exporter.removeprefix("http://")]) as stack,
        ):
            wait_until(
                "both targets up",
                lambda: sum(t["health"] == "up" for t in stack.targets()) == 2,
                30,
                stack.logs,
            )
            # A refused token makes the exporter retry once with a fresh one: the retries series exists.
            wait_until(
                "a first poll", lambda: graph.requests_to("/beta/reports/getCredentialUserRegistrationCount"), 10
            )
            graph.revoke_tokens()

            def without_data() -> list[tuple[str, str]]:
                return [(title, expr) for title, expr in queries if not _has_data(stack, substitute(expr))]

            deadline = time.monotonic() + 30
            missing = without_data()
            while missing and time.monotonic() < deadline:
                time.sleep(0.5)
                missing = without_data()
            # The tenant selector offers both tenants (Grafana runs label_values() as a series query).
            tenants = stack.query(f"count by (tenant) ({tenant_variable_metric()})")
            assert sorted(sample["metric"]["tenant"] for sample in tenants) == ["contoso", "demo"]
    finally:
        graph.close()
    assert missing == [], "panel queries without data:\n" + "\n".join(f"{t}: {e}" for t, e in missing)


def _has_data(stack: Stack, expr: str) -> bool:
    result = stack.query(expr)
    return bool(result) and all(_finite(sample) for sample in result)


def _finite(sample: dict[str, Any]) -> bool:
    return not math.isnan(float(sample["value"][1]))
