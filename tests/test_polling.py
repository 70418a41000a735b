"""The exporter against the fake Graph: the real msal and requests, over HTTPS on loopback."""

from __future__ import annotations

import logging

import pytest

from exporter.errors import REASONS
from tests.fakegraph import LEGACY_PATH, FakeGraph, Fault, graph_error, legacy_payload
from tests.support import exposition, make_exporter, value

COUNTS = {"registered": 21000, "enabled": 22000, "capable": 20500, "mfaRegistered": 18000}


def registered(exporter: object, status: str, tenant: str = FakeGraph.tenant_id) -> float | None:
    return value(exporter, "credential_registered_users", tenant=tenant, status=status)  # type: ignore[arg-type]


def test_publishes_exactly_graphs_numbers_labelled_with_the_tenant(fake: FakeGraph) -> None:
    exporter = make_exporter(fake)
    (status,) = exporter.poller.poll_round()
    assert status.up
    tenant = fake.tenant_id
    assert value(exporter, "tenant_total_users", tenant=tenant) == 23123
    for name, count in COUNTS.items():
        assert registered(exporter, name) == count
    assert value(exporter, "credential_exporter_up", tenant=tenant) == 1
    assert value(exporter, "credential_exporter_source_info", tenant=tenant, source="legacy") == 1
    assert value(exporter, "credential_exporter_graph_requests_total", tenant=tenant, code="200") == 1
    assert value(exporter, "credential_exporter_last_success_timestamp_seconds", tenant=tenant) > 1.7e9
    assert value(exporter, "credential_exporter_poll_duration_seconds", tenant=tenant) > 0
    for reason in REASONS:
        assert value(exporter, "credential_exporter_poll_errors_total", tenant=tenant, reason=reason) == 0
    # The request went to the configured Graph root, with the token from the fake identity platform.
    (request,) = fake.requests_to(LEGACY_PATH)
    assert request.headers["Authorization"].startswith("Bearer fake-at-")


def test_the_tenant_label_is_the_configured_name(fake: FakeGraph) -> None:
    exporter = make_exporter(fake, tenant_name="contoso")
    exporter.poller.poll_round()
    assert value(exporter, "tenant_total_users", tenant="contoso") == 23123


@pytest.mark.parametrize(("spelling", "envelope"), [("schema", True), ("page", False), ("misspelt", True)])
def test_every_spelling_graph_has_used_is_read(fake: FakeGraph, spelling: str, envelope: bool) -> None:
    fake.legacy = legacy_payload(500, {"registered": 400, "mfaRegistered": 300}, spelling=spelling, envelope=envelope)
    exporter = make_exporter(fake)
    exporter.poller.poll_round()
    assert value(exporter, "tenant_total_users", tenant=fake.tenant_id) == 500
    assert registered(exporter, "mfaRegistered") == 300


BAD_ANSWERS = [
    pytest.param(Fault(200, (b'{\n "totalUserCount": 5,\n "userRegistrationCounts": [{},],\n}')), id="trailing-comma"),
    pytest.param(Fault(200, "<html><body>Service Unavailable</body></html>"), id="html"),
    pytest.param(Fault(200, {"value": [{"id": "x", "userRegistrationCounts": []}]}), id="missing-total"),
    pytest.param(Fault(200, legacy_payload(10, {"mfaRegistered": -3})), id="negative"),
    pytest.param(Fault(200, legacy_payload(10, {"mfaRegistered": 2.5})), id="float"),  # type: ignore[dict-item]
    pytest.param(Fault(200, '{"value": [{"totalUserCount": 5,'), id="truncated-json"),
]


@pytest.mark.parametrize("fault", BAD_ANSWERS)
def test_a_bad_answer_keeps_the_last_good_numbers_and_says_bad_response(
    fake: FakeGraph, fault: Fault, caplog: pytest.LogCaptureFixture
) -> None:
    exporter = make_exporter(fake)
    exporter.poller.poll_round()
    before = [line for line in exposition(exporter).splitlines() if line.startswith(("tenant_", "credential_reg"))]
    fake.fail("legacy", fault)
    with caplog.at_level(logging.WARNING, logger="exporter"):
        (status,) = exporter.poller.poll_round()
    assert not status.up and status.last_reason == "bad_response"
    after = [line for line in exposition(exporter).splitlines() if line.startswith(("tenant_", "credential_reg"))]
    assert after == before
    tenant = fake.tenant_id
    assert value(exporter, "credential_exporter_up", tenant=tenant) == 0
    assert value(exporter, "credential_exporter_poll_errors_total", tenant=tenant, reason="bad_response") == 1
    (line,) = [r for r in caplog.records if r.getMessage() == "poll failed"]
    assert line.kv["reason"] == "bad_response" and line.kv["detail"]  # type: ignore[attr-defined]
    # Once Graph answers properly again, the next poll recovers on its own.
    fake.legacy = legacy_payload(23200, COUNTS)
    (status,) = exporter.poller.poll_round()
    assert status.up
    assert value(exporter, "tenant_total_users", tenant=tenant) == 23200


NO_SKU = "Tenant does not have a SKU required for this feature."


def fail_without_licence(fake: FakeGraph) -> None:
    """Graph's answer to a tenant without Entra ID P1 or P2."""
    fake.fail("legacy", graph_error(403, "Authentication_RequestFromNonPremiumTenantOrB2CTenant", NO_SKU, "req-403"))


def test_a_first_poll_that_fails_publishes_health_but_no_numbers(fake: FakeGraph) -> None:
    fail_without_licence(fake)
    exporter = make_exporter(fake)
    (status,) = exporter.poller.poll_round()
    assert status.last_reason == "http_4xx"
    text = exposition(exporter)
    assert "tenant_total_users{" not in text and "credential_registered_users{" not in text
    tenant = fake.tenant_id
    assert value(exporter, "credential_exporter_up", tenant=tenant) == 0
    assert value(exporter, "credential_exporter_last_success_timestamp_seconds", tenant=tenant) == 0
    assert value(exporter, "credential_exporter_graph_requests_total", tenant=tenant, code="403") == 1


def test_a_graph_error_is_logged_once_with_its_code_and_request_id(
    fake: FakeGraph, caplog: pytest.LogCaptureFixture
) -> None:
    fail_without_licence(fake)
    exporter = make_exporter(fake)
    with caplog.at_level(logging.DEBUG, logger="exporter"):
        exporter.poller.poll_round()
    (line,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    kv = line.kv  # type: ignore[attr-defined]
    assert kv["code"] == "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
    assert kv["request_id"] == "req-403"
    assert kv["status"] == 403 and kv["tenant"] == fake.tenant_id
    # A 403 is not retried: Graph would say the same again.
    assert len(fake.requests_to(LEGACY_PATH)) == 1


def test_a_refused_secret_fails_with_auth_and_does_not_hammer_the_token_endpoint(
    fake: FakeGraph, caplog: pytest.LogCaptureFixture
) -> None:
    exporter = make_exporter(fake, env=fake.env(AZURE_CLIENT_SECRET="not-the-secret"))
    with caplog.at_level(logging.WARNING, logger="exporter"):
        for _ in range(3):
            (status,) = exporter.poller.poll_round()
    assert status.last_reason == "auth"
    assert value(exporter, "credential_exporter_poll_errors_total", tenant=fake.tenant_id, reason="auth") == 3
    kv = caplog.records[-1].kv  # type: ignore[attr-defined]
    assert kv["code"] == "AADSTS7000215"
    assert "invalid_client" in kv["detail"]
    # One token request per poll, never retried within it; Graph was never called without a token.
    assert fake.token_requests == 3
    assert fake.requests_to(LEGACY_PATH) == []


def test_the_token_is_cached_between_polls(fake: FakeGraph) -> None:
    exporter = make_exporter(fake)
    for _ in range(3):
        exporter.poller.poll_round()
    assert fake.token_requests == 1
    assert len(fake.requests_to(LEGACY_PATH)) == 3


def test_a_token_graph_no_longer_accepts_is_replaced_once(fake: FakeGraph) -> None:
    exporter = make_exporter(fake)
    exporter.poller.poll_round()
    fake.revoke_tokens()
    (status,) = exporter.poller.poll_round()
    assert status.up
    assert fake.token_requests == 2
    assert value(exporter, "credential_exporter_graph_requests_total", tenant=fake.tenant_id, code="401") == 1


def test_a_429_with_retry_after_is_waited_out_within_the_poll(fake: FakeGraph) -> None:
    fake.fail(
        "legacy", Fault(429, {"error": {"code": "TooManyRequests", "message": "slow down"}}, {"Retry-After": "1"})
    )
    exporter = make_exporter(fake)
    (status,) = exporter.poller.poll_round()
    assert status.up
    tenant = fake.tenant_id
    assert value(exporter, "credential_exporter_graph_requests_total", tenant=tenant, code="429") == 1
    assert value(exporter, "credential_exporter_graph_requests_total", tenant=tenant, code="200") == 1
    assert len(fake.requests_to(LEGACY_PATH)) == 2
    assert value(exporter, "credential_exporter_graph_retries_total", tenant=tenant, reason="throttled") == 1
    assert value(exporter, "credential_exporter_throttled_seconds_total", tenant=tenant) >= 0.9


def test_a_server_error_past_the_budget_fails_with_http_5xx_then_recovers(fake: FakeGraph) -> None:
    fake.fail("legacy", Fault(502, "<html>Bad Gateway</html>"))
    exporter = make_exporter(fake, poll_timeout="2s")  # too short for the 5 s a 5xx retry waits
    (status,) = exporter.poller.poll_round()
    assert status.last_reason == "http_5xx"
    (status,) = exporter.poller.poll_round()
    assert status.up


def test_a_connection_reset_fails_with_network(fake: FakeGraph) -> None:
    fake.fail("legacy", Fault(action="reset"))
    exporter = make_exporter(fake, poll_timeout="1s")
    (status,) = exporter.poller.poll_round()
    assert status.last_reason == "network"


def test_an_untrusted_certificate_fails_with_network(fake: FakeGraph, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    env = fake.env()
    del env["REQUESTS_CA_BUNDLE"]
    exporter = make_exporter(fake, env=env, poll_timeout="2s")
    (status,) = exporter.poller.poll_round()
    assert status.last_reason == "network"
    assert "CERTIFICATE_VERIFY_FAILED" in (status.last_detail or "")
