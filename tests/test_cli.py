"""The exporter as a user runs it: a separate process, configured by flags and environment only."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli
from tests.fakegraph import FakeGraph, Fault, graph_error


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback only
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@contextmanager
def running(*args: str, env: dict[str, str] | None = None) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "exporter", "--web.listen-address", f"127.0.0.1:{port}", *args],
        env={**base, **(env or {})},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                get(url + "/healthz")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"exporter did not start: {proc.communicate()}") from None
                time.sleep(0.1)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def wait_for(check: object, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


# --- --once ---------------------------------------------------------------------------------------


def test_once_prints_the_metrics_and_exits_zero(fake: FakeGraph) -> None:
    result = run_cli("--once", "--graph.endpoint", fake.url, env=fake.env())
    assert result.returncode == 0, result.stderr
    assert f'tenant_total_users{{tenant="{fake.tenant_id}"}} 23123.0' in result.stdout
    assert f'credential_registered_users{{status="mfaRegistered",tenant="{fake.tenant_id}"}} 18000.0' in result.stdout


def test_once_exits_one_with_the_reason_on_stderr_when_a_poll_fails(fake: FakeGraph) -> None:
    fake.fail("legacy", graph_error(403, "Authorization_RequestDenied", "Insufficient privileges.", "req-9"))
    result = run_cli("--once", "--source", "legacy", "--graph.endpoint", fake.url, env=fake.env())
    assert result.returncode == 1
    assert "http_4xx" in result.stderr and "Authorization_RequestDenied" in result.stderr
    assert "request_id=req-9" in result.stderr
    assert f'credential_exporter_up{{tenant="{fake.tenant_id}"}} 0.0' in result.stdout


# --- serving --------------------------------------------------------------------------------------


def test_demo_serves_metrics_health_and_a_landing_page_and_stops_on_sigterm() -> None:
    with running("--demo") as (url, proc):
        wait_for(lambda: get(url + "/readyz")[0] == 200)
        status, text = get(url + "/metrics")
        assert status == 200
        assert 'tenant_total_users{tenant="demo"}' in text
        # The process metrics every Python exporter serves, from the exporter's own registry.
        assert "\nprocess_resident_memory_bytes " in text and "\nprocess_cpu_seconds_total " in text
        assert '\npython_info{implementation="' in text
        assert 'credential_registered_users{status="mfaRegistered",tenant="demo"}' in text
        assert 'credential_exporter_source_info{source="demo",tenant="demo"} 1.0' in text
        assert get(url + "/healthz")[0] == 200
        status, page = get(url + "/")
        assert (
            status == 200 and 'href="/metrics"' in page and '<td data-label="Tenant">demo</td>' in page and "%" in page
        )
        assert get(url + "/nope")[0] == 404
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        assert time.monotonic() - started < 5


def test_readyz_waits_for_the_first_poll_round_and_metrics_never_wait_on_graph(fake: FakeGraph) -> None:
    fake.fail("legacy", Fault(action="stall", seconds=4, status=200, body={"value": []}))
    with running("--graph.endpoint", fake.url, env=fake.env()) as (url, _proc):
        wait_for(lambda: len(fake.requests_to("/beta/reports/getCredentialUserRegistrationCount")) == 1)
        assert get(url + "/readyz")[0] == 503
        started = time.monotonic()
        status, text = get(url + "/metrics")
        assert status == 200 and time.monotonic() - started < 2
        assert f'credential_exporter_up{{tenant="{fake.tenant_id}"}} 0.0' in text
        wait_for(lambda: get(url + "/readyz")[0] == 200)


def test_a_failing_tenant_keeps_being_served_and_recovers_on_the_next_tick(fake: FakeGraph) -> None:
    fake.fail("legacy", Fault(200, "<html>oops</html>"))
    with running("--graph.endpoint", fake.url, "--poll.interval", "1s", env=fake.env()) as (url, _proc):
        wait_for(lambda: f'credential_exporter_up{{tenant="{fake.tenant_id}"}} 1.0' in get(url + "/metrics")[1])
        text = get(url + "/metrics")[1]
        assert f'credential_exporter_poll_errors_total{{reason="bad_response",tenant="{fake.tenant_id}"}} 1.0' in text
        assert f'tenant_total_users{{tenant="{fake.tenant_id}"}} 23123.0' in text


# --- secrets --------------------------------------------------------------------------------------


def test_the_client_secret_appears_nowhere_even_at_debug_level(fake: FakeGraph) -> None:
    secret = fake.client_secret
    fake.fail("legacy", Fault(action="reset"), graph_error(400, "BadRequest", "nope"), Fault(200, "not json"))
    env = fake.env()
    with running(
        "--graph.endpoint", fake.url, "--poll.interval", "1s", "--poll.timeout", "1s", "--log.level", "debug", env=env
    ) as (url, proc):
        wait_for(
            lambda: (
                'reason="bad_response"' in get(url + "/metrics")[1]
                and f'credential_exporter_up{{tenant="{fake.tenant_id}"}} 1.0' in get(url + "/metrics")[1]
            )
        )
        pages = get(url + "/metrics")[1] + get(url + "/")[1]
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert "poll failed" in err
    for text in (pages, out, err):
        assert secret not in text
    wrong = run_cli(
        "--once",
        "--graph.endpoint",
        fake.url,
        "--log.level",
        "debug",
        env=fake.env(AZURE_CLIENT_SECRET="wrong-" + secret),
    )
    assert wrong.returncode == 1 and "AADSTS7000215" in wrong.stderr
    assert secret not in wrong.stderr + wrong.stdout


# --- configuration errors ---------------------------------------------------------------------------

IDS = {"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c"}
SECRET = {**IDS, "AZURE_CLIENT_SECRET": "x"}

CONFIG_ERRORS = [
    pytest.param([], {"AZURE_CLIENT_SECRET": "x"}, ["AZURE_TENANT_ID", "AZURE_CLIENT_ID"], id="no-ids"),
    pytest.param([], IDS, ["credentials: set one of"], id="no-credential"),
    pytest.param(
        [], {**SECRET, "AZURE_FEDERATED_TOKEN_FILE": "/etc/hostname"}, ["set only one of"], id="two-credentials"
    ),
    pytest.param(
        [],
        {**IDS, "AZURE_CLIENT_SECRET_FILE": "/nonexistent/s"},
        ["AZURE_CLIENT_SECRET_FILE: cannot read /nonexistent/s"],
        id="unreadable-secret-file",
    ),
    pytest.param(
        [],
        {**IDS, "AZURE_CLIENT_CERTIFICATE_PATH": "/nonexistent/c"},
        ["AZURE_CLIENT_CERTIFICATE_PATH: cannot read"],
        id="unreadable-certificate",
    ),
    pytest.param(
        ["--poll.interval", "15 minutes"],
        SECRET,
        ["--poll.interval: '15 minutes' is not a duration"],
        id="bad-duration",
    ),
    pytest.param(
        ["--poll.interval", "1m", "--poll.timeout", "5m"],
        SECRET,
        ["--poll.timeout: must not be longer"],
        id="timeout-over-interval",
    ),
    pytest.param(
        ["--graph.endpoint", "http://graph.example"], SECRET, ["--graph.endpoint", "https://"], id="http-endpoint"
    ),
    pytest.param(
        [],
        {**SECRET, "AZURE_AUTHORITY_HOST": "http://login.example"},
        ["AZURE_AUTHORITY_HOST", "https://"],
        id="http-authority",
    ),
    pytest.param(["--cloud", "mars"], SECRET, ["--cloud: 'mars'"], id="bad-cloud"),
    pytest.param(["--source", "magic"], SECRET, ["--source: 'magic'"], id="bad-source"),
    pytest.param(["--web.listen-address", "9918"], SECRET, ["--web.listen-address"], id="bad-listen-address"),
    pytest.param(["--log.level", "loud"], SECRET, ["--log.level"], id="bad-log-level"),
    pytest.param(["--auth", "password"], SECRET, ["--auth: 'password'"], id="bad-auth"),
    pytest.param([], {**SECRET, "AZURE_TENANT_ID": "a/b"}, ["AZURE_TENANT_ID: 'a/b'"], id="bad-tenant-id"),
]


@pytest.mark.parametrize(("args", "env", "messages"), CONFIG_ERRORS)
def test_a_configuration_error_names_the_setting_and_exits_2(
    args: list[str], env: dict[str, str], messages: list[str]
) -> None:
    result = run_cli(*args, env=env)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    for message in messages:
        assert message in result.stderr


def test_every_configuration_problem_is_reported_at_once() -> None:
    result = run_cli(
        "--poll.interval", "soon", "--graph.endpoint", "http://x", env={"AZURE_CLIENT_SECRET_FILE": "/nope"}
    )
    assert result.returncode == 2
    for name in (
        "--poll.interval",
        "--graph.endpoint",
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET_FILE",
    ):
        assert name in result.stderr


def test_a_secret_file_is_read_and_trimmed(fake: FakeGraph, tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(fake.client_secret + "\n")
    env = fake.env(AZURE_CLIENT_SECRET_FILE=str(secret_file))
    del env["AZURE_CLIENT_SECRET"]
    result = run_cli("--once", "--graph.endpoint", fake.url, env=env)
    assert result.returncode == 0, result.stderr


def test_json_logs_are_one_object_per_line_with_the_graph_code(fake: FakeGraph) -> None:
    fake.fail("legacy", graph_error(403, "Authentication_RequestFromNonPremiumTenantOrB2CTenant", "No P1.", "req-7"))
    result = run_cli("--once", "--log.format", "json", "--graph.endpoint", fake.url, env=fake.env())
    assert result.returncode == 1
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    (failure,) = [line for line in lines if line["msg"] == "poll failed"]
    assert failure["level"] == "warn" and failure["tenant"] == fake.tenant_id
    assert failure["code"] == "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
    assert failure["request_id"] == "req-7" and failure["reason"] == "http_4xx"


def test_sigterm_stops_within_seconds_even_while_graph_is_stalling(fake: FakeGraph) -> None:
    fake.fail("legacy", Fault(action="stall", seconds=25, status=200, body={"value": []}))
    with running("--graph.endpoint", fake.url, env=fake.env()) as (_url, proc):
        wait_for(lambda: len(fake.requests_to("/beta/reports/getCredentialUserRegistrationCount")) == 1)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert time.monotonic() - started < 5
