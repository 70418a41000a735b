"""The exporter as a user runs it: a separate process, configured by flags and environment only."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from tests.fakegraph import FakeGraph, Fault, graph_error
from tests.support import exporter_process, free_port, get, run_cli, wait_for

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
    with exporter_process("--demo") as (url, proc):
        wait_for(lambda: get(url + "/readyz")[0] == 200)
        status, text = get(url + "/metrics")
        assert status == 200
        assert 'tenant_total_users{tenant="demo"}' in text
        assert "the tenant. Polled from a simulated tenant (--demo), not Microsoft Graph every" in text  # its HELP
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
    with exporter_process("--graph.endpoint", fake.url, env=fake.env()) as (url, _proc):
        wait_for(lambda: len(fake.requests_to("/beta/reports/getCredentialUserRegistrationCount")) == 1)
        assert get(url + "/readyz")[0] == 503
        started = time.monotonic()
        status, text = get(url + "/metrics")
        assert status == 200 and time.monotonic() - started < 2
        assert f'credential_exporter_up{{tenant="{fake.tenant_id}"}} 0.0' in text
        wait_for(lambda: get(url + "/readyz")[0] == 200)


def test_a_failing_tenant_keeps_being_served_and_recovers_on_the_next_tick(fake: FakeGraph) -> None:
    fake.fail("legacy", Fault(200, "<html>oops</html>"))
    with exporter_process("--graph.endpoint", fake.url, "--poll.interval", "1s", env=fake.env()) as (url, _proc):
        wait_for(lambda: f'credential_exporter_up{{tenant="{fake.tenant_id}"}} 1.0' in get(url + "/metrics")[1])
        text = get(url + "/metrics")[1]
        assert f'credential_exporter_poll_errors_total{{reason="bad_response",tenant="{fake.tenant_id}"}} 1.0' in text
        assert f'tenant_total_users{{tenant="{fake.tenant_id}"}} 23123.0' in text


# --- secrets --------------------------------------------------------------------------------------


def test_the_client_secret_appears_nowhere_even_at_debug_level(fake: FakeGraph) -> None:
    secret = fake.client_secret
    fake.fail("legacy", Fault(action="reset"), graph_error(400, "BadRequest", "nope"), Fault(200, "not json"))
    env = fake.env()
    with exporter_process(
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
    pytest.param([], IDS, ["credential: missing: give exactly one of"], id="no-credential"),
    pytest.param(
        [],
        {**SECRET, "AZURE_FEDERATED_TOKEN_FILE": "/etc/hostname"},
        ["give exactly one credential, not AZURE_CLIENT_SECRET and AZURE_FEDERATED_TOKEN_FILE"],
        id="two-credentials",
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
        [],
        {**IDS, "AZURE_CLIENT_SECRET": "x"},
        ["AZURE_CLIENT_SECRET: shorter than 8 characters"],
        id="secret-too-short-to-scrub",
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
    pytest.param(
        ["--graph.endpoint", "https://evil.example\\@graph.microsoft.com"],
        SECRET,
        ["--graph.endpoint", "backslash"],
        id="endpoint-two-parsers-read-differently",
    ),
    pytest.param(
        [],
        {**SECRET, "AZURE_AUTHORITY_HOST": "https://evil.example@login.microsoftonline.com"},
        ["AZURE_AUTHORITY_HOST", "userinfo"],
        id="authority-with-userinfo",
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
    with exporter_process("--graph.endpoint", fake.url, env=fake.env()) as (_url, proc):
        wait_for(lambda: len(fake.requests_to("/beta/reports/getCredentialUserRegistrationCount")) == 1)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert time.monotonic() - started < 5


# --- the command line ---------------------------------------------------------------------------------

LONG_SECRET = {**IDS, "AZURE_CLIENT_SECRET": "not-a-real-secret"}


def test_help_groups_the_flags_and_lists_the_environment() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for group in ("web:", "polling:", "Microsoft Graph:", "tenants:", "shards:", "logging:"):
        assert f"\n{group}\n" in result.stdout, group
    assert "--graph.timeout DURATION" in result.stdout and "HTTP_TIMEOUT" not in result.stdout
    assert "file key poll.interval" in result.stdout
    for variable in ("AZURE_TENANT_ID", "AZURE_CLIENT_SECRET_FILE", "AZURE_FEDERATED_TOKEN_FILE"):
        assert variable in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--poll.concurrency", "abc"], "--poll.concurrency: 'abc' is not a whole number"),
        (["--graph.page-size", "0"], "--graph.page-size: must be from 1 to 10000"),
        (["--poll.intervall", "5m"], "unrecognized arguments: --poll.intervall 5m"),
        (["--poll.interval"], "--poll.interval: expected one argument"),
        (["--web.listen-address", ":99999"], "the port 99999 is out of range"),
    ],
)
def test_a_bad_flag_gets_one_line_and_exit_code_2(args: list[str], message: str) -> None:
    result = run_cli(*args, env=LONG_SECRET)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "usage:" not in result.stderr, result.stderr
    assert result.stderr.startswith("entra-credential-exporter: ") and message in result.stderr


def test_the_demo_polls_at_the_interval_given_even_when_it_is_the_default() -> None:
    given = run_cli("--demo", "--once", "--poll.interval", "15m")
    assert given.returncode == 0, given.stderr
    assert "every 15m;" in given.stdout
    assert "every 30s;" in run_cli("--demo", "--once").stdout  # the demo's own pace when none is given


def test_metrics_are_served_under_the_telemetry_path() -> None:
    with exporter_process("--demo", "--web.telemetry-path", "/internal/metrics") as (url, _proc):
        status, body = get(url + "/internal/metrics")
        assert status == 200 and "credential_exporter_up" in body
        assert get(url + "/metrics")[0] == 404


def test_an_ipv6_listen_address_is_logged_in_brackets(tmp_path: Path) -> None:
    try:
        free_port("::1")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    log = tmp_path / "log"
    with exporter_process("--demo", host="::1", log=log) as (url, _proc):
        wait_for(lambda: "msg=serving" in log.read_text())
        (serving,) = [line for line in log.read_text().splitlines() if "msg=serving" in line]
    assert f"address={url.removeprefix('http://')}" in serving and "address=[::1]:" in serving
