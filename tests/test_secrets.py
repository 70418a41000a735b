"""Secrets stay where they belong: the token only to Graph, the credential only to the authority, neither in
any output; secret files readable by others are pointed out; configured names cannot break the output."""

from __future__ import annotations

import html
import json
import logging
import os
import signal
import time
from pathlib import Path

import pytest
import requests
import yaml
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from exporter import logs
from exporter.errors import BadResponse, PollError
from exporter.graph.credentials import token_provider
from exporter.values import REDACTED, Secret
from exporter.web.routes import Endpoints, serve
from tests.fakegraph import LEGACY_PATH, FakeGraph, Fault, graph_error
from tests.support import exporter_process, graph_client, make_exporter, run_cli, wait_for

# --- where the token and the credential go ------------------------------------------------------------


def test_the_bearer_token_is_never_sent_outside_the_graph_root(fake: FakeGraph, stranger: FakeGraph) -> None:
    client = graph_client(fake)
    deadline = time.monotonic() + 20
    assert client.get_json(fake.url + LEGACY_PATH, deadline)  # the token works at home
    port = stranger.url.rsplit(":", 1)[1]
    for url in (
        stranger.url + LEGACY_PATH,  # a nextLink to another origin
        f"https://localhost:{port}{LEGACY_PATH}",  # another host name
        fake.url.replace("https://", "http://") + LEGACY_PATH,  # a downgrade
        fake.url + "@" + stranger.url.removeprefix("https://") + LEGACY_PATH,  # userinfo trick
    ):
        with pytest.raises(BadResponse, match="outside the Graph root"):
            client.get_json(url, deadline)
    assert stranger.seen == []


def test_a_redirect_from_graph_is_not_followed(fake: FakeGraph, stranger: FakeGraph) -> None:
    fake.fail("legacy", Fault(302, b"", {"Location": stranger.url + LEGACY_PATH}))
    exporter = make_exporter(fake)
    (status,) = exporter.poller.poll_round()
    assert not status.up and status.last_reason == "bad_response"
    assert stranger.seen == []


def test_the_credential_is_never_sent_to_a_token_endpoint_outside_the_authority(
    fake: FakeGraph, stranger: FakeGraph
) -> None:
    fake.token_endpoint_origin = stranger.url  # a discovery document that names someone else's endpoint
    exporter = make_exporter(fake)
    (status,) = exporter.poller.poll_round()
    assert not status.up and status.last_reason == "auth"
    assert "outside the authority" in (status.last_detail or "")
    assert stranger.seen == []
    assert all(fake.client_secret.encode() not in seen.body for seen in stranger.seen)


def test_the_credential_is_not_reposted_on_a_redirect_from_the_token_endpoint(
    fake: FakeGraph, stranger: FakeGraph
) -> None:
    target = f"{stranger.url}/{fake.tenant_id}/oauth2/v2.0/token"
    fake.fail("token", Fault(307, b"", {"Location": target}), Fault(308, b"", {"Location": target}))
    exporter = make_exporter(fake)
    (status,) = exporter.poller.poll_round()
    assert not status.up
    assert stranger.seen == []


# --- files readable by others ---------------------------------------------------------------------------


FOREIGN_GROUP = 54321  # a group the test process is not in


@pytest.mark.parametrize(
    ("mode", "group", "warned"),
    [
        (0o644, None, True),  # anyone may read it
        (0o604, None, True),
        (0o640, FOREIGN_GROUP, True),  # a group the exporter is not in
        (0o640, None, False),  # the exporter's own group: Kubernetes' fsGroup + defaultMode 0440
        (0o600, FOREIGN_GROUP, False),
        (0o400, None, False),
    ],
)
def test_a_secret_file_readable_by_others_earns_one_warning(
    fake: FakeGraph, tmp_path: Path, mode: int, group: int | None, warned: bool
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(fake.client_secret)
    secret_file.chmod(mode)
    if group is not None:
        if os.geteuid() != 0 or group in os.getgroups():
            pytest.skip("needs root to give the file a foreign group")
        os.chown(secret_file, -1, group)
    env = fake.env(AZURE_CLIENT_SECRET_FILE=str(secret_file))
    del env["AZURE_CLIENT_SECRET"]
    result = run_cli("--once", "--graph.endpoint", fake.url, env=env)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "readable by" in line]
    assert len(lines) == (1 if warned else 0)
    if warned:
        assert str(secret_file) in lines[0] and "level=warn" in lines[0]


@pytest.mark.parametrize("key", ["client_secret_file", "certificate_password_file"])
def test_a_secret_file_named_in_the_configuration_file_earns_the_same_warning(
    fake: FakeGraph, tmp_path: Path, key: str
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(fake.client_secret)
    secret_file.chmod(0o644)
    tenant = {"name": "contoso", "tenant_id": fake.tenant_id, "client_id": fake.client_id, key: str(secret_file)}
    if key == "certificate_password_file":
        certificate = tmp_path / "app.pem"
        certificate.write_text("not a certificate: the warning comes before any use of it")
        certificate.chmod(0o600)
        tenant["certificate_path"] = str(certificate)
    config = tmp_path / "tenants.yaml"
    config.write_text(yaml.safe_dump({"tenants": [tenant]}))
    env = {"AZURE_AUTHORITY_HOST": fake.url, "REQUESTS_CA_BUNDLE": str(fake.ca_path)}
    result = run_cli("--once", "--config.file", str(config), "--graph.endpoint", fake.url, env=env)
    lines = [line for line in result.stderr.splitlines() if "readable by" in line]
    assert len(lines) == 1 and str(secret_file) in lines[0] and "level=warn" in lines[0], result.stderr


# --- configured names in the output -----------------------------------------------------------------------

HOSTILE_NAME = 'con"to\\so\n<script>alert(1)</script> & co'


def test_a_hostile_tenant_name_is_escaped_in_metrics_and_on_the_landing_page(fake: FakeGraph) -> None:
    exporter = make_exporter(fake, tenant_name=HOSTILE_NAME)
    exporter.poller.poll_round()
    server = serve(Endpoints.of(exporter, lambda: True, lambda: True), "127.0.0.1", 0)
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        text = requests.get(base + "/metrics", timeout=5).text
        assert 'tenant="con\\"to\\\\so\\n<script>alert(1)</script> & co"' in text
        openmetrics = requests.get(
            base + "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}, timeout=5
        ).text
        for families in (text_string_to_metric_families(text), parse_openmetrics(openmetrics)):
            totals = [s for f in families for s in f.samples if s.name == "tenant_total_users"]
            assert [s.labels["tenant"] for s in totals] == [HOSTILE_NAME]
        page = requests.get(base + "/", timeout=5).text
        assert f'<td data-label="Tenant">{html.escape(HOSTILE_NAME)}</td>' in page and "<script>" not in page
    finally:
        server.shutdown()
        server.server_close()


def test_a_hostile_tenant_name_passes_the_command_line_intact(fake: FakeGraph) -> None:
    result = run_cli("--once", "--graph.endpoint", fake.url, "--tenant.name", HOSTILE_NAME, env=fake.env())
    assert result.returncode == 0, result.stderr
    (total,) = [
        s for f in text_string_to_metric_families(result.stdout) for s in f.samples if s.name == "tenant_total_users"
    ]
    assert total.labels["tenant"] == HOSTILE_NAME


# --- the secret scan ----------------------------------------------------------------------------------------

FAULTS = [
    Fault(action="reset"),
    graph_error(500, "InternalServerError", "boom"),
    graph_error(503, "ServiceUnavailable", "later", "req-503"),
    Fault(429, {"error": {"code": "TooManyRequests", "message": "slow down"}}, {"Retry-After": "1"}),
    Fault(200, "not json at all"),
    Fault(200, b"\xff\xfe\x00binary"),
    Fault(200, {"value": [{"totalUserCount": -1}]}),
    Fault(action="truncate", status=200, body='{"value": [{"totalUserCount": 5'),
    graph_error(403, "Authorization_RequestDenied", "Insufficient privileges."),
]


@pytest.mark.parametrize("source", ["legacy", "details"])
def test_no_output_ever_holds_the_client_secret_whatever_graph_answers(
    fake: FakeGraph, tmp_path: Path, source: str
) -> None:
    """The fault matrix at debug level, with the secret scanned for in every byte the exporter wrote or served."""
    secret = fake.client_secret
    fake.users = fake.users[:50]  # one page: each fault then costs one poll
    fake.fail(source, *FAULTS)
    fake.fail("token", graph_error(500, "server_error", "identity platform down"), Fault(action="reset"))
    args = ("--graph.endpoint", fake.url, "--source", source, "--poll.interval", "1s", "--poll.timeout", "1s")
    args += ("--graph.rate-limit", "off", "--log.level", "debug")
    served: list[bytes] = []
    with exporter_process(*args, env=fake.env(), log=tmp_path / "err", stdout=tmp_path / "out") as (url, proc):

        def drained() -> bool:
            try:
                for path in ("/metrics", "/", "/healthz", "/readyz"):
                    served.append(requests.get(url + path, timeout=5).content)
            except requests.ConnectionError:
                return False  # not listening yet
            with fake.lock:
                left = len(fake.faults[source]) + len(fake.faults["token"])
            return left == 0 and f'credential_exporter_up{{tenant="{fake.tenant_id}"}} 1.0' in served[-4].decode()

        wait_for(drained, timeout=90)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    stdout, stderr = (tmp_path / "out").read_bytes(), (tmp_path / "err").read_bytes()
    assert b"poll failed" in stderr and b"bad_response" in stderr and b"http_5xx" in stderr  # the faults did happen
    wrong = run_cli(
        "--once", "--graph.endpoint", fake.url, "--log.level", "debug", env=fake.env(AZURE_CLIENT_SECRET="x" + secret)
    )
    assert wrong.returncode == 1 and "invalid_client" in wrong.stderr
    for blob in (stdout, stderr, wrong.stdout.encode(), wrong.stderr.encode(), *served):
        assert secret.encode() not in blob
        assert secret[:12].encode() not in blob  # nor a recognisable piece of it
        assert b"fake-at-" not in blob  # nor any access token the fake issued
    # The secret did go where it belongs: the fake's token endpoint saw it.
    assert any(secret.encode() in s.body for s in fake.seen if s.method == "POST")


def test_an_error_raised_while_getting_a_token_does_not_carry_the_secret(fake: FakeGraph) -> None:
    fake.fail("token", Fault(action="reset"))
    exporter = make_exporter(fake)
    provider = token_provider(exporter.config.tenants[0], exporter.config)
    with pytest.raises(PollError) as caught:
        provider.token()
    for text in (str(caught.value), repr(caught.value), repr(exporter.config), str(caught.value.fields())):
        assert fake.client_secret not in text


# --- the log scrubber ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["logfmt", "json"])
@pytest.mark.parametrize("secret", ['pa"ss\\word', "pässwörd-ü", "tab\there", "plain-Secret_value~1"])
def test_the_log_scrubber_catches_a_secret_however_the_format_escapes_it(fmt: str, secret: str) -> None:
    formatter = logs._Formatter(fmt, [Secret(secret)])
    record = logging.LogRecord("exporter", logging.WARNING, __file__, 1, "failed with %s", (secret,), None)
    record.kv = {"detail": f"the password {secret} was refused", "count": 3}
    line = formatter.format(record)
    escaped = {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    escaped.add(secret.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t"))
    assert not any(form in line for form in escaped), line
    assert line.count(REDACTED) == 2
    if fmt == "json":
        assert json.loads(line)["count"] == 3


def test_a_netrc_entry_for_graphs_host_never_replaces_the_bearer_token(
    fake: FakeGraph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # requests would put a ~/.netrc login for the host in place of the Authorization header on every request.
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password hunter2\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    exporter = make_exporter(fake, source="details", rate_limit="off")
    (status,) = exporter.poller.poll_round()
    assert status.up, status.last_detail
