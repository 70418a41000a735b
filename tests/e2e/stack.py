"""Real Prometheus and Alertmanager on loopback, configured from the files under deploy/.

The configuration is the shipped one (deploy/prometheus/prometheus.yml, deploy/prometheus/rules.yml,
deploy/compose/alertmanager.yml), with only what a test must change: targets on loopback ports, intervals of
a second, and every alert's `for:` shortened so that a test does not wait half an hour. The expressions,
thresholds, labels and annotations are the shipped ones.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakegraph import FakeGraph, Fault
from tests.support import ROOT, free_port, stop

DEPLOY = ROOT / "deploy"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
RULES = DEPLOY / "prometheus" / "rules.yml"
ALERTMANAGER_CONFIG = DEPLOY / "compose" / "alertmanager.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "entra-credential-exporter.json"

TEST_HOLD = "2s"  # every alert's `for:` in these tests


def program(*names: str) -> str:
    """The path of the first of `names` on PATH. Missing: a skip on a developer's machine, a failure in CI."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    message = f"{' or '.join(names)} is not installed (Debian: apt-get install prometheus prometheus-alertmanager)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; CI must install it in .ci/run")
    pytest.skip(message)


class AlwaysFailingGraph(FakeGraph):
    """The fake Graph, plus a switch that makes every report request fail (after any queued faults)."""

    failing: Fault | None = None

    def next_fault(self, route: str) -> Fault | None:
        return super().next_fault(route) or (self.failing if route in ("legacy", "details") else None)


def http_json(url: str, timeout: float = 5) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback only
        return json.load(response)


def wait_until(what: str, check: Callable[[], Any], timeout: float, logs: Callable[[], str] = lambda: "") -> Any:
    """Poll `check` until it returns something truthy; fail with `what` (and the programs' logs) at the timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (OSError, ValueError) as exc:  # not listening yet, or a half-written answer
            last = exc
        else:
            if last:
                return last
        time.sleep(0.25)
    pytest.fail(f"{what} not reached within {timeout:g}s (last: {last!r})\n{logs()}")


def prometheus_config(exporters: list[str], alertmanager: str) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml with loopback targets and one-second intervals."""
    config: dict[str, Any] = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "entra-credential-exporter"]
    job["static_configs"] = [{"targets": exporters}]
    (alerting,) = config["alerting"]["alertmanagers"]
    alerting["static_configs"] = [{"targets": [alertmanager]}]
    assert config["rule_files"] == ["rules.yml"], "the tests write the rules next to the config"
    return config


def rules_with_short_holds(text: str | None = None) -> dict[str, Any]:
    """deploy/prometheus/rules.yml (or `text`, as the generator customised it) with every `for:` set to
    TEST_HOLD; nothing else changes."""
    rules: dict[str, Any] = yaml.safe_load(text or RULES.read_text())
    alerts = {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"] if "alert" in rule}
    assert alerts, "no alerts in rules.yml"
    for rule in alerts.values():
        if "for" in rule:
            rule["for"] = TEST_HOLD
    return rules


@dataclass
class Stack:
    prometheus: str  # base URLs
    alertmanager: str
    logs: Callable[[], str]

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = f"{self.prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            answer = http_json(url)
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"Prometheus refused {expr!r}: {exc.read().decode()}") from None
        assert answer["status"] == "success", answer
        return list(answer["data"]["result"])

    def targets(self) -> list[dict[str, Any]]:
        return list(http_json(f"{self.prometheus}/api/v1/targets")["data"]["activeTargets"])

    def prometheus_alerts(self, name: str) -> list[dict[str, Any]]:
        alerts = http_json(f"{self.prometheus}/api/v1/alerts")["data"]["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == name]

    def alertmanager_alerts(self, name: str) -> list[dict[str, Any]]:
        """Active alerts of that name as Alertmanager's v2 API lists them."""
        query = urllib.parse.urlencode({"filter": f'alertname="{name}"', "active": "true"})
        return list(http_json(f"{self.alertmanager}/api/v2/alerts?{query}"))

    def wait_for_alert(self, name: str, tenant: str, timeout: float = 45) -> dict[str, Any]:
        found = wait_until(
            f"{name} for tenant {tenant} in Alertmanager",
            lambda: [a for a in self.alertmanager_alerts(name) if a["labels"].get("tenant") == tenant],
            timeout,
            self.logs,
        )
        return dict(found[0])


def _status(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback only
        return int(response.status)


def _tail(path: Path, lines: int = 30) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return f"--- {path.name} ---\n" + "\n".join(text.splitlines()[-lines:])


@contextmanager
def _process(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        stop(proc)


@contextmanager
def monitoring(tmp: Path, exporters: list[str], rules: str | None = None) -> Iterator[Stack]:
    """Alertmanager and Prometheus, scraping `exporters` (host:port), until the block ends."""
    prometheus_bin = program("prometheus")
    alertmanager_bin = program("prometheus-alertmanager", "alertmanager")
    am_port, prom_port = free_port(), free_port()
    am_dir, prom_dir = tmp / "alertmanager", tmp / "prometheus"
    am_dir.mkdir()
    prom_dir.mkdir()
    shutil.copy(ALERTMANAGER_CONFIG, am_dir / "alertmanager.yml")
    (prom_dir / "prometheus.yml").write_text(yaml.safe_dump(prometheus_config(exporters, f"127.0.0.1:{am_port}")))
    (prom_dir / "rules.yml").write_text(yaml.safe_dump(rules_with_short_holds(rules)))
    am_log, prom_log = tmp / "alertmanager.log", tmp / "prometheus.log"

    def logs() -> str:
        return _tail(prom_log) + "\n" + _tail(am_log)

    am_args = [
        alertmanager_bin,
        f"--config.file={am_dir / 'alertmanager.yml'}",
        f"--storage.path={am_dir / 'data'}",
        f"--web.listen-address=127.0.0.1:{am_port}",
        "--cluster.listen-address=",  # no gossip port: a single instance
    ]
    prom_args = [
        prometheus_bin,
        f"--config.file={prom_dir / 'prometheus.yml'}",
        f"--storage.tsdb.path={prom_dir / 'data'}",
        f"--web.listen-address=127.0.0.1:{prom_port}",
    ]
    with _process(am_args, am_log), _process(prom_args, prom_log):
        stack = Stack(f"http://127.0.0.1:{prom_port}", f"http://127.0.0.1:{am_port}", logs)
        wait_until("Alertmanager ready", lambda: http_json(f"{stack.alertmanager}/api/v2/status"), 30, logs)
        wait_until("Prometheus ready", lambda: _status(f"{stack.prometheus}/-/ready") == 200, 30, logs)
        yield stack
