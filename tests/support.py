"""What tests share: paths, free ports, waiting, and running the exporter in-process or as a process.

Tests import from here, never from one another (conftest.py holds only fixtures).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import generate_latest

from exporter.app import Exporter
from exporter.config import Config, parse_command_line, read_config
from exporter.graph.client import GraphClient
from exporter.graph.credentials import token_provider
from exporter.graph.pacing import Gate
from exporter.telemetry import TenantCounters
from tests.fakegraph import FakeGraph, legacy_payload

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], object], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback only
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def accepts_connections(url: str) -> bool:
    """Whether something listens at the URL's address (whatever it then answers, TLS or not)."""
    address = url.rpartition("/")[2].rpartition(":")
    socket.create_connection((address[0].strip("[]"), int(address[2])), timeout=1).close()
    return True


def config_of(*argv: str, env: Mapping[str, str]) -> Config:
    """The Config that main() would build from this command line and environment."""
    return read_config(parse_command_line(argv), env)


def make_exporter(fake: FakeGraph, env: dict[str, str] | None = None, **options: object) -> Exporter:
    """An exporter configured the way a user would configure it (options by name), pointed at the fake."""
    given: dict[str, object] = {"graph_endpoint": fake.url, "poll_interval": "1m", "poll_timeout": "20s", **options}
    return Exporter(read_config(given, fake.env() if env is None else env))


def graph_client(fake: FakeGraph, **options: object) -> GraphClient:
    """The Graph client of the exporter `make_exporter` would make, on its own: for checks of single requests."""
    exporter = make_exporter(fake, **options)
    stop = threading.Event()
    return GraphClient(
        root=exporter.config.graph_root,
        tokens=token_provider(exporter.config.tenants[0], exporter.config),
        gate=Gate(None, sleep=stop.wait),
        counters=TenantCounters(),
        read_timeout=5,
        sleep=stop.wait,
    )


def exposition(exporter: Exporter) -> str:
    return generate_latest(exporter.registry).decode()


def value(exporter: Exporter, name: str, **labels: str) -> float | None:
    return exporter.registry.get_sample_value(name, labels)


def _environment(env: Mapping[str, str] | None) -> dict[str, str]:
    """This process's environment without AZURE_* (a developer's own must not leak in), plus `env`."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}, **(env or {})}


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the installed exporter as a user would, in a clean environment plus `env`."""
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        env=_environment(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


@contextmanager
def exporter_process(
    *args: str,
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
    stdout: Path | None = None,
    ready: Callable[[str], bool] | None = None,
    host: str = "127.0.0.1",
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """Run the exporter on a free port until `ready(url)` (default: it answers /healthz); always stop it.

    Its output goes to files when `log` is given (stderr there, stdout to `stdout` or `log`), which the
    test can read while it runs; files, not pipes, as a pipe nobody reads fills up and blocks the
    exporter's logging. Without `log`, to pipes read at the end. On leaving, the process gets SIGTERM,
    then SIGKILL if it has not stopped within 10 s.
    """
    address = f"[{host}]:{free_port(host)}" if ":" in host else f"{host}:{free_port(host)}"
    url = f"http://{address}"
    with ExitStack() as files:
        err = files.enter_context(log.open("w")) if log else None
        out = files.enter_context(stdout.open("w")) if stdout else err
        proc = subprocess.Popen(
            [sys.executable, "-m", "exporter", "--web.listen-address", address, *args],
            env=_environment(env),
            cwd=ROOT,
            stdout=out or subprocess.PIPE,
            stderr=err or subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )

        def answers() -> bool:
            try:
                return ready(url) if ready else bool(get(url + "/healthz"))
            except OSError:
                return False

        try:
            deadline = time.monotonic() + 30
            while not answers():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"exporter did not start: {_output(proc, log)}")
                time.sleep(0.1)
            yield url, proc
        finally:
            stop(proc)
            proc.communicate()


def stop(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM, then SIGKILL if the process has not ended within 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _output(proc: subprocess.Popen[str], log: Path | None) -> str:
    if proc.poll() is None:
        proc.kill()
    if log is not None:
        proc.wait()
        return log.read_text()
    return "".join(part or "" for part in proc.communicate())


def write_config(path: Path, document: dict[str, Any]) -> Path:
    # A different size every time as well as a new mtime, so that a rewrite within one clock tick still shows.
    path.write_text(yaml.safe_dump(document) + "#" * (int(time.monotonic_ns()) % 97) + "\n")
    return path


# --- many tenants on the fake: each with its own numbers, so a mix-up between tenants shows -----------------

SECRET_ENV = "FAKE_GRAPH_SECRET"


def tenant_id(number: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"tenant{number}.example"))


def expected_total(number: int) -> int:
    return 1000 + 17 * number


def serve_tenants(fake: FakeGraph, numbers: range | list[int]) -> None:
    """Each tenant gets its own legacy report, so a mix-up between tenants shows in the numbers."""
    for n in numbers:
        total = expected_total(n)
        fake.legacy_by_tenant[tenant_id(n)] = legacy_payload(total, {"registered": total - n, "mfaRegistered": n})


def tenant_entry(number: int, **credential: object) -> dict[str, object]:
    return {
        "name": f"tenant{number}",
        "tenant_id": tenant_id(number),
        "client_id": FakeGraph.client_id,
        **(credential or {"client_secret_env": SECRET_ENV}),
    }


def rules_generator() -> Any:
    """deploy/kubernetes/generate_prometheusrule.py as a module: what customises the shipped rules."""
    sys.path.insert(0, str(ROOT / "deploy" / "kubernetes"))
    try:
        import generate_prometheusrule  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    return generate_prometheusrule
